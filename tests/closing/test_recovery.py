"""Closing jobs whose worker died (PostgreSQL, arq workers): the sweep sends again the jobs whose
heartbeat stopped, an export's adjustment left ``sending`` is looked up before any resend, and a job whose
worker is alive is left alone."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.closing.service import voucher_description
from ledgerlink.closing.service.recovery import STALE_SECONDS, recover_stale_jobs
from ledgerlink.config import Settings
from ledgerlink.db.base import utcnow
from ledgerlink.models.closing import (
    Adjustment,
    ClosingExport,
    ClosingExportItem,
    ClosingImport,
    ExportState,
)
from ledgerlink.runtime import ServiceEnv
from ledgerlink.sandbox.fortnox import SandboxFortnox
from ledgerlink.sandbox.fortnox_data import SandboxRow
from tests.closing.conftest import RunJobs
from tests.closing.test_export import _insert_adjustment, closing, in_fortnox

__all__ = ["closing"]  # the fixture


def _ctx(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], transports: Any) -> ServiceEnv:
    return ServiceEnv(settings=settings, sessionmaker=sessionmaker, transports=transports)


async def _dead_export(
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    closing: dict[str, Any],
    adjustment_ids: list[str],
    *,
    last_beat: dt.datetime,
) -> uuid.UUID:
    """An export as a killed worker leaves it: running, its first adjustment claimed (``sending``)."""
    export_id = uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            insert(ClosingExport).values(
                id=export_id,
                company_id=company_id,
                closing_id=uuid.UUID(closing["id"]),
                target="fortnox",
                voucher_series="A",
                status="running",
                progress_done=0,
                progress_total=len(adjustment_ids),
                progress_step="exporting",
                started_at=last_beat,
                modified_at=last_beat,
            )
        )
        await session.execute(
            insert(ClosingExportItem),
            [
                {
                    "export_id": export_id,
                    "adjustment_id": uuid.UUID(a),
                    "company_id": company_id,
                    "position": n,
                    "status": ExportState.sending if n == 0 else ExportState.pending,
                }
                for n, a in enumerate(adjustment_ids)
            ],
        )
        await session.execute(
            update(Adjustment)
            .where(Adjustment.id == uuid.UUID(adjustment_ids[0]))
            .values(export_attempted_at=last_beat)
        )
    return export_id


async def test_an_export_whose_worker_died_while_sending_is_resumed_without_a_second_voucher(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    settings: Settings,
    transports: Any,
) -> None:
    rows = [("6570", "40.00", "0"), ("1930", "0", "40.00")]
    sent = await _insert_adjustment(
        sessionmaker, company_id, closing, rows, state=ExportState.sending, export_series="A"
    )
    other = await _insert_adjustment(sessionmaker, company_id, closing, rows, description="Inte skickad")
    async with sessionmaker() as session:
        stored = await session.get(Adjustment, uuid.UUID(sent["id"]))
    assert stored is not None
    # the dead worker's post had reached Fortnox
    sandbox.company.add_voucher(
        "A",
        dt.date(2025, 12, 31),
        voucher_description(stored),
        [SandboxRow(6570, debit=Decimal("40.00")), SandboxRow(1930, credit=Decimal("40.00"))],
    )
    long_ago = utcnow() - dt.timedelta(seconds=STALE_SECONDS + 5)
    export_id = await _dead_export(
        sessionmaker, company_id, closing, [sent["id"], other["id"]], last_beat=long_ago
    )

    assert await recover_stale_jobs(_ctx(settings, sessionmaker, transports)) == 1
    await run_jobs()

    result = (
        await client.get(f"/v1/closings/{closing['id']}/exports/{export_id}", headers=auth_headers)
    ).json()
    assert result["status"] == "succeeded", result
    assert [i["status"] for i in result["items"]] == ["posted", "posted"]
    assert len(in_fortnox(sandbox, sent)) == 1  # looked up, not sent again
    assert len(in_fortnox(sandbox, other)) == 1
    assert sandbox.counters.created_vouchers == 1


async def test_a_job_whose_worker_still_beats_is_left_alone(
    closing: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    settings: Settings,
    transports: Any,
) -> None:
    rows = [("6570", "40.00", "0"), ("1930", "0", "40.00")]
    adjustment = await _insert_adjustment(
        sessionmaker, company_id, closing, rows, state=ExportState.sending, export_series="A"
    )
    export_id = await _dead_export(sessionmaker, company_id, closing, [adjustment["id"]], last_beat=utcnow())

    assert await recover_stale_jobs(_ctx(settings, sessionmaker, transports)) == 0

    async with sessionmaker() as session:
        export = await session.get(ClosingExport, export_id)
        state = (
            await session.execute(
                select(Adjustment.export_state).where(Adjustment.id == uuid.UUID(adjustment["id"]))
            )
        ).scalar_one()
    assert export is not None and export.status == "running"
    assert state == ExportState.sending


async def test_an_import_whose_worker_died_is_run_again_to_success(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    settings: Settings,
    transports: Any,
) -> None:
    import_id = uuid.uuid4()
    long_ago = utcnow() - dt.timedelta(seconds=STALE_SECONDS + 5)
    async with sessionmaker() as session, session.begin():
        await session.execute(
            insert(ClosingImport).values(
                id=import_id,
                company_id=company_id,
                closing_id=uuid.UUID(closing["id"]),
                source="fortnox",
                status="running",
                progress_done=4,
                progress_total=5,
                progress_step="writing",
                started_at=long_ago,
                modified_at=long_ago,
            )
        )

    assert await recover_stale_jobs(_ctx(settings, sessionmaker, transports)) == 1
    await run_jobs()

    job = (await client.get(f"/v1/closings/{closing['id']}/imports/{import_id}", headers=auth_headers)).json()
    assert job["status"] == "succeeded", job
    assert job["counts"]["vouchers"] > 0
