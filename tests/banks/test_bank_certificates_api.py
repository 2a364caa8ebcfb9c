"""Certificates through the API: the catalogue says which banks are configured, connecting to one that
is not answers 409 naming the missing settings (nothing written, nothing sent), and a bank that
refuses our certificate is a clear 502 problem, never a 500 — against the TLS test bank."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

# the journey helpers' fixtures, reused here
# the journey's company fixture; no injected transport: the adapter goes to the TLS test bank (loopback)
from test_connect_journey import REDIRECT, business, link_account, start_connection  # noqa: F401

from ledgerlink.config import BankEndpointSettings, Settings
from ledgerlink.models import SyncRun
from ledgerlink.testbank.pki import PkiFiles, make_pki
from ledgerlink.testbank.server import running_tls_bank


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_pki(tmp_path_factory.mktemp("api-pki"))


@pytest.fixture(scope="module")
def tls_bank(pki: PkiFiles) -> Iterator[str]:
    with running_tls_bank(pki) as url:
        yield url


def certificate_settings(pki: PkiFiles, **extra: Any) -> BankEndpointSettings:
    return BankEndpointSettings(
        client_cert_file=str(pki.qwac_cert),
        client_key_file=str(pki.qwac_key),
        ca_bundle_file=str(pki.ca_cert),
        signing_key_file=str(pki.qseal_key),
        signing_cert_file=str(pki.qseal_cert),
        **extra,
    )


async def catalogue(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    answer = await client.get("/v1/banks", headers=headers)
    assert answer.status_code == 200, answer.text
    return {item["id"]: item for item in answer.json()["items"]}


async def test_the_catalogue_says_which_banks_are_configured(
    client: httpx.AsyncClient, auth_headers: dict[str, str], settings: Settings, pki: PkiFiles
) -> None:
    before = await catalogue(client, auth_headers)
    assert before["nordea"]["configured"] is False  # QSealC required, none set
    assert before["sandbox"]["configured"] is True  # requires neither
    assert before["ekobanken"]["configured"] is True  # through the aggregator: no certificate of ours
    settings.banks["nordea"] = certificate_settings(pki)
    settings.banks["seb"] = BankEndpointSettings(signing_key_file=str(pki.qseal_key))  # no QWAC
    after = await catalogue(client, auth_headers)
    assert after["nordea"]["configured"] is True
    assert after["seb"]["configured"] is False


async def test_nordea_needs_the_qsealc_but_no_qwac(
    client: httpx.AsyncClient, auth_headers: dict[str, str], settings: Settings, pki: PkiFiles
) -> None:
    """Nordea's PSD2 APIs do not use mutual TLS; the signature identifies us (Nordea's FAQ)."""
    settings.banks["nordea"] = BankEndpointSettings(
        signing_key_file=str(pki.qseal_key), signing_cert_file=str(pki.qseal_cert)
    )
    assert (await catalogue(client, auth_headers))["nordea"]["configured"] is True


async def test_connecting_to_a_bank_without_its_certificates_is_409_naming_them(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    settings: Settings,
    pki: PkiFiles,
) -> None:
    settings.banks["nordea"] = BankEndpointSettings(
        base_url="https://nordea.example.invalid",
        client_cert_file=str(pki.qwac_cert),
        client_key_file=str(pki.qwac_key),
    )
    answer = await client.post(
        "/v1/bank-connections",
        json={"bank_id": "nordea", "account_type": "private", "redirect_uri": REDIRECT},
        headers=auth_headers,
    )
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["code"] == "bank_not_configured"
    assert problem["missing_settings"] == [
        "LEDGERLINK_BANKS__NORDEA__SIGNING_KEY_FILE",
        "LEDGERLINK_BANKS__NORDEA__SIGNING_CERT_FILE",
    ]
    assert "LEDGERLINK_BANKS__NORDEA__SIGNING_KEY_FILE" in problem["detail"]
    listed = await client.get("/v1/bank-connections", headers=auth_headers)
    assert listed.json()["items"] == []


async def test_through_mutual_tls_a_connection_is_made_and_transactions_are_imported(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    settings: Settings,
    pki: PkiFiles,
    tls_bank: str,
    run_jobs: Any,
) -> None:
    """What ``make run`` does pointed at the TLS test bank: decoupled BankID, link an account, import."""
    settings.banks["sandbox"] = certificate_settings(pki, base_url=tls_bank)
    account_id = await imported_through_tls(client, auth_headers, run_jobs)
    rows = await client.get("/v1/transactions", params={"bank_account_id": account_id}, headers=auth_headers)
    assert rows.status_code == 200, rows.text
    assert rows.json()["items"], "the initial import brought no transactions"


async def imported_through_tls(client: httpx.AsyncClient, headers: dict[str, str], run_jobs: Any) -> str:
    """Connect the sandbox bank (pointed at the TLS test bank) by decoupled BankID, link an account and
    run its initial import; returns the account's id."""
    created = await start_connection(client, headers, sca_method="decoupled", psu_id="anna")
    assert created.status_code == 201, created.text
    assert created.json()["authorization"]["method"] == "decoupled"
    connection_id = created.json()["id"]
    status = None
    for _ in range(5):  # each read polls the bank once; the test bank finishes after two polls
        polled = await client.get(f"/v1/bank-connections/{connection_id}", headers=headers)
        assert polled.status_code == 200, polled.text
        status = polled.json()["status"]
        if status == "active":
            break
    assert status == "active"
    linked = await link_account(client, headers, connection_id, kind="", ledger_account="1930")
    assert linked.status_code == 201, linked.text
    account_id: str = linked.json()["id"]
    run = await client.post(f"/v1/bank-accounts/{account_id}/confirmation", headers=headers)
    assert run.status_code == 202, run.text
    await run_jobs()
    account = await client.get(f"/v1/bank-accounts/{account_id}", headers=headers)
    assert account.json()["last_sync_status"] == "succeeded", account.text
    return account_id


