"""Import jobs: a financial year from Fortnox (its SIE 4 export + open invoices at year end) or from an
uploaded SIE 4 file, into the closing's ledger tables.

The number of Fortnox calls does not depend on the size of the year's history: company information,
financial years, ONE SIE export carrying every voucher with its rows, and for each of 1510/2440 the
invoices open at the year end with their payments (``FortnoxClient.customer_open_items_at`` /
``supplier_open_items_at``: what those calls scale with is said there). Data is written set-based (batched INSERTs) under the new
import's id; the closing switches to it, and the previous import's data is removed, in the same
transaction, so a failed import leaves the closing as it was.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, BinaryIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink import sie
from ledgerlink.closing.errors import DataSourceMismatch, InvalidSieFile
from ledgerlink.closing.repository import ClosingRepository
from ledgerlink.closing.service.closings import PAYABLES, RECEIVABLES, get_closing
from ledgerlink.closing.service.recovery import claimed
from ledgerlink.config import Settings
from ledgerlink.db.base import utcnow
from ledgerlink.db.session import session_scope
from ledgerlink.errors import AppError
from ledgerlink.events.service import emit
from ledgerlink.fortnox import service as fortnox_service
from ledgerlink.fortnox.client import OpenItem
from ledgerlink.fortnox.errors import (
    FortnoxAuthError,
    FortnoxError,
    FortnoxRequestError,
    FortnoxTransientError,
)
from ledgerlink.logging import get_logger
from ledgerlink.models.closing import (
    Closing,
    ClosingAccount,
    ClosingImport,
    ClosingOpenItem,
    ClosingVoucher,
    ClosingVoucherRow,
    DataSource,
    JobStatus,
)
from ledgerlink.runtime import ServiceEnv
from ledgerlink.worker.enqueue import enqueue

log = get_logger(__name__)

FORTNOX_STEPS = ("company_information", "financial_year", "sie_export", "open_items", "writing")
SIE_STEPS = ("reading", "writing")
IMPORT_TASK = "closing.import"
IMPORT_COMPLETED = "fortnox.import.completed"
UPLOAD_PART_BYTES = 1 << 20
WRITE_BATCH_ROWS = 500
# What the ledger tables store: account numbers, series and voucher numbers (String(20)), amounts
# (NUMERIC(18, 2)) and quantities (NUMERIC(18, 4)) with room to sum them.
MAX_ID_LENGTH = 20
MAX_AMOUNT_DIGITS = 14
MAX_TOTAL = Decimal(10) ** 16


class ImportFailed(Exception):
    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.retryable = code, message, retryable


# -- starting ---------------------------------------------------------------------------------------


def _new_job(closing: Closing, source: DataSource, file_name: str | None = None) -> ClosingImport:
    steps = FORTNOX_STEPS if source == DataSource.fortnox else SIE_STEPS
    return ClosingImport(
        id=uuid.uuid4(),
        company_id=closing.company_id,
        closing_id=closing.id,
        source=source,
        status=JobStatus.queued,
        progress_done=0,
        progress_total=len(steps),
        progress_step="queued",
        file_name=file_name,
    )


def _enqueue(job: ClosingImport) -> None:
    enqueue(
        IMPORT_TASK,
        job_id=f"closing-import:{job.id}",
        company_id=str(job.company_id),
        import_id=str(job.id),
    )


async def start_fortnox_import(
    session: AsyncSession, company_id: uuid.UUID, closing_id: uuid.UUID
) -> ClosingImport:
    closing = await get_closing(session, company_id, closing_id)
    if closing.data_source != DataSource.fortnox:
        raise DataSourceMismatch(
            "this closing's data source is a SIE file: upload it to /imports/sie, or change the data source"
        )
    job = _new_job(closing, DataSource.fortnox)
    session.add(job)
    await session.flush()
    _enqueue(job)
    return job


@dataclass
class SieCheck:
    vouchers: int = 0
    transactions: int = 0
    years: list[sie.FinancialYear] = field(default_factory=list)


def sie_limits(settings: Settings) -> sie.SieLimits:
    """What one SIE file may hold (settings), and what the ledger tables can store."""
    limits = settings.limits
    return sie.SieLimits(
        max_accounts=limits.sie_max_accounts,
        max_records=limits.sie_max_records,
        max_rows_per_voucher=limits.sie_max_rows_per_voucher,
        max_field_length=limits.sie_max_field_length,
        max_id_length=MAX_ID_LENGTH,
        max_amount_digits=MAX_AMOUNT_DIGITS,
    )


def check_sie(source: bytes | BinaryIO, limits: sie.SieLimits | None = None) -> SieCheck:
    """Read the whole file once (streaming, vouchers not kept); :class:`sie.SieError` if unreadable.
    Blocking: call it in a thread."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    stream.seek(0)
    with sie.SieReader(stream, limits=limits) as reader:
        movement: dict[str, Decimal] = defaultdict(Decimal)
        for voucher in reader:
            for row in voucher.rows:
                movement[row.account] += row.amount
        unstorable = _unstorable_total(trial_balance_rows(reader.document, movement))
        if unstorable is not None:
            raise sie.SieError(unstorable)
        return SieCheck(
            vouchers=reader.diagnostics.voucher_count,
            transactions=reader.diagnostics.transaction_count,
            years=list(reader.document.financial_years),
        )


