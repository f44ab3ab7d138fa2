"""credentials: status lists, issued and held credentials

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trustbridge.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_UTC = trustbridge.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "status_lists",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("bits", sa.LargeBinary(), nullable=False),
        sa.Column("changed_at", _UTC(timezone=True), nullable=False),
        sa.Column("signed", sa.Text(), nullable=True),
        sa.Column("signed_at", _UTC(timezone=True), nullable=True),
        sa.Column("signed_until", _UTC(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "issued_credentials",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("subject_name", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.String(length=20), nullable=False),
        sa.Column("issued_at", _UTC(timezone=True), nullable=False),
        sa.Column("valid_until", _UTC(timezone=True), nullable=False),
        sa.Column("revocation_list", sa.String(length=64), nullable=False),
        sa.Column("revocation_index", sa.Integer(), nullable=False),
        sa.Column("suspension_list", sa.String(length=64), nullable=False),
        sa.Column("suspension_index", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changed_at", _UTC(timezone=True), nullable=True),
        sa.Column("token", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("revocation_list", "revocation_index"),
        sa.UniqueConstraint("suspension_list", "suspension_index"),
    )
    op.create_table(
        "held_credentials",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("issuer_id", sa.Text(), nullable=False),
        sa.Column("issuer_name", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.String(length=20), nullable=False),
        sa.Column("valid_until", _UTC(timezone=True), nullable=False),
        sa.Column("stored_at", _UTC(timezone=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("held_credentials")
    op.drop_table("issued_credentials")
    op.drop_table("status_lists")
