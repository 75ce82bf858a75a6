"""The definition store's tables (SQLAlchemy Core). Migrations in `migrations/versions`
create the same schema; keep the two in step."""

from __future__ import annotations

import sqlalchemy as sa

from libs.sqlstore.types import UtcDateTime

metadata = sa.MetaData()

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("project_id", sa.String(63), primary_key=True),
    sa.Column("time_zone", sa.String(64), nullable=False),
    sa.Column("create_time", UtcDateTime(), nullable=False),
    sa.Column("update_time", UtcDateTime(), nullable=False),
    sa.Column("etag", sa.String(32), nullable=False),
)

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("project_id", sa.String(63), sa.ForeignKey("projects.project_id"), primary_key=True),
    sa.Column("segment_id", sa.String(63), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    # casefold(display_name), computed in Python: unique per project and the sort key.
    sa.Column("name_key", sa.String(800), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("segment_type", sa.String(16), nullable=False),
    # The definition as the proto3 JSON of segments.v1.Definition.
    sa.Column("definition_json", sa.Text(), nullable=False),
    sa.Column("creator", sa.String(320), nullable=False),
    sa.Column("updater", sa.String(320), nullable=False),
    sa.Column("create_time", UtcDateTime(), nullable=False),
    sa.Column("update_time", UtcDateTime(), nullable=False),
    sa.Column("etag", sa.String(32), nullable=False),
    sa.Column("goal_count", sa.Integer(), nullable=False),
    sa.Column("intent_goal_count", sa.Integer(), nullable=False),
    sa.Column("engagement_count", sa.Integer(), nullable=False),
    sa.Column("dependent_segment_count", sa.Integer(), nullable=False),
    sa.Index("uq_segments_name_key", "project_id", "name_key", unique=True),
    sa.Index("ix_segments_create_time", "project_id", "create_time", "segment_id"),
    sa.Index("ix_segments_update_time", "project_id", "update_time", "segment_id"),
    sa.Index("ix_segments_engagement_count", "project_id", "engagement_count", "segment_id"),
    sa.Index(
        "ix_segments_dependent_segment_count",
        "project_id",
        "dependent_segment_count",
        "segment_id",
    ),
)

segment_references = sa.Table(
    "segment_references",
    metadata,
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
    sa.Index("ix_references_referenced", "project_id", "referenced_id"),
)

segment_usages = sa.Table(
    "segment_usages",
    metadata,
    sa.Column("project_id", sa.String(63), primary_key=True),
    sa.Column("segment_id", sa.String(63), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("external_id", sa.String(128), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("create_time", UtcDateTime(), nullable=False),
    sa.Column("update_time", UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(
        ["project_id", "segment_id"],
        ["segments.project_id", "segments.segment_id"],
        ondelete="CASCADE",
        name="fk_usages_segment",
    ),
)

request_ids = sa.Table(
    "request_ids",
    metadata,
    sa.Column("project_id", sa.String(63), primary_key=True),
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("method", sa.String(64), nullable=False),
    sa.Column("resource_id", sa.String(63), nullable=False),
    sa.Column("create_time", UtcDateTime(), nullable=False),
    sa.Column("body_hash", sa.String(64), nullable=True),
)

# --- access: API keys, their grants, deleted project ids ----------------------------------------

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(12), primary_key=True),
    # SHA-256 (hex) of the key's text; the text itself is never stored.
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("principal_kind", sa.String(16), nullable=False),
    sa.Column("principal_id", sa.String(320), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("creator", sa.String(320), nullable=False),
    sa.Column("create_time", UtcDateTime(), nullable=False),
    sa.Column("expire_time", UtcDateTime(), nullable=True),
    sa.Column("revoke_time", UtcDateTime(), nullable=True),
)

api_key_grants = sa.Table(
    "api_key_grants",
    metadata,
    sa.Column(
        "key_id",
        sa.String(12),
        sa.ForeignKey("api_keys.key_id", ondelete="CASCADE", name="fk_grants_key"),
        primary_key=True,
    ),
    # A project id, or "-" for all projects.
    sa.Column("project_id", sa.String(63), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Index("ix_api_key_grants_project", "project_id"),
)

deleted_projects = sa.Table(
    "deleted_projects",
    metadata,
    sa.Column("project_id", sa.String(63), primary_key=True),
    sa.Column("delete_time", UtcDateTime(), nullable=False),
)


# The change feed of live segments (WatchLiveSegments): one row per segment that is or was
# live, holding the sequence of its latest change. Sequences come from the one-row counter,
# whose row lock is held until the writing transaction commits, so they become visible in
# the order they were taken.
live_change_sequence = sa.Table(
    "live_change_sequence",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("value", sa.BigInteger(), nullable=False),
)

live_segment_changes = sa.Table(
    "live_segment_changes",
    metadata,
    sa.Column("project_id", sa.String(63), primary_key=True),
    sa.Column("segment_id", sa.String(63), primary_key=True),
    sa.Column("sequence", sa.BigInteger(), nullable=False),
    sa.Index("ix_live_segment_changes_sequence", "sequence"),
)
