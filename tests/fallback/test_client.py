"""The FHIR client of the prefetch fallback, against ``responses``: what it sends, what it
follows, what it refuses (docs/protocol.md "The FHIR server the service calls")."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from cds_service.cdshooks.prefetch import render
from cds_service.fhir.client import TIMED_OUT, TOO_LARGE
from hooks.prefetch import templates

from .conftest import EHR, TOKEN

PATIENT = {"resourceType": "Patient", "id": "123", "gender": "female", "birthDate": "1960-01-01"}
CONTEXT = {"patientId": "123", "userId": "Practitioner/abc"}


def obs(oid: str) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final"}


def searchset(resources, next_url: str | None = None) -> dict:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "self", "url": "x"}, {"relation": "next", "url": next_url}]
    return bundle


def urls(mock) -> list[str]:
    return [call.request.url for call in mock.calls]


# --- what is sent ---------------------------------------------------------------------------


def test_every_template_is_sent_as_rendered_relative_to_fhir_server(mock, make_fetcher):
    queries = {key: render(p.template, CONTEXT) for key, p in templates().items()}
    mock.get(f"{EHR}/Patient/123", json=PATIENT)
    for resource in ("Observation", "MedicationStatement", "MedicationRequest", "Condition"):
        mock.get(f"{EHR}/{resource}", json=searchset([]))

    outcomes = make_fetcher().fetch(EHR, None, queries, {})

    assert all(o.error is None for o in outcomes.values())
    sent = {(urlsplit(u).path, urlsplit(u).query) for u in urls(mock)}
    assert len(mock.calls) == len(queries)
    for query in queries.values():
        path, _, qs = query.partition("?")
        match = [s for s in sent if s[0] == f"/fhir/{path}" and parse_qs(s[1]) == parse_qs(qs)]
        assert match, f"{query} was not sent"
    # Literally, for two of them (``|`` is percent-encoded on the wire, nothing else changes).
    assert f"{EHR}/Patient/123" in urls(mock)
    assert f"{EHR}/Condition?patient=123&_count=100" in urls(mock)
    blood = render(templates()["bloodCounts"].template, CONTEXT).replace("|", "%7C")
    assert f"{EHR}/{blood}" in urls(mock)


def test_accept_is_fhir_json_and_the_bearer_token_goes_to_fhir_server(mock, make_fetcher):
    mock.get(f"{EHR}/Patient/123", json=PATIENT)
    make_fetcher().fetch(EHR, TOKEN, {"patient": "Patient/123"}, {})
    headers = mock.calls[0].request.headers
    assert headers["Accept"] == "application/fhir+json"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Cookie" not in headers


def test_no_authorization_header_without_a_token(mock, make_fetcher):
    mock.get(f"{EHR}/Patient/123", json=PATIENT)
    outcome = make_fetcher().fetch(EHR, None, {"patient": "Patient/123"}, {})["patient"]
    assert outcome.resources == (PATIENT,)
    assert "Authorization" not in mock.calls[0].request.headers


def test_an_empty_token_is_no_token(mock, make_fetcher):
    mock.get(f"{EHR}/Patient/123", json=PATIENT)
    assert make_fetcher().fetch(EHR, "", {"patient": "Patient/123"}, {})["patient"].resources
    assert "Authorization" not in mock.calls[0].request.headers


def test_a_token_that_could_split_a_header_is_never_sent(mock, make_fetcher):
    outcome = make_fetcher().fetch(EHR, "abc\r\nX-Evil: 1", {"patient": "Patient/123"}, {})[
        "patient"
    ]
    assert outcome.error == "the access token is not a valid Bearer token"
    assert not mock.calls


def test_a_read_answers_the_resource(mock, make_fetcher):
    mock.get(f"{EHR}/Patient/123", json=PATIENT)
    assert make_fetcher().fetch(f"{EHR}/", None, {"p": "Patient/123"}, {})["p"].resources == (
        PATIENT,
    )


def test_cookies_set_by_one_server_are_not_sent_back(mock, make_fetcher):
    mock.get(f"{EHR}/Patient/123", json=PATIENT, headers={"Set-Cookie": "session=abc; Path=/"})
    fetcher = make_fetcher()
    fetcher.fetch(EHR, None, {"p": "Patient/123"}, {})
    fetcher.fetch(EHR, None, {"p": "Patient/123"}, {})
    assert "Cookie" not in mock.calls[1].request.headers


# --- pagination -----------------------------------------------------------------------------


def test_next_links_are_followed_on_the_same_origin(mock, make_fetcher):
    mock.get(
        f"{EHR}/Observation?patient=123",
        json=searchset([obs("1")], f"{EHR}/Observation?page=2"),
        match=[responses.matchers.query_string_matcher("patient=123")],
    )
    mock.get(
        f"{EHR}/Observation?page=2",
        json=searchset([obs("2")], "Observation?page=3"),
        match=[responses.matchers.query_string_matcher("page=2")],
    )
    mock.get(
        f"{EHR}/Observation?page=3",
        json=searchset([obs("3")]),
        match=[responses.matchers.query_string_matcher("page=3")],
    )

    outcome = make_fetcher().fetch(EHR, TOKEN, {"labs": "Observation?patient=123"}, {})["labs"]

    assert [r["id"] for r in outcome.resources] == ["1", "2", "3"]
    assert urls(mock) == [
        f"{EHR}/Observation?patient=123",
        f"{EHR}/Observation?page=2",
        f"{EHR}/Observation?page=3",
    ]
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in mock.calls)


def _endless(mock, pages: int = 10, per_page: int = 1) -> None:
    for n in range(1, pages + 1):
        mock.get(
            f"{EHR}/Observation?page={n}",
            json=searchset(
                [obs(f"{n}-{i}") for i in range(per_page)], f"{EHR}/Observation?page={n + 1}"
            ),
            match=[responses.matchers.query_string_matcher(f"page={n}")],
        )


def test_pages_are_capped(mock, make_fetcher):
    _endless(mock)
    outcome = make_fetcher(max_pages=3).fetch(EHR, None, {"labs": "Observation?page=1"}, {})["labs"]
    assert outcome.error is None  # a cap is a limit, not a failure
    assert len(mock.calls) == 3
    assert [r["id"] for r in outcome.resources] == ["1-0", "2-0", "3-0"]


def test_entries_are_capped(mock, make_fetcher):
    _endless(mock, per_page=4)
    outcome = make_fetcher(max_entries=10).fetch(EHR, None, {"labs": "Observation?page=1"}, {})[
        "labs"
    ]
    assert len(outcome.resources) == 10
    assert len(mock.calls) == 3


def test_a_page_that_links_to_itself_ends_the_search(mock, make_fetcher):
    mock.get(f"{EHR}/Observation", json=searchset([obs("1")], f"{EHR}/Observation?page=1"))
    outcome = make_fetcher().fetch(EHR, None, {"labs": "Observation?page=1"}, {})["labs"]
    assert outcome.error is None and len(mock.calls) == 1


def test_a_next_link_to_another_host_is_not_followed(mock, make_fetcher):
    mock.get(
        f"{EHR}/Observation",
        json=searchset([obs("1")], "https://other.example.net/fhir/Observation?p=2"),
    )
    outcome = make_fetcher().fetch(EHR, TOKEN, {"labs": "Observation?patient=123"}, {})["labs"]
    assert outcome.error == "a next link points to another origin and was not followed"
    assert urls(mock) == [f"{EHR}/Observation?patient=123"]


def test_a_next_link_with_another_scheme_or_port_is_another_origin(mock, make_fetcher):
    mock.get(
        f"{EHR}/Observation",
        json=searchset([obs("1")], "http://ehr.example.org/fhir/Observation?p=2"),
    )
    mock.get(
        f"{EHR}/Condition", json=searchset([], "https://ehr.example.org:8443/fhir/Condition?p=2")
    )
    outcomes = make_fetcher().fetch(EHR, TOKEN, {"labs": "Observation", "c": "Condition"}, {})
    assert all("another origin" in o.error for o in outcomes.values())
    assert len(mock.calls) == 2


def test_a_continuation_of_a_prefetched_bundle_is_followed_within_the_caps(mock, make_fetcher):
    _endless(mock)
    held = tuple(obs(f"held-{i}") for i in range(3))
    outcome = make_fetcher(max_pages=3).fetch(
        EHR, None, {}, {"labs": (held, f"{EHR}/Observation?page=1")}
    )["labs"]
    # The prefetched page counts as one of the three.
    assert [r["id"] for r in outcome.resources] == ["1-0", "2-0"]


def test_a_continuation_to_another_origin_is_refused(mock, make_fetcher):
    outcome = make_fetcher().fetch(
        EHR, TOKEN, {}, {"labs": ((obs("1"),), "https://other.example.net/fhir/Observation?p=2")}
    )["labs"]
    assert "another origin" in outcome.error
    assert not mock.calls


# --- redirects ------------------------------------------------------------------------------


def test_a_redirect_to_the_metadata_address_is_not_followed(mock, make_fetcher):
    mock.get(
        f"{EHR}/Patient/123",
        status=302,
        headers={"Location": "http://169.254.169.254/latest/meta-data/"},
    )
    outcome = make_fetcher().fetch(EHR, TOKEN, {"patient": "Patient/123"}, {})["patient"]
    assert outcome.error == "a redirect points to another origin and was not followed"
    assert urls(mock) == [f"{EHR}/Patient/123"]


def test_a_same_origin_redirect_is_followed(mock, make_fetcher):
    mock.get(f"{EHR}/Patient/123", status=301, headers={"Location": "/fhir/Patient/123/_history/2"})
    mock.get(f"{EHR}/Patient/123/_history/2", json=PATIENT)
    outcome = make_fetcher().fetch(EHR, TOKEN, {"patient": "Patient/123"}, {})["patient"]
    assert outcome.resources == (PATIENT,)
    assert mock.calls[1].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_same_origin_redirect_outside_the_allowed_prefix_is_refused(mock, make_fetcher):
    mock.get(
        f"{EHR}/Patient/123",
        status=307,
        headers={"Location": "https://ehr.example.org/admin/export"},
    )
    outcome = make_fetcher().fetch(EHR, TOKEN, {"patient": "Patient/123"}, {})["patient"]
    assert outcome.error == "the FHIR server is not on the allowlist"
    assert len(mock.calls) == 1


def test_redirect_loops_end(mock, make_fetcher):
    mock.get(f"{EHR}/Patient/123", status=302, headers={"Location": f"{EHR}/Patient/123"})
    outcome = make_fetcher().fetch(EHR, None, {"patient": "Patient/123"}, {})["patient"]
    assert outcome.error == "the FHIR server redirected too many times"
    assert len(mock.calls) == 4


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, token, reason",
    [
        (401, TOKEN, "the FHIR server did not accept the access token (HTTP 401)"),
        (401, None, "the FHIR server requires an access token (HTTP 401)"),
        (403, TOKEN, "the FHIR server denied access (HTTP 403)"),
        (404, TOKEN, "not found on the FHIR server (HTTP 404)"),
        (429, TOKEN, "the FHIR server is limiting requests (HTTP 429)"),
        (500, TOKEN, "the FHIR server failed (HTTP 500)"),
        (503, TOKEN, "the FHIR server failed (HTTP 503)"),
        (400, TOKEN, "the FHIR server answered HTTP 400"),
    ],
)
def test_http_errors_give_a_short_reason_without_the_body(
    mock, make_fetcher, status, token, reason
):
    secret_body = {
        "resourceType": "OperationOutcome",
        "issue": [{"diagnostics": "patient Jane Doe secret"}],
    }
    mock.get(f"{EHR}/Patient/123", json=secret_body, status=status)
    outcome = make_fetcher().fetch(EHR, token, {"patient": "Patient/123"}, {})["patient"]
    assert outcome == type(outcome)(error=reason)


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"{not json", "the FHIR server's answer is not valid JSON"),
        (b"<html>login</html>", "the FHIR server's answer is not valid JSON"),
        (b"[" * 100_000, "the FHIR server's answer is not valid JSON"),
        (b"[1, 2]", "the FHIR server's answer is not a FHIR resource"),
        (b'{"id": "x"}', "the FHIR server's answer is not a FHIR resource"),
        (
            b'{"resourceType": "OperationOutcome", "issue": []}',
            "the FHIR server answered with an OperationOutcome",
        ),
    ],
)
def test_answers_that_are_not_fhir_json_fail_the_key(mock, make_fetcher, body, reason):
    mock.get(f"{EHR}/Patient/123", body=body, content_type="application/fhir+json")
    assert (
        make_fetcher().fetch(EHR, None, {"patient": "Patient/123"}, {})["patient"].error == reason
    )


def test_a_declared_oversized_answer_is_not_read(mock, make_fetcher):
    mock.get(f"{EHR}/Observation", body=b"{}", headers={"Content-Length": str(50 * 1024 * 1024)})
    outcome = make_fetcher(max_bytes=1024 * 1024).fetch(EHR, None, {"labs": "Observation"}, {})[
        "labs"
    ]
    assert outcome.error == TOO_LARGE


class LazyBody(io.RawIOBase):
    """``size`` bytes made on demand: 50 MB are never held, and we can see how far the client
    read."""

    def __init__(self, size: int) -> None:
        self.size, self.served = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.size - self.served)
        buffer[:n] = b" " * n
        self.served += n
        return n


def test_a_50_mb_answer_is_cut_at_the_cap_while_streaming(mock, make_fetcher):
    body = LazyBody(50 * 1024 * 1024)
    mock.get(
        f"{EHR}/Observation", body=io.BufferedReader(body), content_type="application/fhir+json"
    )
    outcome = make_fetcher(max_bytes=1024 * 1024).fetch(EHR, None, {"labs": "Observation"}, {})[
        "labs"
    ]
    assert outcome.error == TOO_LARGE
    assert body.served < 2 * 1024 * 1024


def test_dns_failure_fails_the_key_without_a_request(mock, make_fetcher):
    allowlist = ("https://unknown.example.org/fhir",)
    outcome = make_fetcher(allowlist).fetch(
        "https://unknown.example.org/fhir", TOKEN, {"patient": "Patient/123"}, {}
    )["patient"]
    assert outcome.error == "the FHIR server's host name could not be resolved"
    assert not mock.calls


def test_a_connection_error_is_a_short_reason(mock, make_fetcher):
    # No answer registered for this URL: responses refuses the connection.
    outcome = make_fetcher().fetch(EHR, TOKEN, {"patient": "Patient/999"}, {})["patient"]
    assert outcome.error == "could not connect to the FHIR server"


def test_one_failing_key_does_not_fail_the_others(mock, make_fetcher):
    mock.get(f"{EHR}/Patient/123", json=PATIENT)
    mock.get(f"{EHR}/Observation", status=500)
    outcomes = make_fetcher().fetch(
        EHR, None, {"patient": "Patient/123", "labs": "Observation"}, {}
    )
    assert outcomes["patient"].resources == (PATIENT,)
    assert outcomes["labs"].error == "the FHIR server failed (HTTP 500)"


def test_a_budget_too_small_for_anything_fails_every_key_at_once(mock, make_fetcher):
    started = time.perf_counter()
    outcomes = make_fetcher(budget_ms=1).fetch(
        EHR, None, {f"k{i}": "Patient/123" for i in range(20)}, {}
    )
    assert time.perf_counter() - started < 0.05
    assert all(o.error is not None for o in outcomes.values())
    assert TIMED_OUT in {o.error for o in outcomes.values()}


# --- which servers ------------------------------------------------------------------------


def test_a_server_not_on_the_allowlist_is_never_called(mock, make_fetcher):
    outcome = make_fetcher().fetch(
        "https://other.example.net/fhir", TOKEN, {"p": "Patient/123"}, {}
    )["p"]
    assert outcome.error == "the FHIR server is not on the allowlist"
    assert not mock.calls


def test_production_with_no_allowlist_calls_nothing(mock, make_fetcher):
    outcome = make_fetcher(()).fetch(EHR, TOKEN, {"p": "Patient/123"}, {})["p"]
    assert outcome.error == "the FHIR server is not on the allowlist"


def test_the_authenticated_clients_servers_replace_the_global_allowlist(mock, make_fetcher):
    mock.get("https://other.example.net/fhir/Patient/123", json=PATIENT)
    client = SimpleNamespace(fhir_servers=["https://other.example.net/fhir"])
    fetcher = make_fetcher()
    ok = fetcher.fetch(
        "https://other.example.net/fhir", None, {"p": "Patient/123"}, {}, client=client
    )
    assert ok["p"].resources == (PATIENT,)
    refused = fetcher.fetch(EHR, None, {"p": "Patient/123"}, {}, client=client)
    assert refused["p"].error == "the FHIR server is not on the allowlist"
    nothing = fetcher.fetch(
        EHR, None, {"p": "Patient/123"}, {}, client=SimpleNamespace(fhir_servers=[])
    )
    assert nothing["p"].error == "the FHIR server is not on the allowlist"
    assert len(mock.calls) == 1


@pytest.mark.parametrize(
    "server, private, reason",
    [
        (
            "https://intranet.example.org/fhir",
            False,
            "the FHIR server's host resolves to a private address",
        ),
        (
            "https://mixed.example.org/fhir",
            False,
            "the FHIR server's host resolves to a private address",
        ),
        (
            "https://metadata.example.org/fhir",
            True,
            "the FHIR server's host resolves to a cloud metadata address",
        ),
        (
            "http://169.254.169.254/fhir",
            True,
            "the FHIR server's host resolves to a cloud metadata address",
        ),
        (
            "http://127.0.0.1:8080/fhir",
            False,
            "the FHIR server's host resolves to a loopback address",
        ),
        (
            "http://[::ffff:169.254.169.254]/fhir",
            True,
            "the FHIR server's host resolves to a cloud metadata address",
        ),
    ],
)
def test_allowlisted_names_are_still_checked_by_address(
    mock, make_fetcher, server, private, reason
):
    outcome = make_fetcher((server,), private=private).fetch(server, TOKEN, {"p": "Patient/1"}, {})[
        "p"
    ]
    assert outcome.error == reason
    assert not mock.calls


def test_private_addresses_are_allowed_when_configured(mock, make_fetcher):
    server = "https://intranet.example.org/fhir"
    mock.get(f"{server}/Patient/123", json=PATIENT)
    outcome = make_fetcher((server,), private=True).fetch(server, None, {"p": "Patient/123"}, {})[
        "p"
    ]
    assert outcome.resources == (PATIENT,)


def test_loopback_servers_only_in_the_development_profile(mock, make_fetcher):
    server = "http://localhost:8090/fhir"
    mock.get(f"{server}/Patient/123", json=PATIENT)
    assert make_fetcher((), loopback=False).fetch(server, None, {"p": "Patient/123"}, {})["p"].error
    assert (
        make_fetcher((), loopback=True).fetch(server, None, {"p": "Patient/123"}, {})["p"].resources
    )


@pytest.mark.parametrize(
    "query", ["../admin", "/Patient/1", "Patient/..", "http://x/Patient", "Patient/1#x", "a\\b"]
)
def test_queries_must_stay_below_fhir_server(mock, make_fetcher, query):
    outcome = make_fetcher().fetch(EHR, TOKEN, {"p": query}, {})["p"]
    assert outcome.error == "the prefetch query is not a relative FHIR URL"
    assert not mock.calls
