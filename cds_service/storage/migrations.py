"""Versioned schema migrations, applied at start-up by every process that opens the store.

Each step is frozen: it declares the DDL of its own version and never changes once released
(a change is a new step). ``schema_version`` holds one row per applied step.

Two replicas (or gunicorn's master and a ``feedback-report`` run) may start at once, so the
whole upgrade runs in ONE transaction that first takes a lock every other migrator waits for:
``pg_advisory_xact_lock`` on PostgreSQL (released at commit or rollback), ``BEGIN IMMEDIATE``
on SQLite (the database's write lock). The second process then finds the steps applied and
does nothing. Both databases have transactional DDL, so a failed step leaves no half schema.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    text,
)

from .tables import RowId, UtcTimestamp, schema_version

log = logging.getLogger("cds_service.storage")

#: pg_advisory_xact_lock key: any fixed 64-bit number unique to this application.
MIGRATION_LOCK_KEY = 0x0B12_CD5_0001


def _v1_ledger_and_feedback(db: Connection) -> None:
    meta = MetaData()
    cards = Table(
        "issued_cards",
        meta,
        Column("card_uuid", Text, primary_key=True),
        Column("service_id", Text, nullable=False),
        Column("rule_id", Text, nullable=False),
        Column("indicator", Text, nullable=False),
        Column("hook_instance", Text, nullable=False),
        Column("issued_at", UtcTimestamp, nullable=False),
    )
    Index("issued_cards_rule", cards.c.rule_id)
    feedback = Table(
        "feedback",
        meta,
        Column("id", RowId, primary_key=True, autoincrement=True),
        Column("service_id", Text, nullable=False),
        Column("card_uuid", Text, nullable=False),
        Column("rule_id", Text),
        Column("known_card", Boolean, nullable=False),
        Column("outcome", Text, nullable=False),
        Column("outcome_timestamp", UtcTimestamp, nullable=False),
        Column("accepted_suggestions", Text, nullable=False),
        Column("override_system", Text),
        Column("override_code", Text),
        Column("override_display", Text),
        Column("user_comment", Text),
        Column("received_at", UtcTimestamp, nullable=False),
        UniqueConstraint("card_uuid", "outcome", "outcome_timestamp"),
        sqlite_autoincrement=True,
    )
    Index("feedback_rule", feedback.c.rule_id)
    meta.create_all(db)


def _v2_replay_store(db: Connection) -> None:
    meta = MetaData()
    seen = Table(
        "seen_jti",
        meta,
        Column("issuer", Text, primary_key=True),
        Column("jti", Text, primary_key=True),
        Column("expires_at", BigInteger, nullable=False),
    )
    Index("seen_jti_expiry", seen.c.expires_at)
    meta.create_all(db)


def _v3_ledger_retention(db: Connection) -> None:
    # The periodic purge deletes by age (CDS_LEDGER_RETENTION_DAYS).
    meta = MetaData()
    cards = Table("issued_cards", meta, Column("issued_at", UtcTimestamp))
    Index("issued_cards_issued_at", cards.c.issued_at).create(db)


def _v4_silent_mode(db: Connection) -> None:
    # Silent rules (site policy rules.<id>.mode) record their findings in the ledger, marked;
    # invocations are counted per service and day, the denominator of the firing rates.
    # Existing rows were all shown.
    db.execute(text("ALTER TABLE issued_cards ADD COLUMN silent BOOLEAN NOT NULL DEFAULT FALSE"))
    meta = MetaData()
    counts = Table(
        "invocation_counts",
        meta,
        Column("service_id", Text, primary_key=True),
        Column("day", Text, primary_key=True),  # ISO date, UTC
        Column("count", BigInteger, nullable=False),
    )
    meta.create_all(db)
    Index("invocation_counts_day", counts.c.day).create(db)


#: In order; the position (from 1) is the version. Append only.
STEPS: tuple[Callable[[Connection], None], ...] = (
    _v1_ledger_and_feedback,
    _v2_replay_store,
    _v3_ledger_retention,
    _v4_silent_mode,
)
LATEST = len(STEPS)


def current_version(db: Connection) -> int:
    return db.execute(select(func.max(schema_version.c.version))).scalar() or 0


def migrate(engine: Engine) -> int:
    """Apply the pending steps; returns the schema version. Idempotent and safe to run from
    several processes at once (see the module docstring)."""
    with engine.connect() as db:
        if engine.dialect.name == "sqlite":
            db.execution_options(sqlite_begin="IMMEDIATE")
        with db.begin():
            if engine.dialect.name == "postgresql":
                # Another replica may hold the lock while it migrates: wait for it, not for
                # the short statement timeout that guards ordinary queries.
                db.execute(text("SET LOCAL statement_timeout = 0"))
                db.execute(text("SET LOCAL lock_timeout = '120s'"))
                db.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            schema_version.create(db, checkfirst=True)
            current = current_version(db)
            for version, step in enumerate(STEPS, start=1):
                if version > current:
                    step(db)
                    db.execute(insert(schema_version).values(version=version))
                    log.info("schema migrated", extra={"version": version})
    if current > LATEST:
        # A newer release migrated this database (a rolling upgrade): steps are additive, so
        # this release keeps working with the columns it knows.
        log.warning("database schema is newer than this release", extra={"version": current})
    return max(current, LATEST)
