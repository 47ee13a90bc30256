"""The benchmark harness: a peer's territories get the reps that score them best on our objective."""

from __future__ import annotations

import itertools

import numpy as np

from bench.optimizer.run import matched_to_homes
from optimizer import Options, Problem, Rep, check


def test_a_peer_plan_is_matched_to_the_homes_at_least_total_distance() -> None:
    # a 4 x 4 grid cut into four 2 x 2 blocks; the four homes lie in the blocks in another order
    edges = [(r * 4 + c, r * 4 + c + 1) for r in range(4) for c in range(3)]
    edges += [(r * 4 + c, (r + 1) * 4 + c) for r in range(3) for c in range(4)]
    lonlat = np.array([(c * 0.1, r * 0.1) for r in range(4) for c in range(4)])
    w = np.arange(1.0, 17.0)
    reps = [Rep(f"r{i}", h) for i, h in enumerate((15, 0, 10, 5))]
    p = Problem([f"u{i}" for i in range(16)], {"workload": w}, lonlat, np.array(edges), reps, Options())
    parts = [10 * ((u // 4) // 2 * 2 + (u % 4) // 2) + 7 for u in range(16)]  # peer labels: 7, 17, 27, 37

    matched = matched_to_homes(p, parts)

    # same territories: two units share a rep exactly when the peer put them together
    for a, b in itertools.combinations(range(16), 2):
        assert (matched[a] == matched[b]) == (parts[a] == parts[b])
    # and no other way of giving the four territories to the four reps is cheaper
    labels = sorted(set(parts))
    best = min(
        check(p, [perm[labels.index(x)] for x in parts], check_balance=False).weighted_distance
        for perm in itertools.permutations([r.id for r in reps])
    )
    got = check(p, matched, check_balance=False).weighted_distance
    assert got == best
    # each block got the rep whose home lies in it
    assert {matched[u] for u in (0, 1, 4, 5)} == {"r1"} and {matched[u] for u in (10, 11, 14, 15)} == {"r0"}
