"""requests: the state index holds the pending requests only

A request released by a rule is stored issued at once, and every other request leaves the
pending state for good; what is looked up by state is the pending ones (the officers' list,
oldest first). The index on every request's state was written by every issuance.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_requests_state", table_name="requests")
    op.create_index(
        "ix_requests_pending",
        "requests",
        ["requested_at"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_requests_pending", table_name="requests")
    op.create_index("ix_requests_state", "requests", ["state"])
