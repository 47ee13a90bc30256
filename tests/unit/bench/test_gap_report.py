"""The benchmark's diagnostic helpers: pendant regions (gap report) and bridges to the largest component."""

from __future__ import annotations

import networkx as nx
import numpy as np

from bench.optimizer.gap_report import pendant_regions
from bench.optimizer.instances import bridge_edges
from optimizer import Options, Problem, Rep


def _mainland_and_chain() -> tuple[Problem, nx.Graph]:
    """A 6 x 6 grid (unit 0 heaviest) and a 4-unit chain 36-37-38-39 hanging off grid unit 5."""
    edges = [(r * 6 + c, r * 6 + c + 1) for r in range(6) for c in range(5)]
    edges += [(r * 6 + c, (r + 1) * 6 + c) for r in range(5) for c in range(6)]
    edges += [(5, 36), (36, 37), (37, 38), (38, 39)]
    w = np.full(40, 2.0)
    w[0], w[36:] = 20.0, 5.0  # total 110: five targets of 22, the chain 20 (0.91 of one)
    grid = [(c * 0.1, r * 0.1) for r in range(6) for c in range(6)]
    lonlat = np.array(grid + [(1.0 + i, 0.0) for i in range(4)])
    reps = [Rep(f"r{i}", h) for i, h in enumerate((0, 14, 21, 28, 35))]
    p = Problem([f"u{i}" for i in range(40)], {"workload": w}, lonlat, np.array(edges), reps, Options())
    return p, nx.Graph(edges)


def test_pendant_regions_are_what_removing_the_cut_unit_separates() -> None:
    p, g = _mainland_and_chain()
    regions = {p.unit_ids[r.cut]: r for r in pendant_regions(p)}
    # at least a quarter of a target (5.5): behind 5 (20), 36 (15) and 37 (10); behind 38 only 5
    assert sorted(regions) == ["u36", "u37", "u5"]
    tgt = float(p.workload.sum()) / p.k
    for cut, r in regions.items():
        h = g.copy()
        h.remove_node(int(cut[1:]))
        away = [c for c in nx.connected_components(h) if 0 not in c]
        assert len(away) == 1 and set(r.units.tolist()) == away[0]
        assert r.workload == p.workload[r.units].sum() and r.homes == 0
        # a territory needs 0.98 targets: one wholly inside would need more than the region holds
        assert r.workload < 0.98 * tgt and r.inside == (0, 0)


def test_bridges_to_core_link_every_detached_component_to_the_largest() -> None:
    # a 3-unit mainland, an island near it and a second island nearer the first island than the mainland
    lonlat = np.array([(0.0, 0.0), (0.1, 0.0), (0.2, 0.0), (1.0, 0.0), (1.5, 0.0)])
    edges = np.array([(0, 1), (1, 2)])
    forest = {tuple(e) for e in bridge_edges(lonlat, edges).tolist()}
    assert forest == {(2, 3), (3, 4)}
    both = {tuple(e) for e in bridge_edges(lonlat, edges, to_core=True).tolist()}
    assert both == forest | {(2, 4)}


