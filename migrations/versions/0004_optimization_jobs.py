"""Optimization jobs and the procrastinate queue schema.

The queue's own tables come from the pinned procrastinate release (its schema.sql), applied here so one
`alembic upgrade head` prepares everything. Upgrading procrastinate means adding its migration files as a
new revision.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.get_bind().exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))
    op.create_table(
        "optimization_job",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("workspace", sa.String(64), nullable=False, server_default="default"),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("stage", sa.String(32), nullable=False, server_default="queued"),
        sa.Column("progress", sa.Double, nullable=False, server_default="0"),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("queue_job_id", sa.BigInteger),
        sa.Column("base_plan_id", sa.BigInteger, sa.ForeignKey("plan.id", ondelete="SET NULL")),
        sa.Column(
            "result_plan_id", sa.BigInteger, sa.ForeignKey("plan.id", ondelete="SET NULL"), unique=True
        ),
        sa.Column("report", JSONB, nullable=False, server_default="{}"),
        sa.Column("error", JSONB),
        sa.Column("timings", JSONB, nullable=False, server_default="{}"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("worker", sa.Text),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name="ck_optimization_job_status",
        ),
    )
    op.create_index("ix_optimization_job_status", "optimization_job", ["status"])


def downgrade() -> None:
    op.drop_table("optimization_job")
    bind = op.get_bind()
    bind.exec_driver_sql(
        "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, "
        "procrastinate_workers CASCADE"
    )
    # every function and type the queue schema created (names read from that same schema)
    schema = SchemaManager.get_schema()
    for name in sorted(set(re.findall(r"CREATE FUNCTION (procrastinate_\w+)", schema))):
        bind.exec_driver_sql(f"DROP FUNCTION IF EXISTS {name} CASCADE")
    for name in sorted(set(re.findall(r"CREATE TYPE (procrastinate_\w+)", schema))):
        bind.exec_driver_sql(f"DROP TYPE IF EXISTS {name} CASCADE")
