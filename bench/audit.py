"""The audit row of ``make bench``: ``cds-service audit`` over synthetic populations.

    .venv/bin/python -m bench.run --only audit [--audit-sizes 10000,100000]

Each measurement is a fresh ``cds-service audit`` process (as an operator runs it), so its
peak memory is its own: the largest resident set of the audit process or any of its worker
processes. Reported per run: wall seconds, patients per second (wall), CPU seconds of the
whole process tree, and peak memory. Then the speed-up from 1 to 2 worker processes on the
smallest population (wall time, best of two runs each: noise on a shared machine only ever
adds time), and whether patients per second hold as the population grows tenfold (linear
growth in patients).

Targets: linear growth in patients; ``TARGET_SPEEDUP`` from 1 to 2 cores. On a machine whose
cores are busy with other work, the speed-up cannot show: the load average is printed.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

AS_OF = "2026-06-15"
TARGET_SPEEDUP = 1.7
#: Patients per second at ten times the population may fall at most this much (noise).
LINEAR_TOLERANCE = 0.8


@dataclass(frozen=True)
class Run:
    patients: int
    workers: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float

    @property
    def per_s(self) -> float:
        return self.patients / self.seconds


def synthesise(workdir: Path, patients: int) -> Path:
    folder = workdir / f"population-{patients}"
    if not folder.exists():
        _cli(["synth", "--patients", str(patients), "--out", str(folder), "--as-of", AS_OF])
    return folder


def audit(population: Path, workdir: Path, workers: int) -> Run:
    out = workdir / f"out-{population.name}-{workers}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    _cli(
        [
            "audit",
            str(population),
            "--out",
            str(out),
            "--as-of",
            AS_OF,
            "--workers",
            str(workers),
        ]
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    return Run(
        summary["population"]["patients"],
        workers,
        seconds,
        cpu,
        summary["run"]["peak_rss_mb"],
    )


def _cli(args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    subprocess.run(
        [sys.executable, "-m", "cds_service.cli", *args],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def best(population: Path, workdir: Path, workers: int, runs: int) -> Run:
    return min((audit(population, workdir, workers) for _ in range(runs)), key=lambda r: r.seconds)


def run(workdir: Path, sizes: list[int], out) -> bool:
    print(
        f"  {'patients':>9} {'workers':>7} {'wall s':>8} {'patients/s':>11} {'CPU s':>8}"
        f" {'patients/CPU s':>15} {'peak MB':>8}",
        file=out,
    )
    rows: list[Run] = []

    def show(r: Run) -> None:
        rows.append(r)
        print(
            f"  {r.patients:9,} {r.workers:7} {r.seconds:8.1f} {r.per_s:11.0f} "
            f"{r.cpu_seconds:8.1f} {r.patients / r.cpu_seconds:15.0f} {r.peak_rss_mb:8.0f}",
            file=out,
        )

    smallest = sizes[0]
    populations = {n: synthesise(workdir, n) for n in sizes}
    one = best(populations[smallest], workdir, 1, runs=2)
    show(one)
    two = best(populations[smallest], workdir, 2, runs=2)
    show(two)
    for n in sizes[1:]:
        show(audit(populations[n], workdir, 2))
    speedup = one.seconds / two.seconds
    met = speedup >= TARGET_SPEEDUP
    print(
        f"  [{'met' if met else 'MISSED'}] speed-up 1 -> 2 workers at {smallest:,} patients:"
        f" {speedup:.2f}x (target >= {TARGET_SPEEDUP}x; load average "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())})",
        file=out,
    )
    ok = met
    two_worker = [r for r in rows if r.workers == 2]
    for small, large in zip(two_worker, two_worker[1:]):
        linear = large.per_s >= LINEAR_TOLERANCE * small.per_s
        ok &= linear
        print(
            f"  [{'met' if linear else 'MISSED'}] linear in patients: {large.patients:,} at"
            f" {large.per_s:.0f}/s vs {small.patients:,} at {small.per_s:.0f}/s"
            f" (peak memory {small.peak_rss_mb:.0f} -> {large.peak_rss_mb:.0f} MB)",
            file=out,
        )
    return ok
