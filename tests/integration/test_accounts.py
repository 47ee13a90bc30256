"""Accounts CRUD on the CT workspace: create places, get, list with paging and filters, patch, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.integration.ingest_helpers import PROBLEM, counts, expected_unit, import_ct, inside, stored


@pytest.fixture
def ct(client: TestClient, data_dir: Path) -> Path:
    import_ct(client, data_dir)
    return data_dir


def _create(client: TestClient, **body: Any) -> Any:
    return client.post("/accounts", json=body)


def test_create_places_by_point_and_returns_location(client: TestClient, ct: Path, session: Session) -> None:
    lon, lat = inside(ct, "06103")
    response = _create(client, external_id="C/1 x", name="Created", lon=lon, lat=lat, value=5, segment="SMB")
    assert response.status_code == 201, response.text
    assert response.headers["location"].endswith("/accounts/C%2F1%20x")
    body = response.json()
    assert (
        body["unit"] == {"level": "zcta", "code": expected_unit(ct, lon, lat)}
        and body["placement"] == "point"
    )
    assert body["workload"] == 1 and body["stage"] == "prospect"  # defaults
    assert stored(session, "C/1 x")["unit"] == "06103"
    again = client.get(response.headers["location"])
    assert again.status_code == 200 and again.json()["external_id"] == "C/1 x"


def test_create_by_zip_pads_and_places(client: TestClient, ct: Path) -> None:
    response = _create(client, external_id="Z1", name="Zip", zip="6810")
    assert response.status_code == 201, response.text
    assert response.json()["zip"] == "06810" and response.json()["unit"]["code"] == "06810"
    assert response.json()["placement"] == "zip"


def test_create_outside_every_unit_is_kept_unplaced(client: TestClient, ct: Path) -> None:
    response = _create(client, external_id="O1", name="Denver", lon=-104.99, lat=39.74)
    assert response.status_code == 201, response.text
    assert response.json()["unit"] is None and response.json()["placement"] == "unmatched"
    listed = client.get("/accounts", params={"unplaced": True}).json()
    assert [a["external_id"] for a in listed["items"]] == ["O1"]


def test_duplicate_create_is_409_and_changes_nothing(client: TestClient, ct: Path, session: Session) -> None:
    assert _create(client, external_id="D1", name="First", zip="06320").status_code == 201
    before = counts(session)
    response = _create(client, external_id="D1", name="Second")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["external_id"] == "D1"
    assert counts(session) == before and stored(session, "D1")["name"] == "First"


def test_swapped_coordinates_in_a_body_are_422(client: TestClient, ct: Path, session: Session) -> None:
    lon, lat = inside(ct, "06810")
    before = counts(session)
    response = _create(client, external_id="S1", name="Swapped", lon=lat, lat=lon)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    error = response.json()["errors"][0]
    assert error["field"] == "lat" and "look swapped" in error["message"]
    assert counts(session) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"workload": -1}, "body.workload"),
        ({"value": -0.5}, "body.value"),
        ({"lat": 91}, "body.lat"),
        ({"stage": "maybe"}, "body.stage"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_invalid_bodies_name_the_field(
    client: TestClient, session: Session, body: dict[str, Any], field: str
) -> None:
    before = counts(session)
    response = _create(client, external_id="V1", name="Invalid", **body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert field in [e["field"] for e in response.json()["errors"]]
    assert counts(session) == before


def test_get_and_404(client: TestClient, ct: Path) -> None:
    assert _create(client, external_id="G1", name="Get me", zip="06320", crm_owner="R1").status_code == 201
    response = client.get("/accounts/G1")
    assert response.status_code == 200
    assert response.json()["crm_owner"] == "R1" and response.json()["unit"]["code"] == "06320"
    missing = client.get("/accounts/nope")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(PROBLEM)
    assert "nope" in missing.json()["detail"]


def test_list_pages_with_total_and_next_links(client: TestClient, ct: Path) -> None:
    rows = "\n".join(f"L{k:02d},Acct {k},06320,{'won' if k % 3 == 0 else 'open'}" for k in range(25))
    upload = client.post("/accounts/uploads", files={"file": ("a.csv", f"id,name,zip,stage\n{rows}\n")})
    assert upload.status_code == 200, upload.text
    url: str | None = "/accounts?limit=10"
    seen: list[str] = []
    while url:
        page = client.get(url)
        assert page.status_code == 200
        body = page.json()
        assert body["total"] == 25 and len(body["items"]) <= 10
        seen += [item["external_id"] for item in body["items"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        if url:
            assert 'rel="next"' in page.headers["link"]
    assert seen == [f"L{k:02d}" for k in range(25)]
    won = client.get("/accounts", params={"stage": "won"}).json()
    assert won["total"] == 9 and {a["stage"] for a in won["items"]} == {"won"}
    in_unit = client.get("/accounts", params={"unit": "06320", "limit": 1}).json()
    assert in_unit["total"] == 25 and len(in_unit["items"]) == 1
    assert client.get("/accounts", params={"limit": 6000}).status_code == 400


def test_patch_moves_the_account_and_keeps_other_fields(
    client: TestClient, ct: Path, session: Session
) -> None:
    a = inside(ct, "06810")
    b = inside(ct, "06103")
    assert (
        _create(client, external_id="P1", name="Patch", lon=a[0], lat=a[1], zip="06810", value=3).status_code
        == 201
    )
    response = client.patch("/accounts/P1", json={"lon": b[0], "lat": b[1]})
    assert response.status_code == 200, response.text
    assert response.json()["unit"]["code"] == "06103" and response.json()["value"] == 3
    # Only the ZIP: the stored point is kept and still wins.
    response = client.patch("/accounts/P1", json={"zip": "06320"})
    assert response.json()["unit"]["code"] == "06103" and response.json()["zip"] == "06320"
    # Clear the point: now the ZIP places it.
    response = client.patch("/accounts/P1", json={"lon": None, "lat": None, "workload": 4})
    assert response.json()["unit"]["code"] == "06320" and response.json()["placement"] == "zip"
    assert stored(session, "P1")["workload"] == 4 and stored(session, "P1")["name"] == "Patch"
    assert client.patch("/accounts/nope", json={"name": "x"}).status_code == 404


def test_delete_then_404(client: TestClient, ct: Path, session: Session) -> None:
    assert _create(client, external_id="X1", name="Delete me").status_code == 201
    before = counts(session)
    response = client.delete("/accounts/X1")
    assert response.status_code == 204
    assert counts(session)["account"] == before["account"] - 1
    again = client.delete("/accounts/X1")
    assert again.status_code == 404 and again.headers["content-type"].startswith(PROBLEM)
