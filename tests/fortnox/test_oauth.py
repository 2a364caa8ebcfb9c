from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ledgerlink.config import FortnoxSettings
from ledgerlink.fortnox.client import FortnoxOAuth, InMemoryTokenProvider, TokenSet
from ledgerlink.fortnox.client.scopes import requested_scopes
from ledgerlink.fortnox.errors import FortnoxAuthError
from ledgerlink.sandbox.fortnox import SandboxFortnox
from tests.fortnox.conftest import BASE

REDIRECT = "http://localhost:3000/callback"


async def approve(transport: httpx.ASGITransport, url: str, *, deny: bool = False) -> dict[str, list[str]]:
    """Play the user at the sandbox authorize page; return the query of the redirect back to us."""
    async with httpx.AsyncClient(transport=transport) as browser:
        page = await browser.get(url)
        assert page.status_code == 200
        assert "Godkänn" in page.text
        response = await browser.get(url + ("&deny=1" if deny else "&approve=1"))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


def test_authorization_url_carries_fortnox_parameters(oauth: FortnoxOAuth, settings: FortnoxSettings) -> None:
    url = oauth.authorization_url(REDIRECT, "state-123")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/oauth-v1/auth"
    assert query["client_id"] == [settings.client_id]
    assert query["response_type"] == ["code"]
    assert query["access_type"] == ["offline"]
    assert query["state"] == ["state-123"]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["scope"] == [requested_scopes(settings.scopes)]


async def test_happy_path_code_exchange_refresh_and_revoke(
    oauth: FortnoxOAuth, transport: httpx.ASGITransport, sandbox: SandboxFortnox, settings: FortnoxSettings
) -> None:
    query = await approve(transport, oauth.authorization_url(REDIRECT, "s1"))
    assert query["state"] == ["s1"]
    before = dt.datetime.now(dt.UTC)
    tokens = await oauth.exchange_code(query["code"][0], REDIRECT)
    assert tokens.access_token in sandbox.access_tokens
    assert tokens.scope == requested_scopes(settings.scopes)
    assert tokens.expires_at.tzinfo is not None
    assert dt.timedelta(minutes=59) < tokens.expires_at - before <= dt.timedelta(hours=1, seconds=5)

    refreshed = await oauth.refresh(tokens.refresh_token)
    assert refreshed.refresh_token != tokens.refresh_token
    assert refreshed.access_token != tokens.access_token

    await oauth.revoke(refreshed.refresh_token)
    with pytest.raises(FortnoxAuthError) as excinfo:
        await oauth.refresh(refreshed.refresh_token)
    assert excinfo.value.error == "invalid_grant"


async def test_denied_login_redirects_with_access_denied(
    oauth: FortnoxOAuth, transport: httpx.ASGITransport
) -> None:
    query = await approve(transport, oauth.authorization_url(REDIRECT, "s2"), deny=True)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["s2"]
    assert "code" not in query


async def test_reused_refresh_token_is_invalid_grant(oauth: FortnoxOAuth, sandbox: SandboxFortnox) -> None:
    first = TokenSet.from_token_response(sandbox.issue_tokens())
    await oauth.refresh(first.refresh_token)
    with pytest.raises(FortnoxAuthError) as excinfo:
        await oauth.refresh(first.refresh_token)
    assert excinfo.value.error == "invalid_grant"


async def test_bad_and_reused_codes_are_rejected(oauth: FortnoxOAuth, transport: httpx.ASGITransport) -> None:
    with pytest.raises(FortnoxAuthError) as excinfo:
        await oauth.exchange_code("not-a-code", REDIRECT)
    assert excinfo.value.error == "invalid_grant"

    query = await approve(transport, oauth.authorization_url(REDIRECT, "s3"))
    code = query["code"][0]
    with pytest.raises(FortnoxAuthError):
        await oauth.exchange_code(code, "http://localhost:3000/other")
    with pytest.raises(FortnoxAuthError):  # the failed attempt consumed the single-use code
        await oauth.exchange_code(code, REDIRECT)


async def test_wrong_client_secret_is_invalid_client(
    transport: httpx.ASGITransport, sandbox: SandboxFortnox
) -> None:
    from tests.fortnox.conftest import make_settings

    wrong = FortnoxOAuth(settings=make_settings(client_secret="nope"), transport=transport)
    try:
        with pytest.raises(FortnoxAuthError) as excinfo:
            await wrong.refresh(sandbox.issue_tokens()["refresh_token"])
        assert excinfo.value.error == "invalid_client"
    finally:
        await wrong.aclose()


async def test_concurrent_refreshes_make_one_refresh_call(
    provider: InMemoryTokenProvider, sandbox: SandboxFortnox
) -> None:
    rejected = await provider.get_access_token()
    results = await asyncio.gather(*(provider.refresh_access_token(rejected) for _ in range(5)))
    assert sandbox.counters.refresh_grants == 1
    assert provider.refresh_count == 1
    assert len(set(results)) == 1
    assert results[0] != rejected
    assert results[0] == provider.tokens.access_token


async def test_provider_refreshes_an_expiring_token_before_use(
    oauth: FortnoxOAuth, sandbox: SandboxFortnox
) -> None:
    issued = TokenSet.from_token_response(sandbox.issue_tokens())
    stale = TokenSet(issued.access_token, issued.refresh_token, dt.datetime.now(dt.UTC), issued.scope)
    saved: list[TokenSet] = []

    async def persist(tokens: TokenSet) -> None:
        saved.append(tokens)

    provider = InMemoryTokenProvider(oauth, stale, on_refresh=persist)
    token = await provider.get_access_token()
    assert token != issued.access_token
    assert saved == [provider.tokens]
    assert sandbox.counters.refresh_grants == 1


def test_token_set_repr_hides_tokens() -> None:
    tokens = TokenSet(
        "secret-access", "secret-refresh", dt.datetime(2030, 1, 1, tzinfo=dt.UTC), "bookkeeping"
    )
    assert "secret" not in repr(tokens)
