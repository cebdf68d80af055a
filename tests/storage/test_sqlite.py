"""SQLite only: a database written by the first, standard-library version of the store (schema
version 2) is upgraded in place and its rows keep working; the file runs in WAL mode."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from cds_service.storage import FeedbackRecord, migrations, open_store

T0 = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)

LEGACY_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE issued_cards (
    card_uuid TEXT PRIMARY KEY, service_id TEXT NOT NULL, rule_id TEXT NOT NULL,
    indicator TEXT NOT NULL, hook_instance TEXT NOT NULL, issued_at TEXT NOT NULL);
CREATE INDEX issued_cards_rule ON issued_cards (rule_id);
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, service_id TEXT NOT NULL, card_uuid TEXT NOT NULL,
    rule_id TEXT, known_card INTEGER NOT NULL, outcome TEXT NOT NULL,
    outcome_timestamp TEXT NOT NULL, accepted_suggestions TEXT NOT NULL,
    override_system TEXT, override_code TEXT, override_display TEXT, user_comment TEXT,
    received_at TEXT NOT NULL, UNIQUE (card_uuid, outcome, outcome_timestamp));
CREATE INDEX feedback_rule ON feedback (rule_id);
CREATE TABLE seen_jti (
    issuer TEXT NOT NULL, jti TEXT NOT NULL, expires_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, jti));
CREATE INDEX seen_jti_expiry ON seen_jti (expires_at);
INSERT INTO schema_version VALUES (1), (2);
INSERT INTO issued_cards VALUES
    ('card-1', 'b12-order-sign', 'folate-before-b12', 'critical', 'h-1',
     '2026-06-15T12:00:00+00:00');
INSERT INTO feedback (service_id, card_uuid, rule_id, known_card, outcome, outcome_timestamp,
    accepted_suggestions, received_at) VALUES
    ('b12-order-sign', 'card-1', 'folate-before-b12', 1, 'accepted',
     '2026-06-15T12:00:00+00:00', '[]', '2026-06-15T12:00:01+00:00');
"""


def test_a_legacy_database_is_upgraded_and_its_rows_still_count(tmp_path):
    path = tmp_path / "legacy.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(LEGACY_SCHEMA)
    store = open_store(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        versions = [v for (v,) in db.execute("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, migrations.LATEST + 1))
    # The old row and the new format agree: a retry of the same feedback is a duplicate.
    again = store.record_feedback("b12-order-sign", [FeedbackRecord("card-1", "accepted", T0)], T0)
    assert (again.stored, again.duplicates) == (0, 1)
    folate = {r.rule_id: r for r in store.feedback_report()}["folate-before-b12"]
    assert (folate.issued, folate.accepted) == (1, 1)
    assert store.purge_ledger(now=T0) == 0  # no retention configured
    store.close()


def test_the_database_runs_in_wal_mode(tmp_path):
    path = tmp_path / "wal.sqlite3"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
