"""``solve``: pre-check, then the exact CP-SAT model (small) or the large-scale heuristic pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .centres import choose_centres
from .clock import Cancelled, Clock
from .crowding import crowded_regions
from .geo import EARTH_RADIUS_KM, haversine_km, spherical_centre
from .heuristic import construct_plan, heuristic_plan
from .local_search import State
from .pendant import strengthen
from .precheck import precheck
from .problem import Problem
from .relaxation import relaxation_for_homes
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

#: crowded regions named in the notes (all of them are in ``details["crowded_regions"]``)
MAX_CROWDED_NOTES = 3


def solve(
    problem: Problem,
    should_stop: Callable[[], bool] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> Solution:
    """Solve a territory problem.

    Parameters
    ----------
    problem : Problem
    should_stop : callable, optional
        Polled (from this thread, and from a helper thread while the exact model searches) between stages and
        in every long loop: Lloyd rounds, improvement passes, chains, cluster rebuilds, re-centring steps,
        windows. When it returns True the solve stops (national instance: within 1.5 s) and raises
        :class:`~optimizer.Cancelled`; a job queue passes its cancel flag here. While it returns False the
        solution is the same as without it.
    on_stage : callable, optional
        Told the name of each stage as it starts (from this thread): ``"pre-check"``, ``"centre choice"``
        (centres chosen), ``"construction"``, ``"improvement moves"``, ``"re-centring"``,
        ``"cluster rebuilds"``, ``"boundary flow"``, ``"window polishing"``, ``"lower bound"``,
        ``"the exact model"``; the improvement stages alternate. A job queue shows it as the job's progress.
        It must return quickly.

    Returns
    -------
    Solution
        ``infeasible`` with reasons when the pre-check proves the request impossible; otherwise the best plan
        found with loads, deviations, compactness, disruption, the lower bound and the gap, and (in
        ``notes`` and ``details["crowded_regions"]``) the regions where the homes send reps away from home in
        every contiguous plan (:func:`~optimizer.crowding.crowded_regions`).

    Raises
    ------
    Cancelled
        ``should_stop`` returned True.

    Notes
    -----
    The same problem and seed give the same solution (``to_dict(timings=False)`` byte for byte): every stage
    is bounded by deterministic work limits. ``options.time_limit`` is only a guard on the optional polishing
    stages; when it cuts one short, ``notes`` says so and that run may differ from an unhurried one.
    """
    clock = Clock(should_stop, on_stage)
    opts = problem.options
    clock.check("pre-check")
    pre = precheck(problem, warnings=False)  # the crowded regions are looked for after the plan
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
    if (
        opts.final_bound
        and att.mode == "heuristic"
        and (recentred or problem.tolerance_of(problem.workload_name) is not None)
    ):
        # the bound's own flow, on the real band: the construction's flow ran on a band shrunk to 80 % of the
        # tolerance, and its prices give a weaker Lagrangian value on the real band (national K=500, sampled
        # homes: 0.044 % lower); when the centres moved after the relaxation, the bound must also be for the
        # final centres
        label = "transport_recentred" if recentred else "transport_bound"
        clock.check("lower bound")
        final_bound, tr = relaxation_for_homes(
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
    elif recentred:  # final_bound=False (re-centring happens in heuristic mode only)
        bound = -np.inf  # the relaxation was for the centres before they moved: no bound for the final ones
        notes.append("final_bound=False: no bound for the centres the plan moved to")
    details["homes"] = {
        r.id: problem.unit_ids[int(h)] for r, h in zip(problem.reps, att.homes_idx.tolist(), strict=True)
    }
    # reps the geography sends away from home in every contiguous plan, a cost the bound cannot see: looked
    # for here, not in the pre-check, so that its 0.45 s on the national graph leave the time-guarded
    # polishing alone; not for the cluster rebuilds' sub-problems (final_bound=False)
    crowded = crowded_regions(problem) if opts.final_bound else []
    if crowded:
        details["crowded_regions"] = [c.to_dict() for c in crowded]
        notes.extend(c.note() for c in crowded[:MAX_CROWDED_NOTES])
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
    problem: Problem, mode: str, centre_seed: int, clock: Clock, notes: list[str], give_up_unbalanced: bool
) -> _Attempt:
    """Homes (given, or chosen with ``centre_seed``), the relaxation and its bound, then the exact model or
    the heuristic pipeline for them."""
    opts = problem.options
    owner: np.ndarray | None = None
    centre_info: dict[str, Any] = {}
    # the centre choice is fixed work (national K=200: 25 s of 60); on a machine slowed down it may not take
    # more than half the time limit, so that the plan and its bound still fit
    deadline = clock.deadline(0.5, opts.time_limit) if mode == "heuristic" else None
    homes_idx = choose_centres(
        problem,
        centre_seed,
        info=centre_info,
        deadline=deadline,
        checkpoint=partial(clock.check, "centre choice"),
    )
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
    clock.check("construction")

    quick: State | None = None
    quick_arcs = None
    hard_budget = problem.has_move_budget
    if mode == "heuristic" and opts.contiguity and not hard_budget:
        # a first plan from a single flow on the nearest-home arcs (no pricing rounds yet): it has fewer
        # long arcs across water, so on national K=200 it balances at once; the full relaxation (bound,
        # prices and the usual construction) continues from its arcs and the cheaper balanced
        # construction wins
        _, tq = relaxation_for_homes(
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
        quick = construct_plan(problem, tq["owner"], homes, fixed, quick_info, "quick")
        clock.lap("construct_quick")
        if quick.total_viol() == 0:
            clock.stages["first_feasible_at"] = round(clock.elapsed(), 4)
    bound, tr_notes = relaxation_for_homes(problem, homes, fixed, clock, init_arcs=quick_arcs)
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
        heuristic_plan,
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
        except Cancelled:
            raise
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
    km_sum = np.bincount(owner[sel], weights=w[sel] * d, minlength=k)
    wname = problem.workload_name
    to_home = {
        r: float(km_sum[i] / loads[r][wname]) if loads[r][wname] > 0 else float("nan")
        for i, r in enumerate(rep_ids)
    }
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
        distance_to_home_km=to_home,
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
