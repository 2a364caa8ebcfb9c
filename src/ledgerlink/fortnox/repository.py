"""SQL of the Fortnox connection feature: the connection row, its OAuth states and its to-do."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.db.repository import RepositoryBase
from ledgerlink.inbox.repository import TodoRepository
from ledgerlink.models.fortnox import FortnoxConnection, FortnoxConnectionStatus
from ledgerlink.models.inbox import TodoType

OAUTH_PURPOSE = "fortnox"
EXPIRING_TODO = TodoType.fortnox_expiring
TODO_SUBJECT = "fortnox"


class FortnoxConnectionRepository(RepositoryBase[FortnoxConnection]):
    model = FortnoxConnection

    async def for_company(self, company_id: uuid.UUID) -> FortnoxConnection | None:
        return await self.one_or_none(self.scoped_select(company_id))

    async def for_company_locked(
        self, company_id: uuid.UUID, *, lock_timeout_ms: int | None = None
    ) -> FortnoxConnection | None:
        """The row under ``SELECT ... FOR UPDATE`` (held until the session's transaction ends).

        ``lock_timeout_ms`` (PostgreSQL) bounds the wait: a lock held by a stuck transaction becomes a
        ``LockNotAvailable`` error instead of a hang.
        """
        bind = self.session.bind
        if lock_timeout_ms is not None and bind is not None and bind.dialect.name == "postgresql":
            await self.session.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
        stmt = self.scoped_select(company_id).with_for_update().execution_options(populate_existing=True)
        return await self.one_or_none(stmt)

    async def renew(self, company_id: uuid.UUID, *, now: dt.datetime, expires_at: dt.datetime) -> bool:
        """Slide the validity of an active, unexpired connection; False when there was none."""
        stmt = (
            update(FortnoxConnection)
            .where(
                FortnoxConnection.company_id == company_id,
                FortnoxConnection.status == FortnoxConnectionStatus.active,
                FortnoxConnection.expires_at >= now,
            )
            .values(last_used_at=now, expires_at=expires_at)
        )
        result: Any = await self.session.execute(stmt)
        return bool(result.rowcount)

    async def active_ids(self) -> Sequence[uuid.UUID]:
        """Company ids of every active connection (cross-tenant: the cron's fan-out)."""
        stmt = select(FortnoxConnection.company_id).where(
            FortnoxConnection.status == FortnoxConnectionStatus.active
        )
        return (await self.session.execute(stmt)).scalars().all()


class FortnoxTodos:
    """The ``fortnox_expiring`` to-do, written through the inbox's to-do repository (the table's one
    owner: one open to-do per company, opened with ``ON CONFLICT``, never select-then-insert)."""

    def __init__(self, session: AsyncSession) -> None:
        self.todos = TodoRepository(session)

    async def open_expiring(self, company_id: uuid.UUID, data: dict[str, Any]) -> None:
        await self.todos.upsert_open(company_id, EXPIRING_TODO, TODO_SUBJECT, data)

    async def resolve_expiring(self, company_id: uuid.UUID) -> None:
        await self.todos.resolve(company_id, EXPIRING_TODO, TODO_SUBJECT)
