import pytest

from cds_service.domain.codes import LOINC_HOMOCYSTEINE, LOINC_MMA
from cds_service.domain.findings import OrderLab, OrderMedication, RemoveDraft, SelectionBehavior
from cds_service.domain.policy import Policy
from cds_service.domain.rules import nitrous_oxide_b12 as rule
from cds_service.domain.vocabulary import DataCategory, Indicator
from tests.builders import (
    Analyte,
    ConditionKind,
    DrugClass,
    Route,
    active_b12,
    b12,
    condition,
    draft,
    lab,
    lab_order,
    med,
    mma,
    months_ago,
    run,
)

SUMMARY = (
    "Nitrous oxide inactivates B12: total B12 can be normal. Test homocysteine or MMA first; "
    "with neurological signs start B12 now."
)
NEURO_SUMMARY = (
    "Nitrous oxide use with neurological signs: start B12 now and refer urgently. Total B12 can "
    "be normal: test homocysteine or MMA too."
)
ALWAYS = {
    "b12-normal-but-symptomatic",
    "b12-indeterminate",
    "b12-screening-due",
    "b12-cause-workup",
}


def n2o(rid="Condition/n2o"):
    return condition(ConditionKind.NITROUS_OXIDE_USE, name="Nitrous oxide misuse", rid=rid)


def actions(finding, kind):
    return [a for s in finding.suggestions for a in s.actions if isinstance(a, kind)]


def test_nitrous_oxide_use_with_normal_b12_is_a_warning_to_test_homocysteine_or_mma():
    finding = run(rule, n2o(), b12(420, rid="Observation/b12"))
    assert finding.indicator is Indicator.WARNING
    assert finding.summary == SUMMARY and len(finding.summary) < 140
    assert finding.selection_behavior is SelectionBehavior.ANY
    (suggestion,) = finding.suggestions
    assert suggestion.is_recommended
    assert [a.loinc for a in suggestion.actions] == [LOINC_HOMOCYSTEINE, LOINC_MMA]
    assert (LOINC_HOMOCYSTEINE, LOINC_MMA) == ("13965-9", "13964-2")
    assert finding.supersedes == frozenset(ALWAYS)
    assert finding.concerns == frozenset()
    assert "Condition/n2o" in finding.detail and "Observation/b12" in finding.detail
    assert "420 ng/L (≈310 pmol/L)" in finding.detail
    assert finding.detail.rstrip().splitlines()[-1].startswith("Source: ")


def test_with_paraesthesia_is_critical_and_offers_the_neurological_regimen():
    finding = run(rule, n2o(), b12(420), condition(ConditionKind.PARAESTHESIA))
    assert finding.indicator is Indicator.CRITICAL
    assert finding.summary == NEURO_SUMMARY and len(finding.summary) < 140
    (regimen_action,) = actions(finding, OrderMedication)
    assert regimen_action.regimen.key == "im-neurological"
    assert all(s.is_recommended for s in finding.suggestions)
    assert "refer urgently" in finding.detail


def test_with_headache_only_is_critical_and_says_possible_involvement_plainly():
    finding = run(rule, n2o(), condition(ConditionKind.HEADACHE, name="Headache"))
    assert finding.indicator is Indicator.CRITICAL
    assert finding.summary.startswith(
        "Nitrous oxide use with possible neurological signs (headache): start B12 now"
    )
    assert len(finding.summary) < 140
    assert "Confirm clinically" in finding.detail


def test_site_that_drops_headache_keeps_it_a_warning():
    policy = Policy.from_mapping({"neurological_involvement": ["paraesthesia"]})
    finding = run(rule, n2o(), condition(ConditionKind.HEADACHE), policy=policy)
    assert finding.indicator is Indicator.WARNING
    assert actions(finding, OrderMedication) == []


def test_neuro_with_b12_therapy_already_is_critical_without_a_second_regimen():
    on = med(DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR, months=1)
    finding = run(rule, n2o(), on, condition(ConditionKind.PARAESTHESIA))
    assert finding.indicator is Indicator.CRITICAL
    assert actions(finding, OrderMedication) == []


