"""SQL of the sync feature: runs, the account row lock, the PSD2 allowance ledger and the set-based
transaction write path."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.bank import (
    ACTIVE_RUN_PREDICATE,
    AccountStatus,
    BankAccount,
    BankConnection,
    BankTransaction,
    ConnectionStatus,
    SyncRun,
    SyncStatus,
    TransactionStatus,
    UnattendedRead,
)
from ledgerlink.models.inbox import Todo

ACTIVE_RUN_STATUSES = (SyncStatus.queued, SyncStatus.running)


class SyncRunRepository(RepositoryBase[SyncRun]):
    model = SyncRun

    async def active_run(self, account_id: uuid.UUID) -> SyncRun | None:
        stmt = (
            select(SyncRun)
            .where(SyncRun.account_id == account_id, SyncRun.status.in_(ACTIVE_RUN_STATUSES))
            .order_by(SyncRun.created_at.desc())
            .limit(1)
        )
        return await self.one_or_none(stmt)

    async def insert_unless_active(self, values: dict[str, Any]) -> bool:
        """Insert a run unless its account already has a queued or running one: the partial unique index
        ``uq_sync_run_active_account`` arbitrates (``ON CONFLICT DO NOTHING``), so two racing writers
        can never both succeed and the transaction stays usable. False when a run was already active."""
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = (
            insert(SyncRun)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["account_id"], index_where=text(ACTIVE_RUN_PREDICATE))
        )
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0) == 1)

    async def deferred_runs(self, account_id: uuid.UUID) -> Sequence[SyncRun]:
        stmt = select(SyncRun).where(SyncRun.account_id == account_id, SyncRun.status == SyncStatus.deferred)
        return await self.all(stmt)

    async def get_for_update(self, run_id: uuid.UUID) -> SyncRun | None:
        return await self.one_or_none(select(SyncRun).where(SyncRun.id == run_id).with_for_update())

    def list_stmt(self, company_id: uuid.UUID, account_id: uuid.UUID) -> Select[Any]:
        return scoped(select(SyncRun), SyncRun, company_id).where(SyncRun.account_id == account_id)

    async def page(
        self,
        company_id: uuid.UUID,
        account_id: uuid.UUID,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[SyncRun]:
        stmt = self.list_stmt(company_id, account_id)
        if after is not None:
            created, rid = after
            stmt = stmt.where(
                (SyncRun.created_at < created) | ((SyncRun.created_at == created) & (SyncRun.id < rid))
            )
        stmt = stmt.order_by(SyncRun.created_at.desc(), SyncRun.id.desc()).limit(limit)
        return await self.all(stmt)

    async def stale_runs(self, started_before: dt.datetime, queued_before: dt.datetime) -> Sequence[SyncRun]:
        """Runs a dead worker left behind: ``running`` since before ``started_before`` or ``queued``
        (waiting for nothing) since before ``queued_before``."""
        stmt = select(SyncRun).where(
            (
                (SyncRun.status == SyncStatus.running)
                & (func.coalesce(SyncRun.started_at, SyncRun.created_at) < started_before)
            )
            | (
                (SyncRun.status.in_((SyncStatus.queued, SyncStatus.deferred)))
                & (func.coalesce(SyncRun.next_attempt_at, SyncRun.created_at) < queued_before)
            )
        )
        return await self.all(stmt.with_for_update(skip_locked=True))

    async def unfinished_runs(self) -> Sequence[SyncRun]:
        """Every run not finished yet (queued, running or deferred), oldest first."""
        stmt = (
            select(SyncRun)
            .where(SyncRun.status.in_((SyncStatus.queued, SyncStatus.running, SyncStatus.deferred)))
            .order_by(SyncRun.created_at)
        )
        return await self.all(stmt)


class AccountRepository(RepositoryBase[BankAccount]):
    model = BankAccount

    async def get_scoped_for_update(self, company_id: uuid.UUID, account_id: uuid.UUID) -> BankAccount | None:
        stmt = scoped(select(BankAccount), BankAccount, company_id).where(BankAccount.id == account_id)
        return await self.one_or_none(stmt.with_for_update())

    async def get_for_update(self, account_id: uuid.UUID) -> BankAccount | None:
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

    async def set_status_for_company(
        self, company_id: uuid.UUID, from_status: AccountStatus, to_status: AccountStatus
    ) -> None:
        await self.session.execute(
            update(BankAccount)
            .where(BankAccount.company_id == company_id, BankAccount.status == from_status)
            .values(status=to_status)
        )


class UnattendedReadRepository(RepositoryBase[UnattendedRead]):
    """The PSD2 allowance ledger (docs/architecture.md, rule 5)."""

    model = UnattendedRead

    async def count_since(self, account_id: uuid.UUID, endpoint: str, since: dt.datetime) -> int:
        stmt = select(func.count()).where(
            UnattendedRead.account_id == account_id,
            UnattendedRead.endpoint == endpoint,
            UnattendedRead.read_at >= since,
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def oldest_since(
        self, account_id: uuid.UUID, endpoint: str, since: dt.datetime
    ) -> dt.datetime | None:
        stmt = select(func.min(UnattendedRead.read_at)).where(
            UnattendedRead.account_id == account_id,
            UnattendedRead.endpoint == endpoint,
            UnattendedRead.read_at >= since,
        )
        value: dt.datetime | None = (await self.session.execute(stmt)).scalar_one()
        return value

    async def record(self, account_id: uuid.UUID, endpoint: str, at: dt.datetime) -> None:
        self.session.add(UnattendedRead(account_id=account_id, endpoint=endpoint, read_at=at))
        await self.session.flush()

    async def prune(self, before: dt.datetime) -> None:
        await self.session.execute(delete(UnattendedRead).where(UnattendedRead.read_at < before))


# --------------------------------------------------------------------------- the write path

WRITE_COLUMNS = (
    "id",
    "company_id",
    "account_id",
    "identity",
    "provider_id",
    "booking_status",
    "booking_date",
    "value_date",
    "amount",
    "currency",
    "counterparty",
    "description",
    "reference",
    "status",
    "raw",
    "first_seen_at",
    "last_seen_at",
)
# columns a re-sync may change (status, voucher_ref and first_seen_at never: the user's decision stays)
MUTABLE_COLUMNS = (
    "provider_id",
    "booking_status",
    "booking_date",
    "value_date",
    "amount",
    "currency",
    "counterparty",
    "description",
    "reference",
)

_PG_UPSERT = text(
    """
    INSERT INTO bank_transaction (id, company_id, account_id, identity, provider_id, booking_status,
        booking_date, value_date, amount, currency, counterparty, description, reference, status, raw,
        first_seen_at, last_seen_at)
    SELECT u.id, :company_id, :account_id, u.identity, u.provider_id, u.booking_status, u.booking_date,
        u.value_date, u.amount, u.currency, u.counterparty, u.description, u.reference, 'unbooked',
        u.raw::jsonb, :seen_at, :seen_at
    FROM unnest(
        CAST(:ids AS uuid[]), CAST(:identities AS varchar[]), CAST(:provider_ids AS varchar[]),
        CAST(:booking_statuses AS varchar[]), CAST(:booking_dates AS date[]), CAST(:value_dates AS date[]),
        CAST(:amounts AS numeric[]), CAST(:currencies AS varchar[]), CAST(:counterparties AS text[]),
        CAST(:descriptions AS text[]), CAST(:references AS varchar[]), CAST(:raws AS text[])
    ) AS u(id, identity, provider_id, booking_status, booking_date, value_date, amount, currency,
           counterparty, description, reference, raw)
    ON CONFLICT (account_id, identity) DO UPDATE SET
        provider_id = EXCLUDED.provider_id,
        booking_status = EXCLUDED.booking_status,
        booking_date = EXCLUDED.booking_date,
        value_date = EXCLUDED.value_date,
        amount = EXCLUDED.amount,
        currency = EXCLUDED.currency,
        counterparty = EXCLUDED.counterparty,
        description = EXCLUDED.description,
        reference = EXCLUDED.reference,
        raw = EXCLUDED.raw,
        last_seen_at = EXCLUDED.last_seen_at
    WHERE (bank_transaction.provider_id, bank_transaction.booking_status, bank_transaction.booking_date,
           bank_transaction.value_date, bank_transaction.amount, bank_transaction.currency,
           bank_transaction.counterparty, bank_transaction.description, bank_transaction.reference)
        IS DISTINCT FROM
          (EXCLUDED.provider_id, EXCLUDED.booking_status, EXCLUDED.booking_date, EXCLUDED.value_date,
           EXCLUDED.amount, EXCLUDED.currency, EXCLUDED.counterparty, EXCLUDED.description,
           EXCLUDED.reference)
    RETURNING (xmax = 0) AS inserted
    """
)


@dataclass(frozen=True, slots=True)
class WriteRow:
    """One normalised transaction ready for the upsert (identity already derived)."""

    identity: str
    provider_id: str | None
    booking_status: str
    booking_date: dt.date
    value_date: dt.date | None
    amount: Decimal
    currency: str
    counterparty: str | None
    description: str | None
    reference: str | None
    raw: dict[str, Any] | None


class TransactionWriteRepository:
    """Set-based writes of one account's transactions, keyed by (account, identity).

    PostgreSQL: one ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE ... WHERE IS DISTINCT
    FROM ... RETURNING (xmax = 0)`` per batch: 12 array parameters whatever the batch size (no bind
    limit, one round trip), rows whose content did not change are not rewritten (no dead tuples, not
    counted as updated), and ``status``/``voucher_ref`` are never touched, so a row the user booked or
    ignored keeps that decision. SQLite (embedded default): Core ``insert().on_conflict_do_update``.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self,
        company_id: uuid.UUID,
        account_id: uuid.UUID,
        rows: Sequence[WriteRow],
        seen_at: dt.datetime,
    ) -> tuple[int, int]:
        """Upsert one batch; returns (inserted, updated)."""
        if not rows:
            return 0, 0
        if self.session.get_bind().dialect.name != "postgresql":
            return await self._upsert_generic(company_id, account_id, rows, seen_at)
        params = {
            "company_id": company_id,
            "account_id": account_id,
            "seen_at": seen_at,
            "ids": [uuid.uuid4() for _ in rows],
            "identities": [r.identity for r in rows],
            "provider_ids": [r.provider_id for r in rows],
            "booking_statuses": [r.booking_status for r in rows],
            "booking_dates": [r.booking_date for r in rows],
            "value_dates": [r.value_date for r in rows],
            "amounts": [r.amount for r in rows],
            "currencies": [r.currency for r in rows],
            "counterparties": [r.counterparty for r in rows],
            "descriptions": [r.description for r in rows],
            "references": [r.reference for r in rows],
            "raws": [json.dumps(r.raw, default=str) if r.raw else None for r in rows],
        }
        flags = (await self.session.execute(_PG_UPSERT, params)).scalars().all()
        inserted = sum(1 for f in flags if f)
        return inserted, len(flags) - inserted

    async def _upsert_generic(
        self, company_id: uuid.UUID, account_id: uuid.UUID, rows: Sequence[WriteRow], seen_at: dt.datetime
    ) -> tuple[int, int]:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        existing = set(
            (
                await self.session.execute(
                    select(BankTransaction.identity).where(
                        BankTransaction.account_id == account_id,
                        BankTransaction.identity.in_([r.identity for r in rows]),
                    )
                )
            ).scalars()
        )
        values = [
            {
                "id": uuid.uuid4(),
                "company_id": company_id,
                "account_id": account_id,
                "identity": r.identity,
                "provider_id": r.provider_id,
                "booking_status": r.booking_status,
                "booking_date": r.booking_date,
                "value_date": r.value_date,
                "amount": r.amount,
                "currency": r.currency,
                "counterparty": r.counterparty,
                "description": r.description,
                "reference": r.reference,
                "status": TransactionStatus.unbooked,
                "raw": r.raw,
                "first_seen_at": seen_at,
                "last_seen_at": seen_at,
            }
            for r in rows
        ]
        stmt = sqlite_insert(BankTransaction).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["account_id", "identity"],
            set_={c: stmt.excluded[c] for c in (*MUTABLE_COLUMNS, "raw", "last_seen_at")},
        )
        await self.session.execute(stmt)
        inserted = sum(1 for r in rows if r.identity not in existing)
        return inserted, len(rows) - inserted

    async def remove_pending_not_in(
        self, account_id: uuid.UUID, window_from: dt.date, window_to: dt.date, keep: Sequence[str]
    ) -> int:
        """Delete the account's pending rows of the window whose identity the bank no longer returned."""
        stmt = delete(BankTransaction).where(
            BankTransaction.account_id == account_id,
            BankTransaction.booking_status == "pending",
            BankTransaction.booking_date >= window_from,
            BankTransaction.booking_date <= window_to,
        )
        if keep:
            stmt = stmt.where(BankTransaction.identity.not_in(list(keep)))
        result = await self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    async def unbooked_count(self, account_id: uuid.UUID) -> int:
        stmt = select(func.count()).where(
            BankTransaction.account_id == account_id,
            BankTransaction.booking_status == "booked",
            BankTransaction.status == TransactionStatus.unbooked,
        )
        return int((await self.session.execute(stmt)).scalar_one())


class LifecycleRepository:
    """System-wide reads of the cron passes (no tenant: they act for every company)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def expiring_connections(self, until: dt.datetime) -> Sequence[BankConnection]:
        stmt = select(BankConnection).where(
            BankConnection.status == ConnectionStatus.active,
            BankConnection.consent_expires_at.is_not(None),
            BankConnection.consent_expires_at <= until,
        )
        return (await self.session.execute(stmt.with_for_update(skip_locked=True))).scalars().all()

    async def open_todos(self, type: str) -> Sequence[Todo]:
        stmt = select(Todo).where(Todo.type == type, Todo.resolved_at.is_(None))
        return (await self.session.execute(stmt)).scalars().all()

    async def connection(self, connection_id: uuid.UUID) -> BankConnection | None:
        return await self.session.get(BankConnection, connection_id)
