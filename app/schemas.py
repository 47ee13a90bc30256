"""Pydantic models of the public API (requests and responses)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``); extra members name the culprit."""

    model_config = {"extra": "allow"}

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class Health(BaseModel):
    """Service liveness and versions."""

    status: Literal["ok"]
    version: str
    database: str
    postgis: str
    postgis_full: str


class ProblemItem(BaseModel):
    """One feature- or row-level finding of an import."""

    index: int | None = Field(description="0-based feature index, or 1-based CSV line")
    code: str | None
    field: str | None
    action: Literal["repaired", "rejected", "skipped"]
    reason: str


class ImportReport(BaseModel):
    """What a geography import stored, repaired and rejected."""

    import_id: int
    source: str
    level: str
    units: int
    inserted: int
    updated: int
    with_population: int
    adjacency_edges: int
    bridge_edges: int
    components_before_bridges: int
    repaired: int
    rejected: int
    problems: list[ProblemItem]
    timings_s: dict[str, float]
    options: dict[str, Any]
