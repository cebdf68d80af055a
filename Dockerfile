# The B12 CDS service, production profile, under gunicorn (README, Operations).
# The steps are those of `make run` (tests/deploy/test_dockerfile.py keeps them in step):
# a virtual environment, pip upgraded, the package installed, var/ made, `cds-service serve`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 cds \
    && useradd --system --uid 10001 --gid cds --home-dir /srv/cds --shell /usr/sbin/nologin cds

WORKDIR /srv/cds
COPY setup.cfg pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY hooks ./hooks

RUN python -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --quiet --upgrade pip \
    && /opt/venv/bin/python -m pip install --quiet . \
    && mkdir -p var \
    && chown cds:cds var

# Production unless told otherwise; the database and everything else come from the
# environment (.env.example lists every setting). The SQLite default suits one container;
# replicas share PostgreSQL (docker-compose.yml).
ENV CDS_PROFILE=production \
    CDS_DATABASE_URL=sqlite:///var/cds.sqlite3

USER cds
EXPOSE 8080

# Liveness only (/healthz): a database outage must not make the orchestrator restart the
# service; /readyz is for the load balancer.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]

CMD ["cds-service", "serve", "--host", "0.0.0.0", "--port", "8080"]
