"""Diagnose a plan: contested and uncovered units and accounts, misalignment, balance, shape, white space."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.services.plans.state import MEASURES, PlanState, haversine_km, load_plan

WHITE_SPACE_QUANTILE = 0.75


def _pieces(edges: np.ndarray, members: np.ndarray, n_units: int) -> int:
    """Connected pieces of the (distinct) unit rows ``members`` under ``edges`` (row indices), vectorised."""
    n = len(members)
    if n == 0:
        return 0
    local = np.full(n_units, -1, dtype=np.int64)
    local[members] = np.arange(n)
    a, b = local[edges[:, 0]], local[edges[:, 1]]
    keep = (a >= 0) & (b >= 0)
    graph = coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n, n))
    return int(connected_components(graph, directed=False)[0])


def owner_names(state: PlanState) -> dict[int, list[str]]:
    """Unit row -> names of the territories claiming it."""
    owners: dict[int, list[str]] = {}
    for u, t in zip(state.claim_unit, state.claim_territory, strict=True):
        owners.setdefault(int(u), []).append(state.territory_names[t])
    return owners


def _claim_counts(state: PlanState) -> np.ndarray:
    return np.bincount(state.claim_unit, minlength=len(state.units.ids))


def territory_loads(state: PlanState) -> dict[str, np.ndarray]:
    """Per-territory sums of each measure (a contested unit counts for every territory that claims it)."""
    k = len(state.territory_ids)
    return {
        m: np.bincount(state.claim_territory, weights=state.units.measures[m][state.claim_unit], minlength=k)
        for m in MEASURES
    }


def deviation_pct(load: float, target: float) -> float | None:
    """Percent above (+) or below (-) the target, rounded as reported; None without a target."""
    return round(100 * (load / target - 1), 3) if target > 0 else None


def _polsby_popper(session: Session, plan_id: int) -> dict[int, float | None]:
    rows = session.execute(
        text(
            "SELECT id, CASE WHEN geom IS NULL THEN NULL ELSE "
            "4 * pi() * ST_Area(geom::geography) / nullif(ST_Perimeter(geom::geography), 0) ^ 2 END "
            "FROM territory WHERE plan_id = :plan"
        ),
        {"plan": plan_id},
    ).all()
    return {r[0]: (round(float(r[1]), 4) if r[1] is not None else None) for r in rows}


def territory_metrics(session: Session, state: PlanState) -> list[dict[str, Any]]:
    """Loads, deviation from target, pieces, compactness and travel for each territory."""
    units = state.units
    loads = territory_loads(state)
    k = max(len(state.territory_ids), 1)
    targets = {m: float(units.measures[m].sum()) / k for m in MEASURES}
    polsby = _polsby_popper(session, state.plan.id)
    all_edges = np.vstack([units.edges, units.bridges]) if len(units.bridges) else units.edges
    out = []
    for t, territory_id in enumerate(state.territory_ids):
        members = state.claim_unit[state.claim_territory == t]
        home = state.rep_home[t]
        distance = None
        workload = units.measures["workload"][members]
        if not np.isnan(home).any() and len(members):
            km = haversine_km(units.lon[members], units.lat[members], home[0], home[1])
            weight = workload if workload.sum() > 0 else np.ones(len(members))
            distance = round(float((km * weight).sum() / weight.sum()), 2)
        out.append(
            {
                "territory": state.territory_names[t],
                "territory_id": int(territory_id),
                "rep": state.rep_external[t],
                "units": len(members),
                "loads": {m: round(float(loads[m][t]), 4) for m in MEASURES},
                "target": {m: round(targets[m], 4) for m in MEASURES},
                "deviation_pct": {m: deviation_pct(float(loads[m][t]), targets[m]) for m in MEASURES},
                "pieces": _pieces(units.edges, members, len(units.ids)),
                "pieces_with_bridges": _pieces(all_edges, members, len(units.ids)),
                "polsby_popper": polsby.get(int(territory_id)),
                "weighted_distance_km": distance,
            }
        )
    return out


def _unit_entry(state: PlanState, row: int, owners: list[str] | None = None) -> dict[str, Any]:
    m = state.units.measures
    entry: dict[str, Any] = {
        "code": state.units.codes[row],
        "population": float(m["population"][row]),
        "accounts": int(m["accounts"][row]),
        "value": round(float(m["value"][row]), 2),
        "workload": round(float(m["workload"][row]), 4),
    }
    if owners is not None:
        entry["territories"] = owners
    return entry


def _accounts_in(session: Session, unit_ids: list[int], limit: int) -> tuple[int, list[dict[str, Any]]]:
    if not unit_ids:
        return 0, []
    total = session.execute(
        text("SELECT count(*) FROM account WHERE unit_id = ANY(:ids)"), {"ids": unit_ids}
    ).scalar_one()
    rows = session.execute(
        text(
            "SELECT a.external_id, a.name, u.code, a.value, a.workload, a.crm_owner FROM account a "
            "JOIN geo_unit u ON u.id = a.unit_id WHERE a.unit_id = ANY(:ids) "
            "ORDER BY a.external_id LIMIT :limit"
        ),
        {"ids": unit_ids, "limit": limit},
    ).all()
    return total, [
        {"external_id": r[0], "name": r[1], "unit": r[2], "value": r[3], "workload": r[4], "crm_owner": r[5]}
        for r in rows
    ]


def _misaligned(session: Session, plan_id: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """Accounts whose CRM owner differs from the rep of the single territory that claims their unit."""
    query = """
        FROM account a
        JOIN plan_claim c ON c.unit_id = a.unit_id AND c.plan_id = :plan
        JOIN territory t ON t.id = c.territory_id
        LEFT JOIN rep r ON r.id = t.rep_id
        WHERE a.crm_owner IS NOT NULL
          AND (SELECT count(*) FROM plan_claim c2 WHERE c2.plan_id = :plan AND c2.unit_id = a.unit_id) = 1
          AND a.crm_owner IS DISTINCT FROM r.external_id
    """
    total = session.execute(text("SELECT count(*) " + query), {"plan": plan_id}).scalar_one()
    rows = session.execute(
        text(
            "SELECT a.external_id, a.name, a.crm_owner, r.external_id, t.name, "
            "(SELECT code FROM geo_unit WHERE id = a.unit_id) "
            + query
            + " ORDER BY a.external_id LIMIT :limit"
        ),
        {"plan": plan_id, "limit": limit},
    ).all()
    return total, [
        {
            "external_id": r[0],
            "name": r[1],
            "crm_owner": r[2],
            "territory_owner": r[3],
            "territory": r[4],
            "unit": r[5],
        }
        for r in rows
    ]


def white_space_rows(state: PlanState) -> np.ndarray:
    """Rows of the units in the top quartile of potential with no deal history at all, by potential."""
    units = state.units
    potential = _potential(state)
    positive = potential[potential > 0]
    if len(positive) == 0:
        return np.zeros(0, dtype=np.int64)
    threshold = float(np.quantile(positive, WHITE_SPACE_QUANTILE))
    rows = np.flatnonzero((potential >= threshold) & (units.deals == 0))
    return rows[np.lexsort((units.codes[rows].astype(str), -potential[rows]))]


def _potential(state: PlanState) -> np.ndarray:
    """Population, or account value when the geography has no population."""
    measures = state.units.measures
    return measures["population"] if measures["population"].sum() != 0 else measures["value"]


def white_space(
    state: PlanState, limit: int, owners: dict[int, list[str]] | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Units in the top quartile of potential with no deal history at all, by potential."""
    rows = white_space_rows(state)
    potential = _potential(state)
    owner = owners if owners is not None else owner_names(state)
    return len(rows), [
        {**_unit_entry(state, int(r), owner.get(int(r), [])), "potential": float(potential[r]), "deals": 0}
        for r in rows[:limit]
    ]


