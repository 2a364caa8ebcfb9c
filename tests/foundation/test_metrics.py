"""/metrics: HTTP figures labelled by the full route template (``/v1`` kept), without the sandboxes or the
docs pages, every name prefixed ``ledgerlink_``."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ledgerlink.config import Settings

REQUESTS = "ledgerlink_http_requests_total"


async def _samples(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _requests(handler: str, status: str, method: str = "GET") -> tuple[str, tuple[tuple[str, str], ...]]:
    return (REQUESTS, (("handler", handler), ("method", method), ("status", status)))


async def test_requests_are_counted_by_full_route_template_and_exact_status(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    before = await _samples(client)
    assert (await client.get("/v1/company")).status_code == 401
    for _ in range(2):
        assert (await client.get("/v1/company", headers=auth_headers)).status_code == 200
    missing = "/v1/bank-accounts/00000000-0000-4000-8000-00000000abcd"
    assert (await client.get(missing, headers=auth_headers)).status_code == 404
    after = await _samples(client)

    def delta(key: tuple[str, tuple[tuple[str, str], ...]]) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta(_requests("/v1/company", "401")) == 1
    assert delta(_requests("/v1/company", "200")) == 2
    assert delta(_requests("/v1/bank-accounts/{bank_account_id}", "404")) == 1
    latency = (
        "ledgerlink_http_request_duration_seconds_count",
        (("handler", "/v1/company"), ("method", "GET")),
    )
    assert delta(latency) == 3


async def test_unmatched_paths_share_one_label_and_sandbox_and_docs_are_not_counted(
    client: httpx.AsyncClient,
) -> None:
    before = await _samples(client)
    for i in range(3):
        assert (await client.get(f"/no/such/path/{i}")).status_code == 404
    assert (
        await client.get("/sandbox/bank/v1/accounts")
    ).status_code == 400  # no X-Request-ID: the bank refuses
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/docs-assets/swagger-ui.css")).status_code == 200
    after = await _samples(client)

    assert after.get(_requests("none", "404"), 0.0) - before.get(_requests("none", "404"), 0.0) == 3
    handlers = {dict(labels).get("handler", "") for name, labels in after if name == REQUESTS}
    assert not [h for h in handlers if h.startswith(("/sandbox", "/docs", "/redoc", "/no/such"))], handlers


async def test_a_refused_oversized_body_is_counted_under_its_route(
    client: httpx.AsyncClient, auth_headers: dict[str, str], settings: Settings
) -> None:
    before = await _samples(client)
    big = b"x" * (settings.limits.max_body_bytes + 1)
    response = await client.post(
        "/v1/bank-connections", content=big, headers={**auth_headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    after = await _samples(client)
    key = _requests("/v1/bank-connections", "413", method="POST")
    assert after.get(key, 0.0) - before.get(key, 0.0) == 1


async def test_every_http_metric_is_prefixed_ledgerlink(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    names = {name for name, _ in await _samples(client)}
    http = {name for name in names if "http" in name}
    assert http and all(name.startswith("ledgerlink_") for name in http), http
