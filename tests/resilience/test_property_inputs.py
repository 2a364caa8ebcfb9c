"""Property tests over the route table: arbitrary cursors to every list, and arbitrary decimals, dates,
texts and nested JSON in every field of every creating/changing route's body. A client's input is
answered 4xx (a cursor we did not make: 422 naming ``cursor``), never 5xx.

Routes are read from the app (a new list or a new body field is fuzzed without editing this file); ids
in paths are random, so a body that happens to be valid meets a 404, still the client's error."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from ledgerlink.config import Settings
from ledgerlink.main import create_app
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sandbox.fortnox import create_sandbox_fortnox_app
from tests.conftest import make_token
from tests.foundation.test_cursors import seed
from tests.resilience.conftest import FULL, AllBanks
from tests.resilience.test_tenant_isolation import v1_routes

pytestmark = pytest.mark.resilience

EXAMPLES = 40 if FULL else 12

#: JSON of any shape, including deep nesting.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)
#: A marker replaced by n nested arrays once the body is serialised (json.dumps itself would recurse).
deep = st.integers(min_value=1, max_value=5000).map(lambda n: f"__DEEP_{n}__")
DEEP = re.compile(r'"__DEEP_(\d+)__"')
decimals = st.decimals(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [Decimal("1e999999999"), Decimal("-1e-999999999"), Decimal("0.1"), Decimal("12345678901234567890.123")]
)
decimal_values = st.one_of(
    decimals.map(str),
    st.floats(allow_nan=False),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from(["1e999999999", "NaN", "Infinity", "-0", "１２.５０", "1,50", " 1.00", "0x10"]),
)
date_values = st.one_of(
    st.dates().map(dt.date.isoformat),
    st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-30", "2026-13-01", "20260101", "-2026-01-01"]),
    st.datetimes().map(dt.datetime.isoformat),
    st.integers(),
)
texts = st.text(max_size=300) | st.sampled_from(["\x00", "１９３０", "ÅÄÖ/../x", "a" * 5000, "\r\nX: y"])
#: Values that broke this service once, tried early and often.
TROUBLE: list[Any] = [
    "1e999999999", "NaN", "Infinity", 0.1, "１９３０", "0001-01-01", "9999-12-31", "\x00", "1.001", 10**30,
    "ÅÄÖ/../x", "\r\nX: y", "a" * 5000, [], {}, None,
]  # fmt: skip
KNOWN_TROUBLE = st.sampled_from(TROUBLE)
hostile = st.one_of(KNOWN_TROUBLE, json_values, deep, decimal_values, date_values, texts)

cursors = st.one_of(
    st.text(max_size=600),
    json_values.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode()),
    st.tuples(json_values, json_values).map(
        lambda lv: base64.urlsafe_b64encode(json.dumps({"l": lv[0], "v": lv[1]}).encode()).decode()
    ),
    st.lists(st.one_of(date_values, decimal_values, texts), max_size=3).map(
        lambda v: base64.urlsafe_b64encode(json.dumps(v, default=str).encode()).decode()
    ),
)


def fill(path: str, ids: dict[str, str]) -> str:
    """The path with the company's own resources where seeded, a random id elsewhere."""
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


def body_schema(app: Any, route: Any, method: str) -> dict[str, Any] | None:
    """The JSON schema of the route's body, from the app's own OpenAPI (None: no JSON body)."""
    operation = app.openapi()["paths"][route.path][method.lower()]
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    return None if content is None else dict(content["schema"])


