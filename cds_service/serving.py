"""``cds-service serve``: the production server (gunicorn, gthread workers).

The app is built once in the master, before any worker is forked, so that a configuration
error stops the service at once with its message instead of failing in every worker; each
worker then inherits it (the store and the FHIR client reopen their pools after the fork).

Defaults are for production behind a proxy or load balancer (docs/operations.md):

- ``CDS_WORKERS`` processes x ``CDS_THREADS`` threads; a worker silent for
  ``WORKER_TIMEOUT_S`` is replaced;
- ``CDS_GRACEFUL_TIMEOUT``: on SIGTERM (a rolling update) workers finish the calls in
  flight for up to this long;
- ``CDS_MAX_REQUESTS`` (with 10 % jitter, so that workers do not restart together): a worker
  is replaced after that many requests, which bounds any slow leak; 0 turns it off;
- ``CDS_FORWARDED_ALLOW_IPS``: the proxies whose ``X-Forwarded-*`` headers are believed;
- logs: JSON lines on stderr, gunicorn's own included (``logs.gunicorn_logconfig``);
- metrics: ``PROMETHEUS_MULTIPROC_DIR`` (``web/metrics.py``) is set up here, before the
  metrics library is imported, and a dead worker's files are tidied by ``child_exit``;
- what gunicorn refuses itself (a request line or header over its limits, malformed HTTP) is
  answered by ``JsonErrorWorker`` as an OperationOutcome, not gunicorn's HTML page. The
  header limit (``LIMIT_REQUEST_FIELD_SIZE``) lets the longest token an EHR sends reach the
  application (docs/security.md).

What the master sets up, only the master tears down. A worker is a fork of the master that
leaves through ``sys.exit`` from inside ``Server().run()``: it unwinds through ``serve``'s
``finally`` too, so that block checks the process id before removing anything; otherwise a
recycled worker would delete the metrics directory under the master and its siblings, and
every later call that issued a card would fail. A leaving worker flushes its card ledger
(``worker_exit``) so that a graceful recycle or shutdown loses no ledger entry.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn import util as gunicorn_util
from gunicorn.http.errors import (
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.workers.gthread import ThreadWorker

from cds_service import logs
from cds_service.cdshooks.errors import (
    CdsError,
    HeadersTooLarge,
    InvalidRequest,
    UriTooLong,
    operation_outcome,
)
from cds_service.config import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER_TIMEOUT_S = 30
#: Settings that only some supported gunicorn versions have.
OPTIONAL = frozenset({"control_socket_disable"})
#: No keep-alive, and a worker takes a connection only when one of its threads is free
#: (``worker_connections`` = threads): the kernel's accept queue is then the one queue all
#: workers serve, in order. With keep-alive, a worker keeps every connection it accepted, and
#: under load one worker does all the work while the others idle (docs/benchmarks.md, "Worker
#: model"). A proxy in front (deploy/nginx.conf) opens a new upstream connection per call.
KEEPALIVE_S = 0
#: The collector's thresholds in the workers (docs/benchmarks.md, "Garbage collection"). A
#: request's garbage is freed by reference counting (a parsed body has no cycles), yet at
#: Python's default first threshold every request sets off young collections that find
#: nothing to free; at this one a typical request almost never does.
GC_THRESHOLDS = (10_000, 10, 10)


def settle_heap() -> None:
    """In the master, once the app is built and before any worker is forked: the objects of
    the app (modules, schemas, models, the registry) move to the collector's permanent
    generation, where no collection visits them again, so that a full collection in a worker
    sees only what the worker itself made."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


#: Bytes of one header line ("Authorization: Bearer <16 KiB token>" fits, with room).
LIMIT_REQUEST_FIELD_SIZE = 24 * 1024
#: gunicorn's own maximum for the request line.
LIMIT_REQUEST_LINE = 8190


