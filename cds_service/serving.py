"""``cds-service serve``: the production server (gunicorn, gthread workers).

The app is built once in the master, before any worker is forked, so that a configuration
error stops the service at once with its message instead of failing in every worker; each
worker then inherits it (the store and the FHIR client reopen their pools after the fork).

Defaults are for production behind a proxy or load balancer (README, Operations):

- ``CDS_WORKERS`` processes x ``CDS_THREADS`` threads; a worker silent for 30 s is replaced;
- ``CDS_GRACEFUL_TIMEOUT``: on SIGTERM (a rolling update) workers finish the calls in
  flight for up to this long;
- ``CDS_MAX_REQUESTS`` (with 10 % jitter, so that workers do not restart together): a worker
  is replaced after that many requests, which bounds any slow leak; 0 turns it off;
- ``CDS_FORWARDED_ALLOW_IPS``: the proxies whose ``X-Forwarded-*`` headers are believed;
- logs: JSON lines on stderr, gunicorn's own included (``logs.gunicorn_logconfig``);
- metrics: ``PROMETHEUS_MULTIPROC_DIR`` (``web/metrics.py``) is set up here, before the
  metrics library is imported, and a dead worker's files are tidied by ``child_exit``.

What the master sets up, only the master tears down. A worker is a fork of the master that
leaves through ``sys.exit`` from inside ``Server().run()``: it unwinds through ``serve``'s
``finally`` too, so that block checks the process id before removing anything (the first
recycled worker used to delete the metrics directory under the master and its siblings, and
every later call that issued a card failed). A leaving worker flushes its card ledger
(``worker_exit``) so that a graceful recycle or shutdown loses no ledger entry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cds_service import logs
from cds_service.config import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER_TIMEOUT_S = 30
#: Settings that only some supported gunicorn versions have.
OPTIONAL = frozenset({"control_socket_disable"})
KEEPALIVE_S = 5


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
    database connections as it has threads (the replay store's 250 ms are not for connecting)."""
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
        "worker_class": "gthread",
        "threads": settings.threads,
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
