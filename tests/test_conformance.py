"""CDS Hooks 2.0.1 conformance, row by row of docs/protocol.md
(Endpoints, Request, Response, Errors, CORS)."""

from __future__ import annotations

import json

import pytest

from cds_service.cdshooks.application import CdsApplication
from cds_service.cdshooks.errors import ERROR_CODE_SYSTEM
from cds_service.cdshooks.schemas import CardSchema, ResponseSchema
from cds_service.cdshooks.service import Registry, ServiceDefinition
from cds_service.domain.codes import RULE_CODE_SYSTEM
from cds_service.domain.engine import HookKind
from cds_service.web import create_app
from hooks import registry as registry_
from tests import fhirjson as fj
from tests.builders import NOW as NOW_
from tests.conftest import sandbox_request

ORIGIN = {"Origin": "https://sandbox.cds-hooks.org"}
SERVICES = ("b12-order-select", "b12-order-sign", "b12-patient-view")


def no_empty_values(data) -> bool:
    if isinstance(data, dict):
        return all(v not in (None, "", [], {}) or k == "cards" for k, v in data.items()) and all(
            no_empty_values(v) for v in data.values()
        )
    if isinstance(data, list):
        return all(no_empty_values(v) for v in data)
    return True


def assert_outcome(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["details"]["coding"][0] == {"system": ERROR_CODE_SYSTEM, "code": code}
    assert issue["diagnostics"] and "Traceback" not in issue["diagnostics"]
    assert response.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN["Origin"])
    return issue


def folate_request(hook: str = "order-sign") -> dict:
    folic = fj.medication(
        "MedicationRequest",
        "folic-1",
        "Folic acid 5 MG Oral Tablet",
        code="199318",
        status="draft",
        start="2026-06-15",
        dose=(1, "{tablet}"),
        every=(1, "d"),
    )
    labs = [
        fj.observation("b12-1", "2132-9", 118, "pg/mL", "2026-06-01"),
        fj.observation("mcv-1", "787-2", 108, "fL", "2026-06-01"),
    ]
    prefetch = fj.full_prefetch("pat-1", fj.patient(), labs, [], [], [])
    return fj.request(
        hook, drafts=[folic], selections=["MedicationRequest/folic-1"], prefetch=prefetch
    )


# --- Endpoints ---------------------------------------------------------------------------
def test_discovery_lists_the_three_services_sorted_by_id(client):
    response = client.get("/cds-services", headers=ORIGIN)
    assert response.status_code == 200
    services = response.get_json()["services"]
    assert [s["id"] for s in services] == list(SERVICES)
    for service in services:
        assert {"id", "hook", "title", "description", "prefetch"} <= service.keys()
        assert service["hook"] in ("order-sign", "order-select", "patient-view")
        assert all("{{context.patientId}}" in t for t in service["prefetch"].values())
    assert no_empty_values(response.get_json())


def test_discovery_is_deterministic(client):
    assert client.get("/cds-services").data == client.get("/cds-services").data


def test_prefetch_templates_use_only_the_2_0_query_subset(client):
    for service in client.get("/cds-services").get_json()["services"]:
        for template in service["prefetch"].values():
            query = template.partition("?")[2]
            for param in filter(None, query.split("&")):
                name = param.split("=")[0]
                assert name in ("patient", "code", "status", "_sort", "_count"), template
            if template.startswith("Observation?"):
                assert "_sort=-date" in template


@pytest.mark.parametrize("service", SERVICES)
def test_invocation_with_nothing_to_say_answers_empty_cards(client, service):
    hook = service.removeprefix("b12-")
    body = sandbox_request(hook)
    response = client.post(f"/cds-services/{service}", json=body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}
    assert response.mimetype == "application/json"


# --- Response ----------------------------------------------------------------------------
@pytest.fixture
def folate_cards(client):
    response = client.post("/cds-services/b12-order-sign", json=folate_request())
    assert response.status_code == 200
    return response.get_json()["cards"]


