"""Tenant isolation and scopes, generated from the app's route table.

Company A gets real resources through the API (a connected sandbox bank, a linked and synced account with
transactions, a webhook endpoint, a Fortnox connection, a SIE closing with an import, an adjustment and an
export job). Then company B, with every scope, calls EVERY /v1 route with A's ids: a route that names a
resource answers 404, a collection answers without A's items, and no answer contains any of A's ids or
names. A's resources are unchanged afterwards. Every route also answers 403 to a token holding every
scope but the one its dependencies require (derived from ``require_scope`` in the route's dependant).

A new route fails :func:`test_every_route_has_a_call` until it is given a call below."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.applications import Starlette
from starlette.routing import Mount

from ledgerlink.config import Settings
from ledgerlink.models import Company, Plan
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sandbox.fortnox import create_sandbox_fortnox_app
from ledgerlink.sandbox.fortnox_data import SandboxCompany
from tests.conftest import make_token

pytestmark = pytest.mark.resilience

REDIRECT = "https://app.example.test/callback"
SIE_BYTES = Path("/work/shared/data/sie/Sie4.se").read_bytes()  # financial year 2014
ALL_SCOPES = ("banking", "closing", "admin")
#: Routes whose answer is the caller's own resource or a catalogue: no foreign id to try.
OWN_OR_CATALOGUE = {
    "get_company",
    "list_banks",
    "list_ledger_accounts",
    "sync_schedule",
    "get_connection",
    "list_financial_years",
    "list_voucher_series",
    "start_authorization",
    "complete_authorization",
    "delete_connection",
    "create_closing",
    "create_bank_connection",
    "create_webhook_endpoint",
    "upsert_open_items",
    "create_booking_rule",
}
#: Collections: B sees its own (empty) list, never A's items.
COLLECTIONS = {
    "list_bank_connections",
    "list_bank_accounts",
    "list_account_mappings",
    "list_transactions",
    "list_todos",
    "list_webhook_endpoints",
    "list_closings",
    "list_open_items",
    "list_booking_rules",
}
#: ``PUT /v1/companies/{id}`` is billing's admin route: the admin scope acts across companies by
#: design (it is how plans are set), so it is excluded from the foreign-id check, not from scopes.
CROSS_COMPANY_BY_DESIGN = {"put_company"}


#: The scope each /v1 route needs, decided route by route (None: any valid token, the caller's own company).
#: A route added without a decision here fails :func:`test_every_route_needs_the_scope_decided_for_it`.
#: Webhooks are for internal services: ``admin``, as billing's plan route. The sync schedule is part of
#: bank import: ``banking``.
EXPECTED_SCOPES: dict[str, str | None] = {
    "commit_statement_import": "banking",
    "create_booking_rule": "banking",
    "create_statement_import": "banking",
    "delete_booking_rule": "banking",
    "delete_open_item": "banking",
    "get_booking_rule": "banking",
    "get_statement_import": "banking",
    "list_booking_rules": "banking",
    "list_open_items": "banking",
    "list_suggestions": "banking",
    "update_booking_rule": "banking",
    "upload_bgmax": "banking",
    "upsert_open_items": "banking",
    "get_company": None,
    "put_company": "admin",
    "list_banks": "banking",
    "create_bank_connection": "banking",
    "list_bank_connections": "banking",
    "get_bank_connection": "banking",
    "complete_bank_authorization": "banking",
    "list_available_accounts": "banking",
    "reauthorize_bank_connection": "banking",
    "delete_bank_connection": "banking",
    "create_bank_account": "banking",
    "list_bank_accounts": "banking",
    "get_bank_account": "banking",
    "update_bank_account": "banking",
    "confirm_bank_account": "banking",
    "delete_bank_account": "banking",
    "list_account_mappings": "banking",
    "put_account_mapping": "banking",
    "list_ledger_accounts": "banking",
    "sync_now": "banking",
    "list_syncs": "banking",
    "sync_schedule": "banking",
    "list_transactions": "banking",
    "patch_transaction": "banking",
    "bulk_status": "banking",
    "list_todos": "banking",
    "create_webhook_endpoint": "admin",
    "list_webhook_endpoints": "admin",
    "delete_webhook_endpoint": "admin",
    "start_authorization": "closing",
    "complete_authorization": "closing",
    "get_connection": "closing",
    "delete_connection": "closing",
    "list_financial_years": "closing",
    "list_voucher_series": "closing",
    "create_closing": "closing",
    "list_closings": "closing",
    "get_closing": "closing",
    "update_closing": "closing",
    "start_import": "closing",
    "upload_sie": "closing",
    "get_import": "closing",
    "trial_balance": "closing",
    "list_vouchers": "closing",
    "specifications": "closing",
    "create_adjustment": "closing",
    "list_adjustments": "closing",
    "delete_adjustment": "closing",
    "adjustments_sie": "closing",
    "start_export": "closing",
    "get_export": "closing",
}


def v1_routes(app: Any) -> list[APIRoute]:
    routes = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and (context.path or "").startswith("/v1"):
            routes.append(context)
    return routes


def required_scope(route: Any) -> str | None:
    """The scope ``require_scope(scope)`` closes over, found among the route's dependencies."""
    pending = list(route.dependant.dependencies)
    while pending:
        dep = pending.pop()
        call = dep.call
        if getattr(call, "__qualname__", "").startswith("require_scope.") and call.__closure__:
            for cell in call.__closure__:
                if isinstance(cell.cell_contents, str):
                    return cell.cell_contents
        pending.extend(dep.dependencies)
    return None


