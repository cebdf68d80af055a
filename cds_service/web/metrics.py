"""Prometheus metrics (``GET /metrics``): the one home of ``prometheus_client``.

The layers below know nothing of Prometheus; each exposes a plain hook that ``instrument``
plugs a counter into: ``CdsApplication.on_card`` / ``on_feedback``, ``Authenticator.on_failure``,
``FhirFetcher.observer`` and the store's ``on_error``. HTTP requests are counted here.

Under gunicorn every worker is a process with its own counters: ``cds-service serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before this module is imported (the
library picks its storage at import), each worker writes its values there, ``/metrics``
adds them up, and the master removes a dead worker's live files (``mark_process_dead``). Run
in one process (tests, ``flask run``), the ordinary in-memory registry is used.

Counting is best-effort: a metrics call that fails (a full disk, a vanished directory) is
logged and never changes an answer.

Labels are closed sets (registered service ids, rule ids, reason codes, prefetch keys), never
a value from the request, so that a caller cannot grow the number of series.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

log = logging.getLogger("cds_service.web")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Set on the WSGI environ by the timing middleware.
STARTED = "cds.started"

REQUESTS = Counter(
    "cds_http_requests",
    "HTTP requests answered, by endpoint, CDS service (or '-') and HTTP status.",
    ["endpoint", "service", "status"],
)
LATENCY = Histogram(
    "cds_http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint and CDS service.",
    ["endpoint", "service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CARDS = Counter(
    "cds_cards",
    "Cards returned to the EHR, by service, rule id and indicator.",
    ["service", "rule", "indicator"],
)
FEEDBACK = Counter(
    "cds_feedback",
    "Feedback entries stored (duplicates excluded), by service, rule id and outcome.",
    ["service", "rule", "outcome"],
)
FHIR_KEYS = Counter(
    "cds_fhir_fallback_keys",
    "Prefetch keys fetched from the EHR's FHIR server, by key and result"
    " (ok, timeout, error, refused).",
    ["key", "result"],
)
FHIR_FETCH = Histogram(
    "cds_fhir_fallback_duration_seconds",
    "Time the prefetch fallback took in one invocation (all keys, in parallel).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0),
)
AUTH_FAILURES = Counter(
    "cds_auth_failures",
    "Calls refused with 401, by reason code (docs/authentication.md, Reasons).",
    ["reason"],
)
ANONYMOUS_CALLS = Counter(
    "cds_anonymous_calls",
    "Calls accepted without a token (development, or CDS_ALLOW_ANONYMOUS=1); the log says"
    " so once per worker.",
)
STORAGE_FAILURES = Counter(
    "cds_storage_failures",
    "Database operations that failed, by operation (cards are still returned; feedback 503).",
    ["operation"],
)
LEDGER_DROPPED = Counter(
    "cds_ledger_dropped",
    "Card ledger entries not written (queue full, database down), by reason. The cards were"
    " returned; their feedback will count as from an unknown card.",
    ["reason"],
)
REPLAY_STORE_UNAVAILABLE = Counter(
    "cds_replay_store_unavailable",
    "Tokens checked for replay without the shared store (it did not answer within its"
    " deadline), by decision (CDS_REPLAY_STORE_UNAVAILABLE: accepted or refused with 503).",
    ["decision"],
)
OBSERVABILITY_FAILURES = Counter(
    "cds_observability_failures",
    "Failures of the ledger hand-off, metrics or logging that an invocation survived, by part.",
    ["part"],
)
CORS_REFUSED = Counter(
    "cds_cors_refused",
    "Requests with an Origin that CORS did not allow, by kind (preflight or request).",
    ["kind"],
)

UNKNOWN_CARD = "(unknown card)"


def card_issued(service: str, rule: str, indicator: str) -> None:
    CARDS.labels(service, rule, indicator).inc()


def feedback_stored(service: str, rule: str | None, outcome: str) -> None:
    FEEDBACK.labels(service, rule or UNKNOWN_CARD, outcome).inc()


def auth_failed(reason: str) -> None:
    AUTH_FAILURES.labels(reason).inc()


def anonymous_call() -> None:
    ANONYMOUS_CALLS.inc()


def storage_failed(operation: str) -> None:
    STORAGE_FAILURES.labels(operation).inc()


def ledger_dropped(count: int, reason: str) -> None:
    LEDGER_DROPPED.labels(reason).inc(count)


def replay_store_unavailable(decision: str) -> None:
    REPLAY_STORE_UNAVAILABLE.labels(decision).inc()


def observability_failed(part: str) -> None:
    OBSERVABILITY_FAILURES.labels(part).inc()


def cors_refused(kind: str) -> None:
    try:
        CORS_REFUSED.labels(kind).inc()
    except Exception:  # a metric must never break an answer
        pass


def fhir_fetched(results: Mapping[str, str], elapsed_s: float) -> None:
    for key, result in results.items():
        FHIR_KEYS.labels(key, result).inc()
    FHIR_FETCH.observe(elapsed_s)


def _hook(target: Any, attribute: str, function: Any) -> None:
    """Plug ``function`` into a layer's hook, unless the caller has set one already."""
    if target is not None and hasattr(target, attribute) and getattr(target, attribute) is None:
        setattr(target, attribute, function)


