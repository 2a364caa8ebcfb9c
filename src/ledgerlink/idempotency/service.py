"""``Idempotency-Key`` on POSTs that create a resource or a job: the same key with the same body returns
the first response; the same key with another body is 422 ``idempotency_key_reused``.

The key is claimed in the request's own transaction, so the stored response commits (or rolls back)
together with what the request created.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Header
from fastapi.encoders import jsonable_encoder
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.errors import Conflict, Unprocessable
from ledgerlink.idempotency.repository import IdempotencyRepository

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Makes the POST safe to retry: the same key and body return the first response.",
    ),
]


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any


def request_hash(method_path: str, body: Any) -> str:
    canonical = json.dumps(jsonable_encoder(body), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method_path}\n{canonical}".encode()).hexdigest()


class IdempotencyService:
    async def begin(
        self, session: AsyncSession, company_id: uuid.UUID, key: str | None, method_path: str, body: Any
    ) -> Replay | None:
        """Claim ``key`` for this request, or return the first response to replay."""
        if not key:
            return None
        digest = request_hash(method_path, body)
        repo = IdempotencyRepository(session)
        if await repo.claim(company_id, key, method_path, digest):
            return None
        record = await repo.find(company_id, key)
        if record is None:  # claimed and rolled back between our two statements: treat as in flight
            raise Conflict(
                "a request with this Idempotency-Key is in progress", code="idempotency_in_progress"
            )
        if record.request_hash != digest:
            raise Unprocessable(
                "this Idempotency-Key was used with another request",
                code="idempotency_key_reused",
                loc=["header", "Idempotency-Key"],
            )
        if record.status_code is None:
            raise Conflict(
                "a request with this Idempotency-Key is in progress", code="idempotency_in_progress"
            )
        return Replay(record.status_code, record.response_body)

    async def complete(
        self, session: AsyncSession, company_id: uuid.UUID, key: str | None, status_code: int, body: Any
    ) -> None:
        if not key:
            return
        record = await IdempotencyRepository(session).find(company_id, key)
        if record is not None:
            record.status_code = status_code
            record.response_body = jsonable_encoder(body)
            await session.flush()


idempotency = IdempotencyService()
