"""SIE: the reader's throughput against a bare line split, and peak memory.

Generates SIE 4E files of the given sizes (MB) in a temporary directory, then measures
- the reader's throughput (iterate over every voucher) next to reading the same file in binary,
  decoding each line from CP437 and splitting it on whitespace (the floor any reader pays),
  as the median of ``--runs`` runs;
- the peak resident memory of a fresh process that streams the file, per size, to show that memory
  stays flat as the file grows.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import log
from ledgerlink.sie import SieReader

MB = 1 << 20

_MEMORY_PROBE = """
import sys
from ledgerlink.sie import SieReader

def high_water_kib():  # VmHWM: this process's own peak (ru_maxrss would include the parent's at fork)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

baseline = high_water_kib()
count = 0
with SieReader(sys.argv[1]) as reader:
    for _ in reader:
        count += 1
print(baseline, high_water_kib(), count)
"""

_TEXTS = [
    "Kassa",
    "Fika",
    "Hyra januari",
    'Faktura 1234 "Kontorsmaterial"',
    "Lön",
    "Inköp av varor",
    "Bankavgift",
]


def generate(path: Path, size_mb: int, seed: int = 6) -> int:
    """Write a SIE 4E file of about ``size_mb`` MB (CP437, CRLF); return the number of vouchers."""
    rng = random.Random(seed)
    accounts = [1510, 1910, 1930, 2440, 2610, 2640, 3010, 3041, 4010, 5010, 6110, 6570, 7010, 7690]
    header = [
        "#FLAGGA 0",
        '#PROGRAM "ledgerlink bench" 1.0',
        "#FORMAT PC8",
        "#GEN 20250101",
        "#SIETYP 4",
        '#FNAMN "Övningsbolaget AB"',
        "#ORGNR 555555-5555",
        "#RAR 0 20240101 20241231",
        "#KPTYP EUBAS97",
        '#DIM 1 "Kostnadsställe"',
        '#DIM 6 "Projekt"',
    ]
    header += [f'#KONTO {number} "Konto {number} åäö"' for number in accounts]
    header += [
        f"#IB 0 {number} {rng.randint(-99999, 99999)}.{rng.randint(0, 99):02d}" for number in accounts[:6]
    ]
    header += [
        f"#UB 0 {number} {rng.randint(-99999, 99999)}.{rng.randint(0, 99):02d}" for number in accounts[:6]
    ]
    target = size_mb * MB
    written = 0
    vouchers = 0
    with path.open("wb") as stream:
        stream.write(("\r\n".join(header) + "\r\n").encode("cp437"))
        while written < target:
            lines: list[str] = []
            for _ in range(500):
                vouchers += 1
                day = f"2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
                text = rng.choice(_TEXTS).replace('"', '\\"')
                lines.append(f'#VER A {vouchers} {day} "{text}" 20250105')
                lines.append("{")
                row_count = rng.randint(2, 5)
                amounts = [rng.randint(1, 5_000_000) for _ in range(row_count - 1)]
                amounts.append(-sum(amounts))
                for amount in amounts:
                    objects = '{1 "100" 6 "P1"}' if rng.random() < 0.2 else "{}"
                    row_text = (
                        ' "' + rng.choice(_TEXTS).replace('"', '\\"') + '"' if rng.random() < 0.3 else ""
                    )
                    sign = "-" if amount < 0 else ""
                    value = f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"
                    date_field = f" {day}" if row_text else ""
                    lines.append(f"#TRANS {rng.choice(accounts)} {objects} {value}{date_field}{row_text}")
                lines.append("}")
            chunk = ("\r\n".join(lines) + "\r\n").encode("cp437")
            stream.write(chunk)
            written += len(chunk)
    return vouchers


def read_with_reader(path: Path) -> int:
    count = 0
    with SieReader(path) as reader:
        for _ in reader:
            count += 1
    return count


def read_and_split_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as stream:
        for line in stream:
            line.decode("cp437").split()
            count += 1
    return count


def median_seconds(function: Callable[[Path], int], path: Path, runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        function(path)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def peak_memory_kib(path: Path) -> tuple[int, int]:
    """(resident KiB after imports, peak resident KiB after streaming the file) in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(path)], check=True, capture_output=True, text=True
    )
    baseline, peak, _ = result.stdout.split()
    return int(baseline), int(peak)


async def run(sizes: tuple[int, ...] = (10, 100), runs: int = 3) -> dict[str, Any]:
    """Generate each file, then the reader's and the line split's medians, and peak memory."""
    return await asyncio.to_thread(_run, sizes, runs)


def _run(sizes: tuple[int, ...], runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {"runs": runs}
    met = True
    with tempfile.TemporaryDirectory() as directory:
        for size_mb in sizes:
            path = Path(directory) / f"bench_{size_mb}mb.se"
            vouchers = generate(path, size_mb)
            megabytes = path.stat().st_size / MB
            assert read_with_reader(path) == vouchers
            # interleaved, so that both see the same load on a shared machine
            reader_times: list[float] = []
            split_times: list[float] = []
            for _ in range(runs):
                reader_times.append(median_seconds(read_with_reader, path, 1))
                split_times.append(median_seconds(read_and_split_lines, path, 1))
            reader_seconds = statistics.median(reader_times)
            split_seconds = statistics.median(split_times)
            baseline_kib, peak_kib = peak_memory_kib(path)
            row = {
                "file_mb": round(megabytes, 2),
                "vouchers": vouchers,
                "reader_seconds": round(reader_seconds, 3),
                "reader_mb_per_s": round(megabytes / reader_seconds, 2),
                "split_seconds": round(split_seconds, 3),
                "split_mb_per_s": round(megabytes / split_seconds, 2),
                "ratio": round(split_seconds / reader_seconds, 3),
                "rss_after_imports_mib": round(baseline_kib / 1024, 1),
                "peak_rss_mib": round(peak_kib / 1024, 1),
                "peak_rss_growth_mib": round((peak_kib - baseline_kib) / 1024, 1),
            }
            results[f"{size_mb}MB"] = row
            met = met and row["ratio"] >= 0.5
            log(f"sie {size_mb} MB: reader {row['reader_mb_per_s']} MB/s, split {row['split_mb_per_s']} MB/s")
    growths = [results[f"{s}MB"]["peak_rss_growth_mib"] for s in sizes]
    flat = max(growths) - min(growths) < 16
    results["memory_flat"] = flat
    results["goal"] = "reader MB/s >= 0.5 x line split; peak memory flat across sizes"
    results["met"] = met and flat
    return results
