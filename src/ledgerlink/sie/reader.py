"""Streaming SIE reader for types 1, 2, 3, 4E and 4I.

The reader decodes the stream in chunks of whole lines, splits each line into fields and dispatches
on the record label. Vouchers are yielded one at a time and (unless asked) not kept, so memory does
not grow with the number of vouchers; header, chart, dimensions and balances collect in
``reader.document`` as they come.

Encoding: a UTF-8 byte-order mark, or non-ASCII bytes that decode as UTF-8, mean UTF-8 (whatever
``#FORMAT`` claims); otherwise the bytes are PC8, i.e. code page 437.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from types import TracebackType
from typing import BinaryIO, Self

from ledgerlink.sie.checksum import Checksum
from ledgerlink.sie.errors import SieError
from ledgerlink.sie.limits import SieLimits
from ledgerlink.sie.model import (
    Account,
    Address,
    Balance,
    Dimension,
    FinancialYear,
    ObjectBalance,
    PeriodBalance,
    ReadDiagnostics,
    SieDocument,
    SieObject,
    UnbalancedVoucher,
    Voucher,
    VoucherRow,
)
from ledgerlink.sie.tokens import ObjectList, TokenError, parse_objects, split_fields

SieSource = str | os.PathLike[str] | bytes | bytearray | BinaryIO

_CHUNK_SIZE = 1 << 20
_SLICE = 1 << 16  # characters of a decoded chunk split by one findall (its tuples take ~10x that)
_MAX_LINE = 16 << 20
_UTF8_BOM = b"\xef\xbb\xbf"
_CACHE_LIMIT = 4096
_MAX_DISTINCT_UNKNOWN = 50
_ZERO = Decimal(0)

# Standard records this reader accepts without storing them.
_IGNORED = frozenset({"#PROSA", "#BKOD"})

# Records read with a warning (and skipped) when real exports leave their required fields missing:
# how many fields (label included, object lists not counted) each needs, and whether an empty one counts
# as missing (where an empty value could never be read: dates, numbers, amounts). Balances (#IB, #UB,
# #RES) and vouchers are not among them: without their amount or date the data itself is wrong.
_REQUIRED_FIELDS: dict[str, tuple[int, bool]] = {
    "#FLAGGA": (2, True),
    "#GEN": (2, True),
    "#SIETYP": (2, True),
    "#RAR": (4, True),
    "#TAXAR": (2, True),
    "#OMFATTN": (2, True),
    "#OIB": (4, False),
    "#OUB": (4, False),
    "#PSALDO": (5, False),
    "#PBUDGET": (5, False),
    "#KONTO": (2, False),
    "#ENHET": (2, False),
    "#DIM": (2, False),
    "#UNDERDIM": (4, False),
    "#OBJEKT": (3, False),
}

_date_cache: dict[str, dt.date] = {}
# Every line of a slice of a decoded chunk, split in C by one ``findall``: a tuple per line (the lines
# of ``chunk.split("\n")``) of the raw line and the groups of the two common shapes, written without
# leading whitespace and with at most a "\r" after them (else their groups are empty):
# - ``#TRANS``: account, an object list without escapes, an amount, optionally a date and a quoted
#   text;
# - ``#VER``: series and number (quoted or not), date, optionally a quoted text and a date.
# Every other line (and these, while a #KSUMMA checksum runs) takes the general path; both paths give
# the same rows and vouchers.
_LINES = re.compile(
    r"^("
    r'#TRANS ([0-9]+) \{([^"{}\n]*+(?:"[^"\\\n]*+"[^"{}\n]*+)*+)\} ([+-]?[0-9]++(?:\.[0-9]++)?+)'
    r'(?: ([0-9]{8})(?: "([^"\\\n]*+(?:\\.[^"\\\n]*+)*+)")?+)?+\r?'
    r'|#VER (?:"([^"\\\n]*+)"|([^\s"{}\\]++)) (?:"([^"\\\n]*+)"|([^\s"{}\\]++)) ([0-9]{8})'
    r'(?: "([^"\\\n]*+(?:\\.[^"\\\n]*+)*+)"(?: ([0-9]{8}))?+)?+\r?'
    r"|.*)$",
    re.MULTILINE,
).findall
_UNESCAPE = re.compile(r'\\(["\\])')


def _unescape(text: str) -> str:
    """``\\"`` is a quote and ``\\\\`` a backslash; any other backslash stays."""
    if "\\\\" in text:
        return _UNESCAPE.sub(r"\1", text)
    return text.replace('\\"', '"')


