"""The store on SQLAlchemy Core: embedded SQLite by default, PostgreSQL for several replicas.

``CDS_DATABASE_URL`` picks the backend: ``sqlite:///relative/path`` (or ``sqlite:////abs``,
or a plain path) or ``postgresql://user:password@host:5432/db`` (driven by psycopg 3).

- SQLite runs in WAL mode with a busy timeout, so gunicorn's workers (separate processes)
  read while one writes and wait for each other's writes instead of failing. Writes begin
  with ``BEGIN IMMEDIATE``: the write lock is taken first, so a read-then-write transaction
  (feedback attribution) can never fail half-way on a lock upgrade.
- PostgreSQL uses a small connection pool per process with pre-ping (a restarted database is
  reconnected to), a statement timeout, and TCP keepalives plus ``tcp_user_timeout`` (a
  vanished server host releases the connection in seconds, not the kernel's minutes).
- The calls on a request's path have a hard deadline (``deadline.py``): ``REPLAY_DEADLINE_S``
  for the replay store, ``FEEDBACK_DEADLINE_S`` and ``READY_DEADLINE_S`` for feedback and the
  readiness probe, connection time included, whatever state the database is in (stopped,
  frozen, locked by another process). Past it they fail with a StorageError; the caller decides
  what that means. (On SQLite, whose only wait is a file lock, they bound that wait themselves
  on the caller's thread: ``_on_request_path``.) The card ledger is written in the background
  (``ledger.py``) and never waited for.
- The two writes every call may make (a token's ``jti``, the card ledger's batch) are plain
  parameterised SQL on the pool's DB-API connection (``_raw_write``): the driver prepares them
  once per connection (sqlite3's statement cache, psycopg's automatic server-side preparation),
  and no SQLAlchemy statement is built, cache-keyed or compiled per call. Through SQLAlchemy
  Core the jti insert cost about 1 ms of CPU; plain, about a quarter of that.
- SQLite's WAL checkpoints run on a background thread, never inside a request's commit
  (``checkpoint.py``).
- gunicorn forks its workers after the app (and this store) is built: a process that finds
  itself in a new pid drops the inherited pool without closing the parent's connections.

Every database error becomes a ``StorageError`` whose message names the error type only
(SQLAlchemy's own messages quote SQL parameters, which may hold a clinician's comment), and
is reported to ``on_error`` with the operation's name, for the metrics.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, delete, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from . import migrations
from .base import FeedbackRecord, FeedbackResult, IssuedCard, RuleReport, StorageError
from .checkpoint import WAL_RESTART_FRAMES, WAL_RESTART_WAIT_MS, WalCheckpointer
from .deadline import DeadlineRunner
from .tables import UtcTimestamp, feedback, invocation_counts, issued_cards, seen_jti

log = logging.getLogger("cds_service.storage")

#: How often (per process) expired jti rows are purged.
JTI_PURGE_INTERVAL_S = 300
#: How often (per process) issued cards older than the retention period are purged.
LEDGER_PURGE_INTERVAL_S = 3600
#: The longest a query may run on PostgreSQL, and the longest a writer waits on SQLite
#: (background work: the ledger, purges, migrations).
STATEMENT_TIMEOUT_MS = 5000
#: The longest a request waits for the replay store (connection time included).
REPLAY_DEADLINE_S = 0.25
#: The longest a request waits to store feedback, or /readyz for its probe.
FEEDBACK_DEADLINE_S = 0.5  # stored or 503 within 1 s, with room for the rest of the call
READY_DEADLINE_S = 0.5
#: Card uuids per lookup when feedback is attributed (well under SQLite's variable limit).
FEEDBACK_LOOKUP_CHUNK = 500
#: The issuer of /readyz's probe row in the replay table (not a URL: never a real issuer).
PROBE_ISSUER = "(readiness probe)"
UNKNOWN_CARD = "(unknown card)"

#: The hot writes as plain SQL (``_raw_write``), in the DB-API's "qmark" style; ``_sql``
#: rewrites them for psycopg ("format"). Same columns and semantics as ``tables.py``.
#: A jti row comes back when it was inserted or an expired one taken over (the primary key
#: decides, atomically, across workers and replicas).
JTI_INSERT = (
    "INSERT INTO seen_jti (issuer, jti, expires_at) VALUES (?, ?, ?)"
    " ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at"
    " WHERE seen_jti.expires_at < ? RETURNING jti"
)
JTI_PURGE = "DELETE FROM seen_jti WHERE expires_at < ?"
LEDGER_INSERT = (
    "INSERT INTO issued_cards"
    " (card_uuid, service_id, rule_id, indicator, hook_instance, issued_at, silent)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def database_url(url_or_path: str) -> str:
    """The SQLAlchemy URL for a ``CDS_DATABASE_URL`` value: ``postgresql://`` and
    ``postgres://`` use psycopg 3; anything without a scheme is a SQLite file path."""
    value = url_or_path.strip()
    for prefix in ("postgresql://", "postgres://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value.removeprefix(prefix)
    if "://" not in value:
        return f"sqlite:///{value}"
    return value


def _sqlite_path(url: str) -> str | None:
    database = make_url(url).database
    return None if not database or database == ":memory:" else database


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError("not a database URL (sqlite:///path or postgresql://...)") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(
            parsed,
            connect_args={"timeout": STATEMENT_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        _sqlite_transactions(engine)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(
            parsed,
            pool_size=5,
            max_overflow=10,
            pool_timeout=STATEMENT_TIMEOUT_MS / 1000,
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={
                "connect_timeout": 2,  # libpq's minimum; the request deadlines are shorter
                "application_name": "cds-service",
                # Text comes back as str even from a SQL_ASCII database (psycopg would return
                # bytes there, which the migrations and reports cannot read).
                "client_encoding": "utf8",
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 3,
                "tcp_user_timeout": STATEMENT_TIMEOUT_MS,
            },
        )
    raise StorageError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


#: Tries of the switch to WAL while another connection holds the new file's lock.
WAL_TRIES = 50


def _set_wal(cursor: Any) -> None:
    """Switching a new database file to WAL needs its lock, and SQLite answers "database is
    locked" at once, without its busy handler, while processes starting together create the
    file. Retry briefly (at most ~2.5 s, only while the file is new: once in WAL mode the
    pragma takes no lock)."""
    for attempt in range(WAL_TRIES):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_TRIES - 1:
                raise
            time.sleep(0.05)


def _sqlite_transactions(engine: Engine) -> None:
    """pysqlite's own transaction handling defers BEGIN and cannot say IMMEDIATE: turn it
    off and begin each transaction here (the recipe of SQLAlchemy's SQLite dialect docs)."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {STATEMENT_TIMEOUT_MS}")
            _set_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL
            # Checkpoints run in the background, never inside a request's commit: checkpoint.py
            cursor.execute("PRAGMA wal_autocheckpoint = 0")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class SqlStore:
    """Implements ``cds_service.storage.base.Store``."""

    def __init__(
        self,
        url: str,
        *,
        retention_days: int | None = None,
        clock: Clock = utc_now,
        on_error: Callable[[str], None] | None = None,
        feedback_retention_days: int | None = None,
    ) -> None:
        self.url = database_url(url)
        self.retention_days = retention_days or None
        self.feedback_retention_days = feedback_retention_days or None
        self.clock = clock
        #: Called with the operation's name when the database fails (metrics).
        self.on_error = on_error
        self._engine_ = _engine(self.url)
        self.dialect = self._engine_.dialect.name
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # SQLite has one writer at a time; threads of one process that collide on its file lock
        # sleep in its busy handler with a growing back-off (up to 100 ms per retry). Taking
        # turns inside the process first leaves only processes to collide, which keeps the
        # tail short when every call writes a jti.
        self._sqlite_writer = threading.Lock()
        self._next_jti_purge: float | None = None
        self._next_ledger_purge: float | None = None
        self._deadlines = DeadlineRunner()
        self._checkpointer = WalCheckpointer(self._checkpoint) if self.dialect == "sqlite" else None
        #: The driver's base exception (sqlite3.Error, psycopg.Error): ``_raw_write``.
        self._dbapi_error: type[Exception] = self._engine_.dialect.loaded_dbapi.Error
        self._jti_insert = self._sql(JTI_INSERT)
        self._jti_purge = self._sql(JTI_PURGE)
        self._ledger_insert = self._sql(LEDGER_INSERT)
        self._next_feedback_purge: float | None = None

    # -- connections ----------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if os.getpid() != self._pid:
            with self._lock:
                if os.getpid() != self._pid:
                    # A forked worker: the pool's connections belong to the parent.
                    self._engine_.dispose(close=False)
                    self._pid = os.getpid()
        return self._engine_

    def describe(self) -> str:
        """The URL without its password, for logs."""
        return self._engine_.url.render_as_string(hide_password=True)

    def _failed(self, operation: str, exc: BaseException, reason: str = "") -> StorageError:
        kind = type(exc.orig).__name__ if isinstance(exc, DBAPIError) else type(exc).__name__
        if self.on_error is not None:
            try:
                self.on_error(operation)
            except Exception:  # a metrics hook must never turn into a storage failure
                log.exception("storage error hook failed")
        return StorageError(f"database error: {kind}" + (f" ({reason})" if reason else ""))

    @contextmanager
    def _transaction(
        self, operation: str, *, write: bool = True, timeout_s: float | None = None
    ) -> Iterator[Connection]:
        """One transaction; ``timeout_s`` bounds its lock waits and statements (the caller's
        deadline bounds the rest: see ``_within``)."""
        serialise = write and self.dialect == "sqlite"
        timeout_ms = int((timeout_s or STATEMENT_TIMEOUT_MS / 1000) * 1000)
        deadline = time.monotonic() + timeout_ms / 1000
        try:
            with self._writer_turn(operation, timeout_s) if serialise else nullcontext():
                with self.engine.connect() as db:
                    if self.dialect == "sqlite":
                        # Per transaction: a request's write gives up on a file locked by
                        # another process when its deadline says (what the writer turn left
                        # of it), the ledger later. An open connection always holds its
                        # driver connection.
                        busy_ms = max(1, int((deadline - time.monotonic()) * 1000))
                        db.connection.driver_connection.execute(  # type: ignore[union-attr]
                            f"PRAGMA busy_timeout = {busy_ms}"
                        )
                    if serialise:
                        db.execution_options(sqlite_begin="IMMEDIATE")
                    with db.begin():
                        if self.dialect == "postgresql" and timeout_s is not None:
                            db.exec_driver_sql(f"SET LOCAL statement_timeout = {timeout_ms}")
                            db.exec_driver_sql(f"SET LOCAL lock_timeout = {timeout_ms}")
                        yield db
        except SQLAlchemyError as exc:
            raise self._failed(operation, exc) from exc

    @contextmanager
    def _writer_turn(self, operation: str, timeout_s: float | None) -> Iterator[None]:
        if not self._sqlite_writer.acquire(timeout=-1 if timeout_s is None else timeout_s):
            raise self._failed(operation, TimeoutError("waiting for this process's writer"))
        try:
            yield
        finally:
            self._sqlite_writer.release()
        if self._checkpointer is not None:  # committed
            self._checkpointer.committed()

    def _checkpoint(self) -> None:
        """A passive WAL checkpoint, and a restarting one when the WAL has grown past
        ``WAL_RESTART_FRAMES`` (``checkpoint.py``), on a connection of the pool. A lock held
        elsewhere only makes it report "busy"; an error (disk full, I/O) is a StorageError,
        counted like any other (``on_error``: ``wal_checkpoint``)."""
        try:
            connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    frames = (cursor.fetchone() or (0, 0, 0))[1]  # (busy, WAL frames, copied)
                    if frames > WAL_RESTART_FRAMES:
                        cursor.execute(f"PRAGMA busy_timeout = {WAL_RESTART_WAIT_MS}")
                        cursor.execute("PRAGMA wal_checkpoint(RESTART)")
                        cursor.fetchall()
                finally:
                    cursor.close()
            finally:
                connection.close()
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise self._failed("wal_checkpoint", exc) from None

    @contextmanager
    def _raw_write(self, operation: str, timeout_s: float | None = None) -> Iterator[Any]:
        """One write transaction on the pool's DB-API connection: a cursor to run plain,
        parameterised SQL on (written with ``?``; see ``_sql``). The same guarantees as
        ``_transaction``: on SQLite this process's writers take turns, the file's write lock
        is taken first (``BEGIN IMMEDIATE``) and waited for at most ``timeout_s``; on
        PostgreSQL the statement and lock timeouts are ``timeout_s`` for this transaction.
        Committed when the block ends, rolled back when it raises; a database error becomes
        a StorageError naming its type only."""
        timeout_ms = int((timeout_s or STATEMENT_TIMEOUT_MS / 1000) * 1000)
        deadline = time.monotonic() + timeout_ms / 1000
        sqlite_file = self.dialect == "sqlite"
        try:
            with self._writer_turn(operation, timeout_s) if sqlite_file else nullcontext():
                connection = self.engine.raw_connection()
                try:
                    cursor = connection.cursor()
                    try:
                        if sqlite_file:
                            # What the writer turn left of the deadline (at least 1 ms).
                            busy_ms = max(1, int((deadline - time.monotonic()) * 1000))
                            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                            cursor.execute("BEGIN IMMEDIATE")
                        else:  # one round trip for both (SET LOCAL takes one each)
                            cursor.execute(
                                "SELECT set_config('statement_timeout', %s, true),"
                                " set_config('lock_timeout', %s, true)",
                                (str(timeout_ms), str(timeout_ms)),
                            )
                        try:
                            yield cursor
                        except BaseException:
                            connection.rollback()
                            raise
                        if sqlite_file:
                            cursor.execute("COMMIT")
                        else:
                            connection.commit()
                    finally:
                        cursor.close()
                finally:
                    connection.close()  # back to the pool (which rolls back what is left)
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise self._failed(operation, exc) from exc

    def _sql(self, text: str) -> str:
        """``text`` in the driver's placeholder style (psycopg: ``%s``)."""
        return text if self.dialect == "sqlite" else text.replace("?", "%s")

    def _on_request_path(
        self,
        operation: str,
        timeout_s: float,
        function: Callable[[], Any],
        *,
        purge_due: bool = False,
    ) -> Any:
        """``function()``, its caller waiting at most ``timeout_s``.

        On SQLite, unless a purge (whose length grows with the data) is due, it runs on the
        caller's thread: the only thing it can wait for is the file's write lock, and that
        wait is bounded by the same deadline (this process's writer turn, then SQLite's busy
        timeout for what is left). The deadline then counts the database's wait only, not
        this process's scheduling: handed to the deadline thread, a write on a loaded machine
        could spend its whole deadline before it began, and the hand-off cost more CPU than a
        jti insert. Every PostgreSQL call, which can stall in ways no timeout of ours bounds,
        goes through the deadline thread (``_within``)."""
        if self.dialect == "sqlite" and not purge_due:
            return function()
        return self._within(operation, timeout_s, function)

    def _within(self, operation: str, timeout_s: float, function: Callable[[], Any]) -> Any:
        """``function()`` with the caller waiting at most ``timeout_s`` (``deadline.py``)."""
        try:
            return self._deadlines.run(function, timeout_s)
        except StorageError as exc:
            if type(exc) is StorageError:  # already reported by _failed
                raise
            raise self._failed(operation, exc) from None

    def _insert(self, table: Any) -> Any:
        """INSERT with ON CONFLICT: the one construct whose import differs per backend."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    # -- lifecycle ------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version (see ``migrations.py``).

        At start-up, so its errors say why: the driver's reason (a refused password, an
        unknown database, an unreachable host; the migrations' SQL carries no request data)
        with the password taken out, or a read-only directory for the SQLite file."""
        path = _sqlite_path(self.url) if self.dialect == "sqlite" else None
        try:
            if path is not None:
                directory = Path(path).parent
                try:
                    directory.mkdir(parents=True, exist_ok=True)
                except OSError:
                    pass  # said below, with the remedy
                if not os.access(directory, os.W_OK):
                    raise StorageError(
                        f"database error: the SQLite database's directory {directory.resolve()}"
                        " does not exist or is not writable (a read-only container needs a"
                        " volume there, or use PostgreSQL)"
                    )
            return migrations.migrate(self.engine)
        except OSError as exc:
            raise self._failed("migrate", exc, self._reason(exc)) from exc
        except SQLAlchemyError as exc:
            raise self._failed("migrate", exc, self._reason(exc)) from exc

    def _reason(self, exc: BaseException) -> str:
        """The first line of the driver's message, without the password."""
        original = exc.orig if isinstance(exc, DBAPIError) else exc
        text = str(getattr(original, "strerror", None) or original).strip()
        line = text.splitlines()[0].strip() if text else ""
        password = self._engine_.url.password
        if password:
            for form in {password, quote(password, safe="")}:
                line = line.replace(form, "***")
        return line[:300]

    def check(self, timeout_s: float = READY_DEADLINE_S) -> None:
        """StorageError unless, within ``timeout_s``, the schema is migrated and a test write
        succeeds (a full disk or a read-only database fails it)."""
        self._on_request_path("check", timeout_s, lambda: self._check(timeout_s))

    def _check(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._transaction("check", write=False, timeout_s=timeout_s) as db:
            version = migrations.current_version(db)
        if version < migrations.LATEST:
            raise StorageError(f"the database schema is at version {version}, not migrated")
        moment = int(self.clock().timestamp())
        statement = self._insert(seen_jti).values(
            issuer=PROBE_ISSUER, jti=f"probe-{os.getpid()}", expires_at=moment
        )
        statement = statement.on_conflict_do_update(
            index_elements=[seen_jti.c.issuer, seen_jti.c.jti],
            set_={"expires_at": statement.excluded.expires_at},
        )
        left = max(0.001, deadline - time.monotonic())  # one deadline for both transactions
        with self._transaction("check", timeout_s=left) as db:
            db.execute(statement)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._engine_.dispose()

    def warm_up(self, connections: int, timeout_s: float = 5.0) -> int:
        """Open ``connections`` pooled connections at once (a new worker, before it serves):
        a request's replay deadline must not be spent connecting to PostgreSQL on a busy machine.
        Returns how many opened; failures are only logged (the requests will tell)."""
        opened: list[int] = []

        def one() -> None:
            try:
                with self.engine.connect() as db:
                    db.exec_driver_sql("SELECT 1")
                    barrier.wait(timeout_s)  # hold it until all are open: distinct connections
                opened.append(1)
            except (SQLAlchemyError, threading.BrokenBarrierError) as exc:
                log.info("warm-up connection failed", extra={"error": type(exc).__name__})

        barrier = threading.Barrier(connections)
        threads = [threading.Thread(target=one, daemon=True) for _ in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout_s + 1)
        return len(opened)

    # -- the ledger -----------------------------------------------------------------------
    def record_cards(self, cards: Sequence[IssuedCard]) -> None:
        if not cards:
            return
        moment = UtcTimestamp().process_bind_param
        dialect = self._engine_.dialect
        rows = [
            (
                c.card_uuid,
                c.service_id,
                c.rule_id,
                c.indicator,
                c.hook_instance,
                moment(c.issued_at, dialect),
                bool(c.silent),
            )
            for c in cards
        ]
        with self._raw_write("record_cards") as cursor:
            cursor.executemany(self._ledger_insert, rows)
        if self.retention_days and self._due(
            "_next_ledger_purge", self.clock().timestamp(), LEDGER_PURGE_INTERVAL_S
        ):
            try:
                self.purge_ledger()
            except StorageError as exc:  # the cards are recorded; the purge runs next time
                log.error("ledger purge failed", extra={"error": str(exc)})

    def purge_ledger(self, now: datetime | None = None) -> int:
        """Delete issued cards older than the retention period; feedback is kept (it carries
        its rule id). Returns how many were deleted."""
        if not self.retention_days:
            return 0
        cutoff = (now or self.clock()) - timedelta(days=self.retention_days)
        with self._transaction("purge_ledger") as db:
            deleted = db.execute(delete(issued_cards).where(issued_cards.c.issued_at < cutoff))
            # The firing rates' denominator covers the same days as the ledger.
            db.execute(
                delete(invocation_counts).where(
                    invocation_counts.c.day < cutoff.astimezone(timezone.utc).date().isoformat()
                )
            )
        if deleted.rowcount:
            log.info("ledger purged", extra={"count": deleted.rowcount})
        return deleted.rowcount

    def purge_feedback(self, now: datetime | None = None) -> int:
        """Delete feedback received before the feedback retention period (it may hold a
        clinician's free-text comment). Returns how many were deleted."""
        if not self.feedback_retention_days:
            return 0
        cutoff = (now or self.clock()) - timedelta(days=self.feedback_retention_days)
        with self._transaction("purge_feedback") as db:
            deleted = db.execute(delete(feedback).where(feedback.c.received_at < cutoff))
        if deleted.rowcount:
            log.info("feedback purged", extra={"count": deleted.rowcount})
        return deleted.rowcount

    def _due(self, attribute: str, moment: float, interval_s: float) -> bool:
        """Whether a periodic purge is due, in the callers' time (tests move it)."""
        with self._lock:
            due = getattr(self, attribute)
            if due is not None and moment < due:
                return False
            setattr(self, attribute, moment + interval_s)
            return True

    # -- feedback -------------------------------------------------------------------------
    def record_feedback(
        self,
        service_id: str,
        entries: Sequence[FeedbackRecord],
        received_at: datetime,
        *,
        timeout_s: float = FEEDBACK_DEADLINE_S,
    ) -> FeedbackResult:
        """Within ``timeout_s`` or a StorageError. One transaction: when the deadline passes
        while it still runs, it may yet commit; a retry of the same entries is then counted
        as duplicates, never stored twice, and nothing acknowledged is lost. Where it runs:
        ``_on_request_path``."""
        if not entries:
            return FeedbackResult(0, 0, 0, ())
        purge = bool(self.feedback_retention_days) and self._due(
            "_next_feedback_purge", received_at.timestamp(), LEDGER_PURGE_INTERVAL_S
        )
        return self._on_request_path(
            "record_feedback",
            timeout_s,
            lambda: self._record_feedback(service_id, entries, received_at, timeout_s, purge),
            purge_due=purge,
        )

    def _record_feedback(
        self,
        service_id: str,
        entries: Sequence[FeedbackRecord],
        received_at: datetime,
        timeout_s: float,
        purge: bool,
    ) -> FeedbackResult:
        """Two statements whatever the batch size (up to the 1,000 entries a request may
        carry): the rule ids of the cards named, then one INSERT of every entry; the rows
        it returns are the ones stored, the rest were already there (duplicates)."""
        with self._transaction("record_feedback", timeout_s=timeout_s) as db:
            rules: dict[str, str] = {}
            uuids = sorted({entry.card_uuid for entry in entries})
            size = FEEDBACK_LOOKUP_CHUNK
            for chunk in (uuids[i:][:size] for i in range(0, len(uuids), size)):
                lookup = select(issued_cards.c.card_uuid, issued_cards.c.rule_id)
                rules.update(db.execute(lookup.where(issued_cards.c.card_uuid.in_(chunk))).all())
            rows = [
                {
                    "service_id": service_id,
                    "card_uuid": entry.card_uuid,
                    "rule_id": rules.get(entry.card_uuid),
                    "known_card": entry.card_uuid in rules,
                    "outcome": entry.outcome,
                    "outcome_timestamp": entry.outcome_timestamp,
                    "accepted_suggestions": json.dumps(list(entry.accepted_suggestions)),
                    "override_system": entry.override_system,
                    "override_code": entry.override_code,
                    "override_display": entry.override_display,
                    "user_comment": entry.user_comment,
                    "received_at": received_at,
                }
                for entry in entries
            ]
            # RETURNING, not rowcount: drivers differ on rowcount after ON CONFLICT. A
            # repeated entry within the batch conflicts with its first copy: stored once.
            # One statement executed for many rows: SQLAlchemy batches it into multi-row
            # INSERTs ("insertmanyvalues") and compiles it once.
            stored_rows = db.execute(
                self._insert(feedback)
                .on_conflict_do_nothing()
                .returning(feedback.c.rule_id, feedback.c.outcome),
                rows,
            ).all()
        outcomes = tuple((rule_id, outcome) for rule_id, outcome in stored_rows)
        unknown = sum(rule_id is None for rule_id, _ in outcomes)
        if purge:
            try:
                self.purge_feedback(received_at)
            except StorageError as exc:  # the feedback is stored; the purge runs next time
                log.error("feedback purge failed", extra={"error": str(exc)})
        return FeedbackResult(len(outcomes), len(entries) - len(outcomes), unknown, outcomes)

    def count_invocations(self, counts: Mapping[tuple[str, date], int]) -> None:
        rows = [
            {"service_id": service_id, "day": day.isoformat(), "count": n}
            for (service_id, day), n in sorted(counts.items())
            if n > 0
        ]
        if not rows:
            return
        statement = self._insert(invocation_counts)
        statement = statement.on_conflict_do_update(
            index_elements=[invocation_counts.c.service_id, invocation_counts.c.day],
            set_={"count": invocation_counts.c.count + statement.excluded["count"]},
        )
        with self._transaction("count_invocations") as db:
            db.execute(statement, rows)

    def feedback_report(self) -> list[RuleReport]:
        reports: dict[str, RuleReport] = {}
        # Feedback is attributed when it is stored, from the ledger; a card the ledger had not
        # written yet (it writes in batches, and another worker may have issued the card) is
        # attributed here once it is there. card_uuid is the ledger's key: one row at most.
        attributed = feedback.outerjoin(
            issued_cards, issued_cards.c.card_uuid == feedback.c.card_uuid
        )
        rule = func.coalesce(feedback.c.rule_id, issued_cards.c.rule_id, UNKNOWN_CARD)
        with self._transaction("feedback_report", write=False) as db:
            for rule_id, silent, issued in db.execute(
                select(issued_cards.c.rule_id, issued_cards.c.silent, func.count()).group_by(
                    issued_cards.c.rule_id, issued_cards.c.silent
                )
            ):
                report = reports.setdefault(rule_id, RuleReport(rule_id))
                if silent:
                    report.silent = issued
                else:
                    report.issued = issued
            invocations = db.execute(
                select(func.coalesce(func.sum(invocation_counts.c.count), 0))
            ).scalar_one()
            for rule_id, outcome, count in db.execute(
                select(rule, feedback.c.outcome, func.count())
                .select_from(attributed)
                .group_by(rule, feedback.c.outcome)
            ):
                setattr(reports.setdefault(rule_id, RuleReport(rule_id)), outcome, count)
            reason = func.coalesce(feedback.c.override_display, feedback.c.override_code)
            for rule_id, text, count in db.execute(
                select(rule, reason, func.count())
                .select_from(attributed)
                .where(feedback.c.outcome == "overridden", feedback.c.override_code.is_not(None))
                .group_by(rule, reason)
            ):
                reports.setdefault(rule_id, RuleReport(rule_id)).override_reasons[text] = count
        for report in reports.values():
            if report.rule_id != UNKNOWN_CARD:
                report.invocations = int(invocations)
        return sorted(reports.values(), key=lambda r: r.rule_id)

    # -- the JWT replay store -------------------------------------------------------------
    def remember_jti(
        self,
        issuer: str,
        jti: str,
        expires_at: datetime,
        now: datetime,
        *,
        timeout_s: float = REPLAY_DEADLINE_S,
    ) -> bool:
        """True the first time (issuer, jti) is seen, False on a replay. One atomic statement
        (the primary key decides), so two workers or replicas racing with the same token
        cannot both win; a row whose token has expired no longer counts and is taken over.
        A StorageError when the database has not answered within ``timeout_s``. Where it
        runs: ``_on_request_path`` (the periodic purge of expired rows rides along when due)."""
        moment, until = int(now.timestamp()), int(expires_at.timestamp())
        purge = self._due("_next_jti_purge", moment, JTI_PURGE_INTERVAL_S)
        return self._on_request_path(
            "remember_jti",
            timeout_s,
            lambda: self._remember_jti(issuer, jti, until, moment, purge, timeout_s),
            purge_due=purge,
        )

    def _remember_jti(
        self, issuer: str, jti: str, until: int, moment: int, purge: bool, timeout_s: float
    ) -> bool:
        with self._raw_write("remember_jti", timeout_s) as cursor:
            if purge:
                cursor.execute(self._jti_purge, (moment,))
            # A row comes back when it was inserted or an expired one taken over.
            cursor.execute(self._jti_insert, (issuer, jti, until, moment))
            return cursor.fetchone() is not None

    # -- for the CLI and the tests --------------------------------------------------------
    def row_counts(self) -> dict[str, int]:
        with self._transaction("row_counts", write=False) as db:
            return {
                table.name: db.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (issued_cards, feedback, seen_jti, invocation_counts)
            }

    def feedback_count(self) -> int:
        return self.row_counts()["feedback"]


def open_store(
    url_or_path: str,
    *,
    retention_days: int | None = None,
    on_error: Callable[[str], None] | None = None,
    feedback_retention_days: int | None = None,
) -> SqlStore:
    """A migrated store: ``sqlite:///path``, a plain path, or ``postgresql://...``."""
    store = SqlStore(
        url_or_path,
        retention_days=retention_days,
        on_error=on_error,
        feedback_retention_days=feedback_retention_days,
    )
    store.migrate()
    if retention_days:
        store.purge_ledger()
    if feedback_retention_days:
        store.purge_feedback()
    return store
