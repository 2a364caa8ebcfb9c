"""Programmatic Alembic: ``ledgerlink migrate``, ``/readyz`` and the test suite use these.

The migrations ship inside the package (``ledgerlink/migrations``), so an installed wheel migrates from
any working directory; nothing here reads ``alembic.ini`` (that file only serves developers running the
``alembic`` command from a checkout, e.g. ``alembic revision --autogenerate``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

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


@dataclass(frozen=True)
class Revisions:
    heads: frozenset[str]
    known: frozenset[str]


@cache
def shipped_revisions() -> Revisions:
    """The head(s) and every revision of the shipped migrations (read once per process)."""
    script = ScriptDirectory.from_config(alembic_config())
    return Revisions(
        heads=frozenset(script.get_heads()),
        known=frozenset(rev.revision for rev in script.walk_revisions()),
    )


SchemaState = Literal["ok", "outdated", "ahead"]


def schema_state(connection: Connection) -> SchemaState:
    """Where the database's schema stands against this code: ``ok`` at the head; ``outdated`` when never
    migrated or behind (run ``ledgerlink migrate``); ``ahead`` when a newer release already migrated it
    (a rolling deploy: this process keeps serving until it is replaced)."""
    from alembic.migration import MigrationContext

    # MigrationContext announces its dialect at INFO on every call: noise on every readiness probe.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    current = frozenset(MigrationContext.configure(connection).get_current_heads())
    shipped = shipped_revisions()
    if current == shipped.heads:
        return "ok"
    if current and not current <= shipped.known:
        return "ahead"
    return "outdated"
