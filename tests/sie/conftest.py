"""Shared fixtures for the SIE tests: the read-only corpus of real exports."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS_DIR = Path("/work/shared/data/sie")
CORPUS_FILES = sorted(
    path for path in CORPUS_DIR.iterdir() if path.is_file() and path.suffix.lower() in (".se", ".si")
)


def corpus_file(name: str) -> Path:
    path = CORPUS_DIR / name
    if not path.exists():
        pytest.skip(f"corpus file {name} not available")
    return path
