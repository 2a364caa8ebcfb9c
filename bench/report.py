"""The Markdown table of a run and its place in ``bench/README.md`` (between the results markers)."""

from __future__ import annotations

from typing import Any

from bench.common import ROOT

README = ROOT / "bench" / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _yes(value: Any) -> str:
    return "yes" if value else "**no**"


def _rows(b: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    ing = b.get("ingest")
    if ing:
        rows.append(
            [
                f"Ingest, fresh ({ing['rows']:,} rows)",
                f"{ing['fresh_rows_per_s']:,} rows/s",
                f"COPY {ing['copy_rows_per_s']:,} rows/s",
                f"{ing['fresh_ratio']}",
                "≥ 0.5",
                _yes(ing["met"]),
            ]
        )
        rows.append(
            [
                "Ingest, re-sync (all rows exist)",
                f"{ing['resync_rows_per_s']:,} rows/s",
                f"COPY {ing['copy_rows_per_s']:,} rows/s",
                f"{ing['resync_ratio']}",
                "–",
                "–",
            ]
        )
    a = b.get("api")
    if a:
        for key, label in (("c32", "32 connections"), ("c128", "128 connections"), ("c32_per_core", "")):
            row = a.get(key)
            if not row:
                continue
            if key == "c32_per_core":
                label = f"32 connections, {row['processes']} processes each (one per core)"
            goal = {
                "c32": "≥ 0.7 req/s and CPU",
                "c32_per_core": "p99 ≤ 1.5 × limit",
            }.get(key, "–")
            if key == "c32":
                met = _yes(row["ratio"] >= 0.7 and row["cpu_ratio"] >= 0.7)
            elif key == "c32_per_core":
                met = _yes(row["p99_ratio"] <= 1.5)
            else:
                met = "–"
            if "limit_rps" not in row:  # a result of before the limit route (bare)
                continue
            rows.append(
                [
                    f"API list, {label} ({a['rows']:,} rows)",
                    f"{row['real_rps']} req/s, p50 {row['real_p50_ms']} ms, p99 {row['real_p99_ms']} ms; "
                    f"server CPU {row['real_server_cpu_ms']} ms/req",
                    f"Starlette + asyncpg + orjson, same SQL and bytes: {row['limit_rps']} req/s, "
                    f"p99 {row['limit_p99_ms']} ms; server CPU {row['limit_server_cpu_ms']} ms/req",
                    f"req/s {row['ratio']}, CPU {row['cpu_ratio']}, p99 {row['p99_ratio']}",
                    goal,
                    met,
                ]
            )
    f = b.get("fleet")
    if f:
        ratio_met = f.get("ideal_ratio_met", f["met"])
        cpu = f.get("worker_cpu_ms_per_account", "?")
        cpu_goal = f.get("cpu_ms_per_account_goal")
        met = _yes(f["met"])
        if cpu_goal is not None and not f["met"]:  # which goal is missed, by how much
            missed = []
            if not ratio_met:
                missed.append(f"ratio {f['ideal_to_wall_ratio']} < {f.get('ideal_ratio_goal', 0.9)}")
            if not f.get("cpu_ms_per_account_met", False):
                missed.append(f"CPU {cpu} ms = {cpu / cpu_goal:.1f} × goal")
            met = f"{met} ({'; '.join(missed)})"
        sequential = (
            f"; sequential importer {f['sequential_importer_s']:,} s (ours {f['sequential_speedup']}× faster)"
            if "sequential_importer_s" in f
            else ""
        )
        rows.append(
            [
                f"Nightly fleet ({f['accounts']:,} accounts, {f['latency_s'] * 1000:.0f} ms/call)",
                f"{f['wall_s']} s; worker CPU {f['worker_cpu_s_per_1000_tx']} s / 1,000 tx, "
                f"{cpu} ms / account; "
                f"{f.get('worker_processes', 1)} worker process(es)",
                f"ideal {f['ideal_s']} s ({f['bank_calls']:,} calls × latency ÷ {f['worker_concurrency']})"
                + sequential,
                f"{f['ideal_to_wall_ratio']}",
                "≥ 0.9" + (f", CPU ≤ {cpu_goal:g} ms / account" if cpu_goal is not None else ""),
                met,
            ]
        )
    s = b.get("sie")
    if s:
        for key, row in s.items():
            if not key.endswith("MB") or not isinstance(row, dict):
                continue
            rows.append(
                [
                    f"SIE reader, {key}",
                    f"{row['reader_mb_per_s']} MB/s, peak RSS {row['peak_rss_mib']} MiB",
                    f"line split {row['split_mb_per_s']} MB/s",
                    f"{row['ratio']}",
                    "≥ 0.5, flat memory",
                    _yes(row["ratio"] >= 0.5 and s.get("memory_flat")),
                ]
            )
    fx = b.get("fortnox")
    if fx:
        sizes = [k for k in fx if k.isdigit()]
        small, large = (fx[k] for k in sorted(sizes, key=int))
        rows.append(
            [
                f"Fortnox import ({large['vouchers_imported']:,} vouchers)",
                f"{large['calls']} calls, {large['rate_limited_429']} × 429, {large['wall_s']} s wall",
                f"{small['calls']} calls for {small['vouchers_imported']:,} vouchers",
                f"{fx['calls_ratio_large_to_small']}",
                "calls flat (1.0), 0 × 429",
                _yes(fx["met"]),
            ]
        )
    mt = b.get("matching")
    if mt:
        q, sp = mt["quality"], mt["speed"]
        curve = q["curve"]
        rows.append(
            [
                f"Matching quality ({q['company']}, months {q['held_out_months'][0]}–12 scored, "
                f"{curve[next(iter(curve))]['rows']} rows)",
                "best suggestion right after learning "
                + ", ".join(f"{n} mo {p['right_share']:.1%}" for n, p in curve.items()),
                "wrongly unambiguous "
                + ", ".join(f"{n} mo {p['wrongly_unambiguous']}" for n, p in curve.items()),
                "–",
                "0 wrongly unambiguous",
                _yes(all(p["wrongly_unambiguous"] == 0 for p in curve.values())),
            ]
        )
        mem = ", ".join(
            f"{n:,} rows +{m['peak_rss_growth_mib']} MiB"
            for n, m in ((int(k), v) for k, v in sp["memory"].items())
        )
        rows.append(
            [
                f"Matching speed ({sp['rows']:,} rows × {sp['open_items']:,} open items)",
                f"{sp['engine_rows_per_s']:,} rows/s; peak RSS growth {mem}",
                f"bare OCR dict loop {sp['bare_rows_per_s']:,} rows/s",
                f"{sp['ratio']}",
                "memory flat",
                _yes(sp["memory_flat"]),
            ]
        )
    return rows


def render_table(results: dict[str, Any]) -> str:
    header = ["Benchmark", "Real code path", "Limit (same run)", "Ratio", "Goal", "Met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(results["benchmarks"])]
    m = results["machine"]
    lines.append("")
    lines.append(
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['os']}; Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, Redis {m['redis']}; run {m['date']}"
        + (" (quick sizes)" if results.get("quick") else "")
        + f"; whole run {results.get('total_seconds', '?')} s."
    )
    return "\n".join(lines)


def update_readme(table: str, results: dict[str, Any]) -> None:
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{table}\n{END}{tail}")
