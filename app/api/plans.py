"""Plans: import, read, versioned edits, lifecycle, diagnostics, comparison and export."""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Header, Query, Response, UploadFile, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.api import errors
from app.api.deps import SessionDep, SettingsDep
from app.api.errors import InvalidParameter
from app.api.uploads import save_upload
from app.db.models import Plan
from app.services.plans import compare as compare_service
from app.services.plans import diagnostics, export, importer, lifecycle

router = APIRouter(prefix="/plans", tags=["plans"], responses=errors.problem_responses(404, 422))
WRITE_RESPONSES = errors.problem_responses(409, 412, 428)
Level = Literal["zcta", "county", "custom"]
IfMatch = Annotated[str | None, Header(description="the plan's ETag from GET /plans/{id}")]
AccountLimit = Annotated[
    int | None,
    Query(ge=0, le=100_000, description="cap on the account lists (default: limit); 0 keeps only counts"),
]


class PlanPublic(BaseModel):
    """A plan's header (its claims are read through diagnostics and export)."""

    id: int
    workspace: str
    name: str
    level: str
    status: str
    source: str
    single_owner: bool
    parent_id: int | None
    quarter: str | None
    effective_date: date | None
    version: int
    seed: int | None
    solver_version: str | None
    inputs: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None

    model_config = {"from_attributes": True}


class PlanUpdate(BaseModel):
    """Editable plan fields."""

    name: str | None = Field(default=None, min_length=1)
    quarter: str | None = Field(default=None, pattern=r"^\d{4}Q[1-4]$")
    effective_date: date | None = None


class UnitAssignment(BaseModel):
    """Give a unit to one territory of the plan."""

    territory: str = Field(min_length=1)


class PlanImportResult(BaseModel):
    """An imported plan and what it claims."""

    plan_id: int
    territories: int
    claims: int
    contested_units: int
    unclaimed_units: int
    warnings: list[dict[str, Any]]


def _with_etag(response: Response, plan: Plan) -> PlanPublic:
    response.headers["ETag"] = lifecycle.etag(plan)
    return PlanPublic.model_validate(plan)


@router.post("/imports", status_code=status.HTTP_201_CREATED, response_model=PlanImportResult)
async def import_plan(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV of territory, rep, unit rows; or territory polygons")],
    name: Annotated[str, Form(min_length=1)],
    level: Annotated[Level, Form()] = "zcta",
    quarter: Annotated[str | None, Form(pattern=r"^\d{4}Q[1-4]$")] = None,
    territory_column: Annotated[str | None, Form(description="CSV column or polygon property")] = None,
    rep_column: Annotated[str | None, Form()] = None,
    unit_column: Annotated[str | None, Form()] = None,
) -> PlanImportResult:
    """Import today's territories as they are (overlaps and gaps allowed) into a draft plan."""
    with tempfile.TemporaryDirectory(prefix="territory-plan-") as tmp:
        path = await save_upload(file, Path(tmp), settings.max_upload_mb << 20, "file")
        if path.suffix.lower() in (".csv", ".txt"):
            report = importer.import_claims_csv(
                session,
                path.read_bytes(),
                name=name,
                level=level,
                quarter=quarter,
                columns={"territory": territory_column, "rep": rep_column, "unit": unit_column},
            )
        else:
            report = importer.import_territory_polygons(
                session,
                path,
                name=name,
                level=level,
                quarter=quarter,
                territory_field=territory_column or "territory",
                rep_field=rep_column if rep_column is not None else "rep",
            )
    response.headers["Location"] = f"/plans/{report.plan_id}"
    return PlanImportResult(
        plan_id=report.plan_id,
        territories=report.territories,
        claims=report.claims,
        contested_units=report.contested_units,
        unclaimed_units=report.unclaimed_units,
        warnings=[w.as_dict() for w in report.warnings],
    )


@router.get("", response_model=list[PlanPublic])
def list_plans(
    session: SessionDep,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    workspace: str = "default",
) -> list[PlanPublic]:
    """List the plans of a workspace, newest first."""
    query = select(Plan).where(Plan.workspace == workspace).order_by(Plan.id.desc())
    if status_filter:
        query = query.where(Plan.status == status_filter)
    return [PlanPublic.model_validate(p) for p in session.scalars(query)]


@router.get("/{plan_id}", response_model=PlanPublic)
def get_plan(plan_id: int, session: SessionDep, response: Response) -> PlanPublic:
    """Get a plan; its ETag is the version to send back in If-Match."""
    return _with_etag(response, lifecycle.get_plan(session, plan_id))


