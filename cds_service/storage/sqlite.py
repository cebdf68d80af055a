"""The embedded default: SQLite in WAL mode, safe with several gunicorn workers.

One short-lived connection per operation (cheap for SQLite, and safe across threads and forked
workers); ``busy_timeout`` makes concurrent writers wait instead of failing. Migrations are
versioned and applied at start-up inside ``BEGIN IMMEDIATE`` so that two processes starting
at once apply each exactly once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from .base import FeedbackRecord, FeedbackResult, IssuedCard, RuleReport, StorageError

MIGRATIONS: tuple[str, ...] = (
    # 1: the issued-card ledger and feedback
    """
    CREATE TABLE issued_cards (
        card_uuid     TEXT PRIMARY KEY,
        service_id    TEXT NOT NULL,
        rule_id       TEXT NOT NULL,
        indicator     TEXT NOT NULL,
        hook_instance TEXT NOT NULL,
        issued_at     TEXT NOT NULL
    );
    CREATE INDEX issued_cards_rule ON issued_cards (rule_id);
    CREATE TABLE feedback (
        id                   INTEGER PRIMARY KEY AUTOINCREMENT,
        service_id           TEXT NOT NULL,
        card_uuid            TEXT NOT NULL,
        rule_id              TEXT,
        known_card           INTEGER NOT NULL,
        outcome              TEXT NOT NULL,
        outcome_timestamp    TEXT NOT NULL,
        accepted_suggestions TEXT NOT NULL,
        override_system      TEXT,
        override_code        TEXT,
        override_display     TEXT,
        user_comment         TEXT,
        received_at          TEXT NOT NULL,
        UNIQUE (card_uuid, outcome, outcome_timestamp)
    );
    CREATE INDEX feedback_rule ON feedback (rule_id);
    """,
    # 2: the JWT replay store (jti per issuer, kept until the token's exp + leeway)
    """
    CREATE TABLE seen_jti (
        issuer     TEXT NOT NULL,
        jti        TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (issuer, jti)
    );
    CREATE INDEX seen_jti_expiry ON seen_jti (expires_at);
    """,
)

#: How often (in the callers' time) expired jti rows are purged.
JTI_PURGE_INTERVAL_S = 300


class SqliteStore:
    def __init__(self, path: str | Path, *, timeout_s: float = 5.0) -> None:
        self.path = str(path)
        self.timeout_s = timeout_s
        self._next_jti_purge: float | None = None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the database: {type(exc).__name__}") from exc
        try:
            connection.execute("PRAGMA busy_timeout = %d" % int(self.timeout_s * 1000))
            connection.execute("PRAGMA foreign_keys = ON")
            yield connection
        except sqlite3.Error as exc:
            raise StorageError(f"database error: {type(exc).__name__}") from exc
        finally:
            connection.close()

    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version. Idempotent, concurrent-safe."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = db.execute("SELECT max(version) FROM schema_version").fetchone()
                current = row[0] or 0
                for version, script in enumerate(MIGRATIONS, start=1):
                    if version > current:
                        for statement in filter(str.strip, script.split(";")):
                            db.execute(statement)
                        db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return len(MIGRATIONS)

    def check(self) -> None:
        with self._connect() as db:
            db.execute("SELECT 1 FROM issued_cards LIMIT 1").fetchall()

    def record_cards(self, cards: Sequence[IssuedCard]) -> None:
        if not cards:
            return
        with self._connect() as db:
            db.executemany(
                "INSERT OR IGNORE INTO issued_cards VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.card_uuid,
                        c.service_id,
                        c.rule_id,
                        c.indicator,
                        c.hook_instance,
                        c.issued_at.isoformat(),
                    )
                    for c in cards
                ],
            )

    def record_feedback(
        self, service_id: str, entries: Sequence[FeedbackRecord], received_at: datetime
    ) -> FeedbackResult:
        stored = duplicates = unknown = 0
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for entry in entries:
                    row = db.execute(
                        "SELECT rule_id FROM issued_cards WHERE card_uuid = ?", (entry.card_uuid,)
                    ).fetchone()
                    rule_id = row[0] if row else None
                    cursor = db.execute(
                        "INSERT OR IGNORE INTO feedback (service_id, card_uuid, rule_id,"
                        " known_card, outcome, outcome_timestamp, accepted_suggestions,"
                        " override_system, override_code, override_display, user_comment,"
                        " received_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            service_id,
                            entry.card_uuid,
                            rule_id,
                            int(row is not None),
                            entry.outcome,
                            entry.outcome_timestamp.isoformat(),
                            json.dumps(list(entry.accepted_suggestions)),
                            entry.override_system,
                            entry.override_code,
                            entry.override_display,
                            entry.user_comment,
                            received_at.isoformat(),
                        ),
                    )
                    if cursor.rowcount == 0:
                        duplicates += 1
                    else:
                        stored += 1
                        unknown += row is None
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return FeedbackResult(stored, duplicates, unknown)

    def feedback_report(self) -> list[RuleReport]:
        reports: dict[str, RuleReport] = {}
        with self._connect() as db:
            for rule_id, issued in db.execute(
                "SELECT rule_id, count(*) FROM issued_cards GROUP BY rule_id"
            ):
                reports.setdefault(rule_id, RuleReport(rule_id)).issued = issued
            for rule_id, outcome, count in db.execute(
                "SELECT coalesce(rule_id, '(unknown card)'), outcome, count(*) FROM feedback"
                " GROUP BY 1, 2"
            ):
                report = reports.setdefault(rule_id, RuleReport(rule_id))
                setattr(report, outcome, count)
            for rule_id, reason, count in db.execute(
                "SELECT coalesce(rule_id, '(unknown card)'),"
                " coalesce(override_display, override_code), count(*) FROM feedback"
                " WHERE outcome = 'overridden' AND override_code IS NOT NULL GROUP BY 1, 2"
            ):
                reports.setdefault(rule_id, RuleReport(rule_id)).override_reasons[reason] = count
        return sorted(reports.values(), key=lambda r: r.rule_id)

    def remember_jti(self, issuer: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """True the first time (issuer, jti) is seen, False on a replay. One atomic statement
        (the primary key decides), so two workers racing with the same token cannot both win;
        a row whose token has expired no longer counts and is taken over."""
        moment, until = int(now.timestamp()), int(expires_at.timestamp())
        with self._connect() as db:
            if self._next_jti_purge is None or moment >= self._next_jti_purge:
                self._next_jti_purge = moment + JTI_PURGE_INTERVAL_S
                db.execute("DELETE FROM seen_jti WHERE expires_at < ?", (moment,))
            cursor = db.execute(
                "INSERT INTO seen_jti (issuer, jti, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at"
                " WHERE seen_jti.expires_at < ?",
                (issuer, jti, until, moment),
            )
            return cursor.rowcount == 1

    def feedback_count(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT count(*) FROM feedback").fetchone()[0]


def open_store(url_or_path: str) -> SqliteStore:
    """A migrated store. ``sqlite:///path`` or a plain path."""
    path = (
        url_or_path.removeprefix("sqlite:///")
        if url_or_path.startswith("sqlite:///")
        else url_or_path
    )
    store = SqliteStore(path)
    store.migrate()
    return store
