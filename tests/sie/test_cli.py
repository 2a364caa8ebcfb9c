"""``summary_command`` and ``summarize`` on real and broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledgerlink.sie import summarize
from ledgerlink.sie.cli import summary_command
from tests.sie.conftest import corpus_file

SUMMARY_KEYS = {
    "sie_type",
    "program",
    "format",
    "company_name",
    "org_number",
    "financial_years",
    "accounts",
    "vouchers",
    "transactions",
    "unbalanced_vouchers",
    "checksum",
    "warnings",
}


def test_summary_of_a_real_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = corpus_file("transaktioner_ovnbolag-bad-balance.se")

    exit_code = summary_command(str(path))

    out, err = capsys.readouterr()
    assert exit_code == 0
    assert err == ""
    summary = json.loads(out)
    assert set(summary) == SUMMARY_KEYS
    assert summary["sie_type"] == "4E"
    assert summary["program"] == "Avendo"
    assert summary["format"] == "PC8"
    assert summary["company_name"] == "Övningsbolaget AB (Ekonomi 60)"
    assert summary["org_number"] == "5555555555"
    assert summary["financial_years"] == [
        {"index": 0, "start": "2011-01-01", "end": "2011-12-31"},
        {"index": -1, "start": "2010-01-01", "end": "2010-12-31"},
    ]
    text = path.read_bytes().decode("cp437")
    assert summary["vouchers"] == text.count("#VER ")
    assert summary["transactions"] == text.count("#TRANS ")
    assert summary["unbalanced_vouchers"] == [{"series": "B", "number": "1", "difference": "-12771.00"}]
    assert summary["checksum"] == "absent"
    assert summary["warnings"] == []


def test_summary_reports_a_verified_checksum() -> None:
    summary = summarize(corpus_file("Bokslut_Norstedts_SIE_4E.se"))

    assert summary["checksum"] == "ok"
    assert summary["sie_type"] == "4E"
    assert summary["company_name"] == "Datakonsulterna AB"


def test_summary_of_a_4i_file() -> None:
    assert summarize(corpus_file("magenta_bokforing_SIE4I.se"))["sie_type"] == "4I"


def test_broken_file_exits_2_with_the_line_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.se"
    broken.write_bytes(b'#FLAGGA 0\n#SIETYP 4\n#VER A 1 20250101 "x"\n{\n#TRANS 1910 {} 12,50\n}\n')

    exit_code = summary_command(str(broken))

    out, err = capsys.readouterr()
    assert exit_code == 2
    assert out == ""
    assert "line 5" in err
    assert "12,50" in err


def test_unclosed_voucher_exits_2_naming_the_ver_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "unclosed.se"
    broken.write_bytes(b"#FLAGGA 0\n#SIETYP 4\n#VER A 1 20250101\n{\n#TRANS 1910 {} 1\n")

    assert summary_command(str(broken)) == 2
    assert "line 3" in capsys.readouterr().err


def test_missing_file_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.se"

    exit_code = summary_command(str(missing))

    captured = capsys.readouterr()
    assert exit_code == 2
    assert captured.out == ""
    assert "no such file" in captured.err
    assert str(missing) in captured.err


def test_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert summary_command(str(tmp_path)) == 2
    assert "cannot read" in capsys.readouterr().err
