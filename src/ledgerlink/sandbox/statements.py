"""The sandbox bank's statement side: the ``dropped`` scenario and statement downloads.

``dropped``: the transactions feed leaves out one booked row a month (the first row booked on or after
the 10th) and gives every booked row its ``balanceAfterTransaction`` (the bank's true running balance,
which counts the left-out row), so the balance check finds the gap on its day. The balances endpoint
tells the truth as for every PSU.

``GET /statements/{account_id}?dateFrom=&dateTo=&format=camt053|csv_swedbank`` is the statement a
user downloads from the internet bank: every booked row (the dropped ones too) with the balance after
each, as camt.053.001.02 XML or Swedbank's CSV export (cp1252, decimal point). It needs no consent:
the sandbox accounts are ``<kind>-<psu slug>`` and hold no one's data.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ledgerlink.banks.adapters.base import BookingStatus
from ledgerlink.sandbox.bank_data import (
    CURRENCY,
    SandboxRow,
    account_kind,
    balance_at,
    make_account,
    sandbox_rows,
)

DROP_FROM_DAY = 10


def _booked(account_id: str, first: dt.date, last: dt.date, today: dt.date) -> list[SandboxRow]:
    return [r for r in sandbox_rows(account_id, first, last, today) if r.status is BookingStatus.booked]


def dropped_idents(account_id: str, date_from: dt.date, date_to: dt.date, today: dt.date) -> set[str]:
    """The transaction ids the ``dropped`` feed leaves out in the window: per month, the first row
    booked on or after the 10th (stable: it depends on the month only, not on the window)."""
    out: set[str] = set()
    month = date_from.replace(day=1)
    while month <= date_to:
        start = month.replace(day=DROP_FROM_DAY)
        end = (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        rows = _booked(account_id, start, min(end, today), today) if start <= today else []
        if rows:
            out.add(rows[0].event.ident(BookingStatus.booked))
        month = end + dt.timedelta(days=1)
    return out


def balances_after(account_id: str, rows: Sequence[SandboxRow], today: dt.date) -> dict[str, Decimal]:
    """The true balance after each booked row (by transaction id), the day's rows in the bank's order."""
    out: dict[str, Decimal] = {}
    for day in sorted({r.event.booking_date for r in rows if r.status is BookingStatus.booked}):
        balance = balance_at(account_id, day - dt.timedelta(days=1))
        for row in _booked(account_id, day, day, today):
            balance += row.event.amount
            out[row.event.ident(BookingStatus.booked)] = balance
    return out


def drop_rows(
    account_id: str, report: dict[str, Any], date_from: dt.date, date_to: dt.date, today: dt.date
) -> None:
    """The ``dropped`` scenario applied to one transactions page (in place)."""
    left_out = dropped_idents(account_id, date_from, date_to, today)
    truth = _booked(account_id, date_from, date_to, today)
    after = balances_after(account_id, truth, today)
    kept = []
    for row in report.get("booked", []):
        ident = row.get("transactionId")
        if ident in left_out:
            continue
        if ident in after:
            row["balanceAfterTransaction"] = {
                "balanceType": "closingBooked",
                "balanceAmount": {"amount": format(after[ident], "f"), "currency": CURRENCY},
            }
        kept.append(row)
    report["booked"] = kept


# --------------------------------------------------------------------------- statement download


def _camt053(account_id: str, rows: Sequence[SandboxRow], first: dt.date, last: dt.date) -> bytes:
    account = make_account(account_id)
    opening = balance_at(account_id, first - dt.timedelta(days=1))
    closing = balance_at(account_id, last)

    def bal(code: str, amount: Decimal, day: dt.date) -> str:
        ind = "CRDT" if amount >= 0 else "DBIT"
        return (
            f'<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="{CURRENCY}">{abs(amount)}</Amt>'
            f"<CdtDbtInd>{ind}</CdtDbtInd><Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>"
        )

    entries = []
    for row in rows:
        e = row.event
        ind = "CRDT" if e.amount >= 0 else "DBIT"
        role = "Dbtr" if e.amount >= 0 else "Cdtr"
        entries.append(
            f'<Ntry><Amt Ccy="{CURRENCY}">{abs(e.amount)}</Amt><CdtDbtInd>{ind}</CdtDbtInd><Sts>BOOK</Sts>'
            f"<BookgDt><Dt>{e.booking_date.isoformat()}</Dt></BookgDt><ValDt><Dt>{e.event_date.isoformat()}</Dt></ValDt>"
            f"<AcctSvcrRef>{html.escape(e.ident(BookingStatus.booked))}</AcctSvcrRef><NtryDtls><TxDtls>"
            f"<RltdPties><{role}><Nm>{html.escape(e.counterparty)}</Nm></{role}></RltdPties>"
            f"<RmtInf><Ustrd>{html.escape(e.text)}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
        )
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>SANDBOX-{account_id}-{last:%Y%m%d}</MsgId></GrpHdr>"
        f"<Stmt><Id>{account_id}-{first:%Y%m%d}-{last:%Y%m%d}</Id>"
        f"<Acct><Id><IBAN>{account.iban}</IBAN></Id><Ccy>{CURRENCY}</Ccy></Acct>"
        f"{bal('OPBD', opening, first - dt.timedelta(days=1))}{bal('CLBD', closing, last)}"
        f"{''.join(entries)}</Stmt></BkToCstmrStmt></Document>"
    )
    return doc.encode("utf-8")


def _swedbank_csv(
    account_id: str, rows: Sequence[SandboxRow], first: dt.date, last: dt.date, today: dt.date
) -> bytes:
    account = make_account(account_id)
    after = balances_after(account_id, rows, today)
    lines = [
        f"* Transaktioner Period {first.isoformat()} – {last.isoformat()} Skapad {today.isoformat()}",
        "Radnummer,Clearingnummer,Kontonummer,Produkt,Valuta,Bokföringsdag,Transaktionsdag,Valutadag,"
        "Referens,Beskrivning,Belopp,Bokfört saldo",
    ]
    for n, row in enumerate(rows, start=1):
        e = row.event
        text = e.text.replace('"', "'")
        lines.append(
            f'{n},"{account.bban[:4]}","{account.bban[4:]}","Företagskonto","{CURRENCY}",'
            f'"{e.booking_date}","{e.event_date}","{e.event_date}","{(e.ocr or e.counterparty).replace(chr(34), "")}",'
            f'"{text}","{e.amount:.2f}","{after[e.ident(BookingStatus.booked)]:.2f}"'
        )
    return "\r\n".join(lines).encode("cp1252", errors="replace")


async def download_statement(request: Request) -> Response:
    """``GET /statements/{account_id}``: the statement of a sandbox account, as the internet bank gives it."""
    bank = request.app.state.bank
    today: dt.date = bank.today()
    account_id = request.path_params["account_id"]
    if account_kind(account_id) is None:
        return JSONResponse({"error": "unknown account"}, status_code=404)
    query = request.query_params
    try:
        last = min(dt.date.fromisoformat(query.get("dateTo") or today.isoformat()), today)
        first = dt.date.fromisoformat(query.get("dateFrom") or (last - dt.timedelta(days=30)).isoformat())
    except ValueError:
        return JSONResponse({"error": "dateFrom or dateTo unreadable"}, status_code=400)
    if first > last:
        return JSONResponse({"error": "dateFrom after dateTo"}, status_code=400)
    rows = _booked(account_id, first, last, today)
    fmt = query.get("format", "camt053")
    if fmt == "camt053":
        body, media, ext = _camt053(account_id, rows, first, last), "application/xml", "xml"
    elif fmt == "csv_swedbank":
        body, media, ext = (
            _swedbank_csv(account_id, rows, first, last, today),
            "text/csv; charset=windows-1252",
            "csv",
        )
    else:
        return JSONResponse({"error": "format is camt053 or csv_swedbank"}, status_code=400)
    name = f"{account_id}-{first:%Y%m%d}-{last:%Y%m%d}.{ext}"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
