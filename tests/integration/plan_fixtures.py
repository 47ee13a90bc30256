"""A Connecticut workspace for plan tests: 282 ZCTAs, 5 reps, seeded accounts and deals, messy plans.

Everything the tests compare against is computed here from the inputs, independently of the service.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, text
from sqlalchemy.orm import Session

import geodata
from app.db.models import Account, Rep
from app.services import geography_import

CT_FIXTURE = "fixtures/fixture_ct_zcta2010_covsimp0p001_pop.geojson"
REPS = ["R1", "R2", "R3", "R4", "R5"]


@dataclass
class Workspace:
    """The CT units with their code order and centroid longitudes."""

    units: geodata.UnitSet
    codes: list[str]
    lon: np.ndarray


def load_ct_workspace(session: Session, data_dir: Path, *, accounts: int = 600, seed: int = 7) -> Workspace:
    """Import CT units, 5 reps, seeded accounts (with CRM owners) and deals in the test transaction."""
    raw = geodata.read_features(data_dir / CT_FIXTURE)
    units = geodata.prepare_units(raw, level="zcta", code_field="zcta")
    adjacency = geodata.build_adjacency(units.frame.geometry.values)
    geography_import.write(session, units, adjacency)
    centroids = units.frame["centroid"].values
    lon = np.array([p.x for p in centroids])
    lat = np.array([p.y for p in centroids])
    order = np.argsort(lon, kind="stable")
    for k, rep in enumerate(REPS):
        home = order[int((k + 0.5) * len(order) / len(REPS))]
        session.add(
            Rep(
                external_id=rep,
                name=f"Rep {rep}",
                home=func.ST_SetSRID(func.ST_MakePoint(lon[home], lat[home]), 4326),
            )
        )
    rng = np.random.default_rng(seed)
    for row in geodata.synthetic_accounts(units, accounts, seed):
        session.add(
            Account(
                external_id=row["external_id"],
                name=row["name"],
                location=func.ST_SetSRID(func.ST_MakePoint(row["lon"], row["lat"]), 4326),
                value=row["value"],
                workload=row["workload"],
                stage=row["stage"],
                segment=row["segment"],
                crm_owner=str(rng.choice(REPS)),
            )
        )
    session.flush()
    session.execute(
        text(
            "UPDATE account a SET unit_id = u.id FROM geo_unit u "
            "WHERE u.level = 'zcta' AND a.location && u.geom AND ST_Intersects(u.geom, a.location)"
        )
    )
    session.execute(
        text(
            "INSERT INTO deal (external_id, account_id, amount, stage) "
            "SELECT 'D-' || a.external_id, a.id, a.value, CASE WHEN a.id % 2 = 0 THEN 'won' ELSE 'lost' END "
            "FROM account a WHERE a.stage IN ('won', 'lost')"
        )
    )
    session.flush()
    return Workspace(units=units, codes=list(units.frame["code"]), lon=lon)


def band_plan(ws: Workspace) -> dict[str, str]:
    """A clean plan: five west-to-east bands of equal unit count, one rep each (unit code -> rep)."""
    order = np.argsort(ws.lon, kind="stable")
    owner = {}
    for rank, row in enumerate(order):
        owner[ws.codes[row]] = REPS[rank * len(REPS) // len(order)]
    return owner


def messy_rows(ws: Workspace, seed: int = 11) -> tuple[list[tuple[str, str, str]], set[str], set[str]]:
    """Band plan with 15 units claimed twice and 12 left out: rows, contested codes, uncovered codes."""
    clean = band_plan(ws)
    rng = np.random.default_rng(seed)
    codes = sorted(clean)
    picked = rng.choice(len(codes), size=27, replace=False)
    doubled = {codes[i] for i in picked[:15]}
    dropped = {codes[i] for i in picked[15:]}
    rows = []
    for code in codes:
        if code in dropped:
            continue
        rep = clean[code]
        rows.append((f"T-{rep}", rep, code))
        if code in doubled:
            other = REPS[(REPS.index(rep) + 1) % len(REPS)]
            rows.append((f"T-{other}", other, code))
    return rows, doubled, dropped


def plan_csv(rows: list[tuple[str, str, str]]) -> bytes:
    """The rows as an upload CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["territory", "rep", "unit"])
    writer.writerows(rows)
    return out.getvalue().encode()


def clean_rows(ws: Workspace, moved: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """The band plan as rows, with optional unit -> rep overrides."""
    owner = {**band_plan(ws), **(moved or {})}
    return [(f"T-{rep}", rep, code) for code, rep in sorted(owner.items())]
