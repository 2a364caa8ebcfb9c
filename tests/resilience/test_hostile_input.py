"""Hostile input: oversized bodies and uploads, broken SIE files, huge numbers, hostile unicode, redirect
URIs off the allow-list, replayed OAuth state, webhook targets in private ranges. Every answer is a
documented 4xx problem, never a 500; nothing is sent anywhere outside 127.0.0.0/8 (no name resolves
except through the suite's fake DNS, and the webhook transport records instead of connecting)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Mount

from ledgerlink.config import Settings
from ledgerlink.db.session import session_scope
from ledgerlink.events.service import emit
from ledgerlink.events.tasks import deliver_job
from ledgerlink.models import Company, Plan, WebhookDelivery
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from tests.conftest import make_token

pytestmark = pytest.mark.resilience

REDIRECT = "https://app.example.test/callback"
SIE_FILE = Path("/work/shared/data/sie/Sie4.se")  # financial year 2014
SIE_BYTES = SIE_FILE.read_bytes()
HOSTILE_TEXTS = [
    "Räksmörgås ÅÄÖ åäö",
    "emoji 🧾💸👩‍👩‍👧‍👦",
    "RTL \u202eעברית\u202c العربية",
    "combining e\u0301\u0301\u0301 and zero\u200bwidth",
    "line\nbreak\ttab\r\n",
    "quotes \" ' ` \\ {} #VER",
    "\U0010fffd plane 16 and \ufeff BOM",
]


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.limits.max_body_bytes = 64 * 1024
    settings.limits.max_upload_bytes = 8 * 1024 * 1024
    return settings


@pytest.fixture
def auth_headers(settings: Settings, company_id: uuid.UUID) -> dict[str, str]:
    # admin too: the webhook routes (internal services) need it
    return {"Authorization": f"Bearer {make_token(settings, company_id, 'banking closing admin')}"}


@pytest.fixture
async def company(sessionmaker: Any, company_id: uuid.UUID) -> uuid.UUID:
    async with sessionmaker() as s:
        s.add(Company(id=company_id, name="Hostile AB", plan=Plan.business))
        await s.commit()
    return company_id


@pytest.fixture
async def bank(transports: dict[str, Any]) -> httpx.ASGITransport:
    transport = httpx.ASGITransport(
        app=Starlette(routes=[Mount("/sandbox/bank", app=create_sandbox_bank_app())])
    )
    transports["sandbox"] = transport
    return transport


async def sie_closing(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    created = await client.post(
        "/v1/closings",
        json={"financial_year_start": "2014-01-01", "financial_year_end": "2014-12-31", "data_source": "sie"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def upload(client: httpx.AsyncClient, headers: dict[str, str], closing_id: str, content: bytes) -> Any:
    return await client.post(
        f"/v1/closings/{closing_id}/imports/sie",
        files={"file": ("upload.se", content, "application/octet-stream")},
        headers=headers,
    )


# --------------------------------------------------------------------------- sizes


async def test_oversized_json_body_is_413_declared_or_streamed(
    client: httpx.AsyncClient, auth_headers: dict[str, str], company: uuid.UUID, settings: Settings
) -> None:
    big = {"name": "x" * (settings.limits.max_body_bytes + 10), "plan": "business"}
    raw = json.dumps(big).encode()
    admin = {"Authorization": f"Bearer {make_token(settings, company, 'admin')}"}
    declared = await client.put(
        f"/v1/companies/{company}", content=raw, headers=admin | {"content-type": "application/json"}
    )
    assert problem(declared, 413)["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit counts what arrives
        for i in range(0, len(raw), 4096):
            yield raw[i : i + 4096]

    streamed = await client.put(
        f"/v1/companies/{company}", content=chunks(), headers=admin | {"content-type": "application/json"}
    )
    assert problem(streamed, 413)["code"] == "payload_too_large"
    company_row = (await client.get("/v1/company", headers=auth_headers)).json()
    assert company_row["name"] == "Hostile AB"


async def test_oversized_upload_is_413_and_a_body_limit_sized_upload_is_accepted(
    client: httpx.AsyncClient, auth_headers: dict[str, str], settings: Settings
) -> None:
    closing_id = await sie_closing(client, auth_headers)
    too_big = b"#FLAGGA 0\r\n" + b"#PROGRAM x\r\n" * (settings.limits.max_upload_bytes // 12 + 10)
    assert (
        problem(await upload(client, auth_headers, closing_id, too_big), 413)["code"] == "payload_too_large"
    )
    # larger than the JSON body limit but under the upload limit: uploads have their own limit
    real = SIE_BYTES
    padded = real + b"\r\n" * (settings.limits.max_body_bytes)
    assert (await upload(client, auth_headers, closing_id, padded)).status_code == 202


# --------------------------------------------------------------------------- SIE files


def _sie(*lines: str, encoding: str = "cp437") -> bytes:
    head = ["#FLAGGA 0", "#FORMAT PC8", "#SIETYP 4", "#RAR 0 20140101 20141231", '#KONTO 1930 "Bank"']
    return "\r\n".join([*head, *lines, ""]).encode(encoding)


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("unclosed voucher", _sie('#VER A 1 20140105 "x"', "{", "#TRANS 1930 {} 10.00"), 6),
        ("voucher never opened", _sie('#VER A 1 20140105 "x"', "#TRANS 1930 {} 10.00", "}"), 7),
        # the giant field itself is refused (field-length limit), before the bad date after it
        ("giant line", _sie('#KONTO 1910 "' + "K" * 3_000_000 + '"', '#VER A 1 2014 "x"'), 6),
        ("utf-16 file", _sie('#VER A 1 20140105 "x"', "{", "}", encoding="utf-16"), 1),
        ("nul bytes", _sie('#VER A 1 20140105 "x"', "{", "#TRANS 1930 {} 10.00\x00", "}"), 8),
    ],
)
async def test_broken_sie_files_are_422_with_their_line_number(
    client: httpx.AsyncClient, auth_headers: dict[str, str], name: str, content: bytes, line: int
) -> None:
    closing_id = await sie_closing(client, auth_headers)
    body = problem(await upload(client, auth_headers, closing_id, content), 422)
    assert body["code"] == "sie_invalid", name
    assert isinstance(body.get("line_number"), int), body
    assert body["line_number"] == line, (name, body)


async def test_sie_in_utf8_instead_of_pc8_is_read_or_refused_never_500(
    client: httpx.AsyncClient, auth_headers: dict[str, str], run_jobs: Any
) -> None:
    closing_id = await sie_closing(client, auth_headers)
    content = SIE_BYTES.decode("cp437").encode("utf-8")
    response = await upload(client, auth_headers, closing_id, content)
    assert response.status_code in (202, 422), response.text
    if response.status_code == 202:
        await run_jobs()
        job = await client.get(
            f"/v1/closings/{closing_id}/imports/{response.json()['id']}", headers=auth_headers
        )
        assert job.json()["status"] in ("succeeded", "failed")


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" + "0" * 1000, "1e-400", "NaN", "Infinity"])
async def test_huge_numbers_as_amounts_are_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], run_jobs: Any, number: str
) -> None:
    closing_id = await sie_closing(client, auth_headers)
    assert (await upload(client, auth_headers, closing_id, SIE_BYTES)).status_code == 202
    await run_jobs()
    for as_json_number in (True, False):
        value = number if as_json_number else json.dumps(number)
        raw = (
            '{"date": "2014-12-31", "description": "x", "rows": ['
            f'{{"account": "1510", "debit": {value}}}, {{"account": "2440", "credit": {value}}}]}}'
        )
        response = await client.post(
            f"/v1/closings/{closing_id}/adjustments",
            content=raw,
            headers=auth_headers | {"content-type": "application/json"},
        )
        if number == "1e-400":  # rounds to 0.00 öre: refused as a zero row, or stored as 0
            assert response.status_code in (201, 422), response.text
            continue
        problem(response, 422)
    listed = await client.get(f"/v1/closings/{closing_id}/adjustments", headers=auth_headers)
    assert listed.status_code == 200
    for adjustment in listed.json()["items"]:
        assert all(len(str(row["debit"])) < 30 for row in adjustment["rows"])


@pytest.mark.parametrize("number", ["1e400", "1" + "0" * 1000, "-1", "0", "501", "NaN"])
async def test_huge_numbers_as_limits_are_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], company: uuid.UUID, number: str
) -> None:
    for path in ("/v1/transactions", "/v1/bank-accounts", "/v1/closings", "/v1/bank-connections"):
        problem(await client.get(path, params={"limit": number}, headers=auth_headers), 422)


async def test_garbage_cursors_are_422_not_500(
    client: httpx.AsyncClient, auth_headers: dict[str, str], company: uuid.UUID
) -> None:
    for cursor in ("!!!", "eyJ4IjoxfQ", "A" * 5000, "\u00e5\u00e4\u00f6", "e30="):
        for path in ("/v1/transactions", "/v1/bank-accounts", "/v1/closings"):
            response = await client.get(path, params={"cursor": cursor}, headers=auth_headers)
            assert response.status_code in (200, 422), (path, cursor, response.text)


# --------------------------------------------------------------------------- text


async def test_unicode_in_text_fields_is_stored_faithfully_and_nul_is_422(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company: uuid.UUID,
    settings: Settings,
    run_jobs: Any,
) -> None:
    admin = {"Authorization": f"Bearer {make_token(settings, company, 'admin')}"}
    closing_id = await sie_closing(client, auth_headers)
    assert (await upload(client, auth_headers, closing_id, SIE_BYTES)).status_code == 202
    await run_jobs()
    for text in HOSTILE_TEXTS:
        put = await client.put(
            f"/v1/companies/{company}", json={"name": text, "plan": "business"}, headers=admin
        )
        assert put.status_code in (200, 422), put.text
        if put.status_code == 200:
            assert (await client.get("/v1/company", headers=auth_headers)).json()["name"] == text
        adj = await client.post(
            f"/v1/closings/{closing_id}/adjustments",
            json={
                "date": "2014-12-31",
                "description": text,
                "rows": [
                    {"account": "1510", "debit": "1.00", "description": text},
                    {"account": "2440", "credit": "1.00"},
                ],
            },
            headers=auth_headers,
        )
        assert adj.status_code in (201, 422), adj.text
        if adj.status_code == 201:
            # voucher texts are trimmed at their ends (SIE/Fortnox texts); everything else is kept
            assert adj.json()["description"].strip() == text.strip()
            assert adj.json()["rows"][0]["description"].strip() == text.strip()
        listed = await client.get("/v1/transactions", params={"q": text}, headers=auth_headers)
        assert listed.status_code in (200, 422), listed.text

    nul = "before\x00after"
    put = await client.put(f"/v1/companies/{company}", json={"name": nul, "plan": "business"}, headers=admin)
    problem(put, 422)
    adj = await client.post(
        f"/v1/closings/{closing_id}/adjustments",
        json={
            "date": "2014-12-31",
            "description": nul,
            "rows": [{"account": "1510", "debit": "1.00"}, {"account": "2440", "credit": "1.00"}],
        },
        headers=auth_headers,
    )
    problem(adj, 422)
    problem(await client.get("/v1/transactions", params={"q": nul}, headers=auth_headers), 422)
    hook = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://hooks.example.test/x\x00", "events": ["bank_account.synced"]},
        headers=auth_headers,
    )
    problem(hook, 422)
    created = await client.post(
        "/v1/closings",
        json={"financial_year_start": "2015-01-01", "financial_year_end": "2015-12-31", "data_source": "sie"},
        headers=auth_headers | {"Idempotency-Key": "key\x00nul"},
    )
    assert created.status_code in (201, 400, 422), created.text


async def test_nul_in_bank_fields_is_refused_or_kept(
    bank: Any, client: httpx.AsyncClient, auth_headers: dict[str, str], company: uuid.UUID
) -> None:
    response = await client.post(
        "/v1/bank-connections",
        json={
            "bank_id": "sandbox",
            "account_type": "business",
            "redirect_uri": REDIRECT,
            "psu_id": "an\x00na",
        },
        headers=auth_headers,
    )
    # the PSU id is only kept encrypted and sent to the bank: refused or kept as sent, never a 500
    assert response.status_code in (201, 422), response.text
    response = await client.post(
        "/v1/bank-connections",
        json={"bank_id": "sand\x00box", "account_type": "business", "redirect_uri": REDIRECT},
        headers=auth_headers,
    )
    assert response.status_code in (404, 409, 422), response.text


# --------------------------------------------------------------------------- OAuth


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example/callback",
        "https://app.example.test/callback/../../evil",
        "https://app.example.test/callback?next=https://evil.example",
        "https://app.example.test.evil.example/callback",
        "javascript:alert(1)",
        "HTTPS://APP.EXAMPLE.TEST/CALLBACK#frag",
    ],
)
async def test_redirect_uris_off_the_allow_list_are_422(
    bank: Any, client: httpx.AsyncClient, auth_headers: dict[str, str], company: uuid.UUID, uri: str
) -> None:
    bank_answer = await client.post(
        "/v1/bank-connections",
        json={"bank_id": "sandbox", "account_type": "business", "redirect_uri": uri},
        headers=auth_headers,
    )
    problem(bank_answer, 422)
    fortnox_answer = await client.post(
        "/v1/fortnox/authorization", json={"redirect_uri": uri}, headers=auth_headers
    )
    problem(fortnox_answer, 422)


async def test_a_replayed_bank_oauth_state_is_400_state_mismatch(
    bank: Any, client: httpx.AsyncClient, auth_headers: dict[str, str], company: uuid.UUID
) -> None:
    created = await client.post(
        "/v1/bank-connections",
        json={"bank_id": "sandbox", "account_type": "business", "redirect_uri": REDIRECT, "psu_id": "anna"},
        headers=auth_headers,
    )
    assert created.status_code == 201, created.text
    connection = created.json()
    async with httpx.AsyncClient(transport=bank) as browser:
        answer = await browser.get(connection["authorization"]["url"], params={"approve": "1"})
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
    url = f"/v1/bank-connections/{connection['id']}/authorization"
    first = await client.post(
        url, json={"code": query["code"], "state": query["state"]}, headers=auth_headers
    )
    assert first.status_code == 200, first.text
    replay = await client.post(
        url, json={"code": query["code"], "state": query["state"]}, headers=auth_headers
    )
    assert problem(replay, 400)["code"] == "state_mismatch"
    forged = await client.post(url, json={"code": query["code"], "state": "forged"}, headers=auth_headers)
    assert forged.status_code in (400, 409), forged.text


# --------------------------------------------------------------------------- webhooks


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fc00::5",
        "fec0::1",  # site-local (deprecated, never public)
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
    ],
)
async def test_webhook_hosts_resolving_to_private_ranges_are_refused_when_registered(
    client: httpx.AsyncClient, auth_headers: dict[str, str], no_dns: dict[str, str], address: str
) -> None:
    no_dns["hooks.rebind.example.invalid"] = address
    by_name = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://hooks.rebind.example.invalid/x", "events": ["bank_account.synced"]},
        headers=auth_headers,
    )
    assert problem(by_name, 422)["code"] == "webhook_target_refused"
    literal = f"[{address}]" if ":" in address else address
    by_ip = await client.post(
        "/v1/webhook-endpoints",
        json={"url": f"https://{literal}/x", "events": ["bank_account.synced"]},
        headers=auth_headers,
    )
    assert problem(by_ip, 422)["code"] == "webhook_target_refused"


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200)


async def test_a_webhook_host_that_rebinds_to_a_private_address_is_refused_before_delivery(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    settings: Settings,
    sessionmaker: Any,
    transports: dict[str, Any],
    no_dns: dict[str, str],
) -> None:
    recorder = Recorder()
    transports["webhooks"] = recorder  # never connects anywhere; records what would have been sent
    # Registered while the name was trusted (no real public address is named in tests, not even as a
    # fake DNS answer, so the registration check is switched off for this step only)...
    settings.webhooks.allow_private_targets = True
    created = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://hooks.rebind.example.invalid/x", "events": ["bank_account.synced"]},
        headers=auth_headers,
    )
    assert created.status_code == 201, created.text
    settings.webhooks.allow_private_targets = False
    no_dns["hooks.rebind.example.invalid"] = "169.254.169.254"  # ...and the metadata service at delivery time
    async with session_scope(sessionmaker) as s:
        await emit(s, company_id, "bank_account.synced", {"bank_account_id": "x"})
    async with sessionmaker() as s:
        delivery_id = (await s.execute(select(WebhookDelivery.id))).scalar_one()
    ctx: Any = {"settings": settings, "sessionmaker": sessionmaker, "redis": None, "transports": transports}
    await deliver_job(ctx, str(delivery_id))
    assert recorder.requests == []
    async with sessionmaker() as s:
        delivery = await s.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        assert delivery.status != "delivered"
        assert "refused" in json.dumps(delivery.attempt_log)


async def test_a_malformed_multipart_upload_is_422_not_400(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    """Found by contract fuzzing: Starlette's form parser answered an undocumented 400."""
    closing_id = await sie_closing(client, auth_headers)
    boundary = "82190f9f4309656a2bd932f39cbd86d5"
    response = await client.post(
        f"/v1/closings/{closing_id}/imports/sie",
        content=f"--{boundary}\r\n255--{boundary}--\r\n".encode(),
        headers=auth_headers | {"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert problem(response, 422)["code"] == "validation_error"
