"""Invocations counted cheaply: the denominator of each rule's firing rate per 1,000.

An invocation adds one to an in-process counter per (service, UTC day); the counter is written
to the store in one statement every ``flush_every`` invocations or ``flush_after_s`` seconds
(checked at the next invocation), before a feedback report is read, and at process exit. The
write that an invocation makes due runs on a background thread (one at a time): a slow or
frozen database never holds a call. A process that dies uncleanly loses at most one batch: a
rate off by a fraction of a per cent, never a card. A failed write keeps the counts for the
next try.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from datetime import date

from cds_service.storage import StorageError, Store

log = logging.getLogger("cds_service.invocation")

FLUSH_EVERY = 100
FLUSH_AFTER_S = 10.0


class InvocationTally:
    def __init__(
        self,
        store: Store | None,
        *,
        flush_every: int = FLUSH_EVERY,
        flush_after_s: float = FLUSH_AFTER_S,
        monotonic: Callable[[], float] = time.monotonic,
        on_failure: Callable[[], None] | None = None,
        background: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.store = store
        self.flush_every = max(1, flush_every)
        self.flush_after_s = flush_after_s
        self.monotonic = monotonic
        self.on_failure = on_failure
        self._pending: Counter[tuple[str, date]] = Counter()
        self._lock = threading.Lock()
        self._since = monotonic()
        self._flushing = threading.Lock()  # at most one background write in flight
        # How a due write is started; tests pass one that runs it in place.
        self.background = background or _daemon_thread
        if store is not None:
            _at_exit.add(self)

    def add(self, service_id: str, day: date) -> None:
        if self.store is None:
            return
        with self._lock:
            self._pending[(service_id, day)] += 1
            due = (
                sum(self._pending.values()) >= self.flush_every
                or self.monotonic() - self._since >= self.flush_after_s
            )
        if due and self._flushing.acquire(blocking=False):
            self.background(self._flush_then_release)

    def _flush_then_release(self) -> None:
        try:
            self._write()
        finally:
            self._flushing.release()

    def flush(self, wait_s: float = 2.0) -> None:
        """Write what is counted; a background write in flight is awaited (up to ``wait_s``)
        first, so that a report read afterwards includes it."""
        if self.store is None:
            return
        in_flight_done = self._flushing.acquire(timeout=wait_s)
        try:
            self._write()
        finally:
            if in_flight_done:
                self._flushing.release()

    def _write(self) -> None:
        assert self.store is not None
        with self._lock:
            batch, self._pending = self._pending, Counter()
            self._since = self.monotonic()
        if not batch:
            return
        try:
            self.store.count_invocations(dict(batch))
        except StorageError as exc:
            with self._lock:
                self._pending.update(batch)  # kept for the next flush
            if self.on_failure is not None:
                self.on_failure()
            log.error("invocation count write failed", extra={"error": str(exc)})


def _daemon_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, daemon=True).start()


_at_exit: weakref.WeakSet[InvocationTally] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for tally in list(_at_exit):
        try:
            tally.flush()
        except Exception:  # at exit: never a traceback instead of a clean shutdown
            pass
