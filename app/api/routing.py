"""Lead routing from the active plan: who owns a point, a ZIP, an account, or a batch of points."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from app.api import errors
from app.api.deps import SessionDep
from app.services import routing

router = APIRouter(prefix="/route", tags=["routing"], responses=errors.problem_responses(404, 422))
Workspace = Annotated[str, Query(description="workspace whose active plan answers")]
MAX_BATCH = 10_000


class OwnerPublic(BaseModel):
    """The territory and rep that own a lead, and the plan version that says so."""

    plan_id: int
    plan_version: int
    level: str | None
    unit: str | None
    territory: str | None
    rep: str | None
    rep_name: str | None


class BatchPoint(BaseModel):
    """One point of a batch; ``id`` is echoed back."""

    id: str | None = None
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class BatchRequest(BaseModel):
    """Up to 10,000 points."""

    points: list[BatchPoint] = Field(min_length=1, max_length=MAX_BATCH)


class BatchItem(BaseModel):
    """The owner of one batch point, or null when it lies in no unit."""

    id: str | None
    owner: OwnerPublic | None


class BatchResponse(BaseModel):
    """Owners in request order."""

    results: list[BatchItem]
    matched: int


def _public(owner: routing.Owner) -> OwnerPublic:
    return OwnerPublic(**owner.as_dict())


@router.get("/point", response_model=OwnerPublic)
def route_point(
    session: SessionDep,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    workspace: Workspace = "default",
) -> OwnerPublic:
    """Who owns the unit containing this point."""
    return _public(routing.by_point(session, lon, lat, workspace))


@router.get("/zip/{zip_code}", response_model=OwnerPublic)
def route_zip(
    session: SessionDep,
    zip_code: Annotated[str, Path(pattern=r"^\d{5}(-\d{4})?$")],
    workspace: Workspace = "default",
) -> OwnerPublic:
    """Who owns this ZIP code (ZIP+4 accepted)."""
    return _public(routing.by_zip(session, zip_code[:5], workspace))


@router.get("/account/{external_id}", response_model=OwnerPublic)
def route_account(session: SessionDep, external_id: str, workspace: Workspace = "default") -> OwnerPublic:
    """Who owns this account (by the unit it is placed on)."""
    return _public(routing.by_account(session, external_id, workspace))


@router.post("/batch", response_model=BatchResponse)
def route_batch(session: SessionDep, body: BatchRequest, workspace: Workspace = "default") -> BatchResponse:
    """Owners of up to 10,000 points in one call, in request order."""
    owners = routing.batch(session, [(p.lon, p.lat) for p in body.points], workspace)
    results = [
        BatchItem(id=p.id, owner=_public(o) if o else None) for p, o in zip(body.points, owners, strict=True)
    ]
    return BatchResponse(results=results, matched=sum(1 for o in owners if o is not None))
