"""The audit on Dask distributed: the same task functions, submitted to a scheduler.

``cds-service audit --scheduler tcp://host:port`` connects a client to an existing scheduler
(a Dask deployment, or ``dask scheduler`` + ``dask worker`` by hand). Each chunk and each
partition is one task; results (counts) come back to this process. The workers must have this
package (and the services module) installed, and see the input files and ``--work-dir`` at
the same paths: a shared filesystem. Dask is an optional extra (``pip install '.[audit]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def dask_executor(address: str, bar: Any) -> Iterator[Any]:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise RuntimeError(
            "--scheduler needs Dask distributed: pip install 'b12-cds-service[audit]'"
        ) from None
    with Client(address, timeout="30s") as client:

        def execute(fn, items, label):
            bar.start(label, len(items))
            # pure=False: a task is a side effect (partition files), never deduplicated.
            futures = client.map(fn, list(items), pure=False)
            try:
                for future in as_completed(futures):
                    yield future.result()
                    bar.step()
            finally:
                client.cancel(futures)
            bar.done()

        yield execute
