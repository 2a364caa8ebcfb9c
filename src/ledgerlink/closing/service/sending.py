"""Sending one adjustment as exactly one Fortnox voucher, in every mode the product runs in.

Per adjustment the state moves ``none|failed -> sending -> posted | failed | uncertain``, each step
committed in its own short transaction before and after ``POST /3/vouchers``. Only the export whose
claim wins in the database sends: a compare-and-set to ``sending`` from the state it saw (a ``sending``
claim is taken over only after its lease). Exports of one process queue per adjustment in memory, and
one that finds another export sending waits for its outcome; no database connection is held while
waiting. The voucher's Description ends with a marker ``[ll:<12 hex of the adjustment id>]``: an
adjustment found ``sending`` (a crashed sender) or ``uncertain`` (a call that timed out after it may have
been accepted) is first looked up in Fortnox by that marker, its date and its rows, and recorded as
posted when found; only when it is not there is it sent again. ``posted`` is never re-sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.closing.repository import ClosingRepository
from ledgerlink.closing.service.adjustments import AdjustmentProblem, Line, check_adjustment
from ledgerlink.config import Settings
from ledgerlink.db.base import utcnow
from ledgerlink.db.session import session_scope
from ledgerlink.fortnox.client import FortnoxClient, VoucherDraft, VoucherDraftRow
from ledgerlink.fortnox.errors import (
    FortnoxAuthError,
    FortnoxError,
    FortnoxRequestError,
    FortnoxUncertainError,
)
from ledgerlink.logging import get_logger
from ledgerlink.models.closing import (
    Adjustment,
    AdjustmentRow,
    ExportState,
)
from ledgerlink.money import round_to_ore

log = get_logger(__name__)

MIN_LEASE_SECONDS = 300.0
CLAIM_POLL_MIN, CLAIM_POLL_MAX = 0.05, 1.0
BUSY_MESSAGE = (
    "another export was still sending this adjustment; export again to see its voucher "
    "(it is never sent twice)"
)


def marker_of(adjustment_id: uuid.UUID) -> str:
    return f"[ll:{adjustment_id.hex[:12]}]"


def voucher_description(adjustment: Adjustment) -> str:
    """The Fortnox voucher Description: the adjustment's text and the marker that finds it again."""
    marker = marker_of(adjustment.id)
    return f"{adjustment.description[: 199 - len(marker)]} {marker}"


_turns: dict[uuid.UUID, tuple[asyncio.Lock, int]] = {}


@asynccontextmanager
async def adjustment_turn(adjustment_id: uuid.UUID) -> AsyncIterator[None]:
    """One export at a time works on an adjustment in this process (the others queue here, holding no
    database connection); across processes the claim in the database decides."""
    lock, users = _turns.get(adjustment_id) or (asyncio.Lock(), 0)
    _turns[adjustment_id] = (lock, users + 1)
    try:
        async with lock:
            yield
    finally:
        lock, users = _turns[adjustment_id]
        if users <= 1:
            del _turns[adjustment_id]
        else:
            _turns[adjustment_id] = (lock, users - 1)


def claim_lease(settings: Settings) -> dt.timedelta:
    """How long a ``sending`` claim is taken as alive: far beyond the longest voucher call."""
    return dt.timedelta(seconds=max(MIN_LEASE_SECONDS, 10 * settings.fortnox.timeout_seconds))


@dataclass
class Outcome:
    status: ExportState
    voucher: tuple[str, int, int] | None = None
    code: str | None = None
    message: str | None = None


@dataclass
class ExportRun:
    client: FortnoxClient
    sessionmaker: async_sessionmaker[AsyncSession]
    company_id: uuid.UUID
    closing_id: uuid.UUID
    export_id: uuid.UUID
    series: str
    year: tuple[dt.date, dt.date]
    chart: set[str] | None
    lease: dt.timedelta
    years: dict[dt.date, int | None] = field(default_factory=dict)

    async def financial_year_id(self, day: dt.date) -> int | None:
        if day not in self.years:
            year = await self.client.financial_year_for(day)
            self.years[day] = year.id if year else None
        return self.years[day]


async def export_one(run: ExportRun, adjustment_id: uuid.UUID, *, reconcile_only: bool = False) -> Outcome:
    """Export one adjustment: one turn at a time in this process, and only the export whose claim wins
    in the database sends it."""
    async with adjustment_turn(adjustment_id):
        outcome = await _export_claimed(run, adjustment_id, reconcile_only=reconcile_only)
    await _record_item(run, adjustment_id, outcome)
    return outcome


