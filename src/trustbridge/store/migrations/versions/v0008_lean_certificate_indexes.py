"""certificates: no index on holder (the search matches inside the name, which no index
serves); the status-change index holds only certificates whose status changed

Every issuance wrote both indexes. The holder search is ``lower(holder) LIKE '%...%'``; the
status-change index serves the delta CRL's "changed since version n" (n >= 0), and a
certificate that never changed (status_version 0) is never such a row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_CHANGED = sa.text("status_version > 0")


def upgrade() -> None:
    op.drop_index("ix_certificates_holder", table_name="certificates")
    op.drop_index("ix_certificates_status_version", table_name="certificates")
    op.create_index(
        "ix_certificates_status_version",
        "certificates",
        ["ca_id", "status_version"],
        sqlite_where=_CHANGED,
        postgresql_where=_CHANGED,
    )


def downgrade() -> None:
    op.drop_index("ix_certificates_status_version", table_name="certificates")
    op.create_index("ix_certificates_status_version", "certificates", ["ca_id", "status_version"])
    op.create_index("ix_certificates_holder", "certificates", ["holder"])
