"""Hostile or oversized SIE uploads: what the ledger cannot store, or what is beyond the limits, is 422
naming the line at upload (never a job failing as ``internal_error``), and a large file is stored and
imported in parts (PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ledgerlink.config import Settings
from tests.closing.conftest import RunJobs, all_pages, create_closing

HEAD = [
    "#FLAGGA 0",
    "#FORMAT PC8",
    "#SIETYP 4",
    "#RAR 0 20250101 20251231",
    '#KONTO 1930 "Bank"',
    '#KONTO 3001 "Försäljning"',
]


def _file(*lines: str) -> bytes:
    return ("\r\n".join([*HEAD, *lines]) + "\r\n").encode("cp437", errors="strict")


def _voucher(*rows: str, head: str = '#VER A 1 20250115 "Sålt"') -> list[str]:
    return [head, "{", *rows, "}"]


async def _upload(client: httpx.AsyncClient, headers: dict[str, str], content: bytes) -> httpx.Response:
    closing = await create_closing(client, headers, source="sie")
    return await client.post(
        f"/v1/closings/{closing['id']}/imports/sie",
        files={"file": ("x.se", content, "application/octet-stream")},
        headers=headers,
    )


CASES: dict[str, tuple[bytes, int, str]] = {
    "5000_digit_account": (
        _file(*_voucher("#TRANS " + "1" * 5000 + " {} 100.00", "#TRANS 3001 {} -100.00")),
        9,
        "account number longer than 20",
    ),
    "5000_digit_account_in_the_chart": (_file("#KONTO " + "9" * 5000 + ' "x"'), 7, "longer than"),
    "32_digit_amount": (
        _file(*_voucher("#TRANS 1930 {} " + "9" * 32 + ".00", "#TRANS 3001 {} -1.00")),
        9,
        "more than 14 digits",
    ),
    "32_digit_balance": (_file("#IB 0 1930 " + "9" * 32), 7, "more than 14 digits"),
    "nul_byte": (
        _file(*_voucher('#TRANS 1930 {} 100.00 20250115 "a\x00b"', "#TRANS 3001 {} -100.00")),
        9,
        "NUL",
    ),
    "long_series": (
        _file(*_voucher("#TRANS 1930 {} 1", "#TRANS 3001 {} -1", head="#VER " + "S" * 30 + ' 1 20250115 ""')),
        7,
        "series or number",
    ),
    "long_text": (
        _file(
            *_voucher("#TRANS 1930 {} 1", "#TRANS 3001 {} -1", head='#VER A 1 20250115 "' + "t" * 2000 + '"')
        ),
        7,
        "longer than 1000",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_what_the_ledger_cannot_store_is_422_naming_the_line_at_upload(
    client: httpx.AsyncClient, auth_headers: dict[str, str], run_jobs: RunJobs, case: str
) -> None:
    content, line, words = CASES[case]

    response = await _upload(client, auth_headers, content)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "sie_invalid"
    assert problem["line_number"] == line
    assert f"line {line}:" in problem["detail"]
    assert words in problem["detail"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.limits.sie_max_accounts = 50
    settings.limits.sie_max_rows_per_voucher = 100
    settings.limits.sie_max_records = 200
    return settings


async def test_a_chart_beyond_the_account_limit_is_422_at_the_first_account_too_many(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    chart = [f'#KONTO {4000 + n} "Konto {n}"' for n in range(100)]  # 2 in HEAD, so the 49th here is the 51st

    response = await _upload(client, auth_headers, _file(*chart))

    assert response.status_code == 422
    assert response.json()["line_number"] == len(HEAD) + 49
    assert "more than 50 accounts" in response.json()["detail"]


async def test_a_voucher_beyond_the_row_limit_is_422_at_its_first_row_too_many(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    rows = ["#TRANS 1930 {} 1.00", "#TRANS 3001 {} -1.00"] * 60

    response = await _upload(client, auth_headers, _file(*_voucher(*rows)))

    assert response.status_code == 422
    assert response.json()["line_number"] == len(HEAD) + 2 + 101
    assert "more than 100 rows" in response.json()["detail"]


async def test_balances_beyond_the_record_limit_are_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    balances = [f"#PSALDO 0 2025{1 + n % 12:02d} 1930 {{}} {n}.00" for n in range(300)]

    response = await _upload(client, auth_headers, _file(*balances))

    assert response.status_code == 422
    assert "more than 200 records" in response.json()["detail"]


async def test_a_file_of_many_parts_imports_whole(
    client: httpx.AsyncClient, auth_headers: dict[str, str], run_jobs: RunJobs
) -> None:
    """Over 3 MB: stored in parts of a megabyte and read back in order."""
    vouchers = 40_000
    lines: list[str] = []
    for n in range(1, vouchers + 1):
        lines += _voucher(
            f"#TRANS 1930 {{}} {n}.00", f"#TRANS 3001 {{}} -{n}.00", head=f'#VER A {n} 20250115 "Sålt {n}"'
        )
    content = _file(*lines)
    assert len(content) > 3 << 20

    response = await _upload(client, auth_headers, content)
    assert response.status_code == 202, response.text
    await run_jobs()

    closing_id = response.json()["closing_id"]
    job = (
        await client.get(f"/v1/closings/{closing_id}/imports/{response.json()['id']}", headers=auth_headers)
    ).json()
    assert job["status"] == "succeeded", job
    assert job["counts"]["vouchers"] == vouchers
    accounts: list[dict[str, Any]] = await all_pages(
        client, f"/v1/closings/{closing_id}/accounts", auth_headers
    )
    by_number = {a["number"]: a["closing_balance"] for a in accounts}
    total = vouchers * (vouchers + 1) // 2
    assert by_number == {"1930": f"{total}.00", "3001": f"-{total}.00"}


@pytest.mark.parametrize("year", [9999, 1, 2200])
async def test_a_closing_for_a_year_far_outside_is_422_naming_the_field(
    client: httpx.AsyncClient, auth_headers: dict[str, str], year: int
) -> None:
    response = await client.post(
        "/v1/closings",
        json={
            "financial_year_start": f"{year:04d}-01-01",
            "financial_year_end": f"{year:04d}-12-31",
            "data_source": "sie",
        },
        headers=auth_headers,
    )

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][:2] == ["body", "financial_year_start"]


async def test_amounts_that_add_up_beyond_what_the_ledger_stores_are_422_naming_the_account(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    rows = ["#TRANS 1930 {} 99999999999999.00"] * 75  # each fits; their sum does not
    two = [*_voucher(*rows), *_voucher(*rows, head='#VER A 2 20250116 "Mer"')]

    response = await _upload(client, auth_headers, _file(*two))

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "sie_invalid"
    assert "account 1930" in response.json()["detail"]
