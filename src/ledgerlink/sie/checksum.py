"""``#KSUMMA``: the SIE CRC-32 over the records between the opening and the closing ``#KSUMMA``.

The CRC is the common reflected CRC-32 (polynomial 0xEDB88320, initial value and final inversion
0xFFFFFFFF, i.e. :func:`zlib.crc32`) over each record's label and field contents in the file's
encoding, leaving out the separating whitespace, the quotes around fields and the braces of object
lists (so the ``{`` and ``}`` lines of a voucher add nothing). Checked against the Norstedts export in
the test corpus, whose trailing ``#KSUMMA`` this reproduces.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from ledgerlink.sie.tokens import ObjectList, split_fields


def record_content(fields: Sequence[str]) -> str:
    """The characters of one record (label first) that count towards the checksum."""
    parts: list[str] = []
    for field in fields:
        if isinstance(field, ObjectList):
            parts.extend(split_fields(field) if field.strip() else ())
        else:
            parts.append(field)
    return "".join(parts).replace("{", "").replace("}", "")


class Checksum:
    """Running CRC-32 over records, in the order they appear."""

    def __init__(self, encoding: str = "cp437") -> None:
        self.encoding = encoding
        self.value = 0

    def add(self, fields: Sequence[str]) -> None:
        content = record_content(fields)
        if content:
            self.value = zlib.crc32(content.encode(self.encoding, errors="replace"), self.value)
