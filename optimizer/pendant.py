"""Regions that one unit cuts off, and the stronger bound a territory they force gives (contiguous plans).

A territory is connected, so when removing one unit ``a`` separates a region from the rest, only the territory
that owns ``a`` can have units on both sides: every other territory touching the region lies wholly inside it.
Two consequences hold for every contiguous plan within the workload band ``[lo, hi]``:

* a region lighter than the smallest ``lo`` (a *bundle*, e.g. Hawaii at K=200) cannot hold a whole territory,
  so one territory holds all of it;
* a region ``R`` of workload ``W`` has at least ``ceil(W / max(hi) - 1)`` territories wholly inside, so the
  territory through its cut holds at most ``W - that * min(lo)`` of it. A bundle inside ``R`` heavier than
  that lies in a territory wholly inside ``R``.

The transportation relaxation cannot see this (it serves Hawaii fractionally from California while the plan
must reach it through Alaska). :func:`forced_territory_bound` adds it to the Lagrangian bound: for every rep
``r`` that could own the forced territory ``I`` (bundle inside ``I``, ``I`` inside ``R``, load of ``I`` in
``r``'s band), the Lagrangian of the other reps plus the exact cost of ``I`` (a fractional knapsack over
``R``) is a lower bound; the smallest over ``r`` is valid for every plan, and a few supergradient steps on
the prices raise it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bound import cost_rows
from .problem import Problem


@dataclass
class CutRegion:
    """Active units that removing the unit ``cut`` separates from the heaviest unit's side.

    ``first``/``last`` delimit the region in the depth-first post-order, so that region ``A`` lies inside
    region ``B`` exactly when ``B.first <= A.first`` and ``A.last <= B.last``.
    """

    cut: int
    units: np.ndarray
    workload: float
    first: int
    last: int

    def inside(self, other: CutRegion) -> bool:
        """Whether this region lies inside ``other``."""
        return other.first <= self.first and self.last <= other.last


@dataclass
class ForcedTerritory:
    """In every contiguous plan one territory holds all of ``bundle`` and lies wholly inside ``region``."""

    bundle: CutRegion
    region: CutRegion


def cut_regions(neighbors: Sequence[np.ndarray], active: np.ndarray, workload: np.ndarray) -> list[CutRegion]:
    """Every region that one active unit cuts off from the side of a central unit.

    Parameters
    ----------
    neighbors : sequence of int arrays
        Adjacency lists (bridges included), as ``Problem.neighbors``.
    active : (n,) bool array
        Units that belong to some territory; the others are left out of the graph.
    workload : (n,) float array

    Returns
    -------
    list of CutRegion
        One per (cut unit, separated side): the depth-first subtrees of a unit ``v`` whose low-link does not
        reach above its parent (Hopcroft-Tarjan). The search starts from the unit that no depth-first subtree
        of more than half the workload hangs below (found by a first search from the heaviest unit), so the
        small side of every cut is listed. Units outside that unit's component are not covered.
    """
    act = np.flatnonzero(active)
    if len(act) == 0:
        return []
    w = np.where(active, workload, 0.0).astype(float)
    root = int(act[np.argmax(w[act])])
    dfs = _DepthFirst(neighbors, active, w, root)
    total = dfs.sub_w[root]
    children: dict[int, list[int]] = {}
    for v in dfs.order:
        if dfs.parent[v] >= 0:
            children.setdefault(int(dfs.parent[v]), []).append(v)
    centre = root
    while True:  # walk down into the subtree heavier than half the workload, while there is one
        heavy = [c for c in children.get(centre, []) if dfs.sub_w[c] > total / 2]
        if not heavy:
            break
        centre = heavy[0]
    if centre != root:
        dfs = _DepthFirst(neighbors, active, w, centre)
    return dfs.regions()


class _DepthFirst:
    """An iterative depth-first search with low-links, subtree workloads and sizes."""

    def __init__(self, neighbors: Sequence[np.ndarray], active: np.ndarray, w: np.ndarray, root: int) -> None:
        n = len(w)
        disc = np.full(n, -1)
        low = np.zeros(n, dtype=np.int64)
        self.parent = parent = np.full(n, -1)
        self.sub_w = sub_w = w.copy()
        size = np.ones(n, dtype=np.int64)
        order: list[int] = []  # post-order
        disc[root] = low[root] = 0
        clock = 1
        stack = [(root, 0)]
        while stack:
            v, i = stack[-1]
            if i < len(neighbors[v]):
                stack[-1] = (v, i + 1)
                u = int(neighbors[v][i])
                if not active[u]:
                    continue
                if disc[u] < 0:
                    disc[u] = low[u] = clock
                    clock += 1
                    parent[u] = v
                    stack.append((u, 0))
                elif u != parent[v]:
                    low[v] = min(low[v], disc[u])
                continue
            stack.pop()
            order.append(v)
            a = parent[v]
            if a >= 0:
                low[a] = min(low[a], low[v])
                sub_w[a] += sub_w[v]
                size[a] += size[v]
        self.order, self.disc, self.low, self.size = order, disc, low, size

    def regions(self) -> list[CutRegion]:
        """The subtrees that their parent unit cuts off."""
        post = np.full(len(self.sub_w), -1, dtype=np.int64)
        post[np.array(self.order)] = np.arange(len(self.order))
        by_post = np.array(self.order)
        root = self.order[-1]
        root_cuts = int((self.parent == root).sum()) >= 2  # the root cuts only between two of its subtrees
        out = []
        for v in self.order:
            a = int(self.parent[v])
            if a >= 0 and self.low[v] >= self.disc[a] and (a != root or root_cuts):
                first, last = int(post[v] - self.size[v] + 1), int(post[v])
                units = np.sort(by_post[first : last + 1])
                out.append(CutRegion(a, units, float(self.sub_w[v]), first, last))
        return out


def forced_territories(regions: Sequence[CutRegion], lo_min: float, hi_max: float) -> list[ForcedTerritory]:
    """The (bundle, region) pairs that force a territory, one per largest bundle with its smallest region.

    A bundle is a region lighter than ``lo_min`` (one territory holds it all); it is kept only when no larger
    bundle contains it. Its region is the smallest region containing it whose territory through the cut cannot
    hold it (see the module docstring).
    """
    if lo_min <= 0 or not np.isfinite(hi_max) or hi_max <= 0:
        return []
    # regions are depth-first subtrees, so they nest or are disjoint: sorted by (first, -last), a bundle is
    # largest when the last largest one does not contain it
    bundles = sorted((r for r in regions if 0 < r.workload < lo_min), key=lambda r: (r.first, -r.last))
    largest: list[CutRegion] = []
    for b in bundles:
        if not largest or not b.inside(largest[-1]):
            largest.append(b)
    first = np.array([r.first for r in regions])
    last = np.array([r.last for r in regions])
    weight = np.array([r.workload for r in regions])
    fewest = territories_inside(weight, lo_min, hi_max)[0]
    through = weight - fewest * lo_min  # the most the territory through the cut can hold of the region
    out = []
    for b in largest:
        around = (first <= b.first) & (b.last <= last) & (weight > b.workload)
        hosts = np.flatnonzero(around & (fewest >= 1) & (through < b.workload))
        if len(hosts):
            r = regions[int(hosts[np.lexsort((hosts, last[hosts] - first[hosts]))[0]])]
            out.append(ForcedTerritory(b, r))
    return out


def territories_inside(workload: Any, lo_min: float, hi_max: float) -> tuple[Any, Any]:
    """(fewest, most) territories that lie wholly inside a cut-off region of ``workload``, over all plans.

    At most one territory crosses the cut and holds at most ``hi_max`` of the region; the others inside hold
    between ``lo_min`` and ``hi_max`` each. Arrays or scalars in, the same out.
    """
    w = np.asarray(workload, dtype=float)
    fewest = np.maximum(0, np.ceil(w / hi_max - 1 - 1e-12)).astype(np.int64)
    most = np.floor(w / lo_min + 1e-9).astype(np.int64)
    return fewest, most


@dataclass
class _Evaluation:
    value: float
    rep: int
    share: np.ndarray  # share of each unit of region - bundle in the forced territory


def _evaluate(
    costs: np.ndarray,
    w: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    prices: np.ndarray,
    bundle: np.ndarray,
    rest: np.ndarray,
    outside: np.ndarray,
) -> tuple[_Evaluation, np.ndarray, np.ndarray]:
    """min over reps r of the bound when r owns the forced territory, at ``prices``; also each unit's best
    and second-best rep."""
    red = costs - prices[None, :]
    rows = np.arange(len(red))
    best = red.argmin(axis=1)
    m = red[rows, best]
    red[rows, best] = np.inf
    second = red.argmin(axis=1)
    m2 = red[rows, second]
    b = np.where(prices > 0, lo, hi)
    lagrangian = float((w * m).sum() + (prices * b).sum())
    k = costs.shape[1]
    # units outside the region whose cheapest rep is r go to their second cheapest when r owns the territory
    leave = np.bincount(best[outside], weights=(w * (m2 - m))[outside], minlength=k)
    bundle_cost = w[bundle] @ costs[bundle] - float((w[bundle] * m[bundle]).sum())
    wr = w[rest]
    wb = float(w[bundle].sum())
    found = _Evaluation(np.inf, -1, np.zeros(len(rest)))
    for r in range(k):
        if wb + wr.sum() < lo[r]:
            continue  # r's territory could not reach its band inside the region
        stay = np.where(best[rest] == r, m2[rest], m[rest])
        out = wr * (stay - m[rest])
        gain = wr * (costs[rest, r] - m[rest]) - out
        load, extra = wb, 0.0
        share = np.zeros(len(rest))
        for j in np.argsort(gain / np.maximum(wr, 1e-12), kind="stable"):
            if load >= hi[r] or (load >= lo[r] and gain[j] >= 0):
                break
            room = (hi[r] if gain[j] < 0 else lo[r]) - load
            share[j] = min(1.0, room / wr[j]) if wr[j] > 0 else 1.0
            extra += share[j] * gain[j]
            load += share[j] * wr[j]
        if load < lo[r] - 1e-9 * max(lo[r], 1.0):
            continue
        value = lagrangian + float(bundle_cost[r]) - float(prices[r] * b[r]) + float(leave[r])
        value += float(out.sum()) + extra
        if value < found.value:
            found = _Evaluation(value, r, share)
    return found, best, second


def forced_territory_bound(
    costs: np.ndarray,
    w: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    prices: np.ndarray,
    forced: ForcedTerritory,
    upper: float,
    iterations: int = 40,
    step: float = 0.05,
    deadline: float | None = None,
    steps_from: float = -np.inf,
) -> tuple[float, dict[str, Any]]:
    """A lower bound on every contiguous plan's cost that knows one forced territory.

    Parameters
    ----------
    costs : (n, K) float array
        Cost per unit of workload of every unit with every rep (rows of inactive units are ignored if their
        workload is 0).
    w : (n,) float array
        Workload (0 for units outside every territory).
    lo, hi : (K,) float arrays
        Workload band of every rep.
    prices : (K,) float array
        Starting prices, e.g. the transportation relaxation's duals.
    forced : ForcedTerritory
    upper : float
        The cost of a known plan (target of the Polyak step sizes).
    iterations : int
        Supergradient steps after the first evaluation (fixed, for determinism).
    step : float
        Polyak step factor, times 0.8 every 10 steps.
    deadline : float, optional
        ``time.perf_counter()`` value after which no further step starts.
    steps_from : float, optional
        No step is taken when the first evaluation is below this value.

    Returns
    -------
    (float, dict)
        The best value found (a valid bound at every step) and what was done.
    """
    n = len(w)
    in_region = np.zeros(n, dtype=bool)
    in_region[forced.region.units] = True
    bundle = forced.bundle.units
    in_region[bundle] = False
    rest = np.flatnonzero(in_region)
    in_region[bundle] = True
    outside = np.flatnonzero(~in_region)
    pi = prices.astype(float).copy()
    best_value, steps, cut_short = -np.inf, 0, False
    first_value = np.nan
    for it in range(iterations + 1):
        ev, best, second = _evaluate(costs, w, lo, hi, pi, bundle, rest, outside)
        if ev.rep < 0:  # no rep's band fits the region: no plan is feasible, so there is nothing to bound
            return -np.inf, {"steps": steps, "note": "no rep can own the forced territory"}
        if it == 0:
            first_value = ev.value
        best_value = max(best_value, ev.value)
        if it == iterations or upper <= ev.value or ev.value < steps_from:
            break
        if deadline is not None and time.perf_counter() > deadline:
            cut_short = True
            break
        # supergradient: band minus the loads of the Lagrangian's assignment (the owner's price stays)
        target = np.where(best == ev.rep, second, best)
        keep = np.ones(n)
        keep[bundle] = 0.0
        keep[rest] = 1.0 - ev.share
        load = np.bincount(target, weights=w * keep, minlength=len(pi))
        g = np.where(pi > 0, lo, hi) - load
        g[ev.rep] = 0.0
        norm = float((g * g).sum())
        if norm == 0:
            break
        pi += step * (0.8 ** (it // 10)) * (upper - ev.value) / norm * g
        steps += 1
    return best_value, {
        "steps": steps,
        "first_value": first_value,
        "cut_short": cut_short,
        "bundle_cut": forced.bundle.cut,
        "region_cut": forced.region.cut,
    }


def strengthen(
    problem: Problem,
    homes: np.ndarray,
    owner: np.ndarray,
    fixed: np.ndarray,
    prices: np.ndarray,
    relaxation: float,
    deadline: float | None = None,
    iterations: int = 40,
    min_gain: float = 1e-3,
) -> tuple[float, dict[str, Any]] | None:
    """The forced-territory bound for a plan of ``problem`` (None when it does not apply).

    Applies with contiguity and a workload band, without locked units (the disruption weight is part of the
    costs; other measures and the move budget are relaxed, which keeps the bound valid), when the graph forces
    a territory. Of several forced territories the one whose first evaluation is highest gets the steps, and
    only when that evaluation beats ``relaxation`` (the bound so far) by ``min_gain`` of it: at the
    relaxation's own prices a territory that the relaxation already serves about right gains nothing from the
    steps either (national K=500: +0.0002 % for 4 s).
    """
    opts = problem.options
    act = problem.active
    wj = problem.measure_names.index(problem.workload_name)
    lo, hi = problem.bounds
    lo, hi = lo[:, wj], hi[:, wj]
    if (
        not opts.contiguity
        or problem.k < 2
        or problem.tolerance_of(problem.workload_name) is None
        or not np.isfinite(hi).all()
        or bool((act & (fixed >= 0)).any())
    ):
        return None
    w = np.where(act, problem.workload, 0.0)
    forced = forced_territories(problem.cut_off_regions, float(lo.min()), float(hi.max()))
    if not forced:
        return None
    cur = problem.current_owner
    lam = float(opts.disruption_weight) if cur is not None else 0.0
    costs = cost_rows(problem.centroids, homes, np.arange(problem.n), cur, lam)
    plan = np.flatnonzero(act & (owner >= 0))
    upper = float((w[plan] * costs[plan, owner[plan]]).sum())
    pick = 0
    if len(forced) > 1:
        first = [forced_territory_bound(costs, w, lo, hi, prices, f, upper, iterations=0)[0] for f in forced]
        pick = int(np.argmax(first))
    value, info = forced_territory_bound(
        costs,
        w,
        lo,
        hi,
        prices,
        forced[pick],
        upper,
        iterations=iterations,
        deadline=deadline,
        steps_from=relaxation + min_gain * abs(relaxation),
    )
    info["bundle_cut"] = problem.unit_ids[int(info["bundle_cut"])]
    info["region_cut"] = problem.unit_ids[int(info["region_cut"])]
    info["forced_territories"] = len(forced)
    return value, info
