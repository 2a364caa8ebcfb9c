"""Hostile input: whatever the bytes, the reader either reads them or raises SieError."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerlink.sie import SieDocument, SieError, dumps_sie, read_document
from tests.sie.conftest import CORPUS_FILES
from tests.sie.strategies import documents

_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _read_or_sie_error(data: bytes) -> None:
    """The property under test: SieError is the only exception the reader lets out."""
    error: SieError | None = None
    try:
        read_document(data)
    except SieError as caught:
        error = caught
    if error is not None:
        assert error.line_number >= 0
        assert isinstance(error.line, str)


@_SETTINGS
@given(st.binary(max_size=4000))
def test_arbitrary_bytes(data: bytes) -> None:
    _read_or_sie_error(data)


@_SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_after_a_valid_header(data: bytes) -> None:
    _read_or_sie_error(b"#FLAGGA 0\n#SIETYP 4\n" + data)


_LABELS = [
    "#FLAGGA", "#PROGRAM", "#FORMAT", "#GEN", "#SIETYP", "#FNAMN", "#ORGNR", "#ADRESS", "#RAR", "#KPTYP",
    "#KONTO", "#KTYP", "#SRU", "#DIM", "#UNDERDIM", "#OBJEKT", "#IB", "#UB", "#RES", "#PSALDO", "#PBUDGET",
    "#OIB", "#OUB", "#VER", "#TRANS", "#RTRANS", "#BTRANS", "#KSUMMA", "#TAXAR", "#OMFATTN", "{", "}",
]  # fmt: skip
_FIELDS = st.sampled_from(
    ["0", "-1", "1910", "20250101", "20251340", "202501", "12.50", "-3", "1e5", '""', '"a b"', '"x\\"',
     "{}", '{1 "100"}', "{1", "}", "{1 2 3}", "A", "\\", "ÅÄÖ", "\t", "  "]
)  # fmt: skip


@st.composite
def sie_like_lines(draw: st.DrawFn) -> bytes:
    lines = ["#FLAGGA 0"]
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        label = draw(st.sampled_from(_LABELS))
        fields = draw(st.lists(_FIELDS, max_size=7))
        lines.append(" ".join([label, *fields]) if label not in "{}" else label)
    encoding = draw(st.sampled_from(["cp437", "utf-8"]))
    return "\n".join(lines).encode(encoding)


@_SETTINGS
@given(sie_like_lines())
def test_sie_like_records_in_random_order(data: bytes) -> None:
    _read_or_sie_error(data)


@st.composite
def mutated_corpus_files(draw: st.DrawFn) -> bytes:
    path: Path = draw(st.sampled_from(CORPUS_FILES))
    data = bytearray(path.read_bytes())
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        position = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        mutation = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        if mutation == "flip" and data:
            data[position] = draw(st.integers(min_value=0, max_value=255))
        elif mutation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif mutation == "delete":
            del data[position : position + draw(st.integers(min_value=1, max_value=200))]
        elif mutation == "truncate":
            del data[position:]
        else:
            data[position:position] = data[
                position : position + draw(st.integers(min_value=1, max_value=300))
            ]
    return bytes(data)


@_SETTINGS
@given(mutated_corpus_files())
def test_mutated_real_files(data: bytes) -> None:
    _read_or_sie_error(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.data())
def test_mutated_written_files(document: SieDocument, data: st.DataObject) -> None:
    written = bytearray(dumps_sie(document, checksum=True))
    position = data.draw(st.integers(min_value=0, max_value=len(written) - 1))
    written[position] = data.draw(st.integers(min_value=0, max_value=255))
    _read_or_sie_error(bytes(written))
