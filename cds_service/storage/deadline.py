"""A hard limit on how long a caller waits for the database.

Socket and server-side timeouts cannot bound every stall: a PostgreSQL server stopped with
SIGSTOP still has its kernel acknowledge our packets (so TCP keepalives and
``tcp_user_timeout`` never fire, and ``statement_timeout`` is enforced by the frozen server),
and libpq's ``connect_timeout`` cannot be below 2 s. So the calls on the request path (the
replay store, feedback, the readiness probe; on SQLite, whose only wait is a file lock, they
bound that wait themselves, and only a due purge comes here) run in a small per-process pool
of threads and the caller waits at most its deadline; a call that overruns keeps its thread
until the database answers or its own timeouts end it, and when every thread is held that way,
further calls fail at once instead of queueing behind them. Likewise while an earlier call has
overrun its deadline and not returned (a stalled database): callers fail at once rather than
each spending its whole deadline, until the database answers that call.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from .base import StorageError

T = TypeVar("T")


class DeadlineExceeded(StorageError):
    """The database did not answer within the caller's deadline."""


class DeadlineRunner:
    def __init__(self, threads: int = 8, name: str = "cds-db") -> None:
        self.threads = threads
        self.name = name
        self._pid: int | None = None
        self._guard = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(threads)
        #: In-flight calls: id -> the moment (monotonic) their caller gave up or will.
        self._inflight: dict[int, float] = {}
        self._ids = 0

    def stalled(self) -> bool:
        """An earlier call has overrun its deadline and the database has not answered it."""
        now = time.monotonic()
        with self._guard:
            return any(deadline < now for deadline in self._inflight.values())

    def _pool(self) -> ThreadPoolExecutor:
        # Threads do not survive a fork: a gunicorn worker builds its own pool.
        if self._pid != os.getpid():
            with self._guard:
                if self._pid != os.getpid():
                    self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)
                    self._slots = threading.BoundedSemaphore(self.threads)
                    self._inflight = {}
                    self._pid = os.getpid()
        assert self._executor is not None
        return self._executor

    def run(self, function: Callable[[], T], timeout_s: float) -> T:
        """``function()``'s result, or DeadlineExceeded after ``timeout_s``; its own
        StorageError passes through."""
        pool = self._pool()
        if self.stalled():
            raise DeadlineExceeded("database stalled: an earlier call has not returned")
        slots = self._slots
        if not slots.acquire(blocking=False):
            raise DeadlineExceeded("database busy: earlier calls are still waiting for it")
        with self._guard:
            self._ids += 1
            call = self._ids
            self._inflight[call] = time.monotonic() + timeout_s
        inflight = self._inflight

        def finished(_: object) -> None:
            with self._guard:
                inflight.pop(call, None)
            slots.release()

        try:
            future = pool.submit(function)
        except RuntimeError:  # the interpreter is shutting down
            finished(None)
            raise DeadlineExceeded("database calls are shutting down") from None
        future.add_done_callback(finished)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            raise DeadlineExceeded(
                f"no answer from the database within {timeout_s:.2f} s"
            ) from None
