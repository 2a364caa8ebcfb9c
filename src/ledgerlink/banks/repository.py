"""SQL of the banks feature: connections and linked accounts (the one owner of ``bank_account``;
to-dos go through the inbox's ``TodoRepository``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, tuple_, update

from ledgerlink.auth.principal import Principal
from ledgerlink.db.base import utcnow
from ledgerlink.db.repository import RepositoryBase
from ledgerlink.models.bank import (
    AccountStatus,
    BankAccount,
    BankConnection,
    ConnectionStatus,
    LastError,
    SyncRun,
    SyncStatus,
)

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

    async def at_bank_for_update(
        self, company: CompanyRef, bank_id: str, statuses: Sequence[ConnectionStatus]
    ) -> Sequence[BankConnection]:
        """The company's connections at ``bank_id`` in ``statuses``, newest first, locked."""
        stmt = (
            self.scoped_select(company)
            .where(BankConnection.bank_id == bank_id, BankConnection.status.in_(statuses))
            .order_by(BankConnection.created_at.desc(), BankConnection.id.desc())
            .with_for_update()
        )
        return await self.all(stmt)


class BankAccountRepository(RepositoryBase[BankAccount]):
    """The one owner of ``bank_account``: the banks feature's linked accounts and the sync's row locks
    and due list."""

    model = BankAccount

    async def get_scoped_for_update(self, company: CompanyRef, account_id: uuid.UUID) -> BankAccount | None:
        stmt = self.scoped_select(company).where(BankAccount.id == account_id)
        return await self.one_or_none(stmt.with_for_update())

    async def get_for_update(self, account_id: uuid.UUID) -> BankAccount | None:
        """The account row, locked (system jobs: the sync engine acts for every company)."""
        return await self.one_or_none(
            select(BankAccount).where(BankAccount.id == account_id).with_for_update()
        )

    async def due_accounts(self, now: dt.datetime, limit: int) -> Sequence[BankAccount]:
        """Active or paused accounts whose next sync is due, with no run in flight (oldest first).
        An account without ``next_sync_at`` is never due (not confirmed yet, or vanished at the bank)."""
        in_flight = (
            select(SyncRun.id)
            .where(
                SyncRun.account_id == BankAccount.id,
                SyncRun.status.in_((SyncStatus.queued, SyncStatus.running, SyncStatus.deferred)),
            )
            .exists()
        )
        stmt = (
            select(BankAccount)
            .where(
                BankAccount.status.in_((AccountStatus.active, AccountStatus.paused)),
                BankAccount.next_sync_at.is_not(None),
                BankAccount.next_sync_at <= now,
                ~in_flight,
            )
            .order_by(BankAccount.next_sync_at.asc().nulls_first(), BankAccount.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=BankAccount)
        )
        return await self.all(stmt)

    async def list_page(
        self, company: CompanyRef, *, limit: int, after: tuple[dt.datetime, uuid.UUID] | None
    ) -> Sequence[BankAccount]:
        stmt = self.scoped_select(company).order_by(BankAccount.created_at.asc(), BankAccount.id.asc())
        if after is not None:
            stmt = stmt.where(tuple_(BankAccount.created_at, BankAccount.id) > tuple_(*after))
        return await self.all(stmt.limit(limit + 1))

    async def activate_if_pending(self, account: BankAccount) -> bool:
        """``pending_confirmation`` → ``active`` in one conditional UPDATE: of racing confirmations exactly
        one wins, on PostgreSQL (the row lock, then the condition re-read) and on SQLite (one writer)."""
        result = await self.session.execute(
            update(BankAccount)
            .where(
                BankAccount.id == account.id,
                BankAccount.company_id == account.company_id,
                BankAccount.status == AccountStatus.pending_confirmation,
            )
            .values(status=AccountStatus.active, modified_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            return False
        await self.session.refresh(account)
        return True

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
        error: LastError | None = None,
    ) -> None:
        """Move the connection's linked accounts to ``to`` (optionally only those in ``only_from``),
        recording ``error`` as their last sync error when given."""
        company_id = company.company_id if isinstance(company, Principal) else company
        stmt = update(BankAccount).where(
            BankAccount.company_id == company_id,
            BankAccount.connection_id == connection_id,
            BankAccount.status != AccountStatus.disconnected,
        )
        if only_from is not None:
            stmt = stmt.where(BankAccount.status.in_(list(only_from)))
        values: dict[str, Any] = {"status": to, "modified_at": utcnow()}
        if error is not None:
            values |= error.columns()
        await self.session.execute(stmt.values(**values))
