"""HTTP routes of the bank catalogue, connections, linked accounts and the ledger-account mapping."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from ledgerlink.auth.dependencies import BankingPrincipal
from ledgerlink.banks.adapters.registry import catalogue
from ledgerlink.banks.schemas import (
    AccountMappingList,
    AccountMappingRead,
    AccountMappingUpdate,
    AccountType,
    AuthorizationComplete,
    AvailableAccountList,
    BankAccountCreate,
    BankAccountPage,
    BankAccountRead,
    BankAccountUpdate,
    BankList,
    BankRead,
    ConnectionCreate,
    ConnectionCreated,
    ConnectionPage,
    ConnectionRead,
    LedgerAccountList,
    ReauthorizationCreate,
)
from ledgerlink.banks.service.accounts import ScheduleSync, bank_accounts, ledger_suggestions
from ledgerlink.banks.service.catalogue import is_configured
from ledgerlink.banks.service.connections import BankCall, connections
from ledgerlink.db.session import SessionDep
from ledgerlink.errors import responses
from ledgerlink.idempotency.service import IdempotencyKey, idempotency
from ledgerlink.models.bank import BankConnection
from ledgerlink.oauth.errors import StateMismatch
from ledgerlink.pagination import Cursor, Limit
from ledgerlink.sync.schemas import BankAccountSyncRun, BankAccountUpdated, run_read
from ledgerlink.sync.service import schedule_sync

router = APIRouter(tags=["banks"])


def psu_ip_of(request: Request) -> str | None:
    """The user's IP (the PSU-IP-Address for the bank): the first X-Forwarded-For hop, else the peer."""
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        first = forwarded.split(",", 1)[0].strip()
        if first:
            return first[:64]
    return request.client.host if request.client else None


def bank_call(request: Request) -> BankCall:
    return BankCall(
        settings=request.app.state.settings,
        transports=request.app.state.transports,
        psu_ip_address=psu_ip_of(request),
    )


def connection_read(connection: BankConnection) -> ConnectionRead:
    return ConnectionRead(
        id=connection.id,
        bank_id=connection.bank_id,
        account_type="business" if connection.account_type == "business" else "private",
        status=connection.status.value,
        consent_expires_at=connection.consent_expires_at,
        created_at=connection.created_at,
        last_error=connection.last_error,
        sca_method="decoupled" if connection.sca_method == "decoupled" else "redirect",
        authorized_at=connection.authorized_at,
    )


async def _idempotent(
    request: Request, session: Any, principal: Any, key: str | None, body: Any
) -> JSONResponse | None:
    replay = await idempotency.begin(
        session, principal.company_id, key, f"{request.method} {request.url.path}", body
    )
    if replay is None:
        return None
    return replay.response()


# --------------------------------------------------------------------------- catalogue


@router.get("/banks", response_model=BankList, responses=responses(401, 403))
async def list_banks(
    request: Request,
    principal: BankingPrincipal,
    account_type: Annotated[AccountType | None, Query(description="Only banks offering this kind")] = None,
) -> BankList:
    """The bank catalogue (the sandbox bank only when the sandbox is on)."""
    settings = request.app.state.settings
    items = [
        BankRead(
            id=b.id,
            name=b.name,
            bic=b.bic,
            status=b.status,
            account_types=list(b.account_types),
            sca_methods=list(b.sca_methods),
            max_history_days=b.max_history_days,
            consent_max_days=b.consent_max_days,
            configured=is_configured(settings, b),
        )
        for b in catalogue(include_sandbox=settings.sandbox)
        if account_type is None or account_type in b.account_types
    ]
    return BankList(items=items)


# --------------------------------------------------------------------------- connections


