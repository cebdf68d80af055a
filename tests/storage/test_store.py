"""The store's contract, on SQLite and on PostgreSQL alike: the ledger, feedback (attributed,
idempotent, unknown cards flagged), the JWT replay store (atomic), retention, migrations
(idempotent, safe when several processes start at once) and failures (a StorageError that
quotes nothing, counted through ``on_error``)."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, inspect, select

from cds_service.storage import (
    FeedbackRecord,
    IssuedCard,
    SqlStore,
    StorageError,
    database_url,
    migrations,
    open_store,
    tables,
)
from cds_service.storage.sql import JTI_PURGE_INTERVAL_S, LEDGER_PURGE_INTERVAL_S
from tests import pg

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)
SERVICE = "b12-order-sign"


def card(uuid: str, rule: str = "folate-before-b12", at: datetime = T0) -> IssuedCard:
    return IssuedCard(uuid, SERVICE, rule, "critical", "hook-1", at)


def accepted(uuid: str, at: datetime = T0) -> FeedbackRecord:
    return FeedbackRecord(uuid, "accepted", at)


def overridden(uuid: str, code: str | None = "elsewhere", display: str | None = None):
    return FeedbackRecord(
        uuid,
        "overridden",
        T0,
        override_system="https://example.org/reasons",
        override_code=code,
        override_display=display,
        user_comment="patient declined; see note",
    )


def report(store) -> dict:
    return {r.rule_id: r for r in store.feedback_report()}


# --- migrations ---------------------------------------------------------------------------


def test_the_migrated_schema_is_the_one_the_queries_use(store):
    inspector = inspect(store.engine)
    for table in (tables.issued_cards, tables.feedback, tables.seen_jti):
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
    indexes = {i["name"] for i in inspector.get_indexes("issued_cards")}
    assert {"issued_cards_rule", "issued_cards_issued_at"} <= indexes


def schema_rows(store) -> list[int]:
    with store.engine.connect() as db:
        return sorted(db.execute(select(tables.schema_version.c.version)).scalars())


def test_migrating_again_changes_nothing(store, open_another):
    open_another()
    assert store.migrate() == migrations.LATEST
    assert schema_rows(store) == list(range(1, migrations.LATEST + 1))


def test_replicas_starting_at_once_apply_each_migration_once(database_url):
    """Four processes' worth of connections race to migrate an empty database."""
    stores = [SqlStore(database_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def start(store: SqlStore) -> int:
        barrier.wait()
        return store.migrate()

    with ThreadPoolExecutor(len(stores)) as pool:
        versions = list(pool.map(start, stores))
    assert versions == [migrations.LATEST] * len(stores)
    assert schema_rows(stores[0]) == list(range(1, migrations.LATEST + 1))
    for store in stores:
        store.check()
        store.close()


def test_check_refuses_a_database_that_is_not_migrated(database_url):
    store = SqlStore(database_url)
    with pytest.raises(StorageError):
        store.check()
    store.migrate()
    store.check()
    store.close()


# --- the ledger and feedback --------------------------------------------------------------


def test_recording_a_card_twice_keeps_one_row(store):
    store.record_cards([card("c1"), card("c2")])
    store.record_cards([card("c1")])
    assert store.row_counts()["issued_cards"] == 2


def test_a_ledger_batch_that_fails_stores_none_of_it_and_the_next_one_is_written(store):
    bad = card("c2")
    object.__setattr__(bad, "rule_id", None)  # NOT NULL: the database refuses the row
    with pytest.raises(StorageError) as failed:
        store.record_cards([card("c1"), bad])
    assert "c1" not in str(failed.value) and "folate" not in str(failed.value)
    assert store.row_counts()["issued_cards"] == 0  # rolled back as one
    store.record_cards([card("c3")])
    assert store.remember_jti("https://ehr.example.org", "jti-1", T0 + timedelta(hours=1), T0)
    assert store.row_counts()["issued_cards"] == 1


def test_ledger_rows_read_back_as_written(store):
    store.record_cards([card("c1"), card("c2", "b12-screening-due")])
    later = T0 + timedelta(days=1)
    store.record_feedback(SERVICE, [accepted("c1", later), overridden("c2")], later)
    reports = report(store)
    assert (reports["folate-before-b12"].issued, reports["folate-before-b12"].accepted) == (1, 1)
    assert (reports["b12-screening-due"].issued, reports["b12-screening-due"].overridden) == (1, 1)
    # issued_at kept its moment (UTC text on SQLite, timestamptz on PostgreSQL): a purge
    # a day after it deletes the cards, one a moment before keeps them
    assert store.purge_ledger(T0) == 0
    store.retention_days = 1
    assert store.purge_ledger(T0 + timedelta(days=1, seconds=-1)) == 0
    assert store.purge_ledger(T0 + timedelta(days=1, seconds=1)) == 2


def test_feedback_is_attributed_to_the_rule_of_the_card(store):
    store.record_cards([card("c1", "folate-before-b12"), card("c2", "b12-screening-due")])
    result = store.record_feedback(SERVICE, [accepted("c1"), overridden("c2")], T0)
    assert (result.stored, result.duplicates, result.unknown_cards) == (2, 0, 0)
    assert result.outcomes == (
        ("folate-before-b12", "accepted"),
        ("b12-screening-due", "overridden"),
    )
    reports = report(store)
    assert (reports["folate-before-b12"].issued, reports["folate-before-b12"].accepted) == (1, 1)
    assert reports["b12-screening-due"].overridden == 1


def test_override_reasons_are_counted_by_display_else_code(store):
    store.record_cards([card(f"c{i}") for i in range(3)])
    store.record_feedback(
        SERVICE,
        [
            overridden("c0", "elsewhere", "Given elsewhere"),
            overridden("c1", "elsewhere", "Given elsewhere"),
            overridden("c2", "declined"),
        ],
        T0,
    )
    assert report(store)["folate-before-b12"].override_reasons == {
        "Given elsewhere": 2,
        "declined": 1,
    }


def test_repeated_feedback_is_stored_once(store):
    store.record_cards([card("c1")])
    first = store.record_feedback(SERVICE, [accepted("c1")], T0)
    second = store.record_feedback(SERVICE, [accepted("c1"), accepted("c1")], T0)
    assert (first.stored, first.duplicates) == (1, 0)
    assert (second.stored, second.duplicates, second.outcomes) == (0, 2, ())
    assert store.feedback_count() == 1


def test_the_same_moment_in_another_offset_is_a_duplicate(store):
    store.record_feedback(SERVICE, [accepted("c1", T0)], T0)
    paris = T0.astimezone(timezone(timedelta(hours=1)))
    assert store.record_feedback(SERVICE, [accepted("c1", paris)], T0).duplicates == 1


def test_feedback_for_an_unknown_card_is_stored_and_flagged(store):
    result = store.record_feedback(SERVICE, [accepted("never-issued")], T0)
    assert (result.stored, result.unknown_cards, result.outcomes) == (1, 1, ((None, "accepted"),))
    assert set(report(store)) == {"(unknown card)"}


def test_concurrent_feedback_from_several_workers_loses_nothing(store, open_another):
    store.record_cards([card(f"c{i}") for i in range(64)])
    workers = [open_another() for _ in range(4)]

    def post(index: int) -> int:
        worker = workers[index % len(workers)]
        stored = 0
        for j in range(8):
            uuid = f"c{index * 8 + j}"
            # (no loss under concurrency is under test, not the deadline: a generous one)
            stored += worker.record_feedback(SERVICE, [accepted(uuid)], T0, timeout_s=10).stored
            # a retry of the same entry, batched with a new one
            both = [accepted(uuid), overridden(uuid)]
            stored += worker.record_feedback(SERVICE, both, T0, timeout_s=10).stored
        return stored

    with ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(post, range(8)))
    assert total == 128
    assert store.feedback_count() == 128
    folate = report(store)["folate-before-b12"]
    assert (folate.accepted, folate.overridden, folate.issued) == (64, 64, 64)


# --- the JWT replay store -----------------------------------------------------------------


def test_a_jti_is_accepted_once_per_issuer(store):
    until = T0 + timedelta(seconds=360)
    assert store.remember_jti("https://ehr.example.org", "jti-1", until, T0) is True
    assert store.remember_jti("https://ehr.example.org", "jti-1", until, T0) is False
    assert store.remember_jti("https://ehr.example.org", "jti-2", until, T0) is True
    assert store.remember_jti("https://other.example.org", "jti-1", until, T0) is True


def test_a_jti_is_remembered_until_it_expires(store):
    until = T0 + timedelta(seconds=360)
    store.remember_jti("iss", "jti-1", until, T0)
    assert store.remember_jti("iss", "jti-1", until, until - timedelta(seconds=1)) is False
    after = until + timedelta(seconds=1)
    assert store.remember_jti("iss", "jti-1", after + timedelta(seconds=360), after) is True


def test_a_token_expiring_after_2038_fits(store):
    until = datetime(2100, 1, 1, tzinfo=timezone.utc)
    assert store.remember_jti("iss", "far", until, T0) is True
    assert store.remember_jti("iss", "far", until, T0) is False


def test_expired_jti_rows_are_purged_now_and_then(store):
    for n in range(5):
        store.remember_jti("iss", f"old-{n}", T0 + timedelta(seconds=60), T0)
    assert store.row_counts()["seen_jti"] == 5
    later = T0 + timedelta(seconds=JTI_PURGE_INTERVAL_S + 1)
    store.remember_jti("iss", "new", later + timedelta(seconds=360), later)
    assert store.row_counts()["seen_jti"] == 1


def test_concurrent_replays_on_several_workers_let_exactly_one_through(store, open_another):
    workers = [store] + [open_another() for _ in range(3)]
    until = T0 + timedelta(seconds=360)
    barrier = threading.Barrier(8)

    def attempt(index: int) -> bool:
        barrier.wait()
        # Atomicity, not the request deadline, is under test: a generous one on a busy machine.
        return workers[index % len(workers)].remember_jti("iss", "same", until, T0, timeout_s=10)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert results.count(True) == 1


def test_stores_on_one_database_share_the_replay_state(store, open_another):
    other = open_another()
    until = T0 + timedelta(seconds=360)
    assert store.remember_jti("iss", "shared", until, T0) is True
    assert other.remember_jti("iss", "shared", until, T0) is False


# --- retention ----------------------------------------------------------------------------


def test_retention_purges_old_cards_and_keeps_their_feedback(database_url):
    store = open_store(database_url, retention_days=30)
    old, recent = T0 - timedelta(days=31), T0 - timedelta(days=29)
    store.record_cards([card("old", at=old), card("recent", at=recent)])
    store.record_feedback(SERVICE, [accepted("old"), accepted("recent")], T0)
    assert store.purge_ledger(now=T0) == 1
    assert store.row_counts()["issued_cards"] == 1
    folate = report(store)["folate-before-b12"]
    assert (folate.issued, folate.accepted) == (1, 2)  # feedback keeps its rule id
    store.close()


def test_retention_runs_periodically_as_cards_are_recorded(database_url):
    now = [T0]
    store = SqlStore(database_url, retention_days=30, clock=lambda: now[0])
    store.migrate()
    almost = T0 - timedelta(days=30) + timedelta(minutes=30)  # 30 days old at T0 + 30 min
    store.record_cards([card("old", at=T0 - timedelta(days=40)), card("almost", at=almost)])
    assert store.row_counts()["issued_cards"] == 1  # the first write purges "old"
    now[0] = T0 + timedelta(minutes=40)  # "almost" has expired, but the hour has not passed
    store.record_cards([card("new", at=now[0])])
    assert store.row_counts()["issued_cards"] == 2
    now[0] = T0 + timedelta(seconds=LEDGER_PURGE_INTERVAL_S)
    store.record_cards([card("newer", at=now[0])])
    assert store.row_counts()["issued_cards"] == 2  # "almost" is gone
    store.close()


def test_without_retention_nothing_is_purged(store):
    store.record_cards([card("ancient", at=T0 - timedelta(days=3650))])
    assert store.purge_ledger(now=T0) == 0
    assert store.row_counts()["issued_cards"] == 1


# --- failures -----------------------------------------------------------------------------


def test_an_unreachable_database_is_a_storage_error_that_quotes_nothing(unreachable_url):
    failures: list[str] = []
    store = SqlStore(unreachable_url, on_error=failures.append)
    comment = "patient declined; see note"
    calls = {
        "record_cards": lambda: store.record_cards([card("c1")]),
        "record_feedback": lambda: store.record_feedback(SERVICE, [overridden("c1")], T0),
        "remember_jti": lambda: store.remember_jti("iss", "jti", T0, T0),
        "check": store.check,
        "feedback_report": store.feedback_report,
        "migrate": store.migrate,
    }
    for name, call in calls.items():
        with pytest.raises(StorageError) as caught:
            call()
        message = str(caught.value)
        assert message.startswith("database error: "), message
        for secret in (comment, "secret-password", "INSERT", "c1"):
            assert secret not in message
    assert failures == list(calls)


def test_open_store_refuses_an_unreachable_database(unreachable_url):
    with pytest.raises(StorageError):
        open_store(unreachable_url)


# --- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, expected",
    [
        ("postgresql://u:p@db:5432/cds", "postgresql+psycopg://u:p@db:5432/cds"),
        ("postgres://u@db/cds", "postgresql+psycopg://u@db/cds"),
        ("sqlite:///var/cds.sqlite3", "sqlite:///var/cds.sqlite3"),
        ("var/cds.sqlite3", "sqlite:///var/cds.sqlite3"),
        ("/srv/cds.sqlite3", "sqlite:////srv/cds.sqlite3"),
    ],
)
def test_database_urls(given, expected):
    assert database_url(given) == expected


