"""The load test's clients, in a process of their own so that what they measure is the API's latency,
not this test process's event loop (which also serves the sandbox bank to the syncing worker).

``python -m tests.resilience.load_client URL OUT --clients N --seconds S``; the callers' tokens come in
``LOAD_TOKENS`` (comma-separated; client n uses token n mod len). Each client loops over the main read
endpoints at random, one request in flight on its own keep-alive connection. Writes JSON to OUT:
``{"latencies": {path: [seconds, ...]}, "outcomes": {"200": n, "error:TimeoutError": m, ...}}``.

The requests are written and read as bare HTTP/1.1 on asyncio streams (``bench.loadgen``), not through
httpx: against a Starlette route that sleeps 20 ms per request (200 connections, 15 s), one httpx client
with 200 connections measured 128 req/s and a p99 of 6.9 s (its own connection pool was the bottleneck),
bare streams 5,108 req/s and 111 ms."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from bench.loadgen import read_response

PATHS = ["/v1/transactions", "/v1/bank-accounts", "/v1/todos", "/v1/company"]
PAGED = {"/v1/transactions", "/v1/bank-accounts"}
TIMEOUT_SECONDS = 30.0


def _request(host: str, path: str, token: str) -> bytes:
    target = f"{path}?limit=50" if path in PAGED else path
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {token}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def run(api_url: str, tokens: list[str], clients: int, seconds: float) -> dict[str, object]:
    url = urlsplit(api_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    latencies: dict[str, list[float]] = {p: [] for p in PATHS}
    outcomes: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        rng = random.Random(n)
        requests = {p: _request(url.netloc, p, tokens[n % len(tokens)]) for p in PATHS}
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.perf_counter() < deadline:
            path = rng.choice(PATHS)
            started = time.perf_counter()
            try:
                if connection is None:
                    connection = await asyncio.open_connection(host, port)
                reader, writer = connection
                writer.write(requests[path])
                status = await asyncio.wait_for(read_response(reader), TIMEOUT_SECONDS)
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                outcomes[f"error:{type(exc).__name__}"] += 1
                if connection is not None:
                    connection[1].close()
                connection = None
                continue
            latencies[path].append(time.perf_counter() - started)
            outcomes[str(status)] += 1
        if connection is not None:
            connection[1].close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return {"latencies": latencies, "outcomes": dict(outcomes)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("api_url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    tokens = [t for t in os.environ["LOAD_TOKENS"].split(",") if t]
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency of the worker
        pass
    result = asyncio.run(run(args.api_url, tokens, args.clients, args.seconds))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
