"""Contiguous construction: priced region growing from the rep homes.

Every territory grows from its fixed units (home, locks) through the adjacency graph; a unit goes to the
first territory that reaches it in order of its priced cost ``d(u, home_k) - pi_k``. With the prices of the
transportation relaxation this reproduces the relaxation's assignment wherever that is contiguous, and gives
every unit to an adjacent territory elsewhere, so each territory is connected by construction. A few rounds
of price adjustment (tatonnement) then pull the loads towards their targets.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

from .geo import haversine_km


def grow(
    nb: list[list[int]],
    seeds: np.ndarray,
    dist_fn: Callable[[int, int], float],
    prices: np.ndarray,
    active: np.ndarray,
    w: np.ndarray | None = None,
    cap: np.ndarray | None = None,
) -> np.ndarray:
    """One growth pass. ``seeds`` is the (n,) fixed owner (-1 free); ``dist_fn(u, k)`` gives km.

    With ``w`` and ``cap`` a territory stops claiming units once a unit would take it over its cap; units
    left over are then grown without caps (so every reachable unit gets an owner).
    """
    if w is not None and cap is not None:
        capped = _grow_capped(nb, seeds, dist_fn, prices, active, w, cap)
        return grow(nb, capped, dist_fn, prices, active)
    n = len(seeds)
    owner = np.where(active, seeds, -1).astype(np.int64)
    own = owner.tolist()
    pr = prices.tolist()
    heap: list[tuple[float, int, int]] = []
    pushed: set[int] = set()
    k_all = len(prices)
    dist = dist_fn
    for u in range(n):
        k = own[u]
        if k < 0:
            continue
        for v in nb[u]:
            if own[v] < 0 and active[v]:
                key = v * k_all + k
                if key not in pushed:
                    pushed.add(key)
                    heapq.heappush(heap, (dist(v, k) - pr[k], v, k))
    while heap:
        _, u, k = heapq.heappop(heap)
        if own[u] >= 0:
            continue
        own[u] = k
        for v in nb[u]:
            if own[v] < 0:
                key = v * k_all + k
                if key not in pushed:
                    pushed.add(key)
                    heapq.heappush(heap, (dist(v, k) - pr[k], v, k))
    return np.array(own, dtype=np.int64)


def _grow_capped(
    nb: list[list[int]],
    seeds: np.ndarray,
    dist_fn: Callable[[int, int], float],
    prices: np.ndarray,
    active: np.ndarray,
    w: np.ndarray,
    cap: np.ndarray,
) -> np.ndarray:
    n = len(seeds)
    own = np.where(active, seeds, -1).astype(np.int64).tolist()
    ww = w.tolist()
    k_all = len(prices)
    load = [0.0] * k_all
    for u in range(n):
        if own[u] >= 0:
            load[own[u]] += ww[u]
    capl = cap.tolist()
    pr = prices.tolist()
    heap: list[tuple[float, int, int]] = []
    pushed: set[int] = set()
    dist = dist_fn

    def push_from(u: int, k: int) -> None:
        for v in nb[u]:
            if own[v] < 0 and active[v]:
                key = v * k_all + k
                if key not in pushed:
                    pushed.add(key)
                    heapq.heappush(heap, (dist(v, k) - pr[k], v, k))

    for u in range(n):
        if own[u] >= 0:
            push_from(u, own[u])
    while heap:
        _, u, k = heapq.heappop(heap)
        if own[u] >= 0 or load[k] + ww[u] > capl[k]:
            continue
        own[u] = k
        load[k] += ww[u]
        push_from(u, k)
    return np.array(own, dtype=np.int64)


def priced_growth(
    centroids: np.ndarray,
    homes: np.ndarray,
    nb: list[list[int]],
    seeds: np.ndarray,
    active: np.ndarray,
    w: np.ndarray,
    targets: np.ndarray,
    prices: np.ndarray,
    rounds: int = 6,
    cap: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Grow contiguous territories and adjust prices for ``rounds`` rounds; returns (owner, prices).

    Each round raises the price of under-loaded territories and lowers that of over-loaded ones by a step
    proportional to the relative deviation times the territory's typical radius; the best-balanced owner
    (smallest max relative deviation) is returned.
    """
    import math

    lat = np.radians(centroids[:, 1])
    lon = np.radians(centroids[:, 0])
    ulat, ulon, ucos = lat.tolist(), lon.tolist(), np.cos(lat).tolist()
    hlat_a = np.radians(homes[:, 1])
    hlat, hlon, hcos = hlat_a.tolist(), np.radians(homes[:, 0]).tolist(), np.cos(hlat_a).tolist()

    def dist(u: int, k: int) -> float:
        h = (
            math.sin((hlat[k] - ulat[u]) / 2) ** 2
            + ucos[u] * hcos[k] * math.sin((hlon[k] - ulon[u]) / 2) ** 2
        )
        return 12742.0176 * math.asin(math.sqrt(min(1.0, h)))

    k = len(homes)
    pi = prices.astype(float).copy()
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    step = np.ones(k)
    last_sign = np.zeros(k)
    for _ in range(max(1, rounds)):
        owner = grow(nb, seeds, dist, pi, active, w, cap)
        sel = owner >= 0
        load = np.bincount(owner[sel], weights=w[sel], minlength=k)
        rel = (load - targets) / np.where(targets > 0, targets, 1.0)
        dev = float(np.abs(rel).max())
        if best is None or dev < best[0]:
            best = (dev, owner, pi.copy())
        # typical radius of each territory: workload-weighted mean distance to its home
        d = haversine_km(centroids[sel], homes[owner[sel]])
        rad = np.bincount(owner[sel], weights=w[sel] * d, minlength=k) / np.maximum(load, 1e-12)
        rad = np.where(load > 0, rad, np.nanmedian(rad[load > 0]) if (load > 0).any() else 1.0)
        sign = np.sign(rel)
        step = np.where(sign * last_sign < 0, step * 0.5, step)
        last_sign = sign
        pi = pi - step * np.clip(rel, -1, 1) * rad * 0.5
    assert best is not None
    return best[1], best[2]
