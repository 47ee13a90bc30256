"""Fixtures for the optimizer tests: the real RI/CT/county data (never skipped) and small synthetic grids."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from optimizer import Options, Problem, Rep

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def opt_data_dir() -> Path:
    path = Path(os.environ.get("TERRITORY_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (path / "README.md").exists():
        pytest.fail(f"real data set not found at {path}: set TERRITORY_DATA_DIR to the shared/data folder")
    return path


@dataclass
class Raw:
    ids: list[str]
    pop: np.ndarray
    lonlat: np.ndarray
    edges: np.ndarray
    is_bridge: np.ndarray


def _bridges(lonlat: np.ndarray, edges: np.ndarray) -> list[tuple[int, int]]:
    """Join components (nearest centroid pair between each component and the rest) until connected."""
    n = len(lonlat)
    out: list[tuple[int, int]] = []
    e = [tuple(x) for x in edges.tolist()]
    while True:
        parent = list(range(n))

        def find(a: int, parent: list[int] = parent) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for a, b in e + out:
            parent[find(a)] = find(b)
        roots = sorted({find(i) for i in range(n)})
        if len(roots) == 1:
            return out
        comp = np.array([find(i) for i in range(n)])
        r = roots[0]
        inside = np.flatnonzero(comp == r)
        outside = np.flatnonzero(comp != r)
        d = ((lonlat[inside][:, None, :] - lonlat[outside][None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        out.append((int(inside[i]), int(outside[j])))


def load_geojson(path: Path, key: str, popcol: str, adj: Path) -> Raw:
    data = json.loads(path.read_text())
    ids, pop, pts = [], [], []
    for f in data["features"]:
        pr = f["properties"]
        if pr.get(popcol) is None:
            continue
        ids.append(str(pr[key]))
        pop.append(float(pr[popcol]))
        if "INTPTLON10" in pr:
            pts.append((float(pr["INTPTLON10"]), float(pr["INTPTLAT10"])))
        else:
            pts.append(_rough_centre(f["geometry"]))
    pos = {u: i for i, u in enumerate(ids)}
    pairs = set()
    with adj.open() as fh:
        for row in csv.DictReader(fh):
            a, b = row["a"], row["b"]
            if a in pos and b in pos and a != b:
                pairs.add((min(pos[a], pos[b]), max(pos[a], pos[b])))
    edges = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    lonlat = np.array(pts)
    br = _bridges(lonlat, edges)
    all_edges = np.vstack([edges, np.array(br, dtype=np.int64).reshape(-1, 2)])
    flags = np.concatenate([np.zeros(len(edges), bool), np.ones(len(br), bool)])
    return Raw(ids, np.array(pop), lonlat, all_edges, flags)


def _rough_centre(geom: dict | None) -> tuple[float, float]:
    if not geom or not geom.get("coordinates"):
        return (float("nan"), float("nan"))
    coords = []

    def walk(x: object) -> None:
        if isinstance(x, list) and x and isinstance(x[0], int | float):
            coords.append(x)
        elif isinstance(x, list):
            for y in x:
                walk(y)

    walk(geom["coordinates"])
    arr = np.array(coords, dtype=float)
    return (float(arr[:, 0].mean()), float(arr[:, 1].mean()))


@pytest.fixture(scope="session")
def ri(opt_data_dir: Path) -> Raw:
    base = opt_data_dir / "fixtures" / "fixture_ri_zcta2010_covsimp0p001_pop"
    return load_geojson(Path(f"{base}.geojson"), "zcta", "pop2010", Path(f"{base}_adjacency_touches.csv"))


@pytest.fixture(scope="session")
def ct(opt_data_dir: Path) -> Raw:
    base = opt_data_dir / "fixtures" / "fixture_ct_zcta2010_covsimp0p001_pop"
    return load_geojson(Path(f"{base}.geojson"), "zcta", "pop2010", Path(f"{base}_adjacency_touches.csv"))


@pytest.fixture(scope="session")
def counties(opt_data_dir: Path) -> Raw:
    base = opt_data_dir / "counties" / "us_counties2017_usatlas_pop"
    raw = load_geojson(Path(f"{base}.geojson"), "geoid", "pop2019_est", Path(f"{base}_adjacency_touches.csv"))
    bad = ~np.isfinite(raw.lonlat).all(axis=1)
    raw.lonlat[bad] = np.nanmean(
        raw.lonlat, axis=0
    )  # an empty polygon (Falls Church): any point will do here
    return raw


def homes_for(pop: np.ndarray, k: int, seed: int = 1) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(len(pop), size=k, replace=False, p=pop / pop.sum()).tolist())


def make_problem(raw: Raw, k: int, seed: int = 1, **opts: object) -> Problem:
    reps = [Rep(f"r{i}", int(h)) for i, h in enumerate(homes_for(raw.pop, k, seed))]
    return Problem(
        raw.ids, {"workload": raw.pop}, raw.lonlat, raw.edges, reps, Options(**opts), raw.is_bridge
    )  # type: ignore[arg-type]


def grid(
    rows: int, cols: int, weights: np.ndarray | None = None
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """A rook-adjacent grid of unit squares near (0, 0) lon/lat."""
    ids = [f"g{r}_{c}" for r in range(rows) for c in range(cols)]
    lonlat = np.array([(c * 0.1, r * 0.1) for r in range(rows) for c in range(cols)])
    edges = []
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            if c + 1 < cols:
                edges.append((i, i + 1))
            if r + 1 < rows:
                edges.append((i, i + cols))
    w = np.ones(rows * cols) if weights is None else weights
    return ids, w, lonlat, np.array(edges)
