"""The shared Berlin Group NextGenPSD2 adapter (consents, redirect/decoupled SCA, AIS reads).

See the package docstring for the override hooks a bank module uses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx

from ledgerlink.banks.adapters.base import (
    AccountUsage,
    AuthorizationStart,
    AuthorizationStatus,
    Balance,
    BankAccountInfo,
    BankTransaction,
    BankUnavailable,
    BookingStatus,
    ConnectionContext,
    ConsentExpired,
    ConsentInfo,
    ConsentStatus,
    Credentials,
    RateLimited,
    ReauthRequired,
    ScaMethod,
    TemporaryFailure,
)
from ledgerlink.banks.adapters.berlingroup.errors import (
    EXPIRED_CODES,
    PERIOD_CODES,
    RATE_LIMIT_CODES,
    REAUTH_CODES,
    UNAVAILABLE_CODES,
    UNKNOWN_RESOURCE_CODES,
    PeriodInvalid,
    ResourceUnknown,
    first_code,
    tpp_messages,
)
from ledgerlink.banks.adapters.berlingroup.oauth import credentials_from_token, with_query
from ledgerlink.banks.adapters.http import HttpAdapter, new_request_id, retry_at_from, today_stockholm

CONSENT_STATUSES: dict[str, ConsentStatus] = {
    "received": ConsentStatus.received,
    "partiallyauthorised": ConsentStatus.received,
    "valid": ConsentStatus.valid,
    "rejected": ConsentStatus.rejected,
    "expired": ConsentStatus.expired,
    "revokedbypsu": ConsentStatus.revoked,
    "terminatedbytpp": ConsentStatus.revoked,
}
SCA_FINAL_OK = frozenset({"finalised", "exempted"})
SCA_FAILED = frozenset({"failed"})
USAGES: dict[str, AccountUsage] = {"PRIV": "private", "ORGA": "business"}
BALANCE_PREFERENCE = (
    "closingBooked",
    "interimBooked",
    "expected",
    "interimAvailable",
    "openingBooked",
    "forwardAvailable",
)
AUTOSTART_KEYS = ("autoStartToken", "autostartToken", "bankIdAutoStartToken", "autoStart")
MAX_PAGES = 1000
OAUTH_REAUTH_ERRORS = frozenset({"invalid_grant", "invalid_token", "access_denied", "unauthorized_client"})

NextPage = tuple[str, dict[str, Any] | None]


def blank_to_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class BerlinGroupAdapter(HttpAdapter):
    """Berlin Group NextGenPSD2 XS2A v1 AIS, as in banks.md §1."""

    #: Paths relative to the base URL.
    consents_path: ClassVar[str] = "/v1/consents"
    accounts_path: ClassVar[str] = "/v1/accounts"
    #: Header that carries the request id (Bank Norwegian uses ``Request-ID``).
    request_id_header: ClassVar[str] = "X-Request-ID"
    #: ``bank_offered`` asks the PSU at the bank which accounts; ``all_accounts`` asks for all of them.
    consent_access_mode: ClassVar[Literal["bank_offered", "all_accounts"]] = "bank_offered"
    #: ``PSU-ID-Type`` sent with ``PSU-ID`` (LF: ``SSSN``), or None for none.
    psu_id_type: ClassVar[str | None] = None
    frequency_per_day: ClassVar[int] = 4
    default_poll_interval_seconds: ClassVar[int] = 2

    # -- paths (hooks) ----------------------------------------------------------------------------

    def consents_url(self) -> str:
        return self.consents_path

    def consent_url(self, consent_id: str) -> str:
        return f"{self.consents_path}/{consent_id}"

    def authorisations_url(self, consent_id: str) -> str:
        return f"{self.consents_path}/{consent_id}/authorisations"

    def authorisation_url(self, consent_id: str, authorisation_id: str) -> str:
        return f"{self.consents_path}/{consent_id}/authorisations/{authorisation_id}"

    def accounts_url(self) -> str:
        return self.accounts_path

    def transactions_url(self, account_id: str) -> str:
        return f"{self.accounts_path}/{account_id}/transactions"

    def balances_url(self, account_id: str) -> str:
        return f"{self.accounts_path}/{account_id}/balances"

    def resolve_link(self, href: str) -> str:
        """A ``_links.*.href`` as a URL for our client: absolute URLs as they are; a path that repeats
        the base URL's own path prefix has it removed (the client prepends the base URL)."""
        if "://" in href:
            return href
        base_path = urlsplit(self.base_url).path.rstrip("/")
        if base_path and href.startswith(base_path + "/"):
            return href[len(base_path) :]
        return href if href.startswith("/") else "/" + href

    # -- headers (hooks) --------------------------------------------------------------------------

    def today(self) -> dt.date:
        return today_stockholm()

    def base_headers(self, ctx: ConnectionContext, credentials: Credentials | None = None) -> dict[str, str]:
        """Headers on every call: request id, bearer token if any, PSU presence, corporate id."""
        headers = {self.request_id_header: new_request_id()}
        if credentials is not None and credentials.access_token:
            headers["Authorization"] = f"Bearer {credentials.access_token}"
        if ctx.user_present and ctx.psu_ip_address:
            headers["PSU-IP-Address"] = ctx.psu_ip_address
        if ctx.corporate_id:
            headers["PSU-Corporate-ID"] = ctx.corporate_id
        return headers

    def ais_headers(self, ctx: ConnectionContext, credentials: Credentials) -> dict[str, str]:
        """Headers on account-information calls (adds ``Consent-ID``)."""
        headers = self.base_headers(ctx, credentials)
        if credentials.consent_id:
            headers["Consent-ID"] = credentials.consent_id
        return headers

    def psu_headers(self, ctx: ConnectionContext) -> dict[str, str]:
        headers: dict[str, str] = {}
        if ctx.psu_id:
            headers["PSU-ID"] = ctx.psu_id
            if self.psu_id_type:
                headers["PSU-ID-Type"] = self.psu_id_type
        return headers

    def consent_headers(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod
    ) -> dict[str, str]:
        headers = self.base_headers(ctx)
        headers.update(self.psu_headers(ctx))
        if sca_method == "redirect":
            headers["TPP-Redirect-Preferred"] = "true"
            headers["TPP-Redirect-URI"] = with_query(redirect_uri, {"state": state})
            headers["TPP-Nok-Redirect-URI"] = with_query(redirect_uri, {"state": state, "error": "nok"})
        else:
            headers["TPP-Redirect-Preferred"] = "false"
            headers["TPP-Decoupled-Preferred"] = "true"
        return headers

    # -- consent body (hooks) ---------------------------------------------------------------------

    def consent_valid_until(self) -> dt.date:
        """The validity we ask for: the catalogue ceiling; the bank's answer is read back later."""
        return self.today() + dt.timedelta(days=self.entry.consent_max_days)

    def consent_access(self, ctx: ConnectionContext) -> dict[str, Any]:
        if self.consent_access_mode == "all_accounts":
            return {"allPsd2": "allAccounts"}
        return {"accounts": [], "balances": [], "transactions": []}

    def consent_body(self, ctx: ConnectionContext) -> dict[str, Any]:
        return {
            "access": self.consent_access(ctx),
            "recurringIndicator": True,
            "validUntil": self.consent_valid_until().isoformat(),
            "frequencyPerDay": self.frequency_per_day,
            "combinedServiceIndicator": False,
        }

    def default_sca_method(self) -> ScaMethod:
        return self.entry.sca_methods[0]

    # -- authorization ----------------------------------------------------------------------------

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> AuthorizationStart:
        method: ScaMethod = sca_method or self.default_sca_method()
        if method not in self.entry.sca_methods:
            raise BankUnavailable(self.bank_id, f"SCA method {method} is not offered")
        response = await self.request(
            "POST",
            self.consents_url(),
            headers=self.consent_headers(ctx, redirect_uri=redirect_uri, state=state, sca_method=method),
            json_body=self.consent_body(ctx),
        )
        body = self.expect_object(self.decode_json(response), "consent")
        consent_id = str(self.require(body, "consentId"))
        credentials = Credentials(consent_id=consent_id)
        if method == "decoupled":
            return await self.start_decoupled(ctx, credentials, body)
        return await self.start_redirect(ctx, credentials, body, redirect_uri=redirect_uri, state=state)

    async def start_redirect(
        self,
        ctx: ConnectionContext,
        credentials: Credentials,
        consent: dict[str, Any],
        *,
        redirect_uri: str,
        state: str,
    ) -> AuthorizationStart:
        """The consent answer's ``scaRedirect``; if the bank wants an explicit authorisation first,
        start it and take the link from that answer."""
        url = self.link(consent, "scaRedirect")
        if url is None:
            start = self.link(consent, "startAuthorisation") or self.authorisations_url(
                str(credentials.consent_id)
            )
            response = await self.request(
                "POST",
                self.resolve_link(start),
                headers=self.consent_headers(
                    ctx, redirect_uri=redirect_uri, state=state, sca_method="redirect"
                ),
                json_body={},
            )
            auth = self.expect_object(self.decode_json(response), "authorisation")
            url = self.link(auth, "scaRedirect")
            if auth.get("authorisationId"):
                credentials = self.with_extra(credentials, authorisation_id=str(auth["authorisationId"]))
        if url is None:
            self.fail("consent answer has no SCA redirect link", "_links.scaRedirect")
        return AuthorizationStart(method="redirect", credentials=credentials, url=url)

    async def start_decoupled(
        self, ctx: ConnectionContext, credentials: Credentials, consent: dict[str, Any]
    ) -> AuthorizationStart:
        """Start the authorisation resource with the PSU id and read the BankID autostart token."""
        consent_id = str(credentials.consent_id)
        start = (
            self.link(consent, "startAuthorisationWithPsuIdentification")
            or self.link(consent, "startAuthorisation")
            or self.authorisations_url(consent_id)
        )
        headers = self.base_headers(ctx)
        headers.update(self.psu_headers(ctx))
        response = await self.request("POST", self.resolve_link(start), headers=headers, json_body={})
        auth = self.expect_object(self.decode_json(response), "authorisation")
        authorisation_id = blank_to_none(auth.get("authorisationId"))
        if authorisation_id is None:
            authorisation_id = self.authorisation_id_from_link(auth)
        if authorisation_id is None:
            self.fail("authorisation answer has no id", "authorisationId")
        token = self.autostart_token_from(auth) or self.autostart_token_from(consent)
        return AuthorizationStart(
            method="decoupled",
            credentials=self.with_extra(credentials, authorisation_id=authorisation_id),
            autostart_token=token,
            poll_interval_seconds=self.default_poll_interval_seconds,
        )

    def authorisation_id_from_link(self, auth: dict[str, Any]) -> str | None:
        href = self.link(auth, "scaStatus")
        if href and "/authorisations/" in href:
            return href.rstrip("/").rsplit("/", 1)[-1] or None
        return None

    def autostart_token_from(self, payload: dict[str, Any]) -> str | None:
        """The BankID autostart token: ``challengeData.data[0]`` (or ``.additionalInformation``), a
        bank field (``autoStartToken``...), or a ``psuMessage`` that is a bare token."""
        challenge = payload.get("challengeData")
        if isinstance(challenge, dict):
            data = challenge.get("data")
            if isinstance(data, list) and data and blank_to_none(data[0]):
                return str(data[0]).strip()
            if blank_to_none(challenge.get("additionalInformation")):
                return str(challenge["additionalInformation"]).strip()
        for key in AUTOSTART_KEYS:
            value = blank_to_none(payload.get(key))
            if value:
                return value
        message = blank_to_none(payload.get("psuMessage"))
        if message and " " not in message and len(message) >= 16:
            return message
        return None

    async def get_authorization_status(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> AuthorizationStatus:
        consent_id = self.consent_id_of(credentials)
        authorisation_id = credentials.extra.get("authorisation_id")
        if not authorisation_id:
            self.fail("credentials carry no authorisation id", "authorisation_id")
        body = await self.get_json(
            self.authorisation_url(consent_id, authorisation_id), headers=self.base_headers(ctx, credentials)
        )
        sca_status = str(self.require(body, "scaStatus")).strip()
        if sca_status in SCA_FINAL_OK:
            return AuthorizationStatus(status="finalised", credentials=credentials)
        if sca_status in SCA_FAILED:
            message = blank_to_none(body.get("psuMessage")) if isinstance(body, dict) else None
            return AuthorizationStatus(
                status="failed", credentials=credentials, message=message or sca_status
            )
        return AuthorizationStatus(status="pending", credentials=credentials)

    async def complete_authorization(
        self, ctx: ConnectionContext, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        """Plain BG redirect: nothing to exchange; refuse a consent the PSU rejected at the bank."""
        info = await self.get_consent(ctx, credentials)
        if info.status in (ConsentStatus.rejected, ConsentStatus.revoked):
            raise ReauthRequired(self.bank_id, f"consent {info.status.value} at the bank")
        if info.status is ConsentStatus.expired:
            raise ConsentExpired(self.bank_id, "consent expired before use")
        return credentials

    # -- OAuth (banks that put an authorization-code flow in front of AIS) -------------------------

    def oauth_client(self) -> tuple[str, str | None]:
        """``(client_id, client_secret)`` from the endpoint settings; BankUnavailable if unset."""
        if not self.endpoint.client_id:
            raise BankUnavailable(self.bank_id, "no client_id configured")
        secret = self.endpoint.client_secret.get_secret_value() if self.endpoint.client_secret else None
        return self.endpoint.client_id, secret

    async def exchange_code(
        self, token_url: str, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        """Authorization-code grant (with the stored PKCE verifier if any) → credentials with tokens."""
        if not code:
            raise ReauthRequired(self.bank_id, "the bank sent no authorization code")
        client_id, client_secret = self.oauth_client()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
        }
        if client_secret:
            form["client_secret"] = client_secret
        if credentials.extra.get("code_verifier"):
            form["code_verifier"] = credentials.extra["code_verifier"]
        response = await self.request(
            "POST", token_url, headers={self.request_id_header: new_request_id()}, data=form
        )
        return credentials_from_token(self.bank_id, self.decode_json(response), credentials)

    # -- consent ----------------------------------------------------------------------------------

    async def get_consent(self, ctx: ConnectionContext, credentials: Credentials) -> ConsentInfo:
        body = await self.get_json(
            self.consent_url(self.consent_id_of(credentials)), headers=self.base_headers(ctx, credentials)
        )
        return self.parse_consent(body)

    def parse_consent(self, body: Any) -> ConsentInfo:
        raw_status = str(self.require(body, "consentStatus")).strip()
        status = CONSENT_STATUSES.get(raw_status.casefold())
        if status is None:
            self.fail(f"unknown consent status {raw_status[:40]!r}", "consentStatus")
        valid_until = self.parse_date(body.get("validUntil"), "validUntil", required=False)
        return ConsentInfo(status=status, valid_until=valid_until)

    async def revoke(self, ctx: ConnectionContext, credentials: Credentials) -> None:
        await self.request(
            "DELETE",
            self.consent_url(self.consent_id_of(credentials)),
            headers=self.base_headers(ctx, credentials),
        )

    # -- accounts ---------------------------------------------------------------------------------

    def accounts_params(self) -> dict[str, Any]:
        return {"withBalance": "true"}

    async def list_accounts(self, ctx: ConnectionContext, credentials: Credentials) -> list[BankAccountInfo]:
        body = await self.get_json(
            self.accounts_url(), headers=self.ais_headers(ctx, credentials), params=self.accounts_params()
        )
        raw_accounts = self.accounts_from(body)
        return [self.parse_account(raw, f"accounts[{i}]") for i, raw in enumerate(raw_accounts)]

    def accounts_from(self, body: Any) -> list[Any]:
        accounts = body.get("accounts") if isinstance(body, dict) else None
        if not isinstance(accounts, list):
            self.fail("no account list", "accounts")
        return accounts

    def parse_account(self, raw: Any, where: str) -> BankAccountInfo:
        if not isinstance(raw, dict):
            self.fail("account is not an object", where)
        external_id = str(self.require(raw, "resourceId", f"{where}.resourceId"))
        currency = str(self.require(raw, "currency", f"{where}.currency"))
        usage = USAGES.get(str(raw.get("usage") or "").upper())
        balances = raw.get("balances")
        balance = self.pick_balance(balances, f"{where}.balances") if isinstance(balances, list) else None
        return BankAccountInfo(
            external_id=external_id,
            currency=currency,
            iban=blank_to_none(raw.get("iban")),
            bban=blank_to_none(raw.get("bban")),
            name=blank_to_none(raw.get("name"))
            or blank_to_none(raw.get("displayName"))
            or blank_to_none(raw.get("product")),
            usage=usage,
            balance=balance,
        )

    # -- balances ---------------------------------------------------------------------------------

    async def fetch_balance(
        self, ctx: ConnectionContext, credentials: Credentials, account_id: str
    ) -> Balance:
        body = await self.get_json(self.balances_url(account_id), headers=self.ais_headers(ctx, credentials))
        balances = body.get("balances") if isinstance(body, dict) else None
        if not isinstance(balances, list):
            self.fail("no balance list", "balances")
        balance = self.pick_balance(balances, "balances")
        if balance is None:
            self.fail("no usable balance", "balances")
        return balance

    def pick_balance(self, balances: list[Any], where: str) -> Balance | None:
        """The booked balance by preference (closingBooked, interimBooked, expected, ...)."""
        by_type: dict[str, tuple[int, dict[str, Any]]] = {}
        for i, item in enumerate(balances):
            if isinstance(item, dict) and item.get("balanceType"):
                by_type.setdefault(str(item["balanceType"]).casefold(), (i, item))
        chosen = next((by_type[t.casefold()] for t in BALANCE_PREFERENCE if t.casefold() in by_type), None)
        if chosen is None:
            return None
        i, item = chosen
        amount_obj = self.require_object(item, "balanceAmount", f"{where}[{i}].balanceAmount")
        return Balance(
            amount=self.parse_amount(
                self.require(amount_obj, "amount", f"{where}[{i}].balanceAmount.amount"),
                f"{where}[{i}].balanceAmount.amount",
            ),
            currency=str(self.require(amount_obj, "currency", f"{where}[{i}].balanceAmount.currency")),
            as_of=self.parse_date(
                item.get("referenceDate") or item.get("lastChangeDateTime"),
                f"{where}[{i}].referenceDate",
                required=False,
            ),
        )

    # -- transactions -----------------------------------------------------------------------------

    def transactions_params(self, date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
        return {"dateFrom": date_from.isoformat(), "dateTo": date_to.isoformat(), "bookingStatus": "both"}

    async def fetch_transactions(
        self,
        ctx: ConnectionContext,
        credentials: Credentials,
        account_id: str,
        date_from: dt.date,
        date_to: dt.date,
    ) -> Sequence[BankTransaction]:
        out: list[BankTransaction] = []
        url = self.transactions_url(account_id)
        params: dict[str, Any] | None = self.transactions_params(date_from, date_to)
        seen: set[str] = set()
        for page in range(MAX_PAGES):
            body = await self.get_json(url, headers=self.ais_headers(ctx, credentials), params=params)
            out.extend(self.parse_transactions_page(body, page))
            nxt = self.next_page(body, url, params, page)
            if nxt is None:
                return out
            url, params = nxt
            key = f"{url}?{sorted((params or {}).items())}"
            if key in seen:
                self.fail("pagination loops on the same page", "_links.next")
            seen.add(key)
        self.fail(f"more than {MAX_PAGES} pages", "_links.next")

    def report_of(self, body: Any) -> dict[str, Any]:
        report = body.get("transactions") if isinstance(body, dict) else None
        if not isinstance(report, dict):
            self.fail("no transaction report", "transactions")
        return report

    def next_page(self, body: Any, url: str, params: dict[str, Any] | None, page: int) -> NextPage | None:
        """Follow ``transactions._links.next.href`` (or a top-level ``_links.next``) until absent.
        The href carries its own query, so no params are re-sent."""
        href = self.link(self.report_of(body), "next") or self.link(body, "next")
        if href is None:
            return None
        return self.resolve_link(href), None

    def parse_transactions_page(self, body: Any, page: int) -> list[BankTransaction]:
        report = self.report_of(body)
        out: list[BankTransaction] = []
        for status in (BookingStatus.booked, BookingStatus.pending):
            rows = report.get(status.value)
            if rows is None:
                continue
            if not isinstance(rows, list):
                self.fail("rows are not a list", f"transactions.{status.value}")
            for i, raw in enumerate(rows):
                where = f"transactions.{status.value}[{i}]" + (f" (page {page + 1})" if page else "")
                if not isinstance(raw, dict):
                    self.fail("transaction is not an object", where)
                out.append(self.normalise_transaction(raw, status, where))
        return out

    # -- normalisation (hooks) --------------------------------------------------------------------

    def normalise_transaction(
        self, raw: dict[str, Any], status: BookingStatus, where: str
    ) -> BankTransaction:
        amount_obj = self.require_object(raw, "transactionAmount", f"{where}.transactionAmount")
        amount = self.parse_amount(amount_obj.get("amount"), f"{where}.transactionAmount.amount")
        currency = str(self.require(amount_obj, "currency", f"{where}.transactionAmount.currency")).upper()
        booking_date, value_date = self.transaction_dates(raw, status, where)
        return BankTransaction(
            booking_status=status,
            amount=amount,
            currency=currency,
            booking_date=booking_date,
            value_date=value_date,
            provider_id=self.provider_id(raw, status),
            counterparty=self.counterparty(raw, amount.is_signed()),
            description=self.description(raw),
            reference=self.reference(raw),
            raw=raw,
        )

    def transaction_dates(
        self, raw: dict[str, Any], status: BookingStatus, where: str
    ) -> tuple[dt.date | None, dt.date | None]:
        """Booked rows need a booking date (falling back to the value date); pending ones may lack it."""
        value_date = self.parse_date(raw.get("valueDate"), f"{where}.valueDate", required=False)
        booking_date = self.parse_date(
            raw.get("bookingDate") or raw.get("transactionDate"), f"{where}.bookingDate", required=False
        )
        if booking_date is None:
            booking_date = value_date
        if booking_date is None and status is BookingStatus.booked:
            self.fail("missing date", f"{where}.bookingDate")
        return booking_date, value_date

    def provider_id(self, raw: dict[str, Any], status: BookingStatus) -> str | None:
        return blank_to_none(raw.get("transactionId")) or blank_to_none(raw.get("entryReference"))

    def counterparty(self, raw: dict[str, Any], is_debit: bool) -> str | None:
        if is_debit:
            return blank_to_none(raw.get("creditorName")) or blank_to_none(raw.get("ultimateCreditor"))
        return blank_to_none(raw.get("debtorName")) or blank_to_none(raw.get("ultimateDebtor"))

    def description(self, raw: dict[str, Any]) -> str | None:
        parts: list[str] = []
        single = blank_to_none(raw.get("remittanceInformationUnstructured"))
        if single:
            parts.append(single)
        array = raw.get("remittanceInformationUnstructuredArray")
        if isinstance(array, list):
            parts.extend(text for item in array if (text := blank_to_none(item)) and text not in parts)
        if parts:
            return " ".join(parts)
        return blank_to_none(raw.get("additionalInformation"))

    def reference(self, raw: dict[str, Any]) -> str | None:
        """OCR/structured reference, else the end-to-end id (``NOTPROVIDED`` is no reference)."""
        candidates: list[Any] = [raw.get("remittanceInformationStructured")]
        array = raw.get("remittanceInformationStructuredArray")
        if isinstance(array, list):
            candidates.extend(array)
        for item in candidates:
            value = item.get("reference") if isinstance(item, dict) else item
            text = blank_to_none(value) if not isinstance(value, dict | list) else None
            if text:
                return text
        end_to_end = blank_to_none(raw.get("endToEndId"))
        if end_to_end and end_to_end.upper() != "NOTPROVIDED":
            return end_to_end
        return None

    # -- errors -----------------------------------------------------------------------------------

    def map_error_response(self, response: httpx.Response) -> None:
        """``tppMessages`` codes onto the error family (see :mod:`.errors` for the open choices)."""
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        messages = tpp_messages(body)
        path = response.request.url.path
        status = response.status_code
        if isinstance(body, dict) and body.get("error") in OAUTH_REAUTH_ERRORS:
            raise ReauthRequired(self.bank_id, f"OAuth {body['error']} on {path}")
        if hit := first_code(messages, EXPIRED_CODES):
            raise ConsentExpired(self.bank_id, f"{hit.code} on {path}")
        if hit := first_code(messages, REAUTH_CODES):
            raise ReauthRequired(self.bank_id, f"{hit.code} on {path}")
        if (hit := first_code(messages, RATE_LIMIT_CODES)) or status == 429:
            raise RateLimited(
                self.bank_id, f"{hit.code if hit else 'HTTP 429'} on {path}", retry_at_from(response)
            )
        if hit := first_code(messages, UNAVAILABLE_CODES):
            raise BankUnavailable(self.bank_id, f"{hit.code} on {path}")
        if status == 503 and any("maintenance" in m.text.casefold() for m in messages):
            raise BankUnavailable(self.bank_id, f"maintenance on {path}")
        if hit := first_code(messages, PERIOD_CODES):
            raise PeriodInvalid(self.bank_id, f"{hit.code} on {path}")
        if (hit := first_code(messages, UNKNOWN_RESOURCE_CODES)) and status in (403, 404):
            raise ResourceUnknown(self.bank_id, f"{hit.code} on {path}", "account_id")
        if status >= 500:
            raise TemporaryFailure(self.bank_id, f"HTTP {status} on {path}")

    # -- small helpers ----------------------------------------------------------------------------

    def consent_id_of(self, credentials: Credentials) -> str:
        if not credentials.consent_id:
            self.fail("credentials carry no consent id", "consent_id")
        return credentials.consent_id

    def require_object(self, obj: Any, key: str, field: str) -> dict[str, Any]:
        value = self.require(obj, key, field)
        if not isinstance(value, dict):
            self.fail("not an object", field)
        return value

    def expect_object(self, body: Any, what: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            self.fail(f"{what} answer is not an object", what)
        return body

    @staticmethod
    def link(body: Any, name: str) -> str | None:
        """``body._links[name].href`` (or a bare string link), or None."""
        links = body.get("_links") if isinstance(body, dict) else None
        if not isinstance(links, dict):
            return None
        value = links.get(name)
        if isinstance(value, dict):
            value = value.get("href")
        return blank_to_none(value)

    @staticmethod
    def with_extra(credentials: Credentials, **values: str) -> Credentials:
        return dataclasses.replace(credentials, extra={**credentials.extra, **values})
