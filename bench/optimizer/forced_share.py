"""How much of the centre metric sits in the territories that cross into a region one unit cuts off.

Example::

    .venv/bin/python -m bench.optimizer.forced_share --k 200 --seed 1 --peer-seeds 1,4

Solves the national instance with solver-chosen centres, runs GerryChain's ``recursive_tree_part`` once per
peer seed in the same run, and splits each plan's average distance to territory centre (the peers' metric)
between the territories holding a unit of the region and the others. The region is the largest one that
removing a single unit separates (national: Hawaii and Alaska, beyond the bridge that lands at 98548 in
Washington), or the one behind ``--behind``. A territory is connected, so the region's people share few
territories whatever the method; with K=200 both methods put Hawaii with part of Alaska and the rest of
Alaska with part of Washington.
"""

from __future__ import annotations

import argparse

import numpy as np

from optimizer import Problem, solve
from optimizer.geo import haversine_km
from optimizer.pendant import CutRegion

from .gap_report import centroids_of
from .run import build, default_time_limit, run_peer


def largest_region(problem: Problem, behind: str | None) -> CutRegion:
    """The region cut off behind unit ``behind``, else the heaviest one lighter than half the workload."""
    regions = problem.cut_off_regions
    half = 0.5 * float(problem.workload.sum())
    if behind is not None:
        if behind not in problem.unit_index:
            raise SystemExit(f"--behind {behind}: no such unit in the national instance")
        cut = problem.unit_index[behind]
        behind_it = [r for r in regions if r.cut == cut]
        if not behind_it:
            raise SystemExit(f"--behind {behind}: removing this unit cuts nothing off (no articulation unit)")
        return max(behind_it, key=lambda r: r.workload)
    return max((r for r in regions if r.workload < half), key=lambda r: r.workload)


def split(problem: Problem, owner: np.ndarray, region: CutRegion) -> dict[str, float]:
    """Average km to territory centre, and the part of it in the territories touching ``region``."""
    w = problem.workload
    km = haversine_km(problem.centroids, centroids_of(problem, owner)[owner])
    reached = np.unique(owner[region.units])
    touching = np.isin(owner, reached)
    total_w = float(w.sum())
    return {
        "metric": float((w * km).sum()) / total_w,
        "touching": len(reached),
        "touching_km": float((w * km)[touching].sum()) / total_w,
        "others_km": float((w * km)[~touching].sum() / w[~touching].sum()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--peer-seeds", default="1,4", help="comma list of GerryChain seeds")
    ap.add_argument("--behind", default=None, help="unit id of the cut (default: the largest region's)")
    a = ap.parse_args()
    p, _raw = build(
        "national", a.k, 0.02, a.seed, "heuristic", default_time_limit("national", a.k), chosen=True
    )
    region = largest_region(p, a.behind)
    tgt = float(p.targets[:, 0].mean())
    cut = p.unit_ids[region.cut]
    print(f"region behind {cut}: {len(region.units)} units, {region.workload / tgt:.3f} targets")
    sol = solve(p)
    plans = [("ours, centres chosen", np.array([p.rep_index[sol.assignment[u]] for u in p.unit_ids]))]
    for s in (int(x) for x in a.peer_seeds.split(",") if x):
        res = run_peer("gerrychain", "national", a.k, 0.02, s)
        if res.get("labels") is None:
            print(f"GerryChain seed {s}: no plan ({res.get('error') or 'DNF'})")
            continue
        plans.append((f"GerryChain seed {s}", np.array(res["labels"])))
    print("| plan | avg km to centre | territories touching the region | their km of the average | ", end="")
    print("km per person elsewhere |\n|---|---|---|---|---|")
    for label, owner in plans:
        r = split(p, owner, region)
        cells = [f"{r['metric']:.2f}", str(r["touching"]), f"{r['touching_km']:.2f}", f"{r['others_km']:.2f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
