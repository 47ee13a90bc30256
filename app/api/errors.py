"""RFC 9457 problem+json for every error, from one exception -> status table."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import (  # noqa: F401  (re-exported for the routes)
    Conflict,
    InvalidParameter,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    ProblemError,
    ServiceUnavailable,
)
from geodata import GeodataError

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger(__name__)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of problem+json responses for ``statuses``."""
    from app.schemas import Problem

    return {
        status: {
            "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}},
            "description": _DESCRIPTIONS.get(status, "Error"),
        }
        for status in statuses
    }


_DESCRIPTIONS = {
    400: "Invalid parameter (the `parameter` member names it)",
    404: "Not found",
    409: "Conflict with the current state",
    412: "Stale version: If-Match does not match the current ETag",
    413: "Payload too large",
    428: "If-Match header required",
    422: "Invalid request or input (`errors` / `problems` name each field, feature or row)",
    503: "Database unavailable",
}


def problem(request: Request, status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    """Build a problem+json response for ``request``."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON)


def _problem_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem(request, exc.status, exc.title, exc.detail, **exc.extra)


def _geodata_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GeodataError)
    problems = [p.to_dict() for p in exc.problems]
    return problem(request, 422, "Invalid geography", str(exc), problems=problems)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
    return problem(request, exc.status_code, titles.get(exc.status_code, "HTTP error"), str(exc.detail))


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(part) for part in err.get("loc", ())), "message": err.get("msg", "")}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(request, 422, "Invalid request", summary, errors=errors)


def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return problem(request, 500, "Internal server error", "An unexpected error occurred; it has been logged.")


EXCEPTION_HANDLERS = {
    ProblemError: _problem_error,
    GeodataError: _geodata_error,
    StarletteHTTPException: _http_error,
    RequestValidationError: _validation_error,
    Exception: _unexpected_error,
}


def register(app: FastAPI) -> None:
    """Install every handler of the table on ``app``."""
    for exc_type, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
