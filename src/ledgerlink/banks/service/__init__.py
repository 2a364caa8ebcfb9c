"""The banks feature's services: catalogue, connections (consent + SCA), linked accounts and mapping.

The connection helpers in :mod:`.common` are shared with the sync engine and re-exported here.
"""

from ledgerlink.banks.service.common import (
    REAUTH_EVENT,
    ConnectionSecrets,
    build_adapter,
    connection_context,
    load_credentials,
    load_secrets,
    mark_reauth_required,
    save_secrets,
    store_credentials,
)

__all__ = [
    "REAUTH_EVENT",
    "ConnectionSecrets",
    "build_adapter",
    "connection_context",
    "load_credentials",
    "load_secrets",
    "mark_reauth_required",
    "save_secrets",
    "store_credentials",
]
