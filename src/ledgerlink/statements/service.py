"""Statement imports (preview, then commit, deduplicated against the held rows) and the balance check.

Services only flush; the request (or the sync's unit of work) commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.auth.principal import Principal
from ledgerlink.clock import today_stockholm
from ledgerlink.config import Settings
from ledgerlink.db.session import session_scope
from ledgerlink.errors import NotFound
from ledgerlink.events.service import emit
from ledgerlink.inbox.repository import TodoRepository
from ledgerlink.models.bank import BankAccount, ImportedTransaction
from ledgerlink.models.inbox import TodoType
from ledgerlink.models.statements import BankReconciliation, StatementImport, StatementImportRow
from ledgerlink.money import round_to_ore
from ledgerlink.runtime import ServiceEnv
from ledgerlink.schema_types import read_model
from ledgerlink.statements import balance as balance_check
from ledgerlink.statements.dedup import HeldRow, Match, classify
from ledgerlink.statements.errors import StatementAccountMismatch, StatementUnreadable
from ledgerlink.statements.health import stalled
from ledgerlink.statements.model import ParsedStatement, StatementFormat, StatementRow
from ledgerlink.statements.parse import parse_statement
from ledgerlink.statements.repository import (
    STATEMENT_IDENTITY_PREFIX,
    AdoptionRepository,
    BalanceRepository,
    HealthRepository,
    StatementRepository,
    lock_account,
)
from ledgerlink.statements.schemas import (
    BankBalanceRead,
    CommittedCounts,
    ReconciliationRead,
    StatementCommitRead,
    StatementCounts,
    StatementImportRead,
    StatementPeriod,
    StatementRowRead,
)

BALANCE_GAP_TODO = TodoType.balance_gap
BALANCE_GAP_EVENT = "bank_account.balance_gap"


@dataclass(frozen=True, slots=True)
class _Written:
    booking_date: dt.date
    identity: str


class BankAccountNotFound(NotFound):
    code = "bank_account_not_found"


class StatementImportNotFound(NotFound):
    code = "statement_import_not_found"


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(Decimal(value), "f")


def _held(rows: Sequence[ImportedTransaction]) -> list[HeldRow]:
    return [
        HeldRow(
            id=r.id,
            provider_id=r.provider_id,
            booking_date=r.booking_date,
            amount=Decimal(r.amount),
            text=" ".join(t for t in (r.counterparty, r.description, r.reference) if t),
            balance_after=balance_check.balance_after_of(r.raw),
        )
        for r in rows
    ]


async def _classify(
    session: AsyncSession, account_id: uuid.UUID, rows: Sequence[StatementRow], tolerance: int
) -> list[Match]:
    if not rows:
        return []
    low = min(r.booking_date for r in rows) - dt.timedelta(days=tolerance)
    high = max(r.booking_date for r in rows) + dt.timedelta(days=tolerance)
    repo = StatementRepository(session)
    held = {r.id: r for r in await repo.held_rows(account_id, low, high)}
    refs = sorted({r.bank_ref for r in rows if r.bank_ref})
    held.update({r.id: r for r in await repo.held_refs(account_id, refs)})
    return classify(rows, _held(list(held.values())), tolerance_days=tolerance)


def _counts(verdicts: Sequence[str]) -> dict[str, int]:
    return {
        "rows": len(verdicts),
        "new": sum(1 for v in verdicts if v == "new"),
        "duplicate": sum(1 for v in verdicts if v == "duplicate"),
        "conflicting": sum(1 for v in verdicts if v == "conflicting"),
    }


def _row_read(row: StatementImportRow) -> StatementRowRead:
    amount = format(Decimal(row.amount), "f")
    return read_model(StatementRowRead, row, amount=amount, balance_after=_money(row.balance_after))


def import_read(
    imp: StatementImport, rows: Sequence[StatementImportRow] | None = None
) -> StatementImportRead:
    return read_model(
        StatementImportRead,
        imp,
        bank_account_id=imp.account_id,
        file_name=imp.filename,
        period=StatementPeriod(from_=imp.period_from, to=imp.period_to),
        counts=StatementCounts(**imp.counts),
        rows=[_row_read(r) for r in rows] if rows is not None else None,
    )


def _check_account(account: BankAccount, parsed: ParsedStatement) -> None:
    wrong = {r.currency for r in parsed.rows if r.booked} - {account.currency.upper()}
    if wrong:
        raise StatementAccountMismatch(
            f"the statement is in {', '.join(sorted(wrong))}, the account in {account.currency}",
            loc=["body", "file"],
        )
    if parsed.iban and account.iban and parsed.iban.replace(" ", "") != account.iban.replace(" ", ""):
        raise StatementAccountMismatch(
            f"the statement is of account {parsed.iban}, not of this account", loc=["body", "file"]
        )


async def create_import(
    session: AsyncSession,
    principal: Principal,
    account_id: uuid.UUID,
    *,
    content: bytes,
    file_name: str | None,
    fmt: StatementFormat | None,
    settings: Settings,
    at: dt.datetime,
) -> StatementImportRead:
    """Read the file and classify each booked row against the account's rows; write only the preview."""
    repo = StatementRepository(session)
    account = await repo.account(principal, account_id)
    if account is None:
        raise BankAccountNotFound("no such bank account")
    if not content.strip():
        raise StatementUnreadable("the file is empty", loc=["body", "file"])
    parsed = parse_statement(content, fmt)
    _check_account(account, parsed)
    rows = [r for r in parsed.rows if r.booked]  # a pending row is the feed's until the bank books it
    rows = [_rounded(r) for r in rows]
    matches = await _classify(session, account.id, rows, settings.sync.statement_match_days)
    start, end = parsed.period
    imp = StatementImport(
        id=uuid.uuid4(),
        company_id=account.company_id,
        account_id=account.id,
        format=parsed.format,
        status="preview",
        filename=(file_name or None) and file_name[:255],
        sha256=hashlib.sha256(content).hexdigest(),
        period_from=start,
        period_to=end,
        opening_amount=parsed.opening.amount if parsed.opening else None,
        opening_date=parsed.opening.as_of if parsed.opening else None,
        closing_amount=parsed.closing.amount if parsed.closing else None,
        closing_date=parsed.closing.as_of if parsed.closing else None,
        counts=_counts([m.verdict for m in matches]),
        created_at=at,
        modified_at=at,
    )
    session.add(imp)
    await session.flush()
    stored = [
        _stored_row(imp.id, i, row, match) for i, (row, match) in enumerate(zip(rows, matches, strict=True))
    ]
    await repo.replace_rows(imp.id, stored)
    return import_read(imp, stored)


