"""Export of adjustments to the sandbox Fortnox: one voucher per adjustment, exactly once."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.closing.service import voucher_description
from ledgerlink.config import Settings
from ledgerlink.models.closing import Adjustment, AdjustmentRow, ExportState
from ledgerlink.models.events import OutboxEvent
from ledgerlink.sandbox.fortnox import SandboxFortnox
from ledgerlink.sandbox.fortnox_data import SandboxRow, SandboxVoucher
from tests.closing.conftest import RunJobs, create_closing, import_from_fortnox


@pytest.fixture
async def closing(
    client: httpx.AsyncClient, auth_headers: dict[str, str], connected: None, run_jobs: RunJobs
) -> dict[str, Any]:
    """A Fortnox closing for 2025, imported from the sandbox (so the chart is Fortnox's)."""
    created = await create_closing(client, auth_headers)
    job = await import_from_fortnox(client, auth_headers, run_jobs, created["id"])
    assert job["status"] == "succeeded"
    return created


async def adjust(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    closing: dict[str, Any],
    *,
    amount: str = "1250.00",
    day: str = "2025-12-31",
    debit: str = "6570",
    credit: str = "1930",
    description: str = "Periodisering",
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/closings/{closing['id']}/adjustments",
        json={
            "date": day,
            "description": description,
            "rows": [
                {"account": debit, "debit": amount, "description": "Kostnad"},
                {"account": credit, "credit": amount},
            ],
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def export(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    closing: dict[str, Any],
    ids: list[str] | None,
    *,
    series: str = "A",
    key: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"target": "fortnox", "voucher_series": series}
    if ids is not None:
        body["adjustment_ids"] = ids
    extra = {"Idempotency-Key": key} if key else {}
    return await client.post(f"/v1/closings/{closing['id']}/exports", json=body, headers={**headers, **extra})


async def run_export(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    closing: dict[str, Any],
    ids: list[str] | None,
    run_jobs: RunJobs,
    *,
    series: str = "A",
) -> dict[str, Any]:
    started = await export(client, headers, closing, ids, series=series)
    assert started.status_code == 202, started.text
    await run_jobs()
    result = await client.get(f"/v1/closings/{closing['id']}/exports/{started.json()['id']}", headers=headers)
    assert result.status_code == 200
    body: dict[str, Any] = result.json()
    return body


def in_fortnox(sandbox: SandboxFortnox, adjustment: dict[str, Any]) -> list[SandboxVoucher]:
    """The sandbox vouchers carrying this adjustment's marker."""
    marker = f"[ll:{uuid.UUID(adjustment['id']).hex[:12]}]"
    return [v for v in sandbox.company.vouchers if v.description.endswith(marker)]


def rows_of(voucher: SandboxVoucher) -> list[tuple[int, Decimal, Decimal]]:
    return [(r.account, r.debit, r.credit) for r in voucher.rows]


async def test_each_adjustment_becomes_one_voucher_in_the_chosen_series(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first = await adjust(client, auth_headers, closing, amount="1250.50")
    second = await adjust(client, auth_headers, closing, amount="99.00", debit="1510", credit="3001")

    result = await run_export(
        client, auth_headers, closing, [first["id"], second["id"]], run_jobs, series="M"
    )

    assert result["status"] == "succeeded"
    assert result["progress"] == {"done": 2, "total": 2, "step": "done"}
    assert [i["status"] for i in result["items"]] == ["posted", "posted"]
    for adjustment, item in zip((first, second), result["items"], strict=True):
        vouchers = in_fortnox(sandbox, adjustment)
        assert len(vouchers) == 1
        voucher = vouchers[0]
        assert voucher.series == "M"
        assert item["adjustment_id"] == adjustment["id"]
        assert item["fortnox_voucher"] == {"series": "M", "number": voucher.number, "year": voucher.year_id}
        assert voucher.date == dt.date(2025, 12, 31)
        assert voucher.description.startswith("Periodisering")
    assert rows_of(in_fortnox(sandbox, first)[0]) == [
        (6570, Decimal("1250.50"), Decimal("0.00")),
        (1930, Decimal("0.00"), Decimal("1250.50")),
    ]
    assert in_fortnox(sandbox, first)[0].rows[0].text == "Kostnad"
    listed = (await client.get(f"/v1/closings/{closing['id']}/adjustments", headers=auth_headers)).json()[
        "items"
    ]
    assert [a["export_status"] for a in listed] == ["posted", "posted"]
    assert listed[0]["fortnox_voucher"] == result["items"][0]["fortnox_voucher"]
    deleted = await client.delete(
        f"/v1/closings/{closing['id']}/adjustments/{first['id']}", headers=auth_headers
    )
    assert deleted.status_code == 409
    async with sessionmaker() as session:
        events = (
            (await session.execute(select(OutboxEvent).where(OutboxEvent.type == "fortnox.export.completed")))
            .scalars()
            .all()
        )
    assert [e.payload["export_id"] for e in events] == [result["id"]]
    assert events[0].payload["items"] == {"posted": 2}


async def test_without_adjustment_ids_every_adjustment_is_exported(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    adjustments = [await adjust(client, auth_headers, closing, amount=f"{n}00.00") for n in (1, 2, 3)]

    result = await run_export(client, auth_headers, closing, None, run_jobs)

    assert [i["adjustment_id"] for i in result["items"]] == [a["id"] for a in adjustments]
    assert all(len(in_fortnox(sandbox, a)) == 1 for a in adjustments)


async def test_exporting_the_same_adjustments_twice_makes_no_second_voucher(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    adjustment = await adjust(client, auth_headers, closing)
    first = await run_export(client, auth_headers, closing, [adjustment["id"]], run_jobs)
    created = sandbox.counters.created_vouchers

    second = await run_export(client, auth_headers, closing, [adjustment["id"]], run_jobs)

    assert second["id"] != first["id"]
    assert second["items"][0]["status"] == "posted"
    assert second["items"][0]["fortnox_voucher"] == first["items"][0]["fortnox_voucher"]
    assert sandbox.counters.created_vouchers == created
    assert len(in_fortnox(sandbox, adjustment)) == 1


async def test_the_same_idempotency_key_twice_is_one_export(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    adjustment = await adjust(client, auth_headers, closing)

    first = await export(client, auth_headers, closing, [adjustment["id"]], key="export-1")
    second = await export(client, auth_headers, closing, [adjustment["id"]], key="export-1")
    await run_jobs()

    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert sandbox.counters.created_vouchers == 1
    assert len(in_fortnox(sandbox, adjustment)) == 1
    reused = await export(client, auth_headers, closing, None, key="export-1")
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"


async def test_a_timeout_after_fortnox_accepted_the_voucher_then_a_retry_gives_one_voucher(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
    settings: Settings,
) -> None:
    adjustment = await adjust(client, auth_headers, closing)
    other = await adjust(client, auth_headers, closing, amount="10.00")
    settings.fortnox.timeout_seconds = 1.0
    sandbox.faults.stall_after_accept(1, seconds=30)

    first = await run_export(client, auth_headers, closing, [adjustment["id"], other["id"]], run_jobs)
    retry = await run_export(client, auth_headers, closing, [adjustment["id"], other["id"]], run_jobs)

    assert sandbox.counters.created_vouchers == 2
    assert len(in_fortnox(sandbox, adjustment)) == 1
    assert len(in_fortnox(sandbox, other)) == 1
    voucher = in_fortnox(sandbox, adjustment)[0]
    expected = {"series": "A", "number": voucher.number, "year": voucher.year_id}
    # the job itself looked the timed-out voucher up (marker, date, rows) and recorded it
    assert sandbox.counters.by_path["GET /3/vouchers/sublist/A"] >= 1
    assert first["items"][0]["status"] == "posted"
    assert first["items"][0]["fortnox_voucher"] == expected
    assert retry["items"][0]["fortnox_voucher"] == expected


async def _insert_adjustment(
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    closing: dict[str, Any],
    rows: list[tuple[str, str, str]],
    *,
    day: dt.date = dt.date(2025, 12, 31),
    description: str = "Direkt i databasen",
    state: ExportState = ExportState.none,
    export_series: str | None = None,
) -> dict[str, Any]:
    """An adjustment written straight to the database (bypassing the API's validation or simulating a
    crashed export), as the export job finds it."""
    adjustment_id = uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            insert(Adjustment).values(
                id=adjustment_id,
                company_id=company_id,
                closing_id=uuid.UUID(closing["id"]),
                date=day,
                description=description,
                export_state=state,
                export_series=export_series,
            )
        )
        if rows:
            await session.execute(
                insert(AdjustmentRow),
                [
                    {
                        "adjustment_id": adjustment_id,
                        "line_no": n,
                        "account": a,
                        "debit": Decimal(d),
                        "credit": Decimal(c),
                    }
                    for n, (a, d, c) in enumerate(rows, start=1)
                ],
            )
    return {"id": str(adjustment_id), "description": description}


async def test_a_crash_after_sending_is_resolved_by_looking_the_voucher_up(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
) -> None:
    crashed = await _insert_adjustment(
        sessionmaker,
        company_id,
        closing,
        [("6570", "40.00", "0"), ("1930", "0", "40.00")],
        state=ExportState.sending,
        export_series="A",
    )
    async with sessionmaker() as session:
        stored = await session.get(Adjustment, uuid.UUID(crashed["id"]))
    assert stored is not None
    # the voucher the crashed run had sent did reach Fortnox
    sent = sandbox.company.add_voucher(
        "A",
        dt.date(2025, 12, 31),
        voucher_description(stored),
        [SandboxRow(6570, debit=Decimal("40.00")), SandboxRow(1930, credit=Decimal("40.00"))],
    )
    created = sandbox.counters.created_vouchers

    result = await run_export(client, auth_headers, closing, [crashed["id"]], run_jobs)

    assert result["items"][0]["status"] == "posted"
    assert result["items"][0]["fortnox_voucher"] == {
        "series": "A",
        "number": sent.number,
        "year": sent.year_id,
    }
    assert sandbox.counters.created_vouchers == created
    assert len(in_fortnox(sandbox, crashed)) == 1


async def test_an_uncertain_export_whose_voucher_never_arrived_is_sent_once(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
) -> None:
    lost = await _insert_adjustment(
        sessionmaker,
        company_id,
        closing,
        [("6570", "40.00", "0"), ("1930", "0", "40.00")],
        state=ExportState.uncertain,
        export_series="A",
    )

    result = await run_export(client, auth_headers, closing, [lost["id"]], run_jobs)

    assert result["items"][0]["status"] == "posted"
    assert len(in_fortnox(sandbox, lost)) == 1


async def test_two_racing_exports_make_one_voucher_per_adjustment(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    adjustments = [await adjust(client, auth_headers, closing, amount=f"{n}1.00") for n in range(1, 5)]
    ids = [a["id"] for a in adjustments]

    one = await export(client, auth_headers, closing, ids)
    two = await export(client, auth_headers, closing, list(reversed(ids)))
    await run_jobs(max_jobs=10)

    assert sandbox.counters.created_vouchers == len(adjustments)
    for adjustment in adjustments:
        assert len(in_fortnox(sandbox, adjustment)) == 1
    results = [
        (
            await client.get(f"/v1/closings/{closing['id']}/exports/{r.json()['id']}", headers=auth_headers)
        ).json()
        for r in (one, two)
    ]
    vouchers = [{i["adjustment_id"]: i["fortnox_voucher"] for i in r["items"]} for r in results]
    assert all(i["status"] == "posted" for r in results for i in r["items"])
    assert vouchers[0] == vouchers[1]


async def test_invalid_adjustments_fail_as_items_while_the_others_are_posted(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
) -> None:
    good = await adjust(client, auth_headers, closing)
    cases = {
        "do not balance": [("6570", "100", "0"), ("1930", "0", "90")],
        "at least two rows": [("6570", "100", "0")],
        "not in the imported chart": [("6570", "100", "0"), ("9998", "0", "100")],
        "not both": [("6570", "100", "100"), ("1930", "0", "0")],
    }
    bad = [await _insert_adjustment(sessionmaker, company_id, closing, rows) for rows in cases.values()]
    outside = await _insert_adjustment(
        sessionmaker, company_id, closing, [("6570", "5", "0"), ("1930", "0", "5")], day=dt.date(2026, 1, 1)
    )
    also_good = await adjust(client, auth_headers, closing, amount="7.00")
    ids = [good["id"], *(b["id"] for b in bad), outside["id"], also_good["id"]]

    result = await run_export(client, auth_headers, closing, ids, run_jobs)

    items = {i["adjustment_id"]: i for i in result["items"]}
    assert items[good["id"]]["status"] == items[also_good["id"]]["status"] == "posted"
    for adjustment, message in zip([*bad, outside], [*cases, "outside the financial year"], strict=True):
        item = items[adjustment["id"]]
        assert item["status"] == "failed"
        assert item["error"]["code"] == "adjustment_invalid"
        assert message in item["error"]["message"]
        assert in_fortnox(sandbox, adjustment) == []
    assert sandbox.counters.created_vouchers == 2


@pytest.mark.parametrize(
    ("series", "code"),
    [("B", "voucher_series_not_manual"), ("Q", "voucher_series_unknown")],
    ids=["non_manual_series", "missing_series"],
)
async def test_a_series_fortnox_would_refuse_is_422_before_the_export_starts(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
    series: str,
    code: str,
) -> None:
    adjustment = await adjust(client, auth_headers, closing)

    refused = await export(client, auth_headers, closing, [adjustment["id"]], series=series)
    retried = await run_export(client, auth_headers, closing, [adjustment["id"]], run_jobs, series="A")

    assert refused.status_code == 422
    assert refused.json()["code"] == code
    assert f'"{series}"' in refused.json()["detail"]
    assert sandbox.counters.created_vouchers == 1  # only the retry's
    assert retried["status"] == "succeeded"
    assert retried["items"][0]["status"] == "posted"
    assert len(in_fortnox(sandbox, adjustment)) == 1


@pytest.mark.parametrize("series", ["ÅÄÖ/../x", "A B", "../A", "A" * 11, "", "A%2F"])
async def test_a_series_that_is_not_a_series_code_is_422_naming_the_field(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    sandbox: SandboxFortnox,
    series: str,
) -> None:
    adjustment = await adjust(client, auth_headers, closing)
    calls = sandbox.counters.api_requests

    refused = await export(client, auth_headers, closing, [adjustment["id"]], series=series)

    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "voucher_series" in str(refused.json()["errors"][0]["loc"])
    assert sandbox.counters.api_requests == calls  # nothing reached Fortnox


async def test_a_lowercase_series_with_spaces_is_the_series_code(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
) -> None:
    adjustment = await adjust(client, auth_headers, closing)

    result = await run_export(client, auth_headers, closing, [adjustment["id"]], run_jobs, series=" a ")

    assert result["voucher_series"] == "A"
    assert result["items"][0]["fortnox_voucher"]["series"] == "A"


async def test_an_export_whose_every_item_failed_is_failed_and_a_mixed_one_partially_failed(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    sandbox.company.locked_until = dt.date(2025, 6, 30)
    locked = await adjust(client, auth_headers, closing, day="2025-03-31")
    also_locked = await adjust(client, auth_headers, closing, day="2025-04-30", amount="3.00")
    fine = await adjust(client, auth_headers, closing, amount="12.00")

    none_went = await run_export(client, auth_headers, closing, [locked["id"], also_locked["id"]], run_jobs)
    some_went = await run_export(client, auth_headers, closing, [locked["id"], fine["id"]], run_jobs)

    assert none_went["status"] == "failed"
    assert none_went["error"]["code"] == "export_failed"
    assert none_went["error"]["retryable"] is False
    assert [i["status"] for i in none_went["items"]] == ["failed", "failed"]
    assert some_went["status"] == "partially_failed"
    assert some_went["error"]["code"] == "export_partially_failed"
    assert "1 of 2" in some_went["error"]["message"]
    assert [i["status"] for i in some_went["items"]] == ["failed", "posted"]


async def test_a_locked_period_and_an_inactive_account_fail_their_items_and_the_others_go(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    sandbox.company.locked_until = dt.date(2025, 6, 30)
    locked = await adjust(client, auth_headers, closing, day="2025-03-31")
    inactive = await adjust(client, auth_headers, closing, debit="2620")
    fine = await adjust(client, auth_headers, closing, amount="12.00")

    result = await run_export(
        client, auth_headers, closing, [locked["id"], inactive["id"], fine["id"]], run_jobs
    )

    items = {i["adjustment_id"]: i for i in result["items"]}
    assert items[locked["id"]]["status"] == "failed"
    assert items[locked["id"]]["error"]["message"] == "Bokföringen har låst perioden t.o.m. 2025-06-30."
    assert items[inactive["id"]]["status"] == "failed"
    assert items[inactive["id"]]["error"]["message"] == 'Konto "2620" är inte aktivt'
    assert items[fine["id"]]["status"] == "posted"
    assert in_fortnox(sandbox, locked) == in_fortnox(sandbox, inactive) == []
    assert len(in_fortnox(sandbox, fine)) == 1
    listed = {
        a["id"]: a
        for a in (await client.get(f"/v1/closings/{closing['id']}/adjustments", headers=auth_headers)).json()[
            "items"
        ]
    }
    assert listed[locked["id"]]["export_status"] == "failed"
    assert "låst" in listed[locked["id"]]["export_error"]


async def test_exporting_unknown_adjustments_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], closing: dict[str, Any]
) -> None:
    response = await export(client, auth_headers, closing, [str(uuid.uuid4())])
    empty = await export(client, auth_headers, closing, None)

    assert response.status_code == 422
    assert response.json()["code"] == "export_invalid"
    assert empty.status_code == 422
