"""The tables as the queries see them (after every migration in ``migrations.py``).

One definition for both backends; where SQLite and PostgreSQL differ, a column type says so
(``UtcTimestamp``), not the queries. ``tests/storage`` checks that the migrated database has
exactly these columns.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UtcTimestamp(TypeDecorator[datetime]):
    """A moment in UTC: ``timestamptz`` on PostgreSQL; on SQLite, ISO 8601 text in UTC
    (``2026-06-15T12:00:00+00:00``), the format the first, standard-library version of the
    store wrote, so that old rows still compare (and de-duplicate) with new ones. All values
    share one offset, so text order is time order. Naive values are taken as UTC."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.isoformat()

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


#: An auto-incrementing key: BIGINT on PostgreSQL; SQLite's rowid alias must be INTEGER.
RowId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

issued_cards = Table(
    "issued_cards",
    metadata,
    Column("card_uuid", Text, primary_key=True),
    Column("service_id", Text, nullable=False),
    Column("rule_id", Text, nullable=False),
    Column("indicator", Text, nullable=False),
    Column("hook_instance", Text, nullable=False),
    Column("issued_at", UtcTimestamp, nullable=False),
    Column("silent", Boolean, nullable=False, server_default=false()),
)

#: Invocations per service and UTC day (ISO date text): the firing rates' denominator.
invocation_counts = Table(
    "invocation_counts",
    metadata,
    Column("service_id", Text, primary_key=True),
    Column("day", Text, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("service_id", Text, nullable=False),
    Column("card_uuid", Text, nullable=False),
    Column("rule_id", Text),
    Column("known_card", Boolean, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("outcome_timestamp", UtcTimestamp, nullable=False),
    Column("accepted_suggestions", Text, nullable=False),  # a JSON array of suggestion ids
    Column("override_system", Text),
    Column("override_code", Text),
    Column("override_display", Text),
    Column("user_comment", Text),
    Column("received_at", UtcTimestamp, nullable=False),
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp"),
    sqlite_autoincrement=True,
)

seen_jti = Table(
    "seen_jti",
    metadata,
    Column("issuer", Text, primary_key=True),
    Column("jti", Text, primary_key=True),
    # epoch seconds; 64-bit so that a token expiring after 2038 still fits
    Column("expires_at", BigInteger, nullable=False),
)
