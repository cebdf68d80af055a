"""The time budget and the size cap against a real server on 127.0.0.1: a server that hangs
must not hold the answer past the budget, and a 50 MB body is cut off while streaming."""

from __future__ import annotations

import time

from cds_service.fhir.client import TIMED_OUT, TOO_LARGE, FetchLimits, FhirFetcher
from cds_service.fhir.ssrf import AddressPolicy

#: What a loaded 2-core CI machine may add past the budget. Still far below the 2 s read
#: timeout a budget that was not enforced would wait for.
SLACK_S = 0.5


def test_a_hanging_server_costs_the_budget_and_no_more(local_server, make_fetcher):
    local_server.hang("/fhir/Observation")
    fetcher = make_fetcher((), loopback=True, budget_ms=300)
    started = time.perf_counter()
    outcome = fetcher.fetch(
        f"{local_server.base}/fhir", "tok", {"labs": "Observation?patient=1"}, {}
    )
    elapsed = time.perf_counter() - started
    assert outcome["labs"].error == TIMED_OUT
    assert 0.3 <= elapsed < 0.3 + SLACK_S


def test_keys_are_fetched_in_parallel(local_server, make_fetcher):
    # Seven keys on a hanging server still cost one budget, not seven.
    for resource in (
        "Patient",
        "Observation",
        "Condition",
        "MedicationStatement",
        "MedicationRequest",
    ):
        local_server.hang(f"/fhir/{resource}")
    queries = {
        "patient": "Patient",
        "b12": "Observation?a=1",
        "blood": "Observation?a=2",
        "renal": "Observation?a=3",
        "conditions": "Condition",
        "ms": "MedicationStatement",
        "mr": "MedicationRequest",
    }
    fetcher = make_fetcher((), loopback=True, budget_ms=300)
    started = time.perf_counter()
    outcomes = fetcher.fetch(f"{local_server.base}/fhir", None, queries, {})
    elapsed = time.perf_counter() - started
    assert {o.error for o in outcomes.values()} == {TIMED_OUT}
    assert elapsed < 0.3 + SLACK_S
    # All seven were in flight at once.
    deadline = time.monotonic() + 1
    while len(local_server.requests) < 7 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(local_server.requests) == 7


def test_a_slow_but_timely_server_is_waited_for(local_server, make_fetcher):
    local_server.hang("/fhir/Observation", seconds=0.15)
    fetcher = make_fetcher((), loopback=True, budget_ms=1000)
    queries = {f"k{i}": f"Observation?i={i}" for i in range(4)}
    started = time.perf_counter()
    outcomes = fetcher.fetch(f"{local_server.base}/fhir", None, queries, {})
    elapsed = time.perf_counter() - started
    assert all(o.error is None for o in outcomes.values())
    assert elapsed < 0.15 * 4  # in parallel


def test_the_worker_of_a_hung_request_ends_soon_after_the_deadline(local_server):
    # One worker thread: the next task can only start when the hung request has given up.
    local_server.hang("/fhir/Observation")
    fetcher = FhirFetcher(
        allow_loopback_servers=True,
        address_policy=AddressPolicy(allow_loopback=True),
        limits=FetchLimits(budget_ms=200, read_timeout_ms=5000),
        max_workers=1,
    )
    try:
        fetcher.fetch(f"{local_server.base}/fhir", None, {"labs": "Observation"}, {})
        executor, _ = fetcher._resources()
        started = time.perf_counter()
        # The read timeout was cut to what was left of the budget (not 5 s).
        assert executor.submit(lambda: "free").result(timeout=2) == "free"
        assert time.perf_counter() - started < SLACK_S
    finally:
        fetcher.close()


def test_a_50_mb_body_is_cut_at_the_cap(local_server, make_fetcher):
    local_server.huge("/fhir/Observation", 50 * 1024 * 1024)
    fetcher = make_fetcher((), loopback=True, max_bytes=1024 * 1024, budget_ms=2000)
    started = time.perf_counter()
    outcome = fetcher.fetch(f"{local_server.base}/fhir", None, {"labs": "Observation"}, {})["labs"]
    elapsed = time.perf_counter() - started
    assert outcome.error == TOO_LARGE
    assert elapsed < 1.0
    time.sleep(0.1)  # let the server notice the closed connection
    assert local_server.bytes_sent < 20 * 1024 * 1024
