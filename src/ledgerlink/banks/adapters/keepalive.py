"""Kept-alive HTTP connections to the banks for a long-lived process (the arq worker).

An adapter is built per phase of a sync run and closed after it (:func:`~ledgerlink.banks.service.
build_adapter`); on its own it opens a new client, a new connection pool and a new TCP (and TLS)
connection for every phase. :class:`KeptAliveTransports` keeps ONE connection pool per bank for the
process: each adapter still has its own ``httpx.AsyncClient`` (its own cookies, headers, timeout and
signing, as before), but sends through the bank's shared pool, so a worker reuses its connections to a
bank across runs. Each bank's pool is built with that bank's TLS context (:func:`.tls.tls_context`: its
QWAC for mutual TLS, its CA bundle), so no connection is ever shared between two banks.

Closing an adapter leaves the shared pool open; the process closes it once, at shutdown
(:meth:`KeptAliveTransports.aclose`). The API process and ``make run`` do not use it: they build a
client per call as before.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import httpx

from ledgerlink.banks.adapters.tls import tls_context

if TYPE_CHECKING:
    from ledgerlink.config import BankEndpointSettings

#: Idle connections kept per bank (a worker runs at most ``max_jobs`` runs at once, one request each).
KEEPALIVE_CONNECTIONS = 32
#: An idle connection is dropped after this many seconds (banks close idle ones themselves after ~60 s).
KEEPALIVE_EXPIRY_SECONDS = 20.0


class KeptAliveTransport(httpx.AsyncBaseTransport):
    """One bank's shared connection pool as an adapter's transport: an adapter closing its client does
    not close it. ``tls`` is the bank's TLS context (the adapter's refused-handshake probe uses it)."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.tls = tls
        self._pool = httpx.AsyncHTTPTransport(
            verify=tls,
            limits=httpx.Limits(
                max_connections=None,
                max_keepalive_connections=KEEPALIVE_CONNECTIONS,
                keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
            ),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        """An adapter is done with it: the connections stay in the pool for the next one."""

    async def close_pool(self) -> None:
        await self._pool.aclose()


class KeptAliveTransports:
    """The process's kept-alive transports, one per bank and TLS configuration (built on first use)."""

    def __init__(self) -> None:
        self._by_bank: dict[tuple[str, int], KeptAliveTransport] = {}

    def for_bank(self, bank_id: str, endpoint: BankEndpointSettings) -> KeptAliveTransport:
        """The bank's shared transport. Raises CertificateInvalid as :func:`.tls.tls_context` does."""
        tls = tls_context(bank_id, endpoint)  # cached per certificate configuration
        key = (bank_id, id(tls))
        transport = self._by_bank.get(key)
        if transport is None:
            transport = self._by_bank[key] = KeptAliveTransport(tls)
        return transport

    async def aclose(self) -> None:
        """Close every bank's pool (worker shutdown)."""
        transports, self._by_bank = list(self._by_bank.values()), {}
        for transport in transports:
            await transport.close_pool()
