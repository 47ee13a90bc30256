"""The caller's hooks: a solve asked to stop raises Cancelled at the first check that sees it, a solve that is
never asked returns the same solution as one without the request, and the stage callback hears the pipeline's
stages in order."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from optimizer import Cancelled, Options, Problem, Rep, solve

from .conftest import REPO, Raw, make_problem


class StopFrom:
    """``should_stop`` that answers True from its ``first``-th call on (never when ``first`` is None)."""

    def __init__(self, first: int | None = None) -> None:
        self.first, self.calls, self.true_answers = first, 0, 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.first is not None and self.calls >= self.first:
            self.true_answers += 1
            return True
        return False


def chosen_centres(ct: Raw) -> Problem:
    """CT with 8 reps and no homes: the centre choice, cluster rebuilds, re-centring, windows and boundary
    flow all run."""
    reps = [Rep(f"r{i}") for i in range(8)]
    opts = Options(
        tolerance=0.05,
        mode="heuristic",
        window_rounds=1,
        window_pairs=4,
        seed=4,
        rebuild_clusters=2,
        boundary_flow_rounds=2,
    )
    return Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, opts, ct.is_bridge)


def test_a_solve_never_asked_to_stop_is_unchanged(ct: Raw) -> None:
    p = chosen_centres(ct)
    plain = json.dumps(solve(p).to_dict(timings=False), sort_keys=True)
    asked = StopFrom(None)
    watched = json.dumps(solve(p, should_stop=asked).to_dict(timings=False), sort_keys=True)
    assert watched == plain
    assert asked.calls > 20  # consulted all along, not only at the start


def test_the_solve_stops_at_the_first_request_wherever_it_comes(ct: Raw) -> None:
    p = chosen_centres(ct)
    total = StopFrom(None)
    solve(p, should_stop=total)
    stages = set()
    for first in range(1, total.calls + 1):  # every point where the solver looks
        request = StopFrom(first)
        with pytest.raises(Cancelled) as stopped:
            solve(p, should_stop=request)
        assert request.true_answers == 1, f"the solve went on after request {first}"
        stages.add(stopped.value.stage)
    # the long loops check by themselves, not only the stage boundaries
    assert {
        "centre choice",
        "cluster rebuilds",
        "re-centring",
        "window polishing",
        "boundary flow",
    } <= stages, stages


def test_the_caller_hears_each_stage_as_it_starts(ct: Raw) -> None:
    p = chosen_centres(ct)
    heard: list[str] = []
    watched = solve(p, on_stage=heard.append)
    assert json.dumps(watched.to_dict(timings=False), sort_keys=True) == json.dumps(
        solve(p).to_dict(timings=False), sort_keys=True
    )
    assert all(a != b for a, b in zip(heard, heard[1:], strict=False)), "a stage reported twice in a row"
    first_seen = {stage: heard.index(stage) for stage in reversed(heard)}
    pipeline = ["pre-check", "centre choice", "construction", "improvement moves", "cluster rebuilds"]
    assert [first_seen[s] for s in pipeline] == sorted(first_seen[s] for s in pipeline), heard
    assert {"re-centring", "window polishing", "boundary flow"} <= set(heard), heard
    assert heard[-1] == "lower bound", heard
    exact: list[str] = []
    solve(make_problem(ct, 3, tolerance=0.05, mode="exact", anchor_homes=True), on_stage=exact.append)
    assert exact[0] == "pre-check" and "the exact model" in exact, exact


def test_a_stop_request_ends_the_exact_search(ct: Raw) -> None:
    """Only the helper thread that watches CP-SAT sees the request: the search itself must stop."""
    p = make_problem(ct, 4, tolerance=0.05, mode="exact", anchor_homes=True, time_limit=60)
    caller = threading.current_thread()

    def from_the_search_only() -> bool:
        return threading.current_thread() is not caller

    with pytest.raises(Cancelled) as stopped:
        solve(p, should_stop=from_the_search_only)
    assert stopped.value.stage == "the exact model"


CTRL_C_DURING_CP_SAT = """
import os, signal, sys, threading, time
from pathlib import Path
from tests.unit.optimizer.conftest import load_geojson, make_problem
from optimizer import solve
base = Path(sys.argv[1]) / "fixtures" / "fixture_ct_zcta2010_covsimp0p001_pop"
ct = load_geojson(Path(f"{base}.geojson"), "zcta", "pop2010", Path(f"{base}_adjacency_touches.csv"))
problem = make_problem(ct, 5, tolerance=0.01, mode="exact", anchor_homes=True, time_limit=60)
def ctrl_c_once_the_search_runs():
    if threading.current_thread().name == "cp-sat-stop":
        os.kill(os.getpid(), signal.SIGINT)
    return False
worker = threading.Thread(target=solve, args=(problem, ctrl_c_once_the_search_runs), daemon=True)
worker.start()
try:
    while worker.is_alive():
        time.sleep(0.1)
    print("the solve ended before Ctrl-C")
except KeyboardInterrupt:
    print("Ctrl-C reached Python")
"""


def test_ctrl_c_while_cp_sat_searches_in_a_thread_reaches_python(opt_data_dir: Path) -> None:
    """A solve on a worker thread (a job worker, `territory rebalance --local`): Ctrl-C during CP-SAT's search
    must raise KeyboardInterrupt in the main thread, not abort the process from CP-SAT's own handler."""
    run = subprocess.run(
        [sys.executable, "-c", CTRL_C_DURING_CP_SAT, str(opt_data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Ctrl-C reached Python" in run.stdout, run.stdout + run.stderr
