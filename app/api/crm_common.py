"""Shared pieces of the reps, accounts and deals routers: paging, uploads, external-id URLs."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import orjson
from fastapi import Request, Response, UploadFile
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api.errors import InvalidParameter
from app.api.uploads import save_upload
from app.crm_schemas import Link, UploadReport
from app.services.ingest import pipeline
from app.settings import Settings

Level = Literal["zcta", "county", "custom"]
UPLOAD_DESCRIPTION = (
    "CSV (UTF-8, UTF-8 with BOM or cp1252; comma, semicolon or tab separated), GeoJSON FeatureCollection of "
    "Points, or XLSX (first sheet). The header is row 1."
)
MAPPING_DESCRIPTION = (
    'JSON object {our_field: their_column}, e.g. {"external_id": "Account ID", "zip": "Postal"}'
)


def page_size(settings: Settings, limit: int | None) -> int:
    """The requested page size, or the default; 400 above the maximum."""
    size = limit or settings.default_page_size
    if size > settings.max_page_size:
        raise InvalidParameter(f"limit must be at most {settings.max_page_size}", parameter="limit")
    return size


def page_links(request: Request, response: Response, *, offset: int, limit: int, total: int) -> list[Link]:
    """self / next / prev links in the body, and next / prev in a Link header."""
    links = [Link(rel="self", href=str(request.url))]
    if offset + limit < total:
        links.append(Link(rel="next", href=_with_page(request, offset + limit, limit)))
    if offset > 0:
        links.append(Link(rel="prev", href=_with_page(request, max(0, offset - limit), limit)))
    if len(links) > 1:
        response.headers["Link"] = ", ".join(f'<{link.href}>; rel="{link.rel}"' for link in links[1:])
    return links


def _with_page(request: Request, offset: int, limit: int) -> str:
    return str(request.url.include_query_params(offset=offset, limit=limit))


def location(request: Request, collection: str, external_id: str) -> str:
    """The URL of one record."""
    return str(request.url_for(f"get_{collection[:-1]}", external_id=quote(external_id, safe="")))


def parse_mapping(raw: str | None) -> dict[str, str] | None:
    """The ``mapping`` form field: a JSON object of strings, or 400 naming the parameter."""
    if raw is None or not raw.strip():
        return None
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidParameter(f"mapping is not valid JSON: {exc}", parameter="mapping") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter(
            'mapping must be a JSON object of strings, {"our_field": "their column"}', parameter="mapping"
        )
    return value


async def upload(
    session: Session,
    settings: Settings,
    kind: str,
    file: UploadFile,
    mapping: str | None,
    level: Level | None = None,
) -> UploadReport:
    """Save the upload to a temporary folder (413 past the limit) and run the ingest pipeline on it."""
    parsed = parse_mapping(mapping)
    with tempfile.TemporaryDirectory(prefix="territory-ingest-") as tmp:
        directory = Path(tmp)
        path = await save_upload(file, directory, settings.max_upload_mb << 20, "file")
        report = await run_in_threadpool(
            pipeline.upload,
            session,
            kind,
            path,
            source=file.filename or path.name,
            mapping=parsed,
            level=level,
        )
        shutil.rmtree(directory, ignore_errors=True)
    return report
