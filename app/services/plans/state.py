"""Load a plan and its geography into arrays once, for diagnostics and comparisons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db.models import Plan
from app.errors import NotFound

MEASURES = ("workload", "value", "accounts", "population")


@dataclass
class Units:
    """Every unit of a level with its measures (derived from accounts, deals and census population)."""

    ids: np.ndarray
    codes: np.ndarray
    states: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    measures: dict[str, np.ndarray]
    deals: np.ndarray
    won_amount: np.ndarray
    edges: np.ndarray  # (m, 2) row indices, land adjacency
    bridges: np.ndarray  # (b, 2) row indices

    def index_of(self) -> dict[int, int]:
        return {int(unit_id): row for row, unit_id in enumerate(self.ids)}


@dataclass
class PlanState:
    """A plan's territories and claims as arrays aligned with ``Units``."""

    plan: Plan
    units: Units
    territory_ids: np.ndarray
    territory_names: list[str]
    rep_ids: list[int | None]
    rep_external: list[str | None]
    rep_home: np.ndarray  # (k, 2) lon/lat, NaN when unknown
    claim_unit: np.ndarray  # row index into units
    claim_territory: np.ndarray  # row index into territories


def load_units(session: Session, level: str) -> Units:
    """Units of ``level`` with workload/value/account counts, deal activity and adjacency."""
    rows = session.execute(
        text(
            """
            SELECT u.id, u.code, ST_X(u.centroid), ST_Y(u.centroid), coalesce(u.population, 0),
                   coalesce(a.workload, 0), coalesce(a.value, 0), coalesce(a.accounts, 0),
                   coalesce(d.deals, 0), coalesce(d.won, 0), u.state
            FROM geo_unit u
            LEFT JOIN (SELECT unit_id, sum(workload) AS workload, sum(value) AS value, count(*) AS accounts
                       FROM account GROUP BY unit_id) a ON a.unit_id = u.id
            LEFT JOIN (SELECT ac.unit_id, count(*) AS deals,
                              sum(CASE WHEN dl.stage = 'won' THEN dl.amount ELSE 0 END) AS won
                       FROM deal dl JOIN account ac ON ac.id = dl.account_id GROUP BY ac.unit_id) d
                   ON d.unit_id = u.id
            WHERE u.level = :level
            ORDER BY u.id
            """
        ),
        {"level": level},
    ).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in range(11)]
    position = {int(unit_id): row for row, unit_id in enumerate(ids)}
    edge_rows = session.execute(
        text(
            "SELECT e.a_id, e.b_id, e.is_bridge FROM geo_unit_adjacency e "
            "JOIN geo_unit u ON u.id = e.a_id WHERE u.level = :level"
        ),
        {"level": level},
    ).all()
    land = [
        (position[a], position[b])
        for a, b, bridge in edge_rows
        if not bridge and a in position and b in position
    ]
    bridged = [
        (position[a], position[b]) for a, b, bridge in edge_rows if bridge and a in position and b in position
    ]
    return Units(
        ids=ids,
        codes=np.array(columns[1], dtype=object),
        states=np.array(columns[10], dtype=object),
        lon=np.array(columns[2], dtype=float),
        lat=np.array(columns[3], dtype=float),
        measures={
            "population": np.array(columns[4], dtype=float),
            "workload": np.array(columns[5], dtype=float),
            "value": np.array(columns[6], dtype=float),
            "accounts": np.array(columns[7], dtype=float),
        },
        deals=np.array(columns[8], dtype=float),
        won_amount=np.array(columns[9], dtype=float),
        edges=np.array(land, dtype=np.int64).reshape(-1, 2),
        bridges=np.array(bridged, dtype=np.int64).reshape(-1, 2),
    )


def load_plan(session: Session, plan_id: int, units: Units | None = None) -> PlanState:
    """The plan with its territories (rep, home) and claims; 404 when it does not exist."""
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise NotFound(f"no plan {plan_id}")
    units = units or load_units(session, plan.level)
    territories = session.execute(
        text(
            "SELECT t.id, t.name, t.rep_id, r.external_id, ST_X(r.home), ST_Y(r.home) "
            "FROM territory t LEFT JOIN rep r ON r.id = t.rep_id "
            "WHERE t.plan_id = :plan ORDER BY t.name, t.id"
        ),
        {"plan": plan_id},
    ).all()
    territory_row = {t[0]: k for k, t in enumerate(territories)}
    position = units.index_of()
    claims = session.execute(
        text(
            "SELECT unit_id, territory_id FROM plan_claim "
            "WHERE plan_id = :plan ORDER BY unit_id, territory_id"
        ),
        {"plan": plan_id},
    ).all()
    return PlanState(
        plan=plan,
        units=units,
        territory_ids=np.array([t[0] for t in territories], dtype=np.int64),
        territory_names=[t[1] for t in territories],
        rep_ids=[t[2] for t in territories],
        rep_external=[t[3] for t in territories],
        rep_home=np.array(
            [
                [t[4] if t[4] is not None else np.nan, t[5] if t[5] is not None else np.nan]
                for t in territories
            ],
            dtype=float,
        ).reshape(-1, 2),
        claim_unit=np.array([position[c[0]] for c in claims], dtype=np.int64),
        claim_territory=np.array([territory_row[c[1]] for c in claims], dtype=np.int64),
    )


def haversine_km(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(x, dtype=float)) for x in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 6371.0088 * 2 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
