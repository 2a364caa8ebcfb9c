"""Export jobs: each selected adjustment becomes exactly one Fortnox voucher.

Per adjustment, under a PostgreSQL advisory lock (so two exports never work on one adjustment at once),
the state moves ``none|failed -> sending -> posted | failed | uncertain``, each step committed in its own
short transaction before and after ``POST /3/vouchers``. The voucher's Description ends with a marker
``[ll:<12 hex of the adjustment id>]``. An adjustment found ``sending`` (the sender crashed) or
``uncertain`` (the call timed out after it may have been accepted) is first looked up in Fortnox by that
marker, its date and its rows, and recorded as posted when found; only when it is not there is it sent
again. An adjustment already ``posted`` is reported with its voucher and never re-sent.
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

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.closing.errors import InvalidExport
from ledgerlink.closing.repository import ClosingRepository
from ledgerlink.closing.schemas import (
    ExportCreate,
    ExportItemOut,
    ExportOut,
    FortnoxVoucherRef,
    JobError,
    JobProgress,
)
from ledgerlink.closing.service.adjustments import AdjustmentProblem, Line, check_adjustment
from ledgerlink.closing.service.closings import get_closing, job_error
from ledgerlink.closing.service.recovery import run_claimed
from ledgerlink.config import Settings
from ledgerlink.db.base import utcnow
from ledgerlink.db.session import session_scope
from ledgerlink.errors import AppError
from ledgerlink.events.service import emit
from ledgerlink.fortnox import service as fortnox_service
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
    ClosingExport,
    ClosingExportItem,
    ExportState,
    ExportStatus,
)
from ledgerlink.money import round_to_ore
from ledgerlink.runtime import ServiceEnv
from ledgerlink.worker.enqueue import enqueue

log = get_logger(__name__)

EXPORT_TASK = "closing.export"
EXPORT_COMPLETED = "fortnox.export.completed"
RETRYABLE_CODES = frozenset({"fortnox_uncertain", "fortnox_unavailable"})
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


# -- starting and reading ---------------------------------------------------------------------------


async def check_series(
    *,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Any | None,
    transport: httpx.AsyncBaseTransport | None,
    company_id: uuid.UUID,
    closing_id: uuid.UUID,
    series: str,
) -> None:
    """Before an export starts: the series must exist in Fortnox for the closing's year and take manual
    vouchers (422 otherwise). Uses sessions of its own, so the caller's holds no transaction meanwhile."""
    async with sessionmaker() as session:
        closing = await get_closing(session, company_id, closing_id)
        year_id, year_end = closing.fortnox_financial_year_id, closing.financial_year_end
    with fortnox_service.translate_fortnox_errors():
        async with fortnox_service.open_client(
            settings=settings,
            sessionmaker=sessionmaker,
            redis=redis,
            company_id=company_id,
            transport=transport,
        ) as client:
            if year_id is None:
                year = await client.financial_year_for(year_end)
                if year is None:
                    raise InvalidExport(
                        f"Fortnox has no financial year containing {year_end}",
                        loc=["body", "voucher_series"],
                        code="fortnox_year_missing",
                    )
                year_id = year.id
            found = {s.code.upper(): s for s in await client.voucher_series(year_id)}
    match = found.get(series)
    if match is None:
        offered = ", ".join(sorted(c for c, s in found.items() if s.manual)) or "none"
        raise InvalidExport(
            f'voucher series "{series}" does not exist in Fortnox for this financial year '
            f"(manual series: {offered})",
            loc=["body", "voucher_series"],
            code="voucher_series_unknown",
        )
    if not match.manual:
        raise InvalidExport(
            f'voucher series "{series}" does not take manual vouchers in Fortnox',
            loc=["body", "voucher_series"],
            code="voucher_series_not_manual",
        )


