"""Import today's territories as they are: a CSV of (territory, rep, unit) rows or territory polygons.

Imported plans may claim a unit twice or leave units unclaimed; that mess is what diagnostics measure.
Everything is validated before the first write, so a bad file leaves the database unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from sqlalchemy import select, text
from sqlalchemy.orm import Session

import geodata
from app.db.models import GeoUnit, Plan, Rep, Territory
from app.errors import ProblemError

TERRITORY_COLUMNS = ("territory", "territory_name", "territory_id")
REP_COLUMNS = ("rep", "rep_id", "rep_external_id", "owner")
UNIT_COLUMNS = ("unit", "unit_code", "code", "zip", "zcta", "fips", "geoid")
CODE_WIDTH = {"zcta": 5, "county": 5}


class PlanImportError(ProblemError):
    """The plan file has rows or features that cannot be imported; ``errors`` lists each one."""

    status = 422
    title = "Invalid plan"


@dataclass
class RowIssue:
    """One row-level finding."""

    line: int | None
    field: str | None
    value: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "value": self.value, "message": self.message}


@dataclass
class PlanImportReport:
    """What an imported plan holds."""

    plan_id: int
    territories: int
    claims: int
    contested_units: int
    unclaimed_units: int
    warnings: list[RowIssue] = field(default_factory=list)


def decode(raw: bytes) -> tuple[str, str]:
    """Decode an uploaded text file: UTF-8 (with or without BOM), else Windows-1252."""
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252"), "cp1252"


def _pick(header: list[str], candidates: tuple[str, ...], requested: str | None, what: str) -> str:
    lowered = {h.strip().lower(): h for h in header}
    if requested:
        if requested not in header:
            raise PlanImportError(
                f"column {requested!r} for {what} is not in the file; columns: {', '.join(header)}",
                errors=[{"line": 1, "field": what, "value": requested, "message": "no such column"}],
            )
        return requested
    for name in candidates:
        if name in lowered:
            return lowered[name]
    raise PlanImportError(
        f"no {what} column: expected one of {', '.join(candidates)}; columns: {', '.join(header)}",
        errors=[{"line": 1, "field": what, "value": None, "message": "missing column"}],
    )


def normalise_code(
    raw: str, level: str, line: int, issues: list[RowIssue], warnings: list[RowIssue]
) -> str | None:
    """Strip ZIP+4 and pad a lost leading zero (with a warning); reject what cannot be a code."""
    code = raw.strip()
    width = CODE_WIDTH.get(level)
    if width is None:
        return code or None
    if level == "zcta" and len(code) == 10 and code[5] == "-" and code[:5].isdigit():
        code = code[:5]
    if code.isdigit() and len(code) == width - 1:
        warnings.append(
            RowIssue(line, "unit", raw, f"code {raw!r} lost its leading zero; read as {'0' + code!r}")
        )
        return "0" + code
    if not code.isdigit() or len(code) != width:
        issues.append(RowIssue(line, "unit", raw, f"{level} codes have {width} digits"))
        return None
    return code


@dataclass
class _Rows:
    claims: list[tuple[int, str, str, str | None]]  # (line, territory, unit code, rep external id)
    warnings: list[RowIssue]


def read_claim_rows(raw: bytes, level: str, columns: dict[str, str | None]) -> _Rows:
    """Parse (territory, rep, unit) rows; raise PlanImportError listing every bad row."""
    content, _ = decode(raw)
    reader = csv.reader(io.StringIO(content))
    header = next(reader, None)
    if not header:
        raise PlanImportError("the CSV file is empty", errors=[])
    header = [h.strip() for h in header]
    t_col = _pick(header, TERRITORY_COLUMNS, columns.get("territory"), "territory")
    u_col = _pick(header, UNIT_COLUMNS, columns.get("unit"), "unit")
    r_col = None
    try:
        r_col = _pick(header, REP_COLUMNS, columns.get("rep"), "rep")
    except PlanImportError:
        if columns.get("rep"):
            raise
    index = {name: i for i, name in enumerate(header)}
    issues: list[RowIssue] = []
    warnings: list[RowIssue] = []
    claims: list[tuple[int, str, str, str | None]] = []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = row + [""] * (len(header) - len(row))
        territory = cells[index[t_col]].strip()
        rep = cells[index[r_col]].strip() if r_col else ""
        if not territory:
            issues.append(RowIssue(line, "territory", None, "territory is empty"))
            continue
        code = normalise_code(cells[index[u_col]], level, line, issues, warnings)
        if code is not None:
            claims.append((line, territory, code, rep or None))
    if issues:
        raise PlanImportError(
            f"{len(issues)} bad row(s) in the plan CSV", errors=[i.as_dict() for i in issues[:1000]]
        )
    if not claims:
        raise PlanImportError("the plan CSV has no rows", errors=[])
    return _Rows(claims=claims, warnings=warnings)


def _territory_reps(rows: _Rows, rep_ids: dict[str, int]) -> tuple[dict[str, int | None], list[RowIssue]]:
    issues: list[RowIssue] = []
    owner: dict[str, str | None] = {}
    first_line: dict[str, int] = {}
    for line, territory, _, rep in rows.claims:
        if rep is not None and rep not in rep_ids:
            issues.append(RowIssue(line, "rep", rep, f"unknown rep {rep!r}"))
            continue
        if territory in owner and rep is not None and owner[territory] not in (None, rep):
            issues.append(
                RowIssue(
                    line,
                    "rep",
                    rep,
                    f"territory {territory!r} already belongs to rep {owner[territory]!r} "
                    f"(line {first_line[territory]})",
                )
            )
            continue
        if owner.get(territory) is None:
            owner[territory] = rep
            first_line[territory] = line
    return {t: (rep_ids[r] if r else None) for t, r in owner.items()}, issues


def import_claims_csv(
    session: Session,
    raw: bytes,
    *,
    name: str,
    level: str,
    workspace: str = "default",
    quarter: str | None = None,
    columns: dict[str, str | None] | None = None,
) -> PlanImportReport:
    """Create an imported draft plan from a CSV of (territory, rep, unit code) rows."""
    rows = read_claim_rows(raw, level, columns or {})
    codes = sorted({code for _, _, code, _ in rows.claims})
    unit_ids = dict(
        session.execute(
            select(GeoUnit.code, GeoUnit.id).where(GeoUnit.level == level, GeoUnit.code.in_(codes))
        ).all()
    )
    reps = sorted({rep for *_, rep in rows.claims if rep})
    rep_ids = dict(session.execute(select(Rep.external_id, Rep.id).where(Rep.external_id.in_(reps))).all())
    issues = [
        RowIssue(line, "unit", code, f"no {level} unit {code!r}")
        for line, _, code, _ in rows.claims
        if code not in unit_ids
    ]
    territory_reps, rep_issues = _territory_reps(rows, rep_ids)
    issues += rep_issues
    if issues:
        issues.sort(key=lambda i: i.line or 0)
        raise PlanImportError(
            f"{len(issues)} bad row(s) in the plan CSV", errors=[i.as_dict() for i in issues[:1000]]
        )
    plan = Plan(
        name=name, level=level, workspace=workspace, quarter=quarter, source="imported", status="draft"
    )
    session.add(plan)
    session.flush()
    territory_ids = _create_territories(session, plan.id, territory_reps)
    pairs = {(unit_ids[code], territory_ids[territory]) for _, territory, code, _ in rows.claims}
    insert_claims(session, plan.id, sorted(pairs))
    dissolve_territories(session, plan.id)
    return _report(session, plan, len(territory_ids), rows.warnings)


def _create_territories(session: Session, plan_id: int, reps: dict[str, int | None]) -> dict[str, int]:
    territories = [Territory(plan_id=plan_id, name=name, rep_id=rep) for name, rep in sorted(reps.items())]
    session.add_all(territories)
    session.flush()
    return {t.name: t.id for t in territories}


def insert_claims(
    session: Session, plan_id: int, pairs: list[tuple[int, int]], single_owner: bool = False
) -> None:
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy("COPY plan_claim (plan_id, unit_id, territory_id, single_owner) FROM STDIN") as copy,
    ):
        for unit_id, territory_id in pairs:
            copy.write_row((plan_id, unit_id, territory_id, single_owner))


def dissolve_territories(session: Session, plan_id: int) -> None:
    """Materialise each territory's dissolved geometry from the units it claims."""
    session.execute(text("UPDATE territory SET geom = NULL WHERE plan_id = :plan"), {"plan": plan_id})
    session.execute(
        text(
            """
            UPDATE territory t SET geom = d.geom
            FROM (
                SELECT c.territory_id,
                       ST_Multi(ST_CollectionExtract(ST_UnaryUnion(ST_Collect(u.geom)), 3)) AS geom
                FROM plan_claim c JOIN geo_unit u ON u.id = c.unit_id
                WHERE c.plan_id = :plan
                GROUP BY c.territory_id
            ) d
            WHERE t.id = d.territory_id
            """
        ),
        {"plan": plan_id},
    )


