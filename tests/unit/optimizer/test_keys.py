"""The sort-based key helpers give what numpy's set functions give."""

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
