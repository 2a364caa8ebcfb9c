"""Errors of the statements feature (rendered as problem+json by the one handler)."""

from __future__ import annotations

from ledgerlink.errors import Unprocessable


class StatementUnreadable(Unprocessable):
    """The file could not be read; the detail names the line (CSV) or the element (XML)."""

    code = "statement_unreadable"


class StatementRefused(Unprocessable):
    """The XML carries a DTD, entities or external references: refused before anything is expanded."""

    code = "statement_refused"


class StatementFormatUnknown(Unprocessable):
    code = "statement_format_unknown"


class StatementAccountMismatch(Unprocessable):
    code = "statement_account_mismatch"
