"""Place staged points on units with PostGIS point-in-polygon, then ZIP codes on ZCTAs.

A point on a shared border intersects two units: the unit with the lowest code wins, whichever way the
lookup runs. Few points probe the GiST index of ``geo_unit.geom`` once each (about 30 us per probe on the
national ZCTA set). When the points outnumber the units in their extent the join turns around: the staged
points, copied in Hilbert order, get their own GiST index and each unit probes it once, so PostGIS tests
many points against the same polygon in a row and its point-in-polygon caches pay off (a million points:
about 35 s point by point, 2.5 s unit by unit; see docs/benchmarks.md, account ingest).
"""

from __future__ import annotations

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    exists,
    func,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from app.db.models import UNIT_LEVELS, GeoUnit
from app.services.ingest import staging

POLYGON_DRIVEN_FROM = 2000
POINTS = "_ingest_points"
HITS = "_ingest_hits"
MISSES = "_ingest_misses"
ZIP_HITS = "_ingest_zip_hits"
SWAPPED = "_ingest_swapped"
SWAPPED_HITS = "_ingest_swapped_hits"
UNITS = GeoUnit.__table__


def hits_table(name: str) -> Table:
    """(line, unit_id) pairs found by a lookup."""
    return Table(
        name,
        MetaData(),
        Column("line", Integer),
        Column("unit_id", BigInteger),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def points_table(name: str) -> Table:
    """(line, pt) pairs to look up."""
    return Table(
        name,
        MetaData(),
        Column("line", Integer),
        Column("pt", Geometry("POINT", srid=4326, spatial_index=False)),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def count_rows(session: Session, table: Table) -> int:
    """Rows in a staging table (INSERT ... SELECT reports no row count through SQLAlchemy)."""
    return int(session.scalar(select(func.count()).select_from(table)) or 0)


def resolve_level(session: Session, requested: str | None) -> str | None:
    """The level accounts are placed on: the requested one, else zcta, county, custom (first with units)."""
    if requested:
        return requested
    for level in UNIT_LEVELS:
        if session.scalar(select(exists().where(UNITS.c.level == level))):
            return level
    return None


def locate(session: Session, points: Table, hits: Table, level: str) -> int:
    """Fill ``hits`` with the unit of ``level`` containing each point of ``points``; return the count."""
    extent = func.ST_Extent(points.c.pt)
    count, *box = session.execute(
        select(
            func.count(points.c.pt),
            func.ST_XMin(extent),
            func.ST_YMin(extent),
            func.ST_XMax(extent),
            func.ST_YMax(extent),
        )
    ).one()
    if not count:
        return 0
    envelope = func.ST_MakeEnvelope(*box, 4326)
    near = session.scalar(select(func.count()).where(UNITS.c.level == level, UNITS.c.geom.op("&&")(envelope)))
    # One index probe per unit beats one per point once the points outnumber the units they may hit.
    if count >= max(POLYGON_DRIVEN_FROM, near or 0):
        connection = session.connection()
        Index(f"{points.name}_pt", points.c.pt, postgresql_using="gist").create(connection)
        connection.execute(text(f"ANALYZE {points.name}"))  # our own constant name
        # OFFSET 0 keeps the lateral subquery from being flattened into a point-driven join.
        inside = (
            select(points.c.line)
            .where(points.c.pt.op("&&")(UNITS.c.geom), func.ST_Intersects(UNITS.c.geom, points.c.pt))
            .offset(0)
            .lateral("inside")
        )
        query: Any = (
            select(inside.c.line, UNITS.c.id)
            .select_from(UNITS.join(inside, true()))
            .where(UNITS.c.level == level, UNITS.c.geom.op("&&")(envelope))
            .ext(distinct_on(inside.c.line))
            .order_by(inside.c.line, UNITS.c.code)
        )
    else:
        unit = (
            select(UNITS.c.id)
            .where(
                UNITS.c.level == level,
                UNITS.c.geom.op("&&")(points.c.pt),
                func.ST_Intersects(UNITS.c.geom, points.c.pt),
            )
            .order_by(UNITS.c.code)
            .limit(1)
            .lateral("unit")
        )
        query = (
            select(points.c.line, unit.c.id)
            .select_from(points.join(unit, true()))
            .where(points.c.pt.is_not(None))
        )
    session.execute(hits.insert().from_select(["line", "unit_id"], query))
    return count_rows(session, hits)


def locate_typed(session: Session, typed: Table, level: str) -> tuple[Table, int]:
    """Look up every staged point; return the hits table and its row count.

    The points are copied into a narrow table in Hilbert order (the btree order of PostGIS geometries):
    neighbouring points then share index and heap pages, and each unit finds its points close together.
    """
    hits = hits_table(HITS)
    points = points_table(POINTS)
    staging.create(session, points, hits)
    located = select(typed.c.line, typed.c.pt).where(typed.c.pt.is_not(None)).order_by(typed.c.pt)
    session.execute(points.insert().from_select(["line", "pt"], located))
    return hits, locate(session, points, hits, level)


def misses_table(typed: Table, zip_field: str | None) -> Table:
    """Rows whose point found no unit (or that have no valid point): what the later checks look at."""
    columns: list[Column[Any]] = [
        Column("line", Integer),
        Column("external_id", Text),
        Column("lon", Double),
        Column("lat", Double),
    ]
    if zip_field:
        columns.append(Column(zip_field, Text))
    return Table(MISSES, MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP")


def collect_misses(session: Session, typed: Table, hits: Table, zip_field: str | None) -> Table:
    """Copy the rows without a point hit (one anti-join) into a small table."""
    misses = misses_table(typed, zip_field)
    staging.create(session, misses)
    names = [c.name for c in misses.c]
    query = select(*(typed.c[n] for n in names)).where(~exists().where(hits.c.line == typed.c.line))
    session.execute(misses.insert().from_select(names, query))
    return misses


def locate_zips(session: Session, misses: Table, zip_field: str, level: str) -> tuple[Table, int]:
    """Rows without a point hit but with a ZIP: the ZCTA with that code (or, on other levels, the unit
    that contains the ZCTA's centroid). Returns the hits table and its row count."""
    zip_hits = hits_table(ZIP_HITS)
    staging.create(session, zip_hits)
    code = misses.c[zip_field]
    zcta = UNITS.alias("zcta")
    same_code = and_(zcta.c.level == "zcta", zcta.c.code == code)
    if level == "zcta":
        query: Any = select(misses.c.line, zcta.c.id).select_from(misses.join(zcta, same_code))
    else:
        unit = (
            select(UNITS.c.id)
            .where(
                UNITS.c.level == level,
                UNITS.c.geom.op("&&")(zcta.c.centroid),
                func.ST_Intersects(UNITS.c.geom, zcta.c.centroid),
            )
            .order_by(UNITS.c.code)
            .limit(1)
            .lateral("unit")
        )
        query = select(misses.c.line, unit.c.id).select_from(misses.join(zcta, same_code).join(unit, true()))
    session.execute(zip_hits.insert().from_select(["line", "unit_id"], query))
    return zip_hits, count_rows(session, zip_hits)


def swapped(session: Session, misses: Table, level: str, limit: int) -> tuple[int, list[Any]]:
    """Rows whose point is outside every unit (or out of range) but whose swapped point is inside one.

    Returns (count, first ``limit`` rows as (line, lon, lat, unit code)).
    """
    points = points_table(SWAPPED)
    found = hits_table(SWAPPED_HITS)
    staging.create(session, points, found)
    lon, lat = misses.c.lon, misses.c.lat
    swapped_point = func.ST_SetSRID(func.ST_MakePoint(lat, lon), 4326)
    candidates = (
        select(misses.c.line, swapped_point)
        .where(lon.between(-90, 90), lat.between(-180, 180))
        .order_by(swapped_point)
    )
    session.execute(points.insert().from_select(["line", "pt"], candidates))
    total = locate(session, points, found, level)
    if not total:
        return 0, []
    rows = session.execute(
        select(misses.c.line, lon, lat, UNITS.c.code)
        .select_from(
            misses.join(found, found.c.line == misses.c.line).join(UNITS, UNITS.c.id == found.c.unit_id)
        )
        .order_by(misses.c.line)
        .limit(limit)
    ).all()
    return total, list(rows)


def unplaced(session: Session, misses: Table, zip_hits: Table | None, limit: int) -> list[Any]:
    """The first ``limit`` rows that matched no unit, as (line, external_id, lon, lat, zip)."""
    query = select(misses.c.line, misses.c.external_id, misses.c.lon, misses.c.lat, misses.c.zip)
    if zip_hits is not None:
        query = query.where(~exists().where(zip_hits.c.line == misses.c.line))
    return list(session.execute(query.order_by(misses.c.line).limit(limit)).all())
