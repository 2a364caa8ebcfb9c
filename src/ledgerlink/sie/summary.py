"""A JSON-ready summary of a SIE file (``ledgerlink sie summary FILE``), read in one streaming pass."""

from __future__ import annotations

import os
from typing import Any, BinaryIO

from ledgerlink.sie.reader import SieReader


def summarize(source: str | os.PathLike[str] | bytes | BinaryIO) -> dict[str, Any]:
    """Summarise a SIE file; raises :class:`~ledgerlink.sie.errors.SieError` if it cannot be read.

    Keys: ``sie_type`` (``1|2|3|4E|4I``), ``program``, ``format``, ``company_name``, ``org_number``,
    ``financial_years`` (``[{index, start, end}]``, ISO dates), ``accounts``, ``vouchers`` and
    ``transactions`` (counts; ``#TRANS`` rows only), ``unbalanced_vouchers``
    (``[{series, number, difference}]``, difference a decimal string), ``checksum``
    (``ok|absent|mismatch``) and ``warnings``.
    """
    with SieReader(source) as reader:
        for _ in reader:
            pass
    document = reader.document
    diagnostics = reader.diagnostics
    return {
        "sie_type": document.variant,
        "program": document.program,
        "format": document.format,
        "company_name": document.company_name,
        "org_number": document.org_number,
        "financial_years": [
            {"index": year.index, "start": year.start.isoformat(), "end": year.end.isoformat()}
            for year in document.financial_years
        ],
        "accounts": len(document.accounts),
        "vouchers": diagnostics.voucher_count,
        "transactions": diagnostics.transaction_count,
        "unbalanced_vouchers": [
            {"series": item.series, "number": item.number, "difference": str(item.difference)}
            for item in diagnostics.unbalanced_vouchers
        ],
        "checksum": diagnostics.checksum,
        "warnings": list(diagnostics.warnings),
    }
