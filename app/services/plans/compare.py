"""Compare two plans: units and accounts that change owner, per-rep gains and losses, metric deltas."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.services.plans.diagnostics import diagnose
from app.services.plans.state import MEASURES, PlanState, load_plan


def owner_sets(state: PlanState) -> dict[int, tuple[str, ...]]:
    """Unit row -> sorted owners (rep external id, or territory name when it has no rep)."""
    owners: dict[int, list[str]] = {}
    for u, t in zip(state.claim_unit, state.claim_territory, strict=True):
        owners.setdefault(int(u), []).append(state.rep_external[t] or f"territory:{state.territory_names[t]}")
    return {u: tuple(sorted(set(o))) for u, o in owners.items()}


def _numeric_deltas(before: Any, after: Any) -> Any:
    if isinstance(before, dict) and isinstance(after, dict):
        return {k: _numeric_deltas(before.get(k), after.get(k)) for k in sorted(set(before) | set(after))}
    if isinstance(before, int | float) and isinstance(after, int | float) and not isinstance(before, bool):
        return round(after - before, 6)
    return None


def compare(
    session: Session, base_id: int, other_id: int, *, limit: int = 5000, account_limit: int | None = None
) -> dict[str, Any]:
    """What changes from plan ``base_id`` to plan ``other_id`` (``account_limit`` caps the account list
    instead of ``limit``)."""
    base = load_plan(session, base_id)
    other = load_plan(session, other_id, units=base.units)
    units = base.units
    before, after = owner_sets(base), owner_sets(other)
    moved_rows = sorted(r for r in set(before) | set(after) if before.get(r, ()) != after.get(r, ()))
    moves = []
    gains: dict[str, dict[str, float]] = {}

    def bump(rep: str, key: str, row: int, sign: int) -> None:
        entry = gains.setdefault(
            rep, {"units_gained": 0, "units_lost": 0, **{f"{m}_net": 0.0 for m in MEASURES}}
        )
        entry[key] += 1
        for m in MEASURES:
            entry[f"{m}_net"] += sign * float(units.measures[m][row])

    for row in moved_rows:
        old, new = before.get(row, ()), after.get(row, ())
        moves.append(
            {
                "unit": units.codes[row],
                "from": list(old),
                "to": list(new),
                "workload": float(units.measures["workload"][row]),
                "accounts": int(units.measures["accounts"][row]),
            }
        )
        for rep in set(old) - set(new):
            bump(rep, "units_lost", row, -1)
        for rep in set(new) - set(old):
            bump(rep, "units_gained", row, +1)
    moved_ids = [int(units.ids[r]) for r in moved_rows]
    account_rows = session.execute(
        text(
            "SELECT a.external_id, a.name, u.code, a.crm_owner FROM account a "
            "JOIN geo_unit u ON u.id = a.unit_id "
            "WHERE a.unit_id = ANY(:ids) ORDER BY a.external_id"
        ),
        {"ids": moved_ids},
    ).all()
    by_code = {m["unit"]: m for m in moves}
    accounts = [
        {
            "external_id": r[0],
            "name": r[1],
            "unit": r[2],
            "from": by_code[r[2]]["from"],
            "to": by_code[r[2]]["to"],
        }
        for r in account_rows
    ]
    total_workload = float(units.measures["workload"].sum())
    moved_workload = float(sum(m["workload"] for m in moves))
    base_diag = diagnose(session, base_id, limit=0, state=base)
    other_diag = diagnose(session, other_id, limit=0, state=other)
    return {
        "base": base_diag["plan"],
        "other": other_diag["plan"],
        "units_moved": len(moves),
        "units_moved_pct": round(100 * len(moves) / max(len(units.ids), 1), 3),
        "workload_moved_pct": round(100 * moved_workload / total_workload, 3) if total_workload else None,
        "accounts_moved": len(accounts),
        "moves": moves[:limit],
        "accounts": accounts[: limit if account_limit is None else account_limit],
        "reps": [{"rep": rep, **{k: round(v, 4) for k, v in g.items()}} for rep, g in sorted(gains.items())],
        "metrics": {
            "base": base_diag["summary"],
            "other": other_diag["summary"],
            "delta": _numeric_deltas(base_diag["summary"], other_diag["summary"]),
        },
    }
