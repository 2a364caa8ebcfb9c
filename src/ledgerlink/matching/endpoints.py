"""Open items, booking rules and suggestions: ``/v1/open-items``, ``/v1/booking-rules``,
``/v1/transactions/{id}/suggestions``."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, File, Path, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from ledgerlink.auth.dependencies import BankingPrincipal
from ledgerlink.db.session import SessionDep
from ledgerlink.errors import PayloadTooLarge, responses
from ledgerlink.idempotency.service import IdempotencyKey, idempotency
from ledgerlink.matching.lumpsums import import_bgmax
from ledgerlink.matching.schemas import (
    BgmaxImportRead,
    OpenItemBatch,
    OpenItemBatchResult,
    OpenItemRead,
    RuleCreate,
    RulePatch,
    RuleRead,
    SuggestionList,
)
from ledgerlink.matching.service import matching
from ledgerlink.pagination import Cursor, Limit, Page

router = APIRouter(tags=["matching"])


@router.post("/open-items/batch", response_model=OpenItemBatchResult, responses=responses(401, 403, 422))
async def upsert_open_items(
    data: OpenItemBatch, principal: BankingPrincipal, session: SessionDep
) -> OpenItemBatchResult:
    """Upsert the platform's open invoices by `external_id`; `amount_open: "0.00"` closes one.
    Sending the same batch again changes nothing."""
    return await matching.upsert_open_items(session, principal.company_id, data)


@router.get("/open-items", response_model=Page[OpenItemRead], responses=responses(401, 403, 422))
async def list_open_items(
    principal: BankingPrincipal,
    session: SessionDep,
    kind: Literal["customer_invoice", "supplier_invoice"] | None = None,
    status: Literal["open", "closed"] | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[OpenItemRead]:
    """The company's open items by `external_id`, keyset-paginated."""
    items, next_cursor = await matching.list_open_items(
        session, principal.company_id, kind=kind, status=status, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.delete("/open-items/{external_id}", status_code=204, responses=responses(401, 403, 404))
async def delete_open_item(
    principal: BankingPrincipal, session: SessionDep, external_id: str = Path(max_length=100)
) -> Response:
    await matching.delete_open_item(session, principal.company_id, external_id)
    return Response(status_code=204)


@router.get(
    "/transactions/{transaction_id}/suggestions",
    response_model=SuggestionList,
    responses=responses(401, 403, 404),
)
async def list_suggestions(
    request: Request, transaction_id: uuid.UUID, principal: BankingPrincipal, session: SessionDep
) -> SuggestionList:
    """Ranked booking suggestions for a row, best first, each with its source and reason."""
    window = request.app.state.settings.matching.date_window_days
    items = await matching.suggestions(session, principal.company_id, transaction_id, window_days=window)
    return SuggestionList.model_validate({"items": items})


@router.post("/booking-rules", status_code=201, response_model=RuleRead, responses=responses(401, 403, 422))
async def create_booking_rule(
    data: RuleCreate,
    principal: BankingPrincipal,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> RuleRead | JSONResponse:
    replay = await idempotency.begin(
        session, principal.company_id, idempotency_key, "POST /v1/booking-rules", data.model_dump(mode="json")
    )
    if replay is not None:
        return JSONResponse(replay.body, status_code=replay.status_code)
    rule = await matching.create_rule(session, principal.company_id, data)
    await idempotency.complete(
        session, principal.company_id, idempotency_key, 201, rule.model_dump(mode="json")
    )
    return rule


@router.get("/booking-rules", response_model=Page[RuleRead], responses=responses(401, 403))
async def list_booking_rules(principal: BankingPrincipal, session: SessionDep) -> Page[RuleRead]:
    """The company's booking rules by priority (lowest first)."""
    return Page(items=await matching.list_rules(session, principal.company_id), next_cursor=None)


@router.get("/booking-rules/{rule_id}", response_model=RuleRead, responses=responses(401, 403, 404))
async def get_booking_rule(rule_id: uuid.UUID, principal: BankingPrincipal, session: SessionDep) -> RuleRead:
    return await matching.get_rule(session, principal.company_id, rule_id)


@router.patch("/booking-rules/{rule_id}", response_model=RuleRead, responses=responses(401, 403, 404, 422))
async def update_booking_rule(
    rule_id: uuid.UUID, data: RulePatch, principal: BankingPrincipal, session: SessionDep
) -> RuleRead:
    return await matching.patch_rule(session, principal.company_id, rule_id, data)


@router.delete("/booking-rules/{rule_id}", status_code=204, responses=responses(401, 403, 404))
async def delete_booking_rule(
    rule_id: uuid.UUID, principal: BankingPrincipal, session: SessionDep
) -> Response:
    await matching.delete_rule(session, principal.company_id, rule_id)
    return Response(status_code=204)


@router.post(
    "/bank-accounts/{bank_account_id}/bgmax",
    status_code=201,
    response_model=BgmaxImportRead,
    responses={
        200: {
            "model": BgmaxImportRead,
            "description": "The same file again: the first result, nothing doubled",
        },
        **responses(401, 403, 404, 409, 413, 422),
    },
)
async def upload_bgmax(
    request: Request,
    bank_account_id: uuid.UUID,
    principal: BankingPrincipal,
    session: SessionDep,
    file: UploadFile = File(description="A BgMax file (Bankgiro incoming payments)"),
) -> JSONResponse:
    """Read a BgMax file: each deposit is paired with the bank row carrying its lump sum, and that row
    gains `parts`. The same file again answers 200 with the same result and changes nothing."""
    limit = request.app.state.settings.limits.max_upload_bytes
    content = await file.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLarge(f"the file is larger than {limit} bytes")
    result, new = await import_bgmax(session, principal.company_id, bank_account_id, content)
    body = BgmaxImportRead.model_validate(result).model_dump(mode="json")
    return JSONResponse(body, status_code=201 if new else 200)