@dataclass
class Tenant:
    company_id: uuid.UUID
    headers: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)


@pytest.fixture
def bank() -> httpx.ASGITransport:
    return httpx.ASGITransport(app=Starlette(routes=[Mount("/sandbox/bank", app=create_sandbox_bank_app())]))


@pytest.fixture
def fortnox() -> httpx.ASGITransport:
    app = create_sandbox_fortnox_app(
        company=SandboxCompany.generate(seed=3, vouchers=20, year=2014), enforce_rate_limit=False
    )
    return httpx.ASGITransport(app=app, root_path="/sandbox/fortnox")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.webhooks.allow_private_targets = True  # A's webhook receiver is a name nobody resolves
    settings.allowed_redirect_uris = [REDIRECT]
    return settings


@pytest.fixture
def transports(bank: httpx.ASGITransport, fortnox: httpx.ASGITransport) -> dict[str, Any]:
    return {"sandbox": bank, "fortnox": fortnox}


async def tenant(sessionmaker: Any, settings: Settings, name: str) -> Tenant:
    company_id = uuid.uuid4()
    async with sessionmaker() as s:
        s.add(Company(id=company_id, name=name, plan=Plan.business))
        await s.commit()
    token = make_token(settings, company_id, " ".join(ALL_SCOPES))
    return Tenant(company_id, {"Authorization": f"Bearer {token}"}, names=[name])


