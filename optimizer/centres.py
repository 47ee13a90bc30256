"""Centres for reps without a home: a seeded capacitated Lloyd choice, and re-centring on a plan."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .bound import transport
from .geo import centre_drift, lonlat_of, nearest_free_unit, spherical_centre
from .local_search import State
from .problem import Problem
from .reseed import curve_slices, reseeded_centres


def choose_centres(
    problem: Problem,
    seed: int,
    rounds: int | None = None,
    info: dict[str, Any] | None = None,
    deadline: float | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> np.ndarray:
    """Pick home units for reps without one (p-median style, seeded).

    When active units x reps <= 8 million, start from a stratified sample along a Hilbert curve: units ordered
    along the curve, cumulative workload cut into equal slices (seeded random offset), one centre per slice.
    Centre density then follows workload, as balanced territories need, without the clumps of independent
    sampling (on national ZCTAs, K=200, the first transportation plan costs 69.7 km per person instead of
    128.6 km). Larger instances start from a workload-weighted sample of distinct units. Then ``rounds``
    capacitated Lloyd steps: solve the balanced transportation problem for the current centres and move every
    free centre to the unit nearest its territory's workload-weighted spherical centroid. Reps with a given
    home keep it. With ``centre_starts`` > 1 (Hilbert start only), every start (its own seeded offset; the
    first is the single-start offset) runs ``centre_probe_rounds`` rounds, and the start whose last
    transportation plan is cheapest continues for the remaining rounds; ``info`` (when given) receives the
    probes' plan values and the chosen start. With ``centre_reseed_regions`` > 0 (every rep without a home,
    equal targets) the centres come instead from :func:`optimizer.reseed.reseeded_centres`
    (Lloyd and local re-seeding on chunks of units) and run ``min(rounds, 4)`` Lloyd rounds on the units;
    ``info["reseed"]`` receives its figures. Past ``deadline`` (a ``time.perf_counter()`` value) every Lloyd
    loop stops after its current round and ``info["cut_short"]`` is set. ``checkpoint`` (when given) is called
    before every round; it may raise to abandon the choice (the caller's stop request).
    """
    homes = problem.home_units.copy()
    missing = np.flatnonzero(homes < 0)
    if len(missing) == 0:
        return homes
    rng = np.random.default_rng(seed)
    act = np.flatnonzero(problem.active)
    w = problem.workload
    p = w[act] + 1e-9 * max(float(w[act].max()), 1.0)
    taken = set(homes[homes >= 0].tolist())
    small = len(act) * problem.k <= 8_000_000
    opts = problem.options
    starts = opts.centre_starts
    if starts is None:
        starts = 4 if small and len(act) * problem.k >= 4_000_000 else 1
    tgt = problem.targets[:, problem.measure_names.index(problem.workload_name)]
    tol = problem.tolerance_of(problem.workload_name) or 0.0
    regions = opts.centre_reseed_regions
    if regions is None:
        regions = 1000 if len(act) * problem.k >= 4_000_000 else 0
    # every rep without a home and equal targets: Lloyd and local re-seeding on chunks of units, then a few
    # Lloyd rounds on the units themselves. Plans, seeds 1-3, km to their territory centres: national K=200
    # at 60 s 55.9 / 56.6 / 56.2 instead of 56.9 / 57.3 / 57.3; K=500 at 120 s 32.8 / 33.2 / 32.9 instead of
    # 34.6 / 34.1 / 34.8. Not the default on counties K=25, where 125 regions gave 194.8 / 197.7 / 195.3
    # against 201.7 / 196.9 / 199.6
    reseed = regions > 0 and len(missing) == problem.k and bool(np.allclose(tgt, tgt[0]))
    offsets: list[float] = []
    if small or reseed:
        along = np.argsort(hilbert_index(problem.centroids[act]), kind="stable")
        order = act[along]
        cw = np.cumsum(p[along])
    if small and not reseed:
        offsets = [float(rng.uniform()) for _ in range(max(starts, 1))]
    if not small and not reseed:
        # measured on national K=500: the Hilbert start gave more compact territories (34.4 km) but left one
        # territory 0.23 points out of band, the weighted sample balanced; keep the latter for large K
        pool = np.array([u for u in act.tolist() if u not in taken])
        pp = p[np.isin(act, pool)]
        homes[missing] = rng.choice(pool, size=len(missing), replace=False, p=pp / pp.sum())

    def hilbert_start(offset: float) -> np.ndarray:
        h = homes.copy()
        used = set(taken)
        for j, pos in zip(missing.tolist(), curve_slices(cw, len(missing), offset).tolist(), strict=True):
            i = min(int(pos), len(order) - 1)
            while int(order[i]) in used:  # the next free unit along the curve (more units than reps)
                i = (i + 1) % len(order)
            h[j] = int(order[i])
            used.add(int(order[i]))
        return h

    xyz = problem.unit_xyz
    from scipy.spatial import cKDTree

    tree = cKDTree(xyz[act])
    if rounds is None:
        rounds = opts.centre_rounds
        if rounds is None:
            # each round is one national-size transportation solve: more rounds where they are cheap
            rounds = 14 if small else 8

    def lloyd(
        homes: np.ndarray, rounds: int, arcs: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None, float]:
        value = np.inf
        for _ in range(rounds):
            if checkpoint is not None:
                checkpoint()
            res = transport(
                problem.centroids,
                problem.centroids[homes],
                w,
                act,
                tgt * (1 - tol),
                tgt * (1 + tol),
                tgt * (1 - tol),
                tgt * (1 + tol),
                0.0,
                per_unit=8,
                # warm start from the previous round's arcs (centres move a little): one flow is then enough
                max_rounds=2 if arcs is None else 1,
                init_arcs=arcs,
                with_bound=False,
            )
            arcs = res.arcs
            value = res.flow_value + 1e12 * res.hub_flow
            own = res.owner
            used = set(homes[homes >= 0].tolist()) - set(homes[missing].tolist())
            new = homes.copy()
            for j, c3, _ in territory_centres(own, missing, xyz, w):
                unit = nearest_free_unit(tree, act, c3, used, 16)
                if unit is not None:
                    new[j] = unit
            if np.array_equal(new, homes):
                break
            homes = new
            if deadline is not None and time.perf_counter() > deadline:
                if info is not None:
                    info["cut_short"] = True
                break
        return homes, arcs, value

    if reseed:
        sub: dict[str, Any] = {}
        points = reseeded_centres(
            order, w, xyz, problem.k, float(tgt[0]), tol, seed, regions, info=sub, deadline=deadline,
            checkpoint=checkpoint,
        )  # fmt: skip
        if info is not None:
            info["reseed"] = sub
            info["cut_short"] = info.get("cut_short") or sub.get("cut_short", False)
        start = homes.copy()
        used: set[int] = set()
        for j, c3 in enumerate(points):
            unit = nearest_free_unit(tree, act, c3, used, 16)
            if unit is None:  # the 16 nearest units are centres already
                unit = nearest_free_unit(tree, act, c3, used, len(act))
            assert unit is not None  # more units than reps (pre-check)
            start[j] = unit
        return lloyd(start, min(rounds, 4), None)[0]
    if not small:
        return lloyd(homes, rounds, None)[0]
    if starts <= 1 or rounds <= opts.centre_probe_rounds:
        return lloyd(hilbert_start(offsets[0]), rounds, None)[0]
    # several seeded starts, a few rounds each; the cheapest transportation plan continues (ties: first start)
    probes = [lloyd(hilbert_start(o), opts.centre_probe_rounds, None) for o in offsets]
    best = min(range(len(probes)), key=lambda i: (probes[i][2], i))
    if info is not None:
        info["probe_values"] = [float(x[2]) for x in probes]
        info["best_start"] = best
    return lloyd(probes[best][0], rounds - opts.centre_probe_rounds, probes[best][1])[0]


def territory_centres(
    owner: np.ndarray, reps: np.ndarray, xyz: np.ndarray, w: np.ndarray
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(rep, workload-weighted spherical centre, member mask) for each of ``reps`` whose territory has a
    defined centre."""
    for j in reps.tolist():
        sel = owner == j
        if not sel.any():
            continue
        c3 = spherical_centre(xyz[sel], w[sel])
        if c3 is not None:
            yield j, c3, sel


def hilbert_index(lonlat: np.ndarray, order: int = 16) -> np.ndarray:
    """Position of each point along a Hilbert curve over its bounding box (lon scaled by cos(mean lat))."""
    lon = lonlat[:, 0] * np.cos(np.radians(float(lonlat[:, 1].mean())))
    lat = lonlat[:, 1]
    side = (1 << order) - 1
    x = ((lon - lon.min()) / max(float(np.ptp(lon)), 1e-12) * side).astype(np.int64)
    y = ((lat - lat.min()) / max(float(np.ptp(lat)), 1e-12) * side).astype(np.int64)
    d = np.zeros(len(x), dtype=np.int64)
    s = 1 << (order - 1)
    while s > 0:
        rx = ((x & s) > 0).astype(np.int64)
        ry = ((y & s) > 0).astype(np.int64)
        d += s * s * ((3 * rx) ^ ry)
        flip = (ry == 0) & (rx == 1)
        x[flip] = side - x[flip]
        y[flip] = side - y[flip]
        swap = ry == 0
        x[swap], y[swap] = y[swap], x[swap].copy()
        s >>= 1
    return d


def recentre(
    problem: Problem,
    st: State,
    homes: np.ndarray,
    homes_idx: np.ndarray,
    free: np.ndarray,
    rounds: int,
    deadline: float | None = None,
    drift: bool = True,
    checkpoint: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Lloyd steps on the contiguous plan: move each solver-chosen centre to its territory's workload-weighted
    spherical centroid (``homes_idx`` reports the distinct active unit nearest it), then improve the plan for
    the moving centres: boundary moves and swaps priced with each territory's centre drift (a move's
    first-order effect, through the centroid it shifts, on the distances of the other members); balance,
    contiguity and budget hold. The plan's cost at its own centroids is measured before every step, and a step
    that does not lower it is undone and ends the loop. ``homes`` and ``homes_idx`` are updated in place; the
    state is left priced for the final centres (and their drift), so later polishing sees the same costs.
    Past ``deadline`` (a ``time.perf_counter()`` value) no further step starts (``cut_short`` says so).
    ``drift=False`` prices the steps for fixed centres (the plan then ends optimal for the centres its bound
    is computed for), still keeping only steps that bring the plan closer to its own centroids. ``checkpoint``
    (when given) is called before every step and may raise (the caller's stop request)."""
    from scipy.spatial import cKDTree

    act = np.flatnonzero(problem.active)
    tree = cKDTree(problem.unit_xyz[act])
    out: dict[str, Any] = {"rounds": 0, "moves": 0}
    best_cost = math.inf
    best_owner = st.owner_array()
    for step in range(rounds + 1):
        owner = st.owner_array()
        changed, pull = centres_of_plan(problem, owner, homes, homes_idx, free, tree, act)
        st.set_homes(homes)
        cost = st.total_cost()
        out.setdefault("cost_before", cost)
        if cost >= best_cost:
            st.restore(best_owner)
            _, pull = centres_of_plan(problem, best_owner, homes, homes_idx, free, tree, act)
            out["undone"] = True
            break
        best_cost, best_owner = cost, owner
        if not changed or step == rounds:
            break
        if deadline is not None and time.perf_counter() > deadline:
            out["cut_short"] = True
            break
        if checkpoint is not None:
            checkpoint()
        out["rounds"] += 1
        st.set_homes(homes, pull if drift else None)
        moves = st.improve(max_passes=10)
        if problem.options.contiguity:
            moves += st.improve_swaps(max_passes=1)
        out["moves"] += moves
        if moves == 0:
            break
    st.set_homes(homes, pull if drift else None)
    out["cost_after"] = best_cost
    return out


def centres_of_plan(
    problem: Problem,
    owner: np.ndarray,
    homes: np.ndarray,
    homes_idx: np.ndarray,
    free: np.ndarray,
    tree: Any,
    act: np.ndarray,
) -> tuple[bool, np.ndarray]:
    """Set ``homes`` of the reps in ``free`` to their territories' centroids and ``homes_idx`` to the distinct
    active unit nearest each; return whether any home moved and the (K, 3) centre drift (zero for the
    others)."""
    xyz = problem.unit_xyz
    w = problem.workload
    drift = np.zeros((problem.k, 3))
    changed = False
    taken = set(homes_idx[problem.home_units >= 0].tolist())
    for j, c3, sel in territory_centres(owner, free, xyz, w):
        point = lonlat_of(c3)
        if float(np.abs(homes[j] - point).max()) > 1e-6:
            changed = True
        homes[j] = point  # the centroid itself: the cost then is the distance to the territory's centre
        unit = nearest_free_unit(tree, act, c3, taken, 8)
        if unit is not None:
            homes_idx[j] = unit  # reported home: the unit nearest the centre
        drift[j] = centre_drift(xyz[sel], w[sel], c3)
    return changed, drift
