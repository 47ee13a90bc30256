"""Local search on a plan: contiguity repair, balance repair (flows, single and chain moves), improvement.

Everything here keeps plain Python lists (fast scalar access) and visits candidates in a fixed order, so the
result depends only on the input plan, never on timing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np

from .problem import Problem

_TINY = 1e-12


def territory_adjacency(problem: Problem, owner: np.ndarray) -> list[set[int]]:
    """Territories that share an edge (bridges included) with each territory (``owner``: rep per unit, -1 for
    none)."""
    a, b = owner[problem.edges[:, 0]], owner[problem.edges[:, 1]]
    cut = (a != b) & (a >= 0) & (b >= 0)
    adj: list[set[int]] = [set() for _ in range(problem.k)]
    for x, y in zip(a[cut].tolist(), b[cut].tolist(), strict=True):
        adj[x].add(y)
        adj[y].add(x)
    return adj


class State:
    """A mutable plan with incremental loads, members and costs.

    Parameters
    ----------
    problem : Problem
    owner : (n,) int array of rep indices (-1 for excluded units).
    homes : (K, 2) lon/lat of the rep homes the cost refers to.
    fixed : (n,) int array, the rep a unit is fixed to (-1 = free).
    """

    def __init__(self, problem: Problem, owner: np.ndarray, homes: np.ndarray, fixed: np.ndarray) -> None:
        self.p = problem
        self.n = problem.n
        self.k = problem.k
        act = problem.active
        self.active = act.tolist()
        self.owner: list[int] = [int(x) if act[i] else -1 for i, x in enumerate(owner.tolist())]
        self.fixed: list[int] = fixed.tolist()
        # called before every improvement pass and chain start; may raise (the caller's stop request)
        self.checkpoint: Callable[[], None] | None = None
        names = problem.measure_names
        self.m = len(names)
        self.wj = names.index(problem.workload_name)
        vals = np.column_stack([problem.measures[x] for x in names])
        self.vals: list[list[float]] = vals.tolist()
        lo, hi = problem.bounds
        self.lo: list[list[float]] = lo.tolist()
        self.hi: list[list[float]] = hi.tolist()
        tgt = problem.targets
        self.norm: list[float] = [max(float(tgt[:, j].mean()), _TINY) for j in range(self.m)]
        self.w: list[float] = problem.workload.tolist()
        nbs = problem.neighbors
        self.nb: list[list[int]] = [
            [int(v) for v in nbs[u] if act[v]] if act[u] else [] for u in range(self.n)
        ]
        self.members: list[set[int]] = [set() for _ in range(self.k)]
        self.loads: list[list[float]] = [[0.0] * self.m for _ in range(self.k)]
        for u, o in enumerate(self.owner):
            if o >= 0:
                self.members[o].add(u)
                row = self.vals[u]
                ld = self.loads[o]
                for j in range(self.m):
                    ld[j] += row[j]
        lonlat = np.radians(problem.centroids)
        self.ulon: list[float] = lonlat[:, 0].tolist()
        self.ulat: list[float] = lonlat[:, 1].tolist()
        self.ucos: list[float] = np.cos(lonlat[:, 1]).tolist()
        self.hlon: list[float]
        self.hlat: list[float]
        self.hcos: list[float]
        # (K, 3) centre drift per territory (geo.centre_drift) while the homes are moving centroids, else None
        self.drift: list[list[float]] | None = None
        self.uxyz: list[list[float]] | None = None
        self.set_homes(homes)
        cur = problem.current_owner
        self.cur: list[int] | None = None if cur is None else cur.tolist()
        self.lam = float(problem.options.disruption_weight) if cur is not None else 0.0
        opt = problem.options
        self.budget_units: float | None = None
        self.budget_w: float | None = None
        self.moved_units = 0
        self.moved_w = 0.0
        self.in_base = [False] * self.n
        self.hard_budget = problem.has_move_budget
        # candidate units examined by ejection chains so far, and the limit repair_balance sets on it
        self.eject_work = 0
        self.eject_limit: float = float("inf")
        if self.cur is not None:
            current = opt.current or {}
            base = [u for u in range(self.n) if self.active[u] and problem.unit_ids[u] in current]
            for u in base:
                self.in_base[u] = True
            if opt.max_moved_units is not None:
                self.budget_units = opt.max_moved_units * len(base) + 1e-9
            if opt.max_moved_workload is not None:
                self.budget_w = opt.max_moved_workload * sum(self.w[u] for u in base) * (1 + 1e-12) + 1e-9
            for u in base:
                if self.owner[u] != self.cur[u]:
                    self.moved_units += 1
                    self.moved_w += self.w[u]

    def set_homes(self, homes: np.ndarray, drift: np.ndarray | None = None) -> None:
        """Measure costs from new rep homes (lon/lat, (K, 2)).

        With ``drift`` ((K, 3), :func:`optimizer.geo.centre_drift` of each territory, zero rows for fixed
        homes) the homes are the territories' centroids and a unit's cost also counts, to first order, how
        its move shifts the centroid it joins or leaves and with it the distance of every other member.
        """
        hr = np.radians(homes)
        self.hlon = hr[:, 0].tolist()
        self.hlat = hr[:, 1].tolist()
        self.hcos = np.cos(hr[:, 1]).tolist()
        self.drift = None if drift is None else drift.tolist()
        if drift is not None and self.uxyz is None:
            self.uxyz = self.p.unit_xyz.tolist()

    def home_points(self) -> np.ndarray:
        """(K, 2) lon/lat degrees of the homes the costs are measured from."""
        return np.degrees(np.column_stack([self.hlon, self.hlat]))

    # ----- costs -----
    def dist(self, u: int, k: int) -> float:
        dlat = self.hlat[k] - self.ulat[u]
        dlon = self.hlon[k] - self.ulon[u]
        h = math.sin(dlat / 2) ** 2 + self.ucos[u] * self.hcos[k] * math.sin(dlon / 2) ** 2
        return 12742.0176 * math.asin(math.sqrt(min(1.0, h)))

    def cost(self, u: int, k: int) -> float:
        c = self.w[u] * self.dist(u, k)
        if self.drift is not None and self.uxyz is not None:
            g, x = self.drift[k], self.uxyz[u]
            c -= self.w[u] * (g[0] * x[0] + g[1] * x[1] + g[2] * x[2])
        if self.lam and self.cur is not None and self.cur[u] != k:
            c += self.lam * self.w[u]
        return c

    def total_cost(self) -> float:
        return sum(self.cost(u, o) for u, o in enumerate(self.owner) if o >= 0)

    # ----- balance -----
    def viol_of(self, k: int, load: list[float]) -> float:
        v = 0.0
        lo, hi = self.lo[k], self.hi[k]
        for j in range(self.m):
            x = load[j]
            if x > hi[j]:
                v += (x - hi[j]) / self.norm[j]
            elif x < lo[j]:
                v += (lo[j] - x) / self.norm[j]
        return v

    def viol_matrix(self, reps: np.ndarray) -> np.ndarray:
        """``V[i, j]``: :meth:`viol_of` for territory ``reps[i]``'s loads in rep ``reps[j]``'s band, for all
        pairs at once."""
        loads = np.asarray(self.loads)[reps][:, None, :]
        lo = np.asarray(self.lo)[reps][None, :, :]
        hi = np.asarray(self.hi)[reps][None, :, :]
        out = np.maximum(loads - hi, 0.0) + np.maximum(lo - loads, 0.0)
        return (out / np.asarray(self.norm)).sum(axis=2)

    def viol(self, k: int) -> float:
        return self.viol_of(k, self.loads[k])

    def total_viol(self) -> float:
        return sum(self.viol(k) for k in range(self.k))

    def is_over(self, k: int) -> bool:
        """Territory ``k`` is above its band in some measure (it must give units, not take them)."""
        return any(self.loads[k][j] > self.hi[k][j] for j in range(self.m))

    def delta_viol(self, u: int, a: int, b: int) -> float:
        row = self.vals[u]
        la = [self.loads[a][j] - row[j] for j in range(self.m)]
        lb = [self.loads[b][j] + row[j] for j in range(self.m)]
        return self.viol_of(a, la) + self.viol_of(b, lb) - self.viol(a) - self.viol(b)

    def delta_viol_group(self, group: list[int], a: int, b: int) -> float:
        tot = [sum(self.vals[x][j] for x in group) for j in range(self.m)]
        la = [self.loads[a][j] - tot[j] for j in range(self.m)]
        lb = [self.loads[b][j] + tot[j] for j in range(self.m)]
        return self.viol_of(a, la) + self.viol_of(b, lb) - self.viol(a) - self.viol(b)

    # ----- disruption -----
    def adds_disruption_under_budget(self, u: int, b: int) -> bool:
        """Under a hard move budget, giving ``u`` to ``b`` moves it away from its current rep: improvement
        never does that (only balance repair may spend the budget)."""
        return self.hard_budget and self.cur is not None and self.in_base[u] and b != self.cur[u]

    def budget_ok(self, u: int, a: int, b: int) -> bool:
        return self.budget_ok_group([u], a, b)

    def budget_ok_group(self, group: list[int], a: int, b: int) -> bool:
        if self.cur is None:
            return True
        du = 0
        dw = 0.0
        for u in group:
            if self.in_base[u]:
                d = (b != self.cur[u]) - (a != self.cur[u])
                du += d
                dw += d * self.w[u]
        if du <= 0 and dw <= 0:
            return True
        if self.budget_units is not None and self.moved_units + du > self.budget_units:
            return False
        return not (self.budget_w is not None and self.moved_w + dw > self.budget_w)

    # ----- moves -----
    def move(self, u: int, b: int) -> None:
        a = self.owner[u]
        row = self.vals[u]
        for j in range(self.m):
            self.loads[a][j] -= row[j]
            self.loads[b][j] += row[j]
        self.members[a].discard(u)
        self.members[b].add(u)
        self.owner[u] = b
        if self.cur is not None and self.in_base[u]:
            du = (b != self.cur[u]) - (a != self.cur[u])
            self.moved_units += du
            self.moved_w += du * self.w[u]

    def can_remove(self, u: int) -> bool:
        """Territory of ``u`` stays connected (and non-empty) without ``u``."""
        a = self.owner[u]
        if len(self.members[a]) <= 1:
            return False
        if not self.p.options.contiguity:
            return True
        own = self.owner
        targets = [v for v in self.nb[u] if own[v] == a]
        if len(targets) <= 1:
            return True
        need = set(targets[1:])
        seen = {u, targets[0]}
        queue = deque([targets[0]])
        while queue:
            x = queue.popleft()
            for y in self.nb[x]:
                if y not in seen and own[y] == a:
                    if y in need:
                        need.discard(y)
                        if not need:
                            return True
                    seen.add(y)
                    queue.append(y)
        return False

    def detach_set(self, u: int) -> list[int] | None:
        """Units that must leave with ``u`` to keep its territory connected: ``u`` plus every piece of the
        territory that removing ``u`` cuts off from the main piece (the one holding fixed units, else the
        heaviest). None when a fixed unit would have to leave or nothing would remain."""
        a = self.owner[u]
        own = self.owner
        starts = [v for v in self.nb[u] if own[v] == a]
        seen = {u}
        parts: list[list[int]] = []
        for s0 in starts:
            if s0 in seen:
                continue
            comp = [s0]
            seen.add(s0)
            queue = deque([s0])
            while queue:
                x = queue.popleft()
                for y in self.nb[x]:
                    if y not in seen and own[y] == a:
                        seen.add(y)
                        comp.append(y)
                        queue.append(y)
            parts.append(comp)
        if not parts:
            return [u] if len(self.members[a]) > 1 else None

        def key(part: list[int]) -> tuple[int, float, int]:
            return (
                0 if any(self.fixed[x] >= 0 for x in part) else 1,
                -sum(self.w[x] for x in part),
                min(part),
            )

        parts.sort(key=key)
        out = [u]
        for part in parts[1:]:
            if any(self.fixed[x] >= 0 for x in part):
                return None
            out.extend(part)
        if len(out) >= len(self.members[a]):
            return None
        return sorted(out)

    def seed_empty(self, max_candidates: int = 500) -> int:
        """Give every territory without units (e.g. a new rep starting from the current plan under a hard move
        budget) one unit: the unit nearest its home that may leave its owner (not locked, owner stays
        connected and non-empty, budget holds), so that balance repair can grow it from there. Returns the
        number of territories seeded."""
        seeded = 0
        for k in range(self.k):
            if self.members[k]:
                continue
            cands = [u for u in range(self.n) if self.movable(u)]
            cands.sort(key=lambda u: (self.dist(u, k), u))
            for u in cands[:max_candidates]:
                a = self.owner[u]
                if self.budget_ok(u, a, k) and self.can_remove(u):
                    self.move(u, k)
                    seeded += 1
                    break
        return seeded

    def movable(self, u: int) -> bool:
        return self.fixed[u] < 0 and self.owner[u] >= 0

    # ----- contiguity -----
    def pieces(self, k: int) -> list[list[int]]:
        mem = self.members[k]
        seen: set[int] = set()
        out: list[list[int]] = []
        for s in sorted(mem):
            if s in seen:
                continue
            comp = [s]
            seen.add(s)
            queue = deque([s])
            while queue:
                x = queue.popleft()
                for y in self.nb[x]:
                    if y in mem and y not in seen:
                        seen.add(y)
                        comp.append(y)
                        queue.append(y)
            out.append(sorted(comp))
        return out

    def repair_contiguity(self, max_rounds: int = 50) -> int:
        """Dissolve every detached fragment into the adjacent territories, unit by unit from the outside in
        (each unit goes to the cheapest adjacent territory), so no single neighbour swallows a big
        fragment."""
        moved = 0
        for _ in range(max_rounds):
            changed = False
            for k in range(self.k):
                parts = self.pieces(k)
                if len(parts) <= 1:
                    continue

                def keep_key(part: list[int], k: int = k) -> tuple[int, float, int]:
                    anchored = any(self.fixed[u] == k for u in part)
                    return (0 if anchored else 1, -sum(self.w[u] for u in part), part[0])

                parts.sort(key=keep_key)
                for part in parts[1:]:
                    if any(self.fixed[u] == k for u in part):
                        continue  # a second anchored piece cannot move; reported by the checker
                    moved += self._dissolve(part, k)
                    changed = True
            if not changed:
                break
        return moved

    def _dissolve(self, part: list[int], k: int) -> int:
        left = set(part)
        moved = 0
        while left:
            progress = False
            for u in sorted(left):
                cands = sorted({self.owner[v] for v in self.nb[u]} - {k, -1})
                if not cands:
                    continue
                scored = [(self.delta_viol(u, k, b) * 1e4 + self.cost(u, b) / self.norm[0], b) for b in cands]
                best = min(scored)[1]
                self.move(u, best)
                left.discard(u)
                moved += 1
                progress = True
            if not progress:
                break
        return moved

    # ----- flow-based rebalancing on the territory graph -----
    def territory_graph(self) -> list[tuple[int, int]]:
        """Ordered pairs ``(a, b)`` of territories that share an edge, sorted."""
        adj = territory_adjacency(self.p, self.owner_array())
        return [(a, b) for a in range(self.k) for b in sorted(adj[a])]

    def transfer(self, a: int, b: int, amount: float, j: int) -> float:
        """Move units of ``a`` that touch ``b`` into ``b`` until about ``amount`` of measure ``j`` moved.
        An articulation unit moves together with the pieces it would cut off (``detach_set``)."""
        moved = 0.0
        own = self.owner
        while moved < amount:
            cands = []
            for u in self.members[a]:
                if not self.movable(u) or not any(own[v] == b for v in self.nb[u]):
                    continue
                wu = self.vals[u][j]
                dc = self.cost(u, b) - self.cost(u, a)
                cands.append(((dc / wu) if wu > 0 else dc, u))
            if not cands:
                break
            cands.sort()
            progress = False
            for _, u in cands:
                if moved >= amount:
                    break
                if own[u] != a or not any(own[v] == b for v in self.nb[u]):
                    continue
                if self.can_remove(u):
                    group = [u]
                else:
                    grp = self.detach_set(u)
                    if grp is None:
                        continue
                    group = grp
                gw = sum(self.vals[x][j] for x in group)
                if gw > 0 and abs(amount - moved - gw) >= abs(amount - moved):
                    continue
                if not self.budget_ok_group(group, a, b):
                    continue
                for x in group:
                    self.move(x, b)
                moved += gw
                progress = True
            if not progress:
                break
        return moved

    def rebalance_flow(self, rounds: int = 4) -> int:
        """Route surpluses to deficits over the territory adjacency graph (min-cost flow, one unit of cost
        per hop) and realise every arc's flow by moving boundary units; repeated up to ``rounds`` times."""
        from ortools.graph.python import min_cost_flow

        j = self.wj
        tgt = self.p.targets[:, j]
        lo = np.array([x[j] for x in self.lo])
        hi = np.array([x[j] for x in self.hi])
        if not np.isfinite(hi).all():
            return 0
        scale = 1e6 / max(float(tgt.sum()), 1e-12) * self.k
        done = 0
        for _ in range(rounds):
            load = np.array([x[j] for x in self.loads])
            if ((load >= lo - 1e-9) & (load <= hi + 1e-9)).all():
                break
            done += 1
            excess = np.where(load > hi, load - tgt, 0.0) + np.where(load < lo, load - tgt, 0.0)
            room_up = np.where(load <= hi, np.maximum(tgt + (hi - tgt) * 0.5 - load, 0), 0.0)
            room_dn = np.where(load >= lo, np.maximum(load - tgt + (tgt - lo) * 0.5, 0), 0.0)
            pairs = self.territory_graph()
            if not pairs:
                break
            f = min_cost_flow.SimpleMinCostFlow()
            kk = self.k
            src, snk = kk, kk + 1
            t = np.array([a for a, _ in pairs], dtype=np.int64)
            h = np.array([b for _, b in pairs], dtype=np.int64)
            big = int(1e15)
            f.add_arcs_with_capacity_and_unit_cost(
                t, h, np.full(len(t), big), np.ones(len(t), dtype=np.int64)
            )
            sur = np.rint(np.maximum(excess, 0) * scale).astype(np.int64)
            dem = np.rint(np.maximum(-excess, 0) * scale).astype(np.int64)
            up = np.rint(room_up * scale).astype(np.int64)
            dn = np.rint(room_dn * scale).astype(np.int64)
            give = sur + np.where(sur > 0, 0, dn)
            take = dem + np.where(dem > 0, 0, up)
            f.add_arcs_with_capacity_and_unit_cost(
                np.full(kk, src), np.arange(kk), give, np.where(sur > 0, 0, 1000).astype(np.int64)
            )
            f.add_arcs_with_capacity_and_unit_cost(
                np.arange(kk), np.full(kk, snk), take, np.where(dem > 0, 0, 1000).astype(np.int64)
            )
            need = int(max(sur.sum(), dem.sum()))
            f.add_arcs_with_capacity_and_unit_cost(
                np.array([src]), np.array([snk]), np.array([big]), np.array([10**9], dtype=np.int64)
            )
            supplies = np.zeros(kk + 2, dtype=np.int64)
            supplies[src] = need
            supplies[snk] = -need
            f.set_nodes_supplies(np.arange(kk + 2), supplies)
            if f.solve() != f.OPTIMAL:
                break
            flows = f.flows(np.arange(len(t)))
            moves = [(int(flows[i]) / scale, int(t[i]), int(h[i])) for i in np.flatnonzero(flows > 0)]
            moves.sort(key=lambda x: (-x[0], x[1], x[2]))
            for amount, a, b in moves:
                self.transfer(a, b, amount, j)
        return done

    # ----- balance repair -----
    def _best_single(self, k: int) -> tuple[list[int], int, int] | None:
        """Best single (or detach-group) move that lowers the total violation, involving territory ``k``."""
        over = self.is_over(k)
        under = any(self.loads[k][j] < self.lo[k][j] for j in range(self.m))
        cands: list[tuple[float, int, int, int]] = []
        own = self.owner
        if over:
            for u in sorted(self.members[k]):
                if not self.movable(u):
                    continue
                for b in sorted({own[v] for v in self.nb[u]} - {k, -1}):
                    dv = self.delta_viol(u, k, b)
                    if dv < -_TINY:
                        dc = self.cost(u, b) - self.cost(u, k)
                        cands.append((dv * 1e4 + dc / self.norm[0] * 1e-3, u, k, b))
        if under:
            border = sorted({v for u in self.members[k] for v in self.nb[u] if own[v] != k and own[v] >= 0})
            for v in border:
                if not self.movable(v):
                    continue
                a = own[v]
                dv = self.delta_viol(v, a, k)
                if dv < -_TINY:
                    dc = self.cost(v, k) - self.cost(v, a)
                    cands.append((dv * 1e4 + dc / self.norm[0] * 1e-3, v, a, k))
        cands.sort()
        for _, u, a, b in cands:
            if self.can_remove(u):
                if self.budget_ok(u, a, b):
                    return [u], a, b
                continue
            grp = self.detach_set(u)
            if (
                grp is not None
                and self.delta_viol_group(grp, a, b) < -_TINY
                and self.budget_ok_group(grp, a, b)
            ):
                return grp, a, b
        return None

    def territory_neighbors(self, k: int) -> list[int]:
        own = self.owner
        return sorted({own[v] for u in self.members[k] for v in self.nb[u]} - {k, -1})

    def _chain(self, k: int, max_len: int = 6, max_paths: int = 4) -> bool:
        """Push (or pull) workload along a path of adjacent territories to one with room."""
        over = self.is_over(k)
        parent = {k: -1}
        queue = deque([k])
        depth = {k: 0}
        ends: list[int] = []
        while queue and len(ends) < max_paths:
            t = queue.popleft()
            if depth[t] >= max_len:
                continue
            for b in self.territory_neighbors(t):
                if b in parent:
                    continue
                parent[b] = t
                depth[b] = depth[t] + 1
                queue.append(b)
                if self.viol(b) == 0:
                    room = (
                        any(self.loads[b][j] < self.hi[b][j] - _TINY for j in range(self.m))
                        if over
                        else any(self.loads[b][j] > self.lo[b][j] + _TINY for j in range(self.m))
                    )
                    if room:
                        ends.append(b)
        for end in ends:
            path = [end]
            while path[-1] != k:
                path.append(parent[path[-1]])
            path.reverse()
            # only the path's territories change: compare their violation, not the whole plan's
            before = sum(self.viol(t) for t in path)
            log: list[tuple[int, int]] = []
            ok = True
            for i in range(len(path) - 1):
                src, dst = (path[i], path[i + 1]) if over else (path[i + 1], path[i])
                fix = path[i]
                best = None
                for u in sorted(self.members[src]):
                    if not self.movable(u) or not any(self.owner[v] == dst for v in self.nb[u]):
                        continue
                    if not self.budget_ok(u, src, dst):
                        continue
                    row = self.vals[u]
                    sign = -1 if fix == src else 1
                    lf = [self.loads[fix][j] + sign * row[j] for j in range(self.m)]
                    key = (self.viol_of(fix, lf), (self.cost(u, dst) - self.cost(u, src)) / self.norm[0], u)
                    if (best is None or key < best[0]) and self.can_remove(u):
                        best = (key, u)
                if best is None:
                    ok = False
                    break
                u = best[1]
                log.append((u, src))
                self.move(u, dst)
            if ok and sum(self.viol(t) for t in path) < before - _TINY:
                return True
            for u, src in reversed(log):
                self.move(u, src)
        return False

    def eject_chain(self, k0: int, max_depth: int = 6, budget: int = 2000) -> bool:
        """Ejection chain with backtracking. ``k0`` (out of band) sends a boundary unit to a neighbour (or,
        when short, takes one), the neighbour passes its new excess on, and so on along a path of distinct
        territories until one absorbs it inside its band, or the path closes back at ``k0`` (so ``k0`` may
        first overshoot: a big unit out, a smaller one back). Every other territory on the path ends inside
        its band (or no worse than before), ``k0`` ends closer to its band, every move keeps both territories
        connected and the disruption budget holds. Depth-first over candidate units (cheapest first), at most
        ``budget`` tried moves; returns True when the moves were kept (total violation dropped)."""
        over = self.is_over(k0)
        v0 = self.viol(k0)
        if v0 <= 0 or self.eject_work > self.eject_limit:
            return False
        before: dict[int, float] = {k0: v0}
        tries = [0]
        own = self.owner
        row = self.vals

        def landed(t: int, u: int, sign: int) -> float:
            ld = self.loads[t]
            return self.viol_of(t, [ld[j] + sign * row[u][j] for j in range(self.m)])

        def step(t: int, depth: int, path: set[int]) -> bool:
            if self.eject_work > self.eject_limit:
                return False
            cands: list[tuple[int, float, float, int, int]] = []
            for b in self.territory_neighbors(t):
                closing = b == k0
                if (b in path and not closing) or (closing and depth == 0):
                    continue
                src, dst = (t, b) if over else (b, t)
                self.eject_work += len(self.members[src])
                for u in sorted(self.members[src]):
                    if not self.movable(u) or not any(own[v] == dst for v in self.nb[u]):
                        continue
                    # the territory we stand on lands in its band (k0 may overshoot: the path must close)
                    vt = landed(t, u, -1 if over else 1)
                    if t != k0 and vt > _TINY:
                        continue
                    if b not in before:
                        before[b] = self.viol(b)
                    vb = landed(b, u, 1 if over else -1)
                    if closing:
                        if vb >= v0 - _TINY:
                            continue
                        ends = 0
                    else:
                        vk = vt if t == k0 else self.viol(k0)
                        ends = 0 if (vb <= before[b] + _TINY and vk < v0 - _TINY) else 1
                        if ends and depth + 1 >= max_depth:
                            continue
                    wu = row[u][self.wj]
                    dc = self.cost(u, dst) - self.cost(u, src)
                    cands.append((ends, vt if t == k0 else 0.0, (dc / wu) if wu > 0 else dc, u, b))
            cands.sort()
            for ends, _vt, _dc, u, b in cands:
                if tries[0] >= budget or self.eject_work > self.eject_limit:
                    return False
                tries[0] += 1
                src, dst = (t, b) if over else (b, t)
                if own[u] != src or not self.budget_ok(u, src, dst) or not self.can_remove(u):
                    continue
                self.move(u, dst)
                if ends == 0 or step(b, depth + 1, path | {b}):
                    return True
                self.move(u, src)
            return False

        return step(k0, 0, {k0})

    def repair_balance(self, max_iters: int = 20000, eject_work: int = 2_000_000) -> bool:
        """Single moves first, chain moves when stuck (greedy paths, then ejection chains of growing depth);
        returns True when every territory is in its band. The ejection chains of this call examine at most
        ``eject_work`` candidate units in all (a deterministic work limit: a successful repair needs far less,
        a hopeless one would otherwise search for minutes)."""
        self.eject_limit = self.eject_work + eject_work
        stuck: set[int] = set()
        for _ in range(max_iters):
            viols = [(self.viol(k), k) for k in range(self.k)]
            bad = sorted((-v, k) for v, k in viols if v > 0 and k not in stuck)
            if not bad:
                return all(v == 0 for v, _ in viols)
            k = bad[0][1]
            mv = self._best_single(k)
            if mv is not None:
                group, _a, b = mv
                for x in group:
                    self.move(x, b)
                stuck.clear()
                continue
            if self._chain(k) or any(self.eject_chain(k, max_depth=d) for d in range(2, 8)):
                stuck.clear()
                continue
            stuck.add(k)
        return self.total_viol() == 0

    # ----- disruption -----
    def revert_moves(self, max_passes: int = 10) -> int:
        """Give moved units back to their current rep where balance, contiguity and locks allow."""
        if self.cur is None:
            return 0
        total = 0
        for _ in range(max_passes):
            count = 0
            for u in range(self.n):
                a = self.owner[u]
                if a < 0 or not self.in_base[u] or self.fixed[u] >= 0:
                    continue
                c = self.cur[u]
                if c < 0 or c == a or not any(self.owner[v] == c for v in self.nb[u]):
                    continue
                if self.delta_viol(u, a, c) > _TINY or not self.can_remove(u):
                    continue
                self.move(u, c)
                count += 1
            total += count
            if count == 0:
                break
        return total

    # ----- improvement -----
    def improve(self, max_passes: int = 30) -> int:
        """Move boundary units to a cheaper adjacent territory while balance, contiguity and budget hold."""
        total = 0
        for _ in range(max_passes):
            if self.checkpoint is not None:
                self.checkpoint()
            count = 0
            for u in range(self.n):
                a = self.owner[u]
                if a < 0 or self.fixed[u] >= 0:
                    continue
                ca = None  # priced at the first neighbour in another territory (most units have none)
                best = None
                seen: list[int] = []  # a territory met again through another neighbour gives the same move
                for v in self.nb[u]:
                    b = self.owner[v]
                    if b == a or b < 0 or b in seen:
                        continue
                    seen.append(b)
                    if ca is None:
                        ca = self.cost(u, a)
                    dc = self.cost(u, b) - ca
                    if dc >= -1e-9 * max(1.0, abs(ca)) or (best is not None and dc >= best[0]):
                        continue
                    if self.delta_viol(u, a, b) > _TINY or not self.budget_ok(u, a, b):
                        continue
                    if self.adds_disruption_under_budget(u, b):
                        continue
                    best = (dc, b)
                if best is not None and self.can_remove(u):
                    self.move(u, best[1])
                    count += 1
            total += count
            if count == 0:
                break
        return total

    def improve_swaps(self, max_passes: int = 3, top: int = 12) -> int:
        """Exchange a boundary unit of ``a`` with one of ``b`` when together they lower the cost and both
        territories stay in band, connected and within the disruption budget."""
        total = 0
        for _ in range(max_passes):
            if self.checkpoint is not None:
                self.checkpoint()
            count = 0
            for a, b in self.territory_graph():
                if a > b:
                    continue
                own = self.owner
                ua = [
                    (self.cost(u, a) - self.cost(u, b), u)
                    for u in sorted(self.members[a])
                    if self.movable(u) and any(own[v] == b for v in self.nb[u])
                ]
                vb = [
                    (self.cost(v, b) - self.cost(v, a), v)
                    for v in sorted(self.members[b])
                    if self.movable(v) and any(own[x] == a for x in self.nb[v])
                ]
                ua.sort(key=lambda x: (-x[0], x[1]))
                vb.sort(key=lambda x: (-x[0], x[1]))
                done = False
                for gu, u in ua[:top]:
                    if done:
                        break
                    for gv, v in vb[:top]:
                        if gu + gv <= 1e-9 * (abs(gu) + abs(gv) + 1.0):
                            continue
                        ru, rv = self.vals[u], self.vals[v]
                        la = [self.loads[a][j] - ru[j] + rv[j] for j in range(self.m)]
                        lb = [self.loads[b][j] + ru[j] - rv[j] for j in range(self.m)]
                        if self.viol_of(a, la) + self.viol_of(b, lb) > self.viol(a) + self.viol(b) + _TINY:
                            continue
                        if not self.budget_ok_group([u], a, b):
                            continue
                        if self.adds_disruption_under_budget(u, b) or self.adds_disruption_under_budget(v, a):
                            continue
                        if not self.can_remove(u):
                            continue
                        self.move(u, b)
                        ok = (
                            any(self.owner[x] == a for x in self.nb[v])
                            and self.can_remove(v)
                            and self.budget_ok_group([v], b, a)
                        )
                        if ok:
                            self.move(v, a)
                            # v joined a next to a unit of a; u's departure was checked before
                            if len(self.pieces(a)) == 1 and len(self.pieces(b)) == 1:
                                count += 1
                                done = True
                                break
                            self.move(v, b)
                        self.move(u, a)
            total += count
            if count == 0:
                break
        return total

    def owner_array(self) -> np.ndarray:
        return np.array(self.owner, dtype=np.int64)

    def restore(self, owner: np.ndarray) -> None:
        """Go back to the plan ``owner`` (rep per unit, e.g. an earlier :meth:`owner_array`), moving only the
        units whose owner differs."""
        for u in np.flatnonzero(self.owner_array() != owner).tolist():
            self.move(u, int(owner[u]))

    def relabel(self, new_rep: list[int]) -> None:
        """Give every territory ``k`` to rep ``new_rep[k]`` (a permutation of the reps), units and loads
        unchanged. Not for plans with a current assignment: the moved-unit counts are not updated."""
        assert self.cur is None, "relabel would change the disruption counts"
        self.owner = [new_rep[o] if o >= 0 else -1 for o in self.owner]
        members, loads = list(self.members), list(self.loads)
        for k, r in enumerate(new_rep):
            members[r], loads[r] = self.members[k], self.loads[k]
        self.members, self.loads = members, loads
