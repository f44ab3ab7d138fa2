"""transparency log: entries, checkpoints, cosignatures, followed logs, provenance statements

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trustbridge.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_UTC = trustbridge.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "log_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO log_state (id, size) VALUES (1, 0)")
    op.create_table(
        "log_entries",
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    op.create_table(
        "log_cosignatures",
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("at", _UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["size"], ["log_checkpoints.size"]),
        sa.PrimaryKeyConstraint("size", "witness"),
    )
    op.create_table(
        "log_peers",
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("vkey", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("organization", sa.JSON(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("origin"),
    )
    op.create_table(
        "log_peer_checkpoints",
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("previous", sa.Integer(), nullable=False),
        sa.Column("proof", sa.JSON(), nullable=False),
        sa.Column("seen_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("origin", "size"),
    )
    op.create_table(
        "provenance_statements",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("component", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("origin_idx", sa.Integer(), nullable=False),
        sa.Column("bundle", sa.Text(), nullable=False),
        sa.Column("receipt", sa.JSON(), nullable=True),
        sa.Column("at", _UTC(timezone=True), nullable=False),
        sa.Column("previous", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["idx"], ["log_entries.idx"]),
        sa.PrimaryKeyConstraint("digest"),
        sa.UniqueConstraint("component", "previous", name="uq_provenance_successor"),
    )
    op.create_index("ix_provenance_component", "provenance_statements", ["component"])


def downgrade() -> None:
    op.drop_index("ix_provenance_component", table_name="provenance_statements")
    op.drop_table("provenance_statements")
    op.drop_table("log_peer_checkpoints")
    op.drop_table("log_peers")
    op.drop_table("log_cosignatures")
    op.drop_table("log_checkpoints")
    op.drop_table("log_entries")
    op.drop_table("log_state")
