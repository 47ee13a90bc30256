"""Centre drift: a move's effect on the other members' distances through the centroid it shifts."""

from __future__ import annotations

import numpy as np

from optimizer import Options, Problem, Rep, check, solve
from optimizer.centres import recentre
from optimizer.geo import EARTH_RADIUS_KM, centre_drift
from optimizer.local_search import State

from .conftest import Raw


def _distance_sum(xyz: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """Weighted great-circle km of points to their own weighted spherical centroid (computed here, not by the
    solver), and that centroid."""
    c = (w[:, None] * xyz).sum(0)
    c = c / np.linalg.norm(c)
    return float((w * EARTH_RADIUS_KM * np.arccos(np.clip(xyz @ c, -1.0, 1.0))).sum()), c


def test_drift_predicts_how_the_members_distances_move(ct: Raw) -> None:
    """On a lopsided CT territory (its centroid is not its geometric median), adding or removing a light unit
    changes the other members' distance sum by about -/+ w g.x; ignoring the drift predicts no change."""
    p = Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, [Rep("a")], Options())
    xyz = p.unit_xyz
    w = ct.pop.astype(float)
    lon = ct.lonlat[:, 0]
    members = np.flatnonzero(lon < np.quantile(lon, 0.3))  # western CT: lopsided towards its cities
    outsider = int(np.flatnonzero(lon > np.quantile(lon, 0.5))[0])
    before, c = _distance_sum(xyz[members], w[members])
    g = centre_drift(xyz[members], w[members], c)
    assert np.linalg.norm(g) > 1.0  # km: the centroid is not the median here
    for u, sign in [(outsider, 1.0), (int(members[len(members) // 2]), -1.0)]:
        wu = max(w[u], 1.0) * 1e-3  # a light unit: the first-order term dominates
        xs = np.vstack([xyz[members], xyz[[u]]])
        ws = np.concatenate([w[members], [sign * wu]])
        c2 = (ws[:, None] * xs).sum(0)
        c2 = c2 / np.linalg.norm(c2)
        others = float((w[members] * EARTH_RADIUS_KM * np.arccos(np.clip(xyz[members] @ c2, -1, 1))).sum())
        actual = others - before
        predicted = -sign * wu * float(g @ xyz[u])
        assert abs(actual) > 0
        assert abs(actual - predicted) < 0.05 * abs(actual)


def test_recentring_never_raises_the_centre_distance(ct: Raw) -> None:
    """Re-centring with drift-priced moves leaves a plan that the independent checker finds valid and no
    farther from its own centroids than before."""
    reps = [Rep(f"r{i}") for i in range(5)]
    opts = Options(tolerance=0.05, mode="heuristic", seed=3, recentre_rounds=0, window_rounds=0, chain_work=0)
    p = Problem(ct.ids, {"workload": ct.pop}, ct.lonlat, ct.edges, reps, opts, ct.is_bridge)
    sol = solve(p)
    start = check(p, sol.assignment)
    assert start.ok, start.errors
    pos = {r.id: i for i, r in enumerate(reps)}
    owner = np.array([pos[str(sol.assignment[u])] for u in p.unit_ids])
    homes_idx = np.array([p.unit_ids.index(sol.details["homes"][r.id]) for r in reps])
    homes = p.centroids[homes_idx].copy()
    st = State(p, owner, homes, np.full(p.n, -1, dtype=np.int64))
    info = recentre(p, st, homes, homes_idx, np.arange(p.k), 12)
    after = check(p, [reps[k].id for k in st.owner_array().tolist()])
    assert after.ok, after.errors
    assert info["moves"] > 0
    assert after.avg_distance_to_centre_km < start.avg_distance_to_centre_km
    assert st.drift is not None and np.abs(np.array(st.drift)).max() > 0
