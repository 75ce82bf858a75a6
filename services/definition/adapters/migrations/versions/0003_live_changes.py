"""The change feed of live segments: a sequence counter and each live segment's last change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    counter = op.create_table(
        "live_change_sequence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(counter, [{"id": 1, "value": 0}])
    op.create_table(
        "live_segment_changes",
        sa.Column("project_id", sa.String(63), primary_key=True),
        sa.Column("segment_id", sa.String(63), primary_key=True),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_live_segment_changes_sequence", "live_segment_changes", ["sequence"])


def downgrade() -> None:
    op.drop_index("ix_live_segment_changes_sequence", "live_segment_changes")
    op.drop_table("live_segment_changes")
    op.drop_table("live_change_sequence")