class _FieldError(ValueError):
    """A malformed field; the reader turns it into a SieError with the line."""


def read_document(source: SieSource) -> SieDocument:
    """Read a whole SIE file, vouchers included, into one :class:`SieDocument`.

    ``source`` is a path, the file's bytes or a binary stream. Raises :class:`SieError`.
    """
    with SieReader(source, keep_vouchers=True) as reader:
        for _ in reader:
            pass
        return reader.document


class SieReader:
    """Iterate over a SIE file's vouchers while its other records fill ``self.document``.

    ``keep_vouchers`` also appends every voucher to ``document.vouchers`` (what
    :func:`read_document` does). Records after the last voucher are in ``document`` once the
    iteration has ended. A path or bytes given as ``source`` is opened and closed by the reader;
    a stream stays the caller's.
    """

    def __init__(
        self, source: SieSource, *, keep_vouchers: bool = False, limits: SieLimits | None = None
    ) -> None:
        self._owns_stream = not hasattr(source, "read")
        if isinstance(source, bytes | bytearray):
            self._stream: BinaryIO = io.BytesIO(bytes(source))
        elif isinstance(source, str | os.PathLike):
            self._stream = open(source, "rb")  # noqa: SIM115 - closed by close()/__exit__
        else:
            self._stream = source
        self._keep_vouchers = keep_vouchers
        self._limits = limits
        self._known_accounts: set[str] = set()
        self._records = 0
        self.document = SieDocument(program="", format="", sie_type="")
        self.diagnostics: ReadDiagnostics = self.document.diagnostics
        self._encoding: str | None = None
        self._checksum: Checksum | None = None
        self._iterator: Iterator[Voucher] | None = None
        self._unknown: dict[str, list[int]] = {}
        self._lenient: dict[str, list[int]] = {}
        self._handlers: dict[str, Callable[[list[str]], None]] = {
            "#FLAGGA": self._flag,
            "#PROGRAM": self._program,
            "#FORMAT": self._format,
            "#GEN": self._generated,
            "#SIETYP": self._sie_type,
            "#FNR": self._company_id,
            "#FNAMN": self._company_name,
            "#ORGNR": self._org_number,
            "#FTYP": self._company_type,
            "#ADRESS": self._address,
            "#RAR": self._financial_year,
            "#TAXAR": self._tax_year,
            "#OMFATTN": self._balances_until,
            "#KPTYP": self._chart_type,
            "#VALUTA": self._currency,
            "#KONTO": self._account,
            "#KTYP": self._account_type,
            "#SRU": self._account_sru,
            "#ENHET": self._account_unit,
            "#DIM": self._dimension,
            "#UNDERDIM": self._sub_dimension,
            "#OBJEKT": self._object,
            "#IB": self._opening_balance,
            "#UB": self._closing_balance,
            "#RES": self._result,
            "#OIB": self._object_opening_balance,
            "#OUB": self._object_closing_balance,
            "#PSALDO": self._period_balance,
            "#PBUDGET": self._period_budget,
        }

    # -- iteration and resource handling -------------------------------------------------------

    def __iter__(self) -> Iterator[Voucher]:
        if self._iterator is None:
            self._iterator = self._parse()
        return self._iterator

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_stream:
            self._stream.close()

    # -- decoding ------------------------------------------------------------------------------

    def _chunks(self) -> Iterator[str]:
        """Decoded text in chunks that end on a line boundary (the final newline left out)."""
        pending = b""
        first = True
        while True:
            block = self._stream.read(_CHUNK_SIZE)
            if not block:
                break
            if first:
                first = False
                if block.startswith(_UTF8_BOM):
                    block = block[len(_UTF8_BOM) :]
                    self._encoding = "utf-8"
            data = pending + block if pending else block
            cut = data.rfind(b"\n")
            if cut < 0:
                if len(data) > _MAX_LINE:
                    raise SieError(f"a line longer than {_MAX_LINE} bytes: not a SIE file")
                pending = data
                continue
            pending = data[cut + 1 :]
            yield self._decode(data[:cut])
        if pending:
            yield self._decode(pending)

    def _slices(self) -> Iterator[tuple[str, int, int]]:
        """The decoded chunks as ``(chunk, start, stop)`` slices of whole lines of about ``_SLICE``."""
        for chunk in self._chunks():
            start = 0
            while True:
                cut = chunk.find("\n", start + _SLICE)
                if cut < 0:
                    yield chunk, start, len(chunk)
                    break
                yield chunk, start, cut
                start = cut + 1

    def _decode(self, data: bytes) -> str:
        if data.isascii():
            return data.decode("ascii")
        if self._encoding != "cp437":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                if self._encoding == "utf-8":
                    self.diagnostics.warnings.append(
                        "bytes that are not UTF-8 after UTF-8 text; decoding the rest as PC8 (CP437)"
                    )
                self._set_encoding("cp437")
            else:
                self._set_encoding("utf-8")
                return text
        return data.decode("cp437")

    def _set_encoding(self, encoding: str) -> None:
        self._encoding = encoding
        if self._checksum is not None:
            self._checksum.encoding = encoding

    # -- the main loop -------------------------------------------------------------------------

    def _parse(self) -> Iterator[Voucher]:
        document = self.document
        diagnostics = self.diagnostics
        handlers = self._handlers
        keep_vouchers = self._keep_vouchers
        parse_row = _parse_row
        split = split_fields
        checksum = self._checksum
        voucher: Voucher | None = None
        rows: list[VoucherRow] = []
        added_rows: list[VoucherRow] = []
        removed_rows: list[VoucherRow] = []
        total = _ZERO
        in_block = False
        voucher_line_number = 0
        voucher_line = ""  # the #VER line as read (its "\r" is stripped when it is shown)
        transactions = 0
        line_number = 0
        seen_record = False

        limits = self._limits
        check_row = self._check_row if limits is not None else None
        max_rows = (limits.max_rows_per_voucher if limits is not None else None) or sys.maxsize
        max_field = (limits.max_field_length if limits is not None else None) or sys.maxsize
        max_records = (limits.max_records if limits is not None else None) or sys.maxsize
        refuse_nul = limits is not None and limits.refuse_nul

        lines_of = _LINES
        dates = _date_cache
        date_of = _date
        unescape = _unescape
        for chunk, start, stop in self._slices():
            if refuse_nul:
                nul = chunk.find("\x00", start, stop)
                if nul >= 0:
                    at = line_number + chunk.count("\n", start, nul) + 1
                    raise SieError("a NUL character: not text", at)
            for (
                raw,
                account,
                objects_text,
                amount_text,
                date_text,
                text,
                quoted_series,
                series,
                quoted_number,
                number,
                day_text,
                voucher_text,
                registration_text,
            ) in lines_of(chunk, start, stop):
                line_number += 1
                if account:  # a #TRANS of the common shape
                    if in_block and checksum is None:
                        try:
                            objects = parse_objects(objects_text) if objects_text else ()
                            amount = Decimal(amount_text)
                            if date_text:
                                if text and "\\" in text:
                                    text = unescape(text)
                                row = VoucherRow(
                                    account,
                                    amount,
                                    objects,
                                    dates.get(date_text) or date_of(date_text),
                                    text,
                                )
                            else:
                                row = VoucherRow(account, amount, objects)
                            if check_row is not None:
                                check_row(row)
                                if len(rows) >= max_rows:
                                    raise _FieldError(f"a voucher with more than {max_rows} rows")
                        except (TokenError, ValueError) as exc:
                            raise SieError(
                                str(exc) or type(exc).__name__, line_number, raw.rstrip("\r")
                            ) from exc
                        rows.append(row)
                        total += amount
                        transactions += 1
                        continue
                elif day_text and voucher is None and checksum is None and seen_record:
                    # a #VER of the common shape, where one may start
                    try:
                        if voucher_text and "\\" in voucher_text:
                            voucher_text = unescape(voucher_text)
                        voucher = Voucher(
                            series or quoted_series,
                            number or quoted_number,
                            dates.get(day_text) or date_of(day_text),
                            voucher_text,
                            [],
                            (dates.get(registration_text) or date_of(registration_text))
                            if registration_text
                            else None,
                            "",
                        )
                        if check_row is not None:
                            self._check_voucher(voucher)
                    except ValueError as exc:
                        raise SieError(str(exc) or type(exc).__name__, line_number, raw.rstrip("\r")) from exc
                    rows = voucher.rows
                    added_rows = voucher.added_rows
                    removed_rows = voucher.removed_rows
                    total = _ZERO
                    voucher_line_number = line_number
                    voucher_line = raw
                    if not (voucher.series and voucher.number):
                        self._note(self._lenient, _NO_SERIES, line_number)
                    continue
                line = raw.strip()
                if not line:
                    continue
                finished: Voucher | None = None
                try:
                    if line[0] == "#":
                        fields = split(line)
                        label = fields[0]
                        if len(line) > max_field:
                            self._check_fields(fields)
                        if checksum is not None and label != "#KSUMMA":
                            checksum.add(fields)
                        if in_block:
                            if label == "#TRANS":
                                row = parse_row(fields)
                                if check_row is not None:
                                    check_row(row)
                                    if len(rows) >= max_rows:
                                        raise _FieldError(f"a voucher with more than {max_rows} rows")
                                rows.append(row)
                                total += row.amount
                                transactions += 1
                            elif label == "#RTRANS":
                                added_rows.append(parse_row(fields))
                            elif label == "#BTRANS":
                                removed_rows.append(parse_row(fields))
                            elif label == "#VER":
                                raise SieError(
                                    f"#VER without its closing '}}' (next #VER at line {line_number})",
                                    voucher_line_number,
                                    voucher_line.rstrip("\r"),
                                )
                            else:
                                raise _FieldError(f"{label} inside a voucher")
                        elif voucher is not None:
                            raise _FieldError(f"expected '{{' after the #VER at line {voucher_line_number}")
                        elif label == "#VER":
                            voucher = _parse_voucher(fields)
                            if not (voucher.series and voucher.number):
                                self._note(self._lenient, _NO_SERIES, line_number)
                            if check_row is not None:
                                self._check_voucher(voucher)
                            rows = voucher.rows
                            added_rows = voucher.added_rows
                            removed_rows = voucher.removed_rows
                            total = _ZERO
                            voucher_line_number = line_number
                            voucher_line = raw
                        elif label in handlers:
                            need = _REQUIRED_FIELDS.get(label)
                            if need is not None and _incomplete(fields, *need):
                                self._note(self._lenient, f"{label} without its required fields", line_number)
                                seen_record = True
                                continue
                            handlers[label](fields)
                            self._records += 1
                            if self._records > max_records:
                                raise _FieldError(f"more than {max_records} records besides the vouchers")
                        elif label == "#KSUMMA":
                            self._ksumma(fields)
                            checksum = self._checksum
                        elif label in ("#TRANS", "#RTRANS", "#BTRANS"):
                            raise _FieldError(f"{label} outside a voucher")
                        elif label not in _IGNORED:
                            if not seen_record:
                                raise _FieldError(f"not a SIE file: unknown first record {label}")
                            self._note_unknown(label, line_number)
                        seen_record = True
                    elif line == "{":
                        if voucher is None or in_block:
                            raise _FieldError("'{' without a #VER before it")
                        in_block = True
                    elif line == "}":
                        if not in_block or voucher is None:
                            raise _FieldError("'}' without an open voucher")
                        if total:
                            diagnostics.unbalanced_vouchers.append(
                                UnbalancedVoucher(voucher.series, voucher.number, total, voucher_line_number)
                            )
                        finished = voucher
                        voucher = None
                        in_block = False
                    elif not seen_record:
                        raise _FieldError("not a SIE file: the first line is not a #record")
                    else:
                        raise _FieldError("not a SIE record (a line must start with '#', '{' or '}')")
                except SieError:
                    raise
                except IndexError as exc:
                    raise SieError("a required field is missing", line_number, raw.rstrip("\r")) from exc
                except (TokenError, ValueError, ArithmeticError) as exc:
                    raise SieError(str(exc) or type(exc).__name__, line_number, raw.rstrip("\r")) from exc
                if finished is not None:
                    diagnostics.voucher_count += 1
                    diagnostics.transaction_count = transactions
                    if keep_vouchers:
                        document.vouchers.append(finished)
                    yield finished

        if voucher is not None:
            raise SieError(
                "#VER without its closing '}' before the end of the file",
                voucher_line_number,
                voucher_line.rstrip("\r"),
            )
        if not seen_record:
            raise SieError("not a SIE file: no records")
        diagnostics.transaction_count = transactions
        self._finish()

    def _finish(self) -> None:
        document = self.document
        diagnostics = self.diagnostics
        diagnostics.encoding = self._encoding or "cp437"
        if self._checksum is not None:
            diagnostics.checksum = "mismatch"
            diagnostics.warnings.append("#KSUMMA opened but never closed: the file looks truncated")
        if not document.sie_type:
            document.sie_type = "4" if diagnostics.voucher_count else "1"
            diagnostics.warnings.append(f"no #SIETYP; assuming type {document.sie_type}")
        if diagnostics.encoding == "utf-8" and document.format.upper() not in ("UTF-8", "UTF8"):
            diagnostics.warnings.append(
                f"#FORMAT says {document.format or 'nothing'} but the bytes are UTF-8"
            )
        for label, (count, first_line) in self._unknown.items():
            diagnostics.warnings.append(
                f"unknown record {label} ignored ({count}x, first at line {first_line})"
            )
        for what, (count, first_line) in self._lenient.items():
            diagnostics.warnings.append(f"line {first_line}: {what} ({count}x)")

    def _note_unknown(self, label: str, line_number: int) -> None:
        self._note(self._unknown, label, line_number)

    @staticmethod
    def _note(seen_by: dict[str, list[int]], what: str, line_number: int) -> None:
        """Count a kind of oddity with its first line (bounded: a file cannot grow the warnings)."""
        seen = seen_by.get(what)
        if seen is not None:
            seen[0] += 1
        elif len(seen_by) < _MAX_DISTINCT_UNKNOWN:
            seen_by[what] = [1, line_number]
        else:
            seen_by.setdefault("(other)", [0, line_number])[0] += 1

    def _ksumma(self, fields: list[str]) -> None:
        if self._checksum is None:
            if len(fields) == 1 and self.diagnostics.checksum == "absent":
                self._checksum = Checksum(self._encoding or "cp437")
                return
            self.diagnostics.checksum = "mismatch"
            self.diagnostics.warnings.append("#KSUMMA with a value but no opening #KSUMMA")
            return
        expected = fields[1] if len(fields) > 1 else ""
        actual = self._checksum.value
        self._checksum = None
        if expected.isascii() and expected.isdigit() and int(expected) == actual:
            self.diagnostics.checksum = "ok"
        else:
            self.diagnostics.checksum = "mismatch"
            self.diagnostics.warnings.append(
                f"#KSUMMA {expected or '(empty)'} does not match the content ({actual})"
            )

    # -- limits --------------------------------------------------------------------------------

    def _check_account(self, number: str) -> None:
        """An account within the id length, and within the number of distinct accounts."""
        if number in self._known_accounts:
            return
        limits = self._limits
        assert limits is not None
        if limits.max_id_length is not None and len(number) > limits.max_id_length:
            raise _FieldError(f"an account number longer than {limits.max_id_length} characters")
        self._known_accounts.add(number)
        if limits.max_accounts is not None and len(self._known_accounts) > limits.max_accounts:
            raise _FieldError(f"more than {limits.max_accounts} accounts")

    def _check_amount(self, amount: Decimal) -> None:
        digits = self._limits.max_amount_digits if self._limits is not None else None
        if digits is not None and amount and amount.adjusted() >= digits:
            raise _FieldError(f"an amount with more than {digits} digits before the decimal point")

    def _check_row(self, row: VoucherRow) -> None:
        if row.account not in self._known_accounts:
            self._check_account(row.account)
        self._check_amount(row.amount)
        if row.quantity is not None:
            self._check_amount(row.quantity)
        longest = self._limits.max_field_length if self._limits is not None else None
        if longest is not None and len(row.text) > longest:
            raise _FieldError(f"a field longer than {longest} characters")

    def _check_voucher(self, voucher: Voucher) -> None:
        limits = self._limits
        assert limits is not None
        longest = limits.max_id_length
        if longest is not None and (len(voucher.series) > longest or len(voucher.number) > longest):
            raise _FieldError(f"a voucher series or number longer than {longest} characters")
        if limits.max_field_length is not None and len(voucher.text) > limits.max_field_length:
            raise _FieldError(f"a field longer than {limits.max_field_length} characters")

    def _check_fields(self, fields: list[str]) -> None:
        limits = self._limits
        longest = limits.max_field_length if limits is not None else None
        if longest is not None and any(len(f) > longest for f in fields):
            raise _FieldError(f"a field longer than {longest} characters")

    # -- header and chart records --------------------------------------------------------------

    def _flag(self, fields: list[str]) -> None:
        self.document.flag = _int(fields[1])

    def _program(self, fields: list[str]) -> None:
        self.document.program = _opt(fields, 1)
        self.document.program_version = _opt(fields, 2)

    def _format(self, fields: list[str]) -> None:
        self.document.format = _opt(fields, 1)

    def _generated(self, fields: list[str]) -> None:
        self.document.generated = _date(fields[1])
        self.document.generated_by = _opt(fields, 2)

    def _sie_type(self, fields: list[str]) -> None:
        value = fields[1]
        if value not in ("1", "2", "3", "4"):
            raise _FieldError(f"unknown #SIETYP {value!r}")
        self.document.sie_type = value

    def _company_id(self, fields: list[str]) -> None:
        self.document.company_id = _opt(fields, 1)

    def _company_name(self, fields: list[str]) -> None:
        self.document.company_name = _opt(fields, 1)

    def _org_number(self, fields: list[str]) -> None:
        self.document.org_number = _opt(fields, 1)

    def _company_type(self, fields: list[str]) -> None:
        self.document.company_type = _opt(fields, 1)

    def _address(self, fields: list[str]) -> None:
        self.document.address = Address(_opt(fields, 1), _opt(fields, 2), _opt(fields, 3), _opt(fields, 4))

    def _financial_year(self, fields: list[str]) -> None:
        self.document.financial_years.append(
            FinancialYear(_int(fields[1]), _date(fields[2]), _date(fields[3]))
        )

    def _tax_year(self, fields: list[str]) -> None:
        self.document.tax_year = _int(fields[1])

    def _balances_until(self, fields: list[str]) -> None:
        self.document.balances_until = _date(fields[1])

    def _chart_type(self, fields: list[str]) -> None:
        self.document.chart_type = _opt(fields, 1)

    def _currency(self, fields: list[str]) -> None:
        self.document.currency = _opt(fields, 1)

    def _account_of(self, number: str) -> Account:
        account = self.document.accounts.get(number)
        if account is None:
            if self._limits is not None:
                self._check_account(number)
            account = self.document.accounts[number] = Account(number)
        return account

    def _account(self, fields: list[str]) -> None:
        self._account_of(_text_field(fields[1])).name = _opt(fields, 2)

    def _account_type(self, fields: list[str]) -> None:
        if len(fields) < 3:  # seen in a real export: "#KTYP DIFF"
            self.diagnostics.warnings.append(f"#KTYP {_opt(fields, 1)} without a type ignored")
            return
        self._account_of(_text_field(fields[1])).type = _text_field(fields[2])

    def _account_sru(self, fields: list[str]) -> None:
        if len(fields) < 3:
            self.diagnostics.warnings.append(f"#SRU {_opt(fields, 1)} without a code ignored")
            return
        self._account_of(_text_field(fields[1])).sru = _text_field(fields[2])

    def _account_unit(self, fields: list[str]) -> None:
        self._account_of(_text_field(fields[1])).unit = _opt(fields, 2)

    def _dimension(self, fields: list[str]) -> None:
        number = _int(fields[1])
        self.document.dimensions[number] = Dimension(number, _opt(fields, 2))

    def _sub_dimension(self, fields: list[str]) -> None:
        number = _int(fields[1])
        self.document.dimensions[number] = Dimension(number, _opt(fields, 2), _int(fields[3]))

    def _object(self, fields: list[str]) -> None:
        self.document.objects.append(SieObject(_int(fields[1]), _text_field(fields[2]), _opt(fields, 3)))

    # -- balances ------------------------------------------------------------------------------

    def _balance(self, fields: list[str]) -> Balance:
        balance = Balance(
            _int(fields[1]), _text_field(fields[2]), _amount(fields[3]), _opt_amount(_opt(fields, 4))
        )
        if self._limits is not None:
            self._check_account(balance.account)
            self._check_amount(balance.amount)
            if balance.quantity is not None:
                self._check_amount(balance.quantity)
        return balance

    def _opening_balance(self, fields: list[str]) -> None:
        self.document.opening_balances.append(self._balance(fields))

    def _closing_balance(self, fields: list[str]) -> None:
        self.document.closing_balances.append(self._balance(fields))

    def _result(self, fields: list[str]) -> None:
        self.document.results.append(self._balance(fields))

    def _object_balance(self, fields: list[str]) -> ObjectBalance:
        return ObjectBalance(
            _int(fields[1]),
            _text_field(fields[2]),
            _objects(fields[3]),
            _amount(fields[4]),
            _opt_amount(_opt(fields, 5)),
        )

    def _object_opening_balance(self, fields: list[str]) -> None:
        self.document.object_opening_balances.append(self._object_balance(fields))

    def _object_closing_balance(self, fields: list[str]) -> None:
        self.document.object_closing_balances.append(self._object_balance(fields))

    def _period(self, fields: list[str]) -> PeriodBalance:
        period = fields[2]
        if len(period) != 6 or not (period.isascii() and period.isdigit()):
            raise _FieldError(f"bad period {period!r} (expected YYYYMM)")
        account = _text_field(fields[3])
        if type(fields[4]) is ObjectList:  # required by the standard, missing in some old exports
            objects, at = parse_objects(fields[4]), 5
        else:
            objects, at = (), 4
        return PeriodBalance(
            _int(fields[1]),
            period,
            account,
            objects,
            _amount(fields[at]),
            _opt_amount(_opt(fields, at + 1)),
        )

    def _period_balance(self, fields: list[str]) -> None:
        self.document.period_balances.append(self._period(fields))

    def _period_budget(self, fields: list[str]) -> None:
        self.document.period_budgets.append(self._period(fields))


