"""/docs and /redoc work without internet: every script, style and icon they load comes from this app."""

from __future__ import annotations

import re

import httpx
import pytest

ASSET_TYPES = {
    ".js": ("application/javascript", "text/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}


def _referenced(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)


@pytest.mark.parametrize(
    ("page", "expected"),
    [("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))],
)
async def test_the_docs_page_loads_only_same_origin_assets_and_they_are_served(
    client: httpx.AsyncClient, page: str, expected: tuple[str, ...]
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"https?://|(?:src|href)\s*=\s*[\"']//", html), "the page points off this origin"
    assets = _referenced(html)
    assert all(any(a.endswith(name) for a in assets) for name in expected), assets
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        served = await client.get(asset)
        assert served.status_code == 200, asset
        suffix = asset[asset.rfind(".") :]
        content_type = served.headers["content-type"].split(";")[0]
        assert content_type in ASSET_TYPES[suffix], (asset, content_type)
        assert len(served.content) > 1000, asset
    spec_url = re.search(r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""", html)
    assert spec_url and spec_url.group(1) == "/openapi.json"
    assert (await client.get("/openapi.json")).json()["info"]["title"] == "ledgerlink"


async def test_swagger_ui_keeps_the_token_and_asks_no_public_validator(client: httpx.AsyncClient) -> None:
    html = (await client.get("/docs")).text
    assert '"persistAuthorization": true' in html
    assert '"validatorUrl": null' in html
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200


async def test_the_docs_assets_are_not_part_of_the_api_contract(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]
