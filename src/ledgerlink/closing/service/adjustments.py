"""Closing adjustments ("bokföringsorder"): validation, storage and the SIE 4I file."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink import sie
from ledgerlink.closing.errors import AdjustmentExported, AdjustmentNotFound, InvalidAdjustment
from ledgerlink.closing.repository import ClosingRepository
from ledgerlink.closing.schemas import (
    AdjustmentCreate,
    AdjustmentOut,
    AdjustmentRowOut,
    FortnoxVoucherRef,
)
from ledgerlink.closing.service.closings import get_closing
from ledgerlink.models.closing import Adjustment, AdjustmentRow, Closing, ExportState
from ledgerlink.money import round_to_ore
from ledgerlink.pagination import Instant, Keyset, Page

ADJUSTMENTS_KEYSET = Keyset("closing-adjustments", Instant, uuid.UUID)

ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal("1e15")
EXPORTED_STATES = frozenset({ExportState.posted, ExportState.sending, ExportState.uncertain})


@dataclass(frozen=True)
class Line:
    account: str
    debit: Decimal
    credit: Decimal
    description: str | None = None


@dataclass(frozen=True)
class AdjustmentProblem:
    """Why an adjustment cannot be booked, and where (``loc``, as in a 422 problem)."""

    message: str
    loc: list[str | int]


def check_adjustment(
    day: dt.date,
    lines: Sequence[Line],
    *,
    year_start: dt.date,
    year_end: dt.date,
    chart: set[str] | None,
) -> AdjustmentProblem | None:
    """The first reason an adjustment cannot be booked, or None.

    ``lines`` carry quantised, non-negative amounts (0 for "not given"). ``chart`` None means no
    import yet, so accounts are not checked against it.
    """
    if not year_start <= day <= year_end:
        return AdjustmentProblem(
            f"date {day} is outside the financial year {year_start} – {year_end}", ["body", "date"]
        )
    if len(lines) < 2:
        return AdjustmentProblem("an adjustment needs at least two rows", ["body", "rows"])
    for i, line in enumerate(lines):
        if line.debit < 0 or line.credit < 0:
            return AdjustmentProblem(f"row {i + 1}: amounts must not be negative", ["body", "rows", i])
        if line.debit and line.credit:
            return AdjustmentProblem(
                f"row {i + 1}: give either debit or credit, not both", ["body", "rows", i]
            )
        if not line.debit and not line.credit:
            return AdjustmentProblem(f"row {i + 1}: give a debit or a credit amount", ["body", "rows", i])
        if chart is not None and line.account not in chart:
            return AdjustmentProblem(
                f"row {i + 1}: account {line.account} is not in the imported chart of accounts",
                ["body", "rows", i, "account"],
            )
    debit = sum((line.debit for line in lines), ZERO)
    credit = sum((line.credit for line in lines), ZERO)
    if debit != credit:
        return AdjustmentProblem(
            f"the rows do not balance: debit {debit} ≠ credit {credit} (difference {debit - credit})",
            ["body", "rows"],
        )
    return None


def _amount(value: Decimal | None, loc: list[str | int]) -> Decimal:
    if value is None:
        return ZERO
    if not value.is_finite():
        raise InvalidAdjustment("amounts must be finite numbers", loc=loc)
    if abs(value) >= MAX_AMOUNT:
        raise InvalidAdjustment("amount is too large", loc=loc)
    return round_to_ore(value)


async def chart_of(session: AsyncSession, closing: Closing) -> set[str] | None:
    if closing.current_import_id is None:
        return None
    return await ClosingRepository(session).account_numbers(closing.company_id, closing.current_import_id)


async def create_adjustment(
    session: AsyncSession, company_id: uuid.UUID, closing_id: uuid.UUID, body: AdjustmentCreate
) -> AdjustmentOut:
    closing = await get_closing(session, company_id, closing_id)
    lines = [
        Line(
            account=r.account.strip(),
            debit=_amount(r.debit, ["body", "rows", i, "debit"]),
            credit=_amount(r.credit, ["body", "rows", i, "credit"]),
            description=r.description,
        )
        for i, r in enumerate(body.rows)
    ]
    problem = check_adjustment(
        body.date,
        lines,
        year_start=closing.financial_year_start,
        year_end=closing.financial_year_end,
        chart=await chart_of(session, closing),
    )
    if problem is not None:
        raise InvalidAdjustment(problem.message, loc=problem.loc)
    repo = ClosingRepository(session)
    adjustment = Adjustment(
        id=uuid.uuid4(),
        company_id=company_id,
        closing_id=closing.id,
        date=body.date,
        description=body.description.strip(),
        export_state=ExportState.none,
    )
    await repo.add(adjustment)  # type: ignore[arg-type]
    rows = [
        {
            "adjustment_id": adjustment.id,
            "line_no": i,
            "account": line.account,
            "debit": line.debit,
            "credit": line.credit,
            "description": line.description,
        }
        for i, line in enumerate(lines, start=1)
    ]
    await repo.insert_many(AdjustmentRow, rows)
    stored = (await repo.adjustment_rows(company_id, [adjustment.id]))[adjustment.id]
    return adjustment_out(adjustment, stored)


def adjustment_out(adjustment: Adjustment, rows: Sequence[AdjustmentRow]) -> AdjustmentOut:
    voucher = None
    if adjustment.fortnox_number is not None and adjustment.fortnox_series and adjustment.fortnox_year:
        voucher = FortnoxVoucherRef(
            series=adjustment.fortnox_series, number=adjustment.fortnox_number, year=adjustment.fortnox_year
        )
    return AdjustmentOut(
        id=adjustment.id,
        closing_id=adjustment.closing_id,
        date=adjustment.date,
        description=adjustment.description,
        rows=[
            AdjustmentRowOut(account=r.account, debit=r.debit, credit=r.credit, description=r.description)
            for r in rows
        ],
        total=sum((r.debit for r in rows), ZERO),
        export_status=adjustment.export_state,
        fortnox_voucher=voucher,
        export_error=adjustment.export_error,
        created_at=adjustment.created_at,
    )


async def list_adjustments(
    session: AsyncSession, company_id: uuid.UUID, closing_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[AdjustmentOut]:
    closing = await get_closing(session, company_id, closing_id)
    after = ADJUSTMENTS_KEYSET.decode(cursor)
    repo = ClosingRepository(session)
    found = await repo.adjustments(company_id, closing.id, after=after, limit=limit + 1)
    page, next_cursor = ADJUSTMENTS_KEYSET.cut(found, limit, lambda a: (a.created_at, a.id))
    rows = await repo.adjustment_rows(company_id, [a.id for a in page])
    return Page(items=[adjustment_out(a, rows[a.id]) for a in page], next_cursor=next_cursor)


async def delete_adjustment(
    session: AsyncSession, company_id: uuid.UUID, closing_id: uuid.UUID, adjustment_id: uuid.UUID
) -> None:
    repo = ClosingRepository(session)
    await get_closing(session, company_id, closing_id)
    adjustment = await repo.get_adjustment(company_id, closing_id, adjustment_id)
    if adjustment is None:
        raise AdjustmentNotFound("adjustment not found")
    if adjustment.export_state in EXPORTED_STATES:
        raise AdjustmentExported(
            f"the adjustment has been exported to Fortnox ({adjustment.export_state}); book a reversal instead"
        )
    await repo.delete_adjustment(company_id, adjustment.id)


async def adjustments_sie(session: AsyncSession, company_id: uuid.UUID, closing_id: uuid.UUID) -> bytes:
    """The closing's adjustments as a SIE 4I file (PC8), one #VER per adjustment, in creation order."""
    closing = await get_closing(session, company_id, closing_id)
    repo = ClosingRepository(session)
    adjustments = await repo.adjustments(company_id, closing.id)
    rows = await repo.adjustment_rows(company_id, [a.id for a in adjustments])
    chart = {}
    if closing.current_import_id is not None:
        used = {r.account for rs in rows.values() for r in rs}
        accounts = await repo.accounts_by_number(company_id, closing.current_import_id, used)
        chart = {n: sie.Account(n, _pc8(a.name)) for n, a in sorted(accounts.items())}
    document = sie.SieDocument(
        program="ledgerlink",
        company_name=_pc8(closing.company_name or ""),
        org_number=closing.org_number or "",
        generated=dt.date.today(),
        financial_years=[sie.FinancialYear(0, closing.financial_year_start, closing.financial_year_end)],
        accounts=chart,
        vouchers=[
            sie.Voucher(
                series="",
                number="",
                date=a.date,
                text=_pc8(a.description),
                rows=[
                    sie.VoucherRow(r.account, r.debit - r.credit, text=_pc8(r.description or ""))
                    for r in rows[a.id]
                ],
            )
            for a in adjustments
        ],
    )
    return sie.dumps_sie(document, sie_type="4I")


def _pc8(text: str) -> str:
    """Text the SIE writer can encode (characters outside code page 437 become ``?``, no line breaks)."""
    return text.encode("cp437", "replace").decode("cp437").replace("\r", " ").replace("\n", " ")
