"""SQL of the statements feature: imports and their rows, the account's held rows, balance snapshots
and the reconciliation row."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.auth.principal import Principal
from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.bank import AccountStatus, BankAccount, ImportedTransaction, TransactionStatus
from ledgerlink.models.statements import (
    BankBalanceSnapshot,
    BankReconciliation,
    StatementImport,
    StatementImportRow,
)

#: identities of rows a statement brought in (the feed adopts them: see :func:`adopt_statement_rows`)
STATEMENT_IDENTITY_PREFIX = "st:"


def _booked_between(
    account_id: uuid.UUID, date_from: dt.date, date_to: dt.date
) -> Select[ImportedTransaction]:
    """An account's rows booked in the window (inclusive)."""
    T = ImportedTransaction
    return select(T).where(T.account_id == account_id, T.booking_date >= date_from, T.booking_date <= date_to)


async def lock_account(session: AsyncSession, account_id: uuid.UUID) -> None:
    """The account's row lock. A statement commit, a feed write and the balance check take it: a feed
    write and a commit never decide "not held yet" about the same row at the same time, and a write that
    drops the balance check's checkpoint and a check that rewrites it take turns."""
    await session.execute(select(BankAccount.id).where(BankAccount.id == account_id).with_for_update())


class StatementRepository(RepositoryBase[StatementImport]):
    model = StatementImport

    async def account(self, principal: Principal | uuid.UUID, account_id: uuid.UUID) -> BankAccount | None:
        stmt = scoped(select(BankAccount), BankAccount, principal).where(BankAccount.id == account_id)
        found: BankAccount | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def account_for_update(self, principal: Principal, account_id: uuid.UUID) -> BankAccount | None:
        stmt = (
            scoped(select(BankAccount), BankAccount, principal)
            .where(BankAccount.id == account_id)
            .with_for_update()
        )
        found: BankAccount | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def get_import(
        self, principal: Principal, account_id: uuid.UUID, import_id: uuid.UUID, *, for_update: bool = False
    ) -> StatementImport | None:
        stmt = self.scoped_select(principal).where(
            StatementImport.id == import_id, StatementImport.account_id == account_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return await self.one_or_none(stmt)

    async def rows(self, import_id: uuid.UUID) -> Sequence[StatementImportRow]:
        stmt = (
            select(StatementImportRow)
            .where(StatementImportRow.import_id == import_id)
            .order_by(StatementImportRow.position)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def replace_rows(self, import_id: uuid.UUID, rows: Sequence[StatementImportRow]) -> None:
        await self.session.execute(
            delete(StatementImportRow).where(StatementImportRow.import_id == import_id)
        )
        self.session.add_all(rows)
        await self.session.flush()

    async def held_rows(
        self, account_id: uuid.UUID, date_from: dt.date, date_to: dt.date
    ) -> Sequence[ImportedTransaction]:
        """The account's rows (feed or statement) booked in the window, oldest first."""
        T = ImportedTransaction
        stmt = _booked_between(account_id, date_from, date_to)
        return (
            (await self.session.execute(stmt.order_by(T.booking_date, T.first_seen_at, T.id))).scalars().all()
        )

    async def held_refs(self, account_id: uuid.UUID, refs: Sequence[str]) -> Sequence[ImportedTransaction]:
        """Rows whose bank id is one of ``refs``, whatever their date."""
        if not refs:
            return []
        stmt = select(ImportedTransaction).where(
            ImportedTransaction.account_id == account_id, ImportedTransaction.provider_id.in_(list(refs))
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def insert_transactions(self, rows: Sequence[dict[str, Any]]) -> None:
        for values in rows:
            self.session.add(ImportedTransaction(status=TransactionStatus.unbooked, **values))
        await self.session.flush()


class BalanceRepository:
    """Balance snapshots, the account's booked rows for the check, and the reconciliation row."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        company_id: uuid.UUID,
        account_id: uuid.UUID,
        *,
        as_of: dt.date,
        amount: Decimal,
        currency: str,
        source: str,
        at: dt.datetime,
    ) -> None:
        self.session.add(
            BankBalanceSnapshot(
                company_id=company_id,
                account_id=account_id,
                as_of=as_of,
                amount=amount,
                currency=currency,
                source=source,
                recorded_at=at,
            )
        )
        await self.session.flush()
        await self.clear_checkpoint_through(account_id, as_of)

    async def snapshots(
        self, account_id: uuid.UUID, *, from_day: dt.date | None = None
    ) -> Sequence[BankBalanceSnapshot]:
        """The account's balance snapshots (those dated ``from_day`` or later), in the order recorded."""
        S = BankBalanceSnapshot
        stmt = select(S).where(S.account_id == account_id)
        if from_day is not None:
            stmt = stmt.where(S.as_of >= from_day)
        stmt = stmt.order_by(S.recorded_at, S.as_of, S.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def latest(self, account_id: uuid.UUID) -> BankBalanceSnapshot | None:
        """The balance the check shows: the last one a sync recorded, else the last one of a statement."""
        S = BankBalanceSnapshot
        stmt = (
            select(S)
            .where(S.account_id == account_id)
            .order_by(case((S.source == "sync", 1), else_=0).desc(), S.recorded_at.desc(), S.as_of.desc())
            .order_by(S.id.desc())
            .limit(1)
        )
        found: BankBalanceSnapshot | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def booked(
        self, company_id: uuid.UUID, account_id: uuid.UUID, *, from_day: dt.date | None = None
    ) -> Sequence[tuple[dt.date, Decimal, Any]]:
        """(booking date, amount, raw) of the account's booked rows (those dated ``from_day`` or later),
        oldest first."""
        T = ImportedTransaction
        base: Select[Any] = select(T.booking_date, T.amount, T.raw)
        stmt = scoped(base, T, company_id).where(T.account_id == account_id, T.booking_status == "booked")
        if from_day is not None:
            stmt = stmt.where(T.booking_date >= from_day)
        stmt = stmt.order_by(T.booking_date, T.id)
        return [(r[0], r[1], r[2]) for r in (await self.session.execute(stmt)).all()]

    async def checkpoint(self, account_id: uuid.UUID) -> tuple[dt.date, Any] | None:
        """The stored checkpoint (its day and state), read from the database, not the session's copy."""
        R = BankReconciliation
        stmt = select(R.checkpoint_day, R.checkpoint).where(R.account_id == account_id)
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None or row[0] is None else (row[0], row[1])

    async def clear_checkpoint_through(self, account_id: uuid.UUID, day: dt.date) -> None:
        """A balance dated ``day`` changed: drop a checkpoint whose day is not before it."""
        R = BankReconciliation
        await self.session.execute(
            update(R)
            .where(R.account_id == account_id, R.checkpoint_day >= day)
            .values(checkpoint_day=None, checkpoint=None)
            .execution_options(synchronize_session=False)
        )

    async def clear_checkpoint_for_rows(
        self, account_id: uuid.UUID, earliest: dt.date, identities: Sequence[str]
    ) -> None:
        """Rows are about to be written (dated ``earliest`` or later, with these identities): drop a
        checkpoint whose day is not before ``earliest`` or not before the date one of these rows has now
        (a rewrite may move a row's date or status). Run under the account's lock (see
        :func:`lock_account`): without a checkpoint (an initial import) it costs one small read."""
        R, T = BankReconciliation, ImportedTransaction
        stmt = select(R.checkpoint_day).where(R.account_id == account_id)
        day: dt.date | None = (await self.session.execute(stmt)).scalar_one_or_none()
        if day is None:
            return
        if earliest > day:
            if not identities:
                return
            moved = (
                select(T.id)
                .where(T.account_id == account_id, T.identity.in_(list(identities)), T.booking_date <= day)
                .limit(1)
            )
            if (await self.session.execute(moved)).first() is None:
                return
        await self.session.execute(
            update(R)
            .where(R.account_id == account_id)
            .values(checkpoint_day=None, checkpoint=None)
            .execution_options(synchronize_session=False)
        )

    async def get(self, account_id: uuid.UUID) -> BankReconciliation | None:
        result: BankReconciliation | None = await self.session.get(BankReconciliation, account_id)
        return result

    async def many(self, account_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, BankReconciliation]:
        if not account_ids:
            return {}
        stmt = select(BankReconciliation).where(BankReconciliation.account_id.in_(list(account_ids)))
        return {r.account_id: r for r in (await self.session.execute(stmt)).scalars()}

    async def save(self, values: dict[str, Any]) -> BankReconciliation:
        current = await self.get(values["account_id"])
        if current is None:
            current = BankReconciliation(**values)
            self.session.add(current)
        else:
            for key, value in values.items():
                setattr(current, key, value)
        await self.session.flush()
        return current


class AdoptionRepository:
    """The feed's side of "one row, two sources": statement rows the feed may take over."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def statement_rows(
        self, account_id: uuid.UUID, date_from: dt.date, date_to: dt.date
    ) -> Sequence[ImportedTransaction]:
        """The account's rows from statements booked in the window, oldest first."""
        T = ImportedTransaction
        stmt = _booked_between(account_id, date_from, date_to)
        stmt = stmt.where(T.identity.startswith(STATEMENT_IDENTITY_PREFIX)).order_by(T.booking_date, T.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def existing_identities(self, account_id: uuid.UUID, identities: Sequence[str]) -> set[str]:
        if not identities:
            return set()
        stmt = select(ImportedTransaction.identity).where(
            ImportedTransaction.account_id == account_id, ImportedTransaction.identity.in_(list(identities))
        )
        return set((await self.session.execute(stmt)).scalars())

    async def rekey(self, row_id: uuid.UUID, identity: str) -> None:
        await self.session.execute(
            update(ImportedTransaction).where(ImportedTransaction.id == row_id).values(identity=identity)
        )


class HealthRepository:
    """System-wide reads of the ``sync_stalled`` sweep (no tenant: it acts for every company)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_accounts(self, after: uuid.UUID | None, limit: int) -> Sequence[BankAccount]:
        stmt = select(BankAccount).where(BankAccount.status == AccountStatus.active).order_by(BankAccount.id)
        if after is not None:
            stmt = stmt.where(BankAccount.id > after)
        return (await self.session.execute(stmt.limit(limit))).scalars().all()

    async def booking_days(self, account_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[dt.date]]:
        if not account_ids:
            return {}
        stmt = (
            select(ImportedTransaction.account_id, ImportedTransaction.booking_date)
            .where(
                ImportedTransaction.account_id.in_(list(account_ids)),
                ImportedTransaction.booking_status == "booked",
            )
            .distinct()
        )
        out: dict[uuid.UUID, list[dt.date]] = {i: [] for i in account_ids}
        for account_id, day in (await self.session.execute(stmt)).all():
            out[account_id].append(day)
        return out