async def sync_now_fails_with(
    client: httpx.AsyncClient, headers: dict[str, str], account_id: str, run_jobs: Any
) -> dict[str, Any]:
    """Sync now, run the job; the run failed at once (one attempt, nothing left to retry): its read."""
    queued = await client.post(f"/v1/bank-accounts/{account_id}/syncs", json={}, headers=headers)
    assert queued.status_code == 202, queued.text
    await run_jobs()
    runs = await client.get(f"/v1/bank-accounts/{account_id}/syncs", headers=headers)
    run: dict[str, Any] = runs.json()["items"][0]
    assert run["id"] == queued.json()["id"]
    assert run["status"] == "failed" and run["next_attempt_at"] is None, run
    assert run["error"]["retryable"] is False
    return run


@pytest.mark.parametrize("what", ["certificate", "signature"])
async def test_a_sync_the_bank_refuses_for_our_certificate_or_signature_fails_clearly_without_retrying(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    settings: Settings,
    pki: PkiFiles,
    tls_bank: str,
    run_jobs: Any,
    sessionmaker: Any,
    tmp_path_factory: pytest.TempPathFactory,
    what: str,
) -> None:
    """A certificate or signature refused in the middle of a sync (the operator changed the files, the
    certificate was revoked) ends the run with that code, not a generic bank error, and no retry loop."""
    settings.banks["sandbox"] = certificate_settings(pki, base_url=tls_bank)
    account_id = await imported_through_tls(client, auth_headers, run_jobs)
    if what == "certificate":  # the handshake is refused: no client certificate
        settings.banks["sandbox"] = settings.banks["sandbox"].model_copy(
            update={"client_cert_file": None, "client_key_file": None}
        )
    else:  # the bank refuses the signature: another key than the certificate's
        other = make_pki(tmp_path_factory.mktemp("other-seal"))
        settings.banks["sandbox"] = settings.banks["sandbox"].model_copy(
            update={"signing_key_file": str(other.qseal_key)}
        )
    run = await sync_now_fails_with(client, auth_headers, account_id, run_jobs)
    assert run["error"]["code"] == f"{what}_invalid"
    async with sessionmaker() as s:
        stored = await s.get(SyncRun, uuid.UUID(run["id"]))
        assert stored is not None and stored.attempts == 1
    todos = await client.get("/v1/todos", headers=auth_headers)
    failed = [t for t in todos.json()["items"] if t["type"] == "sync_failed"]
    assert [t["code"] for t in failed] == [f"{what}_invalid"]


async def test_a_refused_client_certificate_is_a_502_certificate_invalid(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    settings: Settings,
    pki: PkiFiles,
    tls_bank: str,
) -> None:
    """The sandbox requires no certificate in the catalogue, so the request reaches the TLS test bank,
    which refuses the handshake: the user gets a clear problem, not a 500 and not a retry."""
    settings.banks["sandbox"] = BankEndpointSettings(
        base_url=tls_bank,
        ca_bundle_file=str(pki.ca_cert),
        signing_key_file=str(pki.qseal_key),
        signing_cert_file=str(pki.qseal_cert),
    )
    answer = await start_connection(client, auth_headers, sca_method="decoupled", psu_id="anna")
    assert answer.status_code == 502, answer.text
    problem = answer.json()
    assert problem["code"] == "certificate_invalid"
    assert problem["retryable"] is False
    assert problem["bank_id"] == "sandbox"


async def test_a_refused_signature_is_a_502_signature_invalid(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    settings: Settings,
    pki: PkiFiles,
    tls_bank: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    other = make_pki(tmp_path_factory.mktemp("other-key"))
    settings.banks["sandbox"] = certificate_settings(pki, base_url=tls_bank).model_copy(
        update={"signing_key_file": str(other.qseal_key)}
    )
    answer = await start_connection(client, auth_headers, sca_method="decoupled", psu_id="anna")
    assert answer.status_code == 502, answer.text
    assert answer.json()["code"] == "signature_invalid"
