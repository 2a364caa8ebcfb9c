"""``Idempotency-Key`` on POSTs that create a resource or a job: the same key with the same body returns
the first response; the same key with another body is 422 ``idempotency_key_reused``.

The key is claimed in the request's own transaction, so the stored response commits (or rolls back)
together with what the request created. A replayed answer carries ``Idempotent-Replayed: true``. A key
is remembered for ``idempotency_ttl_hours`` (default 24); after that the same key is a new request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Header
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.db.base import utcnow
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


Out = TypeVar("Out")

REPLAYED_HEADER = "Idempotent-Replayed"
DEFAULT_TTL = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any

    def response(self) -> JSONResponse:
        """The first answer again, marked as a replay."""
        return JSONResponse(self.body, status_code=self.status_code, headers={REPLAYED_HEADER: "true"})


def request_hash(method_path: str, body: Any) -> str:
    canonical = json.dumps(jsonable_encoder(body), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method_path}\n{canonical}".encode()).hexdigest()


class IdempotencyService:
    def __init__(self, ttl: dt.timedelta = DEFAULT_TTL) -> None:
        self.ttl = ttl

    def configure(self, ttl_hours: float) -> None:
        """How long keys are remembered (the app sets it from ``Settings.idempotency_ttl_hours``)."""
        self.ttl = dt.timedelta(hours=ttl_hours)

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
        if await repo.forget_expired(company_id, key, utcnow() - self.ttl) and await repo.claim(
            company_id, key, method_path, digest
        ):
            return None  # the key's first use has expired: this is a new request
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

    async def once(
        self,
        session: AsyncSession,
        company_id: uuid.UUID,
        key: str | None,
        request: tuple[str, Any],
        status_code: int,
        make: Callable[[], Awaitable[Out]],
        stored: Callable[[Out], Any] | None = None,
    ) -> Out | JSONResponse:
        """A POST that creates a resource or a job, once per Idempotency-Key. ``request`` is the method
        with the path and the body that identify it; the answer of ``make`` (or ``stored`` of it: what a
        replay shows) is kept with the request's unit of work, and the same key and request replay it."""
        method_path, body = request
        replay = await self.begin(session, company_id, key, method_path, body)
        if replay is not None:
            return replay.response()
        out = await make()
        await self.complete(session, company_id, key, status_code, stored(out) if stored else out)
        return out

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
