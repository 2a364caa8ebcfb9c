"""The app's OpenAPI document: :mod:`.document` completes it; :func:`render_openapi` renders it as YAML
(``ledgerlink openapi`` / ``make openapi``; the drift test compares the committed file with it)."""

from __future__ import annotations

import yaml

from ledgerlink.config import Settings


def render_openapi() -> str:
    from ledgerlink.main import create_app

    app = create_app(Settings(sandbox=False, _env_file=None))
    return yaml.safe_dump(app.openapi(), sort_keys=False, allow_unicode=True, width=120)
