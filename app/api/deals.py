"""Deals: list, get, create, update, delete, and bulk upload (upsert by external id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status

from app.api import crm_common, errors
from app.api.deps import SessionDep, SettingsDep
from app.crm_schemas import DealCreate, DealPage, DealPublic, DealStage, DealUpdate, UploadReport
from app.services.ingest import records

router = APIRouter(prefix="/deals", tags=["deals"], responses=errors.problem_responses(400, 404, 422))


@router.get("", response_model=DealPage)
def list_deals(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    account: Annotated[str | None, Query(description="external id of the account")] = None,
    stage: DealStage | None = None,
    limit: Annotated[int | None, Query(ge=1, description="page size (default 100, max 5000)")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DealPage:
    """List deals ordered by external id, with the total count and paging links."""
    size = crm_common.page_size(settings, limit)
    items, total = records.list_deals(session, account=account, stage=stage, limit=size, offset=offset)
    links = crm_common.page_links(request, response, offset=offset, limit=size, total=total)
    return DealPage(items=items, total=total, limit=size, offset=offset, links=links)


@router.post("/uploads", response_model=UploadReport, responses=errors.problem_responses(413))
async def upload_deals(
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description=crm_common.UPLOAD_DESCRIPTION)],
    mapping: Annotated[str | None, Form(description=crm_common.MAPPING_DESCRIPTION)] = None,
) -> UploadReport:
    """Upsert deals by external id from a file (their accounts must exist); all-or-nothing."""
    return await crm_common.upload(session, settings, "deals", file, mapping)


@router.get("/{external_id:path}", response_model=DealPublic)
def get_deal(external_id: str, session: SessionDep) -> DealPublic:
    """Get one deal by external id."""
    return records.get_deal(session, external_id)


@router.post(
    "",
    response_model=DealPublic,
    status_code=status.HTTP_201_CREATED,
    responses=errors.problem_responses(409),
)
def create_deal(body: DealCreate, request: Request, response: Response, session: SessionDep) -> DealPublic:
    """Create a deal of an existing account (409 if the external id exists)."""
    values = body.model_dump(exclude={"external_id"}, exclude_unset=True)
    values.setdefault("account_external_id", body.account_external_id)
    records.write(session, "deals", body.external_id, values, create=True)
    response.headers["Location"] = crm_common.location(request, "deals", body.external_id)
    return records.get_deal(session, body.external_id)


@router.patch("/{external_id:path}", response_model=DealPublic)
def update_deal(external_id: str, body: DealUpdate, session: SessionDep) -> DealPublic:
    """Change some fields of a deal; absent fields keep their value."""
    current = records.get_deal(session, external_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("account_external_id") is None:
        changes["account_external_id"] = current.account_external_id
    records.write(session, "deals", external_id, changes, create=False)
    return records.get_deal(session, external_id)


@router.delete("/{external_id:path}", status_code=status.HTTP_204_NO_CONTENT)
def delete_deal(external_id: str, session: SessionDep) -> Response:
    """Delete a deal."""
    records.remove(session, "deals", external_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