def test_logs_see_the_url_without_its_password():
    store = SqlStore("postgresql://cds:s3cret@db.internal:5432/cds")
    assert "s3cret" not in store.describe()
    assert "db.internal" in store.describe()


def test_an_unsupported_database_is_refused():
    with pytest.raises(StorageError, match="unsupported database"):
        SqlStore("mysql://u@db/cds")


def test_row_counts_match_a_direct_count(store):
    store.record_cards([card("c1")])
    with store.engine.connect() as db:
        direct = db.execute(select(func.count()).select_from(tables.issued_cards)).scalar_one()
    assert store.row_counts()["issued_cards"] == direct == 1


def test_a_postgresql_database_in_sql_ascii_works_like_any_other(postgres):
    """A database created with the SQL_ASCII encoding (old clusters, some managed services):
    the driver would hand back bytes instead of text unless the client encoding is set, and the
    migrations and reports would fail on them."""
    name = f"ascii_{int(time.time() * 1000) % 100000}"
    subprocess.run(
        [str(postgres.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(postgres.port)]
        + ["-U", pg.SUPERUSER, "-E", "SQL_ASCII", "-T", "template0", name],
        check=True,
        capture_output=True,
        timeout=60,
    )
    store = open_store(postgres.url(name))
    try:
        store.record_cards([card("c1")])
        store.record_feedback(SERVICE, [overridden("c1", display="Déjà fait: ß")], T0)
        reasons = report(store)["folate-before-b12"]
        assert reasons.overridden == 1
        assert reasons.override_reasons == {"Déjà fait: ß": 1}  # text read back as written
        assert store.remember_jti("iss", "jti-ascii", T0 + timedelta(hours=1), T0) is True
    finally:
        store.close()


REQUEST_PATH_WRITES = {
    "jti": lambda store, n, timeout_s: store.remember_jti(
        "iss", f"jti-{n}", T0 + timedelta(seconds=360), T0, timeout_s=timeout_s
    ),
    "feedback": lambda store, n, timeout_s: store.record_feedback(
        SERVICE, [overridden(f"c{n}")], T0, timeout_s=timeout_s
    ),
    "readiness": lambda store, n, timeout_s: store.check(timeout_s=timeout_s),
}


@pytest.mark.parametrize("write", list(REQUEST_PATH_WRITES))
def test_sqlite_request_path_writes_run_on_the_callers_thread_within_their_deadline(
    tmp_path, write
):
    """Through the deadline pool, a loaded machine could spend a 0.5 s feedback deadline
    before the write began (a 503 with the database idle); on the caller's thread the
    deadline bounds the one wait SQLite has, the file's write lock."""
    import sqlite3

    run = REQUEST_PATH_WRITES[write]
    store = open_store(f"sqlite:///{tmp_path}/cds.sqlite3")
    store.remember_jti("iss", "first", T0 + timedelta(seconds=360), T0)  # the first call purges
    pool_calls: list[str] = []
    store._deadlines.run = lambda function, timeout_s: pool_calls.append("pool") or function()
    locker = sqlite3.connect(tmp_path / "cds.sqlite3", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")  # another process's long write transaction
        started = time.monotonic()
        with pytest.raises(StorageError):
            run(store, 1, 0.2)
        waited = time.monotonic() - started
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    # Bounded by its deadline (busy_timeout), not by the 5 s background statement timeout.
    assert 0.15 <= waited < 2.0
    # Nothing was half-done: the same call succeeds now, and none went through the pool.
    run(store, 1, 0.2)
    assert pool_calls == []
    if write == "jti":  # the refused token was not spent
        assert store.remember_jti("iss", "jti-1", T0 + timedelta(seconds=360), T0) is False
    if write == "feedback":
        assert store.feedback_count() == 1


def test_a_due_feedback_purge_goes_through_the_deadline_pool(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/cds.sqlite3", feedback_retention_days=30)
    pool_calls: list[str] = []
    store._deadlines.run = lambda function, timeout_s: pool_calls.append("pool") or function()
    store.record_feedback(SERVICE, [overridden("old")], T0)  # the first call purges
    store.record_feedback(SERVICE, [overridden("older")], T0 + timedelta(minutes=1))
    assert pool_calls == ["pool"]  # not due again within the purge interval
    store.record_feedback(SERVICE, [overridden("new")], T0 + timedelta(days=40))
    assert pool_calls == ["pool", "pool"]
    assert store.feedback_count() == 1  # the two past the 30 days were purged


def test_feedback_stored_before_its_card_reached_the_ledger_is_attributed_once_it_has(store):
    # Another worker issued the card and its ledger batch had not been written yet.
    result = store.record_feedback(SERVICE, [overridden("late", "elsewhere")], T0)
    assert result.unknown_cards == 1 and set(report(store)) == {"(unknown card)"}
    store.record_cards([card("late")])
    reports = report(store)
    assert set(reports) == {"folate-before-b12"}
    assert (reports["folate-before-b12"].issued, reports["folate-before-b12"].overridden) == (1, 1)
    assert reports["folate-before-b12"].override_reasons == {"elsewhere": 1}