def test_cards_validate_against_the_card_schema(folate_cards):
    assert folate_cards
    assert ResponseSchema().validate({"cards": folate_cards}) == {}
    for card in folate_cards:
        assert CardSchema().validate(card) == {}


def test_optional_fields_are_omitted_never_null_or_empty(folate_cards):
    assert no_empty_values({"cards": folate_cards})


def test_summaries_are_under_140_characters(folate_cards):
    assert all(len(card["summary"]) < 140 for card in folate_cards)


def test_cards_and_suggestions_carry_uuids(folate_cards):
    uuids = [c["uuid"] for c in folate_cards] + [
        s["uuid"] for c in folate_cards for s in c.get("suggestions", [])
    ]
    assert len(uuids) == len(set(uuids)) and all(uuids)


def test_source_topic_carries_the_rule_id(folate_cards):
    topic = folate_cards[0]["source"]["topic"]
    assert topic["system"] == RULE_CODE_SYSTEM
    assert topic["code"] == "folate-before-b12"
    assert topic["display"]


def test_selection_behavior_is_present_with_suggestions(folate_cards):
    for card in folate_cards:
        if card.get("suggestions"):
            assert card["selectionBehavior"] in ("at-most-one", "any")


def test_delete_actions_use_resource_id_without_resource(folate_cards):
    deletes = [
        a
        for c in folate_cards
        for s in c.get("suggestions", [])
        for a in s["actions"]
        if a["type"] == "delete"
    ]
    assert deletes
    for action in deletes:
        assert action["resourceId"] == "MedicationRequest/folic-1"
        assert "resource" not in action


def test_override_reasons_have_display(folate_cards):
    reasons = [r for c in folate_cards for r in c.get("overrideReasons", [])]
    assert reasons and all(r["display"] and r["code"] and r["system"] for r in reasons)


def test_critical_cards_come_first(folate_cards):
    order = {"critical": 0, "warning": 1, "info": 2}
    ranks = [order[c["indicator"]] for c in folate_cards]
    assert ranks == sorted(ranks)


# --- Request leniency --------------------------------------------------------------------
def test_non_uuid_hook_instance_and_unknown_fields_are_accepted(client):
    body = folate_request()
    body["hookInstance"] = "not-a-uuid"
    body["somethingNew"] = {"x": 1}
    body["context"]["extra"] = True
    assert client.post("/cds-services/b12-order-sign", json=body).status_code == 200


def test_draft_orders_bundle_without_type_is_accepted(client):
    body = folate_request()
    body["context"]["draftOrders"].pop("type")
    response = client.post("/cds-services/b12-order-sign", json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"][0]["indicator"] == "critical"


def test_category_as_single_object_is_accepted(client):
    body = folate_request()
    body["context"]["draftOrders"]["entry"][0]["resource"]["category"] = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                "code": "community",
            }
        ]
    }
    assert (
        client.post("/cds-services/b12-order-sign", json=body).get_json()["cards"][0]["indicator"]
        == "critical"
    )


def test_dstu2_medication_order_is_read_as_a_draft(client):
    body = folate_request()
    body["context"]["draftOrders"]["entry"][0]["resource"] = {
        "resourceType": "MedicationOrder",
        "id": "mo-1",
        "status": "draft",
        "patient": {"reference": "Patient/pat-1"},
        "dateWritten": "2026-06-15",
        "medicationCodeableConcept": {"text": "Folic acid 1 MG Oral Tablet"},
        "dosageInstruction": [
            {
                "doseQuantity": {"value": 1, "unit": "tablet"},
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            }
        ],
    }
    cards = client.post("/cds-services/b12-order-sign", json=body).get_json()["cards"]
    deletes = [
        a["resourceId"]
        for c in cards
        for s in c.get("suggestions", [])
        for a in s["actions"]
        if a["type"] == "delete"
    ]
    assert cards[0]["indicator"] == "critical" and deletes == ["MedicationOrder/mo-1"]