async def check_sie_upload(stream: BinaryIO, limits: sie.SieLimits) -> SieCheck:
    """The upload read once, in a thread (never on the event loop): 422 ``sie_invalid`` naming the line."""
    try:
        return await asyncio.to_thread(check_sie, stream, limits)
    except sie.SieError as exc:
        where = f"line {exc.line_number}: " if exc.line_number else ""
        raise InvalidSieFile(
            f"not a valid SIE file: {where}{exc.message}",
            loc=["body", "file"],
            extra={"line_number": exc.line_number},
        ) from None


async def start_sie_import(
    session: AsyncSession,
    company_id: uuid.UUID,
    closing_id: uuid.UUID,
    *,
    file_name: str | None,
    stream: BinaryIO,
    checked: SieCheck,
) -> ClosingImport:
    """Queue the import of an upload already read by :func:`check_sie_upload`; the file is stored in
    parts, so it is never in memory as a whole."""
    closing = await get_closing(session, company_id, closing_id)
    if closing.data_source != DataSource.sie:
        raise DataSourceMismatch(
            "this closing imports from Fortnox: change its data source to sie to upload a SIE file"
        )
    current = next((y for y in checked.years if y.index == 0), None)
    if current is not None and (current.start, current.end) != (
        closing.financial_year_start,
        closing.financial_year_end,
    ):
        raise InvalidSieFile(
            f"the file's financial year is {current.start} – {current.end}, the closing's is "
            f"{closing.financial_year_start} – {closing.financial_year_end}",
            loc=["body", "file"],
            code="sie_year_mismatch",
        )
    job = _new_job(closing, DataSource.sie, file_name=(file_name or "")[:255] or None)
    session.add(job)
    await session.flush()
    repo = ClosingRepository(session)
    stream.seek(0)
    part = 0
    while content := await asyncio.to_thread(stream.read, UPLOAD_PART_BYTES):
        await repo.add_upload_part(company_id, job.id, part, content)
        part += 1
    _enqueue(job)
    return job


# -- running ----------------------------------------------------------------------------------------


@dataclass
class ImportSource:
    content: bytes
    open_items: dict[str, list[OpenItem]] | None = None
    company_name: str | None = None
    org_number: str | None = None
    fortnox_year_id: int | None = None


Progress = Callable[[str], Awaitable[None]]


