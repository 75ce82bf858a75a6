"""Initial schema: projects, segments, references between segments, usages, request ids.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _time(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("project_id", sa.String(63), primary_key=True),
        sa.Column("time_zone", sa.String(64), nullable=False),
        _time("create_time"),
        _time("update_time"),
        sa.Column("etag", sa.String(32), nullable=False),
    )
    op.create_table(
        "segments",
        sa.Column(
            "project_id", sa.String(63), sa.ForeignKey("projects.project_id"), primary_key=True
        ),
        sa.Column("segment_id", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(800), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("segment_type", sa.String(16), nullable=False),
        sa.Column("definition_json", sa.Text(), nullable=False),
        sa.Column("creator", sa.String(320), nullable=False),
        sa.Column("updater", sa.String(320), nullable=False),
        _time("create_time"),
        _time("update_time"),
        sa.Column("etag", sa.String(32), nullable=False),
        sa.Column("goal_count", sa.Integer(), nullable=False),
        sa.Column("intent_goal_count", sa.Integer(), nullable=False),
        sa.Column("engagement_count", sa.Integer(), nullable=False),
        sa.Column("dependent_segment_count", sa.Integer(), nullable=False),
    )
    op.create_index("uq_segments_name_key", "segments", ["project_id", "name_key"], unique=True)
    for column in ("create_time", "update_time", "engagement_count", "dependent_segment_count"):
        op.create_index(f"ix_segments_{column}", "segments", ["project_id", column, "segment_id"])
    op.create_table(
        "segment_references",
        sa.Column("project_id", sa.String(63), primary_key=True),
        sa.Column("segment_id", sa.String(63), primary_key=True),
        sa.Column("referenced_id", sa.String(63), primary_key=True),
        sa.ForeignKeyConstraint(
            ["project_id", "segment_id"],
            ["segments.project_id", "segments.segment_id"],
            ondelete="CASCADE",
            name="fk_references_segment",
        ),
        sa.ForeignKeyConstraint(
            ["project_id", "referenced_id"],
            ["segments.project_id", "segments.segment_id"],
            name="fk_references_referenced",
        ),
    )
    op.create_index(
        "ix_references_referenced", "segment_references", ["project_id", "referenced_id"]
    )
    op.create_table(
        "segment_usages",
        sa.Column("project_id", sa.String(63), primary_key=True),
        sa.Column("segment_id", sa.String(63), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("external_id", sa.String(128), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        _time("create_time"),
        _time("update_time"),
        sa.ForeignKeyConstraint(
            ["project_id", "segment_id"],
            ["segments.project_id", "segments.segment_id"],
            ondelete="CASCADE",
            name="fk_usages_segment",
        ),
    )
    op.create_table(
        "request_ids",
        sa.Column("project_id", sa.String(63), primary_key=True),
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(63), nullable=False),
        _time("create_time"),
    )


def downgrade() -> None:
    op.drop_table("request_ids")
    op.drop_table("segment_usages")
    op.drop_index("ix_references_referenced", table_name="segment_references")
    op.drop_table("segment_references")
    for column in ("create_time", "update_time", "engagement_count", "dependent_segment_count"):
        op.drop_index(f"ix_segments_{column}", table_name="segments")
    op.drop_index("uq_segments_name_key", table_name="segments")
    op.drop_table("segments")
    op.drop_table("projects")
