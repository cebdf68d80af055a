"""Migration 4 on both backends: silent findings in the ledger, and invocation counts (the
firing rates' denominator), purged with the ledger's retention."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Column, MetaData, Table, insert, inspect

from cds_service.storage import IssuedCard, SqlStore, migrations, open_store, tables
from tests.storage.test_store import SERVICE, T0, card, report


def test_the_schema_has_the_silent_column_and_the_invocation_counts(store):
    inspector = inspect(store.engine)
    for table in (tables.issued_cards, tables.invocation_counts):
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name


def test_silent_findings_are_counted_apart_from_shown_cards(store):
    store.record_cards(
        [
            card("shown-1"),
            IssuedCard("silent-1", SERVICE, "folate-before-b12", "critical", "h", T0, True),
            IssuedCard("silent-2", SERVICE, "pregnancy-b12", "warning", "h", T0, True),
        ]
    )
    rows = report(store)
    assert (rows["folate-before-b12"].issued, rows["folate-before-b12"].silent) == (1, 1)
    assert (rows["pregnancy-b12"].issued, rows["pregnancy-b12"].silent) == (0, 1)
    assert rows["pregnancy-b12"].invocations == 0
    assert rows["pregnancy-b12"].silent_per_1000 is None  # no invocations counted yet


def test_invocation_counts_add_up_per_service_and_day(store):
    day, next_day = T0.date(), (T0 + timedelta(days=1)).date()
    store.count_invocations({(SERVICE, day): 3, ("b12-patient-view", day): 2})
    store.count_invocations({(SERVICE, day): 4, (SERVICE, next_day): 1, ("x", day): 0})
    store.record_cards([card("c1")])
    rows = report(store)
    assert rows["folate-before-b12"].invocations == 10
    assert rows["folate-before-b12"].shown_per_1000 == 100.0
    assert store.row_counts()["invocation_counts"] == 3


def test_retention_purges_invocation_days_with_the_cards(database_url):
    store = open_store(database_url, retention_days=30)
    store.count_invocations(
        {(SERVICE, (T0 - timedelta(days=40)).date()): 7, (SERVICE, T0.date()): 5}
    )
    store.record_cards([card("recent")])
    store.purge_ledger(now=T0)
    assert report(store)["folate-before-b12"].invocations == 5
    store.close()


def test_cards_recorded_before_migration_4_count_as_shown(database_url, monkeypatch):
    monkeypatch.setattr(migrations, "STEPS", migrations.STEPS[:3])
    monkeypatch.setattr(migrations, "LATEST", 3)
    old = SqlStore(database_url)
    assert old.migrate() == 3
    v3_cards = Table(
        "issued_cards",
        MetaData(),
        *(Column(c.name, c.type) for c in tables.issued_cards.columns if c.name != "silent"),
    )
    with old.engine.begin() as db:
        db.execute(
            insert(v3_cards).values(
                card_uuid="v3",
                service_id=SERVICE,
                rule_id="r",
                indicator="info",
                hook_instance="h",
                issued_at=T0,
            )
        )
    old.close()
    monkeypatch.undo()
    store = open_store(database_url)
    rows = report(store)
    assert (rows["r"].issued, rows["r"].silent) == (1, 0)
    store.close()