async def _run_import(ctx: ServiceEnv, company_id: uuid.UUID, import_id: uuid.UUID) -> None:
    sessionmaker = ctx.sessionmaker
    async with session_scope(sessionmaker) as session:
        repo = ClosingRepository(session)
        job, closing = await repo.open_job(ClosingImport, company_id, import_id)
        source, closing_id = job.source, closing.id
        year = (closing.financial_year_start, closing.financial_year_end)
        steps = FORTNOX_STEPS if source == DataSource.fortnox else SIE_STEPS
        await repo.update_job(
            ClosingImport, company_id, import_id, status=JobStatus.running, started_at=utcnow()
        )

    async def progress(step: str) -> None:
        async with session_scope(sessionmaker) as s:
            await ClosingRepository(s).update_job(
                ClosingImport, company_id, import_id, progress_step=step, progress_done=steps.index(step)
            )

    try:
        with tempfile.TemporaryFile() as spool:
            if source == DataSource.fortnox:
                data = await _fetch_from_fortnox(ctx, company_id, year, progress)
                await asyncio.to_thread(spool.write, data.content)
            else:
                await progress("reading")
                if not await _spool_upload(sessionmaker, company_id, import_id, spool):
                    raise ImportFailed("upload_missing", "the uploaded file is no longer available")
                data = ImportSource(content=b"")
            await progress("writing")
            await _write(ctx, company_id, closing_id, import_id, source, data, spool)
    except ImportFailed as exc:
        await _fail(sessionmaker, company_id, import_id, exc.code, exc.message, exc.retryable)
    except sie.SieError as exc:
        await _fail(sessionmaker, company_id, import_id, "sie_invalid", str(exc), False)
    except FortnoxAuthError:
        await _fail(
            sessionmaker,
            company_id,
            import_id,
            "fortnox_reauth_required",
            "Fortnox needs a new authorization; connect Fortnox again",
            False,
        )
    except FortnoxRequestError as exc:
        await _fail(sessionmaker, company_id, import_id, "fortnox_error", exc.message, False)
    except FortnoxTransientError as exc:
        await _fail(sessionmaker, company_id, import_id, "fortnox_unavailable", exc.message, True)
    except FortnoxError as exc:
        await _fail(sessionmaker, company_id, import_id, "fortnox_error", exc.message, True)
    except AppError as exc:  # not connected / expired / not configured (from open_client)
        await _fail(sessionmaker, company_id, import_id, exc.instance_code, exc.detail, False)
    except Exception:
        log.exception("closing.import.crashed", import_id=str(import_id))
        await _fail(sessionmaker, company_id, import_id, "internal_error", "the import failed", True)


#: The import job: :func:`_run_import` once it has claimed its row.
run_import = claimed(ClosingImport, _run_import)


async def _spool_upload(
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    import_id: uuid.UUID,
    spool: BinaryIO,
) -> bool:
    """The uploaded parts, one at a time, into ``spool`` (a temporary file); False when there are none."""
    part = 0
    while True:
        async with session_scope(sessionmaker) as session:
            content = await ClosingRepository(session).upload_part(company_id, import_id, part)
        if content is None:
            return part > 0
        await asyncio.to_thread(spool.write, content)
        part += 1


class _Batches:
    """The file's vouchers in batches of about :data:`WRITE_BATCH_ROWS` rows, read in a worker thread
    (the parser never runs on the event loop) and never more than a batch in memory. Batches are small:
    binding a batch's parameters is work on the event loop."""

    def __init__(self, reader: sie.SieReader) -> None:
        self._vouchers = iter(reader)

    def next(self) -> list[sie.Voucher]:
        batch: list[sie.Voucher] = []
        rows = 0
        for voucher in self._vouchers:
            batch.append(voucher)
            rows += len(voucher.rows) + 1
            if rows >= WRITE_BATCH_ROWS:
                break
        return batch


async def _fail(
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    import_id: uuid.UUID,
    code: str,
    message: str,
    retryable: bool,
) -> None:
    log.info("closing.import.failed", import_id=str(import_id), error_code=code)
    async with session_scope(sessionmaker) as session:
        repo = ClosingRepository(session)
        await repo.fail_job(
            ClosingImport, company_id, import_id, JobStatus.failed, (code, message, retryable)
        )
        await repo.delete_upload(company_id, import_id)
        await repo.delete_import_data(company_id, [import_id])  # batches written before the failure


