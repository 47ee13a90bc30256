"""The map page at `/` in a real headless Chromium against the running service (API + worker + PostGIS).

Drives the page as a planner would: the active plan is drawn from vector tiles, a click shows a unit's owner,
compare mode highlights exactly the units that move, and an optimization started from the page ends with a
new draft plan that the page opens. Writes the README screenshots (docs/screenshots/*.png).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import Engine, create_engine, text

from app.settings import PROJECT_ROOT
from tests.e2e.conftest import PageLog, Service

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
DRAWN = "() => { const t = window.territoryMap; return Boolean(t && t.state.ready && !t.state.loading); }"
# options a planner would pick; checked by hand to succeed on the demo workspace (10-20 s on two cores)
OPTIMIZE = {"tolerance": "5", "max_moved": "30", "time_limit": "5"}

# the largest of some units, with a point inside it well away from rep home markers (they take clicks)
CLICKABLE_UNIT = """
    SELECT u.code, ST_X(u.p) AS lon, ST_Y(u.p) AS lat
    FROM (SELECT id, code, ST_PointOnSurface(geom) AS p, area_km2 FROM geo_unit WHERE level = 'county') u
    WHERE u.code = ANY(:codes)
      AND NOT EXISTS (SELECT 1 FROM rep h WHERE h.home IS NOT NULL AND ST_DWithin(h.home, u.p, 0.4))
    ORDER BY u.area_km2 DESC LIMIT 1
"""
OWNERS = """
    SELECT u.code, r.external_id, r.name FROM plan_claim c
    JOIN geo_unit u ON u.id = c.unit_id JOIN territory t ON t.id = c.territory_id
    LEFT JOIN rep r ON r.id = t.rep_id WHERE c.plan_id = :plan ORDER BY u.code, t.name
"""


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def db(service: Service) -> Iterator[Engine]:
    engine = create_engine(service.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def plans(service: Service) -> dict[str, dict[str, Any]]:
    """The demo plans by role: the active plan and the CRM export with overlaps and gaps."""
    with service.api() as api:
        listed = api.get("/plans").raise_for_status().json()
    return {
        "active": next(p for p in listed if p["status"] == "active"),
        "crm": next(p for p in listed if p["name"].startswith("CRM export")),
    }


def owners(db: Engine, plan_id: int) -> dict[str, list[tuple[str, str]]]:
    """Unit code -> [(rep external id, rep name)] of a plan, straight from SQL."""
    result: dict[str, list[tuple[str, str]]] = {}
    with db.connect() as conn:
        for code, rep, name in conn.execute(text(OWNERS), {"plan": plan_id}):
            result.setdefault(code, []).append((rep, name))
    return result


def clickable_unit(db: Engine, codes: list[str]) -> tuple[str, float, float]:
    with db.connect() as conn:
        row = conn.execute(text(CLICKABLE_UNIT), {"codes": codes}).one()
    return row.code, row.lon, row.lat


def open_map(page: Page, service: Service, fragment: str = "") -> None:
    page.goto(f"{service.url}/{fragment}")
    wait_drawn(page)


def wait_drawn(page: Page, timeout_ms: int = 90_000) -> None:
    """Until the selected plan's data and tiles are loaded and drawn."""
    page.wait_for_function(DRAWN, timeout=timeout_ms)


def rendered(page: Page, layer: str, prop: str = "code") -> set[str]:
    """Distinct values of a property over the features drawn on a map layer."""
    values = page.evaluate(
        "([layer, prop]) => territoryMap.map.queryRenderedFeatures({layers: [layer]})"
        ".map((f) => String(f.properties[prop]))",
        [layer, prop],
    )
    return set(values)


def km_to_home(service: Service, plan_id: int) -> dict[str, float]:
    """Rep -> its territory's distance to its home, as the plan's diagnostics compute it."""
    with service.api() as api:
        diagnostics = api.get(f"/plans/{plan_id}/diagnostics?limit=0").raise_for_status().json()
    return {t["rep"]: t["weighted_distance_km"] for t in diagnostics["territories"]}


def far_from_home(km: dict[str, float]) -> set[str]:
    """Reps whose territory lies more than 3 times the plan's median distance from their home."""
    median = statistics.median(km.values())
    return {rep for rep, v in km.items() if v > 3 * median}


def flagged_far(page: Page) -> set[str | None]:
    """Reps whose row of the balance table is flagged as far from home."""
    return {row.get_attribute("data-rep") for row in page.locator("#balance tr[data-rep]:has(td.far)").all()}


def click_at(page: Page, lon: float, lat: float) -> None:
    """Click the map where a longitude/latitude is drawn."""
    x, y = page.evaluate(
        "([lon, lat]) => { const p = territoryMap.map.project([lon, lat]); return [p.x, p.y]; }", [lon, lat]
    )
    box = page.locator("#map").bounding_box()
    assert box is not None
    assert 0 <= x <= box["width"] and 0 <= y <= box["height"], "the unit is outside the view"
    page.mouse.click(box["x"] + x, box["y"] + y)


