"""FHIR R4 resources -> typed facts (rule book §1; docs/protocol.md "Be lenient").

Rules never see raw FHIR: these tests pin what the adapter reads, what it skips, and that one
bad resource is skipped with its id logged instead of failing the request.
"""

from __future__ import annotations

import copy
import logging
import random
from datetime import date, datetime, timezone

import pytest

from cds_service.domain.picture import ClinicalPicture, latest_current_found
from cds_service.domain.vocabulary import (
    Analyte,
    ConditionKind,
    DataCategory,
    DrugClass,
    Route,
    Sex,
)
from cds_service.fhir.extract import KEEP_PER_ANALYTE, Extraction, extract_facts
from tests import fhirjson
from tests.builders import NOW
from tests.fhir.raw import (
    ATC,
    ICD10CM,
    LOINC,
    PID,
    RXNORM,
    SNOMED,
    SUBJECT,
    concept,
    condition,
    dosage,
    observation,
    pregnancy_status,
    quantity,
    repeat,
    request,
    rx,
    statement,
)

UTC = timezone.utc
D = DrugClass
K = ConditionKind


def extract(*resources, drafts=(), **kw) -> Extraction:
    kw.setdefault("patient_id", PID)
    return extract_facts(list(resources), list(drafts), **kw)


def labs(*resources, **kw):
    return extract(*resources, **kw).facts.labs


def only_lab(*resources, **kw):
    found = labs(*resources, **kw)
    assert len(found) == 1, found
    return found[0]


def b12(oid="b12", value=150, unit="ng/L", **kw):
    return observation(oid, "2132-9", value=quantity(value, unit), **kw)


def meds(*resources, drafts=(), **kw):
    return extract(*resources, drafts=drafts, **kw).facts.medications


def only_med(*resources, drafts=(), **kw):
    found = meds(*resources, drafts=drafts, **kw)
    assert len(found) == 1, found
    return found[0]


def conditions(*resources):
    return extract(*resources).facts.conditions


# =============================================================================================
# Observations
# =============================================================================================
@pytest.mark.parametrize("status", ["final", "amended", "corrected", "preliminary"])
def test_results_with_a_reportable_status_are_read(status):
    assert only_lab(b12(status=status)).resource_id == "Observation/b12"


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_entered_in_error_and_cancelled_results_are_ignored_not_reported_as_malformed(status):
    extraction = extract(b12(status=status))
    assert extraction.facts.labs == ()
    assert extraction.skipped == ()


@pytest.mark.parametrize("status", ["registered", "unknown", None])
def test_results_without_a_reportable_status_are_not_read(status):
    assert labs(b12(status=status)) == ()


def test_a_total_b12_result_keeps_value_unit_date_and_id():
    lab = only_lab(b12(value=118, unit="ng/L", date="2026-05-01T09:30:00+02:00"))
    assert lab.resource_id == "Observation/b12"
    assert lab.analyte is Analyte.TOTAL_B12
    assert lab.loinc == "2132-9"
    assert lab.value == 118
    assert lab.unit == "ng/L"
    assert (lab.canonical_value, lab.canonical_unit) == (118, "ng/L")
    assert lab.effective == datetime(2026, 5, 1, 7, 30, tzinfo=UTC)
    assert lab.unit_recognised


def test_a_molar_b12_keeps_the_reported_unit_and_converts_for_display():
    lab = only_lab(observation("m", "14685-2", value=quantity(100, "pmol/L")))
    assert (lab.value, lab.unit) == (100, "pmol/L")
    assert lab.canonical_value == pytest.approx(135.54)
    assert lab.canonical_unit == "ng/L"


@pytest.mark.parametrize(
    "loinc, analyte",
    [
        ("16695-9", Analyte.TOTAL_B12),
        ("72160-5", Analyte.ACTIVE_B12),
        ("13964-2", Analyte.MMA),
        ("718-7", Analyte.HAEMOGLOBIN),
        ("98979-8", Analyte.EGFR),
        ("33914-3", Analyte.EGFR),
    ],
)
def test_known_loinc_codes_map_to_their_analyte(loinc, analyte):
    assert only_lab(observation("o", loinc, value=quantity(10, "%"))).analyte is analyte


@pytest.mark.parametrize(
    "code",
    [
        concept((LOINC, "2345-7", "Glucose")),  # a LOINC code no rule reads
        concept(("http://example.org/local", "2132-9", "B12")),  # right code, wrong system
        concept(text="Vitamin B12"),  # text only
        {},
    ],
)
def test_observations_no_rule_reads_are_not_read_and_not_reported(code):
    resource = b12()
    resource["code"] = code
    extraction = extract(resource)
    assert extraction.facts.labs == ()
    assert extraction.skipped == ()


def test_the_loinc_coding_need_not_be_the_first():
    resource = b12()
    resource["code"] = concept(
        ("http://example.org/local", "B12", "B12"), (LOINC, "2132-9", "Cobalamin")
    )
    assert only_lab(resource).loinc == "2132-9"


def test_a_single_coding_object_instead_of_an_array_is_accepted():
    resource = b12()
    resource["code"] = {"coding": {"system": LOINC, "code": "2132-9"}}
    assert only_lab(resource).analyte is Analyte.TOTAL_B12


# --- dates -----------------------------------------------------------------------------------
def test_effective_period_start_is_the_date():
    resource = b12(
        date=None, effectivePeriod={"start": "2026-04-01T08:00:00Z", "end": "2026-04-02T08:00:00Z"}
    )
    assert only_lab(resource).effective == datetime(2026, 4, 1, 8, tzinfo=UTC)


def test_effective_period_end_when_it_has_no_start():
    resource = b12(date=None, effectivePeriod={"end": "2026-04-02"})
    assert only_lab(resource).effective == datetime(2026, 4, 2, tzinfo=UTC)


def test_effective_instant_is_read():
    resource = b12(date=None, effectiveInstant="2026-04-03T10:00:00Z")
    assert only_lab(resource).effective == datetime(2026, 4, 3, 10, tzinfo=UTC)


def test_issued_is_the_fallback_date():
    resource = b12(date=None, issued="2026-04-05T12:00:00+01:00")
    assert only_lab(resource).effective == datetime(2026, 4, 5, 11, tzinfo=UTC)


def test_effective_date_wins_over_issued():
    resource = b12(date="2026-04-01", issued="2026-04-05T12:00:00Z")
    assert only_lab(resource).effective == datetime(2026, 4, 1, tzinfo=UTC)


def test_a_partial_effective_date_is_read():
    assert only_lab(b12(date="2026-03")).effective == datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("when", [None, "last week", "2026-13-01", 20260401])
def test_a_result_without_a_usable_date_is_skipped_and_its_id_logged(when, caplog):
    caplog.set_level(logging.INFO, logger="cds_service.fhir.extract")
    resource = b12(date=None)
    if when is not None:
        resource["effectiveDateTime"] = when
    assert labs(resource) == ()
    assert [r.resource for r in caplog.records] == ["Observation/b12"]


# --- values and units ------------------------------------------------------------------------
def test_a_ucum_code_is_the_unit():
    assert only_lab(b12(value=150, unit="pg/mL")).unit == "pg/mL"


def test_a_display_only_unit_is_normalised():
    resource = b12()
    resource["valueQuantity"] = quantity(150, "PG/ML", code="")
    lab = only_lab(resource)
    assert (lab.unit, lab.canonical_value) == ("pg/mL", 150)


def test_the_code_wins_over_the_display():
    resource = b12()
    resource["valueQuantity"] = quantity(100, "picomoles per litre", code="pmol/L")
    assert only_lab(resource).unit == "pmol/L"


