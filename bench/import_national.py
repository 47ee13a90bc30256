"""Benchmark: import the national ZCTA set (32,989 units, 0.003 deg tolerance) into a fresh PostGIS database.

Reports wall time per stage, units with population, and agreement of our adjacency with the reference csv.
Run: `make bench-import` (or `.venv/bin/python bench/import_national.py [--keep]`).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db.scratch import create_fresh_database, drop_database
from app.db.session import engine_for, session_factory, transaction
from app.services.geography_import import ImportOptions, import_geography
from app.settings import get_settings

NATIONAL = "zcta/us_zcta2010_austindevs_simplified_merged_pop.geojson"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument(
        "--no-peers", action="store_true", help="skip ogr2ogr, PostGIS ST_DWithin and libpysal"
    )
    args = parser.parse_args()
    settings = get_settings()
    data_dir = Path(os.environ.get("TERRITORY_DATA_DIR", settings.data_dir))
    path = data_dir / NATIONAL
    if not path.exists():
        print(f"missing {path}: set TERRITORY_DATA_DIR", file=sys.stderr)
        return 2

    url = create_fresh_database("territory_bench")
    try:
        started = time.perf_counter()
        with transaction(session_factory(engine_for(url))) as session:
            report = import_geography(session, path, ImportOptions(level="zcta", tolerance=0.003))
        total = time.perf_counter() - started
        with transaction(session_factory(engine_for(url))) as session:
            rows = session.execute(
                text(
                    "SELECT ua.code, ub.code FROM geo_unit_adjacency e JOIN geo_unit ua ON ua.id = e.a_id "
                    "JOIN geo_unit ub ON ub.id = e.b_id WHERE NOT e.is_bridge"
                )
            ).all()
        ours = {(min(a, b), max(a, b)) for a, b in rows}
        with path.with_name(path.stem + "_adjacency_dwithin0.003deg.csv").open(newline="") as handle:
            reference = {(min(r["a"], r["b"]), max(r["a"], r["b"])) for r in csv.DictReader(handle)}
        both = len(ours & reference)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in report.timings_s.items())
        print(f"units stored            {report.units:,} ({report.with_population:,} with population)")
        print(
            f"adjacency edges         {len(ours):,} + {report.bridge_edges} bridges "
            f"({report.components_before_bridges} components before bridges)"
        )
        print(f"reference csv edges     {len(reference):,}")
        print(f"recall / precision      {both / len(reference):.4%} / {both / len(ours):.4%}")
        print(f"repaired / rejected     {report.repaired} / {report.rejected}")
        print(f"wall time               {total:.1f} s ({stages})")
        print(f"peak RSS                {peak_mb:,.0f} MiB")
        if not args.no_peers:
            run_peers(url, path, reference, total, report.timings_s["adjacency"])
    finally:
        engine_for.cache_clear()
        if not args.keep:
            drop_database(url)
    return 0


def _agreement(pairs: set[tuple[str, str]], reference: set[tuple[str, str]]) -> str:
    both = len(pairs & reference)
    return f"recall {both / len(reference):.4%}, precision {both / max(len(pairs), 1):.4%}"


def run_peers(
    url: str, path: Path, reference: set[tuple[str, str]], ours_total: float, ours_adj: float
) -> None:
    """Peers on the same file in the same run: GDAL's ogr2ogr load, a PostGIS self-join, libpysal."""
    print("\npeers (same file, same run):")
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    ogr2ogr = shutil.which("ogr2ogr")
    if ogr2ogr:
        started = time.perf_counter()
        subprocess.run(
            [
                ogr2ogr,
                "-f",
                "PostgreSQL",
                f"PG:{_libpq_dsn(plain)}",
                str(path),
                "-nln",
                "peer_zcta",
                "-lco",
                "GEOMETRY_NAME=geom",
                "-nlt",
                "PROMOTE_TO_MULTI",
                "-overwrite",
            ],
            check=True,
        )
        load = time.perf_counter() - started
        print(
            f"ogr2ogr load only (no validation, no adjacency)   {load:6.1f} s   "
            f"ours/peer {ours_total / load:.2f}x"
        )
        with psycopg.connect(plain, autocommit=True) as conn:
            started = time.perf_counter()
            rows = conn.execute(
                "SELECT a.zcta, b.zcta FROM peer_zcta a JOIN peer_zcta b "
                "ON a.zcta < b.zcta AND ST_DWithin(a.geom, b.geom, 0.003)"
            ).fetchall()
            sql_adj = time.perf_counter() - started
        pairs = {(a, b) for a, b in rows}
        print(
            f"PostGIS ST_DWithin self-join adjacency           {sql_adj:6.1f} s   "
            f"ours/peer {ours_adj / sql_adj:.2f}x  ({_agreement(pairs, reference)})"
        )
    else:
        print("ogr2ogr not installed (Debian: gdal-bin): GDAL and PostGIS self-join peers skipped")
    try:
        import geopandas
        from libpysal.weights import fuzzy_contiguity
    except ImportError:
        print("libpysal not installed: peer skipped")
        return
    frame = geopandas.read_file(path)
    started = time.perf_counter()
    weights = fuzzy_contiguity(frame, tolerance=0.0, buffering=True, buffer=0.0015, silence_warnings=True)
    pysal_adj = time.perf_counter() - started
    codes = list(frame["zcta"])
    pairs = {
        (min(codes[i], codes[j]), max(codes[i], codes[j]))
        for i, nbrs in weights.neighbors.items()
        for j in nbrs
    }
    print(
        f"libpysal fuzzy_contiguity (buffer 0.0015 deg)     {pysal_adj:6.1f} s   "
        f"ours/peer {ours_adj / pysal_adj:.2f}x  ({_agreement(pairs, reference)})"
    )


def _libpq_dsn(url: str) -> str:
    parsed = make_url(url)
    parts = [
        f"host={parsed.host}",
        f"port={parsed.port}",
        f"dbname={parsed.database}",
        f"user={parsed.username}",
    ]
    if parsed.password:
        parts.append(f"password={parsed.password}")
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
