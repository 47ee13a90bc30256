"""The independent checker must catch broken plans (hand-made on a 4x4 grid)."""

from __future__ import annotations

import numpy as np

from optimizer import Options, Problem, Rep, check, solve

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


def _km(lonlat: np.ndarray, home: np.ndarray) -> np.ndarray:
    """Great-circle km by the haversine formula, written out here rather than taken from the optimizer."""
    lon1, lat1 = np.radians(lonlat[:, 0]), np.radians(lonlat[:, 1])
    lon2, lat2 = np.radians(home[0]), np.radians(home[1])
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.sqrt(a))


def test_distance_to_home_per_territory() -> None:
    ids, _, lonlat, edges = grid(4, 4)
    w = np.arange(1.0, 17.0)  # unequal weights, so a plain mean would differ from the weighted one
    reps = [Rep("west", "g0_0"), Rep("east", "g0_3")]
    p = Problem(ids, {"workload": w}, lonlat, edges, reps, Options(tolerance=1.0))
    plan = _halves()
    rep = check(p, plan)
    pos = {u: i for i, u in enumerate(ids)}
    for rid, home in (("west", lonlat[pos["g0_0"]]), ("east", lonlat[pos["g0_3"]])):
        idx = np.array([pos[u] for u, r in plan.items() if r == rid])
        expected = float((w[idx] * _km(lonlat[idx], home)).sum() / w[idx].sum())
        assert abs(rep.distance_to_home_km[rid] - expected) < 1e-6 * expected
    wsum = {rid: sum(w[pos[u]] for u, r in plan.items() if r == rid) for rid in ("west", "east")}
    mean = sum(rep.distance_to_home_km[r] * wsum[r] for r in wsum) / w.sum()
    assert abs(mean - rep.avg_distance_to_home_km) < 1e-9 * mean
    # the solver reports the same per territory for its own plan (its code path, not the checker's)
    sol = solve(p)
    again = check(p, sol.assignment)
    assert set(sol.distance_to_home_km) == {"west", "east"}
    for rid, km in sol.distance_to_home_km.items():
        assert abs(km - again.distance_to_home_km[rid]) < 1e-6 * max(km, 1e-9)
    rounded = {r: float(f"{v:.9g}") for r, v in sol.distance_to_home_km.items()}
    assert sol.to_dict()["distance_to_home_km"] == rounded


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
