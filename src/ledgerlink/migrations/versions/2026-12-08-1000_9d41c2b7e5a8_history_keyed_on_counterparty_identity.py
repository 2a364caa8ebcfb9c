"""booking history keyed on the counterparty's identity, not the first word of its name

History seeded from imported closings is deleted here: the next suggestion seeds it again from the
closings' vouchers under the new key (``MatchingService.closing_history``). History learned from
booking feedback stays under its old key (the first word of the name) and is no longer found: the rule
that made it is the one this change retires, and the text it was made from is not stored with it.

Revision ID: 9d41c2b7e5a8
Revises: c4e5a1b9d2f7
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d41c2b7e5a8"
down_revision: str | Sequence[str] | None = "c4e5a1b9d2f7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

booking_memory = sa.table("booking_memory", sa.column("source", sa.String))


def upgrade() -> None:
    op.execute(sa.delete(booking_memory).where(booking_memory.c.source == "closing"))


def downgrade() -> None:
    """Nothing to restore: closing history is seeded again under whichever key the code uses."""
