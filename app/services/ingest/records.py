"""Single records of reps, accounts and deals: list, get, create, update, delete.

Creates and updates go through the upload pipeline with one row, so a JSON body is validated, placed and
written exactly like a row of a file (ZIP padding, swapped coordinates, placement on a unit).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, case, delete, func, literal, select
from sqlalchemy.orm import Session

from app.crm_schemas import AccountPublic, DealPublic, RepPublic, UnitRef
from app.db.models import Account, Deal, GeoUnit, Rep
from app.errors import NotFound
from app.services.ingest import pipeline
from app.services.ingest.specs import KINDS

REP: Table = Rep.__table__  # type: ignore[assignment]
ACCOUNT: Table = Account.__table__  # type: ignore[assignment]
DEAL: Table = Deal.__table__  # type: ignore[assignment]
UNIT: Table = GeoUnit.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class AccountFilter:
    """Which accounts a listing returns."""

    unplaced: bool | None = None
    stage: str | None = None
    segment: str | None = None
    crm_owner: str | None = None
    unit_code: str | None = None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def write(
    session: Session, kind_name: str, external_id: str, values: dict[str, Any], *, create: bool
) -> None:
    """Create (409 if the id exists) or update one record through the pipeline; absent fields are kept."""
    kind = KINDS[kind_name]
    fields = {"external_id": external_id, **values}
    indices = {name: i for i, name in enumerate(fields)}
    cells = [_cell(v) for v in fields.values()]
    pipeline.run(
        session,
        kind,
        [(1, cells)],
        indices,
        mode="insert" if create else "update",
        source=f"{kind.singular} {external_id!r}",
    )


def _placement() -> ColumnElement[Any]:
    """How an account is placed; rows written by other paths (placement NULL) get it derived."""
    derived = case((ACCOUNT.c.location.is_not(None), literal("point")), else_=literal("zip"))
    return case(
        (ACCOUNT.c.unit_id.is_(None), literal("unmatched")), else_=func.coalesce(ACCOUNT.c.placement, derived)
    )


def _account_query() -> Select[Any]:
    return select(
        ACCOUNT.c.external_id,
        ACCOUNT.c.name,
        func.ST_X(ACCOUNT.c.location).label("lon"),
        func.ST_Y(ACCOUNT.c.location).label("lat"),
        ACCOUNT.c.zip,
        ACCOUNT.c.value,
        ACCOUNT.c.workload,
        ACCOUNT.c.stage,
        ACCOUNT.c.segment,
        ACCOUNT.c.crm_owner,
        UNIT.c.level,
        UNIT.c.code,
        _placement().label("placement"),
    ).select_from(ACCOUNT.outerjoin(UNIT, UNIT.c.id == ACCOUNT.c.unit_id))


def _account(row: Any) -> AccountPublic:
    unit = UnitRef(level=row.level, code=row.code) if row.code is not None else None
    return AccountPublic(
        external_id=row.external_id,
        name=row.name,
        lon=row.lon,
        lat=row.lat,
        zip=row.zip,
        value=row.value,
        workload=row.workload,
        stage=row.stage,
        segment=row.segment,
        crm_owner=row.crm_owner,
        unit=unit,
        placement=row.placement,
    )


def _account_where(query: Select[Any], filters: AccountFilter) -> Select[Any]:
    if filters.unplaced is True:
        query = query.where(ACCOUNT.c.unit_id.is_(None))
    elif filters.unplaced is False:
        query = query.where(ACCOUNT.c.unit_id.is_not(None))
    if filters.stage:
        query = query.where(ACCOUNT.c.stage == filters.stage)
    if filters.segment:
        query = query.where(ACCOUNT.c.segment == filters.segment)
    if filters.crm_owner:
        query = query.where(ACCOUNT.c.crm_owner == filters.crm_owner)
    if filters.unit_code:
        query = query.where(UNIT.c.code == filters.unit_code)
    return query


def list_accounts(
    session: Session, filters: AccountFilter, *, limit: int, offset: int
) -> tuple[list[AccountPublic], int]:
    """A page of accounts ordered by external id, and how many match."""
    counted = select(func.count()).select_from(ACCOUNT.outerjoin(UNIT, UNIT.c.id == ACCOUNT.c.unit_id))
    total = session.scalar(_account_where(counted, filters)) or 0
    query = _account_where(_account_query(), filters).order_by(ACCOUNT.c.external_id)
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return [_account(row) for row in rows], int(total)


def get_account(session: Session, external_id: str) -> AccountPublic:
    """One account, or 404."""
    row = session.execute(_account_query().where(ACCOUNT.c.external_id == external_id)).first()
    if row is None:
        raise NotFound(f"no account with external_id {external_id!r}", external_id=external_id)
    return _account(row)


def _rep_query() -> Select[Any]:
    return select(
        REP.c.external_id,
        REP.c.name,
        func.ST_X(REP.c.home).label("lon"),
        func.ST_Y(REP.c.home).label("lat"),
        REP.c.home_zip,
        REP.c.capacity,
        REP.c.segment,
        REP.c.active,
    )


def _rep(row: Any) -> RepPublic:
    return RepPublic(**row._mapping)


def list_reps(
    session: Session, *, active: bool | None, segment: str | None, limit: int, offset: int
) -> tuple[list[RepPublic], int]:
    """A page of reps ordered by external id, and how many match."""
    conditions: list[ColumnElement[bool]] = []
    if active is not None:
        conditions.append(REP.c.active.is_(active))
    if segment:
        conditions.append(REP.c.segment == segment)
    total = session.scalar(select(func.count()).select_from(REP).where(*conditions)) or 0
    query = _rep_query().where(*conditions).order_by(REP.c.external_id).limit(limit).offset(offset)
    return [_rep(row) for row in session.execute(query)], int(total)


def get_rep(session: Session, external_id: str) -> RepPublic:
    """One rep, or 404."""
    row = session.execute(_rep_query().where(REP.c.external_id == external_id)).first()
    if row is None:
        raise NotFound(f"no rep with external_id {external_id!r}", external_id=external_id)
    return _rep(row)


def _deal_query() -> Select[Any]:
    return select(
        DEAL.c.external_id,
        ACCOUNT.c.external_id.label("account_external_id"),
        DEAL.c.amount,
        DEAL.c.stage,
        DEAL.c.product,
        DEAL.c.closed_on,
    ).select_from(DEAL.join(ACCOUNT, ACCOUNT.c.id == DEAL.c.account_id))


def list_deals(
    session: Session, *, account: str | None, stage: str | None, limit: int, offset: int
) -> tuple[list[DealPublic], int]:
    """A page of deals ordered by external id, and how many match."""
    conditions: list[ColumnElement[bool]] = []
    if account:
        conditions.append(ACCOUNT.c.external_id == account)
    if stage:
        conditions.append(DEAL.c.stage == stage)
    counted = select(func.count()).select_from(DEAL.join(ACCOUNT, ACCOUNT.c.id == DEAL.c.account_id))
    total = session.scalar(counted.where(*conditions)) or 0
    query = _deal_query().where(*conditions).order_by(DEAL.c.external_id).limit(limit).offset(offset)
    return [DealPublic(**row._mapping) for row in session.execute(query)], int(total)


def get_deal(session: Session, external_id: str) -> DealPublic:
    """One deal, or 404."""
    row = session.execute(_deal_query().where(DEAL.c.external_id == external_id)).first()
    if row is None:
        raise NotFound(f"no deal with external_id {external_id!r}", external_id=external_id)
    return DealPublic(**row._mapping)


def remove(session: Session, kind_name: str, external_id: str) -> None:
    """Delete one record by external id (an account takes its deals with it), or 404."""
    table = {"reps": REP, "accounts": ACCOUNT, "deals": DEAL}[kind_name]
    deleted = session.execute(
        delete(table).where(table.c.external_id == external_id).returning(table.c.id)
    ).first()
    if deleted is None:
        singular = KINDS[kind_name].singular
        raise NotFound(f"no {singular} with external_id {external_id!r}", external_id=external_id)


def update_values(
    session: Session, kind_name: str, external_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """The fields to write for a PATCH: a partial location is completed from the stored one, so that
    changing only the ZIP keeps the point (the pipeline writes a location group as a whole)."""
    kind = KINDS[kind_name]
    values = dict(changes)
    for group in kind.groups.values():
        if any(f in values for f in group) and not all(f in values for f in group):
            current: dict[str, Any] = (
                get_account(session, external_id).model_dump()
                if kind_name == "accounts"
                else get_rep(session, external_id).model_dump()
            )
            for name in group:
                values.setdefault(name, current.get(name))
    return values
