"""The audit driver: phase 1 (partition) then phase 2 (evaluate), as tasks on an executor.

Locally the executor is a process pool with one process per core by default (``workers=1``
runs in this process); with ``scheduler="tcp://host:port"`` it is a Dask distributed client
(``cluster.py``). Both run the same two task functions over the same task lists, so they
return the same counts.
"""

from __future__ import annotations

import logging
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from cds_service.domain.policy import Policy

from .evaluate import PartitionTask, evaluate_partition
from .ndjson import CHUNK_BYTES, chunks, cpu_count, export_files, input_bytes
from .partition import partition_chunk
from .tally import Tally

log = logging.getLogger("cds_service.audit")

MIN_CHUNK_BYTES = 1024 * 1024
#: Target size of one partition: phase 2 holds one partition's lines per task in memory.
PARTITION_BYTES = 8 * 1024 * 1024


@dataclass
class AuditOptions:
    inputs: list[str]
    as_of: datetime
    policy: Policy = field(default_factory=Policy)
    workers: int | None = None  # default: every core
    scheduler: str | None = None  # tcp://host:port: run on Dask distributed
    workdir: str | None = None  # partitions; default a temporary directory, removed after
    partitions: int | None = None  # default from the input size
    strict_fhir: bool = False
    worklist: str | None = None  # a CSV of patient ids (only when explicitly asked for)
    chunk_bytes: int | None = None  # default: input / (4 x workers), 1 to 16 MiB
    progress: TextIO | None = None  # a terminal to draw a progress bar on


@dataclass
class AuditResult:
    tally: Tally
    as_of: datetime
    workers: int
    partitions: int
    seconds: float
    peak_rss_mb: float
    backend: str

    @property
    def patients_per_s(self) -> float:
        return self.tally.population / self.seconds if self.seconds else 0.0


Executor = Callable[[Callable[[Any], Tally], Sequence[Any], str], Iterator[Tally]]


def run_audit(options: AuditOptions) -> AuditResult:
    started = time.perf_counter()
    files = export_files(options.inputs)
    if not files:
        raise FileNotFoundError("no NDJSON files found in the inputs")
    workers = options.workers or cpu_count()
    partitions = options.partitions or max(4 * workers, -(-input_bytes(files) // PARTITION_BYTES))
    # Phase 1 is parallel only if there are several chunks: a small export is split finer.
    chunk_bytes = options.chunk_bytes or min(
        CHUNK_BYTES, max(MIN_CHUNK_BYTES, input_bytes(files) // (4 * workers))
    )
    task_chunks = chunks(files, chunk_bytes)
    own_workdir = options.workdir is None
    workdir = options.workdir or tempfile.mkdtemp(prefix="cds-audit-")
    Path(workdir).mkdir(parents=True, exist_ok=True)
    log.info(
        "audit started",
        extra={"files": len(files), "chunks": len(task_chunks), "partitions": partitions},
    )
    try:
        with _executor(options, workers) as (execute, backend):
            tally = Tally()
            for part in execute(
                partial(partition_chunk, workdir=workdir, partitions=partitions),
                task_chunks,
                "reading",
            ):
                tally.merge(part)
            tasks = [
                PartitionTask(
                    index,
                    workdir,
                    options.policy,
                    options.as_of,
                    options.strict_fhir,
                    options.worklist is not None,
                )
                for index in range(partitions)
            ]
            for part in execute(evaluate_partition, tasks, "evaluating"):
                tally.merge(part)
        if options.worklist is not None:
            _join_worklist(workdir, partitions, options.worklist)
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.perf_counter() - started
    result = AuditResult(tally, options.as_of, workers, partitions, seconds, peak_rss_mb(), backend)
    log.info(
        "audit finished",
        extra={
            "patients": tally.population,
            "seconds": round(seconds, 2),
            "backend": backend,
            "workers": workers,
        },
    )
    return result


@contextmanager
def _executor(options: AuditOptions, workers: int) -> Iterator[tuple[Executor, str]]:
    bar = Progress(options.progress)
    if options.scheduler:
        from .cluster import dask_executor  # the optional extra: imported only when asked

        with dask_executor(options.scheduler, bar) as execute:
            yield execute, "dask"
        return
    if workers <= 1:

        def inline(fn, items, label):
            bar.start(label, len(items))
            for item in items:
                yield fn(item)
                bar.step()
            bar.done()

        yield inline, "local"
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:

        def pooled(fn, items, label):
            bar.start(label, len(items))
            futures = [pool.submit(fn, item) for item in items]
            for future in as_completed(futures):
                yield future.result()
                bar.step()
            bar.done()

        yield pooled, "local"


def _join_worklist(workdir: str, partitions: int, target: str) -> None:
    with open(target, "w", encoding="utf-8", newline="") as out:
        out.write("patient_id,hook,rule_id,indicator,mode\n")
        for index in range(partitions):
            part = Path(workdir) / "worklist" / f"part-{index:05d}.csv"
            if part.exists():
                with open(part, encoding="utf-8") as stream:
                    shutil.copyfileobj(stream, out)


def peak_rss_mb() -> float:
    """The largest resident set of this process or any of its (finished) worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return round(max(own, children) * scale / 1024 / 1024, 1)


class Progress:
    """A one-line progress bar, drawn only on a terminal (never into a log or a pipe)."""

    WIDTH = 30

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream if stream is not None and _isatty(stream) else None
        self.label, self.total, self.done_ = "", 0, 0

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done_ = label, total, 0
        self._draw()

    def step(self) -> None:
        self.done_ += 1
        self._draw()

    def done(self) -> None:
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        if self.stream is None:
            return
        filled = self.WIDTH * self.done_ // self.total if self.total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label:>10} [{bar}] {self.done_}/{self.total}")
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def default_workers() -> int:
    return cpu_count()
