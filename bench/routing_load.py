"""Benchmark: lead routing on the national ZCTA set from one server process, under wrk on loopback.

Builds a fresh database with the 32,989 national ZCTAs and an active plan (one territory per state, one rep
each), starts `territory serve` (one uvicorn process), then measures:
  * single lookups `GET /route/point` with wrk (2 threads, 32 connections): throughput, p50/p99 latency;
  * `GET /route/zip/{zip}` likewise;
  * the batch endpoint with 10,000 points per call: points/s.
Run: `.venv/bin/python bench/routing_load.py` (needs `wrk`: Debian package wrk).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psycopg
import shapely
from state_plan import add_state_plan, add_state_reps  # sibling module: scripts run as bench/NAME.py

from app.db.scratch import create_fresh_database, drop_database
from app.db.session import engine_for, session_factory, transaction
from app.servicerun import start_service, stop_service
from app.services.geography_import import ImportOptions, import_geography
from app.services.plans import lifecycle
from app.settings import get_settings

NATIONAL = "zcta/us_zcta2010_austindevs_simplified_merged_pop.geojson"


def build_database(data_dir: Path) -> str:
    """A fresh database with the national ZCTAs and an active one-territory-per-state plan."""
    url = create_fresh_database("territory_routing")
    factory = session_factory(engine_for(url))
    with transaction(factory) as session:
        import_geography(session, data_dir / NATIONAL, ImportOptions(level="zcta", tolerance=0.003))
        add_state_reps(session)
        plan_id = add_state_plan(session, status="approved")
    with transaction(factory) as session:
        plan = lifecycle.get_plan(session, plan_id)
        lifecycle.transition(session, plan_id, "activate", lifecycle.etag(plan))
    return url


def sample_points(url: str, n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """``n`` points inside random units (shapely point_on_surface) and ``n`` random ZIPs."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        rows = conn.execute("SELECT code, ST_AsBinary(geom) FROM geo_unit ORDER BY code").fetchall()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(rows), size=n, replace=True)
    geoms = shapely.from_wkb([bytes(rows[i][1]) for i in pick])
    points = shapely.get_coordinates(shapely.point_on_surface(geoms))
    return points, [rows[i][0] for i in pick]


def wrk(base_url: str, script: Path, seconds: int, connections: int = 32) -> dict[str, float]:
    """Run wrk against ``base_url`` (the Lua ``script`` picks each request's path) and parse requests/s and
    latency percentiles (ms)."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"{base_url}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        match = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            result[f"p{pct}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non_2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    return result


def lua_script(folder: Path, name: str, paths: list[str]) -> Path:
    """A wrk script ``folder/name.lua`` that cycles through ``paths``."""
    script = folder / f"{name}.lua"
    body = ",\n".join(f'"{p}"' for p in paths)
    script.write_text(
        "local paths = {\n" + body + "\n}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n  return wrk.format('GET', paths[i])\nend\n"
    )
    return script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    settings = get_settings()
    data_dir = Path(os.environ.get("TERRITORY_DATA_DIR", settings.data_dir))
    started = time.perf_counter()
    url = build_database(data_dir)
    print(f"database ready in {time.perf_counter() - started:.1f} s")
    points, zips = sample_points(url, 20_000, seed=42)
    server = start_service({"DATABASE_URL": url, "TERRITORY_LOAD_DEMO": "false"}, "--no-demo")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            point_paths = [f"/route/point?lon={x:.6f}&lat={y:.6f}" for x, y in points]
            zip_paths = [f"/route/zip/{z}" for z in zips]
            # warm-up, then measure
            point_script = lua_script(Path(tmp), "points", point_paths)
            zip_script = lua_script(Path(tmp), "zips", zip_paths)
            wrk(server.url, point_script, 3)
            single = {c: wrk(server.url, point_script, args.seconds, c) for c in (8, 32)}
            by_zip = {c: wrk(server.url, zip_script, args.seconds, c) for c in (8, 32)}
        payload = {"points": [{"lon": float(x), "lat": float(y)} for x, y in points[:10_000]]}
        with httpx.Client(base_url=server.url, timeout=60) as client:
            client.post("/route/batch", json=payload)
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                response = client.post("/route/batch", json=payload)
                times.append(time.perf_counter() - t0)
                assert response.json()["matched"] == 10_000, response.text[:300]
        best, median = min(times), float(np.median(times))
        for label, runs in (("point", single), ("ZIP", by_zip)):
            for c, r in runs.items():
                print(
                    f"{label:5} lookups, {c:2} connections  {r['rps']:8.0f} req/s  "
                    f"p50 {r['p50_ms']:.2f} ms   "
                    f"p90 {r['p90_ms']:.2f} ms   p99 {r['p99_ms']:.2f} ms   non-2xx {r['non_2xx']:.0f}"
                )
        print(
            f"batch (10,000 points) {10_000 / median:8.0f} points/s "
            f"(median of 5 calls, best {10_000 / best:.0f})"
        )
    finally:
        stop_service(server)
        engine_for.cache_clear()
        if not args.keep:
            drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
