"""The committed spec's shapes, as a generator reads them: unique component names, declared media types."""

from __future__ import annotations

from collections import Counter
from typing import Any

import yaml

from ledgerlink.events.schemas import EVENT_TYPES
from ledgerlink.models.inbox import TodoType
from ledgerlink.openapi.document import error_classes
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


def test_every_error_code_of_the_hierarchy_is_declared_in_the_problem_schema() -> None:
    schemas = _spec()["components"]["schemas"]
    declared = set(schemas["ProblemCode"]["enum"])
    assert {"$ref": "#/components/schemas/ProblemCode"} in schemas["Problem"]["properties"]["code"]["anyOf"]
    # codes given where an error is raised, and codes from a mapping table (adapter errors → problems)
    assert {"idempotency_key_reused", "ledger_account_invalid", "bank_rate_limited"} <= declared
    classes = error_classes()
    assert len(classes) > 20  # the feature error modules were loaded
    missing = {f"{cls.__module__}.{cls.__name__}": cls.code for cls in classes if cls.code not in declared}
    assert missing == {}


def test_problem_extra_fields_are_declared() -> None:
    properties = _spec()["components"]["schemas"]["Problem"]["properties"]
    assert {"run_id", "ids", "errors", "bank_id", "retryable"} <= set(properties)


def test_todos_are_a_union_discriminated_by_a_declared_type() -> None:
    schemas = _spec()["components"]["schemas"]
    items = schemas["TodoList"]["properties"]["items"]["items"]
    mapping = items["discriminator"]["mapping"]
    assert items["discriminator"]["propertyName"] == "type"
    assert set(mapping) == set(schemas["TodoType"]["enum"]) == {t.value for t in TodoType}
    for todo_type, ref in mapping.items():
        variant = schemas[ref.rsplit("/", 1)[1]]
        assert variant["properties"]["type"]["const"] == todo_type


def test_every_webhook_event_is_declared_with_its_payload() -> None:
    spec = _spec()
    assert set(spec["webhooks"]) == set(EVENT_TYPES)
    for event, item in spec["webhooks"].items():
        ref = item["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        envelope = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert envelope["properties"]["type"]["const"] == event
        data_ref = envelope["properties"]["data"]["$ref"].rsplit("/", 1)[1]
        assert data_ref in spec["components"]["schemas"]


def test_created_and_accepted_answers_declare_location_and_unavailable_declares_retry_after() -> None:
    for path, item in _spec()["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status in ("201", "202"):
                    assert "Location" in response.get("headers", {}), (method, path, status)
                if status in ("429", "503"):
                    assert "Retry-After" in response.get("headers", {}), (method, path, status)


def test_closed_sets_are_enums() -> None:
    schemas = _spec()["components"]["schemas"]

    def enum_of(schema: str, field: str) -> list[str]:
        prop = schemas[schema]["properties"][field]
        if "$ref" in prop:
            prop = schemas[prop["$ref"].rsplit("/", 1)[1]]
        return list(prop["enum"])

    assert set(enum_of("BankAccountRead", "status")) >= {"pending_confirmation", "active", "paused"}
    assert set(enum_of("ImportOut", "status")) == {"queued", "running", "succeeded", "failed"}
    assert set(enum_of("ConnectionRead", "status")) >= {"awaiting_authorization", "active", "revoked"}
    assert set(enum_of("FortnoxConnectionRead", "status")) == {
        "active",
        "expired",
        "revoked",
        "not_connected",
    }
    assert "properties" in schemas["ImportCounts"]
