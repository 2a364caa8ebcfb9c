"""All SQL of the banks feature: connections, OAuth states, linked accounts, and the to-do/outbox rows a
connection's state change writes in the same transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, tuple_, update

from ledgerlink.auth.principal import Principal
from ledgerlink.db.base import utcnow
from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.bank import (
    AccountStatus,
    BankAccount,
    BankConnection,
    BankTransaction,
    TransactionStatus,
)
from ledgerlink.models.inbox import Todo

CompanyRef = Principal | uuid.UUID


class BankConnectionRepository(RepositoryBase[BankConnection]):
    model = BankConnection

    async def list_page(
        self, company: CompanyRef, *, limit: int, after: tuple[dt.datetime, uuid.UUID] | None
    ) -> Sequence[BankConnection]:
        """Newest first, keyset on (created_at, id); ``limit + 1`` rows so the caller sees a next page."""
        stmt = self.scoped_select(company).order_by(
            BankConnection.created_at.desc(), BankConnection.id.desc()
        )
        if after is not None:
            stmt = stmt.where(tuple_(BankConnection.created_at, BankConnection.id) < tuple_(*after))
        return await self.all(stmt.limit(limit + 1))

    async def get_for_update(self, company: CompanyRef, connection_id: uuid.UUID) -> BankConnection | None:
        stmt = self.scoped_select(company).where(BankConnection.id == connection_id).with_for_update()
        return await self.one_or_none(stmt)


class BankAccountRepository(RepositoryBase[BankAccount]):
    model = BankAccount

    async def list_page(
        self, company: CompanyRef, *, limit: int, after: tuple[dt.datetime, uuid.UUID] | None
    ) -> Sequence[BankAccount]:
        stmt = self.scoped_select(company).order_by(BankAccount.created_at.asc(), BankAccount.id.asc())
        if after is not None:
            stmt = stmt.where(tuple_(BankAccount.created_at, BankAccount.id) > tuple_(*after))
        return await self.all(stmt.limit(limit + 1))

    async def of_connection(
        self, company: CompanyRef, connection_id: uuid.UUID, *, include_disconnected: bool = False
    ) -> Sequence[BankAccount]:
        stmt = self.scoped_select(company).where(BankAccount.connection_id == connection_id)
        if not include_disconnected:
            stmt = stmt.where(BankAccount.status != AccountStatus.disconnected)
        return await self.all(stmt.order_by(BankAccount.created_at))

    async def find_linked(self, company: CompanyRef, bank_id: str, identity_key: str) -> BankAccount | None:
        """The not-disconnected link of this bank account (company + bank + identity), if any."""
        stmt = self.scoped_select(company).where(
            BankAccount.bank_id == bank_id,
            BankAccount.identity_key == identity_key,
            BankAccount.status != AccountStatus.disconnected,
        )
        return await self.one_or_none(stmt.limit(1))

    async def find_by_ledger_account(
        self, company: CompanyRef, ledger_account: str, *, exclude: uuid.UUID | None = None
    ) -> BankAccount | None:
        """Another linked (not disconnected) account of the company mapped to ``ledger_account``."""
        stmt = self.scoped_select(company).where(
            BankAccount.ledger_account == ledger_account,
            BankAccount.status != AccountStatus.disconnected,
        )
        if exclude is not None:
            stmt = stmt.where(BankAccount.id != exclude)
        return await self.one_or_none(stmt.limit(1))

    async def mapped(self, company: CompanyRef) -> Sequence[BankAccount]:
        stmt = self.scoped_select(company).where(BankAccount.status != AccountStatus.disconnected)
        return await self.all(stmt.order_by(BankAccount.created_at, BankAccount.id))

    async def set_status_for_connection(
        self,
        company: CompanyRef,
        connection_id: uuid.UUID,
        *,
        to: AccountStatus,
        only_from: Sequence[AccountStatus] | None = None,
    ) -> None:
        """Move the connection's linked accounts to ``to`` (optionally only those in ``only_from``)."""
        company_id = company.company_id if isinstance(company, Principal) else company
        stmt = update(BankAccount).where(
            BankAccount.company_id == company_id,
            BankAccount.connection_id == connection_id,
            BankAccount.status != AccountStatus.disconnected,
        )
        if only_from is not None:
            stmt = stmt.where(BankAccount.status.in_(list(only_from)))
        await self.session.execute(stmt.values(status=to, modified_at=utcnow()))

    async def unbooked_counts(
        self, company: CompanyRef, account_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """``{account_id: unbooked_count}`` in one grouped query: booked rows still to book (pending
        rows cannot be booked yet), the same count as the to-do and the sync events."""
        if not account_ids:
            return {}
        base: Any = select(BankTransaction.account_id, func.count())
        stmt = (
            scoped(base, BankTransaction, company)
            .where(
                BankTransaction.account_id.in_(list(account_ids)),
                BankTransaction.booking_status == "booked",
                BankTransaction.status == TransactionStatus.unbooked,
            )
            .group_by(BankTransaction.account_id)
        )
        rows = (await self.session.execute(stmt)).all()
        return {row[0]: int(row[1]) for row in rows}


class ConnectionSideEffectsRepository:
    """The to-do rows a connection's state change writes (events go through ``events.service.emit``)."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def upsert_open_todo(
        self, company_id: uuid.UUID, type_: str, subject_key: str, data: dict[str, Any]
    ) -> None:
        stmt = scoped(select(Todo), Todo, company_id).where(
            Todo.type == type_, Todo.subject_key == subject_key, Todo.resolved_at.is_(None)
        )
        todo: Todo | None = (await self.session.execute(stmt)).scalar_one_or_none()
        if todo is None:
            self.session.add(Todo(company_id=company_id, type=type_, subject_key=subject_key, data=data))
        else:
            todo.data = data
        await self.session.flush()

    async def resolve_open_todos(
        self, company_id: uuid.UUID, types: Sequence[str], subject_keys: Sequence[str]
    ) -> None:
        if not subject_keys:
            return
        await self.session.execute(
            update(Todo)
            .where(
                Todo.company_id == company_id,
                Todo.type.in_(list(types)),
                Todo.subject_key.in_(list(subject_keys)),
                Todo.resolved_at.is_(None),
            )
            .values(resolved_at=utcnow())
        )
