"""Clusters of adjacent territories re-solved as problems of their own (``optimizer.rebuild``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from optimizer import Options, Problem, Rep, check, solve
from optimizer.local_search import State, territory_adjacency
from optimizer.matching import rematch
from optimizer.rebuild import (
    cluster_around,
    cluster_problem,
    rebuild_clusters,
    unit_excess,
)

from .conftest import Raw, make_problem


def _owner(p: Problem, assignment: dict[str, str | None]) -> np.ndarray:
    return np.array([p.rep_index[str(assignment[u])] for u in p.unit_ids])


def _assignment(p: Problem, owner: np.ndarray) -> dict[str, str]:
    return {u: p.reps[int(o)].id for u, o in zip(p.unit_ids, owner.tolist(), strict=True)}


def _foreign_plan(ct: Raw, k: int) -> tuple[Problem, np.ndarray]:
    """A CT problem and a valid plan for it that was solved for other rep homes (same reps, same bands)."""
    opts = {"tolerance": 0.05, "mode": "heuristic", "window_rounds": 0, "rebuild_clusters": 0}
    p = make_problem(ct, k, seed=3, **opts)
    other = make_problem(ct, k, seed=11, **opts)
    owner = _owner(p, solve(other).assignment)
    assert check(p, _assignment(p, owner)).ok
    return p, owner


def test_rebuild_beats_matching_and_local_search_on_a_plan_for_other_homes(ct: Raw) -> None:
    """A plan laid out for other homes gets cheaper under rebuilds than the best matching of its territories
    followed by local search can make it, and stays covering, contiguous and balanced (the checker)."""
    p, owner = _foreign_plan(ct, 8)
    fixed = np.full(p.n, -1)
    local = State(p, owner, p.home_points, fixed)
    rematch(local, np.arange(p.k))
    local.improve()
    local.improve_swaps()
    matched_km = check(p, _assignment(p, local.owner_array())).weighted_distance

    st = State(p, owner, p.home_points, fixed)
    info = rebuild_clusters(st, fixed, np.zeros(p.k), rings=1, max_clusters=p.k)
    after = check(p, _assignment(p, st.owner_array()))
    assert after.ok, after.errors
    assert info["kept"] >= 1
    assert after.weighted_distance < matched_km * (1 - 1e-3)
    assert info["gain"] == pytest.approx(
        check(p, _assignment(p, owner)).weighted_distance - after.weighted_distance, rel=1e-6
    )


def test_rebuild_moves_only_the_cluster_and_keeps_locks(ct: Raw) -> None:
    """One rebuild changes only the territories within one hop of the territory farthest from the
    relaxation's choice, and a unit fixed to its rep stays with it."""
    p, owner = _foreign_plan(ct, 8)
    free = np.full(p.n, -1)
    start = State(p, owner, p.home_points, free)
    excess = np.bincount(owner, weights=unit_excess(start, np.zeros(p.k)), minlength=p.k)
    centre = int(np.argmax(excess))
    cluster = cluster_around(territory_adjacency(p, owner), centre, 1)
    assert 2 <= len(cluster) < p.k
    fixed = free.copy()
    pinned = int(np.flatnonzero(owner == cluster[-1])[0])
    fixed[pinned] = cluster[-1]

    st = State(p, owner, p.home_points, fixed)
    info = rebuild_clusters(st, fixed, np.zeros(p.k), rings=1, max_clusters=1)
    new = st.owner_array()
    assert info["tried"] == 1 and info["kept"] == 1
    outside = ~np.isin(owner, cluster)
    assert (new[outside] == owner[outside]).all()
    assert (new[~outside] != owner[~outside]).any()
    assert new[pinned] == cluster[-1]
    assert check(p, _assignment(p, new)).ok


def test_cluster_problem_keeps_homes_bands_and_locks(ct: Raw) -> None:
    """The cluster's problem has the full problem's homes, target loads and bands for its reps, only their
    units, only the edges between them, and the locks that fall inside."""
    p, owner = _foreign_plan(ct, 6)
    fixed = np.full(p.n, -1)
    unit = int(np.flatnonzero(owner == 2)[0])
    fixed[unit] = 2
    st = State(p, owner, p.home_points, fixed)
    reps = [1, 2, 4]
    sub, units = cluster_problem(st, fixed, reps, time_limit=5.0)
    assert sorted(units.tolist()) == np.flatnonzero(np.isin(owner, reps)).tolist()
    assert sub.unit_ids == [p.unit_ids[u] for u in units.tolist()]
    assert [r.id for r in sub.reps] == [p.reps[r].id for r in reps]
    np.testing.assert_allclose(sub.home_points, p.home_points[reps])
    np.testing.assert_allclose(sub.targets, p.targets[reps])
    for mine, full in zip(sub.bounds, p.bounds, strict=True):
        np.testing.assert_allclose(mine, full[reps])
    inside = set(units.tolist())
    expected = sum(1 for a, b in p.edges.tolist() if a in inside and b in inside)
    assert len(sub.edges) == expected
    assert dict(sub.options.locked) == {p.unit_ids[unit]: p.reps[2].id}
    assert sub.options.rebuild_clusters == 0 and sub.options.window_rounds == 0
    assert not sub.options.final_bound  # the rebuild compares costs: no second flow per cluster


def _with_options(p: Problem, **changes: Any) -> Problem:
    return Problem(
        p.unit_ids, p.measures, p.centroids, p.edges, p.reps, replace(p.options, **changes), p.is_bridge
    )


def test_solver_rebuilds_unless_disabled_or_rebalancing(ct: Raw) -> None:
    """The heuristic pipeline rebuilds clusters (and reports it), not when disabled, not for a rebalance from
    a current plan."""
    p = make_problem(ct, 8, seed=3, tolerance=0.05, mode="heuristic", window_rounds=0)
    sol = solve(p)
    assert check(p, sol.assignment).ok
    assert sol.details["heuristic"]["rebuild"]["tried"] >= 1
    off = solve(_with_options(p, rebuild_clusters=0))
    assert "rebuild" not in off.details["heuristic"]
    current = {u: str(r) for u, r in sol.assignment.items()}
    again = solve(_with_options(p, current=current))
    assert "rebuild" not in again.details["heuristic"]


def test_solver_rebuilds_for_chosen_centres_before_recentring(ct: Raw) -> None:
    """With solver-chosen centres the clusters are rebuilt for the centres of the moment, then re-centred;
    the plan stays valid and the bound holds for the final centres."""
    reps = [Rep(f"r{i}") for i in range(8)]
    opts = Options(tolerance=0.05, mode="heuristic", window_rounds=0, seed=4)
    p = Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, opts, ct.is_bridge)
    sol = solve(p)
    assert check(p, sol.assignment).ok
    heur = sol.details["heuristic"]
    assert heur["rebuild"]["tried"] >= 1
    assert "recentre" in heur
    assert sol.lower_bound is not None and sol.objective is not None
    assert sol.lower_bound <= sol.objective