def test_a_local_code_beside_a_readable_display_uses_the_display():
    resource = b12()
    resource["valueQuantity"] = quantity(150, "pg/mL", code="PGML", system="urn:local")
    lab = only_lab(resource)
    assert (lab.unit, lab.canonical_value) == ("pg/mL", 150)


def test_an_mma_in_umol_l_converts_to_nmol_l():
    lab = only_lab(observation("mma", "13964-2", value=quantity(0.45, "\u00b5mol/L", code="")))
    assert (lab.value, lab.unit) == (0.45, "umol/L")
    assert lab.canonical_value == pytest.approx(450)
    assert lab.canonical_unit == "nmol/L"


def test_an_egfr_with_a_display_unit_is_recognised():
    resource = observation("e", "98979-8", value=quantity(38, "mL/min/1.73m\u00b2", code=""))
    lab = only_lab(resource)
    assert (lab.unit, lab.canonical_value) == ("mL/min/{1.73_m2}", 38)


@pytest.mark.parametrize("unit", ["mg", "IU/L"])
def test_an_unrecognised_unit_is_kept_with_no_canonical_value(unit):
    lab = only_lab(b12(value=0.2, unit=unit))
    assert (lab.value, lab.unit) == (0.2, unit)
    assert lab.canonical_value is None and lab.canonical_unit is None
    assert not lab.unit_recognised


def test_a_value_without_a_unit_is_kept_uninterpreted():
    resource = b12()
    resource["valueQuantity"] = {"value": 150}
    lab = only_lab(resource)
    assert (lab.value, lab.unit, lab.canonical_value) == (150, None, None)


def test_an_integer_value_is_a_float():
    lab = only_lab(b12(value=150))
    assert isinstance(lab.value, float)


def test_a_result_without_any_value_is_not_read(caplog):
    caplog.set_level(logging.INFO, logger="cds_service.fhir.extract")
    extraction = extract(b12() | {"valueQuantity": {"unit": "ng/L"}})
    assert extraction.facts.labs == ()
    assert extraction.skipped == ()
    assert [r.resource for r in caplog.records] == ["Observation/b12"]


def test_a_value_string_is_kept_as_text():
    resource = observation("ifab", "31444-3", valueString="Negative")
    lab = only_lab(resource)
    assert (lab.value, lab.text_value) == (None, "Negative")


# --- reference range -------------------------------------------------------------------------
def mma(high, low=None, value=300, unit="nmol/L"):
    reference = {}
    if high is not None:
        reference["high"] = high
    if low is not None:
        reference["low"] = low
    return observation("mma", "13964-2", value=quantity(value, unit), referenceRange=[reference])


def test_a_reference_high_in_the_same_unit_is_kept():
    assert only_lab(mma(quantity(370, "nmol/L"))).reference_high == 370


def test_a_reference_high_in_another_spelling_of_the_same_unit_is_kept():
    assert only_lab(mma(quantity(370, "nmol/l", code=""))).reference_high == 370


def test_a_reference_high_without_a_unit_is_taken_in_the_result_unit():
    assert only_lab(mma({"value": 370})).reference_high == 370


def test_a_reference_high_in_another_unit_is_ignored():
    assert only_lab(mma(quantity(0.37, "umol/L"))).reference_high is None


def test_a_reference_low_follows_the_same_unit_rule():
    assert only_lab(mma(None, quantity(70, "nmol/L"))).reference_low == 70
    assert only_lab(mma(None, quantity(0.07, "umol/L"))).reference_low is None


def test_a_single_reference_range_object_is_accepted():
    resource = mma(quantity(370, "nmol/L"))
    resource["referenceRange"] = resource["referenceRange"][0]
    assert only_lab(resource).reference_high == 370


def test_no_reference_range():
    lab = only_lab(b12())
    assert lab.reference_high is None and lab.reference_low is None


# --- coded values ----------------------------------------------------------------------------
def test_intrinsic_factor_antibody_text_value_is_read():
    resource = observation(
        "ifab",
        "31444-3",
        valueCodeableConcept=concept((SNOMED, "10828004", "Positive"), text="Positive"),
    )
    lab = only_lab(resource)
    assert lab.analyte is Analyte.IF_ANTIBODY
    assert (lab.value, lab.text_value) == (None, "Positive")
    assert lab.canonical_value is None


def test_a_coded_value_without_text_uses_the_display_then_the_code():
    with_display = observation(
        "a", "31443-5", valueCodeableConcept=concept((SNOMED, "260385009", "Negative"))
    )
    code_only = observation("b", "31443-5", valueCodeableConcept={"coding": [{"code": "NEG"}]})
    assert only_lab(with_display).text_value == "Negative"
    assert only_lab(code_only).text_value == "NEG"


def test_pregnancy_status_pregnant_sets_pregnancy_observed():
    extraction = extract(pregnancy_status("preg", "2026-05-01", "77386006", "Pregnant"))
    assert extraction.facts.pregnancy_observed is True
    assert extraction.facts.labs == ()  # a status, not a lab result


def test_pregnancy_status_by_text_only():
    resource = observation("preg", "82810-3", valueCodeableConcept={"text": " pregnant "})
    assert extract(resource).facts.pregnancy_observed is True


@pytest.mark.parametrize(
    "code, display",
    [("60001007", "Not pregnant"), ("261665006", "Unknown"), ("77386006x", "Pregnant?")],
)
def test_other_pregnancy_status_answers_are_not_pregnant(code, display):
    extraction = extract(pregnancy_status("preg", "2026-05-01", code, display))
    assert extraction.facts.pregnancy_observed is False


def test_the_latest_pregnancy_status_wins():
    earlier = pregnancy_status("p1", "2025-06-01", "77386006", "Pregnant")
    later = pregnancy_status("p2", "2026-04-01", "60001007", "Not pregnant")
    assert extract(earlier, later).facts.pregnancy_observed is False
    assert extract(later, earlier).facts.pregnancy_observed is False
    newest = pregnancy_status("p3", "2026-05-01", "77386006", "Pregnant")
    assert extract(earlier, later, newest).facts.pregnancy_observed is True


def test_an_entered_in_error_pregnancy_status_is_ignored():
    resource = pregnancy_status("preg", "2026-05-01", "77386006", "Pregnant")
    resource["status"] = "entered-in-error"
    assert extract(resource).facts.pregnancy_observed is False


def test_no_pregnancy_status_is_not_pregnant():
    assert extract(b12()).facts.pregnancy_observed is False


# --- how many results are kept ---------------------------------------------------------------
def haemoglobins(n, status="final"):
    return [
        observation(
            f"hb{i}",
            "718-7",
            value=quantity(11 + i / 10, "g/dL"),
            date=f"2026-0{i}-01",
            status=status,
        )
        for i in range(1, n + 1)
    ]


def test_only_the_latest_results_of_a_non_b12_analyte_are_kept():
    kept = labs(*haemoglobins(6))
    assert KEEP_PER_ANALYTE == 3
    assert [lab.resource_id for lab in kept] == [
        "Observation/hb6",
        "Observation/hb5",
        "Observation/hb4",
    ]


@pytest.mark.parametrize(
    "loinc, unit", [("2132-9", "ng/L"), ("72160-5", "pmol/L"), ("13964-2", "nmol/L")]
)
def test_every_b12_family_result_is_kept(loinc, unit):
    resources = [
        observation(f"o{i}", loinc, value=quantity(100 + i, unit), date=f"2026-0{i}-01")
        for i in range(1, 7)
    ]
    assert len(labs(*resources)) == 6