async def start_export(
    session: AsyncSession, company_id: uuid.UUID, closing_id: uuid.UUID, body: ExportCreate
) -> ClosingExport:
    closing = await get_closing(session, company_id, closing_id)
    repo = ClosingRepository(session)
    if body.adjustment_ids is None:
        adjustments = list(await repo.adjustments(company_id, closing.id))
    else:
        wanted = list(dict.fromkeys(body.adjustment_ids))
        found = {a.id: a for a in await repo.adjustments(company_id, closing.id, ids=wanted)}
        missing = [str(i) for i in wanted if i not in found]
        if missing:
            raise InvalidExport(
                f"no such adjustment in this closing: {', '.join(missing)}", loc=["body", "adjustment_ids"]
            )
        adjustments = [found[i] for i in wanted]
    if not adjustments:
        raise InvalidExport("there are no adjustments to export", loc=["body", "adjustment_ids"])
    export = ClosingExport(
        id=uuid.uuid4(),
        company_id=company_id,
        closing_id=closing.id,
        target=body.target,
        voucher_series=body.voucher_series,
        status=ExportStatus.queued,
        progress_done=0,
        progress_total=len(adjustments),
        progress_step="queued",
    )
    session.add(export)
    await session.flush()
    await repo.insert_many(
        ClosingExportItem,
        [
            {
                "export_id": export.id,
                "adjustment_id": a.id,
                "company_id": company_id,
                "position": n,
                "status": ExportState.pending,
            }
            for n, a in enumerate(adjustments)
        ],
    )
    enqueue(
        EXPORT_TASK,
        job_id=f"closing-export:{export.id}",
        company_id=str(company_id),
        export_id=str(export.id),
    )
    return export


async def export_out(session: AsyncSession, export: ClosingExport) -> ExportOut:
    items = await ClosingRepository(session).export_items(export.company_id, export.id)
    return ExportOut(
        id=export.id,
        closing_id=export.closing_id,
        target=export.target,
        voucher_series=export.voucher_series,
        status=export.status,
        progress=JobProgress(
            done=export.progress_done, total=export.progress_total, step=export.progress_step
        ),
        error=job_error(export.error_code, export.error_message, export.error_retryable),
        items=[_item_out(i) for i in items],
        created_at=export.created_at,
        started_at=export.started_at,
        finished_at=export.finished_at,
    )


def _item_out(item: ClosingExportItem) -> ExportItemOut:
    voucher = None
    if item.fortnox_series and item.fortnox_number is not None and item.fortnox_year is not None:
        voucher = FortnoxVoucherRef(
            series=item.fortnox_series, number=item.fortnox_number, year=item.fortnox_year
        )
    return ExportItemOut(
        adjustment_id=item.adjustment_id,
        status=item.status,
        fortnox_voucher=voucher,
        error=job_error(item.error_code, item.error_message, item.error_code in RETRYABLE_CODES),
    )


# -- running ----------------------------------------------------------------------------------------


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


async def run_export(ctx: ServiceEnv, company_id: uuid.UUID, export_id: uuid.UUID) -> None:
    await run_claimed(ctx, ClosingExport, company_id, export_id, _run_export)


