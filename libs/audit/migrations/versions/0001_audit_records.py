"""Audit records.

Revision ID: audit_0001
Revises:
Create Date: 2026-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("record_id", sa.String(32), primary_key=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal", sa.String(320), nullable=False),
        sa.Column("key_id", sa.String(12), nullable=False),
        sa.Column("method", sa.String(128), nullable=False),
        sa.Column("project_id", sa.String(63), nullable=False),
        sa.Column("resource", sa.String(512), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("message", sa.String(512), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("client", sa.String(128), nullable=False),
    )
    op.create_index("ix_audit_records_time", "audit_records", ["time", "record_id"])
    op.create_index(
        "ix_audit_records_project_time", "audit_records", ["project_id", "time", "record_id"]
    )


def downgrade() -> None:
    op.drop_table("audit_records")
