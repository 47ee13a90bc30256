"""Infeasible requests are explained before solving."""

from __future__ import annotations

import math

import numpy as np

from optimizer import Options, Problem, Rep, precheck, solve

from .conftest import Raw, grid, make_problem


def test_counties_k50_names_los_angeles_and_gives_limits(counties: Raw) -> None:
    p = make_problem(counties, 50, tolerance=0.02)
    rep = precheck(p)
    assert not rep.feasible
    la = counties.ids.index("06037")
    heaviest = int(np.argmax(counties.pop))
    assert heaviest == la
    assert rep.heavy_units["workload"][0] == "06037"
    assert "06037" in rep.reasons[0]
    # independent arithmetic: LA must fit in target * (1 + tol)
    target = counties.pop.sum() / 50
    assert math.isclose(rep.finest_tolerance["workload"], counties.pop[la] / target - 1, rel_tol=1e-9)
    k = rep.largest_k["workload"]
    assert counties.pop[la] <= counties.pop.sum() / k * 1.02
    assert counties.pop[la] > counties.pop.sum() / (k + 1) * 1.02
    sol = solve(p)
    assert sol.status == "infeasible"
    assert sol.reasons == rep.reasons
    assert sol.assignment == {}


def test_counties_k25_passes(counties: Raw) -> None:
    assert precheck(make_problem(counties, 25, tolerance=0.02)).feasible


def test_more_reps_than_units() -> None:
    ids, w, lonlat, edges = grid(1, 3)
    p = Problem(ids, {"workload": w}, lonlat, edges, [Rep(f"r{i}", None) for i in range(4)], Options())
    rep = precheck(p)
    assert not rep.feasible
    assert any("more reps (4) than units to assign (3)" in r for r in rep.reasons)


def test_home_in_a_component_without_enough_reps() -> None:
    ids, w, lonlat, edges = grid(2, 4)
    # cut the grid into two islands: columns 0-1 and 2-3
    keep = [(a, b) for a, b in edges.tolist() if (a % 4 < 2) == (b % 4 < 2)]
    reps = [Rep("a", "g0_0"), Rep("b", "g1_0")]
    p = Problem(ids, {"workload": w}, lonlat, np.array(keep), reps, Options(tolerance=0.1))
    rep = precheck(p)
    assert not rep.feasible
    assert rep.components == 2
    assert any("holds no rep home" in r for r in rep.reasons)
    sol = solve(p)
    assert sol.status == "infeasible"


def test_locks_that_break_balance() -> None:
    ids, w, lonlat, edges = grid(2, 4)
    locked = dict.fromkeys(ids[:6], "a")
    p = Problem(
        ids, {"workload": w}, lonlat, edges, [Rep("a", 0), Rep("b", 7)], Options(tolerance=0.2, locked=locked)
    )
    rep = precheck(p)
    assert not rep.feasible
    assert any("locked" in r and "above its upper bound" in r for r in rep.reasons)


def test_capacity_below_demand() -> None:
    ids, w, lonlat, edges = grid(2, 2)
    reps = [Rep("a", 0, capacity={"workload": 1}), Rep("b", 3, capacity={"workload": 1})]
    p = Problem(ids, {"workload": w}, lonlat, edges, reps, Options(tolerance=0.1))
    rep = precheck(p)
    assert not rep.feasible
    assert any("capacity below demand" in r for r in rep.reasons)
