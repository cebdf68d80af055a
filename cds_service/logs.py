"""Structured JSON-line logs: events, ids, rule ids, timings. Never patient data or tokens.

Only whitelisted ``extra`` fields are written, so a careless ``log.info(..., extra={...})``
cannot leak a value; exceptions are logged as their type and stack frames, without the message
(an exception message can quote input).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback

ALLOWED_FIELDS = frozenset(
    {
        "service",
        "hookInstance",
        "rules",
        "rules_hidden",
        "cards",
        "skipped_resources",
        "fetched_keys",
        "missing",
        "failed_rules",
        "duration_ms",
        "prefetch_ms",
        "evaluate_ms",
        "resource",
        "reason",
        "rule",
        "error",
        "entries",
        "stored",
        "duplicates",
        "unknown_cards",
        "status",
        "method",
        "path",
        "code",
        "profile",
        "workers",
        "database",
        "key",
        "keys",
        "issuer",
        "kid",
        "url_host",
        "pages",
        "count",
        "elapsed_ms",
        "version",
        "budget_ms",
        "failed_keys",
        "truncated",
        "alg",
        "jku",
        "part",
        "decision",
    }
)


class JsonFormatter(logging.Formatter):
    """``interpolate=True`` fills the message's ``%s`` arguments in: for gunicorn's own logs
    (``cds-service serve`` configures them), whose messages carry pids and signal names in
    their arguments, never request data. The service's events keep the bare event name."""

    def __init__(self, *args: object, interpolate: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.interpolate = interpolate

    def format(self, record: logging.LogRecord) -> str:
        # On every call's path (one invocation event per call): built in one pass over the
        # record, the timestamp's seconds reused.
        if self.interpolate:
            message = record.getMessage()[:1000]
        else:
            message = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        event: dict[str, object] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": message,
        }
        fields = record.__dict__
        for key in fields:
            if key in ALLOWED_FIELDS:
                event[key] = fields[key]
        if record.exc_info and record.exc_info[0] is not None:
            event["exception"] = record.exc_info[0].__name__
            event["stack"] = [
                f"{frame.filename}:{frame.lineno} {frame.name}"
                for frame in traceback.extract_tb(record.exc_info[2])
            ]
        # The standard library's spacing (``"event": "invocation"``), which log searches and
        # dashboards already match; its C encoder is a few microseconds of the line.
        return _ENCODE(event)


_ENCODE = json.JSONEncoder(default=str).encode
_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def timestamp(created: float) -> str:
    """``created`` in UTC to the millisecond, ISO 8601 (``2025-01-31T12:00:00.123+00:00``)."""
    global _second
    seconds = int(created)
    if _second[0] != seconds:
        _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{_second[1]}.{min(int((created - seconds) * 1000), 999):03d}+00:00"


def configure(level: str = "INFO") -> None:
    # No record needs its caller's file and line, its thread or its process (none is written
    # out): the switches the logging HOWTO ("Optimization") gives to skip finding them.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def gunicorn_logconfig(level: str = "INFO") -> dict:
    """gunicorn's ``logconfig_dict``: its own logs as JSON lines on stderr too, and the root
    logger (the service's events) kept as ``configure`` set it."""
    stream = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "cds_service.logs.JsonFormatter"},
            "gunicorn": {"()": "cds_service.logs.JsonFormatter", "interpolate": True},
        },
        "handlers": {
            "json": {**stream, "formatter": "json"},
            "gunicorn": {**stream, "formatter": "gunicorn"},
        },
        "root": {"level": level, "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["gunicorn"], "propagate": False},
            # No access log: the invocation events say more, and a request line could carry a
            # query string with anything in it.
            "gunicorn.access": {"level": "WARNING", "handlers": ["gunicorn"], "propagate": False},
        },
    }
