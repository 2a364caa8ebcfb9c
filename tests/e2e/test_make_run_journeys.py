"""The "Done when" of issues 4, 5, 7 and 8, walked the way a new user walks them: against the server
``make run`` starts (SQLite under a temp dir, jobs in-process, the sandbox bank and sandbox Fortnox
mounted on the same port), over real HTTP, using only what the OpenAPI document offers.

The server calls its own mounted sandboxes over HTTP on 127.0.0.1 from inside the same uvicorn process,
so every journey here also proves that this does not deadlock.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from ledgerlink.sandbox.bank_data import sandbox_transactions
from ledgerlink.sie import read_document
from tests.e2e.user import REDIRECT_URI, ROOT, make_run
from tests.e2e.user import browser_approves as _browser_approves
from tests.e2e.user import free_port as _free_port
from tests.e2e.user import logged_errors as _logged_errors
from tests.e2e.user import ok as _ok
from tests.e2e.user import poll as _poll
from tests.e2e.user import wait_healthy as _wait_healthy

STOCKHOLM = ZoneInfo("Europe/Stockholm")

pytestmark = pytest.mark.sqlite


def _env(tmp: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINK_")}
    env.update(
        LEDGERLINK_DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/ledgerlink.db",
        LEDGERLINK_SANDBOX="true",
        LEDGERLINK_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    return env


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ledgerlink.cli", *args],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


@dataclass
class Server:
    base: str
    token: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)


def _start_api(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ledgerlink.cli", "api", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    _wait_healthy(f"http://127.0.0.1:{port}", proc)
    return proc


def _stop_api(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl+C, as a user stops ``make run``."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _prepare(tmp: Path) -> tuple[dict[str, str], int, str]:
    """``ledgerlink migrate``, ``seed-dev`` and ``dev-token`` as ``make run`` does them."""
    port = _free_port()
    env = _env(tmp, port)
    _cli(env, "migrate")
    _cli(env, "seed-dev")
    return env, port, _cli(env, "dev-token").strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server ``make run`` starts (``api --port`` after migrate, seed-dev and dev-token)."""
    tmp = tmp_path_factory.mktemp("make-run")
    env, port, token = _prepare(tmp)
    proc = _start_api(env, port, tmp / "server.log")
    try:
        yield Server(f"http://127.0.0.1:{port}", token)
    finally:
        _stop_api(proc)
        errors = _logged_errors(tmp / "server.log")
        assert not errors, "the server logged errors:\n" + "\n".join(errors[:5])


