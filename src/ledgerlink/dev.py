"""Helpers for the embedded default (``make run``)."""

from __future__ import annotations

import uuid

from ledgerlink.companies.schemas import CompanyUpdate
from ledgerlink.companies.service import company as company_service
from ledgerlink.config import Settings
from ledgerlink.db.session import create_engine, create_sessionmaker, session_scope
from ledgerlink.models.company import Plan


async def seed_dev_company(settings: Settings, company_id: uuid.UUID) -> None:
    engine = create_engine(settings.database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            await company_service.upsert(
                session,
                company_id,
                CompanyUpdate(name="Demo AB", org_number="556677-8899", plan=Plan.business),
            )
    finally:
        await engine.dispose()
