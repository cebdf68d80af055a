"""``/healthz`` never touches the database; ``/readyz`` answers within its deadline and is 503
with Retry-After when the store is unreachable or takes no writes (a full disk, a read-only
database): its probe is a real write, not only a read."""

from __future__ import annotations

import time

from sqlalchemy import event

from cds_service.storage import SqlStore
from cds_service.web.app import create_app

from .harness import READY_WITHIN_S


class Untouchable:
    """A store that fails the test if anything touches it."""

    def __getattr__(self, name):
        raise AssertionError(f"/healthz touched the store ({name})")


def test_healthz_never_touches_the_database(settings, core):
    client = create_app(settings, core).test_client()
    core.store = Untouchable()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_the_database_takes_a_write(client):
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json()["status"] == "ready"


def test_readyz_is_503_when_the_database_takes_no_writes(settings, core):
    client = create_app(settings, core).test_client()
    engine = core.store.engine

    @event.listens_for(engine, "connect")
    def read_only(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA query_only = ON")  # as a full disk refuses writes

    engine.dispose()
    assert core.store.feedback_count() == 0  # reads still work
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["issue"][0]["details"]["coding"][0]["code"] == "storage-unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_readyz_answers_in_time_when_the_database_is_unreachable(settings, core, tmp_path):
    (tmp_path / "a-file").write_text("")
    core.store = SqlStore(f"sqlite:///{tmp_path}/a-file/cds.sqlite3")
    client = create_app(settings, core).test_client()
    started = time.monotonic()
    response = client.get("/readyz")
    assert response.status_code == 503 and "Retry-After" in response.headers
    assert time.monotonic() - started < READY_WITHIN_S
