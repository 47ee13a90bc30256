"""Vector tiles (Mapbox Vector Tile via PostGIS ST_AsMVT) of units and plan territories, with caches.

Design (see docs/benchmarks.md, "Vector tiles"):
* geometry is stored once in web mercator, with two pre-simplified copies (migration 0005); the column is
  picked by zoom, so no tile transforms or simplifies at request time;
* per level, a unit table (ids, codes, names, measures as diagnostics load them, mercator bounding boxes)
  is built once per data version; units in a tile are found by bounding box in numpy;
* per plan, a property table (owner, flags, colour; territory loads) is built once per plan version;
* the properties of the units in view go to PostgreSQL as arrays, joined to the geometry by primary key;
* finished tiles live in a byte-bounded LRU keyed by tile and versions.

Versions: a tile is identified (cache key and ETag) by its address, the plan and compare versions (read on
every request: plan edits bump them) and a data version of the level (unit count and last update, last
geography import, and fingerprints of reps, accounts and deals), re-read at most every
``DATA_VERSION_TTL_S`` seconds, so CRM uploads reach the map within that delay.

Colours: ``color`` is the rank of the rep's id among all reps (ascending id) modulo ``PALETTE_SIZE``, so a
rep keeps its colour across plans; -1 means no rep (uncovered unit, or a territory without a rep).
A contested unit's ``owner`` is the rep of its claiming territory that comes first by territory name.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db.models import UNIT_LEVELS
from app.errors import NotFound, ProblemError
from app.services.plans import diagnostics
from app.services.plans.compare import owner_sets as compare_owners
from app.services.plans.state import PlanState, Units, load_plan, load_units

MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
PALETTE_SIZE = 12
WORLD = 20037508.342789244  # half the width of the EPSG:3857 square, metres
DATA_VERSION_TTL_S = 5.0  # account and deal edits reach the tiles within this; plan edits at once
TILE_CACHE_BYTES = 128 << 20


class InvalidTile(ProblemError):
    """The tile address or its parameters are not valid."""

    status = 422
    title = "Invalid tile request"


@dataclass
class LevelTable:
    """Every unit of a level: the diagnostics' measures, names and mercator bounding boxes."""

    units: Units
    names: np.ndarray
    bbox: np.ndarray  # (n, 4) xmin, ymin, xmax, ymax in EPSG:3857


@dataclass
class PlanTable:
    """One plan's per-unit owner properties and per-territory loads, aligned with its ``LevelTable``.

    ``first`` is each unit's owning territory row (first by name), ``k`` (one past the last territory) when
    nobody claims it; the ``lookup`` columns have ``k + 1`` entries, the last one for "no owner".
    """

    first: np.ndarray
    owners: np.ndarray
    white_space: np.ndarray
    owner_key: np.ndarray  # the unit's sorted set of owners, as compared by GET /plans/{a}/compare/{b}
    lookup: dict[str, list[Any]]
    territories: dict[str, list[Any]] = field(default_factory=dict)


def geometry_column(z: int) -> str:
    """The stored mercator geometry column for zoom ``z`` (simplified below zoom 9)."""
    if z <= 5:
        return "geom_3857_low"
    if z <= 8:
        return "geom_3857_mid"
    return "geom_3857"


def tile_bounds(z: int, x: int, y: int, margin: float = 0.0) -> tuple[float, float, float, float]:
    """The EPSG:3857 bounds of tile z/x/y, grown by ``margin`` tile widths on each side."""
    size = 2 * WORLD / (1 << z)
    xmin, ymax = -WORLD + x * size, WORLD - y * size
    pad = size * margin
    return xmin - pad, ymax - size - pad, xmin + size + pad, ymax + pad


