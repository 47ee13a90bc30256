"""Balance repair by ejection chains, and re-centring when the solver chooses the centres."""

from __future__ import annotations

import numpy as np

from optimizer import Options, Problem, Rep, check, solve
from optimizer.local_search import State

from .conftest import Raw, grid


def _swap_fixture() -> tuple[Problem, np.ndarray]:
    """2x4 grid, A = columns 0-1 (load 12), B = columns 2-3 (load 8), band 9..11. A's border units weigh 5,
    so no single move helps (A would drop to 7, B rise to 13); swapping A's 5 for B's 3 balances both."""
    ids, _, lonlat, edges = grid(2, 4)
    # index r * 4 + c: A = {0, 1, 4, 5}, B = {2, 3, 6, 7}
    w = np.array([1.0, 5.0, 3.0, 1.0, 1.0, 5.0, 3.0, 1.0])
    p = Problem(ids, {"workload": w}, lonlat, edges, [Rep("a", 0), Rep("b", 3)], Options(tolerance=0.1))
    owner = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    return p, owner


def test_ejection_chain_fixes_what_single_and_path_moves_cannot() -> None:
    p, owner = _swap_fixture()
    assert not check(p, ["a" if o == 0 else "b" for o in owner]).ok  # out of band before
    st = State(p, owner, p.home_points, np.full(p.n, -1, dtype=np.int64))
    assert st._best_single(0) is None
    assert not st._chain(0)
    assert st.eject_chain(0)
    rep = check(p, ["a" if o == 0 else "b" for o in st.owner_array().tolist()])
    assert rep.ok, rep.errors
    assert rep.max_deviation["workload"] <= 0.1 + 1e-12


def test_ejection_chain_undoes_everything_when_it_fails() -> None:
    p, owner = _swap_fixture()
    st = State(p, owner, p.home_points, np.full(p.n, -1, dtype=np.int64))
    st.fixed[6] = 1  # B's 3 on the border may not move: no chain exists
    st.fixed[2] = 1
    assert not st.eject_chain(0)
    assert st.owner_array().tolist() == owner.tolist()


def test_repair_balance_uses_ejection_chains() -> None:
    p, owner = _swap_fixture()
    st = State(p, owner, p.home_points, np.full(p.n, -1, dtype=np.int64))
    assert st.repair_balance()
    assert check(p, ["a" if o == 0 else "b" for o in st.owner_array().tolist()]).ok


def test_chosen_centres_are_recentred_and_bounded(ct: Raw) -> None:
    reps = [Rep(f"r{i}") for i in range(4)]
    opts = Options(tolerance=0.05, mode="heuristic", window_rounds=1, window_pairs=4, seed=2)
    p = Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, opts, ct.is_bridge)
    sol = solve(p)
    rep = check(p, sol.assignment)
    assert rep.ok, rep.errors
    assert sol.details["heuristic"]["recentre"]["rounds"] >= 1
    assert "transport_recentred" in sol.details
    # the bound is recomputed for the final centres: still below the plan's cost to them
    assert sol.lower_bound is not None and sol.objective is not None
    assert sol.lower_bound <= sol.objective * (1 + 1e-9)
    assert set(sol.details["homes"]) == {r.id for r in reps}
    again = solve(p)
    assert again.to_dict(timings=False) == sol.to_dict(timings=False)


def test_hilbert_order_visits_a_grid_cell_by_cell() -> None:
    """The seeding curve: every cell of a 4x4 grid gets its own position, and consecutive positions are
    neighbouring cells (so equal workload slices along it are compact)."""
    from optimizer.solver import _hilbert_index

    cells = np.array([(x, y) for x in range(4) for y in range(4)], dtype=float)
    d = _hilbert_index(cells, order=2)
    assert sorted(d.tolist()) == list(range(16))
    path = cells[np.argsort(d)]
    assert all(np.abs(a - b).sum() == 1 for a, b in zip(path[:-1], path[1:], strict=True))
