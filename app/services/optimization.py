"""Optimization use cases: a request + the database -> an optimizer Problem; a Solution -> a draft plan.

The request is stored with every job and plan; re-running it against the same data and seed gives the same
plan, because the optimizer is deterministic and every array here is built in a fixed (code) order.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select, text
from sqlalchemy.orm import Session

import optimizer
from app.db.models import Plan, Rep, Territory
from app.errors import InvalidParameter, NotFound
from app.services.plans.importer import dissolve_territories, insert_claims
from app.services.plans.state import PlanState, load_plan, load_units

SOLVER_VERSION = "optimizer-0.1"
MEASURES = ("workload", "value", "accounts", "population")
Measure = Literal["workload", "value", "accounts", "population"]


def _workload_only() -> list[Measure]:
    return ["workload"]


class OptimizationRequest(BaseModel):
    """What to optimize: starting plan (or the active one), reps, balance rules, disruption, locks, limits."""

    workspace: str = "default"
    base_plan: int | Literal["active"] | None = Field(
        default="active", description="plan to start from (its reps and owners); null to plan from scratch"
    )
    level: Literal["zcta", "county", "custom"] | None = Field(
        default=None, description="unit level (default: the base plan's level)"
    )
    reps: list[str] | None = Field(
        default=None, description="rep external ids (default: the base plan's reps)"
    )
    states: list[str] | None = Field(default=None, description="only units of these states (region)")
    measures: list[Measure] = Field(default_factory=_workload_only, min_length=1)
    tolerance: dict[str, float] = Field(
        default_factory=lambda: {"workload": 0.05}, description="measure -> allowed relative deviation"
    )
    contiguity: bool = True
    max_moved_units_pct: float | None = Field(default=None, ge=0, le=100)
    max_moved_workload_pct: float | None = Field(default=None, ge=0, le=100)
    disruption_weight: float = Field(default=0.0, ge=0)
    locks: dict[str, str] = Field(default_factory=dict, description="unit code -> rep external id")
    excluded: list[str] = Field(default_factory=list)
    time_limit_s: float = Field(default=60.0, gt=0, le=3600)
    seed: int = 0
    mode: Literal["auto", "exact", "heuristic"] = "auto"
    quarter: str | None = Field(default=None, pattern=r"^\d{4}Q[1-4]$")
    name: str | None = None

    @field_validator("tolerance")
    @classmethod
    def _tolerances(cls, value: dict[str, float]) -> dict[str, float]:
        for measure, tol in value.items():
            if measure not in MEASURES:
                raise ValueError(f"unknown measure {measure!r}; expected one of {', '.join(MEASURES)}")
            if not 0 < tol < 1:
                raise ValueError(f"tolerance for {measure} must be a fraction between 0 and 1, got {tol}")
        return value

    def digest(self) -> str:
        """A stable hash of the request (for Idempotency-Key checks)."""
        return hashlib.sha256(
            orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()


def resolve_base_plan(session: Session, request: OptimizationRequest) -> Plan | None:
    """The starting plan (404 when named but missing; None when planning from scratch)."""
    if request.base_plan is None:
        return None
    if request.base_plan == "active":
        plan = session.scalars(
            select(Plan).where(Plan.workspace == request.workspace, Plan.status == "active")
        ).first()
        if plan is None:
            raise NotFound(
                f"workspace {request.workspace!r} has no active plan; name base_plan or set it null"
            )
        return plan
    plan = session.get(Plan, request.base_plan)
    if plan is None:
        raise NotFound(f"no plan {request.base_plan}")
    return plan


def current_owners(state: PlanState) -> dict[str, str]:
    """Unit code -> rep of a loaded plan (the smallest rep id where an imported plan claims a unit twice)."""
    owners: dict[str, str] = {}
    for u, t in zip(state.claim_unit, state.claim_territory, strict=True):
        rep = state.rep_external[t]
        code = str(state.units.codes[u])
        if rep is not None and (code not in owners or rep < owners[code]):
            owners[code] = rep
    return dict(sorted(owners.items()))


def build_problem(session: Session, request: OptimizationRequest) -> tuple[optimizer.Problem, Plan | None]:
    """The optimizer Problem for ``request`` (422 problems name the offending field)."""
    base = resolve_base_plan(session, request)
    level = request.level or (base.level if base else None)
    if level is None:
        raise InvalidParameter("level is required when planning from scratch", parameter="level")
    units = load_units(session, level)
    if len(units.ids) == 0:
        raise InvalidParameter(f"there are no {level} units", parameter="level")
    keep = np.ones(len(units.ids), dtype=bool)
    if request.states:
        wanted = set(request.states)
        keep = np.array([state in wanted for state in units.states])
        if not keep.any():
            raise InvalidParameter(f"no {level} units in states {request.states}", parameter="states")
    current = (
        current_owners(load_plan(session, base.id, units if base.level == level else None)) if base else {}
    )
    rep_ids = request.reps or sorted(set(current.values()))
    if not rep_ids:
        raise InvalidParameter(
            "no reps: name them in `reps` or start from a plan with reps", parameter="reps"
        )
    homes = {
        r[0]: (r[1], r[2])
        for r in session.execute(
            text("SELECT external_id, ST_X(home), ST_Y(home) FROM rep WHERE external_id = ANY(:ids)"),
            {"ids": rep_ids},
        ).all()
    }
    found = set(homes)
    missing = [r for r in rep_ids if r not in found]
    if missing:
        raise InvalidParameter(f"unknown reps: {', '.join(missing)}", parameter="reps")
    rows = np.flatnonzero(keep)
    codes = [str(c) for c in units.codes[rows]]
    position = {int(r): k for k, r in enumerate(rows)}
    edge_list = [(position[a], position[b]) for a, b in units.edges if a in position and b in position]
    bridge_list = [(position[a], position[b]) for a, b in units.bridges if a in position and b in position]
    measures: dict[str, np.ndarray] = {str(m): units.measures[m][rows] for m in request.measures}
    if "workload" in measures and measures["workload"].sum() == 0:
        raise InvalidParameter(
            "every unit has zero workload (no accounts placed): balance on population instead",
            parameter="measures",
        )
    code_set = set(codes)
    for field_name, values in (("locks", list(request.locks)), ("excluded", request.excluded)):
        unknown = [c for c in values if c not in code_set]
        if unknown:
            raise InvalidParameter(
                f"{field_name} name unknown units: {', '.join(unknown[:10])}", parameter=field_name
            )
    bad_lock_reps = sorted({r for r in request.locks.values() if r not in found})
    if bad_lock_reps:
        raise InvalidParameter(f"locks name unknown reps: {', '.join(bad_lock_reps)}", parameter="locks")
    options = optimizer.Options(
        tolerance={m: t for m, t in request.tolerance.items() if m in measures},
        contiguity=request.contiguity,
        current={c: r for c, r in current.items() if c in code_set and r in found} or None,
        max_moved_units=None if request.max_moved_units_pct is None else request.max_moved_units_pct / 100,
        max_moved_workload=None
        if request.max_moved_workload_pct is None
        else request.max_moved_workload_pct / 100,
        disruption_weight=request.disruption_weight,
        locked=dict(request.locks),
        excluded=list(request.excluded),
        time_limit=request.time_limit_s,
        seed=request.seed,
        mode=request.mode,
    )
    problem = optimizer.Problem(
        unit_ids=codes,
        measures=measures,
        centroids=np.column_stack([units.lon[rows], units.lat[rows]]),
        edges=np.array(edge_list + bridge_list, dtype=np.int64).reshape(-1, 2),
        is_bridge=np.array([False] * len(edge_list) + [True] * len(bridge_list), dtype=bool),
        reps=[
            optimizer.Rep(id=rep, home=homes[rep] if homes[rep][0] is not None else None)
            for rep in sorted(rep_ids)
        ],
        options=options,
    )
    return problem, base


def solution_report(solution: optimizer.Solution) -> dict[str, Any]:
    """The solution's metrics without the per-unit assignment (which lives in plan_claim)."""
    report = solution.to_dict()
    report.pop("assignment", None)
    return report