async def populate(
    client: httpx.AsyncClient,
    a: Tenant,
    bank: httpx.ASGITransport,
    fortnox: httpx.ASGITransport,
    run_jobs: Any,
) -> None:
    """Real resources of every kind for company A, through the API."""
    h = a.headers
    created = await client.post(
        "/v1/bank-connections",
        json={"bank_id": "sandbox", "account_type": "business", "redirect_uri": REDIRECT, "psu_id": "anna"},
        headers=h,
    )
    assert created.status_code == 201, created.text
    async with httpx.AsyncClient(transport=bank) as browser:
        back = await browser.get(
            created.json()["authorization"]["url"], params={"approve": "1", "psu": "anna"}
        )
    query = {k: v[0] for k, v in parse_qs(urlsplit(back.headers["Location"]).query).items()}
    connection_id = created.json()["id"]
    done = await client.post(
        f"/v1/bank-connections/{connection_id}/authorization",
        json={"code": query["code"], "state": query["state"]},
        headers=h,
    )
    assert done.status_code == 200, done.text
    available = (
        await client.get(f"/v1/bank-connections/{connection_id}/available-accounts", headers=h)
    ).json()
    first = next(x for x in available["items"] if x["external_id"].startswith("ftg"))
    account = await client.post(
        "/v1/bank-accounts",
        json={
            "connection_id": connection_id,
            "external_id": first["external_id"],
            "sync_from": (dt.date.today() - dt.timedelta(days=20)).isoformat(),
            "ledger_account": "1930",
        },
        headers=h,
    )
    assert account.status_code == 201, account.text
    account_id = account.json()["id"]
    confirmed = await client.post(f"/v1/bank-accounts/{account_id}/confirmation", headers=h)
    assert confirmed.status_code == 202, confirmed.text
    await run_jobs()
    transactions = (await client.get("/v1/transactions", headers=h)).json()["items"]
    assert transactions, "the initial import brought no transactions"
    hook = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://hooks.company-a.test/x", "events": ["bank_account.synced"]},
        headers=h,
    )
    assert hook.status_code == 201, hook.text

    started = await client.post("/v1/fortnox/authorization", json={"redirect_uri": REDIRECT}, headers=h)
    assert started.status_code == 200, started.text
    async with httpx.AsyncClient(transport=fortnox) as browser:
        redirect = await browser.get(started.json()["authorization_url"] + "&approve=1")
    fq = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}
    callback = await client.post(
        "/v1/fortnox/authorization/callback", json={"code": fq["code"], "state": fq["state"]}, headers=h
    )
    assert callback.status_code == 200, callback.text

    closing = await client.post(
        "/v1/closings",
        json={"financial_year_start": "2014-01-01", "financial_year_end": "2014-12-31", "data_source": "sie"},
        headers=h,
    )
    assert closing.status_code == 201, closing.text
    closing_id = closing.json()["id"]
    imported = await client.post(
        f"/v1/closings/{closing_id}/imports/sie", files={"file": ("a.se", SIE_BYTES)}, headers=h
    )
    assert imported.status_code == 202, imported.text
    await run_jobs()
    adjustment = await client.post(
        f"/v1/closings/{closing_id}/adjustments",
        json={
            "date": "2014-12-31",
            "description": "Company A secret adjustment",
            "rows": [{"account": "1510", "debit": "100.00"}, {"account": "2440", "credit": "100.00"}],
        },
        headers=h,
    )
    assert adjustment.status_code == 201, adjustment.text
    export = await client.post(
        f"/v1/closings/{closing_id}/exports",
        json={"target": "fortnox", "voucher_series": "A", "adjustment_ids": [adjustment.json()["id"]]},
        headers=h,
    )
    export_id = export.json()["id"] if export.status_code == 202 else str(uuid.uuid4())
    item = {"external_id": "a-secret-invoice", "kind": "customer_invoice", "number": "1", "counterparty_name": "X",
            "amount_open": "10.00", "invoice_date": "2026-01-01", "due_date": "2026-01-31"}  # fmt: skip
    assert (await client.post("/v1/open-items/batch", json={"items": [item]}, headers=h)).status_code == 200
    rule_body = {
        "name": "Fees",
        "conditions": {"text_contains": "avgift"},
        "lines": [{"account": "6570", "share": "1"}],
    }
    rule = await client.post("/v1/booking-rules", json=rule_body, headers=h)
    assert rule.status_code == 201, rule.text
    a.ids.update(
        connection_id=connection_id,
        bank_account_id=account_id,
        account_id=account_id,
        transaction_id=transactions[0]["id"],
        endpoint_id=hook.json()["id"],
        closing_id=closing_id,
        import_id=imported.json()["id"],
        adjustment_id=adjustment.json()["id"],
        export_id=export_id,
        company_id=str(a.company_id),
        external_id="a-secret-invoice",
        rule_id=rule.json()["id"],
    )
    a.names += ["Company A secret adjustment", "hooks.company-a.test", first["external_id"]]
    if first.get("iban"):
        a.names.append(first["iban"])


