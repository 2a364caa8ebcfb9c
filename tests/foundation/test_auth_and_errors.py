from __future__ import annotations

import time
import uuid

import httpx
from joserfc import jwt
from joserfc.jwk import OctKey

from ledgerlink.config import Settings
from tests.conftest import make_token

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def _assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    if code:
        assert body["code"] == code
    return body


def _token(settings: Settings, **claims: object) -> str:
    base: dict[str, object] = {
        "sub": "u1",
        "company_id": str(uuid.uuid4()),
        "scope": "banking",
        "exp": int(time.time()) + 60,
    }
    base.update(claims)
    assert settings.auth.jwt_secret is not None
    key = OctKey.import_key(settings.auth.jwt_secret.get_secret_value())
    return jwt.encode({"alg": "HS256"}, {k: v for k, v in base.items() if v is not None}, key)


async def test_missing_token_is_401_problem(client: httpx.AsyncClient) -> None:
    body = _assert_problem(await client.get("/v1/company"), 401, "missing_token")
    assert body["request_id"]


async def test_malformed_token_is_401(client: httpx.AsyncClient) -> None:
    _assert_problem(
        await client.get("/v1/company", headers={"Authorization": "Bearer not.a.jwt"}), 401, "invalid_token"
    )


async def test_expired_token_is_401(client: httpx.AsyncClient, settings: Settings) -> None:
    token = _token(settings, exp=int(time.time()) - 3600)
    _assert_problem(
        await client.get("/v1/company", headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token"
    )


async def test_wrong_signature_is_401(client: httpx.AsyncClient) -> None:
    key = OctKey.import_key("another-secret-another-secret-another")
    token = jwt.encode(
        {"alg": "HS256"},
        {"sub": "u", "company_id": str(uuid.uuid4()), "scope": "banking", "exp": int(time.time()) + 60},
        key,
    )
    _assert_problem(await client.get("/v1/company", headers={"Authorization": f"Bearer {token}"}), 401)


async def test_token_without_company_is_401(client: httpx.AsyncClient, settings: Settings) -> None:
    token = _token(settings, company_id=None)
    _assert_problem(await client.get("/v1/company", headers={"Authorization": f"Bearer {token}"}), 401)


async def test_missing_scope_is_403(client: httpx.AsyncClient, settings: Settings) -> None:
    token = make_token(settings, uuid.uuid4(), scopes="banking")
    response = await client.put(
        f"/v1/companies/{uuid.uuid4()}",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": "X AB", "plan": "business"},
    )
    _assert_problem(response, 403, "insufficient_scope")


async def test_validation_error_is_422_problem_with_errors(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = make_token(settings, uuid.uuid4(), scopes="admin")
    response = await client.put(
        f"/v1/companies/{uuid.uuid4()}",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": "", "plan": "platinum"},
    )
    body = _assert_problem(response, 422, "validation_error")
    locs = [tuple(e["loc"]) for e in body["errors"]]  # type: ignore[union-attr]
    assert ("body", "name") in locs and ("body", "plan") in locs


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")


async def test_unexpected_exception_is_500_problem_without_internals(
    client: httpx.AsyncClient, app: object, capsys: object
) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.get("/boom")
    body = _assert_problem(response, 500, "internal_error")
    assert "secret internal detail" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "secret internal detail" in out and "Traceback" in out and body["request_id"] in out


async def test_oversized_body_is_413_problem(client: httpx.AsyncClient, settings: Settings) -> None:
    token = make_token(settings, uuid.uuid4(), scopes="admin")
    big = "x" * (settings.limits.max_body_bytes + 10)
    response = await client.put(
        f"/v1/companies/{uuid.uuid4()}",
        headers={"Authorization": f"Bearer {token}"},
        content=big.encode(),
    )
    _assert_problem(response, 413, "payload_too_large")
