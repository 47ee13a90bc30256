"""Vector tiles: web-mercator geometry stored once, with pre-simplified copies for low zooms.

`geom_3857` is `geom` in EPSG:3857; `geom_3857_mid` (for zooms 6-8) and `geom_3857_low` (zooms 0-5) are
simplified with tolerances of about one screen pixel at the lowest zoom that uses them. All are generated
columns (ST_Transform, the simplifications and `tile_fill_small_holes` are immutable), so they follow every
import and every territory dissolve without application code.

Units keep their topology (ST_SimplifyPreserveTopology). Dissolved territories use ST_Simplify (collapsed
parts kept), and their mid copy first fills the holes under 10 km2 (mercator): the slivers left between
units that do not tessellate, 87 % of the vertices of the national by-state territories. On the national
ZCTA set that makes zoom-4 territory layers 6x and zoom-7 ones about 15x faster to render, for about
1.5 s more per national dissolve. `ix_geo_unit_level_updated` makes the geography version of the tile
ETags (max(updated_at) per level) an index lookup.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Simplification tolerances in metres (EPSG:3857 units), about one 512 px screen pixel at zoom 5 and 8.
LOW_TOLERANCE_M = 2400.0
MID_TOLERANCE_M = 300.0
MID_MIN_HOLE_M2 = 1e7

# Rebuild each polygon without its holes smaller than min_area. search_path is pinned at creation so that
# the body resolves PostGIS when a restore (search_path '') recomputes the generated columns.
FILL_SMALL_HOLES = """
CREATE FUNCTION tile_fill_small_holes(g geometry, min_area double precision) RETURNS geometry
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT ST_Multi(ST_Collect(p.geom)) FROM (
    SELECT ST_MakePolygon(ST_ExteriorRing(d.geom), coalesce(
             (SELECT array_agg(ST_ExteriorRing(r.geom)) FROM ST_DumpRings(d.geom) r
              WHERE r.path[1] > 0 AND ST_Area(r.geom) >= min_area), '{}'::geometry[])) AS geom
    FROM ST_Dump(g) d
  ) p
$$;
ALTER FUNCTION tile_fill_small_holes(geometry, double precision) SET search_path FROM CURRENT;
"""


def _columns(table: str, simplify: str, mid_source: str) -> str:
    mercator = "ST_Transform(geom, 3857)"
    mid = simplify.format(geom=mid_source.format(geom=mercator), tolerance=MID_TOLERANCE_M)
    low = simplify.format(geom=mercator, tolerance=LOW_TOLERANCE_M)
    column = "geometry(MultiPolygon, 3857) GENERATED ALWAYS AS"
    return (
        f"ALTER TABLE {table} ADD COLUMN geom_3857 {column} ({mercator}) STORED, "
        f"ADD COLUMN geom_3857_mid {column} (ST_Multi({mid})) STORED, "
        f"ADD COLUMN geom_3857_low {column} (ST_Multi({low})) STORED"
    )


def upgrade() -> None:
    op.execute(FILL_SMALL_HOLES)
    op.execute(_columns("geo_unit", "ST_SimplifyPreserveTopology({geom}, {tolerance})", "{geom}"))
    op.execute(
        _columns(
            "territory",
            "ST_Simplify({geom}, {tolerance}, true)",
            f"tile_fill_small_holes({{geom}}, {MID_MIN_HOLE_M2})",
        )
    )
    op.create_index("ix_geo_unit_geom_3857", "geo_unit", ["geom_3857"], postgresql_using="gist")
    op.create_index("ix_geo_unit_level_updated", "geo_unit", ["level", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_geo_unit_level_updated", table_name="geo_unit")
    op.drop_index("ix_geo_unit_geom_3857", table_name="geo_unit")
    for table in ("territory", "geo_unit"):
        op.execute(
            f"ALTER TABLE {table} DROP COLUMN geom_3857_low, DROP COLUMN geom_3857_mid, DROP COLUMN geom_3857"
        )
    op.execute("DROP FUNCTION tile_fill_small_holes(geometry, double precision)")
