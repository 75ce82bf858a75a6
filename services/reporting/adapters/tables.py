"""The reporting service's SQL tables (SQLAlchemy Core): the run log. Migrations in
`migrations/versions` create the same schema; keep the two in step."""

from __future__ import annotations

import sqlalchemy as sa

from libs.sqlstore import UtcDateTime

metadata = sa.MetaData()

daily_runs = sa.Table(
    "daily_runs",
    metadata,
    sa.Column("project_id", sa.String(63), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempt_count", sa.Integer(), nullable=False),
    sa.Column("succeeded_count", sa.Integer(), nullable=False),
    # the failures, as a JSON array of {segment, reason, attempts}
    sa.Column("failures_json", sa.Text(), nullable=False),
    sa.Column("start_time", UtcDateTime(), nullable=False),
    sa.Column("end_time", UtcDateTime(), nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=False),
    sa.Column("lease_expires", UtcDateTime(), nullable=True),
    sa.Index("ix_daily_runs_state", "state", "lease_expires"),
)

daily_run_segments = sa.Table(
    "daily_run_segments",
    metadata,
    sa.Column("project_id", sa.String(63), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("segment", sa.String(200), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
)

backfills = sa.Table(
    "backfills",
    metadata,
    sa.Column("project_id", sa.String(63), primary_key=True),
    sa.Column("segment", sa.String(200), primary_key=True),
    sa.Column("definition_version", sa.String(64), nullable=False),
    sa.Column("start_day", sa.Date(), nullable=False),
    sa.Column("end_day", sa.Date(), nullable=False),
    # the first day not yet computed (end_day + 1 once done)
    sa.Column("next_day", sa.Date(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=False),
    sa.Column("lease_expires", UtcDateTime(), nullable=True),
    sa.Column("not_before", UtcDateTime(), nullable=True),
    sa.Index("ix_backfills_state", "state", "not_before"),
)

# The version of a segment's stored figures (ClickHouse), bumped after every write of them by
# any process: a process reuses a trend it read while the version stays the same.
figure_versions = sa.Table(
    "figure_versions",
    metadata,
    sa.Column("project_id", sa.String(63), primary_key=True),
    sa.Column("segment", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer(), nullable=False),
)
