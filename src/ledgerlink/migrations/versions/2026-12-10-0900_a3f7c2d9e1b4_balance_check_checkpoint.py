"""the balance check keeps a checkpoint, so a nightly check reads only what is new

``bank_reconciliation.checkpoint_day`` and ``checkpoint`` (the check's state over the days before that
day). Both nullable: an account without one gets the full check, which writes it.

Revision ID: a3f7c2d9e1b4
Revises: 5f0c1d2e3a4b
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a3f7c2d9e1b4"
down_revision: str | Sequence[str] | None = "5f0c1d2e3a4b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bank_reconciliation", sa.Column("checkpoint_day", sa.Date(), nullable=True))
    op.add_column(
        "bank_reconciliation",
        sa.Column(
            "checkpoint",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("bank_reconciliation") as batch:
        batch.drop_column("checkpoint")
        batch.drop_column("checkpoint_day")
