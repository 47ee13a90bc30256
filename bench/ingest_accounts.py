"""Benchmark: upload 1,000,000 synthetic accounts into a fresh database with the national ZCTA set.

Steps, all in one run on the same CSV file (written to a temporary folder, never into the repository):
1. a fresh database with our migrations; the national ZCTA set imported (32,989 units);
2. 1M seeded accounts: points drawn uniformly inside ZCTAs picked by population, ~3 % rows with a ZIP only;
3. ours, service call (``pipeline.upload`` in a child process: parse, COPY, validate, place, insert, commit);
4. ours, HTTP: the same file POSTed to ``/accounts/uploads`` of a uvicorn server, into an emptied table;
5. ours, re-upload of the same file over the stored rows (1M matches, none changed; service call);
6. the peer: PostgreSQL ``COPY ... (FORMAT csv)`` of the same file into a plain table of text columns.
Then independent checks of placement: every point lies in (or on) its unit, and agrees with the ZCTA the
generator drew it in.

Run: `.venv/bin/python bench/ingest_accounts.py [--rows N] [--no-http] [--keep]` (TERRITORY_DATA_DIR -> data).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely

from app.db.scratch import create_fresh_database, drop_database
from app.db.session import engine_for, session_factory, transaction
from app.servicerun import start_service, stop_service
from app.services.geography_import import ImportOptions, import_geography
from app.settings import get_settings

NATIONAL = "zcta/us_zcta2010_austindevs_simplified_merged_pop.geojson"
SEED = 20261127
ZIP_ONLY = 0.03
SEGMENTS = ("SMB", "MidMarket", "Enterprise")
STAGES = ("prospect", "open", "won", "lost")


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def generate(url: str, rows: int, path: Path) -> dict[str, Any]:
    """Write ``rows`` seeded accounts; return the code each point was drawn in (for the checks)."""
    with psycopg.connect(_plain(url)) as conn:
        units = conn.execute(
            "SELECT code, ST_AsBinary(geom), coalesce(population, 0) FROM geo_unit "
            "WHERE level = 'zcta' ORDER BY code"
        ).fetchall()
    codes = np.array([u[0] for u in units])
    geoms = shapely.from_wkb([bytes(u[1]) for u in units])
    weights = np.array([u[2] for u in units], dtype=float) + 1.0
    rng = np.random.default_rng(SEED)
    drawn = rng.choice(len(codes), size=rows, p=weights / weights.sum())
    xy = np.empty((rows, 2))
    order = np.argsort(drawn, kind="stable")
    ranked = drawn[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    for s, e in zip(starts, np.r_[starts[1:], rows], strict=True):
        geom = geoms[ranked[s]]
        shapely.prepare(geom)
        x0, y0, x1, y1 = geom.bounds
        fill = max(geom.area / max((x1 - x0) * (y1 - y0), 1e-300), 1e-4)
        found: list[np.ndarray] = []
        have = 0
        while have < e - s:
            m = max(16, math.ceil((e - s - have) / fill * 1.5))
            sample = np.column_stack([rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)])
            sample = sample[shapely.contains_xy(geom, sample[:, 0], sample[:, 1])]
            found.append(sample)
            have += len(sample)
        xy[order[s:e]] = np.concatenate(found)[: e - s]
    zip_only = rng.random(rows) < ZIP_ONLY
    segment = rng.choice(len(SEGMENTS), size=rows, p=(0.6, 0.3, 0.1))
    stage = rng.choice(len(STAGES), size=rows, p=(0.35, 0.35, 0.2, 0.1))
    value = np.round(rng.lognormal(9.5, 0.9, rows), 2)
    workload = np.round(np.maximum(rng.lognormal(0.0, 0.5, rows), 0.05), 3)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "name", "lon", "lat", "zip", "value", "workload", "stage", "segment"])
        for k in range(rows):
            lon, lat = ("", "") if zip_only[k] else (f"{xy[k, 0]:.6f}", f"{xy[k, 1]:.6f}")
            writer.writerow(
                [
                    f"ACC-{k + 1:07d}",
                    f"Account {k + 1}",
                    lon,
                    lat,
                    codes[drawn[k]],
                    value[k],
                    workload[k],
                    STAGES[stage[k]],
                    SEGMENTS[segment[k]],
                ]
            )
    return {"zip_only": int(zip_only.sum())}


def service_run(url: str, path: Path) -> dict[str, Any]:
    """The service call, in this (child) process: upload, commit, report wall time and peak RSS."""
    from app.services.ingest import pipeline

    started = time.perf_counter()
    with transaction(session_factory(engine_for(url))) as session:
        report = pipeline.upload(session, "accounts", path, source=path.name)
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "peak_rss_mib": _peak_rss_mib("self"),
        "rows": report.rows,
        "inserted": report.inserted,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "placement": report.placement.model_dump() if report.placement else None,
        "unplaced_count": report.unplaced_count,
        "timings_s": report.timings_s,
    }


def _peak_rss_mib(pid: str) -> float:
    """VmHWM of a process (ru_maxrss would report the forking parent's size after exec)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024


def _child(url: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", url, str(path)], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def http_run(url: str, path: Path) -> dict[str, Any]:
    """POST the file to a real uvicorn server on loopback; wall time and the server's peak RSS."""
    import httpx

    env = {
        "DATABASE_URL": url,
        "TERRITORY_LOAD_DEMO": "false",
        "TERRITORY_ROUTING_CACHE": "false",
        "TERRITORY_MAX_UPLOAD_MB": "1024",
    }
    server = start_service(env, "--no-demo", "--workers", "0")
    try:
        started = time.perf_counter()
        with path.open("rb") as handle:
            response = httpx.post(
                f"{server.url}/accounts/uploads", files={"file": (path.name, handle, "text/csv")}, timeout=600
            )
        wall = time.perf_counter() - started
        response.raise_for_status()
        server_rss = _peak_rss_mib(str(server.process.pid))
        report = response.json()
        return {
            "wall_s": wall,
            "server_peak_rss_mib": server_rss,
            "inserted": report["inserted"],
            "placement": report["placement"],
            "timings_s": report["timings_s"],
        }
    finally:
        stop_service(server)


def copy_run(url: str, path: Path) -> float:
    """The peer: COPY the same CSV into a plain table of text columns."""
    with psycopg.connect(_plain(url)) as conn:
        conn.execute(
            "CREATE TABLE peer_copy (external_id text, name text, lon text, lat text, zip text, value text, "
            "workload text, stage text, segment text)"
        )
        conn.commit()
        started = time.perf_counter()
        statement = "COPY peer_copy FROM STDIN (FORMAT csv, HEADER true)"
        with conn.cursor() as cur, cur.copy(statement) as copy, path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        return time.perf_counter() - started


def checks(url: str) -> dict[str, Any]:
    """Independent placement checks against the generator (``zip`` = the ZCTA a point was drawn in)."""
    with psycopg.connect(_plain(url)) as conn:
        row = conn.execute(
            """
            SELECT count(*) FILTER (WHERE NOT ST_Covers(u.geom, a.location)),
                   count(*) FILTER (WHERE ST_Covers(d.geom, a.location)),
                   count(*) FILTER (WHERE u.code = d.code),
                   count(*) FILTER (WHERE u.code > d.code AND ST_Covers(d.geom, a.location)),
                   count(*)
            FROM account a JOIN geo_unit u ON u.id = a.unit_id
            JOIN geo_unit d ON d.level = 'zcta' AND d.code = a.zip
            WHERE a.placement = 'point'
            """
        ).fetchone()
        unplaced = conn.execute("SELECT count(*) FROM account WHERE unit_id IS NULL").fetchone()
    assert row is not None and unplaced is not None
    return {
        "point rows": row[4],
        "outside their unit": row[0],
        "drawn ZCTA covers the point": row[1],
        "placed on the drawn ZCTA": row[2],
        "placed above a covering drawn ZCTA (lowest code wins: must be 0)": row[3],
        "unplaced": unplaced[0],
    }


def _line(label: str, seconds: float, rows: int) -> None:
    print(f"{label:<28}{seconds:7.1f} s {rows / seconds:>11,.0f} rows/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP run")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--worker", nargs=2, metavar=("URL", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(service_run(args.worker[0], Path(args.worker[1]))))
        return 0

    settings = get_settings()
    data_dir = Path(os.environ.get("TERRITORY_DATA_DIR", settings.data_dir))
    national = data_dir / NATIONAL
    if not national.exists():
        print(f"missing {national}: set TERRITORY_DATA_DIR", file=sys.stderr)
        return 2
    url = create_fresh_database("territory_bench_ingest")
    try:
        started = time.perf_counter()
        with transaction(session_factory(engine_for(url))) as session:
            import_geography(session, national, ImportOptions(level="zcta", tolerance=0.003))
        with psycopg.connect(_plain(url), autocommit=True) as conn:
            conn.execute("ANALYZE geo_unit")
        print(f"national ZCTA import      {time.perf_counter() - started:6.1f} s")
        with tempfile.TemporaryDirectory(prefix="territory-bench-ingest-") as tmp:
            path = Path(tmp) / "accounts.csv"
            started = time.perf_counter()
            generated = generate(url, args.rows, path)
            size_mb = path.stat().st_size / (1 << 20)
            print(
                f"generated {args.rows:,} rows ({generated['zip_only']:,} ZIP only), {size_mb:.0f} MiB "
                f"in {time.perf_counter() - started:.1f} s"
            )

            ours = _child(url, path)
            found = checks(url)
            _line("ours, service call", ours["wall_s"], args.rows)
            print(f"  peak RSS {ours['peak_rss_mib']:.0f} MiB, placement {ours['placement']}")
            print(f"  stages: {ours['timings_s']}")
            print(f"  checks: {found}")

            web: dict[str, Any] | None = None
            if not args.no_http:
                with psycopg.connect(_plain(url), autocommit=True) as conn:
                    conn.execute("TRUNCATE account CASCADE")
                web = http_run(url, path)
                _line("ours, HTTP upload", web["wall_s"], args.rows)
                print(f"  server peak RSS {web['server_peak_rss_mib']:.0f} MiB, placement {web['placement']}")

            again = _child(url, path)
            _line("ours, re-upload (updates)", again["wall_s"], args.rows)
            print(
                f"  inserted {again['inserted']:,}, updated {again['updated']:,}, "
                f"unchanged {again['unchanged']:,}; stages: {again['timings_s']}"
            )

            peer = copy_run(url, path)
            _line("peer: COPY (FORMAT csv)", peer, args.rows)
            ratios = [f"service {ours['wall_s'] / peer:.1f}x"]
            if web:
                ratios.append(f"HTTP {web['wall_s'] / peer:.1f}x")
            ratios.append(f"re-upload {again['wall_s'] / peer:.1f}x")
            print("ratio ours/COPY: " + ", ".join(ratios))
    finally:
        engine_for.cache_clear()
        if not args.keep:
            drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
