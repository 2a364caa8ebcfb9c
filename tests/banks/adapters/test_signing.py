"""Each signing bank's requests verify: Swedbank and Bank Norwegian (Berlin Group signature with the
certificate carried), Nordea (its header set, the certificate registered with the bank) and OBIE
(detached JWS in ``x-jws-signature``, checked with joserfc). Requests are captured with respx and
checked by the same verifier the TLS test bank runs."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from cryptography import x509
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import RSAKey
from pydantic import SecretStr

from ledgerlink.banks.adapters.banknorwegian import BankNorwegianAdapter
from ledgerlink.banks.adapters.base import ConnectionContext, Credentials
from ledgerlink.banks.adapters.nordea import NordeaAdapter
from ledgerlink.banks.adapters.registry import BANKS
from ledgerlink.banks.adapters.revolut import RevolutAdapter
from ledgerlink.banks.adapters.signing import OBIE_CRIT, _obie_header_registry
from ledgerlink.banks.adapters.swedbank import SwedbankAdapter
from ledgerlink.config import BankEndpointSettings
from ledgerlink.testbank.pki import PkiFiles, make_pki
from ledgerlink.testbank.verify import SignatureRefused, verify_request

DATA = Path(__file__).parents[2] / "data" / "banks"
PRESENT = ConnectionContext(account_type="private", psu_id="199001011234", psu_ip_address="198.51.100.7")


def load(bank: str, name: str) -> Any:
    return json.loads((DATA / bank / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_pki(tmp_path_factory.mktemp("signing"))


@pytest.fixture(scope="module")
def ca(pki: PkiFiles) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def signed(pki: PkiFiles, base_url: str, **extra: Any) -> BankEndpointSettings:
    return BankEndpointSettings(
        base_url=base_url,
        signing_key_file=str(pki.qseal_key),
        signing_cert_file=str(pki.qseal_cert),
        **extra,
    )


def check(request: httpx.Request, ca: x509.Certificate, **kwargs: Any) -> x509.Certificate:
    return verify_request(
        request.method, request.url.raw_path.decode(), dict(request.headers), request.read(), ca=ca, **kwargs
    )


async def test_swedbank_signs_its_headers_and_sends_the_qseal(
    pki: PkiFiles, ca: x509.Certificate, mock: respx.MockRouter
) -> None:
    base = "https://psd2.swedbank.test"
    adapter = SwedbankAdapter(BANKS["swedbank"], signed(pki, base, client_id="swb-client"))
    consents = mock.post(f"{base}/v4/consents")
    consents.side_effect = [
        respx.MockResponse(201, json=load("swedbank", "consent_list.json")),
        respx.MockResponse(201, json=load("swedbank", "consent_detailed_redirect.json")),
    ]
    accounts = mock.get(f"{base}/v4/accounts").respond(200, json=load("swedbank", "accounts.json"))
    try:
        await adapter.start_authorization(
            PRESENT, redirect_uri="https://app.test/cb", state="s", sca_method="redirect"
        )
    finally:
        await adapter.aclose()
    detailed = consents.calls.last.request
    signature = detailed.headers["Signature"]
    assert 'headers="x-request-id tpp-redirect-uri date digest"' in signature
    assert "SN=" in signature and "CA=" in signature
    certificate = check(detailed, ca, required=("digest", "x-request-id", "tpp-redirect-uri"))
    assert (
        certificate.serial_number == x509.load_pem_x509_certificate(pki.qseal_cert.read_bytes()).serial_number
    )
    check(accounts.calls.last.request, ca)  # a GET is signed too (Digest of the empty body)


async def test_a_body_changed_after_signing_does_not_verify(
    pki: PkiFiles, ca: x509.Certificate, mock: respx.MockRouter
) -> None:
    base = "https://psd2.swedbank.test"
    adapter = SwedbankAdapter(BANKS["swedbank"], signed(pki, base, client_id="swb-client"))
    route = mock.post(f"{base}/v4/consents").respond(201, json=load("swedbank", "consent_list.json"))
    mock.get(f"{base}/v4/accounts").respond(500)
    try:
        with pytest.raises(Exception):  # noqa: B017 - the 500 ends the flow; the request is what we check
            await adapter.start_authorization(PRESENT, redirect_uri="https://app.test/cb", state="s")
    finally:
        await adapter.aclose()
    request = route.calls.last.request
    with pytest.raises(SignatureRefused, match="Digest"):
        verify_request(
            "POST", request.url.raw_path.decode(), dict(request.headers), request.read() + b" ", ca=ca
        )


async def test_bank_norwegian_signs_its_own_header_set(
    pki: PkiFiles, ca: x509.Certificate, mock: respx.MockRouter
) -> None:
    base = "https://api.banknorwegian.test/openbanking"
    adapter = BankNorwegianAdapter(
        BANKS["banknorwegian"], signed(pki, base, client_id="tpp-bn", client_secret=SecretStr("x"))
    )
    route = mock.get(f"{base}/accounts").respond(200, json=load("banknorwegian", "accounts.json"))
    try:
        await adapter.list_accounts(PRESENT, Credentials(consent_id="c-1", access_token="t"))
    finally:
        await adapter.aclose()
    request = route.calls.last.request
    names = request.headers["Signature"].split('headers="', 1)[1].split('"', 1)[0].split()
    assert names == [
        "request-id",
        "region-id",
        "tpp-client-id",
        "psu-ip-address",
        "consent-id",
        "date",
        "digest",
    ]
    check(request, ca, required=("request-id", "region-id", "consent-id", "digest"))


async def test_nordea_signs_request_target_and_originating_headers_with_the_client_id(
    pki: PkiFiles, ca: x509.Certificate, mock: respx.MockRouter
) -> None:
    base = "https://nordea.test"
    adapter = NordeaAdapter(
        BANKS["nordea"], signed(pki, base, client_id="client-1", client_secret=SecretStr("secret-1"))
    )
    authorize = mock.post(f"{base}/personal/v5/authorize").respond(
        302, headers={"Location": "https://identify.nordea.test/login?session=abc"}
    )
    accounts = mock.get(f"{base}/personal/v5/accounts").respond(200, json=load("nordea", "accounts.json"))
    try:
        await adapter.start_authorization(
            PRESENT, redirect_uri="https://app.test/cb", state="s", sca_method="redirect"
        )
        await adapter.list_accounts(PRESENT, Credentials(access_token="tok"))
    finally:
        await adapter.aclose()
    registered = x509.load_pem_x509_certificate(pki.qseal_cert.read_bytes())
    post = authorize.calls.last.request
    assert post.headers["Signature"].startswith('keyId="client-1",algorithm="rsa-sha256"')
    assert "TPP-Signature-Certificate" not in post.headers
    assert (
        'headers="(request-target) x-nordea-originating-host x-nordea-originating-date content-type digest"'
        in post.headers["Signature"]
    )
    check(post, ca, registered=registered, required=("(request-target)", "digest"))
    get = accounts.calls.last.request
    assert "digest" not in get.headers["Signature"].split('headers="', 1)[1].split('"', 1)[0]
    check(get, ca, registered=registered, required=("(request-target)", "x-nordea-originating-date"))


async def test_obie_bodies_carry_a_detached_jws_that_verifies(pki: PkiFiles, mock: respx.MockRouter) -> None:
    api, auth = "https://oba.revolut.test", "https://auth.revolut.test"
    adapter = RevolutAdapter(
        BANKS["revolut"], signed(pki, api, auth_base_url=auth, client_id="rev-client", app_id="kid-1")
    )
    token = mock.post(f"{auth}/token").respond(200, json=load("revolut", "token_client_credentials.json"))
    consent = mock.post(f"{api}/account-access-consents").respond(
        201, json=load("revolut", "consent_created.json")
    )
    adapter.request_object_signer = lambda claims: "signed"
    try:
        await adapter.start_authorization(PRESENT, redirect_uri="https://app.example/cb", state="st")
    finally:
        await adapter.aclose()
    assert "x-jws-signature" not in token.calls.last.request.headers  # form posts are not signed
    request = consent.calls.last.request
    detached = request.headers["x-jws-signature"]
    head, empty, _signature = detached.split(".")
    assert empty == ""
    protected = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert protected["alg"] == "PS256" and protected["kid"] == "kid-1"
    assert protected["crit"] == OBIE_CRIT
    assert protected["http://openbanking.org.uk/iss"] == "rev-client"
    assert abs(protected["http://openbanking.org.uk/iat"] - dt.datetime.now(dt.UTC).timestamp()) < 60
    public = RSAKey.import_key(x509.load_pem_x509_certificate(pki.qseal_cert.read_bytes()).public_key())
    registry = jws.JWSRegistry(header_registry=_obie_header_registry(), algorithms=["PS256"])
    verified = jws.deserialize_compact(
        detached, public, algorithms=["PS256"], registry=registry, payload=request.read()
    )
    assert verified.payload == request.read()
    with pytest.raises(BadSignatureError):  # another body does not verify
        jws.deserialize_compact(detached, public, algorithms=["PS256"], registry=registry, payload=b"{}")