def _import_latest_year(c: httpx.Client, years: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Create a Fortnox closing for the latest financial year, import it and wait: (closing id, import)."""
    year = max(years, key=lambda y: y["from_date"])
    closing = _ok(
        c.post(
            "/v1/closings",
            json={
                "financial_year_start": year["from_date"],
                "financial_year_end": year["to_date"],
                "data_source": "fortnox",
            },
        ),
        201,
    )
    cid = closing["id"]
    job = _ok(c.post(f"/v1/closings/{cid}/imports"), 202)
    imported = _poll(
        lambda: _ok(c.get(f"/v1/closings/{cid}/imports/{job['id']}")),
        lambda j: j["status"] in ("succeeded", "failed"),
    )
    return cid, imported


def _all_pages(c: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = _ok(c.get(path, params={**params, "limit": 500, **({"cursor": cursor} if cursor else {})}))
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


def _ground_truth_key(
    booking_status: str, booking_date: str, amount: Decimal, counterparty: str | None
) -> tuple[str, str, Decimal, str]:
    return (booking_status, booking_date, amount, counterparty or "")


# ------------------------------------------------------------------------------------ banking (4 + 5)


def test_redirect_journey_imports_the_window_and_the_next_sync_adds_only_new_rows(server: Server) -> None:
    with server.client() as c:
        banks = _ok(c.get("/v1/banks", params={"account_type": "business"}))["items"]
        sandbox = next(b for b in banks if b["id"] == "sandbox")
        assert "redirect" in sandbox["sca_methods"]

        # each journey of this module is another person of the one dev company (psu_id): one connection
        # per bank and person, so they do not replace each other
        connection = _ok(
            c.post(
                "/v1/bank-connections",
                json={
                    "bank_id": "sandbox",
                    "account_type": "business",
                    "redirect_uri": REDIRECT_URI,
                    "psu_id": "e2e-redirect",
                },
            ),
            201,
        )
        assert connection["status"] == "awaiting_authorization"
        authorization = connection["authorization"]
        assert authorization["method"] == "redirect"
        assert authorization["url"].startswith(server.base + "/sandbox/bank/")

        relay = _browser_approves(authorization["url"])
        active = _ok(c.post(f"/v1/bank-connections/{connection['id']}/authorization", json=relay))
        assert active["status"] == "active"
        assert dt.datetime.fromisoformat(active["consent_expires_at"]).tzinfo is not None

        available = _ok(c.get(f"/v1/bank-connections/{connection['id']}/available-accounts"))["items"]
        business = next(a for a in available if a["usage"] == "business")

        today = dt.datetime.now(STOCKHOLM).date()
        sync_from = today - dt.timedelta(days=60)
        account = _ok(
            c.post(
                "/v1/bank-accounts",
                json={
                    "connection_id": connection["id"],
                    "external_id": business["external_id"],
                    "sync_from": sync_from.isoformat(),
                    "ledger_account": "1930",
                },
            ),
            201,
        )
        assert account["status"] == "pending_confirmation"
        initial = _ok(c.post(f"/v1/bank-accounts/{account['id']}/confirmation"), 202)
        assert initial["trigger"] == "initial"

        synced = _poll(
            lambda: _ok(c.get(f"/v1/bank-accounts/{account['id']}")),
            lambda a: a["last_sync_status"] in ("succeeded", "failed"),
        )
        assert synced["last_sync_status"] == "succeeded", synced
        assert synced["status"] == "active"
        assert dt.datetime.fromisoformat(synced["last_synced_at"]).tzinfo is not None

        runs = _ok(c.get(f"/v1/bank-accounts/{account['id']}/syncs"))["items"]
        first = next(r for r in runs if r["id"] == initial["id"])
        assert first["status"] == "succeeded"
        as_of = dt.date.fromisoformat(first["window_to"])

        # What the user sees equals what the bank holds for the window (the sandbox's ground truth).
        truth = sandbox_transactions(business["external_id"], sync_from, as_of, as_of)
        rows = _all_pages(c, "/v1/transactions", bank_account_id=account["id"])
        assert Counter(
            _ground_truth_key(r["booking_status"], r["booking_date"], Decimal(r["amount"]), r["counterparty"])
            for r in rows
        ) == Counter(
            _ground_truth_key(t.booking_status.value, str(t.booking_date), t.amount, t.counterparty)
            for t in truth
        )
        assert first["counts"]["inserted"] == len(truth) > 0
        assert all(r["ledger_account"] == "1930" and r["status"] == "unbooked" for r in rows)

        # Searching is case-insensitive for Swedish letters too (SQLite folds only ASCII by itself).
        swedish = next(
            r for r in rows if r["counterparty"] and any(ch in r["counterparty"] for ch in "åäöÅÄÖ")
        )
        found = _all_pages(
            c, "/v1/transactions", bank_account_id=account["id"], q=swedish["counterparty"].upper()
        )
        assert swedish["id"] in {r["id"] for r in found}

        booked = sum(1 for r in rows if r["booking_status"] == "booked")
        todos = _ok(c.get("/v1/todos"))["items"]
        to_book = [t for t in todos if t["type"] == "transactions_to_book"]
        assert [t["count"] for t in to_book if t["bank_account_id"] == account["id"]] == [booked]

        # "Sync now" on the same bank day: nothing new at the bank, so nothing new here.
        again = _ok(c.post(f"/v1/bank-accounts/{account['id']}/syncs", json={}), 202)
        assert again["trigger"] == "manual"
        rerun = _poll(
            lambda: next(
                r
                for r in _ok(c.get(f"/v1/bank-accounts/{account['id']}/syncs"))["items"]
                if r["id"] == again["id"]
            ),
            lambda r: r["status"] in ("succeeded", "failed"),
        )
        assert rerun["status"] == "succeeded", rerun
        assert rerun["counts"]["inserted"] == 0
        assert rerun["counts"]["fetched"] > 0
        if dt.date.fromisoformat(rerun["window_to"]) == as_of:
            assert len(_all_pages(c, "/v1/transactions", bank_account_id=account["id"])) == len(truth)


def test_sync_now_while_one_is_queued_or_running_is_409_naming_that_run(server: Server) -> None:
    with server.client() as c:
        connection = _ok(
            c.post(
                "/v1/bank-connections",
                json={
                    "bank_id": "sandbox",
                    "account_type": "business",
                    "redirect_uri": REDIRECT_URI,
                    "psu_id": "slow-e2e",
                },
            ),
            201,
        )
        relay = _browser_approves(connection["authorization"]["url"], psu="slow-e2e")
        _ok(c.post(f"/v1/bank-connections/{connection['id']}/authorization", json=relay))
        available = _ok(c.get(f"/v1/bank-connections/{connection['id']}/available-accounts"))["items"]
        business = next(a for a in available if a["usage"] == "business")
        account = _ok(
            c.post(
                "/v1/bank-accounts",
                json={
                    "connection_id": connection["id"],
                    "external_id": business["external_id"],
                    "sync_from": (dt.datetime.now(STOCKHOLM).date() - dt.timedelta(days=5)).isoformat(),
                    "ledger_account": "1940",
                },
            ),
            201,
        )
        initial = _ok(c.post(f"/v1/bank-accounts/{account['id']}/confirmation"), 202)
        # The "slow" PSU's bank takes seconds per call, so the initial import is still queued or running.
        busy = c.post(f"/v1/bank-accounts/{account['id']}/syncs", json={})
        assert busy.status_code == 409, busy.text
        assert busy.headers["content-type"].startswith("application/problem+json")
        assert initial["id"] in busy.text
        # Meanwhile the server keeps answering (the job awaits the bank, it does not block the loop).
        assert _ok(c.get("/v1/bank-accounts"))["items"]
        done = _poll(
            lambda: _ok(c.get(f"/v1/bank-accounts/{account['id']}")),
            lambda a: a["last_sync_status"] in ("succeeded", "failed"),
        )
        assert done["last_sync_status"] == "succeeded"


def test_decoupled_bankid_connection_becomes_active_by_polling_it(server: Server) -> None:
    with server.client() as c:
        connection = _ok(
            c.post(
                "/v1/bank-connections",
                json={
                    "bank_id": "sandbox",
                    "account_type": "business",
                    "redirect_uri": REDIRECT_URI,
                    "psu_id": "19800101-e2e",
                    "sca_method": "decoupled",
                },
            ),
            201,
        )
        authorization = connection["authorization"]
        assert authorization["method"] == "decoupled"
        assert authorization["autostart_token"]
        assert authorization["poll_interval_seconds"] > 0

        seen: list[str] = []

        def read() -> dict[str, Any]:
            body: dict[str, Any] = _ok(c.get(f"/v1/bank-connections/{connection['id']}"))
            seen.append(body["status"])
            return body

        final = _poll(read, lambda b: b["status"] != "awaiting_authorization")
        assert final["status"] == "active", final
        assert seen[0] == "awaiting_authorization"
        assert dt.datetime.fromisoformat(final["created_at"]).tzinfo is not None
        available = _ok(c.get(f"/v1/bank-connections/{connection['id']}/available-accounts"))["items"]
        assert {a["usage"] for a in available} >= {"business", "private"}


# ------------------------------------------------------------------------------ Fortnox closing (7 + 8)


def _sandbox_fortnox_token(server: Server) -> str:
    """A token of our own from the sandbox Fortnox (its well-known client), to inspect what it holds."""
    auth = f"{server.base}/sandbox/fortnox/oauth-v1/auth"
    back = httpx.get(
        auth,
        params={
            "response_type": "code",
            "client_id": "sandbox-client",
            "redirect_uri": REDIRECT_URI,
            "scope": "bookkeeping",
            "state": "inspect",
            "approve": "1",
        },
    )
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    tokens = httpx.post(
        f"{server.base}/sandbox/fortnox/oauth-v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=("sandbox-client", "sandbox-secret"),
    )
    assert tokens.status_code == 200, tokens.text
    return str(tokens.json()["access_token"])


def test_fortnox_closing_journey_exports_exactly_one_voucher_per_adjustment(server: Server) -> None:
    with server.client() as c:
        started = _ok(c.post("/v1/fortnox/authorization", json={"redirect_uri": REDIRECT_URI}))
        assert started["authorization_url"].startswith(server.base + "/sandbox/fortnox/")
        relay = _browser_approves(started["authorization_url"])
        assert relay["state"] == started["state"]
        _ok(c.post("/v1/fortnox/authorization/callback", json=relay))
        connection = _ok(c.get("/v1/fortnox/connection"))
        assert connection["status"] == "active"
        assert dt.datetime.fromisoformat(connection["expires_at"]).tzinfo is not None

        years = _ok(c.get("/v1/fortnox/financial-years"))["items"]
        year = max(years, key=lambda y: y["from_date"])
        cid, imported = _import_latest_year(c, years)
        assert imported["status"] == "succeeded", imported
        assert imported["progress"]["done"] == imported["progress"]["total"]

        trial_balance = {a["number"]: a for a in _ok(c.get(f"/v1/closings/{cid}/accounts"))["items"]}
        assert {"1510", "2440", "1930"} <= set(trial_balance)
        for row in trial_balance.values():
            assert Decimal(row["opening_balance"]) + Decimal(row["period_change"]) == Decimal(
                row["closing_balance"]
            )
        specs = _ok(c.get(f"/v1/closings/{cid}/specifications"))["items"]
        assert isinstance(specs, list)  # API.md: the bare array of attachments
        specifications = {s["account"]: s for s in specs}
        assert set(specifications) == {"1510", "2440"}
        for spec in specifications.values():
            assert spec["items"]
            assert sum(Decimal(i["open_amount"]) for i in spec["items"]) == Decimal(spec["items_total"])
            assert Decimal(spec["ledger_balance"]) - Decimal(spec["items_total"]) == Decimal(
                spec["difference"]
            )
        assert Decimal(specifications["1510"]["ledger_balance"]) == Decimal(
            trial_balance["1510"]["closing_balance"]
        )

        description = f"E2E periodisering {time.time_ns()}"
        adjustment = _ok(
            c.post(
                f"/v1/closings/{cid}/adjustments",
                json={
                    "date": year["to_date"],
                    "description": description,
                    "rows": [
                        {"account": "1510", "debit": "1250.50"},
                        {"account": "1930", "credit": "1250.50"},
                    ],
                },
            ),
            201,
        )

        series = _ok(c.get("/v1/fortnox/voucher-series", params={"financial_year_id": year["id"]}))["items"]
        manual = next(s["code"] for s in series if s["manual"])
        export = _ok(
            c.post(f"/v1/closings/{cid}/exports", json={"target": "fortnox", "voucher_series": manual}), 202
        )
        exported = _poll(
            lambda: _ok(c.get(f"/v1/closings/{cid}/exports/{export['id']}")),
            lambda j: j["status"] in ("succeeded", "failed"),
        )
        assert exported["status"] == "succeeded", exported
        [item] = exported["items"]
        assert item["adjustment_id"] == adjustment["id"]
        voucher = item["fortnox_voucher"]
        assert voucher["series"] == manual

        # Exporting again never makes a second voucher.
        again = c.post(f"/v1/closings/{cid}/exports", json={"target": "fortnox", "voucher_series": manual})
        if again.status_code == 202:
            _poll(
                lambda: _ok(c.get(f"/v1/closings/{cid}/exports/{again.json()['id']}")),
                lambda j: j["status"] in ("succeeded", "failed"),
            )
        else:
            assert again.status_code in (409, 422), again.text

        # What the sandbox Fortnox holds: exactly one voucher with our text, with our rows.
        fortnox = httpx.Client(
            base_url=f"{server.base}/sandbox/fortnox/3",
            headers={"Authorization": f"Bearer {_sandbox_fortnox_token(server)}"},
        )
        listed = _ok(
            fortnox.get(
                f"/vouchers/sublist/{manual}", params={"financialyear": voucher["year"], "limit": 500}
            )
        )
        ours = [v for v in listed["Vouchers"] if v["Description"].startswith(description)]
        assert [(v["VoucherSeries"], v["VoucherNumber"]) for v in ours] == [(manual, voucher["number"])]
        posted = _ok(
            fortnox.get(f"/vouchers/{manual}/{voucher['number']}", params={"financialyear": voucher["year"]})
        )["Voucher"]
        assert posted["TransactionDate"] == year["to_date"]
        assert sorted(
            (str(r["Account"]), Decimal(str(r["Debit"])), Decimal(str(r["Credit"])))
            for r in posted["VoucherRows"]
            if not r.get("Removed")
        ) == [("1510", Decimal("1250.50"), Decimal(0)), ("1930", Decimal(0), Decimal("1250.50"))]
        fortnox.close()

        sie = c.get(f"/v1/closings/{cid}/adjustments.sie")
        assert sie.status_code == 200
        document = read_document(sie.content)
        assert document.variant == "4I"
        [ver] = [v for v in document.vouchers if v.text == description]
        assert sorted((r.account, r.amount) for r in ver.rows) == [
            ("1510", Decimal("1250.50")),
            ("1930", Decimal("-1250.50")),
        ]


# ------------------------------------------------------------------------------------ /docs and make run


def test_docs_offer_every_v1_route_behind_the_bearer_authorize_button(server: Server) -> None:
    docs = httpx.get(f"{server.base}/docs").text
    assert "swagger-ui" in docs
    assert '"persistAuthorization": true' in docs  # the pasted token survives a reload
    spec = httpx.get(f"{server.base}/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    [(name, scheme)] = schemes.items()
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    operations = [
        op for path, item in spec["paths"].items() if path.startswith("/v1/") for op in item.values()
    ]
    assert operations and all(op.get("security") == [{name: []}] for op in operations)
    # The token the docs tell you to paste works.
    assert httpx.get(
        f"{server.base}/v1/company", headers={"Authorization": f"Bearer {server.token}"}
    ).is_success


def test_make_run_prints_the_docs_url_and_a_working_token_and_allows_its_own_callback(tmp_path: Path) -> None:
    with make_run(tmp_path, _free_port()) as running:
        base = running.base
        lines = running.lines()
        assert f"API docs:  {base}/docs   (click Authorize and paste the token)" in lines
        token = running.token()
        company = httpx.get(f"{base}/v1/company", headers={"Authorization": f"Bearer {token}"})
        assert company.status_code == 200 and company.json()["name"] == "Demo AB"
        assert not any("Warning" in line for line in lines), lines
        # The sandbox callback page on the port it serves is allow-listed, as the output says.
        callback = f"{base}/sandbox/callback"
        assert any(callback in line for line in lines)
        started = httpx.post(
            f"{base}/v1/fortnox/authorization",
            json={"redirect_uri": callback},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert started.status_code == 200, started.text
        back = httpx.get(started.json()["authorization_url"] + "&approve=1")
        assert back.status_code == 302 and back.headers["location"].startswith(callback)
        page = httpx.get(back.headers["location"])
        assert page.status_code == 200 and started.json()["state"] in page.text


def test_a_sync_interrupted_by_stopping_make_run_finishes_after_the_restart(tmp_path: Path) -> None:
    """Ctrl+C while the initial import is running, then ``make run`` again: the same run completes right
    away (the embedded server is its own only worker), not after the stale-run timeout."""
    env, port, token = _prepare(tmp_path)
    log_path = tmp_path / "server.log"
    proc = _start_api(env, port, log_path)
    server = Server(f"http://127.0.0.1:{port}", token)
    try:
        with server.client() as c:
            connection = _ok(
                c.post(
                    "/v1/bank-connections",
                    json={"bank_id": "sandbox", "account_type": "business", "redirect_uri": REDIRECT_URI},
                ),
                201,
            )
            relay = _browser_approves(connection["authorization"]["url"], psu="slow-restart")
            _ok(c.post(f"/v1/bank-connections/{connection['id']}/authorization", json=relay))
            available = _ok(c.get(f"/v1/bank-connections/{connection['id']}/available-accounts"))["items"]
            business = next(a for a in available if a["usage"] == "business")
            account = _ok(
                c.post(
                    "/v1/bank-accounts",
                    json={
                        "connection_id": connection["id"],
                        "external_id": business["external_id"],
                        "sync_from": (dt.datetime.now(STOCKHOLM).date() - dt.timedelta(days=3)).isoformat(),
                        "ledger_account": "1930",
                    },
                ),
                201,
            )
            initial = _ok(c.post(f"/v1/bank-accounts/{account['id']}/confirmation"), 202)
            running = _poll(
                lambda: next(
                    r
                    for r in _ok(c.get(f"/v1/bank-accounts/{account['id']}/syncs"))["items"]
                    if r["id"] == initial["id"]
                ),
                lambda r: r["status"] != "queued",
            )
            assert running["status"] == "running"  # the slow bank takes seconds per call
    finally:
        _stop_api(proc)

    proc = _start_api(env, port, log_path)
    try:
        with server.client() as c:
            done = _poll(
                lambda: next(
                    r
                    for r in _ok(c.get(f"/v1/bank-accounts/{account['id']}/syncs"))["items"]
                    if r["id"] == initial["id"]
                ),
                lambda r: r["status"] in ("succeeded", "failed"),
            )
            assert done["status"] == "succeeded", done
            assert _ok(c.get(f"/v1/bank-accounts/{account['id']}"))["last_sync_status"] == "succeeded"
            # Whether Ctrl+C came before or after the first attempt's write committed, the account ends
            # with exactly the bank's rows for the window, each once (the rerun's own counts differ).
            as_of = dt.date.fromisoformat(done["window_to"])
            truth = sandbox_transactions(
                business["external_id"], dt.date.fromisoformat(done["window_from"]), as_of, as_of
            )
            rows = _all_pages(c, "/v1/transactions", bank_account_id=account["id"])
            assert Counter(
                _ground_truth_key(
                    r["booking_status"], r["booking_date"], Decimal(r["amount"]), r["counterparty"]
                )
                for r in rows
            ) == Counter(
                _ground_truth_key(t.booking_status.value, str(t.booking_date), t.amount, t.counterparty)
                for t in truth
            )
            assert truth
    finally:
        _stop_api(proc)
    assert (errors := _logged_errors(log_path)) == [], "\n".join(errors[:3])


def test_a_fortnox_connection_still_works_after_restarting_make_run(tmp_path: Path) -> None:
    """Connect Fortnox, Ctrl+C, ``make run`` again: the sandbox Fortnox kept its grants in ./var (as
    Fortnox would), so the connection still reads the books and the closing import succeeds without
    connecting again."""
    env, port, token = _prepare(tmp_path)
    log_path = tmp_path / "server.log"
    server = Server(f"http://127.0.0.1:{port}", token)
    proc = _start_api(env, port, log_path)
    try:
        with server.client() as c:
            started = _ok(c.post("/v1/fortnox/authorization", json={"redirect_uri": REDIRECT_URI}))
            relay = _browser_approves(started["authorization_url"])
            _ok(c.post("/v1/fortnox/authorization/callback", json=relay))
            before = _ok(c.get("/v1/fortnox/financial-years"))["items"]
            assert before
    finally:
        _stop_api(proc)
    assert (tmp_path / "sandbox-fortnox.json").exists()  # beside the database, as make run's ./var/

    proc = _start_api(env, port, log_path)
    try:
        with server.client() as c:
            assert _ok(c.get("/v1/fortnox/connection"))["status"] == "active"
            assert _ok(c.get("/v1/fortnox/financial-years"))["items"] == before
            _, imported = _import_latest_year(c, before)
            assert imported["status"] == "succeeded", imported
            assert _ok(c.get("/v1/fortnox/connection"))["status"] == "active"
    finally:
        _stop_api(proc)
    assert (errors := _logged_errors(log_path)) == [], "\n".join(errors[:3])