def popup(page: Page, code: str) -> Locator:
    locator = page.locator(f'.maplibregl-popup .popup[data-code="{code}"]')
    expect(locator).to_be_visible()
    return locator


def screenshot(page: Page, name: str) -> None:
    """A README screenshot: the panel scrolled to the top, the mouse off the map and the table."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(200, 10)
    page.evaluate("document.getElementById('panel').scrollTop = 0")
    page.wait_for_timeout(300)  # let the popup and panel settle
    page.screenshot(path=str(SCREENSHOTS / name))


def assert_clean(page: Page, page_log: PageLog) -> None:
    """No console errors, uncaught exceptions or failed requests, and no error shown in the page."""
    assert page_log.errors == []
    assert page.evaluate("territoryMap.state.errors") == []


def tile_statuses(page_log: PageLog, plan_id: int) -> list[int]:
    return [status for status, url in page_log.tiles if f"plan={plan_id}" in url]


# ---------------------------------------------------------------- tests


def test_page_draws_the_active_plan_from_tiles(
    page: Page, page_log: PageLog, service: Service, db: Engine, plans: dict[str, dict[str, Any]]
) -> None:
    active = plans["active"]
    open_map(page, service)

    assert page.locator("#plan-select").input_value() == str(active["id"])
    statuses = tile_statuses(page_log, active["id"])
    assert statuses and set(statuses) <= {200, 304} and 200 in statuses, page_log.tiles
    expected = owners(db, active["id"])
    territories = rendered(page, "territory-outline", "rep")
    assert territories == {rep for claims in expected.values() for rep, _ in claims}
    assert rendered(page, "territory-fill") == set(expected), "every unit of the workspace is drawn"
    assert len(rendered(page, "rep-homes", "rep")) == 12
    expect(page.locator("#balance tr[data-rep]")).to_have_count(len(territories))
    # each territory's distance to its rep's home, as the diagnostics compute it; the far ones flagged
    km = km_to_home(service, active["id"])
    rows = page.locator("#balance tr[data-rep]")
    shown = {row.get_attribute("data-rep"): row.locator("td.km").inner_text() for row in rows.all()}
    assert set(shown) == set(km)
    for rep, cell in shown.items():
        assert abs(float(cell.replace(",", "")) - km[rep]) <= 0.5 + 1e-9, (rep, cell, km[rep])
    assert flagged_far(page) == far_from_home(km)
    # a rep whose home moves across the country is flagged (its home is put back afterwards)
    rep0 = sorted(km)[0]
    with service.api() as api:
        home = api.get(f"/reps/{rep0}").raise_for_status().json()
        api.patch(f"/reps/{rep0}", json={"lon": -122.42, "lat": 37.77}).raise_for_status()
        try:
            open_map(page, service)
            assert flagged_far(page) == far_from_home(km_to_home(service, active["id"])) == {rep0}
        finally:
            api.patch(f"/reps/{rep0}", json={"lon": home["lon"], "lat": home["lat"]}).raise_for_status()
    # every drawn rep gets its colour from the tiles (the scan of loaded tiles stops once all reps have one)
    page.wait_for_function(
        "(reps) => reps.every((r) => territoryMap.state.repColors.has(r))", arg=sorted(territories)
    )
    assert_clean(page, page_log)


def test_click_on_a_unit_shows_its_owner(
    page: Page, page_log: PageLog, service: Service, db: Engine, plans: dict[str, dict[str, Any]]
) -> None:
    expected = owners(db, plans["active"]["id"])
    code, lon, lat = clickable_unit(db, sorted(expected))
    [(rep, name)] = expected[code]
    open_map(page, service)

    click_at(page, lon, lat)
    card = popup(page, code)
    assert card.get_attribute("data-owner") == rep
    expect(card.locator(".owner")).to_contain_text(f"{name} ({rep})")
    expect(card).to_contain_text("Accounts")
    assert_clean(page, page_log)


def test_contested_units_and_the_readme_map_screenshot(
    page: Page, page_log: PageLog, service: Service, db: Engine, plans: dict[str, dict[str, Any]]
) -> None:
    crm = plans["crm"]
    open_map(page, service)
    page.select_option("#plan-select", str(crm["id"]))
    wait_drawn(page)

    claims = owners(db, crm["id"])
    contested = sorted(code for code, reps in claims.items() if len(reps) > 1)
    uncovered = set(owners(db, plans["active"]["id"])) - set(claims)
    assert rendered(page, "contested") == set(contested)
    assert rendered(page, "uncovered") == uncovered
    code, lon, lat = clickable_unit(db, contested)
    click_at(page, lon, lat)
    card = popup(page, code)
    expect(card.locator(".owner")).to_contain_text("contested")
    for rep, _ in claims[code]:
        expect(card.locator(".owner")).to_contain_text(rep)
    screenshot(page, "map.png")
    assert_clean(page, page_log)


@pytest.fixture(scope="module")
def edited_plan(service: Service, db: Engine, plans: dict[str, dict[str, Any]]) -> tuple[int, set[str]]:
    """A copy of the active plan (import of its CSV export) with three units given to other territories."""
    active = plans["active"]["id"]
    with service.api() as api:
        exported = api.get(f"/plans/{active}/export", params={"format": "csv"}).raise_for_status().text
        created = api.post(
            "/plans/imports",
            files={"file": ("copy.csv", exported.encode(), "text/csv")},
            data={
                "name": "Copy with three moves",
                "level": "county",
                "territory_column": "territory",
                "rep_column": "rep_external_id",
                "unit_column": "unit_code",
            },
        ).raise_for_status()
        plan_id = created.json()["plan_id"]
        rows = list(csv.DictReader(io.StringIO(exported)))
        territories = sorted({row["territory"] for row in rows})
        moved = set()
        etag = api.get(f"/plans/{plan_id}").raise_for_status().headers["ETag"]
        for row in (rows[20], rows[90], rows[160]):
            other = next(t for t in territories if t != row["territory"])
            etag = (
                api.put(
                    f"/plans/{plan_id}/units/{row['unit_code']}",
                    json={"territory": other},
                    headers={"If-Match": etag},
                )
                .raise_for_status()
                .headers["ETag"]
            )
            moved.add(row["unit_code"])
        assert api.get(f"/plans/{plan_id}").raise_for_status().headers["ETag"] == etag
    return plan_id, moved


def test_compare_mode_highlights_exactly_the_moved_units(
    page: Page,
    page_log: PageLog,
    service: Service,
    db: Engine,
    plans: dict[str, dict[str, Any]],
    edited_plan: tuple[int, set[str]],
) -> None:
    active = plans["active"]["id"]
    plan_id, moved = edited_plan
    open_map(page, service)
    page.select_option("#compare-select", str(plan_id))
    wait_drawn(page)

    assert rendered(page, "changed") == moved
    expect(page.locator("#compare-card")).to_be_visible()
    expect(page.locator("#compare-summary .kpi b").first).to_have_text(str(len(moved)))
    before, after = owners(db, active), owners(db, plan_id)
    code, lon, lat = clickable_unit(db, sorted(moved))
    click_at(page, lon, lat)
    change = popup(page, code).locator(".change")
    expect(change).to_contain_text(f"{before[code][0][1]} ({before[code][0][0]})")
    expect(change.locator(".to")).to_contain_text(f"{after[code][0][1]} ({after[code][0][0]})")
    assert_clean(page, page_log)


def test_optimization_from_the_page_opens_a_new_draft_plan(
    page: Page, page_log: PageLog, service: Service, db: Engine, plans: dict[str, dict[str, Any]]
) -> None:
    active = plans["active"]["id"]
    open_map(page, service)
    page.fill("#opt-tolerance", OPTIMIZE["tolerance"])
    page.fill("#opt-max-moved", OPTIMIZE["max_moved"])
    page.fill("#opt-time-limit", OPTIMIZE["time_limit"])
    page.click("#opt-start")
    expect(page.locator("#opt-text")).to_contain_text("Job #")
    expect(page.locator("#opt-open")).to_be_visible(timeout=240_000)
    job = page.evaluate("territoryMap.state.job")
    assert job["status"] == "succeeded" and job["base_plan_id"] == active
    # the pre-check's warnings and the solver's notes are listed under the job's status, each sentence once
    report = job["report"]
    expected = list(dict.fromkeys([*report["precheck"]["warnings"], *report["solution"]["notes"]]))
    assert expected, "a re-solve under a move budget notes where its search starts"
    expect(page.locator("#opt-notes li")).to_have_text(expected)
    draft = job["result_plan_id"]
    expect(page.locator(f'#plan-select option[value="{draft}"]')).to_contain_text("draft")

    page.click("#opt-open")
    expect(page.locator("#plan-select")).to_have_value(str(draft))
    wait_drawn(page)
    assert 200 in tile_statuses(page_log, draft)
    assert rendered(page, "territory-outline", "rep")
    with service.api() as api:
        assert api.get(f"/plans/{draft}").json()["status"] == "draft"
        comparison = api.get(f"/plans/{active}/compare/{draft}").json()

    # "Compare with the base plan": today's plan against the optimized draft (the README's screenshot)
    page.click("#opt-compare")
    expect(page.locator("#compare-select")).to_have_value(str(draft))
    wait_drawn(page)
    assert page.locator("#plan-select").input_value() == str(active)
    moved = {move["unit"] for move in comparison["moves"]}
    assert rendered(page, "changed") == moved
    code, lon, lat = clickable_unit(db, sorted(moved))
    click_at(page, lon, lat)
    expect(popup(page, code).locator(".change")).to_contain_text("Moves")
    screenshot(page, "compare.png")
    assert_clean(page, page_log)


def test_screenshots_are_in_the_readme() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    for name in ("map.png", "compare.png"):
        assert f"docs/screenshots/{name}" in readme
        assert (SCREENSHOTS / name).exists()
