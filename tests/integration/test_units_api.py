"""Units API on real PostGIS: upload import, listing with paging and bbox, single unit, neighbours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.integration.helpers import csv_pairs, db_pairs, row_counts

GEOJSON = "application/geo+json"
PROBLEM = "application/problem+json"


def upload(client: TestClient, path: Path, **form: Any) -> Any:
    with path.open("rb") as handle:
        return client.post("/units/imports", files={"file": (path.name, handle)}, data=form)


@pytest.fixture
def ct_fixture(data_dir: Path) -> Path:
    return data_dir / "fixtures" / "fixture_ct_zcta2010_covsimp0p001_pop.geojson"


@pytest.fixture
def ct_imported(client: TestClient, ct_fixture: Path) -> dict[str, Any]:
    response = upload(client, ct_fixture, level="zcta", code_field="zcta")
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_upload_stores_every_unit_with_population_and_the_reference_adjacency(
    ct_imported: dict[str, Any], session: Session, ct_fixture: Path
) -> None:
    source = json.loads(ct_fixture.read_text())
    expected_codes = {f["properties"]["zcta"] for f in source["features"]}
    assert ct_imported["units"] == len(expected_codes) == 282
    assert ct_imported["with_population"] == 282
    stored = dict(session.execute(_sql("SELECT code, population FROM geo_unit WHERE level = 'zcta'")).all())
    assert set(stored) == expected_codes
    assert all(stored[f["properties"]["zcta"]] == f["properties"]["pop2010"] for f in source["features"])
    reference = csv_pairs(ct_fixture.with_name(ct_fixture.stem + "_adjacency_touches.csv"))
    assert db_pairs(session, "zcta") == reference
    assert ct_imported["adjacency_edges"] == len(reference)
    assert ct_imported["bridge_edges"] == 0


def test_reimport_is_idempotent(
    client: TestClient, ct_imported: dict[str, Any], ct_fixture: Path, session: Session
) -> None:
    before = row_counts(session)
    again = upload(client, ct_fixture, level="zcta", code_field="zcta")
    assert again.status_code == 201, again.text
    assert again.json()["inserted"] == 0 and again.json()["updated"] == 282
    after = row_counts(session)
    assert after["geo_unit"] == before["geo_unit"]
    assert after["geo_unit_adjacency"] == before["geo_unit_adjacency"]
    assert after["geo_import"] == before["geo_import"] + 1


def test_list_pages_through_every_unit_with_next_links(
    client: TestClient, ct_imported: dict[str, Any]
) -> None:
    url: str | None = "/units?level=zcta&limit=50"
    codes: list[str] = []
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(GEOJSON)
        body = response.json()
        assert body["type"] == "FeatureCollection"
        assert body["numberMatched"] == 282
        assert body["numberReturned"] == len(body["features"]) <= 50
        codes += [f["properties"]["code"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        pages += 1
    assert pages == 6
    assert len(codes) == len(set(codes)) == 282
    assert codes == sorted(codes)


def test_bbox_filter_matches_an_independent_shapely_check(
    client: TestClient, ct_imported: dict[str, Any], ct_fixture: Path
) -> None:
    bbox = (-72.8, 41.3, -72.5, 41.6)
    box = shapely.box(*bbox)
    source = json.loads(ct_fixture.read_text())
    expected = {
        f["properties"]["zcta"]
        for f in source["features"]
        if shapely.geometry.shape(f["geometry"]).intersects(box)
    }
    response = client.get("/units", params={"bbox": ",".join(map(str, bbox)), "limit": 1000})
    assert response.status_code == 200
    got = {f["properties"]["code"] for f in response.json()["features"]}
    assert 0 < len(expected) < 282
    assert got == expected


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "10,10,0,0", "-200,0,0,10"])
def test_bad_bbox_is_a_problem_naming_the_parameter(client: TestClient, bbox: str) -> None:
    response = client.get("/units", params={"bbox": bbox})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 400 and body["parameter"] == "bbox" and bbox in body["detail"]


def test_get_unit_keeps_leading_zero_and_geometry(client: TestClient, ct_imported: dict[str, Any]) -> None:
    response = client.get("/units/zcta/06810")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GEOJSON)
    feature = response.json()
    assert feature["properties"]["code"] == "06810"
    geometry = shapely.geometry.shape(feature["geometry"])
    assert geometry.geom_type == "MultiPolygon" and geometry.is_valid
    lon, lat = feature["properties"]["centroid"]
    assert geometry.buffer(0.01).contains(shapely.Point(lon, lat))


def test_unknown_unit_is_a_404_problem(client: TestClient, ct_imported: dict[str, Any]) -> None:
    response = client.get("/units/zcta/99999")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "99999" in response.json()["detail"]
    assert client.get("/units/state/06810").status_code == 422


def test_neighbors_match_the_reference_csv(
    client: TestClient, ct_imported: dict[str, Any], ct_fixture: Path
) -> None:
    reference = csv_pairs(ct_fixture.with_name(ct_fixture.stem + "_adjacency_touches.csv"))
    expected = {b if a == "06810" else a for a, b in reference if "06810" in (a, b)}
    response = client.get("/units/zcta/06810/neighbors")
    assert response.status_code == 200
    features = response.json()["features"]
    assert {f["properties"]["code"] for f in features} == expected
    assert all(f["properties"]["shared_border_m"] >= 0 for f in features)
    assert any(f["properties"]["shared_border_m"] > 100 for f in features)


def test_islands_get_bridge_edges(client: TestClient, data_dir: Path, session: Session) -> None:
    ri = data_dir / "fixtures" / "fixture_ri_zcta2010_covsimp0p001_pop.geojson"
    response = upload(client, ri, level="zcta", code_field="zcta")
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["components_before_bridges"] == 4
    assert report["bridge_edges"] >= 3
    assert db_pairs(session, "zcta") == csv_pairs(ri.with_name(ri.stem + "_adjacency_touches.csv"))
    bridged = db_pairs(session, "zcta", bridges=True)
    assert len(bridged) == report["bridge_edges"]
    # Independent check: with the bridges every unit is reachable from every other.
    import networkx as nx

    graph = nx.Graph(list(db_pairs(session, "zcta") | bridged))
    assert nx.is_connected(graph) and graph.number_of_nodes() == 77


def test_healthz_reports_postgis(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"].startswith("PostgreSQL ")
    assert body["postgis"][0].isdigit()


def test_unknown_route_is_problem_json(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["title"] == "Not found"


def test_docs_are_self_hosted(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    asset = client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    spec = client.get("/openapi.json").json()
    assert "/units/{level}/{code}/neighbors" in spec["paths"]


def _sql(statement: str) -> Any:
    from sqlalchemy import text

    return text(statement)


def test_extent_is_the_box_of_the_unit_centroids(client: TestClient, ct_imported: dict[str, Any]) -> None:
    listing = client.get("/units", params={"level": "zcta", "limit": 5000}).json()["features"]
    lons = [f["properties"]["centroid"][0] for f in listing]
    lats = [f["properties"]["centroid"][1] for f in listing]
    extent = client.get("/units/extent", params={"level": "zcta"}).json()
    assert extent["units"] == len(listing) == 282
    assert extent["bbox"] == pytest.approx([min(lons), min(lats), max(lons), max(lats)], abs=1e-6)
    assert client.get("/units/extent", params={"level": "county"}).json() == {"bbox": None, "units": 0}
    bad = client.get("/units/extent", params={"level": "zip"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)


def test_extent_across_longitude_180_keeps_the_narrow_box(client: TestClient, tmp_path: Path) -> None:
    # four small islands on both sides of the antimeridian: the box 178..182 (east), not -179.5..179.5
    def square(code: str, lon: float) -> dict[str, Any]:
        ring = [[lon, 51.0], [lon + 0.2, 51.0], [lon + 0.2, 51.2], [lon, 51.2], [lon, 51.0]]
        return {
            "type": "Feature",
            "properties": {"code": code},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    lons = {"A1": 178.0, "A2": 179.5, "A3": -179.9, "A4": -178.2}
    path = tmp_path / "aleutians.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": [square(c, x) for c, x in lons.items()]})
    )
    assert upload(client, path, level="custom", code_field="code").status_code == 201
    extent = client.get("/units/extent", params={"level": "custom"}).json()
    west, south, east, north = extent["bbox"]
    assert extent["units"] == 4 and 178.0 < west < 178.2 and 181.8 < east < 182.0
    assert 51.0 < south <= north < 51.2
