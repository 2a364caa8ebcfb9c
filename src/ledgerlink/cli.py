"""``ledgerlink`` command line: api, worker, migrate, dev-token, openapi, seed-dev, sie summary."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledgerlink.config import Settings

DEV_COMPANY_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


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
        "proxy_headers": True,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
    }


def _cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    _quiet_third_party_warnings()
    from ledgerlink.config import get_settings

    uvicorn.run("ledgerlink.main:create_app", **uvicorn_options(get_settings(), args.host, args.port))
    return 0


def _cmd_worker(_: argparse.Namespace) -> int:
    from arq.worker import run_worker

    _quiet_third_party_warnings()

    from ledgerlink.config import get_settings
    from ledgerlink.worker.settings import build_worker_settings

    settings = get_settings()
    if not settings.redis_url:
        sys.stderr.write(
            "LEDGERLINK_REDIS_URL is not set: jobs run inside the API process (embedded default).\n"
        )
        return 2
    run_worker(build_worker_settings(settings))
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from ledgerlink.db.migrate import upgrade

    upgrade(args.revision)
    return 0


def _cmd_dev_token(args: argparse.Namespace) -> int:
    from ledgerlink.auth.tokens import issue_dev_token
    from ledgerlink.config import get_settings

    token = issue_dev_token(
        get_settings(), company_id=uuid.UUID(args.company_id), scopes=args.scope, user_id=args.user
    )
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

    asyncio.run(seed_dev_company(get_settings(), uuid.UUID(args.company_id)))
    return 0


def _cmd_sie_summary(args: argparse.Namespace) -> int:
    from ledgerlink.sie.cli import summary_command

    return summary_command(args.file)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledgerlink", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    api = sub.add_parser("api", help="serve the HTTP API with uvicorn")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(fn=_cmd_api)

    sub.add_parser("worker", help="run the arq worker (needs LEDGERLINK_REDIS_URL)").set_defaults(
        fn=_cmd_worker
    )

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(fn=_cmd_migrate)

    token = sub.add_parser("dev-token", help="print a JWT signed with the dev secret")
    token.add_argument("--company-id", default=str(DEV_COMPANY_ID))
    token.add_argument("--scope", default="banking closing")
    token.add_argument("--user", default="dev-user")
    token.set_defaults(fn=_cmd_dev_token)

    openapi = sub.add_parser("openapi", help="write the OpenAPI document as YAML")
    openapi.add_argument("--output", "-o", default="openapi.yaml")
    openapi.set_defaults(fn=_cmd_openapi)

    seed = sub.add_parser("seed-dev", help="create the dev company on the Business plan")
    seed.add_argument("--company-id", default=str(DEV_COMPANY_ID))
    seed.set_defaults(fn=_cmd_seed_dev)

    sie = sub.add_parser("sie", help="SIE 4 tools")
    sie_sub = sie.add_subparsers(dest="sie_command", required=True)
    summary = sie_sub.add_parser("summary", help="print a JSON summary of a SIE file")
    summary.add_argument("file")
    summary.set_defaults(fn=_cmd_sie_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.fn(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
