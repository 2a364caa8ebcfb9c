"""Banks reached through an Enable Banking-shaped aggregator: Ekobanken, JAK Medlemsbank, Lån & Spar
Bank and Brabank (docs/banks.md, "Through the aggregator": none has a documented API of its own).

Flow: ``GET /aspsps?country=SE`` finds the bank → ``POST /auth`` returns the URL the user is sent to
(the aggregator runs BankID redirect or decoupled on its own page) → ``POST /sessions`` with the
returned ``code`` opens a session listing account uids → ``/accounts/{uid}/details|balances|
transactions`` (paged by ``continuation_key``). Our application authenticates every call with a
short-lived JWT signed by the application key (``client_secret`` = PEM private key, ``app_id`` = kid).

Confirmed from Enable Banking's documentation (enablebanking.com/docs/api, markets/se): the flow above
(``GET /aspsps``, ``POST /auth``, ``POST /sessions``, the JWT signed by the application key), Swedish
BankID by redirect or decoupled on the aggregator's page. Unconfirmed: the aggregator's ASPSP names
for these four banks (checked against its live list at login); whether its production needs a QWAC
of ours; whether these banks have a PSD2 interface at all (no documentation found).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import urllib.parse
from decimal import Decimal
from typing import Any

import httpx

from ledgerlink.banks.adapters import base
from ledgerlink.banks.adapters.base import ConnectionContext, Credentials, ScaMethod
from ledgerlink.banks.adapters.http import (
    HttpAdapter,
    JwtSigner,
    Page,
    PageRequest,
    Query,
    retry_at_from,
    utcnow,
)

COUNTRY = "SE"

#: Our bank id → the aggregator's ASPSP name. **[UNCONFIRMED]** (docs/banks.md): checked against the
#: live ``GET /aspsps`` answer on every authorisation, matched case-insensitively, BIC as fallback.
ASPSP_NAMES: dict[str, str] = {
    "ekobanken": "Ekobanken",
    "jak": "JAK Medlemsbank",
    "lanospar": "Lån & Spar Bank",
    "brabank": "Brabank",
}

SESSION_STATUSES: dict[str, base.ConsentStatus] = {
    "AUTHORIZED": base.ConsentStatus.valid,
    "PENDING_AUTHORIZATION": base.ConsentStatus.received,
    "RETURNED_FROM_BANK": base.ConsentStatus.received,
    "CANCELLED": base.ConsentStatus.rejected,
    "INVALID": base.ConsentStatus.rejected,
    "EXPIRED": base.ConsentStatus.expired,
    "CLOSED": base.ConsentStatus.revoked,
    "REVOKED": base.ConsentStatus.revoked,
}

BOOKING_STATUSES: dict[str, base.BookingStatus | None] = {
    "BOOK": base.BookingStatus.booked,
    "PDNG": base.BookingStatus.pending,
    "HOLD": base.BookingStatus.pending,
    "OTHR": base.BookingStatus.pending,  # unknown state: pending rows are replaced on every sync
    "CNCL": None,  # cancelled, rejected and scheduled rows are not money movements
    "RJCT": None,
    "SCHD": None,
}

BALANCE_PREFERENCE = ("CLBD", "ITBD", "XPCD", "ITAV", "CLAV", "OPBD")

REAUTH_ERRORS = frozenset(
    {"CLOSED_SESSION", "REVOKED_SESSION", "SESSION_DOES_NOT_EXIST", "ASPSP_PSU_ACTION_REQUIRED"}
)
EXPIRED_ERRORS = frozenset({"EXPIRED_SESSION"})
RATE_ERRORS = frozenset({"ASPSP_RATE_LIMIT_EXCEEDED"})
TRANSIENT_ERRORS = frozenset({"ASPSP_ERROR", "ASPSP_TIMEOUT"})

#: Positional entry references (``2024-03-15-2``: booking date + index) shift when a row is added
#: earlier that day, so they are no identity (actualbudget/actual#8701).
POSITIONAL_REFERENCE = re.compile(r"^\d{4}-?\d{2}-?\d{2}[-_.:/ ]?\d{1,4}$")

JWT_LIFETIME = dt.timedelta(minutes=55)  # the aggregator rejects application JWTs living over 24 h

ApplicationSigner = JwtSigner


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class AggregatorAdapter(HttpAdapter):
    """One adapter for every bank behind the aggregator; ``entry.id`` selects the ASPSP."""

    next_page_field = "continuation_key"

    def setup(self) -> None:
        self.aspsp_name = ASPSP_NAMES.get(self.entry.id, self.entry.name)
        self._jwt: tuple[str, dt.datetime] | None = None
        #: Hook: signs the application JWT (the configured PEM key; replace it for a KMS/HSM key).
        self.application_signer: ApplicationSigner | None = self.jwt_signer(
            "RS256", "aggregator application key"
        )

    # -- application auth and headers -----------------------------------------------------------

    def application_jwt(self) -> str:
        """The bearer JWT for our application (cached until shortly before it expires)."""
        now = utcnow()
        if self._jwt and self._jwt[1] - dt.timedelta(minutes=5) > now:
            return self._jwt[0]
        if self.application_signer is None:
            raise base.BankUnavailable(self.bank_id, "aggregator application key not configured")
        expires = now + JWT_LIFETIME
        token = self.application_signer(
            {
                "iss": "enablebanking.com",
                "aud": "api.enablebanking.com",
                "iat": int(now.timestamp()),
                "exp": int(expires.timestamp()),
            }
        )
        self._jwt = (token, expires)
        return token

    def headers(self, ctx: ConnectionContext) -> dict[str, str]:
        """Application auth on every call; the PSU's IP only when the user is present (RTS 36(5))."""
        headers = {"Authorization": f"Bearer {self.application_jwt()}", "Accept": "application/json"}
        if ctx.user_present and ctx.psu_ip_address:
            headers["Psu-Ip-Address"] = ctx.psu_ip_address
        return headers

    async def get_resource(
        self, ctx: ConnectionContext, credentials: Credentials, url: str, params: Query | None = None
    ) -> Any:
        """A read with the application's JWT (the session id in the path is the user's access)."""
        return await self.get_json(url, params=params, headers=self.headers(ctx))

    # -- authorisation --------------------------------------------------------------------------

    async def find_aspsp(self, ctx: ConnectionContext) -> dict[str, Any]:
        """This bank's entry in the aggregator's list, or ``BankUnavailable`` if it is not offered."""
        body = await self.get_json("/aspsps", params={"country": COUNTRY}, headers=self.headers(ctx))
        aspsps = self.require(body, "aspsps")
        if not isinstance(aspsps, list):
            self.fail("not a list", "aspsps")
        wanted = self.aspsp_name.casefold()
        candidates = [
            a for a in aspsps if isinstance(a, dict) and str(a.get("name", "")).casefold() == wanted
        ]
        if not candidates and self.entry.bic:
            candidates = [a for a in aspsps if isinstance(a, dict) and a.get("bic") == self.entry.bic]
        if not candidates:
            raise base.BankUnavailable(self.bank_id, f"{self.aspsp_name} is not offered by the aggregator")
        aspsp: dict[str, Any] = candidates[0]
        psu_types = aspsp.get("psu_types")
        if isinstance(psu_types, list) and self._psu_type(ctx) not in psu_types:
            raise base.BankUnavailable(self.bank_id, f"{self._psu_type(ctx)} accounts are not offered")
        return aspsp

    @staticmethod
    def _psu_type(ctx: ConnectionContext) -> str:
        return "business" if ctx.account_type == "business" else "personal"

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> base.AuthorizationStart:
        aspsp = await self.find_aspsp(ctx)
        validity = dt.timedelta(days=self.entry.consent_max_days)
        max_seconds = aspsp.get("maximum_consent_validity")
        if isinstance(max_seconds, int) and max_seconds > 0:
            validity = min(validity, dt.timedelta(seconds=max_seconds))
        body = {
            "access": {"valid_until": (utcnow() + validity).replace(microsecond=0).isoformat()},
            "aspsp": {"name": aspsp["name"], "country": aspsp.get("country") or COUNTRY},
            "state": state,
            "redirect_url": redirect_uri,
            "psu_type": self._psu_type(ctx),
        }
        answer = self.decode_json(
            await self.request("POST", "/auth", headers=self.headers(ctx), json_body=body)
        )
        url = str(self.require(answer, "url"))
        extra = (
            {"authorization_id": str(answer["authorization_id"])} if answer.get("authorization_id") else {}
        )
        # Redirect either way: BankID (redirect or decoupled) runs on the aggregator's page.
        return base.AuthorizationStart(method="redirect", credentials=Credentials(extra=extra), url=url)

    async def complete_authorization(
        self, ctx: ConnectionContext, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        code = self.required_code(code)
        body = self.decode_json(
            await self.request("POST", "/sessions", headers=self.headers(ctx), json_body={"code": code})
        )
        session_id = str(self.require(body, "session_id"))
        extra = dict(credentials.extra)
        valid_until = _obj(body.get("access")).get("valid_until")
        if valid_until:
            extra["valid_until"] = str(valid_until)
        return Credentials(consent_id=session_id, extra=extra)

    def _session_id(self, credentials: Credentials) -> str:
        if not credentials.consent_id:
            raise base.ReauthRequired(self.bank_id, "no aggregator session stored")
        return urllib.parse.quote(credentials.consent_id, safe="")

    async def _session(self, ctx: ConnectionContext, credentials: Credentials) -> dict[str, Any]:
        body = await self.get_json(f"/sessions/{self._session_id(credentials)}", headers=self.headers(ctx))
        if not isinstance(body, dict):
            self.fail("session is not an object", "session")
        return body

    async def get_consent(self, ctx: ConnectionContext, credentials: Credentials) -> base.ConsentInfo:
        body = await self._session(ctx, credentials)
        raw = str(self.require(body, "status"))
        status = SESSION_STATUSES.get(raw)
        if status is None:
            self.fail(f"unknown session status {raw[:40]!r}", "status")
        access = _obj(body.get("access"))
        valid_until = self.parse_date(access.get("valid_until"), "access.valid_until", required=False)
        return base.ConsentInfo(status=status, valid_until=valid_until)

    async def revoke(self, ctx: ConnectionContext, credentials: Credentials) -> None:
        try:
            await self.request(
                "DELETE", f"/sessions/{self._session_id(credentials)}", headers=self.headers(ctx)
            )
        except base.ReauthRequired:
            return  # the session is already closed, expired or unknown: nothing left to revoke

    # -- data -----------------------------------------------------------------------------------

    async def list_accounts(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> list[base.BankAccountInfo]:
        session = await self._session(ctx, credentials)
        uids = session.get("accounts") or []
        if not isinstance(uids, list):
            self.fail("not a list", "accounts")
        out = []
        for i, item in enumerate(uids):
            uid = item.get("uid") if isinstance(item, dict) else item
            if not isinstance(uid, str) or not uid:
                self.fail("missing account uid", f"accounts[{i}]")
            details = await self.get_resource(
                ctx, credentials, f"/accounts/{urllib.parse.quote(uid, safe='')}/details"
            )
            balance = await self.fetch_balance(ctx, credentials, uid)
            out.append(dataclasses.replace(self._account(details, uid), balance=balance))
        return out

    def _account(self, body: Any, uid: str) -> base.BankAccountInfo:
        currency = self.require(body, "currency", "details.currency")
        account_id = _obj(body.get("account_id"))
        other = _obj(account_id.get("other"))
        usage_raw = body.get("usage")
        return base.BankAccountInfo(
            external_id=uid,
            currency=str(currency).upper(),
            iban=(str(account_id["iban"]).replace(" ", "") if account_id.get("iban") else None),
            bban=(str(other["identification"]) if other.get("identification") else None),
            name=(str(body.get("name") or body.get("product") or "") or None),
            usage="business" if usage_raw == "ORGA" else "private" if usage_raw == "PRIV" else None,
        )

    async def fetch_balance(
        self, ctx: ConnectionContext, credentials: Credentials, account_id: str
    ) -> base.Balance:
        body = await self.get_resource(
            ctx, credentials, f"/accounts/{urllib.parse.quote(account_id, safe='')}/balances"
        )
        items = self.require(body, "balances")
        if not isinstance(items, list) or not items or not all(isinstance(b, dict) for b in items):
            self.fail("no balances", "balances")
        by_type = {str(b.get("balance_type")): (i, b) for i, b in enumerate(items)}
        index, chosen = next((by_type[k] for k in BALANCE_PREFERENCE if k in by_type), (0, items[0]))
        field = f"balances[{index}]"
        amount_obj = self.require(chosen, "balance_amount", f"{field}.balance_amount")
        amount = self.parse_amount(
            self.require(amount_obj, "amount", f"{field}.balance_amount.amount"),
            f"{field}.balance_amount.amount",
        )
        if chosen.get("credit_debit_indicator") == "DBIT":
            amount = -abs(amount)
        currency = str(self.require(amount_obj, "currency", f"{field}.balance_amount.currency")).upper()
        as_of = self.parse_date(
            chosen.get("reference_date") or chosen.get("last_change_date_time"),
            f"{field}.reference_date",
            required=False,
        )
        return base.Balance(amount=amount, currency=currency, as_of=as_of)

    def transactions_request(
        self, ctx: ConnectionContext, account_id: str, date_from: dt.date, date_to: dt.date
    ) -> PageRequest:
        url = f"/accounts/{urllib.parse.quote(account_id, safe='')}/transactions"
        return url, {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()}

    def read_page(
        self, ctx: ConnectionContext, body: Any, page: Page
    ) -> tuple[list[base.BankTransaction], PageRequest | None]:
        """A page of rows; ``continuation_key`` asks for the next (the query's other params stay)."""
        where = f"page {page.number + 1}"
        if not isinstance(body, dict):
            self.fail("not an object", where)
        items = body.get("transactions") or []
        if not isinstance(items, list):
            self.fail("not a list", f"{where} transactions")
        out: list[base.BankTransaction] = []
        for i, raw in enumerate(items):
            if not isinstance(raw, dict):
                self.fail("not an object", f"{where} transactions[{i}]")
            tx = self._transaction(raw, f"{where} transactions[{i}]")
            if tx is not None:
                out.append(tx)
        key = body.get("continuation_key")
        if not key:
            return out, None
        url, params = page.request
        return out, (url, {**(params or {}), "continuation_key": str(key)})

    def _provider_id(self, raw: dict[str, Any]) -> str | None:
        tx_id = str(raw.get("transaction_id") or "").strip()
        if tx_id:
            return tx_id
        ref = str(raw.get("entry_reference") or "").strip()
        if ref and not POSITIONAL_REFERENCE.match(ref):
            return ref
        return None

    def _transaction(self, raw: dict[str, Any], field: str) -> base.BankTransaction | None:
        status_raw = str(self.require(raw, "status", f"{field}.status"))
        if status_raw not in BOOKING_STATUSES:
            self.fail(f"unknown status {status_raw[:20]!r}", f"{field}.status")
        status = BOOKING_STATUSES[status_raw]
        if status is None:
            return None
        amount_obj = self.require(raw, "transaction_amount", f"{field}.transaction_amount")
        amount: Decimal = abs(
            self.parse_amount(
                self.require(amount_obj, "amount", f"{field}.transaction_amount.amount"),
                f"{field}.transaction_amount.amount",
            )
        )
        currency = str(self.require(amount_obj, "currency", f"{field}.transaction_amount.currency")).upper()
        indicator = self.require(raw, "credit_debit_indicator", f"{field}.credit_debit_indicator")
        if indicator == "DBIT":
            amount = -amount
        elif indicator != "CRDT":
            self.fail(f"unknown indicator {str(indicator)[:20]!r}", f"{field}.credit_debit_indicator")
        booking_date = self.parse_date(raw.get("booking_date"), f"{field}.booking_date", required=False)
        value_date = self.parse_date(raw.get("value_date"), f"{field}.value_date", required=False)
        if booking_date is None:
            booking_date = self.parse_date(
                raw.get("transaction_date") or raw.get("value_date"),
                f"{field}.booking_date",
                required=status is base.BookingStatus.booked,
            )
        party = raw.get("creditor") if amount < 0 else raw.get("debtor")
        counterparty = None
        if isinstance(party, dict):
            counterparty = str(party.get("name") or "").strip() or None
        remittance = raw.get("remittance_information") or []
        if isinstance(remittance, str):
            remittance = [remittance]
        description = " ".join(str(r).strip() for r in remittance if str(r).strip()) or None
        reference = str(raw.get("reference_number") or "").strip() or None
        return base.BankTransaction(
            booking_status=status,
            amount=amount,
            currency=currency,
            booking_date=booking_date,
            value_date=value_date,
            provider_id=self._provider_id(raw),
            counterparty=counterparty,
            description=description,
            reference=reference,
            raw=raw,
        )

    # -- errors ---------------------------------------------------------------------------------

    def map_error_response(self, response: httpx.Response) -> None:
        """Aggregator errors: ``{"code": <status>, "message": "...", "error": "EXPIRED_SESSION", ...}``."""
        try:
            body = response.json()
        except ValueError:
            body = None
        error = str(body.get("error") or "") if isinstance(body, dict) else ""
        message = str(body.get("message") or "") if isinstance(body, dict) else response.text[:500]
        path = response.request.url.path
        if error in EXPIRED_ERRORS:
            raise base.ConsentExpired(self.bank_id, f"session expired ({path})")
        if error in REAUTH_ERRORS:
            raise base.ReauthRequired(self.bank_id, f"session no longer valid: {error} ({path})")
        if error in RATE_ERRORS or response.status_code == 429:
            raise base.RateLimited(self.bank_id, f"rate limited on {path}", retry_at_from(response))
        if response.status_code == 503 and "maintenance" in message.casefold():
            raise base.BankUnavailable(self.bank_id, f"down for maintenance ({path})")
        if error in TRANSIENT_ERRORS:
            raise base.TemporaryFailure(self.bank_id, f"{error} on {path}")
