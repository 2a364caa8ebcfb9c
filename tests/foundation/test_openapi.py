from __future__ import annotations

from pathlib import Path

import yaml

from ledgerlink.openapi import render_openapi

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_matches_the_app() -> None:
    committed = (ROOT / "openapi.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(committed) == yaml.safe_load(render_openapi()), (
        "openapi.yaml is stale: run make openapi"
    )


def test_every_operation_documents_its_problem_responses() -> None:
    spec = yaml.safe_load(render_openapi())
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/"):
                assert "401" in operation["responses"], f"{method.upper()} {path} does not document 401"
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert "application/problem+json" in response.get("content", {}), (method, path, status)
