"""Shared fixtures for the SIE tests: the read-only corpus of real exports."""

from __future__ import annotations

from pathlib import Path

import pytest

#: ../shared/data/sie next to the project root (where the repository is checked out beside shared/)
_CANDIDATES = [Path(__file__).resolve().parents[3] / "shared" / "data" / "sie", Path("/work/shared/data/sie")]
CORPUS_DIR = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[-1])
CORPUS_FILES = sorted(
    path for path in CORPUS_DIR.iterdir() if path.is_file() and path.suffix.lower() in (".se", ".si")
)


def corpus_file(name: str) -> Path:
    path = CORPUS_DIR / name
    if not path.exists():
        pytest.skip(f"corpus file {name} not available")
    return path
