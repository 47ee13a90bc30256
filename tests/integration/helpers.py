"""Independent helpers for integration tests: row counts and reference adjacency from the data set's csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

TABLES = ("geo_unit", "geo_unit_adjacency", "geo_import", "rep", "account")


def row_counts(session: Session) -> dict[str, int]:
    """Rows per table, straight from SQL."""
    return {table: session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in TABLES}


def csv_pairs(path: Path) -> set[tuple[str, str]]:
    """Reference adjacency pairs (min, max) from an ``a,b`` csv, codes kept as strings."""
    with path.open(newline="") as handle:
        return {tuple(sorted((row["a"], row["b"]))) for row in csv.DictReader(handle)}  # type: ignore[misc]


def db_pairs(session: Session, level: str, *, bridges: bool = False) -> set[tuple[str, str]]:
    """Adjacency pairs stored in PostGIS, as sorted code pairs."""
    rows = session.execute(
        text(
            "SELECT ua.code, ub.code FROM geo_unit_adjacency e "
            "JOIN geo_unit ua ON ua.id = e.a_id JOIN geo_unit ub ON ub.id = e.b_id "
            "WHERE ua.level = :level AND e.is_bridge = :bridges"
        ),
        {"level": level, "bridges": bridges},
    ).all()
    return {(min(a, b), max(a, b)) for a, b in rows}


def write_geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    """Write a FeatureCollection (stdlib json, so NaN tokens can be written on purpose)."""
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def square(x: float, y: float, size: float = 0.1) -> list[list[list[float]]]:
    """A closed square ring at (x, y)."""
    return [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]]


def polygon_feature(code: str, rings: list[Any], **props: Any) -> dict[str, Any]:
    """A Polygon feature with a zcta code."""
    return {
        "type": "Feature",
        "properties": {"zcta": code, **props},
        "geometry": {"type": "Polygon", "coordinates": rings},
    }
