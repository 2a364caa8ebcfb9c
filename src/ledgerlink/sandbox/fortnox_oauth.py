"""The sandbox Fortnox's OAuth server: ``/oauth-v1/auth`` (a consent page; ``approve=1`` / ``deny=1``
redirect at once), ``/oauth-v1/token`` (authorization_code and refresh_token grants, HTTP Basic client
auth, rotating single-use refresh tokens) and ``/oauth-v1/revoke``."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import secrets
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ledgerlink.sandbox.fortnox_state import CODE_SECONDS, AuthCode, SandboxFortnox
from ledgerlink.sandbox.scenarios import fortnox_shortcuts_html


def _oauth_error(status: int, error: str, description: str, media_type: str = "application/json") -> Response:
    # Fortnox sends these JSON bodies with text/html or text/plain content types; so do we.
    body = json.dumps({"error": error, "error_description": description})
    return Response(body, status_code=status, media_type=media_type)


def _client_from_basic(state: SandboxFortnox, request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    expected = state.clients.get(client_id)
    return client_id if expected is not None and secrets.compare_digest(expected, secret) else None


def oauth_router(state: SandboxFortnox) -> APIRouter:
    router = APIRouter()

    @router.get("/auth", response_model=None)
    async def authorize(request: Request) -> Response:
        q = request.query_params
        client_id, redirect_uri, state_param = (
            q.get("client_id", ""),
            q.get("redirect_uri", ""),
            q.get("state", ""),
        )
        if client_id not in state.clients or not redirect_uri:
            return HTMLResponse("<h1>Auth code or ClientID supplied is invalid</h1>", status_code=400)

        def back(**params: str) -> Response:
            sep = "&" if "?" in redirect_uri else "?"
            location = f"{redirect_uri}{sep}{urlencode({**params, 'state': state_param})}"
            return RedirectResponse(location, status_code=302)

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if q.get("deny"):
            return back(error="access_denied", error_description="The user denied the request")
        if q.get("approve"):
            code = secrets.token_urlsafe(16)
            state.codes[code] = AuthCode(
                client_id,
                redirect_uri,
                q.get("scope", ""),
                state.clock() + dt.timedelta(seconds=CODE_SECONDS),
            )
            return back(code=code)
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in q.items()
        )
        page = (
            "<!doctype html><html lang=sv><head><meta charset=utf-8><title>Sandbox Fortnox</title></head><body>"
            f"<h1>Sandbox Fortnox</h1><p>{html.escape(state.company.name)} – koppla integrationen "
            f"<b>{html.escape(client_id)}</b> med behörigheterna <code>{html.escape(q.get('scope', ''))}</code>?</p>"
            f'<form method="get" action="auth">{hidden}'
            '<button name="approve" value="1">Godkänn</button> <button name="deny" value="1">Avbryt</button>'
            f"</form>{fortnox_shortcuts_html()}</body></html>"
        )
        return HTMLResponse(page)

    @router.post("/token", response_model=None)
    async def token(request: Request) -> Response:
        state.counters.token_requests += 1
        client_id = _client_from_basic(state, request)
        if client_id is None:
            return _oauth_error(401, "invalid_client", "The client credentials are invalid", "text/plain")
        form = await request.form()
        grant_type = str(form.get("grant_type", ""))
        now = state.clock()
        if grant_type == "authorization_code":
            code = state.codes.get(str(form.get("code", "")))
            if code is None or code.used or code.expires_at < now or code.client_id != client_id:
                return _oauth_error(400, "invalid_grant", "Invalid authorization code", "text/html")
            code.used = True
            if form.get("redirect_uri", "") != code.redirect_uri:
                return _oauth_error(400, "invalid_grant", "Redirect URI mismatch", "text/html")
            return JSONResponse(state.issue_tokens(client_id, code.scope))
        if grant_type == "refresh_token":
            state.counters.refresh_grants += 1
            grant = state.refresh_tokens.get(str(form.get("refresh_token", "")))
            if grant is None or grant.used or grant.revoked or grant.client_id != client_id:
                return _oauth_error(400, "invalid_grant", "Invalid refresh token", "text/html")
            grant.used = True
            return JSONResponse(state.issue_tokens(client_id, grant.scope))
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type {grant_type!r}")

    @router.post("/revoke", response_model=None)
    async def revoke(request: Request) -> Response:
        client_id = _client_from_basic(state, request)
        if client_id is None:
            return _oauth_error(401, "invalid_client", "The client credentials are invalid", "text/plain")
        form = await request.form()
        grant = state.refresh_tokens.get(str(form.get("token", "")))
        if grant is None or grant.client_id != client_id:
            return _oauth_error(400, "invalid_grant", "Invalid token")
        grant.revoked = True
        state.save()
        return JSONResponse({"revoked": True})

    return router


__all__ = ["oauth_router"]
