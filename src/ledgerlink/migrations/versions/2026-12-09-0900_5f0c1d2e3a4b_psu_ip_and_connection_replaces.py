"""sync run keeps the user's address until it ends; a connection names the one it replaces

Revision ID: 5f0c1d2e3a4b
Revises: 86ccd2faa225
Create Date: 2026-12-09 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5f0c1d2e3a4b"
down_revision: str | Sequence[str] | None = "86ccd2faa225"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOLDS = "psu_ip_address IS NOT NULL"


def upgrade() -> None:
    op.add_column("bank_connection", sa.Column("replaces_id", sa.Uuid(), nullable=True))
    op.add_column("sync_run", sa.Column("psu_ip_address", sa.String(length=45), nullable=True))
    op.create_index(
        "ix_sync_run_holding_psu_ip",
        "sync_run",
        ["status"],
        unique=False,
        postgresql_where=sa.text(HOLDS),
        sqlite_where=sa.text(HOLDS),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_sync_run_holding_psu_ip",
        table_name="sync_run",
        postgresql_where=sa.text(HOLDS),
        sqlite_where=sa.text(HOLDS),
    )
    op.drop_column("sync_run", "psu_ip_address")
    op.drop_column("bank_connection", "replaces_id")
