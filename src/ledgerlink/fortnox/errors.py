"""Errors raised by the Fortnox client and OAuth helper.

The tree tells a caller what to do next::

    FortnoxError
    ├── FortnoxTransientError      retry later: timeouts, connection errors, 5xx, 429 after the retries
    ├── FortnoxAuthError           the user must re-authorize: invalid/revoked/expired refresh token,
    │                              or a 401 that survived one refresh
    ├── FortnoxRequestError        Fortnox refused the request (4xx, usually with ``ErrorInformation``);
    │   │                          carries Fortnox's ``code`` and ``message``; retrying will not help
    │   └── FortnoxInvalidRequest  refused before sending (a value that cannot go into the URL)
    └── FortnoxUncertainError      a non-idempotent request (``POST /3/vouchers``) may have been accepted:
                                   the connection failed or timed out after the request was sent. Look
                                   the resource up before trying again; never retry blindly.

Messages never contain tokens.

Below the tree, the :class:`~ledgerlink.errors.AppError` subclasses the connection feature raises to
HTTP callers (409 ``fortnox_not_connected`` / ``fortnox_expired`` / ``fortnox_reauth_required``, 502
``fortnox_error``, 400 ``state_mismatch`` / ``authorization_denied``).
"""

from __future__ import annotations

from ledgerlink.errors import BadGateway, BadRequest, Conflict
from ledgerlink.oauth.errors import StateMismatch


class FortnoxError(Exception):
    """Root of every error raised by :mod:`ledgerlink.fortnox`."""

    def __init__(self, message: str, *, endpoint: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status = status


class FortnoxTransientError(FortnoxError):
    """A temporary failure (timeout, connection error, 5xx, 429) that persisted through the retries."""


class FortnoxAuthError(FortnoxError):
    """The connection can no longer be used without a new authorization by the user.

    ``error`` is the OAuth error code when there was one (``invalid_grant``, ``invalid_client``, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        endpoint: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, status=status)
        self.error = error


class FortnoxRequestError(FortnoxError):
    """Fortnox answered 4xx. ``code`` is Fortnox's ``ErrorInformation.code`` (0 when the body had none)."""

    def __init__(self, message: str, *, code: int, status: int, endpoint: str) -> None:
        super().__init__(message, endpoint=endpoint, status=status)
        self.code = code

    def __str__(self) -> str:
        return f"Fortnox {self.status} on {self.endpoint}: {self.message} (code {self.code})"


class FortnoxInvalidRequest(FortnoxRequestError):
    """A request the client refused to send (e.g. a value that cannot be a URL path segment): Fortnox
    would refuse it too; retrying will not help. ``status`` is 400, ``code`` 0."""

    def __init__(self, message: str, *, endpoint: str) -> None:
        super().__init__(message, code=0, status=400, endpoint=endpoint)


class FortnoxUncertainError(FortnoxError):
    """A non-idempotent request may or may not have taken effect at Fortnox."""


# -- HTTP-facing errors of the Fortnox connection feature (rendered as problem+json) -------------------


class FortnoxNotConnected(Conflict):
    """The company has no usable Fortnox connection (never connected, or disconnected)."""

    code, title = "fortnox_not_connected", "Fortnox is not connected"


class FortnoxExpired(Conflict):
    """The connection was unused past its validity (``expires_at``): the user must authorize again."""

    code, title = "fortnox_expired", "The Fortnox connection has expired"


class FortnoxReauthRequired(FortnoxExpired):
    """Fortnox rejected the refresh token (used, revoked or too old): the user must authorize again."""

    code, title = "fortnox_reauth_required", "Fortnox needs a new authorization"


class FortnoxUpstream(BadGateway):
    """Fortnox refused or failed a call; ``detail`` carries Fortnox's message."""

    code, title = "fortnox_error", "Fortnox error"


class AuthorizationDenied(BadRequest):
    """The user declined at Fortnox (``error=access_denied``) or Fortnox returned another OAuth error."""

    code = "authorization_denied"


__all__ = [
    "AuthorizationDenied",
    "FortnoxAuthError",
    "FortnoxError",
    "FortnoxExpired",
    "FortnoxInvalidRequest",
    "FortnoxNotConnected",
    "FortnoxReauthRequired",
    "FortnoxRequestError",
    "FortnoxTransientError",
    "FortnoxUncertainError",
    "FortnoxUpstream",
    "StateMismatch",
]
