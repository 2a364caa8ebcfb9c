"""Mutual TLS and signed requests against the TLS test bank (uvicorn on loopback, client certificate
required, every /v1 signature verified against a test CA made here with ``cryptography``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledgerlink.banks.adapters.base import (
    CertificateInvalid,
    ConnectionContext,
    ConsentStatus,
    SignatureInvalid,
)
from ledgerlink.banks.adapters.berlingroup import BerlinGroupAdapter
from ledgerlink.banks.adapters.registry import BANKS
from ledgerlink.config import BankEndpointSettings
from ledgerlink.testbank.pki import PkiFiles

PRESENT = ConnectionContext(account_type="private", psu_id="199001011234", psu_ip_address="198.51.100.4")
REDIRECT = "https://app.example.test/callback"


def endpoint(
    base_url: str,
    *,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    signing_key: Path | None = None,
    signing_cert: Path | None = None,
) -> BankEndpointSettings:
    return BankEndpointSettings(
        base_url=base_url,
        timeout_seconds=10,
        client_cert_file=str(cert) if cert else None,
        client_key_file=str(key) if key else None,
        ca_bundle_file=str(ca) if ca else None,
        signing_key_file=str(signing_key) if signing_key else None,
        signing_cert_file=str(signing_cert) if signing_cert else None,
    )


def configured(pki: PkiFiles, base_url: str) -> BankEndpointSettings:
    return endpoint(
        base_url,
        cert=pki.qwac_cert,
        key=pki.qwac_key,
        ca=pki.ca_cert,
        signing_key=pki.qseal_key,
        signing_cert=pki.qseal_cert,
    )


@pytest.fixture
async def adapter(pki: PkiFiles, bank_url: str) -> AsyncIterator[BerlinGroupAdapter]:
    a = BerlinGroupAdapter(BANKS["sandbox"], configured(pki, bank_url))
    yield a
    await a.aclose()


async def start(adapter: BerlinGroupAdapter) -> None:
    await adapter.start_authorization(PRESENT, redirect_uri=REDIRECT, state="st", sca_method="decoupled")


async def test_with_qwac_and_qseal_a_whole_decoupled_journey_works(adapter: BerlinGroupAdapter) -> None:
    started = await adapter.start_authorization(
        PRESENT, redirect_uri=REDIRECT, state="st", sca_method="decoupled"
    )
    assert started.method == "decoupled"
    status = await adapter.get_authorization_status(PRESENT, started.credentials)
    assert status.status == "finalised"
    consent = await adapter.get_consent(PRESENT, status.credentials)
    assert consent.status is ConsentStatus.valid
    accounts = await adapter.list_accounts(PRESENT, status.credentials)
    assert accounts
    today = dt.date.today()
    rows = await adapter.fetch_transactions(
        PRESENT, status.credentials, accounts[0].external_id, today - dt.timedelta(days=30), today
    )
    assert all(row.currency for row in rows)


async def test_the_handshake_is_refused_without_a_client_certificate(pki: PkiFiles, bank_url: str) -> None:
    plain = BerlinGroupAdapter(
        BANKS["sandbox"],
        endpoint(
            bank_url,
            cert=None,
            key=None,
            ca=pki.ca_cert,
            signing_key=pki.qseal_key,
            signing_cert=pki.qseal_cert,
        ),
    )
    try:
        with pytest.raises(CertificateInvalid, match="TLS refused"):
            await start(plain)
    finally:
        await plain.aclose()


async def test_a_qwac_from_an_untrusted_ca_is_refused(pki: PkiFiles, rogue: PkiFiles, bank_url: str) -> None:
    foreign = BerlinGroupAdapter(
        BANKS["sandbox"],
        endpoint(
            bank_url,
            cert=rogue.qwac_cert,
            key=rogue.qwac_key,
            ca=pki.ca_cert,
            signing_key=pki.qseal_key,
            signing_cert=pki.qseal_cert,
        ),
    )
    try:
        with pytest.raises(CertificateInvalid):
            await start(foreign)
    finally:
        await foreign.aclose()


async def test_an_untrusted_bank_certificate_is_a_certificate_error(pki: PkiFiles, bank_url: str) -> None:
    """Without the test CA in the bundle, our side refuses the bank's server certificate."""
    blind = BerlinGroupAdapter(
        BANKS["sandbox"],
        endpoint(bank_url, cert=pki.qwac_cert, key=pki.qwac_key, ca=None),
    )
    try:
        with pytest.raises(CertificateInvalid, match="not trusted"):
            await start(blind)
    finally:
        await blind.aclose()


async def test_a_request_without_signature_is_refused_as_signature_invalid(
    pki: PkiFiles, bank_url: str
) -> None:
    unsigned = BerlinGroupAdapter(
        BANKS["sandbox"], endpoint(bank_url, cert=pki.qwac_cert, key=pki.qwac_key, ca=pki.ca_cert)
    )
    try:
        with pytest.raises(SignatureInvalid, match="SIGNATURE_MISSING"):
            await start(unsigned)
    finally:
        await unsigned.aclose()


async def test_a_signature_by_the_wrong_key_is_refused(pki: PkiFiles, rogue: PkiFiles, bank_url: str) -> None:
    """The certificate is ours but the key is not: the signature does not verify."""
    wrong = BerlinGroupAdapter(
        BANKS["sandbox"],
        endpoint(
            bank_url,
            cert=pki.qwac_cert,
            key=pki.qwac_key,
            ca=pki.ca_cert,
            signing_key=rogue.qseal_key,
            signing_cert=pki.qseal_cert,
        ),
    )
    try:
        with pytest.raises(SignatureInvalid, match="SIGNATURE_INVALID"):
            await start(wrong)
    finally:
        await wrong.aclose()


async def test_a_signing_certificate_from_an_untrusted_ca_is_a_certificate_error(
    pki: PkiFiles, rogue: PkiFiles, bank_url: str
) -> None:
    foreign = BerlinGroupAdapter(
        BANKS["sandbox"],
        endpoint(
            bank_url,
            cert=pki.qwac_cert,
            key=pki.qwac_key,
            ca=pki.ca_cert,
            signing_key=rogue.qseal_key,
            signing_cert=rogue.qseal_cert,
        ),
    )
    try:
        with pytest.raises(CertificateInvalid, match="CERTIFICATE_INVALID"):
            await start(foreign)
    finally:
        await foreign.aclose()


def test_unreadable_certificate_files_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(CertificateInvalid, match="not found"):
        BerlinGroupAdapter(
            BANKS["sandbox"],
            endpoint(
                "https://127.0.0.1:1",
                cert=tmp_path / "missing.pem",
                key=tmp_path / "missing-key.pem",
                ca=None,
            ),
        )
    with pytest.raises(CertificateInvalid, match="LEDGERLINK_BANKS__SANDBOX__CLIENT_KEY_FILE"):
        BerlinGroupAdapter(
            BANKS["sandbox"], endpoint("https://127.0.0.1:1", cert=tmp_path / "c.pem", key=None, ca=None)
        )
    with pytest.raises(SignatureInvalid, match="LEDGERLINK_BANKS__SANDBOX__SIGNING_CERT_FILE"):
        BerlinGroupAdapter(
            BANKS["sandbox"],
            endpoint("https://127.0.0.1:1", cert=None, key=None, ca=None, signing_key=tmp_path / "k.pem"),
        )
