"""The sandbox bank: an ASGI app speaking the Berlin Group NextGenPSD2 AIS API.

Used mounted at ``/sandbox/bank`` in dev, through ``httpx.ASGITransport`` in tests, and under uvicorn
(with ``latency_seconds``) in benchmarks. Data comes from :mod:`ledgerlink.sandbox.bank_data`
(deterministic per account and date; :func:`sandbox_transactions` is the ground truth).

Endpoints: ``POST /v1/consents``, ``GET|DELETE /v1/consents/{id}``, ``GET /v1/consents/{id}/status``,
``POST /v1/consents/{id}/authorisations``, ``GET /v1/consents/{id}/authorisations/{auth}``,
``GET /v1/accounts?withBalance``, ``GET /v1/accounts/{id}/balances``,
``GET /v1/accounts/{id}/transactions?dateFrom&dateTo&bookingStatus`` (50 rows a page, ``pageIndex``,
``_links.next``), and the SCA page ``GET|POST /sca/{consent_id}``.

Rules the bank enforces (like real ones):

* ``X-Request-ID`` on every ``/v1`` call (400 ``FORMAT_ERROR`` otherwise), ``Consent-ID`` on AIS calls.
* Consents: ``validUntil`` capped at 90 days from the bank's today; ``received`` until SCA, then
  ``valid``; ``expired`` once the clock passes ``validUntil`` (AIS → 401 ``CONSENT_EXPIRED``);
  ``terminatedByTpp`` after DELETE (AIS → 401 ``CONSENT_INVALID``).
* Calls without ``PSU-IP-Address`` are unattended: at most ``frequencyPerDay`` (≤ 4) per consent,
  account and endpoint and bank day (429 ``ACCESS_EXCEEDED``); page follow-ups do not count. An
  unattended request reaching further back than 89 days on a consent older than today answers
  400 ``PERIOD_INVALID``; any request further back than 730 days does too.
* Redirect SCA: ``_links.scaRedirect`` is an HTML page with Approve/Deny; ``GET ...?approve=1``
  (optionally ``&psu=<id>``) answers 302 straight away with ``Location`` = the ``TPP-Redirect-URI``
  plus ``code`` (and ``state`` when we were not given one inside the URI); ``?deny=1`` goes to the
  NOK URI with ``error=access_denied``.
* Decoupled SCA: ``POST .../authorisations`` with ``PSU-ID`` returns the autostart token in
  ``challengeData.data[0]``; the scaStatus is ``started`` for ``decoupled_polls - 1`` polls, then
  ``finalised`` (the consent becomes ``valid``).

Scripted scenarios, chosen by the PSU id (``PSU-ID`` header on the consent, or ``psu`` on the SCA
page; the part before the first ``-`` picks the scenario, so ``flaky-2`` is a second flaky PSU):
``expired``, ``ratelimited``, ``flaky``, ``slow``, ``malformed``, ``vanishing``, ``noids``, ``rejected``, ``dropped``,
each described in :data:`ledgerlink.sandbox.scenarios.BANK_SCENARIOS` (and listed on the SCA page);
anything else is a normal PSU with a business, a private and a savings account.

``fault_rate`` (0..1) makes any ``/v1`` call fail at random, deterministically from ``seed``, the call
and its ordinal: 503, 500, 504 (after ``fault_timeout_seconds``, which under uvicorn can exceed the
client's timeout) or 429 ``ACCESS_EXCEEDED``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import html
import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ledgerlink.banks.adapters.base import STOCKHOLM, BookingStatus
from ledgerlink.sandbox.bank_data import (
    CURRENCY,
    SandboxAccount,
    account_kind,
    accounts_for,
    balance_at,
    make_account,
    pending_total,
    psu_slug,
    sandbox_rows,
    sandbox_transactions,
)
from ledgerlink.sandbox.bank_state import (
    MAX_HISTORY_DAYS,
    MAX_VALIDITY_DAYS,
    PAGE_SIZE,
    SCENARIOS,
    UNATTENDED_HISTORY_DAYS,
    Authorisation,
    Consent,
    TppError,
    add_query,
    balance_json,
    break_rows,
    consent_from_json,
    consent_json,
    scenario_of,
    tpp_error,
)
from ledgerlink.sandbox.open_items import bgmax_file
from ledgerlink.sandbox.scenarios import bank_scenarios_html
from ledgerlink.sandbox.statements import download_statement, drop_rows

Handler = Callable[[Request], Awaitable[Response]]


class SandboxBank:
    """State and handlers of one sandbox bank instance (in memory; one per app)."""

    def __init__(
        self,
        *,
        latency_seconds: float,
        clock: Callable[[], dt.date] | None,
        fault_rate: float,
        seed: int,
        decoupled_polls: int,
        slow_seconds: float,
        fault_timeout_seconds: float,
    ) -> None:
        self.latency_seconds = latency_seconds
        self.clock = clock or (lambda: dt.datetime.now(STOCKHOLM).date())
        self.fault_rate = fault_rate
        self.seed = seed
        self.decoupled_polls = max(1, decoupled_polls)
        self.slow_seconds = slow_seconds
        self.fault_timeout_seconds = fault_timeout_seconds
        self.consents: dict[str, Consent] = {}
        self._next_id = 1
        self._call_counts: dict[str, int] = {}
        self.state_path: Path | None = None

    # -- plumbing ---------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the consents to ``state_path`` (the embedded ``make run`` keeps them across restarts,
        like a real bank does; tests and benchmarks keep everything in memory)."""
        if self.state_path is None:
            return
        state = {"next_id": self._next_id, "consents": [consent_json(c) for c in self.consents.values()]}
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        tmp.replace(self.state_path)

    def load(self, path: Path) -> None:
        """Use ``path`` as the state file, reading the consents a previous process saved there."""
        self.state_path = path
        if not path.exists():
            return
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            consents = [consent_from_json(c) for c in state["consents"]]
            next_id = int(state["next_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return  # an unreadable file: start afresh (connections then ask for a new login)
        self.consents = {c.id: c for c in consents}
        self._next_id = max(self._next_id, next_id)

    def new_id(self, prefix: str) -> str:
        n, self._next_id = self._next_id, self._next_id + 1
        digest = hashlib.sha256(f"{self.seed}|{prefix}|{n}".encode()).hexdigest()[:12]
        return f"{prefix}-{n:05d}-{digest}"

    def fault_for(self, request: Request) -> str | None:
        """A deterministic fault for this call (from seed, method, path+query and ordinal), or None."""
        if self.fault_rate <= 0:
            return None
        key = f"{request.method} {request.url.path}?{request.url.query}"
        ordinal = self._call_counts.get(key, 0)
        self._call_counts[key] = ordinal + 1
        digest = hashlib.sha256(f"{self.seed}|{key}|{ordinal}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        if rng.random() >= self.fault_rate:
            return None
        return rng.choice(("503", "500", "timeout", "429"))

    def wrap(self, handler: Handler, *, api: bool = True) -> Handler:
        async def endpoint(request: Request) -> Response:
            if self.latency_seconds > 0:
                await asyncio.sleep(self.latency_seconds)
            request_id = request.headers.get("X-Request-ID") or request.headers.get("Request-ID")
            if api:
                if not request_id:
                    return tpp_error(400, "FORMAT_ERROR", "X-Request-ID header is missing")
                fault = self.fault_for(request)
                if fault is not None:
                    return await self.fault_response(fault)
            try:
                response = await handler(request)
            except TppError as exc:
                response = exc.response
            if self.state_path is not None:
                self.save()
            if request_id:
                response.headers["X-Request-ID"] = request_id
            return response

        return endpoint

    async def fault_response(self, fault: str) -> Response:
        if fault == "503":
            return tpp_error(503, "SERVICE_UNAVAILABLE", "temporarily unavailable")
        if fault == "500":
            return tpp_error(500, "INTERNAL_SERVER_ERROR", "internal error")
        if fault == "429":
            return tpp_error(429, "ACCESS_EXCEEDED", "access exceeded", {"Retry-After": "120"})
        if self.fault_timeout_seconds > 0:
            await asyncio.sleep(self.fault_timeout_seconds)
        return tpp_error(504, "GATEWAY_TIMEOUT", "upstream timeout")

    def today(self) -> dt.date:
        return self.clock()

    def consent_for(self, consent_id: str) -> Consent:
        consent = self.consents.get(consent_id)
        if consent is None:
            raise TppError(403, "CONSENT_UNKNOWN", "unknown consent")
        if consent.status == "valid" and (
            consent.valid_until < self.today() or consent.scenario == "expired"
        ):
            consent.status = "expired"
        return consent

    # -- consents ---------------------------------------------------------------------------------

    async def create_consent(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "access" not in body:
            raise TppError(400, "FORMAT_ERROR", "consent body must be an object with access")
        today = self.today()
        try:
            requested = dt.date.fromisoformat(str(body.get("validUntil")))
            frequency = int(body.get("frequencyPerDay", 1))
        except (TypeError, ValueError) as exc:
            raise TppError(400, "FORMAT_ERROR", "validUntil or frequencyPerDay unreadable") from exc
        if requested < today or frequency < 1:
            raise TppError(400, "FORMAT_ERROR", "validUntil in the past or frequencyPerDay < 1")
        redirect_preferred = request.headers.get("TPP-Redirect-Preferred", "true").lower() != "false"
        redirect_uri = request.headers.get("TPP-Redirect-URI")
        if redirect_preferred and not redirect_uri:
            raise TppError(400, "FORMAT_ERROR", "TPP-Redirect-URI is required for redirect SCA")
        psu_id = request.headers.get("PSU-ID") or "demo"
        consent = Consent(
            id=self.new_id("consent"),
            psu_id=psu_id,
            created=today,
            valid_until=min(requested, today + dt.timedelta(days=MAX_VALIDITY_DAYS)),
            frequency_per_day=min(frequency, 4),
            sca_approach="REDIRECT" if redirect_preferred else "DECOUPLED",
            redirect_uri=redirect_uri,
            nok_redirect_uri=request.headers.get("TPP-Nok-Redirect-URI"),
        )
        self.consents[consent.id] = consent
        links: dict[str, Any] = {
            "self": {"href": self.path(request, f"/v1/consents/{consent.id}")},
            "status": {"href": self.path(request, f"/v1/consents/{consent.id}/status")},
        }
        if redirect_preferred:
            links["scaRedirect"] = {"href": str(request.url_for("sca_page", consent_id=consent.id))}
        else:
            links["startAuthorisationWithPsuIdentification"] = {
                "href": self.path(request, f"/v1/consents/{consent.id}/authorisations")
            }
        return JSONResponse(
            {"consentStatus": consent.status, "consentId": consent.id, "_links": links},
            status_code=201,
            headers={"ASPSP-SCA-Approach": consent.sca_approach, "Location": links["self"]["href"]},
        )

    async def get_consent(self, request: Request) -> Response:
        consent = self.consent_for(request.path_params["consent_id"])
        return JSONResponse(
            {
                "access": {"accounts": [], "balances": [], "transactions": []},
                "recurringIndicator": True,
                "validUntil": consent.valid_until.isoformat(),
                "frequencyPerDay": consent.frequency_per_day,
                "lastActionDate": self.today().isoformat(),
                "consentStatus": consent.status,
                "_links": {"self": {"href": self.path(request, f"/v1/consents/{consent.id}")}},
            }
        )

    async def get_consent_status(self, request: Request) -> Response:
        consent = self.consent_for(request.path_params["consent_id"])
        return JSONResponse({"consentStatus": consent.status})

    async def delete_consent(self, request: Request) -> Response:
        consent = self.consent_for(request.path_params["consent_id"])
        consent.status = "terminatedByTpp"
        return Response(status_code=204)

    # -- decoupled SCA ----------------------------------------------------------------------------

    async def start_authorisation(self, request: Request) -> Response:
        consent = self.consent_for(request.path_params["consent_id"])
        if consent.status != "received":
            raise TppError(409, "STATUS_INVALID", f"consent is {consent.status}")
        psu_id = request.headers.get("PSU-ID")
        if consent.sca_approach == "DECOUPLED" and not psu_id:
            raise TppError(400, "FORMAT_ERROR", "PSU-ID is required for decoupled SCA")
        if psu_id:
            consent.psu_id = psu_id
        auth = Authorisation(id=self.new_id("auth"), psu_id=psu_id, status="started")
        consent.authorisations[auth.id] = auth
        status_href = self.path(request, f"/v1/consents/{consent.id}/authorisations/{auth.id}")
        body: dict[str, Any] = {"authorisationId": auth.id, "scaStatus": auth.status, "_links": {}}
        if consent.sca_approach == "DECOUPLED":
            token = hashlib.sha256(f"{self.seed}|{auth.id}".encode()).hexdigest()
            autostart = f"{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:20]}-{token[20:32]}"
            body["challengeData"] = {"data": [autostart]}
            body["psuMessage"] = "Öppna BankID-appen och godkänn inloggningen"
        else:
            body["_links"]["scaRedirect"] = {"href": str(request.url_for("sca_page", consent_id=consent.id))}
        body["_links"]["scaStatus"] = {"href": status_href}
        return JSONResponse(body, status_code=201)

    async def get_authorisation(self, request: Request) -> Response:
        consent = self.consent_for(request.path_params["consent_id"])
        auth = consent.authorisations.get(request.path_params["authorisation_id"])
        if auth is None:
            raise TppError(403, "RESOURCE_UNKNOWN", "unknown authorisation")
        if auth.status not in ("finalised", "failed"):
            auth.polls += 1
            if auth.polls >= self.decoupled_polls:
                if consent.scenario == "rejected":
                    auth.status, consent.status = "failed", "rejected"
                else:
                    auth.status, consent.status = "finalised", "valid"
        return JSONResponse({"scaStatus": auth.status})

    # -- redirect SCA -----------------------------------------------------------------------------

    async def sca_page(self, request: Request) -> Response:
        consent = self.consent_for(request.path_params["consent_id"])
        params: dict[str, str] = dict(request.query_params)
        if request.method == "POST":
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        if params.get("psu"):
            consent.psu_id = params["psu"]
        if params.get("approve") or params.get("deny"):
            return self.finish_redirect(consent, approved=bool(params.get("approve")))
        if consent.status != "received":
            return HTMLResponse(f"<p>Consent is {html.escape(consent.status)}.</p>", status_code=409)
        action = html.escape(str(request.url_for("sca_page", consent_id=consent.id)))
        page = f"""<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>Sandbox Bank</title></head>
<body><h1>Sandbox Bank</h1><p>Godkänn att tjänsten får läsa dina konton och transaktioner
till och med {consent.valid_until.isoformat()}.</p>
<form method="post" action="{action}">
<label>Personnummer / scenario <input name="psu" value="{html.escape(consent.psu_id)}"></label>
<button name="approve" value="1">Godkänn</button> <button name="deny" value="1">Avbryt</button>
</form>{bank_scenarios_html()}</body></html>"""
        return HTMLResponse(page)

    def finish_redirect(self, consent: Consent, *, approved: bool) -> Response:
        if consent.status != "received":
            return HTMLResponse(f"<p>Consent is {html.escape(consent.status)}.</p>", status_code=409)
        if approved and consent.scenario != "rejected":
            consent.status = "valid"
            consent.code = self.new_id("code")
            target = add_query(consent.redirect_uri or "", {"code": consent.code})
        else:
            consent.status = "rejected"
            target = add_query(
                consent.nok_redirect_uri or consent.redirect_uri or "", {"error": "access_denied"}
            )
        return RedirectResponse(target, status_code=302)

    # -- AIS --------------------------------------------------------------------------------------

    async def ais_consent(self, request: Request, endpoint: str, account_id: str | None) -> Consent:
        consent_id = request.headers.get("Consent-ID")
        if not consent_id:
            raise TppError(400, "FORMAT_ERROR", "Consent-ID header is missing")
        consent = self.consent_for(consent_id)
        if consent.status == "expired":
            raise TppError(401, "CONSENT_EXPIRED", "the consent has expired")
        if consent.status != "valid":
            raise TppError(401, "CONSENT_INVALID", f"the consent is {consent.status}")
        scenario = consent.scenario
        consent.ais_calls += 1
        if scenario == "slow" and self.slow_seconds > 0:
            await asyncio.sleep(self.slow_seconds)
        if scenario == "flaky" and consent.ais_calls % 2 == 0:
            raise TppError(503, "SERVICE_UNAVAILABLE", "backend flapping")
        if scenario == "ratelimited" and endpoint != "accounts":
            raise TppError(429, "ACCESS_EXCEEDED", "4 accesses per day exceeded", {"Retry-After": "3600"})
        if scenario == "outage" and endpoint != "accounts":
            raise TppError(503, "SERVICE_UNAVAILABLE", "the bank is down for maintenance")
        unattended = not request.headers.get("PSU-IP-Address")
        first_page = request.query_params.get("pageIndex", "0") in ("", "0")
        if unattended and first_page:
            key = (endpoint, account_id or "", self.today())
            used = consent.usage.get(key, 0)
            if used >= consent.frequency_per_day:
                raise TppError(429, "ACCESS_EXCEEDED", "frequencyPerDay exceeded", {"Retry-After": "3600"})
            consent.usage[key] = used + 1
        return consent

    def visible_accounts(self, consent: Consent) -> list[SandboxAccount]:
        vanishing = consent.scenario == "vanishing" and consent.listings <= 1
        return accounts_for(consent.psu_id, include_vanishing=vanishing)

    def account_of(self, consent: Consent, account_id: str) -> SandboxAccount:
        owned = {a.resource_id for a in accounts_for(consent.psu_id)}
        if account_id not in owned:
            raise TppError(404, "RESOURCE_UNKNOWN", "unknown account")
        return make_account(account_id)

    def balances_json(self, account: SandboxAccount) -> list[dict[str, Any]]:
        today = self.today()
        yesterday = today - dt.timedelta(days=1)
        interim = balance_at(account.resource_id, today)
        available = interim + pending_total(account.resource_id, today)
        return [
            balance_json("closingBooked", balance_at(account.resource_id, yesterday), yesterday),
            balance_json("interimBooked", interim, today),
            balance_json("interimAvailable", available, today),
        ]

    def account_json(self, account: SandboxAccount, *, with_balance: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "resourceId": account.resource_id,
            "iban": account.iban,
            "bban": account.bban,
            "currency": account.currency,
            "name": account.name,
            "product": account.name,
            "cashAccountType": "CACC" if account.kind != "spar" else "SVGS",
            "status": "enabled",
            "bic": "SANDSESS",
            "usage": account.usage,
            "_links": {
                "balances": {"href": f"/v1/accounts/{account.resource_id}/balances"},
                "transactions": {"href": f"/v1/accounts/{account.resource_id}/transactions"},
            },
        }
        if with_balance:
            body["balances"] = self.balances_json(account)
        return body

    async def list_accounts(self, request: Request) -> Response:
        consent = await self.ais_consent(request, "accounts", None)
        consent.listings += 1
        with_balance = request.query_params.get("withBalance", "false").lower() == "true"
        accounts = self.visible_accounts(consent)
        return JSONResponse({"accounts": [self.account_json(a, with_balance=with_balance) for a in accounts]})

    def check_vanished(self, consent: Consent, account_id: str) -> None:
        if account_kind(account_id) == "gone" and account_id == f"gone-{psu_slug(consent.psu_id)}":
            raise TppError(404, "RESOURCE_UNKNOWN", "the account no longer exists")

    async def balances(self, request: Request) -> Response:
        account_id = request.path_params["account_id"]
        consent = await self.ais_consent(request, "balances", account_id)
        self.check_vanished(consent, account_id)
        account = self.account_of(consent, account_id)
        return JSONResponse(
            {
                "account": {"iban": account.iban, "currency": account.currency},
                "balances": self.balances_json(account),
            }
        )

    async def transactions(self, request: Request) -> Response:
        account_id = request.path_params["account_id"]
        consent = await self.ais_consent(request, "transactions", account_id)
        self.check_vanished(consent, account_id)
        account = self.account_of(consent, account_id)
        query = request.query_params
        today = self.today()
        try:
            date_from = dt.date.fromisoformat(query["dateFrom"])
            date_to = dt.date.fromisoformat(query["dateTo"]) if query.get("dateTo") else today
            page = int(query.get("pageIndex") or 0)
        except (KeyError, ValueError) as exc:
            raise TppError(400, "FORMAT_ERROR", "dateFrom, dateTo or pageIndex unreadable") from exc
        booking_status = query.get("bookingStatus", "")
        if booking_status not in ("booked", "pending", "both"):
            raise TppError(400, "PARAMETER_NOT_SUPPORTED", "bookingStatus must be booked, pending or both")
        if date_from > date_to or page < 0:
            raise TppError(400, "FORMAT_ERROR", "dateFrom after dateTo")
        unattended = not request.headers.get("PSU-IP-Address")
        oldest = today - dt.timedelta(days=MAX_HISTORY_DAYS)
        if unattended and consent.created < today:
            oldest = today - dt.timedelta(days=UNATTENDED_HISTORY_DAYS)
        if date_from < oldest:
            raise TppError(400, "PERIOD_INVALID", f"dateFrom before {oldest.isoformat()} is not allowed")

        rows = [
            r
            for r in sandbox_rows(account.resource_id, date_from, date_to, today)
            if booking_status == "both" or r.status.value == booking_status
        ]
        chunk = rows[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
        with_ids = consent.scenario != "noids"
        report: dict[str, Any] = {
            "booked": [r.to_json(with_ids=with_ids) for r in chunk if r.status is BookingStatus.booked],
            "pending": [r.to_json(with_ids=with_ids) for r in chunk if r.status is BookingStatus.pending],
        }
        if consent.scenario == "malformed" and page == 0:
            break_rows(report)
        if consent.scenario == "dropped":
            drop_rows(account.resource_id, report, date_from, date_to, today)
        last_page = max(0, (len(rows) - 1) // PAGE_SIZE)
        links: dict[str, Any] = {
            "account": {"href": self.path(request, f"/v1/accounts/{account.resource_id}")},
            "first": {"href": self.page_href(request, 0)},
            "last": {"href": self.page_href(request, last_page)},
        }
        if page > 0:
            links["previous"] = {"href": self.page_href(request, page - 1)}
        if page < last_page:
            links["next"] = {"href": self.page_href(request, page + 1)}
        report["_links"] = links
        return JSONResponse({"account": {"iban": account.iban, "currency": CURRENCY}, "transactions": report})

    # -- links ------------------------------------------------------------------------------------

    @staticmethod
    def path(request: Request, path: str) -> str:
        """A link as real banks send it: an absolute path under the mount point."""
        root_path: str = request.scope.get("root_path", "")
        return root_path.rstrip("/") + path

    def page_href(self, request: Request, page: int) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "pageIndex"]
        params.append(("pageIndex", str(page)))
        root_path: str = request.scope.get("root_path", "")
        return self.path(request, request.url.path.removeprefix(root_path)) + "?" + urlencode(params)


def create_sandbox_bank_app(
    *,
    latency_seconds: float = 0.0,
    clock: Callable[[], dt.date] | None = None,
    fault_rate: float = 0.0,
    seed: int = 0,
    decoupled_polls: int = 2,
    slow_seconds: float = 3.0,
    fault_timeout_seconds: float = 0.0,
    state_path: Path | None = None,
) -> ASGIApp:
    """Build a sandbox bank. ``clock`` is the bank's "today" (Europe/Stockholm by default).

    ``state_path``: a JSON file that keeps the consents across restarts (the embedded ``make run``).

    ``latency_seconds`` is added to every call; ``fault_rate`` injects deterministic random faults
    (see the module docstring); ``decoupled_polls`` is how many status polls a decoupled SCA takes.
    """
    bank = SandboxBank(
        latency_seconds=latency_seconds,
        clock=clock,
        fault_rate=fault_rate,
        seed=seed,
        decoupled_polls=decoupled_polls,
        slow_seconds=slow_seconds,
        fault_timeout_seconds=fault_timeout_seconds,
    )
    if state_path is not None:
        bank.load(state_path)
    w = bank.wrap
    routes = [
        Route("/v1/consents", w(bank.create_consent), methods=["POST"]),
        Route("/v1/consents/{consent_id}", w(bank.get_consent), methods=["GET"]),
        Route("/v1/consents/{consent_id}", w(bank.delete_consent), methods=["DELETE"]),
        Route("/v1/consents/{consent_id}/status", w(bank.get_consent_status), methods=["GET"]),
        Route("/v1/consents/{consent_id}/authorisations", w(bank.start_authorisation), methods=["POST"]),
        Route(
            "/v1/consents/{consent_id}/authorisations/{authorisation_id}",
            w(bank.get_authorisation),
            methods=["GET"],
        ),
        Route("/v1/accounts", w(bank.list_accounts), methods=["GET"]),
        Route("/v1/accounts/{account_id}/balances", w(bank.balances), methods=["GET"]),
        Route("/v1/accounts/{account_id}/transactions", w(bank.transactions), methods=["GET"]),
        Route("/sca/{consent_id}", w(bank.sca_page, api=False), methods=["GET", "POST"], name="sca_page"),
        Route("/statements/{account_id}", download_statement, methods=["GET"]),
        Route("/bgmax", bgmax_file, methods=["GET"]),  # the deposits of the business account as BgMax
    ]
    app = Starlette(routes=routes)
    app.state.bank = bank
    return app


__all__ = ["SCENARIOS", "SandboxBank", "create_sandbox_bank_app", "sandbox_transactions", "scenario_of"]
