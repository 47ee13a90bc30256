"""Cost-lowering ejection chains: they find what single moves and swaps cannot, keep every invariant (checked
by the independent checker) and undo whatever does not pay."""

from __future__ import annotations

import time

import numpy as np

from optimizer import Options, Problem, Rep, check, solve
from optimizer.chains import improve_chains
from optimizer.local_search import State

from .conftest import Raw, make_problem


def _ring(home_angles: list[float]) -> tuple[Problem, np.ndarray, np.ndarray]:
    """Six units of weight 1 on a ring (a cycle graph), three territories of two units each, band 1.9-2.1:
    every territory sits at both band edges, so no single move is allowed. Homes at the given angles (deg)."""
    ang = np.radians(np.arange(6) * 60.0)
    lonlat = np.column_stack([0.1 * np.cos(ang), 0.1 * np.sin(ang)])
    edges = np.array([(i, (i + 1) % 6) for i in range(6)])
    ids = [f"u{i}" for i in range(6)]
    reps = [Rep(x) for x in "abc"]
    opts = Options(tolerance=0.05, mode="heuristic")
    p = Problem(ids, {"workload": np.ones(6)}, lonlat, edges, reps, opts)
    ha = np.radians(np.array(home_angles))
    homes = np.column_stack([0.1 * np.cos(ha), 0.1 * np.sin(ha)])
    owner = np.array([0, 0, 1, 1, 2, 2])  # a = {0, 1}, b = {2, 3}, c = {4, 5}
    return p, owner, homes


def _plan(p: Problem, owner: np.ndarray) -> list[str]:
    return [p.reps[int(o)].id for o in owner.tolist()]


def test_a_chain_rotates_a_ring_that_no_single_move_or_swap_can_improve() -> None:
    # homes half a step round the ring: each territory would be cheaper one unit further on
    p, owner, homes = _ring([90.0, 210.0, 330.0])
    st = State(p, owner, homes, np.full(p.n, -1, dtype=np.int64))
    before = st.total_cost()
    assert st.improve() == 0 and st.improve_swaps() == 0  # the pair moves are stuck
    assert improve_chains(st) == 1
    after = st.owner_array()
    territories = sorted(np.flatnonzero(after == k).tolist() for k in range(3))
    assert territories == [[0, 5], [1, 2], [3, 4]]  # each one unit further round the ring
    assert st.total_cost() < before
    rep = check(p, _plan(p, after))
    assert rep.ok, rep.errors


def test_a_chain_that_does_not_pay_is_undone() -> None:
    # homes at the middle of the current territories: the plan is already the cheapest
    p, owner, homes = _ring([30.0, 150.0, 270.0])
    st = State(p, owner, homes, np.full(p.n, -1, dtype=np.int64))
    assert improve_chains(st) == 0
    assert st.owner_array().tolist() == owner.tolist()


def test_a_locked_unit_blocks_the_chain() -> None:
    p, owner, homes = _ring([90.0, 210.0, 330.0])
    fixed = np.full(p.n, -1, dtype=np.int64)
    fixed[2] = 1  # b's unit next to a must stay with b: no rotation is possible
    st = State(p, owner, homes, fixed)
    assert improve_chains(st) == 0
    assert st.owner_array().tolist() == owner.tolist()


def test_chains_keep_every_invariant_on_a_real_plan(ct: Raw) -> None:
    # a plan without chains, then chains on top: cheaper or equal, and still valid for the independent checker
    p = make_problem(ct, 4, seed=3, tolerance=0.05, mode="heuristic", chain_work=0, window_rounds=0)
    sol = solve(p)
    owner = np.array([p.rep_index[sol.assignment[u]] for u in p.unit_ids])
    st = State(p, owner, p.home_points, np.full(p.n, -1, dtype=np.int64))
    before = st.total_cost()
    kept = improve_chains(st, max_depth=3, work=2_000_000)
    assert st.total_cost() <= before * (1 + 1e-12)
    assert (kept > 0) == (st.total_cost() < before)
    rep = check(p, _plan(p, st.owner_array()))
    assert rep.ok, rep.errors
    assert rep.max_deviation["workload"] <= 0.05 + 1e-12


def test_nothing_happens_to_a_plan_out_of_band() -> None:
    p, owner, homes = _ring([90.0, 210.0, 330.0])
    owner = np.array([0, 0, 0, 1, 2, 2])  # a carries 3
    st = State(p, owner, homes, np.full(p.n, -1, dtype=np.int64))
    assert improve_chains(st) == 0
    assert st.owner_array().tolist() == owner.tolist()


def test_no_chain_starts_after_the_deadline() -> None:
    p, owner, homes = _ring([90.0, 210.0, 330.0])
    st = State(p, owner, homes, np.full(p.n, -1, dtype=np.int64))
    assert improve_chains(st, deadline=time.perf_counter() - 1.0) == 0
    assert st.owner_array().tolist() == owner.tolist()
    assert improve_chains(st, deadline=time.perf_counter() + 60.0) == 1  # the same chain, in time