async def _record_item(run: ExportRun, adjustment_id: uuid.UUID, outcome: Outcome) -> None:
    voucher = outcome.voucher or (None, None, None)
    async with session_scope(run.sessionmaker) as session:
        await ClosingRepository(session).update_export_item(
            run.company_id,
            run.export_id,
            adjustment_id,
            status=outcome.status,
            fortnox_series=voucher[0],
            fortnox_number=voucher[1],
            fortnox_year=voucher[2],
            error_code=outcome.code,
            error_message=outcome.message,
        )


async def _set_state(run: ExportRun, adjustment_id: uuid.UUID, state: ExportState, **values: Any) -> bool:
    async with session_scope(run.sessionmaker) as session:
        return await ClosingRepository(session).set_adjustment_state(
            run.company_id, adjustment_id, state, **values
        )


async def _read(run: ExportRun, adjustment_id: uuid.UUID) -> tuple[Adjustment | None, list[AdjustmentRow]]:
    async with session_scope(run.sessionmaker) as session:
        repo = ClosingRepository(session)
        adjustment = await repo.get_adjustment(run.company_id, run.closing_id, adjustment_id)
        rows = (await repo.adjustment_rows(run.company_id, [adjustment_id]))[adjustment_id]
    return adjustment, rows


async def _claim(run: ExportRun, adjustment: Adjustment) -> bool:
    """Move the adjustment to ``sending`` from the state this export saw: a compare-and-set that only
    one export wins (a ``sending`` claim is taken over only once its lease has run out)."""
    async with session_scope(run.sessionmaker) as session:
        return await ClosingRepository(session).claim_adjustment(
            run.company_id,
            adjustment.id,
            seen_state=adjustment.export_state,
            seen_attempt=adjustment.export_attempted_at,
            series=run.series,
            at=utcnow(),
        )


def _claim_is_live(adjustment: Adjustment, lease: dt.timedelta) -> bool:
    attempted = adjustment.export_attempted_at
    return attempted is not None and utcnow() - attempted < lease


async def _export_claimed(run: ExportRun, adjustment_id: uuid.UUID, *, reconcile_only: bool) -> Outcome:
    waited = 0.0
    while True:
        adjustment, rows = await _read(run, adjustment_id)
        if adjustment is None:
            return Outcome(
                ExportState.failed, code="adjustment_deleted", message="the adjustment was deleted"
            )
        state = adjustment.export_state
        if state == ExportState.posted:
            return _posted(adjustment)
        if state == ExportState.sending and _claim_is_live(adjustment, run.lease):
            # another export is sending it right now: queue behind it (no connection held meanwhile)
            if waited >= run.lease.total_seconds():
                return Outcome(ExportState.uncertain, code="fortnox_uncertain", message=BUSY_MESSAGE)
            pause = min(CLAIM_POLL_MAX, max(CLAIM_POLL_MIN, waited))
            await asyncio.sleep(pause)
            waited += pause
            continue
        if reconcile_only and state not in (ExportState.sending, ExportState.uncertain):
            return Outcome(state)
        if not await _claim(run, adjustment):
            continue  # another export moved it first: look again
        return await _send_claimed(run, adjustment, rows, reconcile_only=reconcile_only)


