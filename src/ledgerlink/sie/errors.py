"""The SIE package's error family."""

from __future__ import annotations


class SieError(ValueError):
    """A file that cannot be read as SIE: not SIE at all, a malformed record, a bad date or amount.

    ``line_number`` is 1-based (0 when the problem is not tied to a line, e.g. an empty file) and
    ``line`` is the offending line's text as decoded.
    """

    def __init__(self, message: str, line_number: int = 0, line: str = "") -> None:
        self.message = message
        self.line_number = line_number
        self.line = line
        super().__init__(f"line {line_number}: {message}" if line_number else message)


class SieWriteError(ValueError):
    """A document that cannot be written as SIE (e.g. text outside code page 437, a line break in a field)."""
