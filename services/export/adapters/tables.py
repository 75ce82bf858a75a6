"""The export store's tables (SQLAlchemy Core). Migrations in `migrations/versions` create the
same schema; keep the two in step."""

from __future__ import annotations

import sqlalchemy as sa

from libs.sqlstore import UtcDateTime

metadata = sa.MetaData()

export_jobs = sa.Table(
    "export_jobs",
    metadata,
    sa.Column("project_id", sa.String(63), primary_key=True),
    sa.Column("job_id", sa.String(63), primary_key=True),
    sa.Column("segment", sa.String(200), nullable=False),
    # the columns, as a JSON array of names
    sa.Column("fields_json", sa.Text(), nullable=False),
    sa.Column("destination", sa.String(8), nullable=False),
    sa.Column("byte_order_mark", sa.Boolean(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("as_of", UtcDateTime(), nullable=False),
    sa.Column("creator", sa.String(320), nullable=False),
    sa.Column("create_time", UtcDateTime(), nullable=False),
    sa.Column("update_time", UtcDateTime(), nullable=False),
    # NULL when the create request carried none (NULLs never clash in the unique index)
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("exported_count", sa.BigInteger(), nullable=False),
    sa.Column("total_count", sa.BigInteger(), nullable=False),
    sa.Column("blocked_skipped_count", sa.BigInteger(), nullable=False),
    sa.Column("output_path", sa.String(200), nullable=False),
    sa.Column("error_code", sa.String(32), nullable=True),
    sa.Column("error_reason", sa.String(64), nullable=False),
    sa.Column("error_message", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False),
    sa.Column("expire_time", UtcDateTime(), nullable=True),
    sa.Column("expired", sa.Boolean(), nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=False),
    sa.Column("lease_expires", UtcDateTime(), nullable=True),
    sa.Column("not_before", UtcDateTime(), nullable=True),
    sa.Index("uq_export_jobs_request_id", "project_id", "request_id", unique=True),
    sa.Index("ix_export_jobs_listing", "project_id", "create_time", "job_id"),
    sa.Index("ix_export_jobs_state", "state", "create_time"),
)
