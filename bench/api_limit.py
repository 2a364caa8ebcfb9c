"""The limit of the API list benchmark: a plain Starlette app + an asyncpg pool + orjson serving
``GET /v1/transactions`` with the SAME SQL the real route runs for the same page (the repositories'
prebuilt statements, compiled for asyncpg: the page with its filters, keyset, order and limit, then
the page's BgMax parts) and the same JSON bytes (the bench asserts it once before timing). No
authentication, no validation framework, no SQLAlchemy: what a request costs at least on this stack.

    BENCH_DSN=postgresql://... BENCH_COMPANY_ID=<uuid> uvicorn bench.api_limit:create_limit_app --factory
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerlink.inbox.repository import PageShape, TransactionFilter, page_statement
from ledgerlink.inbox.service import TRANSACTIONS_KEYSET
from ledgerlink.matching.repository import parts_statement

POOL_SIZE = int(os.environ.get("BENCH_LIMIT_POOL_SIZE", "16"))


def create_limit_app() -> Starlette:
    dsn = os.environ["BENCH_DSN"]
    company_id = uuid.UUID(os.environ["BENCH_COMPANY_ID"])
    parts_sql = parts_statement().postgresql[0]
    pool: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool.append(await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE))
        yield
        await pool[0].close()

    async def transactions(request: Request) -> Response:
        query = request.query_params
        account = query.get("bank_account_id")
        status = query.get("status")
        limit = int(query.get("limit", "50"))
        after = TRANSACTIONS_KEYSET.decode(query.get("cursor"))
        by = TransactionFilter(account_id=uuid.UUID(account) if account else None, status=status)  # type: ignore[arg-type]
        sql, names = page_statement(PageShape.of(by, after is not None)).postgresql
        values: dict[str, Any] = {"company_id": company_id, "account_id": by.account_id, "status": status}
        values["limit"] = limit + 1
        if after is not None:
            values["after_day"], values["after_id"] = after
        async with pool[0].acquire() as conn:
            rows = await conn.fetch(sql, *[values[n] for n in names])
            page = rows[:limit]
            parts: dict[uuid.UUID, list[dict[str, Any]]] = {}
            for p in await conn.fetch(parts_sql, company_id, [r[0] for r in page]):
                parts.setdefault(p[0], []).append(
                    {
                        "amount": format(p[1], "f"),
                        "reference": p[2],
                        "ocr_valid": p[3],
                        "payer": p[4],
                        "payer_org_number": p[5],
                    }
                )
        items = [
            {
                "id": str(r[0]),
                "bank_account_id": str(r[1]),
                "booking_date": r[2].isoformat(),
                "value_date": r[3].isoformat() if r[3] is not None else None,
                "amount": format(r[4], "f"),
                "currency": r[5],
                "counterparty": r[6],
                "description": r[7],
                "reference": r[8],
                "booking_status": "pending" if r[9] == "pending" else "booked",
                "status": r[10],
                "ledger_account": r[12],
                "voucher_ref": r[11],
                "parts": parts.get(r[0], []),
                "suggestion": None,
            }
            for r in page
        ]
        last: dt.date | None = page[-1][2] if page else None
        cursor = TRANSACTIONS_KEYSET.encode(last, page[-1][0]) if len(rows) > limit else None
        body = orjson.dumps({"items": items, "next_cursor": cursor})
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/v1/transactions", transactions)], lifespan=lifespan)
