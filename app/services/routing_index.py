"""An in-memory snapshot of each workspace's active plan for fast lead routing.

The snapshot (an STRtree over the plan level's unit polygons plus the owner of every unit) is immutable
and swapped by reference, so every answer comes from exactly one plan version. A listener thread reloads
it when an activation commits (``NOTIFY plan_activated``) and polls as a fallback; until the new
snapshot is built, readers keep getting the previous active plan, never a mix of the two.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import shapely

logger = logging.getLogger(__name__)
CHANNEL = "plan_activated"

SNAPSHOT_SQL = """
    SELECT u.code, ST_AsBinary(u.geom), t.name, r.external_id, r.name
    FROM plan p
    JOIN geo_unit u ON u.level = p.level
    LEFT JOIN plan_claim c ON c.plan_id = p.id AND c.unit_id = u.id
    LEFT JOIN territory t ON t.id = c.territory_id
    LEFT JOIN rep r ON r.id = t.rep_id
    WHERE p.id = %(plan)s
    ORDER BY u.code
"""


@dataclass(frozen=True)
class Snapshot:
    """One active plan version, ready for point and code lookups."""

    plan_id: int
    version: int
    level: str
    codes: np.ndarray
    territory: np.ndarray
    rep: np.ndarray
    rep_name: np.ndarray
    tree: shapely.STRtree
    row_of_code: dict[str, int]
    answers: list[dict[str, Any]]  # the JSON-ready owner of every unit row, built once per snapshot

    def rows_for_points(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Unit row per point (-1 outside every unit); the smallest code wins on shared borders."""
        points = np.asarray(shapely.points(np.column_stack([lon, lat])))
        point_idx, unit_rows = self.tree.query(points, predicate="intersects")
        out = np.full(len(points), -1, dtype=np.int64)
        if len(point_idx):
            order = np.lexsort((unit_rows, point_idx))  # rows are in code order
            point_idx, unit_rows = point_idx[order], unit_rows[order]
            first = np.ones(len(point_idx), dtype=bool)
            first[1:] = point_idx[1:] != point_idx[:-1]
            out[point_idx[first]] = unit_rows[first]
        return out


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def load_snapshot(conn: psycopg.Connection, workspace: str) -> Snapshot | None:
    """Build the snapshot of the workspace's active plan (None when there is none), in one transaction."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        active = conn.execute(
            "SELECT id, version, level FROM plan WHERE workspace = %s AND status = 'active'", (workspace,)
        ).fetchone()
        if active is None:
            return None
        rows = conn.execute(SNAPSHOT_SQL, {"plan": active[0]}).fetchall()
    geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
    shapely.prepare(geoms)
    codes = np.array([r[0] for r in rows], dtype=object)
    answers = [
        {
            "plan_id": int(active[0]),
            "plan_version": int(active[1]),
            "level": str(active[2]),
            "unit": r[0],
            "territory": r[2],
            "rep": r[3],
            "rep_name": r[4],
        }
        for r in rows
    ]
    return Snapshot(
        plan_id=int(active[0]),
        version=int(active[1]),
        level=str(active[2]),
        codes=codes,
        territory=np.array([r[2] for r in rows], dtype=object),
        rep=np.array([r[3] for r in rows], dtype=object),
        rep_name=np.array([r[4] for r in rows], dtype=object),
        tree=shapely.STRtree(geoms),
        row_of_code={str(c): i for i, c in enumerate(codes)},
        answers=answers,
    )


class RoutingIndex:
    """Keeps a snapshot per workspace fresh; ``get`` never blocks on a reload."""

    def __init__(self, database_url: str, *, workspaces: tuple[str, ...] = ("default",), poll_s: float = 5.0):
        self.url = _plain(database_url)
        self.workspaces = workspaces
        self.poll_s = poll_s
        self._snapshots: dict[str, Snapshot | None] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Load the snapshots in the background and keep them fresh."""
        self._thread = threading.Thread(target=self._run, name="routing-index", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.poll_s + 5)

    def wait_ready(self, timeout: float) -> bool:
        """Block until the first load finished (tests and benchmarks)."""
        return self._ready.wait(timeout)

    def get(self, workspace: str) -> Snapshot | None:
        """The current snapshot, or None (no active plan, or not loaded yet: callers fall back to SQL)."""
        return self._snapshots.get(workspace)

    def is_loaded(self, workspace: str) -> bool:
        return workspace in self._snapshots

    def _refresh(self, conn: psycopg.Connection) -> None:
        for workspace in self.workspaces:
            current = self._snapshots.get(workspace)
            with conn.transaction():
                active = conn.execute(
                    "SELECT id, version FROM plan WHERE workspace = %s AND status = 'active'", (workspace,)
                ).fetchone()
            if (
                current is not None
                and active is not None
                and (current.plan_id, current.version) == tuple(active)
            ):
                continue
            if current is None and active is None and workspace in self._snapshots:
                continue
            self._snapshots[workspace] = load_snapshot(conn, workspace)
            # The snapshot holds tens of thousands of long-lived objects: keep them out of the cyclic GC's
            # full collections, which otherwise show up as 100+ ms pauses in routing latency.
            gc.collect()
            gc.freeze()
            snapshot = self._snapshots[workspace]
            logger.info(
                "routing snapshot %s: %s",
                workspace,
                (snapshot.plan_id, snapshot.version) if snapshot else None,
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._refresh(conn)
                    self._ready.set()
                    while not self._stop.is_set():
                        # any notification, or the poll timeout, triggers a (cheap) version check
                        for _ in conn.notifies(timeout=self.poll_s, stop_after=1):
                            pass
                        self._refresh(conn)
            except psycopg.Error:
                logger.exception("routing index lost its database connection; retrying")
                self._stop.wait(1.0)
