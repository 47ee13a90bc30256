"""End-to-end solves on the RI and CT fixtures, verified by the independent checker."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from optimizer import Options, Problem, Rep, check, solve

from .conftest import Raw, homes_for, make_problem


def _assert_consistent(p: Problem, sol) -> None:  # type: ignore[no-untyped-def]
    rep = check(p, sol.assignment)
    assert rep.ok, rep.errors
    assert sol.status in ("optimal", "feasible")
    assert sol.violations == []
    for r, loads in rep.loads.items():
        assert math.isclose(loads["workload"], sol.loads[r]["workload"], rel_tol=1e-9)
    assert math.isclose(rep.weighted_distance, sol.weighted_distance, rel_tol=1e-6)
    assert math.isclose(rep.avg_distance_to_centre_km, sol.avg_distance_to_centre_km, rel_tol=1e-6)
    assert sol.pieces == rep.pieces
    assert sol.lower_bound is not None and sol.lower_bound <= sol.objective * (1 + 1e-9)
    assert 0 <= sol.gap < 1


@pytest.mark.parametrize(("k", "tol"), [(3, 0.05), (5, 0.05)])
def test_ri_heuristic_is_valid(ri: Raw, k: int, tol: float) -> None:
    p = make_problem(ri, k, tolerance=tol, mode="heuristic", window_rounds=1, window_pairs=4)
    sol = solve(p)
    _assert_consistent(p, sol)
    assert sol.max_deviation["workload"] <= tol + 1e-12


def test_ct_heuristic_tight_balance(ct: Raw) -> None:
    p = make_problem(ct, 4, tolerance=0.02, mode="heuristic", window_rounds=1, window_pairs=4)
    sol = solve(p)
    _assert_consistent(p, sol)
    assert set(sol.assignment) == set(ct.ids)
    assert sol.max_deviation["workload"] <= 0.02 + 1e-12


def test_exact_proves_optimality_on_ri_and_beats_heuristic(ri: Raw) -> None:
    exact = make_problem(ri, 3, tolerance=0.05, mode="exact", anchor_homes=True, time_limit=60)
    sol = solve(exact)
    _assert_consistent(exact, sol)
    assert sol.status == "optimal"
    assert sol.gap <= 1e-4
    heur = make_problem(ri, 3, tolerance=0.05, mode="heuristic", anchor_homes=True, window_rounds=0)
    hs = solve(heur)
    _assert_consistent(heur, hs)
    assert sol.objective <= hs.objective * (1 + 1e-9)
    # the heuristic's bound is a valid bound of the proven optimum
    assert hs.lower_bound <= sol.objective * (1 + 1e-9)


def test_determinism_byte_for_byte(ct: Raw) -> None:
    dumps = []
    for _ in range(2):
        p = make_problem(ct, 4, tolerance=0.03, mode="heuristic", seed=7, window_rounds=1, window_pairs=3)
        dumps.append(json.dumps(solve(p).to_dict(timings=False), sort_keys=True))
    assert dumps[0] == dumps[1]
    assert "timings" in solve(make_problem(ct, 2, mode="heuristic", window_rounds=0)).to_dict()


def test_locks_and_exclusions_are_honoured(ct: Raw) -> None:
    base = make_problem(ct, 4, tolerance=0.05, mode="heuristic", window_rounds=0)
    free = solve(base)
    # lock a boundary unit to the neighbouring rep it does not belong to
    pos = {u: i for i, u in enumerate(ct.ids)}
    locked: dict[str, str] = {}
    for a, b in ct.edges.tolist():
        ra, rb = free.assignment[ct.ids[a]], free.assignment[ct.ids[b]]
        if ra != rb:
            locked[ct.ids[a]] = rb
            break
    excluded = [ct.ids[i] for i in range(0, len(ct.ids), 40) if ct.ids[i] not in locked]
    homes = {int(h) for h in homes_for(ct.pop, 4)}
    excluded = [u for u in excluded if pos[u] not in homes]
    reps = [Rep(f"r{i}", int(h)) for i, h in enumerate(homes_for(ct.pop, 4))]
    opts = Options(tolerance=0.05, mode="heuristic", window_rounds=0, locked=locked, excluded=excluded)
    p = Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, opts, ct.is_bridge)
    sol = solve(p)
    _assert_consistent(p, sol)
    for u, r in locked.items():
        assert sol.assignment[u] == r
    for u in excluded:
        assert sol.assignment[u] is None


def test_quarterly_rebalance_respects_budget(ct: Raw) -> None:
    first = solve(make_problem(ct, 4, tolerance=0.03, mode="heuristic", window_rounds=0))
    current = {u: r for u, r in first.assignment.items() if r is not None}
    # perturb workloads by +15 % in the western third of the state
    west = ct.lonlat[:, 0] < np.quantile(ct.lonlat[:, 0], 1 / 3)
    pop2 = np.where(west, ct.pop * 1.15, ct.pop)
    reps = [Rep(f"r{i}", int(h)) for i, h in enumerate(homes_for(ct.pop, 4))]
    opts = Options(
        tolerance=0.03,
        mode="heuristic",
        window_rounds=1,
        window_pairs=6,
        current=current,
        max_moved_units=0.10,
    )
    p = Problem(ct.ids, {"workload": pop2}, ct.lonlat, ct.edges, reps, opts, ct.is_bridge)
    before = check(p, current)
    assert not before.ok  # the perturbation broke the balance
    sol = solve(p)
    rep = check(p, sol.assignment)
    assert rep.ok, rep.errors
    assert rep.moved_units <= 0.10 + 1e-12
    scratch_opts = Options(tolerance=0.03, mode="heuristic", window_rounds=0, current=current)
    scratch = solve(
        Problem(ct.ids, {"workload": pop2}, ct.lonlat, ct.edges, reps, scratch_opts, ct.is_bridge)
    )
    moved_scratch = check(
        Problem(ct.ids, {"workload": pop2}, ct.lonlat, ct.edges, reps, scratch_opts, ct.is_bridge),
        scratch.assignment,
    ).moved_units
    assert rep.moved_units < moved_scratch


def test_solution_is_json_safe(ri: Raw) -> None:
    sol = solve(make_problem(ri, 3, mode="heuristic", window_rounds=0))
    text = json.dumps(sol.to_dict(), allow_nan=False)
    assert json.loads(text)["status"] == sol.status


def test_from_geodataframe_gives_polsby_popper(opt_data_dir) -> None:  # type: ignore[no-untyped-def]
    import geopandas as gpd
    import pandas as pd

    base = opt_data_dir / "fixtures" / "fixture_ri_zcta2010_covsimp0p001_pop"
    gdf = gpd.read_file(f"{base}.geojson")
    adj = pd.read_csv(f"{base}_adjacency_touches.csv", dtype=str)
    raw_ids = list(gdf["zcta"])
    reps = [Rep("a", raw_ids[0]), Rep("b", raw_ids[40])]
    p = Problem.from_geodataframe(
        gdf,
        id_column="zcta",
        measures=["pop2010"],
        edges=list(zip(adj["a"], adj["b"], strict=True)),
        reps=reps,
        options=Options(tolerance=0.5, contiguity=False, mode="heuristic", window_rounds=0),
    )
    sol = solve(p)
    rep = check(p, sol.assignment)
    assert rep.ok, rep.errors
    assert set(sol.polsby_popper) == {"a", "b"}
    for r in ("a", "b"):
        assert 0 < sol.polsby_popper[r] <= 1
        assert math.isclose(sol.polsby_popper[r], rep.polsby_popper[r], rel_tol=1e-6)


def test_exact_matches_brute_force_and_bound_is_valid() -> None:
    """On a 2x4 grid with 3 reps, enumerate all 3^8 plans: the exact optimum equals the brute-force optimum
    and the relaxation bound never exceeds it."""
    import itertools

    from .conftest import grid

    ids, _, lonlat, edges = grid(2, 4)
    w = np.array([3.0, 1.0, 2.0, 2.0, 1.0, 3.0, 2.0, 2.0])
    reps = [Rep("a", 0), Rep("b", 3), Rep("c", 5)]
    opts = Options(tolerance=0.35, mode="exact", anchor_homes=True, workers=1, time_limit=30)
    p = Problem(ids, {"workload": w}, lonlat, edges, reps, opts)
    best = math.inf
    for plan in itertools.product(["a", "b", "c"], repeat=8):
        if plan[0] != "a" or plan[3] != "b" or plan[5] != "c":
            continue
        rep = check(p, list(plan))
        if rep.ok:
            best = min(best, rep.weighted_distance)
    assert math.isfinite(best)
    sol = solve(p)
    assert sol.status == "optimal"
    assert math.isclose(sol.objective, best, rel_tol=1e-6)
    assert sol.lower_bound <= best * (1 + 1e-9)
    heur = solve(
        Problem(
            ids,
            {"workload": w},
            lonlat,
            edges,
            reps,
            Options(tolerance=0.35, mode="heuristic", anchor_homes=True),
        )
    )
    assert check(p, heur.assignment).ok
    assert heur.objective >= best * (1 - 1e-9)


def test_two_measures_with_their_own_tolerances(ct: Raw) -> None:
    rng = np.random.default_rng(3)
    potential = ct.pop * rng.uniform(0.5, 1.5, size=len(ct.pop))
    reps = [Rep(f"r{i}", int(h)) for i, h in enumerate(homes_for(ct.pop, 3))]
    opts = Options(tolerance={"workload": 0.05, "potential": 0.10}, mode="heuristic", window_rounds=0)
    p = Problem(
        ct.ids, {"workload": ct.pop, "potential": potential}, ct.lonlat, ct.edges, reps, opts, ct.is_bridge
    )
    sol = solve(p)
    rep = check(p, sol.assignment)
    assert rep.ok, rep.errors
    assert rep.max_deviation["workload"] <= 0.05 + 1e-12
    assert rep.max_deviation["potential"] <= 0.10 + 1e-12


def test_chosen_centres_that_cannot_be_balanced_are_chosen_again_once() -> None:
    """No split of 3-3-2-3-3 reaches 7 +-5 %, whatever the centres: the solver tries a second set of centres
    (another seed), then returns its best plan as no_solution, with both attempts in the notes."""
    from .conftest import grid

    ids, _w, lonlat, edges = grid(1, 5)
    w = np.array([3.0, 3.0, 2.0, 3.0, 3.0])
    opts = Options(tolerance=0.05, mode="heuristic", seed=4, window_rounds=0)
    p = Problem(ids, {"workload": w}, lonlat, edges, [Rep("a"), Rep("b")], opts)
    sol = solve(p)
    report = check(p, sol.assignment)
    assert not report.missing and not report.duplicates
    assert not report.ok and sol.status == "no_solution"
    assert any("chosen with seed 4 could not be balanced" in n for n in sol.notes)
    assert sol.details["unbalanced_attempt"]["balanced"] is False
    # homes given: nothing to choose again
    fixed = Problem(ids, {"workload": w}, lonlat, edges, [Rep("a", 0), Rep("b", 4)], opts)
    assert not any("could not be balanced" in n for n in solve(fixed).notes)


def test_a_slow_centre_choice_stops_at_half_the_time_limit(ct: Raw) -> None:
    """Past half the time limit every Lloyd loop of the centre choice stops after its round: the plan is still
    complete and checked, and the notes say the guard acted (here the limit is already over at the start)."""
    reps = [Rep(f"r{i}") for i in range(3)]
    opts = Options(tolerance=0.05, mode="heuristic", time_limit=1e-6, window_rounds=0)
    p = Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, opts, ct.is_bridge)
    sol = solve(p)
    assert check(p, sol.assignment).ok
    assert any("cut the centre choice short" in n for n in sol.notes)
    assert sol.details["centre_starts"]["cut_short"] is True
    relaxed = Problem(
        ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, Options(tolerance=0.05), ct.is_bridge
    )
    assert not any("centre choice" in n for n in solve(relaxed).notes)


def test_exact_mode_reports_a_proven_infeasible_request() -> None:
    """The pre-check passes (no unit is too heavy), but no contiguous split of 3-3-2-3-3 reaches 7 +-5 %:
    CP-SAT proves it, and the solver says so instead of returning a plan."""
    from .conftest import grid

    ids, _w, lonlat, edges = grid(1, 5)
    w = np.array([3.0, 3.0, 2.0, 3.0, 3.0])
    opts = Options(tolerance=0.05, mode="exact", anchor_homes=True)
    p = Problem(ids, {"workload": w}, lonlat, edges, [Rep("a", 0), Rep("b", 4)], opts)
    sol = solve(p)
    assert sol.status == "infeasible"
    assert sol.assignment == {}
    assert any("CP-SAT proved" in r for r in sol.reasons)
    assert "setup" in sol.timings  # the stage times come with the early return


def test_without_the_final_bound_the_plan_is_the_same_and_the_bound_stays_valid(ct: Raw) -> None:
    """``final_bound=False`` skips the relaxation's second solve: same plan, a bound no higher than the full
    one and still below the objective; with centres that moved it reports no bound rather than a wrong one."""
    opts = {"tolerance": 0.05, "mode": "heuristic", "window_rounds": 0, "rebuild_clusters": 0}
    full = solve(make_problem(ct, 5, seed=2, **opts))
    quick = solve(make_problem(ct, 5, seed=2, final_bound=False, **opts))
    assert quick.assignment == full.assignment
    assert "transport_bound" in full.timings and "transport_bound" not in quick.timings
    assert full.lower_bound is not None and quick.lower_bound is not None and full.objective is not None
    assert quick.lower_bound <= full.lower_bound + 1e-6 * full.objective
    assert quick.lower_bound <= full.objective
    reps = [Rep(f"r{i}") for i in range(5)]
    quick_opts = Options(final_bound=False, **opts)  # type: ignore[arg-type]
    chosen = Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, quick_opts, ct.is_bridge)
    moved = solve(chosen)
    assert check(chosen, moved.assignment).ok
    assert moved.details["heuristic"].get("recentre", {}).get("rounds")
    assert moved.lower_bound is None and moved.gap is None
