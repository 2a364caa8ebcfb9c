"""SIE 4 reader and writer: pure code, streaming, no I/O beyond the stream it is given.

Public API
----------
Model (``ledgerlink.sie.model``; plain dataclasses with defaults, compared with ``==``)::

    SieDocument(program, company_name, org_number, financial_years=[FinancialYear(index, start, end)],
                accounts={"1910": Account("1910", "Kassa", type="T")},
                opening_balances=[Balance(year, account, amount)], closing_balances=[...], results=[...],
                vouchers=[Voucher(series, number, date, text,
                                  rows=[VoucherRow(account, amount, objects=((1, "100"),), date, text, quantity)])],
                generated=date(...), dimensions={1: Dimension(1, "Kostnadsställe")},
                objects=[SieObject(1, "100", "Stockholm")], ...)

    Account numbers, series and voucher numbers are ``str``; amounts and quantities ``Decimal``;
    dates ``datetime.date``. ``document.variant`` is ``"1" | "2" | "3" | "4E" | "4I"``.
    ``document.diagnostics`` (not compared) holds what the reader noticed: ``encoding``,
    ``checksum`` (``"ok" | "absent" | "mismatch"``), ``warnings``, ``unbalanced_vouchers``
    (``[UnbalancedVoucher(series, number, difference, line_number)]``), voucher/transaction counts.

Reading::

    document = read_document(path_or_bytes_or_binary_stream)       # everything in memory

    with SieReader(path_or_binary_stream) as reader:                # streaming, flat memory
        for voucher in reader:                                     # one Voucher at a time
            ...                                                    # reader.document fills up as
        reader.document.accounts, reader.diagnostics               # the file is read

    Unreadable input raises ``SieError`` (``.line_number``, ``.line``, ``.message``).
    ``SieReader(source, limits=SieLimits(max_accounts=..., max_rows_per_voucher=..., ...))`` refuses
    an untrusted file beyond the limits (a ``SieError`` naming the line), so memory stays bounded.
    Unbalanced vouchers are not errors: see ``diagnostics.unbalanced_vouchers``.

Writing (PC8 / CP437, CRLF)::

    write_sie(document, binary_stream, sie_type="4E" | "4I", checksum=False)
    data: bytes = dumps_sie(document, sie_type="4I")

    ``4E`` = header, chart, dimensions/objects, balances, vouchers; ``4I`` = the same without balances.
    ``SieWriteError`` for text outside code page 437 or containing a line break.

Summary (used by ``ledgerlink sie summary FILE``)::

    summarize(path) -> dict                          # JSON-ready, see ledgerlink.sie.summary
    ledgerlink.sie.cli.summary_command(path) -> int  # prints it; 0 ok, 2 unreadable (line number on stderr)
"""

from ledgerlink.sie.errors import SieError, SieWriteError
from ledgerlink.sie.limits import SieLimits
from ledgerlink.sie.model import (
    Account,
    Address,
    Balance,
    ChecksumStatus,
    Dimension,
    FinancialYear,
    ObjectBalance,
    ObjectRef,
    PeriodBalance,
    ReadDiagnostics,
    SieDocument,
    SieObject,
    UnbalancedVoucher,
    Voucher,
    VoucherRow,
)
from ledgerlink.sie.reader import SieReader, SieSource, read_document
from ledgerlink.sie.summary import summarize
from ledgerlink.sie.writer import WriteType, dumps_sie, write_sie

__all__ = [
    "Account",
    "Address",
    "Balance",
    "ChecksumStatus",
    "Dimension",
    "FinancialYear",
    "ObjectBalance",
    "ObjectRef",
    "PeriodBalance",
    "ReadDiagnostics",
    "SieDocument",
    "SieError",
    "SieLimits",
    "SieObject",
    "SieReader",
    "SieSource",
    "SieWriteError",
    "UnbalancedVoucher",
    "Voucher",
    "VoucherRow",
    "WriteType",
    "dumps_sie",
    "read_document",
    "summarize",
    "write_sie",
]
