"""The large-scale pipeline for fixed homes: construction, local search, chains, cluster rebuilds,
re-centring, boundary flow and window polishing."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import numpy as np

from .boundary_flow import improve_boundary_flow
from .centres import recentre
from .chains import improve_chains
from .clock import Clock
from .local_search import State
from .matching import movable_reps, rematch
from .problem import Problem
from .rebuild import rebuild_clusters
from .relaxation import relaxation_for_homes

#: share of the time limit after which no cluster rebuild starts (and at least 5 % before the window
#: polishing's stop, which gets the rest): national K=500 with the seed-3 homes gained 2.2 % in the first 25
#: rebuilds, 0.08 % in rebuilds 126-150 (at 0.85 of 120 s: 5.63 %; at 0.7: 5.64-5.68 %, at 0.55: 5.84 %)
REBUILD_STOP = 0.7

#: the boundary flow runs twice: before the window polishing, for at most this share of the time left until
#: the polishing's stop ...
FLOW_FIRST_SHARE = 0.4

#: ... and after it, for at most this share of the time kept after that stop (the rest is for the last
#: re-centring and the final bound; national K=500 with sampled homes: stop at 96 s, flow until 105.6 s, the
#: bound 2-3 s)
FLOW_SHARE = 0.4


def heuristic_plan(
    problem: Problem,
    homes: np.ndarray,
    fixed: np.ndarray,
    start_owner: np.ndarray,
    prices: np.ndarray,
    clock: Clock,
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
        return construct_plan(problem, initial, homes, fixed, info, label)

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
        frag = fragment_arcs(problem, raw_owner, homes, fixed)
        if len(frag) == 0:
            break
        banned.append(frag)
        _, tr = relaxation_for_homes(
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
            time_left=lambda: clock.seconds_left(opts.time_limit * 0.8, "repair windows"),
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
    st.checkpoint = partial(clock.check, "improvement moves")
    movable = movable_reps(problem, fixed)
    matching = len(movable) > 1  # which rep owns which territory is free for at least two reps
    if matching:
        info["rematch"] = [rematch(st, movable)]
    info["improve_moves"] = st.improve()
    if opts.contiguity:
        info["swaps"] = st.improve_swaps()
        info["improve_moves"] += st.improve(max_passes=5)
    free = np.flatnonzero(problem.home_units < 0)
    recentring = bool(len(free)) and not opts.anchor_homes and opts.recentre_rounds > 0
    # the reported home units of the chosen centres, when the solver moves them (None: it does not)
    centre_idx = homes_idx if recentring else None
    # the polishing (chains, windows) stops at this share of the time limit
    stop_at = window_stop(opts.time_limit) if centre_idx is not None else 0.8
    stop = clock.deadline(stop_at, opts.time_limit)

    def recentre_now(deadline: float | None, drift: bool = True) -> dict[str, Any]:
        """Re-centre the solver's own centres on the plan (only when it moves them)."""
        assert centre_idx is not None
        return recentre(
            problem,
            st,
            homes,
            centre_idx,
            free,
            opts.recentre_rounds,
            deadline=deadline,
            drift=drift,
            checkpoint=partial(clock.check, "re-centring"),
        )

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
            clock=clock,
        )
        if info["rebuild"]["cut_short"]:
            notes.append("time_limit guard cut the cluster rebuilds short (run may differ under load)")
        clock.lap("rebuild")
    if polish and centre_idx is not None:
        info["recentre"] = recentre_now(deadline=stop)
        clock.lap("recentre")
    flowing = polish and opts.boundary_flow_rounds > 0 and cur is None

    def flow_phase(first_round: int, rounds: int, until: float) -> None:
        """Rounds of boundary flow until ``until`` x the time limit."""
        res = improve_boundary_flow(
            st,
            rounds=rounds,
            seed=opts.seed,
            first_round=first_round,
            deadline=clock.deadline(until, opts.time_limit),
            checkpoint=partial(clock.check, "boundary flow"),
        )
        info.setdefault("boundary_flow", []).append(res)
        if res["cut_short"]:
            notes.append("time_limit guard cut the boundary flow short (run may differ under load)")
        clock.lap("boundary_flow")

    if flowing:
        # before the windows, which then polish what the flow moved (national K=500, seed-3 homes, from the
        # rebuilt plan: flow, windows, flow 0.86 % in 40 s; windows then flow 0.67 % in 36 s)
        now = clock.elapsed() / opts.time_limit if opts.time_limit > 0 else 0.0
        flow_phase(0, opts.boundary_flow_rounds, now + (stop_at - now) * FLOW_FIRST_SHARE)
    windowing = polish and opts.window_rounds > 0 and opts.contiguity
    if windowing:
        from .windows import polish_windows

        # with re-centring, keep time for the last Lloyd step and the bound for the final centres
        between = None
        if centre_idx is not None or matching:

            def between() -> None:
                # the next round's windows are ranked for the best rep of each territory and the new centres
                if matching:
                    info["rematch"].append(rematch(st, movable))
                if centre_idx is not None:
                    info.setdefault("recentre_between", []).append(recentre_now(deadline=stop))

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
    flow_stop = stop_at
    if flowing:
        flow_stop = stop_at + (1.0 - stop_at) * FLOW_SHARE
        flow_phase(opts.boundary_flow_rounds, max(1, opts.boundary_flow_rounds // 2), flow_stop)
    if windowing and centre_idx is not None:
        # the last steps, for fixed centres (the bound's), may run into a quarter of the time kept
        final_stop = clock.deadline(flow_stop + (1.0 - stop_at) / 4, opts.time_limit)
        info["recentre_final"] = recentre_now(deadline=final_stop, drift=False)
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


def window_stop(time_limit: float) -> float:
    """Share of the time limit after which no window starts when the solver re-centres its own centres: keep
    max(10 % of the limit, min(18 s, 20 %)) for the last re-centring and the bound for the final centres
    (national K=200, 60 s: stop at 48 s = 0.8, about four times the 3 s they take there; K=500, 120 s: at
    102 s = 0.85, about twice their 6-7 s; counties, 10 s: at 8 s)."""
    if time_limit <= 0:
        return 0.7
    reserve = max(0.1 * time_limit, min(18.0, 0.2 * time_limit))
    return (time_limit - reserve) / time_limit


def construct_plan(
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


def fragment_arcs(problem: Problem, owner: np.ndarray, homes: np.ndarray, fixed: np.ndarray) -> np.ndarray:
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
