"""Reps: list, get, create, update, delete, and bulk upload (upsert by external id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status

from app.api import crm_common, errors
from app.api.deps import SessionDep, SettingsDep
from app.crm_schemas import RepCreate, RepPage, RepPublic, RepUpdate, UploadReport
from app.services.ingest import records

router = APIRouter(prefix="/reps", tags=["reps"], responses=errors.problem_responses(400, 404, 422))


@router.get("", response_model=RepPage)
def list_reps(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    active: bool | None = None,
    segment: str | None = None,
    limit: Annotated[int | None, Query(ge=1, description="page size (default 100, max 5000)")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> RepPage:
    """List reps ordered by external id, with the total count and paging links."""
    size = crm_common.page_size(settings, limit)
    items, total = records.list_reps(session, active=active, segment=segment, limit=size, offset=offset)
    links = crm_common.page_links(request, response, offset=offset, limit=size, total=total)
    return RepPage(items=items, total=total, limit=size, offset=offset, links=links)


@router.post("/uploads", response_model=UploadReport, responses=errors.problem_responses(413))
async def upload_reps(
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description=crm_common.UPLOAD_DESCRIPTION)],
    mapping: Annotated[str | None, Form(description=crm_common.MAPPING_DESCRIPTION)] = None,
) -> UploadReport:
    """Upsert reps by external id from a file; all-or-nothing, every bad row and field named."""
    return await crm_common.upload(session, settings, "reps", file, mapping)


@router.get("/{external_id:path}", response_model=RepPublic)
def get_rep(external_id: str, session: SessionDep) -> RepPublic:
    """Get one rep by external id."""
    return records.get_rep(session, external_id)


@router.post(
    "", response_model=RepPublic, status_code=status.HTTP_201_CREATED, responses=errors.problem_responses(409)
)
def create_rep(body: RepCreate, request: Request, response: Response, session: SessionDep) -> RepPublic:
    """Create a rep (409 if the external id exists); a home ZIP places the home on the ZCTA's centroid."""
    values = body.model_dump(exclude={"external_id"}, exclude_unset=True)
    records.write(session, "reps", body.external_id, values, create=True)
    response.headers["Location"] = crm_common.location(request, "reps", body.external_id)
    return records.get_rep(session, body.external_id)


@router.patch("/{external_id:path}", response_model=RepPublic)
def update_rep(external_id: str, body: RepUpdate, session: SessionDep) -> RepPublic:
    """Change some fields of a rep; absent fields keep their value."""
    records.get_rep(session, external_id)
    changes = records.update_values(session, "reps", external_id, body.model_dump(exclude_unset=True))
    records.write(session, "reps", external_id, changes, create=False)
    return records.get_rep(session, external_id)


@router.delete("/{external_id:path}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rep(external_id: str, session: SessionDep) -> Response:
    """Delete a rep (territories it owned keep their units, without a rep)."""
    records.remove(session, "reps", external_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
