"""The `territory` command as a user runs it: a real process against its own fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.db.scratch import create_fresh_database, drop_database
from tests.integration.helpers import csv_pairs

TERRITORY = [sys.executable, "-m", "app.cli"]


@pytest.fixture(scope="module")
def cli_database() -> Iterator[str]:
    url = create_fresh_database("territory_cli")
    yield url
    drop_database(url)


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "COLUMNS": "200"}
    return subprocess.run(
        [*TERRITORY, *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def counts(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        units = conn.execute(text("SELECT count(*) FROM geo_unit")).scalar_one()
        edges = conn.execute(text("SELECT count(*) FROM geo_unit_adjacency")).scalar_one()
    engine.dispose()
    return units, edges


def test_connecticut_full_resolution_import_gives_the_759_queen_pairs(
    cli_database: str, data_dir: Path
) -> None:
    ct = next((data_dir / "zcta" / "opendatade_2010_fullres").glob("ct_*.json"))
    first = run_cli(cli_database, "geodata", "import", str(ct), "--level", "zcta")
    assert first.returncode == 0, first.stderr
    assert "282" in first.stderr and "759" in first.stderr
    assert counts(cli_database) == (282, 759)

    again = run_cli(cli_database, "geodata", "import", str(ct), "--level", "zcta")
    assert again.returncode == 0, again.stderr
    assert "0 new, 282 updated" in again.stderr
    assert counts(cli_database) == (282, 759)

    engine = create_engine(cli_database)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ua.code, ub.code FROM geo_unit_adjacency e JOIN geo_unit ua ON ua.id = e.a_id "
                "JOIN geo_unit ub ON ub.id = e.b_id"
            )
        ).all()
    engine.dispose()
    fixture_csv = data_dir / "fixtures" / "fixture_ct_zcta2010_covsimp0p001_pop_adjacency_touches.csv"
    assert {(min(a, b), max(a, b)) for a, b in rows} == csv_pairs(fixture_csv)


def test_bad_file_exits_nonzero_and_changes_nothing(cli_database: str, tmp_path: Path) -> None:
    before = counts(cli_database)
    bad = tmp_path / "unclosed.geojson"
    bad.write_text(
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"zcta":"06001"},'
        '"geometry":{"type":"Polygon","coordinates":[[[-72,41],[-71.9,41],[-71.9,41.1],[-72,41.1]]]}}]}'
    )
    result = run_cli(cli_database, "geodata", "import", str(bad), "--level", "zcta")
    assert result.returncode == 1
    assert "database unchanged" in result.stderr and "closed" in result.stderr
    assert counts(cli_database) == before


def test_krunkled_topojson_imports_with_repairs_reported(cli_database: str, data_dir: Path) -> None:
    market = data_dir / "zcta" / "krunkled_2020_topojson" / "market_18_m0.topojson"
    result = run_cli(cli_database, "geodata", "import", str(market), "--level", "zcta", "--show", "3")
    assert result.returncode == 0, result.stderr
    assert "repaired" in result.stderr
    engine = create_engine(cli_database)
    with engine.connect() as conn:
        imported = conn.execute(text("SELECT problems FROM geo_import ORDER BY id DESC LIMIT 1")).scalar_one()
        invalid = conn.execute(text("SELECT count(*) FROM geo_unit WHERE NOT ST_IsValid(geom)")).scalar_one()
    engine.dispose()
    repaired = [p for p in imported if p["action"] == "repaired"]
    assert repaired and any("self-intersection" in p["reason"].lower() for p in repaired)
    assert invalid == 0
