"""Connection helpers shared by the banks feature and the sync engine.

* :func:`build_adapter` builds a bank's adapter from settings (and a test transport);
* :func:`load_credentials` / :func:`store_credentials` keep a connection's secrets AES-GCM encrypted,
  bound to the connection id;
* :func:`connection_context` says who we act for (the PSU IP only when the user is present);
* :func:`mark_reauth_required` flips a connection and its accounts, raises the to-do and the event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.banks.adapters.base import AccountUsage, BankAdapter, ConnectionContext, Credentials
from ledgerlink.banks.adapters.keepalive import KeptAliveTransports
from ledgerlink.banks.adapters.registry import create_adapter
from ledgerlink.banks.repository import BankAccountRepository
from ledgerlink.config import Settings
from ledgerlink.db.base import utcnow
from ledgerlink.events.service import emit
from ledgerlink.inbox.repository import TodoRepository
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import AccountStatus, BankConnection, ConnectionStatus, LastError
from ledgerlink.models.inbox import TodoType
from ledgerlink.security import SecretBox

log = get_logger(__name__)

SANDBOX_BANK_ID = "sandbox"
SANDBOX_MOUNT = "/sandbox/bank"


# --------------------------------------------------------------------------- adapters


def build_adapter(
    settings: Settings,
    bank_id: str,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None,
    kept_alive: KeptAliveTransports | None = None,
) -> BankAdapter:
    """The adapter for ``bank_id`` with its endpoint settings and (in tests) an injected transport;
    otherwise, given the process's ``kept_alive`` transports (the worker), it sends through the bank's
    kept-alive connection pool instead of opening its own.

    The sandbox bank defaults to this service's own mount (``public_base_url + /sandbox/bank``) when
    the sandbox is on and no explicit ``LEDGERLINK_BANKS__SANDBOX__BASE_URL`` is set.
    Raises :class:`~ledgerlink.banks.adapters.base.BankUnavailable` for a bank without an adapter.
    """
    endpoint = settings.bank(bank_id)
    if bank_id == SANDBOX_BANK_ID and settings.sandbox and not endpoint.base_url:
        endpoint = endpoint.model_copy(
            update={"base_url": settings.public_base_url.rstrip("/") + SANDBOX_MOUNT}
        )
    transport = (transports or {}).get(bank_id)
    if transport is None and kept_alive is not None:
        transport = kept_alive.for_bank(bank_id, endpoint)
    return create_adapter(bank_id, endpoint, transport=transport)


# --------------------------------------------------------------------------- secrets at rest


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionSecrets:
    """Everything secret about a connection: the bank credentials in use, those of an authorization
    still in progress (``pending``; they replace ``credentials`` when it completes) and who the PSU is.

    ``confirm_by`` is set while the pending consent waits for the PSU's confirmation in the bank's app
    after the redirect came back (the end of the bank's window); it goes with ``pending``."""

    credentials: Credentials = dataclasses.field(default_factory=Credentials)
    pending: Credentials | None = None
    psu_id: str | None = None
    corporate_id: str | None = None
    confirm_by: dt.datetime | None = None

    def with_pending(
        self, pending: Credentials | None, *, confirm_by: dt.datetime | None = None
    ) -> ConnectionSecrets:
        """These secrets with ``pending`` (None: no authorization in progress) and its deadline."""
        return dataclasses.replace(self, pending=pending, confirm_by=confirm_by)


def _box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings.security)


def _credentials_to_json(credentials: Credentials) -> dict[str, Any]:
    return {
        "consent_id": credentials.consent_id,
        "access_token": credentials.access_token,
        "refresh_token": credentials.refresh_token,
        "token_expires_at": credentials.token_expires_at.isoformat()
        if credentials.token_expires_at
        else None,
        "extra": dict(credentials.extra),
    }


def _credentials_from_json(data: Mapping[str, Any]) -> Credentials:
    expires = data.get("token_expires_at")
    return Credentials(
        consent_id=data.get("consent_id"),
        access_token=data.get("access_token"),
        refresh_token=data.get("refresh_token"),
        token_expires_at=dt.datetime.fromisoformat(expires) if expires else None,
        extra={str(k): str(v) for k, v in (data.get("extra") or {}).items()},
    )


