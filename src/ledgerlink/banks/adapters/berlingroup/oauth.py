"""OAuth2 helpers for the BG-style banks that put an authorization-code flow in front of (or instead
of) the consent SCA: PKCE pairs, authorize URLs and reading a token response into credentials."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ledgerlink.banks.adapters.base import Credentials, InvalidResponse
from ledgerlink.banks.adapters.http import token_expires_at


def pkce_pair() -> tuple[str, str]:
    """A fresh ``(code_verifier, code_challenge)`` pair (RFC 7636, method S256)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


def with_query(url: str, params: dict[str, str | None]) -> str:
    """``url`` with ``params`` appended to its query string (None values dropped)."""
    parts = urlsplit(url)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query and extra else (parts.query or extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def credentials_from_token(
    bank_id: str, body: Any, previous: Credentials, *, now: dt.datetime | None = None
) -> Credentials:
    """Merge an OAuth token response into ``previous`` credentials (the code verifier is dropped)."""
    if not isinstance(body, dict) or not body.get("access_token"):
        raise InvalidResponse(bank_id, "token response without access_token", "access_token")
    expires_at = token_expires_at(bank_id, body, now=now)
    extra = {k: v for k, v in previous.extra.items() if k != "code_verifier"}
    return Credentials(
        consent_id=previous.consent_id,
        access_token=str(body["access_token"]),
        refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else previous.refresh_token,
        token_expires_at=expires_at,
        extra=extra,
    )
