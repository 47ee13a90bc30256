"""Fixtures for the geodata unit tests: the real Census data set (never copied into the repo)."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from geodata import UnitSet, prepare_units, read_features

REPO = Path(__file__).resolve().parents[3]
NATIONAL = "zcta/us_zcta2010_austindevs_simplified_merged_pop.geojson"
NATIONAL_CSV = "zcta/us_zcta2010_austindevs_simplified_merged_pop_adjacency_dwithin0.003deg.csv"
CT_FIXTURE = "fixtures/fixture_ct_zcta2010_covsimp0p001_pop.geojson"
RI_FIXTURE = "fixtures/fixture_ri_zcta2010_covsimp0p001_pop.geojson"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real-data folder: ``$TERRITORY_DATA_DIR`` or ``<repo>/../shared/data``.

    Its absence is a test failure, never a skip.
    """
    env = os.environ.get("TERRITORY_DATA_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    needed = [CT_FIXTURE, RI_FIXTURE, "zcta", "population"]
    missing = [n for n in needed if not (path / n).exists()]
    if missing:
        pytest.fail(
            f"real Census data set not found at {path} (missing: {', '.join(missing)}); "
            "set TERRITORY_DATA_DIR to the shared/data folder (see its README.md)",
            pytrace=False,
        )
    return path


def read_pair_csv(path: Path) -> set[tuple[str, str]]:
    """Read an adjacency csv (columns a,b; zero-padded codes) as a set of (min, max) code pairs."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and set(rows[0]) == {"a", "b"}
    return {(min(r["a"], r["b"]), max(r["a"], r["b"])) for r in rows}


@pytest.fixture(scope="session")
def pair_csv() -> Callable[[Path], set[tuple[str, str]]]:
    """The adjacency-csv reader, as a fixture."""
    return read_pair_csv


@pytest.fixture(scope="session")
def ct_units(data_dir: Path) -> UnitSet:
    """The clean Connecticut fixture (282 ZCTAs, pop2010)."""
    return prepare_units(read_features(data_dir / CT_FIXTURE), level="zcta")


@pytest.fixture(scope="session")
def ri_units(data_dir: Path) -> UnitSet:
    """The clean Rhode Island fixture (77 ZCTAs, 4 components)."""
    return prepare_units(read_features(data_dir / RI_FIXTURE), level="zcta")


@pytest.fixture(scope="session")
def national_units(data_dir: Path) -> UnitSet:
    """The national simplified ZCTA instance (32,989 units); only for tests marked slow."""
    return prepare_units(read_features(data_dir / NATIONAL), level="zcta")