def _rounded(row: StatementRow) -> StatementRow:
    after = round_to_ore(row.balance_after) if row.balance_after is not None else None
    return replace(row, amount=round_to_ore(row.amount), balance_after=after)


def _stored_row(import_id: uuid.UUID, position: int, row: StatementRow, match: Match) -> StatementImportRow:
    return StatementImportRow(
        id=uuid.uuid4(),
        import_id=import_id,
        position=position,
        line=row.line,
        booking_date=row.booking_date,
        value_date=row.value_date,
        amount=row.amount,
        currency=row.currency,
        bank_ref=(row.bank_ref or None) and row.bank_ref[:200],
        text=row.text,
        counterparty=row.counterparty,
        reference=(row.reference or None) and row.reference[:140],
        balance_after=row.balance_after,
        verdict=match.verdict,
        transaction_id=match.transaction_id,
    )


def _as_statement_row(row: StatementImportRow) -> StatementRow:
    return StatementRow(
        booking_date=row.booking_date,
        value_date=row.value_date,
        amount=Decimal(row.amount),
        currency=row.currency,
        bank_ref=row.bank_ref,
        text=row.text,
        counterparty=row.counterparty,
        reference=row.reference,
        balance_after=Decimal(row.balance_after) if row.balance_after is not None else None,
        line=row.line,
    )


async def get_import(
    session: AsyncSession,
    principal: Principal,
    account_id: uuid.UUID,
    import_id: uuid.UUID,
    *,
    with_rows: bool,
) -> StatementImportRead:
    repo = StatementRepository(session)
    imp = await repo.get_import(principal, account_id, import_id)
    if imp is None:
        raise StatementImportNotFound("no such statement import of this bank account")
    return import_read(imp, await repo.rows(imp.id) if with_rows else None)


