"""HTTP routes of the bank catalogue, connections, linked accounts and the ledger-account mapping."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

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
    LastErrorRead,
    LedgerAccountList,
    ReauthorizationCreate,
)
from ledgerlink.banks.service.accounts import ScheduleSync, bank_accounts, ledger_suggestions
from ledgerlink.banks.service.catalogue import is_configured
from ledgerlink.banks.service.connections import BankCall, connections
from ledgerlink.client_address import client_address
from ledgerlink.db.session import ReadSessionDep, SessionDep
from ledgerlink.errors import responses
from ledgerlink.idempotency.service import IdempotencyKey, idempotency
from ledgerlink.models.bank import BankConnection
from ledgerlink.oauth.errors import StateMismatch
from ledgerlink.pagination import Cursor, Limit
from ledgerlink.schema_types import read_model
from ledgerlink.sync.schemas import BankAccountSyncRun, BankAccountUpdated, run_read
from ledgerlink.sync.service import schedule_sync

router = APIRouter(tags=["banks"], responses=responses(401, 403))


def bank_call(request: Request) -> BankCall:
    """A bank call made with the user present: it carries the user's address (PSU-IP-Address)."""
    return BankCall(
        settings=request.app.state.settings,
        transports=request.app.state.transports,
        psu_ip_address=client_address(request),
    )


def connection_read(connection: BankConnection) -> ConnectionRead:
    return ConnectionRead(
        id=connection.id,
        bank_id=connection.bank_id,
        account_type="business" if connection.account_type == "business" else "private",
        status=connection.status.value,
        consent_expires_at=connection.consent_expires_at,
        created_at=connection.created_at,
        last_error=LastErrorRead.of(connection),
        sca_method="decoupled" if connection.sca_method == "decoupled" else "redirect",
        authorized_at=connection.authorized_at,
    )


def _keyed(request: Request, body: Any) -> tuple[str, Any]:
    """What identifies an idempotent POST: its method with the path, and the body."""
    return f"{request.method} {request.url.path}", body


# --------------------------------------------------------------------------- catalogue


@router.get("/banks", response_model=BankList)
async def list_banks(
    request: Request,
    principal: BankingPrincipal,
    account_type: Annotated[AccountType | None, Query(description="Only banks offering this kind")] = None,
) -> BankList:
    """The bank catalogue (the sandbox bank only when the sandbox is on)."""
    settings = request.app.state.settings
    items = [
        read_model(BankRead, b, configured=is_configured(settings, b))
        for b in catalogue(include_sandbox=settings.sandbox)
        if account_type is None or account_type in b.account_types
    ]
    return BankList(items=items)


# --------------------------------------------------------------------------- connections


