"""Reading a Bundle's entries and links (``fhir.jsonread.bundle_entries`` / ``bundle_links``),
shared by the prefetch classification and the FHIR client's pages."""

from __future__ import annotations

from cds_service.fhir.jsonread import bundle_entries, bundle_links

OBS = {"resourceType": "Observation", "id": "o1"}
MED = {"resourceType": "MedicationRequest", "id": "m1"}
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning"}]}


def test_resources_in_order_with_the_outcomes_apart():
    bundle = {
        "resourceType": "Bundle",
        "entry": [{"resource": OBS}, {"resource": OUTCOME}, {"resource": MED}],
    }
    assert bundle_entries(bundle) == ([OBS, MED], [OUTCOME])


def test_entries_without_a_resource_object_are_passed_over():
    bundle = {
        "entry": [None, 3, "x", {}, {"resource": None}, {"resource": [OBS]}, {"resource": MED}]
    }
    assert bundle_entries(bundle) == ([MED], [])


def test_no_entry_array_is_no_resource():
    for entry in (None, {}, "entry", 5):
        assert bundle_entries({"entry": entry}) == ([], [])
    assert bundle_entries({}) == ([], [])


def test_links_by_relation_the_last_of_a_relation_named_twice():
    bundle = {
        "link": [
            {"relation": "self", "url": "https://fhir.example/Observation?page=1"},
            {"relation": "next", "url": "https://fhir.example/Observation?page=2"},
            {"relation": "next", "url": "https://fhir.example/Observation?page=3"},
            {"relation": "previous", "url": 7},
            {"relation": None, "url": "https://fhir.example/x"},
            "not a link",
        ]
    }
    assert bundle_links(bundle) == {
        "self": "https://fhir.example/Observation?page=1",
        "next": "https://fhir.example/Observation?page=3",
    }
    assert bundle_links({"link": {"relation": "next"}}) == {} and bundle_links({}) == {}
