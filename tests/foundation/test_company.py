from __future__ import annotations

import datetime as dt
import uuid

import httpx

from ledgerlink.banks.adapters.base import STOCKHOLM
from ledgerlink.companies.service import bank_import_entitlement
from ledgerlink.config import Settings
from ledgerlink.models.company import Plan
from tests.conftest import make_token


async def test_billing_sets_plan_and_company_reads_entitlement(
    client: httpx.AsyncClient, settings: Settings, company_id: uuid.UUID, auth_headers: dict[str, str]
) -> None:
    admin = {"Authorization": f"Bearer {make_token(settings, uuid.uuid4(), 'admin')}"}
    before = (await client.get("/v1/company", headers=auth_headers)).json()
    assert before["plan"] == "free"
    assert before["entitlements"]["automatic_bank_import"] == {"enabled": False, "reason": "upgrade_required"}

    put = await client.put(
        f"/v1/companies/{company_id}",
        headers=admin,
        json={"name": "Kaffekoppen AB", "org_number": "556677-8899", "plan": "business"},
    )
    assert put.status_code == 200, put.text

    after = (await client.get("/v1/company", headers=auth_headers)).json()
    assert after["id"] == str(company_id)
    assert after["name"] == "Kaffekoppen AB"
    assert after["entitlements"]["automatic_bank_import"] == {"enabled": True, "reason": "business_plan"}


def test_trial_until_date_inclusive_then_upgrade_required(settings: Settings) -> None:
    today = dt.datetime.now(STOCKHOLM).date()
    trial = settings.model_copy(update={"bank_import_trial_until": today})
    assert bank_import_entitlement(Plan.free, trial, today=today).reason == "trial"
    assert (
        bank_import_entitlement(Plan.free, trial, today=today + dt.timedelta(days=1)).reason
        == "upgrade_required"
    )
    assert bank_import_entitlement(Plan.business, trial, today=today + dt.timedelta(days=400)).enabled


async def test_company_reports_trial_from_setting(
    app: object, settings: Settings, auth_headers: dict[str, str]
) -> None:
    settings.bank_import_trial_until = dt.datetime.now(STOCKHOLM).date() + dt.timedelta(days=30)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:  # type: ignore[arg-type]
        body = (await c.get("/v1/company", headers=auth_headers)).json()
    assert body["entitlements"]["automatic_bank_import"] == {"enabled": True, "reason": "trial"}
