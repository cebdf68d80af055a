"""Start the real service (``cds-service serve`` under gunicorn) on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_service(tmp_path: Path, env: dict[str, str] | None = None, workers: int = 2):
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
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
                try:
                    requests.get(f"{base}/cds-services", timeout=1)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"server did not start:\n{log_path.read_text()}"
                        ) from None
                    time.sleep(0.1)
            yield base, log_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
