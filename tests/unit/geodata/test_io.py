"""Reading every supported format, checked against independent readers (GDAL via pyogrio, raw JSON)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import orjson
import pyogrio
import pytest
import shapely

from geodata import GeodataError, UnitSet, prepare_units, read_features
from geodata.io import decode_topojson

pytestmark = pytest.mark.shared_data

CT_FIXTURE = "fixtures/fixture_ct_zcta2010_covsimp0p001_pop.geojson"
MARKET = "zcta/krunkled_2020_topojson/market_18_m3.topojson"


def test_geojson_fixture(data_dir: Path) -> None:
    path = data_dir / CT_FIXTURE
    raw = read_features(path)
    assert raw.driver == "GeoJSON"
    assert raw.crs == "EPSG:4269"
    assert raw.parse_problems == []
    doc = json.loads(path.read_text())
    assert len(raw.frame) == len(doc["features"]) == 282
    # our own parser gives the same geometries and properties as GDAL
    gdal = pyogrio.read_dataframe(path)
    assert shapely.equals_exact(raw.frame.geometry.to_numpy(), gdal.geometry.to_numpy(), 0).all()
    assert raw.frame["zcta"].tolist() == gdal["zcta"].tolist()

    units = prepare_units(raw, level="zcta")
    assert units.problems == []
    frame = units.frame
    # the 7-digit state+ZCTA GEOID10 must not be taken for the code
    assert units.code_field == "zcta"
    assert frame["code"].tolist() == [f["properties"]["zcta"] for f in doc["features"]]
    assert all(isinstance(c, str) and len(c) == 5 and c.isdigit() for c in frame["code"])
    assert units.population_field == "pop2010"
    assert frame["population"].tolist() == [float(f["properties"]["pop2010"]) for f in doc["features"]]
    assert frame.crs.to_epsg() == 4326
    assert (shapely.get_type_id(frame.geometry.to_numpy()) == 6).all()
    assert frame.geometry.is_valid.all()
    assert set(frame["state"]) == {"09"}
    # attributes keep the rest of the properties and are JSON-safe
    assert frame["attributes"][0]["GEOID10"] == "09" + frame["code"][0]
    orjson.dumps(frame["attributes"].tolist())
    # equal-area km2 agrees with the Census land + water area (the fixture is only lightly simplified)
    census_km2 = np.array(
        [(f["properties"]["ALAND10"] + f["properties"]["AWATER10"]) / 1e6 for f in doc["features"]]
    )
    ratio = frame["area_km2"].to_numpy() / census_km2
    assert 0.97 < np.median(ratio) < 1.03
    assert abs(frame["area_km2"].sum() / census_km2.sum() - 1) < 0.02
    # the centroid is the true centroid, in lon/lat
    centroids = frame["centroid"].to_numpy()
    assert shapely.equals_exact(centroids, shapely.centroid(frame.geometry.to_numpy()), 1e-12).all()
    x, y = shapely.get_x(centroids), shapely.get_y(centroids)
    assert ((x > -73.8) & (x < -71.7) & (y > 40.9) & (y < 42.1)).all()


def _topology_feature_count(path: Path) -> tuple[int, list[str]]:
    topo = orjson.loads(path.read_bytes())
    geoms = [g for obj in topo["objects"].values() for g in obj["geometries"]]
    return len(geoms), [g["properties"]["ZCTA5CE20"] for g in geoms]


def test_topojson_market_repairs(data_dir: Path) -> None:
    path = data_dir / MARKET
    n_features, codes = _topology_feature_count(path)
    raw = read_features(path)
    assert raw.driver == "TopoJSON"
    assert len(raw.frame) == n_features
    units = prepare_units(raw, level="zcta")
    assert len(units.frame) == n_features
    assert units.frame["code"].tolist() == codes
    assert units.frame.geometry.is_valid.all()
    assert (shapely.get_type_id(units.frame.geometry.to_numpy()) == 6).all()

    repaired = [p for p in units.problems if p.action == "repaired"]
    invalid_in = np.flatnonzero(~shapely.is_valid(raw.frame.geometry.to_numpy()))
    assert len(invalid_in) > 0, "this market is known to contain self-intersections from quantisation"
    assert [p.index for p in repaired] == invalid_in.tolist()
    for p in repaired:
        assert p.index is not None and p.field == "geometry"
        assert p.code == codes[p.index]
        assert "make_valid" in p.reason
        assert "intersection" in p.reason.lower()
    # repaired geometries keep (almost) all of the original area
    before = shapely.area(raw.frame.geometry.to_numpy()[invalid_in])
    after = shapely.area(units.frame.geometry.to_numpy()[invalid_in])
    assert np.all(after > 0.5 * np.abs(before))

    with pytest.raises(GeodataError) as exc:
        prepare_units(raw, level="zcta", strict=True)
    assert {p.index for p in exc.value.rejected} == set(invalid_in.tolist())


def test_topojson_own_decoder_matches_gdal(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / MARKET
    gdal = read_features(path)
    own = decode_topojson(orjson.loads(path.read_bytes()), source=str(path))
    assert own.driver == "TopoJSON"
    assert own.frame["ZCTA5CE20"].tolist() == gdal.frame["ZCTA5CE20"].tolist()
    a = shapely.normalize(gdal.frame.geometry.to_numpy())
    b = shapely.normalize(own.frame.geometry.to_numpy())
    assert shapely.equals_exact(a, b, 1e-9).all()
    # a .json file whose top-level type is Topology is read as TopoJSON
    as_json = tmp_path / "market.json"
    as_json.write_bytes(path.read_bytes())
    raw = read_features(as_json)
    assert raw.driver == "TopoJSON"
    assert len(raw.frame) == len(gdal.frame)


def _write_fixture(data_dir: Path, out: Path, driver: str, crs: str | None = None) -> UnitSet:
    raw = read_features(data_dir / CT_FIXTURE)
    reference = prepare_units(raw, level="zcta")
    frame = raw.frame if crs is None else raw.frame.to_crs(crs)
    pyogrio.write_dataframe(frame, out, driver=driver)
    return reference


def _assert_same_units(got: UnitSet, reference: UnitSet, rel: float = 1e-9) -> None:
    assert got.frame["code"].tolist() == reference.frame["code"].tolist()
    assert got.frame["population"].tolist() == reference.frame["population"].tolist()
    np.testing.assert_allclose(got.frame["area_km2"], reference.frame["area_km2"], rtol=rel)
    assert got.frame.geometry.is_valid.all()


def test_zipped_shapefile(data_dir: Path, tmp_path: Path) -> None:
    shp = tmp_path / "ct_zcta.shp"
    reference = _write_fixture(data_dir, shp, "ESRI Shapefile")
    archive = tmp_path / "ct_zcta.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in sorted(tmp_path.glob("ct_zcta.*")):
            if part.suffix != ".zip":
                zf.write(part, f"shapes/{part.name}")
        zf.writestr("__MACOSX/shapes/._ct_zcta.shp", b"junk")
    raw = read_features(archive)
    assert raw.driver == "ESRI Shapefile"
    assert raw.crs == "EPSG:4269"
    _assert_same_units(prepare_units(raw, level="zcta"), reference)
    # the plain .shp reads the same
    _assert_same_units(prepare_units(read_features(shp), level="zcta"), reference)


def test_geopackage_and_reprojection(data_dir: Path, tmp_path: Path) -> None:
    gpkg = tmp_path / "ct.gpkg"
    reference = _write_fixture(data_dir, gpkg, "GPKG")
    raw = read_features(gpkg)
    assert raw.driver == "GPKG"
    _assert_same_units(prepare_units(raw, level="zcta"), reference)
    # a projected layer is reprojected to EPSG:4326
    projected = tmp_path / "ct_utm.gpkg"
    _write_fixture(data_dir, projected, "GPKG", crs="EPSG:26918")
    raw = read_features(projected)
    assert raw.crs == "EPSG:26918"
    units = prepare_units(raw, level="zcta", allow_rejects=True)
    assert units.frame.crs.to_epsg() == 4326
    assert all(p.action == "repaired" for p in units.problems)
    _assert_same_units(units, reference, rel=1e-4)
    np.testing.assert_allclose(
        shapely.get_x(units.frame["centroid"].to_numpy()),
        shapely.get_x(reference.frame["centroid"].to_numpy()),
        atol=1e-4,
    )


def test_unreadable_files(tmp_path: Path) -> None:
    cases = {
        tmp_path / "missing.geojson": "no such file",
        tmp_path / "broken.geojson": "invalid JSON",
        tmp_path / "table.csv": "unsupported file type",
        tmp_path / "empty.zip": "no .shp",
        tmp_path / "notzip.zip": "zip",
        tmp_path / "list.geojson": "expected a GeoJSON object",
    }
    (tmp_path / "broken.geojson").write_text('{"type": "FeatureCollection", "features": [')
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    (tmp_path / "notzip.zip").write_bytes(b"not a zip file")
    (tmp_path / "list.geojson").write_text("[1, 2]")
    for path, words in cases.items():
        with pytest.raises(GeodataError) as exc:
            read_features(path)
        assert len(exc.value.problems) == 1
        problem = exc.value.problems[0]
        assert problem.index is None
        assert problem.action == "rejected"
        assert str(path) in problem.reason
        assert words in problem.reason
