"""Request ids remember a digest of the request's body, so that an id reused for another
request is refused (AIP-155). Ids stored before have none and are not compared.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("request_ids") as batch:
        batch.add_column(sa.Column("body_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_ids") as batch:
        batch.drop_column("body_hash")
