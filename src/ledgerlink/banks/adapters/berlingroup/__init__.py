"""Berlin Group NextGenPSD2 XS2A: the shared adapter every BG-style bank module subclasses.

Flow (docs/banks.md, "Berlin Group"): ``POST /v1/consents`` (``recurringIndicator``, ``validUntil`` =
today + the catalogue's ``consent_max_days``, ``frequencyPerDay: 4``, bank-offered access) → redirect SCA
(``_links.scaRedirect``; ``TPP-Redirect-URI`` carries our ``state``) or decoupled SCA
(``POST .../authorisations`` with ``PSU-ID``, autostart token from ``challengeData``/the bank's field,
then poll ``scaStatus``) → ``GET /v1/consents/{id}`` for the granted status and ``validUntil`` →
AIS reads → ``DELETE /v1/consents/{id}``.

Override hooks (a bank module overrides only what differs; everything is a method or class attribute
on :class:`BerlinGroupAdapter`, or on its parser, :class:`BerlinGroupParser` in :mod:`.parsing`):

=============================  ======================================================================
what                           hook
=============================  ======================================================================
paths                          ``consents_path``, ``accounts_path`` (class attrs) or the methods
                               ``consents_url()``, ``consent_url(id)``, ``authorisations_url(id)``,
                               ``authorisation_url(id, auth_id)``, ``accounts_url()``,
                               ``transactions_url(account_id)``, ``balances_url(account_id)``;
                               ``resolve_link(href)`` turns a ``_links`` href into a client URL
headers                        ``request_id_header`` (class attr), ``base_headers(ctx, creds)`` (every
                               call: request id, ``Authorization: Bearer`` when the credentials hold a
                               token, ``PSU-IP-Address`` only when ``ctx.user_present``,
                               ``PSU-Corporate-ID``), ``ais_headers`` (+ ``Consent-ID``),
                               ``psu_headers`` (``PSU-ID`` [+ ``psu_id_type``]), ``consent_headers``
consent body                   ``consent_access_mode`` (``bank_offered``/``all_accounts``),
                               ``consent_access(ctx)``, ``consent_body(ctx)``, ``consent_valid_until()``,
                               ``frequency_per_day``, ``today()``
SCA                            ``default_sca_method()``, ``start_redirect(...)``, ``start_decoupled(...)``,
                               ``start_oauth_redirect(...)`` (redirect-only OAuth banks),
                               ``complete_authorization`` (OAuth banks exchange the code here, see
                               :mod:`.oauth`),
                               ``get_authorization_status``
consent read-back              parser ``consent(body)``
accounts / balances            ``accounts_params()``; parser ``accounts(body)``, ``account(raw, where)``,
                               ``balance(body)``, ``pick_balance(balances, where)``
transactions                   ``transactions_params(date_from, date_to)``, ``online_max_days`` (an
                               older ``dateFrom`` is PeriodInvalid before any call); parser
                               ``report_of(body)``, ``transactions_page(body, page)``; a bank's
                               ``map_error_response`` may raise ``http.EmptyWindow`` (no rows)
pagination                     ``next_page(body, url, params, page) -> (url, params) | None``
                               (default: ``transactions._links.next.href`` until absent; the shared
                               page loop in :class:`~ledgerlink.banks.adapters.http.HttpAdapter` refuses
                               a page that links back and more than ``max_pages`` pages)
no consent resource            :class:`TokenAccessAdapter` (ICA Banken, Skandia): the OAuth token is the
                               access, redirect SCA only
normalisation                  ``parser_class`` (a :class:`BerlinGroupParser` subclass, pure, no I/O):
                               ``normalise_transaction(raw, status, where)``, ``transaction_dates``,
                               ``provider_id``, ``counterparty``, ``description``, ``reference``
signing                        ``signature_profile`` (default: the Berlin Group way, used only when a
                               QSealC is configured; see :mod:`ledgerlink.banks.adapters.signing`)
error mapping                  ``map_error_response(response)`` (``tppMessages`` → error family; see
                               :mod:`.errors`); call ``super()`` to keep the BG codes
=============================  ======================================================================

Normalisation rules: see :mod:`.parsing`.

Error choices: ``PERIOD_INVALID`` → :class:`PeriodInvalid` (an ``InvalidResponse`` with
``max_days=89``; the sync engine re-asks with a shorter window, the adapter never retries);
``RESOURCE_UNKNOWN`` on 403/404 → :class:`ResourceUnknown` (an ``InvalidResponse``: account gone).
"""

from ledgerlink.banks.adapters.berlingroup.adapter import BerlinGroupAdapter, NextPage, TokenAccessAdapter
from ledgerlink.banks.adapters.berlingroup.errors import (
    PeriodInvalid,
    ResourceUnknown,
    TppMessage,
    tpp_messages,
)
from ledgerlink.banks.adapters.berlingroup.oauth import credentials_from_token, pkce_pair, with_query
from ledgerlink.banks.adapters.berlingroup.parsing import BerlinGroupParser

__all__ = [
    "BerlinGroupAdapter",
    "BerlinGroupParser",
    "NextPage",
    "PeriodInvalid",
    "ResourceUnknown",
    "TokenAccessAdapter",
    "TppMessage",
    "credentials_from_token",
    "pkce_pair",
    "tpp_messages",
    "with_query",
]
