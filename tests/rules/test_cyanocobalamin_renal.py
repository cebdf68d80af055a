import pytest

from cds_service.domain.findings import OrderMedication, RemoveDraft, SelectionBehavior
from cds_service.domain.policy import Policy
from cds_service.domain.rules import cyanocobalamin_renal as rule
from cds_service.domain.sources import DIVINE
from cds_service.domain.vocabulary import Indicator
from tests.builders import (
    Analyte,
    ConditionKind,
    DrugClass,
    Route,
    condition,
    draft,
    lab,
    med,
    run,
)

CYANO = DrugClass.CYANOCOBALAMIN


def egfr(value, **kw):
    return lab(Analyte.EGFR, value, rid="Observation/egfr", **kw)


def cyano_im(
    dose_ug=1000.0,
    interval_days=30.4375,
    count=None,
    rid="MedicationRequest/cyano",
    name="cyanocobalamin 1000 MCG/ML Injectable Solution",
    route=Route.INTRAMUSCULAR,
):
    return draft(
        CYANO,
        name=name,
        route=route,
        dose_ug=dose_ug,
        interval_days=interval_days,
        count_=count,
        rid=rid,
    )


def replacement(finding):
    (suggestion,) = finding.suggestions
    removes = [a.resource_id for a in suggestion.actions if isinstance(a, RemoveDraft)]
    orders = [a.regimen for a in suggestion.actions if isinstance(a, OrderMedication)]
    return suggestion, removes, orders


def test_monthly_cyanocobalamin_1000_with_egfr_38_is_a_warning_to_use_hydroxocobalamin():
    finding = run(rule, cyano_im(), egfr(38))
    assert finding.indicator is Indicator.WARNING
    assert finding.summary == ("eGFR 38: prefer hydroxocobalamin to cyanocobalamin.")
    assert finding.source is DIVINE
    assert "DIVINe" in finding.detail and "2.0" in finding.detail
    assert "not a labelled contraindication" in finding.detail
    assert "Observation/egfr" in finding.detail and "MedicationRequest/cyano" in finding.detail
    assert finding.detail.rstrip().splitlines()[-1].startswith("Source: ")
    assert finding.concerns == frozenset({"MedicationRequest/cyano"})
    assert finding.selection_behavior is SelectionBehavior.AT_MOST_ONE
    suggestion, removes, (regimen,) = replacement(finding)
    assert suggestion.is_recommended
    assert removes == ["MedicationRequest/cyano"]
    assert regimen.drug is DrugClass.HYDROXOCOBALAMIN and regimen.route is Route.INTRAMUSCULAR
    (phase,) = regimen.phases
    assert (phase.dose_ug, phase.every, phase.unit) == (1000, 1, "mo")
    assert "monthly" in regimen.text


def test_override_reasons_are_formulary_and_benefit():
    finding = run(rule, cyano_im(), egfr(38))
    assert [(r.code, r.display) for r in finding.override_reasons] == [
        ("hydroxocobalamin-not-on-formulary", "Hydroxocobalamin not on formulary"),
        ("benefit-outweighs-risk", "Benefit outweighs risk"),
    ]


@pytest.mark.parametrize("value, fires", [(59.9, True), (60, False), (90, False), (15, True)])
def test_egfr_boundary_60(value, fires):
    assert (run(rule, cyano_im(), egfr(value)) is not None) is fires


def test_never_critical_even_on_dialysis_with_egfr_8():
    finding = run(rule, cyano_im(), egfr(8), condition(ConditionKind.DIALYSIS))
    assert finding.indicator is Indicator.WARNING


@pytest.mark.parametrize(
    "kind, lead",
    [(ConditionKind.CKD, "CKD recorded"), (ConditionKind.DIALYSIS, "Dialysis recorded")],
)
def test_ckd_or_dialysis_without_current_egfr(kind, lead):
    finding = run(rule, cyano_im(), condition(kind, rid="Condition/renal"))
    assert finding.summary.startswith(f"{lead}: prefer hydroxocobalamin")
    assert "Condition/renal" in finding.detail


def test_ckd_recorded_with_normal_latest_egfr_still_warns():
    finding = run(rule, cyano_im(), condition(ConditionKind.CKD), egfr(65))
    assert finding.summary.startswith("CKD recorded")


