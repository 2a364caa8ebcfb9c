from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from ledgerlink.db.migrate import alembic_config, downgrade, upgrade
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


def test_the_connection_error_messages_get_a_code_and_survive_the_round_trip() -> None:
    """86ccd2faa225: ``bank_connection.last_error`` becomes ``last_error_message`` with a code read from
    what wrote it (else ``bank_error``) and the row's time; a downgrade gives the plain messages back."""
    name = f"ledgerlink_mig_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    after = "86ccd2faa225"
    before = ScriptDirectory.from_config(alembic_config()).get_revision(after).down_revision
    assert isinstance(before, str)  # the revision just before it, wherever a merge chained it
    rows = {  # message, status → the code the backfill gives it
        "authorization failed: the BankID login timed out": ("failed", "authorization_timed_out"),
        "authorization failed: sandbox: the PSU denied the consent": ("failed", "authorization_failed"),
        "The bank consent has expired.": ("reauth_required", "consent_expired"),
        "sandbox: unauthorised on /v1/accounts": ("reauth_required", "reauth_required"),
        "something else": ("active", "bank_error"),
    }

    async def sql(db: str, query: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(db)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    asyncio.run(sql(PG_ADMIN_DSN, f'CREATE DATABASE "{name}"'))
    try:
        url, dsn = _sqlalchemy_url(name), PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
        upgrade(before, url)
        for message, (status, _) in [*rows.items(), (None, ("active", None))]:
            asyncio.run(
                sql(
                    dsn,
                    "INSERT INTO bank_connection (id, company_id, bank_id, account_type, status, last_error)"
                    " VALUES ($1, $2, 'sandbox', 'business', $3, $4)",
                    uuid.uuid4(),
                    uuid.uuid4(),
                    status,
                    message,
                )
            )
        upgrade(after, url)
        found = asyncio.run(
            sql(
                dsn,
                "SELECT last_error_message, last_error_code, last_error_at, modified_at FROM bank_connection",
            )
        )
        assert {r["last_error_message"]: r["last_error_code"] for r in found} == {
            **{message: code for message, (_, code) in rows.items()},
            None: None,
        }
        assert all(r["last_error_at"] == (r["modified_at"] if r["last_error_code"] else None) for r in found)
        downgrade(before, url)
        back = asyncio.run(sql(dsn, "SELECT last_error FROM bank_connection"))
        assert {r["last_error"] for r in back} == {*rows, None}
    finally:
        asyncio.run(sql(PG_ADMIN_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
