"""What real EHRs send instead of data: Epic's searchset of OperationOutcomes for a
failed or empty query, fhirAuthorization with fields missing, patient-view without the Patient.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from cds_service.cdshooks.application import PATIENT_UNAVAILABLE, CdsApplication
from cds_service.cdshooks.errors import PrefetchUnavailable
from cds_service.cdshooks.prefetch import KeyState, classify, resolve
from cds_service.domain.vocabulary import DataCategory
from hooks import b12_patient_view, registry
from tests import fhirjson as fj
from tests.scenarios.kit import FOLIC_ACID_5MG, Chart, When

from .conftest import EHR, TOKEN
from .test_key_states import CONTEXT, PATIENT, Recorder, all_sent

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)


def outcome(*severities: str) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": s, "code": "processing"} for s in severities],
    }


def epic_searchset(*outcomes: dict) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 0,
        "entry": [{"resource": o, "search": {"mode": "outcome"}} for o in outcomes],
    }


@pytest.mark.parametrize(
    "value, state",
    [
        (epic_searchset(outcome("error")), KeyState.FAILED),
        (epic_searchset(outcome("fatal")), KeyState.FAILED),
        (epic_searchset(outcome("warning"), outcome("error")), KeyState.FAILED),
        (epic_searchset(outcome("information", "error")), KeyState.FAILED),
        (epic_searchset({"resourceType": "OperationOutcome"}), KeyState.FAILED),
        (epic_searchset(outcome("warning")), KeyState.EMPTY),
        (epic_searchset(outcome("information")), KeyState.EMPTY),
        (epic_searchset(outcome("warning"), outcome("information")), KeyState.EMPTY),
    ],
)
def test_a_searchset_of_only_operation_outcomes_is_failed_or_empty_by_severity(value, state):
    assert classify(value).state is state


def test_outcomes_beside_results_are_not_results():
    b12 = {"resourceType": "Observation", "id": "b12"}
    value = classify(epic_searchset(outcome("warning")) | {"entry": [{"resource": b12}]})
    assert value.state is KeyState.BUNDLE and value.resources == (b12,)
    mixed = epic_searchset(outcome("information"))
    mixed["entry"].append({"resource": b12})
    assert classify(mixed).resources == (b12,)


def test_an_epic_error_outcome_is_fetched_by_the_fallback():
    fetcher = Recorder({"b12Labs": [{"resourceType": "Observation", "id": "b12"}]})
    result = resolve(
        b12_patient_view.SERVICE,
        all_sent(b12Labs=epic_searchset(outcome("error"))),
        CONTEXT,
        fhir_server=EHR,
        access_token=TOKEN,
        fetcher=fetcher,
    )
    assert list(fetcher.calls[0][2]) == ["b12Labs"]
    assert result.fetched == ["b12Labs"] and not result.missing


def test_an_epic_error_outcome_that_cannot_be_fetched_is_named_unavailable_on_the_card():
    c = Chart(When(NOW), "pat-epic-oo", age=60)
    c.draft(FOLIC_ACID_5MG, mid="fa-1")
    body = c.request("b12-order-sign")
    body["prefetch"]["b12Labs"] = epic_searchset(outcome("error"))
    body["prefetch"]["bloodCounts"] = epic_searchset(outcome("warning"))  # ran, found nothing
    core = CdsApplication(registry=registry())
    (card,) = core.invoke("b12-order-sign", body, now=NOW)["cards"]
    assert card["source"]["topic"]["code"] == "folate-before-b12"
    missing = next(line for line in card["detail"].splitlines() if "Not available" in line)
    assert "B12 results" in missing and "blood count" not in missing


@pytest.mark.parametrize("field", ["token_type", "expires_in", "scope", "subject"])
def test_fhir_authorization_needs_only_the_access_token(field, caplog):
    caplog.set_level(logging.INFO, logger="cds_service")
    body = fj.request(
        "patient-view", pid="p1", prefetch={"patient": fj.patient("p1", "1950-01-01", "male")}
    )
    body["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    del body["fhirAuthorization"][field]
    core = CdsApplication(registry=registry())
    assert "cards" in core.invoke("b12-patient-view", body, now=NOW)
    (record,) = [r for r in caplog.records if r.msg == "fhirAuthorization incomplete"]
    assert record.absent_fields == [field]
    assert TOKEN not in caplog.text and "patient/*.read" not in caplog.text


def _patient_view_without_patient(**prefetch_overrides) -> dict:
    c = Chart(When(NOW), "pat-no-patient", age=80, gender="male")
    c.b12(150)
    c.blood_count(12.5, 104)
    body = c.request("b12-patient-view")
    body["prefetch"].pop("patient")
    body["prefetch"].update(prefetch_overrides)
    return body


def test_patient_view_without_the_patient_answers_the_cards_that_need_neither_age_nor_sex():
    core = CdsApplication(registry=registry())
    cards = core.invoke("b12-patient-view", _patient_view_without_patient(), now=NOW)["cards"]
    rules = [c["source"]["topic"]["code"] for c in cards]
    assert "b12-deficiency-untreated" in rules  # B12 150 ng/L needs no age or sex
    for card in cards:
        assert card["detail"].endswith(PATIENT_UNAVAILABLE)


def test_patient_view_with_the_patient_has_no_such_line():
    core = CdsApplication(registry=registry())
    body = _patient_view_without_patient()
    body["prefetch"]["patient"] = fj.patient("pat-no-patient", "1946-01-01", "male")
    for card in core.invoke("b12-patient-view", body, now=NOW)["cards"]:
        assert PATIENT_UNAVAILABLE not in card["detail"]


def test_patient_view_with_no_data_at_all_is_still_a_412():
    core = CdsApplication(registry=registry())
    body = _patient_view_without_patient()
    body["prefetch"] = {}
    with pytest.raises(PrefetchUnavailable) as caught:
        core.invoke("b12-patient-view", body, now=NOW)
    assert caught.value.expression == ["prefetch.patient"]


def test_a_site_can_turn_degradation_off_per_client():
    from cds_service.cdshooks.auth import AuthenticatedClient
    from cds_service.cdshooks.clients import parse_trusted_clients

    (client,) = parse_trusted_clients(
        {
            "clients": [
                {
                    "issuer": "https://ehr.example.org",
                    "jwks_url": "https://ehr.example.org/jwks",
                    "capabilities": {"degrade_without_patient": False},
                }
            ]
        }
    )
    core = CdsApplication(registry=registry())
    with pytest.raises(PrefetchUnavailable):
        core.invoke(
            "b12-patient-view",
            _patient_view_without_patient(),
            now=NOW,
            client=AuthenticatedClient(issuer=client.issuer, trusted=client),
        )


def test_degraded_resolution_records_the_patient_as_missing():
    result = resolve(
        b12_patient_view.SERVICE,
        {k: v for k, v in all_sent().items() if k != "patient"},
        CONTEXT,
        fhir_server=None,
        access_token=None,
        fetcher=None,
        degrade_required=True,
    )
    assert result.missing == {DataCategory.PATIENT}
    assert PATIENT["id"] == CONTEXT["patientId"]