def test_forced_share_splits_the_centre_metric_at_the_largest_cut_off_region() -> None:
    from bench.optimizer.forced_share import largest_region, split

    p, _ = _mainland_and_chain()
    region = largest_region(p, None)
    assert p.unit_ids[region.cut] == "u5" and sorted(region.units.tolist()) == [36, 37, 38, 39]
    assert sorted(largest_region(p, "u37").units.tolist()) == [38, 39]
    owner = np.array([i // 8 for i in range(36)] + [4, 4, 3, 3])  # rows of the grid, the chain to 4 and 3
    r = split(p, owner, region)
    assert r["touching"] == 2
    w = p.workload
    others = ~np.isin(owner, [3, 4])
    # the two parts add up to the whole metric
    assert np.isclose(r["touching_km"] + r["others_km"] * w[others].sum() / w.sum(), r["metric"])
    # the chain in one territory: one territory touches the region
    owner2 = owner.copy()
    owner2[36:] = 4
    assert split(p, owner2, region)["touching"] == 1


def test_crossing_path_bound_holds_for_every_plan_whose_territory_holds_the_path() -> None:
    """On a line of 8 units, every plan in which the right-hand rep's territory reaches the left end and
    unit 3 costs at least the Lagrangian value plus the path excess, and the path adds something."""
    from bench.optimizer.cut_roles import crossing_path_bound, restricted_transport
    from optimizer.geo import haversine_km

    n = 8
    lonlat = np.array([(0.1 * i, 0.0) for i in range(n)])
    reps = [Rep("left", 0), Rep("right", n - 1)]
    p = Problem(
        [f"u{i}" for i in range(n)],
        {"workload": np.ones(n)},
        lonlat,
        np.array([(i, i + 1) for i in range(n - 1)]),
        reps,
        Options(tolerance=0.9),
    )
    homes = lonlat[[0, n - 1]]
    dist = haversine_km(lonlat[:, None, :], homes[None, :, :])
    res = restricted_transport(p, homes, None)
    none = np.zeros(0, dtype=np.int64)
    value, path = crossing_path_bound(p, dist, none, res.prices, 1, np.array([0]), 3)
    assert path > 0 and value <= res.flow_value + 1e-6
    lo, hi = p.bounds
    costs = []
    for split in range(4, n):  # "right" owns units 0..split-1 (so 0..3), "left" the rest
        owner = np.array([1] * split + [0] * (n - split))
        load = np.bincount(owner, minlength=2)
        if np.all(load >= lo[:, 0] - 1e-9) and np.all(load <= hi[:, 0] + 1e-9):
            costs.append(float(dist[np.arange(n), owner].sum()))
    assert costs and min(costs) >= value + path - 1e-6


def _brute_force_ring(
    edges: list[tuple[int, int]], w: np.ndarray, ring: list[int], inner: int, outer: int, cap: float
) -> float:
    """Largest connected S in ``ring`` without ``inner``, at most ``cap``, whose complement in the ring
    stays connected to ``outer`` (every subset tried)."""
    g = nx.Graph(edges)
    best = 0.0
    others = [u for u in ring if u != inner]
    for mask in range(1, 1 << len(others)):
        s = {u for i, u in enumerate(others) if mask >> i & 1}
        load = float(w[list(s)].sum())
        if load > cap or load <= best or not nx.is_connected(g.subgraph(s)):
            continue
        if nx.is_connected(g.subgraph(set(ring) - s | {outer})):
            best = load
    return best


def test_largest_ring_territory_matches_every_subset_of_a_small_ring() -> None:
    """A 3 x 4 grid between the cuts (the inner cut at a corner, the outer cut beside the opposite
    corner): CP-SAT's largest territory wholly in the ring equals the best of all subsets, for several
    workloads and caps, and a cut through the middle row makes it smaller."""
    from bench.optimizer.cut_roles import largest_ring_territory

    grid = [(r * 4 + c, r * 4 + c + 1) for r in range(3) for c in range(3)]
    grid += [(r * 4 + c, (r + 1) * 4 + c) for r in range(2) for c in range(4)]
    rng = np.random.default_rng(7)
    seen = set()
    for edges in (grid + [(11, 12)], [e for e in grid if e not in {(4, 5), (5, 6), (6, 7)}] + [(11, 12)]):
        for _ in range(3):
            w = rng.integers(1, 9, size=13).astype(float)
            lonlat = np.array([(0.1 * (i % 4), 0.1 * (i // 4)) for i in range(13)])
            p = Problem([f"u{i}" for i in range(13)], {"workload": w}, lonlat, np.array(edges), [Rep("a", 0)])
            cap = float(w[:12].sum()) * 0.6
            value, proven = largest_ring_territory(p, np.arange(12), 0, 12, cap)
            expected = _brute_force_ring(edges, w, list(range(12)), 0, 12, cap)
            assert proven and value == expected
            seen.add(value)
    assert len(seen) > 1