async def commit_import(
    session: AsyncSession,
    principal: Principal,
    account_id: uuid.UUID,
    import_id: uuid.UUID,
    *,
    settings: Settings,
    at: dt.datetime,
) -> StatementCommitRead:
    """Insert the rows the account still lacks. The verdicts are taken again under the account's lock,
    so a second commit (of this or an identical file) inserts nothing the first one did. A committed
    import answers its result again."""
    repo = StatementRepository(session)
    account = await repo.account_for_update(principal, account_id)
    if account is None:
        raise BankAccountNotFound("no such bank account")
    imp = await repo.get_import(principal, account_id, import_id, for_update=True)
    if imp is None:
        raise StatementImportNotFound("no such statement import of this bank account")
    if imp.status == "committed":
        return StatementCommitRead(
            id=imp.id, status="committed", counts=CommittedCounts(inserted=imp.inserted or 0)
        )
    stored = list(await repo.rows(imp.id))
    matches = await _classify(
        session, account.id, [_as_statement_row(r) for r in stored], settings.sync.statement_match_days
    )
    inserts: list[dict[str, Any]] = []
    for row, match in zip(stored, matches, strict=True):
        row.verdict, row.transaction_id = match.verdict, match.transaction_id
        if match.verdict != "new":
            continue
        tx_id = uuid.uuid4()
        row.transaction_id = tx_id
        raw: dict[str, Any] = {"source": "statement", "import_id": str(imp.id), "line": row.line}
        if row.balance_after is not None:
            raw["balance_after"] = format(Decimal(row.balance_after), "f")
        inserts.append(
            {
                "id": tx_id,
                "company_id": account.company_id,
                "account_id": account.id,
                "identity": f"{STATEMENT_IDENTITY_PREFIX}{tx_id.hex}",
                "provider_id": row.bank_ref,
                "booking_status": "booked",
                "booking_date": row.booking_date,
                "value_date": row.value_date,
                "amount": row.amount,
                "currency": row.currency,
                "counterparty": row.counterparty,
                "description": row.text,
                "reference": row.reference,
                "raw": raw,
                "first_seen_at": at,
                "last_seen_at": at,
            }
        )
    if inserts:
        await clear_balance_checkpoint(
            session,
            account.id,
            [_Written(i["booking_date"], i["identity"]) for i in inserts],
        )
    await repo.insert_transactions(inserts)
    imp.status, imp.committed_at, imp.inserted = "committed", at, len(inserts)
    imp.counts = _counts([m.verdict for m in matches])
    imp.modified_at = at
    if imp.closing_amount is not None and imp.closing_date is not None:
        await BalanceRepository(session).record(
            account.company_id,
            account.id,
            as_of=imp.closing_date,
            amount=Decimal(imp.closing_amount),
            currency=account.currency,
            source="statement",
            at=at,
        )
    await session.flush()
    await reconcile(session, account, at=at)
    return StatementCommitRead(id=imp.id, status="committed", counts=CommittedCounts(inserted=len(inserts)))


# --------------------------------------------------------------------------- the balance check


async def record_bank_balance(
    session: AsyncSession,
    account: BankAccount,
    *,
    amount: Decimal,
    currency: str,
    as_of: dt.date,
    at: dt.datetime,
    writes_from: dt.date | None = None,
) -> None:
    """What a sync calls with the balance it read (in its own unit of work, under the account's lock):
    record it, then check. ``writes_from``: the earliest day the account's next sync will write rows
    of, where the check keeps its checkpoint (see :func:`reconcile`)."""
    await BalanceRepository(session).record(
        account.company_id, account.id, as_of=as_of, amount=amount, currency=currency, source="sync", at=at
    )
    await reconcile(session, account, at=at, checkpoint_before=writes_from)


def _balances(snapshots: Sequence[Any]) -> list[tuple[dt.date, Decimal]]:
    """The check's balances: statements' closing balances, then the syncs' reads, each as recorded."""
    reads = [(s.as_of, Decimal(s.amount)) for s in snapshots if s.source == "sync"]
    statement_reads = [(s.as_of, Decimal(s.amount)) for s in snapshots if s.source != "sync"]
    return [*statement_reads, *reads]