def check_address(level: str, z: int, x: int, y: int) -> None:
    """404 for an unknown level, 422 for a zoom or column/row outside the tile grid."""
    if level not in UNIT_LEVELS:
        raise NotFound(f"no unit level {level!r} (levels: {', '.join(UNIT_LEVELS)})")
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidTile(f"zoom {z} is outside 0..{MAX_ZOOM}", parameter="z")
    limit = 1 << z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < limit:
            raise InvalidTile(f"{name} = {value} is outside 0..{limit - 1} at zoom {z}", parameter=name)


def data_version(session: Session, level: str) -> str:
    """A fingerprint of the geography of ``level`` and of the reps, accounts and deals on it."""
    row = session.execute(
        text(
            """
            SELECT (SELECT count(*) FROM geo_unit WHERE level = :level),
                   (SELECT max(updated_at) FROM geo_unit WHERE level = :level),
                   (SELECT max(id) FROM geo_import),
                   (SELECT concat_ws(':', count(*), max(id), md5(string_agg(name, ',' ORDER BY id)))
                    FROM rep),
                   (SELECT concat_ws(':', count(*), max(id), sum(workload), sum(value), sum(unit_id))
                    FROM account),
                   (SELECT concat_ws(':', count(*), max(id), sum(amount)) FROM deal)
            """
        ),
        {"level": level},
    ).one()
    return hashlib.sha1(repr(tuple(row)).encode()).hexdigest()[:16]


def plan_version(session: Session, plan_id: int, level: str, parameter: str) -> int:
    """The plan's version; 404 when it does not exist, 422 when it is a plan of another level."""
    row = session.execute(
        text("SELECT level, version FROM plan WHERE id = :id"), {"id": plan_id}
    ).one_or_none()
    if row is None:
        raise NotFound(f"no plan {plan_id}", parameter=parameter)
    if row[0] != level:
        raise InvalidTile(f"plan {plan_id} is a {row[0]} plan; these are {level} tiles", parameter=parameter)
    return int(row[1])


def build_level_table(session: Session, level: str) -> LevelTable:
    """Load the units of ``level`` with the diagnostics' measures, their names and mercator bounds."""
    units = load_units(session, level)
    rows = session.execute(
        text(
            "SELECT id, coalesce(name, ''), ST_XMin(geom_3857), ST_YMin(geom_3857), ST_XMax(geom_3857), "
            "ST_YMax(geom_3857) FROM geo_unit WHERE level = :level ORDER BY id"
        ),
        {"level": level},
    ).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    if not np.array_equal(ids, units.ids):
        raise RuntimeError(f"units of level {level} changed while loading; retry")
    bbox = np.array([r[2:] for r in rows], dtype=float).reshape(-1, 4)
    return LevelTable(units=units, names=np.array([r[1] for r in rows], dtype=object), bbox=bbox)


def rep_colours(session: Session) -> dict[int, tuple[str, str, int]]:
    """Rep id -> (external id, name, colour index): rank of the id among all reps, modulo the palette."""
    rows = session.execute(text("SELECT id, external_id, name FROM rep ORDER BY id")).all()
    return {r[0]: (r[1], r[2], rank % PALETTE_SIZE) for rank, r in enumerate(rows)}


def primary_territory(state: PlanState) -> np.ndarray:
    """Per unit row, the claiming territory first by name (territories are ordered by name), else ``k``."""
    first = np.full(len(state.units.ids), len(state.territory_ids), dtype=np.int64)
    np.minimum.at(first, state.claim_unit, state.claim_territory)
    return first


