"""Linked bank accounts: choosing an account of a connection, the sync window, confirmation (initial
import), the ledger-account mapping, and the BAS 19xx suggestions."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.auth.principal import Principal
from ledgerlink.banks.adapters.registry import get_entry
from ledgerlink.banks.errors import (
    AccountAlreadyLinked,
    AccountStateConflict,
    BankAccountNotFound,
    ConnectionNotActive,
    ConnectionNotFound,
    LedgerAccountInUse,
    ledger_account_invalid,
)
from ledgerlink.banks.repository import (
    BankAccountRepository,
    BankConnectionRepository,
)
from ledgerlink.banks.schemas import (
    AccountMappingRead,
    BankAccountCreate,
    BankAccountPage,
    BankAccountRead,
    BankAccountUpdate,
    LastErrorRead,
    LedgerAccountRead,
    MoneyRead,
)
from ledgerlink.banks.service.connections import available_of, identity_key
from ledgerlink.clock import today_stockholm
from ledgerlink.companies.service import company as company_service
from ledgerlink.config import Settings
from ledgerlink.errors import Unprocessable
from ledgerlink.inbox.repository import TodoRepository, TransactionRepository
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import (
    AccountStatus,
    BankAccount,
    ConnectionStatus,
    SyncRun,
    SyncTrigger,
)
from ledgerlink.models.inbox import TodoType
from ledgerlink.pagination import Instant, Keyset
from ledgerlink.schema_types import read_model
from ledgerlink.statements.service import reconciliation_of, reconciliations_of

ACCOUNTS_KEYSET = Keyset("bank-accounts", Instant, uuid.UUID)

log = get_logger(__name__)

#: BAS 2025 kontogrupp 19 "Kassa och bank": the suggestions offered for a bank account's mapping.
BAS_19: dict[str, str] = {
    "1910": "Kassa",
    "1920": "PlusGiro",
    "1930": "Företagskonto/checkkonto/affärskonto",
    "1940": "Övriga bankkonton",
    "1950": "Bankcertifikat",
    "1960": "Koncernkonto moderföretag",
    "1970": "Särskilda bankkonton",
    "1980": "Valutakonton",
    "1990": "Redovisningsmedel",
}


def ledger_account_name(number: str | None) -> str | None:
    """The BAS name of the account, or of its group (``1931`` → the 1930 name)."""
    if number is None:
        return None
    return BAS_19.get(number) or BAS_19.get(number[:3] + "0")


def ledger_suggestions(class_prefix: str) -> list[LedgerAccountRead]:
    return [
        LedgerAccountRead(number=n, name=name) for n, name in BAS_19.items() if n.startswith(class_prefix)
    ]


def check_ledger_account(value: str, loc: list[str | int]) -> str:
    number = value.strip()
    if len(number) != 4 or not (number.isascii() and number.isdigit()) or not 1900 <= int(number) <= 1999:
        raise ledger_account_invalid(value, loc)
    return number


#: Queues a sync run of an account (``ledgerlink.sync.service.schedule_sync``, given by the endpoint).
ScheduleSync = Callable[..., Awaitable[SyncRun]]
Window = tuple[dt.date, dt.date]


async def _user_run(
    schedule_sync: ScheduleSync,
    session: AsyncSession,
    account: BankAccount,
    trigger: SyncTrigger,
    window: Window,
) -> SyncRun:
    """A run the user asked for here (the initial import, a backfill): the user is present."""
    start, end = window
    return await schedule_sync(
        session, account, trigger=trigger, user_present=True, window_from=start, window_to=end
    )


def check_sync_from(sync_from: dt.date, bank_id: str) -> None:
    """Not in the future; not older than the bank serves (the detail names the earliest date)."""
    today = today_stockholm()
    if sync_from > today:
        raise Unprocessable(
            f"sync_from {sync_from.isoformat()} is in the future; the latest allowed date is {today.isoformat()}",
            loc=["body", "sync_from"],
            code="sync_from_in_future",
            extra={"latest_allowed": today.isoformat()},
        )
    entry = get_entry(bank_id)
    if entry is None:  # pragma: no cover - accounts only exist for catalogue banks
        return
    earliest = today - dt.timedelta(days=entry.max_history_days)
    if sync_from < earliest:
        raise Unprocessable(
            f"{entry.name} serves at most {entry.max_history_days} days of history: "
            f"the earliest allowed sync_from is {earliest.isoformat()}",
            loc=["body", "sync_from"],
            code="sync_from_too_early",
            extra={"earliest_allowed": earliest.isoformat()},
        )


def account_read(account: BankAccount, unbooked: int) -> BankAccountRead:
    balance = None
    if account.balance_amount is not None:
        balance = MoneyRead(
            amount=format(Decimal(account.balance_amount), "f"),
            currency=account.balance_currency or account.currency,
            as_of=account.balance_as_of,
        )
    return read_model(
        BankAccountRead,
        account,
        name=account.display_name or account.name,
        status=account.status.value,
        last_sync_status=account.last_sync_status.value if account.last_sync_status else None,
        balance=balance,
        unbooked_count=unbooked,
        last_error=LastErrorRead.of(account),
    )


class BankAccountService:
    async def create(
        self, session: AsyncSession, principal: Principal, data: BankAccountCreate, settings: Settings
    ) -> BankAccountRead:
        connection = await BankConnectionRepository(session).get_scoped(principal, data.connection_id)
        if connection is None:
            raise ConnectionNotFound()
        await company_service.require_bank_import(session, principal.company_id, settings)
        if connection.status != ConnectionStatus.active:
            raise ConnectionNotActive(f"the connection is {connection.status.value}; authorize it first")
        raw = next((a for a in available_of(connection) if a.get("external_id") == data.external_id), None)
        if raw is None:
            raise Unprocessable(
                "external_id is not one of the connection's available accounts",
                loc=["body", "external_id"],
                code="bank_account_not_available",
            )
        check_sync_from(data.sync_from, connection.bank_id)
        repo = BankAccountRepository(session)
        key = identity_key(raw.get("iban"), raw.get("bban"), data.external_id)
        existing = await repo.find_linked(principal, connection.bank_id, key)
        if existing is not None:
            raise AccountAlreadyLinked(
                "this bank account is already linked", extra={"bank_account_id": str(existing.id)}
            )
        ledger = None
        if data.ledger_account is not None:
            ledger = await self._check_mapping(
                repo, principal, data.ledger_account, None, ["body", "ledger_account"]
            )
        balance = raw.get("balance") or None
        account = BankAccount(
            id=uuid.uuid4(),
            company_id=principal.company_id,
            connection_id=connection.id,
            bank_id=connection.bank_id,
            external_id=data.external_id,
            identity_key=key,
            iban=raw.get("iban"),
            bban=raw.get("bban"),
            name=raw.get("name"),
            currency=raw.get("currency") or "SEK",
            usage=raw.get("usage"),
            ledger_account=ledger,
            sync_from=data.sync_from,
            status=AccountStatus.pending_confirmation,
            balance_amount=Decimal(balance["amount"]) if balance else None,
            balance_currency=balance.get("currency") if balance else None,
            balance_as_of=dt.date.fromisoformat(balance["as_of"])
            if balance and balance.get("as_of")
            else None,
        )
        try:
            async with session.begin_nested():
                session.add(account)
        except IntegrityError as exc:  # a concurrent request linked it first
            raise AccountAlreadyLinked("this bank account is already linked") from exc
        log.info("bank_account.created", bank_account_id=str(account.id), bank_id=account.bank_id)
        return account_read(account, 0)

    async def confirm(
        self,
        session: AsyncSession,
        principal: Principal,
        account_id: uuid.UUID,
        settings: Settings,
        schedule_sync: ScheduleSync,
    ) -> SyncRun:
        """Start importing: the account goes active and the initial import (user present) is queued
        (by ``schedule_sync``: the sync feature's, passed in, as the sync feature builds on this one);
        the answer is that run."""
        account = await self._get(session, principal, account_id)
        if account.status != AccountStatus.pending_confirmation:
            raise AccountStateConflict(
                f"the bank account is {account.status.value}, not pending_confirmation"
            )
        await company_service.require_bank_import(session, principal.company_id, settings)
        connection = await BankConnectionRepository(session).get_scoped(principal, account.connection_id)
        if connection is None or connection.status != ConnectionStatus.active:
            raise ConnectionNotActive("the account's bank connection is not active")
        if not await BankAccountRepository(session).activate_if_pending(account):
            raise AccountStateConflict("the bank account is already confirmed")
        window = (account.sync_from, today_stockholm())
        run = await _user_run(schedule_sync, session, account, SyncTrigger.initial, window)
        log.info("bank_account.confirmed", bank_account_id=str(account.id), run_id=str(run.id))
        return run

    async def update(
        self,
        session: AsyncSession,
        principal: Principal,
        account_id: uuid.UUID,
        data: BankAccountUpdate,
        settings: Settings,
        schedule_sync: ScheduleSync,
    ) -> tuple[BankAccountRead, SyncRun | None]:
        """The account as updated, and the backfill run when ``sync_from`` moved earlier."""
        account = await self._get(session, principal, account_id)
        if account.status == AccountStatus.disconnected:
            raise AccountStateConflict("the bank account is disconnected")
        repo = BankAccountRepository(session)
        fields = data.model_fields_set
        if "ledger_account" in fields:
            account.ledger_account = (
                await self._check_mapping(
                    repo, principal, data.ledger_account, account.id, ["body", "ledger_account"]
                )
                if data.ledger_account is not None
                else None
            )
        if "display_name" in fields:
            account.display_name = data.display_name
        backfill: SyncRun | None = None
        if data.sync_from is not None and data.sync_from != account.sync_from:
            check_sync_from(data.sync_from, account.bank_id)
            earlier = data.sync_from < account.sync_from
            previous = account.sync_from
            account.sync_from = data.sync_from
            await session.flush()
            if earlier and account.status == AccountStatus.active:
                account.backfill_from = data.sync_from
                await company_service.require_bank_import(session, principal.company_id, settings)
                window = (data.sync_from, previous)
                backfill = await _user_run(schedule_sync, session, account, SyncTrigger.backfill, window)
        await session.flush()
        counts = await TransactionRepository(session).unbooked_counts(principal, [account.id])
        return account_read(account, counts.get(account.id, 0)), backfill

    async def get(
        self, session: AsyncSession, principal: Principal, account_id: uuid.UUID
    ) -> BankAccountRead:
        account = await self._get(session, principal, account_id)
        counts = await TransactionRepository(session).unbooked_counts(principal, [account.id])
        read = account_read(account, counts.get(account.id, 0))
        read.reconciliation = await reconciliation_of(session, account.id)
        return read

    async def list_page(
        self, session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
    ) -> BankAccountPage:
        """The company's linked accounts, oldest first, each with its balance check."""
        after = ACCOUNTS_KEYSET.decode(cursor)
        repo = BankAccountRepository(session)
        found = await repo.list_page(principal, limit=limit, after=after)
        rows, next_cursor = ACCOUNTS_KEYSET.cut(found, limit, lambda a: (a.created_at, a.id))
        counts = await TransactionRepository(session).unbooked_counts(principal, [a.id for a in rows])
        checks = await reconciliations_of(session, [a.id for a in rows])
        reads = [account_read(a, counts.get(a.id, 0)) for a in rows]
        for read in reads:
            read.reconciliation = checks[read.id]
        return BankAccountPage(items=reads, next_cursor=next_cursor)

    async def delete(self, session: AsyncSession, principal: Principal, account_id: uuid.UUID) -> None:
        """Stop syncing; the account's transactions stay."""
        account = await self._get(session, principal, account_id)
        account.status = AccountStatus.disconnected
        account.next_sync_at = None
        await TodoRepository(session).resolve(account.company_id, TodoType.sync_failed, str(account.id))
        await session.flush()
        log.info("bank_account.disconnected", bank_account_id=str(account.id))

    # ------------------------------------------------------------------ mapping

    async def mappings(self, session: AsyncSession, principal: Principal) -> list[AccountMappingRead]:
        return [
            AccountMappingRead(
                bank_account_id=a.id,
                ledger_account=a.ledger_account,
                ledger_account_name=ledger_account_name(a.ledger_account),
            )
            for a in await BankAccountRepository(session).mapped(principal)
        ]

    async def put_mapping(
        self, session: AsyncSession, principal: Principal, account_id: uuid.UUID, ledger_account: str
    ) -> AccountMappingRead:
        account = await self._get(session, principal, account_id)
        if account.status == AccountStatus.disconnected:
            raise AccountStateConflict("the bank account is disconnected")
        number = await self._check_mapping(
            BankAccountRepository(session), principal, ledger_account, account.id, ["body", "ledger_account"]
        )
        account.ledger_account = number
        await session.flush()
        return AccountMappingRead(
            bank_account_id=account.id, ledger_account=number, ledger_account_name=ledger_account_name(number)
        )

    async def _check_mapping(
        self,
        repo: BankAccountRepository,
        principal: Principal,
        value: str,
        account_id: uuid.UUID | None,
        loc: list[str | int],
    ) -> str:
        number = check_ledger_account(value, loc)
        other = await repo.find_by_ledger_account(principal, number, exclude=account_id)
        if other is not None:
            raise LedgerAccountInUse(
                f"ledger account {number} is already mapped to another bank account",
                extra={"bank_account_id": str(other.id)},
            )
        return number

    async def _get(self, session: AsyncSession, principal: Principal, account_id: uuid.UUID) -> BankAccount:
        account = await BankAccountRepository(session).get_scoped(principal, account_id)
        if account is None:
            raise BankAccountNotFound()
        return account


bank_accounts = BankAccountService()