def call_for(name: str, a: Tenant) -> tuple[dict[str, Any], dict[str, Any]]:
    """Query and JSON body that pass validation for ``name``, pointing at A's resources."""
    ids = a.ids
    bodies: dict[str, dict[str, Any]] = {
        "put_company": {"name": "Taken Over AB", "plan": "free"},
        "create_bank_connection": {
            "bank_id": "sandbox",
            "account_type": "business",
            "redirect_uri": REDIRECT,
        },
        "complete_bank_authorization": {"code": "x", "state": "y"},
        "reauthorize_bank_connection": {"redirect_uri": REDIRECT},
        "create_bank_account": {
            "connection_id": ids["connection_id"],
            "external_id": "ftg-anna",
            "sync_from": (dt.date.today() - dt.timedelta(days=5)).isoformat(),
        },
        "update_bank_account": {"display_name": "Taken over"},
        "put_account_mapping": {"ledger_account": "1940"},
        "sync_now": {},
        "patch_transaction": {"status": "ignored"},
        "bulk_status": {"ids": [ids["transaction_id"]], "status": "ignored"},
        "create_webhook_endpoint": {
            "url": "http://hooks.company-b.test/x",
            "events": ["bank_account.synced"],
        },
        "start_authorization": {"redirect_uri": REDIRECT},
        "complete_authorization": {"code": "x", "state": "y"},
        "create_closing": {
            "financial_year_start": "2015-01-01",
            "financial_year_end": "2015-12-31",
            "data_source": "sie",
        },
        "update_closing": {"data_source": "fortnox"},
        "create_adjustment": {
            "date": "2014-12-31",
            "description": "x",
            "rows": [{"account": "1510", "debit": "1.00"}, {"account": "2440", "credit": "1.00"}],
        },
        "start_export": {"target": "fortnox", "voucher_series": "A"},
        "upsert_open_items": {"items": [{"external_id": "b-own", "kind": "customer_invoice", "number": "2",
            "counterparty_name": "Y", "amount_open": "1.00", "invoice_date": "2026-01-01",
            "due_date": "2026-01-31"}]},
        "create_booking_rule": {"name": "Bank fees", "conditions": {"text_contains": "avgift"},
            "lines": [{"account": "6570", "share": "1"}]},
        "update_booking_rule": {"priority": 1},
    }  # fmt: skip
    queries: dict[str, dict[str, Any]] = {
        "list_transactions": {"bank_account_id": ids["bank_account_id"]},
        "list_vouchers": {"account": "1510"},
    }
    return queries.get(name, {}), bodies.get(name, {})


