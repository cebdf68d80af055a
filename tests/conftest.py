"""Shared fixtures: an app on a temporary SQLite database, fixed clock and uuids, and a
``responses`` mock around every test so that no test can reach the network."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import responses

from cds_service.cdshooks.application import CdsApplication
from cds_service.config import load_settings
from cds_service.storage import open_store
from cds_service.web import create_app
from hooks import registry
from tests.builders import NOW

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture(autouse=True)
def no_network():
    """Every test runs inside a responses mock: an unexpected HTTP call fails the test.

    Loopback is passed through for tests that start real servers on 127.0.0.1.
    """
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        mock.add_passthru("http://localhost")
        yield mock


def load_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def sandbox_request(name: str) -> dict:
    return load_json(FIXTURES / "sandbox" / f"{name}.request.json")


@pytest.fixture
def uuids():
    counter = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(counter):012d}"


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        {"CDS_PROFILE": "development", "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3"}
    )


@pytest.fixture
def store(settings):
    return open_store(settings.database_url)


@pytest.fixture
def core(settings, store, uuids):
    return CdsApplication(
        registry=registry(), store=store, policy=settings.policy, clock=lambda: NOW, new_uuid=uuids
    )


@pytest.fixture
def app(settings, core):
    app = create_app(settings, core)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def postgres():
    """A real, throwaway PostgreSQL cluster (tests/pg.py), started on first use and removed
    at the end of the session. Fails (never skips) when PostgreSQL is not installed."""
    from tests import pg

    try:
        cluster = pg.start_cluster()
    except LookupError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield cluster
    pg.stop_cluster(cluster)


def pytest_sessionfinish(session, exitstatus):
    """The invocation tallies of the apps built by tests would flush at interpreter exit into
    databases whose temporary directories are gone, printing a failed write each: drop them."""
    from cds_service.cdshooks import tally

    tally._at_exit.clear()


def pytest_sessionstart(session):
    """An editable install builds the compiled modules' extensions beside their sources, and
    Python imports an extension before a ``.py`` of the same name: after an edit the tests
    would run the old code. Refuse to start instead (``make test`` rebuilds them)."""
    from cds_service.compiled import MODULES, extension

    for name in MODULES:
        found = extension(name)
        if found is None:
            continue
        origin = Path(found)
        source = origin.parent / (name.rsplit(".", 1)[1] + ".py")
        if source.is_file() and source.stat().st_mtime > origin.stat().st_mtime:
            pytest.exit(
                f"{source.relative_to(ROOT)} is newer than its compiled extension: "
                "run `make test` (it rebuilds the extensions), not pytest directly",
                returncode=4,
            )
