"""The transportation relaxation for a set of homes with the locked units folded in: bound, prices, start."""

from __future__ import annotations

from typing import Any

import numpy as np

from .bound import cost_rows, transport
from .clock import Clock
from .geo import haversine_km
from .problem import Problem


def relaxation_for_homes(
    problem: Problem,
    homes: np.ndarray,
    fixed: np.ndarray,
    clock: Clock,
    shrink: np.ndarray | float = 0.8,
    max_rounds: int = 8,
    init_arcs: tuple[np.ndarray, np.ndarray] | None = None,
    banned: np.ndarray | None = None,
    label: str = "transport",
    with_bound: bool = True,
    price_last: bool = False,
) -> tuple[float, dict[str, Any]]:
    """Solve the relaxation for ``homes`` with the units ``fixed`` to a rep counted in its load and cost.

    The flow runs on the workload band shrunk to ``shrink`` of the tolerance (room for the repairs that
    follow); the returned bound is the Lagrangian value on the real band (-inf with ``with_bound=False``).
    Returns ``(bound, info)``: ``info`` holds the start plan (``owner``: fixed units kept, units the flow left
    undecided at their cheapest priced rep), the ``prices``, the candidate ``arcs`` (to warm-start the next
    flow) and the flow's statistics. The stage time is recorded under ``label``.
    """
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
