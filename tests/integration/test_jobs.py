"""Optimization jobs with real worker processes on a real queue (procrastinate on PostGIS).

Each test has a database of its own where transactions really commit: the workers are other processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

import optimizer
from app.db.scratch import create_fresh_database, drop_database
from app.main import create_app
from app.services import optimization
from app.services.plans import importer, lifecycle
from app.settings import Settings
from tests.integration.plan_fixtures import REPS, clean_rows, load_ct_workspace, plan_csv

FAST = {"tolerance": {"workload": 0.1}, "time_limit_s": 3, "mode": "heuristic"}


@pytest.fixture
def workspace_db(data_dir: Path) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """A committed database with the CT workspace and an active plan."""
    url = create_fresh_database("territory_jobs")
    engine = create_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory.begin() as session:
        ws = load_ct_workspace(session, data_dir, accounts=400)
        plan_id = importer.import_claims_csv(
            session, plan_csv(clean_rows(ws)), name="today", level="zcta"
        ).plan_id
        for action in ("approve", "activate"):
            plan = lifecycle.get_plan(session, plan_id)
            lifecycle.transition(session, plan_id, action, lifecycle.etag(plan))
    yield url, factory
    engine.dispose()
    drop_database(url)


@pytest.fixture
def client(workspace_db: tuple[str, sessionmaker[Session]]) -> Iterator[TestClient]:
    app = create_app(Settings(load_demo=False, routing_cache=False), database_url=workspace_db[0])
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def start_worker(
    workspace_db: tuple[str, sessionmaker[Session]], tmp_path: Path
) -> Iterator[Callable[[], Any]]:
    """Start real `territory worker` processes; all are stopped at the end of the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--heartbeat", "0.5", "--stalled-after", "3"],
            env={**os.environ, "DATABASE_URL": workspace_db[0]},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for(
    client: TestClient, job_id: int, predicate: Callable[[dict[str, Any]], bool], timeout: float = 180
) -> Any:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/optimizations/{job_id}").json()
        if predicate(job):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never reached the expected state: {job}")


