"""ledgerlink command line: the API and worker processes, migrations and developer tools."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from ledgerlink.config import Settings

DEV_COMPANY_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
# The worker refreshes its health key this often (arq's default is an hour); `worker --check` reads it.
WORKER_HEALTH_INTERVAL_SECONDS = 30
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """A bad argument is one line on stderr and exit status 2 (argparse adds the whole usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {value!r}") from None


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range 1-65535: {port}")
    return port


def _workers(value: str) -> int:
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of processes: {value!r}") from None
    if not 1 <= workers <= 256:
        raise argparse.ArgumentTypeError(f"workers out of range 1-256: {workers}")
    return workers


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ledgerlink")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _quiet_third_party_warnings() -> None:
    """authlib warns about its own httpx integration on import; it is noise on every start. (authlib's
    ``deprecate`` module installs an "always" filter when imported, so ours goes in front of it after.)"""
    import warnings

    import authlib.deprecate  # noqa: F401

    warnings.filterwarnings("ignore", message="The httpx module is deprecated")


def uvicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    return {
        "factory": True,
        "host": host,
        "port": port,
        "log_level": "warning",
        # Off: the user's address is resolved by the app from LEDGERLINK_TRUSTED_PROXIES
        # (ledgerlink.client_address); uvicorn's own rewrite trusts 127.0.0.1 by default.
        "proxy_headers": False,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
    }


def _cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    _quiet_third_party_warnings()
    from ledgerlink.config import get_settings

    settings = get_settings()
    if args.workers > 1 and not settings.redis_url:
        # Without Redis, jobs and the cron run inside the API process: N processes would run them N times.
        sys.stderr.write(
            "--workers above 1 needs LEDGERLINK_REDIS_URL (without it jobs run inside the API process, "
            "which must then be the only one).\n"
        )
        return EXIT_USAGE
    options = uvicorn_options(settings, args.host, args.port)
    if args.workers > 1:
        options["workers"] = args.workers
    uvicorn.run("ledgerlink.main:create_app", **options)
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from arq.worker import run_worker

    _quiet_third_party_warnings()

    from ledgerlink.config import get_settings
    from ledgerlink.worker.settings import build_worker_settings, worker_event_loop

    settings = get_settings()
    if not settings.redis_url:
        sys.stderr.write(
            "LEDGERLINK_REDIS_URL is not set: jobs run inside the API process (embedded default).\n"
        )
        return EXIT_USAGE
    if args.check:
        return _check_worker_health(settings.redis_url, settings.queue_name)
    worker_event_loop()
    run_worker(
        build_worker_settings(settings, metrics_port=args.metrics_port),
        health_check_interval=WORKER_HEALTH_INTERVAL_SECONDS,
    )
    return 0


def _check_worker_health(redis_url: str, queue_name: str) -> int:
    """0 when a worker of this queue recorded its health within the interval, else 1 (one line why)."""
    from arq.constants import health_check_key_suffix
    from redis.asyncio import Redis

    async def read() -> bytes | None:
        redis = Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3)
        try:
            value: bytes | None = await redis.get(queue_name + health_check_key_suffix)
            return value
        finally:
            await redis.aclose()

    try:
        report = asyncio.run(read())
    except Exception as exc:  # Redis down: no worker can work either
        sys.stderr.write(f"worker unhealthy: Redis unreachable ({type(exc).__name__})\n")
        return 1
    if report is None:
        sys.stderr.write(
            f"worker unhealthy: no worker of queue {queue_name!r} reported in the last "
            f"{WORKER_HEALTH_INTERVAL_SECONDS} s\n"
        )
        return 1
    sys.stdout.write(f"worker healthy: {report.decode(errors='replace')}\n")
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from ledgerlink.db.migrate import upgrade

    try:
        upgrade(args.revision)
    except CommandError as exc:  # an unknown revision, say
        sys.stderr.write(f"ledgerlink migrate: error: {_first_line(exc)}\n")
        return EXIT_USAGE
    except OSError as exc:
        sys.stderr.write(f"ledgerlink migrate: database unreachable: {_first_line(exc)}\n")
        return 1
    except DBAPIError as exc:
        cause = exc.orig if exc.orig is not None else exc
        what = "database unreachable" if isinstance(cause, OSError) else "migration failed"
        sys.stderr.write(f"ledgerlink migrate: {what}: {_first_line(cause)}\n")
        return 1
    return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _cmd_dev_token(args: argparse.Namespace) -> int:
    from ledgerlink.auth.tokens import issue_dev_token
    from ledgerlink.config import get_settings

    token = issue_dev_token(get_settings(), company_id=args.company_id, scopes=args.scope, user_id=args.user)
    sys.stdout.write(token + "\n")
    return 0


