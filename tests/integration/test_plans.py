"""Plans on real PostGIS: messy imports, exact diagnostics, comparison and export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.integration.helpers import row_counts
from tests.integration.plan_fixtures import (
    REPS,
    Workspace,
    clean_rows,
    load_ct_workspace,
    messy_rows,
    plan_csv,
)

PROBLEM = "application/problem+json"


@pytest.fixture
def ws(session: Session, data_dir: Path) -> Workspace:
    return load_ct_workspace(session, data_dir)


def upload_plan(
    client: TestClient, body: bytes, name: str = "plan", filename: str = "plan.csv", **form: Any
) -> Any:
    return client.post("/plans/imports", files={"file": (filename, body)}, data={"name": name, **form})


def test_messy_plan_diagnostics_match_an_independent_count(
    client: TestClient, ws: Workspace, session: Session
) -> None:
    rows, doubled, dropped = messy_rows(ws)
    response = upload_plan(client, plan_csv(rows), name="today")
    assert response.status_code == 201, response.text
    report = response.json()
    assert response.headers["location"] == f"/plans/{report['plan_id']}"
    assert report["contested_units"] == len(doubled) and report["unclaimed_units"] == len(dropped)

    diag = client.get(f"/plans/{report['plan_id']}/diagnostics").json()
    assert {u["code"] for u in diag["contested"]["units"]} == doubled
    assert {u["code"] for u in diag["uncovered"]["units"]} == dropped
    assert diag["summary"]["contested_units"] == 15 and diag["summary"]["uncovered_units"] == 12
    # accounts in those units, counted straight from SQL
    expected_contested = _accounts_in(session, doubled)
    assert {a["external_id"] for a in diag["contested"]["accounts"]} == expected_contested
    assert diag["summary"]["contested_accounts"] == len(expected_contested)
    assert diag["summary"]["uncovered_accounts"] == len(_accounts_in(session, dropped))
    population = dict(zip(ws.codes, ws.units.frame["population"], strict=True))
    assert diag["summary"]["uncovered_population"] == pytest.approx(sum(population[c] for c in dropped))


def test_territory_loads_deviation_and_pieces(client: TestClient, ws: Workspace, session: Session) -> None:
    rows = clean_rows(ws)
    plan_id = upload_plan(client, plan_csv(rows)).json()["plan_id"]
    diag = client.get(f"/plans/{plan_id}/diagnostics").json()
    territories = {t["territory"]: t for t in diag["territories"]}
    assert set(territories) == {f"T-{r}" for r in REPS}
    workload = dict(
        session.execute(
            text(
                "SELECT u.code, coalesce(sum(a.workload), 0) FROM geo_unit u "
                "LEFT JOIN account a ON a.unit_id = u.id GROUP BY u.code"
            )
        ).all()
    )
    total = sum(workload.values())
    for name, t in territories.items():
        mine = [code for territory, _, code in rows if territory == name]
        load = sum(workload[c] for c in mine)
        assert t["units"] == len(mine)
        assert t["loads"]["workload"] == pytest.approx(load, rel=1e-6)
        assert t["deviation_pct"]["workload"] == pytest.approx(100 * (load / (total / 5) - 1), abs=1e-3)
        assert t["pieces"] >= 1 and 0 < t["polsby_popper"] <= 1 and t["weighted_distance_km"] > 0
    # a territory made of two far-apart units has two pieces
    west, east = ws.codes[int(np.argmin(ws.lon))], ws.codes[int(np.argmax(ws.lon))]
    split = upload_plan(client, plan_csv([("T-split", "R1", west), ("T-split", "R1", east)])).json()[
        "plan_id"
    ]
    piece = client.get(f"/plans/{split}/diagnostics").json()["territories"][0]
    assert piece["pieces"] == 2 and piece["units"] == 2


def test_misaligned_accounts_and_reassignments(client: TestClient, ws: Workspace, session: Session) -> None:
    plan_id = upload_plan(client, plan_csv(clean_rows(ws))).json()["plan_id"]
    owner = {code: rep for _, rep, code in clean_rows(ws)}
    accounts = session.execute(
        text("SELECT a.external_id, u.code, a.crm_owner FROM account a JOIN geo_unit u ON u.id = a.unit_id")
    ).all()
    expected = {ext for ext, code, crm in accounts if crm != owner[code]}
    assert 0 < len(expected) < len(accounts)
    diag = client.get(f"/plans/{plan_id}/diagnostics", params={"limit": 10_000}).json()
    assert {a["external_id"] for a in diag["misaligned_accounts"]} == expected
    response = client.get(f"/plans/{plan_id}/reassignments")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    listed = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["account_external_id"] for r in listed} == expected
    assert all(r["new_owner"] == owner[_unit_of(accounts, r["account_external_id"])] for r in listed)


def test_compare_lists_exactly_the_moved_units(client: TestClient, ws: Workspace, session: Session) -> None:
    base = upload_plan(client, plan_csv(clean_rows(ws)), name="base").json()["plan_id"]
    owner = {code: rep for _, rep, code in clean_rows(ws)}
    moving = sorted(owner)[::40]
    moved = {code: REPS[(REPS.index(owner[code]) + 2) % 5] for code in moving}
    other = upload_plan(client, plan_csv(clean_rows(ws, moved)), name="proposal").json()["plan_id"]
    diff = client.get(f"/plans/{base}/compare/{other}").json()
    assert {m["unit"] for m in diff["moves"]} == set(moving)
    for move in diff["moves"]:
        assert move["from"] == [owner[move["unit"]]] and move["to"] == [moved[move["unit"]]]
    assert {a["external_id"] for a in diff["accounts"]} == _accounts_in(session, set(moving))
    gained = {r["rep"]: r["units_gained"] for r in diff["reps"]}
    assert sum(gained.values()) == len(moving)
    assert diff["units_moved_pct"] == pytest.approx(100 * len(moving) / 282, abs=1e-3)
    assert "delta" in diff["metrics"] and diff["metrics"]["delta"]["contested_units"] == 0


def test_account_limit_keeps_the_units_and_counts_but_caps_the_account_lists(
    client: TestClient, ws: Workspace, session: Session
) -> None:
    rows, doubled, dropped = messy_rows(ws)
    plan_id = upload_plan(client, plan_csv(rows), name="today").json()["plan_id"]
    full = client.get(f"/plans/{plan_id}/diagnostics").json()
    lean = client.get(f"/plans/{plan_id}/diagnostics", params={"account_limit": 0}).json()
    assert full["summary"] == lean["summary"] and lean["summary"]["contested_accounts"] > 0
    assert {u["code"] for u in lean["contested"]["units"]} == doubled
    assert {u["code"] for u in lean["uncovered"]["units"]} == dropped
    assert full["contested"]["accounts"] and full["misaligned_accounts"]
    assert lean["contested"]["accounts"] == lean["uncovered"]["accounts"] == lean["misaligned_accounts"] == []
    two = client.get(f"/plans/{plan_id}/diagnostics", params={"account_limit": 2}).json()
    assert two["contested"]["accounts"] == full["contested"]["accounts"][:2]

    base_id = upload_plan(client, plan_csv(clean_rows(ws)), name="base").json()["plan_id"]
    owner = {code: rep for _, rep, code in clean_rows(ws)}
    moving = sorted(owner)[::40]
    other = plan_csv(clean_rows(ws, {c: REPS[(REPS.index(owner[c]) + 1) % 5] for c in moving}))
    other_id = upload_plan(client, other, name="proposal").json()["plan_id"]
    diff = client.get(f"/plans/{base_id}/compare/{other_id}", params={"account_limit": 0}).json()
    assert diff["accounts"] == [] and diff["accounts_moved"] == len(_accounts_in(session, set(moving))) > 0
    assert {m["unit"] for m in diff["moves"]} == set(moving)
    bad = client.get(f"/plans/{plan_id}/diagnostics", params={"account_limit": -1})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    assert "account_limit" in bad.text


def test_reassignments_against_another_plan(client: TestClient, ws: Workspace, session: Session) -> None:
    base = upload_plan(client, plan_csv(clean_rows(ws)), name="base").json()["plan_id"]
    owner = {code: rep for _, rep, code in clean_rows(ws)}
    moving = sorted(owner)[5::30]
    moved = {code: REPS[(REPS.index(owner[code]) + 1) % 5] for code in moving}
    other = upload_plan(client, plan_csv(clean_rows(ws, moved)), name="proposal").json()["plan_id"]

    response = client.get(f"/plans/{other}/reassignments", params={"against": base})
    assert response.status_code == 200, response.text
    listed = list(csv.DictReader(io.StringIO(response.text)))
    # exactly the accounts of the moved units, whatever their CRM owner says
    assert {r["account_external_id"] for r in listed} == _accounts_in(session, set(moving))
    accounts = session.execute(
        text("SELECT a.external_id, u.code, a.crm_owner FROM account a JOIN geo_unit u ON u.id = a.unit_id")
    ).all()
    for r in listed:
        unit = _unit_of(accounts, r["account_external_id"])
        assert (r["old_owner"], r["new_owner"]) == (owner[unit], moved[unit])

    same = client.get(f"/plans/{base}/reassignments", params={"against": base})
    assert same.status_code == 400 and same.headers["content-type"].startswith(PROBLEM)
    assert same.json()["parameter"] == "against"
    missing = client.get(f"/plans/{base}/reassignments", params={"against": 999_999})
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(PROBLEM)


def test_export_csv_geojson_and_geopackage(client: TestClient, ws: Workspace, tmp_path: Path) -> None:
    rows, _, _ = messy_rows(ws)
    plan_id = upload_plan(client, plan_csv(rows)).json()["plan_id"]
    exported = client.get(f"/plans/{plan_id}/export", params={"format": "csv"})
    assert exported.status_code == 200
    got = {
        (r["territory"], r["rep_external_id"], r["unit_code"])
        for r in csv.DictReader(io.StringIO(exported.text))
    }
    assert got == set(rows)

    geo = client.get(f"/plans/{plan_id}/export", params={"format": "geojson"})
    assert geo.headers["content-type"].startswith("application/geo+json")
    features = geo.json()["features"]
    assert {f["properties"]["territory"] for f in features} == {f"T-{r}" for r in REPS}
    source = {f["properties"]["zcta"]: shapely.geometry.shape(f["geometry"]) for f in _fixture(ws)}
    for feature in features:
        mine = [
            source[code] for territory, _, code in rows if territory == feature["properties"]["territory"]
        ]
        union = shapely.union_all(mine)
        assert (
            shapely.geometry.shape(feature["geometry"]).symmetric_difference(union).area < 1e-6 * union.area
        )

    gpkg = client.get(f"/plans/{plan_id}/export", params={"format": "gpkg"})
    assert gpkg.status_code == 200
    path = tmp_path / "plan.gpkg"
    path.write_bytes(gpkg.content)
    frame = pyogrio.read_dataframe(path, layer="territories")
    assert sorted(frame["territory"]) == sorted(f["properties"]["territory"] for f in features)


def test_polygon_import_assigns_units_by_majority_area(
    client: TestClient, ws: Workspace, session: Session, tmp_path: Path
) -> None:
    # Two overlapping boxes over western and central Connecticut, built independently of the unit data.
    boxes = {"West": shapely.box(-73.8, 40.9, -72.75, 42.1), "Middle": shapely.box(-72.95, 40.9, -72.3, 42.1)}
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"territory": n, "rep": r},
                "geometry": shapely.geometry.mapping(b),
            }
            for (n, b), r in zip(boxes.items(), ["R1", "R2"], strict=True)
        ],
    }
    response = upload_plan(client, json.dumps(collection).encode(), filename="territories.geojson")
    assert response.status_code == 201, response.text
    plan_id = response.json()["plan_id"]
    expected: dict[str, set[str]] = {}
    for feature in _fixture(ws):
        geom = shapely.geometry.shape(feature["geometry"])
        owners = {n for n, b in boxes.items() if geom.intersection(b).area > 0.5 * geom.area}
        expected[feature["properties"]["zcta"]] = owners
    diag = client.get(f"/plans/{plan_id}/diagnostics", params={"limit": 1000}).json()
    assert {u["code"] for u in diag["contested"]["units"]} == {c for c, o in expected.items() if len(o) > 1}
    assert {u["code"] for u in diag["uncovered"]["units"]} == {c for c, o in expected.items() if not o}
    assert diag["summary"]["contested_units"] > 0 and diag["summary"]["uncovered_units"] > 0
    _ = session


@pytest.mark.parametrize(
    ("body", "words", "line"),
    [
        (b"territory,rep,unit\nT1,R1,06810\nT1,R1,99999\n", "no zcta unit", 3),
        (b"territory,rep,unit\nT1,R1,06810\nT2,NOBODY,06811\n", "unknown rep", 3),
        (b"territory,rep,unit\nT1,R1,06810\nT1,R2,06811\n", "already belongs", 3),
        (b"territory,rep,unit\nT1,R1,06810\nT1,R1,6x81\n", "5 digits", 3),
        (b"team,rep,unit\nT1,R1,06810\n", "territory", 1),
    ],
)
def test_bad_plan_files_change_nothing(
    client: TestClient, ws: Workspace, session: Session, body: bytes, words: str, line: int
) -> None:
    before = row_counts(session)
    plans_before = session.execute(text("SELECT count(*) FROM plan")).scalar_one()
    response = upload_plan(client, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert words in (problem["detail"] + json.dumps(problem.get("errors", []))).lower()
    if problem.get("errors"):
        assert any(e["line"] == line for e in problem["errors"])
    assert row_counts(session) == before
    assert session.execute(text("SELECT count(*) FROM plan")).scalar_one() == plans_before


def test_lost_leading_zero_and_zip4_are_read_with_a_warning(client: TestClient, ws: Workspace) -> None:
    response = upload_plan(client, b"territory,rep,unit\nT1,R1,6810\nT1,R1,06811-1234\n")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["claims"] == 2
    assert [w["line"] for w in body["warnings"]] == [2] and "leading zero" in body["warnings"][0]["message"]


def _accounts_in(session: Session, codes: set[str]) -> set[str]:
    rows = session.execute(
        text(
            "SELECT a.external_id FROM account a JOIN geo_unit u ON u.id = a.unit_id "
            "WHERE u.code = ANY(:codes)"
        ),
        {"codes": sorted(codes)},
    ).all()
    return {r[0] for r in rows}


def _unit_of(accounts: list[Any], external_id: str) -> str:
    return next(code for ext, code, _ in accounts if ext == external_id)


def _fixture(ws: Workspace) -> list[dict[str, Any]]:
    return [
        {"properties": {"zcta": code}, "geometry": shapely.geometry.mapping(geom)}
        for code, geom in zip(ws.codes, ws.units.frame.geometry.values, strict=True)
    ]
