"""Plan lifecycle: ETag / If-Match, transitions, one active plan and one owner per unit in the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.integration.plan_fixtures import Workspace, clean_rows, load_ct_workspace, messy_rows, plan_csv

PROBLEM = "application/problem+json"


@pytest.fixture
def ws(session: Session, data_dir: Path) -> Workspace:
    return load_ct_workspace(session, data_dir, accounts=100)


def new_plan(client: TestClient, rows: list[tuple[str, str, str]], name: str = "p") -> int:
    response = client.post("/plans/imports", files={"file": ("p.csv", plan_csv(rows))}, data={"name": name})
    assert response.status_code == 201, response.text
    return int(response.json()["plan_id"])


def act(client: TestClient, plan_id: int, action: str) -> Any:
    etag = client.get(f"/plans/{plan_id}").headers["etag"]
    return client.post(f"/plans/{plan_id}/{action}", headers={"If-Match": etag})


def test_writes_need_the_current_version(client: TestClient, ws: Workspace) -> None:
    plan_id = new_plan(client, clean_rows(ws))
    read = client.get(f"/plans/{plan_id}")
    etag = read.headers["etag"]
    assert read.json()["version"] == 1 and etag == f'"plan-{plan_id}-v1"'

    missing = client.patch(f"/plans/{plan_id}", json={"name": "renamed"})
    assert missing.status_code == 428 and missing.headers["content-type"].startswith(PROBLEM)

    ok = client.patch(
        f"/plans/{plan_id}", json={"name": "renamed", "quarter": "2027Q1"}, headers={"If-Match": etag}
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2 and ok.json()["quarter"] == "2027Q1"
    assert ok.headers["etag"] != etag

    stale = client.patch(f"/plans/{plan_id}", json={"name": "again"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["current_etag"] == ok.headers["etag"]
    assert client.get(f"/plans/{plan_id}").json()["name"] == "renamed"


def test_draft_approved_active_archived(client: TestClient, ws: Workspace) -> None:
    first = new_plan(client, clean_rows(ws), "first")
    assert act(client, first, "activate").status_code == 409  # a draft must be approved first
    assert act(client, first, "approve").json()["status"] == "approved"
    active = act(client, first, "activate")
    assert active.status_code == 200 and active.json()["status"] == "active" and active.json()["single_owner"]

    second = new_plan(client, clean_rows(ws, {"06810": "R5"}), "second")
    act(client, second, "approve")
    assert act(client, second, "activate").status_code == 200
    assert client.get(f"/plans/{first}").json()["status"] == "archived"
    assert [p["id"] for p in client.get("/plans", params={"status": "active"}).json()] == [second]


def test_a_contested_plan_cannot_be_activated(client: TestClient, ws: Workspace) -> None:
    rows, _, _ = messy_rows(ws)
    plan_id = new_plan(client, rows)
    act(client, plan_id, "approve")
    response = act(client, plan_id, "activate")
    assert response.status_code == 409 and response.json()["contested_units"] == 15
    assert client.get(f"/plans/{plan_id}").json()["status"] == "approved"


def test_assign_unit_edits_a_draft_in_place(client: TestClient, ws: Workspace) -> None:
    rows, doubled, _ = messy_rows(ws)
    plan_id = new_plan(client, rows)
    code = sorted(doubled)[0]
    etag = client.get(f"/plans/{plan_id}").headers["etag"]
    response = client.put(
        f"/plans/{plan_id}/units/{code}", json={"territory": "T-R1"}, headers={"If-Match": etag}
    )
    assert response.status_code == 200, response.text
    diag = client.get(f"/plans/{plan_id}/diagnostics").json()
    assert code not in {u["code"] for u in diag["contested"]["units"]}
    assert diag["summary"]["contested_units"] == len(doubled) - 1
    bad = client.put(
        f"/plans/{plan_id}/units/{code}",
        json={"territory": "nope"},
        headers={"If-Match": response.headers["etag"]},
    )
    assert bad.status_code == 400 and bad.json()["parameter"] == "territory"


def test_database_allows_one_active_plan_per_workspace(
    client: TestClient, ws: Workspace, session: Session
) -> None:
    plan_id = new_plan(client, clean_rows(ws))
    act(client, plan_id, "approve")
    act(client, plan_id, "activate")
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            text(
                "INSERT INTO plan (name, level, status, single_owner) "
                "VALUES ('rogue', 'zcta', 'active', true)"
            )
        )


def test_database_allows_one_owner_per_unit_in_single_owner_plans(
    client: TestClient, ws: Workspace, session: Session
) -> None:
    plan_id = new_plan(client, clean_rows(ws))
    act(client, plan_id, "approve")
    act(client, plan_id, "activate")
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            text(
                "INSERT INTO plan_claim (plan_id, unit_id, territory_id, single_owner) "
                "SELECT c.plan_id, c.unit_id, t.id, true FROM plan_claim c "
                "JOIN territory t ON t.plan_id = c.plan_id AND t.id <> c.territory_id "
                "WHERE c.plan_id = :plan LIMIT 1"
            ),
            {"plan": plan_id},
        )
    # and a claim cannot pretend its plan is not single-owner
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            text(
                "INSERT INTO plan_claim (plan_id, unit_id, territory_id, single_owner) "
                "SELECT c.plan_id, c.unit_id, t.id, false FROM plan_claim c "
                "JOIN territory t ON t.plan_id = c.plan_id AND t.id <> c.territory_id "
                "WHERE c.plan_id = :plan LIMIT 1"
            ),
            {"plan": plan_id},
        )