def test_every_intrinsic_factor_antibody_result_is_kept():
    resources = [
        observation(f"if{i}", "31444-3", valueString="Negative", date=f"2026-0{i}-01")
        for i in range(1, 6)
    ]
    assert len(labs(*resources)) == 5


def test_pending_newer_results_do_not_push_the_latest_usable_one_out():
    pending = [
        observation(f"p{i}", "718-7", date=f"2026-0{i}-15", status="registered")
        for i in range(4, 8)
    ]
    final = observation("hb", "718-7", value=quantity(9.8, "g/dL"), date="2026-01-01")
    assert [lab.resource_id for lab in labs(*pending, final)] == ["Observation/hb"]


def test_malformed_newer_results_do_not_push_the_latest_usable_one_out():
    broken = [
        observation(f"x{i}", "718-7", value=quantity("low", "g/dL"), date=f"2026-0{i}-15")
        for i in range(4, 8)
    ]
    final = observation("hb", "718-7", value=quantity(9.8, "g/dL"), date="2026-01-01")
    extraction = extract(*broken, final)
    assert [lab.resource_id for lab in extraction.facts.labs] == ["Observation/hb"]
    assert len(extraction.skipped) == 4


# --- reading stops where no rule reads further (``enough``) -----------------------------------
ENOUGH = latest_current_found(NOW)


def _ids(found):
    return [lab.resource_id for lab in found]


def test_with_enough_a_current_numeric_result_ends_its_analyte():
    assert _ids(labs(*haemoglobins(6), enough=ENOUGH)) == ["Observation/hb6"]


@pytest.mark.parametrize(
    "newest",
    [
        observation("new", "718-7", value=quantity(12.1, "g/dL"), date="2026-09-01"),  # future
        observation("new", "718-7", valueString="see comment", date="2026-06-10"),  # text
        observation("new", "718-7", value=quantity(12.1, "furlongs"), date="2026-06-10"),
    ],
    ids=["future-dated", "text", "unknown-unit"],
)
def test_with_enough_reading_goes_on_past_what_latest_current_skips(newest):
    older = observation("hb", "718-7", value=quantity(9.8, "g/dL"), date="2026-05-01")
    oldest = observation("hb0", "718-7", value=quantity(9.9, "g/dL"), date="2026-04-01")
    assert _ids(labs(newest, older, oldest, enough=ENOUGH)) == [
        "Observation/new",
        "Observation/hb",
    ]


def test_with_enough_results_older_than_the_window_do_not_stop_the_reading():
    stale = [
        observation(f"s{i}", "718-7", value=quantity(12, "g/dL"), date=f"2024-0{i}-01")
        for i in range(1, 6)
    ]
    assert _ids(labs(*stale, enough=ENOUGH)) == _ids(labs(*stale))
    assert len(labs(*stale, enough=ENOUGH)) == KEEP_PER_ANALYTE


def test_with_enough_at_most_keep_per_analyte_results_are_still_read():
    text = [
        observation(f"t{i}", "718-7", valueString="see comment", date=f"2026-0{i}-01")
        for i in range(1, 6)
    ]
    assert len(labs(*text, enough=ENOUGH)) == KEEP_PER_ANALYTE


def test_with_enough_the_b12_family_is_still_read_in_full():
    resources = [b12(f"o{i}", 100 + i, date=f"2026-0{i}-01") for i in range(1, 6)]
    assert len(labs(*resources, enough=ENOUGH)) == 5


def test_with_enough_an_older_malformed_result_is_not_read():
    current = observation("hb", "718-7", value=quantity(9.8, "g/dL"), date="2026-06-01")
    broken = observation("x", "718-7", value=quantity("low", "g/dL"), date="2026-05-01")
    assert extract(current, broken).skipped == ("Observation/x",)
    stopped = extract(current, broken, enough=ENOUGH)
    assert _ids(stopped.facts.labs) == ["Observation/hb"] and stopped.skipped == ()


def test_with_enough_latest_current_answers_as_before_on_random_histories():
    """The property ``enough`` rests on: for every analyte outside the B12 family, the
    picture's ``latest_current`` (numeric or not) is the same with the early stop as without."""
    rng = random.Random(20261128)
    dates = ["2023-01-01", "2025-01-01", "2026-01-01", "2026-06-01", "2026-06-15", "2026-08-01"]
    values = [
        {"value": quantity(9.8, "g/dL")},
        {"value": quantity(91, "fL")},
        {"value": quantity(4.1, "mmol/L")},
        {"value": quantity(9.8, "furlongs")},
        {"valueString": "see comment"},
        {"valueString": "< 5 g/dL"},
        {"value": quantity("low", "g/dL")},  # malformed
        {},  # no value
    ]
    for case in range(400):
        history = []
        for i in range(rng.randint(1, 6)):
            value = dict(rng.choice(values))
            quantity_value = value.pop("value", None)
            history.append(
                observation(
                    f"r{case}-{i}",
                    rng.choice(["718-7", "787-2", "2823-3"]),
                    value=quantity_value,
                    date=rng.choice(dates),
                    **value,
                )
            )
        full = ClinicalPicture(extract(*history).facts, NOW)
        stopped = ClinicalPicture(extract(*history, enough=ENOUGH).facts, NOW)
        for analyte in (Analyte.HAEMOGLOBIN, Analyte.MCV, Analyte.POTASSIUM):
            for numeric in (True, False):
                assert stopped.latest_current(analyte, numeric=numeric) == full.latest_current(
                    analyte, numeric=numeric
                ), (case, analyte, numeric)


# --- malformed resources ---------------------------------------------------------------------
SECRET = "one-hundred-and-eighteen"


@pytest.mark.parametrize(
    "breakage, path",
    [
        (lambda r: r["valueQuantity"].update(value=SECRET), "valueQuantity.value"),
        (lambda r: r["valueQuantity"].update(value=True), "valueQuantity.value"),
        (lambda r: r["valueQuantity"].update(code=[SECRET]), "valueQuantity.code"),
        (lambda r: r.update(valueQuantity=SECRET), "valueQuantity"),
        (lambda r: r["code"].update(coding=SECRET), "code.coding"),
        (lambda r: r["code"].update(coding=[SECRET]), "code.coding"),
        (lambda r: r["code"]["coding"][0].update(code=[SECRET]), "code.coding.code"),
        (lambda r: r["code"]["coding"][0].update(system={"x": SECRET}), "code.coding.system"),
        (lambda r: r.update(code=SECRET), "code"),
        (lambda r: r.update(status=[SECRET]), "status"),
        (
            lambda r: r.update(referenceRange=[{"high": {"value": SECRET}}]),
            "referenceRange.high.value",
        ),
        (lambda r: r.update(referenceRange=SECRET), "referenceRange"),
        (lambda r: r.update(valueCodeableConcept={"text": [SECRET]}), "valueCodeableConcept.text"),
    ],
)
def test_a_malformed_used_element_skips_the_resource_and_logs_only_id_and_path(
    breakage, path, caplog
):
    caplog.set_level(logging.INFO)
    bad = b12("bad", value=118)
    breakage(bad)
    good = b12("good", value=200)
    extraction = extract(bad, good)
    assert [lab.resource_id for lab in extraction.facts.labs] == ["Observation/good"]
    assert extraction.skipped == ("Observation/bad",)
    records = [r for r in caplog.records if getattr(r, "resource", None) == "Observation/bad"]
    assert len(records) == 1
    record = records[0]
    assert record.getMessage() == "resource skipped"
    assert record.reason == f"malformed {path}"
    assert SECRET not in str(record.__dict__)
    logged = (record.getMessage(), record.resource, record.reason, record.args)
    assert "118" not in str(logged) and "ng/L" not in str(logged)