def build_plan_table(session: Session, plan_id: int, table: LevelTable) -> PlanTable:
    """Owner, owner count, flags and colour per unit; units, loads and deviation per territory."""
    state = load_plan(session, plan_id, units=table.units)
    reps = rep_colours(session)
    n, k = len(table.units.ids), len(state.territory_ids)
    t_rep = [reps.get(r) if r is not None else None for r in state.rep_ids] + [None]
    lookup: dict[str, list[Any]] = {
        "owner": [r[0] if r else "" for r in t_rep],
        "owner_name": [r[1] if r else "" for r in t_rep],
        "color": [r[2] if r else -1 for r in t_rep],
    }
    white_space = np.zeros(n, dtype=bool)
    white_space[diagnostics.white_space_rows(state)] = True
    owner_sets = compare_owners(state)
    loads = diagnostics.territory_loads(state)["workload"]
    target = float(table.units.measures["workload"].sum()) / max(k, 1)
    deviation = [diagnostics.deviation_pct(float(v), target) for v in loads.tolist()]
    return PlanTable(
        first=primary_territory(state),
        owners=np.bincount(state.claim_unit, minlength=n),
        white_space=white_space,
        owner_key=np.array(["\t".join(owner_sets.get(row, ())) for row in range(n)], dtype=object),
        lookup=lookup,
        territories={
            "id": state.territory_ids.tolist(),
            "territory": list(state.territory_names),
            "rep": lookup["owner"][:k],
            "rep_name": lookup["owner_name"][:k],
            "color": lookup["color"][:k],
            "units": np.bincount(state.claim_territory, minlength=k).tolist(),
            "workload": [round(float(v), 4) for v in loads],
            "target": [round(target, 4)] * k,
            "deviation_pct": deviation,
        },
    )


Column = tuple[str, str, list[Any]]


def _unnest(columns: Sequence[Column], alias: str) -> tuple[str, dict[str, list[Any]]]:
    """SQL ``unnest(...) AS alias(...)`` over typed array parameters, and those parameters."""
    casts = ", ".join(f"CAST(:{alias}{i} AS {sql_type}[])" for i, (_, sql_type, _) in enumerate(columns))
    names = ", ".join(name for name, _, _ in columns)
    params = {f"{alias}{i}": values for i, (_, _, values) in enumerate(columns)}
    return f"unnest({casts}) WITH ORDINALITY AS {alias}({names}, ord)", params


def _lookup(plan: PlanTable, alias: str) -> tuple[str, dict[str, list[Any]]]:
    """A join of a plan's owner lookup (one row per territory, plus "no owner") on ``p.{alias}``."""
    source, params = _unnest(
        [
            ("owner", "text", plan.lookup["owner"]),
            ("owner_name", "text", plan.lookup["owner_name"]),
            ("color", "integer", plan.lookup["color"]),
        ],
        alias,
    )
    return f" JOIN {source} ON {alias}.ord = p.{alias} + 1", params


def units_query(
    table: LevelTable, rows: np.ndarray, plan: PlanTable | None, other: PlanTable | None
) -> tuple[list[str], str, dict[str, list[Any]]]:
    """The ``units`` layer's property expressions, FROM clause and array parameters for unit ``rows``.

    Only what is not in ``geo_unit`` travels as arrays (a few per tile: each costs about 1 ms per
    1,500 units); owner strings come from a per-territory lookup joined on the territory row.
    """
    m = table.units.measures
    columns: list[Column] = [
        ("id", "bigint", table.units.ids[rows].tolist()),
        ("accounts", "integer", m["accounts"][rows].astype(np.int64).tolist()),
        ("workload", "double precision", np.round(m["workload"][rows], 4).tolist()),
    ]
    select = [
        "p.id",
        "u.code",
        "coalesce(u.name, '') AS name",
        "coalesce(u.population, 0)::double precision AS population",
        "p.accounts",
        "p.workload",
    ]
    joins, params = "", dict[str, list[Any]]()
    if plan is not None:
        columns += [
            ("oa", "integer", plan.first[rows].tolist()),
            ("owners", "integer", plan.owners[rows].tolist()),
            ("white_space", "boolean", plan.white_space[rows].tolist()),
        ]
        select += [
            "oa.owner",
            "oa.owner_name",
            "p.owners",
            "p.owners > 1 AS contested",
            "p.owners = 0 AS uncovered",
            "p.white_space",
            "oa.color",
        ]
        joins, params = _lookup(plan, "oa")
    if plan is not None and other is not None:
        columns += [
            ("ob", "integer", other.first[rows].tolist()),
            ("changed", "boolean", (plan.owner_key[rows] != other.owner_key[rows]).tolist()),
        ]
        select += ["oa.owner AS from_owner", "ob.owner AS to_owner", "p.changed"]
        more_joins, more = _lookup(other, "ob")
        joins, params = joins + more_joins, {**params, **more}
    source, unit_params = _unnest(columns, "p")
    return select, f"{source} JOIN geo_unit u ON u.id = p.id{joins}", {**params, **unit_params}


