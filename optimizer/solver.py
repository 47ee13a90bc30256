"""``solve``: pre-check, then the exact CP-SAT model (small) or the large-scale heuristic pipeline."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .bound import cost_rows, transport
from .chains import improve_chains
from .geo import EARTH_RADIUS_KM, centre_drift, haversine_km, lonlat_of, spherical_centre
from .local_search import State
from .matching import movable_reps, rematch
from .pendant import strengthen
from .precheck import precheck
from .problem import Problem
from .rebuild import rebuild_clusters
from .solution import Solution

BOUND_NOTE = (
    "transportation relaxation (Lagrangian value over every unit-rep arc): relaxes contiguity, integrality "
    "(units may split), balance of measures other than the workload and the hard disruption budget; "
    "keeps the "
    "workload band, locks and anchored homes; valid for the fixed rep homes"
)

FORCED_NOTE = (
    "a region that one unit cuts off and that is lighter than a territory lies in one territory, which lies "
    "wholly inside the larger cut-off region around it when that region's territory through its cut cannot "
    "hold it; the bound is the smallest over the reps of that territory's exact cost plus the Lagrangian of "
    "the others, after supergradient steps on the prices"
)

#: share of the time limit after which no cluster rebuild starts (and at least 5 % before the window
#: polishing's stop, which gets the rest): national K=500 with the seed-3 homes gained 2.2 % in the first 25
#: rebuilds, 0.08 % in rebuilds 126-150 (at 0.85 of 120 s: 5.63 %; at 0.7: 5.64-5.68 %, at 0.55: 5.84 %)
REBUILD_STOP = 0.7


def choose_centres(
    problem: Problem,
    seed: int,
    rounds: int | None = None,
    info: dict[str, Any] | None = None,
    deadline: float | None = None,
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
    probes' plan values and the chosen start. Past ``deadline`` (a ``time.perf_counter()`` value) every Lloyd
    loop stops after its current round and ``info["cut_short"]`` is set.
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
    offsets: list[float] = []
    if small:
        along = np.argsort(_hilbert_index(problem.centroids[act]), kind="stable")
        order = act[along]
        cw = np.cumsum(p[along])
        offsets = [float(rng.uniform()) for _ in range(max(starts, 1))]
    else:
        # measured on national K=500: the Hilbert start gave more compact territories (34.4 km) but left one
        # territory 0.23 points out of band, the weighted sample balanced; keep the latter for large K
        pool = np.array([u for u in act.tolist() if u not in taken])
        pp = p[np.isin(act, pool)]
        homes[missing] = rng.choice(pool, size=len(missing), replace=False, p=pp / pp.sum())

    def hilbert_start(offset: float) -> np.ndarray:
        h = homes.copy()
        used = set(taken)
        slices = (np.arange(len(missing)) + offset) * (cw[-1] / len(missing))
        for j, pos in zip(missing.tolist(), np.searchsorted(cw, slices).tolist(), strict=True):
            i = min(int(pos), len(order) - 1)
            while int(order[i]) in used:  # the next free unit along the curve (more units than reps)
                i = (i + 1) % len(order)
            h[j] = int(order[i])
            used.add(int(order[i]))
        return h

    xyz = problem.unit_xyz
    tgt = problem.targets[:, problem.measure_names.index(problem.workload_name)]
    tol = problem.tolerance_of(problem.workload_name) or 0.0
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
            for j, c3, _ in _territory_centres(own, missing, xyz, w):
                unit = _nearest_free_unit(tree, act, c3, used, 16)
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


def _territory_centres(
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


def _nearest_free_unit(tree: Any, act: np.ndarray, xyz: np.ndarray, taken: set[int], k: int) -> int | None:
    """The active unit nearest ``xyz`` among the ``k`` nearest (``tree`` over ``act``'s unit vectors) that is
    not in ``taken``; it is added to ``taken``. None when all ``k`` are taken."""
    _, cand = tree.query(xyz, k=min(k, len(act)))
    for c in np.atleast_1d(cand).tolist():
        unit = int(act[c])
        if unit not in taken:
            taken.add(unit)
            return unit
    return None


def _hilbert_index(lonlat: np.ndarray, order: int = 16) -> np.ndarray:
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


class _Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.stages: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = round(self.stages.get(name, 0.0) + now - self.last, 4)
        self.last = now

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def deadline(self, share: float, time_limit: float) -> float | None:
        """The ``time.perf_counter()`` value at ``share`` of ``time_limit`` (None without a limit)."""
        return self.t0 + share * time_limit if time_limit > 0 else None


def solve(problem: Problem) -> Solution:
    """Solve a territory problem.

    Parameters
    ----------
    problem : Problem

    Returns
    -------
    Solution
        ``infeasible`` with reasons when the pre-check proves the request impossible; otherwise the best plan
        found with loads, deviations, compactness, disruption, the lower bound and the gap.

    Notes
    -----
    The same problem and seed give the same solution (``to_dict(timings=False)`` byte for byte): every stage
    is bounded by deterministic work limits. ``options.time_limit`` is only a guard on the optional polishing
    stages; when it cuts one short, ``notes`` says so and that run may differ from an unhurried one.
    """
    clock = _Clock()
    opts = problem.options
    pre = precheck(problem)
    clock.lap("precheck")
    if not pre.feasible:
        sol = Solution(status="infeasible", reasons=pre.reasons, seed=opts.seed, mode="precheck")
        sol.details["precheck"] = pre.to_dict()
        sol.timings = clock.stages
        return sol
    n_act = int(problem.active.sum())
    mode = opts.mode
    if mode == "auto":
        mode = "exact" if n_act <= opts.exact_max_units else "heuristic"
    auto_centres = bool((problem.home_units < 0).any())
    notes: list[str] = []
    if auto_centres:
        notes.append(
            "rep homes not given for every rep: centres chosen by seeded weighted k-means, then fixed"
        )
    # chosen centres that no construction can balance (national K=500, seed 2: a Manhattan territory 3 %
    # short whose neighbourhood has no fitting combination of its large units) are chosen again from another
    # seed, once; the second attempt keeps its best plan whatever happens
    retry = auto_centres and mode == "heuristic" and opts.contiguity and not problem.has_move_budget
    failed_attempt = None
    for attempt in range(2 if retry else 1):
        centre_seed = opts.seed + 7919 * attempt
        att = _solve_for_homes(
            problem, mode, centre_seed, clock, notes, give_up_unbalanced=retry and attempt == 0
        )
        if att.infeasible is not None:
            att.infeasible.timings = clock.stages
            return att.infeasible
        if att.owner is not None:
            break
        failed_attempt = att.details.get("unbalanced_attempt")
        notes.append(
            f"the centres chosen with seed {centre_seed} could not be balanced; chose new centres with seed "
            f"{centre_seed + 7919}"
        )
    assert att.owner is not None
    details, bound = att.details, att.bound
    if failed_attempt is not None:
        details["unbalanced_attempt"] = failed_attempt
    heur = details.get("heuristic", {})
    bound_note = BOUND_NOTE if att.mode != "exact" else BOUND_NOTE + "; or CP-SAT's own bound when higher"
    recentred = bool(heur.get("recentre", {}).get("rounds") or heur.get("recentre_final", {}).get("rounds"))
    if att.mode == "heuristic" and (recentred or problem.tolerance_of(problem.workload_name) is not None):
        # the bound's own flow, on the real band: the construction's flow ran on a band shrunk to 80 % of the
        # tolerance, and its prices give a weaker Lagrangian value on the real band (national K=500, sampled
        # homes: 0.044 % lower); when the centres moved after the relaxation, the bound must also be for the
        # final centres
        label = "transport_recentred" if recentred else "transport_bound"
        final_bound, tr = _bound_and_start(
            problem, att.homes, att.fixed, clock, shrink=1.0, init_arcs=att.arcs, max_rounds=4, label=label
        )
        bound = final_bound if recentred else max(bound, final_bound)
        details[label] = {k: v for k, v in tr.items() if k not in ("owner", "prices", "arcs")}
        # a territory the graph forces (national K=200: Hawaii must share a territory with Alaska, inside the
        # region beyond the bridge to Washington), which the relaxation cannot see
        deadline = clock.deadline(0.97, opts.time_limit)
        forced = strengthen(problem, att.homes, att.owner, att.fixed, tr["prices"], bound, deadline)
        if forced is not None:
            details["forced_territory_bound"] = {**forced[1], "value": forced[0], "relaxation": bound}
            if forced[1].get("cut_short"):
                notes.append("time_limit guard cut the forced-territory bound short (may differ under load)")
            if forced[0] > bound:
                bound = forced[0]
                bound_note = BOUND_NOTE + "; raised by a territory the adjacency forces (" + FORCED_NOTE + ")"
        clock.lap("forced_territory_bound")
    details["homes"] = {
        r.id: problem.unit_ids[int(h)] for r, h in zip(problem.reps, att.homes_idx.tolist(), strict=True)
    }
    sol = _build_solution(
        problem, att.homes, att.owner, bound, bound_note, att.mode, att.status_hint, details, notes
    )
    sol.timings = clock.stages
    sol.timings["total"] = round(clock.elapsed(), 4)
    return sol


@dataclass
class _Attempt:
    """The relaxation and plan for one set of homes (``owner`` None: given up, or proven infeasible)."""

    owner: np.ndarray | None
    homes: np.ndarray
    homes_idx: np.ndarray
    fixed: np.ndarray
    bound: float
    arcs: tuple[np.ndarray, np.ndarray] | None
    details: dict[str, Any]
    mode: str
    status_hint: str
    infeasible: Solution | None = None


def _solve_for_homes(
    problem: Problem, mode: str, centre_seed: int, clock: _Clock, notes: list[str], give_up_unbalanced: bool
) -> _Attempt:
    """Homes (given, or chosen with ``centre_seed``), the relaxation and its bound, then the exact model or
    the heuristic pipeline for them."""
    opts = problem.options
    owner: np.ndarray | None = None
    centre_info: dict[str, Any] = {}
    # the centre choice is fixed work (national K=200: 25 s of 60); on a machine slowed down it may not take
    # more than half the time limit, so that the plan and its bound still fit
    deadline = clock.deadline(0.5, opts.time_limit) if mode == "heuristic" else None
    homes_idx = choose_centres(problem, centre_seed, info=centre_info, deadline=deadline)
    if centre_info.get("cut_short"):
        notes.append("time_limit guard cut the centre choice short (run may differ under load)")
    homes = problem.home_points.copy()
    for j in range(problem.k):
        if not np.isfinite(homes[j]).all():
            homes[j] = problem.centroids[homes_idx[j]]
    fixed = problem.locked_owner.copy()
    if opts.anchor_homes:
        for j, h in enumerate(homes_idx.tolist()):
            fixed[h] = j
    clock.lap("setup")

    quick: State | None = None
    quick_arcs = None
    hard_budget = problem.has_move_budget
    if mode == "heuristic" and opts.contiguity and not hard_budget:
        # a first plan from a single flow on the nearest-home arcs (no pricing rounds yet): it has fewer
        # long arcs across water, so on national K=200 it balances at once; the full relaxation (bound,
        # prices and the usual construction) continues from its arcs and the cheaper balanced
        # construction wins
        _, tq = _bound_and_start(
            problem,
            homes,
            fixed,
            clock,
            max_rounds=1,
            label="transport_quick",
            with_bound=False,
            price_last=True,
        )
        quick_arcs = tq["arcs"]
        quick_info: dict[str, Any] = {}
        quick = _construct(problem, tq["owner"], homes, fixed, quick_info, "quick")
        clock.lap("construct_quick")
        if quick.total_viol() == 0:
            clock.stages["first_feasible_at"] = round(clock.elapsed(), 4)
    bound, tr_notes = _bound_and_start(problem, homes, fixed, clock, init_arcs=quick_arcs)
    start_owner = tr_notes.pop("owner")
    details: dict[str, Any] = {"transport": tr_notes}
    if quick is not None:
        details["quick_construction"] = quick_info
    if centre_info:
        details["centre_starts"] = centre_info
    prices = tr_notes.pop("prices")
    arcs = tr_notes.pop("arcs")

    status_hint = ""
    # the heuristic for these homes: the exact model's hint (no polishing) or the plan itself
    heuristic = partial(
        _heuristic,
        problem,
        homes,
        fixed,
        start_owner,
        prices,
        clock,
        notes,
        details,
        homes_idx=homes_idx,
        arcs=arcs,
    )
    if mode == "exact":
        from .exact import solve_exact

        hint = None
        try:
            hint = heuristic(polish=False)
        except Exception as exc:  # the hint is optional: the exact model does not depend on it
            notes.append(f"no heuristic hint: {exc}")
        hint_ok = hint is not None and _plan_violations(problem, hint) == []
        owner, exact_info = solve_exact(problem, homes, fixed, hint if hint_ok else None, clock)
        details["exact"] = exact_info
        status_hint = exact_info.get("status", "")
        if exact_info.get("bound") is not None:
            bound = max(bound, float(exact_info["bound"]))
        if owner is None and status_hint == "infeasible":
            sol = Solution(
                status="infeasible",
                reasons=["CP-SAT proved that no plan meets balance, contiguity, locks and budget together"],
                seed=opts.seed,
                mode="exact",
                details=details,
            )
            return _Attempt(None, homes, homes_idx, fixed, bound, arcs, details, mode, status_hint, sol)
        if owner is None:
            notes.append("exact model found no plan within its limits; returning the heuristic plan")
            owner = hint
            mode = "heuristic"
    if mode == "heuristic" and owner is None:
        owner = heuristic(quick=quick, give_up_unbalanced=give_up_unbalanced)
    return _Attempt(owner, homes, homes_idx, fixed, bound, arcs, details, mode, status_hint)


def _bound_and_start(
    problem: Problem,
    homes: np.ndarray,
    fixed: np.ndarray,
    clock: _Clock,
    shrink: np.ndarray | float = 0.8,
    max_rounds: int = 8,
    init_arcs: tuple[np.ndarray, np.ndarray] | None = None,
    banned: np.ndarray | None = None,
    label: str = "transport",
    with_bound: bool = True,
    price_last: bool = False,
) -> tuple[float, dict[str, Any]]:
    opts = problem.options
    act = problem.active
    w = problem.workload
    wj = problem.measure_names.index(problem.workload_name)
    lo, hi = problem.bounds
    lo_w, hi_w = lo[:, wj], hi[:, wj]
    tgt = problem.targets[:, wj]
    free = np.flatnonzero(act & (fixed < 0))
    fixed_units = np.flatnonzero(act & (fixed >= 0))
    k = problem.k
    fixed_load = np.bincount(fixed[fixed_units], weights=w[fixed_units], minlength=k)
    cur = problem.current_owner
    lam = float(opts.disruption_weight) if cur is not None else 0.0
    fixed_cost = float(
        (w[fixed_units] * haversine_km(problem.centroids[fixed_units], homes[fixed[fixed_units]])).sum()
    )
    if lam and cur is not None:
        fixed_cost += float(lam * (w[fixed_units] * (fixed[fixed_units] != cur[fixed_units])).sum())
    tol = problem.tolerance_of(problem.workload_name)
    if tol is not None:
        lo_f = np.maximum(tgt * (1 - shrink * tol) - fixed_load, 0)
        hi_f = np.maximum(tgt * (1 + shrink * tol) - fixed_load, 0)
    else:
        lo_f = np.zeros(k)
        hi_f = np.full(k, np.inf)
    lo_b = np.maximum(lo_w - fixed_load, 0)
    hi_b = np.where(np.isfinite(hi_w), np.maximum(hi_w - fixed_load, 0), np.inf)
    res = transport(
        problem.centroids,
        homes,
        w,
        free,
        lo_f,
        hi_f,
        lo_b,
        hi_b,
        fixed_cost,
        current=cur,
        disruption_weight=lam,
        per_unit=opts.candidate_arcs,
        max_rounds=max_rounds,
        init_arcs=init_arcs,
        banned=banned,
        with_bound=with_bound,
        price_last=price_last,
    )
    owner = res.owner.copy()
    owner[fixed >= 0] = fixed[fixed >= 0]
    owner[~act] = -1
    undecided = np.flatnonzero(act & (owner < 0))
    if len(undecided):
        c = cost_rows(problem.centroids, homes, undecided, cur, lam) - res.prices[None, :]
        owner[undecided] = np.argmin(c, axis=1)
    clock.lap(label)
    info: dict[str, Any] = {
        "owner": owner,
        "rounds": res.rounds,
        "split_units": res.split_units,
        "flow_value": res.flow_value,
        "bound": res.bound,
        "prices": res.prices,
        "arcs": res.arcs,
    }
    return res.bound, info


def _heuristic(
    problem: Problem,
    homes: np.ndarray,
    fixed: np.ndarray,
    start_owner: np.ndarray,
    prices: np.ndarray,
    clock: _Clock,
    notes: list[str],
    details: dict[str, Any],
    polish: bool = True,
    homes_idx: np.ndarray | None = None,
    arcs: tuple[np.ndarray, np.ndarray] | None = None,
    quick: State | None = None,
    give_up_unbalanced: bool = False,
) -> np.ndarray | None:
    """Construction, local search and polishing for fixed homes; None (with ``give_up_unbalanced``) when no
    construction balances, so that the caller can choose other centres."""
    opts = problem.options
    cur = problem.current_owner
    hard_budget = problem.has_move_budget
    owner = start_owner
    if hard_budget and cur is not None:
        owner = np.where((cur >= 0) & problem.active, cur, start_owner)
        owner[fixed >= 0] = fixed[fixed >= 0]
        notes.append("hard disruption budget: search starts from the current assignment")
    info: dict[str, Any] = {}

    def construct(initial: np.ndarray, label: str) -> State:
        return _construct(problem, initial, homes, fixed, info, label)

    st = construct(owner, "relaxation")
    clock.lap("construct_relaxation")
    banned: list[np.ndarray] = []
    raw_owner = owner
    retries = opts.relaxation_retries if (opts.contiguity and not hard_budget) else 0
    quick_ok = quick is not None and quick.total_viol() == 0
    if give_up_unbalanced or quick_ok:
        # one re-solve only: for chosen centres that may be replaced (on national K=500 with chosen centres no
        # re-solve ever balanced a plan, seeds 1-3, while 4 of them cost ~30 s before the second centres), and
        # when the quick plan is balanced already (national K=500, seed-2 homes: 4 re-solves, ~24 s, none
        # balanced, the quick plan won)
        retries = min(retries, 1)
    for attempt in range(retries):
        if st.total_viol() == 0:
            break
        # forbid the unit-rep pairs that formed detached fragments in the last relaxation (typically a cell
        # reaching across water) and solve it again: its prices then push the surplus through the graph
        frag = _fragment_arcs(problem, raw_owner, homes, fixed)
        if len(frag) == 0:
            break
        banned.append(frag)
        _, tr = _bound_and_start(
            problem,
            homes,
            fixed,
            clock,
            init_arcs=arcs,
            banned=np.concatenate(banned),
            max_rounds=3,
            label=f"transport_retry{attempt + 1}",
        )
        tr.pop("arcs", None)
        raw_owner = tr["owner"]
        last = construct(raw_owner, f"retry{attempt + 1}")
        clock.lap(f"construct_retry{attempt + 1}")
        if (last.total_viol(), last.total_cost()) < (st.total_viol(), st.total_cost()):
            st = last
            info["construction"] = f"relaxation retry {attempt + 1}"
    if st.total_viol() > 0 and opts.contiguity and not hard_budget and not quick_ok:
        # fall back to capacitated priced region growing from the homes (contiguous by construction)
        from .assign import priced_growth

        wj = problem.measure_names.index(problem.workload_name)
        tol = problem.tolerance_of(problem.workload_name) or 0.0
        nb = [[int(v) for v in x] for x in problem.neighbors]
        seeds = fixed.copy()
        if homes_idx is None:
            homes_idx = problem.home_units
        for j, h in enumerate(homes_idx.tolist()):
            if seeds[h] < 0:
                seeds[h] = j
        tgt = problem.targets[:, wj]
        grown, _ = priced_growth(
            problem.centroids,
            homes,
            nb,
            seeds,
            problem.active,
            problem.workload,
            tgt,
            prices,
            rounds=1,
            cap=tgt * (1 + 0.5 * tol),
        )
        grown = np.where((grown < 0) & problem.active, owner, grown)
        st2 = construct(grown, "growth")
        clock.lap("construct_growth")
        if (st2.total_viol(), st2.total_cost()) < (st.total_viol(), st.total_cost()):
            st = st2
            info["construction"] = "growth"
        else:
            info["construction"] = "relaxation"
    if st.total_viol() > 0 and opts.contiguity and not quick_ok:
        from .windows import repair_windows

        info["repair_windows"] = repair_windows(
            st,
            seed=opts.seed,
            workers=opts.workers,
            max_windows=8,
            time_left=lambda: opts.time_limit * 0.8 - clock.elapsed(),
        )
        clock.lap("repair_windows")
    if quick is not None:
        info["quick_balanced"] = quick.total_viol() == 0
        if (quick.total_viol(), quick.total_cost()) < (st.total_viol(), st.total_cost()):
            st = quick
            info["construction"] = "quick (single flow on the nearest-home arcs)"
    info["balanced"] = st.total_viol() == 0
    if give_up_unbalanced and not info["balanced"]:
        details["unbalanced_attempt"] = info
        return None
    if info["balanced"] and "first_feasible_at" not in clock.stages:
        clock.stages["first_feasible_at"] = round(clock.elapsed(), 4)
    if hard_budget:
        info["reverted"] = st.revert_moves()
    info["first_cost"] = st.total_cost()
    movable = movable_reps(problem, fixed)
    matching = len(movable) > 1  # which rep owns which territory is free for at least two reps
    if matching:
        info["rematch"] = [rematch(st, movable)]
    info["improve_moves"] = st.improve()
    if opts.contiguity:
        info["swaps"] = st.improve_swaps()
        info["improve_moves"] += st.improve(max_passes=5)
    free = np.flatnonzero(problem.home_units < 0)
    recentring = (
        bool(len(free)) and not opts.anchor_homes and homes_idx is not None and opts.recentre_rounds > 0
    )
    # the polishing (chains, windows) stops at this share of the time limit
    stop_at = _window_stop(opts.time_limit) if recentring else 0.8
    stop = clock.deadline(stop_at, opts.time_limit)
    if polish and opts.chain_work > 0:
        info["chains"] = improve_chains(st, work=opts.chain_work, deadline=stop)
        if stop is not None and time.perf_counter() > stop:
            notes.append("time_limit guard cut the ejection chains short (run may differ under load)")
    clock.lap("local_search")
    if polish and opts.rebuild_clusters > 0 and cur is None and st.total_viol() == 0:
        # the moves keep the layout the construction chose; re-solving clusters of territories changes it
        info["rebuild"] = rebuild_clusters(
            st,
            fixed,
            prices,
            rings=opts.rebuild_rings,
            max_clusters=opts.rebuild_clusters,
            deadline=clock.deadline(min(REBUILD_STOP, stop_at - 0.05), opts.time_limit),
        )
        if info["rebuild"]["cut_short"]:
            notes.append("time_limit guard cut the cluster rebuilds short (run may differ under load)")
        clock.lap("rebuild")
    if polish and recentring and homes_idx is not None:
        info["recentre"] = _recentre(problem, st, homes, homes_idx, free, opts.recentre_rounds, deadline=stop)
        clock.lap("recentre")
    if polish and opts.window_rounds > 0 and opts.contiguity:
        from .windows import polish_windows

        # with re-centring, keep time for the last Lloyd step and the bound for the final centres
        between = None
        if (recentring and homes_idx is not None) or matching:
            hidx = homes_idx

            def between() -> None:
                # the next round's windows are ranked for the best rep of each territory and the new centres
                if matching:
                    info["rematch"].append(rematch(st, movable))
                if recentring and hidx is not None:
                    info.setdefault("recentre_between", []).append(
                        _recentre(problem, st, homes, hidx, free, opts.recentre_rounds, deadline=stop)
                    )

        info["windows"] = polish_windows(
            st,
            opts,
            clock,
            stop_at=stop_at,
            between=between,
        )
        if info["windows"].get("time_guard_hit"):
            notes.append("time_limit guard cut the window polishing short (run may differ under load)")
        clock.lap("windows")
        if recentring and homes_idx is not None:
            # the last steps, for fixed centres (the bound's), may run into a quarter of the time kept
            final_stop = clock.deadline(stop_at + (1.0 - stop_at) / 4, opts.time_limit)
            info["recentre_final"] = _recentre(
                problem, st, homes, homes_idx, free, opts.recentre_rounds, deadline=final_stop, drift=False
            )
            clock.lap("recentre_final")
    if polish and matching:
        # the polishing may have changed which rep suits a territory best (on national K=500 it gains
        # 0.001-0.06 % here; the boundary moves a change would enable are not worth their 1-2 s)
        info["rematch"].append(rematch(st, movable))
        clock.lap("rematch")
    steps = [info.get("recentre", {}), *info.get("recentre_between", []), info.get("recentre_final", {})]
    if any(x.get("cut_short") for x in steps):
        notes.append("time_limit guard cut the re-centring short (run may differ under load)")
    details["heuristic"] = info
    return st.owner_array()


def _window_stop(time_limit: float) -> float:
    """Share of the time limit after which no window starts when the solver re-centres its own centres: keep
    max(10 % of the limit, min(18 s, 30 %)) for the last re-centring and the bound for the final centres
    (national K=200, 60 s: stop at 42 s = 0.7; K=500, 120 s: at 102 s = 0.85, which leaves about twice the
    6-7 s they take there; counties, 10 s: at 7 s)."""
    if time_limit <= 0:
        return 0.7
    reserve = max(0.1 * time_limit, min(18.0, 0.3 * time_limit))
    return (time_limit - reserve) / time_limit


def _construct(
    problem: Problem,
    initial: np.ndarray,
    homes: np.ndarray,
    fixed: np.ndarray,
    info: dict[str, Any],
    label: str,
) -> State:
    """Contiguity repair, balance flow over the territory graph and balance repair of a start plan."""
    state = State(problem, initial, homes, fixed)
    seeded = state.seed_empty()
    if seeded:
        info[f"{label}_seeded_territories"] = seeded
    if problem.options.contiguity:
        info[f"{label}_contiguity_moves"] = state.repair_contiguity()
    info[f"{label}_flow_rounds"] = state.rebalance_flow(rounds=8)
    # the quick plan is optional: its ejection chains get a quarter of the work the others get
    work = 500_000 if label == "quick" else 2_000_000
    info[f"{label}_balanced"] = state.repair_balance(max_iters=5000, eject_work=work)
    info[f"{label}_eject_work"] = state.eject_work
    return state


def _recentre(
    problem: Problem,
    st: State,
    homes: np.ndarray,
    homes_idx: np.ndarray,
    free: np.ndarray,
    rounds: int,
    deadline: float | None = None,
    drift: bool = True,
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
    is computed for), still keeping only steps that bring the plan closer to its own centroids."""
    from scipy.spatial import cKDTree

    act = np.flatnonzero(problem.active)
    tree = cKDTree(problem.unit_xyz[act])
    out: dict[str, Any] = {"rounds": 0, "moves": 0}
    best_cost = math.inf
    best_owner = st.owner_array()
    for step in range(rounds + 1):
        owner = st.owner_array()
        changed, pull = _centres_of_plan(problem, owner, homes, homes_idx, free, tree, act)
        st.set_homes(homes)
        cost = st.total_cost()
        out.setdefault("cost_before", cost)
        if cost >= best_cost:
            for u in np.flatnonzero(owner != best_owner).tolist():
                st.move(u, int(best_owner[u]))
            _, pull = _centres_of_plan(problem, best_owner, homes, homes_idx, free, tree, act)
            out["undone"] = True
            break
        best_cost, best_owner = cost, owner
        if not changed or step == rounds:
            break
        if deadline is not None and time.perf_counter() > deadline:
            out["cut_short"] = True
            break
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


def _centres_of_plan(
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
    for j, c3, sel in _territory_centres(owner, free, xyz, w):
        point = lonlat_of(c3)
        if float(np.abs(homes[j] - point).max()) > 1e-6:
            changed = True
        homes[j] = point  # the centroid itself: the cost then is the distance to the territory's centre
        unit = _nearest_free_unit(tree, act, c3, taken, 8)
        if unit is not None:
            homes_idx[j] = unit  # reported home: the unit nearest the centre
        drift[j] = centre_drift(xyz[sel], w[sel], c3)
    return changed, drift


def _fragment_arcs(problem: Problem, owner: np.ndarray, homes: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Keys ``u * K + k`` of units outside the main (fixed, else heaviest) piece of their territory."""
    st = State(problem, owner, homes, fixed)
    keys: list[int] = []
    for k in range(problem.k):
        parts = st.pieces(k)
        if len(parts) <= 1:
            continue
        scored = sorted(
            ((0 if any(st.fixed[u] == k for u in part) else 1, -sum(st.w[u] for u in part), part[0]), part)
            for part in parts
        )
        parts = [part for _, part in scored]
        for part in parts[1:]:
            keys.extend(u * problem.k + k for u in part if st.fixed[u] < 0)
    return np.array(sorted(keys), dtype=np.int64)


def _plan_violations(problem: Problem, owner: np.ndarray) -> list[str]:
    """Hard-rule violations of a plan (the solver's own quick test, not the independent checker)."""
    st = State(problem, owner, np.nan_to_num(problem.home_points), np.full(problem.n, -1, dtype=np.int64))
    out = []
    if st.total_viol() > 0:
        out.append("balance")
    if problem.options.contiguity and any(len(st.pieces(k)) > 1 for k in range(problem.k)):
        out.append("contiguity")
    if any(o < 0 for u, o in enumerate(st.owner) if st.active[u]):
        out.append("coverage")
    if st.budget_units is not None and st.moved_units > st.budget_units:
        out.append("budget")
    if st.budget_w is not None and st.moved_w > st.budget_w:
        out.append("budget")
    lk = problem.locked_owner
    if any(lk[u] >= 0 and owner[u] != lk[u] for u in range(problem.n)):
        out.append("locks")
    return out


def _build_solution(
    problem: Problem,
    homes: np.ndarray,
    owner: np.ndarray,
    bound: float,
    bound_note: str,
    mode: str,
    status_hint: str,
    details: dict[str, Any],
    notes: list[str],
) -> Solution:
    opts = problem.options
    act = problem.active
    k = problem.k
    ids = problem.unit_ids
    rep_ids = [r.id for r in problem.reps]
    names = problem.measure_names
    w = problem.workload
    assign = {
        ids[u]: (rep_ids[int(owner[u])] if act[u] and owner[u] >= 0 else None) for u in range(problem.n)
    }
    lo, hi = problem.bounds
    tgt = problem.targets
    loads: dict[str, dict[str, float]] = {r: {} for r in rep_ids}
    maxdev: dict[str, float] = {}
    meandev: dict[str, float] = {}
    violations: list[str] = []
    sel = act & (owner >= 0)
    for j, m in enumerate(names):
        ld = np.bincount(owner[sel], weights=problem.measures[m][sel], minlength=k)
        for i, r in enumerate(rep_ids):
            loads[r][m] = float(ld[i])
        dev = np.abs(ld - tgt[:, j]) / np.where(tgt[:, j] > 0, tgt[:, j], 1.0)
        maxdev[m] = float(dev.max()) if k else 0.0
        meandev[m] = float(dev.mean()) if k else 0.0
        bad = np.flatnonzero((ld > hi[:, j] * (1 + 1e-12) + 1e-9) | (ld < lo[:, j] * (1 - 1e-12) - 1e-9))
        if len(bad):
            violations.append(f"{len(bad)} territory(ies) outside the {m} band, e.g. {rep_ids[int(bad[0])]}")
    missing = np.flatnonzero(act & (owner < 0))
    if len(missing):
        violations.append(f"{len(missing)} unit(s) without owner")
    st = State(problem, owner, homes, np.full(problem.n, -1, dtype=np.int64))
    pieces = {rep_ids[i]: len(st.pieces(i)) for i in range(k)}
    if opts.contiguity:
        broken = [r for r, p in pieces.items() if p > 1]
        if broken:
            violations.append(f"{len(broken)} territory(ies) in more than one piece, e.g. {broken[0]}")
    fixed_bad = [
        u for u in np.flatnonzero(problem.locked_owner >= 0).tolist() if owner[u] != problem.locked_owner[u]
    ]
    if fixed_bad:
        violations.append(f"{len(fixed_bad)} locked unit(s) not with their rep")
    d = haversine_km(problem.centroids[sel], homes[owner[sel]])
    wd = float((w[sel] * d).sum())
    objective = wd
    moved_units = moved_w = None
    cur = problem.current_owner
    if cur is not None and opts.current is not None:
        base = act & np.array([u in opts.current for u in ids])
        mv = base & (owner != cur)
        moved_units = float(mv.sum() / max(base.sum(), 1))
        moved_w = float(w[mv].sum() / max(w[base].sum(), 1e-12))
        objective += float(opts.disruption_weight) * float(w[mv].sum())
        if opts.max_moved_units is not None and moved_units > opts.max_moved_units + 1e-12:
            violations.append(f"disruption {moved_units:.2%} of units exceeds the budget")
        if opts.max_moved_workload is not None and moved_w > opts.max_moved_workload + 1e-12:
            violations.append(f"disruption {moved_w:.2%} of workload exceeds the budget")
    total_w = float(w[sel].sum())
    xyz = problem.unit_xyz
    centre = 0.0
    for i in range(k):
        mem = sel & (owner == i)
        if not mem.any():
            continue
        ww = w[mem]
        c = spherical_centre(xyz[mem], ww)
        if c is None:
            c = xyz[mem][0]
        ang = np.arccos(np.clip(xyz[mem] @ c, -1, 1))
        centre += float((ww * ang).sum()) * EARTH_RADIUS_KM
    pp: dict[str, float] = {}
    if problem.area is not None and problem.perimeter is not None and problem.shared_border is not None:
        e = problem.edges
        same = (owner[e[:, 0]] == owner[e[:, 1]]) & (owner[e[:, 0]] >= 0)
        internal = np.bincount(owner[e[same, 0]], weights=problem.shared_border[same], minlength=k)
        area = np.bincount(owner[sel], weights=problem.area[sel], minlength=k)
        per = np.bincount(owner[sel], weights=problem.perimeter[sel], minlength=k) - 2 * internal
        for i, r in enumerate(rep_ids):
            pp[r] = float(4 * np.pi * area[i] / per[i] ** 2) if per[i] > 0 else float("nan")
    gap = None
    if np.isfinite(bound) and objective > 0:
        gap = max(0.0, (objective - bound) / objective)
    elif objective == 0:
        gap = 0.0
    if violations:
        status = "no_solution"
    elif status_hint == "optimal":
        status = "optimal"
    else:
        status = "feasible"
    return Solution(
        status=status,  # type: ignore[arg-type]
        assignment=assign,
        loads=loads,
        max_deviation=maxdev,
        mean_deviation=meandev,
        pieces=pieces,
        objective=objective,
        weighted_distance=wd,
        avg_distance_to_home_km=wd / total_w if total_w > 0 else None,
        avg_distance_to_centre_km=centre / total_w if total_w > 0 else None,
        polsby_popper=pp,
        moved_units=moved_units,
        moved_workload=moved_w,
        lower_bound=float(bound) if np.isfinite(bound) else None,
        gap=gap,
        bound_note=bound_note,
        mode=mode,
        seed=problem.options.seed,
        notes=notes,
        violations=violations,
        details=details,
    )
