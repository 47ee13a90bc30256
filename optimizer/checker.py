"""Independent checker: verifies any assignment against a Problem with its own code path.

Nothing here reuses the solver's bookkeeping: loads are summed afresh, contiguity is a plain breadth-first
search over the edge list, and distances use a vector (atan2) great-circle formula rather than the solver's
haversine. Tests and benchmarks score every plan, ours and the peers', with :func:`check`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .problem import Problem

_R_KM = 6371.0088
_EPS = 1e-9


def _xyz(lonlat: np.ndarray) -> np.ndarray:
    lam = np.deg2rad(lonlat[..., 0])
    phi = np.deg2rad(lonlat[..., 1])
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


def _arc_km(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Great-circle distance between unit vectors (atan2 of cross and dot products)."""
    cross = np.linalg.norm(np.cross(p, q), axis=-1)
    dot = np.sum(p * q, axis=-1)
    return _R_KM * np.arctan2(cross, dot)


@dataclass
class CheckReport:
    """What :func:`check` found. ``ok`` is True when no hard rule is broken.

    Attributes
    ----------
    ok : bool
    errors : list of str
        One line per broken rule (coverage, ownership, contiguity, balance, locks, anchors,
        disruption budget).
    missing : list of str
        Active units with no owner.
    duplicates : list of str
        Units given more than one owner.
    pieces : dict
        Rep id -> connected pieces of its territory (bridge edges count as adjacency).
    pieces_without_bridges : dict
        Rep id -> pieces when declared bridges are ignored.
    loads : dict
        Rep id -> measure -> load.
    max_deviation, mean_deviation : dict
        Measure -> max / mean absolute relative deviation from target (fraction).
    weighted_distance : float
        Sum of workload x great-circle km from each unit to its owner's home (NaN when a home is unset).
    avg_distance_to_home_km : float
        ``weighted_distance / total workload``.
    distance_to_home_km : dict
        Rep id -> workload-weighted mean km from its territory's units to its home (NaN without workload or
        without a home).
    avg_distance_to_centre_km : float
        Workload-weighted mean distance of units to their territory's workload-weighted centroid
        (independent of rep homes, so any plan can be scored).
    moved_units, moved_workload : float
        Fractions of units / workload whose owner differs from ``options.current`` (NaN without one).
    polsby_popper : dict
        Rep id -> 4 pi A / P^2 when area, perimeter and shared borders are known.
    """

    ok: bool = True
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    pieces: dict[str, int] = field(default_factory=dict)
    pieces_without_bridges: dict[str, int] = field(default_factory=dict)
    loads: dict[str, dict[str, float]] = field(default_factory=dict)
    max_deviation: dict[str, float] = field(default_factory=dict)
    mean_deviation: dict[str, float] = field(default_factory=dict)
    weighted_distance: float = math.nan
    avg_distance_to_home_km: float = math.nan
    avg_distance_to_centre_km: float = math.nan
    distance_to_home_km: dict[str, float] = field(default_factory=dict)
    moved_units: float = math.nan
    moved_workload: float = math.nan
    polsby_popper: dict[str, float] = field(default_factory=dict)

    def fail(self, msg: str) -> None:
        self.ok = False
        self.errors.append(msg)


def _pairs(problem: Problem, assignment: Any) -> list[tuple[str, str | None]]:
    if isinstance(assignment, Mapping):
        return [(str(u), None if r is None else str(r)) for u, r in assignment.items()]
    if isinstance(assignment, np.ndarray):
        if assignment.dtype.kind in "iu":
            return [
                (problem.unit_ids[i], None if r < 0 else problem.reps[int(r)].id)
                for i, r in enumerate(assignment)
            ]
        return [
            (problem.unit_ids[i], None if r is None else str(r)) for i, r in enumerate(assignment.tolist())
        ]
    items = list(assignment)
    if items and isinstance(items[0], tuple):
        return [(str(u), None if r is None else str(r)) for u, r in items]
    return [(problem.unit_ids[i], None if r is None else str(r)) for i, r in enumerate(items)]


