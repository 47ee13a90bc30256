"""The CP-SAT territory model shared by the exact mode and the window polishing.

Variables ``x[u, t]`` (unit u in territory t) with exactly one territory per unit; contiguity of every
territory by a single-commodity flow from its root (a fixed root unit, or a root chosen by the model); loads
inside the band (hard, or soft with a penalty when repairing); optional hard disruption budget; objective:
integer-scaled workload x km to the rep home (+ disruption weight).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.sat.python import cp_model


@dataclass
class ModelInput:
    units: list[int]  # global unit indices in the model
    terrs: list[int]  # global rep indices in the model
    cost: np.ndarray  # (len(units), len(terrs)) float cost (workload x km, + disruption)
    vals: np.ndarray  # (len(units), M) measures
    lo: np.ndarray  # (len(terrs), M) band for the loads of these units (already net of outside units)
    hi: np.ndarray
    edges: list[tuple[int, int]]  # local index pairs
    roots: list[int | None]  # local unit index fixed as root of each territory (None = model chooses)
    fixed: dict[int, int]  # local unit -> local territory
    allowed: list[list[int]] | None = None  # per local unit, allowed local territories (None = all)
    hint: list[int] | None = None  # local territory per unit
    soft_balance: bool = False
    contiguity: bool = True
    moved_budget: tuple[float | None, float | None, list[int], list[float]] | None = None
    # (max moved units, max moved workload, current local territory per unit or -1 outside, workload)


@dataclass
class ModelResult:
    status: str
    assign: list[int] | None
    objective: float | None
    bound: float | None


def _tree_flows(mi: ModelInput, nu: int, nt: int) -> dict[tuple[int, int, int], int]:
    """Flows of a BFS tree from each root inside the hinted territories (completes the hint)."""
    assert mi.hint is not None
    adj: list[list[int]] = [[] for _ in range(nu)]
    for a_, b_ in mi.edges:
        adj[a_].append(b_)
        adj[b_].append(a_)
    out: dict[tuple[int, int, int], int] = {}
    for t in range(nt):
        root = mi.roots[t]
        mem = [i for i in range(nu) if mi.hint[i] == t]
        if not mem:
            continue
        if root is None or mi.hint[root] != t:
            root = mem[0]
        parent = {root: -1}
        order = [root]
        memset = set(mem)
        for x_ in order:
            for y in adj[x_]:
                if y in memset and y not in parent:
                    parent[y] = x_
                    order.append(y)
        size = dict.fromkeys(order, 1)
        for x_ in reversed(order[1:]):
            size[parent[x_]] += size[x_]
            out[parent[x_], x_, t] = size[x_]
    return out


def solve_model(
    mi: ModelInput,
    *,
    seed: int,
    workers: int,
    det_time: float,
    wall_time: float,
    should_stop: Callable[[], bool] | None = None,
) -> ModelResult:
    """Build and solve the model; ``should_stop`` (polled every 0.1 s from a helper thread) ends the search
    early with status ``"stopped"`` and no plan."""
    m = cp_model.CpModel()
    nu, nt = len(mi.units), len(mi.terrs)
    allowed = mi.allowed or [list(range(nt)) for _ in range(nu)]
    x: dict[tuple[int, int], Any] = {}
    for i in range(nu):
        opts = [mi.fixed[i]] if i in mi.fixed else allowed[i]
        for t in opts:
            x[i, t] = m.new_bool_var(f"x{i}_{t}")
        m.add_exactly_one(x[i, t] for t in opts)
    # loads (integer-scaled per measure)
    nm = mi.vals.shape[1]
    penalties = []
    pen_hints: list[tuple[Any, int]] = []
    for j in range(nm):
        col = mi.vals[:, j]
        finite = np.isfinite(mi.hi[:, j])
        if not finite.any():
            continue
        ref = max(float(np.abs(mi.hi[finite, j]).max()), float(col.sum()), 1e-12)
        scale = 1e5 / ref
        a = np.rint(col * scale).astype(np.int64)
        for t in range(nt):
            if not np.isfinite(mi.hi[t, j]):
                continue
            terms = [(int(a[i]), x[i, t]) for i in range(nu) if (i, t) in x and a[i] != 0]
            expr = sum(c * v for c, v in terms) if terms else 0
            lo_i = int(np.ceil(mi.lo[t, j] * scale - 1e-6))
            hi_i = int(np.floor(mi.hi[t, j] * scale + 1e-6))
            if mi.soft_balance:
                over = m.new_int_var(0, int(a.sum()) + abs(hi_i) + 1, f"ov{t}_{j}")
                under = m.new_int_var(0, abs(lo_i) + 1, f"un{t}_{j}")
                m.add(expr - over <= hi_i)
                m.add(expr + under >= lo_i)
                penalties.extend([over, under])
                if mi.hint is not None:
                    # complete the hint: the hinted plan's own violations, so CP-SAT starts from it
                    load = sum(int(a[i]) for i in range(nu) if mi.hint[i] == t)
                    pen_hints.append((over, max(0, load - hi_i)))
                    pen_hints.append((under, max(0, lo_i - load)))
            else:
                m.add(expr <= hi_i)
                m.add(expr >= lo_i)
    flow_vars: dict[tuple[int, int, int], Any] = {}
    # contiguity
    if mi.contiguity:
        adj: list[list[int]] = [[] for _ in range(nu)]
        for a_, b_ in mi.edges:
            adj[a_].append(b_)
            adj[b_].append(a_)
        for t in range(nt):
            members = [i for i in range(nu) if (i, t) in x]
            if len(members) <= 1:
                continue
            cap = len(members)
            root = mi.roots[t]
            rvar: dict[int, Any] = {}
            if root is None:
                for i in members:
                    rvar[i] = m.new_bool_var(f"r{i}_{t}")
                    m.add_implication(rvar[i], x[i, t])
                m.add_exactly_one(rvar.values())
            inflow: dict[int, list[Any]] = {i: [] for i in members}
            outflow: dict[int, list[Any]] = {i: [] for i in members}
            mem = set(members)
            for i in members:
                for j2 in adj[i]:
                    if j2 in mem and j2 != root:
                        f = m.new_int_var(0, cap - 1, f"f{i}_{j2}_{t}")
                        flow_vars[i, j2, t] = f
                        m.add(f <= (cap - 1) * x[i, t])
                        m.add(f <= (cap - 1) * x[j2, t])
                        outflow[i].append(f)
                        inflow[j2].append(f)
            for i in members:
                if i == root:
                    continue
                net = sum(inflow[i]) - sum(outflow[i])
                if root is None:
                    m.add(net >= x[i, t] - cap * rvar[i])
                else:
                    m.add(net >= x[i, t])
    # hard disruption budget (over the units in the model)
    if mi.moved_budget is not None:
        max_u, max_w, cur, wts = mi.moved_budget
        moved_terms_u = []
        moved_terms_w = []
        wscale = 1e6 / max(sum(wts), 1e-12)
        for i in range(nu):
            if cur[i] < 0:
                continue
            stay = x.get((i, cur[i]))
            mv = 1 - stay if stay is not None else 1
            moved_terms_u.append(mv)
            moved_terms_w.append(int(round(wts[i] * wscale)) * mv)
        if max_u is not None:
            m.add(sum(moved_terms_u) <= int(np.floor(max_u + 1e-9)))
        if max_w is not None:
            m.add(sum(moved_terms_w) <= int(np.floor(max_w * wscale + 1e-6)))
    # objective
    finite_cost = mi.cost[np.isfinite(mi.cost)]
    cref = float(np.abs(finite_cost).max()) if finite_cost.size else 1.0
    cscale = 1e6 / max(cref, 1e-12)
    cost_terms: list[Any] = []
    for (i, t), v in x.items():
        c = int(round(float(mi.cost[i, t]) * cscale))
        if c:
            cost_terms.append(c * v)
    obj = sum(cost_terms) if cost_terms else 0
    if penalties:
        # repair windows: restore balance first; cost is left to the polishing windows
        m.minimize(sum(penalties))
    else:
        m.minimize(obj)
    if mi.hint is not None:
        for (i, t), v in x.items():
            m.add_hint(v, 1 if mi.hint[i] == t else 0)
        for var, val in pen_hints:
            m.add_hint(var, val)
        if flow_vars:
            for (i, j2, t), val in _tree_flows(mi, nu, nt).items():
                if (i, j2, t) in flow_vars:
                    m.add_hint(flow_vars[i, j2, t], val)
    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.random_seed = int(seed)
    prm.num_workers = max(1, int(workers))
    if workers > 1:
        prm.interleave_search = True
    prm.max_deterministic_time = float(det_time)
    prm.max_time_in_seconds = float(wall_time)
    prm.log_search_progress = False
    # CP-SAT's own Ctrl-C handler ends the search like a time limit, but installed from any thread other than
    # the main one it aborts the whole process on SIGINT (std::bad_function_call): a worker thread, or
    # `territory rebalance --local`, leaves Ctrl-C to Python instead
    prm.catch_sigint_signal = threading.current_thread() is threading.main_thread()
    if should_stop is None:
        st = solver.solve(m)
    else:
        stopped = _SearchStopper(should_stop, solver)
        try:
            st = solver.solve(m)
        finally:
            stopped.done.set()
            stopped.join()
        if stopped.fired:
            return ModelResult("stopped", None, None, None)
    name = solver.status_name(st).lower()
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return ModelResult("infeasible" if st == cp_model.INFEASIBLE else name, None, None, None)
    assign = [-1] * nu
    for (i, t), v in x.items():
        if solver.boolean_value(v):
            assign[i] = t
    # objective and bound back in cost units (penalties only in soft mode)
    objv = solver.objective_value / cscale if not penalties else None
    # integer rounding of the costs moves each selected term by at most 0.5 scaled units
    bnd = (solver.best_objective_bound - 0.5 * nu) / cscale if not penalties else None
    return ModelResult("optimal" if st == cp_model.OPTIMAL else "feasible", assign, objv, bnd)


class _SearchStopper(threading.Thread):
    """Polls ``should_stop`` every 0.1 s while CP-SAT searches and stops the search when it returns True."""

    def __init__(self, should_stop: Callable[[], bool], solver: cp_model.CpSolver) -> None:
        super().__init__(daemon=True, name="cp-sat-stop")
        self.should_stop, self.solver = should_stop, solver
        self.done = threading.Event()
        self.fired = False
        self.start()

    def run(self) -> None:
        while not self.done.wait(0.1):
            if self.should_stop():
                self.fired = True
                self.solver.stop_search()
                return
