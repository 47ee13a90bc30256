"""Bulk upload of reps, accounts and deals: read -> stage (COPY) -> validate + type (SQL) -> place -> upsert.

All-or-nothing: every error of every row is collected first (capped at 1,000 with a count) and raised as
one 422 problem; the caller's transaction then rolls back, so a rejected upload changes nothing. The same
pipeline writes single records from the JSON API, so both paths validate identically.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Table, func, select, text
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from app.crm_schemas import PlacementCounts, RowIssueModel, UnplacedRow, UploadReport
from app.db.models import GeoUnit
from app.errors import Conflict
from app.services.ingest import mapping as column_mapping
from app.services.ingest import placement, readers, staging, upsert
from app.services.ingest.errors import MAX_ISSUES, RecordInvalid, RowIssue, UploadRejected
from app.services.ingest.specs import KINDS, FieldSpec, KindSpec

Mode = Literal["upsert", "insert", "update"]


@dataclass
class Outcome:
    """What a pipeline run stored and noticed."""

    rows: int
    inserted: int
    updated: int
    unchanged: int
    level: str | None
    placement: dict[str, int] | None
    unplaced: list[UnplacedRow]
    unplaced_count: int
    warnings: list[RowIssue]
    warning_count: int
    timings: dict[str, float] = field(default_factory=dict)


class _Issues:
    """Errors collected from every stage: capped list plus the true count."""

    def __init__(self) -> None:
        self.items: list[RowIssue] = []
        self.count = 0

    def add(self, issues: Iterable[RowIssue], count: int | None = None) -> None:
        listed = list(issues)
        self.count += len(listed) if count is None else max(count, len(listed))
        self.items += listed[: max(0, MAX_ISSUES * 2 - len(self.items))]


def upload(
    session: Session,
    kind_name: str,
    path: Path,
    *,
    source: str,
    mapping: dict[str, str] | None = None,
    level: str | None = None,
) -> UploadReport:
    """Upsert every row of an uploaded file by external id, or raise UploadRejected changing nothing."""
    started = time.perf_counter()
    kind = KINDS[kind_name]
    table = readers.open_table(path, source)
    columns = column_mapping.resolve(kind, table.header, mapping)
    if columns.errors:
        raise UploadRejected(
            f"{source}: {len(columns.errors)} problem(s) with the header (row 1); nothing was stored",
            columns.errors,
            warnings=[*table.warnings, *columns.warnings],
            encoding=table.encoding,
        )
    read_s = time.perf_counter() - started
    outcome = run(
        session,
        kind,
        table.rows,
        columns.indices,
        column_names=columns.columns,
        level=level,
        source=source,
        reader=table,
        warnings=[*table.warnings, *columns.warnings],
    )
    outcome.timings = {"open": round(read_s, 3), **outcome.timings}
    return UploadReport(
        kind=kind.name,
        source=source,
        format=table.format,
        encoding=table.encoding,
        delimiter=table.delimiter,
        rows=outcome.rows,
        inserted=outcome.inserted,
        updated=outcome.updated,
        unchanged=outcome.unchanged,
        columns=columns.columns,
        ignored_columns=columns.ignored,
        level=outcome.level,
        placement=PlacementCounts(**outcome.placement) if outcome.placement else None,
        unplaced=outcome.unplaced,
        unplaced_count=outcome.unplaced_count,
        warnings=[RowIssueModel(**w.to_dict()) for w in outcome.warnings[:MAX_ISSUES]],
        warning_count=outcome.warning_count,
        timings_s=outcome.timings,
    )


def run(
    session: Session,
    kind: KindSpec,
    rows: Iterable[tuple[int, list[str]]],
    indices: dict[str, int],
    *,
    column_names: dict[str, str] | None = None,
    level: str | None = None,
    mode: Mode = "upsert",
    source: str = "request",
    reader: readers.SourceTable | None = None,
    warnings: list[RowIssue] | None = None,
) -> Outcome:
    """Stage, validate, place and upsert ``rows``; raise UploadRejected (or RecordInvalid) on any error."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    names = column_names or {}
    # One upload or record write per kind at a time: the existing-id lookup stays true until the INSERT.
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"territory-ingest-{kind.name}"))))
    # Sorts and hashes over a million staged rows stay in memory (this transaction only).
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    raw_rows, typed = staging.rows_table(kind), staging.typed_table(kind)
    staging.create(session, raw_rows, typed)
    count = staging.copy_rows(session, kind, rows, indices)
    lap("stage (parse + COPY)")
    present = set(indices)
    issues = _Issues()
    if reader is not None:
        issues.add(reader.errors, reader.error_count)
    if count == 0 and not issues.count:
        raise UploadRejected(f"{source} has no data rows", [RowIssue(row=2, message="no data rows")])

    targets = upsert.TABLES
    try:
        with session.begin_nested():
            staging.fill_typed(session, kind, raw_rows, typed, targets[kind.name], targets["accounts"])
    except DataError:  # a number that does not cast: type again, each cast guarded
        staging.fill_typed(
            session, kind, raw_rows, typed, targets[kind.name], targets["accounts"], optimistic=False
        )
    lap("validate + type")
    error_total, warning_total, known = staging.totals(session, typed)
    if error_total:
        flagged = staging.issue_rows(session, raw_rows, typed, "codes", MAX_ISSUES)
        issues.add(_coded(kind, flagged, names, present), error_total)
    extra, duplicated = staging.duplicates(session, typed, MAX_ISSUES)
    issues.add(_duplicates(duplicated, names), extra)
    all_warnings = list(warnings or [])
    if warning_total:
        all_warnings += _coded(
            kind, staging.issue_rows(session, raw_rows, typed, "warns", MAX_ISSUES), names, present
        )
    lap("collect issues")

    located = kind.located and upsert.located(kind, present)
    resolved = placement.resolve_level(session, level) if located else None
    hits = zip_hits = None
    counts: dict[str, int] | None = {"point": 0, "zip": 0, "unmatched": count} if located else None
    unplaced_rows: list[UnplacedRow] = []
    if located and resolved is not None:
        hits, point_count = placement.locate_typed(session, typed, resolved)
        lap("place points")
        zip_field = kind.zip_field if kind.name == "accounts" else None
        misses = placement.collect_misses(session, typed, hits, zip_field)
        swaps, swapped = placement.swapped(session, misses, resolved, MAX_ISSUES)
        issues.add(_swapped(swapped, names, resolved), swaps)
        zip_count = 0
        if kind.name == "accounts":
            zip_hits, zip_count = placement.locate_zips(session, misses, "zip", resolved)
            unplaced_rows = [
                _unplaced(row, resolved) for row in placement.unplaced(session, misses, zip_hits, MAX_ISSUES)
            ]
        counts = {"point": point_count, "zip": zip_count, "unmatched": count - point_count - zip_count}
        lap("place zips + checks")
    if kind.name == "reps" and located:
        issues.add(_unknown_home_zips(session, typed, names))

    if issues.count:
        detail = f"{source}: {issues.count} error(s); nothing was stored"
        if mode != "upsert":
            raise RecordInvalid(detail, errors=[_record_issue(i) for i in issues.items[:MAX_ISSUES]])
        raise UploadRejected(
            detail,
            issues.items,
            error_count=issues.count,
            warnings=all_warnings,
            warning_count=len(warnings or []) + warning_total,
            encoding=reader.encoding if reader else None,
        )
    if mode == "insert" and known:
        taken = session.scalar(select(typed.c.external_id).where(typed.c.existing_id.is_not(None)).limit(1))
        raise Conflict(f"{kind.singular} {taken!r} already exists", external_id=taken)
    if kind.name == "accounts" and located and resolved is None:
        unplaced_rows = [_unplaced(row, None) for row in _first_rows(session, typed)]
    changed = upsert.write(session, kind, typed, present, hits, zip_hits, updates=known > 0)
    lap("write")
    return Outcome(
        rows=count,
        inserted=count - known,
        updated=changed,
        unchanged=known - changed,
        level=resolved,
        placement=counts if kind.name == "accounts" else None,
        unplaced=unplaced_rows,
        unplaced_count=counts["unmatched"] if counts and kind.name == "accounts" else 0,
        warnings=all_warnings,
        warning_count=len(warnings or []) + warning_total,
        timings=timings,
    )


