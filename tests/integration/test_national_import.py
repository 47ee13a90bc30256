"""The national ZCTA set (32,989 units) imports with population; its adjacency agrees with the reference."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.services.geography_import import ImportOptions, import_geography
from tests.integration.helpers import csv_pairs, db_pairs

NATIONAL = "zcta/us_zcta2010_austindevs_simplified_merged_pop.geojson"


@pytest.mark.slow
def test_national_zcta_import(session: Session, data_dir: Path) -> None:
    path = data_dir / NATIONAL
    report = import_geography(session, path, ImportOptions(level="zcta", tolerance=0.003))
    assert report.units == 32_989
    stored = session.execute(
        text("SELECT count(*), count(population), sum(population) FROM geo_unit WHERE level = 'zcta'")
    ).one()
    assert stored[0] == 32_989 and stored[1] == 32_989
    assert stored[2] == pytest.approx(308.7e6, rel=0.001)
    reference = csv_pairs(path.with_name(path.stem + "_adjacency_dwithin0.003deg.csv"))
    ours = db_pairs(session, "zcta")
    agreement = len(ours & reference)
    assert agreement / len(reference) >= 0.99, f"recall {agreement / len(reference):.4f}"
    assert agreement / len(ours) >= 0.99, f"precision {agreement / len(ours):.4f}"
    assert report.components_before_bridges == 185
    assert report.bridge_edges == 184
