"""Dot segments cannot walk out of the allowlisted path (docs/security.md, "The FHIR fallback").

The allowlist is ``http://127.0.0.1:P/fhir``; the loopback server records the raw request
target of everything it receives, so each test shows both what was refused and that what was
fetched is exactly the path that was checked.
"""

from __future__ import annotations

import pytest

from cds_service.fhir.client import FetchLimits, FhirFetcher, wire_url
from cds_service.fhir.ssrf import (
    AddressPolicy,
    Refused,
    check_reference,
    check_url,
    path_segments,
    under_prefix,
)

TOKEN = "ehr-token-abc"
PATIENT = {"resourceType": "Patient", "id": "1"}

ESCAPES = [
    "/fhir/%2e%2e/admin",
    "/fhir/%2E%2E/admin",
    "/fhir/./../big/fhir",
    "/fhir/../admin",
    "/fhir/.%2e/admin",
    "/fhir/%2e./admin",
    "/fhir/%252e%252e/admin",
    "/fhir/..;/admin",
    "/fhir/%2e%2e;x=1/admin",
    "/fhir/..%2fadmin",
    "/fhir/%2e%2e%2fadmin",
    "/fhir/..%5cadmin",
    "/fhir/./Patient",
    "/fhir/%2e/Patient",
]


@pytest.fixture
def fetcher():
    made = FhirFetcher(
        allowlist=(),  # set per test: the server's port is known only then
        address_policy=AddressPolicy(allow_loopback=True),
        allow_loopback_servers=False,  # only the allowlist decides
        limits=FetchLimits(budget_ms=5000, read_timeout_ms=3000),
    )
    yield made
    made.close()


def _allow(fetcher: FhirFetcher, server) -> str:
    fetcher.allowlist = (f"{server.base}/fhir",)
    return server.base


def _paths(server) -> list[str]:
    return [path for path, _ in server.requests]


@pytest.mark.parametrize("path", ESCAPES)
def test_a_fhir_server_with_a_dot_segment_is_refused_and_nothing_is_fetched(
    fetcher, local_server, path
):
    base = _allow(fetcher, local_server)
    local_server.default = lambda h: h.send_json(PATIENT)
    outcomes = fetcher.fetch(base + path, TOKEN, {"patient": "Patient/1"}, {})
    assert outcomes["patient"].error is not None
    assert outcomes["patient"].resources == ()
    assert _paths(local_server) == []


@pytest.mark.parametrize("path", ESCAPES)
def test_a_next_link_with_a_dot_segment_is_not_followed(fetcher, local_server, path):
    base = _allow(fetcher, local_server)
    local_server.json(
        "/fhir/Observation",
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": f"{base}{path}/Observation?page=2"}],
            "entry": [{"resource": {"resourceType": "Observation", "id": "o1"}}],
        },
    )
    local_server.default = lambda h: h.send_json({"resourceType": "Bundle", "type": "searchset"})
    outcomes = fetcher.fetch(f"{base}/fhir", TOKEN, {"labs": "Observation?patient=1"}, {})
    assert "next link" in outcomes["labs"].error
    assert _paths(local_server) == ["/fhir/Observation?patient=1"]


@pytest.mark.parametrize("link", ["../admin/Observation?page=2", "%2e%2e/admin/Observation"])
def test_a_relative_next_link_with_a_dot_segment_is_not_resolved(fetcher, local_server, link):
    base = _allow(fetcher, local_server)
    local_server.json(
        "/fhir/Observation",
        {"resourceType": "Bundle", "link": [{"relation": "next", "url": link}], "entry": []},
    )
    outcomes = fetcher.fetch(f"{base}/fhir", TOKEN, {"labs": "Observation?patient=1"}, {})
    assert "next link" in outcomes["labs"].error
    assert _paths(local_server) == ["/fhir/Observation?patient=1"]


