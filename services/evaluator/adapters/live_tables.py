"""The evaluator's own SQL tables (live state), SQLAlchemy Core. Migrations in
`live_migrations/versions` create the same schema; keep the two in step.

Times are Int64 milliseconds since the epoch (UTC) on both backends: portable, sortable and
bucketed by integer division. Trigger events are stored as JSON (`live_rows`).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: The cursor counter: entries take their cursors from its one row, whose lock is held until
#: the writing transaction commits, so cursors become visible in order (no reader ever sees
#: a cursor while a smaller one is still to commit).
live_counter = sa.Table(
    "evaluator_live_counter",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger(), nullable=False),
)

#: The outbox: every entry, written in the transaction of the state change that made it.
live_entries = sa.Table(
    "evaluator_live_entries",
    metadata,
    sa.Column("cursor", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.String(32), nullable=False, unique=True),
    sa.Column("project", sa.String(63), nullable=False),
    sa.Column("segment_id", sa.String(63), nullable=False),
    sa.Column("user_id", sa.String(256), nullable=False),
    sa.Column("entry_ms", sa.BigInteger(), nullable=False),
    sa.Column("create_ms", sa.BigInteger(), nullable=False),
    sa.Column("late", sa.Boolean(), nullable=False),
    sa.Column("event_json", sa.Text(), nullable=True),
    sa.Index("ix_evaluator_live_entries_project_cursor", "project", "cursor"),
    sa.Index(
        "ix_evaluator_live_entries_segment_time", "project", "segment_id", "entry_ms", "user_id"
    ),
    sa.Index("ix_evaluator_live_entries_create", "create_ms"),
)

#: Pending inaction timers (and, until retention removes them, fired or dropped ones).
live_timers = sa.Table(
    "evaluator_live_timers",
    metadata,
    sa.Column("timer_id", sa.String(32), primary_key=True),
    sa.Column("project", sa.String(63), nullable=False),
    sa.Column("segment_id", sa.String(63), nullable=False),
    sa.Column("user_id", sa.String(256), nullable=False),
    sa.Column("trigger_key", sa.String(32), nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),  # the A event
    sa.Column("a_ms", sa.BigInteger(), nullable=False),
    sa.Column("due_ms", sa.BigInteger(), nullable=False),
    sa.Column("event_json", sa.Text(), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # pending, fired, cancelled, dropped
    sa.Column("claim", sa.String(32), nullable=True),
    sa.Column("claim_until_ms", sa.BigInteger(), nullable=True),
    sa.Column("done_ms", sa.BigInteger(), nullable=True),
    sa.Index("ix_evaluator_live_timers_due", "state", "due_ms"),
    sa.Index("ix_evaluator_live_timers_done", "done_ms"),
)

#: Each user's last entry per segment (re-entry policies ONCE and AFTER_COOLDOWN).
live_members = sa.Table(
    "evaluator_live_members",
    metadata,
    sa.Column("project", sa.String(63), primary_key=True),
    sa.Column("segment_id", sa.String(63), primary_key=True),
    sa.Column("user_id", sa.String(256), primary_key=True),
    sa.Column("last_entry_ms", sa.BigInteger(), nullable=False),
)

#: Page views counted by page-count segments (one row per view: counting is idempotent).
live_page_views = sa.Table(
    "evaluator_live_page_views",
    metadata,
    sa.Column("project", sa.String(63), primary_key=True),
    sa.Column("segment_id", sa.String(63), primary_key=True),
    sa.Column("user_id", sa.String(256), primary_key=True),
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("scope", sa.String(256), nullable=False),
    sa.Column("event_ms", sa.BigInteger(), nullable=False),
    sa.Index("ix_evaluator_live_page_views_scope", "project", "segment_id", "user_id", "scope"),
    sa.Index("ix_evaluator_live_page_views_time", "event_ms"),
)

#: Days whose start a date-trigger segment has been checked for.
live_day_checks = sa.Table(
    "evaluator_live_day_checks",
    metadata,
    sa.Column("project", sa.String(63), primary_key=True),
    sa.Column("segment_id", sa.String(63), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("done_ms", sa.BigInteger(), nullable=False),
)
