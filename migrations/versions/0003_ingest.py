"""Ingest: account placement, value and capacity checks, rep home ZIP, unit_measure view.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Measures per unit derived from accounts and deals; units without accounts get zeros.
# `segments` / `stages` count accounts per segment / stage (accounts without a segment are not keyed).
UNIT_MEASURE_VIEW = """
CREATE VIEW unit_measure AS
SELECT u.id AS unit_id, u.level, u.code,
       coalesce(a.accounts, 0) AS accounts,
       coalesce(a.workload, 0) AS workload,
       coalesce(a.value, 0) AS value,
       coalesce(s.segments, '{}'::jsonb) AS segments,
       coalesce(a.stages, '{}'::jsonb) AS stages,
       coalesce(d.won_deals, 0) AS won_deals, coalesce(d.won_amount, 0) AS won_amount,
       coalesce(d.lost_deals, 0) AS lost_deals, coalesce(d.lost_amount, 0) AS lost_amount,
       coalesce(d.open_deals, 0) AS open_deals, coalesce(d.open_amount, 0) AS open_amount
FROM geo_unit u
LEFT JOIN (
    SELECT unit_id, count(*) AS accounts, sum(workload) AS workload, sum(value) AS value,
           jsonb_strip_nulls(jsonb_build_object(
               'prospect', nullif(count(*) FILTER (WHERE stage = 'prospect'), 0),
               'open', nullif(count(*) FILTER (WHERE stage = 'open'), 0),
               'won', nullif(count(*) FILTER (WHERE stage = 'won'), 0),
               'lost', nullif(count(*) FILTER (WHERE stage = 'lost'), 0))) AS stages
    FROM account WHERE unit_id IS NOT NULL GROUP BY unit_id
) a ON a.unit_id = u.id
LEFT JOIN (
    SELECT unit_id, jsonb_object_agg(segment, n) AS segments
    FROM (SELECT unit_id, segment, count(*) AS n FROM account
          WHERE unit_id IS NOT NULL AND segment IS NOT NULL GROUP BY unit_id, segment) x
    GROUP BY unit_id
) s ON s.unit_id = u.id
LEFT JOIN (
    SELECT ac.unit_id,
           count(*) FILTER (WHERE dl.stage = 'won') AS won_deals,
           coalesce(sum(dl.amount) FILTER (WHERE dl.stage = 'won'), 0) AS won_amount,
           count(*) FILTER (WHERE dl.stage = 'lost') AS lost_deals,
           coalesce(sum(dl.amount) FILTER (WHERE dl.stage = 'lost'), 0) AS lost_amount,
           count(*) FILTER (WHERE dl.stage = 'open') AS open_deals,
           coalesce(sum(dl.amount) FILTER (WHERE dl.stage = 'open'), 0) AS open_amount
    FROM deal dl JOIN account ac ON ac.id = dl.account_id
    WHERE ac.unit_id IS NOT NULL GROUP BY ac.unit_id
) d ON d.unit_id = u.id
"""


def upgrade() -> None:
    op.add_column("rep", sa.Column("home_zip", sa.String(10)))
    op.create_check_constraint("ck_rep_capacity", "rep", "capacity > 0")

    # How the account was placed on its unit; NULL for rows written before this revision or by other
    # writers (readers derive it: no unit -> unmatched, else point when a location exists, else zip).
    op.add_column("account", sa.Column("placement", sa.String(16)))
    op.create_check_constraint(
        "ck_account_placement", "account", "placement IS NULL OR placement IN ('point', 'zip', 'unmatched')"
    )
    op.create_check_constraint("ck_account_value", "account", "value >= 0")
    op.create_index(
        "ix_account_unplaced",
        "account",
        ["external_id"],
        postgresql_where=sa.text("unit_id IS NULL"),
    )
    op.execute(UNIT_MEASURE_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS unit_measure")
    op.drop_index("ix_account_unplaced", table_name="account")
    op.drop_constraint("ck_account_value", "account", type_="check")
    op.drop_constraint("ck_account_placement", "account", type_="check")
    op.drop_column("account", "placement")
    op.drop_constraint("ck_rep_capacity", "rep", type_="check")
    op.drop_column("rep", "home_zip")
