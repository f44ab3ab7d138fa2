"""cross-certificates of the bridge construction

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trustbridge.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cross_certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ca_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("not_after", trustbridge.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("mappings", sa.JSON(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", trustbridge.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["ca_id"], ["authorities.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fingerprint"),
    )
    op.create_index(
        "ix_cross_certificates_ca", "cross_certificates", ["ca_id", "direction"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_cross_certificates_ca", table_name="cross_certificates")
    op.drop_table("cross_certificates")
