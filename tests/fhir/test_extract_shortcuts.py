"""The extraction's shortcuts give the answers the long way gives (docs/benchmarks.md, "FHIR
extraction"): a resource is copied only when a repair changes it, Observations and Conditions
are read as sent outside strict mode, codings are read once, and a result's conversion factor
is looked up once per unit."""

from __future__ import annotations

import copy

import pytest

from cds_service.domain.units import to_canonical
from cds_service.domain.vocabulary import Analyte, ConditionKind
from cds_service.fhir.extract import extract_facts
from cds_service.fhir.jsonread import Malformed, coded, codings, texts
from cds_service.fhir.lenient import repair
from tests.fhir.raw import LOINC, SNOMED, SUBJECT, concept, observation, quantity

CATEGORY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category"}]}


def test_a_resource_that_needs_no_repair_is_read_as_it_is():
    resource = observation("b12", "2132-9", value=quantity(240, "pg/mL"), category=[CATEGORY])
    assert repair(resource) is resource


def test_a_resource_that_needs_a_repair_is_copied_and_the_input_left_as_sent():
    resource = observation("b12", "2132-9", value=quantity(240, "pg/mL"), category=CATEGORY)
    sent = copy.deepcopy(resource)
    repaired = repair(resource)
    assert repaired is not resource and repaired["category"] == [CATEGORY]
    assert resource == sent


def test_a_draft_missing_its_status_is_copied_before_it_is_completed():
    draft = {"resourceType": "MedicationRequest", "id": "d1", "intent": "order"}
    repaired = repair(draft, patient_ref="Patient/p", draft=True)
    assert repaired["status"] == "draft" and repaired["subject"] == {"reference": "Patient/p"}
    assert "status" not in draft and "subject" not in draft


def _condition(category):
    return {
        "resourceType": "Condition",
        "id": "pa",
        "clinicalStatus": concept(
            ("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active")
        ),
        "category": category,
        "code": concept((SNOMED, "84027009", "Pernicious anaemia")),
        "subject": SUBJECT,
    }


@pytest.mark.parametrize("strict", [False, True])
def test_single_object_lists_give_the_same_facts_read_as_sent_or_repaired(strict):
    """Outside strict mode an Observation or Condition is read as sent; strict mode validates
    the repaired form (a single ``category`` object is not valid R4 until it is wrapped)."""
    reference = {"high": quantity(900, "pg/mL")}
    as_lists = [
        observation(
            "b12",
            "2132-9",
            value=quantity(240, "pg/mL"),
            category=[CATEGORY],
            referenceRange=[reference],
        ),
        _condition([CATEGORY]),
    ]
    as_objects = [
        observation(
            "b12",
            "2132-9",
            value=quantity(240, "pg/mL"),
            category=CATEGORY,
            referenceRange=reference,
        ),
        _condition(CATEGORY),
    ]
    expected = extract_facts(as_lists, patient_id="p", strict=strict)
    found = extract_facts(as_objects, patient_id="p", strict=strict)
    assert found == expected and not found.skipped
    (lab,) = found.facts.labs
    assert lab.reference_high == 900 and lab.canonical_value == 240
    assert ConditionKind.PERNICIOUS_ANAEMIA in found.facts.conditions[0].kinds


@pytest.mark.parametrize(
    "value",
    [
        None,
        {},
        {"text": "Cyanocobalamin"},
        {"coding": [{"system": SNOMED, "code": "1", "display": "One"}, {"code": "2"}]},
        {"text": "", "coding": {"system": LOINC, "code": "2132-9", "display": "B12"}},
        {"text": "T", "coding": [{"display": ""}, {"display": "D"}]},
    ],
)
def test_codings_and_texts_read_in_one_pass_answer_as_the_two_reads(value):
    assert coded(value) == (codings(value), texts(value))


@pytest.mark.parametrize(
    "value, path",
    [
        ({"text": 1, "coding": [{"system": 2}]}, "system"),  # the codings are read first
        ({"text": 1, "coding": [{"system": "s"}]}, "text"),
        ({"coding": [{"code": "c", "display": ["x"]}]}, "display"),
        ({"coding": ["not an object"]}, "coding"),
        (["not an object"], "CodeableConcept"),
    ],
)
def test_a_malformed_concept_is_named_by_the_element_as_before(value, path):
    with pytest.raises(Malformed) as raised:
        coded(value)
    assert raised.value.path == path


@pytest.mark.parametrize(
    "loinc, value, code, display",
    [
        ("2132-9", 240, "pg/mL", "pg/mL"),
        ("2132-9", 0.3, "ng/mL", None),
        ("2132-9", 177.1, "pmol/L", "pmol/L"),
        ("2132-9", 177.1, "local-code", "pmol/l"),  # only the display converts
        ("2132-9", 300, "mcg/L", None),  # not a unit B12 converts from
        ("718-7", 118, "g/L", "g/L"),
        ("2160-0", 88.4, "umol/L", "\u00b5mol/L"),
    ],
)
def test_a_results_canonical_value_is_units_to_canonical(loinc, value, code, display):
    unit = {"value": value}
    unit.update({k: v for k, v in (("code", code), ("unit", display)) if v is not None})
    resource = observation("r", loinc, value=unit)
    for _ in range(2):  # the second read answers from the per-unit cache
        (lab,) = extract_facts([resource], patient_id="p").facts.labs
        assert lab.canonical_value == to_canonical(lab.analyte, value, lab.unit)
        assert (lab.canonical_unit is None) == (lab.canonical_value is None)
    assert lab.analyte in (Analyte.TOTAL_B12, Analyte.HAEMOGLOBIN, Analyte.CREATININE)
