"""Benchmark: vector tiles of the national ZCTA set (32,989 units) at zoom 4, 7 and 10, over HTTP.

Builds a fresh database with the national ZCTAs, one rep per state, 50,000 accounts on random ZCTAs and a
draft plan (each ZCTA to its state's rep, territories dissolved), starts `territory serve` (one uvicorn
process), then requests the tiles under random ZCTAs (so populated areas weigh more) at each zoom, without
and with `plan`: cold (first request of each tile: rendered) and warm (again: the in-process tile cache).
A naive peer (ST_Transform + ST_AsMVT at request time, properties joined in SQL, no cache) renders the same
cold tiles straight in PostgreSQL, without HTTP, in the same run.

Run: `.venv/bin/python bench/tiles.py [--keep] [--no-write]`; writes the section "Vector tiles" of
docs/benchmarks.md (replacing an earlier one of the same name).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psycopg
from sqlalchemy import text
from state_plan import add_state_plan, add_state_reps  # sibling module: scripts run as bench/NAME.py

from app.db.scratch import create_fresh_database, drop_database
from app.db.session import engine_for, session_factory, transaction
from app.servicerun import RunningService, start_service, stop_service
from app.services.geography_import import ImportOptions, import_geography
from app.services.plans.importer import dissolve_territories
from app.settings import PROJECT_ROOT, get_settings

NATIONAL = "zcta/us_zcta2010_austindevs_simplified_merged_pop.geojson"
ZOOMS = (4, 7, 10)
SAMPLES = {4: 400, 7: 60, 10: 120}  # random ZCTAs per zoom; tiles are the distinct tiles under them
ACCOUNTS = 50_000
SECTION = "## Vector tiles"
COMMAND = ".venv/bin/python bench/tiles.py"
INTRO = """The national ZCTA set (32,989 units) in a fresh database, one rep per source state file,
50,000 accounts on ZCTAs, a draft plan giving each ZCTA to its state's rep, territories dissolved.
One `territory serve` process (uvicorn, access log off); one HTTP client on loopback, sequential
requests. Tiles: the distinct tiles under random ZCTAs at each zoom (populated areas weigh more).
Cold = first request of a tile (rendered by PostGIS); warm = three more requests of each (in-process
tile cache; a browser revalidating with If-None-Match gets a 304 at about the same cost)."""
PEER = """Peer, same run, same tiles (at most 30 per zoom): the naive query, `ST_AsMVTGeom(ST_Transform(geom,
3857), ...)` over `geo_unit` filtered by the tile envelope transformed to 4326, measures from the
`unit_measure` view, owner and claim count by correlated subqueries, and with a plan its
territories' stored 4326 geometry transformed likewise; run straight on PostgreSQL (no HTTP, so the
ratio favours the peer), uncached. Ratio = peer p50 / our cold p50 over HTTP."""
IMPORT_NOTE = """Import cost of migration 0005 (generated columns and two indexes), measured back to back
under the same load on 2026-11-27 13:18 UTC (load average about 3.9): the national import took 18.8 s at
revision 0004 and 22.6 s at 0005, its write stage 2.6 s then 5.1 s; `bench/import_national.py
--no-peers` in the same hour gave 25.2 s (write 5.3 s; adjacency 15.5 s against 9.3 s on a quiet
machine: the load, not the migration). The 15.8 s of the import section was a quiet machine."""
DESIGN = """Design: web-mercator geometry stored once with two pre-simplified copies (generated columns,
migration 0005; the territories' mid copy also fills the sliver holes under 10 km2 left between units
that do not tessellate), picked by zoom (<= 5 low, 6-8 mid, >= 9 full); per level an in-process unit table
(measures as the diagnostics load them, mercator bounding boxes: a tile's units are found in numpy);
per plan version a property table (owner, flags, colour, territory loads); only the properties not
stored in `geo_unit` travel to PostgreSQL as arrays, joined by primary key; territories come from the
dissolved geometry materialised at import or edit; finished tiles in a 128 MiB LRU keyed by tile and
versions. Zoom-4 tiles hold about 12,000 ZCTAs each: they are the slow ones, once."""


def build_database(data_dir: Path) -> tuple[str, int, dict[str, float]]:
    """A fresh database: national ZCTAs, a rep per state, accounts and a dissolved by-state draft plan."""
    timings: dict[str, float] = {}
    url = create_fresh_database("territory_tiles")
    factory = session_factory(engine_for(url))
    started = time.perf_counter()
    with transaction(factory) as session:
        import_geography(session, data_dir / NATIONAL, ImportOptions(level="zcta", tolerance=0.003))
    timings["import"] = time.perf_counter() - started
    with transaction(factory) as session:
        add_state_reps(session)
        session.execute(
            text(
                "INSERT INTO account (external_id, name, unit_id, workload, value, stage) "
                "SELECT 'A-' || i, 'Account ' || i, u.id, 0.5 + (i % 7) * 0.25, (i % 13) * 1000, 'open' "
                "FROM generate_series(1, :n) i "
                "JOIN (SELECT id, row_number() OVER (ORDER BY md5(code)) AS k FROM geo_unit) u "
                "ON u.k = 1 + (i * 7919) % (SELECT count(*) FROM geo_unit)"
            ),
            {"n": ACCOUNTS},
        )
        plan_id = add_state_plan(session, status="draft")
        started = time.perf_counter()
        dissolve_territories(session, plan_id)
        timings["dissolve"] = time.perf_counter() - started
    return url, plan_id, timings


def sample_tiles(url: str, seed: int) -> dict[int, list[tuple[int, int]]]:
    """Per zoom, the distinct tiles under the centroids of random ZCTAs (in order of first draw)."""
    with psycopg.connect(_libpq(url)) as conn:
        rows = conn.execute("SELECT ST_X(centroid), ST_Y(centroid) FROM geo_unit ORDER BY code").fetchall()
    rng = np.random.default_rng(seed)
    out: dict[int, list[tuple[int, int]]] = {}
    for z in ZOOMS:
        n = 1 << z
        seen: dict[tuple[int, int], None] = {}
        for i in rng.choice(len(rows), size=SAMPLES[z], replace=False):
            lon, lat = rows[i]
            x = int((lon + 180) / 360 * n)
            y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n)
            seen[(min(max(x, 0), n - 1), min(max(y, 0), n - 1))] = None
        out[z] = list(seen)
    return out


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def start_server(url: str) -> RunningService:
    """`territory serve` on a free port (no demo, no workers), once it answers /healthz."""
    env = {"DATABASE_URL": url, "TERRITORY_LOAD_DEMO": "false", "TERRITORY_ROUTING_CACHE": "false"}
    return start_service(env, "--no-demo", "--workers", "0")


def timed_get(client: httpx.Client, path: str) -> tuple[float, int, int]:
    """Milliseconds, bytes on the wire (gzip) and decoded tile size of one GET (must be 200)."""
    started = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return elapsed, response.num_bytes_downloaded, len(response.content)


def stats(values: list[float]) -> tuple[float, float]:
    """p50 and p95."""
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def naive_sql(plan: bool) -> str:
    """The peer: transform, clip and encode at request time, measures and owners joined in SQL."""
    owner = (
        ", (SELECT r.external_id FROM plan_claim c JOIN territory t ON t.id = c.territory_id "
        "JOIN rep r ON r.id = t.rep_id WHERE c.plan_id = %(plan)s AND c.unit_id = u.id "
        "ORDER BY t.name LIMIT 1) AS owner, "
        "(SELECT count(*) FROM plan_claim c WHERE c.plan_id = %(plan)s AND c.unit_id = u.id) AS owners"
        if plan
        else ""
    )
    envelope = "ST_TileEnvelope(%(z)s, %(x)s, %(y)s)"
    search = "ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 0.015625), 4326)"
    units = f"""
        SELECT ST_AsMVT(t, 'units', 4096, 'geom') FROM (
            SELECT ST_AsMVTGeom(ST_Transform(u.geom, 3857), {envelope}, 4096, 64, true) AS geom,
                   u.code, u.name, u.population, m.accounts, m.workload {owner}
            FROM geo_unit u JOIN unit_measure m ON m.unit_id = u.id WHERE u.geom && {search}
        ) t WHERE t.geom IS NOT NULL
    """
    territories = f"""
        SELECT ST_AsMVT(t, 'territories', 4096, 'geom') FROM (
            SELECT ST_AsMVTGeom(ST_Transform(g.geom, 3857), {envelope}, 4096, 64, true) AS geom, g.name
            FROM territory g WHERE g.plan_id = %(plan)s AND g.geom && {search}
        ) t WHERE t.geom IS NOT NULL
    """
    return f"SELECT ({units}) || coalesce(({territories}), '')" if plan else units


def run_peer(
    url: str, tiles: dict[int, list[tuple[int, int]]], plan_id: int
) -> dict[tuple[int, bool], list[float]]:
    """Milliseconds per tile of the naive peer, on (at most 30 of) the same tiles."""
    out: dict[tuple[int, bool], list[float]] = {}
    with psycopg.connect(_libpq(url)) as conn:
        for z in ZOOMS:
            for plan in (False, True):
                times = []
                for x, y in tiles[z][:30]:
                    started = time.perf_counter()
                    conn.execute(naive_sql(plan), {"z": z, "x": x, "y": y, "plan": plan_id}).fetchone()
                    times.append((time.perf_counter() - started) * 1000)
                out[(z, plan)] = times
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    data_dir = Path(os.environ.get("TERRITORY_DATA_DIR", get_settings().data_dir))
    if not (data_dir / NATIONAL).exists():
        print(f"missing {data_dir / NATIONAL}: set TERRITORY_DATA_DIR", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    url, plan_id, timings = build_database(data_dir)
    print(
        f"database ready: import {timings['import']:.1f} s, dissolve {timings['dissolve']:.1f} s", flush=True
    )
    tiles = sample_tiles(url, seed=42)
    server = start_server(url)
    results: dict[tuple[int, bool], dict[str, list[float]]] = {}
    first: dict[str, float] = {}
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            # the first requests build the per-level unit table and the plan's property table (empty tiles)
            first["units"] = timed_get(client, "/tiles/zcta/22/0/0.mvt")[0]
            first["plan"] = timed_get(client, f"/tiles/zcta/22/0/0.mvt?plan={plan_id}")[0]
            for z in ZOOMS:
                for plan in (False, True):
                    query = f"?plan={plan_id}" if plan else ""
                    paths = [f"/tiles/zcta/{z}/{x}/{y}.mvt{query}" for x, y in tiles[z]]
                    cold = [timed_get(client, p) for p in paths]
                    warm = [timed_get(client, p)[0] for p in paths for _ in range(3)]
                    results[(z, plan)] = {
                        "cold": [c[0] for c in cold],
                        "warm": warm,
                        "kb": [c[1] / 1024 for c in cold],
                        "raw_kb": [c[2] / 1024 for c in cold],
                    }
                    print(_row(z, plan, results[(z, plan)]), flush=True)
        peer = run_peer(url, tiles, plan_id)
    finally:
        stop_service(server)
        load_after = os.getloadavg()
        engine_for.cache_clear()
        if not args.keep:
            drop_database(url)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    section = report(results, peer, first, timings, tiles, (load_before, load_after), uptime)
    print(section)
    if not args.no_write:
        write_section(PROJECT_ROOT / "docs" / "benchmarks.md", section)
    return 0


def _row(z: int, plan: bool, r: dict[str, list[float]]) -> str:
    c50, c95 = stats(r["cold"])
    w50, w95 = stats(r["warm"])
    k50, k95 = stats(r["kb"])
    r50, r95 = stats(r["raw_kb"])
    yes = "yes" if plan else "no"
    return (
        f"| {z} | {yes} | {len(r['cold'])} | {c50:.0f} / {c95:.0f} | {w50:.1f} / {w95:.1f} "
        f"| {k50:.0f} / {k95:.0f} | {r50:.0f} / {r95:.0f} |"
    )


def report(
    results: dict[tuple[int, bool], dict[str, list[float]]],
    peer: dict[tuple[int, bool], list[float]],
    first: dict[str, float],
    timings: dict[str, float],
    tiles: dict[int, list[tuple[int, int]]],
    load: tuple[tuple[float, ...], tuple[float, ...]],
    uptime: str,
) -> str:
    """The markdown section."""
    lines = [
        SECTION,
        "",
        "```sh",
        f"{COMMAND}        # TERRITORY_DATA_DIR -> ../shared/data; writes this section",
        "```",
        "",
        INTRO,
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average before / after "
        f"{load[0][0]:.2f} / {load[1][0]:.2f} (2 cores shared with other sessions); `uptime`: `{uptime}`.",
        "",
        "| zoom | plan | tiles | cold p50 / p95 ms | warm p50 / p95 ms | gzip p50 / p95 KiB "
        "| raw p50 / p95 KiB |",
        "|---|---|---|---|---|---|---|",
        *[_row(z, plan, results[(z, plan)]) for z in ZOOMS for plan in (False, True)],
        "",
        f"First request after start (builds the per-level unit table): {first['units']:.0f} ms; "
        f"first with the plan (builds its property table): {first['plan']:.0f} ms.",
        f"Database build: import {timings['import']:.1f} s (with the generated mercator columns of "
        f"migration 0005), territory dissolve {timings['dissolve']:.1f} s. "
        f"{len(tiles[4])} distinct zoom-4 tiles in the sample.",
        "",
        IMPORT_NOTE,
        "",
        PEER,
        "",
        "| zoom | plan | peer p50 / p95 ms | ours cold p50 ms | peer / ours |",
        "|---|---|---|---|---|",
    ]
    for z in ZOOMS:
        for plan in (False, True):
            p50, p95 = stats(peer[(z, plan)])
            ours = stats(results[(z, plan)]["cold"][: len(peer[(z, plan)])])[0]
            yes = "yes" if plan else "no"
            lines.append(f"| {z} | {yes} | {p50:.0f} / {p95:.0f} | {ours:.0f} | {p50 / ours:.1f}x |")
    lines += ["", DESIGN, ""]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace the section (up to the next `## ` heading) or append it."""
    content = path.read_text()
    start = content.find(SECTION + "\n")
    if start < 0:
        content = content.rstrip("\n") + "\n\n" + section
    else:
        end = content.find("\n## ", start + len(SECTION))
        content = content[:start] + section + (content[end + 1 :] if end >= 0 else "")
    path.write_text(content)


if __name__ == "__main__":
    sys.exit(main())
