"""Closings, their job resources and the imported data read back (trial balance, vouchers, specs)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.closing.errors import ClosingNotFound, InvalidFinancialYear, NothingImported
from ledgerlink.closing.repository import ClosingRepository
from ledgerlink.closing.schemas import (
    ClosingCreate,
    ClosingOut,
    ClosingUpdate,
    ImportOut,
    JobError,
    JobProgress,
    OpenItemOut,
    SpecificationOut,
    TrialBalanceRow,
    VoucherOut,
    VoucherRowOut,
)
from ledgerlink.models.closing import Closing, ClosingImport, JobColumns
from ledgerlink.pagination import Instant, Keyset, Page
from ledgerlink.schema_types import read_model

CLOSINGS_KEYSET = Keyset("closings", Instant, uuid.UUID)
ACCOUNTS_KEYSET = Keyset("closing-accounts", str)
VOUCHERS_KEYSET = Keyset("closing-vouchers", int)

ZERO = Decimal("0.00")
MAX_YEAR_MONTHS = 18
RECEIVABLES = "1510"
PAYABLES = "2440"
SPEC_TITLES = {RECEIVABLES: "Kundfordringar", PAYABLES: "Leverantörsskulder"}


def closing_out(closing: Closing) -> ClosingOut:
    return ClosingOut.model_validate(closing, from_attributes=True)


def job_error(code: str | None, message: str | None, retryable: bool | None) -> JobError | None:
    """A job's (or an export item's) ``error``, or None when it has no error code."""
    if not code:
        return None
    return JobError(code=code, message=message or "", retryable=bool(retryable))


def job_state(job: JobColumns) -> dict[str, Any]:
    """An import's or an export's ``progress`` and ``error`` as its answer shows them."""
    return {
        "progress": JobProgress(done=job.progress_done, total=job.progress_total, step=job.progress_step),
        "error": job_error(job.error_code, job.error_message, job.error_retryable),
    }


def import_out(job: ClosingImport) -> ImportOut:
    return read_model(ImportOut, job, **job_state(job))


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    if year > dt.MAXYEAR:
        return dt.date.max
    for candidate in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, candidate)
        except ValueError:
            continue
    return dt.date(year, month, 28)  # every month has a 28th


def validate_year(start: dt.date, end: dt.date) -> None:
    """A financial year starts before it ends and lasts at most 18 months (ÅRL 3 kap. 1 §)."""
    if start >= end:
        raise InvalidFinancialYear(
            "financial_year_start must be before financial_year_end", loc=["body", "financial_year_end"]
        )
    if end >= _add_months(start, MAX_YEAR_MONTHS):
        raise InvalidFinancialYear(
            f"a financial year lasts at most {MAX_YEAR_MONTHS} months", loc=["body", "financial_year_end"]
        )


async def create_closing(session: AsyncSession, company_id: uuid.UUID, body: ClosingCreate) -> Closing:
    validate_year(body.financial_year_start, body.financial_year_end)
    closing = Closing(id=uuid.uuid4(), company_id=company_id, **body.model_dump())  # the year and its source
    return await ClosingRepository(session).add(closing)


async def get_closing(session: AsyncSession, company_id: uuid.UUID, closing_id: uuid.UUID) -> Closing:
    closing = await ClosingRepository(session).get_closing(company_id, closing_id)
    if closing is None:
        raise ClosingNotFound("closing not found")
    return closing


async def update_closing(
    session: AsyncSession, company_id: uuid.UUID, closing_id: uuid.UUID, body: ClosingUpdate
) -> Closing:
    closing = await get_closing(session, company_id, closing_id)
    if body.data_source is not None:
        closing.data_source = body.data_source
    await session.flush()
    return closing


async def list_closings(
    session: AsyncSession, company_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[ClosingOut]:
    after = CLOSINGS_KEYSET.decode(cursor)
    found = await ClosingRepository(session).list_closings(company_id, after, limit + 1)
    rows, next_cursor = CLOSINGS_KEYSET.cut(found, limit, lambda c: (c.created_at, c.id))
    return Page(items=[closing_out(c) for c in rows], next_cursor=next_cursor)


def _current_import(closing: Closing) -> uuid.UUID:
    if closing.current_import_id is None:
        raise NothingImported("nothing has been imported into this closing yet")
    return closing.current_import_id


async def trial_balance(
    session: AsyncSession, company_id: uuid.UUID, closing_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[TrialBalanceRow]:
    closing = await get_closing(session, company_id, closing_id)
    import_id = _current_import(closing)
    values = ACCOUNTS_KEYSET.decode(cursor)
    after = values[0] if values else None
    found = await ClosingRepository(session).trial_balance(company_id, import_id, after, limit + 1)
    rows, next_cursor = ACCOUNTS_KEYSET.cut(found, limit, lambda a: (a.number,))
    return Page(items=[read_model(TrialBalanceRow, a) for a in rows], next_cursor=next_cursor)


async def list_vouchers(
    session: AsyncSession,
    company_id: uuid.UUID,
    closing_id: uuid.UUID,
    account: str | None,
    limit: int,
    cursor: str | None,
) -> Page[VoucherOut]:
    closing = await get_closing(session, company_id, closing_id)
    import_id = _current_import(closing)
    values = VOUCHERS_KEYSET.decode(cursor)
    after = values[0] if values else None
    repo = ClosingRepository(session)
    vouchers = await repo.vouchers(company_id, import_id, account=account, after_seq=after, limit=limit + 1)
    page, next_cursor = VOUCHERS_KEYSET.cut(vouchers, limit, lambda v: (v.seq,))
    rows_by_voucher: dict[uuid.UUID, list[VoucherRowOut]] = {v.id: [] for v in page}
    for row in await repo.voucher_rows(company_id, [v.id for v in page]):
        rows_by_voucher[row.voucher_id].append(
            VoucherRowOut(
                account=row.account,
                amount=row.amount,
                debit=row.amount if row.amount > 0 else ZERO,
                credit=-row.amount if row.amount < 0 else ZERO,
                date=row.date,
                text=row.text,
            )
        )
    items = [read_model(VoucherOut, v, rows=rows_by_voucher[v.id]) for v in page]
    return Page(items=items, next_cursor=next_cursor)


async def specifications(
    session: AsyncSession, company_id: uuid.UUID, closing_id: uuid.UUID
) -> list[SpecificationOut]:
    """1510 (open customer invoices) and 2440 (open supplier invoices) at the year end.

    Both are presented in the account's natural sign: 1510 as its SIE balance (debit positive), 2440
    negated (a credit balance shown positive, like the supplier invoices' open amounts).
    """
    closing = await get_closing(session, company_id, closing_id)
    import_id = _current_import(closing)
    repo = ClosingRepository(session)
    accounts = await repo.accounts_by_number(company_id, import_id, [RECEIVABLES, PAYABLES])
    result = []
    for number, sign in ((RECEIVABLES, 1), (PAYABLES, -1)):
        account = accounts.get(number)
        ledger = (account.closing_balance if account else ZERO) * sign
        items = [read_model(OpenItemOut, i) for i in await repo.open_items(company_id, import_id, number)]
        items_total = sum((i.open_amount for i in items), ZERO)
        result.append(
            SpecificationOut(
                account=number,
                title=(account.name if account and account.name else SPEC_TITLES[number]),
                ledger_balance=ledger + ZERO,
                items_total=items_total,
                difference=ledger - items_total,
                items=items,
            )
        )
    return result
