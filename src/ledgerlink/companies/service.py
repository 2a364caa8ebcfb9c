"""Company records (written by billing) and the automatic-bank-import entitlement."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.clock import today_stockholm
from ledgerlink.companies.repository import CompanyRepository
from ledgerlink.companies.schemas import CompanyRead, CompanyUpdate, Entitlement, Entitlements
from ledgerlink.config import Settings
from ledgerlink.errors import Forbidden
from ledgerlink.models.company import Company, Plan


def bank_import_entitlement(plan: Plan, settings: Settings, *, today: dt.date | None = None) -> Entitlement:
    """Business always; everyone until the trial date (inclusive, Stockholm); otherwise an upgrade."""
    if plan == Plan.business:
        return Entitlement(enabled=True, reason="business_plan")
    today = today or today_stockholm()
    trial = settings.bank_import_trial_until
    if trial is not None and today <= trial:
        return Entitlement(enabled=True, reason="trial")
    return Entitlement(enabled=False, reason="upgrade_required")


class PlanRequired(Forbidden):
    code = "plan_required"
    title = "Business plan required"


class CompanyService:
    async def upsert(self, session: AsyncSession, company_id: uuid.UUID, data: CompanyUpdate) -> Company:
        repo = CompanyRepository(session)
        company = await repo.get(company_id)
        if company is None:
            company = Company(id=company_id, name=data.name, org_number=data.org_number, plan=data.plan)
            return await repo.add(company)
        company.name, company.org_number, company.plan = data.name, data.org_number, data.plan
        await session.flush()
        return company

    async def plan_of(self, session: AsyncSession, company_id: uuid.UUID) -> Plan:
        company = await CompanyRepository(session).get(company_id)
        return company.plan if company else Plan.free

    async def read(self, session: AsyncSession, company_id: uuid.UUID, settings: Settings) -> CompanyRead:
        company = await CompanyRepository(session).get(company_id)
        plan = company.plan if company else Plan.free
        return CompanyRead(
            id=company_id,
            name=company.name if company else None,
            org_number=company.org_number if company else None,
            plan=plan,
            entitlements=Entitlements(automatic_bank_import=bank_import_entitlement(plan, settings)),
        )

    async def require_bank_import(
        self, session: AsyncSession, company_id: uuid.UUID, settings: Settings
    ) -> None:
        entitlement = bank_import_entitlement(await self.plan_of(session, company_id), settings)
        if not entitlement.enabled:
            raise PlanRequired("automatic bank import needs the Business plan")


company = CompanyService()
