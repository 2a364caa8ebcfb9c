"""Export jobs: the selected adjustments of a closing, each sent as one Fortnox voucher (see
:mod:`ledgerlink.closing.service.sending`), and the job's outcome: ``succeeded``, ``partially_failed`` or
``failed``. The series is checked in Fortnox before a job starts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.closing.errors import InvalidExport
from ledgerlink.closing.repository import ClosingRepository
from ledgerlink.closing.schemas import (
    ExportCreate,
    ExportItemOut,
    ExportOut,
    FortnoxVoucherRef,
    JobError,
)
from ledgerlink.closing.service.closings import get_closing, job_error, job_state
from ledgerlink.closing.service.recovery import claimed
from ledgerlink.closing.service.sending import (
    ExportRun,
    Outcome,
    claim_lease,
    export_one,
)
from ledgerlink.db.base import utcnow
from ledgerlink.db.session import session_scope
from ledgerlink.errors import AppError
from ledgerlink.events.service import emit
from ledgerlink.fortnox import service as fortnox_service
from ledgerlink.fortnox.errors import (
    FortnoxAuthError,
)
from ledgerlink.logging import get_logger
from ledgerlink.models.closing import (
    ClosingExport,
    ClosingExportItem,
    ExportState,
    ExportStatus,
)
from ledgerlink.runtime import ServiceEnv
from ledgerlink.schema_types import read_model
from ledgerlink.worker.enqueue import enqueue

log = get_logger(__name__)

EXPORT_TASK = "closing.export"
EXPORT_COMPLETED = "fortnox.export.completed"
RETRYABLE_CODES = frozenset({"fortnox_uncertain", "fortnox_unavailable"})


# -- starting and reading ---------------------------------------------------------------------------


async def check_series(env: ServiceEnv, company_id: uuid.UUID, closing_id: uuid.UUID, series: str) -> None:
    """Before an export starts: the series must exist in Fortnox for the closing's year and take manual
    vouchers (422 otherwise). Uses sessions of its own, so the caller's holds no transaction meanwhile."""
    async with env.sessionmaker() as session:
        closing = await get_closing(session, company_id, closing_id)
        year_id, year_end = closing.fortnox_financial_year_id, closing.financial_year_end
    with fortnox_service.translate_fortnox_errors():
        async with fortnox_service.client_for(env, company_id) as client:
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
    return read_model(ExportOut, export, items=[_item_out(i) for i in items], **job_state(export))


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


async def _run_export(ctx: ServiceEnv, company_id: uuid.UUID, export_id: uuid.UUID) -> None:
    sessionmaker = ctx.sessionmaker
    async with session_scope(sessionmaker) as session:
        repo = ClosingRepository(session)
        export, closing = await repo.open_job(ClosingExport, company_id, export_id)
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
        async with fortnox_service.client_for(ctx, company_id) as client:
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
                outcomes[adjustment_id] = await export_one(run, adjustment_id)
                async with session_scope(sessionmaker) as session:
                    await ClosingRepository(session).update_job(
                        ClosingExport, company_id, export_id, progress_done=done
                    )
            # A timed-out post has had the other adjustments' time to land: look once more.
            for adjustment_id, outcome in list(outcomes.items()):
                if outcome.status == ExportState.uncertain:
                    outcomes[adjustment_id] = await export_one(run, adjustment_id, reconcile_only=True)
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


#: The export job: :func:`_run_export` once it has claimed its row.
run_export = claimed(ClosingExport, _run_export)


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
        error = (code, message, retryable)
        await ClosingRepository(session).fail_job(
            ClosingExport, company_id, export_id, ExportStatus.failed, error
        )
