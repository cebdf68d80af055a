"""No crafted resource silences another (clinical rules, section 4; engineering rules: one bad
resource inside a request is skipped, not fatal).

For each resource type the extraction reads, a copy of one of a scenario's resources carries an
extreme date or number (year 1 and 9999 with zone offsets, huge and negative numbers, NaN- and
Infinity-like values, huge exponents) and sits beside the valid original: the scenario's cards
still come, no rule fails, and the crafted resource is skipped with only its id logged.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from cds_service.fhir.extract import extract_facts

from .corpus import add_prefetched, invoke, of_type, rules_of, scenario

CRAFTED_ID = "crafted-1"

DATES = [
    "9999-12-31",
    "9999-12-31T23:59:59-14:00",
    "9999",
    "0001-01-01",
    "0001-01-01T00:00:00+14:00",
    "0001",
    "1066-10-14",
    "2999-01-01",
    "NaN",
    "Infinity",
    "-0001-01-01",
    "+10000-01-01",
    "2026-13-45",
    "2026-02-30",
]
NUMBERS = [
    1e308,
    -1e308,
    1e300,
    123456789012.0,
    -1,
    -0.5,
    10**400,
    float("inf"),
    float("-inf"),
    float("nan"),
    "NaN",
    "Infinity",
    "1e999",
    True,
]
COUNTS = [10**400, 10**12, -1, 0.5, "3", True]


def _set(resource: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path ("dosage.0.timing.repeat.period"), creating objects on the way."""
    parts = path.split(".")
    node: Any = resource
    for part, following in zip(parts, parts[1:]):
        key: Any = int(part) if part.isdigit() else part
        if isinstance(node, list):
            while len(node) <= key:
                node.append({})
            node = node[key]
            continue
        if key not in node or not isinstance(node[key], (dict, list)):
            node[key] = [] if following.isdigit() else {}
        node = node[key]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


# (scenario, resource type, where the resource is, field, values): the scenario's cards rest
# on a resource of that type; its crafted copy must not take them away. "-a b": the copy loses
# element a (a fallback such as ``issued`` is read only without ``effectiveDateTime``).
CASES = [
    # Observations: the B12 result that makes the card.
    ("b12-150-no-known-cause", "Observation", "prefetch", "effectiveDateTime", DATES),
    ("b12-150-no-known-cause", "Observation", "prefetch", "-effectiveDateTime issued", DATES),
    ("b12-150-no-known-cause", "Observation", "prefetch", "valueQuantity.value", NUMBERS),
    ("b12-150-no-known-cause", "Observation", "prefetch", "referenceRange.0.high.value", NUMBERS),
    ("b12-150-no-known-cause", "Observation", "prefetch", "referenceRange.0.low.value", NUMBERS),
    # MedicationStatement: long-term metformin (b12-screening-due).
    ("long-term-metformin", "MedicationStatement", "prefetch", "effectiveDateTime", DATES),
    ("long-term-metformin", "MedicationStatement", "prefetch", "effectivePeriod.start", DATES),
    ("long-term-metformin", "MedicationStatement", "prefetch", "effectivePeriod.end", DATES),
    (
        "long-term-metformin",
        "MedicationStatement",
        "prefetch",
        "dosage.0.doseAndRate.0.doseQuantity.value",
        NUMBERS,
    ),
    (
        "long-term-metformin",
        "MedicationStatement",
        "prefetch",
        "dosage.0.timing.repeat.period",
        NUMBERS,
    ),
    (
        "long-term-metformin",
        "MedicationStatement",
        "prefetch",
        "dosage.0.timing.repeat.frequency",
        COUNTS,
    ),
    (
        "long-term-metformin",
        "MedicationStatement",
        "prefetch",
        "dosage.0.timing.repeat.count",
        COUNTS,
    ),
    # Draft MedicationRequest: the folic acid order (folate-before-b12).
    ("folic-acid-with-b12-118-megaloblastic", "MedicationRequest", "draft", "authoredOn", DATES),
    (
        "folic-acid-with-b12-118-megaloblastic",
        "MedicationRequest",
        "draft",
        "dispenseRequest.validityPeriod.end",
        DATES,
    ),
    (
        "folic-acid-with-b12-118-megaloblastic",
        "MedicationRequest",
        "draft",
        "dosageInstruction.0.doseAndRate.0.doseQuantity.value",
        NUMBERS,
    ),
    (
        "folic-acid-with-b12-118-megaloblastic",
        "MedicationRequest",
        "draft",
        "dosageInstruction.0.timing.repeat.period",
        NUMBERS,
    ),
    (
        "folic-acid-with-b12-118-megaloblastic",
        "MedicationRequest",
        "draft",
        "dosageInstruction.0.timing.repeat.count",
        COUNTS,
    ),
    # Conditions: the malabsorption cause (b12-lifelong-therapy).
    ("post-bariatric-no-b12-therapy", "Condition", "prefetch", "onsetDateTime", DATES),
    (
        "post-bariatric-no-b12-therapy",
        "Condition",
        "prefetch",
        "-onsetDateTime recordedDate",
        DATES,
    ),
    (
        "post-bariatric-no-b12-therapy",
        "Condition",
        "prefetch",
        "-onsetDateTime onsetPeriod.start",
        DATES,
    ),
    # A drafted B12 test (b12-retest-on-treatment): ServiceRequest dates are not read, but the
    # crafted order must not break the reading of the real one.
    ("b12-test-on-im-b12-for-4-months", "ServiceRequest", "draft", "authoredOn", DATES),
]


