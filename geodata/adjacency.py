"""Unit adjacency (contiguity) graphs with shared-border lengths and bridges between components."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .errors import GeodataError, Problem

__all__ = ["Adjacency", "build_adjacency", "geodesic_length_m"]

_GEOD = pyproj.Geod(ellps="WGS84")
_CHUNK = 20_000


@dataclass
class Adjacency:
    """Undirected adjacency between units, as parallel arrays sorted by ``(a, b)``.

    Attributes
    ----------
    a, b : numpy.ndarray of int64
        Row indices into the unit frame, ``a < b``, unique pairs sorted lexicographically.
    shared_border_m : numpy.ndarray of float64
        Geodesic length of the shared border in metres (0.0 for point-only queen touches and bridges).
    is_bridge : numpy.ndarray of bool
        True for edges added to connect otherwise disconnected components (islands).
    bridge_distance_m : numpy.ndarray of float64
        Geodesic gap length in metres for bridges, 0.0 otherwise.
    n_components_before_bridges : int
        Number of connected components of the contiguity graph before bridges were added.
    """

    a: np.ndarray
    b: np.ndarray
    shared_border_m: np.ndarray
    is_bridge: np.ndarray
    bridge_distance_m: np.ndarray
    n_components_before_bridges: int

    def __len__(self) -> int:
        return len(self.a)

    def pairs(self, codes: Iterable[Any], include_bridges: bool = False) -> set[tuple[str, str]]:
        """Return the edges as ``(min, max)`` code pairs.

        Parameters
        ----------
        codes : iterable of str
            Unit codes (list, array or Series) ordered like the geometries given to :func:`build_adjacency`.
        include_bridges : bool, default False
            Also return the bridge edges.

        Returns
        -------
        set of tuple of str
            Unordered pairs written as ``(min(code_a, code_b), max(code_a, code_b))``.
        """
        code_list = [str(c) for c in codes]
        mask = np.ones(len(self.a), dtype=bool) if include_bridges else ~self.is_bridge
        out: set[tuple[str, str]] = set()
        for i, j in zip(self.a[mask].tolist(), self.b[mask].tolist(), strict=True):
            ci, cj = code_list[i], code_list[j]
            out.add((ci, cj) if ci <= cj else (cj, ci))
        return out

    def n_components(self, n_units: int, include_bridges: bool = True) -> int:
        """Count connected components of the graph on ``n_units`` nodes.

        Parameters
        ----------
        n_units : int
            Number of units (nodes); units without edges count as components.
        include_bridges : bool, default True
            Use the bridge edges too.

        Returns
        -------
        int
            Number of connected components.
        """
        mask = np.ones(len(self.a), dtype=bool) if include_bridges else ~self.is_bridge
        return _components(n_units, self.a[mask], self.b[mask])[0]


def geodesic_length_m(geoms: Any) -> np.ndarray:
    """Geodesic (WGS84 ellipsoid) length in metres of lon/lat linear geometries, vectorised.

    Parameters
    ----------
    geoms : array_like of shapely geometries
        Lines, multilines or collections in EPSG:4326; points contribute 0, polygons their boundary.

    Returns
    -------
    numpy.ndarray of float64
        One length per input geometry.
    """
    arr = np.asarray(geoms, dtype=object)
    out = np.zeros(len(arr), dtype=np.float64)
    if len(arr) == 0:
        return out
    polygonal = np.isin(shapely.get_type_id(arr), (3, 6))
    if polygonal.any():
        arr = arr.copy()
        arr[polygonal] = shapely.boundary(arr[polygonal])
    parts, owner = shapely.get_parts(arr, return_index=True)
    parts = np.asarray(parts, dtype=object)
    polys = shapely.get_type_id(parts) == 3
    if polys.any():  # polygons inside collections
        parts[polys] = shapely.boundary(parts[polys])
        parts, sub = shapely.get_parts(parts, return_index=True)
        owner = owner[sub]
    coords, part_idx = shapely.get_coordinates(parts, return_index=True)
    if len(coords) < 2:
        return out
    same = part_idx[1:] == part_idx[:-1]
    x0, y0 = coords[:-1, 0][same], coords[:-1, 1][same]
    x1, y1 = coords[1:, 0][same], coords[1:, 1][same]
    _, _, dist = _GEOD.inv(x0, y0, x1, y1)
    np.add.at(out, owner[part_idx[1:][same]], np.asarray(dist, dtype=np.float64))
    return out


def _components(n: int, a: np.ndarray, b: np.ndarray) -> tuple[int, np.ndarray]:
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    k, labels = connected_components(graph, directed=False)
    return int(k), labels.astype(np.int64)


def _candidate_pairs(
    tree: shapely.STRtree, geoms: np.ndarray, contiguity: str, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    if tolerance > 0:
        left, right = tree.query(geoms, predicate="dwithin", distance=tolerance)
    else:
        left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep].astype(np.int64), right[keep].astype(np.int64)
    order = np.lexsort((right, left))
    return left[order], right[order]


def _border_lengths(
    geoms: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    tolerance: float,
    progress: Callable[[int, int], None] | None,
    total_steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (geodesic border metres, planar border degrees) for each pair."""
    bnd = shapely.boundary(geoms)
    buffered = shapely.buffer(geoms, tolerance, quad_segs=4) if tolerance > 0 else None
    metres = np.zeros(len(a), dtype=np.float64)
    degrees = np.zeros(len(a), dtype=np.float64)

    for step, start in enumerate(range(0, len(a), _CHUNK), start=1):
        sl = slice(start, start + _CHUNK)
        ia, ib = a[sl], b[sl]
        if buffered is None:
            shared = shapely.intersection(bnd[ia], bnd[ib])
            metres[sl] = geodesic_length_m(shared)
            degrees[sl] = shapely.length(shared)
        else:
            # neighbours of simplified data do not touch exactly: measure each boundary inside the other's
            # tolerance buffer, both ways, and average (threads do not help: GEOS holds the GIL here)
            ab = shapely.intersection(bnd[ia], buffered[ib])
            ba = shapely.intersection(bnd[ib], buffered[ia])
            metres[sl] = 0.5 * (geodesic_length_m(ab) + geodesic_length_m(ba))
            degrees[sl] = 0.5 * (shapely.length(ab) + shapely.length(ba))
        if progress is not None:
            progress(step, total_steps)
    return metres, degrees


