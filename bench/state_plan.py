"""Shared benchmark fixture: one rep per source state file and a plan giving each ZCTA to its state's rep."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def add_state_reps(session: Session) -> None:
    """One rep per ``src_state`` of the imported units, at the centroid of the state's first unit."""
    session.execute(
        text(
            "INSERT INTO rep (external_id, name, home) SELECT 'REP-' || s, 'Rep ' || s, "
            "(SELECT centroid FROM geo_unit WHERE attributes->>'src_state' = s ORDER BY code LIMIT 1) "
            "FROM (SELECT DISTINCT attributes->>'src_state' AS s FROM geo_unit) x"
        )
    )


def add_state_plan(session: Session, status: str = "draft") -> int:
    """A zcta plan with one territory per rep, each unit claimed by its state's rep; returns the plan id."""
    plan_id: int = session.execute(
        text("INSERT INTO plan (name, level, status) VALUES ('by state', 'zcta', :status) RETURNING id"),
        {"status": status},
    ).scalar_one()
    session.execute(
        text("INSERT INTO territory (plan_id, name, rep_id) SELECT :plan, 'T-' || external_id, id FROM rep"),
        {"plan": plan_id},
    )
    session.execute(
        text(
            "INSERT INTO plan_claim (plan_id, unit_id, territory_id) "
            "SELECT :plan, u.id, t.id FROM geo_unit u JOIN rep r ON r.external_id = 'REP-' || "
            "(u.attributes->>'src_state') JOIN territory t ON t.rep_id = r.id AND t.plan_id = :plan"
        ),
        {"plan": plan_id},
    )
    return plan_id