def check(
    problem: Problem,
    assignment: Mapping[str, str | None] | Iterable[Any] | np.ndarray,
    *,
    check_balance: bool = True,
) -> CheckReport:
    """Verify an assignment and score it.

    Parameters
    ----------
    problem : Problem
    assignment : mapping, sequence or array
        ``unit id -> rep id`` mapping, a sequence of ``(unit id, rep id)`` pairs (duplicates are detected),
        a sequence of rep ids in unit order, or an int array of rep indices (-1 = none).
    check_balance : bool
        Treat loads outside the tolerance band as errors (peers that do not balance are still scored).

    Returns
    -------
    CheckReport
    """
    rep = CheckReport()
    ids = list(problem.unit_ids)
    pos = {u: i for i, u in enumerate(ids)}
    rep_ids = [r.id for r in problem.reps]
    rpos = {r: i for i, r in enumerate(rep_ids)}
    excluded = set(problem.options.excluded)

    owner: dict[str, str] = {}
    seen_twice: set[str] = set()
    for uid, rid in _pairs(problem, assignment):
        if uid not in pos:
            rep.fail(f"unknown unit {uid!r} in assignment")
            continue
        if rid is None:
            continue
        if rid not in rpos:
            rep.fail(f"unit {uid} assigned to unknown rep {rid!r}")
            continue
        if uid in owner and owner[uid] != rid:
            seen_twice.add(uid)
        owner.setdefault(uid, rid)
    rep.duplicates = sorted(seen_twice)
    if rep.duplicates:
        rep.fail(f"{len(rep.duplicates)} unit(s) have more than one owner, e.g. {rep.duplicates[:5]}")
    for uid in ids:
        if uid in excluded and uid in owner:
            rep.fail(f"excluded unit {uid} has an owner")
        elif uid not in excluded and uid not in owner:
            rep.missing.append(uid)
    if rep.missing:
        rep.fail(f"{len(rep.missing)} unit(s) have no owner, e.g. {rep.missing[:5]}")

    # ---- loads and balance (fresh sums) ----
    names = list(problem.measures)
    members: dict[str, list[int]] = {r: [] for r in rep_ids}
    for uid, rid in owner.items():
        if uid not in excluded:
            members[rid].append(pos[uid])
    targets = problem.targets
    for j, m in enumerate(names):
        values = problem.measures[m]
        devs = []
        tol = problem.tolerance_of(m)
        for k, rid in enumerate(rep_ids):
            load = float(sum(float(values[i]) for i in members[rid]))
            rep.loads.setdefault(rid, {})[m] = load
            t = float(targets[k, j])
            dev = abs(load - t) / t if t > 0 else (0.0 if load == 0 else math.inf)
            devs.append(dev)
            if check_balance and tol is not None and dev > tol + _EPS:
                rep.fail(
                    f"rep {rid}: {m} load {load:.6g} is {dev:.4%} from target {t:.6g} (tolerance {tol:.2%})"
                )
        rep.max_deviation[m] = max(devs) if devs else 0.0
        rep.mean_deviation[m] = float(sum(devs) / len(devs)) if devs else 0.0

    # ---- contiguity: BFS over the edge list ----
    adj: dict[int, list[int]] = {}
    adj_nb: dict[int, list[int]] = {}
    bridge_flags = problem.is_bridge
    for e, (a, b) in enumerate(problem.edges.tolist()):
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
        if not bridge_flags[e]:
            adj_nb.setdefault(a, []).append(b)
            adj_nb.setdefault(b, []).append(a)

    def count_pieces(units: list[int], graph: dict[int, list[int]]) -> int:
        inside = set(units)
        seen: set[int] = set()
        pieces = 0
        for s in units:
            if s in seen:
                continue
            pieces += 1
            seen.add(s)
            queue = deque([s])
            while queue:
                x = queue.popleft()
                for y in graph.get(x, ()):
                    if y in inside and y not in seen:
                        seen.add(y)
                        queue.append(y)
        return pieces

    for rid in rep_ids:
        rep.pieces[rid] = count_pieces(members[rid], adj)
        rep.pieces_without_bridges[rid] = count_pieces(members[rid], adj_nb)
        if problem.options.contiguity and rep.pieces[rid] > 1:
            rep.fail(f"rep {rid}: territory is in {rep.pieces[rid]} pieces")

    # ---- locks and anchored homes ----
    for uid, rid in problem.options.locked.items():
        if owner.get(uid) != rid:
            rep.fail(f"unit {uid} is locked to {rid} but owned by {owner.get(uid)}")
    homes = problem.home_units
    if problem.options.anchor_homes:
        for k, rid in enumerate(rep_ids):
            h = int(homes[k])
            if h >= 0 and owner.get(ids[h]) != rid:
                rep.fail(f"rep {rid}: home unit {ids[h]} belongs to {owner.get(ids[h])}")

    # ---- disruption ----
    wname = problem.workload_name
    w = problem.measures[wname]
    cur = problem.options.current
    if cur is not None:
        base = [u for u in ids if u not in excluded and u in cur]
        moved = [u for u in base if owner.get(u) != cur[u]]
        total_w = sum(float(w[pos[u]]) for u in base)
        rep.moved_units = len(moved) / len(base) if base else 0.0
        rep.moved_workload = sum(float(w[pos[u]]) for u in moved) / total_w if total_w > 0 else 0.0
        o = problem.options
        if o.max_moved_units is not None and rep.moved_units > o.max_moved_units + _EPS:
            rep.fail(f"{rep.moved_units:.2%} of units moved, budget {o.max_moved_units:.2%}")
        if o.max_moved_workload is not None and rep.moved_workload > o.max_moved_workload + _EPS:
            rep.fail(f"{rep.moved_workload:.2%} of workload moved, budget {o.max_moved_workload:.2%}")

    # ---- compactness ----
    xyz = _xyz(problem.centroids)
    home_xyz = _xyz(problem.home_points)
    total = 0.0
    wd = 0.0
    centre_sum = 0.0
    for k, rid in enumerate(rep_ids):
        idx = np.array(members[rid], dtype=np.int64)
        if len(idx) == 0:
            rep.distance_to_home_km[rid] = math.nan
            continue
        ww = w[idx]
        wsum = float(ww.sum())
        total += wsum
        km = float((ww * _arc_km(xyz[idx], home_xyz[k][None, :])).sum())
        wd += km
        rep.distance_to_home_km[rid] = km / wsum if wsum > 0 else math.nan
        c = (ww[:, None] * xyz[idx]).sum(axis=0) if wsum > 0 else xyz[idx].mean(axis=0)
        norm = float(np.linalg.norm(c))
        c = c / norm if norm > 0 else xyz[idx[0]]
        centre_sum += float((ww * _arc_km(xyz[idx], c[None, :])).sum())
    rep.weighted_distance = wd
    rep.avg_distance_to_home_km = wd / total if total > 0 else math.nan
    rep.avg_distance_to_centre_km = centre_sum / total if total > 0 else math.nan

    if problem.area is not None and problem.perimeter is not None and problem.shared_border is not None:
        own = {pos[u]: r for u, r in owner.items()}
        internal: dict[str, float] = dict.fromkeys(rep_ids, 0.0)
        for e, (a, b) in enumerate(problem.edges.tolist()):
            ra, rb = own.get(a), own.get(b)
            if ra is not None and ra == rb:
                internal[ra] += float(problem.shared_border[e])
        for rid in rep_ids:
            a = sum(float(problem.area[i]) for i in members[rid])
            p = sum(float(problem.perimeter[i]) for i in members[rid]) - 2 * internal[rid]
            rep.polsby_popper[rid] = 4 * math.pi * a / (p * p) if p > 0 else math.nan
    return rep
