"""Contract fuzzing: schemathesis generates requests for every operation of the app's OpenAPI (and
stateful sequences following the links it infers), sent over ASGI to ``create_app(settings)`` with a
valid token of a Business company. No answer may be a 5xx, and every answer must match the schema
(documented status code, content type and body schema).

The sandbox bank and sandbox Fortnox answer bank/Fortnox calls in-process; every other bank gets a
transport that answers 503 without connecting; no hostname resolves (tests/resilience/conftest.py)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ledgerlink.config import Settings
from ledgerlink.main import create_app
from ledgerlink.models import Company, Plan
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sandbox.fortnox import create_sandbox_fortnox_app
from tests.conftest import make_token
from tests.resilience.conftest import FULL, AllBanks

pytestmark = pytest.mark.resilience

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("LEDGERLINK_FUZZ_EXAMPLES", 60 if FULL else 12))
STATEFUL_EXAMPLES = 100 if FULL else 15


@pytest.fixture
async def fuzz_headers(settings: Settings, sessionmaker: Any) -> dict[str, str]:
    company_id = uuid.uuid4()
    async with sessionmaker() as s:
        s.add(Company(id=company_id, name="Fuzz AB", plan=Plan.business))
        await s.commit()
    return {"Authorization": f"Bearer {make_token(settings, company_id, 'banking closing admin')}"}


@pytest.fixture
def fuzz_app(settings: Settings) -> Any:
    transports = AllBanks(
        sandbox=httpx.ASGITransport(app=create_sandbox_bank_app()),
        fortnox=httpx.ASGITransport(app=create_sandbox_fortnox_app()),
    )
    return create_app(settings, transports=transports, start_cron=False)


def run_operation(operation: Any, headers: dict[str, str], failures: list[str], mode: GenerationMode) -> None:
    """Generate cases for one operation; collect every distinct failure instead of stopping."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @hsettings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except (AssertionError, Exception, BaseExceptionGroup) as exc:
            key = f"{operation.method.upper()} {operation.path}: {type(exc).__name__}: {str(exc)[:600]}"
            if key not in failures:
                failures.append(key)

    check()


def test_every_operation_answers_within_its_schema(fuzz_app: Any, fuzz_headers: dict[str, str]) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/v1"):
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run_operation(operation, fuzz_headers, failures, mode)
    assert operations >= 50
    assert failures == [], "\n\n".join(failures)


def test_stateful_sequences_answer_within_the_schema(fuzz_app: Any, fuzz_headers: dict[str, str]) -> None:
    """Sequences along the links schemathesis infers (create a resource, then read/patch/delete it)."""
    api = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    base = api.as_state_machine()
    calls: list[int] = []

    class Machine(base):  # type: ignore[valid-type,misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": fuzz_headers}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            calls.append(response.status_code)

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    run_state_machine_as_test(
        Machine,
        settings=hsettings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),
    )
    assert calls, "the state machine made no calls"
    assert not [c for c in calls if c >= 500]