async def _checked(
    repo: BalanceRepository, account: BankAccount
) -> tuple[balance_check.Check, balance_check.Checkpoint, Sequence[Any], list[tuple[dt.date, Decimal]]]:
    """The balance check, from the stored checkpoint when it holds (only the rows and balances dated
    from its day on are read), else over everything; with the checkpoint it started from and what it
    read (to carry the checkpoint forward)."""
    stored = await repo.checkpoint(account.id)
    cp = balance_check.Checkpoint.from_json(stored[1]) if stored is not None else None
    if cp is not None and stored is not None and cp.day == stored[0]:
        latest = await repo.latest(account.id)
        if latest is not None and latest.as_of >= cp.day:
            booked = await repo.booked(account.company_id, account.id, from_day=cp.day)
            balances = _balances(await repo.snapshots(account.id, from_day=cp.day))
            result = balance_check.check_from(cp, booked, balances, (latest.as_of, Decimal(latest.amount)))
            if result is not None:
                return result, cp, booked, balances
    booked = await repo.booked(account.company_id, account.id)
    balances = _balances(await repo.snapshots(account.id))
    return balance_check.check(booked, balances), balance_check.START, booked, balances


async def clear_balance_checkpoint(session: AsyncSession, account_id: uuid.UUID, rows: Sequence[Any]) -> None:
    """Before rows (``booking_date``, ``identity``) of the account are written: drop the balance check's
    checkpoint if they reach back to its day (or rewrite a row dated there), so the next check is full.
    Takes the account's lock, the one the check runs under."""
    if not rows:
        return
    repo = BalanceRepository(session)
    await lock_account(session, account_id)
    earliest = min(r.booking_date for r in rows)
    await repo.clear_checkpoint_for_rows(account_id, earliest, [r.identity for r in rows])


async def reconcile(
    session: AsyncSession,
    account: BankAccount,
    *,
    at: dt.datetime,
    checkpoint_before: dt.date | None = None,
) -> BankReconciliation:
    """Run the balance check, keep its result, and raise or resolve the ``balance_gap`` to-do.

    The result is always :func:`balance.check`'s over all the account's rows and balances. When the
    account has a checkpoint that still holds (every write of a row dated on or before its day, or of a
    balance dated on or before it, drops it), only what is dated from its day on is read. The new
    checkpoint covers the days before ``checkpoint_before`` minus one (the earliest day the next sync
    writes rows of; a row also tells the end of the day before its own); without it, none is kept and
    the next check reads everything."""
    repo = BalanceRepository(session)
    result, start, booked, balances = await _checked(repo, account)
    checkpoint = None
    if checkpoint_before is not None:
        day = checkpoint_before - dt.timedelta(days=1)  # a row dated D feeds the end of the day before D
        checkpoint = balance_check.advance(start, booked, balances, day)
        if checkpoint.day == balance_check.START.day:
            checkpoint = None
    previous = await repo.get(account.id)
    was_gap = previous is not None and previous.status == "gap"
    saved = await repo.save(
        {
            "account_id": account.id,
            "company_id": account.company_id,
            "status": result.status,
            "bank_amount": result.bank_amount,
            "bank_as_of": result.bank_as_of,
            "computed_amount": result.computed,
            "gap": result.gap,
            "gap_since": result.gap_since,
            "opening_amount": result.opening,
            "checked_at": at,
            "flagged": result.status == "gap",
            "checkpoint_day": checkpoint.day if checkpoint is not None else None,
            "checkpoint": checkpoint.to_json() if checkpoint is not None else None,
        }
    )
    todos = TodoRepository(session)
    subject = str(account.id)
    if result.status == "gap" and result.gap is not None:
        data = {
            "bank_account_id": subject,
            "amount": format(result.gap, "f"),
            "since": result.gap_since.isoformat() if result.gap_since else None,
        }
        opened = await todos.upsert_open(account.company_id, BALANCE_GAP_TODO, subject, data)
        changed = previous is None or previous.gap != result.gap or previous.gap_since != result.gap_since
        if opened or not was_gap or changed:
            await emit(session, account.company_id, BALANCE_GAP_EVENT, data, at=at)
    elif result.status == "ok":
        await todos.resolve(account.company_id, BALANCE_GAP_TODO, subject)
    return saved


