"""revocation and status services

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import trustbridge.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "crls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ca_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Boolean(), nullable=False),
        sa.Column("base_number", sa.Integer(), nullable=True),
        sa.Column("status_version", sa.Integer(), nullable=False),
        sa.Column(
            "this_update", trustbridge.store.types.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "next_update", trustbridge.store.types.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ca_id"],
            ["authorities.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ca_id", "number", "delta", name="uq_crls_ca_number"),
    )
    op.create_table(
        "ocsp_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ca_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("hash", sa.String(length=8), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column(
            "this_update", trustbridge.store.types.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "next_update", trustbridge.store.types.UtcDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["ca_id"],
            ["authorities.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ca_id", "serial", "hash", name="uq_ocsp_responses_cert"),
    )
    with op.batch_alter_table("ocsp_responses", schema=None) as batch_op:
        batch_op.create_index("ix_ocsp_responses_next_update", ["next_update"], unique=False)

    op.create_table(
        "service_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ca_id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("key_store", sa.String(length=16), nullable=False),
        sa.Column("key_ref", sa.Text(), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("not_after", trustbridge.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_at", trustbridge.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["ca_id"],
            ["authorities.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("service_keys", schema=None) as batch_op:
        batch_op.create_index("ix_service_keys_ca", ["ca_id", "service"], unique=False)

    with op.batch_alter_table("authorities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("crl_number", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("status_version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )

    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status_version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("status_changed_by", sa.String(length=200), nullable=True))
        batch_op.create_index(
            "ix_certificates_status_version", ["ca_id", "status_version"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index("ix_certificates_status_version")
        batch_op.drop_column("status_changed_by")
        batch_op.drop_column("status_version")

    with op.batch_alter_table("authorities", schema=None) as batch_op:
        batch_op.drop_column("status_version")
        batch_op.drop_column("crl_number")

    with op.batch_alter_table("service_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_service_keys_ca")

    op.drop_table("service_keys")
    with op.batch_alter_table("ocsp_responses", schema=None) as batch_op:
        batch_op.drop_index("ix_ocsp_responses_next_update")

    op.drop_table("ocsp_responses")
    op.drop_table("crls")
