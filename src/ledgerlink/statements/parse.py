"""One entry point for every statement form: the format named, or detected from the bytes."""

from __future__ import annotations

from ledgerlink.statements.camt053 import parse_camt053
from ledgerlink.statements.csv_forms import parse_csv
from ledgerlink.statements.model import ParsedStatement, StatementFormat


def looks_like_xml(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<?xml") or head.startswith(b"<Document") or b"camt.053" in data[:2048]


def parse_statement(data: bytes, fmt: StatementFormat | None = None) -> ParsedStatement:
    if fmt == "camt053" or (fmt is None and looks_like_xml(data)):
        return parse_camt053(data)
    return parse_csv(data, fmt)
