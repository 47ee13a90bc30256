"""Plan lifecycle (draft -> approved -> active -> archived) and versioned edits.

Every write names the version it read (ETag / If-Match) and bumps it. Activation archives the previous
active plan and activates the new one in one transaction; the database guarantees one active plan per
workspace and one owner per unit of an active plan, so a concurrent or contested activation fails cleanly.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import GeoUnit, Plan, PlanClaim, Territory
from app.errors import Conflict, InvalidParameter, NotFound, PreconditionFailed, PreconditionRequired
from app.services.plans.importer import dissolve_territories

TRANSITIONS = {
    "approve": ("draft", "approved"),
    "activate": ("approved", "active"),
    "archive": (None, "archived"),
}


def etag(plan: Plan) -> str:
    """The strong ETag of a plan version."""
    return f'"plan-{plan.id}-v{plan.version}"'


def get_plan(session: Session, plan_id: int, *, lock: bool = False) -> Plan:
    """The plan, optionally locked FOR UPDATE; 404 when missing."""
    query = select(Plan).where(Plan.id == plan_id)
    if lock:
        query = query.with_for_update()
    plan = session.scalars(query).first()
    if plan is None:
        raise NotFound(f"no plan {plan_id}")
    return plan


def require_version(plan: Plan, if_match: str | None) -> None:
    """428 without If-Match, 412 when it does not name the current version."""
    if not if_match:
        raise PreconditionRequired(
            f"writes to plan {plan.id} need If-Match: {etag(plan)} (GET the plan for its ETag)"
        )
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in candidates and etag(plan) not in candidates:
        raise PreconditionFailed(
            f"plan {plan.id} is at version {plan.version} ({etag(plan)}); If-Match was {if_match}",
            current_etag=etag(plan),
        )


def _bump(plan: Plan) -> None:
    plan.version += 1
    plan.updated_at = func.now()


def transition(session: Session, plan_id: int, action: str, if_match: str | None) -> Plan:
    """Apply a lifecycle action; 409 when the plan's status does not allow it."""
    plan = get_plan(session, plan_id, lock=True)
    require_version(plan, if_match)
    required, target = TRANSITIONS[action]
    if required is not None and plan.status != required:
        raise Conflict(
            f"cannot {action} plan {plan.id}: it is {plan.status}, not {required}", status_now=plan.status
        )
    if action == "archive" and plan.status == "archived":
        raise Conflict(f"plan {plan.id} is already archived", status_now=plan.status)
    was_active = plan.status == "active"
    if action == "activate":
        _activate(session, plan)
    else:
        plan.status = target
    if was_active or plan.status == "active":
        # delivered on commit: routing snapshots reload the workspace's active plan
        session.execute(text("SELECT pg_notify('plan_activated', :workspace)"), {"workspace": plan.workspace})
    _bump(plan)
    session.flush()
    session.refresh(plan)
    return plan


def _activate(session: Session, plan: Plan) -> None:
    contested = session.execute(
        text(
            "SELECT count(*) FROM (SELECT unit_id FROM plan_claim WHERE plan_id = :plan "
            "GROUP BY unit_id HAVING count(*) > 1) x"
        ),
        {"plan": plan.id},
    ).scalar_one()
    if contested:
        raise Conflict(
            f"plan {plan.id} claims {contested} unit(s) more than once; "
            "an active plan has one owner per unit",
            contested_units=contested,
        )
    current = session.scalars(
        select(Plan).where(Plan.workspace == plan.workspace, Plan.status == "active").with_for_update()
    ).all()
    for old in current:
        old.status = "archived"
        _bump(old)
    session.flush()
    try:
        with session.begin_nested():
            # The cascading foreign key copies the flag onto every claim; the partial unique index checks it.
            session.execute(
                update(Plan)
                .where(Plan.id == plan.id)
                .values(single_owner=True, status="active", activated_at=func.now())
            )
    except IntegrityError as exc:
        raise Conflict(f"plan {plan.id} could not be activated: {exc.orig}") from exc
    session.refresh(plan)


def edit(session: Session, plan_id: int, changes: dict[str, Any], if_match: str | None) -> Plan:
    """Change a plan's name, quarter or effective date."""
    plan = get_plan(session, plan_id, lock=True)
    require_version(plan, if_match)
    for key in ("name", "quarter", "effective_date"):
        if key in changes:
            setattr(plan, key, changes[key])
    _bump(plan)
    session.flush()
    session.refresh(plan)
    return plan


def assign_unit(session: Session, plan_id: int, code: str, territory: str, if_match: str | None) -> Plan:
    """Give one unit to one territory of a draft plan (removing its other claims)."""
    plan = get_plan(session, plan_id, lock=True)
    require_version(plan, if_match)
    if plan.status != "draft":
        raise Conflict(
            f"plan {plan.id} is {plan.status}: only draft plans are edited", status_now=plan.status
        )
    unit_id = session.scalar(select(GeoUnit.id).where(GeoUnit.level == plan.level, GeoUnit.code == code))
    if unit_id is None:
        raise NotFound(f"no {plan.level} unit {code!r}")
    target = session.scalar(
        select(Territory.id).where(Territory.plan_id == plan.id, Territory.name == territory)
    )
    if target is None:
        raise InvalidParameter(f"plan {plan.id} has no territory {territory!r}", parameter="territory")
    session.execute(delete(PlanClaim).where(PlanClaim.plan_id == plan.id, PlanClaim.unit_id == unit_id))
    session.add(
        PlanClaim(plan_id=plan.id, unit_id=unit_id, territory_id=target, single_owner=plan.single_owner)
    )
    session.flush()
    dissolve_territories(session, plan.id)
    _bump(plan)
    session.flush()
    session.refresh(plan)
    return plan
