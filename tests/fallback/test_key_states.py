"""Per-key policy (docs/protocol.md, "Prefetch"): absent or OperationOutcome -> fetched
(in one parallel call); null or an empty Bundle -> no data and no fetch; a required key that
cannot be obtained -> 412 naming the key and the reason; an optional one -> proceed, missing."""

from __future__ import annotations

import pytest

from cds_service.cdshooks.errors import PrefetchUnavailable
from cds_service.cdshooks.prefetch import FetchOutcome, KeyState, resolve
from cds_service.domain.vocabulary import DataCategory
from hooks import b12_order_sign, b12_patient_view

from .conftest import EHR, TOKEN

CONTEXT = {"patientId": "123", "userId": "Practitioner/abc"}
PATIENT = {"resourceType": "Patient", "id": "123"}
OO = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
B12 = {"resourceType": "Observation", "id": "b12", "status": "final"}


def bundle(*resources, next_url=None):
    result = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        result["link"] = [{"relation": "next", "url": next_url}]
    return result


class Recorder:
    """A Fetcher that records what it was asked and answers from a table."""

    def __init__(self, answers=None, error=None):
        self.calls = []
        self.answers = answers or {}
        self.error = error

    def fetch(self, fhir_server, access_token, queries, continuations, *, client=None):
        self.calls.append((fhir_server, access_token, dict(queries), dict(continuations), client))
        keys = set(queries) | set(continuations)
        return {
            k: (
                FetchOutcome(error=self.error)
                if self.error
                else FetchOutcome(tuple(self.answers.get(k, ())))
            )
            for k in keys
        }


def all_sent(**overrides):
    prefetch = {key: bundle() for key in b12_order_sign.SERVICE.prefetch}
    prefetch["patient"] = PATIENT
    prefetch.update(overrides)
    return prefetch


def run(prefetch, fetcher, service=b12_order_sign.SERVICE, server=EHR):
    return resolve(
        service, prefetch, CONTEXT, fhir_server=server, access_token=TOKEN, fetcher=fetcher
    )


@pytest.mark.parametrize(
    "value, state, fetched",
    [
        (bundle(B12), KeyState.BUNDLE, False),
        (bundle(), KeyState.EMPTY, False),
        (None, KeyState.NULL, False),
        (OO, KeyState.FAILED, True),
        ("garbage", KeyState.INVALID, True),
    ],
)
def test_each_key_state(value, state, fetched):
    fetcher = Recorder({"b12Labs": [B12]})
    result = run(all_sent(b12Labs=value), fetcher)
    assert result.states["b12Labs"] == state
    assert bool(fetcher.calls) == fetched
    if fetched:
        assert set(fetcher.calls[0][2]) == {"b12Labs"}
    assert result.missing == set()
    assert (B12 in result.resources) == (
        state in (KeyState.BUNDLE, KeyState.FAILED, KeyState.INVALID)
    )


def test_absent_keys_are_fetched_together_with_the_rendered_templates():
    fetcher = Recorder({"patient": [PATIENT], "b12Labs": [B12]})
    result = run({}, fetcher)
    assert len(fetcher.calls) == 1
    server, token, queries, continuations, _ = fetcher.calls[0]
    assert (server, token, continuations) == (EHR, TOKEN, {})
    assert set(queries) == set(b12_order_sign.SERVICE.prefetch)
    assert queries["patient"] == "Patient/123"
    assert queries["conditions"] == "Condition?patient=123&_count=100"
    assert sorted(result.fetched) == sorted(queries)
    assert PATIENT in result.resources and B12 in result.resources


def test_a_paginated_prefetch_is_continued():
    fetcher = Recorder({"b12Labs": [{"resourceType": "Observation", "id": "older"}]})
    result = run(all_sent(b12Labs=bundle(B12, next_url=f"{EHR}/Observation?page=2")), fetcher)
    assert fetcher.calls[0][2] == {}
    assert fetcher.calls[0][3] == {"b12Labs": ((B12,), f"{EHR}/Observation?page=2")}
    assert [r["id"] for r in result.resources if r["resourceType"] == "Observation"] == [
        "b12",
        "older",
    ]


def test_a_failed_continuation_keeps_the_pages_already_sent():
    fetcher = Recorder(error="a next link points to another origin and was not followed")
    result = run(all_sent(b12Labs=bundle(B12, next_url="https://other.example.net/p2")), fetcher)
    assert B12 in result.resources and result.missing == set()


def test_an_optional_key_that_cannot_be_fetched_is_missing_and_the_request_proceeds():
    result = run(all_sent(b12Labs=OO), Recorder(error="the FHIR server failed (HTTP 500)"))
    assert result.missing == {DataCategory.B12_LABS}
    assert result.failed == {"b12Labs": "the FHIR server failed (HTTP 500)"}


def test_a_required_key_that_cannot_be_fetched_is_a_412_naming_key_and_reason():
    with pytest.raises(PrefetchUnavailable) as caught:
        run(
            {},
            Recorder(error="the FHIR server denied access (HTTP 403)"),
            service=b12_patient_view.SERVICE,
        )
    assert caught.value.status == 412
    assert caught.value.message == (
        "Required prefetch 'patient' could not be obtained: "
        "the FHIR server denied access (HTTP 403)."
    )
    assert caught.value.expression == ["prefetch.patient"]


@pytest.mark.parametrize(
    "server, fetcher, reason",
    [
        (None, Recorder(), "not sent in prefetch, and no FHIR server to fetch from"),
        (EHR, None, "not sent in prefetch, and fetching is not enabled"),
    ],
)
def test_without_a_server_or_a_fetcher_the_reason_says_so(server, fetcher, reason):
    with pytest.raises(PrefetchUnavailable, match=reason):
        run({}, fetcher, service=b12_patient_view.SERVICE, server=server)


def test_a_failed_client_query_says_so_when_it_cannot_be_refetched():
    with pytest.raises(
        PrefetchUnavailable, match=r"the client's prefetch query failed \(OperationOutcome\)"
    ):
        run({"patient": OO}, None, service=b12_patient_view.SERVICE)


def test_null_required_key_is_no_data_not_a_412():
    result = run(all_sent(patient=None), Recorder(), service=b12_patient_view.SERVICE)
    assert result.states["patient"] == KeyState.NULL and not result.failed


def test_a_fetcher_that_raises_degrades_instead_of_failing_the_request():
    class Broken:
        def fetch(self, *args, **kwargs):
            raise RuntimeError("bug")

    result = run({"patient": PATIENT}, Broken())
    assert DataCategory.B12_LABS in result.missing
    assert result.failed["b12Labs"] == "the FHIR request failed"


def test_the_authenticated_client_is_passed_to_the_fetcher():
    marker = object()
    fetcher = Recorder()
    resolve(
        b12_order_sign.SERVICE,
        {},
        CONTEXT,
        fhir_server=EHR,
        access_token=None,
        fetcher=fetcher,
        client=marker,
    )
    assert fetcher.calls[0][4] is marker
