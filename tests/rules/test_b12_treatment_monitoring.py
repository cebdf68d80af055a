import pytest

from cds_service.domain.codes import LOINC_CBC, LOINC_POTASSIUM, LOINC_RETICULOCYTES
from cds_service.domain.findings import OrderLab, SelectionBehavior
from cds_service.domain.policy import Policy
from cds_service.domain.rules import b12_treatment_monitoring as rule
from cds_service.domain.sources import CYANOCOBALAMIN_LABEL
from cds_service.domain.vocabulary import DataCategory, Indicator
from tests.builders import (
    Analyte,
    ConditionKind,
    DrugClass,
    Route,
    Sex,
    condition,
    days_ago,
    draft,
    lab,
    lab_order,
    med,
    patient,
    run,
)

HYDROXO = DrugClass.HYDROXOCOBALAMIN


def im_draft(rid="MedicationRequest/b12", **kw):
    kw.setdefault("route", Route.INTRAMUSCULAR)
    return draft(
        HYDROXO,
        name="Hydroxocobalamin 1 MG/ML injection",
        dose_ug=1000,
        interval_days=2,
        rid=rid,
        **kw
    )


def hb(value, **kw):
    return lab(Analyte.HAEMOGLOBIN, value, rid="Observation/hb", **kw)


def mcv(value, **kw):
    return lab(Analyte.MCV, value, rid="Observation/mcv", **kw)


def potassium(value, **kw):
    return lab(Analyte.POTASSIUM, value, rid="Observation/k", **kw)


MEGALOBLASTIC = (hb(9.1), mcv(112))


def loincs(finding):
    return [a.loinc for s in finding.suggestions for a in s.actions if isinstance(a, OrderLab)]


def test_im_b12_draft_with_macrocytic_anaemia_is_a_warning_with_the_monitoring_orders():
    finding = run(rule, im_draft(), *MEGALOBLASTIC, potassium(4.1))
    assert finding.indicator is Indicator.WARNING
    assert finding.summary.startswith("Hb 9.1 g/dL, MCV 112 fL: check potassium within 48 h")
    assert "reticulocytes and haematocrit on days 5-7" in finding.summary
    assert len(finding.summary) < 140
    assert finding.selection_behavior is SelectionBehavior.ANY
    assert loincs(finding) == [LOINC_POTASSIUM, LOINC_RETICULOCYTES, LOINC_CBC]
    assert LOINC_POTASSIUM == "2823-3" and LOINC_RETICULOCYTES == "4679-7"
    assert finding.concerns == frozenset({"MedicationRequest/b12"})
    assert finding.supersedes == frozenset()
    assert finding.source is CYANOCOBALAMIN_LABEL
    for rid in ("Observation/hb", "Observation/mcv", "Observation/k", "MedicationRequest/b12"):
        assert rid in finding.detail
    assert "review at 3 months" in finding.detail
    assert "platelets until normal" in finding.detail
    assert finding.detail.rstrip().splitlines()[-1].startswith("Source: ")


@pytest.mark.parametrize("value, indicator", [(2.9, Indicator.CRITICAL), (3.0, Indicator.WARNING)])
def test_potassium_boundary_3_0(value, indicator):
    finding = run(rule, im_draft(), *MEGALOBLASTIC, potassium(value))
    assert finding.indicator is indicator
    assert len(finding.summary) < 140


def test_critical_summary_carries_the_potassium():
    finding = run(rule, im_draft(), *MEGALOBLASTIC, potassium(2.7))
    assert finding.summary.startswith("Potassium 2.7 mmol/L as B12 starts")
    assert "below 3.0 mmol/L" in finding.detail
    assert loincs(finding) == [LOINC_POTASSIUM, LOINC_RETICULOCYTES, LOINC_CBC]


def test_low_potassium_is_critical_even_without_anaemia():
    finding = run(rule, im_draft(), hb(14), mcv(90), potassium(2.8))
    assert finding.indicator is Indicator.CRITICAL


def test_site_potassium_threshold_is_read_from_policy():
    policy = Policy.from_mapping({"thresholds": {"potassium_critical_below_mmol_l": 3.5}})
    finding = run(rule, im_draft(), *MEGALOBLASTIC, potassium(3.2), policy=policy)
    assert finding.indicator is Indicator.CRITICAL


def test_stale_low_potassium_does_not_escalate():
    finding = run(rule, im_draft(), *MEGALOBLASTIC, potassium(2.5, days=400))
    assert finding.indicator is Indicator.WARNING
    assert "no current potassium" in finding.detail


def test_no_anaemia_is_info_with_the_review_plan_only():
    finding = run(rule, im_draft(), hb(14), mcv(90))
    assert finding.indicator is Indicator.INFO
    assert "review response at 3 months" in finding.summary
    assert finding.suggestions == () and finding.selection_behavior is None
    assert finding.concerns == frozenset({"MedicationRequest/b12"})


