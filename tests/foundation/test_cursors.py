"""One cursor codec for every list: round trips, and every cursor a list did not make is a 422 naming
``cursor`` (a cursor of another list, of the wrong shape, with values of the wrong type or out of range),
never a 500, on every keyset-paginated list, against PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.config import Settings
from ledgerlink.errors import Unprocessable
from ledgerlink.models import (
    AccountStatus,
    BankAccount,
    BankConnection,
    Company,
    ConnectionStatus,
    ImportedTransaction,
    Plan,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    TransactionStatus,
)
from ledgerlink.models.closing import (
    Adjustment,
    Closing,
    ClosingAccount,
    ClosingImport,
    ClosingVoucher,
    DataSource,
    JobStatus,
)
from ledgerlink.pagination import Instant, Keyset
from tests.conftest import make_token


def legacy(values: Any) -> str:
    """A cursor in the shape the lists used to make (a bare base64 JSON array)."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


# --------------------------------------------------------------------------- the codec


def test_round_trip_of_every_kind() -> None:
    keyset = Keyset("things", Instant, dt.date, uuid.UUID, int, str)
    at = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    rid = uuid.uuid4()
    cursor = keyset.encode(at, dt.date(2026, 2, 28), rid, 2**62, "1930")
    assert keyset.decode(cursor) == (at, dt.date(2026, 2, 28), rid, 2**62, "1930")
    assert keyset.decode(cursor)[0].tzinfo == dt.UTC  # type: ignore[index]
    assert keyset.decode(None) is None


def test_a_naive_timestamp_from_sqlite_is_utc() -> None:
    keyset = Keyset("things", Instant)
    naive = dt.datetime(2026, 3, 1, 12, 0)
    assert keyset.decode(keyset.encode(naive)) == (naive.replace(tzinfo=dt.UTC),)


# fixed values: the test ids must be the same in every xdist worker
FIXED_ID = "1f1ce091-0bbe-4178-bca7-85b7171a0019"


@pytest.mark.parametrize(
    "cursor",
    [
        Keyset("other-list", Instant, uuid.UUID).encode(
            dt.datetime(2026, 1, 1, tzinfo=dt.UTC), uuid.UUID(FIXED_ID)
        ),
        legacy(["2026-01-01T00:00:00+00:00", FIXED_ID]),
        legacy({"l": "things", "v": ["2026-01-01", FIXED_ID]}),
        legacy({"l": "things", "v": [12, FIXED_ID]}),
        legacy({"l": "things", "v": ["0001-01-01T00:00:00+14:00", FIXED_ID]}),
        legacy({"l": "things", "v": ["2026-01-01T00:00:00+00:00", "not-a-uuid"]}),
        legacy({"l": "things", "v": ["2026-01-01T00:00:00+00:00"]}),
        legacy({"l": "things", "v": [["nested"], {"x": 1}]}),
        legacy({"l": "things"}),
        legacy("a string"),
        "!!!",
        "åäö",
        "e30",
    ],
)
def test_any_cursor_this_list_did_not_make_is_422_naming_cursor(cursor: str) -> None:
    keyset = Keyset("things", Instant, uuid.UUID)
    with pytest.raises(Unprocessable) as caught:
        keyset.decode(cursor)
    assert caught.value.instance_code == "invalid_cursor"
    assert caught.value.extra["errors"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, True, 1.5, "12"])
def test_integers_out_of_range_or_of_another_type_are_refused(value: Any) -> None:
    with pytest.raises(Unprocessable):
        Keyset("n", int).decode(legacy({"l": "n", "v": [value]}))


@pytest.mark.parametrize("value", ["\u0000", "a\nb", "x" * 101, 7])
def test_texts_must_be_short_and_printable(value: Any) -> None:
    with pytest.raises(Unprocessable):
        Keyset("t", str).decode(legacy({"l": "t", "v": [value]}))


# --------------------------------------------------------------------------- every list, on PostgreSQL


