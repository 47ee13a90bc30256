"""Staging in temporary tables: COPY the raw rows in, then type and validate them in one set-based pass.

``_ingest_rows`` holds the cells as trimmed text (NULL when empty). ``_ingest_typed`` holds, per row, the
typed values (NULL where a cell does not parse), the point, the id of the stored record with the same
external id, and two arrays of ``field:code`` strings: the errors and the warnings of that row. Both tables
are dropped at the end of the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geoalchemy2 import Geometry
from psycopg import sql as pgsql
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    Double,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, array
from sqlalchemy.orm import Session

from app.services.ingest.specs import FieldSpec, KindSpec

ROWS = "_ingest_rows"
TYPED = "_ingest_typed"
NUMERIC = ("number", "lon", "lat")
NUMBER_RE = r"^[+-]?([0-9]{1,20}(\.[0-9]{0,20})?|\.[0-9]{1,20})([eE][+-]?[0-9]{1,2})?$"
NOT_FINITE = (float("nan"), float("inf"), float("-inf"))
ZIP5_RE = r"^[0-9]{5}(-?[0-9]{4})?$"
ZIP4_RE = r"^[0-9]{4}(-?[0-9]{4})?$"
SHORT_ZIP_RE = r"^[0-9]{1,3}$"
DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$"
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")

_SQL_TYPES: dict[str, Any] = {
    "number": Double,
    "lon": Double,
    "lat": Double,
    "bool": Boolean,
    "date": Date,
}


def rows_table(kind: KindSpec) -> Table:
    """The raw staging table: the row number and one text column per field."""
    return Table(
        ROWS,
        MetaData(),
        Column("line", Integer),
        *(Column(f.name, Text) for f in kind.fields),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def typed_table(kind: KindSpec) -> Table:
    """The typed staging table (see the module docstring)."""
    columns = [Column("line", Integer), Column("existing_id", BigInteger)]
    if kind.name == "deals":
        columns.append(Column("account_id", BigInteger))
    columns += [Column(f.name, _SQL_TYPES.get(f.type, Text)) for f in kind.fields]
    if kind.located:
        columns.append(Column("pt", Geometry("POINT", srid=4326, spatial_index=False)))
    columns += [Column("codes", ARRAY(Text)), Column("warns", ARRAY(Text))]
    return Table(TYPED, MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP")


def create(session: Session, *tables: Table) -> None:
    """(Re)create temporary tables in the session's transaction."""
    connection = session.connection()
    for table in tables:
        connection.execute(text(f"DROP TABLE IF EXISTS {table.name}"))  # our own constant names
        table.create(connection)


def copy_rows(
    session: Session, kind: KindSpec, rows: Iterable[tuple[int, list[str]]], indices: dict[str, int]
) -> int:
    """COPY ``rows`` ((row number, cells)) into the raw staging table; fields not in ``indices`` stay NULL."""
    fields = [f.name for f in kind.fields if f.name in indices]
    positions = [indices[f] for f in fields]
    columns = ["line", *fields]
    raw = session.connection().connection.driver_connection
    assert raw is not None
    statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
        pgsql.Identifier(ROWS), pgsql.SQL(", ").join(map(pgsql.Identifier, columns))
    )
    count = 0
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        write = copy.write_row
        for line, cells in rows:
            # Trimmed here (str.strip is far cheaper than btrim in SQL); empty cells become NULL.
            write((line, *[cells[p].strip() or None for p in positions]))
            count += 1
    return count


def _code(condition: ColumnElement[Any], code: str) -> ColumnElement[Any]:
    return case((condition, literal(code, Text)), else_=null())


def _default(spec: FieldSpec) -> ColumnElement[Any]:
    assert spec.default is not None
    if spec.type == "number":
        return literal(float(spec.default), Double)
    if spec.type == "bool":
        return literal(spec.default in TRUE_WORDS, Boolean)
    return literal(spec.default, Text)


