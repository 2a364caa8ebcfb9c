"""The committed spec's shapes, as a generator reads them: unique component names, declared media types."""

from __future__ import annotations

from collections import Counter
from typing import Any

import yaml

from tests.contract.conftest import SPEC


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return spec


def test_no_two_component_schemas_share_a_title() -> None:
    schemas = _spec()["components"]["schemas"]
    titles = Counter(schema.get("title", name) for name, schema in schemas.items())
    assert [title for title, n in titles.items() if n > 1] == []
    assert [name for name in schemas if "__" in name] == []  # no module-qualified fallback names


def test_the_sie_download_is_declared_as_bytes_first() -> None:
    content = _spec()["paths"]["/v1/closings/{closing_id}/adjustments.sie"]["get"]["responses"]["200"][
        "content"
    ]
    first_type, first = next(iter(content.items()))
    assert first_type == "application/octet-stream"
    assert first["schema"] == {"type": "string", "format": "binary"}
