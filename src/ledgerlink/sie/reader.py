"""Streaming SIE reader for types 1, 2, 3, 4E and 4I.

The reader decodes the stream in chunks of whole lines, splits each line into fields and dispatches
on the record label. Vouchers are yielded one at a time and (unless asked) not kept, so memory does
not grow with the number of vouchers; header, chart, dimensions and balances collect in
``reader.document`` as they come.

Encoding: a UTF-8 byte-order mark, or non-ASCII bytes that decode as UTF-8, mean UTF-8 (whatever
``#FORMAT`` claims); otherwise the bytes are PC8, i.e. code page 437.
"""

from __future__ import annotations

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
from ledgerlink.sie.fields import (
    DATE_CACHE,
    NO_SERIES,
    REQUIRED_FIELDS,
    FieldError,
    incomplete,
    parse_row,
    parse_voucher,
    to_date,
    unescape,
)
from ledgerlink.sie.limits import SieLimits
from ledgerlink.sie.model import ReadDiagnostics, SieDocument, UnbalancedVoucher, Voucher, VoucherRow
from ledgerlink.sie.records import BalanceRecords, ChartRecords, HeaderRecords
from ledgerlink.sie.tokens import TokenError, parse_objects, split_fields

SieSource = str | os.PathLike[str] | bytes | bytearray | BinaryIO

_CHUNK_SIZE = 1 << 20
_SLICE = 1 << 16  # characters of a decoded chunk split by one findall (its tuples take ~10x that)
_MAX_LINE = 16 << 20
_UTF8_BOM = b"\xef\xbb\xbf"
_MAX_DISTINCT_UNKNOWN = 50
_ZERO = Decimal(0)

# Standard records this reader accepts without storing them.
_IGNORED = frozenset({"#PROSA", "#BKOD"})


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


def read_document(source: SieSource) -> SieDocument:
    """Read a whole SIE file, vouchers included, into one :class:`SieDocument`.

    ``source`` is a path, the file's bytes or a binary stream. Raises :class:`SieError`.
    """
    with SieReader(source, keep_vouchers=True) as reader:
        for _ in reader:
            pass
        return reader.document


class SieReader(HeaderRecords, ChartRecords, BalanceRecords):
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
        keep_vouchers = self._keep_vouchers
        split = split_fields
        checksum = self._checksum
        voucher: Voucher | None = None
        rows: list[VoucherRow] = []
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
        refuse_nul = limits is not None and limits.refuse_nul

        lines_of = _LINES
        dates = DATE_CACHE
        date_of = to_date
        unescape_ = unescape
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
                                    text = unescape_(text)
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
                                    raise FieldError(f"a voucher with more than {max_rows} rows")
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
                            voucher_text = unescape_(voucher_text)
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
                        self._opened(voucher, line_number)
                    except ValueError as exc:
                        raise SieError(str(exc) or type(exc).__name__, line_number, raw.rstrip("\r")) from exc
                    rows = voucher.rows
                    total, voucher_line_number, voucher_line = _ZERO, line_number, raw
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
                            assert voucher is not None
                            kept = self._voucher_record(
                                label, fields, voucher, line_number, (voucher_line_number, voucher_line)
                            )
                            if kept is not None:
                                if len(rows) >= max_rows:
                                    raise FieldError(f"a voucher with more than {max_rows} rows")
                                rows.append(kept)
                                total += kept.amount
                                transactions += 1
                        elif voucher is not None:
                            raise FieldError(f"expected '{{' after the #VER at line {voucher_line_number}")
                        elif label == "#VER":
                            voucher = self._opened(parse_voucher(fields), line_number)
                            rows = voucher.rows
                            total, voucher_line_number, voucher_line = _ZERO, line_number, raw
                        else:
                            self._other_record(label, fields, line_number, seen_record)
                            checksum = self._checksum
                        seen_record = True
                    elif line == "{":
                        if voucher is None or in_block:
                            raise FieldError("'{' without a #VER before it")
                        in_block = True
                    elif line == "}":
                        if not in_block or voucher is None:
                            raise FieldError("'}' without an open voucher")
                        if total:
                            diagnostics.unbalanced_vouchers.append(
                                UnbalancedVoucher(voucher.series, voucher.number, total, voucher_line_number)
                            )
                        finished = voucher
                        voucher = None
                        in_block = False
                    elif not seen_record:
                        raise FieldError("not a SIE file: the first line is not a #record")
                    else:
                        raise FieldError("not a SIE record (a line must start with '#', '{' or '}')")
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

    def _voucher_record(
        self, label: str, fields: list[str], voucher: Voucher, line_number: int, opened: tuple[int, str]
    ) -> VoucherRow | None:
        """A record inside a voucher's braces on the general path: a ``#TRANS`` row (returned, for the
        caller to add up), an ``#RTRANS``/``#BTRANS`` row (kept on the voucher), or an error."""
        if label == "#TRANS":
            row = parse_row(fields)
            if self._limits is not None:
                self._check_row(row)
            return row
        if label == "#RTRANS":
            voucher.added_rows.append(parse_row(fields))
        elif label == "#BTRANS":
            voucher.removed_rows.append(parse_row(fields))
        elif label == "#VER":
            raise SieError(
                f"#VER without its closing '}}' (next #VER at line {line_number})",
                opened[0],
                opened[1].rstrip("\r"),
            )
        else:
            raise FieldError(f"{label} inside a voucher")
        return None

    def _opened(self, voucher: Voucher, line_number: int) -> Voucher:
        """A #VER read (either path): its oddities noted, its limits checked."""
        if not (voucher.series and voucher.number):
            self._note(self._lenient, NO_SERIES, line_number)
        if self._limits is not None:
            self._check_voucher(voucher)
        return voucher

    def _other_record(self, label: str, fields: list[str], line_number: int, seen_record: bool) -> None:
        """A record outside a voucher: header, chart or balances (by family), #KSUMMA, or one this
        reader does not know (noted, and refused only as a file's first record)."""
        handler = self._handlers.get(label)
        if handler is not None:
            need = REQUIRED_FIELDS.get(label)
            if need is not None and incomplete(fields, *need):
                self._note(self._lenient, f"{label} without its required fields", line_number)
                return
            handler(fields)
            self._records += 1
            most = self._limits.max_records if self._limits is not None else None
            if most is not None and self._records > most:
                raise FieldError(f"more than {most} records besides the vouchers")
        elif label == "#KSUMMA":
            self._ksumma(fields)
        elif label in ("#TRANS", "#RTRANS", "#BTRANS"):
            raise FieldError(f"{label} outside a voucher")
        elif label not in _IGNORED:
            if not seen_record:
                raise FieldError(f"not a SIE file: unknown first record {label}")
            self._note_unknown(label, line_number)

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
