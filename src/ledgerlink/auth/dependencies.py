"""FastAPI dependencies: the authenticated principal, with scope checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledgerlink.auth.principal import Principal
from ledgerlink.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="JWT with company_id and scope claims")


async def get_principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized(
            "missing bearer token", code="missing_token", headers={"WWW-Authenticate": "Bearer"}
        )
    principal: Principal = await request.app.state.token_verifier.verify(credentials.credentials)
    request.state.principal = principal
    return principal


def require_scope(scope: str) -> object:
    async def check(principal: Principal = Depends(get_principal)) -> Principal:
        if not principal.has(scope):
            raise Forbidden(f"this operation needs the '{scope}' scope", code="insufficient_scope")
        return principal

    return Depends(check)


BankingPrincipal = Annotated[Principal, require_scope("banking")]
ClosingPrincipal = Annotated[Principal, require_scope("closing")]
AdminPrincipal = Annotated[Principal, require_scope("admin")]
AnyPrincipal = Annotated[Principal, Depends(get_principal)]
