"""Resilience suite wiring: every test here carries the ``resilience`` marker; ``LEDGERLINK_SOAK=full``
switches the soak and load tests to full size (``make soak``); and no test resolves a hostname through
the system resolver (which is not on loopback): only IP literals and ``localhost`` resolve, plus the
names a test maps explicitly with :func:`fake_dns`."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

FULL = os.environ.get("LEDGERLINK_SOAK", "").strip().lower() == "full"
OUTPUT_DIR = Path(os.environ.get("LEDGERLINK_RESILIENCE_OUTPUT", "/tmp/ledgerlink-resilience"))

_real_getaddrinfo = socket.getaddrinfo
#: hostname -> address, for tests that need a name resolving somewhere (never contacted).
FAKE_DNS: dict[str, str] = {}


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or name == "localhost":
        return _real_getaddrinfo(host, port, *args, **kwargs)
    if isinstance(name, str) and name.casefold() in FAKE_DNS:
        return _real_getaddrinfo(FAKE_DNS[name.casefold()], port, *args, **kwargs)
    try:
        ipaddress.ip_address(name)
    except ValueError:
        raise socket.gaierror(socket.EAI_NONAME, f"resilience suite: no DNS for {name!r}") from None
    return _real_getaddrinfo(host, port, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    FAKE_DNS.clear()
    yield FAKE_DNS
    FAKE_DNS.clear()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.resilience)


class RefusingTransport(httpx.AsyncBaseTransport):
    """For every bank without a sandbox: answers 503 without any connection."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"tppMessages": [{"code": "SERVICE_UNAVAILABLE"}]})


class AllBanks(dict[str, Any]):
    """A transports map in which every bank id has a transport (the fallback refuses), so no adapter
    ever opens a connection to a real bank."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        found = super().get(key)
        return found if found is not None else RefusingTransport()
