"""Unit measures derived from accounts and deals (the ``unit_measure`` view of migration 0003)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Double, Integer, and_, column, func, select, table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app.crm_schemas import DealTotals, UnitMeasure, UnitMeasures, UnplacedTotals
from app.db.models import Account, GeoUnit

UNIT_MEASURE = table(
    "unit_measure",
    column("unit_id", Integer),
    column("level"),
    column("code"),
    column("accounts", Integer),
    column("workload", Double),
    column("value", Double),
    column("segments", JSONB),
    column("stages", JSONB),
    column("won_deals", Integer),
    column("won_amount", Double),
    column("lost_deals", Integer),
    column("lost_amount", Double),
    column("open_deals", Integer),
    column("open_amount", Double),
)


def _measure(row: Any) -> UnitMeasure:
    return UnitMeasure(
        code=row.code,
        accounts=row.accounts,
        workload=row.workload,
        value=row.value,
        segments=row.segments,
        stages=row.stages,
        won=DealTotals(count=row.won_deals, amount=row.won_amount),
        lost=DealTotals(count=row.lost_deals, amount=row.lost_amount),
        open=DealTotals(count=row.open_deals, amount=row.open_amount),
    )


def _total(units: list[UnitMeasure]) -> UnitMeasure:
    segments: dict[str, int] = {}
    stages: dict[str, int] = {}
    for unit in units:
        for key, n in unit.segments.items():
            segments[key] = segments.get(key, 0) + n
        for key, n in unit.stages.items():
            stages[key] = stages.get(key, 0) + n

    def deals(stage: str) -> DealTotals:
        picked = [getattr(u, stage) for u in units]
        return DealTotals(count=sum(d.count for d in picked), amount=sum(d.amount for d in picked))

    return UnitMeasure(
        code="*",
        accounts=sum(u.accounts for u in units),
        workload=sum(u.workload for u in units),
        value=sum(u.value for u in units),
        segments=segments,
        stages=stages,
        won=deals("won"),
        lost=deals("lost"),
        open=deals("open"),
    )


def measures(session: Session, level: str, *, include_empty: bool = True) -> UnitMeasures:
    """Per unit of ``level``: workload, value, account counts by segment and stage, deals by stage."""
    m = UNIT_MEASURE
    query = select(m).where(m.c.level == level).order_by(m.c.code)
    if not include_empty:
        query = query.where(m.c.accounts > 0)
    units = [_measure(row) for row in session.execute(query)]
    account, unit = Account.__table__, GeoUnit.__table__
    count, workload, value = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(account.c.workload), 0),
            func.coalesce(func.sum(account.c.value), 0),
        )
        .select_from(account.outerjoin(unit, and_(unit.c.id == account.c.unit_id, unit.c.level == level)))
        .where(unit.c.id.is_(None))
    ).one()
    return UnitMeasures(
        level=level,
        units=units,
        totals=_total(units),
        unplaced=UnplacedTotals(accounts=count, workload=workload, value=value),
    )
