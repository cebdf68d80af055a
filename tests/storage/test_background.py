"""``ProcessThread``: one thread per process, started afresh in a fork (a gunicorn worker),
closed at exit. The ledger writer and the WAL checkpointer rely on it."""

from __future__ import annotations

import os
import threading

from cds_service.storage.background import ProcessThread


class Recorder(ProcessThread):
    thread_name = "test-recorder"

    def __init__(self) -> None:
        super().__init__()
        self.freshened = 0
        self.ran: list[int] = []
        self._go = threading.Event()

    def _fresh(self) -> None:
        self.freshened += 1
        self._go = threading.Event()

    def _run(self) -> None:
        self._go.wait()
        if not self._closed:
            self.ran.append(os.getpid())

    def close(self) -> None:
        if self._running_here():
            self._closed = True
            self._go.set()

    def work(self) -> None:
        self._start()
        self._go.set()


def _ran_within(recorder: Recorder, seconds: float = 5) -> bool:
    for thread in threading.enumerate():
        if thread.name == "test-recorder":
            thread.join(seconds)
    return os.getpid() in recorder.ran


def test_the_thread_starts_once_in_the_process_that_first_needs_it():
    recorder = Recorder()
    assert not recorder._running_here()
    recorder.work()
    recorder._start()  # a second use starts nothing more
    assert recorder.freshened == 1 and recorder._running_here()
    assert _ran_within(recorder)
    recorder.close()
    assert not recorder._running_here()


def test_a_fork_starts_its_own_thread_with_fresh_state():
    recorder = Recorder()
    recorder._start()  # the parent's thread, waiting on the parent's event
    child = os.fork()
    if child == 0:  # the child: inherited state, no thread
        try:
            ok = not recorder._running_here()
            recorder.work()
            ok = ok and recorder.freshened == 2 and _ran_within(recorder)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert recorder.freshened == 1 and recorder.ran == []  # the parent's thread still waits
    recorder.close()