@router.post(
    "/bank-connections",
    status_code=201,
    response_model=ConnectionCreated,
    responses=responses(401, 403, 409, 422, 502, 503),
)
async def create_bank_connection(
    request: Request,
    data: ConnectionCreate,
    principal: BankingPrincipal,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Start connecting a bank: creates the consent and answers how the user logs in (redirect URL or
    BankID autostart token). 403 `plan_required` without the Business plan; 409 `bank_unavailable` for
    a bank that is coming soon; 422 for an unknown bank (`unknown_bank`), an account type the bank does
    not offer, or a redirect URI not on the allow-list; 502/503 when the bank fails."""
    if replay := await _idempotent(request, session, principal, idempotency_key, data.model_dump()):
        return replay
    created = await connections.create(session, principal, data, bank_call(request))
    await idempotency.complete(session, principal.company_id, idempotency_key, 201, created)
    return created


@router.get("/bank-connections", response_model=ConnectionPage, responses=responses(401, 403, 422))
async def list_bank_connections(
    principal: BankingPrincipal, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> ConnectionPage:
    """The company's bank connections, newest first."""
    rows, next_cursor = await connections.list_page(session, principal, limit=limit, cursor=cursor)
    return ConnectionPage(items=[connection_read(c) for c in rows], next_cursor=next_cursor)


@router.get(
    "/bank-connections/{connection_id}",
    response_model=ConnectionRead,
    responses=responses(401, 403, 404, 502, 503),
)
async def get_bank_connection(
    request: Request, connection_id: uuid.UUID, principal: BankingPrincipal, session: SessionDep
) -> ConnectionRead:
    """One connection. While a decoupled BankID login is in progress, each read polls the bank once
    and advances the status."""
    connection = await connections.get(session, principal, connection_id, bank_call(request))
    return connection_read(connection)


@router.post(
    "/bank-connections/{connection_id}/authorization",
    response_model=ConnectionRead,
    responses=responses(400, 401, 403, 404, 409, 422, 502, 503),
)
async def complete_bank_authorization(
    request: Request,
    connection_id: uuid.UUID,
    data: AuthorizationComplete,
    principal: BankingPrincipal,
    session: SessionDep,
) -> ConnectionRead:
    """Relay the bank's redirect (`code`, `state`). Success → `active` with the accounts read once. A
    refusal at the bank answers 200 with status `failed` and `last_error`. Wrong, reused, expired or
    foreign `state` → 400 `state_mismatch`."""
    if not data.state:
        raise StateMismatch()
    connection = await connections.authorize(
        session, principal, connection_id, code=data.code, state=data.state, call=bank_call(request)
    )
    return connection_read(connection)


@router.get(
    "/bank-connections/{connection_id}/available-accounts",
    response_model=AvailableAccountList,
    responses=responses(401, 403, 404, 409),
)
async def list_available_accounts(
    connection_id: uuid.UUID, principal: BankingPrincipal, session: SessionDep
) -> AvailableAccountList:
    """The accounts at the bank, as read right after authorization (409 if the connection is not active)."""
    return AvailableAccountList(items=await connections.available_accounts(session, principal, connection_id))


@router.post(
    "/bank-connections/{connection_id}/reauthorization",
    status_code=201,
    response_model=ConnectionCreated,
    responses=responses(401, 403, 404, 409, 422, 502, 503),
)
async def reauthorize_bank_connection(
    request: Request,
    connection_id: uuid.UUID,
    principal: BankingPrincipal,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
    data: ReauthorizationCreate | None = None,
) -> Any:
    """A new authorization for the same connection. On completion the linked accounts stay the same
    resources (re-bound by IBAN/BBAN), with their history and mapping."""
    data = data or ReauthorizationCreate()
    if replay := await _idempotent(request, session, principal, idempotency_key, data.model_dump()):
        return replay
    created = await connections.reauthorize(session, principal, connection_id, data, bank_call(request))
    await idempotency.complete(session, principal.company_id, idempotency_key, 201, created)
    return created


@router.delete("/bank-connections/{connection_id}", status_code=204, responses=responses(401, 403, 404))
async def delete_bank_connection(
    request: Request, connection_id: uuid.UUID, principal: BankingPrincipal, session: SessionDep
) -> Response:
    """Revoke the consent at the bank (best effort) and stop every linked account; transactions stay."""
    await connections.delete(session, principal, connection_id, bank_call(request))
    return Response(status_code=204)


# --------------------------------------------------------------------------- linked accounts


@router.post(
    "/bank-accounts",
    status_code=201,
    response_model=BankAccountRead,
    responses=responses(401, 403, 404, 409, 422),
)
async def create_bank_account(
    request: Request,
    data: BankAccountCreate,
    principal: BankingPrincipal,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Link an account of an active connection (status `pending_confirmation`). 422 for a `sync_from`
    in the future or older than the bank allows (the detail names the earliest date) and for a ledger
    account outside 1900-1999; 409 when the account is already linked or the ledger account is taken."""
    if replay := await _idempotent(request, session, principal, idempotency_key, data.model_dump()):
        return replay
    created = await bank_accounts.create(session, principal, data, request.app.state.settings)
    await idempotency.complete(session, principal.company_id, idempotency_key, 201, created)
    return created


@router.get("/bank-accounts", response_model=BankAccountPage, responses=responses(401, 403, 422))
async def list_bank_accounts(
    principal: BankingPrincipal, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> BankAccountPage:
    """The company's linked bank accounts with balance and the count of transactions to book."""
    items, next_cursor = await bank_accounts.list_page(session, principal, limit=limit, cursor=cursor)
    return BankAccountPage(items=items, next_cursor=next_cursor)


@router.get(
    "/bank-accounts/{bank_account_id}", response_model=BankAccountRead, responses=responses(401, 403, 404)
)
async def get_bank_account(
    bank_account_id: uuid.UUID, principal: BankingPrincipal, session: SessionDep
) -> BankAccountRead:
    """One linked bank account."""
    return await bank_accounts.get(session, principal, bank_account_id)


def _scheduler(request: Request) -> ScheduleSync:
    """The sync feature's scheduling, on the app's service clock (the bank services get it passed in)."""
    return functools.partial(schedule_sync, clock=request.app.state.clock)


@router.patch(
    "/bank-accounts/{bank_account_id}",
    response_model=BankAccountUpdated,
    responses=responses(401, 403, 404, 409, 422),
)
async def update_bank_account(
    request: Request,
    bank_account_id: uuid.UUID,
    data: BankAccountUpdate,
    principal: BankingPrincipal,
    session: SessionDep,
) -> BankAccountUpdated:
    """Change the sync window, mapping or display name. Moving `sync_from` earlier schedules a backfill
    (409 if a sync of the account is already queued or running); later only narrows future syncs."""
    account, backfill = await bank_accounts.update(
        session, principal, bank_account_id, data, request.app.state.settings, _scheduler(request)
    )
    return BankAccountUpdated(**account.model_dump(), backfill=run_read(backfill) if backfill else None)


@router.post(
    "/bank-accounts/{bank_account_id}/confirmation",
    status_code=202,
    response_model=BankAccountSyncRun,
    responses=responses(401, 403, 404, 409, 422),
)
async def confirm_bank_account(
    request: Request,
    bank_account_id: uuid.UUID,
    principal: BankingPrincipal,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Confirm the import: the account goes `active` and its initial import is queued (the answer is
    that sync run)."""
    if replay := await _idempotent(
        request, session, principal, idempotency_key, {"id": str(bank_account_id)}
    ):
        return replay
    run = run_read(
        await bank_accounts.confirm(
            session, principal, bank_account_id, request.app.state.settings, _scheduler(request)
        )
    )
    await idempotency.complete(session, principal.company_id, idempotency_key, 202, run)
    return run


@router.delete("/bank-accounts/{bank_account_id}", status_code=204, responses=responses(401, 403, 404))
async def delete_bank_account(
    bank_account_id: uuid.UUID, principal: BankingPrincipal, session: SessionDep
) -> Response:
    """Stop syncing the account (status `disconnected`); its transactions stay."""
    await bank_accounts.delete(session, principal, bank_account_id)
    return Response(status_code=204)


# --------------------------------------------------------------------------- mapping


@router.get("/account-mappings", response_model=AccountMappingList, responses=responses(401, 403))
async def list_account_mappings(principal: BankingPrincipal, session: SessionDep) -> AccountMappingList:
    """Which BAS ledger account each linked bank account is booked against."""
    return AccountMappingList(items=await bank_accounts.mappings(session, principal))


@router.put(
    "/account-mappings/{bank_account_id}",
    response_model=AccountMappingRead,
    responses=responses(401, 403, 404, 409, 422),
)
async def put_account_mapping(
    bank_account_id: uuid.UUID, data: AccountMappingUpdate, principal: BankingPrincipal, session: SessionDep
) -> AccountMappingRead:
    """Map a bank account to a BAS account in 1900-1999 (else 422 `ledger_account_invalid`; one already
    mapped to another bank account of the company → 409 `ledger_account_in_use`)."""
    return await bank_accounts.put_mapping(session, principal, bank_account_id, data.ledger_account)


@router.get("/ledger-accounts", response_model=LedgerAccountList, responses=responses(401, 403, 422))
async def list_ledger_accounts(
    principal: BankingPrincipal,
    account_class: Annotated[
        str, Query(alias="class", pattern=r"^\d{1,3}$", description="BAS class or group prefix, e.g. 19")
    ] = "19",
) -> LedgerAccountList:
    """BAS suggestions for bank accounts (kontogrupp 19, Kassa och bank)."""
    return LedgerAccountList(items=ledger_suggestions(account_class))


__all__ = ["router"]
