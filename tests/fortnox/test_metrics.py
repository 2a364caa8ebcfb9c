"""The Fortnox figures on /metrics: calls by resource and status, and the 429s among them (token
refreshes by outcome: test_token_refresh)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from ledgerlink.fortnox.client import FortnoxClient
from ledgerlink.sandbox.fortnox import SandboxFortnox


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_calls_and_429s_are_counted_by_resource(client: FortnoxClient, sandbox: SandboxFortnox) -> None:
    calls = {"resource": "/3/financialyears", "method": "GET", "status": "200"}
    limited = {"resource": "/3/financialyears", "method": "GET", "status": "429"}
    before_ok, before_429 = (
        sample("ledgerlink_fortnox_requests_total", **calls),
        sample("ledgerlink_fortnox_requests_total", **limited),
    )
    before_rl = sample("ledgerlink_fortnox_rate_limited_total", resource="/3/financialyears")
    sandbox.faults.fail_next("/3/financialyears", 2, status=429)

    await client.financial_years()

    assert sample("ledgerlink_fortnox_requests_total", **calls) == before_ok + 1
    assert sample("ledgerlink_fortnox_requests_total", **limited) == before_429 + 2
    assert sample("ledgerlink_fortnox_rate_limited_total", resource="/3/financialyears") == before_rl + 2
