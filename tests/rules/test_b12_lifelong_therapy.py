import pytest

from cds_service.domain.engine import run_rules
from cds_service.domain.findings import OrderMedication, SelectionBehavior
from cds_service.domain.policy import Policy
from cds_service.domain.rules import b12_lifelong_therapy as rule
from cds_service.domain.rules import b12_screening_due
from cds_service.domain.sources import ASMBS_2016, NICE_NG239
from cds_service.domain.vocabulary import MALABSORPTION_CAUSES, DataCategory, Indicator
from tests.builders import (
    Analyte,
    ConditionKind,
    DrugClass,
    Route,
    b12,
    condition,
    draft,
    lab,
    med,
    picture,
    run,
)


def hydroxo_im(**kw):
    kw.setdefault("months", 24)
    return med(
        DrugClass.HYDROXOCOBALAMIN,
        name="Hydroxocobalamin 1 mg/mL injection",
        route=Route.INTRAMUSCULAR,
        **kw,
    )


def stop_order(**kw):
    return draft(
        DrugClass.HYDROXOCOBALAMIN,
        name="Hydroxocobalamin 1 mg/mL injection",
        route=Route.INTRAMUSCULAR,
        stop=True,
        status="stopped",
        **kw,
    )


def test_pernicious_anaemia_without_b12_is_warning_with_maintenance():
    finding = run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA, rid="Condition/pa"))
    assert finding.rule_id == "b12-lifelong-therapy"
    assert finding.indicator is Indicator.WARNING
    assert finding.summary.startswith("Pernicious anaemia means lifelong B12")
    assert "no B12 treatment is recorded" in finding.summary
    (suggestion,) = finding.suggestions
    assert suggestion.is_recommended
    # No current B12 result: status first, the baseline tests ride with the regimen.
    b12_test, blood_count, action = suggestion.actions
    assert (b12_test.loinc, blood_count.loinc) == ("2132-9", "58410-2")
    assert "before the first B12 dose" in b12_test.note
    assert suggestion.label.startswith("Check B12 and blood count, then order")
    assert isinstance(action, OrderMedication)
    assert action.regimen.key == "im-maintenance"
    assert finding.selection_behavior is SelectionBehavior.AT_MOST_ONE
    assert finding.source is NICE_NG239
    assert "Condition/pa" in finding.detail
    assert finding.detail.rstrip().splitlines()[-1].startswith("Source: NICE NG239")
    assert finding.concerns == frozenset()
    assert finding.supersedes == frozenset(
        {"b12-screening-due", "b12-indeterminate", "b12-normal-but-symptomatic"}
    )


def test_an_indeterminate_b12_does_not_delay_lifelong_treatment_for_a_recorded_cause():
    finding = run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA), b12(250, rid="Observation/b"))
    assert "the recorded cause makes treatment lifelong whatever the level" in finding.detail
    assert "Observation/b" in finding.detail
    assert "b12-indeterminate" in finding.supersedes


def test_bariatric_surgery_cites_asmbs_and_gives_both_regimens():
    finding = run(rule, condition(ConditionKind.BARIATRIC_SURGERY, name="Gastric bypass status"))
    assert finding.summary.startswith("Bariatric surgery means lifelong B12")
    assert finding.source is ASMBS_2016
    assert (
        "Maintenance (recommended): Cyanocobalamin 1 mg (1000 micrograms) by mouth daily, "
        "indefinitely (AAFP 2017)." in finding.detail
    )
    assert "Alternative: Cyanocobalamin 1000 micrograms IM monthly" in finding.detail
    assert "ASMBS 2016" in finding.detail.rstrip().splitlines()[-1]


def test_post_bariatric_detail_describes_the_recommended_oral_order_never_im_maintenance():
    finding = run(rule, condition(ConditionKind.BARIATRIC_SURGERY), b12(400))
    recommended = [s for s in finding.suggestions if s.is_recommended]
    (regimen,) = [a.regimen for a in recommended[0].actions if isinstance(a, OrderMedication)]
    assert regimen.route is Route.ORAL
    assert f"Maintenance (recommended): {regimen.text}" in finding.detail
    assert "Hydroxocobalamin" not in finding.detail


def test_with_a_current_b12_result_the_regimen_is_ordered_without_baseline_tests():
    finding = run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA), b12(400))
    (suggestion,) = finding.suggestions
    assert [type(a) for a in suggestion.actions] == [OrderMedication]
    assert suggestion.label.startswith("Order ")


def test_a_stop_order_offers_the_four_override_reasons_for_legitimate_stops():
    finding = run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA), hydroxo_im(), stop_order())
    assert [r.display for r in finding.override_reasons] == [
        "Given elsewhere / care transferred",
        "Patient declines",
        "Specialist advised stopping",
        "Cause resolved",
    ]
    # Stopping is not starting: no baseline tests ride with the maintenance order.
    assert all(isinstance(a, OrderMedication) for s in finding.suggestions for a in s.actions)


def test_without_a_stop_order_there_are_no_stop_override_reasons():
    assert run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA)).override_reasons == ()


def test_two_causes_are_both_named():
    finding = run(
        rule,
        condition(ConditionKind.PERNICIOUS_ANAEMIA),
        condition(ConditionKind.GASTRECTOMY),
    )
    assert finding.summary.startswith("Pernicious anaemia and gastrectomy mean lifelong B12")


