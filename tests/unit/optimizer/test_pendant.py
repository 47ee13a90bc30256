"""Regions cut off by one unit, and the bound from the territory they force: checked against networkx and
against the brute-force optimum of a small instance."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np

from optimizer import Options, Problem, Rep, check, solve
from optimizer.bound import cost_rows, transport
from optimizer.pendant import cut_regions, forced_territories, forced_territory_bound

from .conftest import grid


def test_cut_regions_are_exactly_what_removing_a_unit_separates() -> None:
    # a 6 x 6 grid with a chain, a chain of islands off the chain, and a pair of islands off the grid
    _, _, _, edges = grid(6, 6)
    extra = [(35, 36), (36, 37), (37, 38), (38, 39), (39, 40), (38, 41), (41, 42), (0, 43), (43, 44), (44, 0)]
    e = np.vstack([edges, np.array(extra)])
    n = 45
    w = np.arange(1, n + 1, dtype=float)[::-1]  # unit 0 heaviest: the root side
    g = nx.Graph([tuple(x) for x in e.tolist()])
    nbrs = [np.array(sorted(g.neighbors(v))) for v in range(n)]
    regions = cut_regions(nbrs, np.ones(n, bool), w)
    got = {(r.cut, frozenset(r.units.tolist())) for r in regions}
    # every articulation point's sides, each listed but the one side holding the search's root (the same
    # unit for all of them)
    unlisted = []
    for a in nx.articulation_points(g):
        h = g.copy()
        h.remove_node(a)
        sides = {frozenset(c) for c in nx.connected_components(h)}
        listed = {c for cut, c in got if cut == a}
        assert listed < sides and len(sides - listed) == 1
        unlisted.append(next(iter(sides - listed)))
    assert len(got) >= 8 and frozenset.intersection(*unlisted), "one root side for every cut"
    assert {cut for cut, _ in got} == set(nx.articulation_points(g))
    for r in regions:
        assert r.workload == w[r.units].sum()


def _hawaii_like() -> Problem:
    """Six mainland units (30 each), a chain of two (20 each) and a pair of islands (40 each) that sit next to
    the mainland but are linked only to the chain's end. K=3 at +-10 %: band 90-110."""
    ids, _, lonlat, edges = grid(2, 3)
    lonlat = np.vstack([lonlat, [(1.0, 0.1), (2.0, 0.1), (0.3, -0.1), (0.4, -0.1)]])
    e = np.vstack([edges, np.array([(5, 6), (6, 7), (7, 8), (8, 9)])])
    w = np.array([30.0] * 6 + [20.0, 20.0, 40.0, 40.0])
    reps = [Rep("a", 0), Rep("b", 2), Rep("c", 5)]
    ids = ids + ["c1", "c2", "i1", "i2"]
    opts = Options(tolerance=0.10, mode="heuristic", contiguity=True)
    return Problem(ids, {"workload": w}, lonlat, e, reps, opts)


def _brute_force_optimum(p: Problem) -> float:
    plans = np.array(list(itertools.product(range(3), repeat=p.n)))
    loads = np.stack([(p.workload[None, :] * (plans == r)).sum(1) for r in range(3)], axis=1)
    lo, hi = p.bounds[0][:, 0], p.bounds[1][:, 0]
    balanced = plans[((loads >= lo - 1e-9) & (loads <= hi + 1e-9)).all(1)]
    best = np.inf
    for plan in balanced:
        rep = check(p, [p.reps[int(r)].id for r in plan])
        if rep.ok:
            best = min(best, rep.weighted_distance)
    return float(best)


def test_forced_territory_bound_is_valid_and_beats_the_relaxation() -> None:
    p = _hawaii_like()
    best = _brute_force_optimum(p)
    assert np.isfinite(best)
    w = p.workload
    lo, hi = p.bounds[0][:, 0], p.bounds[1][:, 0]
    homes = p.centroids[p.home_units]
    res = transport(p.centroids, homes, w, np.arange(p.n), lo, hi, lo, hi, 0.0, max_rounds=20)
    forced = forced_territories(cut_regions(p.neighbors, p.active, w), float(lo.min()), float(hi.max()))
    # the islands (80 < 90) lie in one territory, inside the chain + islands region beyond unit 5
    assert [(f.bundle.cut, sorted(f.bundle.units.tolist()), f.region.cut) for f in forced] == [(7, [8, 9], 5)]
    costs = cost_rows(p.centroids, homes, np.arange(p.n), None, 0.0)
    value, info = forced_territory_bound(costs, w, lo, hi, res.prices, forced[0], upper=best, iterations=40)
    assert res.bound <= best * (1 + 1e-9)
    assert res.bound < info["first_value"] <= value <= best * (1 + 1e-9)
    # and the solver reports it: its bound stays below the brute-force optimum
    sol = solve(p)
    assert check(p, sol.assignment).ok and sol.objective >= best * (1 - 1e-9)
    forced_info = sol.details["forced_territory_bound"]
    assert forced_info["value"] > forced_info["relaxation"]
    assert sol.lower_bound is not None and res.bound < sol.lower_bound <= best * (1 + 1e-9)
    assert "forces" in sol.bound_note


def test_no_forced_territory_without_contiguity_or_when_the_through_territory_can_hold_the_bundle() -> None:
    p = _hawaii_like()
    regions = cut_regions(p.neighbors, p.active, p.workload)
    # with a band of 70-130 the chain + islands (120) fits one territory: nothing is forced
    assert forced_territories(regions, 70.0, 130.0) == []
    opts = Options(tolerance=0.1, contiguity=False)
    loose = Problem(p.unit_ids, {"workload": p.workload}, p.centroids, p.edges, p.reps, opts)
    assert "forced_territory_bound" not in solve(loose).details


def test_steps_are_skipped_when_the_first_evaluation_gains_little() -> None:
    from optimizer.pendant import strengthen

    p = _hawaii_like()
    w, homes = p.workload, p.centroids[p.home_units]
    lo, hi = p.bounds[0][:, 0], p.bounds[1][:, 0]
    res = transport(p.centroids, homes, w, np.arange(p.n), lo, hi, lo, hi, 0.0, max_rounds=20)
    owner = solve(p).assignment
    own = np.array([p.rep_index[owner[u]] for u in p.unit_ids])
    fixed = np.full(p.n, -1)
    stepped = strengthen(p, homes, own, fixed, res.prices, res.bound)
    assert stepped is not None and stepped[1]["steps"] > 0
    # a bound so far already at the first evaluation: the steps are not worth their time
    first = stepped[1]["first_value"]
    skipped = strengthen(p, homes, own, fixed, res.prices, first)
    assert skipped is not None and skipped[1]["steps"] == 0 and skipped[0] == first
    # a locked unit turns it off (the relaxation's prices then price the lock)
    fixed[0] = 0
    assert strengthen(p, homes, own, fixed, res.prices, res.bound) is None
