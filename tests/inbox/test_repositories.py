"""The inbox's two repositories: one upsert and one resolve for every feature's to-dos, and one column
list for a stored bank transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from ledgerlink.db.session import session_scope
from ledgerlink.inbox.repository import MUTABLE_COLUMNS, ROW_COLUMNS, WRITE_COLUMNS, TodoRepository
from ledgerlink.models import ImportedTransaction, Todo, TodoType


async def _open(sessionmaker: Any, company_id: uuid.UUID) -> list[tuple[str, str, dict[str, Any]]]:
    async with sessionmaker() as s:
        stmt = select(Todo).where(Todo.company_id == company_id, Todo.resolved_at.is_(None))
        return sorted((t.type, t.subject_key, t.data) for t in (await s.execute(stmt)).scalars())


async def test_upsert_opens_one_todo_per_subject_and_refreshes_its_data(sessionmaker: Any) -> None:
    company = uuid.uuid4()
    async with session_scope(sessionmaker) as s:
        todos = TodoRepository(s)
        assert await todos.upsert_open(company, TodoType.sync_failed, "acc-1", {"code": "a"}) is True
        assert await todos.upsert_open(company, TodoType.sync_failed, "acc-1", {"code": "b"}) is False
        assert await todos.upsert_open(company, TodoType.sync_failed, "acc-2", {"code": "c"}) is True
    assert await _open(sessionmaker, company) == [
        ("sync_failed", "acc-1", {"code": "b"}),
        ("sync_failed", "acc-2", {"code": "c"}),
    ]


async def test_resolve_takes_one_or_several_types_and_subjects(sessionmaker: Any) -> None:
    company, other_company = uuid.uuid4(), uuid.uuid4()
    async with session_scope(sessionmaker) as s:
        todos = TodoRepository(s)
        for type_, subject in [
            (TodoType.reauth_required, "conn"),
            (TodoType.consent_expiring, "conn"),
            (TodoType.consent_expiring, "other-conn"),
            (TodoType.sync_failed, "acc-1"),
            (TodoType.sync_failed, "acc-2"),
            (TodoType.upgrade_required, ""),
        ]:
            await todos.upsert_open(company, type_, subject, {})
        await todos.upsert_open(other_company, TodoType.reauth_required, "conn", {})
    async with session_scope(sessionmaker) as s:
        todos = TodoRepository(s)
        await todos.resolve(company, [TodoType.reauth_required, TodoType.consent_expiring], ["conn"])
        await todos.resolve(company, TodoType.sync_failed, [])  # no subjects: nothing
        await todos.resolve(company, TodoType.sync_failed, "acc-2")
    assert [(t, k) for t, k, _ in await _open(sessionmaker, company)] == [
        ("consent_expiring", "other-conn"),
        ("sync_failed", "acc-1"),
        ("upgrade_required", ""),
    ]
    async with session_scope(sessionmaker) as s:
        await TodoRepository(s).resolve(company, TodoType.upgrade_required)  # whatever the subject
    assert [(t, k) for t, k, _ in await _open(sessionmaker, company)] == [
        ("consent_expiring", "other-conn"),
        ("sync_failed", "acc-1"),
    ]
    assert len(await _open(sessionmaker, other_company)) == 1  # another company's to-do is untouched


def test_the_write_columns_are_the_tables_columns() -> None:
    table = set(ImportedTransaction.__table__.columns.keys())
    # every column a write sets exists, and only the user's decision is left out of it
    assert set(WRITE_COLUMNS) <= table
    assert table - set(WRITE_COLUMNS) == {"voucher_ref", "status_changed_at"}
    assert len(WRITE_COLUMNS) == len(set(WRITE_COLUMNS))
    assert set(ROW_COLUMNS) < set(WRITE_COLUMNS)
    assert "status" not in MUTABLE_COLUMNS and "identity" not in MUTABLE_COLUMNS
