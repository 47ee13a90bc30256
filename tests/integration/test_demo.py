"""The demo workspace loads real counties with adjacency, reps and accounts all placed on a county."""

from __future__ import annotations

import networkx as nx
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.services import demo
from tests.integration.helpers import db_pairs, row_counts


def test_demo_workspace_is_complete_and_connected(session: Session) -> None:
    demo.load(session, reps=7, accounts=400)
    counts = row_counts(session)
    assert counts["rep"] == 7 and counts["account"] == 400
    units = counts["geo_unit"]
    assert units > 100
    unplaced = session.execute(text("SELECT count(*) FROM account WHERE unit_id IS NULL")).scalar_one()
    assert unplaced == 0
    # Independent check of placement: each account point lies in (or on the border of) its county.
    outside = session.execute(
        text(
            "SELECT count(*) FROM account a JOIN geo_unit u ON u.id = a.unit_id "
            "WHERE NOT ST_Intersects(u.geom, a.location)"
        )
    ).scalar_one()
    assert outside == 0
    graph = nx.Graph(list(db_pairs(session, "county") | db_pairs(session, "county", bridges=True)))
    assert graph.number_of_nodes() == units and nx.is_connected(graph)
    homes = session.execute(text("SELECT count(*) FROM rep r JOIN geo_unit u ON ST_Contains(u.geom, r.home)"))
    assert homes.scalar_one() == 7


def test_demo_has_an_active_plan_and_a_messy_one(session: Session) -> None:
    demo.load(session, reps=5, accounts=300)
    plans = session.execute(text("SELECT id, status, name FROM plan ORDER BY id")).all()
    assert [p[1] for p in plans] == ["active", "draft"]
    active, messy = plans[0][0], plans[1][0]
    units = session.execute(text("SELECT count(*) FROM geo_unit")).scalar_one()
    owned = session.execute(
        text("SELECT count(DISTINCT unit_id), count(*) FROM plan_claim WHERE plan_id = :p"), {"p": active}
    ).one()
    assert owned == (units, units)  # every county exactly once
    doubled = session.execute(
        text(
            "SELECT count(*) FROM (SELECT unit_id FROM plan_claim WHERE plan_id = :p "
            "GROUP BY unit_id HAVING count(*) > 1) x"
        ),
        {"p": messy},
    ).scalar_one()
    covered = session.execute(
        text("SELECT count(DISTINCT unit_id) FROM plan_claim WHERE plan_id = :p"), {"p": messy}
    ).scalar_one()
    assert doubled > 0 and covered < units
