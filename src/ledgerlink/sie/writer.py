"""Writing SIE 4E (header, chart, balances, vouchers) and 4I (no balances) in PC8 with CRLF.

What the writer emits, :func:`ledgerlink.sie.reader.read_document` reads back into an equal
:class:`SieDocument` (as long as ``generated`` is set, ``sie_type`` is ``"4"`` and ``format`` is
``"PC8"``, which is all this writer produces). Text fields are always quoted; ``"`` is written
``\\"`` and ``\\`` is written ``\\\\``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import BinaryIO, Literal

from ledgerlink.sie.checksum import Checksum
from ledgerlink.sie.errors import SieWriteError
from ledgerlink.sie.model import (
    Balance,
    ObjectBalance,
    ObjectRef,
    PeriodBalance,
    SieDocument,
    Voucher,
    VoucherRow,
)
from ledgerlink.sie.tokens import split_fields

WriteType = Literal["4E", "4I"]

_ENCODING = "cp437"
_BARE_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-+._:/")


def dumps_sie(document: SieDocument, sie_type: WriteType = "4E", *, checksum: bool = False) -> bytes:
    """The document as SIE bytes (CP437, CRLF). ``checksum`` adds ``#KSUMMA`` records."""
    buffer = io.BytesIO()
    write_sie(document, buffer, sie_type, checksum=checksum)
    return buffer.getvalue()


def write_sie(
    document: SieDocument, stream: BinaryIO, sie_type: WriteType = "4E", *, checksum: bool = False
) -> None:
    """Write the document to a binary stream.

    ``"4E"`` writes everything the model holds; ``"4I"`` leaves out the balances (``#IB``, ``#UB``,
    ``#RES``, ``#OIB``, ``#OUB``, ``#PSALDO``, ``#PBUDGET``), for handing vouchers to another program.
    Raises :class:`SieWriteError` for text that PC8 cannot hold or that contains a line break.
    """
    if sie_type not in ("4E", "4I"):
        raise SieWriteError(f"cannot write SIE type {sie_type!r}; use '4E' or '4I'")
    crc = Checksum(_ENCODING) if checksum else None
    stream.write(_encode(_line("#FLAGGA", str(document.flag))))
    if crc is not None:
        stream.write(_encode("#KSUMMA"))
    records = _records(document, include_balances=sie_type == "4E")
    batch: list[bytes] = []
    for line in records:
        if crc is not None and line not in ("{", "}"):
            crc.add(split_fields(line))
        batch.append(_encode(line))
        if len(batch) >= 1024:
            stream.write(b"".join(batch))
            batch.clear()
    stream.write(b"".join(batch))
    if crc is not None:
        stream.write(_encode(_line("#KSUMMA", str(crc.value))))


def _records(document: SieDocument, *, include_balances: bool) -> Iterator[str]:
    yield _line("#PROGRAM", _text(document.program), _text(document.program_version))
    yield _line("#FORMAT", "PC8")
    generated = document.generated or date.today()
    yield _line("#GEN", _date(generated), *([_text(document.generated_by)] if document.generated_by else []))
    yield _line("#SIETYP", "4")
    if document.company_id:
        yield _line("#FNR", _text(document.company_id))
    if document.org_number:
        yield _line("#ORGNR", _text(document.org_number))
    yield _line("#FNAMN", _text(document.company_name))
    if document.company_type:
        yield _line("#FTYP", _text(document.company_type))
    if document.address is not None:
        address = document.address
        yield _line(
            "#ADRESS",
            _text(address.contact),
            _text(address.street),
            _text(address.postal),
            _text(address.phone),
        )
    for year in document.financial_years:
        yield _line("#RAR", str(year.index), _date(year.start), _date(year.end))
    if document.tax_year is not None:
        yield _line("#TAXAR", str(document.tax_year))
    if document.balances_until is not None:
        yield _line("#OMFATTN", _date(document.balances_until))
    if document.chart_type:
        yield _line("#KPTYP", _text(document.chart_type))
    if document.currency:
        yield _line("#VALUTA", _text(document.currency))
    for account in document.accounts.values():
        yield _line("#KONTO", _field(account.number), _text(account.name))
        if account.type is not None:
            yield _line("#KTYP", _field(account.number), _field(account.type))
        if account.unit is not None:
            yield _line("#ENHET", _field(account.number), _text(account.unit))
        if account.sru is not None:
            yield _line("#SRU", _field(account.number), _field(account.sru))
    for dimension in document.dimensions.values():
        if dimension.parent is None:
            yield _line("#DIM", str(dimension.number), _text(dimension.name))
        else:
            yield _line("#UNDERDIM", str(dimension.number), _text(dimension.name), str(dimension.parent))
    for obj in document.objects:
        yield _line("#OBJEKT", str(obj.dimension), _text(obj.number), _text(obj.name))
    if include_balances:
        yield from _balances("#IB", document.opening_balances)
        yield from _balances("#UB", document.closing_balances)
        yield from _balances("#OIB", document.object_opening_balances)
        yield from _balances("#OUB", document.object_closing_balances)
        yield from _balances("#RES", document.results)
        yield from _balances("#PSALDO", document.period_balances)
        yield from _balances("#PBUDGET", document.period_budgets)
    for voucher in document.vouchers:
        yield from _voucher(voucher)