def _report(session: Session, plan: Plan, territories: int, warnings: list[RowIssue]) -> PlanImportReport:
    counts = session.execute(
        text(
            """
            SELECT
              (SELECT count(*) FROM plan_claim WHERE plan_id = :plan),
              (SELECT count(*) FROM (SELECT unit_id FROM plan_claim WHERE plan_id = :plan
                                     GROUP BY unit_id HAVING count(*) > 1) x),
              (SELECT count(*) FROM geo_unit u WHERE u.level = :level AND NOT EXISTS
                 (SELECT 1 FROM plan_claim c WHERE c.plan_id = :plan AND c.unit_id = u.id))
            """
        ),
        {"plan": plan.id, "level": plan.level},
    ).one()
    return PlanImportReport(
        plan_id=plan.id,
        territories=territories,
        claims=counts[0],
        contested_units=counts[1],
        unclaimed_units=counts[2],
        warnings=warnings,
    )


def _polygon_rows(
    path: Path, territory_field: str, rep_field: str | None
) -> Iterator[tuple[int, str, str | None, Any]]:
    layer = geodata.read_features(path)
    if layer.parse_problems:
        raise geodata.GeodataError(problems=layer.parse_problems)
    frame = layer.frame
    for column in (territory_field, rep_field):
        if column and column not in frame.columns:
            raise PlanImportError(
                f"property {column!r} is not in the file; properties: {', '.join(map(str, frame.columns))}",
                errors=[{"line": None, "field": column, "value": None, "message": "no such property"}],
            )
    for index, row in enumerate(frame.itertuples(index=False)):
        record = row._asdict()
        yield (
            index,
            str(record[territory_field]).strip(),
            (str(record[rep_field]).strip() if rep_field else None),
            record["geometry"],
        )