def rows_in_tile(table: LevelTable, z: int, x: int, y: int) -> np.ndarray:
    """Row indices of the units whose bounding box meets the tile grown by its buffer."""
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y, BUFFER / EXTENT)
    b = table.bbox
    hit = (b[:, 0] <= xmax) & (b[:, 2] >= xmin) & (b[:, 1] <= ymax) & (b[:, 3] >= ymin)
    return np.flatnonzero(hit)


def render_units(
    session: Session, z: int, x: int, y: int, query: tuple[list[str], str, dict[str, list[Any]]]
) -> bytes:
    """The ``units`` layer: the given properties with the zoom's stored geometry, clipped to the tile."""
    select, source, params = query
    sql = f"""
        SELECT ST_AsMVT(t, 'units', {EXTENT}, 'geom', 'id') FROM (
            SELECT ST_AsMVTGeom(u.{geometry_column(z)}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true)
                   AS geom, {", ".join(select)}
            FROM {source}
        ) t WHERE t.geom IS NOT NULL
    """
    tile = session.execute(text(sql), {"z": z, "x": x, "y": y, **params}).scalar_one()
    return bytes(tile or b"")


def render_territories(session: Session, z: int, x: int, y: int, plan: PlanTable) -> bytes:
    """The ``territories`` layer: each territory's stored dissolved geometry clipped to the tile."""
    columns = [
        ("id", "bigint", plan.territories["id"]),
        ("territory", "text", plan.territories["territory"]),
        ("rep", "text", plan.territories["rep"]),
        ("rep_name", "text", plan.territories["rep_name"]),
        ("color", "integer", plan.territories["color"]),
        ("units", "integer", plan.territories["units"]),
        ("workload", "double precision", plan.territories["workload"]),
        ("target", "double precision", plan.territories["target"]),
        ("deviation_pct", "double precision", plan.territories["deviation_pct"]),
    ]
    if not columns[0][2]:
        return b""
    source, params = _unnest(columns, "p")
    names = ", ".join(f"p.{name}" for name, _, _ in columns)
    column = geometry_column(z)
    sql = f"""
        SELECT ST_AsMVT(t, 'territories', {EXTENT}, 'geom', 'id') FROM (
            SELECT ST_AsMVTGeom(g.{column}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true)
                   AS geom, {names}
            FROM {source} JOIN territory g ON g.id = p.id
            WHERE g.{column} && ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT})
        ) t WHERE t.geom IS NOT NULL
    """
    tile = session.execute(text(sql), {"z": z, "x": x, "y": y, **params}).scalar_one()
    return bytes(tile or b"")


