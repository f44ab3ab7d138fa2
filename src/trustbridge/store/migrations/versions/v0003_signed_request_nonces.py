"""nonces of signed API requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trustbridge.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_nonces",
        sa.Column("key_id", sa.String(length=80), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", trustbridge.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "nonce"),
    )
    op.create_index("ix_seen_nonces_expires_at", "seen_nonces", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_seen_nonces_expires_at", table_name="seen_nonces")
    op.drop_table("seen_nonces")
