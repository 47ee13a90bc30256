"""Vector tiles on real PostGIS: the demo workspace's units, owners, flags, territories and comparisons.

Every expectation is read independently with SQL (or from the diagnostics and compare endpoints) and
checked against the decoded tile.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.services import demo

MVT = "application/vnd.mapbox-vector-tile"
PROBLEM = "application/problem+json"
ZOOM = 6


@pytest.fixture
def plans(session: Session) -> dict[str, int]:
    """The demo workspace (217 counties, 12 reps): plan ids by name."""
    demo.load(session, accounts=1500)
    session.flush()
    rows = session.execute(text("SELECT name, id FROM plan")).all()
    return {("crm" if name.startswith("CRM export") else name.lower()): plan_id for name, plan_id in rows}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The x, y of the web-mercator tile holding a point."""
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def demo_tiles(session: Session, z: int = ZOOM) -> list[tuple[int, int]]:
    """Every tile at zoom ``z`` that the demo counties' extent touches."""
    xmin, ymin, xmax, ymax = session.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            "FROM (SELECT ST_Extent(geom) e FROM geo_unit) s"
        )
    ).one()
    x0, y0 = tile_of(xmin, ymax, z)
    x1, y1 = tile_of(xmax, ymin, z)
    return [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def layers(client: TestClient, path: str) -> dict[str, list[dict[str, Any]]]:
    """GET a tile and decode it: layer name -> features."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MVT
    decoded = mapbox_vector_tile.decode(response.content)
    return {name: layer["features"] for name, layer in decoded.items()}


def units_over_demo(client: TestClient, session: Session, query: str) -> dict[str, dict[str, Any]]:
    """Unit code -> properties, gathered over every demo tile at ``ZOOM`` (one entry per unit)."""
    units: dict[str, dict[str, Any]] = {}
    for x, y in demo_tiles(session):
        for feature in layers(client, f"/tiles/county/{ZOOM}/{x}/{y}.mvt{query}").get("units", []):
            props = feature["properties"]
            if props["code"] in units:
                assert units[props["code"]] == props  # a unit reads the same in every tile it touches
            units[props["code"]] = props
    return units


def owners_by_sql(session: Session, plan_id: int) -> dict[str, list[tuple[str, str]]]:
    """Unit code -> (territory name, rep external id) of every claim, territories by name."""
    rows = session.execute(
        text(
            "SELECT u.code, t.name, coalesce(r.external_id, '') FROM plan_claim c "
            "JOIN geo_unit u ON u.id = c.unit_id JOIN territory t ON t.id = c.territory_id "
            "LEFT JOIN rep r ON r.id = t.rep_id WHERE c.plan_id = :plan ORDER BY u.code, t.name"
        ),
        {"plan": plan_id},
    ).all()
    out: dict[str, list[tuple[str, str]]] = {}
    for code, territory, rep in rows:
        out.setdefault(code, []).append((territory, rep))
    return out


def test_a_tile_over_a_unit_carries_its_owner_and_measures(
    client: TestClient, session: Session, plans: dict[str, int]
) -> None:
    plan_id = plans["crm"]
    claims = owners_by_sql(session, plan_id)
    single = next(code for code, owners in sorted(claims.items()) if len(owners) == 1)
    contested = next(code for code, owners in sorted(claims.items()) if len(owners) > 1)
    for code in (single, contested):
        lon, lat, accounts, workload, population = session.execute(
            text(
                "SELECT ST_X(p), ST_Y(p), (SELECT count(*) FROM account a WHERE a.unit_id = u.id), "
                "(SELECT coalesce(sum(workload), 0) FROM account a WHERE a.unit_id = u.id), "
                "coalesce(u.population, 0) "
                "FROM (SELECT *, ST_PointOnSurface(geom) p FROM geo_unit WHERE code = :code) u"
            ),
            {"code": code},
        ).one()
        x, y = tile_of(lon, lat, 8)
        features = layers(client, f"/tiles/county/8/{x}/{y}.mvt?plan={plan_id}")["units"]
        props = next(f["properties"] for f in features if f["properties"]["code"] == code)
        expected_rep = claims[code][0][1]  # first claiming territory by name
        rep_name = session.execute(text("SELECT name FROM rep WHERE external_id = :e"), {"e": expected_rep})
        assert props["owner"] == expected_rep and props["owner_name"] == rep_name.scalar_one()
        assert props["owners"] == len(claims[code])
        assert props["contested"] is (len(claims[code]) > 1) and props["uncovered"] is False
        assert props["accounts"] == accounts and props["workload"] == pytest.approx(workload, abs=1e-3)
        assert props["population"] == pytest.approx(population)
        rank = session.execute(
            text("SELECT count(*) FROM rep WHERE id < (SELECT id FROM rep WHERE external_id = :e)"),
            {"e": expected_rep},
        ).scalar_one()
        assert props["color"] == rank % 12


def test_flags_match_the_diagnostics_of_the_crm_export(
    client: TestClient, session: Session, plans: dict[str, int]
) -> None:
    plan_id = plans["crm"]
    summary = client.get(f"/plans/{plan_id}/diagnostics").json()["summary"]
    units = units_over_demo(client, session, f"?plan={plan_id}")
    assert len(units) == summary["units"] == 217
    assert sum(u["contested"] for u in units.values()) == summary["contested_units"] > 0
    assert sum(u["uncovered"] for u in units.values()) == summary["uncovered_units"] > 0
    assert sum(u["white_space"] for u in units.values()) == summary["white_space_units"]
    claims = owners_by_sql(session, plan_id)
    for code, props in units.items():
        assert props["owners"] == len(claims.get(code, []))
        assert props["owner"] == (claims[code][0][1] if code in claims else "")
        assert props["uncovered"] is (code not in claims) and (props["color"] == -1) is (code not in claims)


def _copy_with_moves(client: TestClient, session: Session, plan_id: int, moves: int) -> tuple[int, set[str]]:
    """Import a copy of a plan, then give ``moves`` units to a territory of another rep via the API."""
    rows = session.execute(
        text(
            "SELECT t.name, r.external_id, u.code FROM plan_claim c "
            "JOIN territory t ON t.id = c.territory_id JOIN rep r ON r.id = t.rep_id "
            "JOIN geo_unit u ON u.id = c.unit_id "
            "WHERE c.plan_id = :plan ORDER BY u.code"
        ),
        {"plan": plan_id},
    ).all()
    out = io.StringIO()
    csv.writer(out).writerows([("territory", "rep", "unit"), *rows])
    created = client.post(
        "/plans/imports",
        files={"file": ("copy.csv", out.getvalue().encode())},
        data={"name": "copy", "level": "county"},
    )
    assert created.status_code == 201, created.text
    copy_id = created.json()["plan_id"]
    territories = sorted({r[0] for r in rows})
    moved = set()
    for territory, _, code in rows[:: len(rows) // moves][:moves]:
        target = next(t for t in territories if t != territory)
        etag = client.get(f"/plans/{copy_id}").headers["etag"]
        response = client.put(
            f"/plans/{copy_id}/units/{code}", json={"territory": target}, headers={"If-Match": etag}
        )
        assert response.status_code == 200, response.text
        moved.add(code)
    return copy_id, moved


def test_compare_marks_exactly_the_units_that_change_owner(
    client: TestClient, session: Session, plans: dict[str, int]
) -> None:
    today = plans["today"]
    copy_id, moved = _copy_with_moves(client, session, today, 4)
    units = units_over_demo(client, session, f"?plan={today}&compare={copy_id}")
    assert {code for code, props in units.items() if props["changed"]} == moved
    moves = client.get(f"/plans/{today}/compare/{copy_id}").json()["moves"]
    assert {m["unit"] for m in moves} == moved
    for m in moves:
        props = units[m["unit"]]
        assert [props["from_owner"]] == m["from"] and [props["to_owner"]] == m["to"]
        assert props["from_owner"] != props["to_owner"] and props["owner"] == props["from_owner"]


def test_territories_layer_has_one_feature_per_territory_in_view(
    client: TestClient, session: Session, plans: dict[str, int]
) -> None:
    plan_id = plans["today"]
    metrics = {t["territory"]: t for t in client.get(f"/plans/{plan_id}/diagnostics").json()["territories"]}
    seen: set[str] = set()
    for x, y in demo_tiles(session):
        tile = layers(client, f"/tiles/county/{ZOOM}/{x}/{y}.mvt?plan={plan_id}")
        in_view = set(
            session.execute(
                text(
                    "SELECT name FROM territory WHERE plan_id = :plan "
                    "AND ST_Intersects(ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y))"
                ),
                {"plan": plan_id, "z": ZOOM, "x": x, "y": y},
            ).scalars()
        )
        names = [f["properties"]["territory"] for f in tile.get("territories", [])]
        assert sorted(names) == sorted(in_view)
        colour_of_rep = {f["properties"]["owner"]: f["properties"]["color"] for f in tile.get("units", [])}
        for feature in tile.get("territories", []):
            props = feature["properties"]
            expected = metrics[props["territory"]]
            assert props["rep"] == expected["rep"] and props["units"] == expected["units"]
            assert props["workload"] == pytest.approx(expected["loads"]["workload"], abs=1e-3)
            assert props["target"] == pytest.approx(expected["target"]["workload"], abs=1e-3)
            assert props["deviation_pct"] == pytest.approx(expected["deviation_pct"]["workload"], abs=1e-3)
            if props["rep"] in colour_of_rep:
                assert props["color"] == colour_of_rep[props["rep"]]
        seen.update(names)
    assert seen == set(metrics)


def test_etags_caching_headers_and_revalidation(
    client: TestClient, session: Session, plans: dict[str, int]
) -> None:
    lon, lat = session.execute(
        text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM geo_unit LIMIT 1) s")
    ).one()
    x, y = tile_of(lon, lat, ZOOM)
    path = f"/tiles/county/{ZOOM}/{x}/{y}.mvt"
    plain = client.get(path)
    assert plain.headers["cache-control"] == "public, max-age=3600"
    # gzip for clients that accept it (httpx decodes it), the raw tile for those that do not
    assert plain.headers["content-encoding"] == "gzip" and "accept-encoding" in plain.headers["vary"].lower()
    raw = client.get(path, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.content == plain.content
    assert "units" in mapbox_vector_tile.decode(raw.content)
    again = client.get(path, headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == plain.headers["etag"]

    copy_id, _ = _copy_with_moves(client, session, plans["today"], 1)
    with_plan = client.get(f"{path}?plan={copy_id}")
    assert with_plan.headers["cache-control"] == "no-cache"
    assert with_plan.headers["etag"] != plain.headers["etag"]
    assert (
        client.get(f"{path}?plan={copy_id}", headers={"If-None-Match": with_plan.headers["etag"]}).status_code
        == 304
    )
    code = session.execute(text("SELECT code FROM geo_unit ORDER BY code LIMIT 1")).scalar_one()
    etag = client.get(f"/plans/{copy_id}").headers["etag"]
    target = session.execute(
        text("SELECT name FROM territory WHERE plan_id = :plan ORDER BY name DESC LIMIT 1"), {"plan": copy_id}
    ).scalar_one()
    assert client.put(
        f"/plans/{copy_id}/units/{code}", json={"territory": target}, headers={"If-Match": etag}
    ).is_success
    edited = client.get(f"{path}?plan={copy_id}", headers={"If-None-Match": with_plan.headers["etag"]})
    assert edited.status_code == 200 and edited.headers["etag"] != with_plan.headers["etag"]


def test_bad_requests_are_problems(client: TestClient, session: Session, plans: dict[str, int]) -> None:
    zcta_plan = session.execute(
        text("INSERT INTO plan (name, level) VALUES ('zcta plan', 'zcta') RETURNING id")
    ).scalar_one()
    session.flush()
    cases = {
        "/tiles/tracts/3/1/1.mvt": 404,
        "/tiles/county/23/0/0.mvt": 422,
        "/tiles/county/-1/0/0.mvt": 422,
        "/tiles/county/3/8/0.mvt": 422,
        "/tiles/county/3/0/8.mvt": 422,
        "/tiles/county/3/1/1.mvt?plan=987654321": 404,
        f"/tiles/county/3/1/1.mvt?plan={plans['today']}&compare=987654321": 404,
        f"/tiles/county/3/1/1.mvt?plan={zcta_plan}": 422,
        f"/tiles/county/3/1/1.mvt?plan={plans['today']}&compare={zcta_plan}": 422,
        f"/tiles/county/3/1/1.mvt?compare={plans['today']}": 422,
        "/tiles/county/3/1/1.mvt?plan=abc": 422,
    }
    for path, status in cases.items():
        response = client.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == status


def test_a_tile_in_the_pacific_is_empty(client: TestClient, plans: dict[str, int]) -> None:
    x, y = tile_of(-150.0, 10.0, ZOOM)
    for query in ("", f"?plan={plans['crm']}"):
        response = client.get(f"/tiles/county/{ZOOM}/{x}/{y}.mvt{query}")
        assert response.status_code == 200 and response.headers["content-type"] == MVT
        assert "units" not in mapbox_vector_tile.decode(response.content)
