"""Transportation relaxation: sparse min-cost flow with pricing, and a Lagrangian lower bound on all arcs.

The relaxation drops contiguity, integrality (a unit may be split between reps), every balance measure but
the workload, and the hard disruption budget; it keeps the workload band of every rep, locked units and
anchored homes. For fixed rep homes its optimum bounds the heuristic's objective from below.

The flow only carries *candidate* arcs (each unit's nearest homes, each home's nearest units) plus a hub with
a prohibitive cost that keeps the network feasible. Node potentials of the optimal flow give a price
``pi_k`` per rep; for ANY prices the Lagrangian value

    L(pi) = sum_u w_u * min_k (c_uk - pi_k) + sum_k (lo_k * max(pi_k, 0) - hi_k * max(-pi_k, 0))

is a valid lower bound of the relaxation over ALL unit-rep arcs (weak duality), so the bound never depends on
the arc sparsification. Missing arcs with negative reduced cost are added and the flow re-solved (column
generation) until none is left or the round limit is hit; then L(pi) equals the full transportation optimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow
from scipy.spatial import cKDTree

from .geo import distance_matrix_km, haversine_km, nearest_homes, unit_vectors
from .keys import member_of, unique_sorted

_INF = np.iinfo(np.int64).max // 4


@dataclass
class TransportResult:
    """Primal owner per unit (-1 where the workload is 0 and no flow decides), prices and the bound."""

    owner: np.ndarray
    split_units: int
    prices: np.ndarray
    bound: float
    flow_value: float
    rounds: int
    hub_flow: float
    arcs: tuple[np.ndarray, np.ndarray] | None = None


def largest_share_assignment(
    arc_unit: np.ndarray,
    arc_rep: np.ndarray,
    arc_cost: np.ndarray,
    supply: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> np.ndarray | None:
    """Send every unit's supply along its arcs to reps that each take between ``lo`` and ``hi``, at least
    cost, and give each unit to the rep that got most of it.

    Parameters
    ----------
    arc_unit, arc_rep : (m,) int arrays
        The arcs: unit index (into ``supply``) and rep index (into ``lo``/``hi``); each unit's arcs are
        consecutive.
    arc_cost : (m,) int array
        Cost per unit of flow.
    supply : (n,) int array
        Each unit's workload, integer-scaled; an arc carries at most its unit's supply.
    lo, hi : (k,) int arrays
        Each rep's band, in the same scale (rep nodes demand ``lo``; ``hi - lo`` more may drain to a sink).

    Returns
    -------
    (n,) rep per unit: the one whose arc carried the most flow, the earlier arc on a tie (-1 for a unit
    without arcs); None when no flow meets every band.
    """
    n, k = len(supply), len(lo)
    sink = n + k
    f = min_cost_flow.SimpleMinCostFlow()
    f.add_arcs_with_capacity_and_unit_cost(arc_unit, n + arc_rep, supply[arc_unit], arc_cost)
    f.add_arcs_with_capacity_and_unit_cost(n + np.arange(k), np.full(k, sink), hi - lo, np.zeros(k, np.int64))
    f.set_nodes_supplies(
        np.arange(n + k + 1), np.concatenate([supply, -lo, [-(int(supply.sum()) - int(lo.sum()))]])
    )
    if f.solve() != f.OPTIMAL:
        return None
    m = len(arc_unit)
    out = np.full(n, -1, dtype=np.int64)
    if m == 0:
        return out
    got = f.flows(np.arange(m))
    # per unit (its arcs are consecutive), the first arc that carries the unit's largest flow
    starts = np.flatnonzero(np.concatenate(([True], arc_unit[1:] != arc_unit[:-1])))
    top = np.repeat(np.maximum.reduceat(got, starts), np.diff(np.append(starts, m)))
    first = np.minimum.reduceat(np.where(got == top, np.arange(m), m), starts)
    out[arc_unit[starts]] = arc_rep[first]
    return out


def cost_rows(
    lonlat: np.ndarray,
    homes: np.ndarray,
    rows: np.ndarray,
    current: np.ndarray | None,
    disruption_weight: float,
) -> np.ndarray:
    """Per-workload cost (km) of giving units ``rows`` to every rep: distance + disruption penalty."""
    d = distance_matrix_km(lonlat[rows], homes)
    if current is not None and disruption_weight > 0:
        cur = current[rows]
        d = d + disruption_weight * (np.arange(len(homes))[None, :] != cur[:, None])
    return d


def arc_cost(
    lonlat: np.ndarray,
    homes: np.ndarray,
    u: np.ndarray,
    k: np.ndarray,
    current: np.ndarray | None,
    disruption_weight: float,
) -> np.ndarray:
    d = haversine_km(lonlat[u], homes[k])
    if current is not None and disruption_weight > 0:
        d = d + disruption_weight * (k != current[u])
    return d


def lagrangian_bound(
    lonlat: np.ndarray,
    homes: np.ndarray,
    w: np.ndarray,
    free: np.ndarray,
    prices: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    fixed_cost: float,
    current: np.ndarray | None,
    disruption_weight: float,
    chunk: int = 4096,
    costs: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """L(pi) over every unit-rep arc; also returns each free unit's
    best reduced cost ``min_k c_uk - pi_k``. ``costs``: the (len(free), K) cost matrix when the caller
    already has it (else it is computed in chunks)."""
    best = np.empty(len(free))
    for s in range(0, len(free), chunk):
        rows = free[s : s + chunk]
        if costs is None:
            c = cost_rows(lonlat, homes, rows, current, disruption_weight)
        else:
            c = costs[s : s + chunk]
        best[s : s + chunk] = (c - prices[None, :]).min(axis=1)
    value = float((w[free] * best).sum())
    value += float(
        (lo * np.maximum(prices, 0)).sum()
        - (hi[np.isfinite(hi)] * np.maximum(-prices, 0)[np.isfinite(hi)]).sum()
    )
    if np.any(~np.isfinite(hi) & (prices < 0)):
        return -np.inf, best
    return value + fixed_cost, best


def _initial_arcs(
    lonlat: np.ndarray, homes: np.ndarray, w: np.ndarray, units: np.ndarray, per_unit: int, reach: float
):
    """Candidate arcs: each unit's nearest homes, and each home's nearest units up to ``reach`` workload."""
    k = len(homes)
    nh = nearest_homes(lonlat[units], homes, per_unit)
    uu = [np.repeat(units, nh.shape[1])]
    kk = [nh.ravel()]
    if len(units) and reach > 0:
        tree = cKDTree(unit_vectors(lonlat[units]))
        mean_w = max(float(w[units].mean()), 1e-12)
        m = int(min(len(units), max(8, 3 * reach / mean_w)))
        _, idx = tree.query(unit_vectors(homes), k=m)
        idx = np.asarray(idx).reshape(k, m)
        for j in range(k):
            cw = np.cumsum(w[units[idx[j]]])
            cut = min(m, int(np.searchsorted(cw, reach)) + 1)
            uu.append(units[idx[j, :cut]])
            kk.append(np.full(cut, j, dtype=np.int64))
    u = np.concatenate(uu)
    kk_all = np.concatenate(kk)
    key = unique_sorted(u * k + kk_all)
    return key // k, key % k


def _rep_potentials(
    n_rep_nodes: int, tails: np.ndarray, heads: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Shortest distances from a virtual root over difference-constraint edges (Bellman-Ford, dense)."""
    wmat = np.full((n_rep_nodes, n_rep_nodes), _INF, dtype=np.int64)
    np.minimum.at(wmat, (tails, heads), weights)
    dist = np.zeros(n_rep_nodes, dtype=np.int64)
    for _ in range(n_rep_nodes + 1):
        cand = np.where(wmat < _INF, dist[:, None] + wmat, _INF).min(axis=0)
        new = np.minimum(dist, cand)
        if np.array_equal(new, dist):
            break
        dist = new
    return dist


