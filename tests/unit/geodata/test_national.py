"""The national simplified ZCTA instance (32,989 units): speed and agreement with the published pairs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from geodata import UnitSet, build_adjacency

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

NATIONAL_CSV = "zcta/us_zcta2010_austindevs_simplified_merged_pop_adjacency_dwithin0.003deg.csv"
PairReader = Callable[[Path], set[tuple[str, str]]]


def test_national_adjacency_speed_and_agreement(
    national_units: UnitSet, data_dir: Path, pair_csv: PairReader
) -> None:
    frame = national_units.frame
    assert len(frame) == 32_989
    assert national_units.problems == []
    assert frame["population"].sum() == pytest.approx(308.7e6, rel=1e-3)
    start = time.perf_counter()
    adj = build_adjacency(frame.geometry, tolerance=0.003)
    elapsed = time.perf_counter() - start
    assert elapsed < 60, f"national adjacency took {elapsed:.1f} s"
    ours = adj.pairs(frame["code"])
    reference = pair_csv(data_dir / NATIONAL_CSV)
    common = len(ours & reference)
    precision, recall = common / len(ours), common / len(reference)
    print(
        f"national adjacency: {elapsed:.1f} s, {len(ours)} pairs, "
        f"precision {precision:.6f}, recall {recall:.6f}"
    )
    assert precision > 0.999 and recall > 0.999
    # README: 185 components (146 single ZCTAs); bridges join them into one
    assert adj.n_components_before_bridges == 185
    assert int(adj.is_bridge.sum()) == 184
    assert adj.n_components(len(frame)) == 1
    assert (adj.bridge_distance_m[adj.is_bridge] > 0).all()


def test_tolerance_adjacency_on_a_subset(
    national_units: UnitSet, data_dir: Path, pair_csv: PairReader
) -> None:
    frame = national_units.frame
    subset = frame[frame["state"].isin(["09", "44", "25"])].reset_index(drop=True)  # CT, RI, MA
    assert 800 < len(subset) < 1000
    codes = set(subset["code"])
    reference = {pair for pair in pair_csv(data_dir / NATIONAL_CSV) if pair[0] in codes and pair[1] in codes}
    adj = build_adjacency(subset.geometry, tolerance=0.003)
    assert adj.pairs(subset["code"]) == reference
    # neighbours of this simplified data often leave gaps: exact intersection misses some pairs and
    # finds nothing the tolerance does not
    exact = build_adjacency(subset.geometry, bridges=False)
    assert len(exact) < 0.9 * len(reference)
    assert np.isin(exact.a * len(subset) + exact.b, adj.a * len(subset) + adj.b).all()
