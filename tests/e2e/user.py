"""What a new user does against a running ledgerlink, shared by the end-to-end tests and the scripted walk
(:mod:`tests.e2e.new_user_walk`): start ``make run`` and stop it with Ctrl+C, wait for it, approve at the
sandbox bank as a browser would, read answers and poll. Plain ``httpx`` over real HTTP; no pytest here
(the walk runs outside pytest, in a network namespace of its own)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[2]
REDIRECT_URI = "http://localhost:3000/callback"  # on the default allow-list
POLL_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: How long a server may take to answer ``/healthz``: a deadline, not a figure under test. The machine may
#: be busy (2 cores, tests in parallel); ``make run`` first starts three more Python processes (migrate,
#: seed-dev, dev-token), which on a loaded machine took over a minute.
START_SECONDS = 180.0
MAKE_RUN_START_SECONDS = 300.0


def wait_healthy(base: str, server: subprocess.Popen[bytes], *, within: float = START_SECONDS) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the API exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the API did not start")


#: The level field of an error line as the console renderer writes it (``make run``: LOG_JSON=false).
_CONSOLE_ERROR = re.compile(r"\[(?:\x1b\[[0-9;]*m)*(?:error|critical)\s*(?:\x1b\[0m)?\]")


def logged_errors(log_path: Path) -> list[str]:
    """The error lines of a server log, JSON lines or the console's; a traceback with its frames and
    exception (up to the next unindented line), so a failure names what went wrong."""
    lines = log_path.read_text(errors="replace").splitlines()
    errors = []
    for i, line in enumerate(lines):
        if "Traceback" in line:
            end = i + 1
            while end < len(lines) and lines[end].startswith((" ", "\t")):
                end += 1
            errors.append("\n".join(lines[i : end + 1]))
        elif '"level": "error"' in line or _CONSOLE_ERROR.search(line):
            errors.append(line)
    return errors


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: {response.text}"
    )
    return response.json()


def poll(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def browser_approves(url: str, **extra: str) -> dict[str, str]:
    """What a browser does on an approve button: GET the page with ``approve=1``; the 302 goes back to
    the redirect URI with ``code`` and ``state``."""
    page = httpx.get(url, timeout=30)
    assert page.status_code == 200 and "approve" in page.text.lower()
    back = httpx.get(url, params={**dict(parse_qs(urlsplit(url).query)), "approve": "1", **extra}, timeout=30)
    assert back.status_code == 302, back.text
    location = back.headers["location"]
    assert location.startswith(REDIRECT_URI)
    query = parse_qs(urlsplit(location).query)
    return {"code": query["code"][0], "state": query["state"][0]}


def import_business_account(
    c: httpx.Client, psu_id: str, sync_from: str, **account: str
) -> tuple[dict[str, Any], str]:
    """docs/sandbox.md "Walking the bank flow by hand" for the PSU's business account: connect, approve
    at the bank, link the account from ``sync_from`` (with ``account``'s other fields) and wait for the
    initial import. Returns the account as read after it, and its id at the bank (``ftg-<psu>``)."""
    conn = ok(
        c.post(
            "/v1/bank-connections",
            json={
                "bank_id": "sandbox",
                "account_type": "business",
                "redirect_uri": REDIRECT_URI,
                "psu_id": psu_id,
            },
        ),
        201,
    )
    ok(
        c.post(
            f"/v1/bank-connections/{conn['id']}/authorization",
            json=browser_approves(conn["authorization"]["url"]),
        )
    )
    available = ok(c.get(f"/v1/bank-connections/{conn['id']}/available-accounts"))["items"]
    business = next(a for a in available if a["external_id"].startswith("ftg-"))
    created = ok(
        c.post(
            "/v1/bank-accounts",
            json={"connection_id": conn["id"], "external_id": business["external_id"], "sync_from": sync_from,
                  **account},
        ),
        201,
    )  # fmt: skip
    aid = created["id"]
    ok(c.post(f"/v1/bank-accounts/{aid}/confirmation"), 202)
    read = poll(lambda: ok(c.get(f"/v1/bank-accounts/{aid}")), lambda a: a["last_sync_status"] == "succeeded")
    return read, business["external_id"]


@dataclass
class MakeRun:
    """A running ``make run``: where it serves, and what it printed so far."""

    base: str
    output: Path

    def lines(self) -> list[str]:
        return [line.strip() for line in self.output.read_text(errors="replace").splitlines()]

    def token(self) -> str:
        """The dev token ``make run`` prints (the one line that is a JWT)."""
        tokens = [line for line in self.lines() if line.count(".") == 2 and line.startswith("eyJ")]
        assert len(tokens) == 1, self.lines()
        return tokens[0]


@contextmanager
def make_run(tmp: Path, port: int) -> Iterator[MakeRun]:
    """``make run PORT=port`` as a user types it (the Makefile's own environment; only the SQLite file
    moves under ``tmp``), healthy on return; stopped with Ctrl+C to its process group on exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINK_")}
    env["LEDGERLINK_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp}/ledgerlink.db"
    out_path = tmp / "make-run.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make, its shell and the API in one process group of our own
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, within=MAKE_RUN_START_SECONDS)
        yield MakeRun(base, out_path)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
