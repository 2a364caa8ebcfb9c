"""The one rule for the user's address (``ledgerlink.client_address``): the socket peer unless it is a
trusted proxy; then X-Forwarded-For from the right, skipping trusted proxies; nothing guessed."""

from __future__ import annotations

import ipaddress

import pytest

from ledgerlink.client_address import Network, parse_address, resolve_client_address
from ledgerlink.config import Settings

PROXIES: list[Network] = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:aa::/48")]


def test_without_trusted_proxies_the_peer_is_the_address_and_the_header_is_ignored() -> None:
    assert resolve_client_address("192.0.2.5", ["198.51.100.7"], []) == "192.0.2.5"
    assert resolve_client_address("10.0.0.1", ["198.51.100.7"], []) == "10.0.0.1"


def test_a_forwarded_header_from_an_untrusted_peer_is_ignored() -> None:
    assert resolve_client_address("192.0.2.5", ["198.51.100.7"], PROXIES) == "192.0.2.5"


def test_behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_user() -> None:
    # the user wrote 203.0.113.66 themselves; our proxies appended the user's real address and each other
    hops = ["203.0.113.66, 198.51.100.7", "10.1.1.1"]
    assert resolve_client_address("10.9.9.9", hops, PROXIES) == "198.51.100.7"


def test_a_user_inside_the_trusted_network_is_the_leftmost_hop() -> None:
    assert resolve_client_address("10.9.9.9", ["10.3.3.3, 10.1.1.1"], PROXIES) == "10.3.3.3"


def test_a_trusted_peer_without_the_header_is_itself_the_address() -> None:
    assert resolve_client_address("10.9.9.9", [], PROXIES) == "10.9.9.9"


@pytest.mark.parametrize(
    ("hops", "expected"),
    [
        (["198.51.100.7:5123"], "198.51.100.7"),  # a port, as some load balancers write it
        (["[2001:db8::7]:443"], "2001:db8::7"),
        (["2001:db8::7"], "2001:db8::7"),
        (["::ffff:198.51.100.7"], "198.51.100.7"),  # IPv4-mapped
        (["unknown"], None),  # never guessed
        (["198.51.100.7, _hidden"], None),
        (["198.51.100.7, " * 40 + "198.51.100.8"], None),  # no real chain is this long
    ],
)
def test_what_proxies_write_is_read_and_nothing_else(hops: list[str], expected: str | None) -> None:
    assert resolve_client_address("10.9.9.9", hops, PROXIES) == expected


def test_a_peer_that_is_not_an_address_gives_none() -> None:
    assert resolve_client_address("testclient", ["198.51.100.7"], PROXIES) is None
    assert resolve_client_address(None, [], PROXIES) is None
    assert parse_address("2001:db8:aa::1") in PROXIES[1]


def test_the_setting_takes_a_comma_separated_list_of_networks_and_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGERLINK_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1 ,2001:db8::/32")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"]
    monkeypatch.setenv("LEDGERLINK_TRUSTED_PROXIES", "")
    assert Settings(_env_file=None).trusted_proxies == []  # type: ignore[call-arg]