# -- field parsing -----------------------------------------------------------------------------


def _parse_voucher(fields: list[str]) -> Voucher:
    """``#VER series number date [text] [registration date] [signature]``."""
    count = len(fields)
    return Voucher(
        _text_field(fields[1]),
        _text_field(fields[2]),
        _date(fields[3]),
        fields[4] if count > 4 else "",
        [],
        _opt_date(fields[5]) if count > 5 else None,
        fields[6] if count > 6 else "",
    )


def _parse_row(fields: list[str]) -> VoucherRow:
    """``#TRANS account {objects} amount [date] [text] [quantity] [signature]``.

    A missing object list (seen in some exports) is accepted as an empty one.
    """
    count = len(fields)
    account = fields[1]
    if type(account) is not str:
        raise _FieldError("account missing")
    objects_field = fields[2]
    if type(objects_field) is ObjectList:
        objects = parse_objects(objects_field) if objects_field else ()
        at = 3
    else:
        objects = ()
        at = 2
    amount_text = fields[at]
    sign = amount_text[:1]
    digits = amount_text[1:] if sign == "-" or sign == "+" else amount_text
    if not (digits.isascii() and digits.replace(".", "", 1).isdigit()):
        raise _FieldError(f"bad amount {amount_text!r}")
    if count == at + 1:
        return VoucherRow(account, Decimal(amount_text), objects)
    return VoucherRow(
        account,
        Decimal(amount_text),
        objects,
        _opt_date(fields[at + 1]) if count > at + 1 else None,
        fields[at + 2] if count > at + 2 else "",
        _opt_amount(fields[at + 3]) if count > at + 3 else None,
        fields[at + 4] if count > at + 4 else "",
    )