def test_category_as_a_single_object_is_not_malformed():
    resource = b12(
        category={
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }
            ]
        }
    )
    extraction = extract(resource)
    assert len(extraction.facts.labs) == 1
    assert extraction.skipped == ()


def test_malformed_elements_no_rule_reads_do_not_skip_the_resource():
    resource = b12()
    resource["interpretation"] = "LOW"
    resource["note"] = 42
    resource["performer"] = "Dr Who"
    extraction = extract(resource)
    assert len(extraction.facts.labs) == 1
    assert extraction.skipped == ()


@pytest.mark.parametrize(
    "junk", [None, "Observation", 42, ["x"], {"id": "x"}, {"resourceType": 7, "id": "y"}]
)
def test_non_resources_in_the_input_are_ignored(junk):
    extraction = extract_facts([junk, b12()], [junk], patient_id=PID)
    assert len(extraction.facts.labs) == 1


# =============================================================================================
# Medications
# =============================================================================================
METFORMIN = concept(rx("861007", "metformin hydrochloride 500 MG Oral Tablet"))
FOLIC_5 = concept(rx("199318", "Folic acid 5 MG Oral Tablet"))
CYANO_INJ = concept(rx("309594", "cyanocobalamin 1000 MCG/ML Injectable Solution"))
HYDROXO_INJ = concept(rx("317106", "hydroxocobalamin 1 MG/ML Injectable Solution"))


@pytest.mark.parametrize("status", ["active", "completed", "on-hold", "stopped"])
def test_medication_statements_with_these_statuses_are_read(status):
    med = only_med(statement("ms", METFORMIN, status=status))
    assert (med.resource_id, med.status, med.is_draft) == ("MedicationStatement/ms", status, False)
    assert med.classes == {D.METFORMIN}


@pytest.mark.parametrize("status", ["active", "on-hold"])
def test_only_active_and_on_hold_statements_are_current_exposure(status):
    assert only_med(statement("ms", METFORMIN, status=status)).active


@pytest.mark.parametrize("status", ["completed", "stopped"])
def test_completed_and_stopped_statements_are_history_not_exposure(status):
    assert not only_med(statement("ms", METFORMIN, status=status)).active


@pytest.mark.parametrize(
    "status", ["entered-in-error", "not-taken", "draft", "intended", "unknown"]
)
def test_medication_statements_with_other_statuses_are_not_read(status):
    assert meds(statement("ms", METFORMIN, status=status)) == ()


@pytest.mark.parametrize("status", ["active", "completed", "on-hold"])
def test_medication_requests_active_completed_on_hold_are_read(status):
    med = only_med(request("mr", METFORMIN, status=status))
    assert (med.resource_id, med.status, med.is_draft) == ("MedicationRequest/mr", status, False)


@pytest.mark.parametrize("status", ["draft", "cancelled", "stopped", "entered-in-error", "unknown"])
def test_medication_requests_outside_the_draft_orders_with_other_statuses_are_not_read(status):
    assert meds(request("mr", METFORMIN, status=status)) == ()


@pytest.mark.parametrize("status", ["draft", "active", "on-hold", "unknown"])
def test_every_draft_order_is_read_whatever_its_status(status):
    med = only_med(drafts=[request("d1", FOLIC_5, status=status)])
    assert med.is_draft and not med.is_stop_order and med.active
    assert med.resource_id == "MedicationRequest/d1"


@pytest.mark.parametrize("status", ["stopped", "completed", "cancelled"])
def test_a_draft_that_stops_therapy_is_a_stop_order(status):
    med = only_med(drafts=[request("d1", HYDROXO_INJ, status=status)])
    assert med.is_draft and med.is_stop_order and not med.active


def test_a_draft_without_status_intent_or_subject_is_a_draft_for_this_patient():
    bare = {"resourceType": "MedicationRequest", "id": "d1", "medicationCodeableConcept": FOLIC_5}
    med = only_med(drafts=[bare])
    assert (med.status, med.is_draft, med.is_stop_order) == ("draft", True, False)


def test_medications_no_rule_reads_are_not_kept():
    lisinopril = concept(rx("314076", "lisinopril 10 MG Oral Tablet"))
    extraction = extract(statement("ms", lisinopril), drafts=[request("d", lisinopril)])
    assert extraction.facts.medications == ()
    assert extraction.skipped == ()


def test_a_draft_medication_request_in_the_prefetch_is_not_a_draft_order():
    # the same order both in a prefetch (status draft) and in draftOrders counts once, as a draft
    draft = request("d1", FOLIC_5, status="draft")
    found = meds(draft, drafts=[draft])
    assert [(m.resource_id, m.is_draft) for m in found] == [("MedicationRequest/d1", True)]


@pytest.mark.parametrize(
    "medication, classes",
    [
        (concept((RXNORM, "999999", "Metformin hydrochloride 850 MG Oral Tablet")), {D.METFORMIN}),
        (concept(text="metformin 1 g tablets"), {D.METFORMIN}),
        (concept((ATC, "A10BD07", "Janumet")), {D.METFORMIN}),
        (concept((RXNORM, "6809", "metformin")), {D.METFORMIN}),
        (
            concept((RXNORM, "1", "Folic acid 1 MG / cyanocobalamin 1 MG")),
            {D.FOLIC_ACID, D.CYANOCOBALAMIN},
        ),
        (concept(text="Leucovorin 15 mg"), {D.FOLINIC_ACID}),
    ],
)
def test_medications_classify_by_code_or_name(medication, classes):
    assert only_med(statement("ms", medication)).classes == classes


def test_the_name_is_the_text_then_the_display():
    assert (
        only_med(statement("a", concept(rx("6809", "metformin"), text="Glucophage"))).name
        == "Glucophage"
    )
    assert only_med(statement("b", concept(rx("6809", "metformin")))).name == "metformin"


def test_a_medication_named_only_by_code_is_named_by_its_classes():
    med = only_med(statement("ms", {"coding": [{"system": ATC, "code": "A02BC01"}]}))
    assert med.name == "proton pump inhibitor"


# --- dose ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dose, name, expected",
    [
        (quantity(1, "mg"), "hydroxocobalamin", 1000),
        (quantity(1, "MG"), "hydroxocobalamin", 1000),
        (quantity(1000, "ug"), "cyanocobalamin", 1000),
        (quantity(1000, "mcg", code=""), "cyanocobalamin", 1000),
        (quantity(1000, "\u00b5g", code=""), "cyanocobalamin", 1000),
        (quantity(500, "\u03bcg", code=""), "cyanocobalamin", 500),
        (quantity(0.001, "g"), "cyanocobalamin", 1000),
        (quantity(5, "mg"), "Folic acid 5 MG Oral Tablet", 5000),
        # tablets x strength in the product name
        (quantity(1, "{tbl}"), "Folic acid 5 MG Oral Tablet", 5000),
        (quantity(2, "tablet", code=""), "Folic acid 400 MCG Oral Tablet", 800),
        (quantity(1, "1"), "Cyanocobalamin 1,000 MCG Oral Tablet", 1000),
        # millilitres x strength per mL
        (quantity(1, "mL"), "cyanocobalamin 1000 MCG/ML Injectable Solution", 1000),
        (quantity(0.5, "mL"), "hydroxocobalamin 1 MG/ML Injectable Solution", 500),
        (quantity(5, "mL"), "Folic acid 2.5 MG/5 ML Oral Solution", 2500),
    ],
)
def test_dose_per_administration_in_micrograms(dose, name, expected):
    med = only_med(statement("ms", concept(text=name), dosage_=dosage(dose=dose)))
    assert med.dose_ug == pytest.approx(expected)


