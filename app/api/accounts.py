"""Accounts: list (with the unplaced ones), get, create, update, delete, and bulk upload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status

from app.api import crm_common, errors
from app.api.deps import SessionDep, SettingsDep
from app.crm_schemas import (
    AccountCreate,
    AccountPage,
    AccountPublic,
    AccountStage,
    AccountUpdate,
    UploadReport,
)
from app.services.ingest import records

router = APIRouter(prefix="/accounts", tags=["accounts"], responses=errors.problem_responses(400, 404, 422))


@router.get("", response_model=AccountPage)
def list_accounts(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    unplaced: Annotated[
        bool | None, Query(description="true: only accounts on no unit; false: only placed ones")
    ] = None,
    stage: AccountStage | None = None,
    segment: str | None = None,
    crm_owner: str | None = None,
    unit: Annotated[str | None, Query(description="code of the unit the accounts are placed on")] = None,
    limit: Annotated[int | None, Query(ge=1, description="page size (default 100, max 5000)")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AccountPage:
    """List accounts ordered by external id, with their unit, the total count and paging links."""
    size = crm_common.page_size(settings, limit)
    filters = records.AccountFilter(
        unplaced=unplaced, stage=stage, segment=segment, crm_owner=crm_owner, unit_code=unit
    )
    items, total = records.list_accounts(session, filters, limit=size, offset=offset)
    links = crm_common.page_links(request, response, offset=offset, limit=size, total=total)
    return AccountPage(items=items, total=total, limit=size, offset=offset, links=links)


@router.post("/uploads", response_model=UploadReport, responses=errors.problem_responses(413))
async def upload_accounts(
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description=crm_common.UPLOAD_DESCRIPTION)],
    mapping: Annotated[str | None, Form(description=crm_common.MAPPING_DESCRIPTION)] = None,
    level: Annotated[
        crm_common.Level | None, Form(description="unit level to place on (default: zcta if loaded)")
    ] = None,
) -> UploadReport:
    """Upsert accounts by external id from a file and place each on a unit; all-or-nothing."""
    return await crm_common.upload(session, settings, "accounts", file, mapping, level)


@router.get("/{external_id:path}", response_model=AccountPublic)
def get_account(external_id: str, session: SessionDep) -> AccountPublic:
    """Get one account by external id, with the unit it is placed on."""
    return records.get_account(session, external_id)


@router.post(
    "",
    response_model=AccountPublic,
    status_code=status.HTTP_201_CREATED,
    responses=errors.problem_responses(409),
)
def create_account(
    body: AccountCreate, request: Request, response: Response, session: SessionDep
) -> AccountPublic:
    """Create an account (409 if the external id exists) and place it on a unit by point or ZIP."""
    values = body.model_dump(exclude={"external_id"}, exclude_unset=True)
    records.write(session, "accounts", body.external_id, values, create=True)
    response.headers["Location"] = crm_common.location(request, "accounts", body.external_id)
    return records.get_account(session, body.external_id)


@router.patch("/{external_id:path}", response_model=AccountPublic)
def update_account(external_id: str, body: AccountUpdate, session: SessionDep) -> AccountPublic:
    """Change some fields of an account; a new lon/lat or ZIP places it again."""
    records.get_account(session, external_id)
    changes = records.update_values(session, "accounts", external_id, body.model_dump(exclude_unset=True))
    records.write(session, "accounts", external_id, changes, create=False)
    return records.get_account(session, external_id)


@router.delete("/{external_id:path}", status_code=status.HTTP_204_NO_CONTENT)
def delete_account(external_id: str, session: SessionDep) -> Response:
    """Delete an account and its deals."""
    records.remove(session, "accounts", external_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
