"""The "Done when" of issue 18, walked against the server ``make run`` starts (SQLite, jobs in-process,
the sandbox bank mounted): the ``dropped`` PSU's account shows ``reconciliation.status: gap`` with the day
and the amount; a statement downloaded from the sandbox bank imports the missing rows only; the gap
closes and the ``balance_gap`` to-do is resolved."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_make_run_journeys import (
    Server,
    _logged_errors,
    _ok,
    _prepare,
    _start_api,
    _stop_api,
)
from tests.e2e.user import import_business_account as _import_business_account

pytestmark = pytest.mark.sqlite


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("make-run-statements")
    env, port, token = _prepare(tmp)
    proc = _start_api(env, port, tmp / "server.log")
    try:
        yield Server(f"http://127.0.0.1:{port}", token)
    finally:
        _stop_api(proc)
        errors = _logged_errors(tmp / "server.log")
        assert not errors, "the server logged errors:\n" + "\n".join(errors[:5])


def test_a_dropped_row_shows_as_a_gap_and_a_downloaded_statement_closes_it(server: Server) -> None:
    c = server.client()
    sync_from = (dt.date.today() - dt.timedelta(days=75)).isoformat()
    read, external_id = _import_business_account(c, "dropped", sync_from)
    aid = read["id"]
    check = read["reconciliation"]
    assert check["status"] == "gap", check
    assert Decimal(check["gap"]) != 0 and check["gap_since"] is not None
    assert check["bank_balance"]["amount"] == read["balance"]["amount"]
    gap_todos = [t for t in _ok(c.get("/v1/todos"))["items"] if t["type"] == "balance_gap"]
    assert [(t["amount"], t["since"]) for t in gap_todos] == [(check["gap"], check["gap_since"])]

    statement = httpx.get(
        f"{server.base}/sandbox/bank/statements/{external_id}",
        params={"dateFrom": sync_from, "format": "camt053"},
        timeout=30,
    )
    assert statement.status_code == 200
    preview = _ok(
        c.post(
            f"/v1/bank-accounts/{aid}/statement-imports", files={"file": ("statement.xml", statement.content)}
        ),
        201,
    )
    rows = _ok(
        c.get(f"/v1/bank-accounts/{aid}/statement-imports/{preview['id']}", params={"include": "rows"})
    )["rows"]
    new = [r for r in rows if r["verdict"] == "new"]
    assert new and preview["counts"]["new"] == len(new) and preview["counts"]["conflicting"] == 0
    assert sum((Decimal(r["amount"]) for r in new), Decimal(0)) == Decimal(check["gap"])  # what was missing
    committed = _ok(c.post(f"/v1/bank-accounts/{aid}/statement-imports/{preview['id']}/commit"))
    assert committed["counts"] == {"inserted": len(new)}
    after = _ok(c.get(f"/v1/bank-accounts/{aid}"))["reconciliation"]
    assert after["status"] == "ok" and after["gap"] == "0.00"
    assert [t for t in _ok(c.get("/v1/todos"))["items"] if t["type"] == "balance_gap"] == []
