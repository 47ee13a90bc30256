"""Helpers for the reps / accounts / deals tests: the CT workspace, uploads, independent placement checks."""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.integration.helpers import row_counts

PROBLEM = "application/problem+json"
CT_FIXTURE = "fixtures/fixture_ct_zcta2010_covsimp0p001_pop.geojson"


def import_ct(client: TestClient, data_dir: Path) -> None:
    """Import the 282 Connecticut ZCTAs through the public import endpoint."""
    path = data_dir / CT_FIXTURE
    with path.open("rb") as handle:
        response = client.post(
            "/units/imports",
            files={"file": (path.name, handle)},
            data={"level": "zcta", "code_field": "zcta"},
        )
    assert response.status_code == 201, response.text


@cache
def ct_shapes(data_dir: Path) -> dict[str, Any]:
    """Code -> shapely geometry, read straight from the fixture file (not from the database)."""
    source = json.loads((data_dir / CT_FIXTURE).read_text())
    return {f["properties"]["zcta"]: shapely.geometry.shape(f["geometry"]) for f in source["features"]}


def expected_unit(data_dir: Path, lon: float, lat: float) -> str | None:
    """The code of the fixture unit covering a point (lowest code on a shared border), by brute force."""
    point = shapely.Point(lon, lat)
    codes = sorted(code for code, shape in ct_shapes(data_dir).items() if shape.covers(point))
    return codes[0] if codes else None


def inside(data_dir: Path, code: str) -> tuple[float, float]:
    """A point well inside a fixture unit."""
    point = ct_shapes(data_dir)[code].representative_point()
    return round(point.x, 6), round(point.y, 6)


def upload(client: TestClient, kind: str, content: bytes | str, name: str = "upload.csv", **form: Any) -> Any:
    """POST a file to /{kind}/uploads."""
    data = content.encode() if isinstance(content, str) else content
    return client.post(f"/{kind}/uploads", files={"file": (name, io.BytesIO(data))}, data=form)


def counts(session: Session) -> dict[str, int]:
    """Row counts of every table, deals included."""
    result = row_counts(session)
    result["deal"] = session.execute(text("SELECT count(*) FROM deal")).scalar_one()
    return result


def rejected(response: Any, session: Session, before: dict[str, int]) -> dict[str, Any]:
    """Assert a 422 problem+json upload rejection that changed nothing; return the body."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == 422 and body["errors"], body
    assert counts(session) == before
    return body


def error_for(body: dict[str, Any], row: int | None, field: str | None) -> dict[str, Any]:
    """The error naming ``row`` and ``field``; fails listing the errors when there is none."""
    found = [e for e in body["errors"] if e["row"] == row and e["field"] == field]
    assert found, body["errors"]
    return found[0]


def stored(session: Session, external_id: str) -> dict[str, Any]:
    """An account row straight from SQL, with its unit code."""
    row = (
        session.execute(
            text(
                "SELECT a.name, a.zip, a.value, a.workload, a.stage, a.segment, a.crm_owner, a.placement, "
                "ST_X(a.location) AS lon, ST_Y(a.location) AS lat, u.code AS unit "
                "FROM account a LEFT JOIN geo_unit u ON u.id = a.unit_id WHERE a.external_id = :id"
            ),
            {"id": external_id},
        )
        .mappings()
        .first()
    )
    assert row is not None, external_id
    return dict(row)
