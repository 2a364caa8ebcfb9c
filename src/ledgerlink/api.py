"""The one place routers are included."""

from __future__ import annotations

from fastapi import APIRouter

from ledgerlink.banks.endpoints import router as banks_router
from ledgerlink.closing.endpoints import router as closing_router
from ledgerlink.companies.endpoints import router as companies_router
from ledgerlink.events.endpoints import router as events_router
from ledgerlink.fortnox.endpoints import router as fortnox_router
from ledgerlink.inbox.endpoints import router as inbox_router
from ledgerlink.matching.endpoints import router as matching_router
from ledgerlink.statements.endpoints import router as statements_router
from ledgerlink.sync.endpoints import router as sync_router


def build_v1_router() -> APIRouter:
    router = APIRouter(prefix="/v1")
    for feature_router in (
        companies_router,
        banks_router,
        sync_router,
        inbox_router,
        matching_router,
        events_router,
        fortnox_router,
        closing_router,
        statements_router,
    ):
        router.include_router(feature_router)
    return router
