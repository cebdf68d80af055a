"""Start the real service (``cds-service serve`` under gunicorn) on a free loopback port; or
several replicas of it at once, as an orchestrator would (they race to migrate the database)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class _Started:
    process: subprocess.Popen
    base: str
    log_path: Path


def _start(tmp_path: Path, env: dict[str, str] | None, workers: int) -> _Started:
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    environment = {
        **os.environ,
        "CDS_PROFILE": "development",
        "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/server.sqlite3",
        **(env or {}),
    }
    cli = [
        sys.executable,
        "-m",
        "cds_service.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cli, env=environment, stdout=log, stderr=subprocess.STDOUT)
    return _Started(process, f"http://127.0.0.1:{port}", log_path)


def _wait_ready(started: _Started, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if started.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{started.log_path.read_text()}")
        try:
            requests.get(f"{started.base}/healthz", timeout=1)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"server did not start:\n{started.log_path.read_text()}"
                ) from None
            time.sleep(0.1)


def _stop(started: _Started) -> None:
    started.process.terminate()
    try:
        started.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        started.process.kill()
        started.process.wait()


@contextmanager
def running_replicas(
    tmp_path: Path, count: int, env: dict[str, str] | None = None, workers: int = 2
):
    """``count`` services started together; yields their (base URL, log path) pairs."""
    started: list[_Started] = []
    try:
        for _ in range(count):
            started.append(_start(tmp_path, env, workers))
        for replica in started:
            _wait_ready(replica)
        yield [(replica.base, replica.log_path) for replica in started]
    finally:
        for replica in started:
            _stop(replica)


@contextmanager
def running_service(tmp_path: Path, env: dict[str, str] | None = None, workers: int = 2):
    with running_replicas(tmp_path, 1, env, workers) as [(base, log_path)]:
        yield base, log_path
