"""Fortnox API v3 client, OAuth2 helper, typed resources and year-end open items.

Import from here: ``from ledgerlink.fortnox.client import FortnoxClient, FortnoxOAuth, TokenSet``; the
typed resources are every name of :mod:`ledgerlink.fortnox.client.models`.
"""

from ledgerlink.fortnox.client.api import PAGE_LIMIT as PAGE_LIMIT
from ledgerlink.fortnox.client.api import FortnoxClient as FortnoxClient
from ledgerlink.fortnox.client.api import dumps_json as dumps_json
from ledgerlink.fortnox.client.api import loads_json as loads_json
from ledgerlink.fortnox.client.models import *  # noqa: F403  (the typed resources: models.__all__)
from ledgerlink.fortnox.client.oauth import FortnoxOAuth as FortnoxOAuth
from ledgerlink.fortnox.client.oauth import InMemoryTokenProvider as InMemoryTokenProvider
from ledgerlink.fortnox.client.oauth import TokenProvider as TokenProvider
from ledgerlink.fortnox.client.oauth import TokenSet as TokenSet
from ledgerlink.fortnox.client.open_items import OpenItem as OpenItem
from ledgerlink.fortnox.client.open_items import open_items_at as open_items_at
from ledgerlink.fortnox.client.open_items import total_open as total_open
