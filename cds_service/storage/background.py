"""One background thread per process, for the store's writers that never block a request
(the card ledger's, the WAL checkpointer).

gunicorn forks its workers after the app and its store are built: a fork inherits a
writer's state (its queue, its events) but not its thread. So a writer starts its thread in
the process that first needs it, with that state made afresh, and registers its ``close``
to run when the process exits.
"""

from __future__ import annotations

import atexit
import os
import threading


class ProcessThread:
    """Subclasses set ``thread_name`` and implement ``_fresh`` (the state a fork must not
    share), ``_run`` (the thread's loop) and ``close``; they call ``_start`` before each use
    and check ``_running_here`` in ``close``."""

    thread_name = "cds-background"

    def __init__(self) -> None:
        self._pid: int | None = None
        self._guard = threading.Lock()
        self._closed = False

    def _running_here(self) -> bool:
        """Started in this process and not closed."""
        return self._pid == os.getpid() and not self._closed

    def _start(self) -> None:
        if self._pid == os.getpid():
            return
        with self._guard:
            if self._pid == os.getpid():
                return
            self._fresh()
            self._closed = False
            threading.Thread(target=self._run, name=self.thread_name, daemon=True).start()
            self._pid = os.getpid()
            atexit.register(self.close)

    def _fresh(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