class _UnionFind:
    def __init__(self, labels: np.ndarray) -> None:
        self.parent = {int(x): int(x) for x in np.unique(labels)}

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, x: int, y: int) -> bool:
        rx, ry = self.find(x), self.find(y)
        if rx == ry:
            return False
        if rx > ry:
            rx, ry = ry, rx
        self.parent[ry] = rx
        return True


def _nearest_other(
    members: np.ndarray,
    labels: np.ndarray,
    comp: int,
    geoms: np.ndarray,
    tree: shapely.STRtree,
    kdtree: cKDTree,
    points: np.ndarray,
) -> tuple[float, int, int]:
    """Closest (distance, unit in comp, unit outside comp) by planar geometry distance."""
    n = len(geoms)
    k = min(n, 16)
    while True:
        _, nbr = kdtree.query(points[members], k=k)
        nbr = np.asarray(nbr).reshape(len(members), -1)
        src = np.repeat(members, nbr.shape[1])
        dst = nbr.ravel()
        ok = (dst < n) & (labels[np.minimum(dst, n - 1)] != comp)
        if ok.any() or k >= n:
            break
        k = min(n, k * 4)
    src, dst = src[ok], dst[ok]
    # an upper bound from the nearest centroids, then every unit within that bound
    bound = float(shapely.distance(geoms[src], geoms[dst]).min())
    slack = bound * 1e-9 + 1e-12  # dwithin and distance may round differently
    left, right = tree.query(geoms[members], predicate="dwithin", distance=bound + slack)
    left = members[left]
    other = labels[right] != comp
    left, right = left[other], right[other]
    dist = shapely.distance(geoms[left], geoms[right])
    best = np.lexsort((np.maximum(left, right), np.minimum(left, right), dist))[0]
    return float(dist[best]), int(left[best]), int(right[best])


def _bridges(geoms: np.ndarray, tree: shapely.STRtree, labels: np.ndarray) -> list[tuple[int, int, float]]:
    """Borůvka: repeatedly link every component but the largest to its nearest other component."""
    n = len(geoms)
    points = shapely.get_coordinates(shapely.point_on_surface(geoms))
    kdtree = cKDTree(points)
    labels = labels.copy()
    uf = _UnionFind(labels)
    edges: list[tuple[int, int, float]] = []
    while True:
        comps, sizes = np.unique(labels, return_counts=True)
        if len(comps) <= 1:
            break
        largest = comps[np.lexsort((comps, -sizes))[0]]
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], comps)
        bounds = np.append(bounds, n)
        chosen: list[tuple[float, int, int]] = []
        for c_i, comp in enumerate(comps):
            if comp == largest:
                continue
            members = np.sort(order[bounds[c_i] : bounds[c_i + 1]])
            chosen.append(_nearest_other(members, labels, int(comp), geoms, tree, kdtree, points))
        for dist, u, v in sorted(chosen):
            if uf.union(int(labels[u]), int(labels[v])):
                edges.append((min(u, v), max(u, v), dist))
        roots = np.array([uf.find(int(x)) for x in comps])
        labels = roots[np.searchsorted(comps, labels)]
    return edges


