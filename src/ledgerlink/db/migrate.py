"""Programmatic Alembic: ``ledgerlink migrate``, ``/readyz`` and the test suite use these.

The migrations ship inside the package (``ledgerlink/migrations``), so an installed wheel migrates from
any working directory; nothing here reads ``alembic.ini`` (that file only serves developers running the
``alembic`` command from a checkout, e.g. ``alembic revision --autogenerate``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
FILE_TEMPLATE = "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s"


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", FILE_TEMPLATE)
    if database_url:
        cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(revision: str = "head", database_url: str | None = None) -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(revision: str = "base", database_url: str | None = None) -> None:
    command.downgrade(alembic_config(database_url), revision)


@cache
def head_revisions() -> frozenset[str]:
    """The head revision(s) of the shipped migrations (read once per process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(connection: Connection) -> frozenset[str]:
    """The revision(s) the database is at; empty when it was never migrated."""
    from alembic.migration import MigrationContext

    return frozenset(MigrationContext.configure(connection).get_current_heads())