@router.post(
    "/bank-connections",
    status_code=201,
    response_model=ConnectionCreated,
    responses=responses(409, 422, 502, 503),
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
    a bank that is coming soon; 409 `connection_exists` (naming `connection_id`) when the company is
    already connected to the bank for the same person, unless `replace_connection_id` names that
    connection (docs/api.md: one connection per bank and person); 422 for an unknown bank
    (`unknown_bank`), an account type the bank does not offer, or a redirect URI not on the allow-list;
    502/503 when the bank fails."""
    keyed = _keyed(request, data.model_dump())
    create = functools.partial(connections.create, session, principal, data, bank_call(request))
    return await idempotency.once(session, principal.company_id, idempotency_key, keyed, 201, create)


@router.get("/bank-connections", response_model=ConnectionPage, responses=responses(422))
async def list_bank_connections(
    principal: BankingPrincipal, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> ConnectionPage:
    """The company's bank connections, newest first."""
    rows, next_cursor = await connections.list_page(session, principal, limit=limit, cursor=cursor)
    return ConnectionPage(items=[connection_read(c) for c in rows], next_cursor=next_cursor)


@router.get(
    "/bank-connections/{connection_id}", response_model=ConnectionRead, responses=responses(404, 502, 503)
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
    responses=responses(400, 404, 409, 422, 502, 503),
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
    responses=responses(404, 409),
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
    responses=responses(404, 409, 422, 502, 503),
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
    keyed = _keyed(request, data.model_dump())
    start = functools.partial(
        connections.reauthorize, session, principal, connection_id, data, bank_call(request)
    )
    return await idempotency.once(session, principal.company_id, idempotency_key, keyed, 201, start)


@router.delete("/bank-connections/{connection_id}", status_code=204, responses=responses(404))
async def delete_bank_connection(
    request: Request, connection_id: uuid.UUID, principal: BankingPrincipal, session: SessionDep
) -> Response:
    """Revoke the consent at the bank (best effort) and stop every linked account; transactions stay."""
    await connections.delete(session, principal, connection_id, bank_call(request))
    return Response(status_code=204)


# --------------------------------------------------------------------------- linked accounts


@router.post(
    "/bank-accounts", status_code=201, response_model=BankAccountRead, responses=responses(404, 409, 422)
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
    keyed = _keyed(request, data.model_dump())
    create = functools.partial(bank_accounts.create, session, principal, data, request.app.state.settings)
    return await idempotency.once(session, principal.company_id, idempotency_key, keyed, 201, create)


@router.get("/bank-accounts", response_model=BankAccountPage, responses=responses(422))
async def list_bank_accounts(
    principal: BankingPrincipal, session: ReadSessionDep, limit: Limit = 50, cursor: Cursor = None
) -> BankAccountPage:
    """The company's linked bank accounts with balance and the count of transactions to book."""
    return await bank_accounts.list_page(session, principal, limit=limit, cursor=cursor)


@router.get("/bank-accounts/{bank_account_id}", response_model=BankAccountRead, responses=responses(404))
async def get_bank_account(
    bank_account_id: uuid.UUID, principal: BankingPrincipal, session: SessionDep
) -> BankAccountRead:
    """One linked bank account."""
    return await bank_accounts.get(session, principal, bank_account_id)


def _scheduler(request: Request) -> ScheduleSync:
    """The sync feature's scheduling, on the app's service clock (the bank services get it passed in);
    the runs it queues (initial import, backfill) are the user's, so they carry the user's address."""
    return functools.partial(
        schedule_sync, clock=request.app.state.clock, psu_ip_address=client_address(request)
    )


@router.patch(
    "/bank-accounts/{bank_account_id}", response_model=BankAccountUpdated, responses=responses(404, 409, 422)
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
    responses=responses(404, 409, 422),
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

    async def confirm() -> BankAccountSyncRun:
        settings = request.app.state.settings
        return run_read(
            await bank_accounts.confirm(session, principal, bank_account_id, settings, _scheduler(request))
        )

    keyed = _keyed(request, {"id": str(bank_account_id)})
    return await idempotency.once(session, principal.company_id, idempotency_key, keyed, 202, confirm)


@router.delete("/bank-accounts/{bank_account_id}", status_code=204, responses=responses(404))
async def delete_bank_account(
    bank_account_id: uuid.UUID, principal: BankingPrincipal, session: SessionDep
) -> Response:
    """Stop syncing the account (status `disconnected`); its transactions stay."""
    await bank_accounts.delete(session, principal, bank_account_id)
    return Response(status_code=204)


# --------------------------------------------------------------------------- mapping


@router.get("/account-mappings", response_model=AccountMappingList)
async def list_account_mappings(principal: BankingPrincipal, session: SessionDep) -> AccountMappingList:
    """Which BAS ledger account each linked bank account is booked against."""
    return AccountMappingList(items=await bank_accounts.mappings(session, principal))


@router.put(
    "/account-mappings/{bank_account_id}",
    response_model=AccountMappingRead,
    responses=responses(404, 409, 422),
)
async def put_account_mapping(
    bank_account_id: uuid.UUID, data: AccountMappingUpdate, principal: BankingPrincipal, session: SessionDep
) -> AccountMappingRead:
    """Map a bank account to a BAS account in 1900-1999 (else 422 `ledger_account_invalid`; one already
    mapped to another bank account of the company → 409 `ledger_account_in_use`)."""
    return await bank_accounts.put_mapping(session, principal, bank_account_id, data.ledger_account)


@router.get("/ledger-accounts", response_model=LedgerAccountList, responses=responses(422))
async def list_ledger_accounts(
    principal: BankingPrincipal,
    account_class: Annotated[
        str, Query(alias="class", pattern=r"^\d{1,3}$", description="BAS class or group prefix, e.g. 19")
    ] = "19",
) -> LedgerAccountList:
    """BAS suggestions for bank accounts (kontogrupp 19, Kassa och bank)."""
    return LedgerAccountList(items=ledger_suggestions(account_class))


__all__ = ["router"]
