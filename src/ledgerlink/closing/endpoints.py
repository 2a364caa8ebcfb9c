"""Closings ("uppdrag"): ``/v1/closings`` with imports, trial balance, vouchers, specifications,
adjustments, exports and the adjustments as SIE (scope ``closing``)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from typing import BinaryIO, TypeVar

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ledgerlink.auth.dependencies import ClosingPrincipal
from ledgerlink.closing import service
from ledgerlink.closing.errors import ExportNotFound, ImportNotFound, InvalidSieFile
from ledgerlink.closing.repository import ClosingRepository
from ledgerlink.closing.schemas import (
    AdjustmentCreate,
    AdjustmentOut,
    ClosingCreate,
    ClosingOut,
    ClosingUpdate,
    ExportCreate,
    ExportOut,
    ImportOut,
    SpecificationList,
    TrialBalanceRow,
    VoucherOut,
)
from ledgerlink.db.session import SessionDep
from ledgerlink.errors import PayloadTooLarge, responses
from ledgerlink.idempotency.service import IdempotencyKey, idempotency
from ledgerlink.pagination import Cursor, Limit, Page
from ledgerlink.runtime import app_env

router = APIRouter(tags=["closings"], responses=responses(401, 403))
# The SIE download is bytes in code page 437; declared as octets first so generated clients read bytes.
SIE_OCTETS, SIE_TEXT = "application/octet-stream", "text/plain; charset=cp437"

Out = TypeVar("Out", bound=BaseModel)


@router.post("/closings", status_code=201, response_model=ClosingOut, responses=responses(422))
async def create_closing(
    data: ClosingCreate,
    principal: ClosingPrincipal,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> ClosingOut | JSONResponse:
    """Create a closing for one financial year (at most 18 months) with its data source."""

    async def create() -> ClosingOut:
        return service.closing_out(await service.create_closing(session, principal.company_id, data))

    keyed = ("POST /v1/closings", data.model_dump())
    return await idempotency.once(session, principal.company_id, idempotency_key, keyed, 201, create)


@router.get("/closings", response_model=Page[ClosingOut], responses=responses(422))
async def list_closings(
    principal: ClosingPrincipal, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[ClosingOut]:
    """The company's closings, newest first."""
    return await service.list_closings(session, principal.company_id, limit, cursor)


@router.get("/closings/{closing_id}", response_model=ClosingOut, responses=responses(404))
async def get_closing(closing_id: uuid.UUID, principal: ClosingPrincipal, session: SessionDep) -> ClosingOut:
    return service.closing_out(await service.get_closing(session, principal.company_id, closing_id))


@router.patch("/closings/{closing_id}", response_model=ClosingOut, responses=responses(404, 422))
async def update_closing(
    closing_id: uuid.UUID, data: ClosingUpdate, principal: ClosingPrincipal, session: SessionDep
) -> ClosingOut:
    """Change the data source ("Underhåll – Inställningar – Datakälla"); imported data stays."""
    closing = await service.update_closing(session, principal.company_id, closing_id, data)
    return service.closing_out(closing)


# -- imports ----------------------------------------------------------------------------------------


