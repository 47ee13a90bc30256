"""Exact mode: one CP-SAT model over every unit and rep (flow contiguity, hard balance, locks, budget)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .clock import Cancelled
from .cpsat import ModelInput, solve_model
from .problem import Problem


def solve_exact(
    problem: Problem, homes: np.ndarray, fixed: np.ndarray, hint: np.ndarray | None, clock: Any
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Solve the whole problem with CP-SAT; returns (owner or None, info with status/objective/bound).

    Roots: the anchored home units when ``anchor_homes``, otherwise every territory chooses its own root.
    The reported bound is CP-SAT's best objective bound corrected for the integer scaling of the costs.
    """
    opts = problem.options
    act = np.flatnonzero(problem.active)
    loc = {int(u): i for i, u in enumerate(act.tolist())}
    k = problem.k
    cur = problem.current_owner
    lam = float(opts.disruption_weight) if cur is not None else 0.0
    from .geo import haversine_km

    w = problem.workload[act]
    d = haversine_km(problem.centroids[act][:, None, :], homes[None, :, :])
    cost = w[:, None] * d
    if lam and cur is not None:
        cost = cost + lam * w[:, None] * (np.arange(k)[None, :] != cur[act][:, None])
    vals = np.column_stack([problem.measures[m][act] for m in problem.measure_names])
    lo, hi = problem.bounds
    edges = sorted(
        {
            (min(loc[a], loc[b]), max(loc[a], loc[b]))
            for a, b in problem.edges.tolist()
            if a in loc and b in loc and a != b
        }
    )
    fx = {loc[u]: int(fixed[u]) for u in np.flatnonzero(fixed >= 0).tolist() if u in loc}
    roots: list[int | None] = [None] * k
    if opts.anchor_homes:
        hu = problem.home_units
        for j in range(k):
            if hu[j] >= 0 and int(hu[j]) in loc:
                roots[j] = loc[int(hu[j])]
    budget = None
    if cur is not None and problem.has_move_budget:
        current = opts.current or {}
        in_base = [problem.unit_ids[u] in current for u in act.tolist()]
        base_n = sum(in_base)
        base_w = float(sum(w[i] for i in range(len(act)) if in_base[i]))
        max_u = None if opts.max_moved_units is None else opts.max_moved_units * base_n
        max_w = None if opts.max_moved_workload is None else opts.max_moved_workload * base_w
        cur_loc = [int(cur[u]) if in_base[i] and cur[u] >= 0 else -1 for i, u in enumerate(act.tolist())]
        # units whose current rep is gone always count as moved
        forced = sum(1 for i, u in enumerate(act.tolist()) if in_base[i] and cur[u] < 0)
        forced_w = float(sum(w[i] for i, u in enumerate(act.tolist()) if in_base[i] and cur[u] < 0))
        budget = (
            None if max_u is None else max_u - forced,
            None if max_w is None else max_w - forced_w,
            cur_loc,
            w.tolist(),
        )
    h = None
    if hint is not None:
        h = [int(hint[u]) for u in act.tolist()]
    mi = ModelInput(
        units=act.tolist(),
        terrs=list(range(k)),
        cost=cost,
        vals=vals,
        lo=lo,
        hi=hi,
        edges=edges,
        roots=roots,
        fixed=fx,
        hint=h,
        soft_balance=False,
        contiguity=opts.contiguity,
        moved_budget=budget,
    )
    clock.check("the exact model")
    remaining = max(1.0, opts.time_limit - clock.elapsed())
    res = solve_model(
        mi,
        seed=opts.seed,
        workers=opts.workers,
        det_time=remaining,
        wall_time=remaining * 3,
        should_stop=clock.should_stop,
    )
    if res.status == "stopped":
        raise Cancelled("the exact model", clock.elapsed())
    clock.lap("exact_cpsat")
    info: dict[str, Any] = {"status": res.status, "objective": res.objective, "bound": res.bound}
    if res.assign is None:
        return None, info
    owner = np.full(problem.n, -1, dtype=np.int64)
    owner[act] = np.array(res.assign, dtype=np.int64)
    return owner, info
