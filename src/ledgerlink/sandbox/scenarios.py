"""The scripted scenarios of the sandboxes, as data: the bank's docstring, its SCA page, the Fortnox
authorize page and the callback page all list them from here."""

from __future__ import annotations

import html

BANK_SCENARIOS: dict[str, str] = {
    "expired": "the consent is granted already expired: status expired, every AIS call 401 CONSENT_EXPIRED",
    "ratelimited": "balances and transactions answer 429 ACCESS_EXCEEDED with Retry-After: 3600 "
    "(the account list still works, so onboarding is possible)",
    "flaky": "every second AIS call of a consent answers 503",
    "outage": "balances and transactions answer 503 SERVICE_UNAVAILABLE, the bank down for maintenance "
    "(the account list still works, so onboarding is possible)",
    "slow": "each AIS call takes slow_seconds longer (default 3 s)",
    "malformed": "the first transactions page carries a row with an unparseable amount and one with an "
    "unparseable booking date",
    "vanishing": "a fourth account gone-... is listed by the first account listing only; its transactions "
    "and balances answer 404 RESOURCE_UNKNOWN",
    "noids": "rows carry no transactionId/entryReference (Handelsbanken-style)",
    "rejected": "the PSU refuses SCA: decoupled ends failed; the consent becomes rejected",
    "dropped": "the feed leaves out one booked row a month and gives balances after each row; "
    "GET /sandbox/bank/statements/{account}?format=camt053|csv_swedbank has the full statement",
}
"""PSU id (the part before the first ``-``, so ``flaky-2`` is a second flaky PSU) -> what happens.
Any other PSU id is a normal PSU with a business, a private and a savings account."""

BANK_SHORTCUTS: dict[str, str] = {
    "approve=1": "on the SCA page URL: approve at once (302 to the redirect URI with code)",
    "deny=1": "on the SCA page URL: decline at once (302 with error=access_denied)",
    "psu=<id>": "on the SCA page URL: act as that PSU (pick a scenario above)",
}

FORTNOX_SHORTCUTS: dict[str, str] = {
    "approve=1": "on the authorize URL: approve at once (302 to the redirect URI with code and state)",
    "deny=1": "on the authorize URL: decline at once (302 with error=access_denied and state)",
}


def html_list(items: dict[str, str]) -> str:
    """A ``<dl>`` of ``items`` (names in ``<code>``), escaped."""
    rows = "".join(
        f"<dt><code>{html.escape(name)}</code></dt><dd>{html.escape(text)}</dd>"
        for name, text in items.items()
    )
    return f"<dl>{rows}</dl>"


def bank_scenarios_html() -> str:
    return (
        "<h2>Sandbox scenarios</h2><p>PSU ids (the part before the first <code>-</code> counts):</p>"
        + html_list(BANK_SCENARIOS)
        + "<p>Shortcuts:</p>"
        + html_list(BANK_SHORTCUTS)
    )


def fortnox_shortcuts_html() -> str:
    return "<h2>Sandbox shortcuts</h2>" + html_list(FORTNOX_SHORTCUTS)


__all__ = [
    "BANK_SCENARIOS",
    "BANK_SHORTCUTS",
    "FORTNOX_SHORTCUTS",
    "bank_scenarios_html",
    "fortnox_shortcuts_html",
    "html_list",
]
