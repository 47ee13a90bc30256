"""Demo data: real Census counties shipped with ``plotly-geo`` and deterministic synthetic reps/accounts."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyogrio
import shapely

from .errors import GeodataError
from .io import RawLayer, _null_geometry_problems
from .units import UnitSet

__all__ = ["DEMO_STATES", "county_shapefile_path", "demo_counties", "synthetic_accounts", "synthetic_reps"]

#: Default demo states: New England (CT, MA, RI, NH, VT, ME) plus NY, NJ and PA.
DEMO_STATES: tuple[str, ...] = ("09", "25", "44", "33", "50", "23", "36", "34", "42")

_FIRST_NAMES = (
    "Alex", "Blair", "Casey", "Dana", "Eli", "Fran", "Gabe", "Harper", "Ivy", "Jordan",
    "Kai", "Lee", "Morgan", "Noor", "Owen", "Parker", "Quinn", "Riley", "Sam", "Taylor",
)  # fmt: skip
_LAST_NAMES = (
    "Abbott", "Baker", "Chen", "Diaz", "Evans", "Foster", "Garcia", "Hughes", "Ito", "Jensen",
    "Kowalski", "Lopez", "Murphy", "Nguyen", "Okafor", "Patel", "Reyes", "Schmidt", "Tran", "Walsh",
)  # fmt: skip
_COMPANY_PREFIX = (
    "Acme", "Apex", "Blue Ridge", "Cedar", "Coastal", "Granite", "Harbor", "Keystone", "Liberty", "Maple",
    "Northern", "Pioneer", "Riverbend", "Summit", "Valley", "Yankee",
)  # fmt: skip
_COMPANY_NOUN = (
    "Analytics", "Builders", "Dental", "Foods", "Freight", "Health", "Logistics", "Machining", "Media",
    "Outfitters", "Pharmacy", "Robotics", "Software", "Supply", "Tooling", "Works",
)  # fmt: skip
_COMPANY_SUFFIX = ("Inc.", "LLC", "Co.", "Group", "Partners", "Corp.")

_STAGES = ("prospect", "open", "won", "lost")
_STAGE_P = (0.35, 0.35, 0.2, 0.1)
_SEGMENTS = ("SMB", "MidMarket", "Enterprise")
_SEGMENT_P = (0.6, 0.3, 0.1)
_SEGMENT_VALUE = (1.0, 4.0, 15.0)
_SEGMENT_WORK = (1.0, 1.6, 2.5)


def county_shapefile_path() -> str:
    """Path of the Census cb_2016 1:500k county shapefile inside the ``plotly-geo`` package.

    Returns
    -------
    str
        ``.../_plotly_geo/package_data/cb_2016_us_county_500k.shp``.

    Raises
    ------
    GeodataError
        When ``plotly-geo`` is not installed.
    """
    try:
        import _plotly_geo
    except ImportError as exc:
        raise GeodataError(
            "the demo counties need the 'plotly-geo' package (pip install plotly-geo)"
        ) from exc
    return os.path.join(os.path.dirname(_plotly_geo.__file__), "package_data", "cb_2016_us_county_500k.shp")


def demo_counties(states: Sequence[str] = DEMO_STATES) -> RawLayer:
    """Read real US county polygons for a demo, filtered to some states.

    The data is the US Census Bureau's 2016 cartographic boundary file ``cb_2016_us_county_500k``
    (counties at 1:500,000, NAD83 longitude/latitude, public domain), as shipped in the PyPI package
    ``plotly-geo`` (``_plotly_geo/package_data``).  It has no population: the demo population stays NaN.

    Parameters
    ----------
    states : sequence of str, optional
        2-digit state FIPS codes; default New England (09 CT, 25 MA, 44 RI, 33 NH, 50 VT, 23 ME)
        plus 36 NY, 34 NJ and 42 PA.

    Returns
    -------
    RawLayer
        Counties in file order with the shapefile fields (STATEFP, COUNTYFP, GEOID, NAME, ...) plus
        ``code`` (= GEOID); ``crs="EPSG:4269"``.

    Raises
    ------
    GeodataError
        For malformed state codes, a missing ``plotly-geo`` package or no matching county.
    """
    codes = [str(s).strip() for s in states]
    bad = [s for s in codes if not (len(s) == 2 and s.isdigit())]
    if bad or not codes:
        raise GeodataError(f"state codes must be 2-digit FIPS codes such as '09', got {bad or list(states)}")
    path = county_shapefile_path()
    where = "STATEFP IN ({})".format(", ".join(f"'{s}'" for s in codes))
    try:
        df = pyogrio.read_dataframe(path, where=where)
    except Exception as exc:  # pyogrio raises several GDAL error types
        raise GeodataError(f"cannot read {path}: {exc}") from exc
    if len(df) == 0:
        raise GeodataError(f"no counties for states {', '.join(codes)} in {path}")
    df = df.reset_index(drop=True)
    df["code"] = df["GEOID"].astype(str)
    df = df.set_crs("EPSG:4269", allow_override=True)  # the shipped file has no .prj; Census files are NAD83
    return RawLayer(
        frame=df,
        source=path,
        driver="ESRI Shapefile",
        crs="EPSG:4269",
        parse_problems=_null_geometry_problems(df),
    )


def _unit_weights(units: UnitSet) -> np.ndarray:
    """Sampling weights: population, or area times the mean density where the population is unknown."""
    pop = units.frame["population"].to_numpy(dtype=np.float64)
    area = units.frame["area_km2"].to_numpy(dtype=np.float64)
    known = np.isfinite(pop) & (pop >= 0)
    if known.any() and pop[known].sum() > 0 and area[known].sum() > 0:
        density = pop[known].sum() / area[known].sum()
        w = np.where(known, pop, area * density)
    else:
        w = area.copy()
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    if w.sum() <= 0:
        w = np.ones(len(w))
    return w / w.sum()


def _points_in_units(units: UnitSet, unit_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform random points inside the given units (rejection sampling in each bounding box)."""
    geoms = units.frame.geometry.to_numpy()
    out = np.empty((len(unit_idx), 2), dtype=np.float64)
    if len(unit_idx) == 0:
        return out
    order = np.argsort(unit_idx, kind="stable")
    sorted_units = unit_idx[order]
    starts = np.flatnonzero(np.r_[True, sorted_units[1:] != sorted_units[:-1]])
    ends = np.r_[starts[1:], len(sorted_units)]
    for s, e in zip(starts, ends, strict=True):
        geom = geoms[sorted_units[s]]
        shapely.prepare(geom)
        xmin, ymin, xmax, ymax = geom.bounds
        fill = max(geom.area / max((xmax - xmin) * (ymax - ymin), 1e-300), 1e-4)
        need = e - s
        got: list[np.ndarray] = []
        n_got = 0
        for _ in range(10_000):
            m = max(16, math.ceil((need - n_got) / fill * 1.5))
            xy = np.column_stack([rng.uniform(xmin, xmax, m), rng.uniform(ymin, ymax, m)])
            inside = xy[shapely.contains_xy(geom, xy[:, 0], xy[:, 1])]
            got.append(inside)
            n_got += len(inside)
            if n_got >= need:
                break
        else:  # pragma: no cover - only for degenerate slivers
            raise GeodataError(
                f"could not sample a point inside unit {units.frame['code'].iloc[sorted_units[s]]}"
            )
        out[order[s:e]] = np.concatenate(got)[:need]
    return out


