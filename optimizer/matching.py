"""Give every territory the rep whose home serves it cheapest.

Rep homes are not anchored (``Options.anchor_homes`` is off by default), so which rep owns which territory is
a free choice: for a fixed set of territories, the best one is a linear assignment between territories and
reps on the territory x rep cost sums. The construction and the local search never revisit that choice; with
population-weighted sampled homes (several homes a few km apart in one city, four on Hawaii where at most
three territories fit) it is worth about 1 % of the objective on national K=500.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix

from .geo import distance_matrix_km

if TYPE_CHECKING:
    from .local_search import State
    from .problem import Problem


def territory_rep_costs(
    lonlat: np.ndarray, homes: np.ndarray, w: np.ndarray, owner: np.ndarray, k: int, chunk: int = 4096
) -> np.ndarray:
    """Workload-weighted distance of every territory's units to each of the given homes.

    Parameters
    ----------
    lonlat : (n, 2) unit centroids.
    homes : (R, 2) rep homes (all reps' or some of them).
    w : (n,) workloads.
    owner : (n,) territory (rep index) of every unit, -1 for none.
    k : number of territories.
    chunk : units per block of distances.

    Returns
    -------
    (K, R) array ``C``: ``C[t, r]`` is the sum of ``w_u d(u, homes[r])`` over the units ``u`` of territory
    ``t``.
    """
    out = np.zeros((k, len(homes)))
    units = np.flatnonzero(owner >= 0)
    for start in range(0, len(units), chunk):
        rows = units[start : start + chunk]
        dist = distance_matrix_km(lonlat[rows], homes)
        member = csr_matrix((w[rows], (owner[rows], np.arange(len(rows)))), shape=(k, len(rows)))
        out += member @ dist
    return out


def rematch(state: State, movable: np.ndarray) -> dict[str, Any]:
    """Reassign the territories of the ``movable`` reps among them at least cost, in place.

    A territory may go to a rep only if that rep's band fits its loads no worse than its current rep's does,
    so balance never gets worse. The change is kept only when it lowers the cost.

    Parameters
    ----------
    state : the plan; its homes are the rep homes the cost refers to.
    movable : indices of the reps that may change territory (homes given, no locked unit).

    Returns
    -------
    ``{"reps_moved": m, "gain": g}``: how many reps got another territory and the cost saved.
    """
    p = state.p
    info: dict[str, Any] = {"reps_moved": 0, "gain": 0.0}
    if len(movable) < 2:
        return info
    homes = state.home_points()[movable]
    costs = territory_rep_costs(p.centroids, homes, p.workload, state.owner_array(), state.k)[movable]
    viol = state.viol_matrix(movable)
    costs[viol > np.diag(viol)[:, None] + 1e-12] = np.inf
    rows, cols = linear_sum_assignment(costs)
    before = float(np.trace(costs))
    after = float(costs[rows, cols].sum())
    if not after < before * (1 - 1e-12):
        return info
    new_rep = list(range(state.k))
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        new_rep[int(movable[i])] = int(movable[j])
    state.relabel(new_rep)
    info["reps_moved"] = int((rows != cols).sum())
    info["gain"] = before - after
    return info


def movable_reps(problem: Problem, fixed: np.ndarray) -> np.ndarray:
    """Reps whose territory may go to another rep: every rep with a given home and no unit ``fixed`` to it
    (locks, anchored homes), when homes are not anchored and no current assignment is given (a rebalance keeps
    each rep's territory)."""
    opts = problem.options
    if opts.anchor_homes or problem.current_owner is not None:
        return np.zeros(0, dtype=np.int64)
    ok = problem.home_units >= 0
    ok[fixed[fixed >= 0]] = False
    return np.flatnonzero(ok)