def finished(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


def owners(factory: sessionmaker[Session], plan_id: int) -> dict[str, str]:
    """Unit code -> rep external id of a plan, read straight from the tables."""
    with factory() as session:
        rows = session.execute(
            text(
                "SELECT u.code, r.external_id FROM plan_claim c JOIN geo_unit u ON u.id = c.unit_id "
                "JOIN territory t ON t.id = c.territory_id JOIN rep r ON r.id = t.rep_id "
                "WHERE c.plan_id = :p"
            ),
            {"p": plan_id},
        ).all()
    return dict(rows)


def check_plan(factory: sessionmaker[Session], plan_id: int) -> None:
    """Independent of the solver: every unit owned exactly once, every territory one connected piece."""
    with factory() as session:
        units = session.execute(text("SELECT count(*) FROM geo_unit")).scalar_one()
        owners = session.execute(
            text("SELECT unit_id, territory_id FROM plan_claim WHERE plan_id = :p"), {"p": plan_id}
        ).all()
        edges = session.execute(text("SELECT a_id, b_id FROM geo_unit_adjacency")).all()
    assert len(owners) == units and len({u for u, _ in owners}) == units
    graph = nx.Graph([tuple(e) for e in edges])
    for territory in {t for _, t in owners}:
        members = [u for u, t in owners if t == territory]
        assert nx.is_connected(graph.subgraph(members)), f"territory {territory} is in pieces"


def test_submit_poll_plan_and_reproduce(
    client: TestClient, workspace_db: tuple[str, sessionmaker[Session]], start_worker: Callable[[], Any]
) -> None:
    start_worker()
    # A generous wall-clock guard: the solver's deterministic work limits end the search first, so the
    # stored inputs reproduce the plan exactly (a binding wall-clock limit would make it load-dependent).
    body = {**FAST, "time_limit_s": 300, "quarter": "2027Q1", "seed": 7}
    response = client.post("/optimizations", json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.headers["location"] == f"/optimizations/{job_id}"
    # the pre-check's warnings come with the submission; Connecticut has no region its homes crowd
    assert response.json()["report"]["precheck"]["warnings"] == []
    seen_stages: set[str] = set()

    def done(job: dict[str, Any]) -> bool:
        seen_stages.add(job["stage"])
        return finished(job)

    job = wait_for(client, job_id, done)
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["attempts"] == 1 and job["timings"]["solve"] > 0
    plan_id = job["result_plan_id"]
    assert job["links"]["plan"] == f"/plans/{plan_id}"
    plan = client.get(f"/plans/{plan_id}").json()
    assert (plan["status"], plan["source"], plan["single_owner"], plan["seed"]) == (
        "draft",
        "optimizer",
        True,
        7,
    )
    assert plan["metrics"]["gap"] is not None and plan["metrics"]["lower_bound"] > 0
    assert plan["solver_version"] and plan["inputs"]["quarter"] == "2027Q1"
    check_plan(workspace_db[1], plan_id)
    diagnostics = client.get(job["links"]["diagnostics"]).json()
    assert diagnostics["summary"]["max_abs_deviation_pct"]["workload"] <= 10.0 + 1e-6
    # each territory's distance to its rep's home: the solver's report and the diagnostics' own code agree
    to_home = plan["metrics"]["distance_to_home_km"]
    assert set(to_home) == {t["rep"] for t in diagnostics["territories"]}
    for t in diagnostics["territories"]:
        assert t["weighted_distance_km"] == pytest.approx(to_home[t["rep"]], rel=1e-3, abs=0.01)
    # Reproducibility: the stored inputs, solved again here, give the same owners.
    inputs = {k: v for k, v in plan["inputs"].items() if k != "base_plan_resolved"}
    inputs["base_plan"] = plan["inputs"]["base_plan_resolved"]
    with workspace_db[1]() as session:
        problem, _ = optimization.build_problem(
            session, optimization.OptimizationRequest.model_validate(inputs)
        )
        again = optimizer.solve(problem)
    stored = owners(workspace_db[1], plan_id)
    assert again.assignment == stored


def test_idempotency_key(client: TestClient, workspace_db: tuple[str, sessionmaker[Session]]) -> None:
    body = {**FAST, "seed": 1}
    first = client.post("/optimizations", json=body, headers={"Idempotency-Key": "q1-rebalance"})
    again = client.post("/optimizations", json=body, headers={"Idempotency-Key": "q1-rebalance"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = client.post(
        "/optimizations", json={**body, "seed": 2}, headers={"Idempotency-Key": "q1-rebalance"}
    )
    assert other.status_code == 422 and other.headers["content-type"].startswith("application/problem+json")
    with workspace_db[1]() as session:
        assert session.execute(text("SELECT count(*) FROM optimization_job")).scalar_one() == 1


def test_cancel_a_queued_job(
    client: TestClient, workspace_db: tuple[str, sessionmaker[Session]], start_worker: Callable[[], Any]
) -> None:
    job_id = client.post("/optimizations", json=FAST).json()["id"]
    cancelled = client.delete(f"/optimizations/{job_id}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.delete(f"/optimizations/{job_id}").status_code == 409
    start_worker()
    probe = client.post("/optimizations", json={**FAST, "seed": 3}).json()["id"]
    wait_for(client, probe, finished)  # the worker is live and has drained the queue
    job = client.get(f"/optimizations/{job_id}").json()
    assert job["status"] == "cancelled" and job["result_plan_id"] is None and job["attempts"] == 0


def test_infeasible_request_fails_with_the_precheck_reasons(client: TestClient, ws_codes: list[str]) -> None:
    locks = dict.fromkeys(ws_codes[:150], "R1")  # more than R1 may carry at +-10 %
    response = client.post("/optimizations", json={**FAST, "locks": locks})
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "failed" and job["error"]["type"] == "infeasible"
    assert any("R1" in reason for reason in job["error"]["reasons"]), job["error"]
    bad = client.post("/optimizations", json={**FAST, "reps": ["R1", "NOBODY"]})
    assert bad.status_code == 400 and bad.json()["parameter"] == "reps"


@pytest.fixture
def ws_codes(workspace_db: tuple[str, sessionmaker[Session]]) -> list[str]:
    with workspace_db[1]() as session:
        return [r[0] for r in session.execute(text("SELECT code FROM geo_unit ORDER BY code")).all()]


def test_a_killed_worker_loses_no_job_and_makes_no_second_plan(
    client: TestClient, workspace_db: tuple[str, sessionmaker[Session]], start_worker: Callable[[], Any]
) -> None:
    doomed = start_worker()
    job_id = client.post("/optimizations", json={**FAST, "time_limit_s": 8, "seed": 11}).json()["id"]
    wait_for(client, job_id, lambda job: job["stage"] == "solving", timeout=120)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    time.sleep(1)
    assert client.get(f"/optimizations/{job_id}").json()["status"] == "running"  # orphaned mid-solve
    start_worker()
    job = wait_for(client, job_id, finished, timeout=240)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    with workspace_db[1]() as session:
        plans = session.execute(text("SELECT count(*) FROM plan WHERE source = 'optimizer'")).scalar_one()
    assert plans == 1
    check_plan(workspace_db[1], job["result_plan_id"])


def test_two_workers_drain_a_queue_running_every_job_once(
    client: TestClient, workspace_db: tuple[str, sessionmaker[Session]], start_worker: Callable[[], Any]
) -> None:
    ids = [
        client.post("/optimizations", json={**FAST, "time_limit_s": 1, "seed": s}).json()["id"]
        for s in range(6)
    ]
    start_worker()
    start_worker()
    jobs = [wait_for(client, job_id, finished, timeout=300) for job_id in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 6
    assert [j["attempts"] for j in jobs] == [1] * 6
    assert len({j["result_plan_id"] for j in jobs}) == 6
    with workspace_db[1]() as session:
        started = session.execute(
            text(
                "SELECT j.args->>'job_id', count(*) FROM procrastinate_events e "
                "JOIN procrastinate_jobs j ON j.id = e.job_id "
                "WHERE e.type = 'started' AND j.task_name = 'territory:optimize' GROUP BY 1"
            )
        ).all()
    assert sorted((int(k), n) for k, n in started) == [(job_id, 1) for job_id in sorted(ids)]
    _ = REPS


def test_cancel_a_running_job_discards_its_result(
    client: TestClient, workspace_db: tuple[str, sessionmaker[Session]], start_worker: Callable[[], Any]
) -> None:
    start_worker()
    job_id = client.post("/optimizations", json={**FAST, "time_limit_s": 6, "seed": 5}).json()["id"]
    wait_for(client, job_id, lambda job: job["stage"] == "solving", timeout=120)
    assert client.delete(f"/optimizations/{job_id}").status_code == 200
    job = wait_for(client, job_id, finished, timeout=120)
    assert job["status"] == "cancelled" and job["result_plan_id"] is None
    with workspace_db[1]() as session:
        assert session.execute(text("SELECT count(*) FROM plan WHERE source = 'optimizer'")).scalar_one() == 0


def test_cancel_stops_the_solver_itself(
    client: TestClient, workspace_db: tuple[str, sessionmaker[Session]], start_worker: Callable[[], Any]
) -> None:
    """A 10-minute exact solve is stopped where it is: the job ends long before its time limit would. While
    it runs, the job shows the solver's own stage."""
    start_worker()
    request = {"tolerance": {"workload": 0.01}, "time_limit_s": 600, "mode": "exact", "seed": 3}
    job_id = client.post("/optimizations", json=request).json()["id"]
    running = wait_for(client, job_id, lambda job: job["solver_stage"] == "the exact model", timeout=120)
    assert running["status"] == "running" and running["stage"] == "solving", running
    assert client.delete(f"/optimizations/{job_id}").status_code == 200
    job = wait_for(client, job_id, finished, timeout=120)
    assert job["status"] == "cancelled" and job["result_plan_id"] is None
    assert job["error"]["solver_stopped_during"] == "the exact model", job["error"]


def _start_rebalance(url: str, *args: str) -> subprocess.Popen[str]:
    """`territory rebalance --local` on the database ``url``, output (stdout and stderr) piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "rebalance", "--local", "--quarter", "2027Q1", *args],
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_rebalance_command_proposes_a_draft_within_the_budget(
    workspace_db: tuple[str, sessionmaker[Session]],
) -> None:
    """The quarterly batch job: `territory rebalance` prints a draft plan id; at most 10 % of units move."""
    url, factory = workspace_db
    process = _start_rebalance(url, "--max-moved", "10%", "--tolerance", "10%", "--time-limit", "5")
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    draft = int(out.strip().splitlines()[-1])
    with factory() as session:
        active, status = session.execute(
            text("SELECT (SELECT id FROM plan WHERE status = 'active'), status FROM plan WHERE id = :p"),
            {"p": draft},
        ).one()
    assert status == "draft" and active != draft
    before, after = owners(factory, active), owners(factory, draft)
    assert set(after) == set(before)
    moved = sum(before[u] != after[u] for u in before)
    assert moved <= 0.10 * len(before), (moved, len(before))
    check_plan(factory, draft)


def test_ctrl_c_cancels_the_rebalance_and_writes_nothing(
    workspace_db: tuple[str, sessionmaker[Session]],
) -> None:
    """Ctrl-C during a 10-minute solve cancels the job, stops the solver and exits 130 with no plan."""
    url, factory = workspace_db
    process = _start_rebalance(url, "--max-moved", "none", "--tolerance", "1%", "--time-limit", "600")
    try:
        deadline = time.monotonic() + 120
        stage = None
        while stage != "solving" and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.3)
            with factory() as session:
                stage = session.execute(text("SELECT max(stage) FROM optimization_job")).scalar_one()
        assert stage == "solving", stage
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, out
    with factory() as session:
        status, error = session.execute(text("SELECT status, error FROM optimization_job")).one()
        plans = session.execute(text("SELECT count(*) FROM plan WHERE source = 'optimizer'")).scalar_one()
    assert status == "cancelled" and error["solver_stopped_during"], (status, error)
    assert plans == 0