@router.post(
    "/closings/{closing_id}/imports",
    status_code=202,
    response_model=ImportOut,
    responses=responses(404, 409, 422),
)
async def start_import(
    closing_id: uuid.UUID,
    principal: ClosingPrincipal,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> ImportOut | JSONResponse:
    """Import the financial year from Fortnox (data source `fortnox`): a job, poll it for progress."""

    async def start() -> ImportOut:
        return service.import_out(
            await service.start_fortnox_import(session, principal.company_id, closing_id)
        )

    keyed: tuple[str, dict[str, str]] = (f"POST /v1/closings/{closing_id}/imports", {})
    return await idempotency.once(session, principal.company_id, idempotency_key, keyed, 202, start)


@router.post(
    "/closings/{closing_id}/imports/sie",
    status_code=202,
    response_model=ImportOut,
    responses=responses(404, 409, 413, 422),
)
async def upload_sie(
    request: Request,
    closing_id: uuid.UUID,
    principal: ClosingPrincipal,
    session: SessionDep,
    file: UploadFile = File(description="A SIE 4 file (4E or 4I; PC8 or UTF-8)"),
    idempotency_key: IdempotencyKey = None,
) -> ImportOut | JSONResponse:
    """Import a SIE 4 file (data source `sie`). It is read once here, streamed from a temporary file
    and never whole in memory: a file that is not valid SIE, or beyond the limits (accounts, rows of a
    voucher, field lengths, amounts the ledger can store), is 422 `sie_invalid` naming the line
    (`line_number`), and the closing stays as it was."""
    settings = request.app.state.settings
    limit = settings.limits.max_upload_bytes
    stream = file.file
    size = await asyncio.to_thread(_size_of, stream)
    if size > limit:
        raise PayloadTooLarge(f"the file is larger than {limit} bytes")
    if size == 0:
        raise InvalidSieFile("the file is empty", loc=["body", "file"])
    digest = await asyncio.to_thread(_sha256_of, stream)
    # read before the request's transaction starts: no transaction is held while the file is parsed
    checked = await service.check_sie_upload(stream, service.sie_limits(settings))

    async def start() -> ImportOut:
        job = await service.start_sie_import(
            session, principal.company_id, closing_id, file_name=file.filename, stream=stream, checked=checked
        )
        return service.import_out(job)

    keyed = (f"POST /v1/closings/{closing_id}/imports/sie", {"file_name": file.filename, "sha256": digest})
    return await idempotency.once(session, principal.company_id, idempotency_key, keyed, 202, start)


def _size_of(stream: BinaryIO) -> int:
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def _sha256_of(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    while block := stream.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()


@router.get("/closings/{closing_id}/imports/{import_id}", response_model=ImportOut, responses=responses(404))
async def get_import(
    closing_id: uuid.UUID, import_id: uuid.UUID, principal: ClosingPrincipal, session: SessionDep
) -> ImportOut:
    job = await ClosingRepository(session).get_import(principal.company_id, closing_id, import_id)
    if job is None:
        raise ImportNotFound("import not found")
    return service.import_out(job)


# -- imported data ----------------------------------------------------------------------------------


@router.get(
    "/closings/{closing_id}/accounts",
    response_model=Page[TrialBalanceRow],
    responses=responses(404, 409, 422),
)
async def trial_balance(
    closing_id: uuid.UUID,
    principal: ClosingPrincipal,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TrialBalanceRow]:
    """The trial balance of the imported year by account number (409 before the first import)."""
    return await service.trial_balance(session, principal.company_id, closing_id, limit, cursor)


@router.get(
    "/closings/{closing_id}/vouchers", response_model=Page[VoucherOut], responses=responses(404, 409, 422)
)
async def list_vouchers(
    closing_id: uuid.UUID,
    principal: ClosingPrincipal,
    session: SessionDep,
    account: str | None = Query(default=None, max_length=20, description="Only vouchers with a row on it"),
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[VoucherOut]:
    """The imported vouchers with their rows, in file order."""
    return await service.list_vouchers(session, principal.company_id, closing_id, account, limit, cursor)


@router.get(
    "/closings/{closing_id}/specifications", response_model=SpecificationList, responses=responses(404, 409)
)
async def specifications(
    closing_id: uuid.UUID, principal: ClosingPrincipal, session: SessionDep
) -> SpecificationList:
    """The automatic attachments ("bilagor"): `{items}` with 1510 (open customer invoices) and 2440 (open
    supplier invoices) at the year end, each with the ledger balance and the difference (see the schema
    for the sign convention)."""
    return SpecificationList(
        items=list(await service.specifications(session, principal.company_id, closing_id))
    )


# -- adjustments ------------------------------------------------------------------------------------


@router.post(
    "/closings/{closing_id}/adjustments",
    status_code=201,
    response_model=AdjustmentOut,
    responses=responses(404, 422),
)
async def create_adjustment(
    closing_id: uuid.UUID,
    data: AdjustmentCreate,
    principal: ClosingPrincipal,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> AdjustmentOut | JSONResponse:
    """A bokföringsorder. 422 names the problem: unbalanced rows, fewer than two rows, an account not
    in the imported chart, a row with both or neither of debit and credit, a negative amount, or a date
    outside the financial year. Amounts are rounded to öre."""

    async def create() -> AdjustmentOut:
        return await service.create_adjustment(session, principal.company_id, closing_id, data)

    keyed = (f"POST /v1/closings/{closing_id}/adjustments", data.model_dump(mode="json"))
    return await idempotency.once(session, principal.company_id, idempotency_key, keyed, 201, create)


@router.get(
    "/closings/{closing_id}/adjustments", response_model=Page[AdjustmentOut], responses=responses(404, 422)
)
async def list_adjustments(
    closing_id: uuid.UUID,
    principal: ClosingPrincipal,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AdjustmentOut]:
    return await service.list_adjustments(session, principal.company_id, closing_id, limit, cursor)


@router.delete(
    "/closings/{closing_id}/adjustments/{adjustment_id}", status_code=204, responses=responses(404, 409)
)
async def delete_adjustment(
    closing_id: uuid.UUID, adjustment_id: uuid.UUID, principal: ClosingPrincipal, session: SessionDep
) -> Response:
    """Delete an adjustment; 409 once it has been (or may have been) exported to Fortnox."""
    await service.delete_adjustment(session, principal.company_id, closing_id, adjustment_id)
    return Response(status_code=204)


@router.get(
    "/closings/{closing_id}/adjustments.sie",
    response_class=Response,
    responses={
        200: {
            "description": "SIE 4I file (PC8 / code page 437): bytes. `text/plain; charset=cp437` unless the "
            "request's `Accept` names `application/octet-stream`.",
            "content": {
                SIE_OCTETS: {"schema": {"type": "string", "format": "binary"}},
                SIE_TEXT: {"schema": {"type": "string", "contentMediaType": SIE_TEXT}},
            },
        },
        **responses(404),
    },
)
async def adjustments_sie(
    request: Request, closing_id: uuid.UUID, principal: ClosingPrincipal, session: SessionDep
) -> Response:
    """The adjustments as a SIE 4I file for SIE-source users (one #VER per adjustment)."""
    content = await service.adjustments_sie(session, principal.company_id, closing_id)
    octets = SIE_OCTETS in request.headers.get("accept", "")
    return Response(
        content,
        media_type=SIE_OCTETS if octets else SIE_TEXT,
        headers={"Content-Disposition": f'attachment; filename="adjustments-{closing_id}.si"'},
    )


# -- exports ----------------------------------------------------------------------------------------


@router.post(
    "/closings/{closing_id}/exports",
    status_code=202,
    response_model=ExportOut,
    responses=responses(404, 409, 422, 502, 503),
)
async def start_export(
    request: Request,
    closing_id: uuid.UUID,
    data: ExportCreate,
    principal: ClosingPrincipal,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> ExportOut | JSONResponse:
    """Send adjustments (default: all of the closing) to Fortnox, one voucher each in `voucher_series`.
    An adjustment already posted is reported with its voucher and never sent again. A series that does
    not exist in Fortnox for the year, or does not take manual vouchers, is 422 before anything starts.
    The job ends `succeeded` (every adjustment posted), `partially_failed` or `failed` (none posted)."""
    await service.check_series(
        app_env(request.app.state), principal.company_id, closing_id, data.voucher_series
    )

    async def start() -> ExportOut:
        export = await service.start_export(session, principal.company_id, closing_id, data)
        return await service.export_out(session, export)

    keyed = (f"POST /v1/closings/{closing_id}/exports", data.model_dump(mode="json"))
    return await idempotency.once(session, principal.company_id, idempotency_key, keyed, 202, start)


@router.get("/closings/{closing_id}/exports/{export_id}", response_model=ExportOut, responses=responses(404))
async def get_export(
    closing_id: uuid.UUID, export_id: uuid.UUID, principal: ClosingPrincipal, session: SessionDep
) -> ExportOut:
    export = await ClosingRepository(session).get_export(principal.company_id, closing_id, export_id)
    if export is None:
        raise ExportNotFound("export not found")
    return await service.export_out(session, export)