def import_territory_polygons(
    session: Session,
    path: Path,
    *,
    name: str,
    level: str,
    territory_field: str = "territory",
    rep_field: str | None = "rep",
    workspace: str = "default",
    quarter: str | None = None,
    majority: float = 0.5,
) -> PlanImportReport:
    """Create an imported draft plan from territory polygons; a unit goes where most of its area lies."""
    issues: list[RowIssue] = []
    polygons: list[tuple[str, str | None, Any]] = []
    for index, territory, rep, geom in _polygon_rows(path, territory_field, rep_field):
        if geom is None or geom.is_empty or shapely.get_type_id(geom) not in (3, 6):
            issues.append(RowIssue(index, "geometry", territory, "territory feature is not a polygon"))
            continue
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        polygons.append((territory, rep or None, geom))
    reps = sorted({r for _, r, _ in polygons if r})
    rep_ids = dict(session.execute(select(Rep.external_id, Rep.id).where(Rep.external_id.in_(reps))).all())
    issues += [RowIssue(None, "rep", r, f"unknown rep {r!r}") for r in reps if r not in rep_ids]
    if issues:
        raise PlanImportError(
            f"{len(issues)} bad feature(s) in the territory file", errors=[i.as_dict() for i in issues]
        )
    owner: dict[str, int | None] = {}
    for territory, rep, _ in polygons:
        if owner.get(territory) is None:
            owner[territory] = rep_ids[rep] if rep else None
    plan = Plan(
        name=name, level=level, workspace=workspace, quarter=quarter, source="imported", status="draft"
    )
    session.add(plan)
    session.flush()
    territory_ids = _create_territories(session, plan.id, owner)
    session.execute(text("DROP TABLE IF EXISTS _plan_polygon"))
    session.execute(
        text("CREATE TEMP TABLE _plan_polygon (territory_id bigint, geom geometry) ON COMMIT DROP")
    )
    session.execute(
        text("INSERT INTO _plan_polygon VALUES (:territory, ST_SetSRID(ST_GeomFromWKB(:wkb), 4326))"),
        [{"territory": territory_ids[t], "wkb": shapely.to_wkb(g)} for t, _, g in polygons],
    )
    session.execute(
        text(
            """
            INSERT INTO plan_claim (plan_id, unit_id, territory_id, single_owner)
            SELECT :plan, u.id, p.territory_id, false
            FROM _plan_polygon p JOIN geo_unit u ON u.level = :level AND u.geom && p.geom
            GROUP BY u.id, p.territory_id, u.geom
            HAVING sum(ST_Area(ST_Intersection(u.geom, p.geom))) > :majority * ST_Area(u.geom)
            """
        ),
        {"plan": plan.id, "level": level, "majority": majority},
    )
    dissolve_territories(session, plan.id)
    return _report(session, plan, len(territory_ids), [])
