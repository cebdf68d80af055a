"""The card ledger's background writer: the invocation never waits for it, its queue is
bounded (a full queue drops and counts), entries go in batches, a database failure drops and
counts, and closing writes what is queued."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from cds_service.storage import IssuedCard, LedgerWriter, StorageError
from cds_service.web.app import create_app
from tests.test_conformance import folate_request

MOMENT = datetime(2026, 6, 15, tzinfo=timezone.utc)


def card(number: int) -> IssuedCard:
    return IssuedCard(f"uuid-{number}", "svc", "rule", "info", "hook-1", MOMENT)


class BlockedDatabase:
    """A write function that blocks until released, recording each batch it was given."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    def __call__(self, cards) -> None:
        self.entered.set()
        assert self.release.wait(30)
        self.batches.append(len(cards))


def test_an_invocation_does_not_wait_for_a_stuck_ledger(settings, core):
    database = BlockedDatabase()
    core.store.record_cards = database  # the database hangs on every ledger write
    client = create_app(settings, core).test_client()
    for _ in range(3):
        response = client.post("/cds-services/b12-order-sign", json=folate_request())
        assert response.status_code == 200 and response.get_json()["cards"]
    assert database.entered.wait(10) and not database.release.is_set()
    database.release.set()
    assert core.flush_ledger(10)
    assert sum(database.batches) == 3


def test_a_full_queue_drops_and_counts_without_blocking():
    database = BlockedDatabase()
    drops: list[tuple[int, str]] = []
    writer = LedgerWriter(database, queue_size=5, on_drop=lambda n, why: drops.append((n, why)))
    writer.submit([card(0)])
    assert database.entered.wait(10)  # the thread holds card 0; the queue is empty
    dropped = writer.submit([card(n) for n in range(1, 11)])  # 10 for 5 places
    assert dropped == 5 and drops == [(5, "queue-full")] and writer.dropped == 5
    database.release.set()
    assert writer.flush(10)
    assert sum(database.batches) == 6


def test_entries_are_written_in_batches():
    database = BlockedDatabase()
    writer = LedgerWriter(database, batch_size=20)
    writer.submit([card(0)])
    assert database.entered.wait(10)
    writer.submit([card(n) for n in range(1, 51)])
    database.release.set()
    assert writer.flush(10)
    assert database.batches == [1, 20, 20, 10]


def test_a_database_failure_drops_the_batch_and_counts_it():
    drops: list[tuple[int, str]] = []

    def down(cards) -> None:
        raise StorageError("database error: OperationalError")

    writer = LedgerWriter(down, on_drop=lambda n, why: drops.append((n, why)))
    writer.submit([card(1), card(2)])
    assert writer.flush(10)
    assert sum(n for n, _ in drops) == 2 and {why for _, why in drops} == {"database"}


def test_close_writes_what_is_queued():
    written: list[str] = []
    gate = threading.Event()

    def slow(cards) -> None:
        gate.wait(0.05)
        written.extend(c.card_uuid for c in cards)

    writer = LedgerWriter(slow, batch_size=3)
    writer.submit([card(n) for n in range(10)])
    writer.close(timeout_s=30)
    assert sorted(written) == sorted(f"uuid-{n}" for n in range(10))
    writer.close()  # idempotent


def test_cards_issued_close_together_share_one_transaction_and_flush_does_not_wait_the_linger():
    batches: list[int] = []
    writer = LedgerWriter(lambda cards: batches.append(len(cards)), linger_s=60)
    for number in range(3):  # three invocations, one card each
        writer.submit([card(number)])
    # flush's bound (10 s) is far below the linger (60 s): it must ask for the write now.
    assert writer.flush(10)
    assert batches == [3]
    writer.submit([card(3)])
    assert writer.flush(10) and batches == [3, 1]


def test_a_lone_card_is_written_once_its_linger_is_over():
    database = BlockedDatabase()
    database.release.set()
    writer = LedgerWriter(database, linger_s=0.05)
    writer.submit([card(0)])
    assert database.entered.wait(10)  # nobody flushed: the linger alone let it through
    assert writer.flush(10) and database.batches == [1]