def test_stale_low_egfr_without_ckd_is_silent():
    assert run(rule, cyano_im(), egfr(38, days=400)) is None


def test_no_renal_evidence_is_silent():
    assert run(rule, cyano_im()) is None


@pytest.mark.parametrize(
    "dose_ug, interval_days, fires",
    [
        (1000, 30.4375, True),
        (999, 30.4375, False),
        (500, 0.5, True),
        (500, 1, False),
        (2000, 1, True),
    ],
)
def test_dose_threshold_per_administration_or_per_day(dose_ug, interval_days, fires):
    d = cyano_im(dose_ug, interval_days, route=Route.ORAL, name="cyanocobalamin oral")
    assert (run(rule, d, egfr(38)) is not None) is fires


@pytest.mark.parametrize(
    "name, fires",
    [
        ("cyanocobalamin 1000 MCG/ML Injectable Solution", True),
        ("Cyanocobalamin 1 MG Oral Tablet", True),
        ("Cyanocobalamin 500 mcg tablet", False),
        ("Multivitamin with cyanocobalamin 6 MCG and folic acid 400 MCG", False),
        ("Cyanocobalamin injection", False),
    ],
)
def test_unknown_dose_qualifies_only_when_the_name_states_at_least_1_mg(name, fires):
    d = draft(CYANO, name=name, route=Route.INTRAMUSCULAR, interval_days=30.4375)
    assert (run(rule, d, egfr(38)) is not None) is fires


def test_site_threshold_is_read_from_policy():
    policy = Policy.from_mapping({"thresholds": {"cyanocobalamin_renal_min_ug": 2000}})
    assert run(rule, cyano_im(), egfr(38), policy=policy) is None


@pytest.mark.parametrize("drug", [DrugClass.HYDROXOCOBALAMIN, DrugClass.METHYLCOBALAMIN])
def test_other_cobalamins_are_silent(drug):
    d = draft(drug, route=Route.INTRAMUSCULAR, dose_ug=1000, interval_days=30)
    assert run(rule, d, egfr(38)) is None


def test_active_cyanocobalamin_that_is_not_a_draft_is_silent():
    assert (
        run(rule, med(CYANO, route=Route.INTRAMUSCULAR, dose_ug=1000, interval_days=30), egfr(38))
        is None
    )


def test_stop_order_is_silent():
    stop = draft(CYANO, route=Route.INTRAMUSCULAR, dose_ug=1000, interval_days=30, stop=True)
    assert run(rule, stop, egfr(38)) is None


def test_loading_course_three_times_a_week_keeps_frequency_and_count():
    finding = run(rule, cyano_im(interval_days=7 / 3, count=6), egfr(38))
    _, _, (regimen,) = replacement(finding)
    (phase,) = regimen.phases
    assert (phase.frequency, phase.every, phase.unit, phase.count) == (3, 1, "wk", 6)
    assert "3 times a week, 6 doses" in phase.text


@pytest.mark.parametrize(
    "interval_days, frequency, every, unit, words",
    [
        (0.5, 2, 1, "d", "2 times a day"),
        (1, 1, 1, "d", "daily"),
        (3.5, 2, 1, "wk", "2 times a week"),
        (7, 1, 1, "wk", "weekly"),
        (14, 1, 2, "wk", "every 2 weeks"),
        (30, 1, 1, "mo", "monthly"),
        (61, 1, 2, "mo", "every 2 months"),
        (10, 1, 10, "d", "every 10 days"),
    ],
)
def test_schedule_is_copied_in_words_and_timing(interval_days, frequency, every, unit, words):
    finding = run(rule, cyano_im(interval_days=interval_days), egfr(38))
    _, _, (regimen,) = replacement(finding)
    (phase,) = regimen.phases
    assert (phase.frequency, phase.every, phase.unit) == (frequency, every, unit)
    assert f"1 mg IM {words}" in phase.text


def test_alternate_day_schedule_is_copied():
    finding = run(rule, cyano_im(interval_days=2), egfr(38))
    _, _, (regimen,) = replacement(finding)
    assert (regimen.phases[0].every, regimen.phases[0].unit) == (2, "d")
    assert "alternate days" in regimen.text


