"""A real, throwaway PostgreSQL cluster for the tests: ``initdb`` in a temporary directory,
``pg_ctl start`` on a free loopback port (its unix socket in that directory too), removed at
the end of the session. Debian's ``postgresql`` package provides the binaries; ``.ci/run``
installs it when they are missing.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` system user
the Debian package creates (``runuser``); as anyone else it runs as you.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.server import free_port

SUPERUSER = "cds_test"
MISSING = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found. `.ci/run` installs them"
    " (apt-get install -y postgresql); on your machine, install Debian's `postgresql` package"
    " (or set CDS_TEST_PG_BINDIR to a directory holding initdb and pg_ctl)."
)


def find_bindir() -> Path | None:
    """The newest Debian server installation, or CDS_TEST_PG_BINDIR, or initdb on PATH."""
    configured = os.environ.get("CDS_TEST_PG_BINDIR")
    candidates = [configured] if configured else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


@dataclass
class Cluster:
    bindir: Path
    home: Path
    port: int
    run_as: str | None
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.home / "data"

    def _run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = list(argv)
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.home
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{self.log_text()}"
            )
        return result

    def log_text(self) -> str:
        log = self.home / "server.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else ""

    def start(self) -> None:
        """initdb, then start the server."""
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        self.start_server()

    def start_server(self) -> None:
        """Start the server on the existing data directory (again, after ``stop``)."""
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.home}",
                "-c fsync=off",  # a throwaway cluster: speed over durability
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.home / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def server_pids(self) -> list[int]:
        """The postmaster and every process it has started (backends, background workers)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        pids, queue = [], [postmaster]
        while queue:
            pid = queue.pop()
            pids.append(pid)
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            queue.extend(int(child) for child in children)
        return pids

    def freeze(self) -> list[int]:
        """SIGSTOP the whole server: it keeps its sockets (the kernel still acknowledges our
        packets) and answers nothing. Returns the pids for ``thaw``."""
        pids = self.server_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def thaw(self, pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def url(self, database: str = "postgres") -> str:
        """A ``CDS_DATABASE_URL`` for one database of this cluster."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "cds") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{next(self._names)}_{int(time.time() * 1000) % 100000}"
        subprocess.run(
            [
                str(self.bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                name,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.url(name)


def start_cluster() -> Cluster:
    """Start a cluster, or raise LookupError(MISSING) when PostgreSQL is not installed."""
    bindir = find_bindir()
    if bindir is None:
        raise LookupError(MISSING)
    run_as = None
    home = Path(tempfile.mkdtemp(prefix="cds-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(home, ignore_errors=True)
            raise LookupError(
                "running as root, and there is no `postgres` user to run the server as: " + MISSING
            ) from None
        os.chown(home, user.pw_uid, user.pw_gid)
        run_as = "postgres"
    cluster = Cluster(bindir=bindir, home=home, port=free_port(), run_as=run_as)
    try:
        cluster.start()
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    try:
        cluster.stop()
    finally:
        shutil.rmtree(cluster.home, ignore_errors=True)
