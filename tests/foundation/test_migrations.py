from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from ledgerlink.db.migrate import downgrade, upgrade
from ledgerlink.db.session import create_engine
from ledgerlink.models import Base
from tests.conftest import PG_ADMIN_DSN, _sqlalchemy_url


def test_upgrade_from_empty_downgrade_to_base_and_no_autogenerate_diff() -> None:
    name = f"ledgerlink_mig_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def tables_and_diff(url: str) -> tuple[set[str], list[object]]:
        engine = create_engine(url)
        async with engine.connect() as conn:

            def inspect_sync(sync_conn: object) -> tuple[set[str], list[object]]:
                names = set(inspect(sync_conn).get_table_names())
                diff = compare_metadata(
                    MigrationContext.configure(sync_conn, opts={"compare_type": True}), Base.metadata
                )
                return names, diff

            result = await conn.run_sync(inspect_sync)
        await engine.dispose()
        return result

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = _sqlalchemy_url(name)
        upgrade("head", url)
        tables, diff = asyncio.run(tables_and_diff(url))
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        assert diff == [], f"models and migrations differ: {diff}"
        downgrade("base", url)
        tables, _ = asyncio.run(tables_and_diff(url))
        assert tables <= {"alembic_version"}
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
