"""Account uploads on the CT workspace: placement by point, by ZIP, unmatched; formats; upserts."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.integration.ingest_helpers import (
    counts,
    ct_shapes,
    error_for,
    expected_unit,
    import_ct,
    inside,
    rejected,
    stored,
    upload,
)


@pytest.fixture
def ct(client: TestClient, data_dir: Path) -> Path:
    import_ct(client, data_dir)
    return data_dir


def test_csv_upload_places_every_account_by_point_or_zip_and_keeps_the_unmatched(
    client: TestClient, ct: Path, session: Session
) -> None:
    a = inside(ct, "06810")
    b = inside(ct, "06103")
    c = inside(ct, "06320")
    rows = [
        "external_id,name,lon,lat,zip,value,workload,stage,segment,crm_owner",
        f"A1,Danbury Tools,{a[0]},{a[1]},,1000,2,open,SMB,R1",
        f"A2,Hartford Ins,{b[0]},{b[1]},06103,5000,3,won,Enterprise,R2",
        "A3,Zip Only,,,06320,10,1,prospect,SMB,",
        "A4,Out Of State,-104.99,39.74,80202,7,1,lost,,",  # Denver: no CT unit, no CT ZCTA
        f"A5,Point Wins,{c[0]},{c[1]},06810,1,1,open,SMB,",  # point in 06320, ZIP says 06810
        "A6,No Location,,,,0,0,prospect,,",
    ]
    response = upload(client, "accounts", "\n".join(rows) + "\n")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows"] == 6 and report["inserted"] == 6 and report["updated"] == 0
    assert report["level"] == "zcta"
    assert report["placement"] == {"point": 3, "zip": 1, "unmatched": 2}
    assert report["unplaced_count"] == 2
    assert [(u["row"], u["external_id"]) for u in report["unplaced"]] == [(5, "A4"), (7, "A6")]
    assert counts(session)["account"] == 6

    # Independent: the fixture geometry (shapely) says which unit covers each point.
    for external_id, (lon, lat) in {"A1": a, "A2": b, "A5": c}.items():
        row = stored(session, external_id)
        assert row["placement"] == "point"
        assert row["unit"] == expected_unit(ct, lon, lat) is not None
    assert stored(session, "A3")["unit"] == "06320" and stored(session, "A3")["placement"] == "zip"
    assert stored(session, "A4")["unit"] is None and stored(session, "A4")["placement"] == "unmatched"
    assert stored(session, "A4")["lon"] == pytest.approx(-104.99)  # kept, never dropped
    # Independent SQL: no placed point lies outside its unit.
    outside = session.execute(
        text(
            "SELECT count(*) FROM account a JOIN geo_unit u ON u.id = a.unit_id "
            "WHERE a.placement = 'point' AND NOT ST_Covers(u.geom, a.location)"
        )
    ).scalar_one()
    assert outside == 0

    unplaced = client.get("/accounts", params={"unplaced": "true"}).json()
    assert unplaced["total"] == 2
    assert [item["external_id"] for item in unplaced["items"]] == ["A4", "A6"]
    assert all(item["unit"] is None and item["placement"] == "unmatched" for item in unplaced["items"])


@pytest.mark.parametrize("n", [300, 2500])  # point by point, then unit by unit (more points than units)
def test_points_spread_over_the_state_match_shapely(
    client: TestClient, ct: Path, session: Session, n: int
) -> None:
    rng = np.random.default_rng(3)
    shapes = ct_shapes(ct)
    minx, miny, maxx, maxy = shapely.union_all(list(shapes.values())).bounds
    lons = np.round(rng.uniform(minx, maxx, n), 6)
    lats = np.round(rng.uniform(miny, maxy, n), 6)
    lines = ["id,name,longitude,latitude"] + [f"P{k:04d},Acct {k},{lons[k]},{lats[k]}" for k in range(n)]
    response = upload(client, "accounts", "\n".join(lines))
    assert response.status_code == 200, response.text
    got = dict(
        session.execute(
            text("SELECT a.external_id, u.code FROM account a LEFT JOIN geo_unit u ON u.id = a.unit_id")
        ).all()
    )
    # Independent: shapely on the fixture file; the lowest covering code wins on shared borders.
    expected: dict[str, str | None] = {f"P{k:04d}": None for k in range(n)}
    points = shapely.points(lons, lats)
    for code in sorted(shapes, reverse=True):
        for k in np.flatnonzero(shapely.covers(shapes[code], points)):
            expected[f"P{k:04d}"] = code
    assert got == expected
    unmatched = sum(v is None for v in expected.values())
    assert 0 < unmatched < n  # the box reaches outside CT (sea, New York)
    assert response.json()["placement"] == {"point": n - unmatched, "zip": 0, "unmatched": unmatched}


def test_reupload_updates_by_external_id(client: TestClient, ct: Path, session: Session) -> None:
    a = inside(ct, "06810")
    first = f"external_id,name,lon,lat,workload\nA1,One,{a[0]},{a[1]},1\nA2,Two,,,2\n"
    assert upload(client, "accounts", first).status_code == 200
    before = counts(session)
    second = "external_id,name,zip,workload\nA1,One renamed,06320,5\nA3,Three,06103,1\n"
    response = upload(client, "accounts", second)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1 and response.json()["updated"] == 1
    assert response.json()["unchanged"] == 0
    assert counts(session)["account"] == before["account"] + 1
    row = stored(session, "A1")
    assert row["name"] == "One renamed" and row["workload"] == 5
    # The location group was replaced: no point any more, placed by its new ZIP.
    assert row["lon"] is None and row["unit"] == "06320" and row["placement"] == "zip"
    assert stored(session, "A2")["workload"] == 2  # untouched
    again = upload(client, "accounts", second)
    assert (again.json()["inserted"], again.json()["updated"], again.json()["unchanged"]) == (0, 0, 2)


def test_upload_without_location_columns_keeps_the_stored_location(
    client: TestClient, ct: Path, session: Session
) -> None:
    a = inside(ct, "06810")
    assert upload(client, "accounts", f"id,name,lon,lat\nA1,One,{a[0]},{a[1]}\n").status_code == 200
    response = upload(client, "accounts", "id,workload,segment\nA1,7.5,Enterprise\n")
    assert response.status_code == 200, response.text
    row = stored(session, "A1")
    assert row["name"] == "One" and row["workload"] == 7.5 and row["segment"] == "Enterprise"
    assert row["unit"] == "06810" and row["lon"] == pytest.approx(a[0])


def test_geojson_points_with_numeric_zip_and_properties(
    client: TestClient, ct: Path, session: Session
) -> None:
    a = inside(ct, "06810")
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(a)},
            "properties": {"id": "G1", "name": "Geo One", "value": 12.5, "stage": "Open"},
        },
        {"type": "Feature", "geometry": None, "properties": {"id": "G2", "name": "Geo Two", "zip": 6320}},
    ]
    body = json.dumps({"type": "FeatureCollection", "features": features})
    response = upload(client, "accounts", body, name="accounts.geojson")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["format"] == "geojson" and report["placement"] == {"point": 1, "zip": 1, "unmatched": 0}
    warning = next(w for w in report["warnings"] if w["field"] == "zip")
    assert warning["row"] == 2 and "leading zero" in warning["message"]
    assert stored(session, "G1")["unit"] == "06810" and stored(session, "G1")["stage"] == "open"
    assert stored(session, "G2")["zip"] == "06320" and stored(session, "G2")["unit"] == "06320"


def test_geojson_with_a_polygon_is_rejected_naming_the_feature(client: TestClient, session: Session) -> None:
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [-72.9, 41.3]},
            "properties": {"id": "1", "name": "x"},
        },
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
            "properties": {"id": "2", "name": "y"},
        },
    ]
    before = counts(session)
    response = upload(
        client, "accounts", json.dumps({"type": "FeatureCollection", "features": features}), "a.json"
    )
    body = rejected(response, session, before)
    assert "Point" in error_for(body, 2, "geometry")["message"]


def test_xlsx_upload_keeps_row_numbers_and_pads_numeric_zips(
    client: TestClient, ct: Path, session: Session
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Account ID", "Account Name", "Postal Code", "Potential"])
    sheet.append(["X1", "Excel One", 6810, 100])
    sheet.append(["X2", "Excel Two", "06320", 250.5])
    buffer = io.BytesIO()
    workbook.save(buffer)
    mapping = json.dumps(
        {"external_id": "Account ID", "name": "Account Name", "zip": "Postal Code", "value": "Potential"}
    )
    response = upload(client, "accounts", buffer.getvalue(), name="accounts.xlsx", mapping=mapping)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["format"] == "xlsx" and report["rows"] == 2
    assert report["columns"]["zip"] == "Postal Code"
    assert [(w["row"], w["field"]) for w in report["warnings"]] == [(2, "zip")]
    assert stored(session, "X1")["zip"] == "06810" and stored(session, "X1")["unit"] == "06810"
    assert stored(session, "X2")["value"] == 250.5


def test_semicolon_csv_with_bom_and_zip_plus_four(client: TestClient, ct: Path, session: Session) -> None:
    content = "\ufeffExternal ID;Name;ZIP Code\nB1;Bom One;06320-4307\n".encode()
    response = upload(client, "accounts", content)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["encoding"] == "utf-8 with BOM" and report["delimiter"] == ";"
    assert report["warnings"] == []
    assert stored(session, "B1")["zip"] == "06320" and stored(session, "B1")["unit"] == "06320"


def test_upload_before_any_geography_stores_accounts_unplaced(client: TestClient, session: Session) -> None:
    response = upload(client, "accounts", "id,name,lon,lat\nN1,No geo,-72.9,41.3\n")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["level"] is None and report["placement"] == {"point": 0, "zip": 0, "unmatched": 1}
    assert report["unplaced"][0]["external_id"] == "N1"
    assert stored(session, "N1")["unit"] is None and stored(session, "N1")["lon"] == pytest.approx(-72.9)