def _first_rows(session: Session, typed: Table) -> list[Any]:
    return list(
        session.execute(
            select(typed.c.line, typed.c.external_id, typed.c.lon, typed.c.lat, typed.c.zip)
            .order_by(typed.c.line)
            .limit(MAX_ISSUES)
        ).all()
    )


def _record_issue(issue: RowIssue) -> dict[str, Any]:
    return {"field": issue.field, "value": issue.value, "message": issue.message}


# ---------------------------------------------------------------- messages


def _describe(spec: FieldSpec, code: str, value: str | None, kind: KindSpec) -> str:
    shown = repr(value.strip()) if value is not None else "nothing"
    name = spec.name
    if code == "required":
        return f"{name} is missing"
    if code == "not_number":
        return f"{name} must be a number, got {shown}"
    if code == "out_of_range":
        if spec.type == "lon":
            return f"longitude {shown} is outside -180..180"
        return f"latitude {shown} is outside -90..90"
    if code == "below_minimum":
        bound = f"> {spec.minimum:g}" if spec.exclusive_minimum else f">= {spec.minimum:g}"
        adjective = "negative " if not spec.exclusive_minimum else ""
        return f"{adjective}{name} {shown}: {name} must be {bound}"
    if code == "zip_too_short":
        return f"ZIP {shown} has 3 digits or fewer: not a ZIP code (even with its leading zeros restored)"
    if code == "zip_invalid":
        return f"{shown} is not a US ZIP code (5 digits, optionally ZIP+4 like 02139-4307)"
    if code == "zip_padded":
        digits = (value or "").strip()
        return f"ZIP {shown} lost its leading zero: read as '0{digits[:4]}'"
    if code == "not_bool":
        return f"{name} must be true or false (yes/no, 1/0), got {shown}"
    if code == "not_choice":
        return f"{name} must be one of {', '.join(spec.choices)}; got {shown}"
    if code == "not_date":
        return f"{name} must be a date YYYY-MM-DD, got {shown}"
    if code == "too_long":
        return f"{name} is longer than {spec.max_length} characters"
    if code == "unknown_account":
        return f"account {shown} does not exist: upload or create it first"
    if code == "missing_pair":
        other = "lon" if name == "lat" else "lat"
        return f"{other} is given without {name}"
    return f"{name}: {code}"


