"""The OpenAPI document: what the routes declare, completed with what a generated client needs to know.

:func:`install_openapi` finishes the app's document once: the ``Problem`` schema with every ``code`` the
service sends (gathered from the :class:`~ledgerlink.errors.AppError` hierarchy and the raises in the
code), the to-do types as an enum, the webhook events with their payloads (OpenAPI 3.1 ``webhooks``),
``Location`` on 201/202 and ``Retry-After`` on 429/503. :class:`LocationMiddleware` sets ``Location`` at
runtime from :data:`LOCATIONS`.
"""

from __future__ import annotations

import ast
import datetime as dt
import itertools
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledgerlink.closing.schemas import ImportCounts
from ledgerlink.errors import PROBLEM_JSON, AppError, Problem

PACKAGE = Path(__file__).resolve().parents[1]
SCHEMA_REF = "#/components/schemas/{model}"

#: Codes the error handlers in ``errors.py`` and the middleware send without an AppError class.
HANDLER_CODES = (
    "validation_error",
    "method_not_allowed",
    "http_error",
    "invalid_text",
    "internal_error",
    "not_found",
    "unauthorized",
    "payload_too_large",
)

#: Where the resource a 201/202 answers can be found: a template over the route's path parameters and
#: the answered body's ``id``. A sync run is listed under its account (no single-run path).
LOCATIONS: dict[str, str] = {
    "create_bank_connection": "/v1/bank-connections/{id}",
    "reauthorize_bank_connection": "/v1/bank-connections/{connection_id}",
    "create_bank_account": "/v1/bank-accounts/{id}",
    "confirm_bank_account": "/v1/bank-accounts/{bank_account_id}/syncs",
    "sync_now": "/v1/bank-accounts/{account_id}/syncs",
    "create_webhook_endpoint": "/v1/webhook-endpoints/{id}",
    "create_closing": "/v1/closings/{id}",
    "start_import": "/v1/closings/{closing_id}/imports/{id}",
    "upload_sie": "/v1/closings/{closing_id}/imports/{id}",
    "create_adjustment": "/v1/closings/{closing_id}/adjustments/{id}",
    "start_export": "/v1/closings/{closing_id}/exports/{id}",
    "create_booking_rule": "/v1/booking-rules/{id}",
    "create_statement_import": "/v1/bank-accounts/{bank_account_id}/statement-imports/{id}",
    # a BgMax file has no read of its own: its deposits show on the account's transactions
    "upload_bgmax": "/v1/transactions?bank_account_id={bank_account_id}",
}


# -- webhook payloads ----------------------------------------------------------------------------------


class WebhookSyncCounts(BaseModel):
    fetched: int
    inserted: int
    updated: int
    removed: int


class TransactionsAvailableData(BaseModel):
    bank_account_id: uuid.UUID
    sync_run_id: uuid.UUID
    new: int = Field(description="Rows the sync inserted")
    unbooked_count: int = Field(description="The account's unbooked_count after the sync")


class BankAccountSyncedData(BaseModel):
    bank_account_id: uuid.UUID
    sync_run_id: uuid.UUID
    trigger: Literal["initial", "scheduled", "manual", "backfill"]
    window_from: dt.date
    window_to: dt.date
    counts: WebhookSyncCounts
    unbooked_count: int = Field(description="The account's unbooked_count after the sync")


class BankConnectionReauthRequiredData(BaseModel):
    connection_id: uuid.UUID
    bank_id: str
    reason: str
    occurred_at: dt.datetime
    code: str | None = Field(
        default=None, description="consent_expired (the consent reached its end) or reauth_required"
    )


class BankConnectionConsentExpiringData(BaseModel):
    connection_id: uuid.UUID
    bank_id: str
    expires_at: dt.datetime
    days_before: int | None = Field(
        default=None, description="The reminder threshold reached: days before expires_at (14, then 3)"
    )


class FortnoxImportCompletedData(BaseModel):
    closing_id: uuid.UUID
    import_id: uuid.UUID
    counts: ImportCounts


class FortnoxExportCompletedData(BaseModel):
    closing_id: uuid.UUID
    export_id: uuid.UUID
    items: dict[Literal["none", "pending", "sending", "posted", "failed", "uncertain"], int] = Field(
        description="How many of the export's adjustments ended in each state (states with none left out)"
    )


class BankAccountBalanceGapData(BaseModel):
    bank_account_id: uuid.UUID
    amount: str = Field(description="Bank balance minus opening balance plus booked rows, decimal string")
    since: dt.date | None = Field(description="The first bank day the gap shows")


WEBHOOK_PAYLOADS: dict[str, type[BaseModel]] = {
    "transactions.available": TransactionsAvailableData,
    "bank_account.synced": BankAccountSyncedData,
    "bank_connection.reauth_required": BankConnectionReauthRequiredData,
    "bank_connection.consent_expiring": BankConnectionConsentExpiringData,
    "fortnox.import.completed": FortnoxImportCompletedData,
    "fortnox.export.completed": FortnoxExportCompletedData,
    "bank_account.balance_gap": BankAccountBalanceGapData,
}

WEBHOOK_DESCRIPTION = (
    "POSTed to every webhook endpoint subscribed to the event, at least once, from an outbox, retried "
    'with backoff. `Ledgerlink-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the '
    "endpoint's secret; `Ledgerlink-Event-Id` (deduplicate on it) and `Ledgerlink-Event-Type`. Any 2xx "
    "acknowledges the delivery."
)


def _event_name(event: str) -> str:
    return "".join(part.capitalize() for part in event.replace(".", "_").split("_")) + "Event"


