"""Adjustments (bokföringsorder): validation with named problems, money, listing, deletion, SIE 4I."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.models.closing import Adjustment, ExportState
from ledgerlink.sie import read_document
from tests.closing.conftest import RunJobs, all_pages, create_closing

SIE_FILE = Path("/work/shared/data/sie/Sie4.se")  # financial year 2014, accounts incl. 1510/2440


def _sie_bytes() -> bytes:
    return SIE_FILE.read_bytes()


@pytest.fixture
async def closing(
    client: httpx.AsyncClient, auth_headers: dict[str, str], run_jobs: RunJobs
) -> dict[str, Any]:
    """A SIE closing for 2014 with the chart of Sie4.se imported."""
    created = await create_closing(
        client, auth_headers, source="sie", start=dt.date(2014, 1, 1), end=dt.date(2014, 12, 31)
    )
    started = await client.post(
        f"/v1/closings/{created['id']}/imports/sie",
        files={"file": ("Sie4.se", _sie_bytes())},
        headers=auth_headers,
    )
    assert started.status_code == 202
    await run_jobs()
    return created


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "date": "2014-12-31",
        "description": "Periodisering av hyra",
        "rows": [
            {"account": "1510", "debit": "1250.5", "description": "Upplupen"},
            {"account": "2440", "credit": "1250.50"},
        ],
    }
    body.update(overrides)
    return body


async def _post(
    client: httpx.AsyncClient, headers: dict[str, str], closing: dict[str, Any], body: Any
) -> httpx.Response:
    return await client.post(f"/v1/closings/{closing['id']}/adjustments", json=body, headers=headers)


async def test_an_adjustment_is_created_with_money_as_decimal_strings(
    client: httpx.AsyncClient, auth_headers: dict[str, str], closing: dict[str, Any]
) -> None:
    response = await _post(client, auth_headers, closing, _body())

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["rows"][0] == {
        "account": "1510",
        "debit": "1250.50",
        "credit": "0.00",
        "description": "Upplupen",
    }
    assert created["rows"][1]["credit"] == "1250.50"
    assert created["total"] == "1250.50"
    assert created["export_status"] == "none"
    assert created["fortnox_voucher"] is None
    listed = await all_pages(client, f"/v1/closings/{closing['id']}/adjustments", auth_headers)
    assert [a["id"] for a in listed] == [created["id"]]


async def test_amounts_finer_than_ore_are_refused(
    client: httpx.AsyncClient, auth_headers: dict[str, str], closing: dict[str, Any]
) -> None:
    body = _body(rows=[{"account": "1510", "debit": "10.005"}, {"account": "2440", "credit": "10.01"}])

    response = await _post(client, auth_headers, closing, body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "rows", 0, "debit"]


INVALID = [
    (
        "unbalanced",
        {"rows": [{"account": "1510", "debit": "100"}, {"account": "2440", "credit": "99"}]},
        "do not balance",
    ),
    ("one_row", {"rows": [{"account": "1510", "debit": "0"}]}, "at least two rows"),
    ("no_rows", {"rows": []}, "at least two rows"),
    (
        "unknown_account",
        {"rows": [{"account": "1510", "debit": "100"}, {"account": "9998", "credit": "100"}]},
        "account 9998 is not in the imported chart",
    ),
    (
        "both_debit_and_credit",
        {"rows": [{"account": "1510", "debit": "100", "credit": "100"}, {"account": "2440", "credit": "0"}]},
        "either debit or credit, not both",
    ),
    (
        "neither",
        {
            "rows": [
                {"account": "1510", "debit": "100"},
                {"account": "2440"},
                {"account": "2440", "credit": "100"},
            ]
        },
        "give a debit or a credit",
    ),
    (
        "negative",
        {"rows": [{"account": "1510", "debit": "-100"}, {"account": "2440", "credit": "-100"}]},
        "must not be negative",
    ),
    ("date_after_the_year", {"date": "2015-01-01"}, "outside the financial year"),
    ("date_before_the_year", {"date": "2013-12-31"}, "outside the financial year"),
]


@pytest.mark.parametrize(("case", "overrides", "message"), INVALID, ids=[c[0] for c in INVALID])
async def test_an_invalid_adjustment_is_422_naming_the_problem(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    case: str,
    overrides: dict[str, Any],
    message: str,
) -> None:
    response = await _post(client, auth_headers, closing, _body(**overrides))

    assert response.status_code == 422, case
    problem = response.json()
    assert problem["code"] == "adjustment_invalid"
    assert message in problem["detail"]
    assert problem["errors"][0]["msg"] == problem["detail"]
    assert await all_pages(client, f"/v1/closings/{closing['id']}/adjustments", auth_headers) == []


async def test_an_adjustment_can_be_deleted_until_it_is_exported(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    kept = (await _post(client, auth_headers, closing, _body())).json()
    dropped = (await _post(client, auth_headers, closing, _body(description="Fel"))).json()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Adjustment)
            .where(Adjustment.id == uuid.UUID(kept["id"]))
            .values(export_state=ExportState.posted)
        )

    deleted = await client.delete(
        f"/v1/closings/{closing['id']}/adjustments/{dropped['id']}", headers=auth_headers
    )
    refused = await client.delete(
        f"/v1/closings/{closing['id']}/adjustments/{kept['id']}", headers=auth_headers
    )
    missing = await client.delete(
        f"/v1/closings/{closing['id']}/adjustments/{dropped['id']}", headers=auth_headers
    )

    assert deleted.status_code == 204
    assert refused.status_code == 409
    assert refused.json()["code"] == "adjustment_exported"
    assert missing.status_code == 404
    assert [
        a["id"] for a in await all_pages(client, f"/v1/closings/{closing['id']}/adjustments", auth_headers)
    ] == [kept["id"]]


async def test_the_adjustments_sie_file_reads_back_identically(
    client: httpx.AsyncClient, auth_headers: dict[str, str], closing: dict[str, Any]
) -> None:
    first = (await _post(client, auth_headers, closing, _body())).json()
    three_rows = _body(
        date="2014-06-30",
        description="Avskrivning inventarier åäö",
        rows=[
            {"account": "1510", "debit": "300.00", "description": "Del 1"},
            {"account": "1510", "debit": "0.25"},
            {"account": "2440", "credit": "300.25"},
        ],
    )
    second = (await _post(client, auth_headers, closing, three_rows)).json()

    response = await client.get(f"/v1/closings/{closing['id']}/adjustments.sie", headers=auth_headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; charset=cp437")
    assert "attachment" in response.headers["content-disposition"]
    document = read_document(response.content)
    assert document.variant == "4I"
    assert document.format == "PC8"
    assert [(y.index, y.start, y.end) for y in document.financial_years] == [
        (0, dt.date(2014, 1, 1), dt.date(2014, 12, 31))
    ]
    got = [(v.date, v.text, [(r.account, r.amount, r.text) for r in v.rows]) for v in document.vouchers]
    assert got == [
        (
            dt.date(2014, 12, 31),
            first["description"],
            [("1510", Decimal("1250.50"), "Upplupen"), ("2440", Decimal("-1250.50"), "")],
        ),
        (
            dt.date(2014, 6, 30),
            second["description"],
            [
                ("1510", Decimal("300.00"), "Del 1"),
                ("1510", Decimal("0.25"), ""),
                ("2440", Decimal("-300.25"), ""),
            ],
        ),
    ]
    assert set(document.accounts) == {"1510", "2440"}
    # and writing what was read gives the same document again
    from ledgerlink.sie import dumps_sie

    assert read_document(dumps_sie(document, sie_type="4I")) == document


async def test_adjustments_of_an_unknown_closing_are_404(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    response = await client.post(
        f"/v1/closings/{uuid.uuid4()}/adjustments", json=_body(), headers=auth_headers
    )

    assert response.status_code == 404


async def test_the_adjustments_sie_file_comes_as_octets_when_asked(
    client: httpx.AsyncClient, auth_headers: dict[str, str], closing: dict[str, Any]
) -> None:
    await _post(client, auth_headers, closing, _body())
    url = f"/v1/closings/{closing['id']}/adjustments.sie"
    text = await client.get(url, headers=auth_headers)
    octets = await client.get(url, headers={**auth_headers, "Accept": "application/octet-stream"})
    assert octets.status_code == 200
    assert octets.headers["content-type"] == "application/octet-stream"
    assert octets.content == text.content  # the same cp437 bytes either way
