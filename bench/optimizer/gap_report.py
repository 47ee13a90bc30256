"""Where a plan's gap comes from: a Lagrangian decomposition by region and by territory.

Example::

    .venv/bin/python -m bench.optimizer.gap_report --instance national --k 500 --seed 1

Solves the benchmark instance (as ``bench.optimizer.run`` builds it), then takes the prices ``pi`` of the
transportation relaxation on the real band for the plan's homes (the sampled homes, or with ``--chosen`` the
workload-weighted centroids of the final territories, which is what the centre metric measures). For any plan
``x`` inside the band, with ``r_uk = d_uk - pi_k``, ``L(pi)`` the Lagrangian bound and ``o(u)`` the owner::

    cost(x) - L(pi) = sum_u w_u (r_u,o(u) - min_k r_uk)                         (excess: units not at their
                                                                                 cheapest priced rep, >= 0)
                    + sum_k (pi_k (load_k - lo_k) if pi_k > 0 else -pi_k (hi_k - load_k))
                                                                               (slack: territories away from
                                                                                the band edge their price
                                                                                pushes them to, >= 0)

Both terms are reported as shares of the objective, the excess per region (the first 3 digits of a ZCTA, the
state FIPS of a county) with the region's homes against its population share of the reps, and per territory.

With ``--groups N`` the gap is also split by groups of territories (k-means on their centroids): each group's
own relaxation (its units, its reps, the same bands) bounds what re-planning inside the group could reach, so
``cost - sum of the group bounds`` is the part moves within groups could close at most, and ``sum of the group
bounds - L(pi)`` the part that needs load to move between groups (or is the relaxation's own weakness there).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from optimizer import Problem, check, solve
from optimizer.bound import transport
from optimizer.geo import haversine_km, lonlat_of, spherical_centre
from optimizer.pendant import territories_inside

from .run import build, default_time_limit


@dataclass
class GapSplit:
    """Objective and bound of a plan, and the two non-negative parts of their difference."""

    cost: float
    bound: float
    excess: np.ndarray  # per unit
    slack: np.ndarray  # per territory
    prices: np.ndarray
    load: np.ndarray


def decompose(problem: Problem, owner: np.ndarray, homes: np.ndarray) -> GapSplit:
    """Split ``cost - bound`` of the plan ``owner`` (rep index per unit) for ``homes`` (K, 2) lon/lat."""
    w = problem.workload
    lo, hi = problem.bounds
    lo_w, hi_w = lo[:, 0], hi[:, 0]
    free = np.flatnonzero(problem.active)
    res = transport(problem.centroids, homes, w, free, lo_w, hi_w, lo_w, hi_w, 0.0, max_rounds=20)
    pi = res.prices
    d = haversine_km(problem.centroids[:, None, :], homes[None, :, :])
    red = d - pi[None, :]
    units = np.arange(problem.n)
    excess = w * (red[units, owner] - red.min(axis=1))
    load = np.bincount(owner, weights=w, minlength=problem.k)
    slack = np.where(pi > 0, pi * (load - lo_w), 0.0) + np.where(pi < 0, -pi * (hi_w - load), 0.0)
    return GapSplit(float((w * d[units, owner]).sum()), float(res.bound), excess, slack, pi, load)


@dataclass
class Pendant:
    """Units cut off from the root side by removing one unit (``cut``), with what any plan must do there."""

    cut: int
    units: np.ndarray
    workload: float
    homes: int
    inside: tuple[int, int]  # (fewest, most) territories that lie wholly inside, over all plans


def pendant_regions(problem: Problem, min_territories: float = 0.25) -> list[Pendant]:
    """Regions that one unit cuts off (``optimizer.pendant.cut_regions``) with at least ``min_territories``
    targets of workload, whose homes cannot serve them alone.

    A territory is connected, so only the territory that owns the cut unit can have units on both sides: every
    other territory touching the region lies wholly inside it, which bounds how many do (``inside``). The
    transportation relaxation ignores this; the solver's forced-territory bound uses part of it.
    """
    tgt = float(problem.targets[:, 0].mean())
    tol = problem.tolerance_of(problem.workload_name) or 0.0
    is_home = np.zeros(problem.n, dtype=bool)
    is_home[problem.home_units[problem.home_units >= 0]] = True
    out = []
    for r in problem.cut_off_regions:
        h = int(is_home[r.units].sum())
        if r.workload < min_territories * tgt or h * (1 - tol) * tgt <= r.workload <= h * (1 + tol) * tgt:
            continue  # small, or its own homes could serve it exactly
        fewest, most = territories_inside(r.workload, (1 - tol) * tgt, (1 + tol) * tgt)
        out.append(Pendant(r.cut, r.units, r.workload, h, (int(fewest), int(most))))
    return out


def print_pendants(problem: Problem, owner: np.ndarray, top: int) -> None:
    """The largest pendant regions and how the plan covers them."""
    tgt = float(problem.targets[:, 0].mean())
    regions = sorted(pendant_regions(problem), key=lambda r: (-r.workload, r.cut))
    print(f"\nregions cut off by one unit whose homes cannot serve them alone (largest {top}):")
    shown: list[Pendant] = []
    sizes = np.bincount(owner, minlength=problem.k)
    for r in regions:
        same = (x for x in shown if x.homes == r.homes and x.inside == r.inside)
        if any(np.isin(r.units, x.units).all() for x in same):
            continue  # the same situation behind the next unit of a chain
        shown.append(r)
        inside = np.bincount(owner[r.units], minlength=problem.k)
        touching = np.flatnonzero(inside)
        whole = int((inside[touching] == sizes[touching]).sum())
        print(
            f"  behind {problem.unit_ids[r.cut]}: {len(r.units)} units, {r.workload / tgt:.3f} targets, "
            f"homes {r.homes}; any plan has {r.inside[0]}-{r.inside[1]} territories wholly inside and at "
            f"most one through the cut; this plan: {whole} inside, {len(touching) - whole} through"
        )
        if len(shown) >= top:
            break


def centroids_of(problem: Problem, owner: np.ndarray) -> np.ndarray:
    """Workload-weighted spherical centroid (lon/lat) of every territory."""
    out = np.zeros((problem.k, 2))
    for k in range(problem.k):
        m = owner == k
        c = spherical_centre(problem.unit_xyz[m], problem.workload[m])
        if c is not None:
            out[k] = lonlat_of(c)
    return out


def group_split(
    problem: Problem, owner: np.ndarray, homes: np.ndarray, groups: int, bound: float, cost: float
) -> None:
    """Print the gap split into a part within groups of territories and a part between them."""
    from scipy.cluster.vq import kmeans2

    w = problem.workload
    lo, hi = problem.bounds
    lo_w, hi_w = lo[:, 0], hi[:, 0]
    xy = centroids_of(problem, owner)
    _, label = kmeans2(xy * [np.cos(np.radians(38.0)), 1.0], groups, minit="++", seed=1)
    total_w = float(w.sum())
    tgt = float(problem.targets[:, 0].mean())
    print(f"\nby {groups} groups of territories (km per person of the country; gap shares of the objective)")
    parts = 0.0
    for g in range(groups):
        reps = np.flatnonzero(label == g)
        if len(reps) == 0:
            continue
        units = np.flatnonzero(np.isin(owner, reps) & problem.active)
        plan = float((w[units] * haversine_km(problem.centroids[units], homes[owner[units]])).sum())
        res = transport(
            problem.centroids,
            homes[reps],
            w,
            units,
            lo_w[reps],
            hi_w[reps],
            lo_w[reps],
            hi_w[reps],
            0.0,
            max_rounds=30,
        )
        parts += res.bound
        centre = xy[reps].mean(axis=0)
        print(
            f"  group {g} ({len(reps)} reps, {w[units].sum() / tgt:.2f} targets, around "
            f"{centre[0]:.1f}, {centre[1]:.1f}): plan {plan / total_w:.3f}, its relaxation "
            f"{res.bound / total_w:.3f}, within {100 * (plan - res.bound) / cost:.2f} %"
        )
    print(
        f"  within groups {100 * (cost - parts) / cost:.2f} %, between groups "
        f"{100 * (parts - bound) / cost:.2f} % (of the gap {100 * (cost - bound) / cost:.2f} %)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instance", required=True, choices=["counties", "national"])
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chosen", action="store_true", help="let the solver choose the centres")
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--pendants", action="store_true", help="also list regions one unit cuts off")
    ap.add_argument(
        "--groups", type=int, default=0, help="also split the gap by this many groups of territories"
    )
    ap.add_argument(
        "--keep-centres",
        action="store_true",
        help="with --chosen: no re-centring on the plan; split the gap at the centres the relaxation chose",
    )
    a = ap.parse_args()
    tl = a.time_limit or default_time_limit(a.instance, a.k)
    p, _raw = build(a.instance, a.k, 0.02, a.seed, "heuristic", tl, chosen=a.chosen)
    if a.keep_centres:
        p.options = replace(p.options, recentre_rounds=0)
    t = time.perf_counter()
    sol = solve(p)
    secs = time.perf_counter() - t
    rep = check(p, sol.assignment)
    checker = "ok" if rep.ok else "; ".join(rep.errors[:2])
    print(f"solve {secs:.1f} s, {sol.status}, solver's gap {100 * (sol.gap or 0):.2f} %, checker {checker}")
    owner = np.array([p.rep_index[sol.assignment[u]] for u in p.unit_ids])
    if a.chosen and a.keep_centres:
        homes = p.centroids[[p.unit_index[sol.details["homes"][r.id]] for r in p.reps]]
    elif a.chosen:
        homes = centroids_of(p, owner)
    else:
        homes = p.centroids[p.home_units]
    g = decompose(p, owner, homes)
    rest = g.cost - g.bound - g.excess.sum() - g.slack.sum()
    print(
        f"objective {g.cost:.6g}, bound {g.bound:.6g}, gap {100 * (g.cost - g.bound) / g.cost:.2f} % = "
        f"excess {100 * g.excess.sum() / g.cost:.2f} % + slack {100 * g.slack.sum() / g.cost:.2f} % "
        f"(rest {100 * rest / g.cost:.3f} %)"
    )
    width = 3 if a.instance == "national" else 2
    region = [u[:width] for u in p.unit_ids]
    by_region: dict[str, float] = defaultdict(float)
    pop: dict[str, float] = defaultdict(float)
    for rg, e, wu in zip(region, g.excess.tolist(), p.workload.tolist(), strict=True):
        by_region[rg] += e
        pop[rg] += wu
    homes_in: dict[str, int] = defaultdict(int)
    for h in p.home_units.tolist():
        if h >= 0:
            homes_in[region[h]] += 1
    total_w = float(p.workload.sum())
    print(f"\nexcess by region, top {a.top}: share of the objective; homes there / reps its population needs")
    for rg, e in sorted(by_region.items(), key=lambda kv: -kv[1])[: a.top]:
        need = p.k * pop[rg] / total_w
        print(f"  {rg}: {100 * e / g.cost:.2f} %   homes {homes_in.get(rg, 0)} / {need:.2f}")
    tgt = p.targets[:, 0]
    excess_by = np.bincount(owner, weights=g.excess, minlength=p.k)
    print(
        f"\nterritories by excess + slack, top {a.top}: shares of the objective, home, price, load / target"
    )
    for k in np.argsort(-(excess_by + g.slack), kind="stable")[: a.top]:
        home = p.unit_ids[p.home_units[k]] if p.home_units[k] >= 0 else "chosen"
        shares = f"excess {100 * excess_by[k] / g.cost:.2f} %, slack {100 * g.slack[k] / g.cost:.2f} %"
        print(
            f"  {p.reps[k].id}: {shares}, home {home}, price {g.prices[k]:.0f} km, "
            f"load {g.load[k] / tgt[k]:.4f}, units {(owner == k).sum()}"
        )
    if a.pendants:
        print_pendants(p, owner, a.top)
    if a.groups:
        group_split(p, owner, homes, a.groups, g.bound, g.cost)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
