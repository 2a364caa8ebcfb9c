"""``/v1/fortnox``: connect Fortnox (OAuth2 authorization code), read and delete the connection, and the
lists the export dialog needs. Scope ``closing``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request, Response

from ledgerlink.auth.dependencies import ClosingPrincipal
from ledgerlink.db.session import SessionDep
from ledgerlink.errors import responses
from ledgerlink.fortnox import authorization, service
from ledgerlink.fortnox.client import FortnoxClient
from ledgerlink.fortnox.schemas import (
    FinancialYearList,
    FinancialYearRead,
    FortnoxAuthorizationCallback,
    FortnoxAuthorizationRequest,
    FortnoxAuthorizationStarted,
    FortnoxConnectionRead,
    VoucherSeriesList,
    VoucherSeriesRead,
)
from ledgerlink.idempotency.service import IdempotencyKey, idempotency
from ledgerlink.models.fortnox import FortnoxConnection
from ledgerlink.runtime import app_env

router = APIRouter(prefix="/fortnox", tags=["fortnox"], responses=responses(401, 403))
T = TypeVar("T")


async def _read(request: Request, company_id: uuid.UUID, call: Callable[[FortnoxClient], Awaitable[T]]) -> T:
    """A read from the company's Fortnox (does not renew the validity; only imports and exports do)."""
    return await service.read_through_client(call, app_env(request.app.state), company_id)


def connection_read(connection: FortnoxConnection | None) -> FortnoxConnectionRead:
    status = service.connection_status(connection)
    if connection is None:
        return FortnoxConnectionRead(status="not_connected")
    return FortnoxConnectionRead(
        status=status,
        fortnox_company_name=connection.fortnox_company_name,
        org_number=connection.org_number,
        scopes=connection.scopes.split(),
        tenant_id=connection.tenant_id,
        connected_at=connection.connected_at,
        last_used_at=connection.last_used_at,
        expires_at=connection.expires_at,
    )


@router.post("/authorization", response_model=FortnoxAuthorizationStarted, responses=responses(422, 503))
async def start_authorization(
    request: Request, body: FortnoxAuthorizationRequest, principal: ClosingPrincipal, session: SessionDep
) -> FortnoxAuthorizationStarted:
    """Start connecting Fortnox: open `authorization_url` in the browser (`access_type=offline`).

    `redirect_uri` must be on the server's allow-list (else 422 `redirect_uri_not_allowed`). Every call
    issues a fresh single-use `state` (15 minutes) and creates nothing durable, so no Idempotency-Key."""
    started = await authorization.start_authorization(
        session,
        settings=request.app.state.settings,
        company_id=principal.company_id,
        redirect_uri=body.redirect_uri,
        login=principal.user_id,
    )
    return FortnoxAuthorizationStarted(authorization_url=started.authorization_url, state=started.state)


@router.post(
    "/authorization/callback",
    response_model=FortnoxConnectionRead,
    responses=responses(400, 409, 422, 502, 503),
)
async def complete_authorization(
    request: Request,
    body: FortnoxAuthorizationCallback,
    principal: ClosingPrincipal,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Finish connecting: relay `code` and `state` from the redirect (or `error` and `state`).

    400 `state_mismatch` for an unknown, used, expired or another company's state; 400
    `authorization_denied` when the user declined (`error=access_denied`; the state is used up);
    422 `authorization_code_invalid` when Fortnox answers `invalid_grant` to the code (expired after
    10 minutes, used, or another redirect URI); 502 when Fortnox fails."""

    async def complete() -> FortnoxConnectionRead:
        env = app_env(request.app.state)
        connection = await authorization.complete_authorization(
            session, env, principal.company_id, body, login=principal.user_id
        )
        return connection_read(connection)

    keyed = ("POST /v1/fortnox/authorization/callback", body.model_dump())
    return await idempotency.once(session, principal.company_id, idempotency_key, keyed, 200, complete)


@router.get("/connection", response_model=FortnoxConnectionRead)
async def get_connection(principal: ClosingPrincipal, session: SessionDep) -> FortnoxConnectionRead:
    """The company's Fortnox connection; `status` is `expired` once `now > expires_at`
    (`expires_at = last_used_at + 30 days`, renewed by every import or export)."""
    return connection_read(await service.get_connection(session, principal.company_id))


@router.delete("/connection", status_code=204, response_class=Response)
async def delete_connection(request: Request, principal: ClosingPrincipal, session: SessionDep) -> Response:
    """Disconnect: the refresh token is revoked at Fortnox (best effort) and the tokens are deleted here;
    the connection then reads `revoked`. Idempotent."""
    await authorization.disconnect(
        session,
        settings=request.app.state.settings,
        transport=request.app.state.transports.get("fortnox"),
        company_id=principal.company_id,
    )
    return Response(status_code=204)


@router.get("/financial-years", response_model=FinancialYearList, responses=responses(409, 502, 503))
async def list_financial_years(request: Request, principal: ClosingPrincipal) -> FinancialYearList:
    """Fortnox's financial years. 409 `fortnox_not_connected` / `fortnox_expired` /
    `fortnox_reauth_required`; 502 with Fortnox's message. Reading lists does not renew the validity."""
    years = await _read(request, principal.company_id, lambda client: client.financial_years())
    return FinancialYearList(
        items=[
            FinancialYearRead(
                id=y.id, from_date=y.from_date, to_date=y.to_date, accounting_method=y.accounting_method
            )
            for y in years
        ]
    )


@router.get("/voucher-series", response_model=VoucherSeriesList, responses=responses(409, 422, 502, 503))
async def list_voucher_series(
    request: Request,
    principal: ClosingPrincipal,
    financial_year_id: int = Query(
        ge=1, description="Fortnox's financial year id (from /fortnox/financial-years)"
    ),
) -> VoucherSeriesList:
    """The voucher series of a financial year, for the export dialog (`manual` ones accept vouchers).
    Errors as for financial years; does not renew the validity."""
    series = await _read(
        request, principal.company_id, lambda client: client.voucher_series(financial_year_id)
    )
    return VoucherSeriesList(
        items=[VoucherSeriesRead(code=s.code, description=s.description, manual=s.manual) for s in series]
    )