def test_one_invalid_resource_is_skipped_not_fatal(client):
    body = folate_request()
    body["prefetch"]["b12Labs"]["entry"].append(
        {
            "resource": {
                "resourceType": "Observation",
                "id": "broken",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "2132-9"}]},
                "effectiveDateTime": "2026-06-02",
                "valueQuantity": {"value": "lots"},
            }
        }
    )
    response = client.post("/cds-services/b12-order-sign", json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"][0]["indicator"] == "critical"


# --- Errors ------------------------------------------------------------------------------
def test_malformed_json_is_400(client):
    response = client.post(
        "/cds-services/b12-order-sign", data="{", content_type="application/json"
    )
    assert_outcome(response, 400, "invalid-request")


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda b: b.pop("hook"), "hook"),
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b.pop("context"), "context"),
        (lambda b: b["context"].pop("patientId"), "context.patientId"),
        (lambda b: b["context"].pop("userId"), "context.userId"),
        (lambda b: b["context"].pop("draftOrders"), "context.draftOrders"),
        (
            lambda b: b["context"].__setitem__("draftOrders", {"resourceType": "Patient"}),
            "context.draftOrders",
        ),
        (lambda b: b.__setitem__("fhirServer", "not a url"), "fhirServer"),
        (
            lambda b: b.__setitem__("fhirAuthorization", {"token_type": "Bearer"}),
            "fhirAuthorization.access_token",
        ),
        (
            lambda b: b.__setitem__(
                "fhirAuthorization", {"access_token": "x", "token_type": "MAC"}
            ),
            "fhirAuthorization.token_type",
        ),
        (lambda b: b.__setitem__("prefetch", []), "prefetch"),
    ],
)
def test_malformed_envelope_is_400_naming_the_field(client, mutate, field):
    body = folate_request()
    mutate(body)
    issue = assert_outcome(
        client.post("/cds-services/b12-order-sign", json=body), 400, "invalid-request"
    )
    assert issue["diagnostics"].startswith(field)


def test_wrong_hook_for_the_service_is_400(client):
    body = folate_request("order-sign")
    issue = assert_outcome(
        client.post("/cds-services/b12-patient-view", json=body), 400, "invalid-request"
    )
    assert "patient-view" in issue["diagnostics"]


def test_order_select_requires_selections(client):
    body = folate_request("order-select")
    body["context"].pop("selections")
    assert_outcome(client.post("/cds-services/b12-order-select", json=body), 400, "invalid-request")


def test_unknown_service_is_404(client):
    assert_outcome(
        client.post("/cds-services/nope", json=folate_request(), headers=ORIGIN),
        404,
        "unknown-service",
    )


def test_unknown_route_is_404_outcome_with_cors(client):
    assert_outcome(client.get("/nowhere", headers=ORIGIN), 404, "not-found")


@pytest.mark.parametrize(
    "method, path",
    [
        ("delete", "/cds-services"),
        ("get", "/cds-services/b12-order-sign"),
        ("put", "/cds-services/b12-order-sign/feedback"),
    ],
)
def test_wrong_method_is_405(client, method, path):
    response = getattr(client, method)(path, headers=ORIGIN)
    assert_outcome(response, 405, "method-not-allowed")
    assert response.headers["Allow"]


def test_body_over_the_limit_is_413(client):
    big = json.dumps({"hook": "order-sign", "padding": "x" * (5 * 1024 * 1024)})
    response = client.post(
        "/cds-services/b12-order-sign", data=big, content_type="application/json", headers=ORIGIN
    )
    assert_outcome(response, 413, "payload-too-large")


def test_non_json_body_is_415(client):
    response = client.post(
        "/cds-services/b12-order-sign",
        data="hook=order-sign",
        content_type="application/x-www-form-urlencoded",
        headers=ORIGIN,
    )
    assert_outcome(response, 415, "unsupported-media-type")