def load_secrets(settings: Settings, connection: BankConnection) -> ConnectionSecrets:
    """Decrypt the connection's secrets (empty when none were stored yet)."""
    if not connection.secrets:
        return ConnectionSecrets()
    data = _box(settings).decrypt_json(connection.secrets, context=str(connection.id))
    return ConnectionSecrets(
        credentials=_credentials_from_json(data.get("credentials") or {}),
        pending=_credentials_from_json(data["pending"]) if data.get("pending") else None,
        psu_id=data.get("psu_id"),
        corporate_id=data.get("corporate_id"),
        confirm_by=dt.datetime.fromisoformat(data["confirm_by"]) if data.get("confirm_by") else None,
    )


def save_secrets(settings: Settings, connection: BankConnection, secrets: ConnectionSecrets) -> None:
    """Encrypt and set ``connection.secrets`` (the caller's unit of work persists it).

    The connection must have its id already (the ciphertext is bound to it)."""
    if connection.id is None:
        raise ValueError("the connection needs its id before secrets are stored")
    payload = {
        "credentials": _credentials_to_json(secrets.credentials),
        "pending": _credentials_to_json(secrets.pending) if secrets.pending is not None else None,
        "psu_id": secrets.psu_id,
        "corporate_id": secrets.corporate_id,
        "confirm_by": secrets.confirm_by.isoformat() if secrets.confirm_by else None,
    }
    connection.secrets = _box(settings).encrypt_json(payload, context=str(connection.id))


def load_credentials(settings: Settings, connection: BankConnection) -> Credentials:
    """The bank credentials of a connection (decrypted)."""
    return load_secrets(settings, connection).credentials


def store_credentials(settings: Settings, connection: BankConnection, credentials: Credentials) -> None:
    """Replace the connection's bank credentials, keeping the PSU and corporate ids."""
    current = load_secrets(settings, connection)
    save_secrets(settings, connection, dataclasses.replace(current, credentials=credentials))


def connection_context(
    settings: Settings, connection: BankConnection, *, psu_ip_address: str | None
) -> ConnectionContext:
    """Who a call acts for. Pass ``psu_ip_address`` only when the user is present (it makes the bank
    treat the call as attended, outside the 4-a-day allowance)."""
    secrets = load_secrets(settings, connection)
    account_type: AccountUsage = "business" if connection.account_type == "business" else "private"
    return ConnectionContext(
        account_type=account_type,
        psu_id=secrets.psu_id,
        corporate_id=secrets.corporate_id,
        psu_ip_address=psu_ip_address,
    )


# --------------------------------------------------------------------------- state changes


REAUTH_EVENT = "bank_connection.reauth_required"
#: The code of a consent the bank no longer accepts (refused token, revoked consent, ...).
REAUTH_CODE = "reauth_required"


async def mark_reauth_required(
    session: AsyncSession,
    connection: BankConnection,
    *,
    reason: str,
    code: str = REAUTH_CODE,
    at: dt.datetime | None = None,
) -> None:
    """The bank no longer accepts the consent: the connection and its active accounts need a new
    login. Raises (upserts) the connection's ``reauth_required`` to-do and writes the
    ``bank_connection.reauth_required`` event through :func:`ledgerlink.events.service.emit` (the outbox
    row and one webhook delivery per subscribed endpoint), all in the caller's transaction.

    ``code`` says why (``consent_expired`` when the consent reached its end, else ``reauth_required``):
    it is in the to-do, the event and the ``last_error`` of the connection and its flipped accounts. ``reason`` is shown to the
    user; it must not contain secrets (adapter messages don't). ``at`` is the service clock's now."""
    if connection.status in (ConnectionStatus.revoked, ConnectionStatus.failed):
        return
    at = at or utcnow()
    already = connection.status == ConnectionStatus.reauth_required
    error = LastError(code, reason, at)
    connection.status = ConnectionStatus.reauth_required
    connection.set_last_error(error)
    await BankAccountRepository(session).set_status_for_connection(
        connection.company_id,
        connection.id,
        to=AccountStatus.reauth_required,
        only_from=[AccountStatus.active],
        error=error,
    )
    data = {
        "connection_id": str(connection.id),
        "bank_id": connection.bank_id,
        "reason": reason[:1000],
        "code": code,
    }
    await TodoRepository(session).upsert_open(
        connection.company_id, TodoType.reauth_required, str(connection.id), data, at=at
    )
    if not already:
        await emit(
            session, connection.company_id, REAUTH_EVENT, {**data, "occurred_at": at.isoformat()}, at=at
        )
    await session.flush()
    log.info(
        "bank_connection.reauth_required",
        connection_id=str(connection.id),
        bank_id=connection.bank_id,
        code=code,
    )
