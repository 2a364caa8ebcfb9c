"""Hot-path shortcuts keep their guarantees: the one-round-trip checkout ping replaces a killed
connection, read sessions do not open transactions, verified tokens are cached only until exp."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import text

from ledgerlink.auth.tokens import TokenVerifier, issue_dev_token
from ledgerlink.config import AuthSettings, Settings
from ledgerlink.db.session import create_engine
from ledgerlink.errors import Unauthorized


async def test_checkout_ping_replaces_a_terminated_connection(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        other = create_engine(database_url, pool_size=1, max_overflow=0)
        try:
            async with other.connect() as killer:
                await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        finally:
            await other.dispose()
        async with engine.connect() as conn:  # the pooled connection is dead: replaced on checkout
            new_pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert new_pid != pid
    finally:
        await engine.dispose()


async def test_verified_tokens_are_cached_until_exp() -> None:
    settings = Settings(_env_file=None, auth=AuthSettings())
    verifier = TokenVerifier(settings.auth)
    company = uuid.uuid4()
    token = issue_dev_token(settings, company_id=company, scopes="banking")
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # served from the cache
    assert first.company_id == company
    # An entry past its exp is not honoured: the token is verified again (and here rejected).
    expired = issue_dev_token(settings, company_id=company, scopes="banking", ttl_seconds=-3600)
    verifier._verified[expired] = (first, time.time() - 1)
    try:
        await verifier.verify(expired)
    except Unauthorized:
        pass
    else:
        raise AssertionError("an expired token was accepted from the cache")
    assert expired not in verifier._verified