def test_a_prefetched_bundles_next_link_with_a_dot_segment_is_not_fetched(fetcher, local_server):
    base = _allow(fetcher, local_server)
    local_server.default = lambda h: h.send_json({"resourceType": "Bundle"})
    held = ({"resourceType": "Observation", "id": "o1"},)
    outcomes = fetcher.fetch(
        f"{base}/fhir", TOKEN, {}, {"labs": (held, f"{base}/fhir/../admin/Observation?page=2")}
    )
    assert "next link" in outcomes["labs"].error
    assert _paths(local_server) == []


def test_a_redirect_with_a_dot_segment_is_not_followed(fetcher, local_server):
    base = _allow(fetcher, local_server)

    def redirect(h):
        h.send_response(302)
        h.send_header("Location", "/fhir/%2e%2e/admin/Patient/1")
        h.send_header("Content-Length", "0")
        h.end_headers()

    local_server.routes["/fhir/Patient/1"] = redirect
    local_server.default = lambda h: h.send_json(PATIENT)
    outcomes = fetcher.fetch(f"{base}/fhir", TOKEN, {"patient": "Patient/1"}, {})
    assert "redirect" in outcomes["patient"].error
    assert _paths(local_server) == ["/fhir/Patient/1"]


@pytest.mark.parametrize(
    "query, sent",
    [
        ("Patient/1", "/fhir/Patient/1"),
        ("Observation?code=a%20b&patient=1", "/fhir/Observation?code=a%20b&patient=1"),
        ("Patient/a b", "/fhir/Patient/a%20b"),
    ],
)
def test_what_is_fetched_is_exactly_the_path_that_was_checked(fetcher, local_server, query, sent):
    base = _allow(fetcher, local_server)
    local_server.default = lambda h: h.send_json(PATIENT)
    outcomes = fetcher.fetch(f"{base}/fhir", TOKEN, {"patient": query}, {})
    assert outcomes["patient"].error is None
    assert _paths(local_server) == [sent]
    headers = local_server.requests[0][1]
    assert headers["Authorization"] == f"Bearer {TOKEN}"


def test_an_encoded_allowlisted_path_is_checked_and_sent_decoded(fetcher, local_server):
    # requests decodes unreserved characters before sending: what is checked is that form.
    base = _allow(fetcher, local_server)
    local_server.default = lambda h: h.send_json(PATIENT)
    outcomes = fetcher.fetch(f"{base}/%66hir", TOKEN, {"patient": "Patient/1"}, {})
    assert outcomes["patient"].error is None
    assert _paths(local_server) == ["/fhir/Patient/1"]
    assert wire_url(f"{base}/%66hir/Patient/1") == f"{base}/fhir/Patient/1"


# --- the checks themselves --------------------------------------------------------------


@pytest.mark.parametrize("path", ESCAPES)
def test_path_segments_refuses_every_dot_form(path):
    with pytest.raises(Refused):
        path_segments(path)


@pytest.mark.parametrize("path", ESCAPES)
def test_under_prefix_is_false_for_every_dot_form(path):
    assert not under_prefix(f"https://ehr.example.org{path}", "https://ehr.example.org/fhir")
    with pytest.raises(Refused):
        check_url(
            f"https://ehr.example.org{path}", ["https://ehr.example.org"], allow_loopback=False
        )


def test_decoded_segments_are_compared():
    assert path_segments("/f%68ir/a%20b") == ("", "fhir", "a b")
    assert under_prefix("https://ehr.example.org/%66hir/Patient", "https://ehr.example.org/fhir")
    assert not under_prefix("https://ehr.example.org/fhi%72x", "https://ehr.example.org/fhir")


@pytest.mark.parametrize("reference", ["?page=2", "Observation?page=2", "/fhir/x", "https://a/b"])
def test_clean_references_pass(reference):
    check_reference(reference)


@pytest.mark.parametrize(
    "url",
    [
        "https://ehr.example.org/fhir/Patient/1",
        "https://ehr.example.org/fhir/Observation?code=a%20b",
        "https://ehr.example.org/fhir/Patient/a%7Eb",
    ],
)
def test_wire_url_is_stable(url):
    assert wire_url(wire_url(url)) == wire_url(url)
    assert under_prefix(wire_url(url), "https://ehr.example.org/fhir")