def test_macrocytosis_without_anaemia_is_info():
    assert run(rule, im_draft(), hb(14), mcv(105)).indicator is Indicator.INFO


def test_anaemia_without_macrocytosis_is_info():
    assert run(rule, im_draft(), hb(9), mcv(85)).indicator is Indicator.INFO


@pytest.mark.parametrize("value, indicator", [(12.9, Indicator.WARNING), (13.0, Indicator.INFO)])
def test_male_haemoglobin_boundary(value, indicator):
    finding = run(rule, im_draft(), hb(value), mcv(110), patient_=patient(sex=Sex.MALE))
    assert finding.indicator is indicator


def test_recorded_megaloblastic_anaemia_counts_without_labs():
    finding = run(rule, im_draft(), condition(ConditionKind.MEGALOBLASTIC_ANAEMIA))
    assert finding.indicator is Indicator.WARNING
    assert finding.summary.startswith("Megaloblastic anaemia: check potassium")


def test_no_blood_count_is_info_with_a_cbc_suggestion():
    finding = run(rule, im_draft(), missing=frozenset({DataCategory.BLOOD_COUNTS}))
    assert finding.indicator is Indicator.INFO
    assert "no current blood count" in finding.summary
    assert loincs(finding) == [LOINC_CBC]
    assert "Blood counts could not be obtained" in finding.detail


def test_pregnancy_review_is_at_1_month():
    finding = run(rule, im_draft(), hb(14), mcv(90), condition(ConditionKind.PREGNANCY))
    assert "1 month" in finding.summary
    assert "review at 1 month" in finding.detail


def test_already_drafted_potassium_is_not_suggested_again():
    finding = run(rule, im_draft(), *MEGALOBLASTIC, lab_order(Analyte.POTASSIUM))
    assert loincs(finding) == [LOINC_RETICULOCYTES, LOINC_CBC]


@pytest.mark.parametrize("days, fires", [(0, True), (7, True), (8, False)])
def test_non_draft_parenteral_b12_started_within_7_days(days, fires):
    started = med(
        HYDROXO, route=Route.INTRAMUSCULAR, start=days_ago(days), rid="MedicationStatement/s"
    )
    finding = run(rule, started, *MEGALOBLASTIC)
    assert (finding is not None) is fires
    if fires:
        assert finding.indicator is Indicator.WARNING
        assert finding.concerns == frozenset()
        assert "MedicationStatement/s" in finding.detail


@pytest.mark.parametrize("route", [Route.ORAL, Route.SUBLINGUAL, Route.UNKNOWN])
def test_non_parenteral_draft_is_silent(route):
    assert run(rule, im_draft(route=route), *MEGALOBLASTIC) is None


@pytest.mark.parametrize("route", [Route.SUBCUTANEOUS, Route.INTRAVENOUS])
def test_other_parenteral_routes_count(route):
    assert run(rule, im_draft(route=route), *MEGALOBLASTIC) is not None


def test_draft_continuing_an_established_im_course_is_silent():
    established = med(HYDROXO, route=Route.INTRAMUSCULAR, months=6)
    assert run(rule, im_draft(), established, *MEGALOBLASTIC) is None


def test_switch_from_established_oral_to_im_is_a_start():
    oral = med(DrugClass.CYANOCOBALAMIN, route=Route.ORAL, months=6)
    assert run(rule, im_draft(), oral, *MEGALOBLASTIC).indicator is Indicator.WARNING


def test_stop_order_is_silent():
    assert run(rule, im_draft(stop=True), *MEGALOBLASTIC) is None


def test_no_b12_is_silent():
    assert run(rule, *MEGALOBLASTIC, potassium(2.5)) is None


# --- the plan never says "no B12 test" while a baseline sample is due ---------------------------
def test_without_a_diagnostic_b12_the_plan_asks_for_the_sample_before_the_first_dose():
    finding = run(rule, im_draft(), hb(13.5), mcv(90))
    assert "take the B12 sample before the first dose" in finding.summary
    assert "no routine B12 retest" not in finding.summary
    assert "take the B12 sample before the first dose" in finding.detail


def test_with_a_diagnostic_b12_the_plan_reviews_symptoms_and_blood_count_not_b12_levels():
    from tests.builders import b12

    finding = run(rule, im_draft(), hb(13.5), mcv(90), b12(150, days=20))
    assert finding.summary.endswith("review symptoms and blood count at 3 months.")
    assert "B12 levels on IM therapy are not informative" in finding.detail


def test_a_maintenance_dose_after_a_course_completed_within_3_months_is_not_a_start():
    course = med(
        HYDROXO,
        name="Hydroxocobalamin 1 mg",
        route=Route.INTRAMUSCULAR,
        status="completed",
        start=days_ago(92),
    )
    course = type(course)(**{**course.__dict__, "end": days_ago(80)})
    assert run(rule, im_draft(), hb(13.1), mcv(96)) is not None
    assert run(rule, course, im_draft(), hb(13.1), mcv(96)) is None
