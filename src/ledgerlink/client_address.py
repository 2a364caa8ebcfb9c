"""The user's IP address, resolved in one place from the proxies the deployment trusts.

Banks want the user's address on every call the user makes in person (Berlin Group ``PSU-IP-Address``,
Nordea's ``X-Nordea-Originating-User-Ip``, OBIE's ``x-fapi-customer-ip-address``): it marks the call as
attended, outside the four unattended reads a day (RTS art. 36(5)). It must be the user's real address,
so the rule is strict:

- the socket peer is the address, unless the peer lies in ``LEDGERLINK_TRUSTED_PROXIES``;
- from a trusted peer, ``X-Forwarded-For`` is read from the right (the hop our proxy appended) to the
  left, skipping trusted proxies: the first address not in the list is the user's (every hop left of it
  could have been written by the user, so it is never believed); when every hop is a trusted proxy, the
  leftmost is;
- a forwarded header from any other peer is ignored (anyone can send one);
- an entry that is not an IP address ends the walk with no address at all: nothing is ever guessed.

``uvicorn --proxy-headers`` is off in ``ledgerlink api`` (its default trusts 127.0.0.1 and rewrites the
peer before the app sees it): this module is the one place, and it works the same under any server and
in the tests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from starlette.requests import HTTPConnection

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

#: More hops than this in X-Forwarded-For: the header is not believed (no real chain is this long).
MAX_HOPS = 32


def parse_address(value: str) -> Address | None:
    """``value`` as an IP address (an IPv4-mapped IPv6 address as its IPv4 form), else None. Accepts
    what proxies write: a bare address, ``192.0.2.4:port`` and ``[v6]`` / ``[v6]:port``."""
    text = value.strip().strip('"')
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port (an IPv6 address has at least two colons)
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def resolve_client_address(
    peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]
) -> str | None:
    """The user's address from the socket ``peer``, the ``X-Forwarded-For`` header values (in the order
    received) and the trusted ``proxies``; None when it cannot be known."""
    if peer is None:
        return None
    address = parse_address(peer)
    if address is None:
        return None
    if not _trusted(address, proxies):
        return str(address)
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    if len(hops) > MAX_HOPS:
        return None
    for hop in reversed(hops):
        hop_address = parse_address(hop)
        if hop_address is None:
            return None
        address = hop_address
        if not _trusted(address, proxies):
            break
    return str(address)


def client_address(connection: HTTPConnection) -> str | None:
    """The address of the user behind this request (see the module docstring); None when unknown."""
    proxies: Sequence[Network] = connection.app.state.settings.trusted_proxies
    peer = connection.client.host if connection.client else None
    return resolve_client_address(peer, connection.headers.getlist("x-forwarded-for"), proxies)
