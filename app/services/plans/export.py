"""Export a plan: unit -> territory -> rep CSV, territory GeoJSON / GeoPackage, CRM reassignment list."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import geopandas
import orjson
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.services.plans.lifecycle import get_plan
from app.services.units import feature_collection


def claims_csv(session: Session, plan_id: int) -> str:
    """unit_code, territory, rep_external_id: one row per claim (a contested unit appears twice)."""
    get_plan(session, plan_id)
    rows = session.execute(
        text(
            "SELECT u.code, t.name, r.external_id FROM plan_claim c JOIN geo_unit u ON u.id = c.unit_id "
            "JOIN territory t ON t.id = c.territory_id LEFT JOIN rep r ON r.id = t.rep_id "
            "WHERE c.plan_id = :plan ORDER BY u.code, t.name"
        ),
        {"plan": plan_id},
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["unit_code", "territory", "rep_external_id"])
    writer.writerows(rows)
    return out.getvalue()


def _territory_rows(
    session: Session, plan_id: int
) -> list[tuple[int, str, str | None, str | None, int, str | None]]:
    get_plan(session, plan_id)
    return [
        tuple(r)
        for r in session.execute(
            text(
                "SELECT t.id, t.name, r.external_id, r.name, "
                "(SELECT count(*) FROM plan_claim c WHERE c.territory_id = t.id), ST_AsGeoJSON(t.geom, 6) "
                "FROM territory t LEFT JOIN rep r ON r.id = t.rep_id WHERE t.plan_id = :plan ORDER BY t.name"
            ),
            {"plan": plan_id},
        ).all()
    ]


def territories_geojson(session: Session, plan_id: int) -> bytes:
    """The plan's dissolved territories as a GeoJSON FeatureCollection."""
    features = [
        b'{"type":"Feature","id":'
        + orjson.dumps(tid)
        + b',"properties":'
        + orjson.dumps({"plan_id": plan_id, "territory": name, "rep": rep, "rep_name": rep_name, "units": n})
        + b',"geometry":'
        + (geom.encode() if geom else b"null")
        + b"}"
        for tid, name, rep, rep_name, n, geom in _territory_rows(session, plan_id)
    ]
    return feature_collection(features)


def territories_geopackage(session: Session, plan_id: int) -> bytes:
    """The plan's dissolved territories as a GeoPackage (layer ``territories``)."""
    rows = _territory_rows(session, plan_id)
    frame = geopandas.GeoDataFrame(
        {
            "territory": [r[1] for r in rows],
            "rep": [r[2] for r in rows],
            "rep_name": [r[3] for r in rows],
            "units": [r[4] for r in rows],
        },
        geometry=[shapely.from_geojson(r[5]) if r[5] else None for r in rows],
        crs="EPSG:4326",
    )
    with tempfile.TemporaryDirectory(prefix="territory-export-") as tmp:
        path = Path(tmp) / f"plan-{plan_id}.gpkg"
        frame.to_file(path, layer="territories", driver="GPKG", engine="pyogrio")
        return path.read_bytes()


def reassignments_csv(session: Session, plan_id: int, against: int | None = None) -> str:
    """account, old owner, new owner per account that changes owner (vs CRM owner or plan ``against``)."""
    get_plan(session, plan_id)
    new_owner = (
        "SELECT c.unit_id, string_agg(DISTINCT r.external_id, '|' ORDER BY r.external_id) AS owner "
        "FROM plan_claim c JOIN territory t ON t.id = c.territory_id LEFT JOIN rep r ON r.id = t.rep_id "
        "WHERE c.plan_id = {param} GROUP BY c.unit_id"
    )
    old = "o.owner" if against is not None else "a.crm_owner"
    join_old = (
        f"LEFT JOIN ({new_owner.format(param=':against')}) o ON o.unit_id = a.unit_id" if against else ""
    )
    rows = session.execute(
        text(
            f"SELECT a.external_id, a.name, {old}, n.owner FROM account a "
            f"LEFT JOIN ({new_owner.format(param=':plan')}) n ON n.unit_id = a.unit_id {join_old} "
            f"WHERE {old} IS DISTINCT FROM n.owner ORDER BY a.external_id"
        ),
        {"plan": plan_id, "against": against},
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["account_external_id", "account_name", "old_owner", "new_owner"])
    writer.writerows(rows)
    return out.getvalue()
