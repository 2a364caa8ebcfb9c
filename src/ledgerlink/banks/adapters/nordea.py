"""Nordea: Nordea's own Open Banking API (not Berlin Group), private and business.

Facts (docs/banks.md, "Nordea"): personal AIS under ``/personal`` (``v5``), business AIS under
``/business`` (``v4``), OAuth2 redirect (``/v5/authorize`` answers 302 to the bank's page) or
decoupled Mobile BankID (``/v5/decoupled/authentications`` → poll → ``/v5/decoupled/authorizations``
→ ``/v5/decoupled/token``). Payloads are snake_case and wrapped in ``{"group_header", "response"}``;
transactions page with a ``_links`` array (``rel == "next"``) or a ``continuation_key``;
``status == "reserved"`` is a pending row. ``X-Nordea-Originating-User-Ip`` is Nordea's
"user present" marker and is sent only then.

Nordea has no consent resource: the access lasts the ``duration`` we ask for (minutes) and ends when
the token can no longer be refreshed. ``get_consent`` therefore probes the token against the bank
and reports the validity the bank granted at token time (``extra["access_valid_until"]``).

Every request is signed (:data:`~ledgerlink.banks.adapters.signing.NORDEA`): draft-cavage-10,
``rsa-sha256``, ``keyId`` = our client id, over ``(request-target) x-nordea-originating-host
x-nordea-originating-date`` (GET, DELETE) plus ``content-type digest`` (POST, PUT, PATCH).

Confirmed from Nordea's documentation (documentation.nordeaopenbanking.com; support.nordeaopenbanking.com
"How can I get started signing with eIDAS?", "Signature creation FAQ", "Access Authorization API FAQ",
"Business Accounts FAQ"): the host ``api.nordeaopenbanking.com``; personal AIS v5, business AIS v4,
redirect and decoupled access authorisation v5 for both (v4 decommissioned April 2023); ``POST
/authorize`` answers 302 to Nordea's page and the code is exchanged at ``/authorize/token``; the
signature rules above, ``keyId`` being the client id; **no mutual TLS**: "We currently do not support
mTLS by QWAC or other means for PSD2 APIs" (the catalogue does not require a QWAC; the QSealC is
uploaded to the app in Nordea's portal). Unconfirmed: the 180-day ``duration`` we ask for (Tink asked
for 90 days); the decoupled flow's exact poll answers after the BankID v2 change (5.22).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from ledgerlink.banks.adapters import base
from ledgerlink.banks.adapters.base import ConnectionContext, Credentials, ScaMethod
from ledgerlink.banks.adapters.http import (
    HttpAdapter,
    Page,
    PageRequest,
    Query,
    new_request_id,
    split_link,
    today_stockholm,
    token_expires_at,
    utcnow,
)
from ledgerlink.banks.adapters.signing import NORDEA

#: Access duration requested at authorisation, in minutes (180 days; the bank may grant less).
ACCESS_DURATION_MINUTES = 180 * 24 * 60
MAX_TX_HISTORY_MONTHS = 12
SCOPES = ["ACCOUNTS_BASIC", "ACCOUNTS_BALANCES", "ACCOUNTS_DETAILS", "ACCOUNTS_TRANSACTIONS"]

_REAUTH_CODES = {"error.token", "error.token.invalid", "error.token.expired", "error.resource.denied"}


class NordeaAdapter(HttpAdapter):
    """Nordea Open Banking (own API). Business connections use the ``/business`` API."""

    auth_version = "/v5"
    #: Every request is signed (draft-cavage-10, keyId = our client id) when a QSealC is configured.
    signature_profile = NORDEA
    personal_ais = "/personal/v5"
    next_page_field = "_links.next"
    business_ais = "/business/v4"

    # -- plumbing ---------------------------------------------------------------------------------

    def _prefix(self, ctx: ConnectionContext) -> str:
        return "/business" if ctx.account_type == "business" else "/personal"

    def _ais(self, ctx: ConnectionContext) -> str:
        return self.business_ais if ctx.account_type == "business" else self.personal_ais

    def _headers(self, ctx: ConnectionContext, credentials: Credentials | None = None) -> dict[str, str]:
        headers = {
            "X-Request-ID": new_request_id(),
            "X-Nordea-Originating-Host": urlsplit(self.base_url).hostname or "",
            "X-Nordea-Originating-Date": email.utils.format_datetime(utcnow(), usegmt=True),
            "Accept": "application/json",
        }
        if self.endpoint.client_id:
            headers["X-IBM-Client-Id"] = self.endpoint.client_id
        if self.endpoint.client_secret is not None:
            headers["X-IBM-Client-Secret"] = self.endpoint.client_secret.get_secret_value()
        if ctx.user_present and ctx.psu_ip_address:
            headers["X-Nordea-Originating-User-Ip"] = ctx.psu_ip_address
        if credentials is not None:
            if not credentials.access_token:
                raise base.ReauthRequired(self.bank_id, "no access token for this connection")
            headers["Authorization"] = f"Bearer {credentials.access_token}"
        return headers

    def _payload(self, body: Any, field: str = "response") -> dict[str, Any]:
        """Unwrap Nordea's ``{"group_header", "response"}`` envelope (bare objects are accepted)."""
        if not isinstance(body, dict):
            self.fail("expected a JSON object", field)
        inner = body.get("response", body)
        if not isinstance(inner, dict):
            self.fail("expected a JSON object", field)
        return inner

    async def get_resource(
        self, ctx: ConnectionContext, credentials: Credentials, url: str, params: Query | None = None
    ) -> dict[str, Any]:
        """An AIS read with the user's token; a refused token past the granted access period is
        ConsentExpired. Answers the unwrapped ``response``."""
        with self._access_period(credentials):
            body = await self.get_json(url, headers=self._headers(ctx, credentials), params=params)
        return self._payload(body)

    @contextlib.contextmanager
    def _access_period(self, credentials: Credentials) -> Iterator[None]:
        """A token refused after the access period Nordea granted has ended is ConsentExpired."""
        try:
            yield
        except base.ConsentExpired:
            raise
        except base.ReauthRequired as exc:
            if _access_ended(credentials):
                raise base.ConsentExpired(self.bank_id, "access period granted by Nordea has ended") from exc
            raise

    def _auth_url(self, ctx: ConnectionContext, path: str) -> str:
        return f"{self._prefix(ctx)}{self.auth_version}{path}"

    async def _auth_post(self, ctx: ConnectionContext, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.request(
            "POST", self._auth_url(ctx, path), headers=self._headers(ctx), json_body=body
        )

    def map_error_response(self, response: httpx.Response) -> None:
        codes, texts = _failures(response)
        path = response.request.url.path
        if response.status_code == 503 and any("maintenance" in t for t in [*texts, *codes]):
            raise base.BankUnavailable(self.bank_id, f"Nordea is down for maintenance ({path})")
        if response.status_code in (401, 403) and codes & _REAUTH_CODES:
            raise base.ReauthRequired(self.bank_id, f"{sorted(codes & _REAUTH_CODES)[0]} on {path}")

    # -- authorisation ----------------------------------------------------------------------------

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> base.AuthorizationStart:
        if sca_method == "decoupled":
            return await self._start_decoupled(ctx)
        body = {
            "country": "SE",
            "scope": SCOPES,
            "state": state,
            "duration": ACCESS_DURATION_MINUTES,
            "redirect_uri": redirect_uri,
            "max_tx_history": MAX_TX_HISTORY_MONTHS,
            "account_list": ["ALL"],
            "skip_account_selection": True,
            "authentication_method": "BANKID_SE",
        }
        response = await self._auth_post(ctx, "/authorize", body)
        location = response.headers.get("Location")
        if location is None and response.status_code < 300:
            payload = self._payload(self.decode_json(response))
            location = _link(payload.get("_links"), "authorize") or payload.get("redirect_uri")
        if not location:
            self.fail("authorize answered without a redirect location", "Location")
        return base.AuthorizationStart(method="redirect", url=str(location), credentials=Credentials())

    async def _start_decoupled(self, ctx: ConnectionContext) -> base.AuthorizationStart:
        if not ctx.psu_id:
            raise base.BankUnavailable(
                self.bank_id, "decoupled BankID needs the user's personal identity number"
            )
        body = {
            "authentication_method": "BANKID_SE",
            "country": "SE",
            "psu_id": ctx.psu_id,
            "response_type": "code",
        }
        answer = await self._auth_post(ctx, "/decoupled/authentications", body)
        payload = self._payload(self.decode_json(answer))
        session_id = str(self.require(payload, "session_id"))
        return base.AuthorizationStart(
            method="decoupled",
            credentials=Credentials(extra={"session_id": session_id}),
            autostart_token=payload.get("auto_start_token"),
            poll_interval_seconds=int(payload.get("verify_after") or 2),
        )

    async def get_authorization_status(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> base.AuthorizationStatus:
        session_id = credentials.extra.get("session_id")
        if not session_id:
            self.fail("no decoupled session to poll", "session_id")
        url = self._auth_url(ctx, f"/decoupled/authentications/{session_id}")
        payload = self._payload(await self.get_json(url, headers=self._headers(ctx)))
        status = str(self.require(payload, "status")).lower()
        if status in ("assignment_pending", "confirmation_pending"):
            return base.AuthorizationStatus(status="pending", credentials=credentials)
        if status != "completed":
            return base.AuthorizationStatus(status="failed", credentials=credentials, message=status)
        # The authentication code becomes an access grant, then a token.
        auth = await self._auth_post(
            ctx,
            "/decoupled/authorizations",
            {
                "code": self.require(payload, "code"),
                "scope": SCOPES,
                "duration": ACCESS_DURATION_MINUTES,
                "max_tx_history": MAX_TX_HISTORY_MONTHS,
                "account_list": ["ALL"],
                "response_type": "nordea_token",
            },
        )
        grant = self._payload(self.decode_json(auth))
        form = {"grant_type": "authorization_code", "code": str(self.require(grant, "code"))}
        token = await self._token(ctx, "/decoupled/token", form)
        return base.AuthorizationStatus(status="finalised", credentials=token)

    async def complete_authorization(
        self, ctx: ConnectionContext, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        if (code := self.code_to_exchange(credentials, code)) is None:
            return credentials
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return await self._token(ctx, "/authorize/token", form)

    async def refresh_credentials(self, ctx: ConnectionContext, credentials: Credentials) -> Credentials:
        """Rotate the access token with the refresh token (not part of the Protocol yet)."""
        form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token_of(credentials)}
        with self._access_period(credentials):
            return await self._token(ctx, "/authorize/token", form, previous=credentials)

    async def _token(
        self, ctx: ConnectionContext, path: str, form: dict[str, str], previous: Credentials | None = None
    ) -> Credentials:
        response = await self.request(
            "POST", self._auth_url(ctx, path), headers=self._headers(ctx), data=form
        )
        payload = self._payload(self.decode_json(response))
        access = str(self.require(payload, "access_token"))
        expires_at = token_expires_at(self.bank_id, payload)
        extra = dict(previous.extra) if previous else {}
        extra.pop("session_id", None)
        if "access_valid_until" not in extra:
            # Nordea grants the requested duration (minutes) from the moment of SCA; a refresh keeps it.
            valid_until = today_stockholm() + dt.timedelta(minutes=ACCESS_DURATION_MINUTES)
            extra["access_valid_until"] = valid_until.isoformat()
        return Credentials(
            access_token=access,
            refresh_token=payload.get("refresh_token") or (previous.refresh_token if previous else None),
            token_expires_at=expires_at,
            extra=extra,
        )

    async def get_consent(self, ctx: ConnectionContext, credentials: Credentials) -> base.ConsentInfo:
        return await self.probe_consent(
            _valid_until(credentials),
            lambda: self.get_resource(ctx, credentials, f"{self._ais(ctx)}/accounts"),
        )

    async def revoke(self, ctx: ConnectionContext, credentials: Credentials) -> None:
        """Nordea documents no revocation call in our sources: the access lapses at its end date.

        The caller deletes the stored tokens, which is what ends our access in practice.
        """

    # -- data -------------------------------------------------------------------------------------

    async def list_accounts(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> list[base.BankAccountInfo]:
        payload = await self.get_resource(ctx, credentials, f"{self._ais(ctx)}/accounts")
        accounts = payload.get("accounts")
        if not isinstance(accounts, list):
            self.fail("accounts is not a list", "response.accounts")
        return [self._account(raw, ctx, i) for i, raw in enumerate(accounts)]

    def _account(self, raw: Any, ctx: ConnectionContext, index: int) -> base.BankAccountInfo:
        where = f"accounts[{index}]"
        if not isinstance(raw, dict):
            self.fail("account is not an object", where)
        numbers = {
            str(n.get("_type", "")).upper(): str(n.get("value"))
            for n in raw.get("account_numbers") or []
            if isinstance(n, dict) and n.get("value")
        }
        currency = str(self.require(raw, "currency", f"{where}.currency"))
        balance = None
        if raw.get("booked_balance") is not None:
            balance = base.Balance(
                amount=self.parse_amount(raw["booked_balance"], f"{where}.booked_balance"),
                currency=currency,
                as_of=today_stockholm(),
            )
        return base.BankAccountInfo(
            external_id=str(self.require(raw, "_id", f"{where}._id")),
            currency=currency,
            iban=numbers.get("IBAN"),
            bban=numbers.get("BBAN_SE") or numbers.get("PGNR"),
            name=raw.get("account_name") or raw.get("product"),
            usage=ctx.account_type,  # Nordea separates business and private by API, not by field
            balance=balance,
        )

    def transactions_request(
        self, ctx: ConnectionContext, account_id: str, date_from: dt.date, date_to: dt.date
    ) -> PageRequest:
        url = f"{self._ais(ctx)}/accounts/{account_id}/transactions"
        return url, {"from_date": date_from.isoformat(), "to_date": date_to.isoformat()}

    def read_page(
        self, ctx: ConnectionContext, body: Any, page: Page
    ) -> tuple[list[base.BankTransaction], PageRequest | None]:
        """A page of rows; the next one is a ``_links`` entry or a ``continuation_key``."""
        rows = body.get("transactions")
        if rows is None:
            rows = []
        if not isinstance(rows, list):
            self.fail("transactions is not a list", "response.transactions")
        out = [self._transaction(raw, page.rows_before + i) for i, raw in enumerate(rows)]
        key = body.get("continuation_key")
        nxt = _link(body.get("_links"), "next")
        if nxt:
            return out, split_link(self._next_url(ctx, nxt))
        if key:
            url, params = page.request
            return out, (url, {**(params or {}), "continuation_key": key})
        return out, None

    def _next_url(self, ctx: ConnectionContext, href: str) -> str:
        """Nordea's next link is relative to the API root of the current segment (``/personal``)."""
        if href.startswith(("http://", "https://")):
            return href
        prefix = self._prefix(ctx)
        return href if href.startswith(prefix + "/") else f"{prefix}{href}"

    def _transaction(self, raw: Any, index: int) -> base.BankTransaction:
        where = f"transactions[{index}]"
        if not isinstance(raw, dict):
            self.fail("transaction is not an object", where)
        status = base.BookingStatus.pending if raw.get("status") == "reserved" else base.BookingStatus.booked
        # booking_date may be absent (reservations): fall back to the transaction date.
        booking_date = self.parse_date(raw.get("booking_date"), f"{where}.booking_date", required=False)
        if booking_date is None:
            booking_date = self.parse_date(
                raw.get("transaction_date"),
                f"{where}.transaction_date",
                required=status is base.BookingStatus.booked,
            )
        description = _first(raw, "narrative", "message", "type_description", "own_message")
        return base.BankTransaction(
            booking_status=status,
            amount=self.parse_amount(raw.get("amount"), f"{where}.amount"),
            currency=str(self.require(raw, "currency", f"{where}.currency")),
            booking_date=booking_date,
            value_date=self.parse_date(raw.get("value_date"), f"{where}.value_date", required=False),
            provider_id=_first(raw, "transaction_id"),
            counterparty=_first(raw, "counterparty_name"),
            description=description,
            reference=_first(raw, "reference"),
            raw=raw,
        )

    async def fetch_balance(
        self, ctx: ConnectionContext, credentials: Credentials, account_id: str
    ) -> base.Balance:
        payload = await self.get_resource(ctx, credentials, f"{self._ais(ctx)}/accounts/{account_id}")
        currency = str(self.require(payload, "currency", "response.currency"))
        value = payload.get("booked_balance")
        if value is None:
            value = payload.get("available_balance")
        return base.Balance(
            amount=self.parse_amount(value, "response.booked_balance"),
            currency=currency,
            as_of=today_stockholm(),
        )


def _failures(response: httpx.Response) -> tuple[set[str], list[str]]:
    """Failure codes (``error.failures[].code``) and lower-cased texts of a Nordea error body."""
    try:
        body = response.json()
    except ValueError:
        return set(), [response.text.lower()[:500]]
    error = body.get("error") if isinstance(body, dict) else None
    failures = error.get("failures") if isinstance(error, dict) else None
    codes: set[str] = set()
    texts: list[str] = []
    for failure in failures if isinstance(failures, list) else []:
        if isinstance(failure, dict):
            if failure.get("code"):
                codes.add(str(failure["code"]).lower())
            if failure.get("description"):
                texts.append(str(failure["description"]).lower())
    return codes, texts


def _link(links: Any, rel: str) -> str | None:
    if isinstance(links, list):
        for link in links:
            if isinstance(link, dict) and str(link.get("rel", "")).lower() == rel and link.get("href"):
                return str(link["href"])
    return None


def _first(raw: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _valid_until(credentials: Credentials) -> dt.date | None:
    value = credentials.extra.get("access_valid_until")
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _access_ended(credentials: Credentials) -> bool:
    valid_until = _valid_until(credentials)
    return valid_until is not None and valid_until < today_stockholm()
