"""What every adapter test file shares: the recorded payloads under tests/data/banks/<bank>/ and a respx
router standing in for the bank (routes not called are fine; anything unrouted fails the request)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import respx

BANK_DATA = Path(__file__).resolve().parents[2] / "data" / "banks"


def payloads(folder: Path) -> Callable[[str], Any]:
    """``load("consent.json")`` for the JSON payloads in ``folder``."""

    def load(name: str) -> Any:
        return json.loads((folder / name).read_text(encoding="utf-8"))

    return load


def mock_bank(base_url: str | None = None) -> Iterator[respx.MockRouter]:
    """Body of a ``bank`` fixture: ``yield from mock_bank(BASE)``."""
    with respx.mock(base_url=base_url, assert_all_called=False) as router:
        yield router
