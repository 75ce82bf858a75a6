"""Export jobs.

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


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "export_jobs",
        sa.Column("project_id", sa.String(63), primary_key=True),
        sa.Column("job_id", sa.String(63), primary_key=True),
        sa.Column("segment", sa.String(200), nullable=False),
        sa.Column("fields_json", sa.Text(), nullable=False),
        sa.Column("destination", sa.String(8), nullable=False),
        sa.Column("byte_order_mark", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _time("as_of"),
        sa.Column("creator", sa.String(320), nullable=False),
        _time("create_time"),
        _time("update_time"),
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
        _time("expire_time", nullable=True),
        sa.Column("expired", sa.Boolean(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=False),
        _time("lease_expires", nullable=True),
        _time("not_before", nullable=True),
    )
    op.create_index(
        "uq_export_jobs_request_id", "export_jobs", ["project_id", "request_id"], unique=True
    )
    op.create_index(
        "ix_export_jobs_listing", "export_jobs", ["project_id", "create_time", "job_id"]
    )
    op.create_index("ix_export_jobs_state", "export_jobs", ["state", "create_time"])


def downgrade() -> None:
    op.drop_index("ix_export_jobs_state", table_name="export_jobs")
    op.drop_index("ix_export_jobs_listing", table_name="export_jobs")
    op.drop_index("uq_export_jobs_request_id", table_name="export_jobs")
    op.drop_table("export_jobs")
