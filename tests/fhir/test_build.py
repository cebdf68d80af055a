"""Domain actions -> FHIR R4 resources (rule book §4: suggestions carry valid FHIR R4
``MedicationRequest`` / ``ServiceRequest`` with status draft, the patient as subject, proper
RxNorm / LOINC / SNOMED codings, a route and a dosage text)."""

from __future__ import annotations

import copy

import pytest

from cds_service.domain import regimens
from cds_service.domain.codes import (
    LOINC,
    LOINC_DISPLAY,
    LOINC_IF_ANTIBODY,
    LOINC_MMA,
    LOINC_TOTAL_B12,
    RXNORM,
    SNOMED,
    UCUM,
)
from cds_service.domain.findings import OrderLab, Regimen
from cds_service.domain.policy import Formulary
from cds_service.fhir.build import medication_request, service_request
from cds_service.fhir.extract import extract_facts
from cds_service.fhir.models import validate
from tests.builders import ConditionKind as K
from tests.builders import DrugClass as D
from tests.builders import Route, condition, draft, picture

HYDROXO = Formulary.HYDROXOCOBALAMIN
CYANO = Formulary.CYANOCOBALAMIN
IM = ("78421000", "Intramuscular route")
ORAL = ("26643006", "Oral route")
ONE_MG = {"value": 1, "unit": "mg", "system": UCUM, "code": "mg"}
WEEKS_3 = {"value": 3, "unit": "weeks", "system": UCUM, "code": "wk"}


def _cyano_draft(**kw):
    kw.setdefault("name", "cyanocobalamin 1000 MCG/ML Injectable Solution")
    kw.setdefault("route", Route.INTRAMUSCULAR)
    kw.setdefault("dose_ug", 1000)
    return draft(D.CYANOCOBALAMIN, **kw)


def _same_schedule(**kw) -> Regimen:
    regimen = regimens.same_schedule_hydroxocobalamin(_cyano_draft(**kw))
    assert regimen is not None
    return regimen


