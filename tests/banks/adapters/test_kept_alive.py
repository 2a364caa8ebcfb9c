"""The worker's kept-alive bank transports (``banks.adapters.keepalive``): adapters of one bank send
through one connection pool that outlives them, with that bank's own mutual-TLS context; a different TLS
configuration never shares it; closing the process's transports closes the connections."""

from __future__ import annotations

import pytest
from tests.banks.adapters.test_tls_bank import configured, endpoint, start

from ledgerlink.banks.adapters.base import CertificateInvalid
from ledgerlink.banks.adapters.berlingroup import BerlinGroupAdapter
from ledgerlink.banks.adapters.keepalive import KeptAliveTransport, KeptAliveTransports
from ledgerlink.banks.adapters.registry import BANKS
from ledgerlink.banks.adapters.tls import tls_context
from ledgerlink.banks.service import build_adapter
from ledgerlink.config import Settings
from ledgerlink.testbank.pki import PkiFiles


def _open_connections(transport: KeptAliveTransport) -> int:
    return len(transport._pool._pool.connections)


async def test_adapters_of_a_bank_reuse_one_kept_alive_mutual_tls_connection(
    pki: PkiFiles, bank_url: str
) -> None:
    pool = KeptAliveTransports()
    settings = configured(pki, bank_url)
    try:
        transport = pool.for_bank("sandbox", settings)
        assert transport.tls is tls_context("sandbox", settings)  # the bank's QWAC, not a default
        for _ in range(3):  # one adapter per phase of a run, each closed after use
            adapter = BerlinGroupAdapter(BANKS["sandbox"], settings, transport=transport)
            assert adapter.tls is transport.tls
            await start(adapter)  # a signed request over mutual TLS: accepted
            await adapter.aclose()
        assert pool.for_bank("sandbox", settings) is transport
        assert _open_connections(transport) == 1  # the three adapters used the same connection
    finally:
        await pool.aclose()
    assert _open_connections(transport) == 0


async def test_another_tls_configuration_gets_its_own_pool_and_is_still_refused(
    pki: PkiFiles, rogue: PkiFiles, bank_url: str
) -> None:
    pool = KeptAliveTransports()
    trusted = configured(pki, bank_url)
    foreign = endpoint(
        bank_url,
        cert=rogue.qwac_cert,
        key=rogue.qwac_key,
        ca=pki.ca_cert,
        signing_key=pki.qseal_key,
        signing_cert=pki.qseal_cert,
    )
    try:
        good = BerlinGroupAdapter(BANKS["sandbox"], trusted, transport=pool.for_bank("sandbox", trusted))
        await start(good)
        await good.aclose()
        other = pool.for_bank("sandbox", foreign)
        assert other is not pool.for_bank("sandbox", trusted)
        bad = BerlinGroupAdapter(BANKS["sandbox"], foreign, transport=other)
        with pytest.raises(CertificateInvalid):
            await start(bad)
        await bad.aclose()
    finally:
        await pool.aclose()


def test_an_injected_test_transport_wins_over_the_kept_alive_one(settings: Settings) -> None:
    import httpx

    injected = httpx.MockTransport(lambda request: httpx.Response(200))
    pool = KeptAliveTransports()
    with_test = build_adapter(settings, "sandbox", {"sandbox": injected}, pool)
    kept = build_adapter(settings, "sandbox", {}, pool)
    plain = build_adapter(settings, "sandbox", {}, None)
    assert isinstance(with_test, BerlinGroupAdapter) and with_test.client._transport is injected
    assert isinstance(kept, BerlinGroupAdapter) and isinstance(kept.client._transport, KeptAliveTransport)
    assert isinstance(plain, BerlinGroupAdapter)
    assert not isinstance(plain.client._transport, KeptAliveTransport)
