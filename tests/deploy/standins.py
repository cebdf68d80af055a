"""Stand-in base images for machines that cannot pull from Docker Hub.

The Dockerfile starts ``FROM python:3.11-slim`` and docker-compose.yml runs ``nginx`` and
``postgres`` images. Where Docker Hub is out of reach (CI machines that only see package
registries), Debian bookworm root file systems made with ``debootstrap --variant=minbase``
from the Debian mirror the machine's apt already uses stand in for them, imported with
``docker import`` under the names the files use. They differ from the real images (Debian's
Python 3.11, nginx 1.22, PostgreSQL 15); the docker tests say which parts ran on them.

    python -m tests.deploy.standins --cache /var/cache/b12-cds/standins   # build + import

The root file systems are cached as tarballs (a few minutes to build, seconds to import).
Every stand-in trusts the certificate authorities the host added locally
(/usr/local/share/ca-certificates): where HTTPS goes through an inspecting proxy, pip inside
``docker build`` needs them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Tag -> why: the label docker tests use to say a part ran on a stand-in.
LABEL = "org.b12-cds.standin"
DEFAULT_CACHE = Path("/var/cache/b12-cds/standins")
LOCAL_CAS = Path("/usr/local/share/ca-certificates")


@dataclass(frozen=True)
class Standin:
    tag: str  # the name docker-compose.yml / the Dockerfile uses
    packages: tuple[str, ...]
    setup: tuple[str, ...]  # shell commands run in the chroot after the packages
    changes: tuple[str, ...]  # docker import --change
    description: str
    files: tuple[tuple[str, str], ...] = ()  # (path, text) written executable before setup

    @property
    def tarball(self) -> str:
        """The cache's file name, with a digest of what goes into the root file system: a
        stand-in whose packages or set-up change is built again, not taken from the cache."""
        recipe = json.dumps([self.packages, self.setup, self.changes, self.files]).encode()
        digest = hashlib.sha256(recipe).hexdigest()[:12]
        return re.sub(r"[^A-Za-z0-9.]+", "_", self.tag) + f"-{digest}.tar"


#: The official postgres image's entry point, in the few lines the stack uses: initialise the
#: cluster from POSTGRES_USER, POSTGRES_PASSWORD(_FILE) and POSTGRES_DB on first start, then
#: run the server as PID 1.
POSTGRES_ENTRYPOINT = r"""#!/bin/sh
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
BIN="$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)"
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
fi
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw="$(mktemp)"; printf "%s" "$POSTGRES_PASSWORD" > "$pw"; chown postgres "$pw"
  as_postgres "$BIN/initdb" -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pw" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pw"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
  if [ "$db" != "postgres" ]; then
    echo "CREATE DATABASE \"$db\" OWNER \"${POSTGRES_USER:-postgres}\";" \
      | as_postgres "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null
  fi
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$BIN/postgres" -D "$PGDATA"
"""

STANDINS = (
    Standin(
        tag="python:3.11-slim",
        # python3-dev: the official image ships Python's headers, which the build's C
        # compiler needs for the compiled modules (Dockerfile, cds_service/compiled.py).
        packages=("python3", "python3-venv", "python3-dev", "ca-certificates"),
        setup=(
            "ln -sf /usr/bin/python3 /usr/local/bin/python",
            "ln -sf /usr/bin/python3 /usr/local/bin/python3",
        ),
        changes=(
            "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            'CMD ["python3"]',
        ),
        description="Debian bookworm Python 3.11 (python3, python3-venv, python3-dev)",
    ),
    Standin(
        tag="nginx:1.28-alpine",
        packages=("nginx-light", "wget", "ca-certificates"),
        setup=(
            "ln -sf /dev/stdout /var/log/nginx/access.log",
            "ln -sf /dev/stderr /var/log/nginx/error.log",
        ),
        changes=(
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "EXPOSE 80",
            'CMD ["nginx", "-g", "daemon off;"]',
        ),
        description="Debian bookworm nginx 1.22 (older than 1.27.3: no `server ... resolve`)",
    ),
    Standin(
        tag="postgres:16-alpine",
        packages=("postgresql", "ca-certificates"),
        setup=(
            "ln -sf /usr/lib/postgresql/*/bin/pg_isready /usr/local/bin/pg_isready",
            "rm -rf /var/lib/postgresql/*/main /etc/postgresql/*/main",
        ),
        changes=(
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV PGDATA=/var/lib/postgresql/data",
            "EXPOSE 5432",
            'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]',
        ),
        description="Debian bookworm PostgreSQL 15",
        files=(("usr/local/bin/docker-entrypoint.sh", POSTGRES_ENTRYPOINT),),
    ),
)


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 or one-line sources)."""
    for path in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        match = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+bookworm\b", text, re.M
        )
        if match:
            return match[1]
    return "http://deb.debian.org/debian"


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(argv)[:200], file=sys.stderr, flush=True)
    return subprocess.run(argv, check=True, **kwargs)


