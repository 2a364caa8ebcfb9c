"""SQL of the sync feature: runs, the accounts' advisory locks, the PSD2 allowance ledger and the cron
passes' system-wide reads. (Transactions are written through the inbox's ``TransactionRepository``,
account rows read through the banks feature's ``BankAccountRepository``.)"""

from __future__ import annotations

import datetime as dt
import uuid
import zlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, case, delete, func, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.bank import (
    ACTIVE_RUN_PREDICATE,
    HOLDS_PSU_IP_PREDICATE,
    AccountStatus,
    BankAccount,
    BankConnection,
    ConnectionStatus,
    SyncRun,
    SyncStatus,
    UnattendedRead,
)

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

    async def account_of(self, run_id: uuid.UUID) -> uuid.UUID | None:
        """The run's account (None when the run does not exist), read in autocommit: one statement,
        no BEGIN/ROLLBACK round trips."""
        await self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        stmt = select(SyncRun.account_id).where(SyncRun.id == run_id)
        account_id: uuid.UUID | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return account_id

    async def record_window(self, run_id: uuid.UUID, window: tuple[dt.date, dt.date]) -> None:
        await self.session.execute(
            update(SyncRun).where(SyncRun.id == run_id).values(window_from=window[0], window_to=window[1])
        )

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

    async def forget_psu_addresses(self) -> int:
        """Forget the user's address on every run that has ended (it serves only while a run may still
        call the bank); returns how many runs held one."""
        stmt = (
            update(SyncRun)
            .where(
                text(HOLDS_PSU_IP_PREDICATE),
                SyncRun.status.in_((SyncStatus.succeeded, SyncStatus.failed)),
            )
            .values(psu_ip_address=None)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    async def unfinished_runs(self) -> Sequence[SyncRun]:
        """Every run not finished yet (queued, running or deferred), oldest first."""
        stmt = (
            select(SyncRun)
            .where(SyncRun.status.in_((SyncStatus.queued, SyncStatus.running, SyncStatus.deferred)))
            .order_by(SyncRun.created_at)
        )
        return await self.all(stmt)


class AdvisoryLockRepository:
    """PostgreSQL session advisory locks of sync accounts, on a dedicated connection: held until
    unlocked or until the connection closes (so a dead process frees them)."""

    NAMESPACE = 42  # the first key of every sync account lock

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    @staticmethod
    def key(account_id: uuid.UUID) -> int:
        """The second key of the account's lock: a signed int4, as the function takes."""
        return zlib.crc32(account_id.bytes) - 2**31

    async def try_lock_account(self, account_id: uuid.UUID) -> bool:
        stmt = text("SELECT pg_try_advisory_lock(:ns, :k)")
        params = {"ns": self.NAMESPACE, "k": self.key(account_id)}
        return bool((await self.connection.execute(stmt, params)).scalar_one())

    async def unlock_account(self, account_id: uuid.UUID) -> None:
        stmt = text("SELECT pg_advisory_unlock(:ns, :k)")
        await self.connection.execute(stmt, {"ns": self.NAMESPACE, "k": self.key(account_id)})


class UnattendedReadRepository(RepositoryBase[UnattendedRead]):
    """The PSD2 allowance ledger (docs/architecture.md, rule 5)."""

    model = UnattendedRead

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

    async def record_if_below(
        self, account_id: uuid.UUID, endpoint: str, at: dt.datetime, since: dt.datetime, limit: int
    ) -> bool:
        """Record one read at ``at`` if fewer than ``limit`` were recorded since ``since``: the count and
        the insert as ONE statement (``INSERT … SELECT … WHERE (count) < limit``); False at the limit
        (nothing recorded). Under READ COMMITTED two concurrent spenders of one account could both see
        the count below the limit: they are kept apart by the account's lock (one run at a time)."""
        table = UnattendedRead.__table__
        used = (
            select(func.count())
            .where(
                UnattendedRead.account_id == account_id,
                UnattendedRead.endpoint == endpoint,
                UnattendedRead.read_at >= since,
            )
            .scalar_subquery()
        )
        row = select(
            literal(account_id, table.c.account_id.type),
            literal(endpoint, table.c.endpoint.type),
            literal(at, table.c.read_at.type),
        ).where(used < limit)
        stmt = (
            insert(UnattendedRead)
            .from_select(["account_id", "endpoint", "read_at"], row)
            .returning(UnattendedRead.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def prune(self, before: dt.datetime) -> None:
        await self.session.execute(delete(UnattendedRead).where(UnattendedRead.read_at < before))


class LifecycleRepository:
    """System-wide reads of the cron passes and of the operator's scrape-time figures (no tenant: they
    act for every company)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def expiring_connections(self, until: dt.datetime) -> Sequence[BankConnection]:
        stmt = select(BankConnection).where(
            BankConnection.status == ConnectionStatus.active,
            BankConnection.consent_expires_at.is_not(None),
            BankConnection.consent_expires_at <= until,
        )
        return (await self.session.execute(stmt.with_for_update(skip_locked=True))).scalars().all()

    async def connection(self, connection_id: uuid.UUID) -> BankConnection | None:
        return await self.session.get(BankConnection, connection_id)

    async def count_consents_expiring(self, after: dt.datetime, until: dt.datetime) -> int:
        """Active connections whose consent ends in ``(after, until]``."""
        stmt = (
            select(func.count())
            .select_from(BankConnection)
            .where(
                BankConnection.status == ConnectionStatus.active,
                BankConnection.consent_expires_at > after,
                BankConnection.consent_expires_at <= until,
            )
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def active_accounts_by_bank(self) -> dict[str, int]:
        stmt = (
            select(BankAccount.bank_id, func.count())
            .where(BankAccount.status == AccountStatus.active)
            .group_by(BankAccount.bank_id)
        )
        return {bank_id: int(n) for bank_id, n in (await self.session.execute(stmt)).tuples()}

    async def unattended_use_by_bank(
        self, since: dt.datetime, per_day: int
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """(bank, endpoint) -> (reads since ``since`` of the active accounts, each account's capped at
        ``per_day``; how many of those accounts made ``per_day`` or more)."""
        per_account = (
            select(UnattendedRead.account_id, UnattendedRead.endpoint, func.count().label("used"))
            .where(UnattendedRead.read_at >= since)
            .group_by(UnattendedRead.account_id, UnattendedRead.endpoint)
            .subquery()
        )
        spent = per_account.c.used >= per_day
        stmt = (
            select(
                BankAccount.bank_id,
                per_account.c.endpoint,
                func.sum(case((spent, per_day), else_=per_account.c.used)),
                func.sum(case((spent, 1), else_=0)),
            )
            .join(per_account, per_account.c.account_id == BankAccount.id)
            .where(BankAccount.status == AccountStatus.active)
            .group_by(BankAccount.bank_id, per_account.c.endpoint)
        )
        return {
            (bank_id, endpoint): (int(capped), int(n))
            for bank_id, endpoint, capped, n in (await self.session.execute(stmt)).tuples()
        }
