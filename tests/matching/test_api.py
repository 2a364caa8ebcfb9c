"""Open items, booking rules, suggestions and booking feedback through the API."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from ledgerlink.banks.adapters.base import BankTransaction, BookingStatus
from ledgerlink.matching.references import make_ocr
from ledgerlink.models import AccountStatus, BankAccount, BankConnection, ConnectionStatus, OpenItem
from ledgerlink.models import ImportedTransaction as TxRow
from ledgerlink.sync.service import write_transactions
from tests.conftest import make_token

OCR = make_ocr("4521000")


def open_item(ext: str, amount: str, **extra: Any) -> dict[str, Any]:
    return {
        "external_id": ext,
        "kind": "customer_invoice",
        "number": ext.upper(),
        "counterparty_name": "Kund AB",
        "currency": "SEK",
        "amount_open": amount,
        "invoice_date": "2026-02-01",
        "due_date": "2026-03-01",
        **extra,
    }


async def seed_rows(sessionmaker: Any, company_id: uuid.UUID, rows: list[BankTransaction]) -> uuid.UUID:
    async with sessionmaker() as s:
        conn = BankConnection(id=uuid.uuid4(), company_id=company_id, bank_id="sandbox",
                              account_type="business", status=ConnectionStatus.active)  # fmt: skip
        s.add(conn)
        await s.flush()
        account = BankAccount(
            id=uuid.uuid4(), company_id=company_id, connection_id=conn.id, bank_id="sandbox",
            external_id="ftg-m", identity_key="ftg-m", currency="SEK", ledger_account="1940",
            sync_from=dt.date(2026, 1, 1), status=AccountStatus.active,
        )  # fmt: skip
        s.add(account)
        await s.commit()
    await write_transactions(sessionmaker, company_id, account.id, rows)
    return account.id


def tx(
    amount: str, day: int, pid: str, counterparty: str | None, reference: str | None = None
) -> BankTransaction:
    return BankTransaction(BookingStatus.booked, Decimal(amount), "SEK", dt.date(2026, 3, day), provider_id=pid,
                           counterparty=counterparty, reference=reference)  # fmt: skip


async def ids_by_provider(sessionmaker: Any) -> dict[str, uuid.UUID]:
    async with sessionmaker() as s:
        return {r.provider_id: r.id for r in (await s.execute(select(TxRow))).scalars()}


async def test_open_items_upsert_close_list_delete(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    batch = {"items": [open_item(f"inv-{n}", f"{100 + n}.00") for n in range(5)]}
    first = await client.post("/v1/open-items/batch", json=batch, headers=auth_headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"upserted": 5, "closed": 0}
    again = await client.post("/v1/open-items/batch", json=batch, headers=auth_headers)
    assert again.json() == {"upserted": 5, "closed": 0}
    closing = {"items": [open_item("inv-0", "0.00"), open_item("inv-1", "50.00", ocr=OCR)]}
    assert (await client.post("/v1/open-items/batch", json=closing, headers=auth_headers)).json() == {
        "upserted": 1, "closed": 1,
    }  # fmt: skip
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, "status": "open"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/open-items", params=params, headers=auth_headers)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [i["external_id"] for i in seen] == ["inv-1", "inv-2", "inv-3", "inv-4"]
    assert seen[0]["amount_open"] == "50.00" and seen[0]["ocr"] == OCR
    closed = (await client.get("/v1/open-items", params={"status": "closed"}, headers=auth_headers)).json()
    assert [i["external_id"] for i in closed["items"]] == ["inv-0"]
    assert (await client.delete("/v1/open-items/inv-2", headers=auth_headers)).status_code == 204
    gone = await client.delete("/v1/open-items/inv-2", headers=auth_headers)
    assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json"


async def test_bad_open_items_are_422_naming_the_field_and_write_nothing(
    client: httpx.AsyncClient, auth_headers: dict[str, str], sessionmaker: Any
) -> None:
    bad_ocr = make_ocr("4521000")[:-1] + str((int(OCR[-1]) + 1) % 10)
    cases = [
        (open_item("a", "10.00", ocr=bad_ocr), "ocr"),
        (open_item("a", "-10.00"), "amount_open"),
        (open_item("a", "10.001"), "amount_open"),
        (open_item("a", "1e999999999"), "amount_open"),
        (open_item("a", "10.00", counterparty_org_number="556036-0794"), "counterparty_org_number"),
    ]
    for item, field in cases:
        response = await client.post(
            "/v1/open-items/batch", json={"items": [open_item("ok", "1.00"), item]}, headers=auth_headers
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert any(field in [str(x) for x in e["loc"]] for e in response.json()["errors"]), response.text
    dup = await client.post(
        "/v1/open-items/batch", json={"items": [open_item("a", "1.00")] * 2}, headers=auth_headers
    )
    assert dup.status_code == 422
    async with sessionmaker() as s:
        assert (await s.execute(select(OpenItem))).scalars().all() == []


async def test_a_rule_amount_beyond_any_money_is_422_naming_it(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    rule = {
        "name": "huge",
        "priority": 1,
        "conditions": {"amount_min": "1e999999999"},
        "lines": [{"account": "6212", "share": "1"}],
    }
    response = await client.post("/v1/booking-rules", json=rule, headers=auth_headers)
    assert response.status_code == 422, response.text
    assert any("amount_min" in [str(x) for x in e["loc"]] for e in response.json()["errors"]), response.text


async def test_booking_rules_crud_and_shares(client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    rule = {
        "name": "Telefon", "priority": 10, "conditions": {"counterparty": "Telia", "direction": "out"},
        "lines": [{"account": "6212", "share": "0.8", "vat_code": "MP1"}, {"account": "2641", "share": "0.2"}],
    }  # fmt: skip
    bad = await client.post("/v1/booking-rules", json=rule | {"lines": [{"account": "6212", "share": "0.7"}]},
                            headers=auth_headers)  # fmt: skip
    assert bad.status_code == 422 and "lines" in str(bad.json()["errors"][0]["loc"])
    created = await client.post("/v1/booking-rules", json=rule, headers=auth_headers)
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    assert (await client.get(f"/v1/booking-rules/{rule_id}", headers=auth_headers)).json()[
        "name"
    ] == "Telefon"
    patched = await client.patch(f"/v1/booking-rules/{rule_id}", json={"priority": 3}, headers=auth_headers)
    assert patched.status_code == 200 and patched.json()["priority"] == 3
    listed = (await client.get("/v1/booking-rules", headers=auth_headers)).json()["items"]
    assert [r["id"] for r in listed] == [rule_id]
    assert (await client.delete(f"/v1/booking-rules/{rule_id}", headers=auth_headers)).status_code == 204
    assert (await client.get(f"/v1/booking-rules/{rule_id}", headers=auth_headers)).status_code == 404


async def test_suggestions_match_invoices_and_learn_from_feedback(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    sessionmaker: Any,
    settings: Any,
) -> None:
    await seed_rows(sessionmaker, company_id, [
        tx("1043.00", 5, "ocr", "KUND AB", reference=OCR),
        tx("-349.00", 6, "tel1", "Telia Sverige AB"),
        tx("-349.00", 7, "tel2", "TELIA SVERIGE"),
    ])  # fmt: skip
    ids = await ids_by_provider(sessionmaker)
    await client.post("/v1/open-items/batch", json={"items": [open_item("k1", "1043.00", ocr=OCR)]},
                      headers=auth_headers)  # fmt: skip
    response = await client.get(f"/v1/transactions/{ids['ocr']}/suggestions", headers=auth_headers)
    assert response.status_code == 200, response.text
    best = response.json()["items"][0]
    assert best["kind"] == "invoice" and best["unambiguous"] is True
    assert best["allocations"] == [{"open_item_external_id": "k1", "number": "K1", "amount": "1043.00"}]
    assert {line["account"] for line in best["lines"]} == {"1940", "1510"}  # the account's mapped 1940
    listed = (
        await client.get("/v1/transactions", params={"include": "suggestion"}, headers=auth_headers)
    ).json()
    by_id = {i["id"]: i for i in listed["items"]}
    assert by_id[str(ids["ocr"])]["suggestion"]["allocations"][0]["open_item_external_id"] == "k1"
    # booking feedback: the invoice is paid, the Telia row booked to 6212 + VAT
    booked = await client.patch(f"/v1/transactions/{ids['ocr']}", json={
        "status": "booked", "booking": {"lines": [{"account": "1940", "debit": "1043.00"},
                                                  {"account": "1510", "credit": "1043.00"}],
                                        "open_item_external_ids": ["k1"]}}, headers=auth_headers)  # fmt: skip
    assert booked.status_code == 200, booked.text
    items = (await client.get("/v1/open-items", params={"status": "closed"}, headers=auth_headers)).json()[
        "items"
    ]
    assert [(i["external_id"], i["amount_open"]) for i in items] == [("k1", "0.00")]
    booking = {"lines": [{"account": "1940", "credit": "349.00"}, {"account": "6212", "debit": "279.20"},
                         {"account": "2641", "debit": "69.80"}]}  # fmt: skip
    assert (await client.patch(f"/v1/transactions/{ids['tel1']}", json={"status": "booked", "booking": booking},
                               headers=auth_headers)).status_code == 200  # fmt: skip
    after = (await client.get(f"/v1/transactions/{ids['tel2']}/suggestions", headers=auth_headers)).json()[
        "items"
    ]
    history = after[0]  # learned from one booking, it outranks the generic telephone default
    assert history["kind"] == "history"
    assert [(x["account"], x["debit"]) for x in history["lines"][1:]] == [
        ("6212", "279.20"),
        ("2641", "69.80"),
    ]
    assert "1 of the last 1" in history["reason"]


async def test_history_learned_from_one_counterparty_is_not_lent_to_another_sharing_its_first_word(
    client: httpx.AsyncClient, auth_headers: dict[str, str], company_id: uuid.UUID, sessionmaker: Any
) -> None:
    await seed_rows(sessionmaker, company_id, [
        tx("-250.00", 5, "shb1", "Svenska Handelsbanken AB"),
        tx("-250.00", 6, "shb2", "SVENSKA HANDELSBANKEN"),
        tx("-250.00", 7, "skn", "Svenska Kraftnät"),
    ])  # fmt: skip
    ids = await ids_by_provider(sessionmaker)
    booking = {"lines": [{"account": "1940", "credit": "250.00"}, {"account": "6570", "debit": "250.00"}]}
    booked = await client.patch(f"/v1/transactions/{ids['shb1']}", json={"status": "booked", "booking": booking},
                                headers=auth_headers)  # fmt: skip
    assert booked.status_code == 200, booked.text

    async def kinds(pid: str) -> list[str]:
        answer = await client.get(f"/v1/transactions/{ids[pid]}/suggestions", headers=auth_headers)
        return [s["kind"] for s in answer.json()["items"]]

    assert "history" in await kinds("shb2")  # the same bank, written in capitals without "AB"
    assert "history" not in await kinds("skn")  # "Svenska" is all the two names share


async def test_booking_feedback_bad_input(
    client: httpx.AsyncClient, auth_headers: dict[str, str], company_id: uuid.UUID, sessionmaker: Any
) -> None:
    await seed_rows(sessionmaker, company_id, [tx("100.00", 5, "r", "Kund AB")])
    tid = (await ids_by_provider(sessionmaker))["r"]
    unknown = await client.patch(f"/v1/transactions/{tid}", json={
        "status": "booked", "booking": {"open_item_external_ids": ["nope"]}}, headers=auth_headers)  # fmt: skip
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_open_items"
    unbalanced = await client.patch(f"/v1/transactions/{tid}", json={"status": "booked", "booking": {
        "lines": [{"account": "1930", "debit": "100.00"}]}}, headers=auth_headers)  # fmt: skip
    assert unbalanced.status_code == 422
    ignored = await client.patch(f"/v1/transactions/{tid}", json={"status": "ignored", "booking": {}},
                                 headers=auth_headers)  # fmt: skip
    assert ignored.status_code == 422
    async with sessionmaker() as s:
        assert (await s.get(TxRow, tid)).status.value == "unbooked"  # type: ignore[union-attr]


async def test_an_account_in_non_ascii_digits_is_422_in_booking_lines_and_rules(
    client: httpx.AsyncClient, auth_headers: dict[str, str], company_id: uuid.UUID, sessionmaker: Any
) -> None:
    await seed_rows(sessionmaker, company_id, [tx("-100.00", 5, "r", "Telia")])
    tid = (await ids_by_provider(sessionmaker))["r"]
    wide = "6\uff12\uff11\uff12"  # "6212" with full-width digits: str.isdigit() says yes, BAS says no
    booking = {"lines": [{"account": wide, "debit": "100.00"}, {"account": "1930", "credit": "100.00"}]}
    booked = await client.patch(f"/v1/transactions/{tid}", json={"status": "booked", "booking": booking},
                                headers=auth_headers)  # fmt: skip
    assert booked.status_code == 422 and "account" in str(booked.json()["errors"]), booked.text
    rule = {
        "name": "wide",
        "conditions": {"counterparty": "Telia"},
        "lines": [{"account": wide, "share": "1"}],
    }
    created = await client.post("/v1/booking-rules", json=rule, headers=auth_headers)
    assert created.status_code == 422 and "account" in str(created.json()["errors"]), created.text


async def test_another_company_sees_none_of_it(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    sessionmaker: Any,
    settings: Any,
) -> None:
    await seed_rows(sessionmaker, company_id, [tx("10.00", 5, "r", "Kund AB")])
    tid = (await ids_by_provider(sessionmaker))["r"]
    await client.post(
        "/v1/open-items/batch", json={"items": [open_item("secret", "10.00")]}, headers=auth_headers
    )
    other = {"Authorization": f"Bearer {make_token(settings, uuid.uuid4(), 'banking')}"}
    assert (await client.get("/v1/open-items", headers=other)).json()["items"] == []
    assert (await client.delete("/v1/open-items/secret", headers=other)).status_code == 404
    assert (await client.get(f"/v1/transactions/{tid}/suggestions", headers=other)).status_code == 404
    closing = (await client.get("/v1/open-items", headers=auth_headers)).json()["items"]
    assert [i["external_id"] for i in closing] == ["secret"]


async def test_bgmax_splits_the_lump_sum_row_and_a_resent_file_doubles_nothing(
    client: httpx.AsyncClient, auth_headers: dict[str, str], company_id: uuid.UUID, sessionmaker: Any
) -> None:
    from ledgerlink.bgmax.writer import DepositIn, PaymentIn, write

    o1, o2 = make_ocr("7001"), make_ocr("7002")
    account_id = await seed_rows(sessionmaker, company_id, [
        tx("1900.00", 13, "lump", "BG INSÄTTNING"), tx("1900.00", 20, "later", "BG INSÄTTNING"),
    ])  # fmt: skip
    await client.post("/v1/open-items/batch", headers=auth_headers, json={"items": [
        open_item("a", "1000.00", ocr=o1), open_item("b", "1400.00", ocr=o2, counterparty_name="Annan AB"),
    ]})  # fmt: skip
    content = write([DepositIn(dt.date(2026, 3, 12), [
        PaymentIn(Decimal("1000.00"), o1, "Kund AB"), PaymentIn(Decimal("1400.00"), o2, "Annan AB"),
        PaymentIn(Decimal("-500.00"), o2)])])  # fmt: skip
    url = f"/v1/bank-accounts/{account_id}/bgmax"
    first = await client.post(url, files={"file": ("bg.txt", content)}, headers=auth_headers)
    assert first.status_code == 201, first.text
    ids = await ids_by_provider(sessionmaker)
    (deposit,) = first.json()["deposits"]
    assert deposit == {"date": "2026-03-12", "amount": "1900.00", "payment_count": 3,
                       "transaction_id": str(ids["lump"])}  # fmt: skip
    again = await client.post(url, files={"file": ("bg.txt", content)}, headers=auth_headers)
    assert again.status_code == 200 and again.json() == first.json()
    listed = (
        await client.get("/v1/transactions", params={"include": "suggestion"}, headers=auth_headers)
    ).json()
    row = next(i for i in listed["items"] if i["id"] == str(ids["lump"]))
    assert [(p["amount"], p["ocr_valid"]) for p in row["parts"]] == [("1000.00", True), ("1400.00", True),
                                                                     ("-500.00", True)]  # fmt: skip
    assert {a["open_item_external_id"] for a in row["suggestion"]["allocations"]} == {"a", "b"}
    later = next(i for i in listed["items"] if i["id"] == str(ids["later"]))
    assert later["parts"] == []
    broken = content.replace(b"000000000000100000", b"000000000000100100", 1)
    bad = await client.post(url, files={"file": ("bg.txt", broken)}, headers=auth_headers)
    assert (
        bad.status_code == 422 and "line" in bad.json()["detail"] and bad.json()["line"] == 8
    )  # 01 05 20 26 20 26 21 then the deposit 15
    not_bgmax = await client.post(url, files={"file": ("x.se", b"#FLAGGA 0\r\n")}, headers=auth_headers)
    assert not_bgmax.status_code == 422 and "line 1" in not_bgmax.json()["detail"]


def sie_with_bank_vouchers() -> bytes:
    """A SIE 4 year with three Telia bills paid from 1930 (6212 + VAT) and one customer payment."""
    head = ['#FLAGGA 0', '#FORMAT PC8', '#SIETYP 4', '#PROGRAM "test" 1', '#FNAMN "Historik AB"',
            '#RAR 0 20250101 20251231', '#KONTO 1930 "Bank"', '#KONTO 6212 "Telefon"',
            '#KONTO 2641 "Ingående moms"', '#KONTO 1510 "Kundfordringar"']  # fmt: skip
    vouchers = []
    for n, day in enumerate(("20250115", "20250215", "20250315"), start=1):
        vouchers += [f'#VER A {n} {day} "Telia Sverige faktura"', "{", "#TRANS 6212 {} 400.00",
                     "#TRANS 2641 {} 100.00", "#TRANS 1930 {} -500.00", "}"]  # fmt: skip
    vouchers += [
        '#VER A 4 20250320 "Kund AB inbetalning"',
        "{",
        "#TRANS 1930 {} 900.00",
        "#TRANS 1510 {} -900.00",
        "}",
    ]
    return ("\r\n".join(head + vouchers) + "\r\n").encode("cp437")


async def test_history_seeded_from_an_imported_sie_closing(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    sessionmaker: Any,
    run_jobs: Any,
) -> None:
    await seed_rows(sessionmaker, company_id, [tx("-625.00", 15, "tel", "TELIA SVERIGE AB")])
    created = await client.post("/v1/closings", headers=auth_headers, json={
        "financial_year_start": "2025-01-01", "financial_year_end": "2025-12-31", "data_source": "sie"})  # fmt: skip
    assert created.status_code == 201, created.text
    started = await client.post(f"/v1/closings/{created.json()['id']}/imports/sie",
                                files={"file": ("h.se", sie_with_bank_vouchers())}, headers=auth_headers)  # fmt: skip
    assert started.status_code == 202, started.text
    await run_jobs()
    tid = (await ids_by_provider(sessionmaker))["tel"]
    listed = (
        await client.get("/v1/transactions", params={"include": "suggestion"}, headers=auth_headers)
    ).json()
    from_list = listed["items"][0]["suggestion"]
    items = (await client.get(f"/v1/transactions/{tid}/suggestions", headers=auth_headers)).json()["items"]
    history = items[0]
    assert (
        history["kind"] == "history"
        and history["unambiguous"] is True
        and "3 of the last 3" in history["reason"]
    )
    assert [(x["account"], x["debit"]) for x in history["lines"][1:]] == [
        ("6212", "500.00"),
        ("2641", "125.00"),
    ]
    assert from_list["reason"] == items[0]["reason"]
    again = (await client.get(f"/v1/transactions/{tid}/suggestions", headers=auth_headers)).json()["items"]
    assert again == items  # stored once, not counted twice


async def test_two_bookings_of_one_row_at_once_pay_the_invoice_once(
    client: httpx.AsyncClient, auth_headers: dict[str, str], company_id: uuid.UUID, sessionmaker: Any
) -> None:
    import asyncio

    await seed_rows(sessionmaker, company_id, [tx("60.00", 5, "r", "Kund AB")])
    tid = (await ids_by_provider(sessionmaker))["r"]
    await client.post(
        "/v1/open-items/batch", json={"items": [open_item("k", "100.00")]}, headers=auth_headers
    )
    body = {"status": "booked", "booking": {"open_item_external_ids": ["k"]}}
    answers = await asyncio.gather(
        *(client.patch(f"/v1/transactions/{tid}", json=body, headers=auth_headers) for _ in range(2))
    )
    assert [a.status_code for a in answers] == [200, 200]
    (item,) = (await client.get("/v1/open-items", headers=auth_headers)).json()["items"]
    assert item["amount_open"] == "40.00" and item["status"] == "open"


async def test_the_same_bgmax_file_sent_twice_at_once_splits_the_row_once(
    client: httpx.AsyncClient, auth_headers: dict[str, str], company_id: uuid.UUID, sessionmaker: Any
) -> None:
    import asyncio

    from ledgerlink.bgmax.writer import DepositIn, PaymentIn, write
    from ledgerlink.models import TransactionPart

    account_id = await seed_rows(sessionmaker, company_id, [tx("300.00", 13, "lump", "BG INSÄTTNING")])
    content = write([DepositIn(dt.date(2026, 3, 12), [PaymentIn(Decimal("100.00"), make_ocr("1")),
                                                      PaymentIn(Decimal("200.00"), make_ocr("2"))])])  # fmt: skip
    url = f"/v1/bank-accounts/{account_id}/bgmax"
    answers = await asyncio.gather(
        *(client.post(url, files={"file": ("bg.txt", content)}, headers=auth_headers) for _ in range(3))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    async with sessionmaker() as s:
        assert len((await s.execute(select(TransactionPart))).scalars().all()) == 2
