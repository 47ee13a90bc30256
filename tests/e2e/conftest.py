"""End-to-end fixtures: the real service (API + one worker) on a scratch database, and the OS Chromium.

Chromium is the operating system's package (`scripts/ensure-chromium.sh` installs it); Playwright only
drives it. A missing browser is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, Response, sync_playwright

from app.db.scratch import create_fresh_database, drop_database
from app.servicerun import ServiceError, start_service, stop_service

# WebGL without a GPU: ANGLE on SwiftShader (software rendering).
CHROMIUM_ARGS = ["--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox"]
VIEWPORT = {"width": 1280, "height": 800}
STARTUP_TIMEOUT_S = 180


def chromium_executable() -> str | None:
    """The OS Chromium, or None (CHROMIUM overrides the lookup)."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Service:
    """The running service: its base URL, database URL and log file."""

    url: str
    database_url: str
    log: Path

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`territory serve` (demo workspace, one optimization worker) on a fresh database and a free port."""
    database_url = create_fresh_database("territory_e2e")
    log = tmp_path_factory.mktemp("service") / "serve.log"
    env = {"DATABASE_URL": database_url, "TERRITORY_LOAD_DEMO": "true"}
    try:
        try:
            running = start_service(env, log=log, timeout_s=STARTUP_TIMEOUT_S)
        except ServiceError as exc:
            pytest.fail(str(exc))
        try:
            yield Service(url=running.url, database_url=database_url, log=log)
        finally:
            stop_service(running)
    finally:
        drop_database(database_url)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = chromium_executable()
    if executable is None:
        pytest.fail(
            "Chromium not found: the map test drives the operating system's Chromium. "
            "Run scripts/ensure-chromium.sh (as root it runs `apt-get install -y chromium`) or set CHROMIUM."
        )
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class PageLog:
    """What the page said: console errors, uncaught exceptions and tile responses."""

    errors: list[str] = field(default_factory=list)
    tiles: list[tuple[int, str]] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def request_failed(self, request: Request) -> None:
        # tiles of a replaced plan are aborted on purpose when another plan is selected
        if "ERR_ABORTED" not in (request.failure or ""):
            self.errors.append(f"request failed: {request.url} ({request.failure})")


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def page(browser: Browser, page_log: PageLog) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    page.on("console", page_log.console)
    page.on("pageerror", lambda error: page_log.errors.append(f"pageerror: {error}"))

    def on_response(response: Response) -> None:
        if "/tiles/" in response.url:
            page_log.tiles.append((response.status, response.url))

    page.on("response", on_response)
    page.on("requestfailed", page_log.request_failed)
    yield page
    context.close()
