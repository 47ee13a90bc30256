"""Bad geography gets a clear problem+json naming the feature, and changes nothing in the database."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.integration.helpers import polygon_feature, row_counts, square, write_geojson

PROBLEM = "application/problem+json"


def upload(client: TestClient, path: Path, files: dict[str, Any] | None = None, **form: Any) -> Any:
    with path.open("rb") as handle:
        return client.post(
            "/units/imports",
            files={"file": (path.name, handle), **(files or {})},
            data={"level": "zcta", **form},
        )


def good_features() -> list[dict[str, Any]]:
    return [polygon_feature("02139", square(-71.1, 42.3)), polygon_feature("02140", square(-71.0, 42.3))]


def assert_rejected(
    response: Any, session: Session, before: dict[str, int], *, index: int | None, words: str
) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 422 and body["title"]
    rejected = [p for p in body["problems"] if p["action"] == "rejected"]
    assert rejected, body
    if index is not None:
        assert any(p["index"] == index for p in rejected), rejected
    text = " ".join(p["reason"] for p in rejected).lower() + body["detail"].lower()
    assert words in text, text
    assert row_counts(session) == before


def test_bowtie_is_repaired_and_reported(client: TestClient, tmp_path: Path, session: Session) -> None:
    bowtie = [[[-71.3, 42.3], [-71.2, 42.4], [-71.2, 42.3], [-71.3, 42.4], [-71.3, 42.3]]]
    path = write_geojson(tmp_path / "bowtie.geojson", [*good_features(), polygon_feature("02141", bowtie)])
    response = upload(client, path)
    assert response.status_code == 201, response.text
    repaired = [p for p in response.json()["problems"] if p["action"] == "repaired"]
    assert [p["index"] for p in repaired] == [2] and repaired[0]["code"] == "02141"
    area = session.execute(_sql("SELECT ST_Area(geom) FROM geo_unit WHERE code = '02141'")).scalar_one()
    assert area == pytest.approx(0.005, rel=1e-6)  # two triangles of 0.0025 deg^2 each


def test_bowtie_in_strict_mode_changes_nothing(client: TestClient, tmp_path: Path, session: Session) -> None:
    bowtie = [[[-71.3, 42.3], [-71.2, 42.4], [-71.2, 42.3], [-71.3, 42.4], [-71.3, 42.3]]]
    path = write_geojson(tmp_path / "bowtie.geojson", [*good_features(), polygon_feature("02141", bowtie)])
    before = row_counts(session)
    assert_rejected(upload(client, path, strict="true"), session, before, index=2, words="self-intersection")


def test_unclosed_ring_changes_nothing(client: TestClient, tmp_path: Path, session: Session) -> None:
    ring = [[[-71.3, 42.3], [-71.2, 42.3], [-71.2, 42.4], [-71.3, 42.4]]]
    path = write_geojson(tmp_path / "unclosed.geojson", [*good_features(), polygon_feature("02141", ring)])
    before = row_counts(session)
    assert_rejected(upload(client, path), session, before, index=2, words="closed")


def test_nan_coordinates_change_nothing(client: TestClient, tmp_path: Path, session: Session) -> None:
    ring = [[[-71.3, 42.3], [math.nan, 42.3], [-71.2, 42.4], [-71.3, 42.3]]]
    path = write_geojson(tmp_path / "nan.geojson", [polygon_feature("02141", ring), *good_features()])
    before = row_counts(session)
    assert_rejected(upload(client, path), session, before, index=0, words="nan")


def test_file_without_polygons_changes_nothing(client: TestClient, tmp_path: Path, session: Session) -> None:
    points = [
        {
            "type": "Feature",
            "properties": {"zcta": "02139"},
            "geometry": {"type": "Point", "coordinates": [-71, 42]},
        }
    ]
    path = write_geojson(tmp_path / "points.geojson", points)
    before = row_counts(session)
    assert_rejected(upload(client, path), session, before, index=None, words="no polygon")


def test_population_csv_with_lost_leading_zeros_changes_nothing(
    client: TestClient, tmp_path: Path, session: Session
) -> None:
    path = write_geojson(tmp_path / "ok.geojson", good_features())
    csv_path = tmp_path / "pop.csv"
    csv_path.write_text("zip,pop\n2139,1000\n2140,2000\n")
    before = row_counts(session)
    with csv_path.open("rb") as handle:
        response = upload(
            client,
            path,
            files={"population_csv": ("pop.csv", handle)},
            population_code_column="zip",
            population_value_column="pop",
        )
    assert_rejected(response, session, before, index=2, words="leading zero")


def test_integer_codes_that_lost_zeros_change_nothing(
    client: TestClient, tmp_path: Path, session: Session
) -> None:
    feature = polygon_feature("x", square(-71.3, 42.3))
    feature["properties"]["zcta"] = 2141
    path = write_geojson(tmp_path / "intcode.geojson", [*good_features(), feature])
    before = row_counts(session)
    assert_rejected(upload(client, path), session, before, index=2, words="leading zero")


def test_garbage_file_is_a_problem(client: TestClient, tmp_path: Path, session: Session) -> None:
    path = tmp_path / "garbage.geojson"
    path.write_text("this is not json")
    before = row_counts(session)
    response = upload(client, path)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "garbage.geojson" in response.text
    assert row_counts(session) == before


def test_oversized_upload_is_413(client: TestClient, tmp_path: Path, session: Session) -> None:
    path = tmp_path / "big.geojson"
    path.write_bytes(b" " * (9 << 20))  # the client fixture allows 8 MiB
    before = row_counts(session)
    response = upload(client, path)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM)
    assert row_counts(session) == before


def _sql(statement: str) -> Any:
    from sqlalchemy import text

    return text(statement)
