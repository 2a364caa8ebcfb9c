"""RepositoryBase: all SQL lives in repositories; services only call them and ``flush()``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.auth.principal import Principal
from ledgerlink.db.base import Base

M = TypeVar("M", bound=Base)


def scoped(statement: Select[Any], model: Any, principal: Principal | uuid.UUID) -> Select[Any]:
    """THE tenant-scoping helper: restrict a statement on ``model`` to the caller's company.

    Every repository query of tenant data goes through it (or through :meth:`RepositoryBase.scoped_select`).
    """
    company_id = principal.company_id if isinstance(principal, Principal) else principal
    return statement.where(model.company_id == company_id)


class RepositoryBase(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Any:
        return cls(session)

    def scoped_select(self, principal: Principal | uuid.UUID) -> Select[Any]:
        return scoped(select(self.model), self.model, principal)

    async def get_scoped(self, principal: Principal | uuid.UUID, id: uuid.UUID) -> M | None:
        stmt = self.scoped_select(principal).where(self.model.id == id)  # type: ignore[attr-defined]
        result: M | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return result

    async def get(self, id: Any) -> M | None:
        return await self.session.get(self.model, id)

    async def one_or_none(self, statement: Select[Any]) -> M | None:
        result: M | None = (await self.session.execute(statement)).scalar_one_or_none()
        return result

    async def all(self, statement: Select[Any]) -> Sequence[M]:
        result: Sequence[M] = (await self.session.execute(statement)).scalars().all()
        return result

    async def count(self, statement: Select[Any]) -> int:
        count_stmt = select(func.count()).select_from(statement.order_by(None).subquery())
        return int((await self.session.execute(count_stmt)).scalar_one())

    async def add(self, obj: M, *, flush: bool = True) -> M:
        self.session.add(obj)
        if flush:
            await self.session.flush()
        return obj

    async def delete(self, obj: M, *, flush: bool = True) -> None:
        await self.session.delete(obj)
        if flush:
            await self.session.flush()
