"""Liveness and dependency versions."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app.api.deps import SessionDep
from app.api.errors import ServiceUnavailable, problem_responses
from app.schemas import Health

router = APIRouter(tags=["health"], responses=problem_responses(503))


@router.get("/healthz", response_model=Health)
def healthz(session: SessionDep) -> Health:
    """Report the service, PostgreSQL and PostGIS versions; 503 when the database is unreachable."""
    try:
        row = session.execute(
            text("SELECT current_setting('server_version'), postgis_lib_version(), postgis_full_version()")
        ).one()
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(f"database unreachable: {exc.__class__.__name__}") from exc
    return Health(
        status="ok", version=__version__, database=f"PostgreSQL {row[0]}", postgis=row[1], postgis_full=row[2]
    )
