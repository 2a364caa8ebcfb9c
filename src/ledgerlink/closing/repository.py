"""All SQL of the closing feature. Tenant data is always read through :func:`scoped` (or filtered on
``company_id`` in UPDATE/DELETE statements)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, select, update

from ledgerlink.db.base import utcnow
from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.closing import (
    Adjustment,
    AdjustmentRow,
    Closing,
    ClosingAccount,
    ClosingExport,
    ClosingExportItem,
    ClosingImport,
    ClosingOpenItem,
    ClosingUploadPart,
    ClosingVoucher,
    ClosingVoucherRow,
    ExportState,
)

M = TypeVar("M")

# Rows per INSERT statement when writing an import (asyncpg caps bind parameters at 32767).
BATCH_ROWS = 2000


class JobGone(Exception):
    """The import or export a job was sent for is gone, finished, or its closing was deleted: the job has
    nothing left to do (:func:`~ledgerlink.closing.service.recovery.run_claimed` ends it quietly)."""


class ClosingRepository(RepositoryBase[Closing]):
    model = Closing

    # -- what belongs to a closing (imports, adjustments, exports) -----------------------------------

    async def in_closing(
        self, model: type[M], company_id: uuid.UUID, closing_id: uuid.UUID, item_id: uuid.UUID
    ) -> M | None:
        """An import, adjustment or export of this company's closing, by id."""
        stmt = scoped(select(model), model, company_id).where(
            model.id == item_id,  # type: ignore[attr-defined]
            model.closing_id == closing_id,  # type: ignore[attr-defined]
        )
        result: M | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return result

    async def get_import(
        self, company_id: uuid.UUID, closing_id: uuid.UUID, import_id: uuid.UUID
    ) -> ClosingImport | None:
        return await self.in_closing(ClosingImport, company_id, closing_id, import_id)

    async def get_adjustment(
        self, company_id: uuid.UUID, closing_id: uuid.UUID, adjustment_id: uuid.UUID
    ) -> Adjustment | None:
        return await self.in_closing(Adjustment, company_id, closing_id, adjustment_id)

    async def get_export(
        self, company_id: uuid.UUID, closing_id: uuid.UUID, export_id: uuid.UUID
    ) -> ClosingExport | None:
        return await self.in_closing(ClosingExport, company_id, closing_id, export_id)

    async def open_job(self, model: type[M], company_id: uuid.UUID, job_id: uuid.UUID) -> tuple[M, Closing]:
        """An import or export still to run, with its closing; :class:`JobGone` when the job is gone or
        finished, or its closing was deleted."""
        job: Any = await self.get_job(model, company_id, job_id)
        if job is None or job.status not in ("queued", "running"):
            raise JobGone(job_id)
        closing = await self.get_closing(company_id, job.closing_id)
        if closing is None:
            raise JobGone(job_id)
        return job, closing

    # -- closings ---------------------------------------------------------------------------------

    async def get_closing(self, company_id: uuid.UUID, closing_id: uuid.UUID) -> Closing | None:
        return await self.get_scoped(company_id, closing_id)

    async def lock_closing(self, company_id: uuid.UUID, closing_id: uuid.UUID) -> Closing | None:
        stmt = scoped(select(Closing), Closing, company_id).where(Closing.id == closing_id)
        return await self.one_or_none(stmt.with_for_update())

    async def list_closings(
        self, company_id: uuid.UUID, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[Closing]:
        stmt = scoped(select(Closing), Closing, company_id)
        if after is not None:
            stmt = stmt.where((Closing.created_at, Closing.id) < after)  # type: ignore[operator]
        stmt = stmt.order_by(Closing.created_at.desc(), Closing.id.desc()).limit(limit)
        return await self.all(stmt)

    # -- imports ----------------------------------------------------------------------------------

    async def add_upload_part(
        self, company_id: uuid.UUID, import_id: uuid.UUID, part: int, content: bytes
    ) -> None:
        await self.session.execute(
            insert(ClosingUploadPart).values(
                import_id=import_id, part=part, company_id=company_id, content=content
            )
        )

    async def upload_part(self, company_id: uuid.UUID, import_id: uuid.UUID, part: int) -> bytes | None:
        stmt = scoped(select(ClosingUploadPart.content), ClosingUploadPart, company_id).where(
            ClosingUploadPart.import_id == import_id, ClosingUploadPart.part == part
        )
        content: bytes | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return content

    async def delete_upload(self, company_id: uuid.UUID, import_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(ClosingUploadPart).where(
                ClosingUploadPart.import_id == import_id, ClosingUploadPart.company_id == company_id
            )
        )

    async def delete_import_data(self, company_id: uuid.UUID, import_ids: Iterable[uuid.UUID]) -> None:
        """Remove what imports wrote (rows, vouchers, accounts, open items), set-based."""
        ids = list(import_ids)
        if not ids:
            return
        for model in (ClosingVoucherRow, ClosingVoucher, ClosingAccount, ClosingOpenItem):
            await self.session.execute(
                delete(model).where(model.import_id.in_(ids), model.company_id == company_id)
            )

    async def other_import_ids(
        self, company_id: uuid.UUID, closing_id: uuid.UUID, keep: uuid.UUID
    ) -> list[uuid.UUID]:
        stmt = scoped(select(ClosingImport.id), ClosingImport, company_id).where(
            ClosingImport.closing_id == closing_id, ClosingImport.id != keep
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def insert_many(self, model: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Set-based insert in batches (one statement per batch, no ORM objects)."""
        for start in range(0, len(rows), BATCH_ROWS):
            await self.session.execute(insert(model), list(rows[start : start + BATCH_ROWS]))

    # -- imported data ----------------------------------------------------------------------------

    async def trial_balance(
        self, company_id: uuid.UUID, import_id: uuid.UUID, after: str | None, limit: int
    ) -> Sequence[ClosingAccount]:
        stmt = scoped(select(ClosingAccount), ClosingAccount, company_id).where(
            ClosingAccount.import_id == import_id
        )
        if after is not None:
            stmt = stmt.where(ClosingAccount.number > after)
        stmt = stmt.order_by(ClosingAccount.number).limit(limit)
        return list((await self.session.execute(stmt)).scalars().all())

    async def account_numbers(self, company_id: uuid.UUID, import_id: uuid.UUID) -> set[str]:
        stmt = scoped(select(ClosingAccount.number), ClosingAccount, company_id).where(
            ClosingAccount.import_id == import_id
        )
        return set((await self.session.execute(stmt)).scalars().all())

    async def accounts_by_number(
        self, company_id: uuid.UUID, import_id: uuid.UUID, numbers: Iterable[str]
    ) -> dict[str, ClosingAccount]:
        stmt = scoped(select(ClosingAccount), ClosingAccount, company_id).where(
            ClosingAccount.import_id == import_id, ClosingAccount.number.in_(list(numbers))
        )
        return {a.number: a for a in (await self.session.execute(stmt)).scalars().all()}

    async def vouchers(
        self,
        company_id: uuid.UUID,
        import_id: uuid.UUID,
        *,
        account: str | None,
        after_seq: int | None,
        limit: int,
    ) -> Sequence[ClosingVoucher]:
        stmt = scoped(select(ClosingVoucher), ClosingVoucher, company_id).where(
            ClosingVoucher.import_id == import_id
        )
        if account is not None:
            with_account = select(ClosingVoucherRow.voucher_id).where(
                ClosingVoucherRow.import_id == import_id,
                ClosingVoucherRow.company_id == company_id,
                ClosingVoucherRow.account == account,
            )
            stmt = stmt.where(ClosingVoucher.id.in_(with_account))
        if after_seq is not None:
            stmt = stmt.where(ClosingVoucher.seq > after_seq)
        stmt = stmt.order_by(ClosingVoucher.seq).limit(limit)
        return list((await self.session.execute(stmt)).scalars().all())

    async def voucher_rows(
        self, company_id: uuid.UUID, voucher_ids: Sequence[uuid.UUID]
    ) -> Sequence[ClosingVoucherRow]:
        if not voucher_ids:
            return []
        stmt = (
            scoped(select(ClosingVoucherRow), ClosingVoucherRow, company_id)
            .where(ClosingVoucherRow.voucher_id.in_(list(voucher_ids)))
            .order_by(ClosingVoucherRow.voucher_id, ClosingVoucherRow.line_no)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def open_items(
        self, company_id: uuid.UUID, import_id: uuid.UUID, account: str
    ) -> Sequence[ClosingOpenItem]:
        stmt = (
            scoped(select(ClosingOpenItem), ClosingOpenItem, company_id)
            .where(ClosingOpenItem.import_id == import_id, ClosingOpenItem.account == account)
            .order_by(ClosingOpenItem.invoice_date, ClosingOpenItem.document_number)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def count_for_import(self, company_id: uuid.UUID, model: Any, import_id: uuid.UUID) -> int:
        stmt = scoped(select(func.count()).select_from(model), model, company_id).where(
            model.import_id == import_id
        )
        return int((await self.session.execute(stmt)).scalar_one())

    # -- adjustments ------------------------------------------------------------------------------

    async def adjustments(
        self,
        company_id: uuid.UUID,
        closing_id: uuid.UUID,
        *,
        ids: Sequence[uuid.UUID] | None = None,
        after: tuple[dt.datetime, uuid.UUID] | None = None,
        limit: int | None = None,
    ) -> Sequence[Adjustment]:
        stmt = scoped(select(Adjustment), Adjustment, company_id).where(Adjustment.closing_id == closing_id)
        if ids is not None:
            stmt = stmt.where(Adjustment.id.in_(list(ids)))
        if after is not None:
            stmt = stmt.where((Adjustment.created_at, Adjustment.id) > after)  # type: ignore[operator]
        stmt = stmt.order_by(Adjustment.created_at, Adjustment.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.session.execute(stmt)).scalars().all())

    async def adjustment_rows(
        self, company_id: uuid.UUID, adjustment_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[AdjustmentRow]]:
        result: dict[uuid.UUID, list[AdjustmentRow]] = {i: [] for i in adjustment_ids}
        if not adjustment_ids:
            return result
        # rows carry no company_id: they are reached through their (scoped) adjustment
        owned = scoped(select(Adjustment.id), Adjustment, company_id).where(
            Adjustment.id.in_(list(adjustment_ids))
        )
        stmt = (
            select(AdjustmentRow)
            .where(AdjustmentRow.adjustment_id.in_(owned))
            .order_by(AdjustmentRow.adjustment_id, AdjustmentRow.line_no)
        )
        for row in (await self.session.execute(stmt)).scalars().all():
            result[row.adjustment_id].append(row)
        return result

    async def delete_adjustment(self, company_id: uuid.UUID, adjustment_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(Adjustment).where(Adjustment.id == adjustment_id, Adjustment.company_id == company_id)
        )

    async def set_adjustment_state(
        self,
        company_id: uuid.UUID,
        adjustment_id: uuid.UUID,
        state: ExportState,
        *,
        only_from: Sequence[ExportState] | None = None,
        **values: Any,
    ) -> bool:
        """Move an adjustment's export state (compare-and-set when ``only_from`` is given)."""
        stmt = update(Adjustment).where(Adjustment.id == adjustment_id, Adjustment.company_id == company_id)
        if only_from is not None:
            stmt = stmt.where(Adjustment.export_state.in_(list(only_from)))
        result = await self.session.execute(stmt.values(export_state=state, modified_at=utcnow(), **values))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def claim_adjustment(
        self,
        company_id: uuid.UUID,
        adjustment_id: uuid.UUID,
        *,
        seen_state: ExportState,
        seen_attempt: dt.datetime | None,
        series: str,
        at: dt.datetime,
    ) -> bool:
        """Compare-and-set the adjustment to ``sending`` from the state (and, for a ``sending`` one whose
        lease ran out, the attempt) the caller saw: of concurrent claims exactly one wins."""
        stmt = update(Adjustment).where(
            Adjustment.id == adjustment_id,
            Adjustment.company_id == company_id,
            Adjustment.export_state == seen_state,
        )
        if seen_state == ExportState.sending:
            stmt = stmt.where(
                Adjustment.export_attempted_at.is_(None)
                if seen_attempt is None
                else Adjustment.export_attempted_at <= seen_attempt  # a newer claim is later
            )
        result = await self.session.execute(
            stmt.values(
                export_state=ExportState.sending,
                export_series=series,
                export_error=None,
                export_attempted_at=at,
                modified_at=at,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- exports ----------------------------------------------------------------------------------

    async def export_items(self, company_id: uuid.UUID, export_id: uuid.UUID) -> Sequence[ClosingExportItem]:
        stmt = (
            scoped(select(ClosingExportItem), ClosingExportItem, company_id)
            .where(ClosingExportItem.export_id == export_id)
            .order_by(ClosingExportItem.position)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def update_export_item(
        self, company_id: uuid.UUID, export_id: uuid.UUID, adjustment_id: uuid.UUID, **values: Any
    ) -> None:
        await self.session.execute(
            update(ClosingExportItem)
            .where(
                ClosingExportItem.export_id == export_id,
                ClosingExportItem.adjustment_id == adjustment_id,
                ClosingExportItem.company_id == company_id,
            )
            .values(**values)
        )

    async def update_job(self, model: Any, company_id: uuid.UUID, job_id: uuid.UUID, **values: Any) -> None:
        """Update an import or export job row."""
        await self._set_job(model, company_id, job_id, modified_at=utcnow(), **values)

    async def fail_job(
        self, model: Any, company_id: uuid.UUID, job_id: uuid.UUID, status: Any, error: tuple[str, str, bool]
    ) -> None:
        """An import or export ended ``status`` (its failed state) now, with ``error``: (code, message,
        retryable)."""
        code, message, retryable = error
        await self.update_job(
            model,
            company_id,
            job_id,
            status=status,
            error_code=code,
            error_message=message,
            error_retryable=retryable,
            finished_at=utcnow(),
        )

    async def _set_job(
        self, model: Any, company_id: uuid.UUID, job_id: uuid.UUID, *where: Any, **values: Any
    ) -> bool:
        """Set ``values`` on one import or export job row that also matches ``where``; True if it did."""
        result = await self.session.execute(
            update(model).where(model.id == job_id, model.company_id == company_id, *where).values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def get_job(self, model: Any, company_id: uuid.UUID, job_id: uuid.UUID) -> Any:
        stmt = scoped(select(model), model, company_id).where(model.id == job_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    # -- recovery (across companies: the sweep of jobs that lost their worker) ---------------------

    async def claim_job(
        self,
        model: Any,
        company_id: uuid.UUID,
        job_id: uuid.UUID,
        *,
        at: dt.datetime,
        stale_before: dt.datetime,
    ) -> bool:
        """``queued`` -> ``running``, or take over a ``running`` job untouched since ``stale_before``."""
        claimable = (model.status == "queued") | (
            (model.status == "running") & (model.modified_at < stale_before)
        )
        return await self._set_job(model, company_id, job_id, claimable, status="running", modified_at=at)

    async def touch_job(
        self, model: Any, company_id: uuid.UUID, job_id: uuid.UUID, *, at: dt.datetime
    ) -> None:
        await self._set_job(model, company_id, job_id, model.status == "running", modified_at=at)

    async def unfinished_jobs(self, model: Any, *, stale_before: dt.datetime | None) -> Sequence[Any]:
        """Queued or running jobs of every company (untouched since ``stale_before`` when given)."""
        stmt = select(model).where(model.status.in_(["queued", "running"]))
        if stale_before is not None:
            stmt = stmt.where(model.modified_at < stale_before)
        return list((await self.session.execute(stmt.order_by(model.created_at))).scalars().all())

    async def requeue_job(
        self, model: Any, company_id: uuid.UUID, job_id: uuid.UUID, seen: dt.datetime, *, at: dt.datetime
    ) -> bool:
        """Back to ``queued`` if nobody touched the job since the sweep read it (touched since: alive)."""
        untouched = (model.status.in_(["queued", "running"]), model.modified_at <= seen)
        return await self._set_job(
            model, company_id, job_id, *untouched, status="queued", modified_at=at, progress_step="queued"
        )

    async def release_sending_claims(
        self, company_id: uuid.UUID, export_id: uuid.UUID, *, claimed_before: dt.datetime, at: dt.datetime
    ) -> None:
        """The export's adjustments still ``sending`` (claimed before ``claimed_before``) -> ``uncertain``:
        their voucher may have reached Fortnox, so they are looked up before any resend."""
        mine = select(ClosingExportItem.adjustment_id).where(
            ClosingExportItem.export_id == export_id, ClosingExportItem.company_id == company_id
        )
        await self.session.execute(
            update(Adjustment)
            .where(
                Adjustment.company_id == company_id,
                Adjustment.id.in_(mine),
                Adjustment.export_state == ExportState.sending,
                Adjustment.export_attempted_at < claimed_before,
            )
            .values(
                export_state=ExportState.uncertain,
                export_error="the export was interrupted; the voucher is looked up before any resend",
                modified_at=at,
            )
        )
