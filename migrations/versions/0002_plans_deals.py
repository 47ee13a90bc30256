"""Deals, plans, territories and claims; one active plan per workspace; single-owner plans.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deal",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("external_id", sa.String(128), nullable=False, unique=True),
        sa.Column(
            "account_id", sa.BigInteger, sa.ForeignKey("account.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("amount", sa.Double, nullable=False, server_default="0"),
        sa.Column("stage", sa.String(16), nullable=False, server_default="open"),
        sa.Column("product", sa.String(64)),
        sa.Column("closed_on", sa.Date),
        sa.CheckConstraint("stage IN ('open', 'won', 'lost')", name="ck_deal_stage"),
        sa.CheckConstraint("amount >= 0", name="ck_deal_amount"),
    )
    op.create_index("ix_deal_account", "deal", ["account_id"])

    op.create_table(
        "plan",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("workspace", sa.String(64), nullable=False, server_default="default"),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("source", sa.String(16), nullable=False, server_default="imported"),
        sa.Column("single_owner", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("plan.id", ondelete="SET NULL")),
        sa.Column("quarter", sa.String(16)),
        sa.Column("effective_date", sa.Date),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("seed", sa.BigInteger),
        sa.Column("solver_version", sa.String(64)),
        sa.Column("inputs", JSONB, nullable=False, server_default="{}"),
        sa.Column("metrics", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("activated_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('draft', 'approved', 'active', 'archived')", name="ck_plan_status"),
        sa.CheckConstraint("source IN ('imported', 'optimizer', 'manual')", name="ck_plan_source"),
        sa.CheckConstraint("status <> 'active' OR single_owner", name="ck_plan_active_single_owner"),
        sa.UniqueConstraint("id", "single_owner", name="uq_plan_id_single_owner"),
    )
    op.create_index(
        "uq_plan_one_active",
        "plan",
        ["workspace"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )

    op.create_table(
        "territory",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("plan_id", sa.BigInteger, sa.ForeignKey("plan.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("rep_id", sa.BigInteger, sa.ForeignKey("rep.id", ondelete="SET NULL")),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)),
        sa.Column("metrics", JSONB, nullable=False, server_default="{}"),
        sa.UniqueConstraint("plan_id", "name", name="uq_territory_plan_name"),
    )
    op.create_index("ix_territory_geom", "territory", ["geom"], postgresql_using="gist")

    op.create_table(
        "plan_claim",
        sa.Column("plan_id", sa.BigInteger, primary_key=True),
        sa.Column(
            "unit_id", sa.BigInteger, sa.ForeignKey("geo_unit.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "territory_id", sa.BigInteger, sa.ForeignKey("territory.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("single_owner", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(
            ["plan_id", "single_owner"],
            ["plan.id", "plan.single_owner"],
            ondelete="CASCADE",
            onupdate="CASCADE",
            name="fk_plan_claim_plan",
        ),
    )
    op.create_index(
        "uq_plan_claim_single_owner",
        "plan_claim",
        ["plan_id", "unit_id"],
        unique=True,
        postgresql_where=sa.text("single_owner"),
    )
    op.create_index("ix_plan_claim_unit", "plan_claim", ["unit_id"])
    op.create_index("ix_plan_claim_territory", "plan_claim", ["territory_id"])


def downgrade() -> None:
    op.drop_table("plan_claim")
    op.drop_table("territory")
    op.drop_table("plan")
    op.drop_table("deal")