def test_required_data_unavailable_is_412_only_when_no_data_at_all_was_obtained(client):
    """patient-view without the Patient degrades; with nothing at all to go on it
    is still a 412 naming the key."""
    body = sandbox_request("patient-view")
    body.pop("fhirServer")
    body["prefetch"] = {}
    issue = assert_outcome(
        client.post("/cds-services/b12-patient-view", json=body), 412, "prefetch-unavailable"
    )
    assert "patient" in issue["diagnostics"]


def test_a_bug_is_a_generic_500_without_internals(settings, store):
    def broken(facts, now, policy):
        raise RuntimeError("secret internal detail")

    registry = Registry(
        [ServiceDefinition("broken", HookKind.PATIENT_VIEW, "Broken", "Always fails", broken)]
    )
    client = create_app(settings, CdsApplication(registry=registry, store=store)).test_client()
    body = sandbox_request("patient-view")
    response = client.post("/cds-services/broken", json=body, headers=ORIGIN)
    issue = assert_outcome(response, 500, "internal-error")
    assert "secret" not in response.get_data(as_text=True)
    assert "RuntimeError" not in issue["diagnostics"]


# --- CORS --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/cds-services", "/cds-services/b12-order-sign", "/cds-services/b12-order-sign/feedback"],
)
def test_preflight_allows_the_sandbox(client, path):
    response = client.options(
        path,
        headers={
            **ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert {"GET", "POST", "OPTIONS"} <= set(
        m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")
    )
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


def test_cors_on_success_and_on_errors(client):
    assert client.get("/cds-services", headers=ORIGIN).headers["Access-Control-Allow-Origin"] == "*"
    bad = client.post(
        "/cds-services/b12-order-sign", data="{", content_type="application/json", headers=ORIGIN
    )
    assert bad.headers["Access-Control-Allow-Origin"] == "*"


def test_evaluation_time_header_is_honoured_in_development_only(client, settings, store):
    body = folate_request()
    later = {"CDS-Evaluation-Time": "2028-06-15T12:00:00Z"}  # the B12 result is stale by then
    assert (
        client.post("/cds-services/b12-order-sign", json=body).get_json()["cards"][0]["indicator"]
        == "critical"
    )
    stale = client.post("/cds-services/b12-order-sign", json=body, headers=later).get_json()[
        "cards"
    ]
    assert all("118" not in c["summary"] for c in stale)
    from dataclasses import replace

    production = create_app(
        replace(settings, profile="production", allow_anonymous=True),
        CdsApplication(registry=registry_(), store=store, clock=lambda: NOW_),
    )
    cards = (
        production.test_client()
        .post("/cds-services/b12-order-sign", json=body, headers=later)
        .get_json()["cards"]
    )
    assert cards[0]["indicator"] == "critical"


def test_bad_evaluation_time_header_is_400(client):
    response = client.post(
        "/cds-services/b12-order-sign",
        json=folate_request(),
        headers={"CDS-Evaluation-Time": "yesterday", **ORIGIN},
    )
    assert_outcome(response, 400, "invalid-request")


def test_strict_fhir_mode_skips_a_resource_that_is_not_valid_r4(settings, store):
    """CDS_FHIR_STRICT=1 validates each selected resource in full: an Observation valid in the
    elements the rules read but invalid elsewhere is skipped; the default path reads it."""
    body = folate_request()
    body["prefetch"]["b12Labs"]["entry"][0]["resource"]["subject"] = {"reference": 12}
    lenient = CdsApplication(registry=registry_(), store=store, clock=lambda: NOW_)
    strict = CdsApplication(registry=registry_(), store=store, clock=lambda: NOW_, strict_fhir=True)
    assert lenient.invoke("b12-order-sign", body)["cards"][0]["indicator"] == "critical"
    assert all(c["indicator"] != "critical" for c in strict.invoke("b12-order-sign", body)["cards"])
