"""Row-level findings of an upload and the problem raised when an upload is rejected."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from app.errors import ProblemError

MAX_ISSUES = 1000


@dataclass(frozen=True)
class RowIssue:
    """One finding: the 1-based row (header = 1), our field, the file's column, the value, what is wrong."""

    message: str
    row: int | None = None
    field: str | None = None
    column: str | None = None
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class UploadRejected(ProblemError):
    """Invalid input: nothing was stored; ``errors`` names every row and field (capped, with a count)."""

    status = 422
    title = "Invalid upload"

    def __init__(
        self,
        detail: str,
        errors: list[RowIssue],
        *,
        error_count: int | None = None,
        warnings: list[RowIssue] | None = None,
        warning_count: int | None = None,
        **extra: Any,
    ) -> None:
        ordered = sorted(errors, key=lambda e: (e.row or 0, e.field or ""))[:MAX_ISSUES]
        count = max(error_count or 0, len(errors))
        members: dict[str, Any] = {
            "errors": [e.to_dict() for e in ordered],
            "error_count": count,
            "errors_truncated": count > len(ordered),
        }
        if warnings:
            members["warnings"] = [w.to_dict() for w in warnings[:MAX_ISSUES]]
            members["warning_count"] = max(warning_count or 0, len(warnings))
        super().__init__(detail, **members, **extra)
        self.issues = ordered


class RecordInvalid(ProblemError):
    """A single record (JSON body) fails validation; ``errors`` names each field."""

    status = 422
    title = "Invalid record"
