from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ledgerlink.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _env_names(model: type[BaseModel], prefix: str) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _env_names(annotation, f"{prefix}{name.upper()}__")
        elif name != "banks":
            names.add(f"{prefix}{name.upper()}")
    return names


def test_env_example_lists_every_setting() -> None:
    listed = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    missing = _env_names(Settings, "LEDGERLINK_") - listed
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_nested_settings_from_environment(monkeypatch: object) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("LEDGERLINK_SYNC__OVERLAP_DAYS", "14")
        mp.setenv("LEDGERLINK_BANKS__NORDEA__BASE_URL", "http://127.0.0.1:9/nordea")
        mp.setenv("LEDGERLINK_ALLOWED_REDIRECT_URIS", "https://a.test/cb, https://b.test/cb")
        s = Settings(_env_file=None)  # type: ignore[call-arg]
    finally:
        mp.undo()
    assert s.sync.overlap_days == 14
    assert s.bank("nordea").base_url == "http://127.0.0.1:9/nordea"
    assert s.allowed_redirect_uris == ["https://a.test/cb", "https://b.test/cb"]


def test_the_api_keeps_idle_connections_longer_than_a_proxy_would() -> None:
    """uvicorn's own default (5 s) closes idle connections under clients and proxies that still reuse them;
    ``ledgerlink api`` takes the keep-alive from the settings instead."""
    import uvicorn

    from ledgerlink.cli import uvicorn_options

    options = uvicorn_options(Settings(http_keep_alive_seconds=90), "127.0.0.1", 8123)
    config = uvicorn.Config("ledgerlink.main:create_app", **options)
    assert config.timeout_keep_alive == 90
    assert Settings().http_keep_alive_seconds > 60
