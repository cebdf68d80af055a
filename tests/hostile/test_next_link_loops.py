"""A FHIR server whose ``next`` links loop: the fallback stops at the first page it
has already seen or at the page cap, and never fetches a page twice, whether the loop starts
in its own search or in a Bundle the EHR prefetched. Against a real HTTP server on loopback."""

from __future__ import annotations

import pytest

from cds_service.cdshooks.application import CdsApplication
from cds_service.fhir.client import FetchLimits, FhirFetcher
from cds_service.fhir.ssrf import AddressPolicy
from hooks import registry
from tests import fhirjson as fj
from tests.builders import NOW
from tests.fallback.localserver import LocalServer

PID = "pat-loop"


@pytest.fixture
def server():
    local = LocalServer().start()
    yield local
    local.stop()


@pytest.fixture
def fetcher():
    made = FhirFetcher(
        allow_loopback_servers=True,
        address_policy=AddressPolicy(allow_loopback=True),
        limits=FetchLimits(max_pages=5, budget_ms=5000),
    )
    yield made
    made.close()


def page(server, oid: str, *, next_path: str | None = None, self_path: str | None = None):
    bundle = fj.bundle([fj.observation(oid, "2132-9", 118, "pg/mL", "2026-06-05", pid=PID)])
    links = []
    if self_path:
        links.append({"relation": "self", "url": f"{server.base}{self_path}"})
    if next_path:
        links.append({"relation": "next", "url": f"{server.base}{next_path}"})
    if links:
        bundle["link"] = links
    return bundle


def fetched_paths(server) -> list[str]:
    return [path for path, _ in server.requests]


def test_a_page_linking_to_itself_is_fetched_once(server, fetcher):
    server.json("/fhir/Observation", page(server, "o1", next_path="/fhir/Observation?page=1"))
    outcome = fetcher.fetch(f"{server.base}/fhir", None, {"labs": "Observation?page=1"}, {})
    assert outcome["labs"].error is None
    assert fetched_paths(server) == ["/fhir/Observation?page=1"]


def test_a_two_page_cycle_fetches_each_page_once(server, fetcher):
    server.json("/fhir/Observation", page(server, "o1", next_path="/fhir/page-b"))
    server.json("/fhir/page-b", page(server, "o2", next_path="/fhir/Observation?page=1"))
    outcome = fetcher.fetch(f"{server.base}/fhir", None, {"labs": "Observation?page=1"}, {})
    assert [r["id"] for r in outcome["labs"].resources] == ["o1", "o2"]
    assert fetched_paths(server) == ["/fhir/Observation?page=1", "/fhir/page-b"]


def test_an_endless_chain_of_new_pages_stops_at_the_page_cap(server, fetcher):
    counter = iter(range(1, 1000))

    def endless(handler):
        n = next(counter)
        handler.send_json(page(server, f"o{n}", next_path=f"/fhir/page-{n + 1}"))

    server.default = endless
    outcome = fetcher.fetch(f"{server.base}/fhir", None, {"labs": "Observation"}, {})
    assert outcome["labs"].error is None  # a cap is a limit, not a failure
    assert len(server.requests) == fetcher.limits.max_pages == 5


def _invoke(server, fetcher, b12_bundle) -> tuple[dict, list[str]]:
    core = CdsApplication(registry=registry(), fetcher=fetcher)
    body = fj.request(
        "order-sign",
        pid=PID,
        drafts=[
            fj.medication(
                "MedicationRequest",
                "folic-1",
                "Folic acid 5 MG Oral Tablet",
                code="199318",
                status="draft",
                start="2026-06-15",
                pid=PID,
            )
        ],
        prefetch={
            "patient": fj.patient(PID),
            "b12Labs": b12_bundle,
            "bloodCounts": None,
            "renalLabs": None,
            "medicationStatements": None,
            "medicationRequests": None,
            "conditions": None,
        },
    )
    body["fhirServer"] = f"{server.base}/fhir"
    return core.invoke("b12-order-sign", body, now=NOW), fetched_paths(server)


def test_a_prefetched_bundle_whose_next_link_is_itself_is_not_fetched_again(server, fetcher):
    prefetched = page(server, "b12-1", self_path="/fhir/p1", next_path="/fhir/p1")
    answer, fetched = _invoke(server, fetcher, prefetched)
    assert fetched == []
    assert answer["cards"][0]["indicator"] == "critical"


def test_a_loop_back_to_the_prefetched_page_does_not_refetch_it(server, fetcher):
    server.json("/fhir/p2", page(server, "b12-2", next_path="/fhir/p1"))
    server.json("/fhir/p1", page(server, "b12-1", next_path="/fhir/p2"))
    prefetched = page(server, "b12-1", self_path="/fhir/p1", next_path="/fhir/p2")
    answer, fetched = _invoke(server, fetcher, prefetched)
    assert fetched == ["/fhir/p2"]
    assert answer["cards"][0]["indicator"] == "critical"


def test_a_cycle_after_the_prefetched_page_fetches_each_page_once(server, fetcher):
    server.json("/fhir/p2", page(server, "b12-2", next_path="/fhir/p3"))
    server.json("/fhir/p3", page(server, "b12-3", next_path="/fhir/p2"))
    prefetched = page(server, "b12-1", self_path="/fhir/p1", next_path="/fhir/p2")
    answer, fetched = _invoke(server, fetcher, prefetched)
    assert fetched == ["/fhir/p2", "/fhir/p3"]
    assert answer["cards"][0]["indicator"] == "critical"
