"""The card ledger's background writer: the invocation hands its issued cards over and returns.

One writer per process (gunicorn workers are forks; the thread starts in the process that
first uses it). Entries wait in a bounded queue and are inserted in batches: the writer lets a
batch gather for up to ``LINGER_S`` after its first entry (one transaction for many cards, not
one per card: under load that was the largest cost of a call that shows a card). When the queue is
full they are dropped and counted (``on_drop``), and when the database fails a batch is
dropped and counted the same way: a gap in the ledger costs feedback attribution, never a
card. ``flush`` waits (bounded) until what is queued is written: on graceful shutdown
(gunicorn's ``worker_exit``, and ``atexit``) and before feedback is stored, so that feedback
about a card this process has just issued finds it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .background import ProcessThread
from .base import IssuedCard, StorageError

log = logging.getLogger("cds_service.storage")

QUEUE_SIZE = 10_000
BATCH_SIZE = 200
#: How long a batch may gather before it is written. Far below the time a clinician takes to
#: send feedback on a card, and feedback first waits for this process's queue (``flush``).
LINGER_S = 0.2
#: The longest shutdown waits for the queue to be written.
SHUTDOWN_FLUSH_S = 5.0
#: Drops are counted every time but logged at most this often (with the count since).
DROP_LOG_INTERVAL_S = 60.0


class LedgerWriter(ProcessThread):
    thread_name = "cds-ledger"

    def __init__(
        self,
        write: Callable[[Sequence[IssuedCard]], None],
        *,
        queue_size: int = QUEUE_SIZE,
        batch_size: int = BATCH_SIZE,
        linger_s: float = LINGER_S,
        on_drop: Callable[[int, str], None] | None = None,
    ) -> None:
        """``write`` inserts one batch (``Store.record_cards``); ``on_drop(count, reason)``
        is told of every entry lost (``queue-full`` or ``database``)."""
        super().__init__()
        self._write = write
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.on_drop = on_drop
        self.dropped = 0
        self._unlogged = 0
        self._next_log = 0.0
        self._queue: queue.Queue[IssuedCard | None] = queue.Queue(queue_size)  # None: stop
        self._idle = threading.Condition()
        self._write_now = threading.Event()
        self._pending = 0
        self._failing = False
        self._batch_started: float | None = None

    @property
    def healthy(self) -> bool:
        """The last batch was written and none has been waiting on the database for long:
        worth waiting a moment for (``flush``) before feedback is attributed."""
        started = self._batch_started
        return not self._failing and (started is None or time.monotonic() - started < 0.1)

    # -- the invocation's side: never blocks ----------------------------------------------
    def submit(self, cards: Sequence[IssuedCard]) -> int:
        """Queue ``cards``; returns how many were dropped because the queue is full."""
        self._start()
        dropped = 0
        for card in cards:
            try:
                with self._idle:
                    self._pending += 1
                self._queue.put_nowait(card)
            except queue.Full:
                with self._idle:
                    self._pending -= 1
                dropped += 1
        if dropped:
            self._dropped(dropped, "queue-full")
        return dropped

    def flush(self, timeout_s: float) -> bool:
        """Wait until every queued entry is written or dropped; False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        if self._pending:
            self._write_now.set()  # write now, without waiting out the batch's linger
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout_s: float = SHUTDOWN_FLUSH_S) -> None:
        """Flush (bounded) and stop the thread; idempotent."""
        if not self._running_here():
            return
        flushed = self.flush(timeout_s)
        self._closed = True
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        if not flushed:
            lost = self._pending
            log.error("ledger not flushed at shutdown", extra={"count": lost})

    @property
    def pending(self) -> int:
        return self._pending

    # -- the writer thread ----------------------------------------------------------------
    def _fresh(self) -> None:
        self._queue = queue.Queue(self.queue_size)
        self._idle = threading.Condition()
        self._write_now = threading.Event()
        self._pending = 0

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            # Gather: sleep rather than wait on the queue, so that the invocations' puts do
            # not wake this thread one card at a time; ``flush`` cuts the sleep short.
            self._write_now.wait(self.linger_s)
            self._write_now.clear()
            batch = [first]
            while len(batch) < self.batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write_batch(batch)

    def _write_batch(self, batch: list[IssuedCard]) -> None:
        self._batch_started = time.monotonic()
        try:
            self._write(batch)
            self._failing = False
        except StorageError as exc:
            self._failing = True
            self._dropped(len(batch), "database", str(exc))
        except Exception as exc:  # a bug here must not kill the thread and stall the queue
            self._failing = True
            self._dropped(len(batch), "error", type(exc).__name__)
        finally:
            self._batch_started = None
            with self._idle:
                self._pending -= len(batch)
                if not self._pending:
                    self._idle.notify_all()

    def _dropped(self, count: int, reason: str, error: str | None = None) -> None:
        with self._guard:
            self.dropped += count
            self._unlogged += count
            now = time.monotonic()
            due = now >= self._next_log
            if due:
                count_since, self._unlogged = self._unlogged, 0
                self._next_log = now + DROP_LOG_INTERVAL_S
        try:
            if due:
                extra: dict[str, Any] = {"count": count_since, "reason": reason}
                if error:
                    extra["error"] = error
                log.error("ledger entries dropped", extra=extra)
            if self.on_drop is not None:
                self.on_drop(count, reason)
        except Exception:  # observability must not turn into a failure of its own
            pass