def instrument(app: Flask, core: Any, authenticator: Any) -> None:
    """Count what the app and the layers below it do."""
    _hook(core, "on_card", card_issued)
    _hook(core, "on_feedback", feedback_stored)
    _hook(getattr(core, "fetcher", None), "observer", fhir_fetched)
    _hook(getattr(core, "store", None), "on_error", storage_failed)
    _hook(authenticator, "on_failure", auth_failed)
    _hook(core, "on_ledger_drop", ledger_dropped)
    _hook(core, "on_observability_failure", observability_failed)
    _hook(getattr(authenticator, "replay", None), "on_unavailable", replay_store_unavailable)
    _hook(authenticator, "on_anonymous", anonymous_call)

    inner = app.wsgi_app

    def timed(environ: dict[str, Any], start_response: Any) -> Any:
        environ[STARTED] = time.perf_counter()
        return inner(environ, start_response)

    app.wsgi_app = timed  # type: ignore[method-assign]

    @app.after_request
    def count(response: Response) -> Response:
        try:
            endpoint, service = labels(core)
            REQUESTS.labels(endpoint, service, str(response.status_code)).inc()
            started = request.environ.get(STARTED)
            if started is not None:
                LATENCY.labels(endpoint, service).observe(time.perf_counter() - started)
        except Exception as exc:  # the answer is ready: counting it must not change it
            failed("metrics", exc, core)
        return response


def failed(part: str, exc: Exception, core: Any = None) -> None:
    """An observability failure outside the invocation: logged by type, counted if possible."""
    try:
        log.error("observability failed", extra={"part": part, "error": type(exc).__name__})
        counters = getattr(core, "counters", None)
        if isinstance(counters, dict):
            counters["observability_failures"] = counters.get("observability_failures", 0) + 1
        OBSERVABILITY_FAILURES.labels(part).inc()
    except Exception:
        pass


def labels(core: Any) -> tuple[str, str]:
    """(endpoint, service) of the current request: a route name (``unmatched`` for a path no
    route serves) and a registered service id, ``unknown`` for any other id, ``-`` when the
    endpoint is not about one service."""
    endpoint = request.endpoint or "unmatched"
    service_id = (request.view_args or {}).get("service_id")
    if service_id is None:
        return endpoint, "-"
    return endpoint, service_id if service_id in core.registry else "unknown"


def render() -> tuple[bytes, str]:
    """The exposition: every worker's values added up under gunicorn, else this process's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """gunicorn's ``child_exit``: drop a dead worker's live-gauge files (its counters stay)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
