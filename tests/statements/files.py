"""Statement files in the banks' shapes, built by the tests (no fixtures on disk)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


def camt053(
    entries: Sequence[dict[str, object]],
    *,
    iban: str = "SE4550000000058398257466",
    currency: str = "SEK",
    opening: tuple[str, str] | None = ("1000.00", "2026-01-01"),
    closing: tuple[str, str] | None = None,
) -> bytes:
    """A camt.053.001.02 document; each entry: amount (signed str), date, [ref, text, party, status, valdate]."""

    def bal(code: str, amount: str, day: str) -> str:
        value = Decimal(amount)
        ind = "CRDT" if value >= 0 else "DBIT"
        return (
            f'<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="{currency}">{abs(value)}</Amt>'
            f"<CdtDbtInd>{ind}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>"
        )

    parts = []
    for e in entries:
        value = Decimal(str(e["amount"]))
        ind = "CRDT" if value >= 0 else "DBIT"
        role = "Dbtr" if value >= 0 else "Cdtr"
        ref = f"<AcctSvcrRef>{e['ref']}</AcctSvcrRef>" if e.get("ref") else ""
        party = f"<RltdPties><{role}><Nm>{e['party']}</Nm></{role}></RltdPties>" if e.get("party") else ""
        text = f"<RmtInf><Ustrd>{e['text']}</Ustrd></RmtInf>" if e.get("text") else ""
        valdate = e.get("valdate", e["date"])
        parts.append(
            f'<Ntry><Amt Ccy="{currency}">{abs(value)}</Amt><CdtDbtInd>{ind}</CdtDbtInd>'
            f"<Sts>{e.get('status', 'BOOK')}</Sts><BookgDt><Dt>{e['date']}</Dt></BookgDt>"
            f"<ValDt><Dt>{valdate}</Dt></ValDt>{ref}"
            f"<NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>{party}{text}</TxDtls></NtryDtls>"
            f"</Ntry>"
        )
    balances = (bal("OPBD", *opening) if opening else "") + (bal("CLBD", *closing) if closing else "")
    doc = (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{CAMT_NS}"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>1</MsgId><CreDtTm>2026-02-01T08:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>S1</Id><Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>{currency}</Ccy></Acct>"
        f"{balances}{''.join(parts)}</Stmt></BkToCstmrStmt></Document>"
    )
    return doc.encode()


def sek_comma(value: Decimal) -> str:
    """Swedish form: space-separated thousands, decimal comma (``-1 234,50``)."""
    sign = "-" if value < 0 else ""
    whole, frac = f"{abs(value):.2f}".split(".")
    groups: list[str] = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    return f"{sign}{' '.join(groups)},{frac}"


Row = tuple[dt.date, Decimal, str, Decimal]  # booking date, amount, text, balance after


def nordea_csv(rows: Sequence[Row], *, pending: Sequence[tuple[Decimal, str]] = ()) -> bytes:
    lines = ["Bokföringsdag;Belopp;Avsändare;Mottagare;Namn;Rubrik;Saldo;Valuta"]
    for amount, text in pending:
        lines.append(f"Reserverat;{sek_comma(amount)};;;;{text};;SEK")
    for day, amount, text, balance in rows:
        lines.append(f"{day:%Y/%m/%d};{sek_comma(amount)};;;;{text};{sek_comma(balance)};SEK")
    return b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8")


def swedbank_csv(rows: Sequence[Row]) -> bytes:
    lines = [
        "* Transaktioner Period 2026-01-01 – 2026-01-31 Skapad 2026-02-01 08:00 CET",
        "Radnummer,Clearingnummer,Kontonummer,Produkt,Valuta,Bokföringsdag,Transaktionsdag,Valutadag,"
        "Referens,Beskrivning,Belopp,Bokfört saldo",
    ]
    for n, (day, amount, text, balance) in enumerate(rows, start=1):
        lines.append(
            f'{n},"8327-9","9141234567","Företagskonto","SEK","{day}","{day}","{day}","{text}","{text}",'
            f'"{amount:.2f}","{balance:.2f}"'
        )
    return "\r\n".join(lines).encode("cp1252")


def seb_csv(rows: Sequence[Row]) -> bytes:
    lines = ["Bokföringsdatum;Valutadatum;Verifikationsnummer;Text/mottagare;Belopp;Saldo"]
    for n, (day, amount, text, balance) in enumerate(rows, start=1):
        lines.append(f"{day};{day};5484{n:06d};{text};{sek_comma(amount)};{sek_comma(balance)}")
    return "\n".join(lines).encode("iso-8859-1")


def handelsbanken_xls(rows: Sequence[Row]) -> bytes:
    cells = "".join(
        f"<tr><td>{day}</td><td>{day}</td><td>{text}</td><td>{sek_comma(amount)}</td>"
        f"<td>{sek_comma(balance)}</td></tr>"
        for day, amount, text, balance in rows
    )
    page = (
        "<html><head><meta charset='utf-8'></head><body><table>"
        "<tr><td>Kontoutdrag</td></tr>"
        "<tr><th>Reskontradatum</th><th>Transaktionsdatum</th><th>Text</th><th>Belopp</th><th>Saldo</th></tr>"
        f"{cells}</table></body></html>"
    )
    return page.encode("utf-8")
