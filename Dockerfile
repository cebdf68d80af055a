# The B12 CDS service, production profile, under gunicorn (docs/deployment.md).
#
# Two stages: the builder installs the locked dependencies (requirements.lock, every file
# checked against its hash) and the service's wheel into /opt/venv; the runtime image is the
# base image plus that virtual environment, nothing of the source tree.
#
#   docker build -t b12-cds-service .
#
# pip reads its usual PIP_* settings: where the package index is reached another way (a
# mirror, an inspecting proxy's certificate authority), pass them as build arguments, e.g.
# --build-arg PIP_INDEX_URL=https://mirror.example/simple. They stay in the builder stage.
FROM python:3.11-slim AS builder

ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A C compiler for the modules mypyc compiles (cds_service/compiled.py); the image's Python
# ships its headers. Only the builder has it: the runtime stage copies the built venv.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

# The dependencies first (a layer that changes only with the lock file), then the service.
COPY requirements.lock /build/requirements.lock
RUN python -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --quiet --require-hashes --no-deps \
        -r /build/requirements.lock

COPY setup.cfg setup.py pyproject.toml README.md /build/src/
COPY cds_service /build/src/cds_service
COPY hooks /build/src/hooks
# The wheel is built with the locked setuptools, wheel and mypy (no build isolation, so
# nothing unhashed is fetched) and installed without dependencies: they are all locked above.
# `python -m cds_service.compiled` fails the build if the hot modules did not compile (the
# extensions are optional for a developer's machine without a compiler, not for the image).
# The build tools leave with the compiler: the service needs none of them to run.
RUN /opt/venv/bin/python -m pip wheel --quiet --no-deps --no-build-isolation \
        --wheel-dir /build/wheels /build/src \
    && /opt/venv/bin/python -m pip install --quiet --no-deps --no-index /build/wheels/*.whl \
    && (cd / && /opt/venv/bin/python -m cds_service.compiled) \
    && /opt/venv/bin/python -m pip uninstall --quiet --yes setuptools wheel \
        mypy mypy-extensions librt ast-serialize pathspec \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 cds \
    && useradd --system --uid 10001 --gid cds --home-dir /srv/cds --shell /usr/sbin/nologin cds \
    && mkdir -p /srv/cds/var \
    && chown cds:cds /srv/cds/var

COPY --from=builder /opt/venv /opt/venv

WORKDIR /srv/cds

# Production unless told otherwise; the database and everything else come from the
# environment (.env.example lists every setting). The SQLite default suits one container and
# lives in a volume, so that a read-only container (--read-only) still starts; replicas
# share PostgreSQL (docker-compose.yml, CDS_DATABASE_PASSWORD_FILE for its password).
ENV CDS_PROFILE=production \
    CDS_DATABASE_URL=sqlite:////srv/cds/var/cds.sqlite3 \
    CDS_PORT=8080
VOLUME /srv/cds/var

USER 10001:10001
EXPOSE 8080

# Liveness only (/healthz): a database outage must not make the orchestrator restart the
# service; /readyz is for the load balancer. It asks the port the service listens on
# (CDS_PORT).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CDS_PORT', '8080'), timeout=2).status != 200)"]

# Not for direct exposure to untrusted clients: put a buffering proxy in front (nginx, as the
# compose files do). gunicorn's threads read a request as it arrives, so slow clients hold them.
CMD ["cds-service", "serve", "--host", "0.0.0.0"]
