"""Demo counties (Census cb_2016 via plotly-geo) and synthetic reps/accounts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import shapely

from geodata import GeodataError, UnitSet, build_adjacency, prepare_units
from geodata.demo import demo_counties, synthetic_accounts, synthetic_reps

# counties per state in the 2016 Census files (CT 8, MA 14, RI 5, NH 10, VT 14, ME 16, NY 62, NJ 21, PA 67)
EXPECTED = {"09": 8, "25": 14, "44": 5, "33": 10, "50": 14, "23": 16, "36": 62, "34": 21, "42": 67}


@pytest.fixture(scope="module")
def counties() -> UnitSet:
    return prepare_units(demo_counties(), level="county")


def test_demo_counties(counties: UnitSet) -> None:
    raw = demo_counties()
    assert raw.driver == "ESRI Shapefile" and raw.crs == "EPSG:4269"
    assert (raw.frame["code"] == raw.frame["GEOID"]).all()
    frame = counties.frame
    assert Counter(frame["state"]) == EXPECTED
    assert frame["code"].tolist() == raw.frame["GEOID"].tolist()
    assert all(code[:2] == state for code, state in zip(frame["code"], frame["state"], strict=True))
    assert frame["code"].is_unique
    assert frame.geometry.is_valid.all()
    assert frame["population"].isna().all()
    assert frame.loc[frame["code"] == "09003", "name"].item() == "Hartford"
    # the nine contiguous states form one component (Nantucket/Dukes islands are bridged)
    adj = build_adjacency(frame.geometry)
    assert adj.n_components(len(frame)) == 1
    assert adj.n_components_before_bridges <= 3
    only_ri = prepare_units(demo_counties(["44"]), level="county")
    assert sorted(only_ri.frame["code"]) == ["44001", "44003", "44005", "44007", "44009"]
    with pytest.raises(GeodataError):
        demo_counties(["9"])


def test_synthetic_reps_are_deterministic(counties: UnitSet) -> None:
    reps = synthetic_reps(counties, 12, seed=42)
    assert reps == synthetic_reps(counties, 12, seed=42)
    assert reps != synthetic_reps(counties, 12, seed=43)
    assert [r["external_id"] for r in reps] == [f"REP-{i:03d}" for i in range(1, 13)]
    geoms = dict(zip(counties.frame["code"], counties.frame.geometry, strict=True))
    for rep in reps:
        assert rep["capacity"] == 1.0 and rep["name"]
        assert shapely.contains(geoms[rep["home_unit_code"]], shapely.Point(rep["lon"], rep["lat"]))


def test_synthetic_accounts_are_deterministic_and_inside_their_unit(counties: UnitSet) -> None:
    accounts = synthetic_accounts(counties, 3000, seed=7)
    assert accounts == synthetic_accounts(counties, 3000, seed=7)
    assert accounts != synthetic_accounts(counties, 3000, seed=8)
    assert accounts[0]["external_id"] == "ACC-000001" and accounts[-1]["external_id"] == "ACC-003000"
    geoms = dict(zip(counties.frame["code"], counties.frame.geometry, strict=True))
    points = shapely.points([a["lon"] for a in accounts], [a["lat"] for a in accounts])
    units = np.array([geoms[a["unit_code"]] for a in accounts], dtype=object)
    assert shapely.contains(units, points).all()
    assert {a["stage"] for a in accounts} == {"prospect", "open", "won", "lost"}
    assert {a["segment"] for a in accounts} == {"SMB", "MidMarket", "Enterprise"}
    assert all(a["value"] > 0 and a["workload"] > 0 and a["name"] for a in accounts)
    # population is unknown here, so units are drawn in proportion to their area
    area = dict(zip(counties.frame["code"], counties.frame["area_km2"], strict=True))
    counts = Counter(a["unit_code"] for a in accounts)
    big = max(area, key=lambda c: area[c])
    small = min(area, key=lambda c: area[c])
    assert counts[big] > 10 * counts[small]


def test_population_weighting(counties: UnitSet) -> None:
    weighted = UnitSet(
        frame=counties.frame.copy(),
        level="county",
        problems=[],
        code_field="code",
        name_field=None,
        population_field=None,
    )
    # all the people live in Suffolk County MA (Boston): every account goes there
    weighted.frame["population"] = np.where(weighted.frame["code"] == "25025", 1_000_000.0, 0.0)
    accounts = synthetic_accounts(weighted, 200, seed=1)
    assert {a["unit_code"] for a in accounts} == {"25025"}