def build_adjacency(
    geoms: Sequence[Any] | np.ndarray,
    *,
    contiguity: str = "queen",
    tolerance: float = 0.0,
    bridges: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Adjacency:
    """Build the contiguity graph of polygons, optionally bridging disconnected components.

    Parameters
    ----------
    geoms : sequence or array of shapely polygons
        Unit geometries in EPSG:4326 (lon/lat), e.g. ``UnitSet.frame.geometry``.
    contiguity : {"queen", "rook"}, default "queen"
        ``"queen"``: units sharing at least a point.  ``"rook"``: units sharing a border of positive
        length.
    tolerance : float, default 0.0
        In degrees.  With 0 the test is exact (queen: geometries intersect; rook: the intersection of the
        boundaries has positive length).  With a positive value (for simplified data whose neighbours do not
        touch exactly) units within ``tolerance`` of each other are adjacent (queen); the border length
        is estimated as the length of ``boundary(a) ∩ buffer(b, tolerance)`` (averaged over both
        directions).  Rook additionally requires that length to exceed ``3 * tolerance``: a corner
        contact alone measures up to ``2 * tolerance``, so a rook border must be longer than the
        tolerance beyond that.
    bridges : bool, default True
        Connect the components of the graph Borůvka-style: each component (except the largest) is linked
        to its nearest other component by geometry distance, until one component remains.  Bridge edges
        have ``is_bridge=True``, ``shared_border_m=0`` and the gap in ``bridge_distance_m``.
    progress : callable, optional
        Called as ``progress(done_steps, total_steps)`` after each block of 20,000 candidate pairs
        and after the bridging step.

    Returns
    -------
    Adjacency
        Deterministic: the same input gives the same arrays in the same order.

    Raises
    ------
    GeodataError
        For an unknown contiguity, a negative tolerance or missing/empty geometries.
    """
    if contiguity not in ("queen", "rook"):
        raise GeodataError(f"unknown contiguity {contiguity!r}; expected 'queen' or 'rook'")
    if not np.isfinite(tolerance) or tolerance < 0:
        raise GeodataError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    bad = np.flatnonzero(shapely.is_missing(arr) | shapely.is_empty(arr))
    if bad.size:
        raise GeodataError(
            f"{bad.size} missing or empty geometr{'ies' if bad.size != 1 else 'y'}",
            [Problem(int(i), None, "geometry", "rejected", "missing or empty geometry") for i in bad[:50]],
        )
    n = len(arr)
    if n == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        empty_f = np.zeros(0, dtype=np.float64)
        return Adjacency(empty_i, empty_i.copy(), empty_f, np.zeros(0, dtype=bool), empty_f.copy(), 0)
    tree = shapely.STRtree(arr)
    a, b = _candidate_pairs(tree, arr, contiguity, tolerance)
    total = -(-len(a) // _CHUNK) + (1 if bridges else 0)
    metres, degrees = _border_lengths(arr, a, b, tolerance, progress, max(total, 1))
    if contiguity == "rook":
        # with a tolerance a mere corner contact already measures up to 2 * tolerance (the two edges that
        # meet at the corner, each within the buffer for a length of tolerance): require more than that
        keep = degrees > 3 * tolerance if tolerance > 0 else degrees > 0
        a, b, metres = a[keep], b[keep], metres[keep]
    n_comp, labels = _components(n, a, b)
    is_bridge = np.zeros(len(a), dtype=bool)
    gap = np.zeros(len(a), dtype=np.float64)
    if bridges and n_comp > 1:
        extra = _bridges(arr, tree, labels)
        ea = np.array([e[0] for e in extra], dtype=np.int64)
        eb = np.array([e[1] for e in extra], dtype=np.int64)
        lines = shapely.shortest_line(arr[ea], arr[eb])
        ends = shapely.get_coordinates(lines).reshape(-1, 2, 2)
        _, _, d = _GEOD.inv(ends[:, 0, 0], ends[:, 0, 1], ends[:, 1, 0], ends[:, 1, 1])
        a = np.concatenate([a, ea])
        b = np.concatenate([b, eb])
        metres = np.concatenate([metres, np.zeros(len(ea))])
        is_bridge = np.concatenate([is_bridge, np.ones(len(ea), dtype=bool)])
        gap = np.concatenate([gap, np.asarray(d, dtype=np.float64)])
        order = np.lexsort((b, a))
        a, b, metres, is_bridge, gap = a[order], b[order], metres[order], is_bridge[order], gap[order]
    if progress is not None and bridges:
        progress(total, total)
    return Adjacency(
        a=a.astype(np.int64),
        b=b.astype(np.int64),
        shared_border_m=metres.astype(np.float64),
        is_bridge=is_bridge,
        bridge_distance_m=gap.astype(np.float64),
        n_components_before_bridges=n_comp,
    )