def _params():
    for slug, kind, where, field, values in CASES:
        for value in values:
            yield pytest.param(slug, kind, where, field, value, id=f"{kind}.{field}={value!r}"[:90])


def _craft(request: dict[str, Any], kind: str, where: str, field: str, value: Any) -> None:
    originals = of_type(request, kind)
    assert originals, f"the scenario has no {kind}"
    crafted = copy.deepcopy(originals[0])
    crafted["id"] = CRAFTED_ID
    *removed, field = field.split()
    for name in removed:
        crafted.pop(name[1:], None)
    _set(crafted, field, value)
    if where == "draft":
        request["context"]["draftOrders"]["entry"].append({"resource": crafted})
    else:
        add_prefetched(request, crafted)


@pytest.mark.parametrize("slug, kind, where, field, value", list(_params()))
def test_a_crafted_resource_does_not_silence_the_valid_one(caplog, slug, kind, where, field, value):
    s = scenario(slug)
    request = s.request()
    _craft(request, kind, where, field, value)
    with caplog.at_level(logging.INFO):
        response = invoke(s, request)
    fired = rules_of(response)
    assert set(s.rules) <= set(fired), f"{slug}: {fired}"
    failed = [r for r in caplog.records if r.getMessage() == "rule failed"]
    assert not failed, [r.__dict__.get("rule") for r in failed]
    # The crafted resource was skipped, by id only (or its element is one nothing reads).
    mentions = [r for r in caplog.records if getattr(r, "resource", None) == f"{kind}/{CRAFTED_ID}"]
    if _open_end(field, value):
        assert not mentions, "an open end date (no end) is not a reason to skip"
    elif kind != "ServiceRequest":
        assert mentions, "the crafted resource was used, not skipped"
    for record in mentions:
        assert str(value) not in record.getMessage() + str(getattr(record, "reason", ""))


def _open_end(field: str, value: Any) -> bool:
    return field.endswith(".end") and value in ("9999-12-31", "9999", "2999-01-01")


def test_an_end_date_in_9999_means_no_end():
    """EHRs write "9999-12-31" for "no end": the medication is current, not skipped."""
    s = scenario("long-term-metformin")
    (statement,) = of_type(s.request(), "MedicationStatement")
    statement["effectivePeriod"]["end"] = "9999-12-31"
    extraction = extract_facts([statement], patient_id="pat-metformin")
    (exposure,) = extraction.facts.medications
    assert exposure.end is None and not extraction.skipped


def test_the_reported_case_metformin_since_9999_does_not_silence_screening():
    """A MedicationStatement with effectiveDateTime 9999-12-31 made add_months raise, and the
    metformin patient got no b12-screening-due card."""
    s = scenario("long-term-metformin")
    request = s.request()
    _craft(request, "MedicationStatement", "prefetch", "effectiveDateTime", "9999-12-31")
    assert "b12-screening-due" in rules_of(invoke(s, request))


@pytest.mark.parametrize("birth_date", DATES)
def test_a_crafted_birth_date_skips_the_patient_not_the_cards(caplog, birth_date):
    """The Patient is one resource: with an unusable birth date it is skipped (age unknown)
    and a card that does not rest on age still comes."""
    s = scenario("b12-150-no-known-cause")
    request = s.request()
    (patient,) = of_type(request, "Patient")
    patient["birthDate"] = birth_date
    with caplog.at_level(logging.INFO):
        fired = rules_of(invoke(s, request))
    assert set(s.rules) <= set(fired)
    assert any(getattr(r, "resource", None) == f"Patient/{patient['id']}" for r in caplog.records)
