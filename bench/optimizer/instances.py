"""Benchmark / test instances built from the real Census data in ``TERRITORY_DATA_DIR``.

Workload is population; rep homes are a seeded population-weighted sample of units (without replacement).
Disconnected inputs (islands, Alaska, Hawaii) get bridge edges from :func:`bridge_edges`, a small
Boruvka-style
helper written here on purpose (the ``geodata`` package is developed concurrently and is not imported).
``BENCH_BRIDGES=core`` in the environment (an experiment, not the benchmark default) also links every detached
component straight to the nearest unit of the largest one, e.g. Hawaii to California instead of only through
the Aleutians and Alaska; peers run in subprocesses inherit it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

REPO = Path(__file__).resolve().parents[2]

FILES = {
    "ri": (
        "fixtures/fixture_ri_zcta2010_covsimp0p001_pop.geojson",
        "zcta",
        "pop2010",
        "_adjacency_touches.csv",
    ),
    "ct": (
        "fixtures/fixture_ct_zcta2010_covsimp0p001_pop.geojson",
        "zcta",
        "pop2010",
        "_adjacency_touches.csv",
    ),
    "counties": (
        "counties/us_counties2017_usatlas_pop.geojson",
        "geoid",
        "pop2019_est",
        "_adjacency_touches.csv",
    ),
    "national": (
        "zcta/us_zcta2010_austindevs_simplified_merged_pop.geojson",
        "zcta",
        "pop2010",
        "_adjacency_dwithin0.003deg.csv",
    ),
}


# Falls Church city VA (51610) has an empty polygon at 1:10m (see the data README); it lies between
# Arlington (51013) and Fairfax (51059). Its centroid is hard-coded; the bridge helper then links it.
KNOWN_CENTROIDS = {"51610": (-77.1711, 38.8823)}


def data_dir() -> Path:
    """The shared data folder: ``$TERRITORY_DATA_DIR`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("TERRITORY_DATA_DIR", REPO.parent / "shared" / "data"))


@dataclass
class RawInstance:
    """Units of one data file: ids, population, centroids, adjacency (+ bridges) and optional geometry."""

    name: str
    ids: list[str]
    pop: np.ndarray
    lonlat: np.ndarray
    edges: np.ndarray
    is_bridge: np.ndarray
    gdf: object  # the GeoDataFrame (kept for peers that need geometry)


def _unit_vectors(lonlat: np.ndarray) -> np.ndarray:
    lon, lat = np.radians(lonlat[:, 0]), np.radians(lonlat[:, 1])
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def bridge_edges(lonlat: np.ndarray, edges: np.ndarray, to_core: bool = False) -> np.ndarray:
    """Edges that connect a disconnected graph, Boruvka style.

    Every round joins each component to its nearest other component (nearest pair of unit centroids,
    chord distance on the unit sphere), until one component remains.

    Parameters
    ----------
    lonlat : (n, 2) float array of unit centroids.
    edges : (m, 2) int array of existing adjacency edges.
    to_core : bool, default False
        Also link every component of the input graph to the nearest unit of its largest component (when
        that pair is not already a bridge).

    Returns
    -------
    (b, 2) int array of new bridge edges (may be empty).
    """
    n = len(lonlat)
    xyz = _unit_vectors(lonlat)
    tree = cKDTree(xyz)
    bridges: list[tuple[int, int]] = []
    current = edges.copy()
    while True:
        ncomp, labels = _components(n, current)
        if ncomp == 1:
            break
        best: dict[int, tuple[float, int, int]] = {}
        dist, idx = tree.query(xyz, k=min(16, n))
        for u in range(n):
            for d, v in zip(dist[u], idx[u], strict=True):
                if labels[v] != labels[u]:
                    c = labels[u]
                    if c not in best or (d, u, v) < best[c]:
                        best[c] = (float(d), u, int(v))
                    break
        for c in range(ncomp):
            if c in best:
                continue
            outside = np.flatnonzero(labels != c)
            best[c] = _nearest_pair(xyz, np.flatnonzero(labels == c), outside, cKDTree(xyz[outside]))
        added = set()
        for _c, (_d, u, v) in sorted(best.items()):
            key = (min(u, v), max(u, v))
            if key not in added:
                added.add(key)
                bridges.append(key)
        current = np.vstack([current, np.array(sorted(added), dtype=np.int64)])
    if to_core:
        bridges += _core_links(xyz, edges, set(bridges))
    return np.array(bridges, dtype=np.int64).reshape(-1, 2)


def _components(n: int, edges: np.ndarray) -> tuple[int, np.ndarray]:
    g = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    ncomp, labels = connected_components(g, directed=False)
    return int(ncomp), labels


def _nearest_pair(
    xyz: np.ndarray, inside: np.ndarray, outside: np.ndarray, tree: cKDTree
) -> tuple[float, int, int]:
    """(chord distance, unit of ``inside``, unit of ``outside``) of the nearest pair; ``tree`` is over
    ``xyz[outside]``."""
    d, j = tree.query(xyz[inside], k=1)
    i = int(np.argmin(d))
    return float(d[i]), int(inside[i]), int(outside[j[i]])


def _core_links(xyz: np.ndarray, edges: np.ndarray, have: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """For every component but the largest, the pair (nearest unit pair) linking it to the largest."""
    ncomp, labels = _components(len(xyz), edges)
    core = int(np.argmax(np.bincount(labels)))
    members = np.flatnonzero(labels == core)
    tree = cKDTree(xyz[members])
    out = []
    for c in range(ncomp):
        if c == core:
            continue
        _, u, v = _nearest_pair(xyz, np.flatnonzero(labels == c), members, tree)
        key = (min(u, v), max(u, v))
        if key not in have:
            have.add(key)
            out.append(key)
    return out


def load(name: str, root: Path | None = None) -> RawInstance:
    """Load one of ``ri``, ``ct``, ``counties``, ``national`` with bridges added.

    Units without population (counties of territories outside the 50 states + DC) are dropped.
    """
    import geopandas as gpd

    root = root or data_dir()
    rel, key, popcol, adjsuffix = FILES[name]
    path = root / rel
    if not path.exists():
        raise FileNotFoundError(f"missing {path}: set TERRITORY_DATA_DIR to the shared/data folder")
    gdf = gpd.read_file(path)
    gdf = gdf[gdf[popcol].notna()].reset_index(drop=True)
    ids = [str(x) for x in gdf[key]]
    pop = gdf[popcol].to_numpy(dtype=float)
    if "INTPTLON10" in gdf.columns:
        lonlat = np.column_stack([gdf["INTPTLON10"].astype(float), gdf["INTPTLAT10"].astype(float)])
    else:
        pts = gdf.geometry.representative_point()
        lonlat = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
        for i, uid in enumerate(ids):
            if uid in KNOWN_CENTROIDS and not np.isfinite(lonlat[i]).all():
                lonlat[i] = KNOWN_CENTROIDS[uid]
    adj = pd.read_csv(str(path).removesuffix(".geojson") + adjsuffix, dtype=str)
    pos = {u: i for i, u in enumerate(ids)}
    pairs = [(pos[a], pos[b]) for a, b in zip(adj["a"], adj["b"], strict=True) if a in pos and b in pos]
    edges = np.array(sorted({(min(a, b), max(a, b)) for a, b in pairs if a != b}), dtype=np.int64).reshape(
        -1, 2
    )
    bridges = bridge_edges(lonlat, edges, to_core=os.environ.get("BENCH_BRIDGES", "forest") == "core")
    all_edges = np.vstack([edges, bridges]) if len(bridges) else edges
    is_bridge = np.concatenate([np.zeros(len(edges), bool), np.ones(len(bridges), bool)])
    gdf = gdf.assign(unit_id=ids, pop=pop)
    return RawInstance(name, ids, pop, lonlat, all_edges, is_bridge, gdf)


def sample_homes(pop: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` distinct unit indices drawn with probability proportional to population (seeded)."""
    rng = np.random.default_rng(seed)
    p = pop / pop.sum()
    return np.sort(rng.choice(len(pop), size=k, replace=False, p=p))
