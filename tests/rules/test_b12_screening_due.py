from dataclasses import replace

import pytest

from cds_service.domain.codes import LOINC_ACTIVE_B12, LOINC_CBC, LOINC_FOLATE, LOINC_TOTAL_B12
from cds_service.domain.findings import OrderLab, SelectionBehavior
from cds_service.domain.policy import Policy
from cds_service.domain.rules import b12_screening_due as rule
from cds_service.domain.vocabulary import DataCategory, Indicator
from tests.builders import (
    Analyte,
    ConditionKind,
    DrugClass,
    Route,
    Sex,
    active_b12,
    b12,
    condition,
    days_ago,
    draft,
    lab,
    lab_order,
    med,
    mma,
    months_ago,
    patient,
    run,
)


def metformin(months: float = 72, **kw):
    return med(DrugClass.METFORMIN, name="Metformin 500 MG Oral Tablet", months=months, **kw)


def loincs(finding):
    (suggestion,) = finding.suggestions
    assert all(isinstance(a, OrderLab) for a in suggestion.actions)
    return [a.loinc for a in suggestion.actions]


def test_metformin_for_6_years_without_b12_is_info_with_b12_and_cbc():
    finding = run(rule, metformin(72, rid="MedicationStatement/met"))
    assert finding.rule_id == "b12-screening-due"
    assert finding.indicator is Indicator.INFO
    assert finding.summary == (
        "No B12 result in 12 months for a patient on metformin for 6 years: check B12."
    )
    assert "MedicationStatement/met" in finding.detail
    assert loincs(finding) == [LOINC_TOTAL_B12, LOINC_CBC]
    assert finding.selection_behavior is SelectionBehavior.ANY
    assert finding.detail.rstrip().splitlines()[-1].startswith("Source: ")
    assert finding.supersedes == frozenset()


@pytest.mark.parametrize("months, fires", [(3.9, False), (4, True), (4.1, True)])
def test_metformin_boundary_4_months(months, fires):
    assert (run(rule, metformin(months)) is not None) is fires


@pytest.mark.parametrize("cls", [DrugClass.PPI, DrugClass.H2_BLOCKER])
@pytest.mark.parametrize("months, fires", [(11.9, False), (12, True)])
def test_acid_suppression_boundary_12_months(cls, months, fires):
    assert (run(rule, med(cls, months=months)) is not None) is fires


def test_two_risk_factors_both_named_when_they_fit():
    finding = run(rule, metformin(), condition(ConditionKind.VEGAN_DIET))
    assert finding.summary == (
        "No B12 result in 12 months for a patient on metformin for 6 years, with vegan / strict "
        "vegetarian diet: check B12."
    )


@pytest.mark.parametrize("days, fires", [(364, False), (366, True)])
def test_b12_result_within_12_months_is_current(days, fires):
    finding = run(rule, metformin(), b12(420, days=days, rid="Observation/old"))
    assert (finding is not None) is fires
    if fires:
        assert "Observation/old" in finding.detail
        assert "420 ng/L (≈310 pmol/L)" in finding.detail
        assert "older than 12 months" in finding.detail


def test_window_follows_site_policy():
    policy = Policy.from_mapping({"windows": {"lookback_months": 18}})
    assert run(rule, metformin(), b12(420, days=400), policy=policy) is None
    finding = run(rule, metformin(), b12(420, days=600), policy=policy)
    assert finding.summary.startswith("No B12 result in 18 months")


@pytest.mark.parametrize(
    "items, patient_",
    [
        ((condition(ConditionKind.VEGAN_DIET),), None),
        ((condition(ConditionKind.PERNICIOUS_ANAEMIA),), None),
        ((condition(ConditionKind.ALCOHOL_USE_DISORDER),), None),
        ((med(DrugClass.COLCHICINE, months=1),), None),
        ((med(DrugClass.AMINOSALICYLIC_ACID, months=1),), None),
        ((lab(Analyte.HAEMOGLOBIN, 10.5),), None),
        ((), patient(76)),
    ],
    ids=["vegan", "malabsorption", "alcohol", "colchicine", "pas", "anaemia", "age-76"],
)
def test_each_risk_factor_or_sign_fires_as_info(items, patient_):
    finding = run(rule, *items, patient_=patient_)
    assert finding.indicator is Indicator.INFO


@pytest.mark.parametrize("age, fires", [(75, False), (76, True)])
def test_age_over_75(age, fires):
    finding = run(rule, patient_=patient(age))
    assert (finding is not None) is fires
    if fires:
        assert "aged 76" in finding.summary


def test_no_risk_factor_is_silent():
    assert run(rule) is None


def test_macrocytosis_is_warning_and_adds_folate():
    finding = run(rule, lab(Analyte.MCV, 104))
    assert finding.indicator is Indicator.WARNING
    assert "MCV 104 fL" in finding.summary
    assert loincs(finding) == [LOINC_TOTAL_B12, LOINC_CBC, LOINC_FOLATE]
    assert finding.suggestions[0].label == "Order B12, a blood count and folate"


