"""The hourly Fortnox maintenance: refresh access tokens in use, expire idle connections, warn ahead."""

from __future__ import annotations

from ledgerlink.db.base import utcnow
from ledgerlink.fortnox.maintenance import active_company_ids, maintain_connection
from ledgerlink.logging import get_logger
from ledgerlink.worker.jobs import JobContext, cron_task

log = get_logger(__name__)


@cron_task("fortnox.refresh_due", minute={17})
async def refresh_due(ctx: JobContext) -> dict[str, int]:
    """Every active connection once: see :func:`ledgerlink.fortnox.maintenance.maintain_connection`.

    One company's failure is logged and does not stop the others. Returns a count per outcome."""
    clock = utcnow  # Fortnox tokens expire in wall time, whatever the service clock says
    outcomes: dict[str, int] = {}
    for company_id in await active_company_ids(ctx["sessionmaker"]):
        try:
            outcome = await maintain_connection(
                settings=ctx["settings"],
                sessionmaker=ctx["sessionmaker"],
                redis=ctx.get("redis"),
                transport=ctx.get("transports", {}).get("fortnox"),
                company_id=company_id,
                now=clock(),
            )
        except Exception:
            log.exception("fortnox.refresh_due.failed", company_id=str(company_id))
            outcome = "failed"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    log.info("fortnox.refresh_due.done", **outcomes)
    return outcomes
