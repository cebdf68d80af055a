"""What compiling the FHIR reading buys under load: the service as installed (its modules
compiled, ``cds_service/compiled.py``) against the same code without its extensions, beside
the floor, all three served at once and measured in turns:

    .venv/bin/python -m bench.compiled [--rounds 5] [--seconds 4]

Each round runs wrk (c=8, the typical anonymous order-sign) against the floor, the compiled
service and the interpreted one, one after the other, counting user-space cycles and
instructions per request with perf; the medians of the rounds are printed. Turns, not one long
cell each: on a shared machine the load moves within a minute, and it then moves all three.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import ContextManager

from bench import loadgen, servers, workloads
from bench.run import InstructionMeter
from cds_service.compiled import MODULES

PATH = "/cds-services/b12-order-sign"


def interpreted_copy(destination: Path) -> Path:
    """The project's packages copied without their compiled extensions: a server importing
    from there runs ``MODULES`` as Python."""
    ignore = shutil.ignore_patterns("*.so", "__pycache__")
    for package in ("cds_service", "hooks", "bench"):
        shutil.copytree(servers.ROOT / package, destination / package, ignore=ignore)
    return destination


def served_interpreted(workdir: Path) -> ContextManager[servers.Server]:
    """``servers.real_service``, anonymous, importing the project from a copy without its
    extensions."""
    workdir.mkdir()
    port = servers.free_port()
    env = servers.production_env(workdir, [], f"http://127.0.0.1:{port}", CDS_ALLOW_ANONYMOUS="1")
    command = servers.service_command(port)
    root = interpreted_copy(workdir / "source")
    return servers.serve(command, workdir, env, port, name="interpreted", root=root)


def counted(server: servers.Server, body: Path, seconds: float) -> tuple[float, float, float]:
    """(req/s, M cycles per request, M instructions per request) of one wrk cell."""
    meter = InstructionMeter(server, events=("cycles:u", "instructions:u"))
    meter.start()
    result = loadgen.run_wrk(server.base + PATH, body, None, connections=8, seconds=seconds)
    counts = meter.stop_all()
    if result.non2xx or result.socket_errors:
        raise RuntimeError(f"{server.base}: non-2xx or socket errors: {result}")
    per = max(result.requests, 1) * 1e6
    return result.rps, counts["cycles:u"] / per, counts["instructions:u"] / per


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4)
    args = parser.parse_args(argv)
    if shutil.which("perf") is None:
        print("perf is missing (Debian's linux-perf): nothing to count")
        return 2
    loadgen.ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="cds-compiled-"))
    body = loadgen.write_body(work, "typical", workloads.order_sign())
    rows: dict[str, list[tuple[float, float, float]]] = {}
    with ExitStack() as stack:
        floor = stack.enter_context(servers.floor_service(work))
        compiled = stack.enter_context(servers.real_service(work, [], CDS_ALLOW_ANONYMOUS="1"))
        interpreted = stack.enter_context(served_interpreted(work / "interpreted"))
        cells = {"floor": floor, "service, compiled": compiled, "service, interpreted": interpreted}
        for server in cells.values():
            server.settled_workers()
            loadgen.run_wrk(server.base + PATH, body, None, connections=8, seconds=1)
        for _ in range(args.rounds):
            for name, server in cells.items():
                rows.setdefault(name, []).append(counted(server, body, args.seconds))
    print(
        f"typical order-sign, anonymous, c=8: medians of {args.rounds} rounds of {args.seconds:g} s"
    )
    print(f"  compiled modules: {', '.join(MODULES)}")
    print(f"  {'':22} {'req/s':>7} {'M cycles/req':>13} {'M instr/req':>12}")
    for name, cells_of in rows.items():
        rps, cycles, instructions = (statistics.median(c[i] for c in cells_of) for i in range(3))
        print(f"  {name:22} {rps:7.0f} {cycles:13.2f} {instructions:12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
