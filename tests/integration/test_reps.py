"""Reps: CRUD and bulk upload; a home ZIP becomes the ZCTA's centroid; bad rows are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.integration.ingest_helpers import (
    PROBLEM,
    counts,
    ct_shapes,
    error_for,
    import_ct,
    inside,
    rejected,
    upload,
)


@pytest.fixture
def ct(client: TestClient, data_dir: Path) -> Path:
    import_ct(client, data_dir)
    return data_dir


def _home(session: Session, external_id: str) -> tuple[float | None, float | None]:
    row = session.execute(
        text("SELECT ST_X(home), ST_Y(home) FROM rep WHERE external_id = :id"), {"id": external_id}
    ).one()
    return row[0], row[1]


def test_upload_reps_with_points_and_home_zips(client: TestClient, ct: Path, session: Session) -> None:
    a = inside(ct, "06810")
    content = (
        "Rep ID,Full Name,Home ZIP,lon,lat,capacity,team,active\n"
        f"R1,Ann,,{a[0]},{a[1]},1.5,East,yes\n"
        "R2,Bob,6320,,,,West,0\n"
        "R3,Cy,,,,2,,\n"
    )
    response = upload(client, "reps", content)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["inserted"] == 3 and report["columns"]["home_zip"] == "Home ZIP"
    assert [(w["row"], w["field"]) for w in report["warnings"]] == [(3, "home_zip")]
    assert _home(session, "R1") == pytest.approx(a)
    # Independent: the centroid of the fixture's 06320 geometry (shapely), within centroid-method tolerance.
    centroid = ct_shapes(ct)["06320"].centroid
    lon, lat = _home(session, "R2")
    assert lon is not None and lat is not None
    assert shapely.Point(lon, lat).distance(centroid) < 1e-6
    assert _home(session, "R3") == (None, None)
    reps = {r["external_id"]: r for r in client.get("/reps").json()["items"]}
    assert reps["R1"]["capacity"] == 1.5 and reps["R1"]["segment"] == "East" and reps["R1"]["active"] is True
    assert reps["R2"]["home_zip"] == "06320" and reps["R2"]["capacity"] == 1 and reps["R2"]["active"] is False
    assert reps["R3"]["active"] is True and reps["R3"]["capacity"] == 2


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ("R9,Zero,,,,0,,", "capacity", "> 0"),
        ("R9,Neg,,,,-1,,", "capacity", "> 0"),
        ("R9,Bool,,,,1,,perhaps", "active", "true or false"),
        ("R9,NoZip,99999,,,1,,", "home_zip", "matches no zcta unit"),
        ("R9,Range,,200,41,1,,", "lon", "outside -180..180"),
    ],
)
def test_bad_rep_rows_are_named_and_change_nothing(
    client: TestClient, ct: Path, session: Session, row: str, field: str, words: str
) -> None:
    assert upload(client, "reps", "id,name\nR1,Keep\n").status_code == 200
    before = counts(session)
    content = f"id,name,home_zip,lon,lat,capacity,segment,active\nR1,Changed,,,,5,,\n{row}\n"
    body = rejected(upload(client, "reps", content), session, before)
    assert words in error_for(body, 3, field)["message"]
    assert client.get("/reps/R1").json()["name"] == "Keep"


def test_swapped_rep_home(client: TestClient, ct: Path, session: Session) -> None:
    lon, lat = inside(ct, "06103")
    before = counts(session)
    body = rejected(upload(client, "reps", f"id,name,lon,lat\nR1,Swap,{lat},{lon}\n"), session, before)
    assert "look swapped" in error_for(body, 2, "lat")["message"]


def test_rep_crud(client: TestClient, ct: Path, session: Session) -> None:
    created = client.post(
        "/reps", json={"external_id": "R1", "name": "Ann", "home_zip": "06810", "capacity": 2}
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith("/reps/R1")
    assert created.json()["home_zip"] == "06810" and created.json()["lon"] is not None
    assert client.post("/reps", json={"external_id": "R1", "name": "Again"}).status_code == 409
    bad = client.post("/reps", json={"external_id": "R2", "name": "Zero", "capacity": 0})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    assert [e["field"] for e in bad.json()["errors"]] == ["body.capacity"]

    patched = client.patch("/reps/R1", json={"active": False, "segment": "West"})
    assert patched.status_code == 200
    assert patched.json()["active"] is False and patched.json()["capacity"] == 2
    assert patched.json()["home_zip"] == "06810"
    assert client.get("/reps", params={"active": False}).json()["total"] == 1
    assert client.get("/reps", params={"active": True}).json()["total"] == 0

    assert client.delete("/reps/R1").status_code == 204
    missing = client.get("/reps/R1")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(PROBLEM)
    assert counts(session)["rep"] == 0


def test_rep_list_pages(client: TestClient, session: Session) -> None:
    content = "id,name\n" + "\n".join(f"R{k:02d},Rep {k}" for k in range(7)) + "\n"
    assert upload(client, "reps", content).status_code == 200
    first = client.get("/reps", params={"limit": 3}).json()
    assert first["total"] == 7 and [r["external_id"] for r in first["items"]] == ["R00", "R01", "R02"]
    links = {link["rel"]: link["href"] for link in first["links"]}
    second = client.get(links["next"]).json()
    assert [r["external_id"] for r in second["items"]] == ["R03", "R04", "R05"]
    assert json.dumps(second).count('"prev"') == 1
