"""Benchmark: import the national ZCTA set (32,989 units, 0.003 deg tolerance) into a fresh PostGIS database.

Reports wall time per stage, units with population, and agreement of our adjacency with the reference csv.
Run: `make bench-import` (or `.venv/bin/python bench/import_national.py [--keep]`).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import localdb
from app.db import bootstrap
from app.db.session import engine_for, session_factory, transaction
from app.services.geography_import import ImportOptions, import_geography
from app.settings import get_settings

NATIONAL = "zcta/us_zcta2010_austindevs_simplified_merged_pop.geojson"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    settings = get_settings()
    data_dir = Path(os.environ.get("TERRITORY_DATA_DIR", settings.data_dir))
    path = data_dir / NATIONAL
    if not path.exists():
        print(f"missing {path}: set TERRITORY_DATA_DIR", file=sys.stderr)
        return 2

    admin = settings.effective_database_url or localdb.start(settings.local_db_dir).url("postgres")
    name = f"territory_bench_{uuid.uuid4().hex[:8]}"
    plain_admin = admin.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        with psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
        ) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        bootstrap.upgrade(url)
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
    finally:
        engine_for.cache_clear()
        if not args.keep:
            with psycopg.connect(plain_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
