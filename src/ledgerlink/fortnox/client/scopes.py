"""Which Fortnox scope each API v3 resource needs, and so which scopes a connection must ask for.

Fortnox refuses a call whose resource's scope the access token lacks (``2000663``), and every scope
grants read and write. The client calls nothing outside :data:`ENDPOINT_SCOPES` (it refuses to), and
the authorization asks for :func:`requested_scopes`, so the two cannot drift apart.

Resource to scope, from Fortnox's scope table: accounts, financial years, vouchers, voucher series and
(inferred, not in the table) the SIE export -> ``bookkeeping``; company information ->
``companyinformation``; locked period -> ``settings``; invoices -> ``invoice``; supplier invoices ->
``supplierinvoice``; invoice and supplier invoice payments -> ``payment``.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledgerlink.fortnox.errors import FortnoxError

ENDPOINT_SCOPES: dict[str, str] = {
    "/3/companyinformation": "companyinformation",
    "/3/financialyears": "bookkeeping",
    "/3/accounts": "bookkeeping",
    "/3/voucherseries": "bookkeeping",
    "/3/vouchers": "bookkeeping",
    "/3/sie": "bookkeeping",
    "/3/settings/lockedperiod": "settings",
    "/3/invoices": "invoice",
    "/3/invoicepayments": "payment",
    "/3/supplierinvoices": "supplierinvoice",
    "/3/supplierinvoicepayments": "payment",
}
"""The resource (a path's first segments below ``/3``) -> the scope Fortnox requires for it."""

REQUIRED_SCOPES: frozenset[str] = frozenset(ENDPOINT_SCOPES.values())


def resource_of(path: str) -> str | None:
    """The declared resource ``path`` belongs to (``/3/vouchers/A/1`` -> ``/3/vouchers``), or None."""
    for resource in ENDPOINT_SCOPES:
        if path == resource or path.startswith(resource + "/"):
            return resource
    return None


def scope_for(path: str) -> str:
    """The scope ``path`` needs; :class:`FortnoxError` for a resource the client does not declare."""
    resource = resource_of(path)
    if resource is None:
        raise FortnoxError(f"no scope is declared for {path.split('?')[0]!r}", endpoint=path)
    return ENDPOINT_SCOPES[resource]


def requested_scopes(extra: str | Iterable[str] = ()) -> str:
    """Every scope the client needs plus ``extra`` (the ``fortnox.scopes`` setting), space-separated."""
    words = extra.split() if isinstance(extra, str) else list(extra)
    return " ".join(sorted(REQUIRED_SCOPES | set(words)))


__all__ = ["ENDPOINT_SCOPES", "REQUIRED_SCOPES", "requested_scopes", "resource_of", "scope_for"]
