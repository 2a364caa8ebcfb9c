from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import delete, select

from ledgerlink.db.base import utcnow
from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.events import IdempotencyRecord


class IdempotencyRepository(RepositoryBase[IdempotencyRecord]):
    model = IdempotencyRecord

    async def claim(self, company_id: uuid.UUID, key: str, method_path: str, request_hash: str) -> bool:
        """Insert the key; False when it exists (another request, committed or in flight, owns it)."""
        dialect = self.session.bind.dialect.name if self.session.bind else "postgresql"
        values = {
            "company_id": company_id,
            "key": key,
            "method_path": method_path,
            "request_hash": request_hash,
            "created_at": utcnow(),
        }
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt: Any = pg_insert(IdempotencyRecord).values(**values).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(IdempotencyRecord).values(**values).on_conflict_do_nothing()
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def find(self, company_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        stmt = scoped(select(IdempotencyRecord), IdempotencyRecord, company_id).where(
            IdempotencyRecord.key == key
        )
        return await self.one_or_none(stmt)

    async def forget_expired(self, company_id: uuid.UUID, key: str, before: dt.datetime) -> bool:
        """Delete the key's record when it was claimed before ``before``; True when one was deleted."""
        stmt = delete(IdempotencyRecord).where(
            IdempotencyRecord.company_id == company_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at < before,
        )
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))
