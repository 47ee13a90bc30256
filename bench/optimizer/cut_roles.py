"""How much a bound that knows which reps lie inside a cut-off region could add (an offline measurement).

Example::

    .venv/bin/python -m bench.optimizer.cut_roles --k 500 --seed 3

A territory is connected, so in every contiguous plan a region that one unit cuts off (Hawaii and Alaska
behind the Washington bridge at national K=500) holds between ``fewest`` and ``most`` territories wholly
(``J``) and at most one more through its cut (``s``); every other rep has no unit inside. The
transportation relaxation restricted to one such choice of roles (``J`` only inside, ``s`` anywhere, the
others only outside) is a relaxation of every plan with those roles, so the least of it over *all* choices
is a valid bound. This script does not compute that bound: it solves the restricted relaxation for the
choices that the region's own reps make (``J`` among the reps with a home inside, ``s`` among the others of
them and the reps nearest the cut) and prints the least. The bound over all choices is at most that least
value, so it measures how much such a bound could add at best.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from optimizer import Problem
from optimizer.bound import transport
from optimizer.geo import haversine_km

from .gap_report import pendant_regions
from .run import build


def relaxation_value(
    problem: Problem, homes: np.ndarray, banned: np.ndarray | None = None
) -> tuple[float, float]:
    """(flow value, people left on the hub) of the relaxation on the workload band, without the ``banned``
    arcs (keys ``unit * K + rep``)."""
    lo, hi = problem.bounds
    lo, hi = lo[:, 0], hi[:, 0]
    act = np.flatnonzero(problem.active)
    res = transport(
        problem.centroids, homes, problem.workload, act, lo, hi, lo, hi, 0.0, max_rounds=30, banned=banned
    )
    return res.flow_value, res.hub_flow


def restricted_value(
    problem: Problem, homes: np.ndarray, inside: np.ndarray, wholly: list[int], through: int
) -> tuple[float, float]:
    """:func:`relaxation_value` where ``wholly`` serve only units ``inside``, ``through`` serves any unit and
    every other rep only units outside."""
    k = problem.k
    units_in = np.flatnonzero(inside & problem.active)
    units_out = np.flatnonzero(~inside & problem.active)
    others = np.setdiff1d(np.arange(k), [*wholly, through])
    banned = np.concatenate(
        [
            (units_in[:, None] * k + others[None, :]).ravel(),
            (units_out[:, None] * k + np.asarray(wholly)[None, :]).ravel(),
        ]
    )
    return relaxation_value(problem, homes, banned)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nearest", type=int, default=3, help="reps nearest the cut tried as the one through it")
    a = ap.parse_args()
    p, _ = build("national", a.k, 0.02, a.seed, "heuristic", 120)
    total = float(p.workload.sum())
    homes = p.centroids[p.home_units]
    plain, _ = relaxation_value(p, homes)
    print(f"relaxation {plain / total:.4f} km per person")
    region = max(pendant_regions(p), key=lambda r: (r.workload, -r.cut))
    inside = np.zeros(p.n, dtype=bool)
    inside[region.units] = True
    own = [j for j in range(p.k) if inside[p.home_units[j]]]
    dist = haversine_km(homes, p.centroids[region.cut][None, :])
    near = [j for j in np.argsort(dist, kind="stable").tolist() if not inside[p.home_units[j]]][: a.nearest]
    fewest, most = region.inside
    tgt = float(p.targets[:, 0].mean())
    print(
        f"region behind {p.unit_ids[region.cut]}: {len(region.units)} units, "
        f"{region.workload / tgt:.3f} targets, {fewest}-{most} territories wholly inside; "
        f"reps with a home inside {own}, nearest outside {near}"
    )
    best = (np.inf, (), -1)
    for m in range(fewest, most + 1):
        for wholly in itertools.combinations(own, m):
            for through in [j for j in own if j not in wholly] + near:
                t = time.perf_counter()
                value, hub = restricted_value(p, homes, inside, list(wholly), through)
                rise = 100 * (value / plain - 1)
                secs = time.perf_counter() - t
                hub_s = f"hub {hub:.0f}, {secs:.1f} s"
                print(f"  wholly {list(wholly)}, through {through}: +{rise:.3f} % ({hub_s})")
                if hub == 0 and value < best[0]:
                    best = (value, wholly, through)
    if np.isfinite(best[0]):
        print(
            f"least: +{100 * (best[0] / plain - 1):.3f} % "
            f"(wholly {list(best[1])}, through {best[2]}): "
            "a bound over every choice of roles adds at most this much"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
