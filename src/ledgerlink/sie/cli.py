"""``ledgerlink sie summary FILE``: print a SIE file's summary as one JSON object."""

from __future__ import annotations

import json
import sys

from ledgerlink.sie.errors import SieError
from ledgerlink.sie.summary import summarize

EXIT_OK = 0
EXIT_UNREADABLE = 2


def summary_command(path: str) -> int:
    """Print the summary JSON to stdout and return 0, or an error to stderr and return 2."""
    try:
        result = summarize(path)
    except FileNotFoundError:
        sys.stderr.write(f"error: {path}: no such file\n")
        return EXIT_UNREADABLE
    except OSError as exc:
        sys.stderr.write(f"error: {path}: cannot read the file ({exc.strerror or exc})\n")
        return EXIT_UNREADABLE
    except SieError as exc:
        where = f"line {exc.line_number}: " if exc.line_number else ""
        sys.stderr.write(f"error: {path}: {where}{exc.message}\n")
        if exc.line:
            sys.stderr.write(f"  {exc.line[:200]}\n")
        return EXIT_UNREADABLE
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m ledgerlink.sie.cli FILE`` (the main CLI wires ``summary_command`` itself)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m ledgerlink.sie.cli FILE\n")
        return EXIT_UNREADABLE
    return summary_command(args[0])


if __name__ == "__main__":
    raise SystemExit(main())
