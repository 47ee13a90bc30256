"""Crowded cut-off regions: what every contiguous plan must do there, checked over every plan of a small
instance, and how the solver reports it."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from optimizer import Options, Problem, Rep, check, precheck, solve
from optimizer.crowding import crowded_regions

from .conftest import grid

# six mainland units (30 each); unit 5 leads to a chain of two (20 each) and a pair of islands (40 each):
# the region behind unit 5 weighs 120, behind c1 100. K=3 at +-10 %: band 90-110
MAINLAND_IDS, _, MAINLAND_XY, MAINLAND_EDGES = grid(2, 3)
IDS = MAINLAND_IDS + ["c1", "c2", "i1", "i2"]
XY = np.vstack([MAINLAND_XY, [(1.0, 0.1), (2.0, 0.1), (0.3, -0.1), (0.4, -0.1)]])
EDGES = np.vstack([MAINLAND_EDGES, np.array([(5, 6), (6, 7), (7, 8), (8, 9)])])
W = np.array([30.0] * 6 + [20.0, 20.0, 40.0, 40.0])
REGION = [6, 7, 8, 9]


def _problem(homes: list[int | None], contiguity: bool = True) -> Problem:
    reps = [Rep(f"r{j}", h) for j, h in enumerate(homes)]
    opts = Options(tolerance=0.10, mode="heuristic", contiguity=contiguity, seed=3)
    return Problem(IDS, {"workload": W}, XY, EDGES, reps, opts)


def _valid_plans(p: Problem) -> list[np.ndarray]:
    """Every balanced contiguous plan, by the independent checker."""
    plans = np.array(list(itertools.product(range(p.k), repeat=p.n)))
    loads = np.stack([(W[None, :] * (plans == r)).sum(1) for r in range(p.k)], axis=1)
    lo, hi = p.bounds[0][:, 0], p.bounds[1][:, 0]
    out = []
    for plan in plans[((loads >= lo - 1e-9) & (loads <= hi + 1e-9)).all(1)]:
        if check(p, [p.reps[int(r)].id for r in plan]).ok:
            out.append(plan)
    return out


def _wholly_inside(plan: np.ndarray, units: list[int], rep: int) -> bool:
    """The rep owns units, and all of them are among ``units``."""
    mine = np.flatnonzero(plan == rep)
    return len(mine) > 0 and bool(np.isin(mine, units).all())


def test_reps_living_in_a_region_too_small_for_them_are_sent_away_in_every_plan() -> None:
    # three homes behind unit 5 (one on the chain, two on the islands); 120 holds 1 territory wholly inside
    # and part of the one through unit 5, so at most 2 of the 3 reps can own a unit there
    p = _problem([6, 8, 9])
    found = crowded_regions(p)
    # unit 5 splits the graph about evenly, so both of its sides are listed: the mainland side (150, no home)
    # must hold a territory wholly inside, whose rep then lives behind unit 5. The islands (80, two homes)
    # hold no territory wholly and only the one through c2 reaches them
    assert [(c.cut, c.units, c.homes, c.most_inside, c.reps_away, c.reps_brought_in) for c in found] == [
        (IDS[5], 5, [], 1, 0, 1),
        (IDS[5], 4, ["r0", "r1", "r2"], 1, 1, 0),
        ("c2", 2, ["r1", "r2"], 0, 1, 0),
    ], "the region behind c1 (100, the same three homes and counts as behind unit 5) is not listed again"
    plans = _valid_plans(p)
    assert plans, "the instance has contiguous balanced plans"
    for c, units in zip(found, ([0, 1, 2, 3, 4], REGION, [8, 9]), strict=True):
        homes = [p.rep_index[r] for r in c.homes]
        outside = [j for j in range(3) if j not in homes]
        away = [sum(not (plan[units] == j).any() for j in homes) for plan in plans]
        brought = [sum(_wholly_inside(plan, units, j) for j in outside) for plan in plans]
        # what every plan must do, and some plan does no more (the counts are tight here)
        assert (min(away), min(brought)) == (c.reps_away, c.reps_brought_in)
    sol = solve(p)
    assert check(p, sol.assignment).ok
    owner = np.array([p.rep_index[str(sol.assignment[u])] for u in IDS])
    assert sum(not (owner[REGION] == j).any() for j in range(3)) >= 1
    # the pre-check warns before any solving, and the solution repeats it
    pre = precheck(p)
    assert pre.feasible and pre.warnings == [c.note() for c in found]
    assert sol.details["crowded_regions"] == pre.crowded_regions == [c.to_dict() for c in found]
    assert any("at least 1 of them owns no unit there" in n for n in sol.notes)


def test_a_region_without_homes_that_must_hold_a_territory_brings_a_rep_in() -> None:
    p = _problem([0, 2, 5])
    found = crowded_regions(p)
    assert [(c.cut, c.units, c.homes, c.fewest_inside, c.reps_brought_in, c.reps_away) for c in found] == [
        (IDS[5], 4, [], 1, 1, 0)
    ], "the mainland side holds all three homes: nothing to say there"
    for plan in _valid_plans(p):
        inside = [j for j in range(3) if _wholly_inside(plan, REGION, j)]
        assert len(inside) >= 1, "some rep, living outside, owns a territory wholly behind unit 5"
    assert "no rep lives in the region" in found[0].note()
    # an infeasible request gets its reasons, not warnings about plans it cannot have
    many = [Rep(f"x{j}", 6 + j % 4) for j in range(11)]  # more reps than units, all living behind unit 5
    tight = Problem(IDS, {"workload": W}, XY, EDGES, many, Options(tolerance=0.1, contiguity=True))
    assert not precheck(tight).feasible and precheck(tight).warnings == []


def test_nothing_is_reported_when_the_homes_fit_or_nothing_is_forced() -> None:
    # two homes behind unit 5: one territory inside and one through it can serve both
    assert crowded_regions(_problem([0, 7, 9])) == []
    # without contiguity every rep may reach anywhere
    assert crowded_regions(_problem([6, 8, 9], contiguity=False)) == []
    assert "crowded_regions" not in solve(_problem([6, 8, 9], contiguity=False)).details
    # a rep without a home may be placed inside by the solver: no claim is made
    assert crowded_regions(_problem([6, 8, None])) == []
    # asked not to (the solver's own sub-problems, or final_bound=False)
    assert precheck(_problem([6, 8, 9]), warnings=False).warnings == []
    quick = _problem([6, 8, 9])
    quick.options = replace(quick.options, final_bound=False)
    assert "crowded_regions" not in solve(quick).details
    # a region lighter than a quarter of a target is no news (here: every region, with min_targets=2)
    assert crowded_regions(_problem([6, 8, 9]), min_targets=2.0) == []
