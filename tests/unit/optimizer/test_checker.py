"""The independent checker must catch broken plans (hand-made on a 4x4 grid)."""

from __future__ import annotations

import numpy as np

from optimizer import Options, Problem, Rep, check

from .conftest import grid


def _problem(**opts: object) -> Problem:
    ids, w, lonlat, edges = grid(4, 4)
    reps = [Rep("west", "g0_0"), Rep("east", "g0_3")]
    return Problem(ids, {"workload": w}, lonlat, edges, reps, Options(**opts))  # type: ignore[arg-type]


def _halves() -> dict[str, str]:
    return {f"g{r}_{c}": ("west" if c < 2 else "east") for r in range(4) for c in range(4)}


def test_valid_plan_passes_and_is_scored() -> None:
    p = _problem(tolerance=0.0)
    rep = check(p, _halves())
    assert rep.ok, rep.errors
    assert rep.loads == {"west": {"workload": 8.0}, "east": {"workload": 8.0}}
    assert rep.pieces == {"west": 1, "east": 1}
    assert rep.max_deviation["workload"] == 0.0
    assert rep.weighted_distance > 0
    assert rep.avg_distance_to_centre_km > 0


def test_disconnected_territory_is_caught() -> None:
    p = _problem(tolerance=0.0)
    plan = _halves()
    plan["g3_0"], plan["g3_3"] = "east", "west"  # swap two corners: same loads, two broken territories
    rep = check(p, plan)
    assert not rep.ok
    assert rep.pieces == {"west": 2, "east": 2}
    assert any("pieces" in e for e in rep.errors)


def test_missing_unit_is_caught() -> None:
    p = _problem(tolerance=0.5)
    plan = _halves()
    del plan["g2_2"]
    rep = check(p, plan)
    assert not rep.ok
    assert rep.missing == ["g2_2"]


def test_load_out_of_tolerance_is_caught() -> None:
    p = _problem(tolerance=0.1)
    plan = _halves()
    plan["g0_2"] = "west"  # 9 vs 7 of target 8: 12.5 % off
    rep = check(p, plan)
    assert not rep.ok
    assert abs(rep.max_deviation["workload"] - 0.125) < 1e-12
    assert any("tolerance" in e for e in rep.errors)


def test_duplicate_owner_is_caught() -> None:
    p = _problem(tolerance=0.5)
    pairs = list(_halves().items()) + [("g0_0", "east")]
    rep = check(p, pairs)
    assert not rep.ok
    assert rep.duplicates == ["g0_0"]


def test_lock_and_budget_violations_are_caught() -> None:
    cur = _halves()
    p = _problem(tolerance=0.5, locked={"g1_1": "east"}, current=cur, max_moved_units=0.0)
    plan = dict(cur)
    plan["g0_2"] = "west"
    rep = check(p, plan)
    assert not rep.ok
    assert any("locked" in e for e in rep.errors)
    assert any("budget" in e for e in rep.errors)
    assert abs(rep.moved_units - 1 / 16) < 1e-12


def test_bridges_count_for_contiguity_but_are_reported() -> None:
    ids, w, lonlat, edges = grid(1, 4)
    edges = np.array([(0, 1), (2, 3), (1, 2)])
    p = Problem(
        ids, {"workload": w}, lonlat, edges, [Rep("a", 0)], Options(tolerance=0.0), is_bridge=[0, 0, 1]
    )
    rep = check(p, dict.fromkeys(ids, "a"))
    assert rep.ok
    assert rep.pieces == {"a": 1}
    assert rep.pieces_without_bridges == {"a": 2}
