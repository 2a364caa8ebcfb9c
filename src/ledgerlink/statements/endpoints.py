"""HTTP routes of manual statement imports: upload (preview), read, commit."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from ledgerlink.auth.dependencies import BankingPrincipal
from ledgerlink.db.session import SessionDep
from ledgerlink.errors import PayloadTooLarge, responses
from ledgerlink.idempotency.service import IdempotencyKey, idempotency
from ledgerlink.statements import service
from ledgerlink.statements.schemas import FormatName, StatementCommitRead, StatementImportRead

router = APIRouter(tags=["statements"], responses=responses(401, 403))

#: a statement of a busy year is a few MB; anything far larger is not a statement
MAX_STATEMENT_BYTES = 20 * 1_048_576


@router.post(
    "/bank-accounts/{bank_account_id}/statement-imports",
    status_code=201,
    response_model=StatementImportRead,
    responses=responses(404, 413, 422),
)
async def create_statement_import(
    request: Request,
    bank_account_id: uuid.UUID,
    principal: BankingPrincipal,
    session: SessionDep,
    file: UploadFile = File(description="camt.053 XML, or a Nordea, SEB, Handelsbanken or Swedbank export"),
    format: Annotated[FormatName | None, Form(description="The file's form; detected when absent")] = None,
    idempotency_key: IdempotencyKey = None,
) -> StatementImportRead | JSONResponse:
    """Read a statement and preview it: each booked row gets a `verdict` (`new`, `duplicate` of a row
    the account already holds, or `conflicting`). Nothing is added to the account until the commit. An
    unreadable file is 422 naming the line (CSV) or element (XML); XML with a DTD or entities is refused."""
    limit = min(request.app.state.settings.limits.max_upload_bytes, MAX_STATEMENT_BYTES)
    content = await file.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLarge(f"the file is larger than {limit} bytes")
    method_path = f"POST /v1/bank-accounts/{bank_account_id}/statement-imports"
    body = {"file_name": file.filename, "format": format, "sha256": hashlib.sha256(content).hexdigest()}
    state = request.app.state

    async def create() -> StatementImportRead:
        return await service.create_import(
            session,
            principal,
            bank_account_id,
            content=content,
            file_name=file.filename,
            fmt=format,
            settings=state.settings,
            at=state.clock(),
        )

    return await idempotency.once(
        session, principal.company_id, idempotency_key, (method_path, body), 201, create
    )


@router.get(
    "/bank-accounts/{bank_account_id}/statement-imports/{import_id}",
    response_model=StatementImportRead,
    response_model_exclude_none=False,
    responses=responses(404, 422),
)
async def get_statement_import(
    bank_account_id: uuid.UUID,
    import_id: uuid.UUID,
    principal: BankingPrincipal,
    session: SessionDep,
    include: Annotated[Literal["rows"] | None, Query(description="`rows`: each row with its verdict")] = None,
) -> StatementImportRead:
    """One statement import; with `include=rows` each row, its `verdict` and the matched `transaction_id`."""
    return await service.get_import(
        session, principal, bank_account_id, import_id, with_rows=include == "rows"
    )


@router.post(
    "/bank-accounts/{bank_account_id}/statement-imports/{import_id}/commit",
    response_model=StatementCommitRead,
    responses=responses(404, 422),
)
async def commit_statement_import(
    request: Request,
    bank_account_id: uuid.UUID,
    import_id: uuid.UUID,
    principal: BankingPrincipal,
    session: SessionDep,
) -> StatementCommitRead:
    """Add the rows the account still lacks (taken again at commit: rows the feed delivered meanwhile
    are not added twice), then check the balance again. Committing again answers the same result."""
    return await service.commit_import(
        session,
        principal,
        bank_account_id,
        import_id,
        settings=request.app.state.settings,
        at=request.app.state.clock(),
    )
