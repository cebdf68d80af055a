"""References as EHRs write them: relative, absolute, versioned, contained, and to a
Medication that arrives as its own entry of draftOrders (Epic since 2024)."""

from __future__ import annotations

import pytest

from cds_service.domain.vocabulary import DrugClass
from cds_service.fhir.extract import extract_facts, reference_key, resolve_reference
from tests.scenarios import definitions
from tests.scenarios.build import card_rules, respond

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
FOLIC_5MG = {
    "resourceType": "Medication",
    "id": "eFA5",
    "code": {"coding": [{"system": RXNORM, "code": "199318"}], "text": "FA 5MG TAB"},
}


@pytest.mark.parametrize(
    "reference, key",
    [
        ("Medication/eFA5", "Medication/eFA5"),
        ("https://ehr.example.org/api/FHIR/R4/Medication/eFA5", "Medication/eFA5"),
        ("https://ehr.example.org/fhir/Medication/eFA5/_history/3", "Medication/eFA5"),
        ("Medication/a.b-1", "Medication/a.b-1"),
        ("#med", None),
        ("urn:uuid:4b2d0b5e-0c39-4e0c-8f2c-1d8b7c1d1e11", None),
        ("Medication", None),
        ("medication/eFA5", None),
        ("Medication/" + "x" * 65, None),
    ],
)
def test_reference_key_matches_the_trailing_type_and_id(reference, key):
    assert reference_key(reference) == key


def _draft(reference: str, **extra) -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationReference": {"reference": reference, "display": "FA 5MG TAB"},
        **extra,
    }


def _classes(resources, drafts):
    facts = extract_facts(resources, drafts, patient_id="p1").facts
    return [m.classes for m in facts.medications]


def test_medication_entry_of_draft_orders_is_resolved():
    assert _classes([], [_draft("Medication/eFA5"), FOLIC_5MG]) == [{DrugClass.FOLIC_ACID}]


def test_absolute_reference_to_a_prefetched_medication_is_resolved():
    absolute = "https://ehr.example.org/api/FHIR/R4/Medication/eFA5"
    assert _classes([FOLIC_5MG], [_draft(absolute)]) == [{DrugClass.FOLIC_ACID}]


def test_contained_medication_is_resolved():
    contained = {**FOLIC_5MG, "id": "m"}
    assert _classes([], [_draft("#m", contained=[contained])]) == [{DrugClass.FOLIC_ACID}]


def test_an_unresolvable_reference_falls_back_to_its_display():
    draft = _draft("Medication/unknown")
    draft["medicationReference"]["display"] = "Folic acid 5 MG Oral Tablet"
    assert _classes([], [draft]) == [{DrugClass.FOLIC_ACID}]
    assert _classes([], [_draft("Medication/unknown")]) == []  # "FA 5MG TAB" says nothing


def test_a_reference_to_another_resource_type_is_not_a_medication():
    other = {"resourceType": "Substance", "id": "eFA5", "code": FOLIC_5MG["code"]}
    assert resolve_reference({"reference": "Substance/eFA5"}, {}, {}) is None
    assert _classes([other], [_draft("Substance/eFA5")]) == []


def test_malformed_references_are_ignored_not_fatal():
    for reference in (None, 7, {"reference": 7}, {"reference": ""}, {"reference": "#"}):
        assert resolve_reference(reference, {"contained": "nonsense"}, {}) is None


EPIC_SLUGS = [s.slug for s in definitions.SCENARIOS if s.slug.startswith("epic-")]


def test_every_rule_that_reads_medications_has_an_epic_shaped_scenario():
    rules = {r for s in definitions.SCENARIOS if s.slug.startswith("epic-") for r in s.rules}
    assert {
        definitions.FOLATE,
        definitions.RENAL,
        definitions.REGIMEN,
        definitions.MONITORING,
        definitions.LIFELONG,
        definitions.RETEST,
        definitions.SCREENING,
        definitions.INTERFERENCE,
        definitions.NITROUS,
    } <= rules


@pytest.mark.parametrize("slug", EPIC_SLUGS)
def test_epic_scenarios_name_drugs_only_through_medication_resources(slug):
    """No MedicationRequest or MedicationStatement of the request carries a drug code or a
    recognisable name itself; without reference resolution the cards change (the lifelong-
    therapy card fires either way, from the pernicious anaemia, but then misses the order)."""
    scenario = next(s for s in definitions.SCENARIOS if s.slug == slug)
    request = scenario.request()
    orders = [e["resource"] for e in request["context"].get("draftOrders", {}).get("entry", [])]
    for value in request["prefetch"].values():
        orders += [e["resource"] for e in (value or {}).get("entry", [])]
    kinds = ("MedicationRequest", "MedicationStatement")
    medications = [r for r in orders if r["resourceType"] in kinds]
    assert any("medicationReference" in m for m in medications)
    for m in medications:
        assert "coding" not in m.get("medicationCodeableConcept", {})  # an uncoded other drug
    resolved = respond(scenario, scenario.request())
    # Every reference pointed at a Medication the request does not hold: what is left to
    # read is each reference's display. (Not by patching the resolver: extract is compiled.)
    dangling = scenario.request()
    bundles = [dangling["context"].get("draftOrders") or {}, *dangling["prefetch"].values()]
    for resource in (e["resource"] for b in bundles for e in (b or {}).get("entry", [])):
        if "reference" in resource.get("medicationReference", {}):
            resource["medicationReference"]["reference"] = "Medication/not-in-this-request"
    unresolved = respond(scenario, dangling)
    assert card_rules(resolved) == list(scenario.rules)
    assert unresolved != resolved


def test_hostile_resource_types_among_draft_orders_are_ignored():
    """Found by the hostile property tests: a resourceType that is a list must not be hashed."""
    drafts = [_draft("Medication/eFA5"), {"resourceType": ["Medication"], "id": "eFA5"}]
    drafts.append({"resourceType": {"a": 1}, "id": "x"})
    assert _classes([], drafts + [FOLIC_5MG]) == [{DrugClass.FOLIC_ACID}]
