"""Daily runs, their segments, and back-fills.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "daily_runs",
        sa.Column("project_id", sa.String(63), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("succeeded_count", sa.Integer(), nullable=False),
        sa.Column("failures_json", sa.Text(), nullable=False),
        _time("start_time"),
        _time("end_time", nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=False),
        _time("lease_expires", nullable=True),
    )
    op.create_index("ix_daily_runs_state", "daily_runs", ["state", "lease_expires"])
    op.create_table(
        "daily_run_segments",
        sa.Column("project_id", sa.String(63), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("segment", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_table(
        "backfills",
        sa.Column("project_id", sa.String(63), primary_key=True),
        sa.Column("segment", sa.String(200), primary_key=True),
        sa.Column("definition_version", sa.String(64), nullable=False),
        sa.Column("start_day", sa.Date(), nullable=False),
        sa.Column("end_day", sa.Date(), nullable=False),
        sa.Column("next_day", sa.Date(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=False),
        _time("lease_expires", nullable=True),
        _time("not_before", nullable=True),
    )
    op.create_index("ix_backfills_state", "backfills", ["state", "not_before"])


def downgrade() -> None:
    op.drop_index("ix_backfills_state", table_name="backfills")
    op.drop_table("backfills")
    op.drop_table("daily_run_segments")
    op.drop_index("ix_daily_runs_state", table_name="daily_runs")
    op.drop_table("daily_runs")
