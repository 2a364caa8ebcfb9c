"""The load test's clients, in a process of their own so that what they measure is the API's latency,
not this test process's event loop (which also serves the sandbox bank to the syncing worker).

``python -m tests.resilience.load_client URL OUT --clients N --seconds S``; the callers' tokens come in
``LOAD_TOKENS`` (comma-separated; client n uses token n mod len). Each client loops over the main read
endpoints at random, one request in flight, on a shared keep-alive pool. Writes JSON to OUT:
``{"latencies": {path: [seconds, ...]}, "outcomes": {"200": n, "error:ReadTimeout": m, ...}}``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import httpx

PATHS = ["/v1/transactions", "/v1/bank-accounts", "/v1/todos", "/v1/company"]
PAGED = {"/v1/transactions", "/v1/bank-accounts"}


async def run(api_url: str, tokens: list[str], clients: int, seconds: float) -> dict[str, object]:
    latencies: dict[str, list[float]] = {p: [] for p in PATHS}
    outcomes: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds

    async def client(n: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(n)
        headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}"}
        while time.perf_counter() < deadline:
            path = rng.choice(PATHS)
            started = time.perf_counter()
            try:
                response = await http.get(
                    path, headers=headers, params={"limit": 50} if path in PAGED else None
                )
            except httpx.HTTPError as exc:
                outcomes[f"error:{type(exc).__name__}"] += 1
                continue
            latencies[path].append(time.perf_counter() - started)
            outcomes[str(response.status_code)] += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=30.0) as http:
        await asyncio.gather(*(client(n, http) for n in range(clients)))
    return {"latencies": latencies, "outcomes": dict(outcomes)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("api_url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    tokens = [t for t in os.environ["LOAD_TOKENS"].split(",") if t]
    result = asyncio.run(run(args.api_url, tokens, args.clients, args.seconds))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