def reconciliation_read(saved: BankReconciliation | None) -> ReconciliationRead:
    if saved is None:
        return ReconciliationRead()
    bank = None
    if saved.bank_amount is not None and saved.bank_as_of is not None:
        bank = BankBalanceRead(amount=format(Decimal(saved.bank_amount), "f"), as_of=saved.bank_as_of)
    return ReconciliationRead(
        status=saved.status,
        bank_balance=bank,
        computed_balance=_money(saved.computed_amount),
        gap=_money(saved.gap),
        gap_since=saved.gap_since,
    )


async def reconciliation_of(session: AsyncSession, account_id: uuid.UUID) -> ReconciliationRead:
    return reconciliation_read(await BalanceRepository(session).get(account_id))


async def reconciliations_of(
    session: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ReconciliationRead]:
    saved = await BalanceRepository(session).many(account_ids)
    return {i: reconciliation_read(saved.get(i)) for i in account_ids}


# --------------------------------------------------------------------------- one row, two sources

#: how far apart (days) a feed row and a statement row of the same amount and similar text may be
ADOPT_TOLERANCE_DAYS = 3


async def adopt_statement_rows(session: AsyncSession, account_id: uuid.UUID, rows: Sequence[Any]) -> int:
    """Before the feed writes ``rows`` (the sync's write rows: identity, provider_id, booking_status,
    booking_date, amount, counterparty, description, reference), give each row a statement brought in
    the feed's identity when it is the same row, so the feed's upsert updates it instead of adding a
    second one. Matched like a statement against held rows (bank id, then date and amount, then a
    tolerant date and text), as multisets. Returns how many statement rows were adopted."""
    booked = [r for r in rows if r.booking_status == "booked"]
    if not booked:
        return 0
    low = min(r.booking_date for r in booked) - dt.timedelta(days=ADOPT_TOLERANCE_DAYS)
    high = max(r.booking_date for r in booked) + dt.timedelta(days=ADOPT_TOLERANCE_DAYS)
    repo = AdoptionRepository(session)
    await lock_account(session, account_id)
    statement_rows = await repo.statement_rows(account_id, low, high)
    if not statement_rows:
        return 0
    held = await repo.existing_identities(account_id, [r.identity for r in booked])
    fresh = [r for r in booked if r.identity not in held]
    if not fresh:
        return 0
    as_rows = [
        StatementRow(
            booking_date=r.booking_date,
            amount=Decimal(r.amount),
            currency="",
            bank_ref=r.provider_id,
            text=r.description,
            counterparty=r.counterparty,
            reference=r.reference,
            balance_after=balance_check.balance_after_of(getattr(r, "raw", None)),
        )
        for r in fresh
    ]
    matches = classify(as_rows, _held(statement_rows), tolerance_days=ADOPT_TOLERANCE_DAYS)
    adopted = 0
    for row, match in zip(fresh, matches, strict=True):
        if match.verdict == "duplicate" and match.transaction_id is not None:
            await repo.rekey(match.transaction_id, row.identity)
            adopted += 1
    return adopted


# --------------------------------------------------------------------------- sync_stalled

SYNC_STALLED_TODO = TodoType.sync_stalled
STALLED_BATCH = 200


async def sweep_stalled(env: ServiceEnv) -> int:
    """Open ``sync_stalled`` for every active account quiet for longer than its history has ever been,
    resolve it for the others. Returns how many accounts are stalled."""
    today = today_stockholm(env.clock)
    after: uuid.UUID | None = None
    count = 0
    while True:
        async with session_scope(env.sessionmaker) as session:
            repo = HealthRepository(session)
            accounts = list(await repo.active_accounts(after, STALLED_BATCH))
            if not accounts:
                return count
            days = await repo.booking_days([a.id for a in accounts])
            todos = TodoRepository(session)
            for account in accounts:
                quiet = stalled(days[account.id], today)
                if quiet is None:
                    await todos.resolve(account.company_id, SYNC_STALLED_TODO, str(account.id))
                    continue
                count += 1
                data = {
                    "bank_account_id": str(account.id),
                    "last_row_date": quiet.last_row.isoformat(),
                    "days_without_rows": quiet.quiet_days,
                    "longest_quiet_days": quiet.longest_quiet_days,
                }
                await todos.upsert_open(account.company_id, SYNC_STALLED_TODO, str(account.id), data)
            after = accounts[-1].id
