"""The sort-based key helpers and the matrix distance give what numpy and the haversine formula give."""

from __future__ import annotations

import numpy as np

from optimizer.keys import member_of, unique_sorted


def test_unique_sorted_and_member_of_agree_with_numpy() -> None:
    rng = np.random.default_rng(3)
    for size in (0, 1, 2, 5, 1000):
        keys = rng.integers(0, 50, size=size).astype(np.int64)
        uniq = unique_sorted(keys)
        assert uniq.dtype == keys.dtype and np.array_equal(uniq, np.unique(keys))
        for set_size in (0, 1, 7, 40):
            chosen = unique_sorted(rng.integers(0, 60, size=set_size).astype(np.int64))
            assert np.array_equal(member_of(keys, chosen), np.isin(keys, chosen))
    # keys beyond both ends of the set
    assert member_of(np.array([-5, 3, 99]), np.array([3])).tolist() == [False, True, False]


def test_distance_matrix_matches_haversine_near_and_far() -> None:
    from optimizer.geo import NEAR_KM, distance_matrix_km, haversine_km

    rng = np.random.default_rng(5)
    a = np.column_stack([rng.uniform(-160, -67, 400), rng.uniform(18, 65, 400)])
    # the same points, points metres away, Honolulu
    b = np.vstack([a[:20], a[20:40] + 1e-4, [[-157.8, 21.3]]])
    exact = haversine_km(a[:, None, :], b[None, :, :])
    fast = distance_matrix_km(a, b)
    assert fast.shape == (400, 41)
    assert (exact < NEAR_KM).any() and (exact > 3000).any()
    assert np.abs(fast - exact).max() < 1e-9
    assert np.all(fast[np.arange(20), np.arange(20)] == 0.0)