@pytest.mark.parametrize("mcv, fires", [(100, False), (100.1, True)])
def test_macrocytosis_boundary(mcv, fires):
    assert (run(rule, lab(Analyte.MCV, mcv)) is not None) is fires


def test_neurological_involvement_raises_to_warning():
    finding = run(rule, metformin(), condition(ConditionKind.PERIPHERAL_NEUROPATHY))
    assert finding.indicator is Indicator.WARNING
    assert LOINC_FOLATE not in loincs(finding)


def test_headache_is_possible_involvement_and_says_so():
    finding = run(rule, metformin(), condition(ConditionKind.HEADACHE))
    assert finding.indicator is Indicator.WARNING
    assert "*possible* neurological involvement" in finding.detail


def test_neurological_involvement_alone_does_not_trigger():
    assert run(rule, condition(ConditionKind.PARAESTHESIA)) is None


def test_every_risk_factor_is_listed_with_durations():
    finding = run(
        rule,
        metformin(72, rid="MedicationStatement/met"),
        med(DrugClass.PPI, name="Omeprazole 20 MG", months=30, rid="MedicationStatement/ppi"),
        condition(ConditionKind.VEGAN_DIET, rid="Condition/vegan"),
        patient_=patient(80),
    )
    # As many as fit under 140 characters; the rest are counted.
    assert finding.summary == (
        "No B12 result in 12 months for a patient on metformin for 6 years "
        "(+3 more risk factors): check B12."
    )
    for text in (
        "on metformin for 6 years",
        "on a proton pump inhibitor for 2 years",
        "age 80",
        "vegan / strict vegetarian diet",
        "MedicationStatement/met",
        "MedicationStatement/ppi",
        "Condition/vegan",
        "Patient/p1",
    ):
        assert text in finding.detail
    assert len(finding.summary) < 140


def test_result_drawn_on_therapy_is_stale_but_therapy_silences():
    # On B12 therapy: testing is pointless (and the card would be noise).
    therapy = med(DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR, months=6)
    assert run(rule, metformin(), therapy, b12(900, days=30)) is None


def test_only_on_treatment_result_after_therapy_stopped_is_mentioned():
    stopped = med(DrugClass.CYANOCOBALAMIN, status="completed", months=8)
    finding = run(rule, metformin(), stopped, b12(900, days=30, rid="Observation/on-tx"))
    assert "Observation/on-tx" in finding.detail
    assert "drawn after B12 therapy began" in finding.detail


def test_b12_test_already_drafted_is_silent():
    assert run(rule, metformin(), lab_order(Analyte.TOTAL_B12)) is None
    assert run(rule, metformin(), lab_order(Analyte.ACTIVE_B12)) is None


def test_drafted_folate_is_not_suggested_again():
    finding = run(rule, lab(Analyte.MCV, 104), lab_order(Analyte.FOLATE, name="Folate"))
    assert loincs(finding) == [LOINC_TOTAL_B12, LOINC_CBC]
    assert finding.suggestions[0].label == "Order B12 and a blood count"


def test_drafted_blood_count_is_not_suggested_again():
    count = lab_order(Analyte.HAEMOGLOBIN, Analyte.MCV, name="Full blood count")
    finding = run(rule, lab(Analyte.MCV, 104), count)
    assert loincs(finding) == [LOINC_TOTAL_B12, LOINC_FOLATE]
    assert finding.suggestions[0].label == "Order B12 and folate"


def test_current_b12_result_is_silent_whatever_its_band():
    assert run(rule, metformin(), b12(150)) is None
    assert run(rule, metformin(), active_b12(50)) is None


def test_current_b12_in_unknown_unit_is_left_to_lab_unit_unrecognised():
    assert run(rule, metformin(), b12(0.2, "mg")) is None


def test_current_normal_mma_settles_it():
    assert run(rule, metformin(), mma(200)) is None


def test_raised_mma_with_renal_impairment_does_not_settle_it():
    finding = run(rule, metformin(), mma(400), lab(Analyte.EGFR, 40))
    assert finding is not None
    assert "MMA 400 nmol/L" in finding.detail


def test_b12_draft_is_a_concern_and_sample_comes_first():
    b12_draft = draft(
        DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR, rid="MedicationRequest/b12"
    )
    finding = run(rule, metformin(), b12_draft)
    assert finding.concerns == frozenset({"MedicationRequest/b12"})
    assert "**before** the first dose" in finding.detail


def test_metformin_renewal_draft_is_a_concern():
    renewal = draft(DrugClass.METFORMIN, rid="MedicationRequest/met-renewal")
    finding = run(rule, metformin(), renewal)
    assert finding.concerns == frozenset({"MedicationRequest/met-renewal"})


def test_no_concerns_without_related_drafts():
    assert run(rule, metformin()).concerns == frozenset()