@router.patch("/{plan_id}", response_model=PlanPublic, responses=WRITE_RESPONSES)
def update_plan(
    plan_id: int, body: PlanUpdate, session: SessionDep, response: Response, if_match: IfMatch = None
) -> PlanPublic:
    """Rename a plan or set its quarter / effective date (If-Match required)."""
    plan = lifecycle.edit(session, plan_id, body.model_dump(exclude_unset=True), if_match)
    return _with_etag(response, plan)


@router.put("/{plan_id}/units/{code}", response_model=PlanPublic, responses=WRITE_RESPONSES)
def assign_unit(
    plan_id: int,
    code: str,
    body: UnitAssignment,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> PlanPublic:
    """Give a unit to one territory of a draft plan, removing its other claims (If-Match required)."""
    return _with_etag(response, lifecycle.assign_unit(session, plan_id, code, body.territory, if_match))


@router.post("/{plan_id}/approve", response_model=PlanPublic, responses=WRITE_RESPONSES)
def approve(plan_id: int, session: SessionDep, response: Response, if_match: IfMatch = None) -> PlanPublic:
    """Approve a draft plan (If-Match required)."""
    return _with_etag(response, lifecycle.transition(session, plan_id, "approve", if_match))


@router.post("/{plan_id}/activate", response_model=PlanPublic, responses=WRITE_RESPONSES)
def activate(plan_id: int, session: SessionDep, response: Response, if_match: IfMatch = None) -> PlanPublic:
    """Make an approved plan the active one; the previous active plan is archived atomically."""
    return _with_etag(response, lifecycle.transition(session, plan_id, "activate", if_match))


@router.post("/{plan_id}/archive", response_model=PlanPublic, responses=WRITE_RESPONSES)
def archive(plan_id: int, session: SessionDep, response: Response, if_match: IfMatch = None) -> PlanPublic:
    """Archive a plan (If-Match required)."""
    return _with_etag(response, lifecycle.transition(session, plan_id, "archive", if_match))


@router.get("/{plan_id}/diagnostics")
def get_diagnostics(
    plan_id: int,
    session: SessionDep,
    limit: Annotated[int, Query(ge=0, le=100_000)] = 1000,
    account_limit: AccountLimit = None,
) -> dict[str, Any]:
    """Contested, uncovered, misaligned units/accounts; balance, pieces, compactness, travel, white space."""
    return diagnostics.diagnose(session, plan_id, limit=limit, account_limit=account_limit)


@router.get("/{plan_id}/compare/{other_id}")
def compare_plans(
    plan_id: int,
    other_id: int,
    session: SessionDep,
    limit: Annotated[int, Query(ge=0, le=100_000)] = 5000,
    account_limit: AccountLimit = None,
) -> dict[str, Any]:
    """What changes from this plan to another: moved units/accounts, per-rep gains and losses, deltas."""
    return compare_service.compare(session, plan_id, other_id, limit=limit, account_limit=account_limit)


@router.get("/{plan_id}/export", response_class=Response)
def export_plan(
    plan_id: int, session: SessionDep, format: Literal["csv", "geojson", "gpkg"] = "csv"
) -> Response:
    """Export unit -> territory -> rep (CSV) or the dissolved territories (GeoJSON, GeoPackage)."""
    filename = f"plan-{plan_id}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "csv":
        return Response(export.claims_csv(session, plan_id), media_type="text/csv", headers=disposition)
    if format == "geojson":
        return Response(
            export.territories_geojson(session, plan_id),
            media_type="application/geo+json",
            headers=disposition,
        )
    return Response(
        export.territories_geopackage(session, plan_id),
        media_type="application/geopackage+sqlite3",
        headers=disposition,
    )


@router.get("/{plan_id}/reassignments", response_class=Response)
def reassignments(
    plan_id: int,
    session: SessionDep,
    against: Annotated[int | None, Query(description="old plan; default: the accounts' CRM owners")] = None,
) -> Response:
    """CSV of (account, old owner, new owner) for each account that changes owner, for a CRM import."""
    if against is not None and against == plan_id:
        raise InvalidParameter("against must be another plan", parameter="against")
    if against is not None:
        lifecycle.get_plan(session, against)
    body = export.reassignments_csv(session, plan_id, against)
    return Response(
        body,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="plan-{plan_id}-reassignments.csv"'},
    )
