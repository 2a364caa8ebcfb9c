"""closing upload in parts

An uploaded SIE file is stored in parts of at most a megabyte, so neither the upload nor the import job
ever holds the whole file in memory.

Revision ID: b7c1e0a4f3d2
Revises: ec273e1664cc
Create Date: 2026-12-03 10:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7c1e0a4f3d2"
down_revision: str | Sequence[str] | None = "ec273e1664cc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "closing_upload_part",
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["closing_import.id"],
            name=op.f("fk_closing_upload_part_import_id_closing_import"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_id", "part", name=op.f("pk_closing_upload_part")),
    )
    op.create_index(
        op.f("ix_closing_upload_part_company_id"), "closing_upload_part", ["company_id"], unique=False
    )
    op.execute(
        "INSERT INTO closing_upload_part (import_id, part, company_id, content) "
        "SELECT import_id, 0, company_id, content FROM closing_upload"
    )
    op.drop_index(op.f("ix_closing_upload_company_id"), table_name="closing_upload")
    op.drop_table("closing_upload")


def downgrade() -> None:
    op.create_table(
        "closing_upload",
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["closing_import.id"],
            name=op.f("fk_closing_upload_import_id_closing_import"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_id", name=op.f("pk_closing_upload")),
    )
    op.create_index(op.f("ix_closing_upload_company_id"), "closing_upload", ["company_id"], unique=False)
    # only single-part files fit the old table; larger queued uploads are lost (their imports fail)
    op.execute(
        "INSERT INTO closing_upload (import_id, company_id, content) "
        "SELECT import_id, company_id, content FROM closing_upload_part WHERE part = 0 AND import_id NOT IN "
        "(SELECT import_id FROM closing_upload_part WHERE part > 0)"
    )
    op.drop_index(op.f("ix_closing_upload_part_company_id"), table_name="closing_upload_part")
    op.drop_table("closing_upload_part")