def test_drafted_total_b12_test_is_replaced_by_homocysteine_and_mma():
    finding = run(rule, n2o(), lab_order(Analyte.TOTAL_B12, rid="ServiceRequest/b12"))
    (suggestion,) = finding.suggestions
    assert suggestion.label.startswith("Replace the total B12 test")
    assert [a.resource_id for a in suggestion.actions if isinstance(a, RemoveDraft)] == [
        "ServiceRequest/b12"
    ]
    assert [a.loinc for a in suggestion.actions if isinstance(a, OrderLab)] == [
        LOINC_HOMOCYSTEINE,
        LOINC_MMA,
    ]
    assert finding.concerns == frozenset({"ServiceRequest/b12"})


@pytest.mark.parametrize(
    "existing, remaining",
    [
        (lambda: lab(Analyte.HOMOCYSTEINE, 12), [LOINC_MMA]),
        (lambda: mma(200), [LOINC_HOMOCYSTEINE]),
        (lambda: lab_order(Analyte.MMA), [LOINC_HOMOCYSTEINE]),
    ],
)
def test_tests_already_done_or_drafted_are_not_ordered_again(existing, remaining):
    finding = run(rule, n2o(), existing())
    assert [a.loinc for a in actions(finding, OrderLab)] == remaining


def test_both_tests_done_and_no_neuro_gives_no_suggestion():
    finding = run(rule, n2o(), lab(Analyte.HOMOCYSTEINE, 12), mma(200))
    assert finding.suggestions == () and finding.selection_behavior is None


def test_deficient_b12_says_treat_instead_of_test_first():
    finding = run(rule, n2o(), b12(118))
    assert finding.indicator is Indicator.WARNING
    assert finding.summary == (
        "Nitrous oxide use and B12 deficiency (total B12 118 ng/L (≈87 pmol/L)): stop nitrous "
        "oxide and treat the deficiency."
    )
    assert len(finding.summary) < 140
    assert actions(finding, OrderLab) == []
    # No neuro: b12-deficiency-untreated keeps its card with the regimen choice.
    assert "b12-deficiency-untreated" not in finding.supersedes


def test_deficient_with_neuro_and_no_therapy_supersedes_deficiency_untreated():
    finding = run(rule, n2o(), active_b12(20), condition(ConditionKind.PARAESTHESIA))
    assert finding.indicator is Indicator.CRITICAL
    assert finding.supersedes == frozenset(ALWAYS | {"b12-deficiency-untreated"})
    (regimen_action,) = actions(finding, OrderMedication)
    assert regimen_action.regimen.key == "im-neurological"
    assert finding.summary == (
        "Nitrous oxide use, neurological signs and B12 deficiency (active B12 20 pmol/L): start "
        "B12 now and refer urgently."
    )


def test_not_deficient_with_neuro_does_not_supersede_deficiency_untreated():
    finding = run(rule, n2o(), b12(420), condition(ConditionKind.PARAESTHESIA))
    assert "b12-deficiency-untreated" not in finding.supersedes


def test_active_nitrous_oxide_exposure_counts_as_use():
    exposure = med(DrugClass.NITROUS_OXIDE, name="Nitrous oxide", rid="MedicationStatement/n2o")
    finding = run(rule, exposure)
    assert finding.indicator is Indicator.WARNING
    assert "MedicationStatement/n2o" in finding.detail


@pytest.mark.parametrize("months, fires", [(6, True), (11.9, True), (12.1, False)])
def test_completed_exposure_counts_within_the_12_month_window(months, fires):
    exposure = med(DrugClass.NITROUS_OXIDE, status="completed", start=months_ago(months))
    assert (run(rule, exposure) is not None) is fires


def test_drafted_nitrous_oxide_order_alone_is_silent():
    assert run(rule, draft(DrugClass.NITROUS_OXIDE, name="Entonox")) is None


def test_no_nitrous_oxide_is_silent():
    assert run(rule, b12(420), condition(ConditionKind.PARAESTHESIA)) is None


def test_missing_b12_labs_are_mentioned():
    finding = run(rule, n2o(), missing=frozenset({DataCategory.B12_LABS}))
    assert "B12 results could not be obtained" in finding.detail
