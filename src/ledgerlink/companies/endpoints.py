from __future__ import annotations

import uuid

from fastapi import APIRouter, Path, Request

from ledgerlink.auth.dependencies import AdminPrincipal, AnyPrincipal
from ledgerlink.companies.schemas import CompanyRead, CompanyUpdate
from ledgerlink.companies.service import company as company_service
from ledgerlink.db.session import ReadSessionDep, SessionDep
from ledgerlink.errors import responses

router = APIRouter(tags=["company"])


@router.get("/company", response_model=CompanyRead, responses=responses(401))
async def get_company(request: Request, principal: AnyPrincipal, session: ReadSessionDep) -> CompanyRead:
    """The caller's company, its plan and its entitlements."""
    return await company_service.read(session, principal.company_id, request.app.state.settings)


@router.put("/companies/{company_id}", response_model=CompanyRead, responses=responses(401, 403, 422))
async def put_company(
    request: Request,
    data: CompanyUpdate,
    principal: AdminPrincipal,
    session: SessionDep,
    company_id: uuid.UUID = Path(description="The platform's company id"),
) -> CompanyRead:
    """Create or update a company and its plan (billing; scope `admin`)."""
    await company_service.upsert(session, company_id, data)
    return await company_service.read(session, company_id, request.app.state.settings)
