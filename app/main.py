"""create_app(): the FastAPI application, its routes, static assets and error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from app import __version__
from app.api import (
    accounts,
    deals,
    errors,
    health,
    optimizations,
    plans,
    reps,
    routing,
    tiles,
    unit_measures,
    units,
)
from app.db.bootstrap import resolve_database_url
from app.db.session import engine_for, session_factory
from app.services.routing_index import RoutingIndex
from app.services.tiles import TileCache
from app.settings import Settings, get_settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
SWAGGER_DIR = STATIC_DIR / "vendor" / "swagger-ui"
MAPLIBRE_DIR = STATIC_DIR / "vendor" / "maplibre"


def _assets_missing(what: str, rest: str) -> HTMLResponse:
    """503 page for a front-end asset that ``make assets`` (npm) has not vendored yet."""
    return HTMLResponse(
        f"<h1>{what} assets are missing</h1><p>Run <code>make assets</code> (npm) to vendor {rest}</p>",
        status_code=503,
    )


DESCRIPTION = """
Sales territory planning on PostGIS. Geography (ZCTAs, counties, custom polygons) with adjacency,
reps and accounts; territory plans, diagnostics and an OR-Tools optimizer build on it.

Every error is an RFC 9457 `application/problem+json` document; GeoJSON responses use `application/geo+json`.
"""


class BodySizeLimit:
    """Reject request bodies whose Content-Length exceeds the limit with a 413 problem (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp, limit_mb: int) -> None:
        self.app = app
        self.limit_mb = limit_mb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > self.limit_mb << 20:
                    request = Request(scope)
                    response = errors.problem(
                        request,
                        413,
                        "Payload too large",
                        f"request body exceeds the {self.limit_mb} MiB limit",
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, database_url: str | None = None) -> FastAPI:
    """Build the application; ``database_url`` overrides settings (the local cluster is the fallback)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not hasattr(app.state, "session_factory"):
            url = database_url or resolve_database_url(settings)
            app.state.session_factory = session_factory(engine_for(url))
            app.state.database_url = url
        index = None
        if settings.routing_cache:
            index = RoutingIndex(app.state.database_url)
            index.start()
        app.state.routing_index = index
        yield
        if index is not None:
            index.stop()

    app = FastAPI(
        title="Territory planning service",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tile_cache = TileCache()  # per process: tables by data/plan version, LRU of finished tiles
    if database_url:
        app.state.session_factory = session_factory(engine_for(database_url))
        app.state.database_url = database_url
    errors.register(app)
    app.include_router(health.router)
    app.include_router(unit_measures.router)  # /units/measures
    app.include_router(units.router)
    app.include_router(reps.router)
    app.include_router(accounts.router)
    app.include_router(deals.router)
    app.include_router(plans.router)
    app.include_router(routing.router)
    app.include_router(optimizations.router)
    app.include_router(tiles.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")

    app.add_middleware(BodySizeLimit, limit_mb=settings.max_upload_mb)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        if not (SWAGGER_DIR / "swagger-ui-bundle.js").exists():
            return _assets_missing(
                "Swagger UI", "them; the OpenAPI document is at <a href='/openapi.json'>/openapi.json</a>."
            )
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Territory planning service - API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        """The map page (app/static/map); MapLibre GL JS is vendored by `make assets`."""
        if not (MAPLIBRE_DIR / "maplibre-gl.js").exists():
            return _assets_missing(
                "Map", "MapLibre GL JS; the API is documented at <a href='/docs'>/docs</a>."
            )
        return FileResponse(STATIC_DIR / "map" / "index.html", headers={"Cache-Control": "no-cache"})

    return app