def synthetic_reps(units: UnitSet, n: int, seed: int) -> list[dict[str, Any]]:
    """Generate deterministic fake sales reps living inside the units.

    Parameters
    ----------
    units : UnitSet
        Units to place the reps in.
    n : int
        Number of reps.
    seed : int
        Seed for ``numpy.random.default_rng``; the same seed gives the same reps.

    Returns
    -------
    list of dict
        Keys ``external_id`` (``"REP-001"``...), ``name``, ``lon``, ``lat`` (the home location: a uniform
        point inside a unit drawn with probability proportional to its population, or to its area where
        the population is unknown), ``home_unit_code`` and ``capacity`` (1.0).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(units.frame), size=n, p=_unit_weights(units))
    xy = _points_in_units(units, idx, rng)
    first = rng.integers(0, len(_FIRST_NAMES), n)
    last = rng.integers(0, len(_LAST_NAMES), n)
    codes = units.frame["code"].to_numpy()
    return [
        {
            "external_id": f"REP-{k + 1:03d}",
            "name": f"{_FIRST_NAMES[first[k]]} {_LAST_NAMES[last[k]]}",
            "lon": float(xy[k, 0]),
            "lat": float(xy[k, 1]),
            "home_unit_code": str(codes[idx[k]]),
            "capacity": 1.0,
        }
        for k in range(n)
    ]


def synthetic_accounts(units: UnitSet, n: int, seed: int) -> list[dict[str, Any]]:
    """Generate deterministic fake customer accounts located inside the units.

    Parameters
    ----------
    units : UnitSet
        Units to place the accounts in.
    n : int
        Number of accounts.
    seed : int
        Seed for ``numpy.random.default_rng``; the same seed gives the same accounts.

    Returns
    -------
    list of dict
        Keys ``external_id`` (``"ACC-000001"``...), ``name``, ``lon``, ``lat`` (uniform inside a unit
        drawn with probability proportional to population, or area where the population is NaN),
        ``unit_code``, ``value`` (lognormal, scaled by segment), ``workload`` (lognormal, > 0),
        ``stage`` (prospect/open/won/lost) and ``segment`` (SMB/MidMarket/Enterprise).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(units.frame), size=n, p=_unit_weights(units))
    xy = _points_in_units(units, idx, rng)
    seg = rng.choice(len(_SEGMENTS), size=n, p=_SEGMENT_P)
    stage = rng.choice(len(_STAGES), size=n, p=_STAGE_P)
    value = rng.lognormal(mean=9.5, sigma=0.9, size=n) * np.asarray(_SEGMENT_VALUE)[seg]
    workload = np.maximum(rng.lognormal(mean=0.0, sigma=0.5, size=n) * np.asarray(_SEGMENT_WORK)[seg], 0.05)
    p1 = rng.integers(0, len(_COMPANY_PREFIX), n)
    p2 = rng.integers(0, len(_COMPANY_NOUN), n)
    p3 = rng.integers(0, len(_COMPANY_SUFFIX), n)
    codes = units.frame["code"].to_numpy()
    return [
        {
            "external_id": f"ACC-{k + 1:06d}",
            "name": f"{_COMPANY_PREFIX[p1[k]]} {_COMPANY_NOUN[p2[k]]} {_COMPANY_SUFFIX[p3[k]]}",
            "lon": float(xy[k, 0]),
            "lat": float(xy[k, 1]),
            "unit_code": str(codes[idx[k]]),
            "value": round(float(value[k]), 2),
            "workload": round(float(workload[k]), 3),
            "stage": _STAGES[stage[k]],
            "segment": _SEGMENTS[seg[k]],
        }
        for k in range(n)
    ]
