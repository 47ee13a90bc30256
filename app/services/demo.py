"""The demo workspace: real Census counties (plotly-geo package) and seeded synthetic reps and accounts."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
from sqlalchemy import func, text
from sqlalchemy.orm import Session

import geodata
from app.db.models import Account, Rep
from app.services import geography_import
from app.services.plans import importer, lifecycle
from app.services.plans.state import haversine_km, load_units

DEMO_SEED = 20270101
DEMO_REPS = 12
DEMO_ACCOUNTS = 5000


def load(
    session: Session, *, seed: int = DEMO_SEED, reps: int = DEMO_REPS, accounts: int = DEMO_ACCOUNTS
) -> str:
    """Import the demo counties with adjacency, then reps and accounts placed on them; return a summary."""
    raw = geodata.demo_counties()
    units = geodata.prepare_units(
        raw, level="county", code_field="code", name_field="NAME", state_field="STATEFP"
    )
    adjacency = geodata.build_adjacency(units.frame.geometry.values, contiguity="queen")
    geography_import.write(session, units, adjacency)

    rep_rows = geodata.synthetic_reps(units, reps, seed)
    session.add_all(
        Rep(
            external_id=r["external_id"],
            name=r["name"],
            home=func.ST_SetSRID(func.ST_MakePoint(r["lon"], r["lat"]), 4326),
            capacity=r.get("capacity", 1.0),
            segment=r.get("segment"),
        )
        for r in rep_rows
    )
    account_rows = geodata.synthetic_accounts(units, accounts, seed)
    session.add_all(
        Account(
            external_id=a["external_id"],
            name=a["name"],
            location=func.ST_SetSRID(func.ST_MakePoint(a["lon"], a["lat"]), 4326),
            value=a["value"],
            workload=a["workload"],
            stage=a["stage"],
            segment=a.get("segment"),
        )
        for a in account_rows
    )
    session.flush()
    # Place every account on the county that contains it (GiST index on geo_unit.geom).
    session.execute(
        text(
            "UPDATE account a SET unit_id = u.id FROM geo_unit u "
            "WHERE a.unit_id IS NULL AND u.level = 'county' AND ST_Contains(u.geom, a.location)"
        )
    )
    plans = _demo_plans(session, units, rep_rows, seed)
    return (
        f"{len(units.frame)} counties, {len(adjacency.a)} adjacency edges, "
        f"{len(rep_rows)} reps, {len(account_rows)} accounts, plans {plans}"
    )


def _demo_plans(session: Session, units: geodata.UnitSet, reps: list[dict[str, Any]], seed: int) -> str:
    """Today's plan (nearest rep home, roughly balanced by hand; active) and a messy CRM export."""
    lon = np.array([p.x for p in units.frame["centroid"].values])
    lat = np.array([p.y for p in units.frame["centroid"].values])
    homes = np.array([[r["lon"], r["lat"]] for r in reps])
    km = haversine_km(lon[:, None], lat[:, None], homes[None, :, 0], homes[None, :, 1])
    codes = list(units.frame["code"])
    counties = load_units(session, "county")
    workload_of = dict(zip(counties.codes, counties.measures["workload"], strict=True))
    nearest = _roughly_balanced(km, np.array([workload_of[c] for c in codes]))
    rows = [
        (f"T-{reps[k]['external_id']}", reps[k]["external_id"], code)
        for code, k in zip(codes, nearest, strict=True)
    ]
    today = importer.import_claims_csv(session, _csv(rows), name="Today", level="county")
    for action in ("approve", "activate"):
        plan = lifecycle.get_plan(session, today.plan_id)
        lifecycle.transition(session, plan.id, action, lifecycle.etag(plan))
    rng = np.random.default_rng(seed)
    second = km.argsort(axis=1)[:, 1]
    messy = []
    for i, (code, k) in enumerate(zip(codes, nearest, strict=True)):
        roll = rng.random()
        if roll < 0.05:
            continue  # nobody owns it
        messy.append((f"T-{reps[k]['external_id']}", reps[k]["external_id"], code))
        if roll > 0.92:  # two reps claim it
            j = int(second[i])
            messy.append((f"T-{reps[j]['external_id']}", reps[j]["external_id"], code))
    crm = importer.import_claims_csv(
        session, _csv(messy), name="CRM export (overlaps and gaps)", level="county"
    )
    return f"#{today.plan_id} active, #{crm.plan_id} draft"


def _roughly_balanced(
    km: np.ndarray, workload: np.ndarray, rounds: int = 300, step: float = 5.0
) -> np.ndarray:
    """Nearest rep with per-rep distance offsets nudged toward equal workload: what a planner drew by hand.

    Keeps the most balanced round (about +-17 % on the demo): good enough to be today's plan, uneven
    enough to be worth rebalancing.
    """
    k = km.shape[1]
    target = workload.sum() / k
    offset = np.zeros(k)
    best, best_owner = np.inf, km.argmin(axis=1)
    for _ in range(rounds):
        owner = (km + offset).argmin(axis=1)
        load = np.bincount(owner, weights=workload, minlength=k)
        deviation = float(np.abs(load / target - 1).max())
        if deviation < best:
            best, best_owner = deviation, owner
        offset += step * (load - target) / target
    return best_owner


def _csv(rows: list[tuple[str, str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["territory", "rep", "unit"])
    writer.writerows(rows)
    return out.getvalue().encode()
