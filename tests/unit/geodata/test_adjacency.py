"""Adjacency against the published pair lists, plus geometric checks on hand-made shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np
import pyproj
import pytest
import shapely

from geodata import Adjacency, GeodataError, UnitSet, build_adjacency, prepare_units, read_features

CT_FULLRES = "zcta/opendatade_2010_fullres/ct_connecticut_zip_codes_geo.min.json"
CT_FIXTURE = "fixtures/fixture_ct_zcta2010_covsimp0p001_pop"
RI_FIXTURE = "fixtures/fixture_ri_zcta2010_covsimp0p001_pop"
PairReader = Callable[[Path], set[tuple[str, str]]]
GEOD = pyproj.Geod(ellps="WGS84")


def _assert_well_formed(adj: Adjacency, n: int) -> None:
    assert adj.a.dtype == np.int64 and adj.b.dtype == np.int64
    assert adj.shared_border_m.dtype == np.float64 and adj.bridge_distance_m.dtype == np.float64
    assert adj.is_bridge.dtype == np.bool_
    assert (
        len(
            {len(adj.a), len(adj.b), len(adj.shared_border_m), len(adj.is_bridge), len(adj.bridge_distance_m)}
        )
        == 1
    )
    assert (adj.a < adj.b).all()
    assert ((adj.a >= 0) & (adj.b < n)).all()
    keys = adj.a * n + adj.b
    assert (np.diff(keys) > 0).all(), "pairs must be unique and sorted lexicographically"
    assert (adj.shared_border_m[adj.is_bridge] == 0).all()
    assert (adj.bridge_distance_m[~adj.is_bridge] == 0).all()


def _components(n: int, adj: Adjacency, include_bridges: bool) -> int:
    g = nx.Graph()
    g.add_nodes_from(range(n))
    mask = np.ones(len(adj.a), bool) if include_bridges else ~adj.is_bridge
    g.add_edges_from(zip(adj.a[mask].tolist(), adj.b[mask].tolist(), strict=True))
    return nx.number_connected_components(g)


@pytest.mark.shared_data
def test_ct_full_resolution_queen_and_rook(data_dir: Path, pair_csv: PairReader) -> None:
    units = prepare_units(read_features(data_dir / CT_FULLRES), level="zcta")
    assert len(units.frame) == 282
    geoms = units.frame.geometry.to_numpy()
    codes = units.frame["code"].tolist()
    queen = build_adjacency(geoms, contiguity="queen")
    _assert_well_formed(queen, len(codes))
    assert len(queen) == 759
    assert not queen.is_bridge.any() and queen.n_components_before_bridges == 1
    assert queen.pairs(codes) == pair_csv(data_dir / f"{CT_FIXTURE}_adjacency_touches.csv")
    rook = build_adjacency(geoms, contiguity="rook")
    assert rook.pairs(codes) == pair_csv(data_dir / f"{CT_FIXTURE}_adjacency_rook.csv")
    assert len(rook) == 742
    # rook pairs have a positive border, the 17 corner-only queen pairs have none
    assert (rook.shared_border_m > 0).all()
    rook_keys = set(zip(rook.a.tolist(), rook.b.tolist(), strict=True))
    corner = np.array(
        [(i, j) not in rook_keys for i, j in zip(queen.a.tolist(), queen.b.tolist(), strict=True)]
    )
    assert corner.sum() == 17
    assert (queen.shared_border_m[corner] == 0).all()
    # borders cannot exceed a unit's perimeter (independent geodesic perimeter from pyproj)
    totals = np.bincount(rook.a, rook.shared_border_m, len(codes)) + np.bincount(
        rook.b, rook.shared_border_m, len(codes)
    )
    perimeters = np.array(
        [
            sum(GEOD.geometry_length(r) for p in shapely.get_parts(g) for r in shapely.get_rings(p))
            for g in geoms
        ]
    )
    assert (totals <= perimeters * (1 + 1e-9)).all()
    # a border measured here agrees with pyproj's geodesic length of the shared line
    k = int(np.argmax(rook.shared_border_m))
    line = shapely.intersection(geoms[rook.a[k]].boundary, geoms[rook.b[k]].boundary)
    assert rook.shared_border_m[k] == pytest.approx(GEOD.geometry_length(line), rel=1e-6)


@pytest.mark.shared_data
def test_ct_fixture_rook(ct_units: UnitSet, data_dir: Path, pair_csv: PairReader) -> None:
    codes = ct_units.frame["code"].tolist()
    rook = build_adjacency(ct_units.frame.geometry, contiguity="rook")
    assert len(rook) == 742
    assert rook.pairs(codes) == pair_csv(data_dir / f"{CT_FIXTURE}_adjacency_rook.csv")
    queen = build_adjacency(ct_units.frame.geometry)
    assert queen.pairs(codes) == pair_csv(data_dir / f"{CT_FIXTURE}_adjacency_touches.csv")


@pytest.mark.shared_data
def test_ri_islands_are_bridged(ri_units: UnitSet, data_dir: Path, pair_csv: PairReader) -> None:
    geoms = ri_units.frame.geometry.to_numpy()
    codes = ri_units.frame["code"].tolist()
    n = len(codes)
    calls: list[tuple[int, int]] = []
    adj = build_adjacency(geoms, progress=lambda done, total: calls.append((done, total)))
    _assert_well_formed(adj, n)
    assert calls and calls[-1][0] == calls[-1][1]
    assert adj.n_components_before_bridges == 4
    assert _components(n, adj, include_bridges=False) == 4
    assert _components(n, adj, include_bridges=True) == 1
    assert int(adj.is_bridge.sum()) == 3
    assert adj.pairs(codes) == pair_csv(data_dir / f"{RI_FIXTURE}_adjacency_touches.csv")
    bridges = adj.pairs(codes, include_bridges=True) - adj.pairs(codes)
    assert len(bridges) == 3
    assert any("02807" in pair for pair in bridges), "Block Island must be bridged to the mainland"
    # bridge lengths are the geodesic length of the shortest line between the two units
    for i, j, gap in zip(
        adj.a[adj.is_bridge], adj.b[adj.is_bridge], adj.bridge_distance_m[adj.is_bridge], strict=True
    ):
        line = shapely.shortest_line(geoms[i], geoms[j])
        assert gap == pytest.approx(GEOD.geometry_length(line), rel=1e-9)
        assert 0 < gap < 40_000
        # ... and no unit of another component is closer to unit i's component than the chosen one
    no_bridges = build_adjacency(geoms, bridges=False)
    assert not no_bridges.is_bridge.any()
    assert no_bridges.pairs(codes) == adj.pairs(codes)


@pytest.mark.shared_data
def test_deterministic_and_order_independent(ri_units: UnitSet) -> None:
    geoms = ri_units.frame.geometry.to_numpy()
    codes = np.array(ri_units.frame["code"].tolist())
    first = build_adjacency(geoms)
    second = build_adjacency(list(geoms))
    for name in ("a", "b", "shared_border_m", "is_bridge", "bridge_distance_m"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    perm = np.random.default_rng(3).permutation(len(geoms))
    shuffled = build_adjacency(geoms[perm])
    assert shuffled.pairs(codes[perm], include_bridges=True) == first.pairs(codes, include_bridges=True)


def _square(x: float, y: float, size: float = 0.125) -> shapely.Polygon:
    return shapely.box(x, y, x + size, y + size)


# coordinates are binary fractions, so that touching squares touch exactly
SIDE, GAP, TOL = 0.125, 0.0078125, 0.015625


def test_tolerance_on_hand_made_squares() -> None:
    # A and B leave a GAP; C touches B only at a corner; D is far away
    a, b = _square(0.0, 0.0), _square(SIDE + GAP, 0.0)
    c = _square(2 * SIDE + GAP, SIDE)
    d = _square(2.0, 2.0)
    geoms = [a, b, c, d]

    exact = build_adjacency(geoms, bridges=False)
    assert set(zip(exact.a.tolist(), exact.b.tolist(), strict=True)) == {(1, 2)}
    assert exact.shared_border_m.tolist() == [0.0]
    assert exact.n_components_before_bridges == 3
    assert len(build_adjacency(geoms, contiguity="rook", bridges=False)) == 0

    loose = build_adjacency(geoms, tolerance=TOL, bridges=False)
    assert set(zip(loose.a.tolist(), loose.b.tolist(), strict=True)) == {(0, 1), (1, 2)}
    # the A-B border is the side (plus the short stretches within the tolerance at the corners)
    side_m = GEOD.line_length([SIDE, SIDE], [0.0, SIDE])
    ab = loose.shared_border_m[0]
    assert side_m <= ab <= side_m * (1 + 2 * TOL / SIDE) * 1.01
    rook = build_adjacency(geoms, contiguity="rook", tolerance=TOL, bridges=False)
    assert set(zip(rook.a.tolist(), rook.b.tolist(), strict=True)) == {(0, 1)}

    bridged = build_adjacency(geoms, tolerance=TOL)
    assert bridged.n_components_before_bridges == 2
    assert int(bridged.is_bridge.sum()) == 1
    k = int(np.flatnonzero(bridged.is_bridge)[0])
    assert (bridged.a[k], bridged.b[k]) == (2, 3)  # C is the unit nearest to D
    expected = GEOD.line_length([3 * SIDE + GAP, 2.0], [2 * SIDE, 2.0])
    assert bridged.bridge_distance_m[k] == pytest.approx(expected, rel=1e-9)


def test_bridges_join_many_components_to_nearest() -> None:
    # a row of islands with growing gaps: the minimum spanning chain links neighbours
    xs = [0.0, 0.25, 0.625, 1.125, 1.75]
    geoms = [_square(x, 0.0) for x in xs]
    adj = build_adjacency(geoms)
    assert adj.n_components_before_bridges == 5
    assert adj.is_bridge.all()
    assert list(zip(adj.a.tolist(), adj.b.tolist(), strict=True)) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert (np.diff(adj.bridge_distance_m) > 0).all()


def test_bad_arguments() -> None:
    with pytest.raises(GeodataError, match="contiguity"):
        build_adjacency([_square(0, 0)], contiguity="bishop")
    with pytest.raises(GeodataError, match="tolerance"):
        build_adjacency([_square(0, 0)], tolerance=-1)
    with pytest.raises(GeodataError, match="missing or empty"):
        build_adjacency([_square(0, 0), None])
    empty = build_adjacency([])
    assert len(empty) == 0 and empty.n_components_before_bridges == 0
    single = build_adjacency([_square(0, 0)])
    assert len(single) == 0 and single.n_components_before_bridges == 1


@pytest.mark.shared_data
def test_repaired_market_matches_published_pairs(data_dir: Path, pair_csv: PairReader) -> None:
    path = data_dir / "zcta/zcta2020_krunkled_market_376_m0_pop.geojson"
    units = prepare_units(read_features(path), level="zcta")
    assert units.population_field == "pop2020"
    adj = build_adjacency(units.frame.geometry)
    reference = pair_csv(path.with_name(path.stem + "_adjacency_intersects.csv"))
    assert adj.pairs(units.frame["code"]) == reference
    assert adj.n_components_before_bridges == 3
    assert adj.n_components(len(units.frame)) == 1


@pytest.mark.shared_data
def test_dirty_state_file_is_repaired(data_dir: Path) -> None:
    path = data_dir / "zcta/austindevs_2010_simplified/ri_rhode_island_zip_codes_geo.min.json"
    raw = read_features(path)
    invalid = np.flatnonzero(~shapely.is_valid(raw.frame.geometry.to_numpy()))
    assert len(invalid) > 0
    units = prepare_units(raw, level="zcta")
    assert len(units.frame) == len(raw.frame)
    assert [p.index for p in units.problems] == invalid.tolist()
    assert all(p.action == "repaired" for p in units.problems)
    assert units.frame.geometry.is_valid.all()
