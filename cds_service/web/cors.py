"""CORS: the headers on preflight and on every response, and a trace of
the origins it refuses.

A browser that is refused CORS shows its user nothing useful: the public sandbox, for one,
draws its green "All clear" screen as if the service had no cards. So a refused origin is
logged (``cors origin refused``, with the origin, at most once a minute per origin) and
counted (``cds_cors_refused``), and docs/security.md says what to look for.

Refused means: the request carried an ``Origin`` and the answer carries no
``Access-Control-Allow-Origin``, which is exactly what the browser decides on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from flask import Flask, Response, request
from flask_cors import CORS

log = logging.getLogger("cds_service.cors")

CORS_HEADERS = ["Authorization", "Content-Type"]
#: How often one origin is logged, and how many origins are remembered for that.
LOG_INTERVAL_S = 60.0
MAX_TRACKED_ORIGINS = 1000
MAX_ORIGIN_CHARS = 200


class RefusedOrigins:
    """Decides which refusals are logged: each origin at most once per ``interval_s``."""

    def __init__(
        self, *, interval_s: float = LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._next: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def should_log(self, origin: str) -> tuple[bool, int]:
        """Whether to log this refusal, and how many refusals of the origin went unlogged."""
        now = self.clock()
        with self._lock:
            due = self._next.get(origin)
            if due is not None and now < due:
                self._suppressed[origin] = self._suppressed.get(origin, 0) + 1
                return False, 0
            if len(self._next) >= MAX_TRACKED_ORIGINS:
                # Many origins at once (a scan): forget the ones whose minute has passed,
                # and if that is not enough, start over; the metric still counts every one.
                self._next = {o: t for o, t in self._next.items() if t > now}
                if len(self._next) >= MAX_TRACKED_ORIGINS:
                    self._next.clear()
                    self._suppressed.clear()
            self._next[origin] = now + self.interval_s
            return True, self._suppressed.pop(origin, 0)


def setup(
    app: Flask, origins: Sequence[str], *, on_refused: Callable[[str], None] | None = None
) -> RefusedOrigins:
    """CORS for ``origins`` (``*``: any), and the refused-origin log; ``on_refused`` is
    called with ``preflight`` or ``request`` for each refusal (the metrics hook)."""
    refused = RefusedOrigins()
    app.extensions["cds_cors_refused"] = refused

    # Registered before flask_cors's own after_request, so it runs after it (Flask runs them
    # in reverse order) and sees the headers the browser will see.
    @app.after_request
    def trace_refusal(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if not origin or response.headers.get("Access-Control-Allow-Origin"):
            return response
        kind = "preflight" if request.method == "OPTIONS" else "request"
        if on_refused is not None:
            on_refused(kind)
        shown = origin[:MAX_ORIGIN_CHARS]
        log_now, suppressed = refused.should_log(shown)
        if log_now:
            log.warning(
                "cors origin refused",
                extra={
                    "origin": shown,
                    "kind": kind,
                    "path": request.path[:200],
                    "allowed_origins": list(origins),
                    "suppressed": suppressed,
                },
            )
        return response

    CORS(
        app,
        origins=list(origins) or [],
        methods=["GET", "POST", "OPTIONS"],
        allow_headers=CORS_HEADERS,
        supports_credentials=False,
        always_send=True,
        send_wildcard="*" in origins,
        max_age=86400,
    )
    return refused