async def _fetch_from_fortnox(
    ctx: ServiceEnv, company_id: uuid.UUID, year: tuple[dt.date, dt.date], progress: Progress
) -> ImportSource:
    start, end = year
    async with fortnox_service.client_for(ctx, company_id) as client:
        await progress("company_information")
        info = await client.company_information()
        await progress("financial_year")
        years = await client.financial_years(date=start)
        match = next((y for y in years if (y.from_date, y.to_date) == (start, end)), None)
        if match is None:
            found = ", ".join(f"{y.from_date} – {y.to_date}" for y in years) or "none"
            raise ImportFailed(
                "financial_year_not_found",
                f"Fortnox has no financial year {start} – {end} (years containing {start}: {found}); "
                "create it in Fortnox or correct the closing's dates",
            )
        await progress("sie_export")
        content = await client.sie_export(match.id)
        await progress("open_items")
        customer = await client.customer_open_items_at(end)
        supplier = await client.supplier_open_items_at(end)
    return ImportSource(
        content=content,
        open_items={RECEIVABLES: customer, PAYABLES: supplier},
        company_name=info.company_name,
        org_number=info.organization_number,
        fortnox_year_id=match.id,
    )


async def _write(
    ctx: ServiceEnv,
    company_id: uuid.UUID,
    closing_id: uuid.UUID,
    import_id: uuid.UUID,
    source: DataSource,
    data: ImportSource,
    spool: BinaryIO,
) -> None:
    """The vouchers in batches, each committed on its own (in the embedded default other requests write
    between them; the import's rows are invisible until the switch, and a failed import's are deleted);
    then one transaction: the accounts, the switch of the closing, the job's success and the event."""
    sessionmaker = ctx.sessionmaker
    async with session_scope(sessionmaker) as session:  # leftovers of an interrupted attempt
        await ClosingRepository(session).delete_import_data(company_id, [import_id])
    movement: dict[str, Decimal] = defaultdict(Decimal)
    seq = 0
    spool.seek(0)
    with sie.SieReader(spool, limits=sie_limits(ctx.settings)) as reader:
        batches = _Batches(reader)
        while batch := await asyncio.to_thread(batches.next):
            vouchers: list[dict[str, Any]] = []
            rows: list[dict[str, Any]] = []
            for voucher in batch:
                seq += 1
                voucher_id = uuid.uuid4()
                vouchers.append(
                    {
                        "id": voucher_id,
                        "import_id": import_id,
                        "company_id": company_id,
                        "seq": seq,
                        "series": voucher.series,
                        "number": voucher.number,
                        "date": voucher.date,
                        "text": voucher.text,
                        "registration_date": voucher.registration_date,
                    }
                )
                for line_no, row in enumerate(voucher.rows, start=1):
                    movement[row.account] += row.amount
                    rows.append(
                        {
                            "voucher_id": voucher_id,
                            "line_no": line_no,
                            "import_id": import_id,
                            "company_id": company_id,
                            "account": row.account,
                            "amount": row.amount,
                            "date": row.date,
                            "text": row.text,
                            "quantity": row.quantity,
                        }
                    )
            async with session_scope(sessionmaker) as session:
                repo = ClosingRepository(session)
                await repo.insert_many(ClosingVoucher, vouchers)
                await repo.insert_many(ClosingVoucherRow, rows)
        document = reader.document
        diagnostics = reader.diagnostics

    accounts = trial_balance_rows(document, movement)
    unstorable = _unstorable_total(accounts)
    if unstorable is not None:
        raise ImportFailed("sie_invalid", unstorable)
    async with session_scope(sessionmaker) as session:
        repo = ClosingRepository(session)
        await repo.insert_many(
            ClosingAccount, [{**a, "import_id": import_id, "company_id": company_id} for a in accounts]
        )
        items = [
            {
                "import_id": import_id,
                "company_id": company_id,
                "account": account,
                "document_number": item.document_number,
                "counterparty": item.counterparty,
                "invoice_date": item.invoice_date,
                "due_date": item.due_date,
                "open_amount": item.open_amount,
            }
            for account, found in (data.open_items or {}).items()
            for item in found
        ]
        await repo.insert_many(ClosingOpenItem, items)

        counts = {
            "accounts": len(accounts),
            "vouchers": diagnostics.voucher_count,
            "transactions": diagnostics.transaction_count,
            "unbalanced_vouchers": len(diagnostics.unbalanced_vouchers),
            "open_customer_invoices": len((data.open_items or {}).get(RECEIVABLES, [])),
            "open_supplier_invoices": len((data.open_items or {}).get(PAYABLES, [])),
        }
        closing = await repo.lock_closing(company_id, closing_id)
        if closing is None:
            raise ImportFailed("closing_not_found", "the closing was deleted")
        previous = await repo.other_import_ids(company_id, closing_id, keep=import_id)
        now = utcnow()
        closing.current_import_id = import_id
        closing.imported_at = now
        closing.company_name = data.company_name or document.company_name or closing.company_name
        closing.org_number = data.org_number or document.org_number or closing.org_number
        if data.fortnox_year_id is not None:
            closing.fortnox_financial_year_id = data.fortnox_year_id
        await repo.delete_import_data(company_id, previous)
        await repo.delete_upload(company_id, import_id)
        await repo.update_job(
            ClosingImport,
            company_id,
            import_id,
            status=JobStatus.succeeded,
            progress_done=len(FORTNOX_STEPS if source == DataSource.fortnox else SIE_STEPS),
            progress_step="done",
            counts=counts,
            finished_at=now,
        )
        if source == DataSource.fortnox:
            await fortnox_service.renew(session, company_id, settings=ctx.settings, now=now)
            await emit(
                session,
                company_id,
                IMPORT_COMPLETED,
                {"closing_id": str(closing_id), "import_id": str(import_id), "counts": counts},
            )
        await session.flush()
    log.info("closing.import.succeeded", import_id=str(import_id), **counts)


