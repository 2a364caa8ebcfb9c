"""``kill -9`` of the server ``make run`` starts in the middle of a closing import (step ``writing``) and of
an export, then ``make run`` again: every job ends in a final state, and each adjustment is one voucher."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_make_run_journeys import (
    REDIRECT_URI,
    Server,
    _browser_approves,
    _import_latest_year,
    _logged_errors,
    _ok,
    _poll,
    _prepare,
    _sandbox_fortnox_token,
    _start_api,
    _stop_api,
)

pytestmark = pytest.mark.sqlite
FINAL = ("succeeded", "partially_failed", "failed")
ADJUSTMENTS = 40


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no shutdown hook, the job is lost in the middle of its work."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=20)


def _sie_file(vouchers: int) -> bytes:
    lines = [
        "#FLAGGA 0",
        '#PROGRAM "restart-test" 1.0',
        "#FORMAT PC8",
        "#SIETYP 4",
        '#FNAMN "Omstart AB"',
        "#RAR 0 20250101 20251231",
        '#KONTO 1930 "Bank"',
        '#KONTO 3001 "Försäljning"',
        '#KONTO 6570 "Bankkostnader"',
    ]
    for n in range(1, vouchers + 1):
        lines += [
            f'#VER A {n} 2025{1 + n % 12:02d}15 "Försäljning {n}"',
            "{",
            f"   #TRANS 1930 {{}} {n}.00",
            f"   #TRANS 3001 {{}} -{n}.00",
            "}",
        ]
    return ("\r\n".join(lines) + "\r\n").encode("cp437")


def test_an_import_killed_while_writing_finishes_after_the_restart(tmp_path: Path) -> None:
    env, port, token = _prepare(tmp_path)
    log_path = tmp_path / "server.log"
    server = Server(f"http://127.0.0.1:{port}", token)
    vouchers = 60_000
    proc = _start_api(env, port, log_path)
    try:
        with server.client() as c:
            closing = _ok(
                c.post(
                    "/v1/closings",
                    json={
                        "financial_year_start": "2025-01-01",
                        "financial_year_end": "2025-12-31",
                        "data_source": "sie",
                    },
                ),
                201,
            )
            cid = closing["id"]
            job = _ok(
                c.post(f"/v1/closings/{cid}/imports/sie", files={"file": ("big.se", _sie_file(vouchers))}),
                202,
            )
            writing = _poll(
                lambda: _ok(c.get(f"/v1/closings/{cid}/imports/{job['id']}")),
                lambda j: j["progress"]["step"] == "writing" or j["status"] in FINAL,
            )
            assert writing["progress"]["step"] == "writing", writing  # killed while it writes
            _kill(proc)
    finally:
        if proc.poll() is None:
            _kill(proc)

    proc = _start_api(env, port, log_path)
    try:
        with server.client() as c:
            done = _poll(
                lambda: _ok(c.get(f"/v1/closings/{cid}/imports/{job['id']}")),
                lambda j: j["status"] in FINAL,
            )
            assert done["status"] == "succeeded", done
            assert done["counts"]["vouchers"] == vouchers
            listed = _ok(c.get(f"/v1/closings/{cid}/vouchers", params={"limit": 1}))
            assert listed["items"][0]["number"] == "1"
    finally:
        _stop_api(proc)
    assert (errors := _logged_errors(log_path)) == [], "\n".join(errors[:3])


def _export(c: httpx.Client, cid: str, series: str) -> dict[str, Any]:
    export: dict[str, Any] = _ok(
        c.post(f"/v1/closings/{cid}/exports", json={"target": "fortnox", "voucher_series": series}), 202
    )
    return export


def test_an_export_killed_while_sending_ends_with_one_voucher_per_adjustment_after_the_restart(
    tmp_path: Path,
) -> None:
    env, port, token = _prepare(tmp_path)
    log_path = tmp_path / "server.log"
    server = Server(f"http://127.0.0.1:{port}", token)
    proc = _start_api(env, port, log_path)
    try:
        with server.client() as c:
            started = _ok(c.post("/v1/fortnox/authorization", json={"redirect_uri": REDIRECT_URI}))
            _ok(
                c.post(
                    "/v1/fortnox/authorization/callback", json=_browser_approves(started["authorization_url"])
                )
            )
            years = _ok(c.get("/v1/fortnox/financial-years"))["items"]
            year = max(years, key=lambda y: y["from_date"])
            cid, imported = _import_latest_year(c, years)
            assert imported["status"] == "succeeded", imported
            tag = f"restart {time.time_ns()}"
            for n in range(ADJUSTMENTS):
                _ok(
                    c.post(
                        f"/v1/closings/{cid}/adjustments",
                        json={
                            "date": year["to_date"],
                            "description": f"{tag} #{n}",
                            "rows": [
                                {"account": "1510", "debit": f"{n + 1}.00"},
                                {"account": "1930", "credit": f"{n + 1}.00"},
                            ],
                        },
                    ),
                    201,
                )
            series = _ok(c.get("/v1/fortnox/voucher-series", params={"financial_year_id": year["id"]}))[
                "items"
            ]
            manual = next(s["code"] for s in series if s["manual"])
            export = _export(c, cid, manual)
            halfway = _poll(
                lambda: _ok(c.get(f"/v1/closings/{cid}/exports/{export['id']}")),
                lambda j: j["progress"]["done"] >= 3 or j["status"] in FINAL,
            )
            assert halfway["status"] == "running", halfway  # killed in the middle of sending
            _kill(proc)
    finally:
        if proc.poll() is None:
            _kill(proc)

    proc = _start_api(env, port, log_path)
    try:
        with server.client() as c:
            done = _poll(
                lambda: _ok(c.get(f"/v1/closings/{cid}/exports/{export['id']}")),
                lambda j: j["status"] in FINAL,
            )
            assert done["status"] == "succeeded", done
            assert [i["status"] for i in done["items"]] == ["posted"] * ADJUSTMENTS
            fortnox = httpx.Client(
                base_url=f"{server.base}/sandbox/fortnox/3",
                headers={"Authorization": f"Bearer {_sandbox_fortnox_token(server)}"},
            )
            listed = _ok(
                fortnox.get(f"/vouchers/sublist/{manual}", params={"financialyear": year["id"], "limit": 500})
            )
            fortnox.close()
            ours = sorted(v["Description"] for v in listed["Vouchers"] if v["Description"].startswith(tag))
            assert len(ours) == ADJUSTMENTS  # one voucher per adjustment: none lost, none twice
            assert len(set(ours)) == ADJUSTMENTS
            numbers = {i["fortnox_voucher"]["number"] for i in done["items"]}
            assert len(numbers) == ADJUSTMENTS
    finally:
        _stop_api(proc)
    assert (errors := _logged_errors(log_path)) == [], "\n".join(errors[:3])