def _balances(label: str, balances: Iterable[Balance | ObjectBalance | PeriodBalance]) -> Iterator[str]:
    """``#IB``/``#UB``/``#RES``; with objects ``#OIB``/``#OUB``; with a period too ``#PSALDO``/``#PBUDGET``."""
    for balance in balances:
        period = (_field(balance.period),) if isinstance(balance, PeriodBalance) else ()
        objects = () if isinstance(balance, Balance) else (_objects(balance.objects),)
        yield _line(
            label,
            str(balance.year),
            *period,
            _field(balance.account),
            *objects,
            _amount(balance.amount),
            *_optional_amount(balance.quantity),
        )


def _voucher(voucher: Voucher) -> Iterator[str]:
    optional = [
        _optional_date(voucher.registration_date),
        _text(voucher.signature) if voucher.signature else "",
    ]
    yield _line(
        "#VER",
        _field(voucher.series),
        _field(voucher.number),
        _date(voucher.date),
        _text(voucher.text),
        *_trim_trailing(optional),
    )
    yield "{"
    for row in voucher.removed_rows:
        yield _row("#BTRANS", row)
    for row in voucher.added_rows:
        yield _row("#RTRANS", row)
    for row in voucher.rows:
        yield _row("#TRANS", row)
    yield "}"


def _row(label: str, row: VoucherRow) -> str:
    optional = [
        _optional_date(row.date),
        _text(row.text) if row.text else "",
        _amount(row.quantity) if row.quantity is not None else "",
        _text(row.signature) if row.signature else "",
    ]
    return _line(
        label, _field(row.account), _objects(row.objects), _amount(row.amount), *_trim_trailing(optional)
    )


def _trim_trailing(fields: list[str]) -> list[str]:
    """Drop trailing absent optional fields; absent ones before a present one become ``""``."""
    while fields and not fields[-1]:
        fields.pop()
    return [field or '""' for field in fields]


def _line(label: str, *fields: str) -> str:
    return " ".join((label, *fields))


def _encode(line: str) -> bytes:
    try:
        return line.encode(_ENCODING) + b"\r\n"
    except UnicodeEncodeError as exc:
        bad = line[exc.start : exc.end]
        raise SieWriteError(f"{bad!r} cannot be written in PC8 (code page 437): {line!r}") from exc


def _text(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise SieWriteError(f"line break in a SIE field: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _field(value: str) -> str:
    """An identifier (account, series, number): bare when that is unambiguous, quoted otherwise."""
    if value and all(char in _BARE_SAFE for char in value):
        return value
    return _text(value)


def _objects(objects: tuple[ObjectRef, ...]) -> str:
    return "{" + " ".join(f"{dimension} {_text(number)}" for dimension, number in objects) + "}"


def _amount(value: Decimal) -> str:
    if not value.is_finite():
        raise SieWriteError(f"amount {value} is not a finite number")
    return format(value, "f")


def _optional_amount(value: Decimal | None) -> list[str]:
    return [] if value is None else [_amount(value)]


def _date(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def _optional_date(value: date | None) -> str:
    return "" if value is None else _date(value)
