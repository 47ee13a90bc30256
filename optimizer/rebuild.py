"""Rebuild clusters of adjacent territories from scratch: a large-neighbourhood search with the solver itself.

The local moves, swaps, chains and windows change a plan a few units at a time, so they keep the large-scale
layout the construction chose. With population-weighted sampled homes that layout can be far off: on national
K=500 (seed-2 homes) a territory with its rep's home at Nampa, Idaho, ran 500 km south to take in Reno, while
the two Reno reps' territories lay elsewhere; undoing it means moving tens of thousands of people around a
ring of territories at once. Here the territories within a few hops of the worst one (by their excess over the
relaxation's prices) are cut out as a problem of their own (their units, the induced adjacency, their reps
with the same homes and the same target loads) and solved again by :func:`optimizer.solve` without window
polishing or chains: relaxation, construction, matching and local search see only the cluster. The new cluster
plan replaces the old one when it is cheaper and every rep's loads stay in their band; the units outside do
not move, so the rest of the plan stays contiguous and balanced.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .bound import cost_rows
from .local_search import territory_adjacency
from .problem import Problem, Rep

if TYPE_CHECKING:
    from .clock import Clock
    from .local_search import State

#: upper limit of a cluster rebuild's own time limit (s); the rebuilds measured took 0.02-2.4 s
SUB_TIME_LIMIT = 10.0


def unit_excess(
    state: State, prices: np.ndarray, rows: np.ndarray | None = None, chunk: int = 4096
) -> np.ndarray:
    """Workload x (reduced cost at the owner - least reduced cost) of units, at the relaxation's prices.

    Parameters
    ----------
    state : the plan; its homes are the rep homes the cost refers to.
    prices : (K,) the transportation relaxation's price per rep (reduced cost ``d_uk - prices[k]``).
    rows : the units to price (default: every unit with an owner).
    chunk : units per block of distances.

    Returns
    -------
    (n,) non-negative array, or one value per unit of ``rows``: how far each unit is from the rep the
    relaxation would give it, in the relaxation's own terms (0 for units without an owner).
    """
    p = state.p
    owner = state.owner_array()
    homes = state.home_points()
    units = np.flatnonzero(owner >= 0) if rows is None else rows[owner[rows] >= 0]
    out = np.zeros(p.n)
    for start in range(0, len(units), chunk):
        part = units[start : start + chunk]
        red = cost_rows(p.centroids, homes, part, None, 0.0) - prices[None, :]
        own = red[np.arange(len(part)), owner[part]]
        out[part] = p.workload[part] * (own - red.min(axis=1))
    return out if rows is None else out[rows]


def cluster_around(adj: list[set[int]], seed: int, rings: int) -> list[int]:
    """The territory ``seed`` and every territory at most ``rings`` hops from it, sorted."""
    cluster, ring = {seed}, {seed}
    for _ in range(rings):
        ring = set().union(*(adj[t] for t in ring)) - cluster
        cluster |= ring
    return sorted(cluster)


def cluster_problem(
    state: State, fixed: np.ndarray, reps: list[int], time_limit: float
) -> tuple[Problem, np.ndarray]:
    """The units of the territories ``reps`` as a problem of their own, and their indices in the full problem.

    Every rep keeps its home (as a point) and its target load per measure (as a capacity), units fixed to a
    rep stay locked to it, and the options are the full problem's without window polishing, current
    assignment, exclusions, cost-lowering chains (national K=500: 30 rebuilds with them gained 1.5 % in
    30 s, 80 without them 2.1 % in 29 s), boundary flow (87 rebuilds instead of 150 in the same time),
    rebuilds of its own or final bound (the rebuild compares costs, not bounds).
    """
    p = state.p
    owner = state.owner_array()
    units = np.flatnonzero(np.isin(owner, reps))
    local = np.full(p.n, -1, dtype=np.int64)
    local[units] = np.arange(len(units))
    inside = (local[p.edges[:, 0]] >= 0) & (local[p.edges[:, 1]] >= 0)
    homes = state.home_points()
    names = p.measure_names
    targets = p.targets
    sub_reps = [
        Rep(
            p.reps[r].id,
            (float(homes[r, 0]), float(homes[r, 1])),
            capacity={m: float(targets[r, j]) for j, m in enumerate(names)},
        )
        for r in reps
    ]
    locked = {p.unit_ids[u]: p.reps[int(fixed[u])].id for u in units.tolist() if fixed[u] >= 0}
    opts = replace(
        p.options,
        mode="heuristic",
        time_limit=time_limit,
        window_rounds=0,
        chain_work=0,
        rebuild_clusters=0,
        boundary_flow_rounds=0,
        final_bound=False,
        locked=locked,
        excluded=(),
        current=None,
        max_moved_units=None,
        max_moved_workload=None,
        anchor_homes=False,
    )
    sub = Problem(
        [p.unit_ids[u] for u in units.tolist()],
        {m: p.measures[m][units] for m in names},
        p.centroids[units],
        local[p.edges[inside]],
        sub_reps,
        opts,
        p.is_bridge[inside],
    )
    return sub, units


def rebuild_clusters(
    state: State,
    fixed: np.ndarray,
    prices: np.ndarray,
    *,
    rings: int = 2,
    max_clusters: int = 150,
    deadline: float | None = None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Re-solve clusters of territories around the costliest ones and keep every cheaper result, in place.

    Parameters
    ----------
    state : the plan (balanced, contiguous), with the rep homes the cost refers to and no current assignment.
    fixed : (n,) rep index a unit is fixed to (-1: free).
    prices : (K,) the transportation relaxation's prices; territories are tried in decreasing order of the
        excess of their units over them (:func:`unit_excess`), each at most once as the centre of a cluster.
    rings : a cluster is the territory and every territory at most this many hops away.
    max_clusters : how many clusters to re-solve at most (a deterministic work limit).
    deadline : ``time.perf_counter()`` value after which no cluster starts.
    clock : the solve's clock; its stop request is checked before every cluster and passed to the sub-solves
        (:class:`~optimizer.clock.Cancelled` then propagates).

    Returns
    -------
    ``{"tried": n, "kept": m, "gain": g, "cut_short": bool}``: clusters re-solved, clusters replaced, the cost
    saved and whether the deadline stopped the search.
    """
    from .solver import solve  # the solver calls this module

    p = state.p
    info: dict[str, Any] = {"tried": 0, "kept": 0, "gain": 0.0, "cut_short": False}
    rep_index = p.rep_index
    excess = unit_excess(state, prices)

    def plan_now() -> tuple[np.ndarray, list[set[int]], np.ndarray]:
        """The plan, its territory adjacency and its excess per territory (they change only when a rebuild
        is kept)."""
        owner = state.owner_array()
        per_territory = np.bincount(owner[owner >= 0], weights=excess[owner >= 0], minlength=p.k)
        return owner, territory_adjacency(p, owner), per_territory

    owner, adjacency, per_territory = plan_now()
    tried: set[int] = set()
    for _ in range(min(max_clusters, p.k)):
        if deadline is not None and time.perf_counter() > deadline:
            info["cut_short"] = True
            break
        if clock is not None:
            clock.check("cluster rebuilds")
        order = [int(t) for t in np.argsort(-per_territory, kind="stable") if int(t) not in tried]
        if not order or per_territory[order[0]] <= 0:
            break
        centre = order[0]
        tried.add(centre)
        reps = cluster_around(adjacency, centre, rings)
        if len(reps) < 2:
            continue
        left = SUB_TIME_LIMIT if deadline is None else deadline - time.perf_counter()
        sub, units = cluster_problem(state, fixed, reps, max(1.0, min(SUB_TIME_LIMIT, left)))
        info["tried"] += 1
        sol = solve(sub, should_stop=None if clock is None else clock.should_stop)
        got = [sol.assignment.get(p.unit_ids[u]) for u in units.tolist()]
        if sol.status not in ("feasible", "optimal") or any(r is None for r in got):
            continue
        new = np.array([rep_index[str(r)] for r in got], dtype=np.int64)
        before = sum(state.cost(u, owner[u]) for u in units.tolist())
        after = sum(state.cost(u, int(b)) for u, b in zip(units.tolist(), new.tolist(), strict=True))
        if not after < before * (1 - 1e-9) or not _in_band(state, units, new, reps):
            continue
        for u, b in zip(units.tolist(), new.tolist(), strict=True):
            if owner[u] != b:
                state.move(u, b)
        excess[units] = unit_excess(state, prices, units)
        owner, adjacency, per_territory = plan_now()
        info["kept"] += 1
        info["gain"] += before - after
    return info


def _in_band(state: State, units: np.ndarray, new: np.ndarray, reps: list[int]) -> bool:
    """No rep of the cluster fits its band worse with the new plan than now (checked here: the cluster
    solve's own report is not relied on)."""
    vals = np.column_stack([state.p.measures[m][units] for m in state.p.measure_names])
    return all(state.viol_of(r, vals[new == r].sum(axis=0).tolist()) <= state.viol(r) + 1e-12 for r in reps)
