"""Optimization jobs: the solver's own stage while a job solves.

`stage` stays the job's coarse step (queued, loading, solving, saving, done...), which clients compare
against; `solver_stage` says what the solver is doing inside "solving" (centre choice, construction,
improvement moves, cluster rebuilds, window polishing, lower bound, the exact model...) and keeps the last one
it reached once the job ends.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("optimization_job", sa.Column("solver_stage", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("optimization_job", "solver_stage")
