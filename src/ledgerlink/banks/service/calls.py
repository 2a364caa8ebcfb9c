"""A call to a bank with the user present: what it needs (:class:`BankCall`), the connection's adapter
opened and closed around it (:func:`open_bank`; :func:`bank_for_user` when the user waits for it),
and calls whose failure must not fail ours
(:func:`best_effort`)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping

import httpx

from ledgerlink.banks.adapters.base import AdapterError, BankAdapter, ConnectionContext
from ledgerlink.banks.errors import adapter_problem
from ledgerlink.banks.service.common import build_adapter, connection_context
from ledgerlink.config import Settings
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import BankConnection

log = get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class BankCall:
    """What a user-present call to a bank needs: settings, test transports and the PSU's IP."""

    settings: Settings
    transports: Mapping[str, httpx.AsyncBaseTransport]
    psu_ip_address: str | None


@contextlib.asynccontextmanager
async def open_bank(
    connection: BankConnection, call: BankCall
) -> AsyncIterator[tuple[BankAdapter, ConnectionContext]]:
    """The connection's adapter and who we act for (the PSU's IP: the user is here); the adapter's
    client is closed on the way out. Building the adapter raises the adapter's own errors."""
    ctx = connection_context(call.settings, connection, psu_ip_address=call.psu_ip_address)
    adapter = build_adapter(call.settings, connection.bank_id, call.transports)
    try:
        yield adapter, ctx
    finally:
        try:
            await adapter.aclose()
        except Exception:  # pragma: no cover - closing a client must not mask the answer
            log.warning("bank_adapter.close_failed", bank_id=adapter.bank_id)


@contextlib.asynccontextmanager
async def bank_for_user(
    connection: BankConnection, call: BankCall
) -> AsyncIterator[tuple[BankAdapter, ConnectionContext]]:
    """:func:`open_bank` for a call the user waits for: an adapter error that nothing in the block
    handled (building the adapter included) is the problem the frontend shows, never a 500."""
    try:
        async with open_bank(connection, call) as opened:
            yield opened
    except AdapterError as exc:
        raise adapter_problem(exc) from exc


@contextlib.contextmanager
def best_effort(connection: BankConnection, event: str) -> Iterator[None]:
    """A call to the bank whose failure must not fail ours (revoking a consent): an adapter error is
    logged as ``event`` by its class only (its message may name the consent) and swallowed."""
    try:
        yield
    except AdapterError as exc:
        log.warning(
            event, connection_id=str(connection.id), bank_id=connection.bank_id, error=type(exc).__name__
        )


__all__ = ["BankCall", "bank_for_user", "best_effort", "open_bank"]
