"""Import geography into PostGIS: read, validate, repair, join population, build adjacency, upsert.

The same use case serves the CLI (`territory geodata import`) and the HTTP upload. Everything is validated
in memory first; the database is written in the caller's transaction, so a bad file changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
from sqlalchemy.orm import Session

import geodata
from app.db.models import GeoImport
from app.schemas import ImportReport, ProblemItem

Progress = Callable[[str, int, int], None]


@dataclass
class ImportOptions:
    """How to interpret a geography file."""

    level: str = "zcta"
    contiguity: str = "queen"
    tolerance: float = 0.0
    code_field: str | None = None
    name_field: str | None = None
    state_field: str | None = None
    population_field: str | None = None
    population_csv: str | None = None
    population_code_column: str | None = None
    population_value_column: str | None = None
    strict: bool = False
    allow_rejects: bool = False
    bridges: bool = True
    layer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _noop(stage: str, done: int, total: int) -> None:
    return None


def prepare(
    path: Path, options: ImportOptions, progress: Progress = _noop
) -> tuple[geodata.UnitSet, geodata.Adjacency, list[geodata.Problem], dict[str, float]]:
    """Read, validate and repair ``path``, join population and build adjacency (no database)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    progress("read", 0, 1)
    raw = geodata.read_features(path, layer=options.layer)
    timings["read"] = time.perf_counter() - started
    progress("read", 1, 1)

    started = time.perf_counter()
    progress("validate", 0, 1)
    units = geodata.prepare_units(
        raw,
        level=options.level,
        code_field=options.code_field,
        name_field=options.name_field,
        state_field=options.state_field,
        population_field=options.population_field,
        strict=options.strict,
        allow_rejects=options.allow_rejects,
    )
    problems = list(units.problems)
    if options.population_csv:
        if not (options.population_code_column and options.population_value_column):
            raise geodata.GeodataError(
                "a population CSV needs population_code_column and population_value_column",
                problems=[],
            )
        values, csv_problems = geodata.read_population_csv(
            options.population_csv,
            code_column=options.population_code_column,
            value_column=options.population_value_column,
        )
        problems.extend(csv_problems)
        problems.extend(geodata.join_population(units, values))
    timings["validate"] = time.perf_counter() - started
    progress("validate", 1, 1)

    started = time.perf_counter()
    adjacency = geodata.build_adjacency(
        units.frame.geometry.values,
        contiguity=options.contiguity,
        tolerance=options.tolerance,
        bridges=options.bridges,
        progress=lambda done, total: progress("adjacency", done, total),
    )
    timings["adjacency"] = time.perf_counter() - started
    return units, adjacency, problems, timings


