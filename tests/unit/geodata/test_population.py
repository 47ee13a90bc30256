"""Population tables: the Census SF1 table joined to the CT fixture reproduces the fixture's own pop2010."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from geodata import UnitSet, join_population, prepare_units, read_features, read_population_csv

pytestmark = pytest.mark.shared_data

CT_FIXTURE = "fixtures/fixture_ct_zcta2010_covsimp0p001_pop.geojson"


def _one(data_dir: Path, pattern: str) -> Path:
    matches = sorted((data_dir / "population").glob(pattern))
    assert len(matches) == 1, f"expected one {pattern} in {data_dir / 'population'}, found {matches}"
    return matches[0]


def _fresh_ct(data_dir: Path) -> UnitSet:
    return prepare_units(read_features(data_dir / CT_FIXTURE), level="zcta")


def test_census_2010_table_matches_fixture_population(data_dir: Path) -> None:
    path = _one(data_dir, "zcta2010_sf1_p1_total_pop__*.csv")
    population, problems = read_population_csv(path, code_column="NAME", value_column="P001001")
    # the Census label row ("Geographic Area Name", "Total") is line 2, right after the header
    assert [(p.index, p.action) for p in problems] == [(2, "skipped")]
    assert "Total" in problems[0].reason
    with open(path, encoding="utf-8-sig") as fh:
        n_rows = sum(1 for line in fh if line.strip()) - 2
    assert len(population) == n_rows == 33120
    assert all(len(code) == 5 and code.isdigit() for code in population)
    assert population["00601"] == 18570.0  # first data line of the file: "ZCTA5 00601","18570"

    units = _fresh_ct(data_dir)
    expected = units.frame["population"].to_numpy(copy=True)  # the fixture's own pop2010
    assert units.population_field == "pop2010" and not np.isnan(expected).any()
    units.frame["population"] = math.nan
    assert join_population(units, population) == []
    np.testing.assert_array_equal(units.frame["population"].to_numpy(), expected)


def test_census_2020_table_geo_id_codes(data_dir: Path) -> None:
    path = _one(data_dir, "zcta2020_dhc_p1_total_pop__*.csv")
    by_geo_id, skipped = read_population_csv(path, code_column="GEO_ID", value_column="P1_001N")
    by_name, _ = read_population_csv(path, code_column="NAME", value_column="P1_001N")
    assert [p.action for p in skipped] == ["skipped"]
    assert by_geo_id == by_name  # "860Z200US02139" and "ZCTA5 02139" give the same code
    assert len(by_geo_id) == 33774


def test_join_reports_missing_units_once(data_dir: Path) -> None:
    units = _fresh_ct(data_dir)
    codes = units.frame["code"].tolist()
    units.frame["population"] = math.nan
    partial = dict.fromkeys(codes[15:], 1.0)
    partial["99999"] = 5.0  # codes without a unit are ignored
    problems = join_population(units, partial)
    assert len(problems) == 1
    problem = problems[0]
    assert problem.action == "skipped" and problem.field == "population"
    assert problem.reason.startswith(f"15 of {len(codes)} units have no population value")
    assert all(code in problem.reason for code in codes[:10])
    assert codes[10] not in problem.reason
    pops = units.frame["population"].to_numpy()
    assert np.isnan(pops[:15]).all() and (pops[15:] == 1.0).all()
