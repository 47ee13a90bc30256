"""Regions cut off by one unit where the reps' homes cannot match the territories that reach them.

A territory is connected, so when removing one unit ``a`` separates a region ``R`` (workload ``W``) from the
rest, only the territory that owns ``a`` can have units on both sides; every other territory touching ``R``
lies wholly inside it. With every territory's workload in ``[lo, hi]`` that gives, for every contiguous plan:

* at most ``most + 1`` territories touch ``R`` (``most = floor(W / lo)`` wholly inside, one through ``a``),
  so when more reps than that live in ``R``, at least ``homes - most - 1`` of them own no unit of ``R``;
* at least ``fewest = ceil(W / hi - 1)`` territories lie wholly inside ``R``, so when fewer reps live there,
  at least ``fewest - homes`` reps from outside own a territory wholly inside it.

Both send reps far from home (national ZCTAs at K=500 with 4 sampled homes on Hawaii: two Hawaii reps end up
with territories in California), and the transportation relaxation cannot see either: it lets every rep serve
any unit in part. The solver reports such regions so that a planner knows why, and knows that the gap there
overstates how far the plan is from the best contiguous one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .pendant import territories_inside
from .problem import Problem

#: regions lighter than this share of a mean target are left out (a leaf unit with two homes is no news)
MIN_TARGETS = 0.25


@dataclass(frozen=True)
class CrowdedRegion:
    """A cut-off region whose homes do not match the territories that can reach into it."""

    cut: str  #: the unit whose removal cuts the region off
    units: int  #: units in the region
    workload: float
    targets: float  #: workload in mean territory targets
    homes: list[str]  #: ids of the reps with a home inside
    fewest_inside: int  #: territories wholly inside, at least
    most_inside: int  #: territories wholly inside, at most (one more may come through ``cut``)
    reps_away: int  #: reps with a home inside that own no unit of it, at least
    reps_brought_in: int  #: reps with a home outside whose territory lies wholly inside, at least

    def note(self) -> str:
        """One sentence for a planner."""
        live = {0: "no rep lives", 1: "1 rep lives"}.get(len(self.homes), f"{len(self.homes)} reps live")
        where = (
            f"{live} in the region that unit {self.cut} cuts off ({self.units} units, {self.targets:.2f} "
            f"territories of workload)"
        )
        if self.reps_away > 0:
            reach = _count(self.most_inside + 1, "territory", "territories")
            away = _count(self.reps_away, "of them owns", "of them own")
            how = f"{self.most_inside} wholly inside, 1 through {self.cut}"
            what = f"{where}, but at most {reach} can reach into it ({how}): at least {away} no unit there"
        else:
            inside = _count(self.fewest_inside, "territory lies", "territories lie")
            brought = _count(self.reps_brought_in, "rep from outside works", "reps from outside work")
            what = f"{where}, but at least {inside} wholly inside it: at least {brought} only there"
        return what + (
            "; the transportation relaxation behind the lower bound does not see this, so the gap may "
            "overstate how far the plan is from the best contiguous one"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        return asdict(self)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def crowded_regions(problem: Problem, min_targets: float = MIN_TARGETS) -> list[CrowdedRegion]:
    """Cut-off regions where the given rep homes force reps to work away from home in every contiguous plan.

    Parameters
    ----------
    problem : Problem
        Without contiguity, a workload tolerance or a home for every rep (the solver places the others
        itself) the result is empty.
    min_targets : float
        Smallest region reported, in mean territory targets of workload.

    Returns
    -------
    list of CrowdedRegion
        Heaviest first. Of a chain of nested regions with the same homes and the same counts (the region
        behind each unit of a chain of bridges) only the largest is listed.
    """
    opts = problem.options
    homes = problem.home_units
    wj = problem.measure_names.index(problem.workload_name)
    lo, hi = problem.bounds
    lo_min, hi_max = float(lo[:, wj].min()), float(hi[:, wj].max())
    if (
        not opts.contiguity
        or problem.k < 2
        or problem.tolerance_of(problem.workload_name) is None
        or not (homes >= 0).all()
        or lo_min <= 0
        or not np.isfinite(hi_max)
    ):
        return []
    target = float(problem.targets[:, wj].mean())
    region_of = np.zeros(problem.n, dtype=bool)
    found: list[tuple[CrowdedRegion, np.ndarray]] = []
    for r in sorted(problem.cut_off_regions, key=lambda r: (-r.workload, r.cut)):
        if r.workload < min_targets * target:
            break
        region_of[:] = False
        region_of[r.units] = True
        inside = np.flatnonzero(region_of[homes]).tolist()
        fewest, most = (int(x) for x in territories_inside(r.workload, lo_min, hi_max))
        away, brought = len(inside) - most - 1, fewest - len(inside)
        if away <= 0 and brought <= 0:
            continue
        counts = (len(inside), max(away, 0), max(brought, 0))
        same = (units for c, units in found if (len(c.homes), c.reps_away, c.reps_brought_in) == counts)
        if any(bool(np.isin(r.units, units).all()) for units in same):
            continue  # the same situation behind the next unit of a chain
        region = CrowdedRegion(
            cut=problem.unit_ids[r.cut],
            units=len(r.units),
            workload=float(r.workload),
            targets=float(r.workload / target),
            homes=[problem.reps[j].id for j in inside],
            fewest_inside=fewest,
            most_inside=most,
            reps_away=max(away, 0),
            reps_brought_in=max(brought, 0),
        )
        found.append((region, r.units))
    return [c for c, _ in found]
