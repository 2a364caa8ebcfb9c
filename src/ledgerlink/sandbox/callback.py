"""``GET /sandbox/callback``: the dev redirect target (allow-listed by default) that shows what an OAuth
server sent back, so a developer can relay it by hand (``POST /v1/fortnox/authorization/callback``)."""

from __future__ import annotations

import html
import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/sandbox/callback", response_class=HTMLResponse)
async def sandbox_callback(request: Request) -> HTMLResponse:
    params = {
        k: v for k, v in request.query_params.items() if k in ("code", "state", "error", "error_description")
    }
    body = json.dumps({k: v for k, v in params.items() if k != "error_description"}, indent=2)
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Sandbox callback</title></head><body>"
        "<h1>Back from the authorization</h1>"
        "<p>POST this body to <code>/v1/fortnox/authorization/callback</code> (in <a href='/docs'>/docs</a>) "
        "with your bearer token:</p>"
        f"<pre>{html.escape(body, quote=False)}</pre></body></html>"
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
