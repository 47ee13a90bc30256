"""Vector tiles of units and plan territories for the map page (Mapbox Vector Tile, EPSG:3857)."""

from __future__ import annotations

import gzip
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from app.api import errors
from app.api.deps import SessionDep
from app.services import tiles

router = APIRouter(prefix="/tiles", tags=["tiles"])

TILE_DESCRIPTION = """
Layers (extent 4096, buffer 64):

* `units`, one feature per unit (feature id = unit id): `code`, `name`, `population`, `accounts`,
  `workload`; with `plan` also `owner` (rep external id, "" when none; the first claiming territory by
  name when contested), `owner_name`, `owners` (claims), `contested`, `uncovered`, `white_space`
  (as in diagnostics) and `color`; with `compare` also `from_owner`, `to_owner` and `changed`
  (the set of owners differs, as in `GET /plans/{a}/compare/{b}`).
* `territories` (with `plan`), one feature per territory in view (feature id = territory id): `territory`,
  `rep`, `rep_name`, `color`, `units`, `workload`, `target`, `deviation_pct` (workload measure).

`color` is the rank of the rep's id among all reps modulo 12 (stable across plans), -1 without a rep.
An empty tile is a 200 with an empty body. Tiles without a plan may be cached for an hour; tiles of a plan
must be revalidated (`no-cache`) with their ETag, which changes with the plan's version (`If-None-Match`
gives 304).
"""


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether If-None-Match names ``etag`` (weak comparison) or is ``*``."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


@router.get(
    "/{level}/{z}/{x}/{y}.mvt",
    response_class=Response,
    summary="Vector tile of units, with a plan's owners and territories",
    description=TILE_DESCRIPTION,
    responses={
        200: {"content": {tiles.MEDIA_TYPE: {}}, "description": "The tile (possibly empty)"},
        304: {"description": "Not modified: If-None-Match names the current ETag"},
        **errors.problem_responses(404, 422),
    },
)
def get_tile(
    request: Request,
    session: SessionDep,
    level: Annotated[str, Path(description="unit level: zcta, county or custom")],
    z: Annotated[int, Path(ge=0, le=tiles.MAX_ZOOM, description="zoom")],
    x: Annotated[int, Path(ge=0, description="column, 0 .. 2^z - 1")],
    y: Annotated[int, Path(ge=0, description="row, 0 .. 2^z - 1 (from the north)")],
    plan: Annotated[int | None, Query(description="plan id: adds owners, flags and territories")] = None,
    compare: Annotated[int | None, Query(description="second plan id (needs plan): marks changes")] = None,
    if_none_match: Annotated[str | None, Header()] = None,
    accept_encoding: Annotated[str | None, Header()] = None,
) -> Response:
    """A vector tile of the units of a level, with a plan's owners and territories when `plan` is given."""
    cache: tiles.TileCache = request.app.state.tile_cache
    resolved = tiles.resolve(session, cache, level, z, x, y, plan, compare)
    headers = {
        "ETag": resolved.etag,
        "Cache-Control": "no-cache" if plan is not None else "public, max-age=3600",
        "Vary": "Accept-Encoding",
    }
    if _matches(if_none_match, resolved.etag):
        return Response(status_code=304, headers=headers)
    body = tiles.render(session, cache, resolved)  # stored gzip-compressed
    if body and "gzip" in (accept_encoding or ""):
        headers["Content-Encoding"] = "gzip"
    elif body:
        body = gzip.decompress(body)
    return Response(body, media_type=tiles.MEDIA_TYPE, headers=headers)
