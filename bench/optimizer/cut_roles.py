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

With ``--nested`` the roles also respect the heaviest region inside that one that holds fewer territories
(Hawaii with the western Aleutians, behind 99667): ``m`` territories wholly in the inner region serve only
its units, one more holds the rest of it and lies either wholly in the outer region or through the outer
cut, the other territories wholly in the outer region serve only its units outside the inner one, and the
one through the outer cut (when it is not the inner one's) serves no inner unit. When the rep holding the
rest of the inner region also crosses the outer cut, its territory holds a path between the two cuts, and
the script also charges the least excess of such a path at the restricted prices (a valid addition, see
:func:`crossing_path_bound`). Before that it asks CP-SAT whether such a plan exists at all: when exactly one
territory lies wholly between the two cuts, it needs a connected part of that ring whose removal leaves the
inner cut connected to the outer one, with at least the band's lower edge of workload
(:func:`largest_ring_territory`). When none exists, no contiguous plan lets the rest of the inner region cross
the outer cut, and those choices are left out of the least.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import scipy.sparse as sp
from ortools.sat.python import cp_model
from scipy.sparse.csgraph import dijkstra

from optimizer import Problem
from optimizer.bound import TransportResult, lagrangian_bound, transport
from optimizer.geo import distance_matrix_km, haversine_km

from .gap_report import Pendant, pendant_regions
from .run import build


def restricted_transport(problem: Problem, homes: np.ndarray, banned: np.ndarray | None) -> TransportResult:
    """The relaxation on the workload band without the ``banned`` arcs (30 pricing rounds)."""
    lo, hi = problem.bounds
    lo, hi = lo[:, 0], hi[:, 0]
    act = np.flatnonzero(problem.active)
    return transport(
        problem.centroids, homes, problem.workload, act, lo, hi, lo, hi, 0.0, max_rounds=30, banned=banned
    )


def relaxation_value(
    problem: Problem, homes: np.ndarray, banned: np.ndarray | None = None
) -> tuple[float, float]:
    """(flow value, people left on the hub) of the relaxation on the workload band, without the ``banned``
    arcs (keys ``unit * K + rep``)."""
    res = restricted_transport(problem, homes, banned)
    return res.flow_value, res.hub_flow


def restricted_value(
    problem: Problem, homes: np.ndarray, inside: np.ndarray, wholly: list[int], through: int
) -> tuple[float, float]:
    """:func:`relaxation_value` where ``wholly`` serve only units ``inside``, ``through`` serves any unit and
    every other rep only units outside."""
    k = problem.k
    units_in = np.flatnonzero(inside & problem.active)
    units_out = np.flatnonzero(~inside & problem.active)
    others = np.setdiff1d(np.arange(k), [*wholly, through]).tolist()
    banned = np.concatenate([arc_keys(units_in, others, k), arc_keys(units_out, wholly, k)])
    return relaxation_value(problem, homes, banned)


def arc_keys(units: np.ndarray, reps: list[int], k: int) -> np.ndarray:
    """Keys ``unit * K + rep`` of every arc between ``units`` and ``reps`` (the relaxation's ``banned``)."""
    return (units[:, None] * k + np.asarray(reps, dtype=np.int64)[None, :]).ravel()


def nested_banned(
    problem: Problem, outer: np.ndarray, inner: np.ndarray, roles: dict[str, list[int]]
) -> np.ndarray:
    """Arc keys the nested roles of the module docstring ban: ``roles`` maps "inner" (wholly in the inner
    region), "rest" (the one holding the rest of it), "rest_through" (the same rep when it also crosses the
    outer cut, else empty), "outer" (wholly in the outer region, outside the inner one) and "through"
    (crosses the outer cut, no inner unit) to reps; every other rep serves only units outside."""
    k = problem.k
    act = problem.active
    u_in, u_ring, u_out = (np.flatnonzero(m & act) for m in (inner, outer & ~inner, ~outer))

    special = {j for group in roles.values() for j in group}
    others = [j for j in range(k) if j not in special]
    parts = [
        arc_keys(np.concatenate([u_in, u_ring]), others, k),
        arc_keys(np.concatenate([u_ring, u_out]), roles["inner"], k),
    ]
    if not roles["rest_through"]:
        parts.append(arc_keys(u_out, roles["rest"], k))
    if roles["outer"]:
        parts.append(arc_keys(np.concatenate([u_in, u_out]), roles["outer"], k))
    if roles["through"]:
        parts.append(arc_keys(u_in, roles["through"], k))
    return np.concatenate(parts)  # repeated keys are harmless: the flow and the path bound drop them


def crossing_path_bound(
    problem: Problem,
    dist: np.ndarray,
    banned: np.ndarray,
    prices: np.ndarray,
    rep: int,
    sources: np.ndarray,
    target: int,
) -> tuple[float, float]:
    """(restricted Lagrangian value, least excess of a path from ``sources`` to ``target`` for ``rep``).

    For any prices ``pi`` and any plan that keeps the roles (no ``banned`` arc), ``cost - L(pi)`` is the
    units' excess over their cheapest allowed priced rep plus the territories' slack, both >= 0 (the gap
    decomposition of ``gap_report``). The territory of ``rep`` holds a path of units from ``sources`` to
    ``target``, so the plan costs at least ``L(pi)`` plus the least excess of such a path (Dijkstra on the
    units' excess as node weights). ``dist``: (n, K) km from every unit to every home.
    """
    k = problem.k
    w = problem.workload
    act = np.flatnonzero(problem.active)
    lo, hi = problem.bounds
    allowed = np.ones(problem.n * k, dtype=bool)
    allowed[banned] = False
    costs = np.where(allowed.reshape(problem.n, k), dist, np.inf)
    no_homes = np.empty((k, 2))  # unused: the costs are given
    value, best = lagrangian_bound(
        problem.centroids, no_homes, w, act, prices, lo[:, 0], hi[:, 0], 0.0, None, 0.0, costs=costs[act]
    )
    node = np.full(problem.n, np.inf)
    node[act] = w[act] * np.maximum(costs[act, rep] - prices[rep] - best, 0.0) + 1e-9  # csgraph drops 0 arcs
    edges = np.asarray(problem.edges)
    tails = np.concatenate([edges[:, 0], edges[:, 1], np.full(len(sources), problem.n)])
    heads = np.concatenate([edges[:, 1], edges[:, 0], sources])
    keep = np.isfinite(node[heads])
    graph = sp.csr_matrix(
        (node[heads][keep], (tails[keep], heads[keep])), shape=(problem.n + 1, problem.n + 1)
    )
    return value, float(dijkstra(graph, indices=problem.n)[target])


def largest_ring_territory(
    problem: Problem, ring: np.ndarray, inner_cut: int, outer_cut: int, cap: float, seconds: float = 120.0
) -> tuple[float, bool]:
    """(largest workload, proven) of a territory wholly in ``ring`` while another one crosses it.

    ``ring`` holds the units between two nested cuts (``inner_cut`` among them, ``outer_cut`` outside). When
    the territory holding the rest of the inner region also crosses the outer cut and exactly one territory
    ``S`` lies wholly in the ring, every ring unit belongs to one of the two, so ``S`` is connected, avoids
    ``inner_cut``, holds at most ``cap`` and leaves the rest of the ring connected to ``outer_cut``. CP-SAT
    maximises the workload of such an ``S`` (two single-commodity flows: one from a root chosen inside ``S``,
    one from ``outer_cut`` through the other units); ``proven`` says whether it proved the optimum within
    ``seconds`` (else the value is its upper bound). If the value is below the band's lower edge, no plan
    has that shape. Workloads are rounded to whole numbers (people in the benchmark).
    """
    w = problem.workload
    nb = problem.neighbors
    pos = {int(u): i for i, u in enumerate(ring.tolist())}
    n = len(pos)
    arcs = [(i, pos[int(v)]) for u, i in pos.items() for v in nb[u] if int(v) in pos]  # both directions
    exits = {pos[int(v)] for v in nb[outer_cut] if int(v) in pos}
    m = cp_model.CpModel()
    in_s = [m.new_bool_var(f"s{i}") for i in range(n)]
    root = [m.new_bool_var(f"r{i}") for i in range(n)]
    m.add(in_s[pos[inner_cut]] == 0)
    m.add_exactly_one(root)
    f = [m.new_int_var(0, n, f"f{a}") for a in range(len(arcs))]  # inside S, from its root
    g = [m.new_int_var(0, n, f"g{a}") for a in range(len(arcs))]  # outside S, from the outer cut
    into: list[list[int]] = [[] for _ in range(n)]
    out: list[list[int]] = [[] for _ in range(n)]
    for a, (u, v) in enumerate(arcs):
        into[v].append(a)
        out[u].append(a)
        for end in (u, v):
            m.add(f[a] == 0).only_enforce_if(in_s[end].Not())
            m.add(g[a] == 0).only_enforce_if(in_s[end])
    for i in range(n):
        m.add_implication(root[i], in_s[i])
        supply = m.new_int_var(0, n, f"p{i}")
        m.add(supply == 0).only_enforce_if(root[i].Not())
        m.add(sum(f[a] for a in into[i]) - sum(f[a] for a in out[i]) + supply == in_s[i])
        source = m.new_int_var(0, n if i in exits else 0, f"e{i}")
        m.add(source == 0).only_enforce_if(in_s[i])
        m.add(sum(g[a] for a in into[i]) - sum(g[a] for a in out[i]) + source == 1 - in_s[i])
    load = sum(int(round(w[u])) * in_s[i] for u, i in pos.items())
    m.add(load <= int(np.floor(cap)))
    m.maximize(load)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 2
    solver.parameters.max_time_in_seconds = seconds
    status = solver.solve(m)
    return float(solver.best_objective_bound), status == cp_model.OPTIMAL


def nested_choices(
    own_outer: list[int], own_inner: list[int], near: list[int], m_inner: int, m_outer: int
) -> list[dict[str, list[int]]]:
    """Role choices among the regions' own reps (and the reps ``near`` the outer cut for "through")."""
    out = []
    for wholly in itertools.combinations(own_inner, m_inner):
        rest_of = [j for j in own_outer if j not in wholly]
        for rest in rest_of:
            left = [j for j in rest_of if j != rest]
            # the rest of the inner region lies wholly in the outer one: one more rep crosses the outer cut
            for outer in itertools.combinations(left, m_outer - m_inner - 1):
                for through in [j for j in left if j not in outer] + near:
                    out.append(
                        {
                            "inner": list(wholly),
                            "rest": [rest],
                            "rest_through": [],
                            "outer": list(outer),
                            "through": [through],
                        }
                    )
            # or it crosses the outer cut itself
            for outer in itertools.combinations(left, m_outer - m_inner):
                out.append(
                    {
                        "inner": list(wholly),
                        "rest": [rest],
                        "rest_through": [rest],
                        "outer": list(outer),
                        "through": [],
                    }
                )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nearest", type=int, default=3, help="reps nearest the cut tried as the one through it")
    ap.add_argument("--nested", action="store_true", help="also respect the heaviest region inside it")
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
    if a.nested:
        return run_nested(p, homes, plain, region, inside, own, near)
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


def run_nested(
    p: Problem,
    homes: np.ndarray,
    plain: float,
    region: Pendant,
    outer: np.ndarray,
    own: list[int],
    near: list[int],
) -> int:
    """Print the nested restricted relaxation for each role choice of :func:`nested_choices` and the least.

    The inner region is the heaviest one inside ``region`` that holds fewer territories wholly (regions that
    hold as many, such as the chain of Alaska units between the bridges, give no roles of their own).
    """
    ids = set(region.units.tolist())
    inner_regions = [
        r
        for r in pendant_regions(p)
        if r.cut != region.cut and set(r.units.tolist()) <= ids and r.inside[1] < region.inside[0]
    ]
    if not inner_regions:
        print("no region inside it that one unit cuts off")
        return 1
    sub = max(inner_regions, key=lambda r: (r.workload, -r.cut))
    if sub.inside[0] != sub.inside[1] or region.inside[0] != region.inside[1]:
        print("the nested roles need exact counts of territories inside both regions")
        return 1
    inner = np.zeros(p.n, dtype=bool)
    inner[sub.units] = True
    own_inner = [j for j in own if inner[p.home_units[j]]]
    tgt = float(p.targets[:, 0].mean())
    print(
        f"inner region behind {p.unit_ids[sub.cut]}: {len(sub.units)} units, {sub.workload / tgt:.3f} "
        f"targets, {sub.inside[0]} territories wholly inside; reps with a home inside {own_inner}"
    )
    lo, hi = p.bounds
    ring = np.flatnonzero(outer & ~inner & p.active)
    m_ring = region.inside[0] - sub.inside[0]  # wholly in the ring when the rest crosses the outer cut
    can_cross = True
    if m_ring == 1:
        t = time.perf_counter()
        largest, proven = largest_ring_territory(p, ring, sub.cut, region.cut, float(hi[:, 0].max()))
        can_cross = largest >= float(lo[:, 0].min())
        print(
            f"the one territory wholly between the cuts, when the rest of the inner region crosses the outer "
            f"cut, holds at most {largest / tgt:.3f} targets ({'proven' if proven else 'CP-SAT bound'}, "
            f"{time.perf_counter() - t:.1f} s): "
            + ("such plans exist" if can_cross else "below the band, so no plan lets the rest cross")
        )
    solved: list[tuple[dict[str, list[int]], float, float]] = []  # roles, value, value with the path charged
    dist = distance_matrix_km(p.centroids, homes)
    sources = np.flatnonzero(inner & p.active)
    for roles in nested_choices(own, own_inner, near, sub.inside[0], region.inside[0]):
        t = time.perf_counter()
        banned = nested_banned(p, outer, inner, roles)
        res = restricted_transport(p, homes, banned)
        value, hub = res.flow_value, res.hub_flow
        line = f"  {roles}: +{100 * (value / plain - 1):.3f} %"
        charged = value
        if roles["rest_through"]:
            # the rep holding the rest of the inner region also holds the outer cut: a path between them
            lagrangian, path = crossing_path_bound(
                p, dist, banned, res.prices, roles["rest"][0], sources, region.cut
            )
            charged = lagrangian + path
            line += f", with its path through the outer region charged +{100 * (charged / plain - 1):.3f} %"
        print(f"{line} (hub {hub:.0f}, {time.perf_counter() - t:.1f} s)", flush=True)
        if hub == 0:
            solved.append((roles, value, charged))
    possible = [] if can_cross else [x for x in solved if not x[0]["rest_through"]]
    for label, rows, column, after in (
        ("least", solved, 1, ": a bound over every choice of nested roles adds at most this much"),
        ("least with the crossing path charged", solved, 2, ""),
        ("least over the roles a contiguous plan can have", possible, 2, ""),
    ):
        if rows:
            least = min(rows, key=lambda x: x[column])  # the first of equal ones, in the order tried
            print(f"{label}: +{100 * (least[column] / plain - 1):.3f} % ({least[0]}){after}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
