"""Balance repair by ejection chains, and re-centring when the solver chooses the centres."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Options, Problem, Rep, check, solve
from optimizer.local_search import State

from .conftest import Raw, grid, homes_for, make_problem


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
    from optimizer.centres import hilbert_index

    cells = np.array([(x, y) for x in range(4) for y in range(4)], dtype=float)
    d = hilbert_index(cells, order=2)
    assert sorted(d.tolist()) == list(range(16))
    path = cells[np.argsort(d)]
    assert all(np.abs(a - b).sum() == 1 for a, b in zip(path[:-1], path[1:], strict=True))


def test_transport_priced_after_one_round_then_warm_started_matches_a_cold_solve(ct: Raw) -> None:
    """The quick first plan stops after one flow but prices its arcs; the full relaxation warm-started from
    them must be exactly the cold relaxation (same flow, prices, bound, owners)."""
    from optimizer.bound import transport

    homes = ct.lonlat[np.array(homes_for(ct.pop, 30))]
    free = np.arange(len(ct.pop))
    tgt = np.full(30, ct.pop.sum() / 30)
    args = (ct.lonlat, homes, ct.pop, free, tgt * 0.96, tgt * 1.04, tgt * 0.95, tgt * 1.05, 0.0)
    cold = transport(*args, per_unit=2)
    quick = transport(*args, per_unit=2, max_rounds=1, with_bound=False, price_last=True)
    assert cold.rounds >= 2  # the pricing rounds matter on this instance
    plain = transport(*args, per_unit=2, max_rounds=1, with_bound=False)
    assert quick.arcs is not None and plain.arcs is not None
    assert len(quick.arcs[0]) > len(plain.arcs[0])  # the extended arcs, not the first round's
    warm = transport(*args, per_unit=2, init_arcs=quick.arcs)
    assert warm.flow_value == cold.flow_value
    assert warm.bound == cold.bound
    assert warm.owner.tolist() == cold.owner.tolist()
    assert np.array_equal(warm.prices, cold.prices)


def test_quick_first_plan_is_balanced_and_reported(ct: Raw) -> None:
    p = make_problem(ct, 4, mode="heuristic", window_rounds=0)
    sol = solve(p)
    assert check(p, sol.assignment).ok
    assert sol.details["heuristic"]["quick_balanced"] is True
    # the first feasible plan is recorded right after the quick construction, before the full relaxation
    stages = list(sol.timings)
    assert stages.index("first_feasible_at") < stages.index("transport")
    # a hard disruption budget starts from the current plan instead: no quick plan
    cur = dict(sol.assignment)
    q = make_problem(ct, 4, mode="heuristic", window_rounds=0, current=cur, max_moved_units=0.1)
    assert "transport_quick" not in solve(q).timings


def test_several_centre_starts_continue_the_cheapest_probe(ct: Raw) -> None:
    from dataclasses import replace

    from optimizer.centres import choose_centres

    reps = [Rep(f"r{i}") for i in range(4)]
    base = Options(tolerance=0.05, mode="heuristic", seed=3, centre_rounds=4, centre_probe_rounds=2)
    p = Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, base, ct.is_bridge)
    single = choose_centres(p, 3)
    p.options = replace(base, centre_starts=4)
    info: dict[str, object] = {}
    multi = choose_centres(p, 3, info=info)
    values = info["probe_values"]
    assert isinstance(values, list) and len(values) == 4
    assert info["best_start"] == min(range(4), key=lambda i: (values[i], i))
    if info["best_start"] == 0:  # start 0 is the single start: the same centres
        assert multi.tolist() == single.tolist()
    assert choose_centres(p, 3).tolist() == multi.tolist()  # deterministic


def test_window_stop_keeps_time_for_the_final_recentring() -> None:
    from optimizer.heuristic import window_stop

    # national K=200 (60 s) keeps 12 s; K=500 (120 s) may polish until 102 s; counties (10 s) until 8 s
    assert [round(window_stop(t) * t, 6) for t in (10.0, 60.0, 120.0)] == [8.0, 48.0, 102.0]


def test_polish_windows_calls_between_only_between_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from optimizer import windows

    p, _ = _swap_fixture()
    # balanced plan (10 / 10) where unit 2 sits nearer b's home: the pair (a, b) is ranked in every round
    st = State(p, np.array([0, 0, 0, 1, 0, 1, 1, 1]), p.home_points, np.full(p.n, -1, dtype=np.int64))
    monkeypatch.setattr(windows, "solve_window", lambda *a, **k: True)  # every window "improves"
    calls: list[int] = []
    clock = SimpleNamespace(elapsed=lambda: 0.0, check=lambda stage="": None)
    opts = SimpleNamespace(
        seed=0, window_rounds=3, window_pairs=4, window_det_time=1.0, time_limit=60.0, chain_work=0
    )
    info = windows.polish_windows(st, opts, clock, between=lambda: calls.append(1))
    assert info["pair_windows"] == 3
    assert len(calls) == 2  # after rounds 1 and 2, not after the last one
    # a round cut by the time guard ends the polishing without calling it
    calls.clear()
    late = SimpleNamespace(elapsed=lambda: 1e9)
    windows.polish_windows(st, opts, late, between=lambda: calls.append(1))
    assert calls == []


def test_a_new_rep_under_a_hard_budget_gets_a_balanced_contiguous_territory(ct: Raw) -> None:
    """A new hire in a quarterly rebalance: the current plan gives the fifth rep no unit. The solver seeds its
    territory at the unit nearest its home and grows it within the move budget (this used to crash the repair
    windows, then returned no_solution)."""
    cur = dict(solve(make_problem(ct, 4, mode="heuristic")).assignment)
    p = make_problem(ct, 5, mode="heuristic", current=cur, max_moved_units=0.3)
    assert "r4" not in cur.values()
    sol = solve(p)
    report = check(p, sol.assignment)
    assert report.ok, report.errors
    assert sol.status == "feasible"
    assert report.pieces["r4"] == 1
    assert report.moved_units <= 0.3 + 1e-9
    # a budget too small to carry a fifth of the workload cannot be met, and the status says so
    tight = make_problem(ct, 5, mode="heuristic", current=cur, max_moved_units=0.02)
    tight_sol = solve(tight)
    tight_report = check(tight, tight_sol.assignment)
    assert tight_report.moved_units <= 0.02 + 1e-9
    assert (tight_sol.status in ("feasible", "optimal")) == tight_report.ok