def write(
    session: Session,
    units: geodata.UnitSet,
    adjacency: geodata.Adjacency,
    progress: Progress = _noop,
) -> tuple[np.ndarray, int]:
    """Upsert units by (level, code) and replace the adjacency among them; return unit ids and inserts.

    Uses COPY into temporary tables on the session's own connection, so it joins the caller's transaction.
    """
    frame = units.frame
    total = len(frame)
    raw_connection = session.connection().connection.driver_connection
    assert raw_connection is not None
    geoms = shapely.to_wkb(frame.geometry.values, include_srid=False)
    centroids = shapely.to_wkb(np.asarray(frame["centroid"].values), include_srid=False)
    population = frame["population"].to_numpy(dtype=float)
    with raw_connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS _import_unit, _import_ids")
        cur.execute(
            "CREATE TEMP TABLE _import_unit (ord integer, code text, name text, state text, geom bytea, "
            "centroid bytea, area_km2 double precision, population double precision, attributes jsonb) "
            "ON COMMIT DROP"
        )
        with cur.copy("COPY _import_unit FROM STDIN") as copy:
            for i, row in enumerate(
                frame[["code", "name", "state", "area_km2", "attributes"]].itertuples(index=False)
            ):
                pop = None if np.isnan(population[i]) else float(population[i])
                copy.write_row(
                    (
                        i,
                        row.code,
                        _none_if_nan(row.name),
                        _none_if_nan(row.state),
                        geoms[i],
                        centroids[i],
                        float(row.area_km2),
                        pop,
                        orjson.dumps(row.attributes or {}, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
                    )
                )
                if i % 2000 == 0:
                    progress("write units", i, total)
        progress("write units", total, total)
        cur.execute(
            """
            INSERT INTO geo_unit AS g (level, code, name, state, geom, centroid, area_km2, population,
                                       attributes,
                                       updated_at)
            SELECT %(level)s, code, name, state,
                   ST_Multi(ST_SetSRID(ST_GeomFromWKB(geom), 4326)),
                   ST_SetSRID(ST_GeomFromWKB(centroid), 4326),
                   area_km2, population, attributes, now()
            FROM _import_unit ORDER BY ord
            ON CONFLICT (level, code) DO UPDATE SET
                name = EXCLUDED.name, state = EXCLUDED.state, geom = EXCLUDED.geom,
                centroid = EXCLUDED.centroid, area_km2 = EXCLUDED.area_km2,
                population = EXCLUDED.population, attributes = EXCLUDED.attributes, updated_at = now()
            RETURNING g.code, g.id, (xmax = 0) AS inserted
            """,
            {"level": units.level},
        )
        returned = cur.fetchall()
        id_by_code = {code: unit_id for code, unit_id, _ in returned}
        inserted = sum(1 for *_, was_inserted in returned if was_inserted)
        ids = np.array([id_by_code[code] for code in frame["code"]], dtype=np.int64)

        # Replace the adjacency among the imported units (edges to units outside this file are kept).
        cur.execute("CREATE TEMP TABLE _import_ids (id bigint PRIMARY KEY) ON COMMIT DROP")
        with cur.copy("COPY _import_ids FROM STDIN") as copy:
            for unit_id in ids:
                copy.write_row((int(unit_id),))
        cur.execute(
            "DELETE FROM geo_unit_adjacency WHERE a_id IN (SELECT id FROM _import_ids) "
            "AND b_id IN (SELECT id FROM _import_ids)"
        )
        a_ids, b_ids = ids[adjacency.a], ids[adjacency.b]
        low, high = np.minimum(a_ids, b_ids), np.maximum(a_ids, b_ids)
        edges = len(low)
        with cur.copy(
            "COPY geo_unit_adjacency (a_id, b_id, shared_border_m, is_bridge, bridge_distance_m) FROM STDIN"
        ) as copy:
            for k in range(edges):
                copy.write_row(
                    (
                        int(low[k]),
                        int(high[k]),
                        float(adjacency.shared_border_m[k]),
                        bool(adjacency.is_bridge[k]),
                        float(adjacency.bridge_distance_m[k]),
                    )
                )
                if k % 10000 == 0:
                    progress("write adjacency", k, edges)
        progress("write adjacency", edges, edges)
        # planner statistics for the rows just written (ANALYZE counts this transaction's own rows): without
        # them a join of the adjacency with its units in the same transaction, or before autovacuum comes by,
        # may be planned for near-empty tables (a fresh clone's test run: that join on the national set ran
        # over 8 minutes; with statistics the whole national import test takes about 30 s)
        cur.execute("ANALYZE geo_unit (id, level, code), geo_unit_adjacency")
    return ids, inserted


def _none_if_nan(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    return str(value)


def import_geography(
    session: Session,
    path: Path,
    options: ImportOptions,
    *,
    source: str | None = None,
    progress: Progress = _noop,
) -> ImportReport:
    """Validate ``path`` completely, then upsert it in the session's transaction and record the import."""
    units, adjacency, problems, timings = prepare(path, options, progress)
    started = time.perf_counter()
    ids, inserted = write(session, units, adjacency, progress)
    timings["write"] = time.perf_counter() - started
    repaired = sum(1 for p in problems if p.action == "repaired")
    rejected = sum(1 for p in problems if p.action == "rejected")
    option_dict = {k: v for k, v in asdict(options).items() if v not in (None, {}, False) or k == "strict"}
    record = GeoImport(
        source=source or str(path),
        level=units.level,
        units=len(ids),
        inserted=inserted,
        updated=len(ids) - inserted,
        adjacency_edges=len(adjacency.a),
        bridge_edges=int(np.count_nonzero(adjacency.is_bridge)),
        options=option_dict,
        problems=[p.to_dict() for p in problems],
        timings={k: round(v, 3) for k, v in timings.items()},
    )
    session.add(record)
    session.flush()
    return ImportReport(
        import_id=record.id,
        source=record.source,
        level=record.level,
        units=record.units,
        inserted=record.inserted,
        updated=record.updated,
        with_population=int(units.frame["population"].notna().sum()),
        adjacency_edges=record.adjacency_edges,
        bridge_edges=record.bridge_edges,
        components_before_bridges=adjacency.n_components_before_bridges,
        repaired=repaired,
        rejected=rejected,
        problems=[ProblemItem(**p.to_dict()) for p in problems],
        timings_s=record.timings,
        options=option_dict,
    )
