"""Domain errors that services raise; the HTTP layer (app/api/errors.py) maps them to RFC 9457 problems.

Services, the CLI and workers import from here, never from the API package.
"""

from __future__ import annotations

from typing import Any


class ProblemError(Exception):
    """An error that becomes a problem+json response."""

    status: int = 400
    title: str = "Bad request"

    def __init__(
        self, detail: str, *, status: int | None = None, title: str | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.extra = extra


class NotFound(ProblemError):
    """The resource does not exist."""

    status = 404
    title = "Not found"


class InvalidParameter(ProblemError):
    """A query or form parameter is malformed; ``parameter`` names it."""

    status = 400
    title = "Invalid parameter"


class Conflict(ProblemError):
    """The request conflicts with the resource's current state."""

    status = 409
    title = "Conflict"


class PreconditionFailed(ProblemError):
    """If-Match names a version that is no longer current."""

    status = 412
    title = "Precondition failed"


class PreconditionRequired(ProblemError):
    """A write came without If-Match."""

    status = 428
    title = "Precondition required"


class PayloadTooLarge(ProblemError):
    """The request body exceeds the configured limit."""

    status = 413
    title = "Payload too large"


class ServiceUnavailable(ProblemError):
    """A dependency (the database) is down."""

    status = 503
    title = "Service unavailable"
