"""Write validated staging rows into rep / account / deal: one INSERT for new ids, one UPDATE for known ones.

Only the fields the input carries are written: a column left out of a file keeps its stored value on
update and takes the table default on insert. A location group (lon, lat, zip) is written as a whole.
The pipeline holds a transaction-level advisory lock per kind, so no other upload can create one of our
new external ids between the lookup and the INSERT (which is why this needs no ON CONFLICT, measured
20 % slower on a million rows).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, func, insert, literal, null, select, tuple_, update
from sqlalchemy.orm import Session

from app.db.models import Account, Deal, GeoUnit, Rep
from app.services.ingest.specs import KindSpec

TABLES: dict[str, Table] = {
    "reps": Rep.__table__,  # type: ignore[dict-item]
    "accounts": Account.__table__,  # type: ignore[dict-item]
    "deals": Deal.__table__,  # type: ignore[dict-item]
}


def _simple_fields(kind: KindSpec, present: set[str]) -> list[str]:
    grouped = {f for group in kind.groups.values() for f in group}
    skip = grouped | {"external_id", "name", "account_external_id"}
    return [f for f in kind.field_names if f in present and f not in skip]


def located(kind: KindSpec, present: set[str]) -> bool:
    """Whether the input carries the kind's location group (then it is written as a whole)."""
    return any(f in present for group in kind.groups.values() for f in group)


def write(
    session: Session,
    kind: KindSpec,
    typed: Table,
    present: set[str],
    hits: Table | None = None,
    zip_hits: Table | None = None,
    *,
    updates: bool = True,
) -> int:
    """Insert the rows with new external ids and, when ``updates``, update the others that differ.

    Returns the number of stored rows that changed.
    """
    target = TABLES[kind.name]
    source: Any = typed
    values: dict[str, ColumnElement[Any]] = {"external_id": typed.c.external_id}
    if "name" in kind.field_names:
        values["name"] = typed.c.name
    if kind.name == "deals":
        values["account_id"] = typed.c.account_id
    for name in _simple_fields(kind, present):
        values[name] = typed.c[name]
    insert_only: dict[str, ColumnElement[Any]] = {}

    if kind.name == "accounts":
        if located(kind, present):
            unit: ColumnElement[Any] = null()
            how: ColumnElement[Any] = literal("unmatched")
            if hits is not None:
                source = source.outerjoin(hits, hits.c.line == typed.c.line)
                zip_unit: ColumnElement[Any] = null()
                if zip_hits is not None:
                    source = source.outerjoin(zip_hits, zip_hits.c.line == typed.c.line)
                    zip_unit = zip_hits.c.unit_id
                unit = func.coalesce(hits.c.unit_id, zip_unit)
                how = case(
                    (hits.c.unit_id.is_not(None), literal("point")),
                    (zip_unit.is_not(None), literal("zip")),
                    else_=literal("unmatched"),
                )
            values.update(location=typed.c.pt, zip=typed.c.zip, unit_id=unit, placement=how)
        else:
            insert_only["placement"] = literal("unmatched")  # updates keep their placement
    if kind.name == "reps" and located(kind, present):
        zcta = GeoUnit.__table__.alias("home_zcta")
        source = source.outerjoin(zcta, and_(zcta.c.level == "zcta", zcta.c.code == typed.c.home_zip))
        values.update(home=func.coalesce(typed.c.pt, zcta.c.centroid), home_zip=typed.c.home_zip)

    new_columns = {**values, **insert_only}
    # File order: ids follow the file, and the external_id index mostly grows at its right edge.
    new_rows = (
        select(*(v.label(k) for k, v in new_columns.items()))
        .select_from(source)
        .where(typed.c.existing_id.is_(None))
        .order_by(typed.c.line)
    )
    session.execute(insert(target).from_select(list(new_columns), new_rows))

    changed = [name for name in values if name != "external_id"]
    known = (
        select(typed.c.existing_id, *(values[name].label(name) for name in changed))
        .select_from(source)
        .where(typed.c.existing_id.is_not(None))
        .subquery("known")
    )
    if not updates:
        return 0
    # Rows whose stored values already equal the input are left alone: a re-exported file in which few
    # accounts changed writes only those (no new row versions, no index entries for the rest).
    result = session.execute(
        update(target)
        .where(
            target.c.id == known.c.existing_id,
            tuple_(*(target.c[name] for name in changed)).is_distinct_from(
                tuple_(*(known.c[name] for name in changed))
            ),
        )
        .values({name: known.c[name] for name in changed})
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