def build_rootfs(standin: Standin, destination: Path, mirror: str) -> None:
    """debootstrap a minimal bookworm with the stand-in's packages, as a tarball."""
    with tempfile.TemporaryDirectory(prefix="standin-") as work:
        root = Path(work) / "root"
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(standin.packages),
                "bookworm",
                str(root),
                mirror,
            ],
            stdout=subprocess.DEVNULL,
        )
        # The host's locally added authorities (an inspecting proxy's, say), trusted inside.
        target = root / "usr/local/share/ca-certificates"
        target.mkdir(parents=True, exist_ok=True)
        if LOCAL_CAS.is_dir():
            for cert in LOCAL_CAS.rglob("*.crt"):
                shutil.copy2(cert, target / cert.name)
        for path, text in standin.files:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text, encoding="utf-8")
            (root / path).chmod(0o755)
        commands = ("update-ca-certificates >/dev/null",) + standin.setup
        commands += ("apt-get clean", "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin")
        for command in commands:
            run(["chroot", str(root), "/bin/sh", "-c", command])
        partial = destination.with_suffix(".partial")
        run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."])
        partial.rename(destination)


def docker(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *argv], text=True, capture_output=True, **kwargs)


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag).returncode == 0


def import_image(standin: Standin, tarball: Path) -> None:
    argv = ["import"]
    for change in standin.changes + (f"LABEL {LABEL}={json.dumps(standin.description)}",):
        argv += ["--change", change]
    result = docker(*argv, str(tarball), standin.tag)
    if result.returncode:
        raise RuntimeError(f"docker import {standin.tag}: {result.stderr.strip()}")


def ensure(cache: Path, build: bool = True) -> list[str]:
    """Every base image present: the real one if the daemon has it, else the cached stand-in
    (built first when missing and ``build``). Returns the tags that are stand-ins."""
    standins = []
    for standin in STANDINS:
        if image_exists(standin.tag):
            if stand_in_label(standin.tag):
                standins.append(standin.tag)
            continue
        tarball = cache / standin.tarball
        if not tarball.exists():
            if not build:
                raise FileNotFoundError(
                    f"{standin.tag} is not in the daemon and no stand-in is cached at {tarball}"
                    " (python -m tests.deploy.standins builds it)"
                )
            cache.mkdir(parents=True, exist_ok=True)
            build_rootfs(standin, tarball, debian_mirror())
        import_image(standin, tarball)
        standins.append(standin.tag)
    return standins


def stand_in_label(tag: str) -> str | None:
    result = docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', tag)
    value = result.stdout.strip()
    return value if result.returncode == 0 and value and value != "<no value>" else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache", type=Path, default=Path(os.environ.get("CDS_STANDIN_CACHE", DEFAULT_CACHE))
    )
    parser.add_argument(
        "--build-only", action="store_true", help="fill the cache; do not talk to docker"
    )
    args = parser.parse_args(argv)
    if args.build_only:
        mirror = debian_mirror()
        args.cache.mkdir(parents=True, exist_ok=True)
        for standin in STANDINS:
            tarball = args.cache / standin.tarball
            if not tarball.exists():
                build_rootfs(standin, tarball, mirror)
        return 0
    for tag in ensure(args.cache):
        print(f"{tag}: stand-in ({stand_in_label(tag)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