def _field_checks(
    spec: FieldSpec, raw: ColumnElement[Any], parsed: ColumnElement[Any]
) -> tuple[list[ColumnElement[Any]], list[ColumnElement[Any]]]:
    """Error and warning expressions for one field (``raw``: trimmed text; ``parsed``: the typed value)."""
    name = spec.name
    errors: list[ColumnElement[Any]] = []
    warnings: list[ColumnElement[Any]] = []
    present = raw.is_not(None)
    if spec.type == "id":
        errors.append(_code(raw.is_(None), f"{name}:required"))
    if spec.type in NUMERIC:
        not_number = or_(parsed.is_(None), parsed.in_([literal(v, Double) for v in NOT_FINITE]))
        errors.append(_code(and_(present, not_number), f"{name}:not_number"))
        if spec.type == "lon":
            errors.append(_code(or_(parsed < -180, parsed > 180), f"{name}:out_of_range"))
        if spec.type == "lat":
            errors.append(_code(or_(parsed < -90, parsed > 90), f"{name}:out_of_range"))
        if spec.minimum is not None:
            too_small = parsed <= spec.minimum if spec.exclusive_minimum else parsed < spec.minimum
            errors.append(_code(too_small, f"{name}:below_minimum"))
    if spec.type == "zip":
        # Cheap tests first (AND stops at the first false): most rows never reach a regular expression.
        failed = and_(present, parsed.is_(None))
        errors.append(_code(and_(failed, raw.regexp_match(SHORT_ZIP_RE)), f"{name}:zip_too_short"))
        errors.append(_code(and_(failed, ~raw.regexp_match(SHORT_ZIP_RE)), f"{name}:zip_invalid"))
        # A parsed ZIP that is not the first five characters got a leading zero back.
        warnings.append(_code(parsed != func.left(raw, 5), f"{name}:zip_padded"))
    if spec.type in ("bool", "choice", "date"):
        errors.append(_code(and_(present, parsed.is_(None)), f"{name}:not_{spec.type}"))
    if spec.max_length is not None and spec.type != "zip":
        errors.append(_code(func.length(raw) > spec.max_length, f"{name}:too_long"))
    return errors, warnings


def _parse(spec: FieldSpec, raw: ColumnElement[Any], optimistic: bool = False) -> ColumnElement[Any]:
    """The typed value of a trimmed cell, NULL when it does not parse (never an SQL error).

    ``optimistic`` numbers are plain casts: one bad number then fails the whole statement, and the caller
    retries with ``optimistic=False``, where a regular expression guards each cast (1.1 s per numeric
    column per million rows, which valid files are spared).
    """
    if spec.type in NUMERIC:
        if optimistic:
            return cast(raw, Double)
        return case((raw.regexp_match(NUMBER_RE), cast(raw, Double)), else_=null())
    if spec.type == "zip":
        return case(
            (raw.regexp_match(ZIP5_RE), func.left(raw, 5)),
            (raw.regexp_match(ZIP4_RE), func.concat("0", func.left(raw, 4))),
            else_=null(),
        )
    if spec.type == "bool":
        lowered = func.lower(raw)
        return case(
            (lowered.in_(TRUE_WORDS), literal(True)), (lowered.in_(FALSE_WORDS), literal(False)), else_=null()
        )
    if spec.type == "choice":
        lowered = func.lower(raw)
        return case((lowered.in_(spec.choices), lowered), else_=null())
    if spec.type == "date":
        iso = case((raw.regexp_match(DATE_RE), raw), else_=null())
        year = cast(func.substr(iso, 1, 4), Integer)
        month = cast(func.substr(iso, 6, 2), Integer)
        day = cast(func.substr(iso, 9, 2), Integer)
        month_end = func.make_date(year, month, 1) + text("interval '1 month - 1 day'")
        return case(
            (
                and_(year >= 1, month.between(1, 12)),
                case(
                    (day.between(1, func.extract("day", month_end)), func.make_date(year, month, day)),
                    else_=null(),
                ),
            ),
            else_=null(),
        )
    return raw


