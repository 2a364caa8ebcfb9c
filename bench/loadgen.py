"""A small closed-loop HTTP/1.1 load generator (keep-alive, one request in flight per connection),
run in its own process: ``python -m bench.loadgen --port P --path /x --connections 32 --duration 5``.

Used when ``wrk`` is not installed (it needs nothing beyond the standard library and uvloop when
present). Prints one JSON object: requests, errors, non-2xx, requests/s, p50/p99 latency in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked body) off a keep-alive connection; its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value)
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _connection(
    host: str,
    port: int,
    request: bytes,
    start: float,
    measure_from: float,
    stop: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            sent = time.perf_counter()
            if sent >= stop:
                return
            writer.write(request)
            status = await read_response(reader)
            done = time.perf_counter()
            if sent >= measure_from:
                latencies.append(done - sent)
                counts["ok" if 200 <= status < 300 else "non2xx"] += 1
    except (ConnectionError, asyncio.IncompleteReadError):
        counts["errors"] += 1
    finally:
        writer.close()


async def run(
    host: str, port: int, path: str, headers: list[str], connections: int, duration: float, warmup: float
) -> dict[str, float]:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive", *headers]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    counts = {"ok": 0, "non2xx": 0, "errors": 0}
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + duration
    await asyncio.gather(
        *(
            _connection(host, port, request, start, measure_from, stop, latencies, counts)
            for _ in range(connections)
        )
    )
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return round(latencies[min(n - 1, int(p * n))] * 1000, 2) if n else 0.0

    return {
        "connections": connections,
        "duration_s": duration,
        "requests": n,
        "ok": counts["ok"],
        "non2xx": counts["non2xx"],
        "errors": counts["errors"],
        "requests_per_s": round(n / duration, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        pass
    result = asyncio.run(
        run(args.host, args.port, args.path, args.header, args.connections, args.duration, args.warmup)
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
