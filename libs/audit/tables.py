"""The audit store's table (the migration in migrations/versions creates the same)."""

from __future__ import annotations

import sqlalchemy as sa

from libs.sqlstore.types import UtcDateTime

metadata = sa.MetaData()

audit_records = sa.Table(
    "audit_records",
    metadata,
    sa.Column("record_id", sa.String(32), primary_key=True),
    sa.Column("time", UtcDateTime(), nullable=False),
    # Who: "ada@example.com", "orchestrator", "ada@example.com via orchestrator"; "" when the
    # call was refused before a key was recognised.
    sa.Column("principal", sa.String(320), nullable=False),
    sa.Column("key_id", sa.String(12), nullable=False),
    # What: the full method name.
    sa.Column("method", sa.String(128), nullable=False),
    # The project named by the request ("" for a call on no project: keys, new projects).
    sa.Column("project_id", sa.String(63), nullable=False),
    # Which resource: the name of what was written, or the parent written into.
    sa.Column("resource", sa.String(512), nullable=False),
    # Outcome: "OK" or the status code's name, with the error message.
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("message", sa.String(512), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    # The client's address.
    sa.Column("client", sa.String(128), nullable=False),
    sa.Index("ix_audit_records_time", "time", "record_id"),
    sa.Index("ix_audit_records_project_time", "project_id", "time", "record_id"),
)
