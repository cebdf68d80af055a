"""The storage suite runs every test against both backends: SQLite in a temporary file and a
real PostgreSQL database in a throwaway cluster (``postgres`` in tests/conftest.py)."""

from __future__ import annotations

import pytest

from cds_service.storage import open_store
from tests.integration.server import free_port

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(backend, tmp_path, request) -> str:
    """A new, empty database of the backend under test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite3"
    return request.getfixturevalue("postgres").create_database("store")


@pytest.fixture
def unreachable_url(backend, tmp_path) -> str:
    """A database that cannot be reached: a path below a plain file (no directory can be
    made there), or a port nobody listens on."""
    if backend == "sqlite":
        (tmp_path / "a-file").write_text("not a directory")
        return f"sqlite:///{tmp_path}/a-file/store.sqlite3"
    return f"postgresql://nobody:secret-password@127.0.0.1:{free_port()}/cds"


def opened(url: str, **kwargs):
    """A store as a worker has it before its first call: on PostgreSQL with its connections
    open (``serving`` warms them up), so that a loaded CI machine does not spend a call's
    250 ms deadline connecting. The deadlines themselves are tested in tests/reliability."""
    store = open_store(url, **kwargs)
    if store.dialect == "postgresql":
        store.warm_up(2)
    return store


@pytest.fixture
def store(database_url):
    store = opened(database_url)
    yield store
    store.close()


@pytest.fixture
def open_another(database_url):
    """Another store on the same database: another gunicorn worker, or another replica."""
    opened_stores = []

    def make(**kwargs):
        opened_stores.append(opened(database_url, **kwargs))
        return opened_stores[-1]

    yield make
    for store in opened_stores:
        store.close()
