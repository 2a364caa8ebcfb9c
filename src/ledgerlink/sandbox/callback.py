"""``GET /sandbox/callback``: the dev redirect target (allow-listed by default) that shows what an OAuth
server sent back, and where to relay it by hand: a bank login's state names its connection, so the
page says ``POST /v1/bank-connections/{id}/authorization``; a Fortnox login's state is bound to the user
who started it (not readable here), so any other state is taken for Fortnox
(``POST /v1/fortnox/authorization/callback``)."""

from __future__ import annotations

import html
import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ledgerlink.oauth.service import find_state
from ledgerlink.sandbox.scenarios import bank_scenarios_html, fortnox_shortcuts_html

router = APIRouter(include_in_schema=False)

FIELDS = ("code", "state", "error", "error_description")


async def relay_target(request: Request, state: str | None) -> tuple[str, str]:
    """(the flow's name, the endpoint to POST the body to) for this state."""
    if state:
        async with request.app.state.sessionmaker() as session:
            row = await find_state(session, state)
        if row is not None and row.purpose == "bank" and row.connection_id is not None:
            return "bank", f"/v1/bank-connections/{row.connection_id}/authorization"
    return "fortnox", "/v1/fortnox/authorization/callback"


@router.get("/sandbox/callback", response_class=HTMLResponse)
async def sandbox_callback(request: Request) -> HTMLResponse:
    params = {k: v for k, v in request.query_params.items() if k in FIELDS}
    flow, target = await relay_target(request, params.get("state"))
    relayed = ("code", "state") if flow == "bank" else ("code", "state", "error")
    body = json.dumps({k: v for k, v in params.items() if k in relayed}, indent=2)
    what = "the bank login" if flow == "bank" else "the Fortnox login"
    other = (
        "<p>(From a bank login? Then its state is unknown or used: a bank login relays to "
        "<code>/v1/bank-connections/{id}/authorization</code>; start it again.)</p>"
        if flow == "fortnox"
        else ""
    )
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Sandbox callback</title></head><body>"
        f"<h1>Back from {what}</h1>"
        f"<p>POST this body to <code>{html.escape(target)}</code> (in <a href='/docs'>/docs</a>) "
        "with your bearer token:</p>"
        f"<pre>{html.escape(body, quote=False)}</pre>{other}"
        + (bank_scenarios_html() if flow == "bank" else fortnox_shortcuts_html())
        + "</body></html>"
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
