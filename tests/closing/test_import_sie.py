"""SIE uploads: every real file of the corpus imports with the reader's counts; broken files are 422."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledgerlink.sie import read_document
from tests.closing.conftest import RunJobs, all_pages, create_closing

CORPUS_DIR = Path("/work/shared/data/sie")
CORPUS_FILES = sorted(p for p in CORPUS_DIR.iterdir() if p.is_file() and p.suffix.lower() in (".se", ".si"))


def _read(path: Path) -> bytes:
    return path.read_bytes()


async def _upload(
    client: httpx.AsyncClient, headers: dict[str, str], closing_id: str, name: str, content: bytes
) -> httpx.Response:
    return await client.post(
        f"/v1/closings/{closing_id}/imports/sie",
        files={"file": (name, content, "application/octet-stream")},
        headers=headers,
    )


async def _sie_closing(client: httpx.AsyncClient, headers: dict[str, str], path: Path) -> dict[str, Any]:
    document = read_document(path)
    year = next(y for y in document.financial_years if y.index == 0)
    return await create_closing(client, headers, source="sie", start=year.start, end=year.end)


def test_the_corpus_is_there() -> None:
    assert len(CORPUS_FILES) >= 14


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
async def test_each_real_file_imports_with_the_readers_counts(
    client: httpx.AsyncClient, auth_headers: dict[str, str], run_jobs: RunJobs, path: Path
) -> None:
    document = read_document(path)
    closing = await _sie_closing(client, auth_headers, path)

    started = await _upload(client, auth_headers, closing["id"], path.name, _read(path))
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued"
    await run_jobs()

    job = (
        await client.get(f"/v1/closings/{closing['id']}/imports/{started.json()['id']}", headers=auth_headers)
    ).json()
    assert job["status"] == "succeeded", job
    assert job["file_name"] == path.name
    assert job["counts"]["vouchers"] == document.diagnostics.voucher_count
    assert job["counts"]["transactions"] == document.diagnostics.transaction_count
    assert job["counts"]["unbalanced_vouchers"] == len(document.diagnostics.unbalanced_vouchers)
    vouchers = await all_pages(client, f"/v1/closings/{closing['id']}/vouchers", auth_headers)
    assert len(vouchers) == len(document.vouchers)
    assert sum(len(v["rows"]) for v in vouchers) == sum(len(v.rows) for v in document.vouchers)
    accounts = await all_pages(client, f"/v1/closings/{closing['id']}/accounts", auth_headers)
    assert set(document.accounts) <= {a["number"] for a in accounts}
    closing_balances: dict[str, Decimal] = {}
    for balance in [*document.closing_balances, *document.results]:
        if balance.year == 0:
            closing_balances[balance.account] = (
                closing_balances.get(balance.account, Decimal(0)) + balance.amount
            )
    by_number = {a["number"]: Decimal(a["closing_balance"]) for a in accounts}
    for number, amount in closing_balances.items():
        assert by_number[number] == amount.quantize(Decimal("0.01")), number


async def test_a_sie_4i_file_without_balances_gets_closing_balances_from_its_vouchers(
    client: httpx.AsyncClient, auth_headers: dict[str, str], run_jobs: RunJobs
) -> None:
    path = CORPUS_DIR / "magenta_bokforing_SIE4I.se"
    document = read_document(path)
    closing = await _sie_closing(client, auth_headers, path)
    await _upload(client, auth_headers, closing["id"], path.name, _read(path))
    await run_jobs()

    accounts = await all_pages(client, f"/v1/closings/{closing['id']}/accounts", auth_headers)

    movement: dict[str, Decimal] = {}
    for voucher in document.vouchers:
        for row in voucher.rows:
            movement[row.account] = movement.get(row.account, Decimal(0)) + row.amount
    by_number = {a["number"]: a for a in accounts}
    assert movement
    for number, amount in movement.items():
        assert Decimal(by_number[number]["period_change"]) == amount
        assert Decimal(by_number[number]["opening_balance"]) == 0


async def test_the_specifications_of_a_sie_closing_show_the_ledger_balance_without_items(
    client: httpx.AsyncClient, auth_headers: dict[str, str], run_jobs: RunJobs
) -> None:
    path = CORPUS_DIR / "Sie4.se"
    document = read_document(path)
    closing = await _sie_closing(client, auth_headers, path)
    await _upload(client, auth_headers, closing["id"], path.name, _read(path))
    await run_jobs()

    response = await client.get(f"/v1/closings/{closing['id']}/specifications", headers=auth_headers)

    specs = {s["account"]: s for s in response.json()["items"]}
    ub = {b.account: b.amount for b in document.closing_balances if b.year == 0}
    assert Decimal(specs["1510"]["ledger_balance"]) == ub.get("1510", Decimal(0))
    assert Decimal(specs["2440"]["ledger_balance"]) == -ub.get("2440", Decimal(0))
    assert specs["1510"]["items"] == [] and specs["2440"]["items"] == []
    assert Decimal(specs["1510"]["items_total"]) == 0


BROKEN = b'#FLAGGA 0\r\n#SIETYP 4\r\n#RAR 0 20250101 20251231\r\n#KONTO 1930 "Bank"\r\n#VER A 1 2025013 "x"\r\n{\r\n#TRANS 1930 {} 10.00\r\n}\r\n'


async def test_a_broken_file_is_422_with_the_line_number_and_leaves_the_closing_as_it_was(
    client: httpx.AsyncClient, auth_headers: dict[str, str], run_jobs: RunJobs
) -> None:
    path = CORPUS_DIR / "Sie4.se"
    closing = await _sie_closing(client, auth_headers, path)
    first = await _upload(client, auth_headers, closing["id"], path.name, _read(path))
    await run_jobs()
    before = await all_pages(client, f"/v1/closings/{closing['id']}/accounts", auth_headers)
    content = _read(path).replace(b"#VER", b"#VER A 1 notadate", 1)
    bad_line = content[: content.index(b"notadate")].count(b"\n") + 1

    response = await _upload(client, auth_headers, closing["id"], "broken.se", content)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "sie_invalid"
    assert problem["line_number"] == bad_line
    assert f"line {bad_line}" in problem["detail"]
    after = (await client.get(f"/v1/closings/{closing['id']}", headers=auth_headers)).json()
    assert after["current_import_id"] == first.json()["id"]
    assert await all_pages(client, f"/v1/closings/{closing['id']}/accounts", auth_headers) == before


async def test_a_file_that_is_not_sie_at_all_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    closing = await create_closing(client, auth_headers, source="sie")

    response = await _upload(client, auth_headers, closing["id"], "x.se", b"%PDF-1.4 not a sie file\n")

    assert response.status_code == 422
    assert response.json()["code"] == "sie_invalid"


async def test_a_short_broken_file_names_its_line(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    closing = await create_closing(client, auth_headers, source="sie")

    response = await _upload(client, auth_headers, closing["id"], "x.se", BROKEN)

    assert response.status_code == 422
    assert response.json()["line_number"] == 5


async def test_a_file_of_another_financial_year_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    closing = await create_closing(
        client, auth_headers, source="sie", start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31)
    )

    response = await _upload(client, auth_headers, closing["id"], "Sie4.se", _read(CORPUS_DIR / "Sie4.se"))

    assert response.status_code == 422
    assert response.json()["code"] == "sie_year_mismatch"


async def test_uploading_to_a_fortnox_closing_is_409(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    closing = await create_closing(client, auth_headers, source="fortnox")

    response = await _upload(client, auth_headers, closing["id"], "Sie4.se", _read(CORPUS_DIR / "Sie4.se"))

    assert response.status_code == 409
    assert response.json()["code"] == "data_source_mismatch"


async def test_after_switching_the_data_source_the_upload_is_accepted(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    path = CORPUS_DIR / "Sie4.se"
    document = read_document(path)
    year = next(y for y in document.financial_years if y.index == 0)
    closing = await create_closing(client, auth_headers, source="fortnox", start=year.start, end=year.end)

    patched = await client.patch(
        f"/v1/closings/{closing['id']}", json={"data_source": "sie"}, headers=auth_headers
    )
    response = await _upload(client, auth_headers, closing["id"], path.name, _read(path))

    assert patched.status_code == 200 and patched.json()["data_source"] == "sie"
    assert response.status_code == 202
