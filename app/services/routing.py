"""Who owns this lead? Point, ZIP or account -> territory and rep of the workspace's active plan.

Each lookup is one SQL statement that reads the active plan and its claims together, so a reader sees
either the plan before an activation or the one after it, never a mix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.errors import NotFound

_OWNER = """
    LEFT JOIN plan_claim c ON c.plan_id = p.id AND c.unit_id = u.id
    LEFT JOIN territory t ON t.id = c.territory_id
    LEFT JOIN rep r ON r.id = t.rep_id
"""
_COLUMNS = "p.id, p.version, u.level, u.code, t.name, r.external_id, r.name"

POINT_SQL = text(
    f"""
    SELECT {_COLUMNS} FROM plan p
    JOIN geo_unit u ON u.level = p.level
         AND u.geom && ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
         AND ST_Intersects(u.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    {_OWNER}
    WHERE p.workspace = :workspace AND p.status = 'active'
    ORDER BY u.code LIMIT 1
    """
)
ZIP_SQL = text(
    f"""
    SELECT {_COLUMNS} FROM plan p
    JOIN geo_unit z ON z.level = 'zcta' AND z.code = :zip
    JOIN geo_unit u ON u.level = p.level AND (
         (p.level = 'zcta' AND u.id = z.id)
         OR (p.level <> 'zcta' AND u.geom && z.centroid AND ST_Intersects(u.geom, z.centroid)))
    {_OWNER}
    WHERE p.workspace = :workspace AND p.status = 'active'
    ORDER BY u.code LIMIT 1
    """
)
ACCOUNT_SQL = text(
    f"""
    SELECT {_COLUMNS} FROM plan p
    JOIN account a ON a.external_id = :account
    JOIN geo_unit u ON u.id = a.unit_id AND u.level = p.level
    {_OWNER}
    WHERE p.workspace = :workspace AND p.status = 'active'
    """
)
BATCH_SQL = text(
    f"""
    WITH pts AS (
        SELECT i, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS g
        FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS x(lon, lat, i)
    ), active AS (
        SELECT id, version, level FROM plan WHERE workspace = :workspace AND status = 'active'
    )
    SELECT pts.i, {_COLUMNS}
    FROM pts CROSS JOIN active p
    LEFT JOIN LATERAL (
        SELECT u.id, u.level, u.code FROM geo_unit u
        WHERE u.level = p.level AND u.geom && pts.g AND ST_Intersects(u.geom, pts.g)
        ORDER BY u.code LIMIT 1
    ) u ON true
    {_OWNER}
    ORDER BY pts.i
    """
)


@dataclass(frozen=True)
class Owner:
    """The answer to a routing question."""

    plan_id: int
    plan_version: int
    level: str | None
    unit: str | None
    territory: str | None
    rep: str | None
    rep_name: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _owner(row: Any) -> Owner:
    return Owner(*row)


def _active_plan_exists(session: Session, workspace: str) -> None:
    found = session.execute(
        text("SELECT 1 FROM plan WHERE workspace = :workspace AND status = 'active'"),
        {"workspace": workspace},
    ).first()
    if found is None:
        raise NotFound(f"workspace {workspace!r} has no active plan: activate one first")


def by_point(session: Session, lon: float, lat: float, workspace: str = "default") -> Owner:
    """Owner of the unit that contains (lon, lat)."""
    row = session.execute(POINT_SQL, {"lon": lon, "lat": lat, "workspace": workspace}).first()
    if row is None:
        _active_plan_exists(session, workspace)
        raise NotFound(f"point ({lon}, {lat}) is not inside any unit of the active plan's geography")
    return _owner(row)


def by_zip(session: Session, zip_code: str, workspace: str = "default") -> Owner:
    """Owner of a ZIP code (its ZCTA, or the unit containing the ZCTA's centroid)."""
    row = session.execute(ZIP_SQL, {"zip": zip_code, "workspace": workspace}).first()
    if row is None:
        _active_plan_exists(session, workspace)
        raise NotFound(f"ZIP {zip_code!r} is not a known ZCTA of the active plan's geography")
    return _owner(row)


def by_account(session: Session, external_id: str, workspace: str = "default") -> Owner:
    """Owner of the unit an account is placed on."""
    row = session.execute(ACCOUNT_SQL, {"account": external_id, "workspace": workspace}).first()
    if row is None:
        _active_plan_exists(session, workspace)
        raise NotFound(f"account {external_id!r} does not exist or is not placed on a unit")
    return _owner(row)


def batch(
    session: Session, points: list[tuple[float, float]], workspace: str = "default"
) -> list[Owner | None]:
    """Owners for up to 10,000 points in one statement; None where a point is in no unit."""
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    rows = session.execute(BATCH_SQL, {"lons": lons, "lats": lats, "workspace": workspace}).all()
    if not rows and points:
        _active_plan_exists(session, workspace)
    out: list[Owner | None] = [None] * len(points)
    for row in rows:
        if row[4] is not None:  # the point fell inside a unit
            out[int(row[0]) - 1] = _owner(row[1:])
    return out
