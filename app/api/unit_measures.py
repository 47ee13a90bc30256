"""Unit measures derived from accounts and deals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api import crm_common, errors
from app.api.deps import SessionDep
from app.crm_schemas import UnitMeasures
from app.services import unit_measures

router = APIRouter(prefix="/units", tags=["geography"], responses=errors.problem_responses(422))


@router.get("/measures", response_model=UnitMeasures)
def get_unit_measures(
    session: SessionDep,
    level: crm_common.Level = "zcta",
    include_empty: Annotated[bool, Query(description="also list units without accounts (zeros)")] = True,
) -> UnitMeasures:
    """Per unit: workload, value, accounts by segment and stage, won/lost/open deal counts and amounts."""
    return unit_measures.measures(session, level, include_empty=include_empty)
