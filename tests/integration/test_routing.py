"""Lead routing from the active plan (point, ZIP, account, batch); atomic activation under readers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from app.db.scratch import create_fresh_database, drop_database
from app.main import create_app
from app.services import routing
from app.services.plans import importer, lifecycle
from app.settings import Settings
from tests.integration.plan_fixtures import (
    REPS,
    Workspace,
    band_plan,
    clean_rows,
    load_ct_workspace,
    plan_csv,
)

PROBLEM = "application/problem+json"


@pytest.fixture
def ws(session: Session, data_dir: Path) -> Workspace:
    return load_ct_workspace(session, data_dir, accounts=200)


def activate_new_plan(client: TestClient, rows: list[tuple[str, str, str]]) -> int:
    plan_id = client.post(
        "/plans/imports", files={"file": ("p.csv", plan_csv(rows))}, data={"name": "p"}
    ).json()["plan_id"]
    for action in ("approve", "activate"):
        etag = client.get(f"/plans/{plan_id}").headers["etag"]
        assert client.post(f"/plans/{plan_id}/{action}", headers={"If-Match": etag}).status_code == 200
    return int(plan_id)


def interior_points(ws: Workspace, every: int = 7) -> list[tuple[str, float, float]]:
    """A point strictly inside every ``every``-th unit, from shapely (independent of PostGIS)."""
    out = []
    for code, geom in list(zip(ws.codes, ws.units.frame.geometry.values, strict=True))[::every]:
        point = shapely.point_on_surface(geom)
        out.append((code, point.x, point.y))
    return out


def test_no_active_plan_is_a_404_problem(client: TestClient, ws: Workspace) -> None:
    response = client.get("/route/point", params={"lon": -72.7, "lat": 41.6})
    assert response.status_code == 404 and "no active plan" in response.json()["detail"]
    assert response.headers["content-type"].startswith(PROBLEM)


def test_point_zip_and_account_lookups_agree_with_the_plan(
    client: TestClient, ws: Workspace, session: Session
) -> None:
    plan_id = activate_new_plan(client, clean_rows(ws))
    owner = band_plan(ws)
    for code, lon, lat in interior_points(ws):
        body = client.get("/route/point", params={"lon": lon, "lat": lat}).json()
        assert (body["unit"], body["rep"], body["territory"]) == (code, owner[code], f"T-{owner[code]}")
        assert body["plan_id"] == plan_id and body["plan_version"] == 3
        assert client.get(f"/route/zip/{code}-0001").json()["rep"] == owner[code]
    account, code = session.execute(
        text("SELECT a.external_id, u.code FROM account a JOIN geo_unit u ON u.id = a.unit_id LIMIT 1")
    ).one()
    assert client.get(f"/route/account/{account}").json()["rep"] == owner[code]
    assert client.get("/route/account/NOPE").status_code == 404
    assert client.get("/route/point", params={"lon": 0, "lat": 0}).status_code == 404
    assert client.get("/route/point", params={"lon": 200, "lat": 0}).status_code == 422
    assert client.get("/route/zip/123").status_code == 422


def test_batch_matches_single_lookups(client: TestClient, ws: Workspace) -> None:
    activate_new_plan(client, clean_rows(ws))
    owner = band_plan(ws)
    points = interior_points(ws, every=1)
    payload = [{"id": code, "lon": lon, "lat": lat} for code, lon, lat in points] + [
        {"id": "sea", "lon": 0, "lat": 0}
    ]
    response = client.post("/route/batch", json={"points": payload})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == [p["id"] for p in payload]
    assert all(r["owner"]["rep"] == owner[r["id"]] for r in results[:-1])
    assert results[-1]["owner"] is None and response.json()["matched"] == len(points)
    too_many = client.post("/route/batch", json={"points": [{"lon": 0, "lat": 0}] * 10_001})
    assert too_many.status_code == 422


def two_shifted_plans(session: Session, ws: Workspace) -> list[tuple[int, dict[str, str]]]:
    """The band plan and the same bands handed to the next rep: (plan id, unit -> rep) for each."""
    plans = []
    for shift in range(2):
        owner = {code: REPS[(REPS.index(rep) + shift) % 5] for code, rep in band_plan(ws).items()}
        rows = [(f"T-{rep}", rep, code) for code, rep in sorted(owner.items())]
        plan_id = importer.import_claims_csv(session, plan_csv(rows), name=f"p{shift}", level="zcta").plan_id
        plans.append((plan_id, owner))
    return plans


def force_activate(factory: sessionmaker[Session], plan_id: int) -> None:
    """Activate a plan whatever its status (re-activating an archived one in these tests)."""
    with factory.begin() as session:
        plan = lifecycle.get_plan(session, plan_id)
        if plan.status != "approved":
            plan.status = "approved"
            session.flush()
        lifecycle.transition(session, plan_id, "activate", lifecycle.etag(plan))


@pytest.fixture
def committed_db(data_dir: Path) -> Iterator[sessionmaker[Session]]:
    """A database of its own where each transaction really commits (for concurrent readers)."""
    url = create_fresh_database("territory_routing")
    engine = create_engine(url, pool_size=8)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    yield factory
    engine.dispose()
    drop_database(url)


def test_activation_is_atomic_for_concurrent_readers(
    committed_db: sessionmaker[Session], data_dir: Path
) -> None:
    with committed_db.begin() as session:
        ws = load_ct_workspace(session, data_dir, accounts=10)
        plans = two_shifted_plans(session, ws)
    expected = dict(plans)
    points = interior_points(ws, every=3)
    mixed: list[Any] = []
    seen: set[int] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                with committed_db() as session:
                    answers = routing.batch(session, [(lon, lat) for _, lon, lat in points])
            except Exception as exc:  # a reader must never see "no active plan" mid-activation
                mixed.append(("error", exc))
                return
            found = {a.plan_id for a in answers if a}
            seen.update(found)
            for (code, _, _), answer in zip(points, answers, strict=True):
                if answer is not None and answer.rep != expected[answer.plan_id][code]:
                    mixed.append((code, answer))
            if len(found) > 1:
                mixed.append(("two plans in one answer", found))

    force_activate(committed_db, plans[0][0])
    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for round_ in range(1, 8):
        force_activate(committed_db, plans[round_ % 2][0])
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()
    assert not mixed, mixed[:3]
    assert seen == {p for p, _ in plans}


def test_in_memory_snapshot_answers_like_sql_and_follows_activation(
    committed_db: sessionmaker[Session], data_dir: Path
) -> None:
    with committed_db.begin() as session:
        ws = load_ct_workspace(session, data_dir, accounts=10)
        plans = two_shifted_plans(session, ws)
    force_activate(committed_db, plans[0][0])
    url = committed_db.kw["bind"].url.render_as_string(hide_password=False)
    app = create_app(Settings(load_demo=False, routing_cache=True), database_url=url)
    points = interior_points(ws, every=5)
    with TestClient(app) as client:
        assert app.state.routing_index.wait_ready(60)
        with committed_db() as session:
            expected = routing.batch(session, [(lon, lat) for _, lon, lat in points])
        payload = {"points": [{"id": code, "lon": lon, "lat": lat} for code, lon, lat in points]}
        cached = client.post("/route/batch", json=payload).json()["results"]
        assert [r["owner"] for r in cached] == [e.as_dict() if e else None for e in expected]
        code, lon, lat = points[0]
        assert client.get("/route/point", params={"lon": lon, "lat": lat}).json()["rep"] == plans[0][1][code]
        assert client.get(f"/route/zip/{code}").json()["rep"] == plans[0][1][code]

        force_activate(committed_db, plans[1][0])
        deadline = time.monotonic() + 30
        answers: list[Any] = []
        while time.monotonic() < deadline:
            answers = client.post("/route/batch", json=payload).json()["results"]
            plan_ids = {r["owner"]["plan_id"] for r in answers}
            assert len(plan_ids) == 1  # never a mix
            if plan_ids == {plans[1][0]}:
                break
            time.sleep(0.1)
        assert all(r["owner"]["rep"] == plans[1][1][r["id"]] for r in answers)