def test_positive_if_antibody_is_a_cause():
    finding = run(
        rule, lab(Analyte.IF_ANTIBODY, None, None, text="Positive", rid="Observation/ifab")
    )
    assert finding.summary.startswith("Intrinsic factor antibody positive means lifelong B12")
    assert "Observation/ifab" in finding.detail


@pytest.mark.parametrize(
    "kind", sorted(MALABSORPTION_CAUSES - {ConditionKind.ILEAL_CROHNS}, key=lambda k: k.value)
)
def test_every_irreversible_cause_fires(kind):
    assert run(rule, condition(kind)).indicator is Indicator.WARNING


def test_cause_order_covers_every_malabsorption_cause():
    assert set(rule._CAUSE_ORDER) == MALABSORPTION_CAUSES


def test_crohns_alone_needs_evidence_of_deficiency():
    crohns = condition(ConditionKind.ILEAL_CROHNS, name="Crohn's disease")
    assert run(rule, crohns) is None
    assert run(rule, crohns, condition(ConditionKind.B12_DEFICIENCY)) is not None


def test_active_b12_therapy_is_silent():
    assert run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA), hydroxo_im()) is None


def test_b12_draft_is_silent():
    new_order = draft(DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR)
    assert run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA), new_order) is None


def test_no_cause_is_silent():
    assert run(rule) is None
    assert run(rule, stop_order()) is None


def test_stop_order_with_cause_is_warning_and_concerns_the_draft():
    finding = run(
        rule,
        condition(ConditionKind.PERNICIOUS_ANAEMIA),
        hydroxo_im(),
        stop_order(rid="MedicationRequest/stop"),
    )
    assert finding.indicator is Indicator.WARNING
    assert "keep treatment going" in finding.summary
    assert finding.concerns == frozenset({"MedicationRequest/stop"})
    assert "MedicationRequest/stop" in finding.detail
    assert len(finding.summary) < 140


def test_completed_order_counts_as_stop():
    completed = draft(
        DrugClass.CYANOCOBALAMIN,
        route=Route.INTRAMUSCULAR,
        stop=True,
        status="completed",
        rid="MedicationRequest/done",
    )
    finding = run(rule, condition(ConditionKind.BARIATRIC_SURGERY), completed)
    assert finding.concerns == frozenset({"MedicationRequest/done"})
    assert "**completed** order" in finding.detail


def test_stop_beside_a_new_b12_order_is_a_switch():
    new_order = draft(DrugClass.CYANOCOBALAMIN, route=Route.ORAL)
    assert (
        run(
            rule, condition(ConditionKind.PERNICIOUS_ANAEMIA), hydroxo_im(), stop_order(), new_order
        )
        is None
    )


def test_neurological_involvement_maintenance_every_2_months():
    finding = run(
        rule,
        condition(ConditionKind.PERNICIOUS_ANAEMIA),
        condition(ConditionKind.PERIPHERAL_NEUROPATHY),
    )
    (phase,) = finding.suggestions[0].actions[-1].regimen.phases
    assert (phase.every, phase.every_max, phase.unit) == (2, None, "mo")


def test_us_formulary_maintenance_is_cyanocobalamin_monthly():
    policy = Policy.from_mapping({"formulary": "cyanocobalamin"})
    finding = run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA), policy=policy)
    regimen = finding.suggestions[0].actions[-1].regimen
    assert regimen.drug is DrugClass.CYANOCOBALAMIN


def test_no_current_b12_asks_for_baseline_sample():
    finding = run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA))
    assert "before the first dose" in finding.detail
    with_result = run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA), b12(400))
    assert "before the first dose" not in with_result.detail


def test_past_b12_is_mentioned():
    past = hydroxo_im(status="completed", rid="MedicationStatement/old")
    finding = run(rule, condition(ConditionKind.PERNICIOUS_ANAEMIA), past)
    assert "Last recorded B12" in finding.detail and "MedicationStatement/old" in finding.detail


def test_missing_medications_are_mentioned():
    finding = run(
        rule,
        condition(ConditionKind.PERNICIOUS_ANAEMIA),
        missing=frozenset({DataCategory.MEDICATIONS}),
    )
    assert "medication list could not be obtained" in finding.detail


def test_silences_screening_for_the_same_patient():
    p = picture(condition(ConditionKind.PERNICIOUS_ANAEMIA), med(DrugClass.METFORMIN, months=72))
    assert b12_screening_due.evaluate(p) is not None
    findings, failed = run_rules(p, (b12_screening_due.RULE, rule.RULE))
    assert [f.rule_id for f in findings] == ["b12-lifelong-therapy"]
    assert failed == ()


def test_post_bariatric_offers_the_post_bariatric_regimens_oral_recommended():
    from cds_service.domain.findings import OrderMedication
    from tests.builders import ConditionKind, condition, run

    finding = run(rule, condition(ConditionKind.BARIATRIC_SURGERY))
    keys = [
        (a.regimen.key, s.is_recommended)
        for s in finding.suggestions
        for a in s.actions
        if isinstance(a, OrderMedication)
    ]
    assert keys == [("bariatric-oral", True), ("bariatric-im", False)]
    assert finding.summary.endswith(": start it.")
