"""CP-SAT on windows of adjacent territories: repair balance where local moves get stuck, then polish.

A window is a small set of adjacent territories taken whole, so contiguity inside the window is contiguity of
the territories. Units keep their owner outside the window; inside, the CP-SAT model of :mod:`optimizer.cpsat`
re-optimises the assignment with flow contiguity (rooted at each territory's fixed unit or the unit nearest
its home), the balance band (hard when polishing, soft with a penalty when repairing), the remaining
disruption budget, and the current plan as a hint. Windows are chosen by deterministic scores and solved with
deterministic work limits, so results do not depend on machine load.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .chains import improve_chains
from .cpsat import ModelInput, solve_model
from .local_search import State


def _border_zone(st: State, units: list[int], hops: int) -> set[int]:
    """Units within ``hops`` steps (inside the window) of a unit owned by another window territory."""
    inside = set(units)
    frontier = {u for u in units if any(v in inside and st.owner[v] != st.owner[u] for v in st.nb[u])}
    zone = set(frontier)
    for _ in range(hops):
        nxt = {v for u in frontier for v in st.nb[u] if v in inside and v not in zone}
        zone |= nxt
        frontier = nxt
    return zone


def _window_input(
    st: State, terrs: list[int], soft: bool, hops: int | None = None
) -> tuple[ModelInput, list[int]]:
    units = sorted(u for t in terrs for u in st.members[t])
    loc = {u: i for i, u in enumerate(units)}
    tl = {t: i for i, t in enumerate(terrs)}
    cost = np.array([[st.cost(u, t) for t in terrs] for u in units])
    vals = np.array([st.vals[u] for u in units]).reshape(len(units), st.m)
    lo = np.array([st.lo[t] for t in terrs])
    hi = np.array([st.hi[t] for t in terrs])
    edges = sorted({(loc[u], loc[v]) for u in units for v in st.nb[u] if v in loc and loc[u] < loc[v]})
    fixed = {loc[u]: tl[st.fixed[u]] for u in units if st.fixed[u] >= 0 and st.fixed[u] in tl}
    if hops is not None:
        zone = _border_zone(st, units, hops)
        for u in units:
            if u not in zone:
                fixed.setdefault(loc[u], tl[st.owner[u]])
    roots: list[int | None] = []
    for t in terrs:
        if not st.members[t]:  # an empty territory (e.g. a new rep): the model chooses its root
            roots.append(None)
            continue
        cands = [u for u in st.members[t] if st.fixed[u] == t]
        if not cands:
            cands = [min((st.dist(u, t), u) for u in st.members[t])[1]]
        r = loc[min(cands)]
        roots.append(r)
        fixed[r] = tl[t]
    hint = [tl[st.owner[u]] for u in units]
    budget = None
    if st.cur is not None and (st.budget_units is not None or st.budget_w is not None):
        inside_moved_u = sum(1 for u in units if st.in_base[u] and st.owner[u] != st.cur[u])
        inside_moved_w = sum(st.w[u] for u in units if st.in_base[u] and st.owner[u] != st.cur[u])
        max_u = None if st.budget_units is None else st.budget_units - (st.moved_units - inside_moved_u)
        max_w = None if st.budget_w is None else st.budget_w - (st.moved_w - inside_moved_w)
        cur = [tl.get(st.cur[u], -2) if st.in_base[u] else -1 for u in units]
        # units whose current rep is outside the window count as moved whatever happens
        cur = [c if c != -2 else -1 for c in cur]
        extra_u = sum(1 for u in units if st.in_base[u] and st.cur[u] not in tl)
        extra_w = sum(st.w[u] for u in units if st.in_base[u] and st.cur[u] not in tl)
        if max_u is not None:
            max_u -= extra_u
        if max_w is not None:
            max_w -= extra_w
        budget = (max_u, max_w, cur, [st.w[u] for u in units])
    mi = ModelInput(
        units=units,
        terrs=terrs,
        cost=cost,
        vals=vals,
        lo=lo,
        hi=hi,
        edges=edges,
        roots=roots,
        fixed=fixed,
        hint=hint,
        soft_balance=soft,
        contiguity=st.p.options.contiguity,
        moved_budget=budget,
    )
    return mi, units


def solve_window(
    st: State,
    terrs: list[int],
    *,
    soft: bool,
    seed: int,
    workers: int,
    det_time: float,
    hops: int | None = None,
    wall_cap: float | None = None,
) -> bool:
    """Re-optimise one window in place (units farther than ``hops`` from the territories' shared border keep
    their owner); returns True when the plan changed for the better."""
    mi, units = _window_input(st, terrs, soft, hops)
    before_cost = sum(st.cost(u, st.owner[u]) for u in units)
    before_viol = sum(st.viol(t) for t in terrs)
    wall = max(10.0, det_time * 20)
    if wall_cap is not None:
        wall = max(0.1, min(wall, wall_cap))
    res = solve_model(mi, seed=seed, workers=workers, det_time=det_time, wall_time=wall)
    if res.assign is None:
        return False
    new_owner = [terrs[t] for t in res.assign]
    old = [st.owner[u] for u in units]
    for u, t in zip(units, new_owner, strict=True):
        if st.owner[u] != t:
            st.move(u, t)
    after_cost = sum(st.cost(u, st.owner[u]) for u in units)
    after_viol = sum(st.viol(t) for t in terrs)
    better = after_viol < before_viol - 1e-12 or (
        after_viol <= before_viol + 1e-12 and after_cost < before_cost * (1 - 1e-9)
    )
    if not better:
        for u, t in zip(units, old, strict=True):
            if st.owner[u] != t:
                st.move(u, t)
    return better


def _dev(st: State, t: int) -> float:
    j = st.wj
    return (st.loads[t][j] - (st.lo[t][j] + st.hi[t][j]) / 2) / st.norm[j]


def repair_windows(
    st: State,
    *,
    seed: int,
    workers: int,
    max_windows: int = 40,
    size: int = 6,
    wide_size: int = 16,
    time_left: Callable[[], float] | None = None,
) -> int:
    """Soft-balance windows around every territory outside its band: first pairs with a neighbour that
    deviates the other way, then the territory with its neighbours (those with most room first), then a wide
    window of up to ``wide_size`` territories within two steps."""
    done = 0
    tried: set[tuple[int, ...]] = set()
    while done < max_windows:
        bad = sorted(((v, t) for t in range(st.k) if (v := st.viol(t)) > 0), reverse=True)
        if not bad:
            break
        progress = False
        for _, t in bad:
            nbrs = st.territory_neighbors(t)
            dt = _dev(st, t)
            opposite = sorted(
                (b for b in nbrs if _dev(st, b) * dt < 0), key=lambda b: (abs(dt + _dev(st, b)), b)
            )
            windows: list[tuple[int, ...]] = [(t, b) for b in opposite[:2]]
            ring = sorted(nbrs, key=lambda b: (_dev(st, b) * (1 if dt > 0 else -1), b))[: size - 1]
            windows.append((t, *ring))
            # last: every neighbour, then neighbours' neighbours (dense metro areas, where units are a large
            # share of a territory and no small window has a combination of units that fits every band)
            wide = [t, *nbrs]
            for b in nbrs:
                wide += [c for c in st.territory_neighbors(b) if c not in wide]
            windows.append(tuple(wide[:wide_size]))
            for win in windows:
                key = tuple(sorted(win))
                if key in tried:
                    continue
                tried.add(key)
                left = math.inf if time_left is None else time_left()
                if left <= 0:
                    return done
                done += 1
                cap = None if time_left is None else left
                # pairs are quick; the larger windows are where hard cases end up (national K=500, one NYC
                # territory 2.4 % short: its 5-territory window needed 4.9 s with 2 workers, 18.5 s with 1)
                det = 2.0 if len(key) <= 2 else 10.0
                if solve_window(
                    st, list(key), soft=True, seed=seed, workers=workers, det_time=det, wall_cap=cap
                ):
                    progress = True
                    break
                if done >= max_windows:
                    break
            if progress or done >= max_windows:
                break
        if not progress:
            break
    return done


def polish_windows(
    st: State, options: Any, clock: Any, stop_at: float = 0.8, between: Callable[[], Any] | None = None
) -> dict[str, Any]:
    """Repair windows (when needed), then pair windows ranked by how much their boundary units would gain by
    switching sides; ``options.window_rounds`` rounds of at most ``options.window_pairs`` pairs each. No
    window starts after ``stop_at`` x ``options.time_limit`` seconds (the wall-clock guard). After every round
    that was not cut short, boundary moves and cost-lowering ejection chains (``options.chain_work``, no chain
    starting past the guard), then ``between`` before the next round (e.g. re-centring the chosen centres)."""
    info: dict[str, Any] = {"repair_windows": 0, "pair_windows": 0, "improved": 0, "time_guard_hit": False}
    # one worker per polishing window: with interleaved (deterministic) search two workers cost ~4x the wall
    # time here; repair windows (rare, hard feasibility searches) use the configured workers
    seed, workers = int(options.seed), 1
    if st.total_viol() > 0:
        info["repair_windows"] = repair_windows(
            st,
            seed=seed,
            workers=int(options.workers),
            max_windows=8,
            time_left=lambda: clock.seconds_left(options.time_limit * stop_at, "repair windows"),
        )
    for rnd in range(int(options.window_rounds)):
        gain: dict[tuple[int, int], float] = {}
        for u in range(st.n):
            a = st.owner[u]
            if a < 0 or st.fixed[u] >= 0:
                continue
            ca = st.cost(u, a)
            for v in st.nb[u]:
                b = st.owner[v]
                if b >= 0 and b != a:
                    g = ca - st.cost(u, b)
                    if g > 0:
                        key = (min(a, b), max(a, b))
                        gain[key] = gain.get(key, 0.0) + g
        ranked = sorted(gain.items(), key=lambda kv: (-kv[1], kv[0]))[: int(options.window_pairs)]
        improved = 0
        for (a, b), _g in ranked:
            if clock.elapsed() > options.time_limit * stop_at:
                info["time_guard_hit"] = True
                break
            clock.check("window polishing")
            info["pair_windows"] += 1
            if solve_window(
                st,
                [a, b],
                soft=False,
                seed=seed,
                workers=workers,
                det_time=options.window_det_time,
                hops=4,
                # a window started just before the stop may use at most half the time kept after it
                wall_cap=min(options.time_limit - clock.elapsed(), options.time_limit * (1 - stop_at) / 2),
            ):
                improved += 1
        info["improved"] += improved
        if info["time_guard_hit"] or improved == 0:
            break
        st.improve(max_passes=3)
        if options.chain_work > 0:
            deadline = clock.deadline(stop_at, options.time_limit)
            info["chains"] = info.get("chains", 0) + improve_chains(
                st, work=options.chain_work, deadline=deadline
            )
            info["time_guard_hit"] = deadline is not None and time.perf_counter() > deadline
        if between is not None and rnd + 1 < int(options.window_rounds):
            between()
    return info
