"""Docker cannot run here; check that the compose file and Dockerfile would run as written."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_has_the_five_services_with_health_checks_and_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in " ".join(services["redis"]["healthcheck"]["test"])
    for name in ("migrate", "api", "worker"):
        service = services[name]
        assert service["build"]["context"] == "."
        env = service["environment"]
        assert env["LEDGERLINK_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["LEDGERLINK_REDIS_URL"].startswith("redis://")
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["ledgerlink", "migrate"]
    assert services["api"]["command"][:2] == ["ledgerlink", "api"]
    assert services["worker"]["command"] == ["ledgerlink", "worker"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_dockerfile_is_slim_non_root_and_serves_uvicorn() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "python:3.11-slim" in text
    assert "uv sync --frozen" in text
    user_lines = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user_lines and user_lines[-1].split()[1] not in ("root", "0")
    assert '"ledgerlink", "api"' in text
