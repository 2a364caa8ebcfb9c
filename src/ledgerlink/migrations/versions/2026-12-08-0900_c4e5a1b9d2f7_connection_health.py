"""connection health: consent reminders once per threshold, the account's last sync error

Revision ID: c4e5a1b9d2f7
Revises: 55b2f5263be2
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e5a1b9d2f7"
down_revision: str | Sequence[str] | None = "55b2f5263be2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bank_connection", sa.Column("consent_reminded_days", sa.Integer(), nullable=True))
    op.add_column("bank_account", sa.Column("last_error_code", sa.String(length=40), nullable=True))
    op.add_column("bank_account", sa.Column("last_error_message", sa.Text(), nullable=True))
    op.add_column("bank_account", sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bank_account") as batch:
        batch.drop_column("last_error_at")
        batch.drop_column("last_error_message")
        batch.drop_column("last_error_code")
    with op.batch_alter_table("bank_connection") as batch:
        batch.drop_column("consent_reminded_days")