async def seed(sessionmaker: async_sessionmaker[AsyncSession], company_id: uuid.UUID) -> dict[str, str]:
    """Two rows of every keyset-paginated list, inserted directly (the lists are what is under test)."""
    now = dt.datetime.now(dt.UTC)
    async with sessionmaker() as s:
        s.add(Company(id=company_id, name="Cursor AB", plan=Plan.business))
        connections = [
            BankConnection(
                id=uuid.uuid4(), company_id=company_id, bank_id="sandbox", account_type="business",
                status=ConnectionStatus.active,
            )
            for _ in range(2)
        ]  # fmt: skip
        s.add_all(connections)
        await s.flush()
        accounts = [
            BankAccount(
                id=uuid.uuid4(), company_id=company_id, connection_id=connections[0].id, bank_id="sandbox",
                external_id=f"acc-{i}", identity_key=f"acc-{i}", currency="SEK", sync_from=dt.date(2026, 1, 1),
                status=AccountStatus.active,
            )
            for i in range(2)
        ]  # fmt: skip
        s.add_all(accounts)
        await s.flush()
        s.add_all(
            SyncRun(
                company_id=company_id, account_id=accounts[0].id, trigger=SyncTrigger.manual,
                status=SyncStatus.succeeded, created_at=now - dt.timedelta(minutes=i),
            )
            for i in range(2)
        )  # fmt: skip
        s.add_all(
            ImportedTransaction(
                company_id=company_id, account_id=accounts[0].id, identity=f"t{i}", booking_status="booked",
                booking_date=dt.date(2026, 1, 10 + i), amount=Decimal("-1.00"), currency="SEK",
                status=TransactionStatus.unbooked, first_seen_at=now, last_seen_at=now,
            )
            for i in range(2)
        )  # fmt: skip
        closings = [
            Closing(
                id=uuid.uuid4(), company_id=company_id, financial_year_start=dt.date(2025 - i, 1, 1),
                financial_year_end=dt.date(2025 - i, 12, 31), data_source=DataSource.sie,
            )
            for i in range(2)
        ]  # fmt: skip
        s.add_all(closings)
        await s.flush()
        imported = ClosingImport(
            id=uuid.uuid4(), company_id=company_id, closing_id=closings[0].id, source=DataSource.sie,
            status=JobStatus.succeeded,
        )  # fmt: skip
        s.add(imported)
        await s.flush()
        closings[0].current_import_id = imported.id
        s.add_all(
            ClosingAccount(
                import_id=imported.id, number=n, company_id=company_id, name=n, opening_balance=Decimal(0),
                closing_balance=Decimal(0), period_change=Decimal(0),
            )
            for n in ("1510", "2440")
        )  # fmt: skip
        s.add_all(
            ClosingVoucher(
                id=uuid.uuid4(), import_id=imported.id, company_id=company_id, seq=i, series="A",
                number=str(i), date=dt.date(2025, 12, 31),
            )
            for i in range(2)
        )  # fmt: skip
        s.add_all(
            Adjustment(
                company_id=company_id, closing_id=closings[0].id, date=dt.date(2025, 12, 31),
                description=f"adj {i}", created_at=now - dt.timedelta(minutes=i),
            )
            for i in range(2)
        )  # fmt: skip
        await s.commit()
        return {"closing_id": str(closings[0].id), "account_id": str(accounts[0].id)}


LISTS = [
    "/v1/closings",
    "/v1/closings/{closing_id}/adjustments",
    "/v1/closings/{closing_id}/vouchers",
    "/v1/closings/{closing_id}/accounts",
    "/v1/transactions",
    "/v1/bank-connections",
    "/v1/bank-accounts",
    "/v1/bank-accounts/{account_id}/syncs",
]

#: Well-formed cursors of the shapes the lists used to make, with values of the wrong type or range.
WRONG_SHAPES = [
    legacy(["2026-01-01", str(uuid.uuid4())]),  # a transactions cursor: a date where a timestamp is
    legacy(["2026-01-01T00:00:00", str(uuid.uuid4())]),
    legacy(["0001-01-01T00:00:00-14:00", str(uuid.uuid4())]),
    legacy(["abc"]),
    legacy([10**30]),
    legacy(["\u0000"]),
    legacy([{"a": 1}, [1]]),
]


async def test_every_list_pages_with_its_own_cursor_and_refuses_every_other(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    company_id = uuid.uuid4()
    ids = await seed(sessionmaker, company_id)
    headers = {"Authorization": f"Bearer {make_token(settings, company_id, 'banking closing')}"}
    cursors: dict[str, str] = {}
    for path in LISTS:
        url = path.format(**ids)
        first = await client.get(url, params={"limit": 1}, headers=headers)
        assert first.status_code == 200, (path, first.text)
        cursor = first.json()["next_cursor"]
        assert cursor, path
        second = await client.get(url, params={"limit": 1, "cursor": cursor}, headers=headers)
        assert second.status_code == 200, (path, second.text)
        assert second.json()["items"] and second.json()["items"] != first.json()["items"], path
        cursors[path] = cursor
    problems = []
    for path in LISTS:
        url = path.format(**ids)
        foreign = [c for p, c in cursors.items() if p != path]
        for cursor in [*foreign, *WRONG_SHAPES]:
            response = await client.get(url, params={"cursor": cursor}, headers=headers)
            body = response.json()
            if response.status_code != 422 or body.get("code") != "invalid_cursor":
                problems.append(f"{path} {cursor}: {response.status_code} {response.text[:200]}")
            elif body["errors"][0]["loc"] != ["query", "cursor"]:
                problems.append(f"{path}: 422 not naming cursor: {body}")
    assert problems == [], "\n".join(problems)