_NO_SERIES = "#VER with an empty series or number, read as given"


def _incomplete(fields: list[str], need: int, empty_is_missing: bool) -> bool:
    """Fewer than ``need`` fields besides object lists (or an empty one among them, if it counts)."""
    plain = [f for f in fields if type(f) is not ObjectList]
    return len(plain) < need or (empty_is_missing and "" in plain[1:need])


def _opt(fields: list[str], index: int) -> str:
    return fields[index] if len(fields) > index else ""


def _text_field(value: str) -> str:
    if type(value) is not str:
        raise _FieldError(f"unexpected object list {{{value}}}")
    return value


def _int(value: str) -> int:
    digits = value[1:] if value[:1] == "-" else value
    if not (digits.isascii() and digits.isdigit()):
        raise _FieldError(f"bad number {value!r}")
    return int(value)


def _amount(value: str) -> Decimal:
    sign = value[:1]
    digits = value[1:] if sign == "-" or sign == "+" else value
    if not (digits.isascii() and digits.replace(".", "", 1).isdigit()):
        raise _FieldError(f"bad amount {value!r}")
    return Decimal(value)


def _opt_amount(value: str) -> Decimal | None:
    return _amount(value) if value else None


def _objects(value: str) -> tuple[tuple[int, str], ...]:
    if type(value) is not ObjectList:
        raise _FieldError(f"expected an object list, found {value!r}")
    return parse_objects(value)


def _date(value: str) -> dt.date:
    cached = _date_cache.get(value)
    if cached is not None:
        return cached
    if len(value) != 8 or not (value.isascii() and value.isdigit()):
        raise _FieldError(f"bad date {value!r} (expected YYYYMMDD)")
    try:
        parsed = dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise _FieldError(f"bad date {value!r}") from None
    if len(_date_cache) >= _CACHE_LIMIT:
        _date_cache.clear()
    _date_cache[value] = parsed
    return parsed


def _opt_date(value: str) -> dt.date | None:
    return _date(value) if value else None