@pytest.mark.parametrize(
    "dose, name",
    [
        (quantity(1, "tablet", code=""), "Folic acid Oral Tablet"),  # no strength in the name
        (quantity(1, "tablet", code=""), "cyanocobalamin 1000 MCG/ML Injectable Solution"),
        (quantity(1, "[IU]"), "folic acid"),
        ({"unit": "mg"}, "folic acid 5 MG"),
    ],
)
def test_a_dose_that_is_not_computable_is_none(dose, name):
    med = only_med(statement("ms", concept(text=name), dosage_=dosage(dose=dose)))
    assert med.dose_ug is None


def test_no_dosage_means_no_dose_interval_or_count():
    med = only_med(statement("ms", FOLIC_5))
    assert (med.dose_ug, med.interval_days, med.count, med.dose_ug_per_day) == (
        None,
        None,
        None,
        None,
    )


def test_a_dose_range_uses_its_low_end():
    resource = statement(
        "ms",
        FOLIC_5,
        dosage_={
            "doseAndRate": [{"doseRange": {"low": quantity(1, "mg"), "high": quantity(5, "mg")}}]
        },
    )
    assert only_med(resource).dose_ug == 1000


# --- interval and count ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "timing, interval",
    [
        (repeat(1, 1, "d"), 1),
        (repeat(2, 1, "d"), 0.5),
        (repeat(1, 2, "d"), 2),
        (repeat(1, 1, "wk"), 7),
        (repeat(3, 1, "wk"), 7 / 3),  # three times a week
        (repeat(1, 1, "mo"), 30.4375),  # monthly
        (repeat(1, 2, "mo"), 60.875),
        (repeat(1, 12, "h"), 0.5),
        (repeat(1, 1, "a"), 365.25),
        ({"code": {"coding": [{"code": "BID"}]}}, 0.5),
        ({"code": {"coding": [{"code": "QD"}]}}, 1),
        ({"code": {"coding": [{"code": "qod"}]}}, 2),
        ({"code": {"coding": [{"code": "WK"}]}}, 7),
        ({"code": {"coding": [{"code": "TID"}]}}, 1 / 3),
        ({"code": {"coding": [{"code": "Q4H"}]}}, None),
        ({"repeat": {"frequency": 1}}, None),
        ({"repeat": {"period": 1, "periodUnit": "fortnight"}}, None),
    ],
)
def test_interval_between_administrations_in_days(timing, interval):
    med = only_med(statement("ms", FOLIC_5, dosage_=dosage(timing=timing)))
    assert med.interval_days == pytest.approx(interval) if interval else med.interval_days is None


def test_a_repeat_wins_over_a_timing_code():
    timing = {
        "repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"},
        "code": {"coding": [{"code": "QD"}]},
    }
    assert only_med(statement("ms", FOLIC_5, dosage_=dosage(timing=timing))).interval_days == 7


def test_count_of_a_course_is_kept():
    timing = repeat(3, 1, "wk", count=6)
    med = only_med(drafts=[request("d", HYDROXO_INJ, dosage_=dosage(timing=timing))])
    assert (med.count, med.interval_days) == (6, pytest.approx(7 / 3))


def test_a_single_dose_count_without_a_period():
    med = only_med(
        drafts=[request("d", HYDROXO_INJ, dosage_=dosage(timing={"repeat": {"count": 1}}))]
    )
    assert (med.count, med.interval_days) == (1, None)


def test_dose_per_day_combines_dose_and_interval():
    med = only_med(
        statement(
            "ms", FOLIC_5, dosage_=dosage(dose=quantity(1, "{tbl}"), timing=repeat(2, 1, "d"))
        )
    )
    assert med.dose_ug_per_day == pytest.approx(10000)


def test_only_the_first_dosage_instruction_is_read():
    resource = request("mr", HYDROXO_INJ)
    resource["dosageInstruction"] = [
        dosage(dose=quantity(1, "mg"), timing=repeat(1, 2, "d")),
        dosage(dose=quantity(1, "mg"), timing=repeat(1, 2, "mo")),
    ]
    assert only_med(resource).interval_days == 2


# --- route -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code, route",
    [
        ("78421000", Route.INTRAMUSCULAR),
        ("26643006", Route.ORAL),
        ("37839007", Route.SUBLINGUAL),
        ("34206005", Route.SUBCUTANEOUS),
        ("47625008", Route.INTRAVENOUS),
        ("46713006", Route.INTRANASAL),
    ],
)
def test_route_by_snomed_code(code, route):
    resource = statement("ms", CYANO_INJ, dosage_=dosage(route=concept((SNOMED, code, "x"))))
    assert only_med(resource).route is route


@pytest.mark.parametrize(
    "route_concept, route",
    [
        ({"text": "Intramuscular"}, Route.INTRAMUSCULAR),
        ({"text": "IM"}, Route.INTRAMUSCULAR),
        ({"text": "by mouth"}, Route.ORAL),
        ({"text": "PO"}, Route.ORAL),
        ({"text": "Subcut"}, Route.SUBCUTANEOUS),
        ({"text": "SL"}, Route.SUBLINGUAL),
        (
            {"coding": [{"system": "urn:local", "code": "X", "display": "INTRAMUSCULAR"}]},
            Route.INTRAMUSCULAR,
        ),
        ({"text": "nasal spray"}, Route.INTRANASAL),
    ],
)
def test_route_by_text_or_display(route_concept, route):
    resource = statement("ms", concept(text="cyanocobalamin"), dosage_=dosage(route=route_concept))
    assert only_med(resource).route is route


def test_route_from_the_dosage_text():
    resource = statement(
        "ms",
        concept(text="cyanocobalamin 1000 MCG"),
        dosage_=dosage(text="Inject 1 mL intramuscularly once a month"),
    )
    assert only_med(resource).route is Route.INTRAMUSCULAR


@pytest.mark.parametrize(
    "name, route",
    [
        ("cyanocobalamin 1000 MCG/ML Injectable Solution", Route.INTRAMUSCULAR),
        ("Cyanocobalamin 1000 MCG Oral Tablet", Route.ORAL),
        ("Methylcobalamin 1000 MCG Sublingual Tablet", Route.SUBLINGUAL),
        ("Cyanocobalamin 500 MCG/ACTUAT Nasal Spray", Route.INTRANASAL),
        ("hydroxocobalamin", Route.UNKNOWN),
    ],
)
def test_route_from_the_product_name(name, route):
    assert only_med(statement("ms", concept(text=name))).route is route


def test_a_route_code_wins_over_the_product_name():
    resource = statement(
        "ms",
        concept(text="Cyanocobalamin 1000 MCG Oral Tablet"),
        dosage_=dosage(route=concept((SNOMED, "37839007", "Sublingual"))),
    )
    assert only_med(resource).route is Route.SUBLINGUAL


# --- start and end ---------------------------------------------------------------------------
def test_statement_start_from_effective_period():
    resource = statement("ms", METFORMIN, effectivePeriod={"start": "2020-01", "end": "2026-01-01"})
    med = only_med(resource)
    assert med.start == datetime(2020, 1, 1, tzinfo=UTC)
    assert med.end == datetime(2026, 1, 1, tzinfo=UTC)