#: (id, regimen, route, [(text, repeat, dose)] per phase)
CASES = [
    (
        "neurological-hydroxocobalamin",
        regimens.neurological_regimen(HYDROXO),
        IM,
        [
            (
                "1 mg IM on alternate days; review at 3 weeks; continue on alternate days while "
                "improving",
                {
                    "frequency": 1,
                    "period": 2,
                    "periodUnit": "d",
                    "boundsDuration": WEEKS_3,
                },
                ONE_MG,
            ),
            (
                "then 1 mg IM every 2 months",
                {"frequency": 1, "period": 2, "periodUnit": "mo"},
                ONE_MG,
            ),
        ],
    ),
    (
        "neurological-cyanocobalamin",
        regimens.neurological_regimen(CYANO),
        IM,
        [
            (
                "1000 micrograms IM on alternate days; review at 3 weeks; continue on alternate "
                "days while improving",
                {
                    "frequency": 1,
                    "period": 2,
                    "periodUnit": "d",
                    "boundsDuration": WEEKS_3,
                },
                ONE_MG,
            ),
            (
                "then 1000 micrograms IM monthly",
                {"frequency": 1, "period": 1, "periodUnit": "mo"},
                ONE_MG,
            ),
        ],
    ),
    (
        "standard-hydroxocobalamin",
        regimens.standard_regimen(HYDROXO),
        IM,
        [
            (
                "1 mg IM three times a week for 2 weeks",
                {
                    "frequency": 3,
                    "period": 1,
                    "periodUnit": "wk",
                    "count": 6,
                    "boundsDuration": {"value": 2, "unit": "weeks", "system": UCUM, "code": "wk"},
                },
                ONE_MG,
            ),
            (
                "then 1 mg IM every 2-3 months",
                {"frequency": 1, "period": 2, "periodMax": 3, "periodUnit": "mo"},
                ONE_MG,
            ),
        ],
    ),
    (
        "standard-cyanocobalamin",
        regimens.standard_regimen(CYANO),
        IM,
        [
            (
                "1000 micrograms IM three times a week for 2 weeks",
                {
                    "frequency": 3,
                    "period": 1,
                    "periodUnit": "wk",
                    "count": 6,
                    "boundsDuration": {"value": 2, "unit": "weeks", "system": UCUM, "code": "wk"},
                },
                ONE_MG,
            ),
            (
                "then 1000 micrograms IM monthly",
                {"frequency": 1, "period": 1, "periodUnit": "mo"},
                ONE_MG,
            ),
        ],
    ),
    (
        "oral",
        regimens.ORAL_REGIMEN,
        ORAL,
        [
            (
                "1000 micrograms by mouth once daily (1000-2000 micrograms daily)",
                {"frequency": 1, "period": 1, "periodUnit": "d"},
                ONE_MG,
            ),
        ],
    ),
    (
        "maintenance-neurological-hydroxocobalamin",
        regimens.maintenance_regimen(picture(condition(K.PERIPHERAL_NEUROPATHY)), HYDROXO),
        IM,
        [
            (
                "1 mg IM every 2 months, lifelong",
                {"frequency": 1, "period": 2, "periodUnit": "mo"},
                ONE_MG,
            )
        ],
    ),
    (
        "maintenance-hydroxocobalamin",
        regimens.maintenance_regimen(picture(condition(K.PERNICIOUS_ANAEMIA)), HYDROXO),
        IM,
        [
            (
                "1 mg IM every 2-3 months, lifelong",
                {"frequency": 1, "period": 2, "periodMax": 3, "periodUnit": "mo"},
                ONE_MG,
            )
        ],
    ),
    (
        "maintenance-cyanocobalamin",
        regimens.maintenance_regimen(picture(condition(K.PERNICIOUS_ANAEMIA)), CYANO),
        IM,
        [
            (
                "1000 micrograms IM monthly, lifelong",
                {"frequency": 1, "period": 1, "periodUnit": "mo"},
                ONE_MG,
            )
        ],
    ),
    (
        "same-schedule-monthly",
        _same_schedule(interval_days=30.4375),
        IM,
        [("1 mg IM monthly", {"frequency": 1, "period": 1, "periodUnit": "mo"}, ONE_MG)],
    ),
    (
        "same-schedule-three-a-week-course",
        _same_schedule(interval_days=7 / 3, count_=6),
        IM,
        [
            (
                "1 mg IM 3 times a week, 6 doses",
                {"frequency": 3, "period": 1, "periodUnit": "wk", "count": 6},
                ONE_MG,
            )
        ],
    ),
    (
        "same-schedule-alternate-days",
        _same_schedule(interval_days=2),
        IM,
        [("1 mg IM on alternate days", {"frequency": 1, "period": 2, "periodUnit": "d"}, ONE_MG)],
    ),
    (
        "same-schedule-single-dose",
        _same_schedule(count_=1),
        IM,
        [("1 mg IM once", {"frequency": 1, "period": 1, "periodUnit": "d", "count": 1}, ONE_MG)],
    ),
    (
        "same-schedule-500-micrograms-weekly",
        _same_schedule(dose_ug=500, interval_days=7),
        IM,
        [
            (
                "500 micrograms IM weekly",
                {"frequency": 1, "period": 1, "periodUnit": "wk"},
                {"value": 500, "unit": "microgram", "system": UCUM, "code": "ug"},
            )
        ],
    ),
    (
        "same-schedule-1500-micrograms-every-2-months",
        _same_schedule(dose_ug=1500, interval_days=60.875),
        IM,
        [
            (
                "1.5 mg IM every 2 months",
                {"frequency": 1, "period": 2, "periodUnit": "mo"},
                {"value": 1500, "unit": "microgram", "system": UCUM, "code": "ug"},
            )
        ],
    ),
]
IDS = [case[0] for case in CASES]


def empty_values(value, path="$"):
    """Paths of null / "" / [] / {} values (docs/protocol.md: optional fields are omitted)."""
    if value is None or value == "" or value == [] or value == {}:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from empty_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from empty_values(item, f"{path}[{index}]")


# --- MedicationRequest -----------------------------------------------------------------------
@pytest.mark.parametrize("key, regimen, route, phases", CASES, ids=IDS)
def test_medication_request_is_valid_r4_draft_proposal_for_the_patient(key, regimen, route, phases):
    resource = medication_request(regimen, "pat-42")
    validate(resource)
    assert resource["resourceType"] == "MedicationRequest"
    assert (resource["status"], resource["intent"]) == ("draft", "proposal")
    assert resource["subject"] == {"reference": "Patient/pat-42"}
    assert "id" not in resource
    assert list(empty_values(resource)) == []


@pytest.mark.parametrize("key, regimen, route, phases", CASES, ids=IDS)
def test_medication_request_carries_the_rxnorm_product(key, regimen, route, phases):
    code, display = regimen.rxnorm
    concept = medication_request(regimen, "p")["medicationCodeableConcept"]
    assert concept["coding"] == [{"system": RXNORM, "code": code, "display": display}]
    assert concept["text"] == display


