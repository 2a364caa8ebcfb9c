"""Syncs: "sync now", run history and the read-only nightly schedule."""

from __future__ import annotations

import functools
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.auth.dependencies import BankingPrincipal
from ledgerlink.auth.principal import Principal
from ledgerlink.banks.errors import BankAccountNotFound
from ledgerlink.banks.repository import BankAccountRepository
from ledgerlink.client_address import client_address
from ledgerlink.clock import today_stockholm
from ledgerlink.companies.service import company
from ledgerlink.db.session import SessionDep
from ledgerlink.errors import Unprocessable, responses
from ledgerlink.idempotency.service import IdempotencyKey, idempotency
from ledgerlink.models.bank import SyncTrigger
from ledgerlink.pagination import Cursor, Instant, Keyset, Limit, Page
from ledgerlink.schema_types import read_model
from ledgerlink.sync.repository import SyncRunRepository
from ledgerlink.sync.schemas import BankAccountSyncRun, SyncRequest, SyncSchedule, run_read
from ledgerlink.sync.service import schedule_sync

SYNCS_KEYSET = Keyset("sync-runs", Instant, uuid.UUID)

router = APIRouter(tags=["syncs"], responses=responses(401, 403))


@router.post(
    "/bank-accounts/{account_id}/syncs",
    status_code=202,
    response_model=BankAccountSyncRun,
    responses=responses(404, 409, 422),
)
async def sync_now(
    request: Request,
    account_id: uuid.UUID,
    principal: BankingPrincipal,
    session: SessionDep,
    data: SyncRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> BankAccountSyncRun | JSONResponse:
    """ "Sync now" with the user present (does not spend the unattended PSD2 allowance). 409 with the
    run's id (`run_id`) when one is already queued or running; 409 `account_not_active` when the account
    is not active."""
    data = data or SyncRequest()
    keyed = (f"POST /v1/bank-accounts/{account_id}/syncs", data.model_dump(mode="json", by_alias=True))
    run = functools.partial(_sync_now, request, account_id, data, session, principal)
    return await idempotency.once(session, principal.company_id, idempotency_key, keyed, 202, run)


async def _sync_now(
    request: Request, account_id: uuid.UUID, data: SyncRequest, session: AsyncSession, principal: Principal
) -> BankAccountSyncRun:
    today = today_stockholm(request.app.state.clock)
    if data.to is not None and data.to > today:
        raise Unprocessable("to must not be in the future", loc=["body", "to"])
    if data.from_ is not None and data.from_ > (data.to or today):
        raise Unprocessable("from must not be after to", loc=["body", "from"])
    account = await BankAccountRepository(session).get_scoped_for_update(principal.company_id, account_id)
    if account is None:
        raise BankAccountNotFound("no such bank account")
    await company.require_bank_import(session, principal.company_id, request.app.state.settings)
    if data.from_ is not None and data.from_ < account.sync_from:
        raise Unprocessable(
            f"from is before the account's sync_from ({account.sync_from.isoformat()}); move sync_from to backfill",
            loc=["body", "from"],
        )
    if data.to is not None and data.to < account.sync_from:
        raise Unprocessable(
            f"to is before the account's sync_from ({account.sync_from.isoformat()})", loc=["body", "to"]
        )
    run = await schedule_sync(
        session,
        account,
        trigger=SyncTrigger.manual,
        user_present=True,
        window_from=data.from_,
        window_to=data.to,
        psu_ip_address=client_address(request),
        clock=request.app.state.clock,
    )
    return run_read(run)


@router.get(
    "/bank-accounts/{account_id}/syncs",
    response_model=Page[BankAccountSyncRun],
    responses=responses(404, 422),
)
async def list_syncs(
    account_id: uuid.UUID,
    principal: BankingPrincipal,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[BankAccountSyncRun]:
    """The account's sync runs, newest first."""
    account = await BankAccountRepository(session).get_scoped(principal.company_id, account_id)
    if account is None:
        raise BankAccountNotFound("no such bank account")
    after = SYNCS_KEYSET.decode(cursor)
    found = await SyncRunRepository(session).page(principal.company_id, account_id, after, limit + 1)
    runs, next_cursor = SYNCS_KEYSET.cut(found, limit, lambda r: (r.created_at, r.id))
    return Page(items=[run_read(r) for r in runs], next_cursor=next_cursor)


@router.get("/sync-schedule", response_model=SyncSchedule)
async def sync_schedule(request: Request, principal: BankingPrincipal) -> SyncSchedule:
    """The nightly schedule of bank syncs (configuration, read-only; scope `banking`, as every bank
    import route)."""
    sync = request.app.state.settings.sync
    return read_model(
        SyncSchedule, sync, window_start=sync.night_window_start, window_end=sync.night_window_end
    )