def valid_leaf(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value the schema allows for a scalar, so that the OTHER fields of a body pass validation and a
    hostile value elsewhere reaches the service behind it."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "string" and fmt == "date":
        return st.dates(dt.date(2024, 1, 1), dt.date(2026, 12, 31)).map(dt.date.isoformat)
    if kind == "string" and fmt == "uuid":
        return st.uuids().map(str)
    if kind == "string" and "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True)
    if kind == "string":
        return st.sampled_from([*schema.get("examples", []), "1510", "2440", "A", "x"])
    if kind in ("integer", "number"):
        return st.integers(min_value=0, max_value=100)
    if kind == "boolean":
        return st.booleans()
    return st.just("x")


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> list[dict[str, Any]]:
    """The concrete variants of a schema (``$ref`` followed, ``anyOf``/``allOf`` spread, no ``null``)."""
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    variants = [*schema.get("anyOf", []), *schema.get("allOf", [])] or [schema]
    out = []
    for variant in variants:
        while "$ref" in variant:
            variant = components[variant["$ref"].rsplit("/", 1)[1]]
        if variant.get("type") != "null":
            out.append(variant)
    return out


def valid(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A body the schema allows: every field present, arrays of one or two items, valid scalars."""
    variant = resolve(schema, components)[0]
    if variant.get("properties"):
        return st.fixed_dictionaries({k: valid(v, components) for k, v in variant["properties"].items()})
    if variant.get("type") == "array" and "items" in variant:
        return st.lists(valid(variant["items"], components), min_size=1, max_size=2)
    return valid_leaf(variant)


def leaves(
    schema: dict[str, Any], components: dict[str, Any], at: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Every place in a body a value goes: field names and ``0`` for an array's first item."""
    variant = resolve(schema, components)[0]
    if variant.get("properties"):
        found = [at] if at else []
        for name, sub in variant["properties"].items():
            found += leaves(sub, components, (*at, name))
        return found
    if variant.get("type") == "array" and "items" in variant:
        return [at, *leaves(variant["items"], components, (*at, 0))]
    return [at]


def with_value(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(body, dict) and isinstance(head, str):
        return {**body, head: with_value(body.get(head), rest, value)}
    if isinstance(body, list) and body and head == 0:
        return [with_value(body[0], rest, value), *body[1:]]
    return body


def minimal(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """One body the schema allows, built deterministically (dates inside the seeded 2025 closing)."""
    variant = resolve(schema, components)[0]
    if variant.get("properties"):
        return {k: minimal(v, components) for k, v in variant["properties"].items()}
    if variant.get("type") == "array" and "items" in variant:
        return [minimal(variant["items"], components)]
    if "enum" in variant:
        return variant["enum"][0]
    kind, fmt = variant.get("type"), variant.get("format")
    if fmt == "date":
        return "2025-12-31"
    if fmt == "uuid":
        return str(uuid.uuid4())
    if kind == "string":
        return ([*variant.get("examples", []), "1510"])[0]
    if kind in ("integer", "number"):
        return 1
    return True if kind == "boolean" else "x"


def one_hostile_field(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A valid body with ONE value (a field, an array, an item, a nested field) replaced by a hostile
    one, so the hostile value meets whatever code sits behind the schema; sometimes the whole body."""
    paths = leaves(schema, components)
    one = st.tuples(valid(schema, components), st.sampled_from(paths), hostile).map(lambda t: with_value(*t))
    return st.one_of(one, one, one, hostile) if paths else hostile


@pytest.fixture
async def headers(settings: Settings, sessionmaker: Any) -> tuple[dict[str, str], dict[str, str]]:
    """A business company with a row in every list (a closing with an import, a bank account, ...)."""
    company_id = uuid.uuid4()
    ids = await seed(sessionmaker, company_id) | {"company_id": str(company_id)}
    ids["bank_account_id"] = ids["account_id"]
    token = make_token(settings, company_id, "banking closing admin")
    return ids, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(settings: Settings) -> Any:
    transports = AllBanks(
        sandbox=httpx.ASGITransport(app=create_sandbox_bank_app()),
        fortnox=httpx.ASGITransport(app=create_sandbox_fortnox_app()),
    )
    settings.webhooks.allow_private_targets = False
    with TestClient(create_app(settings, transports=transports, start_cron=False)) as c:
        yield c


def problems_of(response: Any, label: str) -> list[str]:
    if response.status_code >= 500:
        return [f"{label} -> {response.status_code}: {response.text[:300]}"]
    if not 400 <= response.status_code < 500:
        return []
    if not response.headers["content-type"].startswith("application/problem+json"):
        return [f"{label} -> {response.status_code} without problem+json"]
    return []


def test_arbitrary_cursors_are_422_naming_cursor_on_every_list(
    client: Any, headers: tuple[dict[str, str], dict[str, str]]
) -> None:
    ids, auth = headers
    lists = [
        r
        for r in v1_routes(client.app)
        if "GET" in r.methods and any(p.name == "cursor" for p in r.dependant.query_params)
    ]
    assert len(lists) >= 8, [r.path for r in lists]
    problems: list[str] = []

    @given(cursor=cursors)
    @hsettings(
        max_examples=EXAMPLES * 3, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(cursor: str) -> None:
        for route in lists:
            response = client.get(fill(route.path, ids), params={"cursor": cursor}, headers=auth)
            label = f"GET {route.path} cursor={cursor[:80]!r}"
            problems.extend(problems_of(response, label))
            if response.status_code != 422 or response.json()["errors"][0]["loc"] != ["query", "cursor"]:
                problems.append(f"{label} -> {response.status_code}: {response.text[:200]}")

    check()
    assert problems == [], "\n".join(dict.fromkeys(problems))


def test_arbitrary_values_in_every_body_field_are_4xx_never_5xx(
    client: Any, headers: tuple[dict[str, str], dict[str, str]]
) -> None:
    ids, auth = headers
    components = client.app.openapi()["components"]["schemas"]
    targets = []
    for route in v1_routes(client.app):
        for method in route.methods & {"POST", "PUT", "PATCH"}:
            schema = body_schema(client.app, route, method)
            if schema is not None:
                targets.append((route, method, one_hostile_field(schema, components)))
    assert len(targets) >= 15, [(r.path, m) for r, m, _ in targets]
    problems: list[str] = []

    def check_route(route: Any, method: str, strategy: st.SearchStrategy[Any]) -> None:
        @given(body=strategy)
        @hsettings(
            max_examples=EXAMPLES * 3, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(body: Any) -> None:
            payload = DEEP.sub(lambda m: "[" * int(m[1]) + "]" * int(m[1]), json.dumps(body, default=str))
            response = client.request(
                method,
                fill(route.path, ids),
                content=payload,
                headers={**auth, "Content-Type": "application/json"},
            )
            problems.extend(problems_of(response, f"{method} {route.path} {payload[:200]}"))

        check()

    # every value that broke this service once, in every place of an otherwise valid body
    for route, method, _ in targets:
        schema = body_schema(client.app, route, method)
        assert schema is not None
        base = minimal(schema, components)
        for path in leaves(schema, components):
            for value in TROUBLE:
                payload = json.dumps(with_value(base, path, value))
                response = client.request(
                    method,
                    fill(route.path, ids),
                    content=payload,
                    headers={**auth, "Content-Type": "application/json"},
                )
                problems.extend(problems_of(response, f"{method} {route.path} {payload[:200]}"))
    for route, method, strategy in targets:
        check_route(route, method, strategy)
    assert problems == [], "\n".join(dict.fromkeys(problems))