@pytest.mark.parametrize("key, regimen, route, phases", CASES, ids=IDS)
def test_dosage_text_timing_route_and_dose_match_each_phase(key, regimen, route, phases):
    resource = medication_request(regimen, "p")
    dosages = resource["dosageInstruction"]
    assert len(dosages) == len(phases) == len(regimen.phases)
    for index, (dosage, (text, repeat, dose)) in enumerate(zip(dosages, phases), start=1):
        assert dosage["sequence"] == index
        assert dosage["text"] == text
        assert dosage["timing"] == {"repeat": repeat}
        assert dosage["route"] == {
            "coding": [{"system": SNOMED, "code": route[0], "display": route[1]}],
            "text": route[1],
        }
        assert dosage["doseAndRate"] == [{"doseQuantity": dose}]
    assert resource["note"] == [{"text": regimen.text}]


def test_regimen_products():
    assert regimens.neurological_regimen(HYDROXO).rxnorm[0] == "317106"
    assert regimens.standard_regimen(CYANO).rxnorm[0] == "309594"
    assert regimens.ORAL_REGIMEN.rxnorm[0] == "308862"
    assert _same_schedule(interval_days=7).rxnorm[0] == "317106"


def test_same_schedule_cannot_copy_a_repeated_order_without_an_interval():
    assert regimens.same_schedule_hydroxocobalamin(_cyano_draft(count_=6)) is None


@pytest.mark.parametrize("key, regimen, route, phases", CASES, ids=IDS)
def test_a_built_order_reads_back_as_the_same_regimen(key, regimen, route, phases):
    # what a clinician accepts and signs next time comes back through the adapter
    built = medication_request(regimen, "pat-1") | {"id": "suggested"}
    (med,) = extract_facts([], [built], patient_id="pat-1", strict=True).facts.medications
    first = regimen.phases[0]
    assert med.classes == {regimen.drug}
    assert med.route is regimen.route
    assert med.dose_ug == first.dose_ug
    assert med.count == first.count
    days = {"d": 1, "wk": 7, "mo": 30.4375}[first.unit] * first.every / first.frequency
    assert med.interval_days == pytest.approx(days)
    assert med.is_draft and not med.is_stop_order


# --- ServiceRequest --------------------------------------------------------------------------
ORDERS = [
    OrderLab(LOINC_MMA, LOINC_DISPLAY[LOINC_MMA], "Order serum MMA"),
    OrderLab(LOINC_TOTAL_B12, LOINC_DISPLAY[LOINC_TOTAL_B12], "Order serum B12"),
    OrderLab(
        LOINC_IF_ANTIBODY,
        LOINC_DISPLAY[LOINC_IF_ANTIBODY],
        "Order IF antibody",
        note="Not within 2 weeks of a B12 injection.",
    ),
]


@pytest.mark.parametrize("order", ORDERS, ids=[o.loinc for o in ORDERS])
def test_service_request_is_valid_r4_draft_proposal_for_the_patient(order):
    resource = service_request(order, "pat-42")
    validate(resource)
    assert resource["resourceType"] == "ServiceRequest"
    assert (resource["status"], resource["intent"]) == ("draft", "proposal")
    assert resource["subject"] == {"reference": "Patient/pat-42"}
    assert resource["code"] == {
        "coding": [{"system": LOINC, "code": order.loinc, "display": order.display}],
        "text": order.display,
    }
    assert resource["category"] == [
        {"coding": [{"system": SNOMED, "code": "108252007", "display": "Laboratory procedure"}]}
    ]
    assert list(empty_values(resource)) == []


def test_a_service_request_note_only_when_given():
    assert "note" not in service_request(ORDERS[0], "p")
    assert service_request(ORDERS[2], "p")["note"] == [
        {"text": "Not within 2 weeks of a B12 injection."}
    ]


def test_a_built_service_request_reads_back_as_a_draft_lab_order():
    built = service_request(ORDERS[0], "pat-1") | {"id": "sr"}
    (order,) = extract_facts([], [built], patient_id="pat-1", strict=True).facts.draft_labs
    assert order.resource_id == "ServiceRequest/sr"
    assert [a.value for a in order.analytes] == ["mma"]


# --- independence ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build, action", [(medication_request, CASES[0][1]), (service_request, ORDERS[2])]
)
def test_two_calls_return_independent_dicts(build, action):
    first = build(action, "pat-a")
    second = build(action, "pat-b")
    assert first["subject"] == {"reference": "Patient/pat-a"}
    assert second["subject"] == {"reference": "Patient/pat-b"}
    pristine = copy.deepcopy(second)

    first["subject"]["reference"] = "Patient/changed"
    first["status"] = "active"
    first["code" if "code" in first else "medicationCodeableConcept"]["coding"][0]["code"] = "x"
    first["note"][0]["text"] = "mutated"
    first.setdefault("dosageInstruction", [{}])[0]["text"] = "mutated"

    assert second == pristine
    assert build(action, "pat-b") == pristine  # the cache was not touched either
    assert build(action, "pat-a")["subject"] == {"reference": "Patient/pat-a"}
