"""Start the real service (``cds-service serve``, production profile, authentication on) or
the floor app on a free loopback port; find its gunicorn workers and their memory.

Used by ``make bench``, the soak (bench/soak.py) and the integration tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.issuer import TestIssuer, write_clients_file_for

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    base: str
    process: subprocess.Popen
    log_path: Path
    database: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def workers(self) -> list[int]:
        """The gunicorn worker processes (children of the master)."""
        return children(self.pid)

    def settled_workers(self, timeout: float = 15) -> list[int]:
        """The workers once all have booted: the master forks them one by one, after the first
        already answers. Waits until the list stays the same for half a second."""
        deadline = time.monotonic() + timeout
        last, stable_since = self.workers(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            current = self.workers()
            if current != last:
                last, stable_since = current, time.monotonic()
            elif current and time.monotonic() - stable_since >= 0.5:
                break
        return last

    def worker_rss_kb(self) -> dict[int, int]:
        return {pid: rss_kb(pid) for pid in self.workers()}

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return sorted(int(p) for p in text.split())


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def production_env(
    workdir: Path, issuer: TestIssuer | list[TestIssuer], base: str, **extra: str
) -> dict[str, str]:
    """The production profile with the test issuer(s) as the only trusted clients."""
    clients = write_clients_file_for(issuer if isinstance(issuer, list) else [issuer], workdir)
    env = {
        "CDS_PROFILE": "production",
        "CDS_TRUSTED_CLIENTS": str(clients),
        "CDS_PUBLIC_BASE_URL": base,
        "CDS_DATABASE_URL": f"sqlite:///{workdir}/cds.sqlite3",
    }
    env.update(extra)
    return env


def _wait_ready(process: subprocess.Popen, base: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()[-4000:]}")
        try:
            urllib.request.urlopen(f"{base}/cds-services", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # 401 from the real service: it is up and checking tokens
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.1)


@contextmanager
def serve(
    command: list[str],
    workdir: Path,
    env: dict[str, str],
    port: int,
    *,
    name: str = "server",
    timeout: float = 60,
    root: Path = ROOT,
):
    """Run ``command`` (a ``serve`` command line) until the block ends, importing the
    project from ``root`` (this checkout unless told otherwise)."""
    log_path = Path(workdir) / f"{name}-{port}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    environment.update(env)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(root), environment.get("PYTHONPATH", "")) if p
    )
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=root, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_ready(process, base, log_path, timeout)
        database = env.get("CDS_DATABASE_URL", "").removeprefix("sqlite:///") or None
        yield Server(base, process, log_path, Path(database) if database else None, env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def service_command(port: int, workers: int | None = None) -> list[str]:
    command = [sys.executable, "-m", "cds_service.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    if workers:
        command += ["--workers", str(workers)]
    return command


def floor_command(port: int, workers: int | None = None) -> list[str]:
    command = [sys.executable, "-m", "bench.floor", "--host", "127.0.0.1", "--port", str(port)]
    if workers:
        command += ["--workers", str(workers)]
    return command


@contextmanager
def real_service(
    workdir: Path,
    issuer: TestIssuer | list[TestIssuer],
    *,
    workers: int | None = None,
    **extra: str,
):
    """The service as production runs it: production profile, the test issuer trusted."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = production_env(Path(workdir), issuer, base, **extra)
    with serve(service_command(port, workers), workdir, env, port, name="service") as server:
        yield server


@contextmanager
def floor_service(workdir: Path, *, workers: int | None = None, **extra: str):
    port = free_port()
    env = {"CDS_PROFILE": "production", "CDS_ALLOW_ANONYMOUS": "1", **extra}
    env.setdefault("CDS_DATABASE_URL", f"sqlite:///{workdir}/floor.sqlite3")
    with serve(floor_command(port, workers), workdir, env, port, name="floor") as server:
        yield server