class TileCache:
    """In-process caches: data versions (short TTL), unit and plan tables, and an LRU of finished tiles."""

    def __init__(self, max_bytes: int = TILE_CACHE_BYTES, version_ttl_s: float = DATA_VERSION_TTL_S) -> None:
        self.max_bytes = max_bytes
        self.version_ttl_s = version_ttl_s
        self._lock = threading.Lock()
        self._build = threading.Lock()
        self._versions: dict[str, tuple[float, str]] = {}
        self._levels: dict[str, tuple[str, LevelTable]] = {}
        self._plans: OrderedDict[tuple[Any, ...], PlanTable] = OrderedDict()
        self._tiles: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._bytes = 0

    def data_version(self, session: Session, level: str) -> str:
        """The level's data version, re-read at most every ``version_ttl_s`` seconds."""
        now = time.monotonic()
        with self._lock:
            cached = self._versions.get(level)
        if cached and now - cached[0] < self.version_ttl_s:
            return cached[1]
        version = data_version(session, level)
        with self._lock:
            self._versions[level] = (now, version)
        return version

    def level_table(self, session: Session, level: str, version: str) -> LevelTable:
        """The unit table of ``level`` at data ``version`` (built once)."""
        with self._build:
            cached = self._levels.get(level)
            if cached is None or cached[0] != version:
                cached = (version, build_level_table(session, level))
                self._levels[level] = cached
            return cached[1]

    def plan_table(
        self, session: Session, key: tuple[Any, ...], plan_id: int, table: LevelTable
    ) -> PlanTable:
        """The property table of a plan version (built once; the 16 most recent are kept)."""
        with self._build:
            plan = self._plans.get(key)
            if plan is None:
                plan = build_plan_table(session, plan_id, table)
                self._plans[key] = plan
                while len(self._plans) > 16:
                    self._plans.popitem(last=False)
            self._plans.move_to_end(key)
            return plan

    def get_tile(self, key: tuple[Any, ...]) -> bytes | None:
        """A finished tile, or None."""
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
            return tile

    def put_tile(self, key: tuple[Any, ...], tile: bytes) -> None:
        """Keep a finished tile, evicting the least recently used beyond ``max_bytes``."""
        with self._lock:
            if key in self._tiles:
                return
            self._tiles[key] = tile
            self._bytes += len(tile) + 64
            while self._bytes > self.max_bytes and self._tiles:
                _, old = self._tiles.popitem(last=False)
                self._bytes -= len(old) + 64


@dataclass
class TileRequest:
    """A resolved tile request: its address, plan versions and cache key."""

    level: str
    z: int
    x: int
    y: int
    plan_id: int | None
    compare_id: int | None
    key: tuple[Any, ...]

    @property
    def etag(self) -> str:
        """A strong ETag over the level, data, plan and comparison versions and the address."""
        return '"mvt-' + hashlib.sha1(repr(self.key).encode()).hexdigest()[:24] + '"'


def resolve(
    session: Session,
    cache: TileCache,
    level: str,
    z: int,
    x: int,
    y: int,
    plan_id: int | None,
    compare_id: int | None,
) -> TileRequest:
    """Validate the request and read the versions that identify its tile (cheap: no tile is rendered)."""
    check_address(level, z, x, y)
    if compare_id is not None and plan_id is None:
        raise InvalidTile(
            "compare needs plan: compare shows the changes from plan to compare", parameter="compare"
        )
    plan_v = plan_version(session, plan_id, level, "plan") if plan_id is not None else None
    compare_v = plan_version(session, compare_id, level, "compare") if compare_id is not None else None
    version = cache.data_version(session, level)
    key = (level, version, plan_id, plan_v, compare_id, compare_v, z, x, y)
    return TileRequest(level, z, x, y, plan_id, compare_id, key)


def render(session: Session, cache: TileCache, request: TileRequest) -> bytes:
    """The tile gzip-compressed (b"" when empty): from the LRU, else rendered from the cached tables."""
    tile = cache.get_tile(request.key)
    if tile is not None:
        return tile
    level, version, plan_id, plan_v, compare_id, compare_v, z, x, y = request.key
    table = cache.level_table(session, level, version)
    plan = other = None
    if plan_id is not None:
        plan = cache.plan_table(session, (plan_id, plan_v, level, version), plan_id, table)
    if compare_id is not None:
        other = cache.plan_table(session, (compare_id, compare_v, level, version), compare_id, table)
    rows = rows_in_tile(table, z, x, y)
    tile = render_units(session, z, x, y, units_query(table, rows, plan, other)) if len(rows) else b""
    if plan is not None:
        tile += render_territories(session, z, x, y, plan)
    tile = gzip.compress(tile, compresslevel=5, mtime=0) if tile else b""
    cache.put_tile(request.key, tile)
    return tile
