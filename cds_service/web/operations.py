"""Endpoints for the operator, not the EHR: ``/healthz``, ``/readyz``, ``/metrics``; and the
log event for an invocation that failed.

- ``GET /healthz``: the process is alive and answering (a container's HEALTHCHECK, a
  liveness probe). Touches nothing else, so a database outage never restarts the service.
- ``GET /readyz``: the configuration is loaded and, within the store's readiness deadline
  (``storage/sql.py``), the database answers with
  its schema migrated and takes a test write (a readiness probe, a load balancer's check);
  503 OperationOutcome with ``Retry-After`` otherwise (unreachable, frozen, locked, disk full).
- ``GET /metrics``: Prometheus text format (``metrics.py``).

None of them needs the EHR's token (they are not CDS Hooks endpoints; ``app.py`` checks the
token only on discovery, services and feedback); CORS applies as on every response. Expose
them to the monitoring network only: ``deploy/nginx.conf`` does not pass ``/metrics`` on.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request

from cds_service.cdshooks.application import CdsApplication

from . import metrics

log = logging.getLogger("cds_service.invocation")

#: The endpoints whose failures get an event of their own (successes log ``invocation``
#: and ``feedback`` in cdshooks/application.py).
FAILURE_EVENTS = {"invoke": "invocation failed", "feedback": "feedback failed"}


def register(app: Flask, core: CdsApplication, authenticator: Any) -> None:
    metrics.instrument(app, core, authenticator)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        return jsonify(core.readiness())

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    @app.after_request
    def failure_event(response: Response) -> Response:
        try:
            _failure_event(core, response)
        except Exception as exc:  # a log line must not change the answer
            metrics.failed("log", exc, core)
        return response


def _failure_event(core: CdsApplication, response: Response) -> None:
    event = FAILURE_EVENTS.get(request.endpoint or "")
    if event is not None and response.status_code >= 400:
        _, service = metrics.labels(core)
        started = request.environ.get(metrics.STARTED)
        extra = {
            "service": service,
            "hookInstance": g.get("cds_hook_instance"),
            "status": response.status_code,
            "code": error_code(response),
        }
        if started is not None:
            extra["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
        level = logging.ERROR if response.status_code >= 500 else logging.INFO
        log.log(level, event, extra=extra)


def error_code(response: Response) -> str | None:
    """The stable code of an OperationOutcome answer (``issue[0].details.coding[0].code``)."""
    try:
        outcome = response.get_json(silent=True) or {}
        return outcome["issue"][0]["details"]["coding"][0]["code"]
    except (KeyError, IndexError, TypeError):
        return None


def hook_instance(body: Any) -> str | None:
    """The request's ``hookInstance`` for the log (an id the EHR makes up, not patient data),
    when it is a string of sensible length."""
    value = body.get("hookInstance") if isinstance(body, dict) else None
    return value[:100] if isinstance(value, str) else None
