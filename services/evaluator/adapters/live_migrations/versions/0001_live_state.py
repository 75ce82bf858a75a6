"""Live state: the entries outbox and its cursor counter, inaction timers, each user's last
entry, counted page views and checked days.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _ms(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def upgrade() -> None:
    counter = op.create_table(
        "evaluator_live_counter",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(counter, [{"name": "entries", "value": 0}])
    op.create_table(
        "evaluator_live_entries",
        sa.Column("cursor", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("entry_id", sa.String(32), nullable=False, unique=True),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("segment_id", sa.String(63), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        _ms("entry_ms"),
        _ms("create_ms"),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("event_json", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_evaluator_live_entries_project_cursor", "evaluator_live_entries", ["project", "cursor"]
    )
    op.create_index(
        "ix_evaluator_live_entries_segment_time",
        "evaluator_live_entries",
        ["project", "segment_id", "entry_ms", "user_id"],
    )
    op.create_index("ix_evaluator_live_entries_create", "evaluator_live_entries", ["create_ms"])
    op.create_table(
        "evaluator_live_timers",
        sa.Column("timer_id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("segment_id", sa.String(63), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("trigger_key", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        _ms("a_ms"),
        _ms("due_ms"),
        sa.Column("event_json", sa.Text(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("claim", sa.String(32), nullable=True),
        _ms("claim_until_ms", nullable=True),
        _ms("done_ms", nullable=True),
    )
    op.create_index("ix_evaluator_live_timers_due", "evaluator_live_timers", ["state", "due_ms"])
    op.create_index("ix_evaluator_live_timers_done", "evaluator_live_timers", ["done_ms"])
    op.create_table(
        "evaluator_live_members",
        sa.Column("project", sa.String(63), primary_key=True),
        sa.Column("segment_id", sa.String(63), primary_key=True),
        sa.Column("user_id", sa.String(256), primary_key=True),
        _ms("last_entry_ms"),
    )
    op.create_table(
        "evaluator_live_page_views",
        sa.Column("project", sa.String(63), primary_key=True),
        sa.Column("segment_id", sa.String(63), primary_key=True),
        sa.Column("user_id", sa.String(256), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("scope", sa.String(256), nullable=False),
        _ms("event_ms"),
    )
    op.create_index(
        "ix_evaluator_live_page_views_scope",
        "evaluator_live_page_views",
        ["project", "segment_id", "user_id", "scope"],
    )
    op.create_index("ix_evaluator_live_page_views_time", "evaluator_live_page_views", ["event_ms"])
    op.create_table(
        "evaluator_live_day_checks",
        sa.Column("project", sa.String(63), primary_key=True),
        sa.Column("segment_id", sa.String(63), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        _ms("done_ms"),
    )


def downgrade() -> None:
    for table in (
        "evaluator_live_day_checks",
        "evaluator_live_page_views",
        "evaluator_live_members",
        "evaluator_live_timers",
        "evaluator_live_entries",
        "evaluator_live_counter",
    ):
        op.drop_table(table)