def fill_typed(
    session: Session,
    kind: KindSpec,
    rows: Table,
    typed: Table,
    target: Table,
    accounts: Table | None,
    *,
    optimistic: bool = True,
) -> None:
    """Type, validate and look up every staged row in one pass (see ``_parse`` for ``optimistic``).

    The parsing subquery is fenced with OFFSET 0 so that each cell is parsed once, not once per check.
    """
    parsed_columns = [_parse(f, rows.c[f.name], optimistic).label(f.name) for f in kind.fields]
    raw_columns = [rows.c[f.name].label(f"raw_{f.name}") for f in kind.fields]
    ps = select(rows.c.line, *raw_columns, *parsed_columns).offset(0).subquery("p")

    existing = target.alias("e")
    joined: Any = ps.outerjoin(existing, existing.c.external_id == ps.c.external_id)
    error_codes: list[ColumnElement[Any]] = []
    warning_codes: list[ColumnElement[Any]] = []
    for spec in kind.fields:
        errs, warns = _field_checks(spec, ps.c[f"raw_{spec.name}"], ps.c[spec.name])
        error_codes += errs
        warning_codes += warns
    values: dict[str, ColumnElement[Any]] = {"line": ps.c.line, "existing_id": existing.c.id}
    for spec in kind.fields:
        value: ColumnElement[Any] = ps.c[spec.name]
        if spec.default is not None:
            value = func.coalesce(value, _default(spec))
        values[spec.name] = value
    if "name" in kind.field_names:
        # The name may be left out (no column, or an empty cell) only for a record that already exists.
        values["name"] = func.coalesce(ps.c.name, existing.c.name)
        error_codes.append(_code(and_(ps.c.name.is_(None), existing.c.id.is_(None)), "name:required"))
    if kind.name == "deals":
        assert accounts is not None
        account = accounts.alias("acc")
        joined = joined.outerjoin(account, account.c.external_id == ps.c.account_external_id)
        values["account_id"] = account.c.id
        error_codes.append(
            _code(
                and_(ps.c.account_external_id.is_not(None), account.c.id.is_(None)),
                "account_external_id:unknown_account",
            )
        )
    if kind.located:
        lon, lat = ps.c.lon, ps.c.lat
        in_range = and_(lon.between(-180, 180), lat.between(-90, 90))
        values["pt"] = case((in_range, func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)), else_=null())
        error_codes.append(_code(and_(ps.c.raw_lon.is_not(None), ps.c.raw_lat.is_(None)), "lat:missing_pair"))
        error_codes.append(_code(and_(ps.c.raw_lat.is_not(None), ps.c.raw_lon.is_(None)), "lon:missing_pair"))
    values["codes"] = func.array_remove(array[Any](error_codes, type_=Text), null())
    values["warns"] = func.array_remove(array[Any](warning_codes, type_=Text), null())
    query = select(*(v.label(k) for k, v in values.items())).select_from(joined)
    session.execute(typed.insert().from_select(list(values), query))


def totals(session: Session, typed: Table) -> tuple[int, int, int]:
    """(error codes, warning codes, rows whose external id is already stored), in one scan."""
    errors, warnings, known = session.execute(
        select(
            func.coalesce(func.sum(func.cardinality(typed.c.codes)), 0),
            func.coalesce(func.sum(func.cardinality(typed.c.warns)), 0),
            func.count(typed.c.existing_id),
        )
    ).one()
    return int(errors), int(warnings), int(known)


def issue_rows(session: Session, rows: Table, typed: Table, column: str, limit: int) -> list[Any]:
    """The first ``limit`` rows with error (``codes``) or warning (``warns``) codes, with their cells."""
    codes = typed.c[column]
    flagged = (
        select(typed.c.line, codes.label("codes"))
        .where(func.cardinality(codes) > 0)
        .order_by(typed.c.line)
        .limit(limit)
        .subquery("f")
    )
    cells = [c for c in rows.c if c.name != "line"]
    query = (
        select(flagged.c.line, flagged.c.codes, *cells)
        .join(rows, rows.c.line == flagged.c.line)
        .order_by(flagged.c.line)
    )
    return list(session.execute(query).mappings())


def duplicates(session: Session, typed: Table, limit: int) -> tuple[int, list[tuple[str, list[int]]]]:
    """External ids given more than once: (number of extra rows, first ``limit`` ids with their rows)."""
    grouped = (
        select(
            typed.c.external_id,
            func.array_agg(aggregate_order_by(typed.c.line, typed.c.line)).label("lines"),
            func.count().label("n"),
        )
        .where(typed.c.external_id.is_not(None))
        .group_by(typed.c.external_id)
        .having(func.count() > 1)
        .subquery("d")
    )
    extra = session.scalar(select(func.coalesce(func.sum(grouped.c.n - 1), 0))) or 0
    if not extra:
        return 0, []
    first = session.execute(
        select(grouped.c.external_id, grouped.c.lines).order_by(grouped.c.lines[1]).limit(limit)
    ).all()
    return int(extra), [(row[0], list(row[1])) for row in first]
