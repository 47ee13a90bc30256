"""Problem definition: units, reps and options (plain data, numpy arrays, JSON-friendly ids)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .geo import haversine_km, unit_vectors

if TYPE_CHECKING:
    from .pendant import CutRegion

Mode = Literal["auto", "exact", "heuristic"]


@dataclass(frozen=True)
class Rep:
    """A sales rep: one territory.

    Parameters
    ----------
    id : str
        Rep identifier (unique).
    home : int, str, tuple of float, or None
        Home as a unit index (int), a unit id (str) or a ``(lon, lat)`` point (snapped to the nearest unit
        centroid). ``None`` lets the solver choose a centre (p-median style seeding).
    share : float or mapping, optional
        Relative capacity share (per measure or one number for all); default 1 (equal shares).
    capacity : mapping, optional
        Absolute target load per measure; overrides ``share`` for the measures it names. Reps without a
        capacity for a measure split what remains of the total by their shares.
    """

    id: str
    home: int | str | tuple[float, float] | None = None
    share: float | Mapping[str, float] | None = None
    capacity: Mapping[str, float] | None = None


@dataclass
class Options:
    """Solver options.

    Parameters
    ----------
    tolerance : float or mapping
        Allowed relative deviation from each rep's target load, one number for every measure or a mapping
        ``measure -> tolerance`` (measures not named are not constrained). Default 0.05 (+-5 %).
    contiguity : bool
        Every territory must be one connected piece of the adjacency graph (bridge edges count). Default True.
    current : mapping, optional
        Current assignment ``unit id -> rep id`` (for disruption).
    max_moved_units : float, optional
        Hard disruption budget: at most this fraction (0..1) of the current units may change owner.
    max_moved_workload : float, optional
        Hard disruption budget on the workload measure (fraction of the total workload that may move).
    disruption_weight : float
        Soft disruption cost added to the objective: km charged per unit of workload that changes owner.
    locked : mapping
        ``unit id -> rep id``: fixed owners.
    excluded : collection of str
        Unit ids left out of the plan (owner ``None``).
    time_limit : float
        Wall-clock guard in seconds. The search itself is bounded by deterministic work limits; see
        ``docs/optimizer-benchmarks.md`` (a run that hits this guard says so in ``Solution.notes``).
    seed : int
        Random seed (CP-SAT and centre seeding). The same problem and seed give the same solution.
    mode : {"auto", "exact", "heuristic"}
        ``exact`` builds one CP-SAT model; ``heuristic`` runs the large-scale pipeline; ``auto`` picks
        exact for
        at most ``exact_max_units`` units and heuristic otherwise.
    workload : str, optional
        Measure that weights distances in the objective (default: the first measure).
    anchor_homes : bool
        Each rep owns its home unit (the root of its territory). Default False: with homes drawn close to each
        other the relaxation often gives a home unit to a neighbour, and anchoring then forces long corridors.
    candidate_arcs : int
        Nearest homes per unit in the sparse transportation model (more are added by pricing).
    workers : int
        CP-SAT workers (deterministic interleaved search is used when > 1).
    exact_max_units : int
        Size limit for ``auto`` to choose the exact model.
    window_rounds : int
        Most rounds of CP-SAT window polishing in the heuristic pipeline (0 disables it). The polishing also
        stops after a round that improved nothing, and at the time-limit guard.
    growth_rounds : int
        Price-adjustment rounds of the contiguous region growing (0 = start from the relaxation's owners).
    relaxation_retries : int
        Re-solves of the relaxation with a tighter band around territories the construction could not balance.
    centre_rounds : int, optional
        Capacitated Lloyd rounds when the solver chooses centres for reps without a home (default: 14 when
        active units x reps <= 8 million, e.g. national ZCTAs with K=200, else 8).
    centre_starts : int, optional
        Seeded starts of the centre choice (Hilbert-curve offsets) that each run ``centre_probe_rounds`` Lloyd
        rounds; the start with the cheapest transportation plan continues for the remaining rounds (default:
        4 when the Hilbert start is used and active units x reps >= 4 million, e.g. national K=200, else 1).
        Not used when the centres are re-seeded (``centre_reseed_regions``).
    centre_probe_rounds : int
        Lloyd rounds per start when ``centre_starts`` > 1.
    centre_reseed_regions : int, optional
        When every rep lacks a home and targets are equal: regions of neighbouring centres re-seeded on a
        coarsened instance before the last Lloyd rounds (``optimizer.reseed``); replaces the several starts
        (default: 1000 when active units x reps >= 4 million, e.g. national K=200 and K=500, else 0).
    recentre_rounds : int
        When the solver chooses the centres (heuristic mode, homes not anchored): after the local search,
        rounds of moving each chosen centre to its territory's workload-weighted centroid and improving the
        plan for the new centres; once more after the window polishing. The bound is then recomputed for the
        final centres.
    window_pairs : int
        Pair windows per polishing round (ranked by the gain their boundary units would see).
    window_det_time : float
        CP-SAT deterministic time limit per pair window.
    chain_work : int
        Work limit (candidate units examined) of one call of the cost-lowering ejection chains
        (``optimizer.chains``), run after the local search and after every window round; 0 disables them.
    rebuild_clusters : int
        Most clusters of adjacent territories the heuristic pipeline re-solves as problems of their own after
        the local search (``optimizer.rebuild``; no current assignment); 0 disables it. They stop at 70 % of
        the time limit (or 5 % before the window polishing's stop).
    rebuild_rings : int
        A rebuilt cluster is a territory and every territory at most this many hops from it.
    boundary_flow_rounds : int
        Most rounds of boundary flow (``optimizer.boundary_flow``: one min-cost flow over the whole plan moves
        light boundary units between adjacent territories) before the window polishing, and half as many
        after it; 0 disables it. Without a current assignment only. Each phase stops at a share of the time
        (see ``optimizer.heuristic``).
    final_bound : bool
        Heuristic mode: after the plan, solve the relaxation again on the real band (and for the final centres
        when they moved) and try the forced-territory bound. False keeps the construction's relaxation bound
        (valid, possibly weaker; none when the centres moved) and saves that time; it also leaves out the
        search for crowded regions (``optimizer.crowding``). The cluster rebuilds' sub-problems use it.
    """

    tolerance: float | Mapping[str, float] = 0.05
    contiguity: bool = True
    current: Mapping[str, str] | None = None
    max_moved_units: float | None = None
    max_moved_workload: float | None = None
    disruption_weight: float = 0.0
    locked: Mapping[str, str] = field(default_factory=dict)
    excluded: Collection[str] = ()
    time_limit: float = 60.0
    seed: int = 0
    mode: Mode = "auto"
    workload: str | None = None
    anchor_homes: bool = False
    candidate_arcs: int = 16
    workers: int = 2
    exact_max_units: int = 300
    window_rounds: int = 8
    growth_rounds: int = 0
    window_pairs: int = 60
    centre_rounds: int | None = None
    centre_starts: int | None = None
    centre_probe_rounds: int = 4
    centre_reseed_regions: int | None = None
    recentre_rounds: int = 12
    relaxation_retries: int = 4
    window_det_time: float = 0.5
    chain_work: int = 3_000_000
    rebuild_clusters: int = 150
    rebuild_rings: int = 2
    boundary_flow_rounds: int = 16
    final_bound: bool = True


@dataclass
class Problem:
    """A territory planning instance.

    Parameters
    ----------
    unit_ids : sequence of str
        Unit identifiers, unique.
    measures : mapping of str to array
        Balance measures (``name -> (n,) float array``), e.g. ``{"workload": pop}``. Non-negative.
    centroids : (n, 2) array
        Unit centroids, lon/lat degrees.
    edges : (m, 2) int array
        Undirected adjacency between unit indices, including any bridge edges.
    reps : sequence of Rep
    options : Options
    is_bridge : (m,) bool array, optional
        Marks declared bridge edges (islands, water crossings); they count for contiguity and are reported.
    area, perimeter : (n,) arrays, optional
        Planar area and perimeter of every unit (same length unit), for Polsby-Popper.
    shared_border : (m,) array, optional
        Length of the border shared along each edge (0 for bridges), for Polsby-Popper.
    """

    unit_ids: Sequence[str]
    measures: Mapping[str, Any]
    centroids: Any
    edges: Any
    reps: Sequence[Rep]
    options: Options = field(default_factory=Options)
    is_bridge: Any = None
    area: Any = None
    perimeter: Any = None
    shared_border: Any = None

    def __post_init__(self) -> None:
        self.unit_ids = [str(u) for u in self.unit_ids]
        n = len(self.unit_ids)
        if len(set(self.unit_ids)) != n:
            raise ValueError("unit ids must be unique")
        if not self.measures:
            raise ValueError("at least one measure is required")
        self.measures = {str(k): np.asarray(v, dtype=float).reshape(-1) for k, v in self.measures.items()}
        for name, arr in self.measures.items():
            if len(arr) != n:
                raise ValueError(f"measure {name!r} has {len(arr)} values for {n} units")
            if not np.isfinite(arr).all() or (arr < 0).any():
                raise ValueError(f"measure {name!r} must be finite and non-negative")
        self.centroids = np.asarray(self.centroids, dtype=float).reshape(n, 2)
        if not np.isfinite(self.centroids).all():
            raise ValueError("centroids must be finite lon/lat")
        edges = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        if len(edges) and (edges.min() < 0 or edges.max() >= n):
            raise ValueError("edge endpoints must be unit indices")
        self.edges = edges
        self.is_bridge = (
            np.zeros(len(edges), dtype=bool)
            if self.is_bridge is None
            else np.asarray(self.is_bridge, dtype=bool)
        )
        if len(self.is_bridge) != len(edges):
            raise ValueError("is_bridge must have one flag per edge")
        for name in ("area", "perimeter"):
            val = getattr(self, name)
            if val is not None:
                setattr(self, name, np.asarray(val, dtype=float).reshape(n))
        if self.shared_border is not None:
            self.shared_border = np.asarray(self.shared_border, dtype=float).reshape(len(edges))
        rep_ids = [r.id for r in self.reps]
        if len(set(rep_ids)) != len(rep_ids):
            raise ValueError("rep ids must be unique")
        if self.options.workload is not None and self.options.workload not in self.measures:
            raise ValueError(f"workload measure {self.options.workload!r} is not a measure")
        tol = self.options.tolerance
        if isinstance(tol, Mapping):
            for name in tol:
                if name not in self.measures:
                    raise ValueError(f"tolerance given for unknown measure {name!r}")
        pos = self.unit_index
        rpos = self.rep_index
        for uid, rid in self.options.locked.items():
            if uid not in pos:
                raise ValueError(f"locked unit {uid!r} is not a unit")
            if rid not in rpos:
                raise ValueError(f"unit {uid!r} is locked to unknown rep {rid!r}")
        for uid in self.options.excluded:
            if uid not in pos:
                raise ValueError(f"excluded unit {uid!r} is not a unit")
        if self.options.current is not None:
            for uid in self.options.current:
                if uid not in pos:
                    raise ValueError(f"current assignment names unknown unit {uid!r}")
        if self.options.mode not in ("auto", "exact", "heuristic"):
            raise ValueError(f"unknown mode {self.options.mode!r}")

    # ----- convenience constructor -------------------------------------------------------------------
    @classmethod
    def from_geodataframe(
        cls,
        gdf: Any,
        *,
        id_column: str,
        measures: Sequence[str] | Mapping[str, str],
        edges: Any,
        reps: Sequence[Rep],
        options: Options | None = None,
        bridges: Any = None,
        polsby_popper: bool = True,
        projected_crs: str = "EPSG:5070",
    ) -> Problem:
        """Build a problem from a GeoDataFrame (geopandas is imported lazily, it is optional).

        Parameters
        ----------
        gdf : geopandas.GeoDataFrame
            One row per unit.
        id_column : str
            Column with unit ids.
        measures : sequence or mapping
            Columns used as measures (a mapping renames ``measure name -> column``).
        edges : sequence of (id, id) pairs or (m, 2) int array of row positions
            Adjacency.
        reps : sequence of Rep
        options : Options, optional
        bridges : sequence of (id, id) pairs, optional
            Declared bridge edges, appended to ``edges``.
        polsby_popper : bool
            Compute area, perimeter and shared borders (in ``projected_crs``) for Polsby-Popper scores.
        projected_crs : str
            Planar CRS for the geometry metrics (default: CONUS Albers equal area).
        """
        import shapely

        ids = [str(x) for x in gdf[id_column]]
        pos = {u: i for i, u in enumerate(ids)}
        cols = dict(measures) if isinstance(measures, Mapping) else {m: m for m in measures}
        meas = {name: gdf[col].to_numpy(dtype=float) for name, col in cols.items()}
        pts = gdf.geometry.representative_point()
        cent = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])

        def to_idx(pairs: Any) -> np.ndarray:
            arr = np.asarray(pairs)
            if arr.size and arr.dtype.kind in "iu":
                return arr.astype(np.int64).reshape(-1, 2)
            return np.array([(pos[str(a)], pos[str(b)]) for a, b in pairs], dtype=np.int64).reshape(-1, 2)

        e = to_idx(edges)
        flags = np.zeros(len(e), dtype=bool)
        if bridges is not None and len(bridges):
            b = to_idx(bridges)
            e = np.vstack([e, b])
            flags = np.concatenate([flags, np.ones(len(b), dtype=bool)])
        area = perim = shared = None
        if polsby_popper:
            geom = gdf.geometry.to_crs(projected_crs).to_numpy()
            area = shapely.area(geom)
            perim = shapely.length(geom)
            bounds = shapely.boundary(geom)
            shared = shapely.length(shapely.intersection(bounds[e[:, 0]], bounds[e[:, 1]]))
            shared = np.where(flags, 0.0, shared)
        return cls(ids, meas, cent, e, reps, options or Options(), flags, area, perim, shared)

    # ----- resolved views (indices, targets) ---------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.unit_ids)

    @property
    def k(self) -> int:
        return len(self.reps)

    @cached_property
    def unit_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.unit_ids)}

    @cached_property
    def rep_index(self) -> dict[str, int]:
        return {r.id: i for i, r in enumerate(self.reps)}

    @property
    def measure_names(self) -> list[str]:
        return list(self.measures)

    @property
    def workload_name(self) -> str:
        return self.options.workload or self.measure_names[0]

    @property
    def workload(self) -> np.ndarray:
        return np.asarray(self.measures[self.workload_name])

    @cached_property
    def active(self) -> np.ndarray:
        """Boolean mask of units that are not excluded."""
        mask = np.ones(self.n, dtype=bool)
        for uid in self.options.excluded:
            mask[self.unit_index[uid]] = False
        return mask

    @property
    def has_move_budget(self) -> bool:
        """A hard disruption budget applies: ``current`` and a ``max_moved_units``/``max_moved_workload``."""
        o = self.options
        return o.current is not None and (o.max_moved_units is not None or o.max_moved_workload is not None)

    def tolerance_of(self, measure: str) -> float | None:
        tol = self.options.tolerance
        if isinstance(tol, Mapping):
            val = tol.get(measure)
            return None if val is None else float(val)
        return float(tol)

    @cached_property
    def targets(self) -> np.ndarray:
        """(K, M) target loads: capacities or shares of the total over active units."""
        k, names = self.k, self.measure_names
        out = np.zeros((k, len(names)))
        for j, m in enumerate(names):
            total = float(self.measures[m][self.active].sum())
            fixed = np.full(k, np.nan)
            shares = np.ones(k)
            for i, rep in enumerate(self.reps):
                if rep.capacity is not None and m in rep.capacity:
                    fixed[i] = float(rep.capacity[m])
                if isinstance(rep.share, Mapping):
                    shares[i] = float(rep.share.get(m, 1.0))
                elif rep.share is not None:
                    shares[i] = float(rep.share)
            free = np.isnan(fixed)
            remaining = max(total - float(np.nansum(fixed)), 0.0)
            out[~free, j] = fixed[~free]
            if free.any():
                out[free, j] = remaining * shares[free] / shares[free].sum()
        return out

    @cached_property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) load bounds (K, M); unconstrained measures get (0, inf)."""
        t = self.targets
        lo = np.zeros_like(t)
        hi = np.full_like(t, np.inf)
        for j, m in enumerate(self.measure_names):
            tol = self.tolerance_of(m)
            if tol is not None:
                lo[:, j] = t[:, j] * (1 - tol)
                hi[:, j] = t[:, j] * (1 + tol)
        return lo, hi

    @cached_property
    def unit_xyz(self) -> np.ndarray:
        """(n, 3) unit centroids on the unit sphere (read only: shared by every caller)."""
        xyz = unit_vectors(self.centroids)
        xyz.flags.writeable = False
        return xyz

    @cached_property
    def home_units(self) -> np.ndarray:
        """Home unit index per rep (-1 when the rep has no home and the solver must choose one)."""
        out = np.full(self.k, -1, dtype=np.int64)
        for i, rep in enumerate(self.reps):
            h = rep.home
            if h is None:
                continue
            if isinstance(h, bool):
                raise ValueError(f"rep {rep.id!r}: bad home {h!r}")
            if isinstance(h, int | np.integer):
                if not 0 <= int(h) < self.n:
                    raise ValueError(f"rep {rep.id!r}: home index {h} out of range")
                out[i] = int(h)
            elif isinstance(h, str):
                if h not in self.unit_index:
                    raise ValueError(f"rep {rep.id!r}: home unit {h!r} is not a unit")
                out[i] = self.unit_index[h]
            else:
                pt = np.asarray(h, dtype=float).reshape(1, 2)
                cand = np.flatnonzero(self.active)
                d = haversine_km(self.centroids[cand], pt)
                out[i] = int(cand[int(np.argmin(d))])
        return out

    @cached_property
    def home_points(self) -> np.ndarray:
        """(K, 2) lon/lat of rep homes (the given point, else the home unit's centroid; NaN when unset)."""
        out = np.full((self.k, 2), np.nan)
        for i, rep in enumerate(self.reps):
            h = rep.home
            if isinstance(h, tuple | list | np.ndarray) and not isinstance(h, str):
                out[i] = np.asarray(h, dtype=float)
            elif self.home_units[i] >= 0:
                out[i] = self.centroids[self.home_units[i]]
        return out

    @cached_property
    def locked_owner(self) -> np.ndarray:
        """Owner index per unit fixed by ``options.locked`` (-1 = free)."""
        out = np.full(self.n, -1, dtype=np.int64)
        for uid, rid in self.options.locked.items():
            out[self.unit_index[uid]] = self.rep_index[rid]
        return out

    @cached_property
    def current_owner(self) -> np.ndarray | None:
        """Current owner index per unit (-1 = none or a rep that no longer exists);
        None without ``current``."""
        cur = self.options.current
        if cur is None:
            return None
        out = np.full(self.n, -1, dtype=np.int64)
        for uid, rid in cur.items():
            out[self.unit_index[uid]] = self.rep_index.get(rid, -1)
        return out

    @cached_property
    def neighbors(self) -> list[np.ndarray]:
        """Adjacency lists (all edges, bridges included) as sorted int arrays."""
        nb: list[list[int]] = [[] for _ in range(self.n)]
        for a, b in self.edges.tolist():
            if a != b:
                nb[a].append(b)
                nb[b].append(a)
        return [np.array(sorted(set(x)), dtype=np.int64) for x in nb]

    @cached_property
    def cut_off_regions(self) -> list[CutRegion]:
        """Regions that removing one active unit cuts off (:func:`optimizer.pendant.cut_regions`), searched
        once: the forced-territory bound and the crowded-region warnings both read them (0.45 s on the
        national ZCTAs)."""
        from .pendant import cut_regions

        return cut_regions(self.neighbors, self.active, self.workload)