async def _send_claimed(
    run: ExportRun, adjustment: Adjustment, rows: Sequence[AdjustmentRow], *, reconcile_only: bool
) -> Outcome:
    """The adjustment is ``sending`` under this export's claim: look it up first when an earlier attempt
    may have reached Fortnox, then check it and send it."""
    adjustment_id = adjustment.id
    if adjustment.export_state in (ExportState.sending, ExportState.uncertain):
        checked = await _reconcile(run, adjustment, rows)
        if checked is not None:
            return checked
        if reconcile_only:
            message = (
                "Fortnox did not answer in time and the voucher is not (yet) in Fortnox; "
                "export again to check and send it"
            )
            await _set_state(run, adjustment_id, ExportState.uncertain, export_error=message)
            return Outcome(ExportState.uncertain, code="fortnox_uncertain", message=message)

    lines = [Line(r.account, r.debit, r.credit, r.description) for r in rows]
    problem = check_adjustment(
        adjustment.date, lines, year_start=run.year[0], year_end=run.year[1], chart=run.chart
    ) or _fortnox_problem(lines)
    if problem is not None:
        await _set_state(run, adjustment_id, ExportState.failed, export_error=problem.message)
        return Outcome(ExportState.failed, code="adjustment_invalid", message=problem.message)

    await _record_item(run, adjustment_id, Outcome(ExportState.sending))
    draft = VoucherDraft(
        series=run.series,
        transaction_date=adjustment.date,
        description=voucher_description(adjustment),
        rows=tuple(
            VoucherDraftRow(
                account=int(r.account),
                debit=r.debit,
                credit=r.credit,
                transaction_information=r.description or "",
            )
            for r in rows
        ),
    )
    try:
        created = await run.client.create_voucher(draft)
    except FortnoxUncertainError:
        message = "Fortnox did not answer in time; the voucher may have been created (it is checked before any resend)"
        await _set_state(run, adjustment_id, ExportState.uncertain, export_error=message)
        return Outcome(ExportState.uncertain, code="fortnox_uncertain", message=message)
    except FortnoxRequestError as exc:
        await _set_state(run, adjustment_id, ExportState.failed, export_error=exc.message)
        return Outcome(ExportState.failed, code="fortnox_rejected", message=exc.message)
    except FortnoxAuthError:
        # a 401 is answered before anything is booked
        await _set_state(run, adjustment_id, ExportState.failed, export_error="Fortnox authorization failed")
        raise
    except FortnoxError as exc:  # transient: 429/503/connect errors, i.e. not processed
        await _set_state(run, adjustment_id, ExportState.failed, export_error=exc.message)
        return Outcome(ExportState.failed, code="fortnox_unavailable", message=exc.message)
    voucher = (created.series, created.number, created.year)
    await _set_state(
        run,
        adjustment_id,
        ExportState.posted,
        fortnox_series=voucher[0],
        fortnox_number=voucher[1],
        fortnox_year=voucher[2],
        export_error=None,
    )
    log.info("closing.export.posted", adjustment_id=str(adjustment_id), series=voucher[0], number=voucher[1])
    return Outcome(ExportState.posted, voucher=voucher)


def _posted(adjustment: Adjustment) -> Outcome:
    assert adjustment.fortnox_series is not None
    assert adjustment.fortnox_number is not None and adjustment.fortnox_year is not None
    return Outcome(
        ExportState.posted,
        voucher=(adjustment.fortnox_series, adjustment.fortnox_number, adjustment.fortnox_year),
    )


def _fortnox_problem(lines: Sequence[Line]) -> AdjustmentProblem | None:
    for i, line in enumerate(lines):
        if not (line.account.isdigit() and 1000 <= int(line.account) <= 9999):
            return AdjustmentProblem(
                f"row {i + 1}: Fortnox accounts are numbers 1000–9999 ({line.account})", ["rows", i]
            )
    return None


def _rows_key(rows: Sequence[tuple[int, Decimal, Decimal]]) -> list[tuple[int, Decimal, Decimal]]:
    return sorted((a, round_to_ore(d), round_to_ore(c)) for a, d, c in rows)


async def _reconcile(run: ExportRun, adjustment: Adjustment, rows: Sequence[AdjustmentRow]) -> Outcome | None:
    """Look for the adjustment's voucher in Fortnox (marker, date, rows). Posted when found; None when it
    is not there; uncertain when Fortnox could not be asked."""
    series = adjustment.export_series or run.series
    marker = marker_of(adjustment.id)
    try:
        year_id = await run.financial_year_id(adjustment.date)
        if year_id is None:
            return None
        headers = await run.client.vouchers(
            year_id, series=series, from_date=adjustment.date, to_date=adjustment.date
        )
        wanted = _rows_key([(int(r.account), r.debit, r.credit) for r in rows if r.account.isdigit()])
        for header in headers:
            if not header.description.endswith(marker):
                continue
            full = await run.client.voucher(header.series, header.number, year_id)
            got = _rows_key([(r.account, r.debit, r.credit) for r in full.rows if not r.removed])
            voucher = (full.series, full.number, full.year or year_id)
            if got != wanted:
                message = (
                    f"Fortnox voucher {full.series} {full.number} carries this adjustment's marker but other rows; "
                    "it was not sent again"
                )
                # stays uncertain (never "failed", which would allow a resend)
                await _set_state(run, adjustment.id, ExportState.uncertain, export_error=message)
                return Outcome(ExportState.failed, code="fortnox_voucher_mismatch", message=message)
            await _set_state(
                run,
                adjustment.id,
                ExportState.posted,
                fortnox_series=voucher[0],
                fortnox_number=voucher[1],
                fortnox_year=voucher[2],
                export_error=None,
            )
            log.info("closing.export.reconciled", adjustment_id=str(adjustment.id), number=voucher[1])
            return Outcome(ExportState.posted, voucher=voucher)
    except FortnoxAuthError:
        raise
    except FortnoxError as exc:
        await _set_state(run, adjustment.id, ExportState.uncertain, export_error=exc.message)
        return Outcome(
            ExportState.uncertain,
            code="fortnox_uncertain",
            message=f"could not check Fortnox for the voucher: {exc.message}",
        )
    return None
