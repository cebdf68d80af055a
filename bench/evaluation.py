"""In-process evaluation cost: CPU time per invocation, no HTTP.

    .venv/bin/python -m bench.evaluation [--repeat N]

Prints CPU milliseconds per call (``time.process_time``) for a typical order-sign request
(40 observations, 10 medications, 8 conditions, 1 draft order), the folic-acid critical case,
and the scaling series 10 / 100 / 1,000 / 10,000 observations, with each row's ratio to the
typical case measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.workloads import NOW, order_sign
from cds_service.cdshooks.application import CdsApplication
from hooks import registry


def cpu_ms(core: CdsApplication, body: dict, repeat: int) -> float:
    core.invoke("b12-order-sign", body, now=NOW)  # warm caches
    samples = []
    for _ in range(max(3, repeat // 10)):
        start = time.process_time()
        for _ in range(10):
            core.invoke("b12-order-sign", body, now=NOW)
        samples.append((time.process_time() - start) / 10 * 1000)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    core = CdsApplication(registry=registry())
    rows = [
        ("typical order-sign (40 obs, 10 meds, 8 conditions)", order_sign(), args.repeat),
        ("folic-acid critical case", order_sign(folic_acid=True), args.repeat),
    ] + [
        (f"{n:>6} observations", order_sign(n_obs=n), max(10, args.repeat * 40 // max(n, 40)))
        for n in (10, 100, 1000, 10000)
    ]
    baseline = None
    print(f"{'workload':55} {'CPU ms/call':>12} {'x typical':>10} {'us/obs':>8}")
    for label, body, repeat in rows:
        ms = cpu_ms(core, body, repeat)
        baseline = baseline or ms
        n_obs = sum(
            len(v.get("entry", []))
            for k, v in body["prefetch"].items()
            if k.endswith("Labs") or k == "bloodCounts"
        )
        print(f"{label:55} {ms:12.3f} {ms / baseline:10.2f} {ms * 1000 / n_obs:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
