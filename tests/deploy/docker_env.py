"""Helpers for the docker tests: the daemon, the image, containers on a user-defined network
reached at their addresses (no published ports, no iptables needed), and the stand-ins."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import standins

CACHE = Path(os.environ.get("CDS_STANDIN_CACHE", standins.DEFAULT_CACHE))
IMAGE = "b12-cds-service:latest"
#: Which parts ran on stand-ins, for the terminal summary.
REPORT: list[str] = []


def docker(*argv: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *argv], text=True, capture_output=True, timeout=timeout, check=False
    )
    if check and result.returncode:
        raise AssertionError(f"docker {' '.join(argv)[:200]}: {result.stderr.strip()[-2000:]}")
    return result


def daemon_problem() -> str | None:
    """None when a daemon answers, else why the docker tests are skipped."""
    try:
        result = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            text=True,
            capture_output=True,
            timeout=20,
        )
    except FileNotFoundError:
        return "no docker client on this machine (.ci/run installs docker.io)"
    except subprocess.TimeoutExpired:
        return "the Docker daemon does not answer"
    if result.returncode:
        return f"no Docker daemon reachable ({result.stderr.strip()[:200]}); .ci/run starts one"
    return None


def pip_build_args() -> list[str]:
    """The host's pip index settings, for the builder stage: an index reached through a
    proxy whose authority only the (stand-in) base trusts needs PIP_CERT; file:// indexes
    are not visible inside the build and are left out."""
    args = []
    values = {}
    listed = subprocess.run(
        ["python3", "-m", "pip", "config", "list"], text=True, capture_output=True, check=False
    ).stdout
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        values[key.split(".", 1)[-1].strip()] = value.strip().strip("'")
    for key in ("index-url", "extra-index-url", "trusted-host", "cert"):
        env = "PIP_" + key.upper().replace("-", "_")
        value = os.environ.get(env) or values.get(key)
        if not value:
            continue
        if key.endswith("index-url"):
            value = " ".join(u for u in value.split() if u.startswith(("http://", "https://")))
        if key == "cert":
            value = "/etc/ssl/certs/ca-certificates.crt"  # the image's bundle, same authorities
        if value:
            args += ["--build-arg", f"{env}={value}"]
    return args


def build_image(root: Path) -> float:
    started = time.monotonic()
    docker("build", "--network", "host", *pip_build_args(), "-t", IMAGE, str(root), timeout=1800)
    return time.monotonic() - started


def address(container: str, network: str) -> str:
    return docker(
        "inspect",
        "--format",
        f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}',
        container,
    ).stdout.strip()


def health(container: str) -> str:
    result = docker("inspect", "--format", "{{.State.Health.Status}}", container, check=False)
    return result.stdout.strip()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, urllib.error.URLError, AssertionError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def http(method: str, url: str, body=None, timeout: float = 10) -> tuple[int, dict, dict | str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    try:
        return status, headers, json.loads(raw)
    except ValueError:
        return status, headers, raw.decode("utf-8", "replace")


def logs(container: str) -> str:
    result = docker("logs", container, check=False)
    return result.stdout + result.stderr
