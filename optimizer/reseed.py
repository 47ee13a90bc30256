"""Centres chosen on a coarsened instance, with local re-seeding of neighbouring centres.

Capacitated Lloyd (``centres.choose_centres``) converges to a local optimum that depends mostly on its start:
on national ZCTAs with K=200, twelve Hilbert starts ended 54.8-55.8 km apart in relaxation value, whatever the
number of rounds. This module searches over starts locally and cheaply. The units are merged into chunks of
consecutive units along the Hilbert curve (about 20 per territory), Lloyd runs on the chunks, and then, region
by region, a centre and its nearest neighbouring centres are started afresh inside the territories they hold
and re-solved alone; the new centres are kept when the region's units lie nearer their territories'
centroids (the measure the planners see). A region's solve is a dense min-cost flow of a few hundred chunks
and a dozen reps, so a thousand regions take seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from .bound import largest_share_assignment, transport
from .geo import EARTH_RADIUS_KM, lonlat_of, nearest_free_unit, spherical_centre

_SCALE = 1e7  # workload units per region in the integer flow


def coarse_units(
    order: np.ndarray, w: np.ndarray, xyz: np.ndarray, chunk: int
) -> tuple[np.ndarray, np.ndarray]:
    """Chunks of ``chunk`` consecutive units of ``order`` (unit indices along the Hilbert curve).

    Parameters
    ----------
    order : unit indices along the Hilbert curve.
    w, xyz : workload and unit vectors of all units.
    chunk : units per chunk (the last may hold fewer).

    Returns
    -------
    (weight, centre): each chunk's workload and its workload-weighted spherical centre (unit vectors).
    """
    group = np.arange(len(order)) // chunk
    m = int(group[-1]) + 1
    weight = np.bincount(group, weights=w[order], minlength=m)
    centre = np.zeros((m, 3))
    # the tiny unweighted share keeps chunks of zero workload on the sphere
    np.add.at(centre, group, (w[order][:, None] + 1e-9) * xyz[order])
    centre /= np.linalg.norm(centre, axis=1, keepdims=True)
    return weight, centre


def curve_slices(cum: np.ndarray, k: int, offset: float) -> np.ndarray:
    """Positions of ``k`` points along a curve whose cumulative workload is ``cum``: one per equal slice of
    it, each ``offset`` (in [0, 1)) into its slice (the stratified starts of the Lloyd choices)."""
    return np.searchsorted(cum, (np.arange(k) + offset) * (cum[-1] / k))


def _spread(v: np.ndarray, w: np.ndarray, owner: np.ndarray, reps: np.ndarray) -> float:
    """Workload-weighted distance of the units to their territory's centroid, summed over ``reps``."""
    total = 0.0
    for j in reps.tolist():
        sel = owner == j
        c = spherical_centre(v[sel], w[sel]) if sel.any() else None
        if c is not None:
            total += float((w[sel] * np.arccos(np.clip(v[sel] @ c, -1.0, 1.0))).sum())
    return EARTH_RADIUS_KM * total