def test_statement_start_from_effective_date_time():
    resource = statement("ms", METFORMIN, effectiveDateTime="2020-03-04T10:00:00+01:00")
    assert only_med(resource).start == datetime(2020, 3, 4, 9, tzinfo=UTC)


def test_request_start_from_authored_on():
    resource = request("mr", METFORMIN, authoredOn="2019-06-01")
    assert only_med(resource).start == datetime(2019, 6, 1, tzinfo=UTC)


def test_request_start_from_the_validity_period_when_not_authored():
    resource = request(
        "mr",
        METFORMIN,
        dispenseRequest={"validityPeriod": {"start": "2019-07-01", "end": "2020-07-01"}},
    )
    med = only_med(resource)
    assert med.start == datetime(2019, 7, 1, tzinfo=UTC)
    assert med.end == datetime(2020, 7, 1, tzinfo=UTC)


def test_authored_on_wins_over_the_validity_period():
    resource = request(
        "mr",
        METFORMIN,
        authoredOn="2019-06-01",
        dispenseRequest={"validityPeriod": {"start": "2019-07-01"}},
    )
    assert only_med(resource).start == datetime(2019, 6, 1, tzinfo=UTC)


def test_no_start_date_is_none():
    assert only_med(statement("ms", METFORMIN)).start is None


def test_an_unusable_start_date_skips_the_statement():
    """A date the rules cannot use ("sometime", "9999-12-31") skips the resource, by id: read
    with it, calendar arithmetic would overflow and a rule fail."""
    for when in ("sometime", "9999-12-31", "0001-01-01"):
        extraction = extract(statement("ms", METFORMIN, effectiveDateTime=when))
        assert extraction.facts.medications == ()
        assert extraction.skipped == ("MedicationStatement/ms",)


# --- medication references -------------------------------------------------------------------
def test_a_reference_to_a_contained_medication():
    resource = request(
        "mr",
        None,
        medicationReference={"reference": "#med"},
        contained=[
            {"resourceType": "Medication", "id": "other", "code": METFORMIN},
            {"resourceType": "Medication", "id": "med", "code": CYANO_INJ},
        ],
    )
    med = only_med(drafts=[resource])
    assert med.classes == {D.CYANOCOBALAMIN}
    assert med.name == "cyanocobalamin 1000 MCG/ML Injectable Solution"


def test_a_reference_to_a_prefetched_medication():
    medication = {"resourceType": "Medication", "id": "m1", "code": FOLIC_5}
    resource = statement("ms", None, medicationReference={"reference": "Medication/m1"})
    extraction = extract(resource, medication)
    assert [m.classes for m in extraction.facts.medications] == [{D.FOLIC_ACID}]


def test_a_reference_with_a_display_only():
    resource = statement("ms", None, medicationReference={"display": "Omeprazole 20 mg"})
    assert only_med(resource).classes == {D.PPI}


def test_a_contained_medication_without_a_code_falls_back_to_the_display():
    resource = statement(
        "ms",
        None,
        contained=[{"resourceType": "Medication", "id": "med"}],
        medicationReference={"reference": "#med", "display": "Metformin 500"},
    )
    assert only_med(resource).classes == {D.METFORMIN}


def test_an_unresolvable_reference_without_display_is_not_read():
    resource = statement("ms", None, medicationReference={"reference": "Medication/missing"})
    extraction = extract(resource)
    assert extraction.facts.medications == () and extraction.skipped == ()


# --- DSTU2 MedicationOrder -------------------------------------------------------------------
def medication_order(oid="mo1", status="draft"):
    return {
        "resourceType": "MedicationOrder",
        "id": oid,
        "status": status,
        "patient": {"reference": f"Patient/{PID}"},
        "dateWritten": "2026-06-01",
        "medicationCodeableConcept": FOLIC_5,
        "dosageInstruction": [
            {
                "text": "1 tablet by mouth daily",
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "route": concept((SNOMED, "26643006", "Oral")),
                "doseQuantity": quantity(1, "{tbl}"),
            }
        ],
    }


def test_a_dstu2_medication_order_draft_keeps_its_id_and_is_read():
    med = only_med(drafts=[medication_order()])
    assert med.resource_id == "MedicationOrder/mo1"
    assert med.is_draft and not med.is_stop_order
    assert med.classes == {D.FOLIC_ACID}
    assert med.start == datetime(2026, 6, 1, tzinfo=UTC)
    assert (med.route, med.dose_ug, med.interval_days) == (Route.ORAL, 5000, 1)
    assert med.dose_ug_per_day == 5000


def test_a_dstu2_medication_order_passes_strict_validation_after_repair():
    extraction = extract(drafts=[medication_order()], strict=True)
    assert extraction.skipped == ()
    assert extraction.facts.medications[0].resource_id == "MedicationOrder/mo1"


def test_a_dstu2_medication_order_whose_status_is_not_a_string_is_skipped_naming_it(caplog):
    caplog.set_level(logging.INFO, logger="cds_service.fhir.extract")
    extraction = extract(medication_order(status=["active"]))
    assert extraction.facts.medications == ()
    assert extraction.skipped == ("MedicationOrder/mo1",)
    assert [(r.resource, r.reason) for r in caplog.records] == [
        ("MedicationOrder/mo1", "malformed status")
    ]


def test_an_active_dstu2_medication_order_in_the_prefetch_is_read():
    med = only_med(medication_order(status="active"))
    assert (med.resource_id, med.is_draft, med.status) == ("MedicationOrder/mo1", False, "active")


# =============================================================================================
# Draft lab orders
# =============================================================================================
def test_a_service_request_draft_is_a_draft_lab_order():
    found = extract(drafts=[fhirjson.service_request("sr1", "2132-9", "Vitamin B12")]).facts
    assert [(d.resource_id, d.analytes, d.name) for d in found.draft_labs] == [
        ("ServiceRequest/sr1", frozenset({Analyte.TOTAL_B12}), "Vitamin B12")
    ]
    assert found.draft_ids == {"ServiceRequest/sr1"}


def test_a_service_request_with_several_loinc_codes_orders_each_analyte():
    order = fhirjson.service_request("sr1", "2132-9", "B12")
    order["code"]["coding"].append({"system": LOINC, "code": "13964-2"})
    order["code"].pop("text")
    found = extract(drafts=[order]).facts.draft_labs[0]
    assert found.analytes == {Analyte.TOTAL_B12, Analyte.MMA}
    assert found.name == "B12"


def test_a_service_request_without_text_or_display_has_a_generic_name():
    order = {
        "resourceType": "ServiceRequest",
        "id": "sr",
        "code": {"coding": [{"system": LOINC, "code": "72160-5"}]},
    }
    assert extract(drafts=[order]).facts.draft_labs[0].name == "laboratory test"


def test_a_service_request_for_something_no_rule_reads_is_not_kept():
    order = fhirjson.service_request("sr1", "24323-8", "Comprehensive metabolic panel")
    assert extract(drafts=[order]).facts.draft_labs == ()


def test_service_requests_outside_the_draft_orders_are_not_drafts():
    assert extract(fhirjson.service_request("sr1", "2132-9", "B12")).facts.draft_labs == ()


# =============================================================================================
# Conditions
# =============================================================================================
PA = concept((SNOMED, "84027009", "Pernicious anemia"), text="Pernicious anaemia")


@pytest.mark.parametrize("status", ["active", "recurrence", "relapse", None])
def test_active_or_unknown_conditions_are_read(status):
    found = conditions(condition("c1", PA, clinical=status))
    assert [(c.resource_id, c.kinds) for c in found] == [
        ("Condition/c1", {K.PERNICIOUS_ANAEMIA, K.B12_DEFICIENCY})
    ]