@pytest.mark.parametrize("count, interval", [(1, None), (None, None), (1, 30)])
def test_single_injection_stays_a_single_dose(count, interval):
    finding = run(rule, cyano_im(interval_days=interval, count=count), egfr(38))
    _, _, (regimen,) = replacement(finding)
    assert regimen.phases[0].count == 1
    assert "IM once" in regimen.text


def test_course_with_unreadable_interval_gets_no_replacement_but_still_warns():
    finding = run(rule, cyano_im(interval_days=None, count=6), egfr(38))
    assert finding.indicator is Indicator.WARNING
    assert finding.suggestions == () and finding.selection_behavior is None
    assert "no readable dosing interval" in finding.detail


def test_oral_cyanocobalamin_is_switched_to_hydroxocobalamin_im_but_not_recommended():
    d = cyano_im(1000, 1, route=Route.ORAL, name="Cyanocobalamin 1000 MCG Oral Tablet")
    finding = run(rule, d, egfr(45))
    suggestion, removes, (regimen,) = replacement(finding)
    assert not suggestion.is_recommended
    assert "route change" in suggestion.label
    assert regimen.key == "im-standard" and regimen.drug is DrugClass.HYDROXOCOBALAMIN
    assert "changes the route" in finding.detail


@pytest.mark.parametrize("route", [Route.ORAL, Route.INTRAMUSCULAR, Route.UNKNOWN])
def test_the_renal_card_never_suggests_methylcobalamin_an_unlicensed_supplement(route):
    d = cyano_im(1000, 1, route=route, name="Cyanocobalamin 1000 MCG")
    finding = run(rule, d, egfr(38))
    text = " ".join(
        [finding.summary, finding.detail]
        + [s.label for s in finding.suggestions]
        + [getattr(a, "description", "") for s in finding.suggestions for a in s.actions]
    )
    assert "methylcobalamin" not in text.lower()
    assert all(
        a.regimen.drug is not DrugClass.METHYLCOBALAMIN
        for s in finding.suggestions
        for a in s.actions
        if hasattr(a, "regimen")
    )


def test_oral_cyanocobalamin_with_neuro_is_switched_to_the_neurological_regimen():
    d = cyano_im(1000, 1, route=Route.ORAL, name="Cyanocobalamin 1000 MCG Oral Tablet")
    finding = run(rule, d, egfr(45), condition(ConditionKind.PARAESTHESIA))
    _, _, (regimen,) = replacement(finding)
    assert regimen.key == "im-neurological"


def test_oral_cyanocobalamin_on_established_therapy_is_switched_to_hydroxo_maintenance():
    on = med(CYANO, route=Route.ORAL, months=12)
    d = cyano_im(1000, 1, route=Route.ORAL, name="Cyanocobalamin 1000 MCG Oral Tablet")
    us = Policy.from_mapping({"formulary": "cyanocobalamin"})
    finding = run(rule, d, on, egfr(45), policy=us)
    _, _, (regimen,) = replacement(finding)
    assert regimen.key == "im-maintenance" and regimen.drug is DrugClass.HYDROXOCOBALAMIN


def test_unknown_route_warns_without_replacement():
    d = draft(
        CYANO, name="cyanocobalamin", dose_ug=1000, interval_days=30, rid="MedicationRequest/x"
    )
    finding = run(rule, d, egfr(38))
    assert finding.suggestions == ()
    assert "route of the order is not known" in finding.detail


def test_two_cyanocobalamin_drafts_are_both_replaced_in_one_suggestion():
    finding = run(
        rule,
        cyano_im(interval_days=7 / 3, count=6, rid="MedicationRequest/a"),
        cyano_im(rid="MedicationRequest/b"),
        egfr(38),
    )
    _, removes, orders = replacement(finding)
    assert removes == ["MedicationRequest/a", "MedicationRequest/b"] and len(orders) == 2
    assert finding.concerns == frozenset({"MedicationRequest/a", "MedicationRequest/b"})


def test_supersedes_nothing():
    assert run(rule, cyano_im(), egfr(38)).supersedes == frozenset()
