"""The sandbox Fortnox: an ASGI app that behaves like Fortnox's OAuth server and API v3.

``create_sandbox_fortnox_app()`` serves, relative to wherever it is mounted (the dev app mounts it at
``/sandbox/fortnox``):

* ``GET /oauth-v1/auth`` (an authorize page; ``approve=1`` / ``deny=1`` redirect at once),
  ``POST /oauth-v1/token`` (authorization_code and refresh_token grants, HTTP Basic client auth, access
  tokens valid one hour, rotating single-use refresh tokens), ``POST /oauth-v1/revoke``;
* the ``/3/`` endpoints the client uses, with Bearer auth (401 ``{"message": "unauthorized"}``),
  ``MetaInformation`` paging, Fortnox's ``ErrorInformation`` errors, the SIE 4E export and
  ``POST /3/vouchers`` with Fortnox's validation;
* the scope each resource needs (Fortnox's scope table), 403 ``2000663`` without it;
* 25 requests per 5 s per (client, tenant), enforced with 429 when ``enforce_rate_limit``.

The parts: :mod:`~ledgerlink.sandbox.fortnox_state` (grants, counters, faults, the state file),
:mod:`~ledgerlink.sandbox.fortnox_oauth` (the OAuth server), :mod:`~ledgerlink.sandbox.fortnox_api`
(``/3/``) and :mod:`~ledgerlink.sandbox.fortnox_data` (the generated company).

Tests and benchmarks read ``app.state.fortnox`` (:class:`SandboxFortnox`): ``counters``, every request's
arrival time, ``faults`` (make the next N calls to a path fail, or accept a voucher and then stall),
``issue_tokens()`` to skip the browser step (every scope unless told) and ``expire_access_tokens()``;
``access_token_seconds`` shortens the access tokens' lifetime.

With ``state_path`` (the embedded ``make run`` passes ``./var/sandbox-fortnox.json``) the sandbox keeps
what Fortnox keeps across its own restarts: the OAuth grants (access tokens with their expiry, refresh
tokens with their used/revoked flags; not authorization codes, which live ten minutes) and the vouchers
posted through ``POST /3/vouchers``, with their numbers. The company itself is regenerated (it is
deterministic) and the posted vouchers are booked on it again; the file is rewritten atomically after
every change. A file that cannot be read, or was written for another company, is ignored (the sandbox
starts afresh, so connections ask for a new login). Without ``state_path`` everything is in memory.

Error codes: 2000401, 2001304, 2000588, 2000587, 2001392 and 2002115 are Fortnox's documented codes.
Fortnox documents no codes for an unbalanced voucher, an inactive account, a missing or non-manual
series or a date outside every financial year; the sandbox uses 2004001-2004006 for those, with the
Swedish messages Fortnox shows.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from ledgerlink.sandbox.fortnox_api import api_router, install_error_handlers
from ledgerlink.sandbox.fortnox_data import SandboxCompany
from ledgerlink.sandbox.fortnox_oauth import oauth_router
from ledgerlink.sandbox.fortnox_state import (
    ACCESS_TOKEN_SECONDS,
    ALL_SCOPES,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    Clock,
    FortnoxAPIError,
    SandboxFaults,
    SandboxFortnox,
    error_response,
)


def create_sandbox_fortnox_app(
    *,
    company: SandboxCompany | None = None,
    enforce_rate_limit: bool = True,
    clock: Clock | None = None,
    requests_per_window: int = 25,
    window_seconds: float = 5.0,
    state_path: Path | None = None,
    access_token_seconds: int = ACCESS_TOKEN_SECONDS,
) -> FastAPI:
    """Build a sandbox Fortnox for ``company`` (``SandboxCompany.generate()`` by default).

    ``state_path``: a JSON file that keeps the grants and posted vouchers across restarts (the embedded
    ``make run``); ``company`` must then be generated the same way each time.
    """
    state = SandboxFortnox(
        company or SandboxCompany.generate(),
        enforce_rate_limit=enforce_rate_limit,
        clock=clock,
        requests_per_window=requests_per_window,
        window_seconds=window_seconds,
        access_token_seconds=access_token_seconds,
    )
    if state_path is not None:
        state.load(state_path)
    app = FastAPI(title="Sandbox Fortnox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fortnox = state

    install_error_handlers(app)
    app.include_router(oauth_router(state), prefix="/oauth-v1")
    app.include_router(api_router(state), prefix="/3")
    return app


__all__ = [
    "ALL_SCOPES",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "FortnoxAPIError",
    "SandboxCompany",
    "SandboxFaults",
    "SandboxFortnox",
    "create_sandbox_fortnox_app",
    "error_response",
]
