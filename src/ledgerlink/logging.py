"""structlog setup: JSON lines, dotted event names, a request id bound per request, secrets redacted."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: F401  (registers the asyncio pool classes)
from sqlalchemy.pool import Pool

SECRET_KEYS = re.compile(
    r"(token|secret|password|authorization|consent_id|consent-id|code|state|refresh|api_key|cookie)", re.I
)
#: keys that look secret to the pattern above but name our own machine-readable outcomes
NOT_SECRET_KEYS = frozenset({"error_code", "status_code"})
BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Drop the values of secret-looking keys and bearer tokens inside strings."""
    for key in list(event_dict):
        if key in ("event", "level", "timestamp", "logger"):
            continue
        if SECRET_KEYS.search(key) and key not in NOT_SECRET_KEYS:
            event_dict[key] = "[redacted]"
        elif isinstance(event_dict[key], str):
            event_dict[key] = BEARER.sub(r"\1[redacted]", event_dict[key])
    return event_dict


class CancelledResetFilter(logging.Filter):
    """A task cancelled inside a transaction (Ctrl+C on ``make run`` with a job running, a job's timeout)
    has its connection's reset cancelled too, and SQLAlchemy's pool logs that ``CancelledError`` as an
    error with a traceback. Nothing is lost: the pool discards the connection, and the database drops
    the transaction left open on it. So the record becomes one info line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, asyncio.CancelledError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = (
                "db.connection_discarded: its reset was cancelled; the open transaction is rolled back",
                (),
            )
            record.exc_info = record.exc_text = None
        return True


CANCELLED_RESET = CancelledResetFilter()


def _pool_classes(cls: type[Pool] = Pool) -> list[type[Pool]]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _pool_classes(direct))]


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stdout, format="%(message)s")
    for noisy in ("httpx", "httpcore", "arq.worker", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for pool_class in _pool_classes():  # each pool class logs under its own name (no echo)
        pool_logger = logging.getLogger(f"{pool_class.__module__}.{pool_class.__name__}")
        if CANCELLED_RESET not in pool_logger.filters:
            pool_logger.addFilter(CANCELLED_RESET)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
