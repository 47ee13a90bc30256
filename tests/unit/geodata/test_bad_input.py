"""Dirty input: every bad feature or row is reported by index/line, nothing is silently fixed or padded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import shapely

from geodata import GeodataError, Problem, prepare_units, read_features, read_population_csv

SQUARE = [[[-72.5, 41.5], [-72.4, 41.5], [-72.4, 41.6], [-72.5, 41.6], [-72.5, 41.5]]]
BOWTIE = [[[-72.3, 41.5], [-72.2, 41.6], [-72.2, 41.5], [-72.3, 41.6], [-72.3, 41.5]]]


def feature(code: Any, geometry: dict[str, Any] | None, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"ZCTA5CE10": code, **props}, "geometry": geometry}


def polygon(coords: list[Any]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": coords}


def write_geojson(tmp_path: Path, features: list[dict[str, Any]], name: str = "units.geojson") -> Path:
    path = tmp_path / name
    # json.dumps writes NaN/Infinity tokens for non-finite floats, like some real-world writers
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_bowtie_is_repaired_and_reported(tmp_path: Path) -> None:
    path = write_geojson(tmp_path, [feature("06001", polygon(SQUARE)), feature("06002", polygon(BOWTIE))])
    raw = read_features(path)
    assert raw.parse_problems == []
    units = prepare_units(raw, level="zcta")
    assert units.frame["code"].tolist() == ["06001", "06002"]
    assert len(units.problems) == 1
    problem = units.problems[0]
    assert (problem.index, problem.code, problem.field, problem.action) == (
        1,
        "06002",
        "geometry",
        "repaired",
    )
    assert "Self-intersection" in problem.reason and "make_valid" in problem.reason
    repaired = units.frame.geometry[1]
    assert repaired.geom_type == "MultiPolygon" and repaired.is_valid
    assert len(repaired.geoms) == 2  # the two triangles of the bow tie
    assert repaired.area == pytest.approx(0.005, rel=1e-9)
    assert problem.to_dict() == {
        "index": 1,
        "code": "06002",
        "field": "geometry",
        "action": "repaired",
        "reason": problem.reason,
    }

    with pytest.raises(GeodataError) as exc:
        prepare_units(raw, level="zcta", strict=True)
    assert "feature 1" in str(exc.value)
    assert [(p.index, p.action) for p in exc.value.problems] == [(1, "rejected")]


def test_unclosed_ring_is_rejected_with_its_index(tmp_path: Path) -> None:
    unclosed = [SQUARE[0][:-1] + [[-72.5, 41.55]]]
    path = write_geojson(tmp_path, [feature("06001", polygon(SQUARE)), feature("06003", polygon(unclosed))])
    raw = read_features(path)
    assert [(p.index, p.code, p.action) for p in raw.parse_problems] == [(1, "06003", "rejected")]
    assert raw.frame.geometry[1] is None
    with pytest.raises(GeodataError) as exc:
        prepare_units(raw, level="zcta")
    message = str(exc.value)
    assert "feature 1" in message and "not closed" in message
    assert exc.value.rejected[0].index == 1
    # allow_rejects drops the feature and keeps the report
    units = prepare_units(raw, level="zcta", allow_rejects=True)
    assert units.frame["code"].tolist() == ["06001"]
    assert units.frame["source_index"].tolist() == [0]
    assert [p.index for p in units.problems] == [1]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_coordinates_are_rejected(tmp_path: Path, bad: float) -> None:
    ring = [list(p) for p in SQUARE[0]]
    ring[2][1] = bad
    path = write_geojson(tmp_path, [feature("06004", polygon([ring])), feature("06001", polygon(SQUARE))])
    assert "NaN" in path.read_text() or "Infinity" in path.read_text()
    raw = read_features(path)
    assert [p.index for p in raw.parse_problems] == [0]
    assert "non-finite" in raw.parse_problems[0].reason
    with pytest.raises(GeodataError) as exc:
        prepare_units(raw, level="zcta")
    assert "feature 0" in str(exc.value) and "non-finite" in str(exc.value)


def test_short_ring_and_bad_geometry_objects(tmp_path: Path) -> None:
    features = [
        feature("06001", polygon(SQUARE)),
        feature("06005", polygon([[[-72.5, 41.5], [-72.4, 41.5], [-72.5, 41.5]]])),
        feature("06006", None),
        feature("06007", {"type": "Hexagon", "coordinates": []}),
        feature("06008", polygon([[["a", 41.5], [-72.4, 41.5], [-72.4, 41.6], ["a", 41.5]]])),
        feature("06009", {"type": "MultiPolygon", "coordinates": [SQUARE, [SQUARE[0][:3]]]}),
    ]
    raw = read_features(write_geojson(tmp_path, features))
    reasons = {p.index: p.reason for p in raw.parse_problems}
    assert set(reasons) == {1, 2, 3, 4, 5}
    assert "3 positions" in reasons[1] and "at least 4" in reasons[1]
    assert "null" in reasons[2]
    assert "Hexagon" in reasons[3]
    assert "non-numeric" in reasons[4]
    assert "polygon 1" in reasons[5]
    units = prepare_units(raw, level="zcta", allow_rejects=True)
    assert units.frame["code"].tolist() == ["06001"]
    assert [p.index for p in units.problems] == [1, 2, 3, 4, 5]


def test_only_points_is_an_error(tmp_path: Path) -> None:
    features = [
        feature(f"0600{i}", {"type": "Point", "coordinates": [-72.0 - i / 10, 41.5]}) for i in range(3)
    ]
    with pytest.raises(GeodataError) as exc:
        prepare_units(read_features(write_geojson(tmp_path, features)), level="zcta")
    assert str(exc.value).startswith("no polygon features in ")
    assert "3 Point features" in str(exc.value)


def test_non_polygons_among_polygons(tmp_path: Path) -> None:
    line = {"type": "LineString", "coordinates": [[-72.0, 41.0], [-71.9, 41.1]]}
    collection = {"type": "GeometryCollection", "geometries": [polygon(SQUARE), line]}
    features = [
        feature("06001", polygon(SQUARE)),
        feature("06002", {"type": "Point", "coordinates": [-72.0, 41.5]}),
        feature("06003", collection),
        feature("06004", {"type": "GeometryCollection", "geometries": [line]}),
        feature("06005", {"type": "MultiPolygon", "coordinates": []}),
    ]
    units = prepare_units(read_features(write_geojson(tmp_path, features)), level="zcta", allow_rejects=True)
    by_index = {p.index: p for p in units.problems}
    assert by_index[1].action == "rejected" and by_index[1].reason == "not a polygon: Point"
    assert by_index[2].action == "repaired" and "LineString" in by_index[2].reason
    assert by_index[3].action == "rejected" and "not a polygon" in by_index[3].reason
    assert by_index[4].action == "rejected" and "empty" in by_index[4].reason
    assert units.frame["code"].tolist() == ["06001", "06003"]
    assert shapely.equals(units.frame.geometry[1], shapely.MultiPolygon([shapely.Polygon(SQUARE[0])]))


def test_integer_codes_lost_their_leading_zero(tmp_path: Path) -> None:
    features = [feature(6111, polygon(SQUARE)), feature(6112, polygon(BOWTIE))]
    path = write_geojson(tmp_path, features)
    raw = read_features(path)
    with pytest.raises(GeodataError) as exc:
        prepare_units(raw, level="zcta")
    rejected = exc.value.rejected
    assert [(p.index, p.code, p.field) for p in rejected] == [
        (0, "6111", "ZCTA5CE10"),
        (1, "6112", "ZCTA5CE10"),
    ]
    assert all("leading zero" in p.reason and "4 digits" in p.reason for p in rejected)
    # never padded: with allow_rejects nothing is left, which is itself an error
    with pytest.raises(GeodataError, match="every feature"):
        prepare_units(raw, level="zcta", allow_rejects=True)
    # custom units accept any non-empty code, as a string
    custom = prepare_units(raw, level="custom")
    assert custom.frame["code"].tolist() == ["6111", "6112"]


def test_duplicate_empty_and_malformed_codes(tmp_path: Path) -> None:
    features = [
        feature("06001", polygon(SQUARE)),
        feature(" 06001 ", polygon(BOWTIE)),
        feature("", polygon(SQUARE)),
        feature(None, polygon(SQUARE)),
        feature("6001A", polygon(SQUARE)),
        feature("060011", polygon(SQUARE)),
    ]
    units = prepare_units(read_features(write_geojson(tmp_path, features)), level="zcta", allow_rejects=True)
    rejected = {p.index: p.reason for p in units.problems if p.action == "rejected"}
    assert set(rejected) == {1, 2, 3, 4, 5}
    assert "duplicate" in rejected[1] and "features 0 and 1" in rejected[1]
    assert "empty code" in rejected[2] and "empty code" in rejected[3]
    assert "not a 5-digit" in rejected[4] and "not a 5-digit" in rejected[5]
    assert units.frame["code"].tolist() == ["06001"]


def test_population_values(tmp_path: Path) -> None:
    features = [
        feature("06001", polygon(SQUARE), pop=1200),
        feature("06002", polygon(SQUARE), pop="3,400"),
        feature("06003", polygon(SQUARE), pop=None),
        feature("06004", polygon(SQUARE), pop=-5),
        feature("06005", polygon(SQUARE), pop="many"),
    ]
    units = prepare_units(read_features(write_geojson(tmp_path, features)), level="zcta", allow_rejects=True)
    assert units.population_field == "pop"
    rejected = {p.index: p for p in units.problems}
    assert set(rejected) == {3, 4}
    assert rejected[3].field == "pop" and "negative" in rejected[3].reason
    assert "not a number" in rejected[4].reason
    pops = units.frame["population"].tolist()
    assert pops[:2] == [1200.0, 3400.0] and pops[2] != pops[2]  # NaN when unknown


def test_fields_and_levels(tmp_path: Path) -> None:
    features = [
        {"type": "Feature", "properties": {"STATEFP": "09", "COUNTYFP": "001", "NAME": "Fairfield"},
         "geometry": polygon(SQUARE)},
        {"type": "Feature", "properties": {"STATEFP": "09", "COUNTYFP": "003", "NAME": "Hartford"},
         "geometry": polygon(BOWTIE)},
    ]  # fmt: skip
    raw = read_features(write_geojson(tmp_path, features))
    counties = prepare_units(raw, level="county")
    assert counties.code_field == "STATEFP+COUNTYFP"
    assert counties.frame["code"].tolist() == ["09001", "09003"]
    assert counties.frame["name"].tolist() == ["Fairfield", "Hartford"]
    assert counties.frame["state"].tolist() == ["09", "09"]
    assert counties.frame["attributes"].tolist() == [{}, {}]
    with pytest.raises(GeodataError) as exc:
        prepare_units(raw, level="zcta")
    assert "STATEFP" in str(exc.value) and "COUNTYFP" in str(exc.value) and "NAME" in str(exc.value)
    with pytest.raises(GeodataError, match="available fields"):
        prepare_units(raw, level="county", code_field="GEOID")
    with pytest.raises(GeodataError, match="level"):
        prepare_units(raw, level="tract")


def write_csv(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "population.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_population_csv_lost_leading_zero(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "zip,population\n06111,100\n02139,50\n2139,60\n")
    with pytest.raises(GeodataError) as exc:
        read_population_csv(path, code_column="zip", value_column="population")
    message = str(exc.value)
    assert "line 4" in message and "leading zero" in message and "'2139'" in message
    assert [(p.index, p.code, p.action) for p in exc.value.problems] == [(4, "2139", "rejected")]


def test_population_csv_rejects_bad_rows(tmp_path: Path) -> None:
    text = "code,pop\n06111,100\n06112,-1\n06113,abc\n06111,5\nnothing,7\n061145,3\n"
    with pytest.raises(GeodataError) as exc:
        read_population_csv(write_csv(tmp_path, text), code_column="code", value_column="pop")
    problems = {p.index: p.reason for p in exc.value.problems}
    assert set(problems) == {3, 4, 5, 6, 7}
    assert "negative" in problems[3]
    assert "not a number" in problems[4]
    assert "duplicate" in problems[5] and "line 2" in problems[5]
    assert "no code" in problems[6]
    assert "6 digits" in problems[7]


def test_population_csv_columns_encodings_and_patterns(tmp_path: Path) -> None:
    with pytest.raises(GeodataError) as exc:
        read_population_csv(write_csv(tmp_path, "a,b\n1,2\n"), code_column="zip", value_column="pop")
    assert (
        "'zip'" in str(exc.value)
        and "'pop'" in str(exc.value)
        and "available columns: a, b" in str(exc.value)
    )

    bom = '\ufeffNAME,total,note\nZCTA5 02139,"36,349",Cambridge\nZCTA5 06111,100,caf\u00e9\n'
    values, problems = read_population_csv(write_csv(tmp_path, bom), code_column="NAME", value_column="total")
    assert values == {"02139": 36349.0, "06111": 100.0} and problems == []
    latin = "NAME,total,note\nZCTA5 02139,5,caf\u00e9\n"
    values, _ = read_population_csv(
        write_csv(tmp_path, latin, "cp1252"), code_column="NAME", value_column="total"
    )
    assert values == {"02139": 5.0}
    pattern = "id,pop\nUS-CT-06111-x,9\n"
    values, _ = read_population_csv(
        write_csv(tmp_path, pattern), code_column="id", value_column="pop", code_pattern=r"CT-(\d+)"
    )
    assert values == {"06111": 9.0}
    counties, _ = read_population_csv(
        write_csv(tmp_path, "fips,pop\n09001,10\n"), code_column="fips", value_column="pop", code_width=5
    )
    assert counties == {"09001": 10.0}


def test_problem_rejects_unknown_action() -> None:
    with pytest.raises(ValueError):
        Problem(0, None, None, "ignored", "x")
