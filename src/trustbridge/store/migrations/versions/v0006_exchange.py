"""exchange: first-contact sessions, their steps, secure messages

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trustbridge.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_UTC = trustbridge.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "exchange_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("partner_org", sa.String(length=200), nullable=True),
        sa.Column("partner_name", sa.Text(), nullable=True),
        sa.Column("partner_url", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("contract_id", sa.String(length=200), nullable=True),
        sa.Column("contract_pdf", sa.LargeBinary(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_exchange_sessions_partner", "exchange_sessions", ["partner_org", "contract_id"]
    )
    op.create_table(
        "exchange_steps",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("at", _UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["exchange_sessions.id"]),
        sa.PrimaryKeyConstraint("session_id", "step"),
    )
    op.create_table(
        "exchange_messages",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("direction", sa.String(length=4), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("contract_id", sa.String(length=200), nullable=True),
        sa.Column("sender_org", sa.String(length=200), nullable=False),
        sa.Column("receiver_org", sa.String(length=200), nullable=False),
        sa.Column("sender", sa.Text(), nullable=True),
        sa.Column("element", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=64), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("policies", sa.JSON(), nullable=False),
        sa.Column("at", _UTC(timezone=True), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("jws", sa.Text(), nullable=True),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", "direction", "sender_org"),
    )
    op.create_index("ix_exchange_messages_at", "exchange_messages", ["at"])


def downgrade() -> None:
    op.drop_index("ix_exchange_messages_at", table_name="exchange_messages")
    op.drop_table("exchange_messages")
    op.drop_table("exchange_steps")
    op.drop_index("ix_exchange_sessions_partner", table_name="exchange_sessions")
    op.drop_table("exchange_sessions")
