"""One connection per bank and person: what starting a connection does to the company's others there.

A Berlin Group bank keeps one recurring consent per PSU: authorising a new one expires the PSU's older
one (``recurringIndicator``, NextGenPSD2 implementation guidelines; docs/banks.md). Linking the same
bank twice would silently break the first connection, so starting a connection at a bank where the
company already has one for the same person:

- answers 409 ``connection_exists`` naming it (``connection_id``) when it is ``active`` or
  ``reauth_required``: reauthorize it to add accounts (the same connection, its accounts kept), or send
  ``replace_connection_id`` to replace it;
- with ``replace_connection_id``: once the new connection is active, the linked accounts its consent
  covers move over (same resources, history and mapping; :func:`take_over`), and the old connection is
  retired (revoked, its other accounts disconnected, ``last_error`` naming the new one);
- supersedes a login still ``awaiting_authorization`` there (it fails with ``last_error`` naming the new
  connection; its ``state`` no longer completes), so an abandoned login never blocks a new one and two
  logins never both complete.

"The same person": unless both connections carry a PSU id (personnummer) and they differ, they are
taken to be the same (a redirect login need not name the user). Every bank gets the same rule: where two
consents could coexist, one connection per bank still keeps a company's accounts in one place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.auth.principal import Principal
from ledgerlink.banks.adapters.base import BankAccountInfo
from ledgerlink.banks.adapters.registry import BankEntry
from ledgerlink.banks.errors import ConnectionExists
from ledgerlink.banks.repository import BankAccountRepository, BankConnectionRepository
from ledgerlink.banks.schemas import ConnectionCreate
from ledgerlink.banks.service.available import identity_key
from ledgerlink.banks.service.common import load_secrets
from ledgerlink.config import Settings
from ledgerlink.errors import Unprocessable
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import BankConnection, ConnectionStatus

log = get_logger(__name__)

#: Connections a new one at the same bank would disturb.
OPEN = (ConnectionStatus.awaiting_authorization, ConnectionStatus.active, ConnectionStatus.reauth_required)
#: Those the user relies on: a new one needs the caller's word (reauthorize or replace).
RELIED_ON = (ConnectionStatus.active, ConnectionStatus.reauth_required)


@dataclass(frozen=True, slots=True)
class SameBank:
    """What a new connection does at its bank: the connection it replaces (active or needing a login)
    and the unfinished logins it supersedes."""

    replaces: BankConnection | None
    superseded: Sequence[BankConnection]


def _person(psu_id: str | None) -> str | None:
    """A PSU id compared loosely (``19800101-1234`` is ``198001011234``); None when unknown."""
    if psu_id is None:
        return None
    return re.sub(r"[\s-]", "", psu_id).casefold() or None


def _other_person(settings: Settings, connection: BankConnection, psu_id: str | None) -> bool:
    theirs, ours = _person(load_secrets(settings, connection).psu_id), _person(psu_id)
    return theirs is not None and ours is not None and theirs != ours


async def check_same_bank(
    session: AsyncSession, principal: Principal, entry: BankEntry, data: ConnectionCreate, settings: Settings
) -> SameBank:
    """Before a new connection at ``entry``: 422 for a ``replace_connection_id`` that is not an open
    connection of the company at this bank; 409 ``connection_exists`` for one the user relies on."""
    rows = await BankConnectionRepository(session).at_bank_for_update(principal, entry.id, OPEN)
    replaces: BankConnection | None = None
    if data.replace_connection_id is not None:
        replaces = next((c for c in rows if c.id == data.replace_connection_id), None)
        if replaces is None:
            raise Unprocessable(
                f"replace_connection_id is not a connection of this company at {entry.name} that is "
                "awaiting authorization, active or needs a new login",
                loc=["body", "replace_connection_id"],
                code="replace_connection_invalid",
            )
    same_person = [c for c in rows if c is replaces or not _other_person(settings, c, data.psu_id)]
    for existing in same_person:
        if existing is not replaces and existing.status in RELIED_ON:
            raise ConnectionExists(
                f"{entry.name} is already connected (connection {existing.id}, {existing.status.value}); "
                "a second consent at the bank would end the first. Reauthorize that connection to add "
                "accounts (POST /v1/bank-connections/{id}/reauthorization), or send "
                "replace_connection_id to replace it.",
                extra={"connection_id": str(existing.id), "connection_status": existing.status.value},
            )
    if replaces is not None and replaces.status not in RELIED_ON:
        replaces = None  # an unfinished login has nothing to hand over: it is superseded like the others
    superseded = [c for c in same_person if c is not replaces and c.status not in RELIED_ON]
    return SameBank(replaces=replaces, superseded=superseded)


async def take_over(
    session: AsyncSession, connection: BankConnection, infos: Sequence[BankAccountInfo]
) -> BankConnection | None:
    """The replacing ``connection`` just became active with the accounts ``infos``: the old connection's
    linked accounts that the new consent covers move to it (the caller re-binds their bank ids). Returns
    the old connection, locked, for the caller to retire (None when it is gone or already revoked)."""
    if connection.replaces_id is None:
        return None
    old = await BankConnectionRepository(session).get_for_update(
        connection.company_id, connection.replaces_id
    )
    if old is None or old.status == ConnectionStatus.revoked:
        return None
    covered = {identity_key(i.iban, i.bban, i.external_id) for i in infos} | {i.external_id for i in infos}
    moved = 0
    for account in await BankAccountRepository(session).of_connection(connection.company_id, old.id):
        if account.identity_key in covered or account.external_id in covered:
            account.connection_id = connection.id
            moved += 1
    await session.flush()
    log.info(
        "bank_connection.replacing",
        connection_id=str(connection.id),
        replaced_connection_id=str(old.id),
        moved_accounts=moved,
    )
    return old


__all__ = ["SameBank", "check_same_bank", "take_over"]