def balanced_assignment(
    v: np.ndarray, w: np.ndarray, centres: np.ndarray, lo: float, hi: float
) -> np.ndarray | None:
    """The cheapest assignment of the units to the centres with every territory's load in [lo, hi].

    Parameters
    ----------
    v : (n, 3) unit vectors of the units.
    w : (n,) workloads.
    centres : (k,) positions among the units of the centres.
    lo, hi : the band of every territory's load; a band the total cannot meet is widened to its equal share.

    Returns
    -------
    (n,) the owner (index into ``centres``) of each unit: a min-cost flow on every unit-centre arc with
    great-circle costs (fractional; each unit goes to its largest share), or None if the flow fails.
    """
    n, k = len(w), len(centres)
    scale = _SCALE / max(float(w.sum()), 1e-12)
    supply = np.rint(w * scale).astype(np.int64)
    total = int(supply.sum())
    lo_i = min(int(np.ceil(lo * scale)), total // k)
    hi_i = max(int(np.floor(hi * scale)), -(-total // k))
    cost = np.rint(np.arccos(np.clip(v @ v[centres].T, -1.0, 1.0)) * EARTH_RADIUS_KM * 1000).astype(np.int64)
    units, reps = np.repeat(np.arange(n), k), np.tile(np.arange(k), n)
    return largest_share_assignment(units, reps, cost.ravel(), supply, np.full(k, lo_i), np.full(k, hi_i))


def _centres_to_centroids(
    tree: Any, v: np.ndarray, w: np.ndarray, owner: np.ndarray, centres: np.ndarray, candidates: int
) -> np.ndarray:
    """Each centre moved to the first point not yet taken among the ``candidates`` nearest its territory's
    centroid (``tree`` over ``v``); a centre whose territory is empty stays."""
    new = centres.copy()
    points = np.arange(len(v))
    used: set[int] = set()
    for j in range(len(centres)):
        sel = owner == j
        c = spherical_centre(v[sel], w[sel]) if sel.any() else None
        if c is None:
            used.add(int(centres[j]))
            continue
        point = nearest_free_unit(tree, points, c, used, candidates)
        if point is not None:
            new[j] = point
    return new


def _local_lloyd(
    v: np.ndarray, w: np.ndarray, start: np.ndarray, lo: float, hi: float, rounds: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Lloyd steps on one region (``start``: positions of its centres among the region's units): each round
    the dense flow, then every centre to the unit nearest its territory's centroid. (centres, owner)."""
    tree = cKDTree(v)
    cur = start.copy()
    owner = balanced_assignment(v, w, cur, lo, hi)
    for _ in range(rounds):
        if owner is None:
            return None
        new = _centres_to_centroids(tree, v, w, owner, cur, 8)
        if np.array_equal(new, cur):
            break
        cur = new
        owner = balanced_assignment(v, w, cur, lo, hi)
    return (cur, owner) if owner is not None else None


def _global_lloyd(
    ll: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    centres: np.ndarray,
    lo: float,
    hi: float,
    rounds: int,
    deadline: float | None,
    checkpoint: Callable[[], None] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Capacitated Lloyd on all chunks (the sparse transportation solve, warm-started); past ``deadline`` the
    current round is the last. (centres, owner)."""
    k = len(centres)
    tree = cKDTree(v)
    arcs = None
    owner = np.zeros(len(w), dtype=np.int64)
    for r in range(rounds + 1):
        if checkpoint is not None:
            checkpoint()
        if deadline is not None and time.perf_counter() > deadline:
            rounds = r  # this round's flow gives the owners of the centres as they are
        res = transport(
            ll, ll[centres], w, np.arange(len(w)), np.full(k, lo), np.full(k, hi), np.full(k, lo),
            np.full(k, hi), 0.0, per_unit=8, max_rounds=2 if arcs is None else 1, init_arcs=arcs,
            with_bound=False,
        )  # fmt: skip
        arcs, owner = res.arcs, res.owner
        if r == rounds:
            break
        new = _centres_to_centroids(tree, v, w, owner, centres, 16)
        if np.array_equal(new, centres):
            break
        centres = new
    return centres, owner


def reseeded_centres(
    order: np.ndarray,
    w: np.ndarray,
    xyz: np.ndarray,
    k: int,
    target: float,
    tol: float,
    seed: int,
    regions: int,
    region_size: int = 12,
    info: dict[str, Any] | None = None,
    deadline: float | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> np.ndarray:
    """Centre points (unit vectors, one per rep) from Lloyd on chunks and local re-seeding of regions.

    Parameters
    ----------
    order : active units along the Hilbert curve.
    w, xyz : workload and unit vectors of all units.
    k : number of reps (all without a home).
    target, tol : each territory's target load and tolerance (the band is ``target * (1 +- tol)``).
    seed : seeds the Hilbert offset of the start and the regions' order and restarts.
    regions : regions to re-seed (each: a random centre and its ``region_size - 1`` nearest centres).
    info : receives ``chunks``, ``regions_tried``, ``regions_kept`` and the chunks' mean distance to their
        territory's centroid (km per unit of workload) after the first Lloyd, after the re-seeding and at the
        end.
    deadline : ``time.perf_counter()`` value after which no region starts (``info["cut_short"]``).
    checkpoint : called every 50 regions; may raise to abandon the choice.

    Returns
    -------
    (k, 3) unit vectors: the chunk centres the reps' territories settle on; the caller snaps them to units.
    """
    chunk = max(1, len(order) // (20 * k))
    cw, cv = coarse_units(order, w, xyz, chunk)
    ll = lonlat_of(cv)
    m = len(cw)
    rng = np.random.default_rng(seed)
    lo, hi = target * (1 - tol), target * (1 + tol)
    # start: one chunk per equal slice of cumulative workload along the curve (seeded offset)
    cum = np.cumsum(cw)
    picks = curve_slices(cum, k, float(rng.uniform()))
    centres = np.unique(np.minimum(picks, m - 1))
    if len(centres) < k:  # two slices in one heavy chunk: take free chunks along the curve
        free = np.setdiff1d(np.arange(m), centres)
        centres = np.sort(np.concatenate([centres, free[: k - len(centres)]]))
    centres, owner = _global_lloyd(ll, cv, cw, centres, lo, hi, 30, deadline, checkpoint)
    everyone = np.arange(k)
    before = _spread(cv, cw, owner, everyone)
    kept = tried = 0
    for it in range(regions):
        if checkpoint is not None and it % 50 == 0:
            checkpoint()
        if deadline is not None and time.perf_counter() > deadline:
            if info is not None:
                info["cut_short"] = True
            break
        j0 = int(rng.integers(k))
        region = np.sort(np.argsort(-(cv[centres] @ cv[centres[j0]]), kind="stable")[:region_size])
        units = np.flatnonzero(np.isin(owner, region))
        offset = float(rng.uniform())
        load = float(cw[units].sum())
        if len(units) < 2 * len(region) or not len(region) * lo <= load <= len(region) * hi:
            continue
        tried += 1
        local = np.searchsorted(region, owner[units])
        old = _spread(cv[units], cw[units], local, np.arange(len(region)))
        # restart along the curve inside the region (chunk indices follow the curve)
        cum_r = np.cumsum(cw[units])
        pos = curve_slices(cum_r, len(region), offset)
        start = np.minimum(pos, len(units) - 1)
        if len(np.unique(start)) < len(region):
            continue
        solved = _local_lloyd(cv[units], cw[units], start, lo, hi, 8)
        if solved is None:
            continue
        new_centres, new_local = solved
        if _spread(cv[units], cw[units], new_local, np.arange(len(region))) < old - 1e-9:
            kept += 1
            centres[region] = units[new_centres]
            owner[units] = region[new_local]
    reseeded = _spread(cv, cw, owner, everyone)
    centres, owner = _global_lloyd(ll, cv, cw, centres, lo, hi, 3, deadline, checkpoint)
    if info is not None:
        total = float(cw.sum())
        info.update(
            chunks=m,
            regions_tried=tried,
            regions_kept=kept,
            spread_lloyd=before / total,
            spread_reseeded=reseeded / total,
            spread_final=_spread(cv, cw, owner, everyone) / total,
        )
    return np.asarray(cv[centres])
