"""The "Done when" of issue 16 as a new user walks it, as a script: ``make run`` → ``/docs`` and ``/redoc``
→ connect the sandbox bank and sync through the API → ``/metrics``. It records what it saw as one JSON
object on stdout and asserts nothing itself: :mod:`tests.e2e.test_new_user_walk` runs it in a network
namespace with only loopback (the network cut) and judges the record.

    python -m tests.e2e.new_user_walk TMPDIR
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.e2e.user import free_port, import_business_account, logged_errors, make_run, ok

STOCKHOLM = ZoneInfo("Europe/Stockholm")
#: Anything in a docs page that would make a browser leave this origin.
OFF_ORIGIN = re.compile(r"""https?://|(?:src|href)\s*=\s*["']//""")


def _docs_page(base: str, page: str) -> dict[str, Any]:
    """The page, what it points off-origin, and every script, style and icon it loads."""
    html = httpx.get(f"{base}{page}", timeout=30)
    assets = {}
    for ref in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html.text):
        served = httpx.get(f"{base}{ref}", timeout=30) if ref.startswith("/") else None
        assets[ref] = {
            "status": served.status_code if served else None,
            "content_type": served.headers.get("content-type", "") if served else "",
            "bytes": len(served.content) if served else 0,
        }
    spec_url = re.search(r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""", html.text)
    return {
        "status": html.status_code,
        "content_type": html.headers.get("content-type", ""),
        "off_origin": OFF_ORIGIN.findall(html.text),
        "assets": assets,
        "spec_url": spec_url.group(1) if spec_url else None,
    }


def _connect_and_sync(c: httpx.Client) -> dict[str, Any]:
    """Connect the sandbox bank (the redirect login approved as a browser does), link the business account
    from 30 days back, confirm it and wait for the initial import."""
    sync_from = dt.datetime.now(STOCKHOLM).date() - dt.timedelta(days=30)
    synced, _ = import_business_account(c, "newuser", sync_from.isoformat(), ledger_account="1930")
    runs = ok(c.get(f"/v1/bank-accounts/{synced['id']}/syncs"))["items"]
    return {
        "account_status": synced["status"],
        "last_sync_status": synced["last_sync_status"],
        "run": next(r for r in runs if r["trigger"] == "initial"),
    }


def walk(tmp: Path) -> dict[str, Any]:
    record: dict[str, Any] = {"interfaces": sorted(name for _, name in socket.if_nameindex())}
    with make_run(tmp, free_port()) as running:
        base = running.base
        record["pages"] = {page: _docs_page(base, page) for page in ("/docs", "/redoc")}
        record["openapi_paths"] = len(httpx.get(f"{base}/openapi.json", timeout=30).json()["paths"])
        headers = {"Authorization": f"Bearer {running.token()}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            record["sync"] = _connect_and_sync(c)
        metrics = httpx.get(f"{base}/metrics", timeout=30)
        record["metrics"] = {"status": metrics.status_code, "text": metrics.text}
    record["server_errors"] = logged_errors(tmp / "make-run.out")
    return record


if __name__ == "__main__":
    json.dump(walk(Path(sys.argv[1])), sys.stdout)