def transport(
    lonlat: np.ndarray,
    homes: np.ndarray,
    w: np.ndarray,
    free: np.ndarray,
    lo_flow: np.ndarray,
    hi_flow: np.ndarray,
    lo_bound: np.ndarray,
    hi_bound: np.ndarray,
    fixed_cost: float,
    current: np.ndarray | None = None,
    disruption_weight: float = 0.0,
    per_unit: int = 16,
    max_rounds: int = 8,
    init_arcs: tuple[np.ndarray, np.ndarray] | None = None,
    banned: np.ndarray | None = None,
    with_bound: bool = True,
    price_last: bool = False,
) -> TransportResult:
    """Solve the transportation relaxation on sparse arcs with pricing, and bound it on all arcs.

    Parameters
    ----------
    lonlat : (n, 2) unit centroids.
    homes : (K, 2) rep home points.
    w : (n,) workload.
    free : indices of units the flow may assign (locked / anchored units excluded).
    lo_flow, hi_flow : (K,) band the flow must respect for the free workload (may be tighter than
        the true one).
    lo_bound, hi_bound : (K,) true band for the free workload, used in the bound.
    fixed_cost : cost of the fixed units, added to the bound.
    current, disruption_weight : soft disruption cost (km per unit of workload that changes owner).
    per_unit : nearest homes per unit in the first round.
    max_rounds : pricing rounds.
    with_bound : compute the Lagrangian bound over all arcs (False: ``bound`` is -inf; for callers that only
        need the assignment, e.g. placing centres).
    price_last : also price after the last round and return the extended arcs, so that a later call warm
        started with them (``init_arcs``) continues exactly where this one stopped (same arc set, same flow).
    """
    k = len(homes)
    n = len(w)
    pos_units = free[w[free] > 0]
    total = float(w[pos_units].sum())
    integral = bool(np.all(np.equal(np.mod(w[pos_units], 1), 0))) and total <= 4e12
    scale = 1.0 if integral else 1e9 / max(total, 1e-12)
    supply = np.rint(w[pos_units] * scale).astype(np.int64)
    tot_int = int(supply.sum())
    lo_i = np.ceil(np.maximum(lo_flow, 0) * scale - 1e-9).astype(np.int64)
    hi_i = np.floor(np.minimum(hi_flow, total * 2 + 1) * scale + 1e-9).astype(np.int64)
    hi_i = np.maximum(hi_i, lo_i)
    if lo_i.sum() > tot_int:
        lo_i = np.floor(lo_i * (tot_int / lo_i.sum())).astype(np.int64)
    if hi_i.sum() < tot_int:
        hi_i = hi_i + int(np.ceil((tot_int - hi_i.sum()) / k)) + 1
    reach = 2.5 * float(np.median(hi_flow[np.isfinite(hi_flow)])) if np.isfinite(hi_flow).any() else 0.0
    au, ak = _initial_arcs(lonlat, homes, w, pos_units, per_unit, reach)
    ban = np.zeros(0, dtype=np.int64) if banned is None else unique_sorted(banned.astype(np.int64))
    if init_arcs is not None:
        # warm start: the arcs a previous solve of the same units and homes ended with
        keep = member_of(init_arcs[0], unique_sorted(pos_units))
        key0 = unique_sorted(np.concatenate([au * k + ak, init_arcs[0][keep] * k + init_arcs[1][keep]]))
        au, ak = key0 // k, key0 % k
    if len(ban):
        # arcs the caller forbids (unit-rep pairs that produced detached fragments); the hub keeps it feasible
        ok = ~member_of(au * k + ak, ban)
        au, ak = au[ok], ak[ok]
    local = np.full(n, -1, dtype=np.int64)
    local[pos_units] = np.arange(len(pos_units))
    nu = len(pos_units)
    hub, sink = nu + k, nu + k + 1
    big = int(4e7)  # 40,000 km in metres: dearer than any real arc
    chunk = 8192
    full: list[np.ndarray] = []  # the dense cost matrix, built on first use when it fits in memory

    def _cost_block(start: int) -> np.ndarray:
        if not full and nu * k <= 40_000_000:
            full.append(cost_rows(lonlat, homes, pos_units, current, disruption_weight))
        if full:
            return full[0][start : start + chunk]
        return cost_rows(lonlat, homes, pos_units[start : start + chunk], current, disruption_weight)

    prices = np.zeros(k)
    rounds = 0
    flow_value = 0.0
    hub_flow = 0.0
    owner_local = np.zeros(nu, dtype=np.int64)
    split = 0
    while True:
        rounds += 1
        cost_m = np.rint(arc_cost(lonlat, homes, au, ak, current, disruption_weight) * 1000).astype(np.int64)
        f = min_cost_flow.SimpleMinCostFlow()
        ul = local[au]
        tails = np.concatenate([ul, np.arange(nu), np.full(k, hub), nu + np.arange(k)])
        heads = np.concatenate([nu + ak, np.full(nu, hub), nu + np.arange(k), np.full(k, sink)])
        caps = np.concatenate([supply[ul], supply, np.full(k, tot_int), hi_i - lo_i])
        costs = np.concatenate([cost_m, np.full(nu, big), np.zeros(k, np.int64), np.zeros(k, np.int64)])
        f.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
        sup = np.concatenate([supply, -lo_i, [0, -(tot_int - int(lo_i.sum()))]])
        f.set_nodes_supplies(np.arange(nu + k + 2), sup)
        status = f.solve()
        if status != f.OPTIMAL:
            raise RuntimeError(f"min-cost flow failed: {status}")
        flows = f.flows(np.arange(len(tails)))
        na = len(au)
        fa = flows[:na]
        fh = flows[na : na + nu]
        f_hk = flows[na + nu : na + nu + k]
        f_ks = flows[na + nu + k :]
        hub_flow = float(fh.sum()) / scale
        flow_value = float((fa * cost_m).sum()) / 1000 / scale
        # primal owner: the arc with the largest flow (ties: lowest rep), hub flow goes to the rep it feeds
        owner_local = np.full(nu, -1, dtype=np.int64)
        sel = fa > 0
        cnt = np.bincount(ul[sel], minlength=nu)
        split = int((cnt > 1).sum())
        keyed = np.lexsort((ak[sel], -fa[sel], ul[sel]))
        us = ul[sel][keyed]
        first = np.ones(len(us), dtype=bool)
        first[1:] = us[1:] != us[:-1]
        owner_local[us[first]] = ak[sel][keyed][first]
        # --- difference constraints over rep nodes 0..k-1, hub = k, sink = k+1 ---
        et: list[np.ndarray] = []
        eh: list[np.ndarray] = []
        ew: list[np.ndarray] = []
        # unit u with flow on arc a, any arc b: y_a <= y_b + (c_ub - c_ua): edge b -> a
        flow_arcs = np.flatnonzero(sel)
        # per unit, the cost of its flow arc(s); pair every flow arc with every arc of the same unit
        arc_order = np.argsort(ul, kind="stable")
        starts = np.searchsorted(ul[arc_order], np.arange(nu))
        ends = np.searchsorted(ul[arc_order], np.arange(nu), side="right")
        counts = ends - starts
        fu = ul[flow_arcs]
        reps_per = counts[fu]
        idx_b = np.repeat(starts[fu], reps_per) + (
            np.arange(reps_per.sum()) - np.repeat(np.cumsum(reps_per) - reps_per, reps_per)
        )
        b_arcs = arc_order[idx_b]
        a_arcs = np.repeat(flow_arcs, reps_per)
        et.append(ak[b_arcs])
        eh.append(ak[a_arcs])
        ew.append(cost_m[b_arcs] - cost_m[a_arcs])
        # unit arcs to hub (cost big): y_a <= y_hub + big - c_ua
        et.append(np.full(len(flow_arcs), k))
        eh.append(ak[flow_arcs])
        ew.append(big - cost_m[flow_arcs])
        hub_units = np.flatnonzero(fh > 0)
        if len(hub_units):
            # a unit that sends flow to the hub: y_hub <= y_b + c_ub - big
            arcs_h = np.flatnonzero(member_of(ul, hub_units))
            et.append(ak[arcs_h])
            eh.append(np.full(len(arcs_h), k))
            ew.append(cost_m[arcs_h] - big)
        # hub -> rep arcs (cost 0, uncapacitated): y_hub <= y_k ; flow > 0: y_k <= y_hub
        et.append(np.arange(k))
        eh.append(np.full(k, k))
        ew.append(np.zeros(k, np.int64))
        used = np.flatnonzero(f_hk > 0)
        et.append(np.full(len(used), k))
        eh.append(used)
        ew.append(np.zeros(len(used), np.int64))
        # rep -> sink arcs: flow < cap: y_k <= y_sink ; flow > 0: y_sink <= y_k
        below = np.flatnonzero(f_ks < hi_i - lo_i)
        et.append(np.full(len(below), k + 1))
        eh.append(below)
        ew.append(np.zeros(len(below), np.int64))
        above = np.flatnonzero(f_ks > 0)
        et.append(above)
        eh.append(np.full(len(above), k + 1))
        ew.append(np.zeros(len(above), np.int64))
        y = _rep_potentials(
            k + 2,
            np.concatenate(et).astype(np.int64),
            np.concatenate(eh).astype(np.int64),
            np.concatenate(ew),
        )
        prices = (y[k + 1] - y[:k]).astype(float) / 1000.0  # km per unit of workload
        # --- pricing over all arcs (stops once the flow band's Lagrangian value is within 0.05 %) ---
        if rounds >= max_rounds and not price_last:
            break
        cur_best = np.full(nu, np.inf)
        np.minimum.at(cur_best, ul, cost_m / 1000.0 - prices[ak])
        add_u: list[np.ndarray] = []
        add_k: list[np.ndarray] = []
        best_all = np.empty(nu)
        for s in range(0, nu, chunk):
            red = _cost_block(s) - prices[None, :]
            if len(ban):
                rows_b = pos_units[s : s + chunk]
                lo_key, hi_key = int(rows_b[0]) * k, int(rows_b[-1]) * k + k
                sel_b = ban[(ban >= lo_key) & (ban < hi_key)]
                if len(sel_b):
                    r_loc = np.searchsorted(rows_b, sel_b // k)
                    okr = (r_loc < len(rows_b)) & (rows_b[np.minimum(r_loc, len(rows_b) - 1)] == sel_b // k)
                    red = red.copy()
                    red[r_loc[okr], (sel_b % k)[okr]] = np.inf
            best_all[s : s + chunk] = red.min(axis=1)
            viol = best_all[s : s + chunk] < cur_best[s : s + chunk] - 1e-3
            if viol.any():
                r_idx = np.flatnonzero(viol)
                top = np.argsort(red[r_idx], axis=1, kind="stable")[:, :8]
                add_u.append(np.repeat(pos_units[s : s + chunk][r_idx], top.shape[1]))
                add_k.append(top.ravel())
        lag_flow = float((w[pos_units] * best_all).sum()) + float(
            (np.maximum(lo_flow, 0) * np.maximum(prices, 0)).sum()
            - (np.where(np.isfinite(hi_flow), hi_flow, 0) * np.maximum(-prices, 0)).sum()
        )
        if hub_flow == 0 and flow_value - fixed_cost - lag_flow <= 5e-4 * max(abs(flow_value), 1e-9):
            break
        if not add_u and hub_flow == 0:
            break
        if not add_u:
            # hub still used but no negative reduced cost: widen the hub units' candidate lists
            hu = pos_units[hub_units]
            extra = nearest_homes(lonlat[hu], homes, min(k, per_unit * 2**rounds))
            add_u.append(np.repeat(hu, extra.shape[1]))
            add_k.append(extra.ravel())
        key = unique_sorted(
            np.concatenate([au * k + ak] + [a * k + b for a, b in zip(add_u, add_k, strict=True)])
        )
        if len(key) == len(au):
            break
        au, ak = key // k, key % k
        if rounds >= max_rounds:
            break
    owner = np.full(n, -1, dtype=np.int64)
    owner[pos_units] = owner_local
    bound = -np.inf
    if with_bound:
        # units of zero workload add nothing: bound over the flow's units, from the dense matrix when pricing
        # built it (instead of computing every distance again)
        bound, _ = lagrangian_bound(
            lonlat,
            homes,
            w,
            pos_units,
            prices,
            lo_bound,
            hi_bound,
            fixed_cost,
            current,
            disruption_weight,
            costs=full[0] if full else None,
        )
    return TransportResult(owner, split, prices, bound, flow_value + fixed_cost, rounds, hub_flow, (au, ak))
