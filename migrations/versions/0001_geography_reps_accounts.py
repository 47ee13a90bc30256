"""Geography (units, adjacency, imports), reps and accounts.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "geo_unit",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("state", sa.String(8)),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
        sa.Column("centroid", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("area_km2", sa.Double, nullable=False),
        sa.Column("population", sa.Double),
        sa.Column("attributes", JSONB, nullable=False, server_default="{}"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("level", "code", name="uq_geo_unit_level_code"),
        sa.CheckConstraint("level IN ('zcta', 'county', 'custom')", name="ck_geo_unit_level"),
    )
    op.create_index("ix_geo_unit_geom", "geo_unit", ["geom"], postgresql_using="gist")
    op.create_index("ix_geo_unit_centroid", "geo_unit", ["centroid"], postgresql_using="gist")

    op.create_table(
        "geo_unit_adjacency",
        sa.Column("a_id", sa.BigInteger, sa.ForeignKey("geo_unit.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("b_id", sa.BigInteger, sa.ForeignKey("geo_unit.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("shared_border_m", sa.Double, nullable=False, server_default="0"),
        sa.Column("is_bridge", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("bridge_distance_m", sa.Double, nullable=False, server_default="0"),
        sa.CheckConstraint("a_id < b_id", name="ck_geo_unit_adjacency_ordered"),
    )
    op.create_index("ix_geo_unit_adjacency_b", "geo_unit_adjacency", ["b_id"])

    op.create_table(
        "geo_import",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("units", sa.Integer, nullable=False),
        sa.Column("inserted", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("adjacency_edges", sa.Integer, nullable=False),
        sa.Column("bridge_edges", sa.Integer, nullable=False),
        sa.Column("options", JSONB, nullable=False, server_default="{}"),
        sa.Column("problems", JSONB, nullable=False, server_default="[]"),
        sa.Column("timings", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )

    op.create_table(
        "rep",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("external_id", sa.String(128), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("home", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("capacity", sa.Double, nullable=False, server_default="1"),
        sa.Column("segment", sa.String(64)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    )

    op.create_table(
        "account",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("external_id", sa.String(128), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("location", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("zip", sa.String(10)),
        sa.Column("unit_id", sa.BigInteger, sa.ForeignKey("geo_unit.id", ondelete="SET NULL")),
        sa.Column("value", sa.Double, nullable=False, server_default="0"),
        sa.Column("workload", sa.Double, nullable=False, server_default="1"),
        sa.Column("stage", sa.String(16), nullable=False, server_default="prospect"),
        sa.Column("segment", sa.String(64)),
        sa.Column("crm_owner", sa.String(128)),
        sa.CheckConstraint("stage IN ('prospect', 'open', 'won', 'lost')", name="ck_account_stage"),
        sa.CheckConstraint("workload >= 0", name="ck_account_workload"),
    )
    op.create_index("ix_account_location", "account", ["location"], postgresql_using="gist")
    op.create_index("ix_account_unit", "account", ["unit_id"])


def downgrade() -> None:
    op.drop_table("account")
    op.drop_table("rep")
    op.drop_table("geo_import")
    op.drop_table("geo_unit_adjacency")
    op.drop_table("geo_unit")
