"""Cost-lowering ejection chains: a boundary move that balance blocks, made anyway and paid for by moves along
a short path of territories that bring every territory back into its band.

Pair moves and swaps cannot help when every territory around a good move sits at its band edge: a unit that
should go from ``a`` to ``b`` overloads ``b``, which must pass a unit on to ``c``, and so on. On national
K=500 the territory that holds Kauai, north-shore Oahu and western Alaska could give Oahu units to the Oahu
territory only if that one passed a Honolulu unit to the third Hawaii territory.
"""

from __future__ import annotations

import time

from .local_search import State

_TINY = 1e-9


def improve_chains(
    st: State,
    max_depth: int = 3,
    branch: int = 4,
    max_passes: int = 3,
    work: int = 3_000_000,
    deadline: float | None = None,
) -> int:
    """Make cost-lowering moves that balance blocks, each followed by at most ``max_depth`` repair moves.

    Parameters
    ----------
    st : State
        A plan with every territory in its band (otherwise nothing is done).
    max_depth : int
        Repair moves allowed after the blocked move.
    branch : int
        Cheapest repair moves tried at each step of the depth-first search.
    max_passes : int
        Passes over the blocked moves (a pass stops the loop when it keeps no chain).
    work : int
        Deterministic work limit: candidate units examined over the whole call.
    deadline : float, optional
        A ``time.perf_counter()`` value after which no chain starts (the solver's time-limit guard; the work
        limit alone keeps the result deterministic).

    Returns
    -------
    int
        Number of chains kept. Every kept chain lowers the total cost; every territory ends in its band and
        connected, locked units stay, and the disruption budget holds.
    """
    if st.total_viol() > _TINY or (deadline is not None and time.perf_counter() > deadline):
        return 0
    search = _ChainSearch(st, max_depth, branch, work)
    kept = 0
    for _ in range(max_passes):
        count = 0
        for _g, u, b in _blocked_moves(st):
            if search.exhausted() or (deadline is not None and time.perf_counter() > deadline):
                return kept + count
            if st.checkpoint is not None:
                st.checkpoint()
            count += search.try_start(u, b)
        kept += count
        if count == 0:
            break
    return kept


def _blocked_moves(st: State) -> list[tuple[float, int, int]]:
    """Boundary moves that would lower the cost but leave a territory out of its band, best gain first."""
    out: list[tuple[float, int, int]] = []
    own = st.owner
    for u in range(st.n):
        a = own[u]
        if a < 0 or not st.movable(u):
            continue
        ca = st.cost(u, a)
        for b in sorted({own[v] for v in st.nb[u]} - {a, -1}):
            g = ca - st.cost(u, b)
            if g > _TINY * max(1.0, abs(ca)) and st.delta_viol(u, a, b) > _TINY:
                out.append((-g, u, b))
    out.sort()
    return out


class _ChainSearch:
    """Depth-first search for repair moves whose cost stays below the gain of the blocked move."""

    def __init__(self, st: State, max_depth: int, branch: int, work: int) -> None:
        self.st = st
        self.max_depth = max_depth
        self.branch = branch
        self.work_left = work
        self.log: list[tuple[int, int]] = []

    def exhausted(self) -> bool:
        return self.work_left <= 0

    def try_start(self, u: int, b: int) -> int:
        """Move ``u`` to ``b`` and repair; keep it (1) when the whole chain lowers the cost, else undo (0)."""
        st = self.st
        a = st.owner[u]
        if a < 0 or not any(st.owner[v] == b for v in st.nb[u]):
            return 0
        gain = st.cost(u, a) - st.cost(u, b)
        if gain <= _TINY or not st.budget_ok(u, a, b) or not st.can_remove(u):
            return 0
        if st.adds_disruption_under_budget(u, b):
            return 0
        self.log = []
        self._move(u, b)
        pending = [t for t in (a, b) if st.viol(t) > _TINY]
        if self._repair(pending, {a, b}, gain - _TINY * max(1.0, gain), 0):
            return 1
        for x, src in reversed(self.log):
            st.move(x, src)
        return 0

    def _move(self, x: int, dst: int) -> None:
        self.log.append((x, self.st.owner[x]))
        self.st.move(x, dst)

    def _repair(self, pending: list[int], path: set[int], allowance: float, depth: int) -> bool:
        """Bring the ``pending`` territories back into their bands by moves costing under ``allowance``."""
        st = self.st
        pending = [t for t in pending if st.viol(t) > _TINY]
        if not pending:
            return True
        if depth >= self.max_depth or self.work_left <= 0:
            return False
        t = pending[0]
        over = st.is_over(t)
        for dc, x, src, dst in self._candidates(t, over, pending, path)[: self.branch]:
            if dc >= allowance:
                break
            if st.owner[x] != src or not st.can_remove(x) or not st.budget_ok(x, src, dst):
                continue
            mark = len(self.log)
            self._move(x, dst)
            other = dst if over else src
            rest = [p for p in pending if p != t] + ([other] if other not in pending else [])
            if self._repair(rest, path | {other}, allowance - dc, depth + 1):
                return True
            while len(self.log) > mark:
                y, back = self.log.pop()
                st.move(y, back)
        return False

    def _candidates(
        self, t: int, over: bool, pending: list[int], path: set[int]
    ) -> list[tuple[float, int, int, int]]:
        """Single moves out of (``over``) or into ``t`` that land ``t`` in its band, cheapest first. The other
        territory is new to the chain, or a pending one that needs the opposite move."""
        st = self.st
        own = st.owner
        row = st.vals
        self.work_left -= len(st.members[t])
        sign = -1 if over else 1
        out: list[tuple[float, int, int, int]] = []
        seen: set[tuple[int, int]] = set()
        for y in sorted(st.members[t]):
            for v in st.nb[y]:
                c = own[v]
                if c < 0 or c == t:
                    continue
                if c in path and not (c in pending and st.is_over(c) == (not over)):
                    continue
                x, src, dst = (y, t, c) if over else (v, c, t)
                if (x, dst) in seen or not st.movable(x) or st.adds_disruption_under_budget(x, dst):
                    continue
                seen.add((x, dst))
                landed = [st.loads[t][j] + sign * row[x][j] for j in range(st.m)]
                if st.viol_of(t, landed) > _TINY:
                    continue
                out.append((st.cost(x, dst) - st.cost(x, src), x, src, dst))
        out.sort()
        return out
