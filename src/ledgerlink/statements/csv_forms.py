"""The CSV exports of Nordea, SEB, Handelsbanken and Swedbank: pure functions from bytes to a statement.

Each bank's form is described once (:data:`FORMS`): its header columns, which column is what, its decimal
mark and date forms. The form is detected from the header line when the caller does not name it.

* Swedbank: a ``* Transaktioner Period …`` line, then ``Radnummer,…,Bokföringsdag,…,Referens,Beskrivning,
  Belopp,Bokfört saldo``; decimal point; cp1252.
* Nordea: ``Bokföringsdag;Belopp;Avsändare;Mottagare;Namn;Rubrik;Saldo;Valuta``; decimal comma;
  ``YYYY/MM/DD``; UTF-8 with BOM; a pending row says ``Reserverat`` instead of a booking date.
* Handelsbanken: an HTML table saved as ``.xls`` (or the same columns as CSV):
  ``Reskontradatum,Transaktionsdatum,Text,Belopp,Saldo``.
* SEB: ``Bokföringsdatum,Valutadatum,Verifikationsnummer,Text/mottagare,Belopp,Saldo``.

Encodings: UTF-8 with or without BOM, else cp1252 (a superset of ISO-8859-1 for the letters used).
Amounts: decimal comma or point, thousands separated by spaces (also no-break and thin), dots or commas.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

from ledgerlink.statements.errors import StatementFormatUnknown, StatementUnreadable
from ledgerlink.statements.model import ParsedStatement, StatementFormat, StatementRow

PENDING_WORDS = {"reserverat", "reserverad", "prel", "preliminär"}


@dataclass(frozen=True, slots=True)
class CsvForm:
    format: StatementFormat
    booking: str
    amount: str
    decimal: str  # "," or "." (the other mark, when present, separates thousands)
    value_date: str | None = None
    balance: str | None = None
    texts: tuple[str, ...] = ()
    counterparty: str | None = None
    reference: str | None = None
    bank_ref: str | None = None
    currency: str | None = None

    @property
    def required(self) -> set[str]:
        return {c.casefold() for c in (self.booking, self.amount, *self.texts) if c}


#: The four forms side by side, one row a field of :class:`CsvForm` and one column a bank (in the order
#: of ``_BANKS``): what the export calls the booking date, the amount ... (None: it has no such column).
_BANKS: tuple[StatementFormat, ...] = ("csv_swedbank", "csv_nordea", "csv_handelsbanken", "csv_seb")
_COLUMNS: tuple[tuple[str, Any, Any, Any, Any], ...] = (
    ("booking", "Bokföringsdag", "Bokföringsdag", "Reskontradatum", "Bokföringsdatum"),
    ("value_date", "Valutadag", None, "Transaktionsdatum", "Valutadatum"),
    ("amount", "Belopp", "Belopp", "Belopp", "Belopp"),
    ("decimal", ".", ",", ",", ","),
    ("balance", "Bokfört saldo", "Saldo", "Saldo", "Saldo"),
    ("texts", ("Beskrivning",), ("Rubrik",), ("Text",), ("Text/mottagare",)),
    ("counterparty", None, "Namn", None, None),
    ("reference", "Referens", None, None, None),
    ("bank_ref", None, None, None, "Verifikationsnummer"),
    ("currency", "Valuta", "Valuta", None, None),
)


def _form(fmt: StatementFormat) -> CsvForm:
    column = 1 + _BANKS.index(fmt)
    fields: dict[str, Any] = {row[0]: row[column] for row in _COLUMNS}
    return CsvForm(fmt, **fields)


FORMS: dict[StatementFormat, CsvForm] = {fmt: _form(fmt) for fmt in _BANKS}
# Nordea's header is told from Swedbank's by its own columns (both say Bokföringsdag)
_SIGNATURE: dict[StatementFormat, set[str]] = {
    "csv_swedbank": {"radnummer", "bokföringsdag", "belopp"},
    "csv_nordea": {"bokföringsdag", "belopp", "rubrik"},
    "csv_handelsbanken": {"reskontradatum", "belopp"},
    "csv_seb": {"bokföringsdatum", "valutadatum", "belopp"},
}


def decode(data: bytes) -> str:
    """UTF-8 (BOM dropped) when it decodes, else cp1252 (Swedish Windows exports)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


class _TableReader(HTMLParser):
    """The cells of every table row of an HTML page (Handelsbanken's ``.xls``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._row = []
        elif tag in {"td", "th"} and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"} and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-empty line; HTML tables count their rows as lines."""
    if re.search(r"<\s*(table|html)\b", text[:4096], re.IGNORECASE):
        reader = _TableReader()
        reader.feed(text)
        return [(i, r) for i, r in enumerate(reader.rows, start=1) if any(c for c in r)]
    lines = text.splitlines()
    header = next((ln for ln in lines if not ln.lstrip().startswith("*") and ln.strip()), "")
    delimiter = max(";,\t", key=header.count)
    out: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = next(csv.reader(io.StringIO(line), delimiter=delimiter))
        out.append((number, [c.strip() for c in cells]))
    return out


