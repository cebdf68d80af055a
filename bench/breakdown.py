"""Where a request's CPU goes, step by step, in-process (no HTTP, no other thread):

    .venv/bin/python -m bench.breakdown [--workload typical|folic|view|large]

Each step is timed on its own (CPU ms per call, median of several batches), in the order the
service runs them, beside what the floor does (parse the JSON body). It is the profile behind
the throughput ratio ``make bench`` reports: the steps the floor does not do are the cost of a
CDS service that authenticates, validates, reads FHIR and decides.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import cast

from bench import workloads
from bench.issuer import ISSUER, TestIssuer, write_clients_file_for
from bench.workloads import NOW
from cds_service.domain.engine import evaluate


def instructions_k(
    step: Callable[[int], object], calls: int = 400, first: int = 600
) -> float | None:
    """Thousands of user-space instructions per call (``bench.run.own_instructions``), or
    None without perf. Unlike CPU time it hardly moves with the machine's load: the figure to
    compare two versions by."""
    from bench.run import own_instructions

    for i in range(first - 5, first):  # past the indices cpu_ms used (tokens are single-use)
        step(i)

    def loop() -> None:
        for i in range(first, first + calls):
            step(i)

    counted = own_instructions(loop)
    return None if counted is None else counted / calls / 1000


def cpu_ms(step: Callable[[int], object], batches: int = 7, per_batch: int = 40) -> float:
    for i in range(5):
        step(i)
    samples = []
    counter = 10
    for _ in range(batches):
        start = time.process_time()
        for _ in range(per_batch):
            step(counter)
            counter += 1
        samples.append((time.process_time() - start) / per_batch * 1000)
    return statistics.median(samples)


BODIES = {
    "typical": ("b12-order-sign", lambda: workloads.order_sign()),
    "folic": ("b12-order-sign", lambda: workloads.order_sign(folic_acid=True)),
    "view": ("b12-patient-view", lambda: workloads.patient_view()),
    "large": ("b12-order-sign", lambda: workloads.order_sign(n_obs=1000, n_meds=100)),
}


def main(argv: list[str] | None = None) -> int:
    from cds_service.bootstrap import build_authenticator
    from cds_service.cdshooks.application import CdsApplication
    from cds_service.cdshooks.cards import cards as build_cards
    from cds_service.cdshooks.prefetch import resolve
    from cds_service.cdshooks.schemas import response_document
    from cds_service.config import load_settings
    from cds_service.domain.picture import latest_current_found
    from cds_service.fhir.extract import extract_facts
    from cds_service.fhir.jsonread import bundle_entries
    from cds_service.storage import open_store
    from cds_service.storage.base import Store
    from cds_service.web import jsonbody
    from hooks import registry

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workload", choices=sorted(BODIES), default="typical")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count user-space instructions per call with perf (steadier than CPU time)",
    )
    args = parser.parse_args(argv)
    service_id, make = BODIES[args.workload]
    body = make()
    raw = json.dumps(body).encode()

    workdir = Path(tempfile.mkdtemp(prefix="cds-breakdown-"))
    issuer = TestIssuer()
    rsa_issuer = TestIssuer("RS384")
    base = "https://cds.example.org"
    settings = load_settings(
        {
            "CDS_PROFILE": "production",
            "CDS_DATABASE_URL": f"sqlite:///{workdir}/cds.sqlite3",
            "CDS_TRUSTED_CLIENTS": str(write_clients_file_for([issuer, rsa_issuer], workdir)),
            "CDS_PUBLIC_BASE_URL": base,
        }
    )
    store = open_store(settings.database_url)
    core = CdsApplication(registry=registry(), store=store, policy=settings.policy)
    service = core.service(service_id)
    path = f"/cds-services/{service_id}"
    tokens = issuer.mint_pool(base + path, 1000)
    rsa_tokens = rsa_issuer.mint_pool(base + path, 1000)

    class NoReplayStore:
        def remember_jti(self, *args: object) -> bool:
            return True

    verifier = build_authenticator(settings, store)
    # The signature and claims only; the jti write is a step of its own below. The replay
    # check calls nothing else on its store.
    verifier.replay.store = cast(Store, NoReplayStore())
    request = core.parse_request(service, body)
    context = request["context"]
    resolution = resolve(
        service, request.get("prefetch"), context, fhir_server=None, access_token=None, fetcher=None
    )
    drafts, _ = bundle_entries(context.get("draftOrders") or {})  # as the invocation reads them
    enough = latest_current_found(NOW, core.policy)  # as the invocation reads them
    facts = extract_facts(
        resolution.resources,
        drafts,
        patient_id=context["patientId"],
        missing=resolution.missing,
        enough=enough,
    ).facts
    evaluation = evaluate(facts, NOW, service.hook, core.policy)
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    moment = datetime.now(timezone.utc)

    steps = [
        ("floor: json.loads of the body", lambda i: json.loads(raw)),
        (
            "defensive JSON parse (jsonbody.parse)",
            lambda i: jsonbody.parse(raw, "application/json"),
        ),
        (
            "JWT: ES384 signature and claims",
            lambda i: verifier.authenticate(f"Bearer {tokens[i]}", path=path),
        ),
        (
            "JWT: RS384 signature and claims",
            lambda i: verifier.authenticate(f"Bearer {rsa_tokens[i]}", path=path),
        ),
        (
            "JWT: record the jti (replay store write)",
            lambda i: store.remember_jti(ISSUER, str(uuid.uuid4()), until, moment),
        ),
        ("envelope validation (marshmallow)", lambda i: core.parse_request(service, body)),
        (
            "prefetch classification",
            lambda i: resolve(
                service,
                request.get("prefetch"),
                context,
                fhir_server=None,
                access_token=None,
                fetcher=None,
            ),
        ),
        (
            "FHIR extraction into facts",
            lambda i: extract_facts(
                resolution.resources,
                drafts,
                patient_id=context["patientId"],
                missing=resolution.missing,
                enough=enough,
            ),
        ),
        ("rules (engine)", lambda i: evaluate(facts, NOW, service.hook, core.policy)),
        (
            "cards and response",
            lambda i: response_document(
                build_cards(evaluation.shown, context["patientId"], lambda: "u")
            ),
        ),
        (
            "the whole invocation (ledger included)",
            lambda i: core.invoke(service_id, body, now=NOW),
        ),
    ]
    print(f"workload: {args.workload} ({len(raw):,} bytes, {len(evaluation.shown)} cards)")
    print(f"  {'step':45} {'CPU ms':>8} {'k instructions':>15}")
    for name, step in steps:
        counted = instructions_k(step) if args.instructions else None
        shown = "" if counted is None else f"{counted:15,.0f}"
        print(f"  {name:45} {cpu_ms(step):8.3f} {shown}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