def _webhooks(components: dict[str, Any]) -> dict[str, Any]:
    webhooks: dict[str, Any] = {}
    for event, payload in WEBHOOK_PAYLOADS.items():
        _add_model(components, payload)
        name = _event_name(event)
        components[name] = {
            "title": name,
            "type": "object",
            "description": f"The `{event}` event as delivered.",
            "required": ["id", "type", "created_at", "company_id", "data"],
            "properties": {
                "id": {"type": "string", "format": "uuid", "description": "Ledgerlink-Event-Id"},
                "type": {"type": "string", "const": event},
                "created_at": {"type": "string", "format": "date-time"},
                "company_id": {"type": "string", "format": "uuid"},
                "data": {"$ref": SCHEMA_REF.format(model=payload.__name__)},
            },
        }
        webhooks[event] = {
            "post": {
                "operationId": f"webhook_{event.replace('.', '_')}",
                "summary": event,
                "description": WEBHOOK_DESCRIPTION,
                "parameters": [
                    {
                        "name": "Ledgerlink-Signature",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "Ledgerlink-Event-Id",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "Ledgerlink-Event-Type",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": SCHEMA_REF.format(model=name)}}},
                },
                "responses": {"2XX": {"description": "Delivered; any other answer is retried"}},
            }
        }
    return webhooks


def _add_model(components: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template=SCHEMA_REF)
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.setdefault(model.__name__, schema)


# -- problem codes -------------------------------------------------------------------------------------


def _subclasses(cls: type[AppError]) -> list[type[AppError]]:
    found: list[type[AppError]] = []
    for sub in cls.__subclasses__():
        found.extend([sub, *_subclasses(sub)])
    return found


def error_classes() -> list[type[AppError]]:
    """Every AppError class of the service (the feature error modules are imported first)."""
    import ledgerlink.api  # noqa: F401  (every feature's endpoints, services and errors)

    return [AppError, *_subclasses(AppError)]


@cache
def problem_codes() -> tuple[str, ...]:
    """Every ``code`` a problem answer can carry: the class codes, the ``code="..."`` given to an
    AppError where it is raised or built, and the handlers' own."""
    classes = error_classes()
    names = {cls.__name__ for cls in classes} | {"problem_response"}
    codes = {cls.code for cls in classes} | set(HANDLER_CODES)
    for path in sorted(PACKAGE.rglob("*.py")):
        if "sandbox" in path.relative_to(PACKAGE).parts:
            continue  # the sandboxes imitate other services' errors
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple):  # a mapping table: (..., ProblemClass, "code", ...)
                codes.update(_tabled_code(node, names))
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if name not in names:
                continue
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg == "code" and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    codes.add(value.value)
    return tuple(sorted(codes))


def _tabled_code(node: ast.Tuple, names: set[str]) -> list[str]:
    elements = node.elts
    for first, second in itertools.pairwise(elements):
        if (
            isinstance(first, ast.Name)
            and first.id in names
            and isinstance(second, ast.Constant)
            and isinstance(second.value, str)
        ):
            return [second.value]
    return []


# -- the document --------------------------------------------------------------------------------------


def _problem_schema(components: dict[str, Any]) -> None:
    _add_model(components, Problem)
    components["ProblemCode"] = {
        "title": "ProblemCode",
        "type": "string",
        "enum": list(problem_codes()),
        "description": "Every code the service sends today. Branch on the ones you handle; treat any other "
        "as its status says (new codes may be added without a new API version).",
    }
    code = components["Problem"]["properties"]["code"]
    components["Problem"]["properties"]["code"] = {
        "title": code.get("title", "Code"),
        "description": "A stable machine code: one of ProblemCode, or a code added later",
        "anyOf": [{"$ref": SCHEMA_REF.format(model="ProblemCode")}, {"type": "string"}],
    }


def _headers(schema: dict[str, Any]) -> None:
    location = {
        "description": "Where the created resource (or the job) can be read",
        "schema": {"type": "string"},
    }
    retry_after = {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
    replayed = {
        "description": "`true` when this is the stored first answer to the same Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    }
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            keyed = any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", []))
            for status, response in operation.get("responses", {}).items():
                if keyed and status.startswith("2"):
                    response.setdefault("headers", {})["Idempotent-Replayed"] = replayed
                if status in ("201", "202") and operation.get("operationId") in LOCATIONS:
                    response.setdefault("headers", {})["Location"] = location
                if status in ("429", "503"):
                    response.setdefault("headers", {})["Retry-After"] = retry_after


def install_openapi(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        _problem_schema(components)
        problem = {PROBLEM_JSON: {"schema": {"$ref": SCHEMA_REF.format(model="Problem")}}}
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                response = operation.get("responses", {}).get("422")
                if response is not None:
                    response["content"] = problem
                    response["description"] = "Unprocessable request"
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        from ledgerlink.models.inbox import TodoType

        components["TodoType"] = {
            "title": "TodoType",
            "type": "string",
            "enum": [t.value for t in TodoType],
            "description": "Every kind of to-do; each is one member of the to-do union (`type`).",
        }
        _headers(schema)
        schema["webhooks"] = _webhooks(components)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class LocationMiddleware:
    """``Location`` on the 201/202 answers named in :data:`LOCATIONS` (replays included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body: list[bytes] = []

        async def send_with_location(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] in (201, 202):
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            location = _location(scope, b"".join(body))
            if location is not None:
                start["headers"] = [*start.get("headers", []), (b"location", location.encode())]
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(body)})

        await self.app(scope, receive, send_with_location)


def _location(scope: Scope, body: bytes) -> str | None:
    route = scope.get("route")
    template = LOCATIONS.get(getattr(route, "name", ""))
    if template is None:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    values = {k: str(v) for k, v in scope.get("path_params", {}).items()}
    if isinstance(document, dict) and "id" in document:
        values["id"] = str(document["id"])
    try:
        return template.format(**values)
    except KeyError:
        return None
