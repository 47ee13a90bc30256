"""Lead routing from the active plan: who owns a point, a ZIP, an account, or a batch of points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api import errors
from app.api.deps import SessionDep
from app.api.errors import NotFound
from app.services import routing
from app.services.routing_index import RoutingIndex

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


def _json(owner: routing.Owner) -> Response:
    return Response(orjson.dumps(owner.as_dict()), media_type="application/json")


_NOT_LOADED = object()


def _snapshot(request: Request, workspace: str) -> Any:
    """The workspace's routing snapshot, None when it has no active plan, or _NOT_LOADED (use SQL)."""
    index: RoutingIndex | None = getattr(request.app.state, "routing_index", None)
    if index is None or not index.is_loaded(workspace):
        return _NOT_LOADED
    return index.get(workspace)


def _no_active_plan(workspace: str) -> NotFound:
    return NotFound(f"workspace {workspace!r} has no active plan: activate one first")


async def _with_session(request: Request, work: Callable[[Session], Any]) -> Any:
    def run() -> Any:
        with request.app.state.session_factory() as session, session.begin():
            return work(session)

    return await run_in_threadpool(run)


@router.get("/point", response_model=OwnerPublic)
async def route_point(
    request: Request,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    workspace: Workspace = "default",
) -> Response:
    """Who owns the unit containing this point."""
    snapshot = _snapshot(request, workspace)
    if snapshot is _NOT_LOADED:
        return _json(await _with_session(request, lambda s: routing.by_point(s, lon, lat, workspace)))
    if snapshot is None:
        raise _no_active_plan(workspace)
    row = int(snapshot.rows_for_points(np.array([lon]), np.array([lat]))[0])
    if row < 0:
        raise NotFound(f"point ({lon}, {lat}) is not inside any unit of the active plan's geography")
    return Response(orjson.dumps(snapshot.answers[row]), media_type="application/json")


@router.get("/zip/{zip_code}", response_model=OwnerPublic)
async def route_zip(
    request: Request,
    zip_code: Annotated[str, Path(pattern=r"^\d{5}(-\d{4})?$")],
    workspace: Workspace = "default",
) -> Response:
    """Who owns this ZIP code (ZIP+4 accepted)."""
    code = zip_code[:5]
    snapshot = _snapshot(request, workspace)
    if snapshot is None:
        raise _no_active_plan(workspace)
    if snapshot is not _NOT_LOADED and snapshot.level == "zcta":
        row = snapshot.row_of_code.get(code)
        if row is None:
            raise NotFound(f"ZIP {code!r} is not a known ZCTA of the active plan's geography")
        return Response(orjson.dumps(snapshot.answers[row]), media_type="application/json")
    return _json(await _with_session(request, lambda s: routing.by_zip(s, code, workspace)))


@router.get("/account/{external_id}", response_model=OwnerPublic)
def route_account(session: SessionDep, external_id: str, workspace: Workspace = "default") -> OwnerPublic:
    """Who owns this account (by the unit it is placed on)."""
    return _public(routing.by_account(session, external_id, workspace))


@router.post("/batch", response_model=BatchResponse)
async def route_batch(request: Request, body: BatchRequest, workspace: Workspace = "default") -> Response:
    """Owners of up to 10,000 points in one call, in request order."""
    snapshot = _snapshot(request, workspace)
    if snapshot is None:
        raise _no_active_plan(workspace)
    ids = [p.id for p in body.points]
    if snapshot is _NOT_LOADED:
        owners = await _with_session(
            request, lambda s: routing.batch(s, [(p.lon, p.lat) for p in body.points], workspace)
        )
        results = [{"id": i, "owner": o.as_dict() if o else None} for i, o in zip(ids, owners, strict=True)]
    else:
        lon = np.fromiter((p.lon for p in body.points), dtype=float, count=len(ids))
        lat = np.fromiter((p.lat for p in body.points), dtype=float, count=len(ids))
        rows = snapshot.rows_for_points(lon, lat)
        answers = snapshot.answers
        results = [
            {"id": i, "owner": answers[r] if r >= 0 else None}
            for i, r in zip(ids, rows.tolist(), strict=True)
        ]
    matched = sum(1 for r in results if r["owner"] is not None)
    return Response(orjson.dumps({"results": results, "matched": matched}), media_type="application/json")
