"""The sandbox bank's adapter: the plain Berlin Group adapter pointed at our own sandbox server.

The base URL comes from ``LEDGERLINK_BANKS__SANDBOX__BASE_URL`` (default in the registry:
``http://127.0.0.1:8000/sandbox/bank``, where ``make run`` mounts :mod:`ledgerlink.sandbox.bank`).
Nothing is overridden: the sandbox speaks the spec, so it exercises exactly the shared code path.
"""

from __future__ import annotations

from ledgerlink.banks.adapters.berlingroup import BerlinGroupAdapter


class SandboxAdapter(BerlinGroupAdapter):
    """Berlin Group NextGenPSD2 against the sandbox bank."""


__all__ = ["SandboxAdapter"]
