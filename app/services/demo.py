"""The demo workspace: real Census counties (plotly-geo package) and seeded synthetic reps and accounts."""

from __future__ import annotations

from sqlalchemy import func, text
from sqlalchemy.orm import Session

import geodata
from app.db.models import Account, Rep
from app.services import geography_import

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
    return (
        f"{len(units.frame)} counties, {len(adjacency.a)} adjacency edges, "
        f"{len(rep_rows)} reps, {len(account_rows)} accounts"
    )