@pytest.mark.parametrize("status", ["resolved", "inactive", "remission"])
def test_resolved_or_inactive_conditions_are_ignored(status):
    assert conditions(condition("c1", PA, clinical=status)) == ()


@pytest.mark.parametrize("status", ["refuted", "entered-in-error"])
def test_refuted_or_entered_in_error_conditions_are_ignored(status):
    assert conditions(condition("c1", PA, verification=status)) == ()


@pytest.mark.parametrize("status", ["confirmed", "provisional", "unconfirmed", "differential"])
def test_other_verification_statuses_are_read(status):
    assert len(conditions(condition("c1", PA, verification=status))) == 1


@pytest.mark.parametrize(
    "onset, expected",
    [
        ({"onsetDateTime": "2019-05-01T10:00:00Z"}, datetime(2019, 5, 1, 10, tzinfo=UTC)),
        ({"onsetPeriod": {"start": "2019-06"}}, datetime(2019, 6, 1, tzinfo=UTC)),
        ({"recordedDate": "2019-07-02"}, datetime(2019, 7, 2, tzinfo=UTC)),
        (
            {"onsetDateTime": "2019-05-01", "recordedDate": "2020-01-01"},
            datetime(2019, 5, 1, tzinfo=UTC),
        ),
        (
            {"onsetString": "childhood", "recordedDate": "2020-01-01"},
            datetime(2020, 1, 1, tzinfo=UTC),
        ),
        ({}, None),
    ],
)
def test_condition_onset_falls_back_to_the_recorded_date(onset, expected):
    assert conditions(condition("c1", PA, **onset))[0].onset == expected


def test_a_condition_classified_by_icd10cm_text_less_is_named_deterministically():
    found = conditions(condition("c1", {"coding": [{"system": ICD10CM, "code": "D51.0"}]}))[0]
    assert found.name == "pernicious anaemia"
    assert found.verified


def test_a_condition_is_named_by_its_text_then_display():
    found = conditions(
        condition(
            "c1",
            concept(
                (ICD10CM, "K50.00", "Crohn disease of small " "intestine without complications")
            ),
        )
    )[0]
    assert found.kinds == {K.ILEAL_CROHNS}
    assert found.name.startswith("Crohn disease of small intestine")


def test_an_unverified_snomed_code_without_matching_text_is_flagged():
    found = conditions(condition("c1", concept((SNOMED, "25064002", "Dizziness"))))[0]
    assert found.kinds == {K.HEADACHE}
    assert not found.verified


def test_an_unverified_snomed_code_with_matching_text_is_verified():
    found = conditions(condition("c1", concept((SNOMED, "25064002", "Headache"))))[0]
    assert found.verified


def test_a_verified_snomed_code_needs_no_text():
    assert conditions(condition("c1", {"coding": [{"system": SNOMED, "code": "84027009"}]}))[
        0
    ].verified


def test_colonic_crohns_is_not_a_malabsorption_cause():
    code = concept((ICD10CM, "K50.10", "Crohn's disease of large intestine"))
    assert conditions(condition("c1", code)) == ()


def test_conditions_no_rule_reads_are_not_kept():
    assert conditions(condition("c1", concept((SNOMED, "38341003", "Hypertension")))) == ()


def test_a_malformed_clinical_status_skips_the_condition():
    resource = condition("c1", PA)
    resource["clinicalStatus"] = "active"
    extraction = extract(resource)
    assert extraction.facts.conditions == ()
    assert extraction.skipped == ("Condition/c1",)


def test_condition_category_as_a_single_object_is_not_malformed():
    resource = condition("c1", PA, category={"coding": [{"code": "problem-list-item"}]})
    extraction = extract(resource, strict=True)
    assert len(extraction.facts.conditions) == 1 and extraction.skipped == ()


# =============================================================================================
# Patient
# =============================================================================================
@pytest.mark.parametrize(
    "birth, expected",
    [("1960-04-12", date(1960, 4, 12)), ("1960-04", date(1960, 4, 1)), ("1960", date(1960, 1, 1))],
)
def test_birth_date_partial_or_full(birth, expected):
    patient = extract(fhirjson.patient(PID, birth)).facts.patient
    assert patient.resource_id == f"Patient/{PID}"
    assert patient.birth_date == expected


@pytest.mark.parametrize(
    "gender, sex",
    [
        ("female", Sex.FEMALE),
        ("male", Sex.MALE),
        ("other", Sex.OTHER),
        ("unknown", Sex.UNKNOWN),
        (None, Sex.UNKNOWN),
    ],
)
def test_gender_becomes_sex(gender, sex):
    resource = fhirjson.patient(PID)
    if gender is None:
        resource.pop("gender")
    else:
        resource["gender"] = gender
    assert extract(resource).facts.patient.sex is sex


def test_no_birth_date_is_no_age():
    resource = fhirjson.patient(PID)
    resource.pop("birthDate")
    assert extract(resource).facts.patient.birth_date is None


def test_the_patient_whose_id_matches_the_context_is_chosen():
    other = fhirjson.patient("someone-else", "1930-01-01", "male")
    mine = fhirjson.patient(PID, "1980-02-03", "female")
    patient = extract(other, mine).facts.patient
    assert (patient.resource_id, patient.birth_date, patient.sex) == (
        f"Patient/{PID}",
        date(1980, 2, 3),
        Sex.FEMALE,
    )


def test_no_patient_resource_is_none():
    assert extract(b12()).facts.patient is None


def test_an_invalid_birth_date_skips_the_patient_and_logs_its_id(caplog):
    caplog.set_level(logging.INFO)
    extraction = extract(fhirjson.patient(PID, "12/04/1960"))
    assert extraction.facts.patient is None
    assert extraction.skipped == (f"Patient/{PID}",)
    (record,) = [r for r in caplog.records if getattr(r, "resource", None)]
    assert record.reason == "malformed birthDate"
    assert "12/04/1960" not in str(record.__dict__)


# =============================================================================================
# Whole extraction
# =============================================================================================
def test_the_same_resource_from_two_prefetch_keys_is_read_once():
    obs = b12()
    med = statement("ms", METFORMIN)
    cond = condition("c1", PA)
    extraction = extract(
        obs, copy.deepcopy(obs), med, copy.deepcopy(med), cond, copy.deepcopy(cond)
    )
    facts = extraction.facts
    assert (len(facts.labs), len(facts.medications), len(facts.conditions)) == (1, 1, 1)


def test_same_id_different_types_are_different_resources():
    med_s = statement("x", METFORMIN)
    med_r = request("x", METFORMIN)
    assert len(meds(med_s, med_r)) == 2


def test_selections_and_missing_are_carried_through():
    facts = extract(selections=["MedicationRequest/d1"], missing=[DataCategory.B12_LABS]).facts
    assert facts.selections == {"MedicationRequest/d1"}
    assert facts.missing == {DataCategory.B12_LABS}


def test_nothing_in_gives_empty_facts():
    extraction = extract_facts([])
    assert extraction.skipped == ()
    facts = extraction.facts
    assert (
        facts.patient,
        facts.labs,
        facts.medications,
        facts.conditions,
        facts.draft_labs,
        facts.pregnancy_observed,
    ) == (None, (), (), (), (), False)


# --- strict ----------------------------------------------------------------------------------
def test_strict_rejects_an_observation_without_status():
    resource = b12(status=None)
    assert extract(resource).skipped == ()
    extraction = extract(resource, strict=True)
    assert extraction.skipped == ("Observation/b12",)
    assert extraction.facts.labs == ()


