"""The sandbox Fortnox with a state file (the embedded ``make run``): what it holds survives a restart,
i.e. a new app created on the same file, as a real Fortnox keeps it across its own restarts."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from ledgerlink.sandbox.fortnox import SandboxFortnox, create_sandbox_fortnox_app
from ledgerlink.sandbox.fortnox_data import SandboxCompany

REDIRECT = "http://localhost:3000/callback"
CLIENT = ("sandbox-client", "sandbox-secret")
SEED = 5


def _app(path: Path | None, *, seed: int = SEED, clock: Any = None) -> FastAPI:
    """A fresh process's sandbox: the company regenerated from its seed, the state read from ``path``."""
    return create_sandbox_fortnox_app(
        company=SandboxCompany.generate(seed=seed, vouchers=120),
        enforce_rate_limit=False,
        clock=clock,
        state_path=path,
    )


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fortnox.test")


def _voucher(description: str, amount: str = "125.00") -> dict[str, Any]:
    rows = [
        {"Account": 6110, "Debit": amount, "Credit": 0},
        {"Account": 1930, "Debit": 0, "Credit": amount, "TransactionInformation": "kort"},
    ]
    return {
        "Voucher": {
            "VoucherSeries": "A",
            "TransactionDate": "2025-12-31",
            "Description": description,
            "VoucherRows": rows,
        }
    }


async def _connect(c: httpx.AsyncClient) -> dict[str, Any]:
    """The browser approves, then the integration exchanges the code (the real OAuth round trip)."""
    back = await c.get("/oauth-v1/auth", params={
        "client_id": CLIENT[0], "redirect_uri": REDIRECT, "state": "s", "response_type": "code",
        "scope": "bookkeeping companyinformation", "approve": "1",
    })  # fmt: skip
    assert back.status_code == 302
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    tokens = await c.post(
        "/oauth-v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=CLIENT,
    )
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    return body


