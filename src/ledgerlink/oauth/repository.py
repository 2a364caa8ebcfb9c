from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update

from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.bank import OAuthState


class OAuthStateRepository(RepositoryBase[OAuthState]):
    model = OAuthState

    async def consume(
        self,
        state_hash: str,
        *,
        company_id: uuid.UUID,
        purpose: str,
        connection_id: uuid.UUID | None,
        now: dt.datetime,
    ) -> OAuthState | None:
        """Burn the state and return it, atomically, if it is unused and bound to this company, purpose and
        (for banks) connection; None otherwise. Another company's attempt burns nothing."""
        stmt = update(OAuthState).where(
            OAuthState.state_hash == state_hash,
            OAuthState.company_id == company_id,
            OAuthState.purpose == purpose,
            OAuthState.used_at.is_(None),
        )
        if connection_id is not None:
            stmt = stmt.where(OAuthState.connection_id == connection_id)
        result: OAuthState | None = (
            await self.session.execute(stmt.values(used_at=now).returning(OAuthState))
        ).scalar_one_or_none()
        return result

    async def find(self, state_hash: str) -> OAuthState | None:
        """The state row with this hash, whatever its company (only the holder of the state can name
        it; the sandbox callback page uses it to tell a bank login from a Fortnox one)."""
        stmt = select(OAuthState).where(OAuthState.state_hash == state_hash)
        return await self.one_or_none(stmt)

    async def latest_for_connection(
        self, company_id: uuid.UUID, connection_id: uuid.UUID
    ) -> OAuthState | None:
        stmt = (
            scoped(select(OAuthState), OAuthState, company_id)
            .where(OAuthState.connection_id == connection_id)
            .order_by(OAuthState.expires_at.desc())
            .limit(1)
        )
        return await self.one_or_none(stmt)

    async def invalidate_for_connection(self, connection_id: uuid.UUID, *, now: dt.datetime) -> None:
        """Burn every open state of a connection (a new authorization supersedes the old one)."""
        await self.session.execute(
            update(OAuthState)
            .where(OAuthState.connection_id == connection_id, OAuthState.used_at.is_(None))
            .values(used_at=now)
        )
