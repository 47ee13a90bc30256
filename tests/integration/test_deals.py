"""Deals: CRUD and bulk upload; the account must exist; dates and stages are validated."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.integration.ingest_helpers import PROBLEM, counts, error_for, rejected, upload


@pytest.fixture
def accounts(client: TestClient) -> None:
    response = upload(client, "accounts", "id,name,zip\nA1,One,06320\nA2,Two,06810\n")
    assert response.status_code == 200, response.text


def test_upload_deals(client: TestClient, accounts: None, session: Session) -> None:
    content = (
        "Opportunity ID,Account,Amount,Stage,Product,Close Date\n"
        "D1,A1,1000,won,Widgets,2024-03-31\n"
        "D2,A1,250.5,LOST,,2024-02-29T00:00:00\n"
        "D3,A2,,,,\n"
    )
    response = upload(client, "deals", content)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 3
    rows = session.execute(
        text(
            "SELECT d.external_id, a.external_id, d.amount, d.stage, d.product, d.closed_on "
            "FROM deal d JOIN account a ON a.id = d.account_id ORDER BY d.external_id"
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("D1", "A1", 1000.0, "won", "Widgets", dt.date(2024, 3, 31)),
        ("D2", "A1", 250.5, "lost", None, dt.date(2024, 2, 29)),
        ("D3", "A2", 0.0, "open", None, None),
    ]
    again = upload(client, "deals", "id,account,amount\nD1,A2,5\n")
    assert again.json()["updated"] == 1
    d1 = client.get("/deals/D1").json()
    assert d1["account_external_id"] == "A2" and d1["amount"] == 5 and d1["stage"] == "won"


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ("D9,NOPE,1,open,,", "account_external_id", "does not exist"),
        ("D9,,1,open,,", "account_external_id", "missing"),
        ("D9,A1,-1,open,,", "amount", ">= 0"),
        ("D9,A1,1,prospect,,", "stage", "open, won, lost"),
        ("D9,A1,1,open,,2023-02-30", "closed_on", "YYYY-MM-DD"),
        ("D9,A1,1,open,,03/31/2024", "closed_on", "YYYY-MM-DD"),
    ],
)
def test_bad_deal_rows_are_named_and_change_nothing(
    client: TestClient, accounts: None, session: Session, row: str, field: str, words: str
) -> None:
    assert upload(client, "deals", "id,account,amount\nD1,A1,7\n").status_code == 200
    before = counts(session)
    content = f"id,account,amount,stage,product,closed_on\nD1,A1,99,lost,,\n{row}\n"
    body = rejected(upload(client, "deals", content), session, before)
    assert words in error_for(body, 3, field)["message"]
    assert client.get("/deals/D1").json()["amount"] == 7


def test_deal_crud_and_cascade(client: TestClient, accounts: None, session: Session) -> None:
    created = client.post(
        "/deals",
        json={"external_id": "D1", "account_external_id": "A1", "amount": 10, "closed_on": "2024-05-01"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith("/deals/D1")
    assert created.json()["stage"] == "open" and created.json()["closed_on"] == "2024-05-01"
    assert client.post("/deals", json={"external_id": "D1", "account_external_id": "A1"}).status_code == 409
    unknown = client.post("/deals", json={"external_id": "D2", "account_external_id": "ZZ"})
    assert unknown.status_code == 422 and unknown.headers["content-type"].startswith(PROBLEM)
    assert unknown.json()["errors"][0]["field"] == "account_external_id"

    patched = client.patch("/deals/D1", json={"stage": "won"})
    assert patched.status_code == 200 and patched.json()["stage"] == "won" and patched.json()["amount"] == 10
    assert client.get("/deals", params={"account": "A1"}).json()["total"] == 1
    assert client.get("/deals", params={"stage": "open"}).json()["total"] == 0

    assert client.delete("/accounts/A1").status_code == 204  # takes its deals along
    assert client.get("/deals/D1").status_code == 404
    assert counts(session)["deal"] == 0
    assert client.delete("/deals/D1").status_code == 404
