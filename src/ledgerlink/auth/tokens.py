"""Caller JWT validation with authlib's JOSE (joserfc): HS256 with the dev secret, RS256 from a JWKS URL."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from ledgerlink.auth.principal import Principal
from ledgerlink.config import AuthSettings, Settings
from ledgerlink.errors import ServiceUnavailable, Unauthorized

_BEARER_HEADERS = {"WWW-Authenticate": "Bearer"}
VERIFIED_CACHE_SIZE = 10_000


def _invalid(why: str) -> Unauthorized:
    return Unauthorized(f"invalid token: {why}", code="invalid_token", headers=_BEARER_HEADERS)


def _nesting(document: bytes) -> int:
    """The deepest nesting of arrays/objects in a JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in document:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def check_token_shape(raw: str, settings: AuthSettings) -> None:
    """Refuse, before any JSON parsing, a token that is too long or whose header or claims nest deeper
    than ``settings.max_token_nesting`` (401)."""
    if len(raw) > settings.max_token_bytes:
        raise _invalid("too long")
    parts = raw.split(".")
    if len(parts) != 3:
        raise _invalid("not a compact JWS")
    for segment in parts[:2]:
        try:
            document = base64.urlsafe_b64decode(segment.encode("ascii") + b"=" * (-len(segment) % 4))
        except (ValueError, UnicodeError, binascii.Error) as exc:
            raise _invalid("not base64url") from exc
        if _nesting(document) > settings.max_token_nesting:
            raise _invalid("nested too deeply")


class TokenVerifier:
    def __init__(self, settings: AuthSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._transport = transport
        self._jwks: KeySet | None = None
        self._jwks_fetched_at = 0.0
        # Verified tokens by their exact string, until their exp: a bounded LRU (insertion order of a
        # dict, most recent last). Emptied when the keys are re-fetched, so a key removed from the
        # JWKS stops being honoured at the next refresh, as without the cache.
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._oct_key: OctKey | None = None

    async def _keys(self) -> tuple[Any, list[str]]:
        if self.settings.jwks_url:
            if (
                self._jwks is None
                or time.monotonic() - self._jwks_fetched_at > self.settings.jwks_cache_seconds
            ):
                try:
                    async with httpx.AsyncClient(timeout=5.0, transport=self._transport) as client:
                        response = await client.get(self.settings.jwks_url)
                        response.raise_for_status()
                        self._jwks = KeySet.import_key_set(response.json())
                except (httpx.HTTPError, ValueError, JoseError) as exc:
                    raise ServiceUnavailable("the identity provider's keys could not be loaded") from exc
                self._jwks_fetched_at = time.monotonic()
                self._verified.clear()
            return self._jwks, ["RS256"]
        if self.settings.jwt_secret is None:
            raise ServiceUnavailable("no JWT key configured")
        if self._oct_key is None:
            self._oct_key = OctKey.import_key(self.settings.jwt_secret.get_secret_value())
        return self._oct_key, ["HS256"]

    async def verify(self, raw: str) -> Principal:
        key, algorithms = await self._keys()
        cached = self._verified.pop(raw, None)
        if cached is not None and time.time() < cached[1]:
            self._verified[raw] = cached  # most recently used last
            return cached[0]
        check_token_shape(raw, self.settings)
        principal, exp = self._verify(raw, key, algorithms)
        if exp is not None:
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]  # the least recently used
            self._verified[raw] = (principal, exp)
        return principal

    def _verify(self, raw: str, key: Any, algorithms: list[str]) -> tuple[Principal, float | None]:
        """The principal of a token checked in full, and until when it may be cached (its exp, or None
        when the token is not yet valid by a nbf/iat in the future and must not be cached)."""
        try:
            token = jwt.decode(raw, key, algorithms=algorithms)
            claims = token.claims
            options: dict[str, Any] = {"exp": {"essential": True}, "sub": {"essential": True}}
            if self.settings.issuer:
                options["iss"] = {"essential": True, "value": self.settings.issuer}
            if self.settings.audience:
                options["aud"] = {"essential": True, "value": self.settings.audience}
            registry = jwt.JWTClaimsRegistry(leeway=self.settings.leeway_seconds, **options)
            registry.validate(claims)
        except (JoseError, ValueError, TypeError, RecursionError) as exc:
            raise _invalid(type(exc).__name__) from exc
        try:
            company_id = uuid.UUID(str(claims["company_id"]))
        except (KeyError, ValueError) as exc:
            raise Unauthorized(
                "token has no valid company_id claim", code="invalid_token", headers=_BEARER_HEADERS
            ) from exc
        scope = claims.get("scope", "")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        principal = Principal(company_id=company_id, user_id=str(claims["sub"]), scopes=scopes)
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if (
            isinstance(exp, int | float)
            and exp - now > self.settings.max_token_lifetime_seconds + self.settings.leeway_seconds
        ):
            raise _invalid("it lives longer than the longest token lifetime allowed")
        if not isinstance(exp, int | float) or (isinstance(nbf, int | float) and nbf > now):
            return principal, None
        return principal, float(exp)


def issue_dev_token(
    settings: Settings,
    *,
    company_id: uuid.UUID,
    scopes: str,
    user_id: str = "dev-user",
    ttl_seconds: int | None = None,
) -> str:
    """A token signed with the HS256 dev secret (``ledgerlink dev-token``; tests), valid for
    ``ttl_seconds`` (default: the longest lifetime the settings allow)."""
    if settings.auth.jwt_secret is None:
        raise RuntimeError("no JWT secret configured")
    if ttl_seconds is None:
        ttl_seconds = settings.auth.max_token_lifetime_seconds
    now = int(time.time())
    claims = {
        "sub": user_id,
        "company_id": str(company_id),
        "scope": scopes,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if settings.auth.issuer:
        claims["iss"] = settings.auth.issuer
    if settings.auth.audience:
        claims["aud"] = settings.auth.audience
    key = OctKey.import_key(settings.auth.jwt_secret.get_secret_value())
    return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, key)
