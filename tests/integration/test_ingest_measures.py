"""GET /units/measures: per-unit aggregates of accounts and deals, checked against the uploaded rows."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.integration.ingest_helpers import PROBLEM, expected_unit, import_ct, inside, upload

CODES = ["06810", "06103", "06320", "06902", "06511"]
SEGMENTS = ["SMB", "MidMarket", "Enterprise", ""]
STAGES = ["prospect", "open", "won", "lost"]


@pytest.fixture
def workspace(client: TestClient, data_dir: Path) -> dict[str, Any]:
    """CT units, 60 accounts (points, ZIP-only rows, two unplaceable) and 90 deals; the expected measures
    are computed here from the rows and the fixture geometry, independently of the service."""
    import_ct(client, data_dir)
    rng = np.random.default_rng(11)
    accounts = io.StringIO()
    writer = csv.writer(accounts)
    writer.writerow(["id", "name", "lon", "lat", "zip", "value", "workload", "stage", "segment"])
    expected: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "accounts": 0,
            "workload": 0.0,
            "value": 0.0,
            "segments": defaultdict(int),
            "stages": defaultdict(int),
            "won": [0, 0.0],
            "lost": [0, 0.0],
            "open": [0, 0.0],
        }
    )
    unit_of: dict[str, str | None] = {}
    unplaced = {"accounts": 0, "workload": 0.0, "value": 0.0}
    for k in range(60):
        code = CODES[k % len(CODES)]
        value, workload = round(float(rng.uniform(0, 1000)), 2), round(float(rng.uniform(0, 3)), 2)
        stage, segment = STAGES[k % 4], SEGMENTS[k % 3 if k % 7 else 3]
        if k in (7, 8):  # Denver: placed nowhere
            lon, lat, zip_code, unit = "-104.99", "39.74", "80202", None
        elif k % 4 == 1:
            lon, lat, zip_code, unit = "", "", code, code
        else:
            x, y = inside(data_dir, code)
            lon, lat, zip_code, unit = str(x), str(y), "", expected_unit(data_dir, x, y)
        writer.writerow([f"A{k:02d}", f"Acct {k}", lon, lat, zip_code, value, workload, stage, segment])
        unit_of[f"A{k:02d}"] = unit
        if unit is None:
            unplaced["accounts"] += 1
            unplaced["workload"] += workload
            unplaced["value"] += value
            continue
        e = expected[unit]
        e["accounts"] += 1
        e["workload"] += workload
        e["value"] += value
        e["stages"][stage] += 1
        if segment:
            e["segments"][segment] += 1
    response = upload(client, "accounts", accounts.getvalue())
    assert response.status_code == 200, response.text

    deals = io.StringIO()
    writer = csv.writer(deals)
    writer.writerow(["id", "account", "amount", "stage"])
    for k in range(90):
        account = f"A{k % 60:02d}"
        amount, stage = round(float(rng.uniform(0, 500)), 2), ["open", "won", "lost"][k % 3]
        writer.writerow([f"D{k:02d}", account, amount, stage])
        unit = unit_of[account]
        if unit is not None:
            expected[unit][stage][0] += 1
            expected[unit][stage][1] += amount
    response = upload(client, "deals", deals.getvalue())
    assert response.status_code == 200, response.text
    return {"units": expected, "unplaced": unplaced}


def test_measures_match_the_rows(client: TestClient, workspace: dict[str, Any]) -> None:
    response = client.get("/units/measures", params={"level": "zcta"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["level"] == "zcta" and len(body["units"]) == 282  # every unit, zeros included
    by_code = {u["code"]: u for u in body["units"]}
    for code, e in workspace["units"].items():
        got = by_code[code]
        assert got["accounts"] == e["accounts"]
        assert got["workload"] == pytest.approx(e["workload"])
        assert got["value"] == pytest.approx(e["value"])
        assert got["segments"] == dict(e["segments"]) and got["stages"] == dict(e["stages"])
        for stage in ("won", "lost", "open"):
            assert got[stage]["count"] == e[stage][0]
            assert got[stage]["amount"] == pytest.approx(e[stage][1])
    empty = by_code["06001"]
    assert empty["accounts"] == 0 and empty["segments"] == {} and empty["won"] == {"count": 0, "amount": 0}
    assert body["unplaced"]["accounts"] == workspace["unplaced"]["accounts"] == 2
    assert body["unplaced"]["workload"] == pytest.approx(workspace["unplaced"]["workload"])
    assert body["totals"]["accounts"] == 58
    only = client.get("/units/measures", params={"include_empty": False}).json()
    assert {u["code"] for u in only["units"]} == set(workspace["units"])


def test_measures_on_an_empty_level_and_a_bad_level(client: TestClient, workspace: dict[str, Any]) -> None:
    county = client.get("/units/measures", params={"level": "county"}).json()
    assert county["units"] == [] and county["unplaced"]["accounts"] == 60
    bad = client.get("/units/measures", params={"level": "state"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    # The single-unit route still works next to /units/measures.
    assert client.get("/units/zcta/06810").status_code == 200
