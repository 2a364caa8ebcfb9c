"""The banks whose OAuth access tokens expire renew them with the refresh token before a sync (the sync
engine asks when a token is near its end): without it every nightly run after the first token's expiry
asked the user to log in again."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
import respx
from pydantic import SecretStr

from ledgerlink.banks.adapters.base import ConnectionContext, Credentials
from ledgerlink.banks.adapters.berlingroup import BerlinGroupAdapter
from ledgerlink.banks.adapters.registry import create_adapter
from ledgerlink.config import BankEndpointSettings

CTX = ConnectionContext(account_type="private")


@pytest.mark.parametrize(
    ("bank_id", "token_url"),
    [
        ("icabanken", "https://mtls-ims.icagruppen.se/oauth/v2/mtls-token"),
        ("skandia", "https://fsts.skandia.se/as/token.oauth2"),
        ("banknorwegian", "https://identity.banknorwegian.no/connect/token"),
    ],
)
async def test_an_expiring_token_is_renewed_with_the_refresh_token(bank_id: str, token_url: str) -> None:
    settings = BankEndpointSettings(
        base_url="https://bank.example.invalid", client_id="tpp-1", client_secret=SecretStr("s3cret")
    )
    adapter = create_adapter(bank_id, settings)
    assert isinstance(adapter, BerlinGroupAdapter)
    old = Credentials(consent_id="c-1", access_token="a-1", refresh_token="r-1")
    try:
        with respx.mock(assert_all_called=True) as bank:
            token = bank.post(token_url).respond(
                200, json={"access_token": "a-2", "refresh_token": "r-2", "expires_in": 600}
            )
            fresh = await adapter.refresh_credentials(CTX, old)
    finally:
        await adapter.aclose()
    form = parse_qs(token.calls.last.request.content.decode())
    assert form == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["r-1"],
        "client_id": ["tpp-1"],
        "client_secret": ["s3cret"],
    }
    assert (fresh.access_token, fresh.refresh_token, fresh.consent_id) == ("a-2", "r-2", "c-1")
    assert fresh.token_expires_at is not None