def detect(header: list[str]) -> StatementFormat | None:
    names = {c.casefold() for c in header}
    for fmt, signature in _SIGNATURE.items():
        if signature <= names:
            return fmt
    return None


def parse_amount(raw: str, decimal: str) -> Decimal:
    """A bank amount: ``-1 234,50``, ``1.234,50``, ``-1234.50``, ``1,234.50``; a minus may be U+2212."""
    value = raw.strip().replace("\u2212", "-").replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    value = value.removesuffix("kr").removesuffix("SEK").strip()
    thousands = "." if decimal == "," else ","
    if decimal == "," and "," not in value and value.count(".") == 1 and len(value.split(".")[1]) != 3:
        thousands, decimal = ",", "."  # a decimal point in a comma form (some exports mix)
    value = value.replace(thousands, "").replace(decimal, ".")
    if not re.fullmatch(r"[+-]?\d+(\.\d+)?", value):
        raise ValueError(raw)
    return Decimal(value)


def parse_date(raw: str) -> dt.date:
    value = raw.strip()
    for pattern in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise ValueError(raw)


def parse_csv(data: bytes, fmt: StatementFormat | None = None) -> ParsedStatement:
    """Read a bank's CSV (or Handelsbanken's HTML) export. ``fmt`` None detects the form from the header."""
    rows = _rows(decode(data))
    header_at: int | None = None
    detected: StatementFormat | None = None
    for index, (_, cells) in enumerate(rows[:20]):
        detected = detect(cells)
        if detected is not None:
            header_at = index
            break
    if header_at is None or detected is None:
        raise StatementFormatUnknown(
            "no header line of a known bank export (Nordea, SEB, Handelsbanken, Swedbank) was found",
            loc=["file"],
        )
    if fmt is not None and fmt != detected:
        raise StatementFormatUnknown(f"the file's header is that of {detected}, not {fmt}", loc=["format"])
    form = FORMS[detected]
    header = [c.casefold() for c in rows[header_at][1]]
    col = {name: i for i, name in enumerate(header)}

    def cell(cells: list[str], name: str | None) -> str | None:
        if name is None or name.casefold() not in col:
            return None
        i = col[name.casefold()]
        return (cells[i].strip() or None) if i < len(cells) else None

    parsed = ParsedStatement(format=detected)
    for number, cells in rows[header_at + 1 :]:
        if sum(1 for c in cells if c) <= 1:
            continue  # a footer or a blank separator
        where = f"line {number}"
        booking_raw = cell(cells, form.booking) or ""
        pending = booking_raw.casefold() in PENDING_WORDS
        try:
            amount = parse_amount(cell(cells, form.amount) or "", form.decimal)
        except ValueError:
            raise StatementUnreadable(
                f"{where}: {cell(cells, form.amount)!r} in column {form.amount} is not an amount",
                loc=["file", where],
            ) from None
        try:
            value_date = parse_date(v) if (v := cell(cells, form.value_date)) else None
            booking = value_date if pending else parse_date(booking_raw)
        except ValueError as exc:
            raise StatementUnreadable(
                f"{where}: {exc.args[0]!r} is not a date", loc=["file", where]
            ) from None
        if booking is None:
            booking = dt.date.min  # a reserved row has no date yet: dated after the loop
        balance = None
        if (raw_balance := cell(cells, form.balance)) is not None:
            try:
                balance = parse_amount(raw_balance, form.decimal)
            except ValueError:
                raise StatementUnreadable(
                    f"{where}: {raw_balance!r} in column {form.balance} is not an amount", loc=["file", where]
                ) from None
        texts = [t for t in (cell(cells, name) for name in form.texts) if t]
        currency = (cell(cells, form.currency) or "SEK").upper()
        parsed.rows.append(
            StatementRow(
                booking_date=booking,
                value_date=value_date,
                amount=amount,
                currency=currency,
                booked=not pending,
                bank_ref=cell(cells, form.bank_ref),
                text=" ".join(texts) or None,
                counterparty=cell(cells, form.counterparty),
                reference=cell(cells, form.reference),
                balance_after=balance,
                line=number,
            )
        )
    dates = [r.booking_date for r in parsed.rows if r.booking_date != dt.date.min]
    newest = max(dates) if dates else None
    if newest is None and any(r.booking_date == dt.date.min for r in parsed.rows):
        raise StatementUnreadable("the file holds only reserved rows without dates", loc=["file"])
    parsed.rows = [
        replace(r, booking_date=newest) if r.booking_date == dt.date.min and newest else r
        for r in parsed.rows
    ]
    parsed.currency = parsed.rows[0].currency if parsed.rows else "SEK"
    return parsed