async def _refresh(c: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await c.post(
        "/oauth-v1/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}, auth=CLIENT
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_restarted_sandbox_keeps_grants_and_posted_vouchers(tmp_path: Path) -> None:
    path = tmp_path / "var" / "sandbox-fortnox.json"
    first = _app(path)
    async with _client(first) as c:
        connected = await _connect(c)
        refreshed = (await _refresh(c, connected["refresh_token"])).json()  # the first one is now used
        revoked = first.state.fortnox.issue_tokens(scope="bookkeeping")["refresh_token"]
        assert (await c.post("/oauth-v1/revoke", data={"token": revoked}, auth=CLIENT)).json() == {
            "revoked": True
        }
        posted = await c.post(
            "/3/vouchers", json=_voucher("Periodisering 1"), headers=_bearer(refreshed["access_token"])
        )
        assert posted.status_code == 201, posted.text
        number = posted.json()["Voucher"]["VoucherNumber"]
    assert path.exists()
    saved = path.read_text()
    assert refreshed["refresh_token"] in saved and "Periodisering 1" in saved

    second = _app(path)
    async with _client(second) as c:
        # The access token issued before the restart still works, until its own expiry.
        info = await c.get("/3/companyinformation", headers=_bearer(refreshed["access_token"]))
        assert info.status_code == 200
        # A used or revoked refresh token stays refused; the live one still refreshes.
        for dead in (connected["refresh_token"], revoked):
            refused = await _refresh(c, dead)
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        again = await _refresh(c, refreshed["refresh_token"])
        assert again.status_code == 200, again.text
        token = again.json()["access_token"]
        # The posted voucher is still there, rows and all, and numbering continues after it.
        listed = (
            await c.get(
                "/3/vouchers/sublist/A", params={"financialyear": 2, "limit": 500}, headers=_bearer(token)
            )
        ).json()
        assert [v["VoucherNumber"] for v in listed["Vouchers"] if v["Description"] == "Periodisering 1"] == [
            number
        ]
        one = (
            await c.get(f"/3/vouchers/A/{number}", params={"financialyear": 2}, headers=_bearer(token))
        ).json()
        assert [
            (r["Account"], Decimal(str(r["Debit"])), Decimal(str(r["Credit"])), r["TransactionInformation"])
            for r in one["Voucher"]["VoucherRows"]
        ] == [(6110, Decimal(125), Decimal(0), ""), (1930, Decimal(0), Decimal(125), "kort")]
        series = (await c.get("/3/voucherseries", params={"financialyear": 2}, headers=_bearer(token))).json()
        assert (
            next(s for s in series["VoucherSeriesCollection"] if s["Code"] == "A")["NextVoucherNumber"]
            == number + 1
        )
        nxt = await c.post("/3/vouchers", json=_voucher("Periodisering 2"), headers=_bearer(token))
        assert nxt.json()["Voucher"]["VoucherNumber"] == number + 1
        # The balances (and so the SIE export and the accounts list) include it.
        ub = second.state.fortnox.company.balances(2)[1]
    reference = SandboxCompany.generate(seed=SEED, vouchers=120).balances(2)[1]
    assert ub[1930] == reference[1930] - 250

    # A second restart keeps both: vouchers restored from the file are saved again with the new one.
    third = _app(path)
    async with _client(third) as c:
        token = third.state.fortnox.issue_tokens()["access_token"]
        listed = (
            await c.get("/3/vouchers", params={"financialyear": 2, "limit": 500}, headers=_bearer(token))
        ).json()
        ours = [
            (v["Description"], v["VoucherNumber"])
            for v in listed["Vouchers"]
            if v["Description"].startswith("Periodisering")
        ]
        assert ours == [("Periodisering 1", number), ("Periodisering 2", number + 1)]
        assert (await _refresh(c, refreshed["refresh_token"])).status_code == 400  # used before the restart


async def test_access_tokens_keep_their_expiry_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sandbox-fortnox.json"
    start = dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.UTC)
    token = _app(path, clock=lambda: start).state.fortnox.issue_tokens()["access_token"]
    in_time = _app(path, clock=lambda: start + dt.timedelta(minutes=59))
    async with _client(in_time) as c:
        assert (await c.get("/3/companyinformation", headers=_bearer(token))).status_code == 200
    late = _app(path, clock=lambda: start + dt.timedelta(minutes=61))
    async with _client(late) as c:
        assert (await c.get("/3/companyinformation", headers=_bearer(token))).status_code == 401
    # Expiring them by hand (the tests' helper) is a change that survives a restart too.
    now = _app(path, clock=lambda: start)
    now.state.fortnox.expire_access_tokens()
    async with _client(_app(path, clock=lambda: start)) as c:
        assert (await c.get("/3/companyinformation", headers=_bearer(token))).status_code == 401


def _saved_for_another_company(path: Path) -> None:
    _app(path, seed=SEED + 1).state.fortnox.issue_tokens()


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda p: p.write_bytes(b"\x00\xff not json"), id="garbage"),
        pytest.param(lambda p: p.write_text("", encoding="utf-8"), id="empty"),
        pytest.param(lambda p: p.write_text("[1, 2]", encoding="utf-8"), id="not-an-object"),
        pytest.param(
            lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "version": 99})), id="version"
        ),
        pytest.param(
            lambda p: p.write_text(
                json.dumps({**json.loads(p.read_text()), "vouchers": [{"series": "A", "rows": "x"}]})
            ),
            id="bad-voucher",
        ),
        pytest.param(_saved_for_another_company, id="another-company"),
    ],
)
async def test_an_unreadable_or_incompatible_state_file_starts_afresh(tmp_path: Path, spoil: Any) -> None:
    path = tmp_path / "sandbox-fortnox.json"
    first = _app(path)
    async with _client(first) as c:
        old = first.state.fortnox.issue_tokens()
        assert (
            await c.post("/3/vouchers", json=_voucher("Före"), headers=_bearer(old["access_token"]))
        ).status_code == 201
    spoil(path)

    fresh = _app(path)  # does not raise
    state: SandboxFortnox = fresh.state.fortnox
    expected = SandboxCompany.generate(seed=SEED, vouchers=120).next_number(2, "A")
    async with _client(fresh) as c:
        assert (await c.get("/3/companyinformation", headers=_bearer(old["access_token"]))).status_code == 401
        assert (await _refresh(c, old["refresh_token"])).status_code == 400
        token = state.issue_tokens()["access_token"]
        posted = await c.post("/3/vouchers", json=_voucher("Efter"), headers=_bearer(token))
        assert posted.json()["Voucher"]["VoucherNumber"] == expected  # "Före" is gone
    # ...and the file is whole again, for the next restart.
    assert "Efter" in path.read_text() and "Före" not in path.read_text()
    async with _client(_app(path)) as c:
        assert (await c.get("/3/companyinformation", headers=_bearer(token))).status_code == 200


def _files(directory: Path) -> list[Path]:
    return list(directory.iterdir())


async def test_without_a_state_path_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = _app(None)
    token = app.state.fortnox.issue_tokens()["access_token"]
    async with _client(app) as c:
        assert (
            await c.post("/3/vouchers", json=_voucher("Minne"), headers=_bearer(token))
        ).status_code == 201
    assert _files(tmp_path) == []
