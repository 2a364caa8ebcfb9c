"""the connection's last_error gets a code and a time, like the account's

``bank_connection.last_error`` becomes ``last_error_message`` beside ``last_error_code`` and
``last_error_at``. Existing messages stay; their code is read from what wrote them (the login's refusal
or timeout, a consent the bank no longer accepts), else ``bank_error``; their time is the row's
``modified_at``.

Revision ID: 86ccd2faa225
Revises: 9d41c2b7e5a8
Create Date: 2026-12-09 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "86ccd2faa225"
down_revision: str | Sequence[str] | None = "9d41c2b7e5a8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
UPDATE bank_connection SET
  last_error_at = modified_at,
  last_error_code = CASE
    WHEN last_error_message LIKE 'authorization failed: the BankID login timed out%'
      THEN 'authorization_timed_out'
    WHEN last_error_message LIKE 'authorization failed:%' THEN 'authorization_failed'
    WHEN status = 'reauth_required' AND last_error_message = 'The bank consent has expired.'
      THEN 'consent_expired'
    WHEN status = 'reauth_required' THEN 'reauth_required'
    ELSE 'bank_error'
  END
WHERE last_error_message IS NOT NULL
"""


def upgrade() -> None:
    # a plain RENAME COLUMN (PostgreSQL, SQLite >= 3.25): no table copy under the accounts' foreign key
    op.execute("ALTER TABLE bank_connection RENAME COLUMN last_error TO last_error_message")
    op.add_column("bank_connection", sa.Column("last_error_code", sa.String(length=40), nullable=True))
    op.add_column("bank_connection", sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table("bank_connection") as batch:
        batch.drop_column("last_error_at")
        batch.drop_column("last_error_code")
    op.execute("ALTER TABLE bank_connection RENAME COLUMN last_error_message TO last_error")
