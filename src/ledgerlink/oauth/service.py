"""OAuth ``state``: random, single-use, bound to the company (and a bank connection, and, when the caller
passes ``login``, to the user who started the login), 15 minutes; only its SHA-256 is stored. Redirect
URIs come only from ``LEDGERLINK_ALLOWED_REDIRECT_URIS``.

A state issued with ``login`` is stored as the hash of the login and the state together, so the same
state relayed by another user of the company matches no row: it is refused (and burns nothing)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.config import Settings
from ledgerlink.db.base import utcnow
from ledgerlink.errors import Unprocessable
from ledgerlink.models.bank import OAuthState
from ledgerlink.oauth.errors import StateMismatch
from ledgerlink.oauth.repository import OAuthStateRepository

STATE_TTL = dt.timedelta(minutes=15)


def hash_state(state: str, login: str | None = None) -> str:
    material = state if login is None else f"{len(login)}:{login}:{state}"
    return hashlib.sha256(material.encode()).hexdigest()


def check_redirect_uri(settings: Settings, redirect_uri: str) -> None:
    if redirect_uri not in settings.allowed_redirect_uris:
        raise Unprocessable(
            "redirect_uri is not on the allow-list (LEDGERLINK_ALLOWED_REDIRECT_URIS)",
            loc=["body", "redirect_uri"],
            code="redirect_uri_not_allowed",
        )


async def issue_state(
    session: AsyncSession,
    *,
    company_id: uuid.UUID,
    purpose: str,
    redirect_uri: str,
    connection_id: uuid.UUID | None = None,
    login: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    """A fresh state; for a bank connection, every older open state of it is burnt."""
    now = now or utcnow()
    repo = OAuthStateRepository(session)
    if connection_id is not None:
        await repo.invalidate_for_connection(connection_id, now=now)
    state = secrets.token_urlsafe(32)
    await repo.add(
        OAuthState(
            state_hash=hash_state(state, login),
            company_id=company_id,
            purpose=purpose,
            connection_id=connection_id,
            redirect_uri=redirect_uri,
            expires_at=now + STATE_TTL,
            used_at=None,
        )
    )
    return state


async def consume_state(
    session: AsyncSession,
    state: str,
    *,
    company_id: uuid.UUID,
    purpose: str,
    connection_id: uuid.UUID | None = None,
    login: str | None = None,
    now: dt.datetime | None = None,
) -> OAuthState:
    """Burn the state and return it; :class:`StateMismatch` if it is unknown, used, expired or foreign."""
    now = now or utcnow()
    row = await OAuthStateRepository(session).consume(
        hash_state(state, login), company_id=company_id, purpose=purpose, connection_id=connection_id, now=now
    )
    if row is None or _aware(row.expires_at) <= now:
        raise StateMismatch("the state is unknown, already used, expired or not for this login")
    return row


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def find_state(session: AsyncSession, state: str) -> OAuthState | None:
    """The row of a state issued without ``login`` (bank logins), used or not; None when unknown."""
    return await OAuthStateRepository(session).find(hash_state(state))
