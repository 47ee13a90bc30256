"""Which rep owns which territory: a linear assignment on the territory x rep distance sums."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from optimizer import Options, Problem, Rep, check, solve
from optimizer.local_search import State
from optimizer.matching import movable_reps, rematch

from .conftest import Raw, grid, homes_for, make_problem


def _owner(p: Problem, assignment: dict[str, str]) -> np.ndarray:
    return np.array([p.rep_index[str(assignment[u])] for u in p.unit_ids])


def _assignment(p: Problem, owner: np.ndarray) -> dict[str, str]:
    return {u: p.reps[int(o)].id for u, o in zip(p.unit_ids, owner.tolist(), strict=True)}


def _best_relabel_km(p: Problem, owner: np.ndarray) -> float:
    """The cheapest weighted distance over every way of giving the plan's territories to the reps (brute
    force over permutations, with the checker's distances)."""
    best = np.inf
    for perm in itertools.permutations(range(p.k)):
        relabelled = np.array(perm)[owner]
        best = min(best, check(p, _assignment(p, relabelled)).weighted_distance)
    return float(best)


def test_rematch_finds_the_best_reps_for_shuffled_territories(ct: Raw) -> None:
    """Territories handed to the wrong reps go back to the cheapest matching (brute force over all 120
    ways), with the same units, loads and validity."""
    p = make_problem(ct, 5, seed=2, tolerance=0.05, mode="heuristic", window_rounds=0, chain_work=0)
    sol = solve(p)
    owner = _owner(p, sol.assignment)
    shuffled = np.array([2, 3, 4, 0, 1])[owner]
    before = check(p, _assignment(p, shuffled))
    assert before.ok, before.errors
    st = State(p, shuffled, p.home_points, np.full(p.n, -1))
    info = rematch(st, np.arange(p.k))
    after = check(p, _assignment(p, st.owner_array()))
    assert after.ok, after.errors
    assert info["reps_moved"] > 0
    assert after.weighted_distance < before.weighted_distance
    assert after.weighted_distance <= _best_relabel_km(p, owner) * (1 + 1e-9)
    assert sorted(np.bincount(st.owner_array(), minlength=p.k)) == sorted(np.bincount(owner, minlength=p.k))


def test_rematch_keeps_locked_reps_and_bands(ct: Raw) -> None:
    """A rep with a locked unit keeps its territory, and no territory goes to a rep whose band it breaks (one
    rep has twice the others' capacity share, so only its own territory fits it)."""
    homes = homes_for(ct.pop, 4, seed=5)
    reps = [Rep(f"r{i}", int(h), share=2.0 if i == 3 else 1.0) for i, h in enumerate(homes)]
    opts = Options(tolerance=0.05, mode="heuristic", seed=1, window_rounds=0, chain_work=0)
    p = Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, opts, ct.is_bridge)
    owner = _owner(p, solve(p).assignment)
    swapped = np.array([1, 0, 2, 3])[owner]  # r0 and r1 trade territories: rematch trades them back
    free = State(p, swapped, p.home_points, np.full(p.n, -1))
    rematch(free, movable_reps(p, np.full(p.n, -1)))
    assert (free.owner_array() == owner).all()

    lock = {p.unit_ids[int(np.flatnonzero(owner == 1)[0])]: "r0"}  # r0 must keep the territory it now has
    q = Problem(
        ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, replace(opts, locked=lock), ct.is_bridge
    )
    movable = movable_reps(q, q.locked_owner)
    assert movable.tolist() == [1, 2, 3]
    st = State(q, swapped, q.home_points, q.locked_owner)
    rematch(st, movable)
    result = st.owner_array()
    assert (result[owner == 1] == 0).all()
    assert (result[owner == 3] == 3).all()  # the double territory fits no other rep's band
    assert check(q, _assignment(q, result)).ok


def test_solver_plans_are_matched() -> None:
    """No way of handing the solver's territories to other reps lowers the weighted distance (brute force,
    checker's distances). The instance clumps three homes in one corner of a grid with heavy-tailed
    workloads; without the matching step the solver's plan here is 0.48 % above its best relabelling."""
    rows, cols = 5, 12
    rng = np.random.default_rng(17)
    ids, _, lonlat, edges = grid(rows, cols)
    w = np.round(rng.pareto(1.5, rows * cols) * 100 + 50)
    corner = [r * cols + c for r in range(rows) for c in range(2)]
    homes = [*rng.choice(corner, size=3, replace=False).tolist(), rows * cols - 1]
    reps = [Rep(f"r{i}", int(h)) for i, h in enumerate(homes)]
    p = Problem(ids, {"workload": w}, lonlat, edges, reps, Options(tolerance=0.05, mode="heuristic", seed=1))
    sol = solve(p)
    report = check(p, sol.assignment)
    assert report.ok, report.errors
    assert report.weighted_distance <= _best_relabel_km(p, _owner(p, sol.assignment)) * (1 + 1e-9)


def test_rematch_never_breaks_a_band(ct: Raw) -> None:
    """With the homes of a single-share rep and the double-share rep swapped, the cheapest matching would
    trade their territories; the bands forbid it, so nothing moves."""
    homes = homes_for(ct.pop, 4, seed=5)
    reps = [Rep(f"r{i}", int(h), share=2.0 if i == 3 else 1.0) for i, h in enumerate(homes)]
    opts = Options(tolerance=0.05, mode="heuristic", seed=1, window_rounds=0, chain_work=0)
    p = Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, opts, ct.is_bridge)
    owner = _owner(p, solve(p).assignment)
    swapped_homes = [replace(r, home=homes[3 - i] if i in (0, 3) else r.home) for i, r in enumerate(reps)]
    q = Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, swapped_homes, opts, ct.is_bridge)
    traded = np.array([3, 1, 2, 0])[owner]
    ok = check(q, _assignment(q, owner))
    assert ok.ok, ok.errors
    assert check(q, _assignment(q, traded)).weighted_distance < ok.weighted_distance  # cheaper, but no band
    st = State(q, owner, q.home_points, np.full(q.n, -1))
    rematch(st, movable_reps(q, np.full(q.n, -1)))
    assert (st.owner_array() == owner).all()


def test_no_rematch_when_homes_are_anchored_or_a_current_plan_is_given(ct: Raw) -> None:
    """Anchored homes tie each rep to its home's territory, and a rebalance keeps each rep's territory."""
    p = make_problem(ct, 3, seed=1, anchor_homes=True)
    assert len(movable_reps(p, p.locked_owner)) == 0
    q = make_problem(ct, 3, seed=1, current=dict.fromkeys(ct.ids, "r0"))
    assert len(movable_reps(q, q.locked_owner)) == 0
