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
    assert services["worker"]["command"][:2] == ["ledgerlink", "worker"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_dockerfile_is_slim_non_root_and_serves_uvicorn() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "python:3.11-slim" in text
    assert "uv sync --frozen" in text
    user_lines = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user_lines and user_lines[-1].split()[1] not in ("root", "0")
    assert '"ledgerlink", "api"' in text


def test_compose_asks_for_the_settings_a_real_deployment_needs() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    required = (
        "LEDGERLINK_PUBLIC_BASE_URL",
        "LEDGERLINK_ALLOWED_REDIRECT_URIS",
        "LEDGERLINK_AUTH__JWT_SECRET",
        "LEDGERLINK_SECURITY__ENCRYPTION_KEYS",
        "LEDGERLINK_FORTNOX__CLIENT_ID",
        "LEDGERLINK_FORTNOX__CLIENT_SECRET",
    )
    for name in ("migrate", "api", "worker"):
        env = compose["services"][name]["environment"]
        assert env["LEDGERLINK_ENV"] == "production"
        assert env["LEDGERLINK_SANDBOX"] == "false"
        for variable in required:
            # `${VAR:?message}`: compose refuses to start without it rather than run on dev defaults
            assert env[variable].startswith(f"${{{variable}:?"), (name, variable, env.get(variable))


def test_the_worker_has_a_healthcheck_the_cli_answers() -> None:
    from ledgerlink.cli import WORKER_HEALTH_INTERVAL_SECONDS, build_parser

    worker = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]
    test = worker["healthcheck"]["test"]
    assert test[0] == "CMD"
    args = build_parser().parse_args(test[2:])
    assert test[1] == "ledgerlink" and args.command == "worker" and args.check is True
    interval = int(worker["healthcheck"]["interval"].removesuffix("s"))
    assert interval >= WORKER_HEALTH_INTERVAL_SECONDS  # the key (TTL interval + 1 s) outlives a check period


def test_the_worker_serves_its_metrics_on_the_port_compose_publishes() -> None:
    """The worker's command parses with the CLI's own parser, asks for a metrics port, and that port is
    the container side of a published port (where Prometheus scrapes it, beside the API's :8000)."""
    from ledgerlink.cli import build_parser

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    command = services["worker"]["command"]
    assert command[0] == "ledgerlink"
    args = build_parser().parse_args(command[1:])
    assert args.command == "worker" and args.check is False
    assert args.metrics_port is not None
    published = [str(p).rsplit(":", 1)[-1] for p in services["worker"].get("ports", [])]
    assert str(args.metrics_port) in published
    api = build_parser().parse_args(services["api"]["command"][1:])
    assert args.metrics_port != api.port
    assert str(api.port) in [str(p).rsplit(":", 1)[-1] for p in services["api"]["ports"]]


def _dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule for the simple patterns we use: the last matching line wins; `!` re-includes."""
    import fnmatch

    excluded = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        if body.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, body[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, body) for prefix in prefixes)
        if hit:
            excluded = not negate
    return excluded


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for private in (".env", ".git/HEAD", ".venv/bin/python", "var/ledgerlink.db", "tests/conftest.py"):
        assert _dockerignore_excludes(private, patterns), private
    assert _dockerignore_excludes("src/ledgerlink/__pycache__/cli.cpython-311.pyc", patterns)
    copied = [
        source
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    ]
    assert copied, "the Dockerfile copies nothing from the context?"
    for source in copied:
        assert not _dockerignore_excludes(source.rstrip("/"), patterns), source
    for shipped in (
        "src/ledgerlink/cli.py",
        "src/ledgerlink/migrations/env.py",
        "src/ledgerlink/migrations/script.py.mako",
    ):
        assert not _dockerignore_excludes(shipped, patterns), shipped


def test_the_image_ships_the_migrations_inside_the_package_not_beside_it() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY migrations" not in text and "alembic.ini" not in text
    assert "--no-editable" in text
    # the final stage takes only the virtualenv, where the wheel (with its migrations) is installed
    final_stage = text.rsplit("FROM ", 1)[1]
    assert "/app/.venv /app/.venv" in final_stage
    assert (ROOT / "src" / "ledgerlink" / "migrations" / "env.py").is_file()
    assert not (ROOT / "migrations").exists()
