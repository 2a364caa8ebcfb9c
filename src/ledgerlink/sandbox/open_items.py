"""The sandbox bank's invoices: open items for its OCR payments and a BgMax file for its deposits.

The business account's incoming Bankgiro rows ("BG inbet") pay customer invoices and its outgoing
Bankgiro/Plusgiro rows pay supplier invoices, each by the OCR on the row. About one incoming row in
three is a Bankgiro deposit instead: a lump sum of two or three customer payments, each with an OCR of
its own, listed in the BgMax file the sandbox serves at ``GET /bgmax?psu=...&from=...&to=...``. With
``make run``: import the sandbox account, push the open items (``ledgerlink sandbox-open-items``),
upload the BgMax file to the account, and the list of transactions shows the invoice matches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ledgerlink.banks.adapters.base import BookingStatus
from ledgerlink.bgmax.writer import DepositIn, PaymentIn, write
from ledgerlink.clock import today_stockholm
from ledgerlink.matching.references import make_ocr
from ledgerlink.money import round_to_ore
from ledgerlink.sandbox.bank_data import SandboxRow, psu_slug, sandbox_rows


@dataclass(frozen=True)
class SandboxInvoices:
    open_items: list[dict[str, Any]]
    deposits: list[DepositIn]


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _item(
    ext: str, kind: str, number: str, ocr: str, name: str, amount: Decimal, day: dt.date
) -> dict[str, Any]:
    return {
        "external_id": ext,
        "kind": kind,
        "number": number,
        "ocr": ocr,
        "counterparty_name": name,
        "currency": "SEK",
        "amount_open": format(amount, "f"),
        "invoice_date": (day - dt.timedelta(days=30)).isoformat(),
        "due_date": day.isoformat(),
    }


def _is_deposit(row: SandboxRow) -> bool:
    return _hash("deposit|" + row.event.ident(BookingStatus.booked)) % 3 == 0


def sandbox_invoices(psu_id: str, date_from: dt.date, date_to: dt.date, as_of: dt.date) -> SandboxInvoices:
    account = f"ftg-{psu_slug(psu_id)}"
    items: list[dict[str, Any]] = []
    deposits: list[DepositIn] = []
    for row in sandbox_rows(account, date_from, date_to, as_of):
        e = row.event
        if row.status is not BookingStatus.booked or not e.ocr or e.code not in ("BG", "PG"):
            continue
        ident = e.ident(BookingStatus.booked)
        number = str(10000 + _hash(ident) % 90000)
        if e.amount < 0:
            items.append(
                _item(
                    f"sb-{ident}", "supplier_invoice", number, e.ocr, e.counterparty, -e.amount, e.event_date
                )
            )
        elif not _is_deposit(row):
            items.append(
                _item(
                    f"sb-{ident}", "customer_invoice", number, e.ocr, e.counterparty, e.amount, e.event_date
                )
            )
        else:
            count = 2 + _hash("count|" + ident) % 2
            shares = [round_to_ore(e.amount * Decimal(s)) for s in ("0.5", "0.3")][: count - 1]
            amounts = [*shares, e.amount - sum(shares, Decimal(0))]
            payments = []
            for k, amount in enumerate(amounts, start=1):
                ocr = make_ocr(str(_hash(f"ocr|{ident}|{k}") % 10**8).zfill(8))
                payer = f"{e.counterparty} avd {k}" if k > 1 else e.counterparty
                items.append(
                    _item(
                        f"sb-{ident}-{k}",
                        "customer_invoice",
                        f"{number}-{k}",
                        ocr,
                        payer,
                        amount,
                        e.event_date,
                    )
                )
                payments.append(PaymentIn(amount, ocr, payer))
            deposits.append(DepositIn(e.event_date, payments, serial=len(deposits) + 1))
    return SandboxInvoices(items, deposits)


async def bgmax_file(request: Request) -> Response:
    """``GET /bgmax?psu=&from=&to=``: the BgMax file of the PSU's business account's deposits."""
    try:
        bank = getattr(request.app.state, "bank", None)
        today = bank.today() if bank is not None else today_stockholm()
        date_from = dt.date.fromisoformat(
            request.query_params.get("from", (today - dt.timedelta(days=90)).isoformat())
        )
        date_to = dt.date.fromisoformat(request.query_params.get("to", today.isoformat()))
    except ValueError:
        return JSONResponse({"error": "from/to must be YYYY-MM-DD"}, status_code=400)
    psu = request.query_params.get("psu", "demo")
    invoices = sandbox_invoices(psu, date_from, date_to, today)
    content = write(invoices.deposits)
    return Response(
        content,
        media_type="text/plain; charset=iso-8859-1",
        headers={"Content-Disposition": f'attachment; filename="bgmax-{psu_slug(psu)}.txt"'},
    )


async def push_open_items(
    settings: Any, company_id: Any, psu_id: str, date_from: dt.date, date_to: dt.date
) -> tuple[int, int]:
    """Upsert the sandbox's open items for the company (what the platform would push): (items, deposits)."""
    from ledgerlink.db.session import create_engine, create_sessionmaker, session_scope
    from ledgerlink.matching.schemas import OpenItemBatch
    from ledgerlink.matching.service import matching

    invoices = sandbox_invoices(psu_id, date_from, date_to, today_stockholm())
    engine = create_engine(settings.database_url)
    try:
        for start in range(0, len(invoices.open_items), 1000):
            batch = OpenItemBatch.model_validate({"items": invoices.open_items[start : start + 1000]})
            async with session_scope(create_sessionmaker(engine)) as session:
                await matching.upsert_open_items(session, company_id, batch)
    finally:
        await engine.dispose()
    return len(invoices.open_items), len(invoices.deposits)
