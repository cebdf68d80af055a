"""Database faults against real processes: a throwaway PostgreSQL cluster of this module's own
(stopped, then frozen with SIGSTOP) and a SQLite file locked by another process.

Each asserts what an EHR and an operator care about: authenticated calls answer their cards
within 1.5 s; ``/healthz`` within 1 s; ``/readyz`` and feedback answer 503 with Retry-After
within 1 s; a replayed token is still refused; with CDS_REPLAY_STORE_UNAVAILABLE=refuse calls
get 503 (never 401); and once the database is back, feedback is stored again within seconds,
without a restart, and every acknowledged entry is in the database."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cds_service.storage import open_store
from tests import pg

from .harness import (
    FEEDBACK_WITHIN_S,
    HEALTH_WITHIN_S,
    READY_WITHIN_S,
    SIGN,
    Service,
    assert_cards_in_time,
    assert_retry_later,
    wait_until,
)

pytestmark = pytest.mark.integration

CALLS_DURING_FAULT = 12


@pytest.fixture(scope="module")
def cluster():
    """Not the session's shared cluster: these tests stop and freeze theirs."""
    try:
        started = pg.start_cluster()
    except LookupError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield started
    try:
        started.stop()
    except Exception:
        pass
    pg.stop_cluster(started)


@pytest.fixture
def database_url(cluster):
    if not (cluster.data / "postmaster.pid").exists():
        cluster.start_server()
    return cluster.create_database("fault")


def acknowledged_in_database(url: str, expected: int) -> bool:
    store = open_store(url)
    try:
        return store.feedback_count() == expected
    finally:
        store.close()


def exercise_outage(service: Service, spent_token: str) -> dict[str, float]:
    """The calls an EHR and a monitor make while the database is down; returns the slowest
    of each kind (the figures the report quotes)."""
    slowest = {"invoke": 0.0, "healthz": 0.0, "readyz": 0.0, "feedback": 0.0}
    accepted_during = None
    for index in range(CALLS_DURING_FAULT):
        token = service.token(SIGN)
        answer = service.invoke(token)
        assert_cards_in_time(answer)
        slowest["invoke"] = max(slowest["invoke"], answer.elapsed_s)
        accepted_during = accepted_during or token
    # Replays are still refused: one spent before the outage, one during it.
    for replay in (spent_token, accepted_during):
        answer = service.invoke(replay)
        assert answer.status == 401 and answer.elapsed_s < 1.5
    health = service.healthz()
    assert health.status == 200 and health.elapsed_s < HEALTH_WITHIN_S
    slowest["healthz"] = health.elapsed_s
    ready = service.readyz()
    assert_retry_later(ready, READY_WITHIN_S, "storage-unavailable")
    slowest["readyz"] = ready.elapsed_s
    for _ in range(3):
        feedback = service.feedback()
        assert_retry_later(feedback, FEEDBACK_WITHIN_S, "storage-unavailable")
        slowest["feedback"] = max(slowest["feedback"], feedback.elapsed_s)
    return slowest


def recover(service: Service, url: str, acknowledged: int) -> None:
    """Once the database is back: ready again, feedback stored, nothing acknowledged lost."""
    assert wait_until(lambda: service.readyz().status == 200, timeout_s=20)
    answer = wait_until(lambda: (a := service.feedback()).status == 200 and a, timeout_s=20)
    assert answer and answer.body["stored"] == 1
    assert acknowledged_in_database(url, acknowledged + 1)


def test_postgresql_stopped(cluster, database_url, tmp_path, capsys):
    service = Service(tmp_path, database_url)
    try:
        spent = service.token(SIGN)
        assert_cards_in_time(service.invoke(spent))
        assert service.feedback().status == 200
        cluster.stop()
        slowest = exercise_outage(service, spent)
        cluster.start_server()
        recover(service, database_url, acknowledged=1)
    finally:
        service.close()
    with capsys.disabled():
        print(f"\nPostgreSQL stopped, slowest: {fmt(slowest)}")


def test_postgresql_frozen(cluster, database_url, tmp_path, capsys):
    service = Service(tmp_path, database_url)
    pids: list[int] = []
    try:
        spent = service.token(SIGN)
        assert_cards_in_time(service.invoke(spent))
        assert service.feedback().status == 200
        pids = cluster.freeze()
        slowest = exercise_outage(service, spent)
        cluster.thaw(pids)
        pids = []
        recover(service, database_url, acknowledged=1)
    finally:
        cluster.thaw(pids)
        service.close()
    with capsys.disabled():
        print(f"\nPostgreSQL frozen (SIGSTOP), slowest: {fmt(slowest)}")


def test_refuse_answers_503_with_retry_after_never_401(cluster, database_url, tmp_path):
    service = Service(tmp_path, database_url, CDS_REPLAY_STORE_UNAVAILABLE="refuse")
    try:
        assert_cards_in_time(service.invoke())
        cluster.stop()
        for _ in range(3):
            token = service.token(SIGN)
            assert_retry_later(service.invoke(token), 1.5, "replay-store-unavailable")
        cluster.start_server()
        # The refused token was not spent: once the store answers, it is accepted.
        answer = wait_until(lambda: (a := service.invoke(token)).status == 200 and a)
        assert answer and answer.cards
    finally:
        service.close()


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # held until the test closes our stdin
db.execute("ROLLBACK")
"""


def test_sqlite_locked_by_another_process(tmp_path, capsys):
    path = tmp_path / "cds.sqlite3"
    url = f"sqlite:///{path}"
    service = Service(tmp_path, url)
    locker = None
    try:
        spent = service.token(SIGN)
        assert_cards_in_time(service.invoke(spent))
        assert service.feedback().status == 200
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert locker.stdout.readline().strip() == "locked"
        slowest = exercise_outage(service, spent)
        locker.stdin.close()
        locker.wait(timeout=10)
        recover(service, url, acknowledged=1)
    finally:
        if locker is not None:
            if locker.poll() is None:
                locker.kill()
                locker.wait()
            locker.stdout.close()
            if not locker.stdin.closed:
                locker.stdin.close()
        service.close()
    with capsys.disabled():
        print(f"\nSQLite locked by another process, slowest: {fmt(slowest)}")


def fmt(slowest: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in slowest.items())
