"""Peer methods, run in a subprocess by ``bench.optimizer.run`` (10-minute timeout = DNF).

``python -m bench.optimizer.peers --instance counties --k 25 --method gerrychain --out plan.json``
writes ``{"seconds": ..., "labels": [part per unit] | null, "error": ...}``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import cast

import numpy as np

from .instances import load


def gerrychain_plan(name: str, k: int, tol: float, seed: int) -> list[int]:
    """GerryChain 1.0 ``recursive_tree_part`` as its authors run it.

    GerryChain 1.0 does its tree work on a rustworkx graph: ``Partition`` converts a NetworkX graph with
    ``convert_from_nx_to_rx`` before any chain runs, and the NetworkX path is kept only as a slow
    reference. Called directly, ``recursive_tree_part`` does not convert, so we do (the first harness
    passed the NetworkX graph and spent 552 s before failing). Randomness goes through ``rng=seed``
    (1.0 ignores the global ``random`` module). Populations are integers, as in Census data.
    """
    import networkx as nx
    from gerrychain import Graph
    from gerrychain.partition import recursive_tree_part

    raw = load(name)
    g = nx.Graph()
    for i, p in enumerate(raw.pop.tolist()):
        g.add_node(i, pop=int(round(p)))
    g.add_edges_from(raw.edges.tolist())
    graph = Graph.from_networkx(g).convert_from_nx_to_rx()
    target = float(raw.pop.sum()) / k
    parts = recursive_tree_part(graph, range(k), target, "pop", tol, rng=seed)
    nodes = graph.node_indices
    to_unit = {node: int(cast(int, graph.node_data(node)["__networkx_node__"])) for node in nodes}
    labels = [-1] * len(raw.ids)
    for node, part in parts.items():
        labels[to_unit[node]] = int(cast(int, part))
    return labels


def spopt_plan(name: str, k: int, seed: int) -> list[int]:
    from libpysal.weights import W
    from spopt.region import RegionKMeansHeuristic

    raw = load(name)
    nbrs: dict[int, list[int]] = {i: [] for i in range(len(raw.ids))}
    for a, b in raw.edges.tolist():
        nbrs[a].append(b)
        nbrs[b].append(a)
    w = W(nbrs, silence_warnings=True)
    np.random.seed(seed)
    data = raw.lonlat.copy()
    model = RegionKMeansHeuristic(data, k, w)
    model.solve()
    return [int(x) for x in model.labels_]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instance", required=True)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--method", choices=["gerrychain", "spopt"], required=True)
    ap.add_argument("--tolerance", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    t = time.perf_counter()
    out: dict[str, object] = {"labels": None, "error": None}
    try:
        if a.method == "gerrychain":
            out["labels"] = gerrychain_plan(a.instance, a.k, a.tolerance, a.seed)
        else:
            out["labels"] = spopt_plan(a.instance, a.k, a.seed)
    except Exception as exc:  # a peer that fails is reported, not fatal
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
    out["seconds"] = time.perf_counter() - t
    with open(a.out, "w") as fh:
        json.dump(out, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
