"""The ``ledgerlink`` command line as an operator meets it: version, help, one-line errors, stdout."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from ledgerlink.cli import build_parser
from tests.conftest import REDIS_URL, _sqlalchemy_url

ROOT = Path(__file__).resolve().parents[2]


def ledgerlink(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a process (the way an operator does), from outside the repository."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINK_")}
    return subprocess.run(
        [sys.executable, "-m", "ledgerlink.cli", *args],
        env={**base, **(env or {})},
        cwd=Path("/"),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_version_prints_the_installed_distribution_version() -> None:
    done = ledgerlink("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"ledgerlink {version('ledgerlink')}"


def _every_parser(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _every_parser(sub)
    return found


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{parser.prog} {action.dest}"
        for parser in _every_parser(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []
    subcommands = [
        f"{parser.prog}: {choice.dest}"
        for parser in _every_parser(build_parser())
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions
        if not choice.help
    ]
    assert subcommands == []


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["api", "--port", "eighty"], "--port"),
        (["api", "--port", "70000"], "--port"),
        (["dev-token", "--company-id", "not-a-uuid"], "--company-id"),
        (["seed-dev", "--company-id", "42"], "--company-id"),
        (["frobnicate"], "frobnicate"),
        (["api", "--no-such-option"], "--no-such-option"),
        (["api", "--workers", "0"], "--workers"),
        (["api", "--workers", "many"], "--workers"),
        ([], "COMMAND"),
    ],
)
def test_a_bad_argument_is_one_line_on_stderr_and_exit_2(args: list[str], names: str) -> None:
    done = ledgerlink(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert names in lines[0] and "Traceback" not in done.stderr


def test_api_workers_above_one_without_redis_is_refused_in_one_line() -> None:
    """Without Redis the jobs and the cron run inside the API process: two processes would run them twice."""
    done = ledgerlink("api", "--workers", "2", "--port", "1")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "LEDGERLINK_REDIS_URL" in done.stderr


def test_a_setting_that_does_not_parse_is_one_line_naming_it_and_exit_2() -> None:
    done = ledgerlink("dev-token", env={"LEDGERLINK_SYNC__OVERLAP_DAYS": "many"})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "sync.overlap_days" in done.stderr
    assert "Traceback" not in done.stderr


def test_migrate_to_an_unknown_revision_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = ledgerlink(
        "migrate", "nosuchrevision", env={"LEDGERLINK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"}
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "nosuchrevision" in done.stderr


def test_migrate_against_an_unreachable_database_is_one_line_and_exit_1() -> None:
    done = ledgerlink(
        "migrate", env={"LEDGERLINK_DATABASE_URL": "postgresql+asyncpg://u:hunter2@127.0.0.1:1/x"}
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "unreachable" in done.stderr
    assert "hunter2" not in done.stderr


def test_openapi_without_output_writes_the_document_to_stdout(tmp_path: Path) -> None:
    done = ledgerlink("openapi")
    assert done.returncode == 0, done.stderr
    document = yaml.safe_load(done.stdout)
    assert document["openapi"].startswith("3.")
    assert "/v1/company" in document["paths"]
    assert done.stdout == (ROOT / "openapi.yaml").read_text(encoding="utf-8")

    target = tmp_path / "spec.yaml"
    assert ledgerlink("openapi", "--output", str(target)).returncode == 0
    assert target.read_text(encoding="utf-8") == done.stdout


def test_worker_check_is_unhealthy_without_a_worker_and_healthy_while_one_runs(tmp_path: Path) -> None:
    env = {
        "LEDGERLINK_REDIS_URL": REDIS_URL,
        "LEDGERLINK_QUEUE_NAME": f"ledgerlink-clitest:{uuid.uuid4().hex[:8]}",
        "LEDGERLINK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/worker.db",
        "LEDGERLINK_ENV": "testing",
    }
    before = ledgerlink("worker", "--check", env=env)
    assert before.returncode == 1
    assert before.stderr.count("\n") == 1 and "unhealthy" in before.stderr

    base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINK_")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "ledgerlink.cli", "worker"],
        env={**base, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            done = ledgerlink("worker", "--check", env=env)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            assert worker.poll() is None, "the worker exited"
            time.sleep(0.5)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("worker healthy")
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_migrate_against_a_database_that_does_not_exist_is_one_line_naming_it() -> None:
    missing = f"ledgerlink_missing_{uuid.uuid4().hex[:8]}"
    url = _sqlalchemy_url(missing)
    done = ledgerlink("migrate", env={"LEDGERLINK_DATABASE_URL": url})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and missing in done.stderr
    assert "Traceback" not in done.stderr