def _coded(
    kind: KindSpec,
    rows: list[Any],
    names: dict[str, str],
    present: set[str],
) -> list[RowIssue]:
    issues = []
    for row in rows:
        for item in row["codes"]:
            name, code = item.split(":", 1)
            spec = kind.field(name)
            value = row[name] if name in present else None
            if code == "required" and name == "name":
                message = f"name is required for a new {kind.singular}"
            else:
                message = _describe(spec, code, value, kind)
            issues.append(
                RowIssue(row=row["line"], field=name, column=names.get(name), value=value, message=message)
            )
    return issues


def _duplicates(duplicated: list[tuple[str, list[int]]], names: dict[str, str]) -> list[RowIssue]:
    issues = []
    for external_id, lines in duplicated:
        for line in lines[1:]:
            others = [str(other) for other in lines if other != line]
            issues.append(
                RowIssue(
                    row=line,
                    field="external_id",
                    column=names.get("external_id"),
                    value=external_id,
                    message=f"duplicate external_id {external_id!r}: also on row(s) {', '.join(others)}",
                )
            )
    return issues


def _swapped(rows: list[Any], names: dict[str, str], level: str) -> list[RowIssue]:
    return [
        RowIssue(
            row=line,
            field="lat",
            column=names.get("lat"),
            value=f"{lon:g}, {lat:g}",
            message=(
                f"latitude/longitude look swapped: lon {lon:g}, lat {lat:g} is outside every {level} unit, "
                f"but lon {lat:g}, lat {lon:g} is in {level} {code}"
            ),
        )
        for line, lon, lat, code in rows
    ]


def _unplaced(row: Any, level: str | None) -> UnplacedRow:
    line, external_id, lon, lat, zip_code = row
    if level is None:
        reason = "there is no geography to place it on yet"
    elif lon is None and zip_code is None:
        reason = "no lon/lat and no ZIP"
    else:
        parts = []
        if lon is not None and lat is not None:
            parts.append(f"point {lon:g}, {lat:g} is outside every {level} unit")
        if zip_code is not None:
            parts.append(f"ZIP {zip_code} matches no unit")
        reason = "; ".join(parts)
    return UnplacedRow(row=line, external_id=external_id, reason=reason)


def _unknown_home_zips(session: Session, typed: Table, names: dict[str, str]) -> list[RowIssue]:
    zcta = GeoUnit.__table__.alias("z")
    rows = session.execute(
        select(typed.c.line, typed.c.home_zip)
        .select_from(typed.outerjoin(zcta, (zcta.c.level == "zcta") & (zcta.c.code == typed.c.home_zip)))
        .where(typed.c.pt.is_(None), typed.c.home_zip.is_not(None), zcta.c.id.is_(None))
        .order_by(typed.c.line)
        .limit(MAX_ISSUES)
    ).all()
    return [
        RowIssue(
            row=line,
            field="home_zip",
            column=names.get("home_zip"),
            value=code,
            message=f"home ZIP {code!r} matches no zcta unit, so the rep has no home: give lon/lat instead",
        )
        for line, code in rows
    ]