def prepare_metrics_dir(environ: Any = None) -> tuple[str, bool]:
    """The directory the workers' metric files go to, and whether this run created it (and
    so removes it at exit). An operator's ``PROMETHEUS_MULTIPROC_DIR`` is kept but emptied
    of a previous run's files, which would otherwise be added to this run's counters."""
    environ = os.environ if environ is None else environ
    configured = environ.get(MULTIPROC_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return str(path), False
    path = Path(tempfile.mkdtemp(prefix="cds-metrics-"))
    environ[MULTIPROC_ENV] = str(path)
    return str(path), True


def worker_exited(server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook, in the master."""
    from cds_service.web.metrics import mark_process_dead

    try:
        mark_process_dead(worker.pid)
    except OSError:  # tidying metrics files must never stop the master replacing a worker
        pass


def worker_exiting(server: Any, worker: Any) -> None:
    """gunicorn's ``worker_exit`` hook, in the leaving worker: write what its card ledger
    still holds (bounded in time; see ``storage/ledger.py``)."""
    core = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("cds")
    close = getattr(core, "close", None)
    if close is not None:
        close()


def worker_ready(worker: Any, threads: int) -> None:
    """gunicorn's ``post_worker_init``, in a new worker before it serves: open as many
    database connections as it has threads (the replay store's deadline is not for connecting)."""
    core = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("cds")
    warm_up = getattr(getattr(core, "store", None), "warm_up", None)
    if warm_up is not None:
        try:
            warm_up(threads)
        except Exception:  # a cold pool is slower, not broken
            pass


def gunicorn_options(settings: Settings, host: str, port: int, workers: int) -> dict[str, Any]:
    def post_worker_init(worker: Any) -> None:
        worker_ready(worker, settings.threads)

    options: dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "cds_service.serving.JsonErrorWorker",
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "threads": settings.threads,
        "worker_connections": settings.threads,
        "timeout": WORKER_TIMEOUT_S,
        "graceful_timeout": settings.graceful_timeout_s,
        "keepalive": KEEPALIVE_S,
        "max_requests": settings.max_requests,
        "max_requests_jitter": settings.max_requests // 10,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "proc_name": "cds-service",
        # The invocation log replaces an access log (it says more, and nothing of patients).
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "logconfig_dict": logs.gunicorn_logconfig(settings.log_level),
        "child_exit": worker_exited,
        "worker_exit": worker_exiting,
        "post_worker_init": post_worker_init,
        # gunicorn 24+ opens a control socket in $HOME by default: two replicas on one host
        # would share it, and a read-only container home cannot hold it.
        "control_socket_disable": True,
    }
    if os.path.isdir("/dev/shm"):
        # Worker heartbeats in memory: a container's disk-backed /tmp can stall them.
        options["worker_tmp_dir"] = "/dev/shm"
    return options


def serve(settings: Settings, host: str, port: int, workers: int | None = None) -> int:
    master = os.getpid()
    metrics_dir, created = prepare_metrics_dir()
    try:
        # Imported only now: the metrics library reads PROMETHEUS_MULTIPROC_DIR at import.
        from gunicorn.app.base import BaseApplication

        from cds_service.bootstrap import announce, build_app

        logs.configure(settings.log_level)
        announce(settings)
        app = build_app(settings)  # fail fast on bad configuration, before forking workers
        settle_heap()
        options = gunicorn_options(settings, host, port, workers or settings.workers)

        class Server(BaseApplication):
            def load_config(self) -> None:
                for key, value in options.items():
                    if key in self.cfg.settings or key not in OPTIONAL:
                        self.cfg.set(key, value)

            def load(self) -> Any:
                return app

        Server().run()
    finally:
        # Workers unwind through here too (see the module's docstring): only the master,
        # which created the directory, removes it.
        if created and os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


# --- what gunicorn refuses before the application sees a request ---------------------------


def _status_error(status: int, code: str, message: str) -> CdsError:
    error = CdsError(message)
    error.status, error.code, error.issue_type = status, code, "processing"
    return error


def refusal(exc: BaseException) -> tuple[CdsError, str]:
    """The OperationOutcome error for what gunicorn raised, and its HTTP reason phrase."""
    if isinstance(exc, LimitRequestHeaders):
        return (
            HeadersTooLarge(
                f"The request headers exceed the server's limit ({LIMIT_REQUEST_FIELD_SIZE} bytes"
                " for one header line)."
            ),
            "Request Header Fields Too Large",
        )
    if isinstance(exc, LimitRequestLine):
        return (
            UriTooLong(
                f"The request line exceeds the server's limit ({LIMIT_REQUEST_LINE} bytes)."
            ),
            "URI Too Long",
        )
    if isinstance(exc, UnsupportedTransferCoding):
        return (
            _status_error(501, "not-implemented", "The transfer coding is not supported."),
            "Not Implemented",
        )
    if isinstance(exc, ExpectationFailed):
        return _status_error(417, "expectation-failed", "The expectation failed."), (
            "Expectation Failed"
        )
    if isinstance(exc, ForbiddenProxyRequest):
        return _status_error(403, "forbidden", "The proxy request is forbidden."), "Forbidden"
    if isinstance(exc, ParseException) and not isinstance(exc, ConfigurationProblem):
        # An application's bad response header is its own fault (gunicorn 24+: a 500).
        if "Response" not in type(exc).__name__:
            return InvalidRequest("The request is not valid HTTP."), "Bad Request"
    return CdsError(), "Internal Server Error"


class JsonErrorWorker(ThreadWorker):
    """gunicorn's threaded worker, answering its own refusals as JSON OperationOutcomes.

    ``handle_error`` is the hook gunicorn calls for a request that failed outside the
    application (and for an exception the application let through, which Flask's handlers
    make a bug). Logged: the exception type and status only; gunicorn's own message can quote
    a header, and so a token.
    """

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        error, reason = refusal(exc)
        if error.status >= 500:
            self.log.error("request failed in the server: %s", type(exc).__name__)
        else:
            self.log.warning("request refused by the server: %s %s", error.status, error.code)
        body = json.dumps(operation_outcome(error)).encode("utf-8")
        head = (
            f"HTTP/1.1 {error.status} {reason}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        try:
            gunicorn_util.write_nonblock(client, head + body)
        except Exception:  # the client has gone: nothing to answer
            self.log.debug("failed to send the refusal")
