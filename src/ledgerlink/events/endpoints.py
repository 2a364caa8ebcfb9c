"""Webhook endpoints of internal services: ``/v1/webhook-endpoints``.

Scope ``admin``: webhooks are registered by internal services (as billing sets plans with ``admin``),
never by a user's browser token with ``banking``/``closing``; the contract's scope set stays the three
documented ones rather than growing a ``webhooks`` scope every identity provider would have to issue."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from ledgerlink.auth.dependencies import AdminPrincipal
from ledgerlink.db.session import SessionDep
from ledgerlink.errors import responses
from ledgerlink.events.schemas import WebhookEndpointCreate, WebhookEndpointCreated, WebhookEndpointRead
from ledgerlink.events.service import webhooks
from ledgerlink.idempotency.service import IdempotencyKey, idempotency
from ledgerlink.models.events import WebhookEndpoint
from ledgerlink.pagination import Page

router = APIRouter(tags=["webhooks"], responses=responses(401, 403))


def _read(endpoint: WebhookEndpoint) -> WebhookEndpointRead:
    return WebhookEndpointRead(
        id=endpoint.id, url=endpoint.url, events=list(endpoint.events), created_at=endpoint.created_at
    )


@router.post(
    "/webhook-endpoints", status_code=201, response_model=WebhookEndpointCreated, responses=responses(422)
)
async def create_webhook_endpoint(
    request: Request,
    data: WebhookEndpointCreate,
    principal: AdminPrincipal,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> WebhookEndpointCreated | JSONResponse:
    """Register a webhook endpoint. The signing `secret` is in this response only (stored encrypted);
    an idempotent replay returns the endpoint with `secret: null`."""

    async def create() -> WebhookEndpointCreated:
        endpoint, secret = await webhooks.create(
            session, principal.company_id, data, request.app.state.settings
        )
        return WebhookEndpointCreated(**_read(endpoint).model_dump(), secret=secret)

    keyed = ("POST /v1/webhook-endpoints", data.model_dump())
    return await idempotency.once(
        session, principal.company_id, idempotency_key, keyed, 201, create, stored=_without_secret
    )


def _without_secret(created: WebhookEndpointCreated) -> dict[str, Any]:
    """What a replay of the creation shows: the endpoint without its secret."""
    return created.model_copy(update={"secret": None}).model_dump()


@router.get("/webhook-endpoints", response_model=Page[WebhookEndpointRead])
async def list_webhook_endpoints(principal: AdminPrincipal, session: SessionDep) -> Page[WebhookEndpointRead]:
    """The company's webhook endpoints (never the secret)."""
    items = await webhooks.list(session, principal.company_id)
    return Page(items=[_read(e) for e in items], next_cursor=None)


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204, responses=responses(404))
async def delete_webhook_endpoint(
    endpoint_id: uuid.UUID, principal: AdminPrincipal, session: SessionDep
) -> Response:
    """Stop delivering to an endpoint (pending deliveries are dropped)."""
    await webhooks.delete(session, principal.company_id, endpoint_id)
    return Response(status_code=204)