async def _run_export(ctx: ServiceEnv, company_id: uuid.UUID, export_id: uuid.UUID) -> None:
    sessionmaker = ctx.sessionmaker
    async with session_scope(sessionmaker) as session:
        repo = ClosingRepository(session)
        found = await repo.open_job(ClosingExport, company_id, export_id)
        if found is None:
            return
        export, closing = found
        chart = None
        if closing.current_import_id is not None:
            chart = await repo.account_numbers(company_id, closing.current_import_id)
        items = [i.adjustment_id for i in await repo.export_items(company_id, export_id)]
        series, closing_id = export.voucher_series, closing.id
        year = (closing.financial_year_start, closing.financial_year_end)
        await repo.update_job(
            ClosingExport,
            company_id,
            export_id,
            status=ExportStatus.running,
            started_at=utcnow(),
            progress_step="exporting",
        )

    outcomes: dict[uuid.UUID, Outcome] = {}
    try:
        async with fortnox_service.open_client(
            settings=ctx.settings,
            sessionmaker=sessionmaker,
            redis=ctx.redis,
            company_id=company_id,
            transport=ctx.transports.get("fortnox"),
        ) as client:
            run = ExportRun(
                client,
                sessionmaker,
                company_id,
                closing_id,
                export_id,
                series,
                year,
                chart,
                claim_lease(ctx.settings),
            )
            for done, adjustment_id in enumerate(items, start=1):
                outcomes[adjustment_id] = await _export_one(run, adjustment_id)
                async with session_scope(sessionmaker) as session:
                    await ClosingRepository(session).update_job(
                        ClosingExport, company_id, export_id, progress_done=done
                    )
            # A timed-out post has had the other adjustments' time to land: look once more.
            for adjustment_id, outcome in list(outcomes.items()):
                if outcome.status == ExportState.uncertain:
                    outcomes[adjustment_id] = await _export_one(run, adjustment_id, reconcile_only=True)
    except FortnoxAuthError:
        await _fail_export(sessionmaker, company_id, export_id, "fortnox_reauth_required",
                           "Fortnox needs a new authorization; connect Fortnox again", False)  # fmt: skip
        return
    except AppError as exc:  # not connected / expired / not configured
        await _fail_export(sessionmaker, company_id, export_id, exc.instance_code, exc.detail, False)
        return
    except Exception:  # every adjustment's state is already committed: exporting again is safe
        log.exception("closing.export.crashed", export_id=str(export_id))
        await _fail_export(sessionmaker, company_id, export_id, "internal_error", "the export failed", True)
        return

    counts = {s.value: sum(1 for o in outcomes.values() if o.status == s) for s in ExportState}
    summary = {k: v for k, v in counts.items() if v}
    status, error = export_status(list(outcomes.values()))
    async with session_scope(sessionmaker) as session:
        now = utcnow()
        await ClosingRepository(session).update_job(
            ClosingExport,
            company_id,
            export_id,
            status=status,
            progress_step="done",
            progress_done=len(items),
            finished_at=now,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
            error_retryable=error.retryable if error else None,
        )
        await fortnox_service.renew(session, company_id, settings=ctx.settings, now=now)
        await emit(
            session,
            company_id,
            EXPORT_COMPLETED,
            {
                "closing_id": str(closing_id),
                "export_id": str(export_id),
                "status": status.value,
                "items": summary,
            },
        )
    log.info("closing.export.finished", export_id=str(export_id), **summary)


def export_status(outcomes: Sequence[Outcome]) -> tuple[ExportStatus, JobError | None]:
    """``succeeded`` when every adjustment is posted, ``failed`` when none is, else ``partially_failed``;
    the error says how many did not go and whether exporting again may help."""
    posted = sum(1 for o in outcomes if o.status == ExportState.posted)
    if posted == len(outcomes):
        return ExportStatus.succeeded, None
    left = len(outcomes) - posted
    retryable = any(o.status == ExportState.uncertain or o.code in RETRYABLE_CODES for o in outcomes)
    if posted == 0:
        message = f"none of the {left} adjustments was exported; see each item's error"
        return ExportStatus.failed, JobError(code="export_failed", message=message, retryable=retryable)
    message = f"{left} of {len(outcomes)} adjustments were not exported; see each item's error"
    return ExportStatus.partially_failed, JobError(
        code="export_partially_failed", message=message, retryable=retryable
    )


async def _fail_export(
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    export_id: uuid.UUID,
    code: str,
    message: str,
    retryable: bool,
) -> None:
    async with session_scope(sessionmaker) as session:
        await ClosingRepository(session).update_job(
            ClosingExport,
            company_id,
            export_id,
            status=ExportStatus.failed,
            error_code=code,
            error_message=message,
            error_retryable=retryable,
            finished_at=utcnow(),
        )


async def _export_one(run: ExportRun, adjustment_id: uuid.UUID, *, reconcile_only: bool = False) -> Outcome:
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
