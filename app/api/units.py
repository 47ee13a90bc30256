"""Geography: list, get, neighbours, and import by upload."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.api import errors
from app.api.deps import SessionDep, SettingsDep
from app.api.errors import InvalidParameter, NotFound
from app.api.uploads import save_upload
from app.schemas import ImportReport
from app.services import geography_import, units

router = APIRouter(prefix="/units", tags=["geography"], responses=errors.problem_responses(400, 404, 422))

GEOJSON = "application/geo+json"
Level = Literal["zcta", "county", "custom"]
GEOJSON_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {GEOJSON: {}}, "description": "GeoJSON (RFC 7946)"}
}


def parse_bbox(raw: str | None) -> units.BBox | None:
    """Parse ``minLon,minLat,maxLon,maxLat``; raise a problem naming the parameter when malformed."""
    if raw is None:
        return None
    parts = raw.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise InvalidParameter(
            f"bbox must be four numbers minLon,minLat,maxLon,maxLat; got {raw!r}", parameter="bbox"
        )
    min_x, min_y, max_x, max_y = values
    if not (-180 <= min_x <= 180 and -180 <= max_x <= 180 and -90 <= min_y <= 90 and -90 <= max_y <= 90):
        raise InvalidParameter(f"bbox {raw!r} is outside lon -180..180 / lat -90..90", parameter="bbox")
    if min_x > max_x or min_y > max_y:
        raise InvalidParameter(f"bbox {raw!r} has min greater than max", parameter="bbox")
    return (min_x, min_y, max_x, max_y)


def _page_link(request: Request, offset: int, limit: int) -> str:
    return str(request.url.include_query_params(offset=offset, limit=limit))


@router.get("", response_class=Response, responses=GEOJSON_RESPONSE)
def list_units(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    level: Level | None = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat (EPSG:4326)")] = None,
    state: str | None = None,
    limit: Annotated[int | None, Query(ge=1, description="page size (default 100, max 5000)")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    simplify: Annotated[
        float | None, Query(gt=0, le=1, description="simplification tolerance, degrees")
    ] = None,
) -> Response:
    """List units as a GeoJSON FeatureCollection, filtered by level, state and bbox, with paging links."""
    page_size = limit or settings.default_page_size
    if page_size > settings.max_page_size:
        raise InvalidParameter(f"limit must be at most {settings.max_page_size}", parameter="limit")
    filters = units.UnitFilter(level=level, bbox=parse_bbox(bbox), state=state)
    page = units.list_units(session, filters, limit=page_size, offset=offset, simplify=simplify)
    links = [{"rel": "self", "type": GEOJSON, "href": str(request.url)}]
    if offset + len(page.features) < page.matched:
        links.append(
            {"rel": "next", "type": GEOJSON, "href": _page_link(request, offset + page_size, page_size)}
        )
    if offset > 0:
        links.append(
            {
                "rel": "prev",
                "type": GEOJSON,
                "href": _page_link(request, max(0, offset - page_size), page_size),
            }
        )
    body = units.feature_collection(
        page.features, numberMatched=page.matched, numberReturned=len(page.features), links=links
    )
    headers = {"Link": ", ".join(f'<{link["href"]}>; rel="{link["rel"]}"' for link in links[1:])}
    return Response(body, media_type=GEOJSON, headers={k: v for k, v in headers.items() if v})


class Extent(BaseModel):
    """Where the matching units are: the box of their centroids (null when none match)."""

    bbox: list[float] | None = Field(
        description="[minLon, minLat, maxLon, maxLat]; maxLon is above 180 when the box crosses longitude 180"
    )
    units: int


@router.get("/extent", response_model=Extent)
def get_extent(session: SessionDep, level: Level | None = None, state: str | None = None) -> Extent:
    """The lon/lat box of the units (by level and state), e.g. to fit a map's first view."""
    box, n = units.extent(session, units.UnitFilter(level=level, state=state))
    return Extent(bbox=list(box) if box else None, units=n)


@router.get("/{level}/{code}", response_class=Response, responses=GEOJSON_RESPONSE)
def get_unit(
    level: Level,
    code: str,
    session: SessionDep,
    simplify: Annotated[float | None, Query(gt=0, le=1)] = None,
) -> Response:
    """Get one unit as a GeoJSON Feature."""
    feature = units.get_unit(session, level, code, simplify)
    if feature is None:
        raise NotFound(f"no {level} unit with code {code!r}")
    return Response(feature, media_type=GEOJSON)


@router.get("/{level}/{code}/neighbors", response_class=Response, responses=GEOJSON_RESPONSE)
def get_neighbors(
    level: Level,
    code: str,
    session: SessionDep,
    simplify: Annotated[float | None, Query(gt=0, le=1)] = None,
) -> Response:
    """List a unit's neighbours (with shared border length and bridge flag) as a FeatureCollection."""
    unit = units.unit_id(session, level, code)
    if unit is None:
        raise NotFound(f"no {level} unit with code {code!r}")
    features = units.neighbors(session, unit, simplify)
    body = units.feature_collection(features, numberMatched=len(features), numberReturned=len(features))
    return Response(body, media_type=GEOJSON)


@router.post(
    "/imports",
    response_model=ImportReport,
    status_code=status.HTTP_201_CREATED,
    responses=errors.problem_responses(413),
)
async def import_units(
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="GeoJSON, TopoJSON, zipped Shapefile or GeoPackage")],
    level: Annotated[Level, Form()] = "zcta",
    contiguity: Annotated[Literal["queen", "rook"], Form()] = "queen",
    tolerance: Annotated[float, Form(ge=0, le=0.1, description="adjacency tolerance in degrees")] = 0.0,
    code_field: Annotated[str | None, Form()] = None,
    name_field: Annotated[str | None, Form()] = None,
    population_field: Annotated[str | None, Form()] = None,
    population_csv: Annotated[UploadFile | None, File(description="CSV of code -> population")] = None,
    population_code_column: Annotated[str | None, Form()] = None,
    population_value_column: Annotated[str | None, Form()] = None,
    strict: Annotated[bool, Form(description="treat every repair as a rejection")] = False,
    allow_rejects: Annotated[bool, Form(description="import the valid features, skip rejected ones")] = False,
) -> ImportReport:
    """Import a geography file (upsert by level + code); all-or-nothing unless allow_rejects is set."""
    limit = settings.max_upload_mb << 20
    with tempfile.TemporaryDirectory(prefix="territory-upload-") as tmp:
        directory = Path(tmp)
        path = await save_upload(file, directory, limit, "file")
        csv_path = None
        if population_csv is not None and population_csv.filename:
            csv_dir = directory / "population"
            csv_dir.mkdir()
            csv_path = await save_upload(population_csv, csv_dir, limit, "population_csv")
        options = geography_import.ImportOptions(
            level=level,
            contiguity=contiguity,
            tolerance=tolerance,
            code_field=code_field,
            name_field=name_field,
            population_field=population_field,
            population_csv=str(csv_path) if csv_path else None,
            population_code_column=population_code_column,
            population_value_column=population_value_column,
            strict=strict,
            allow_rejects=allow_rejects,
        )
        report = await run_in_threadpool(
            geography_import.import_geography, session, path, options, source=file.filename or path.name
        )
    return report
