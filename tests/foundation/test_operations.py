from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from ledgerlink.config import Settings
from ledgerlink.db.migrate import downgrade, shipped_revisions, upgrade
from ledgerlink.main import create_app
from tests.conftest import PG_ADMIN_DSN, _sqlalchemy_url


async def test_healthz_and_metrics_need_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    await client.get("/v1/company")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "ledgerlink_http_requests_total" in metrics.text


async def test_readyz_ok_with_database_and_queue(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "schema": "ok", "queue": "ok"}


@pytest.fixture
def scratch_database_url() -> Iterator[str]:
    """An empty database of its own (never migrated), dropped afterwards."""
    name = f"ledgerlink_ready_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _sqlalchemy_url(name)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _readyz(settings: Settings) -> httpx.Response:
    app = create_app(settings, start_cron=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        return await c.get("/readyz")


def test_readyz_503_naming_the_schema_until_migrated_to_head(
    settings: Settings, scratch_database_url: str
) -> None:
    scratch = settings.model_copy(update={"database_url": scratch_database_url})

    response = asyncio.run(_readyz(scratch))  # never migrated
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["code"], body["schema"], body["database"]) == ("not_ready", "outdated", "ok")
    assert "schema outdated" in body["detail"]

    heads = shipped_revisions().heads
    assert len(heads) == 1, f"one head expected, got {heads}"
    upgrade("head", scratch_database_url)
    downgrade("-1", scratch_database_url)  # one migration behind
    response = asyncio.run(_readyz(scratch))
    assert response.status_code == 503 and response.json()["schema"] == "outdated"

    upgrade("head", scratch_database_url)
    response = asyncio.run(_readyz(scratch))
    assert response.status_code == 200
    assert response.json()["schema"] == "ok"


def test_readyz_stays_ready_when_a_newer_release_already_migrated(
    settings: Settings, scratch_database_url: str
) -> None:
    upgrade("head", scratch_database_url)

    async def stamp_unknown_revision() -> None:
        conn = await asyncpg.connect(scratch_database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute("UPDATE alembic_version SET version_num = 'f00dfeedbeef'")
        finally:
            await conn.close()

    asyncio.run(stamp_unknown_revision())
    response = asyncio.run(_readyz(settings.model_copy(update={"database_url": scratch_database_url})))
    assert response.status_code == 200
    assert response.json()["schema"] == "ahead"


async def test_readyz_503_when_database_unreachable(settings: Settings) -> None:
    down = settings.model_copy(update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"})
    app = create_app(down, start_cron=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        response = await c.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "not_ready" and body["database"] == "unreachable" and body["queue"] == "ok"
    assert body["schema"] == "unknown"


async def test_readyz_503_when_queue_unreachable(settings: Settings) -> None:
    app = create_app(settings, start_cron=False)
    async with app.router.lifespan_context(app):
        await app.state.redis.aclose()
        from redis.asyncio import Redis

        app.state.redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            response = await c.get("/readyz")
    assert response.status_code == 503
    assert response.json()["queue"] == "unreachable"


async def test_every_log_line_of_a_request_carries_its_request_id(
    client: httpx.AsyncClient, capsys: object
) -> None:
    import json

    response = await client.get("/v1/company", headers={"X-Request-ID": "req-abc-123"})
    assert response.headers["x-request-id"] == "req-abc-123"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]  # type: ignore[attr-defined]
    request_lines = [line for line in lines if line.get("path") == "/v1/company"]
    assert request_lines and all(line["request_id"] == "req-abc-123" for line in request_lines)


def test_log_redaction_hides_secret_looking_values_but_keeps_error_codes() -> None:
    from ledgerlink.logging import _redact

    line = _redact(
        None,
        "info",
        {
            "event": "x",
            "code": "oauth-code-123",
            "refresh_token": "rt-123",
            "consent_id": "c-123",
            "error_code": "invalid_response",
            "status_code": 429,
            "detail": "sent Authorization: Bearer abc.def.ghi",
        },
    )
    assert line["code"] == line["refresh_token"] == line["consent_id"] == "[redacted]"
    assert (line["error_code"], line["status_code"]) == ("invalid_response", 429)
    assert "abc.def.ghi" not in line["detail"] and line["detail"].endswith("Bearer [redacted]")
