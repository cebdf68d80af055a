import pytest

from cds_service.domain.codes import LOINC_H_PYLORI_STOOL_AG, LOINC_IF_ANTIBODY
from cds_service.domain.engine import run_rules
from cds_service.domain.findings import OrderLab, SelectionBehavior
from cds_service.domain.policy import Policy
from cds_service.domain.rules import b12_cause_workup as rule
from cds_service.domain.rules import nitrous_oxide_b12
from cds_service.domain.vocabulary import DataCategory, Indicator
from tests.builders import (
    Analyte,
    ConditionKind,
    DrugClass,
    Route,
    active_b12,
    b12,
    condition,
    days_ago,
    draft,
    lab,
    lab_order,
    med,
    mma,
    picture,
    run,
)


def loincs(finding):
    codes = []
    for s in finding.suggestions:
        assert all(isinstance(a, OrderLab) for a in s.actions)
        codes += [a.loinc for a in s.actions]
    return codes


def test_deficiency_without_cause_suggests_if_antibody_and_h_pylori():
    finding = run(rule, b12(118, rid="Observation/b12"))
    assert finding.rule_id == "b12-cause-workup"
    assert finding.indicator is Indicator.INFO
    assert finding.summary.startswith("Find the cause of B12 deficiency (B12 118 ng/L)")
    assert "H. pylori" in finding.summary and "coeliac" in finding.summary
    assert loincs(finding) == [LOINC_IF_ANTIBODY, LOINC_H_PYLORI_STOOL_AG]
    assert finding.selection_behavior is SelectionBehavior.ANY
    assert not any(s.is_recommended for s in finding.suggestions)
    assert "118 ng/L (≈87 pmol/L)" in finding.detail and "Observation/b12" in finding.detail
    assert "Coeliac serology" in finding.detail
    assert "medicines" in finding.detail
    assert finding.detail.rstrip().splitlines()[-1].startswith("Source: NICE NG239")
    assert finding.concerns == frozenset()
    assert finding.supersedes == frozenset()


@pytest.mark.parametrize(
    "value, unit, fires",
    [(179.9, "ng/L", True), (180, "ng/L", False), (132.9, "pmol/L", True), (133, "pmol/L", False)],
)
def test_total_b12_deficiency_boundary(value, unit, fires):
    assert (run(rule, b12(value, unit)) is not None) is fires


@pytest.mark.parametrize("value, fires", [(24.9, True), (25, False)])
def test_active_b12_boundary(value, fires):
    assert (run(rule, active_b12(value)) is not None) is fires


def test_functional_deficiency_counts():
    finding = run(rule, b12(250), mma(400))
    assert finding is not None
    assert "functional deficiency" in finding.detail


@pytest.mark.parametrize(
    "cause",
    [
        condition(ConditionKind.PERNICIOUS_ANAEMIA),
        condition(ConditionKind.BARIATRIC_SURGERY),
        condition(ConditionKind.ILEAL_CROHNS),
        condition(ConditionKind.VEGAN_DIET),
        med(DrugClass.METFORMIN, months=4),
        med(DrugClass.PPI, months=12),
        med(DrugClass.COLCHICINE, months=1),
    ],
    ids=["pa", "bariatric", "crohns", "vegan", "metformin", "ppi", "colchicine"],
)
def test_known_cause_is_silent(cause):
    assert run(rule, b12(118), cause) is None


def test_positive_if_antibody_is_a_cause_and_any_if_result_silences():
    assert run(rule, b12(118), lab(Analyte.IF_ANTIBODY, None, None, text="Positive")) is None
    assert run(rule, b12(118), lab(Analyte.IF_ANTIBODY, None, None, text="Negative")) is None
    assert (
        run(rule, b12(118), lab(Analyte.IF_ANTIBODY, None, None, days=2000, text="Negative"))
        is None
    )


def test_if_antibody_already_drafted_is_silent():
    assert run(rule, b12(118), lab_order(Analyte.IF_ANTIBODY, name="IF antibody")) is None