def test_missing_b12_results_are_said_plainly():
    finding = run(rule, metformin(), missing=frozenset({DataCategory.B12_LABS}))
    assert finding.summary.startswith("B12 results unavailable")
    assert "could not be obtained" in finding.detail


def test_missing_medications_are_mentioned():
    finding = run(rule, patient_=patient(80), missing=frozenset({DataCategory.MEDICATIONS}))
    assert "medications" in finding.detail


def test_anaemia_uses_sex_specific_haemoglobin():
    assert run(rule, lab(Analyte.HAEMOGLOBIN, 12.5), patient_=patient(50, Sex.FEMALE)) is None
    finding = run(rule, lab(Analyte.HAEMOGLOBIN, 12.5), patient_=patient(50, Sex.MALE))
    assert "Hb 12.5 g/dL" in finding.summary


def test_pregnancy_orders_active_b12_instead_of_total():
    finding = run(rule, metformin(), condition(ConditionKind.PREGNANCY))
    assert loincs(finding) == [LOINC_ACTIVE_B12, LOINC_CBC]
    assert "active B12" in finding.detail


# --- silent on established B12 therapy -----------------------------------------------------------
def hydroxo(**kw):
    return med(
        DrugClass.HYDROXOCOBALAMIN, name="Hydroxocobalamin 1 mg", route=Route.INTRAMUSCULAR, **kw
    )


def test_screening_is_silent_for_a_patient_on_active_b12_therapy():
    assert run(rule, metformin(), hydroxo(months=24)) is None


def test_screening_is_silent_when_the_last_b12_course_completed_within_3_months():
    finished = replace(hydroxo(months=4, status="completed"), end=days_ago(80))
    assert run(rule, metformin(), finished) is None


def test_screening_fires_when_the_last_b12_course_completed_more_than_3_months_ago():
    finished = replace(hydroxo(months=8, status="completed"), end=months_ago(4))
    assert run(rule, metformin(), finished) is not None


def test_a_first_b12_order_among_the_drafts_is_not_established_therapy():
    first = draft(
        DrugClass.HYDROXOCOBALAMIN, name="Hydroxocobalamin 1 mg", rid="MedicationRequest/h"
    )
    finding = run(rule, metformin(), first)
    assert finding is not None
    assert "take the blood sample **before** the first dose" in finding.detail
    assert "MedicationRequest/h" in finding.concerns


# --- medication statuses that are not exposure ---------------------------------------------------
@pytest.mark.parametrize("status", ["intended", "not-taken", "stopped", "unknown", "draft"])
def test_metformin_with_a_non_exposure_status_is_not_a_risk_factor(status):
    assert run(rule, metformin(status=status)) is None


@pytest.mark.parametrize("status", ["active", "on-hold"])
def test_metformin_active_or_on_hold_is_a_risk_factor(status):
    assert run(rule, metformin(status=status)) is not None


# --- what counts as anaemia ----------------------------------------------------------------------
def test_the_name_pernicious_anaemia_is_not_anaemia_with_a_normal_haemoglobin():
    finding = run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA), lab(Analyte.HAEMOGLOBIN, 13.1))
    assert finding is not None  # the malabsorption cause is a risk factor ...
    assert "anaemia (Hb" not in finding.summary and "with anaemia" not in finding.summary
    assert "anaemia: " not in finding.detail  # ... but no anaemia sign is listed


@pytest.mark.parametrize(
    "sex, hb, anaemic",
    [
        (Sex.MALE, 12.9, True),
        (Sex.MALE, 13.0, False),
        (Sex.FEMALE, 11.9, True),
        (Sex.FEMALE, 12.0, False),
    ],
    ids=["man 12.9", "man 13.0", "woman 11.9", "woman 12.0"],
)
def test_haemoglobin_limits_are_13_for_men_and_12_for_women(sex, hb, anaemic):
    finding = run(rule, lab(Analyte.HAEMOGLOBIN, hb), patient_=patient(50, sex))
    assert (finding is not None) is anaemic
    if anaemic:
        assert f"with anaemia (Hb {hb:g} g/dL)" in finding.summary


def test_haemoglobin_in_g_l_is_judged_after_conversion():
    assert run(rule, lab(Analyte.HAEMOGLOBIN, 119, "g/L"), patient_=patient(50, Sex.FEMALE))


def test_an_anaemia_diagnosis_is_a_sign():
    finding = run(rule, condition(ConditionKind.ANAEMIA, name="Anaemia", rid="Condition/a"))
    assert "with anaemia" in finding.summary and "Condition/a" in finding.detail


def test_anaemia_with_a_recorded_cause_is_not_unexplained_anaemia():
    iron = condition(
        ConditionKind.ANAEMIA, ConditionKind.EXPLAINED_ANAEMIA, name="Iron deficiency anaemia"
    )
    assert run(rule, iron, lab(Analyte.HAEMOGLOBIN, 10.1)) is None


def test_megaloblastic_anaemia_stays_a_screening_sign():
    assert run(rule, condition(ConditionKind.MEGALOBLASTIC_ANAEMIA)) is not None
