"""Feasibility pre-check: fast necessary conditions that explain an impossible request before solving, and
warnings about what the geography forces in a feasible one."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .crowding import crowded_regions
from .problem import Problem


@dataclass
class PrecheckReport:
    """Outcome of :func:`precheck`.

    Attributes
    ----------
    feasible : bool
        False when a necessary condition fails (the request is certainly infeasible).
    reasons : list of str
        Human-readable explanations, one per failed condition.
    heavy_units : dict
        Measure -> unit ids heavier than any territory may carry.
    finest_tolerance : dict
        Measure -> smallest tolerance for which the heaviest unit fits in a territory (a necessary bound).
    largest_k : dict
        Measure -> the largest number of equal territories the heaviest unit allows at the requested
        tolerance.
    components : int
        Connected components of the planning graph (active units, bridges included).
    warnings : list of str
        What every contiguous plan must do that a planner may not expect (reps the geography sends away from
        home, :mod:`optimizer.crowding`); only when the request passes.
    crowded_regions : list of dict
        Those regions (``CrowdedRegion.to_dict``).
    """

    feasible: bool = True
    reasons: list[str] = field(default_factory=list)
    heavy_units: dict[str, list[str]] = field(default_factory=dict)
    finest_tolerance: dict[str, float] = field(default_factory=dict)
    largest_k: dict[str, int] = field(default_factory=dict)
    components: int = 0
    warnings: list[str] = field(default_factory=list)
    crowded_regions: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, msg: str) -> None:
        self.feasible = False
        self.reasons.append(msg)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feasible": self.feasible,
            "reasons": list(self.reasons),
            "heavy_units": self.heavy_units,
            "finest_tolerance": self.finest_tolerance,
            "largest_k": self.largest_k,
            "components": self.components,
            "warnings": list(self.warnings),
            "crowded_regions": list(self.crowded_regions),
        }


def components(problem: Problem) -> tuple[int, np.ndarray]:
    """Connected components of the active units (labels -1 for excluded units)."""
    act = problem.active
    e = problem.edges
    keep = act[e[:, 0]] & act[e[:, 1]] if len(e) else np.zeros(0, dtype=bool)
    e = e[keep]
    n = problem.n
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    labels = np.asarray(labels, dtype=np.int64)
    labels[~act] = -1
    uniq = np.unique(labels[act])
    remap = np.full(int(labels.max()) + 2, -1, dtype=np.int64)
    remap[uniq] = np.arange(len(uniq))
    labels = np.where(act, remap[labels], -1)
    return len(uniq), labels


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.4g}"


def precheck(problem: Problem, warnings: bool = True) -> PrecheckReport:
    """Check necessary conditions for a feasible plan and explain every failure.

    Conditions: reps exist and are not more than units; homes are active and (when anchored) distinct;
    total capacity covers demand per measure; no unit is heavier than the largest territory allows (names the
    units, the finest feasible tolerance and the largest feasible K); locked/anchored units fit their reps;
    with contiguity, every component of the planning graph holds a rep home and a workload its reps can
    carry; forced moves fit the disruption budget. Passing the pre-check does not prove feasibility.

    Parameters
    ----------
    problem : Problem
    warnings : bool
        Also look for crowded regions when the request passes (one depth-first search of the graph: 0.45 s
        on the national ZCTAs). ``solve`` skips it here and looks for them after the plan.

    Returns
    -------
    PrecheckReport
    """
    rep = PrecheckReport()
    opts = problem.options
    k = problem.k
    act = problem.active
    n_act = int(act.sum())
    ids = problem.unit_ids
    rep_ids = [r.id for r in problem.reps]
    if k == 0:
        rep.fail("no reps: at least one rep is needed")
        return rep
    if k > n_act:
        rep.fail(f"more reps ({k}) than units to assign ({n_act}): every territory needs at least one unit")
    homes = problem.home_units
    for i, h in enumerate(homes.tolist()):
        if h >= 0 and not act[h]:
            rep.fail(f"rep {rep_ids[i]}: home unit {ids[h]} is excluded")
    if opts.anchor_homes:
        seen: dict[int, str] = {}
        for i, h in enumerate(homes.tolist()):
            if h < 0:
                continue
            if h in seen:
                rep.fail(
                    f"reps {seen[h]} and {rep_ids[i]} share home unit {ids[h]}; anchored homes must differ"
                )
            seen[h] = rep_ids[i]

    targets = problem.targets
    lo, hi = problem.bounds
    names = problem.measure_names
    fixed = problem.locked_owner.copy()
    for uid, rid in opts.locked.items():
        if not act[problem.unit_index[uid]]:
            rep.fail(f"unit {uid} is both locked (to {rid}) and excluded")
    if opts.anchor_homes:
        for i, h in enumerate(homes.tolist()):
            if h < 0:
                continue
            if fixed[h] >= 0 and fixed[h] != i:
                rep.fail(f"unit {ids[h]} is rep {rep_ids[i]}'s home but is locked to {rep_ids[fixed[h]]}")
            fixed[h] = i

    for j, m in enumerate(names):
        tol = problem.tolerance_of(m)
        vals = problem.measures[m]
        total = float(vals[act].sum())
        if tol is None:
            continue
        if hi[:, j].sum() < total * (1 - 1e-12):
            rep.fail(
                f"capacity below demand for {m}: reps can carry at most {_fmt(hi[:, j].sum())} "
                f"(targets {_fmt(targets[:, j].sum())} +{tol:.1%}) but the units carry {_fmt(total)}"
            )
        if lo[:, j].sum() > total * (1 + 1e-12):
            rep.fail(
                f"demand below capacity for {m}: reps need at least {_fmt(lo[:, j].sum())} "
                f"(targets -{tol:.1%}) but the units carry only {_fmt(total)}"
            )
        cap = float(hi[:, j].max())
        heavy = np.flatnonzero(act & (vals > cap * (1 + 1e-12)))
        if len(heavy):
            order = heavy[np.argsort(-vals[heavy], kind="stable")]
            named = [ids[i] for i in order.tolist()]
            rep.heavy_units[m] = named
            vmax = float(vals[order[0]])
            tmax = float(targets[:, j].max())
            finest = vmax / tmax - 1 if tmax > 0 else math.inf
            rep.finest_tolerance[m] = finest
            kmax = int(math.floor(total * (1 + tol) / vmax)) if vmax > 0 else k
            while kmax > 1 and vmax > total / kmax * (1 + tol) * (1 + 1e-12):
                kmax -= 1
            rep.largest_k[m] = kmax
            shown = ", ".join(f"{ids[i]} ({_fmt(float(vals[i]))})" for i in order[:5].tolist())
            more = f" and {len(order) - 5} more" if len(order) > 5 else ""
            rep.fail(
                f"{len(order)} unit(s) heavier in {m} than a territory may carry ({_fmt(cap)} = target "
                f"{_fmt(tmax)} +{tol:.1%}): {shown}{more}. "
                f"Finest feasible tolerance for {k} reps is at least "
                f"{finest:.2%}; at +-{tol:.1%} at most {kmax} equal territories are possible"
            )
        for i in range(k):
            mine = np.flatnonzero(fixed == i)
            load = float(vals[mine].sum())
            if load > hi[i, j] * (1 + 1e-12):
                shown = ", ".join(ids[u] for u in mine[:5].tolist())
                rep.fail(
                    f"rep {rep_ids[i]}: locked/home units ({shown}{'...' if len(mine) > 5 else ''}) carry "
                    f"{m} {_fmt(load)} above its upper bound {_fmt(float(hi[i, j]))}"
                )

    ncomp, labels = components(problem)
    rep.components = ncomp
    if opts.contiguity and ncomp > 1:
        all_homes = bool((homes >= 0).all())
        home_comp = np.where(homes >= 0, labels[np.maximum(homes, 0)], -1)
        for c in range(ncomp):
            members = np.flatnonzero(labels == c)
            reps_here = np.flatnonzero(home_comp == c)
            sample = ", ".join(ids[u] for u in members[:5].tolist())
            desc = f"component of {len(members)} unit(s) ({sample}{'...' if len(members) > 5 else ''})"
            if not all_homes:
                continue
            if len(reps_here) == 0:
                rep.fail(
                    f"{desc} holds no rep home and no bridge reaches one: declare a bridge edge or exclude it"
                )
                continue
            if len(reps_here) > len(members):
                rep.fail(f"{desc} holds {len(reps_here)} rep homes but has only {len(members)} unit(s)")
            for j, m in enumerate(names):
                if problem.tolerance_of(m) is None:
                    continue
                wc = float(problem.measures[m][members].sum())
                lo_c, hi_c = float(lo[reps_here, j].sum()), float(hi[reps_here, j].sum())
                if wc > hi_c * (1 + 1e-12) or wc < lo_c * (1 - 1e-12):
                    rep.fail(
                        f"{desc} carries {m} {_fmt(wc)} but its {len(reps_here)} rep(s) "
                        f"({', '.join(rep_ids[i] for i in reps_here[:5].tolist())}) must carry "
                        f"{_fmt(lo_c)}..{_fmt(hi_c)}: no contiguous plan exists without a bridge edge"
                    )
        for u in np.flatnonzero(fixed >= 0).tolist():
            r = int(fixed[u])
            if homes[r] >= 0 and labels[u] >= 0 and labels[u] != labels[homes[r]]:
                rep.fail(f"unit {ids[u]} is locked to rep {rep_ids[r]} whose home lies in another component")

    cur = problem.current_owner
    if cur is not None and problem.has_move_budget:
        base = act & np.array([u in opts.current for u in ids]) if opts.current is not None else act
        forced = base & ((cur < 0) | ((fixed >= 0) & (fixed != cur)))
        w = problem.workload
        if opts.max_moved_units is not None and base.sum() > 0:
            frac = forced.sum() / base.sum()
            if frac > opts.max_moved_units + 1e-12:
                rep.fail(
                    f"{int(forced.sum())} unit(s) must change owner "
                    f"(their rep is gone, or a lock/home moves them): "
                    f"{frac:.2%} > budget {opts.max_moved_units:.2%}"
                )
        if opts.max_moved_workload is not None and w[base].sum() > 0:
            frac = float(w[forced].sum() / w[base].sum())
            if frac > opts.max_moved_workload + 1e-12:
                rep.fail(
                    f"forced moves carry {frac:.2%} of the workload > budget {opts.max_moved_workload:.2%}"
                )
    if rep.feasible and warnings:
        crowded = crowded_regions(problem)
        rep.crowded_regions = [c.to_dict() for c in crowded]
        rep.warnings = [c.note() for c in crowded]
    return rep