@pytest.mark.parametrize("months", [3.9, 11.9])
def test_short_acid_suppression_or_metformin_is_not_a_cause_but_is_reviewed(months):
    finding = run(
        rule,
        b12(118),
        med(DrugClass.PPI, name="Omeprazole 20 MG", months=months, rid="MedicationStatement/ppi"),
    )
    assert finding is not None
    assert "MedicationStatement/ppi" in finding.detail
    (note,) = [
        a.note for s in finding.suggestions for a in s.actions if a.loinc == LOINC_H_PYLORI_STOOL_AG
    ]
    assert "falsely negative" in note


def test_not_deficient_is_silent():
    assert run(rule, b12(250)) is None
    assert run(rule) is None


@pytest.mark.parametrize("days, omitted", [(13, True), (14, True), (15, False)])
def test_no_if_antibody_within_14_days_of_an_injection(days, omitted):
    injection = med(
        DrugClass.HYDROXOCOBALAMIN,
        route=Route.INTRAMUSCULAR,
        start=days_ago(days),
        rid="MedicationStatement/inj",
    )
    finding = run(rule, b12(118, days=30), injection)
    assert (LOINC_IF_ANTIBODY not in loincs(finding)) is omitted
    assert LOINC_H_PYLORI_STOOL_AG in loincs(finding)
    if omitted:
        assert "not ordered now" in finding.detail
        assert "MedicationStatement/inj" in finding.detail
        assert "falsely positive" in finding.detail
    else:
        (note,) = [
            a.note for s in finding.suggestions for a in s.actions if a.loinc == LOINC_IF_ANTIBODY
        ]
        assert "14 days after the last B12 injection" in note


def test_injection_window_follows_site_policy():
    policy = Policy.from_mapping({"windows": {"if_antibody_after_injection_days": 21}})
    injection = med(DrugClass.CYANOCOBALAMIN, route=Route.INTRAMUSCULAR, start=days_ago(18))
    finding = run(rule, b12(118, days=30), injection, policy=policy)
    assert LOINC_IF_ANTIBODY not in loincs(finding)


def test_hydroxocobalamin_without_route_counts_as_injection():
    injection = med(DrugClass.HYDROXOCOBALAMIN, start=days_ago(5))
    assert LOINC_IF_ANTIBODY not in loincs(run(rule, b12(118, days=30), injection))


def test_recent_oral_b12_does_not_block_if_antibody():
    oral = med(DrugClass.CYANOCOBALAMIN, route=Route.ORAL, start=days_ago(5))
    assert LOINC_IF_ANTIBODY in loincs(run(rule, b12(118, days=30), oral))


def test_drafted_injection_is_a_concern_and_sample_goes_first():
    b12_draft = draft(
        DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR, rid="MedicationRequest/hydroxo"
    )
    finding = run(rule, b12(118), b12_draft)
    assert finding.concerns == frozenset({"MedicationRequest/hydroxo"})
    (note,) = [
        a.note for s in finding.suggestions for a in s.actions if a.loinc == LOINC_IF_ANTIBODY
    ]
    assert "before the first B12 injection" in note


def test_recorded_coeliac_disease_changes_the_advice():
    finding = run(rule, b12(118), condition(ConditionKind.COELIAC, rid="Condition/coeliac"))
    assert "Condition/coeliac" in finding.detail
    assert "gluten-free" in finding.detail


def test_missing_conditions_are_mentioned():
    finding = run(rule, b12(118), missing=frozenset({DataCategory.CONDITIONS}))
    assert "Not available for this request: conditions" in finding.detail


def test_summary_is_under_140_characters():
    finding = run(rule, b12(0.118, "ng/mL"))
    assert len(finding.summary) < 140


def test_nitrous_oxide_use_is_the_cause_and_its_card_silences_this_one():
    p = picture(b12(118), condition(ConditionKind.NITROUS_OXIDE_USE))
    assert rule.evaluate(p) is not None
    findings, _ = run_rules(p, (rule.RULE, nitrous_oxide_b12.RULE))
    assert [f.rule_id for f in findings] == ["nitrous-oxide-b12"]