def diagnose(
    session: Session,
    plan_id: int,
    *,
    limit: int = 1000,
    account_limit: int | None = None,
    state: PlanState | None = None,
) -> dict[str, Any]:
    """Every diagnostic of a plan; each list is capped at ``limit`` and comes with its full count.

    ``account_limit`` caps the account lists instead (the map needs every unit but no account: with 1 M
    accounts those lists are most of the response). ``state`` is the plan already loaded (``load_plan``),
    so that callers holding it do not read it again.
    """
    alimit = limit if account_limit is None else account_limit
    state = state or load_plan(session, plan_id)
    counts = _claim_counts(state)
    owners = owner_names(state)
    contested_rows = np.flatnonzero(counts > 1)
    uncovered_rows = np.flatnonzero(counts == 0)
    contested_ids = [int(state.units.ids[r]) for r in contested_rows]
    uncovered_ids = [int(state.units.ids[r]) for r in uncovered_rows]
    contested_accounts, contested_list = _accounts_in(session, contested_ids, alimit)
    uncovered_accounts, uncovered_list = _accounts_in(session, uncovered_ids, alimit)
    unplaced = session.execute(text("SELECT count(*) FROM account WHERE unit_id IS NULL")).scalar_one()
    misaligned_total, misaligned_list = _misaligned(session, plan_id, alimit)
    white_total, white_list = white_space(state, limit, owners)
    territories = territory_metrics(session, state)
    m = state.units.measures
    summary = {
        "units": len(state.units.ids),
        "claimed_units": int((counts > 0).sum()),
        "contested_units": len(contested_rows),
        "uncovered_units": len(uncovered_rows),
        "contested_accounts": contested_accounts,
        "uncovered_accounts": uncovered_accounts,
        "unplaced_accounts": unplaced,
        "uncovered_population": float(m["population"][uncovered_rows].sum()),
        "uncovered_value": round(float(m["value"][uncovered_rows].sum()), 2),
        "misaligned_accounts": misaligned_total,
        "white_space_units": white_total,
        "territories": len(territories),
        "max_abs_deviation_pct": {
            measure: max(
                (
                    abs(t["deviation_pct"][measure])
                    for t in territories
                    if t["deviation_pct"][measure] is not None
                ),
                default=None,
            )
            for measure in MEASURES
        },
        "fragmented_territories": sum(1 for t in territories if t["pieces"] > 1),
    }
    return {
        "plan": {
            "id": state.plan.id,
            "name": state.plan.name,
            "status": state.plan.status,
            "version": state.plan.version,
            "level": state.plan.level,
        },
        "summary": summary,
        "territories": territories,
        "contested": {
            "units": [_unit_entry(state, int(r), owners[int(r)]) for r in contested_rows[:limit]],
            "accounts": contested_list,
        },
        "uncovered": {
            "units": [_unit_entry(state, int(r)) for r in uncovered_rows[:limit]],
            "accounts": uncovered_list,
        },
        "misaligned_accounts": misaligned_list,
        "white_space": white_list,
    }
