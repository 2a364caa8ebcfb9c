"""Bank connections: consent + SCA (redirect or decoupled BankID), the single-use ``state``, completion,
re-authorization that keeps our accounts, and revocation.

State machine: ``awaiting_authorization → active → reauth_required → revoked | failed``. A
re-authorization keeps the connection's status until it completes (the old consent may still work);
its credentials wait in ``ConnectionSecrets.pending`` meanwhile. So an early one (the consent still valid,
e.g. after a ``consent_expiring`` reminder) leaves the nightly sync reading with the old consent; its
completion replaces the credentials, validity and reminders in one unit of work, and a refused or
abandoned one leaves the old consent in use.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.auth.principal import Principal
from ledgerlink.banks.adapters.base import (
    AdapterError,
    BankAccountInfo,
    BankAdapter,
    ConnectionContext,
    ConsentStatus,
    Credentials,
    ReauthRequired,
    ScaMethod,
)
from ledgerlink.banks.adapters.registry import BankEntry, get_entry
from ledgerlink.banks.errors import (
    ConnectionNotActive,
    ConnectionNotFound,
    ConnectionStateConflict,
    adapter_problem,
)
from ledgerlink.banks.repository import (
    BankAccountRepository,
    BankConnectionRepository,
)
from ledgerlink.banks.schemas import (
    AvailableAccount,
    ConnectionCreate,
    ConnectionCreated,
    DecoupledAuthorization,
    ReauthorizationCreate,
    RedirectAuthorization,
)
from ledgerlink.banks.service.available import (
    account_json,
    available_account,
    consent_end,
)
from ledgerlink.banks.service.available import available_of as available_of  # re-export
from ledgerlink.banks.service.available import identity_key as identity_key  # re-export
from ledgerlink.banks.service.calls import BankCall as BankCall  # re-export
from ledgerlink.banks.service.calls import bank_for_user, best_effort, open_bank
from ledgerlink.banks.service.catalogue import catalogue_entry, require_configured
from ledgerlink.banks.service.common import (
    ConnectionSecrets,
    load_secrets,
    save_secrets,
)
from ledgerlink.banks.service.same_bank import check_same_bank, take_over
from ledgerlink.companies.service import company as company_service
from ledgerlink.config import Settings
from ledgerlink.db.base import utcnow
from ledgerlink.errors import Unprocessable
from ledgerlink.inbox.repository import TodoRepository
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import AccountStatus, BankConnection, ConnectionStatus, LastError, OAuthState
from ledgerlink.models.inbox import TodoType
from ledgerlink.oauth.repository import OAuthStateRepository
from ledgerlink.oauth.service import check_redirect_uri, consume_state, issue_state
from ledgerlink.pagination import Instant, Keyset

CONNECTIONS_KEYSET = Keyset("bank-connections", Instant, uuid.UUID)

log = get_logger(__name__)

STATE_PURPOSE = "bank"
#: ``last_error.code`` of a login the bank (or the user) refused, and of a BankID login not completed in time.
AUTHORIZATION_FAILED = "authorization_failed"
AUTHORIZATION_TIMED_OUT = "authorization_timed_out"


def _state_of(connection: BankConnection) -> dict[str, Any]:
    """Whose a bank login's single-use state is: the connection's company, this feature, the connection."""
    return {"company_id": connection.company_id, "purpose": STATE_PURPOSE, "connection_id": connection.id}


#: A decoupled BankID login is given up after this many polls (one per read of the connection).
MAX_DECOUPLED_POLLS = 90
#: The SCA method stored on a connection, typed.
SCA_METHODS: dict[str, ScaMethod] = {"redirect": "redirect", "decoupled": "decoupled"}


class ConnectionService:
    # ------------------------------------------------------------------ create / reauthorize

    async def create(
        self, session: AsyncSession, principal: Principal, data: ConnectionCreate, call: BankCall
    ) -> ConnectionCreated:
        settings = call.settings
        entry = catalogue_entry(settings, data.bank_id)
        if data.account_type not in entry.account_types:
            raise Unprocessable(
                f"{entry.name} does not offer {data.account_type} accounts",
                loc=["body", "account_type"],
                code="account_type_unsupported",
            )
        check_redirect_uri(settings, data.redirect_uri)
        method = self._method(entry, data.sca_method, psu_id=data.psu_id)
        require_configured(settings, entry)
        await company_service.require_bank_import(session, principal.company_id, settings)
        same_bank = await check_same_bank(session, principal, entry, data, settings)

        connection = BankConnection(
            id=uuid.uuid4(),
            company_id=principal.company_id,
            bank_id=entry.id,
            account_type=data.account_type,
            status=ConnectionStatus.awaiting_authorization,
            redirect_uri=data.redirect_uri,
            decoupled_polls=0,
            replaces_id=same_bank.replaces.id if same_bank.replaces is not None else None,
        )
        save_secrets(
            settings, connection, ConnectionSecrets(psu_id=data.psu_id, corporate_id=data.corporate_id)
        )
        await BankConnectionRepository(session).add(connection)
        authorization = await self._start(
            session, connection, call, redirect_uri=data.redirect_uri, method=method
        )
        for pending in same_bank.superseded:  # an unfinished login there can no longer complete
            await self._authorization_failed(
                session,
                pending,
                settings,
                f"superseded by connection {connection.id}",
                code="authorization_superseded",
            )
        log.info("bank_connection.created", connection_id=str(connection.id), bank_id=entry.id, sca=method)
        return ConnectionCreated(
            id=connection.id, status=connection.status.value, authorization=authorization
        )

    async def reauthorize(
        self,
        session: AsyncSession,
        principal: Principal,
        connection_id: uuid.UUID,
        data: ReauthorizationCreate,
        call: BankCall,
    ) -> ConnectionCreated:
        connection = await self._get_locked(session, principal, connection_id)
        if connection.status == ConnectionStatus.revoked:
            raise ConnectionStateConflict("the connection is revoked; create a new one")
        entry = catalogue_entry(call.settings, connection.bank_id)
        redirect_uri = data.redirect_uri or connection.redirect_uri or ""
        check_redirect_uri(call.settings, redirect_uri)
        psu_id = load_secrets(call.settings, connection).psu_id
        method = self._method(
            entry, data.sca_method or SCA_METHODS.get(connection.sca_method or ""), psu_id=psu_id
        )
        require_configured(call.settings, entry)
        await company_service.require_bank_import(session, principal.company_id, call.settings)
        if connection.status == ConnectionStatus.failed:
            connection.status = ConnectionStatus.awaiting_authorization
        authorization = await self._start(session, connection, call, redirect_uri=redirect_uri, method=method)
        return ConnectionCreated(
            id=connection.id, status=connection.status.value, authorization=authorization
        )

    @staticmethod
    def _method(entry: BankEntry, wanted: ScaMethod | None, *, psu_id: str | None) -> ScaMethod:
        if wanted is not None and wanted not in entry.sca_methods:
            raise Unprocessable(
                f"{entry.name} does not offer {wanted} SCA",
                loc=["body", "sca_method"],
                code="sca_method_unsupported",
            )
        method: ScaMethod = wanted or ("redirect" if "redirect" in entry.sca_methods else "decoupled")
        if method == "decoupled" and not psu_id:
            raise Unprocessable(
                "decoupled BankID needs psu_id (the user's personal identity number)",
                loc=["body", "psu_id"],
                code="psu_id_required",
            )
        return method

    async def _start(
        self,
        session: AsyncSession,
        connection: BankConnection,
        call: BankCall,
        *,
        redirect_uri: str,
        method: ScaMethod,
    ) -> RedirectAuthorization | DecoupledAuthorization:
        """Issue a fresh single-use state (older ones are burnt) and start SCA at the bank."""
        state = await issue_state(session, redirect_uri=redirect_uri, **_state_of(connection))
        async with bank_for_user(connection, call) as (adapter, ctx):
            start = await adapter.start_authorization(
                ctx, redirect_uri=redirect_uri, state=state, sca_method=method
            )
        current = load_secrets(call.settings, connection)
        save_secrets(call.settings, connection, current.with_pending(start.credentials))
        connection.sca_method = start.method
        connection.redirect_uri = redirect_uri
        connection.decoupled_polls = 0
        await session.flush()
        if start.method == "decoupled":
            return DecoupledAuthorization(
                autostart_token=start.autostart_token, poll_interval_seconds=start.poll_interval_seconds
            )
        if not start.url:
            raise adapter_problem(AdapterError(connection.bank_id, "no SCA redirect URL"))
        return RedirectAuthorization(url=start.url)

    # ------------------------------------------------------------------ completion

    async def authorize(
        self,
        session: AsyncSession,
        principal: Principal,
        connection_id: uuid.UUID,
        *,
        code: str | None,
        state: str,
        call: BankCall,
    ) -> BankConnection:
        """Complete a redirect SCA with the bank's ``code`` and our ``state``.

        A refusal by the bank is an answer, not an error: the connection comes back ``failed`` (or, for
        a re-authorization, keeps its status) with ``last_error``."""
        connection = await self._get_locked(session, principal, connection_id)
        row = await consume_state(session, state, **_state_of(connection))
        secrets = load_secrets(call.settings, connection)
        if secrets.pending is None or connection.status == ConnectionStatus.revoked:
            raise ConnectionStateConflict("no authorization of this connection is in progress")
        await self._complete(
            session, connection, secrets.pending, call, code=code, redirect_uri=row.redirect_uri
        )
        return connection

    async def _complete(
        self,
        session: AsyncSession,
        connection: BankConnection,
        pending: Credentials,
        call: BankCall,
        *,
        code: str | None,
        redirect_uri: str,
    ) -> None:
        async with bank_for_user(connection, call) as (adapter, ctx):
            await self._finish_authorization(
                session, connection, adapter, ctx, pending, call, code=code, redirect_uri=redirect_uri
            )

    async def _finish_authorization(
        self,
        session: AsyncSession,
        connection: BankConnection,
        adapter: BankAdapter,
        ctx: ConnectionContext,
        pending: Credentials,
        call: BankCall,
        *,
        code: str | None,
        redirect_uri: str | None,
    ) -> None:
        """The bank says the PSU approved (redirect came back, or the decoupled poll finished): exchange
        for the consent/tokens and activate; a refusal at this step fails the connection. Without a
        ``redirect_uri`` there is nothing to exchange: ``pending`` is final (confirmed in the bank's app
        after the redirect)."""
        try:
            credentials = (
                await adapter.complete_authorization(ctx, pending, code=code, redirect_uri=redirect_uri)
                if redirect_uri is not None
                else pending
            )
            await self._activate(session, connection, adapter, ctx, credentials, call)
        except ReauthRequired as exc:
            await self._authorization_failed(session, connection, call.settings, exc.message)
        except AdapterError as exc:
            raise adapter_problem(exc) from exc

    async def _activate(
        self,
        session: AsyncSession,
        connection: BankConnection,
        adapter: BankAdapter,
        ctx: ConnectionContext,
        credentials: Credentials,
        call: BankCall,
    ) -> None:
        """Read the consent's granted validity and the accounts once (user present), then go active and
        re-bind the linked accounts (same resources, new bank ids matched by IBAN/BBAN). A consent this
        one replaces (a re-authorization) is revoked at the bank, best effort, once all is written: a
        bank that refuses leaves it to lapse, and the renewal stands. A connection that replaces another
        takes over its covered accounts and retires it (:mod:`.same_bank`). A consent the PSU still has
        to confirm in the bank's app waits for it (:meth:`_await_confirmation`)."""
        settings = call.settings
        consent = await adapter.get_consent(ctx, credentials)
        entry = get_entry(connection.bank_id)
        window = entry.confirm_in_app_within if entry is not None else None
        if consent.status == ConsentStatus.received and window is not None:
            await self._await_confirmation(session, connection, settings, credentials, window)
            return
        if consent.status != ConsentStatus.valid:
            raise ReauthRequired(connection.bank_id, f"the consent is {consent.status.value} at the bank")
        infos = await adapter.list_accounts(ctx, credentials)
        secrets = load_secrets(settings, connection)
        save_secrets(
            settings, connection, dataclasses.replace(secrets.with_pending(None), credentials=credentials)
        )
        connection.consent_expires_at = consent_end(consent.valid_until)
        connection.consent_reminded_days = None  # a new consent: its reminders are still to come
        connection.available_accounts = [account_json(info) for info in infos]
        connection.status = ConnectionStatus.active
        connection.set_last_error(None)
        connection.authorized_at = utcnow()
        connection.decoupled_polls = 0
        replaced_connection = await take_over(session, connection, infos)
        await self._rebind_accounts(session, connection, infos)
        if replaced_connection is not None:
            await self._retire(
                session, replaced_connection, call, reason=f"replaced by connection {connection.id}"
            )
        await TodoRepository(session).resolve(
            connection.company_id, [TodoType.reauth_required, TodoType.consent_expiring], [str(connection.id)]
        )
        await session.flush()
        log.info("bank_connection.active", connection_id=str(connection.id), accounts=len(infos))
        old_credentials = secrets.credentials
        if old_credentials.consent_id and old_credentials.consent_id != credentials.consent_id:
            with best_effort(connection, "bank_connection.replaced_consent_revoke_failed"):
                await adapter.revoke(ctx, old_credentials)
                log.info("bank_connection.replaced_consent_revoked", connection_id=str(connection.id))

    async def _await_confirmation(
        self,
        session: AsyncSession,
        connection: BankConnection,
        settings: Settings,
        credentials: Credentials,
        window: dt.timedelta,
    ) -> None:
        """The redirect came back, but the PSU confirms the new consent in the bank's app: the connection
        keeps its status, the credentials stay ``pending`` until the bank's window ends (a deadline
        already running is kept), and reads poll the consent like a decoupled login (:meth:`get`)."""
        secrets = load_secrets(settings, connection)
        confirm_by = secrets.confirm_by or utcnow() + window
        save_secrets(settings, connection, secrets.with_pending(credentials, confirm_by=confirm_by))
        await session.flush()
        log.info("bank_connection.awaiting_app_confirmation", connection_id=str(connection.id))

    async def _rebind_accounts(
        self, session: AsyncSession, connection: BankConnection, infos: list[BankAccountInfo]
    ) -> None:
        by_identity = {identity_key(i.iban, i.bban, i.external_id): i for i in infos}
        by_external = {i.external_id: i for i in infos}
        for account in await BankAccountRepository(session).of_connection(
            connection.company_id, connection.id
        ):
            info = by_identity.get(account.identity_key) or by_external.get(account.external_id)
            if info is None:
                continue
            if info.external_id != account.external_id:
                log.info("bank_account.rebound", bank_account_id=str(account.id), bank_id=connection.bank_id)
                account.external_id = info.external_id
            account.iban = info.iban or account.iban
            account.bban = info.bban or account.bban
            account.name = info.name or account.name
            if account.status == AccountStatus.reauth_required:
                account.status = AccountStatus.active
                account.set_last_error(None)  # the login it needed is done

    async def _authorization_failed(
        self,
        session: AsyncSession,
        connection: BankConnection,
        settings: Settings,
        reason: str,
        *,
        code: str = AUTHORIZATION_FAILED,
    ) -> None:
        """The login did not complete: the pending credentials are dropped and ``last_error`` says why
        (``code``); a first login fails the connection, a re-authorization leaves it as it was."""
        secrets = load_secrets(settings, connection)
        save_secrets(settings, connection, secrets.with_pending(None))
        if connection.status == ConnectionStatus.awaiting_authorization:
            connection.status = ConnectionStatus.failed
        now = utcnow()
        connection.set_last_error(LastError(code, f"authorization failed: {reason}", now))
        await OAuthStateRepository(session).invalidate_for_connection(connection.id, now=now)
        await session.flush()
        log.info("bank_connection.authorization_failed", connection_id=str(connection.id), code=code)

    # ------------------------------------------------------------------ reads (polling the bank)

    async def get(
        self, session: AsyncSession, principal: Principal, connection_id: uuid.UUID, call: BankCall
    ) -> BankConnection:
        """The connection; a decoupled SCA in progress, or a consent awaiting its confirmation in the
        bank's app after the redirect, is polled once and advanced."""
        repo = BankConnectionRepository(session)
        connection = await repo.get_scoped(principal, connection_id)
        if connection is None:
            raise ConnectionNotFound()
        secrets = load_secrets(call.settings, connection)
        if (
            (connection.sca_method == "decoupled" or secrets.confirm_by is not None)
            and connection.status != ConnectionStatus.revoked
            and secrets.pending is not None
        ):
            connection = await self._get_locked(session, principal, connection_id)
            await self._poll(session, connection, call)
        return connection

    async def _poll(self, session: AsyncSession, connection: BankConnection, call: BankCall) -> None:
        """One poll, unless the login's time is up: a decoupled one ends with its ``state``, an in-app
        confirmation after the redirect at the bank's deadline (``confirm_by``)."""
        secrets = load_secrets(call.settings, connection)
        pending = secrets.pending
        if pending is None:
            return
        now = utcnow()
        row: OAuthState | None = None
        if secrets.confirm_by is not None:
            what, expired = "the confirmation in the bank's app", secrets.confirm_by <= now
        else:
            row = await OAuthStateRepository(session).latest_for_connection(
                connection.company_id, connection.id
            )
            what = "the BankID login"
            expired = row is None or row.used_at is not None or row.expires_at <= now
        if expired or connection.decoupled_polls >= MAX_DECOUPLED_POLLS:
            await self._authorization_failed(
                session, connection, call.settings, f"{what} timed out", code=AUTHORIZATION_TIMED_OUT
            )
            return
        connection.decoupled_polls += 1
        async with bank_for_user(connection, call) as (adapter, ctx):
            await self._poll_once(session, connection, call, adapter, ctx, secrets, pending, row, now)

    async def _poll_once(
        self,
        session: AsyncSession,
        connection: BankConnection,
        call: BankCall,
        adapter: BankAdapter,
        ctx: ConnectionContext,
        secrets: ConnectionSecrets,
        pending: Credentials,
        row: OAuthState | None,
        now: dt.datetime,
    ) -> None:
        """Ask the bank once; ``row`` is the decoupled login's state (None: confirmed in the app after the
        redirect, the credentials are final and there is nothing to exchange)."""
        try:
            status = await adapter.get_authorization_status(ctx, pending)
        except ReauthRequired as exc:
            await self._authorization_failed(session, connection, call.settings, exc.message)
            return
        except AdapterError as exc:
            # a read must not fail because one poll did: report it and poll again on the next read
            log.warning(
                "bank_connection.poll_failed", connection_id=str(connection.id), error=type(exc).__name__
            )
            await session.flush()
            return
        if status.status == "pending":
            save_secrets(call.settings, connection, dataclasses.replace(secrets, pending=status.credentials))
            await session.flush()
            return
        if status.status == "failed":
            await self._authorization_failed(
                session, connection, call.settings, status.message or "the login was not approved"
            )
            return
        if row is not None:
            row.used_at = now
        await self._finish_authorization(
            session,
            connection,
            adapter,
            ctx,
            status.credentials,
            call,
            code=None,
            redirect_uri=row.redirect_uri if row is not None else None,
        )

    async def list_page(
        self, session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
    ) -> tuple[list[BankConnection], str | None]:
        after = CONNECTIONS_KEYSET.decode(cursor)
        rows = await BankConnectionRepository(session).list_page(principal, limit=limit, after=after)
        return CONNECTIONS_KEYSET.cut(rows, limit, lambda c: (c.created_at, c.id))

    async def available_accounts(
        self, session: AsyncSession, principal: Principal, connection_id: uuid.UUID
    ) -> list[AvailableAccount]:
        connection = await BankConnectionRepository(session).get_scoped(principal, connection_id)
        if connection is None:
            raise ConnectionNotFound()
        if connection.status != ConnectionStatus.active:
            raise ConnectionNotActive(f"the connection is {connection.status.value}; authorize it first")
        linked = {
            a.external_id: a.id
            for a in await BankAccountRepository(session).of_connection(principal, connection.id)
        }
        return [available_account(raw, linked.get(raw["external_id"])) for raw in available_of(connection)]

    # ------------------------------------------------------------------ revoke

    async def delete(
        self, session: AsyncSession, principal: Principal, connection_id: uuid.UUID, call: BankCall
    ) -> None:
        """Revoke at the bank (best effort), stop every linked account; imported transactions stay."""
        connection = await self._get_locked(session, principal, connection_id)
        if connection.status == ConnectionStatus.revoked:
            return
        await self._retire(session, connection, call, reason=None)

    async def _retire(
        self, session: AsyncSession, connection: BankConnection, call: BankCall, *, reason: str | None
    ) -> None:
        """Revoke at the bank (best effort), stop every linked account still on the connection; the
        connection keeps ``reason`` as its ``last_error`` (a replaced connection names its successor)."""
        secrets = load_secrets(call.settings, connection)
        credentials = secrets.credentials
        if credentials.consent_id or credentials.access_token or credentials.extra:
            await self._revoke_at_bank(connection, credentials, call)
        connection.status = ConnectionStatus.revoked
        connection.secrets = None  # nothing left to use: drop the tokens
        connection.set_last_error(LastError("connection_replaced", reason, utcnow()) if reason else None)
        company = connection.company_id
        accounts = BankAccountRepository(session)
        linked = [str(a.id) for a in await accounts.of_connection(company, connection.id)]
        await accounts.set_status_for_connection(company, connection.id, to=AccountStatus.disconnected)
        await OAuthStateRepository(session).invalidate_for_connection(connection.id, now=utcnow())
        # nothing left for the user to do about this connection or its accounts
        todos = TodoRepository(session)
        await todos.resolve(
            connection.company_id, [TodoType.reauth_required, TodoType.consent_expiring], [str(connection.id)]
        )
        await todos.resolve(connection.company_id, TodoType.sync_failed, linked)
        await session.flush()
        log.info("bank_connection.revoked", connection_id=str(connection.id), bank_id=connection.bank_id)

    async def _revoke_at_bank(
        self, connection: BankConnection, credentials: Credentials, call: BankCall
    ) -> None:
        with best_effort(connection, "bank_connection.revoke_failed"):
            async with open_bank(connection, call) as (adapter, ctx):
                await adapter.revoke(ctx, credentials)

    async def _get_locked(
        self, session: AsyncSession, principal: Principal, connection_id: uuid.UUID
    ) -> BankConnection:
        connection = await BankConnectionRepository(session).get_for_update(principal, connection_id)
        if connection is None:
            raise ConnectionNotFound()
        return connection


connections = ConnectionService()