def save_plan(
    session: Session,
    request: OptimizationRequest,
    base: Plan | None,
    problem: optimizer.Problem,
    solution: optimizer.Solution,
) -> Plan:
    """Store a feasible solution as a single-owner draft plan with its inputs, seed and metrics."""
    level = request.level or (base.level if base else "zcta")
    name = (
        request.name
        or f"Optimized {request.quarter or ''} from {('plan ' + str(base.id)) if base else 'scratch'}"
    )
    plan = Plan(
        workspace=request.workspace,
        name=" ".join(name.split()),
        level=level,
        status="draft",
        source="optimizer",
        single_owner=True,
        parent_id=base.id if base else None,
        quarter=request.quarter,
        seed=request.seed,
        solver_version=SOLVER_VERSION,
        inputs=request.model_dump(mode="json") | {"base_plan_resolved": base.id if base else None},
        metrics=solution_report(solution),
    )
    session.add(plan)
    session.flush()
    rep_rows = dict(
        session.execute(
            select(Rep.external_id, Rep.id).where(Rep.external_id.in_([r.id for r in problem.reps]))
        ).all()
    )
    territories = {
        rep.id: Territory(plan_id=plan.id, name=f"T-{rep.id}", rep_id=rep_rows[rep.id])
        for rep in problem.reps
    }
    session.add_all(territories.values())
    session.flush()
    unit_ids: dict[str, int] = {
        str(r[0]): int(r[1])
        for r in session.execute(
            text("SELECT code, id FROM geo_unit WHERE level = :level AND code = ANY(:codes)"),
            {"level": level, "codes": list(solution.assignment)},
        ).all()
    }
    pairs = [
        (unit_ids[code], territories[rep].id)
        for code, rep in sorted(solution.assignment.items())
        if rep is not None
    ]
    insert_claims(session, plan.id, pairs, single_owner=True)
    session.flush()
    dissolve_territories(session, plan.id)
    return plan
