"""Read geography: unit pages as GeoJSON, single units, neighbours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import Session

from app.db.models import GeoUnit, GeoUnitAdjacency

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class UnitFilter:
    """Which units a listing returns."""

    level: str | None = None
    bbox: BBox | None = None
    state: str | None = None


@dataclass(frozen=True)
class UnitPage:
    """One page of features plus the total that matched."""

    features: list[bytes]
    matched: int


def _geometry_column(simplify: float | None) -> Any:
    if simplify:
        return func.ST_AsGeoJSON(func.ST_SimplifyPreserveTopology(GeoUnit.geom, simplify), 6)
    return func.ST_AsGeoJSON(GeoUnit.geom, 6)


def _columns(simplify: float | None) -> list[Any]:
    return [
        GeoUnit.id,
        GeoUnit.level,
        GeoUnit.code,
        GeoUnit.name,
        GeoUnit.state,
        GeoUnit.population,
        GeoUnit.area_km2,
        func.ST_X(GeoUnit.centroid),
        func.ST_Y(GeoUnit.centroid),
        GeoUnit.attributes,
        _geometry_column(simplify),
    ]


def _where(query: Select[Any], filters: UnitFilter) -> Select[Any]:
    if filters.level:
        query = query.where(GeoUnit.level == filters.level)
    if filters.state:
        query = query.where(GeoUnit.state == filters.state)
    if filters.bbox:
        envelope = func.ST_MakeEnvelope(*filters.bbox, 4326)
        query = query.where(and_(GeoUnit.geom.op("&&")(envelope), func.ST_Intersects(GeoUnit.geom, envelope)))
    return query


def feature_bytes(row: Any, extra: dict[str, Any] | None = None) -> bytes:
    """Serialise one unit row as a GeoJSON Feature without re-parsing its geometry."""
    properties: dict[str, Any] = {
        "level": row[1],
        "code": row[2],
        "name": row[3],
        "state": row[4],
        "population": row[5],
        "area_km2": round(row[6], 4) if row[6] is not None else None,
        "centroid": [round(row[7], 6), round(row[8], 6)],
        "attributes": row[9],
    }
    if extra:
        properties.update(extra)
    return (
        b'{"type":"Feature","id":"'
        + f"{row[1]}/{row[2]}".encode()
        + b'","properties":'
        + orjson.dumps(properties)
        + b',"geometry":'
        + row[10].encode()
        + b"}"
    )


def list_units(
    session: Session, filters: UnitFilter, *, limit: int, offset: int, simplify: float | None = None
) -> UnitPage:
    """A page of units ordered by (level, code) and the number of units that match ``filters``."""
    matched = session.scalar(_where(select(func.count()).select_from(GeoUnit), filters)) or 0
    query = _where(select(*_columns(simplify)), filters).order_by(GeoUnit.level, GeoUnit.code)
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return UnitPage(features=[feature_bytes(row) for row in rows], matched=matched)


def extent(session: Session, filters: UnitFilter) -> tuple[BBox | None, int]:
    """The lon/lat box of the matching units' centroids and their count (None when nothing matches).

    When the units straddle the antimeridian (the Aleutians) and the box measured on 0..360 degrees is
    narrower, that one is returned: its east edge is then above 180, which map libraries accept.
    """
    x, y = func.ST_X(GeoUnit.centroid), func.ST_Y(GeoUnit.centroid)
    east = case((x < 0, x + 360), else_=x)
    columns = [func.count(), func.min(x), func.min(y), func.max(x), func.max(y)]
    columns += [func.min(east), func.max(east)]
    query: Select[Any] = select(*columns).select_from(GeoUnit)
    n, min_x, min_y, max_x, max_y, min_e, max_e = tuple(session.execute(_where(query, filters)).one())
    if not n:
        return None, 0
    if max_e - min_e < max_x - min_x:
        min_x, max_x = min_e, max_e
    return (float(min_x), float(min_y), float(max_x), float(max_y)), int(n)


def get_unit(session: Session, level: str, code: str, simplify: float | None = None) -> bytes | None:
    """One unit as a GeoJSON Feature, or None."""
    query = select(*_columns(simplify)).where(GeoUnit.level == level, GeoUnit.code == code)
    row = session.execute(query).first()
    return feature_bytes(row) if row else None


def unit_id(session: Session, level: str, code: str) -> int | None:
    """The database id of a unit, or None."""
    return session.scalar(select(GeoUnit.id).where(GeoUnit.level == level, GeoUnit.code == code))


def neighbors(session: Session, unit: int, simplify: float | None = None) -> list[bytes]:
    """The neighbours of a unit, each with its shared border length and bridge flag."""
    edges = (
        select(
            GeoUnitAdjacency.b_id.label("other"),
            GeoUnitAdjacency.shared_border_m,
            GeoUnitAdjacency.is_bridge,
            GeoUnitAdjacency.bridge_distance_m,
        )
        .where(GeoUnitAdjacency.a_id == unit)
        .union_all(
            select(
                GeoUnitAdjacency.a_id,
                GeoUnitAdjacency.shared_border_m,
                GeoUnitAdjacency.is_bridge,
                GeoUnitAdjacency.bridge_distance_m,
            ).where(GeoUnitAdjacency.b_id == unit)
        )
        .subquery()
    )
    query = (
        select(*_columns(simplify), edges.c.shared_border_m, edges.c.is_bridge, edges.c.bridge_distance_m)
        .join(edges, edges.c.other == GeoUnit.id)
        .order_by(GeoUnit.code)
    )
    rows = session.execute(query).all()
    return [
        feature_bytes(
            row,
            {
                "shared_border_m": round(row[11], 1),
                "is_bridge": row[12],
                "bridge_distance_m": round(row[13], 1),
            },
        )
        for row in rows
    ]


def feature_collection(features: list[bytes], **members: Any) -> bytes:
    """Wrap serialised features in a FeatureCollection with extra top-level members."""
    head = b'{"type":"FeatureCollection"'
    for key, value in members.items():
        head += b',"' + key.encode() + b'":' + orjson.dumps(value)
    return head + b',"features":[' + b",".join(features) + b"]}"