@pytest.mark.parametrize(
    "invalid",
    [
        {"issued": "not-a-date"},
        {"subject": f"Patient/{PID}"},  # a string where a Reference belongs
        {"unknownElement": True},
        {"effectiveInstant": "2026-05-01T00:00:00Z"},  # two choices of effective[x]
    ],
)
def test_strict_rejects_an_invalid_element_the_default_path_does_not_read(invalid, caplog):
    caplog.set_level(logging.INFO)
    resource = b12(**invalid)
    lenient = extract(resource)
    assert len(lenient.facts.labs) == 1 and lenient.skipped == ()
    strict = extract(resource, strict=True)
    assert strict.facts.labs == () and strict.skipped == ("Observation/b12",)
    record = next(r for r in caplog.records if getattr(r, "resource", None))
    assert record.reason == "ValidationError"  # the type only: pydantic messages quote input


def test_strict_reads_valid_resources_of_every_kind():
    extraction = extract(
        fhirjson.patient(PID),
        b12(),
        fhirjson.observation("mma", "13964-2", 300, "nmol/L", "2026-05-01", high=370),
        statement(
            "ms",
            METFORMIN,
            effectivePeriod={"start": "2020-01-01"},
            category={"coding": [{"code": "community"}]},
        ),
        request(
            "mr", FOLIC_5, authoredOn="2026-01-01", category=[{"coding": [{"code": "outpatient"}]}]
        ),
        condition("c1", PA, recordedDate="2020-01-01"),
        drafts=[
            request("d1", HYDROXO_INJ, status="draft"),
            fhirjson.service_request("sr1", "2132-9", "B12"),
        ],
        strict=True,
    )
    assert extraction.skipped == ()
    facts = extraction.facts
    assert facts.patient is not None
    assert (
        len(facts.labs),
        len(facts.medications),
        len(facts.conditions),
        len(facts.draft_labs),
    ) == (2, 3, 1, 1)


def test_strict_accepts_a_medication_statement_with_its_single_category():
    # R4 MedicationStatement.category is 0..1: it must not be "repaired" into an array
    resource = statement("ms", METFORMIN, category={"coding": [{"code": "community"}]})
    extraction = extract(resource, strict=True)
    assert extraction.skipped == () and len(extraction.facts.medications) == 1


def test_strict_accepts_an_observation_category_sent_as_one_object():
    resource = b12()
    resource["category"] = {"coding": [{"code": "laboratory"}]}
    extraction = extract(resource, strict=True)
    assert extraction.skipped == () and len(extraction.facts.labs) == 1


def test_strict_accepts_a_bare_draft_order():
    bare = {"resourceType": "MedicationRequest", "id": "d1", "medicationCodeableConcept": FOLIC_5}
    extraction = extract(drafts=[bare], strict=True)
    assert extraction.skipped == () and len(extraction.facts.medications) == 1


# --- the input is never mutated --------------------------------------------------------------
def test_the_input_is_never_mutated():
    resources = [
        fhirjson.patient(PID),
        b12() | {"category": {"coding": [{"code": "laboratory"}]}},
        fhirjson.observation("mma", "13964-2", 0.4, "umol/L", "2026-05-01", high=0.37),
        pregnancy_status("preg", "2026-05-01", "77386006", "Pregnant"),
        *haemoglobins(5),
        statement(
            "ms",
            METFORMIN,
            category={"coding": [{"code": "community"}]},
            dosage={"timing": repeat(2, 1, "d")},
        ),
        request(
            "mr",
            None,
            medicationReference={"reference": "Medication/m1"},
            dosageInstruction={"text": "once daily"},
        ),
        {"resourceType": "Medication", "id": "m1", "code": FOLIC_5},
        condition("c1", PA, category={"coding": [{"code": "problem-list-item"}]}),
        b12("bad", value="x"),
    ]
    drafts = [
        {"resourceType": "MedicationRequest", "id": "d1", "medicationCodeableConcept": FOLIC_5},
        medication_order(),
        request(
            "d2",
            None,
            medicationReference={"reference": "#m"},
            contained=[{"resourceType": "Medication", "id": "m", "code": CYANO_INJ}],
        ),
        {
            "resourceType": "ServiceRequest",
            "id": "sr",
            "code": {"coding": [{"system": LOINC, "code": "2132-9"}]},
        },
    ]
    before = copy.deepcopy((resources, drafts))
    for strict in (False, True):
        extract_facts(resources, drafts, patient_id=PID, strict=strict)
        assert (resources, drafts) == before


def test_extraction_is_repeatable():
    resources = [b12(), statement("ms", METFORMIN), condition("c1", PA)]
    assert extract(*resources) == extract(*resources)


def test_subject_is_not_checked_against_the_patient():
    # prefetch queries are scoped to the patient; the adapter does not second-guess them
    resource = b12()
    resource["subject"] = {"reference": "Patient/other"}
    assert len(labs(resource)) == 1
    assert SUBJECT == {"reference": f"Patient/{PID}"}


# --- one bad resource never fails the request ------------------------------------------------
FUZZ_JUNK = ["x", -1.5, True, [], {"a": 1}, [None]]


def _fuzz_bases():
    return [
        b12("fz")
        | {"referenceRange": [{"high": quantity(370, "ng/L")}], "issued": "2026-05-02T00:00:00Z"},
        pregnancy_status("fz", "2026-05-01", "77386006", "Pregnant"),
        statement(
            "fz",
            METFORMIN,
            effectivePeriod={"start": "2020-01"},
            dosage_=dosage(
                dose=quantity(1, "{tbl}"),
                timing=repeat(2, 1, "d", count=3),
                route=concept((SNOMED, "26643006", "Oral")),
                text="take",
            ),
        ),
        request(
            "fz",
            None,
            medicationReference={"reference": "#m"},
            contained=[{"resourceType": "Medication", "id": "m", "code": CYANO_INJ}],
            dispenseRequest={"validityPeriod": {"start": "2026-01-01"}},
            dosage_={
                "doseAndRate": [{"doseRange": {"low": quantity(1, "mL")}}],
                "timing": {"code": {"coding": [{"code": "WK"}]}},
            },
        ),
        condition("fz", PA, verification="confirmed", onsetPeriod={"start": "2019"}),
        fhirjson.patient("fz"),
        medication_order("fz"),
    ]


def _paths(value, path=()):
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, path + (index,))


@pytest.mark.parametrize("index", range(len(_fuzz_bases())))
def test_junk_in_any_element_never_fails_the_request(index):
    base = _fuzz_bases()[index]
    good = b12("good")
    for path in _paths(base):
        for junk in FUZZ_JUNK:
            resource = copy.deepcopy(base)
            target = resource
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = junk
            as_draft = resource.get("resourceType") in ("MedicationRequest", "MedicationOrder")
            extraction = extract_facts(
                [resource, good], [resource] if as_draft else [], patient_id="fz"
            )
            assert [
                lab.resource_id
                for lab in extraction.facts.labs
                if lab.resource_id == "Observation/good"
            ] == ["Observation/good"], (path, junk)


def test_strict_skips_a_contained_resource_of_unknown_type_instead_of_failing():
    resource = request(
        "mr",
        None,
        medicationReference={"reference": "#m"},
        contained=[{"resourceType": "NoSuchType", "id": "m", "code": FOLIC_5}],
    )
    extraction = extract(resource, b12(), strict=True)
    assert extraction.skipped == ("MedicationRequest/mr",)
    assert len(extraction.facts.labs) == 1
