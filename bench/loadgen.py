"""The load generator: wrk (Debian's package) on loopback, driven by bench/wrk.lua.

Each request carries its own single-use JWT from a pool minted before the run (the service
refuses a replayed ``jti``); the floor gets the same requests. ``ensure_wrk`` installs wrk
with apt-get when it is missing (the benchmark is run by hand on a machine we administer).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk.lua"


class LoadgenError(RuntimeError):
    pass


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise LoadgenError("wrk is not installed: run `sudo apt-get install -y wrk`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = shutil.which("wrk")
    if not found:
        raise LoadgenError("apt-get could not install wrk")
    return found


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    exhausted: bool

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def valid(self) -> bool:
        return self.non2xx == 0 and self.socket_errors == 0 and not self.exhausted


_LINE = re.compile(r"^BENCH (.*)$", re.M)


def run_wrk(
    url: str,
    body_file: Path,
    tokens_file: Path | None,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    timeout_s: int = 10,
) -> Result:
    command = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        str(body_file),
        str(tokens_file) if tokens_file is not None else "-",  # "-": anonymous calls
        str(threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    match = _LINE.search(done.stdout)
    if done.returncode != 0 or not match:
        raise LoadgenError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    values = dict(item.split("=") for item in match.group(1).split())
    n = {k: int(v) for k, v in values.items()}
    return Result(
        requests=n["requests"],
        seconds=n["duration_us"] / 1e6,
        non2xx=n["non2xx"],
        socket_errors=n["connect"] + n["read"] + n["write"] + n["timeout"],
        p50_ms=n["p50_us"] / 1000,
        p90_ms=n["p90_us"] / 1000,
        p99_ms=n["p99_us"] / 1000,
        max_ms=n["max_us"] / 1000,
        exhausted=n["exhausted"] > 0,
    )


def write_body(directory: Path, name: str, body: dict) -> Path:
    path = Path(directory) / f"{name}.json"
    path.write_bytes(json.dumps(body).encode())
    return path


def write_tokens(directory: Path, name: str, tokens: list[str]) -> Path:
    path = Path(directory) / f"{name}.tokens"
    path.write_text("\n".join(tokens) + "\n", encoding="ascii")
    return path