def fill_path(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


async def send(client: httpx.AsyncClient, route: Any, a: Tenant, headers: dict[str, str]) -> httpx.Response:
    query, body = call_for(route.name, a)
    method = sorted(route.methods)[0]
    url = fill_path(route.path, a.ids)
    if route.name == "upload_sie":
        return await client.post(url, files={"file": ("b.se", SIE_BYTES)}, headers=headers)
    if route.name == "create_statement_import":
        statement = "Bokföringsdag;Belopp;Avsändare;Mottagare;Namn;Rubrik;Saldo;Valuta\n2026/01/05;-1,00;;;;Avgift;9,00;SEK\n"
        return await client.post(url, files={"file": ("s.csv", statement.encode())}, headers=headers)
    if route.name == "upload_bgmax":
        return await client.post(url, files={"file": ("b.txt", b"01BGMAX")}, headers=headers)
    kwargs: dict[str, Any] = {"params": query, "headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = body
    return await client.request(method, url, **kwargs)


def test_every_route_has_a_call(app: Any) -> None:
    """The route table is the source of the tests: a route this file does not know fails here."""
    routes = v1_routes(app)
    assert len(routes) >= 50
    for route in routes:
        params = set(re.findall(r"\{(\w+)\}", route.path))
        known = {
            "connection_id", "bank_account_id", "account_id", "transaction_id", "endpoint_id",
            "closing_id", "import_id", "adjustment_id", "export_id", "company_id", "external_id", "rule_id",
        }  # fmt: skip
        assert params <= known, route.path
        if not params:
            assert route.name in OWN_OR_CATALOGUE | COLLECTIONS | {"bulk_status", "create_bank_account"}, (
                f"{route.name}: decide whether it is a collection, the caller's own resource or names ids"
            )


async def test_another_companys_ids_are_404_and_its_data_never_shows(
    settings: Settings,
    sessionmaker: Any,
    client: httpx.AsyncClient,
    app: Any,
    bank: httpx.ASGITransport,
    fortnox: httpx.ASGITransport,
    run_jobs: Any,
) -> None:
    a = await tenant(sessionmaker, settings, "Company A Hemlig AB")
    b = await tenant(sessionmaker, settings, "Company B AB")
    await populate(client, a, bank, fortnox, run_jobs)
    foreign = [*a.ids.values(), *a.names]
    before = {
        path: (await client.get(path, headers=a.headers)).json()
        for path in ("/v1/bank-accounts", "/v1/transactions", "/v1/webhook-endpoints", "/v1/closings")
    }
    checked = 0
    problems: list[str] = []
    for route in v1_routes(app):
        if route.name in CROSS_COMPANY_BY_DESIGN:
            continue
        response = await send(client, route, a, b.headers)
        label = f"{sorted(route.methods)[0]} {route.path} -> {response.status_code}"
        assert response.status_code < 500, f"{label}: {response.text}"
        sent = str(response.request.url) + json.dumps(call_for(route.name, a))
        # an id the request itself carried may be echoed in a 404's detail: that is not A's data
        leaked = [
            x for x in foreign if x in response.text and not (response.status_code == 404 and x in sent)
        ]
        if leaked:
            problems.append(f"{label} leaks {leaked}")
        names_ids = bool(re.search(r"\{\w+\}", route.path)) or route.name in (
            "bulk_status",
            "create_bank_account",
        )
        if names_ids and response.status_code != 404:
            problems.append(f"{label}, expected 404: {response.text[:300]}")
        if route.name in COLLECTIONS and response.status_code != 200:
            problems.append(f"{label}, expected B's own list: {response.text[:300]}")
        checked += 1
    assert checked >= 49
    assert problems == [], "\n".join(problems)
    after = {
        path: (await client.get(path, headers=a.headers)).json()
        for path in ("/v1/bank-accounts", "/v1/transactions", "/v1/webhook-endpoints", "/v1/closings")
    }
    for path in before:
        assert [i["id"] for i in after[path]["items"]] == [i["id"] for i in before[path]["items"]], path
    fortnox_a = (await client.get("/v1/fortnox/connection", headers=a.headers)).json()
    assert fortnox_a["status"] == "active"
    company_a = (await client.get("/v1/company", headers=a.headers)).json()
    assert company_a["name"] == "Company A Hemlig AB"


def test_every_route_needs_the_scope_decided_for_it(app: Any) -> None:
    """The scope a route's dependencies require is the one decided for it above; a new route fails
    here until its scope is decided."""
    routes = v1_routes(app)
    undecided = sorted(r.name for r in routes if r.name not in EXPECTED_SCOPES)
    assert undecided == [], f"decide the scope of {undecided} in EXPECTED_SCOPES"
    wrong = {
        f"{sorted(r.methods)[0]} {r.path}": (required_scope(r), EXPECTED_SCOPES[r.name])
        for r in routes
        if required_scope(r) != EXPECTED_SCOPES[r.name]
    }
    assert wrong == {}, f"(required, expected): {wrong}"
    assert set(EXPECTED_SCOPES) == {r.name for r in routes}, "a route in EXPECTED_SCOPES no longer exists"


async def test_every_route_is_403_without_its_scope(
    settings: Settings, sessionmaker: Any, client: httpx.AsyncClient, app: Any
) -> None:
    me = await tenant(sessionmaker, settings, "Scoped AB")
    ids = {k: str(uuid.uuid4()) for k in (
        "connection_id", "bank_account_id", "account_id", "transaction_id", "endpoint_id",
        "closing_id", "import_id", "adjustment_id", "export_id", "rule_id", "external_id",
    )} | {"company_id": str(me.company_id)}  # fmt: skip
    me.ids = ids
    scoped = 0
    problems: list[str] = []
    for route in v1_routes(app):
        scope = EXPECTED_SCOPES.get(route.name, "undecided")
        label = f"{sorted(route.methods)[0]} {route.path}"
        if scope is None:
            # no scope needed: any valid token passes the auth layer, a missing token is 401
            no_token = await send(client, route, me, {})
            if no_token.status_code != 401:
                problems.append(f"{label} without a token -> {no_token.status_code}")
            continue
        scoped += 1
        others = " ".join(s for s in ALL_SCOPES if s != scope)
        for scopes in (others, ""):
            token = make_token(settings, me.company_id, scopes)
            response = await send(client, route, me, {"Authorization": f"Bearer {token}"})
            if response.status_code != 403 or response.json().get("code") != "insufficient_scope":
                problems.append(f"{label} (needs {scope}) with '{scopes}' -> {response.status_code}")
        allowed = make_token(settings, me.company_id, scope)
        passed = await send(client, route, me, {"Authorization": f"Bearer {allowed}"})
        if passed.status_code == 401 or (
            passed.status_code == 403 and passed.json().get("code") == "insufficient_scope"
        ):
            problems.append(f"{label} with only '{scope}' -> {passed.status_code}: {passed.text[:200]}")
    assert scoped >= 45
    assert problems == [], "\n".join(problems)
