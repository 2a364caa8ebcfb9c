"""Generated clients key models by schema title: the Fortnox connection must not share one with the
bank connection (a generator kept one of the two ``ConnectionRead`` and failed on the other's 200)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ledgerlink.config import Settings
from ledgerlink.main import create_app


def _schemas() -> dict[str, Any]:
    spec = create_app(Settings(sandbox=False)).openapi()
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


def test_every_component_title_is_unique() -> None:
    titles = Counter(schema.get("title", name) for name, schema in _schemas().items())
    assert [title for title, n in titles.items() if n > 1] == []


def test_the_fortnox_endpoints_use_fortnox_named_schemas() -> None:
    schemas = _schemas()
    for name in ("FortnoxConnectionRead", "FortnoxAuthorizationStarted", "FortnoxAuthorizationCallback"):
        assert schemas[name]["title"] == name
    assert not any("__" in name for name in schemas)  # no module-qualified fallbacks
