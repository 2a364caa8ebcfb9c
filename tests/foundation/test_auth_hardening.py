"""Hostile tokens and unsafe production defaults: a validly SIGNED token whose claims nest thousands of
levels deep or that lives for ever is a 401 (never a 500, never accepted), and production refuses to
start with the development JWT secret or encryption key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from pydantic import SecretStr, ValidationError

from ledgerlink.config import DEV_ENCRYPTION_KEY, DEV_JWT_SECRET, AuthSettings, SecuritySettings, Settings
from ledgerlink.main import create_app

OWN_KEY = "k1:" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def signed(settings: Settings, **claims: Any) -> str:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "u", "company_id": str(uuid.uuid4()), "scope": "banking", "exp": now + 60}
    key = OctKey.import_key(settings.auth.jwt_secret.get_secret_value())  # type: ignore[union-attr]
    return jwt.encode({"alg": "HS256"}, {**base, **claims}, key)


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


async def test_a_signed_token_with_a_claim_nested_5000_levels_is_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    # built by hand: the JOSE library itself cannot serialise it (json.dumps recursion)
    header = base64.urlsafe_b64encode(b'{"alg":"HS256"}').rstrip(b"=")
    claims = json.dumps({"sub": "u", "exp": int(time.time()) + 60}).encode()[:-1] + b',"x":'
    claims += b"[" * 5000 + b"]" * 5000 + b"}"
    payload = base64.urlsafe_b64encode(claims).rstrip(b"=")
    secret = settings.auth.jwt_secret.get_secret_value().encode()  # type: ignore[union-attr]
    signature = base64.urlsafe_b64encode(
        hmac.new(secret, header + b"." + payload, hashlib.sha256).digest()
    ).rstrip(b"=")
    token = (header + b"." + payload + b"." + signature).decode()
    settings.auth.max_token_bytes = 100_000  # the nesting check, not the size check, must refuse it
    response = await client.get("/v1/bank-accounts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_token"


async def test_a_token_nested_just_past_the_limit_is_401_and_within_it_passes(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    limit = settings.auth.max_token_nesting
    deep = signed(settings, x=nested(limit))  # the claims object itself is one level
    response = await client.get("/v1/banks", headers={"Authorization": f"Bearer {deep}"})
    assert response.status_code == 401, response.text
    # brackets inside a string are not nesting
    fine = signed(
        settings, x=nested(limit - 2), note='[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"{{{{{{{{{{{{{{{{{{{{'
    )
    response = await client.get("/v1/banks", headers={"Authorization": f"Bearer {fine}"})
    assert response.status_code == 200, response.text


async def test_an_oversized_token_is_401(client: httpx.AsyncClient, settings: Settings) -> None:
    token = signed(settings, padding="p" * settings.auth.max_token_bytes)
    response = await client.get("/v1/banks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("exp", [1e308, 2**62, "far"])
async def test_a_token_living_beyond_the_lifetime_cap_is_401(
    client: httpx.AsyncClient, settings: Settings, exp: Any
) -> None:
    token = signed(settings, exp=exp)
    response = await client.get("/v1/banks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text


async def test_the_lifetime_cap_is_a_setting(client: httpx.AsyncClient, settings: Settings) -> None:
    settings.auth.max_token_lifetime_seconds = 3600
    two_hours = signed(settings, exp=int(time.time()) + 7200)
    response = await client.get("/v1/banks", headers={"Authorization": f"Bearer {two_hours}"})
    assert response.status_code == 401, response.text
    half_hour = signed(settings, exp=int(time.time()) + 1800)
    response = await client.get("/v1/banks", headers={"Authorization": f"Bearer {half_hour}"})
    assert response.status_code == 200, response.text


def test_production_refuses_the_development_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="LEDGERLINK_AUTH__JWT_SECRET"):
        Settings(
            _env_file=None, env="production", security=SecuritySettings(encryption_keys=SecretStr(OWN_KEY))
        )  # type: ignore[call-arg]


def test_production_refuses_the_development_encryption_key_even_as_an_old_key() -> None:
    auth = AuthSettings(jwt_secret=SecretStr("a-production-secret-of-enough-length-0123456789"))
    for keys in (f"dev:{DEV_ENCRYPTION_KEY}", f"{OWN_KEY},dev:{DEV_ENCRYPTION_KEY}"):
        with pytest.raises(ValidationError, match="LEDGERLINK_SECURITY__ENCRYPTION_KEYS"):
            Settings(
                _env_file=None,
                env="production",
                auth=auth,
                security=SecuritySettings(encryption_keys=SecretStr(keys)),
            )  # type: ignore[call-arg]


def test_production_refuses_to_start_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGERLINK_ENV", "production")
    monkeypatch.setenv("LEDGERLINK_AUTH__JWT_SECRET", DEV_JWT_SECRET)
    monkeypatch.setenv("LEDGERLINK_SECURITY__ENCRYPTION_KEYS", OWN_KEY)
    with pytest.raises(ValidationError, match="refusing to start with LEDGERLINK_ENV=production"):
        create_app(Settings(_env_file=None))  # type: ignore[call-arg]


def test_production_starts_with_its_own_secrets_or_a_jwks_url() -> None:
    security = SecuritySettings(encryption_keys=SecretStr(OWN_KEY))
    own = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="production",
        auth=AuthSettings(jwt_secret=SecretStr("a-production-secret-of-enough-length-0123456789")),
        security=security,
    )
    assert create_app(own).state.settings.env == "production"
    jwks = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="production",
        auth=AuthSettings(jwks_url="https://idp.example.invalid/jwks"),
        security=security,
    )
    assert jwks.auth.jwks_url
    assert Settings(_env_file=None).env in ("development", "testing")  # type: ignore[call-arg]
