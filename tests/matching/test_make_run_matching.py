"""The "Done when" of issue 17, walked the way a new user walks it with ``make run`` (SQLite, jobs
in-process, the sandbox bank mounted) and the steps docs/sandbox.md gives: connect the sandbox bank and
import; push the sandbox's open items with ``ledgerlink sandbox-open-items``; download the BgMax file
from the sandbox bank and upload it; then ``GET /v1/transactions?include=suggestion`` shows invoice
matches with their reasons for the OCR payments, the lump-sum rows split by the file, and, after a few
rows are booked with ``PATCH /v1/transactions/{id}``, suggestions from the company's own history."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_make_run_journeys import (
    Server,
    _all_pages,
    _cli,
    _logged_errors,
    _ok,
    _prepare,
    _start_api,
    _stop_api,
)
from tests.e2e.user import import_business_account as _import_business_account

pytestmark = pytest.mark.sqlite

PSU = "demo"
DAYS = 60


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("make-run-matching")
    env, port, token = _prepare(tmp)
    proc = _start_api(env, port, tmp / "server.log")
    try:
        yield Server(f"http://127.0.0.1:{port}", token), env
    finally:
        _stop_api(proc)
        errors = _logged_errors(tmp / "server.log")
        assert not errors, "the server logged errors:\n" + "\n".join(errors[:5])


def _booked_rows(c: httpx.Client) -> list[dict[str, Any]]:
    rows = _all_pages(c, "/v1/transactions", include="suggestion", booking_status="booked")
    assert rows
    return rows


def test_a_new_user_walks_from_bank_rows_to_suggestions(walk: tuple[Server, dict[str, str]]) -> None:
    server, env = walk
    c = server.client()
    today = dt.date.today()
    sync_from, to = (today - dt.timedelta(days=DAYS)).isoformat(), today.isoformat()
    account, _ = _import_business_account(c, PSU, sync_from, ledger_account="1930")
    assert account["last_sync_status"] == "succeeded", account
    aid = account["id"]

    # the platform's open invoices, pushed by the command the docs give
    pushed = _cli(env, "sandbox-open-items", "--psu", PSU, "--from", sync_from, "--to", to)
    counts = re.search(r"(\d+) open items.*?(\d+) Bankgiro deposits", pushed)
    assert counts is not None, pushed
    items = _all_pages(c, "/v1/open-items", status="open")
    assert len(items) == int(counts.group(1)) > 0

    # the BgMax file of the deposits, downloaded from the sandbox bank and uploaded
    bgmax = httpx.get(
        f"{server.base}/sandbox/bank/bgmax", params={"psu": PSU, "from": sync_from, "to": to}, timeout=30
    )
    assert bgmax.status_code == 200 and bgmax.content.startswith(b"01BGMAX")
    uploaded = _ok(
        c.post(f"/v1/bank-accounts/{aid}/bgmax", files={"file": ("bgmax.txt", bgmax.content)}), 201
    )
    deposits = uploaded["deposits"]
    assert len(deposits) == int(counts.group(2)) > 0
    paired = {d["transaction_id"]: d for d in deposits if d["transaction_id"]}
    assert paired, deposits

    rows = _booked_rows(c)
    by_id = {r["id"]: r for r in rows}

    # OCR payments: an invoice match with its reason
    ocr_rows = [r for r in rows if not r["parts"] and re.match(r"(BG|PG) ", r["description"] or "")]
    assert ocr_rows
    for r in ocr_rows:
        best = r["suggestion"]
        assert best is not None and best["kind"] == "invoice" and best["unambiguous"], r
        assert best["reason"].startswith("OCR ") and "matches invoice" in best["reason"], best
        assert len(best["allocations"]) == 1 and best["remainder"]["kind"] == "none"
        ledger = "1510" if Decimal(r["amount"]) > 0 else "2440"
        assert {line["account"] for line in best["lines"]} == {"1930", ledger}

    # lump sums: the deposit's row has its parts, each allocated to its own invoice
    assert set(paired) == {r["id"] for r in rows if r["parts"]}
    for tid, deposit in paired.items():
        row = by_id[tid]
        assert row["amount"] == deposit["amount"] and len(row["parts"]) == deposit["payment_count"]
        best = row["suggestion"]
        assert best["kind"] == "invoice" and best["unambiguous"], best
        assert best["reason"].startswith(f"Bankgiro deposit of {len(row['parts'])} payments"), best
        assert sorted(a["amount"] for a in best["allocations"]) == sorted(p["amount"] for p in row["parts"])

    # booking a few card purchases teaches the history: the merchant's other rows follow
    cards: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if (r["description"] or "").startswith("Kortköp"):
            cards[r["counterparty"]].append(r)
    merchant, bought = max(cards.items(), key=lambda kv: len(kv[1]))
    bought.sort(key=lambda r: r["booking_date"])
    assert len(bought) >= 4 and bought[0]["booking_date"][:7] != bought[-1]["booking_date"][:7], cards
    assert all(r["suggestion"] is None or r["suggestion"]["kind"] != "history" for r in bought)

    def book_to_5410(r: dict[str, Any]) -> None:
        amount = format(-Decimal(r["amount"]), "f")
        booking = {"lines": [{"account": "5410", "debit": amount}, {"account": "1930", "credit": amount}]}
        _ok(c.patch(f"/v1/transactions/{r['id']}", json={"status": "booked", "booking": booking}))

    for r in bought[:2]:
        book_to_5410(r)
    # two bookings are suggested, but too few to be sure (docs/matching.md, "When the history is sure")
    after_two = {r["id"]: r for r in _booked_rows(c)}
    for r in bought[2:]:
        best = after_two[r["id"]]["suggestion"]
        assert best is not None and best["kind"] == "history" and not best["unambiguous"], best
        assert best["reason"] == f"2 of the last 2 rows from {merchant} went to 5410 — too few to be sure"
    book_to_5410(bought[-1])  # a third, from another month than the first
    # ...and paying an invoice through the feedback closes it
    paying = ocr_rows[0]
    allocation = paying["suggestion"]["allocations"][0]
    _ok(
        c.patch(
            f"/v1/transactions/{paying['id']}",
            json={
                "status": "booked",
                "booking": {
                    "lines": paying["suggestion"]["lines"],
                    "open_item_external_ids": [allocation["open_item_external_id"]],
                },
            },
        )
    )
    still_open = {i["external_id"] for i in _all_pages(c, "/v1/open-items", status="open")}
    assert allocation["open_item_external_id"] not in still_open

    after = {r["id"]: r for r in _booked_rows(c)}
    for r in bought[2:-1]:
        best = after[r["id"]]["suggestion"]
        assert best is not None and best["kind"] == "history" and best["unambiguous"], best
        assert best["reason"] == f"3 of the last 3 rows from {merchant} went to 5410", best
        assert [line["account"] for line in best["lines"]] == ["1930", "5410"]
    assert after[paying["id"]]["status"] == "booked"
