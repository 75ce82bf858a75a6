"""Access: API keys (hashes only), their grants, and the ids of deleted projects.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(12), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("principal_kind", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("creator", sa.String(320), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_time", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "api_key_grants",
        sa.Column(
            "key_id",
            sa.String(12),
            sa.ForeignKey("api_keys.key_id", ondelete="CASCADE", name="fk_grants_key"),
            primary_key=True,
        ),
        sa.Column("project_id", sa.String(63), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
    )
    op.create_index("ix_api_key_grants_project", "api_key_grants", ["project_id"])
    op.create_table(
        "deleted_projects",
        sa.Column("project_id", sa.String(63), primary_key=True),
        sa.Column("delete_time", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deleted_projects")
    op.drop_index("ix_api_key_grants_project", table_name="api_key_grants")
    op.drop_table("api_key_grants")
    op.drop_table("api_keys")
