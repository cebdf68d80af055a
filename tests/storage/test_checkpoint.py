"""SQLite's WAL checkpoints run on the store's background thread, never inside a request's
commit, and keep the WAL bounded under a steady stream of writes; a failing checkpoint costs
nothing but a log line."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from cds_service.storage import open_store
from cds_service.storage import sql as sql_store
from cds_service.storage.checkpoint import WalCheckpointer

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)
UNTIL = T0 + timedelta(hours=1)
PAGE = 4096 + 24  # a WAL frame


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_the_store_turns_sqlites_own_checkpoints_off(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/cds.sqlite3")
    try:
        connection = store.engine.raw_connection()
        try:
            assert connection.cursor().execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        finally:
            connection.close()
    finally:
        store.close()


def write_jtis(store, threads: int, each: int) -> None:
    def writer() -> None:
        for _ in range(each):
            store.remember_jti("iss", uuid.uuid4().hex, UNTIL, T0)

    running = [threading.Thread(target=writer) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()


def test_the_background_checkpoints_keep_the_wal_bounded_under_steady_writes(tmp_path, monkeypatch):
    """Four threads writing without a pause: a passive checkpoint alone would never let SQLite
    start the WAL over (a write is always half-way); the restarting one does."""
    monkeypatch.setattr(sql_store, "WAL_RESTART_FRAMES", 300)
    store = open_store(f"sqlite:///{tmp_path}/cds.sqlite3")
    wal = tmp_path / "cds.sqlite3-wal"
    try:
        store._checkpointer.every = 50
        write_jtis(store, threads=4, each=600)  # 2,400 commits: ~30 MB of WAL unchecked
        assert store._checkpointer.runs >= 5  # due 48 times; some coalesce
        assert store._checkpointer.failures == 0
        assert wal.stat().st_size < 2_000 * PAGE  # bounded near the restart threshold
    finally:
        store.close()


def test_without_the_background_checkpoints_the_wal_would_grow(tmp_path):
    """The test above can fail: with the thread never due, the same writes pile up."""
    store = open_store(f"sqlite:///{tmp_path}/cds.sqlite3")
    try:
        store._checkpointer.every = 10**9
        write_jtis(store, threads=4, each=600)
        assert (tmp_path / "cds.sqlite3-wal").stat().st_size > 4_000 * PAGE
    finally:
        store.close()


def test_a_failing_checkpoint_is_logged_once_and_never_reaches_the_writer(caplog):
    caplog.set_level(logging.WARNING, logger="cds_service.storage")
    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        raise OSError("disk full")

    checkpointer = WalCheckpointer(failing, every=2)
    try:
        for _ in range(10):
            checkpointer.committed()  # never raises, never waits
            assert wait_for(lambda: checkpointer._due.is_set() is False)
        assert wait_for(lambda: checkpointer.failures >= 1)
        assert checkpointer.runs == 0
    finally:
        checkpointer.close()
    failures = [r for r in caplog.records if r.getMessage() == "WAL checkpoint failed"]
    assert len(failures) == 1  # rate-limited
    assert failures[0].error == "OSError"  # the type only: a message may quote a path


@pytest.mark.parametrize("every", [1, 3])
def test_a_checkpoint_is_due_after_every_so_many_commits(every):
    ran = threading.Semaphore(0)
    checkpointer = WalCheckpointer(ran.release, every=every)
    try:
        for _ in range(every - 1):
            checkpointer.committed()
        assert not ran.acquire(timeout=0.2)
        checkpointer.committed()
        assert ran.acquire(timeout=5)
    finally:
        checkpointer.close()


def test_a_failed_checkpoint_is_counted_as_a_storage_failure(tmp_path, monkeypatch):
    import sqlite3

    from cds_service.storage import StorageError

    failures: list[str] = []
    store = open_store(f"sqlite:///{tmp_path}/cds.sqlite3", on_error=failures.append)
    try:

        def broken():
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(store.engine, "raw_connection", broken)
        with pytest.raises(StorageError, match="OperationalError"):
            store._checkpoint()
        assert failures == ["wal_checkpoint"]
    finally:
        monkeypatch.undo()
        store.close()