def _unstorable_total(accounts: list[dict[str, Any]]) -> str | None:
    """What no ledger column can hold: an account whose balances add up beyond NUMERIC(18, 2)."""
    for account in accounts:
        for name in ("opening_balance", "closing_balance", "period_change"):
            if abs(account[name]) >= MAX_TOTAL:
                return f"account {account['number']}: its amounts add up beyond {MAX_TOTAL:,} ({name})"
    return None


def trial_balance_rows(document: sie.SieDocument, movement: dict[str, Decimal]) -> list[dict[str, Any]]:
    """Every account of the chart (and any account used without a #KONTO) with its year-0 figures.

    Opening = #IB 0; closing = #UB 0 for balance-sheet accounts, #RES 0 for result accounts, and
    opening + the vouchers' movement when the file has neither (SIE 4I).
    """
    opening: dict[str, Decimal] = defaultdict(Decimal)
    closing: dict[str, Decimal] = {}
    for balance in document.opening_balances:
        if balance.year == 0:
            opening[balance.account] += balance.amount
    for balance in [*document.closing_balances, *document.results]:
        if balance.year == 0:
            closing[balance.account] = closing.get(balance.account, Decimal(0)) + balance.amount
    numbers = set(document.accounts) | set(opening) | set(closing) | set(movement)
    result = []
    for number in sorted(numbers):
        account = document.accounts.get(number)
        ib = opening.get(number, Decimal(0))
        ub = closing[number] if number in closing else ib + movement.get(number, Decimal(0))
        result.append(
            {
                "number": number,
                "name": (account.name if account else "")[:200],
                "type": ((account.type or "")[:1] or None) if account else None,
                "opening_balance": ib,
                "closing_balance": ub,
                "period_change": ub - ib,
            }
        )
    return result