def _cmd_openapi(args: argparse.Namespace) -> int:
    from ledgerlink.openapi import render_openapi

    text = render_openapi()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def _cmd_seed_dev(args: argparse.Namespace) -> int:
    from ledgerlink.config import get_settings
    from ledgerlink.dev import seed_dev_company

    asyncio.run(seed_dev_company(get_settings(), args.company_id))
    return 0


def _cmd_sandbox_open_items(args: argparse.Namespace) -> int:
    from ledgerlink.config import get_settings
    from ledgerlink.sandbox.open_items import push_open_items

    items, deposits = asyncio.run(
        push_open_items(get_settings(), args.company_id, args.psu, args.date_from, args.date_to)
    )
    sys.stdout.write(
        f"pushed {items} open items ({deposits} Bankgiro deposits in the sandbox's BgMax file)\n"
    )
    return 0


def _date(value: str) -> Any:
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from exc


def _cmd_sie_summary(args: argparse.Namespace) -> int:
    from ledgerlink.sie.cli import summary_command

    return summary_command(args.file)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ledgerlink", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    api = sub.add_parser("api", help="serve the HTTP API with uvicorn (one process per core)")
    api.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    api.add_argument("--port", type=_port, default=8000, help="TCP port to listen on (default: %(default)s)")
    api.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="API processes sharing the port; run one per core (default: %(default)s; above 1 needs "
        "LEDGERLINK_REDIS_URL)",
    )
    api.set_defaults(fn=_cmd_api)

    worker = sub.add_parser("worker", help="run the arq worker (needs LEDGERLINK_REDIS_URL)")
    worker.add_argument(
        "--check",
        action="store_true",
        help="do not run a worker: exit 0 if one of this queue is alive, else 1 (container healthcheck)",
    )
    worker.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        help="serve this process's Prometheus metrics (sync runs, jobs, webhooks, and the scrape-time "
        "gauges) on this port at /metrics, on every interface",
    )
    worker.set_defaults(fn=_cmd_worker)

    migrate = sub.add_parser("migrate", help="apply database migrations to LEDGERLINK_DATABASE_URL")
    migrate.add_argument(
        "revision", nargs="?", default="head", help="Alembic revision to upgrade to (default: %(default)s)"
    )
    migrate.set_defaults(fn=_cmd_migrate)

    token = sub.add_parser("dev-token", help="print a JWT signed with the dev secret")
    token.add_argument(
        "--company-id", type=_uuid, default=DEV_COMPANY_ID, help="company_id claim (default: the dev company)"
    )
    token.add_argument(
        "--scope", default="banking closing", help="space-separated scopes (default: %(default)r)"
    )
    token.add_argument("--user", default="dev-user", help="sub claim (default: %(default)s)")
    token.set_defaults(fn=_cmd_dev_token)

    openapi = sub.add_parser("openapi", help="write the OpenAPI document as YAML")
    openapi.add_argument(
        "--output",
        "-o",
        default="-",
        help="file to write (default: standard output; `make openapi` writes openapi.yaml)",
    )
    openapi.set_defaults(fn=_cmd_openapi)

    seed = sub.add_parser("seed-dev", help="create the dev company on the Business plan")
    seed.add_argument(
        "--company-id", type=_uuid, default=DEV_COMPANY_ID, help="id of the company (default: %(default)s)"
    )
    seed.set_defaults(fn=_cmd_seed_dev)

    push = sub.add_parser(
        "sandbox-open-items", help="push the sandbox bank's invoices as open items of a company (dev)"
    )
    push.add_argument("--company-id", type=_uuid, default=DEV_COMPANY_ID, help="default: %(default)s")
    push.add_argument("--psu", default="demo", help="the sandbox bank user (default: %(default)s)")
    push.add_argument("--from", dest="date_from", type=_date, required=True, help="first day (YYYY-MM-DD)")
    push.add_argument("--to", dest="date_to", type=_date, required=True, help="last day (YYYY-MM-DD)")
    push.set_defaults(fn=_cmd_sandbox_open_items)

    sie = sub.add_parser("sie", help="SIE 4 tools")
    sie_sub = sie.add_subparsers(dest="sie_command", required=True, metavar="COMMAND")
    summary = sie_sub.add_parser("summary", help="print a JSON summary of a SIE file")
    summary.add_argument("file", help="path of the SIE 4 file")
    summary.set_defaults(fn=_cmd_sie_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    try:
        result: int = args.fn(args)
    except ValidationError as exc:  # a LEDGERLINK_* variable that does not parse
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        sys.stderr.write(f"ledgerlink: invalid settings: {problems}\n")
        return EXIT_USAGE
    return result


if __name__ == "__main__":
    raise SystemExit(main())
