import pytest

from cds_service.domain.findings import OrderMedication, SelectionBehavior
from cds_service.domain.policy import Formulary, Policy, PolicyError
from cds_service.domain.rules import b12_deficiency_untreated as rule
from cds_service.domain.vocabulary import DataCategory, Indicator, Route
from tests.builders import (
    Analyte,
    ConditionKind,
    DrugClass,
    active_b12,
    b12,
    condition,
    draft,
    lab,
    med,
    mma,
    months_ago,
    run,
    shown,
)


def regimens(finding):
    return [
        (a.regimen.key, s.is_recommended)
        for s in finding.suggestions
        for a in s.actions
        if isinstance(a, OrderMedication)
    ]


def test_b12_118_without_treatment_is_a_warning_to_start_treatment():
    finding = run(rule, b12(118, days=45, rid="Observation/b12"))
    assert finding.rule_id == "b12-deficiency-untreated"
    assert finding.indicator is Indicator.WARNING
    assert finding.summary == (
        "B12 deficiency confirmed (118 ng/L (≈87 pmol/L), 2026-05-01): start treatment."
    )
    assert "permanent spinal cord damage within about 3 months" in finding.detail
    assert "Observation/b12" in finding.detail
    assert finding.detail.splitlines()[-1].startswith("Source: NICE NG239")
    assert finding.concerns == frozenset()
    assert finding.supersedes == {
        "b12-indeterminate",
        "b12-normal-but-symptomatic",
        "b12-screening-due",
        "b12-lifelong-therapy",
    }


@pytest.mark.parametrize(
    "result, fires",
    [
        (b12(179.9), True),
        (b12(180), False),
        (b12(132.9, "pmol/L"), True),
        (b12(133, "pmol/L"), False),
        (b12(0.1799, "ng/mL"), True),
        (active_b12(24.9), True),
        (active_b12(25), False),
    ],
    ids=[
        "179.9 ng/L",
        "180 ng/L",
        "132.9 pmol/L",
        "133 pmol/L",
        "0.1799 ng/mL",
        "holoTC 24.9",
        "holoTC 25",
    ],
)
def test_deficiency_boundaries(result, fires):
    assert (run(rule, result) is not None) is fires


def test_active_b12_summary_names_the_test():
    finding = run(rule, active_b12(20, days=45))
    assert finding.summary == (
        "B12 deficiency confirmed (active B12 20 pmol/L, 2026-05-01): start treatment."
    )


def test_low_active_b12_with_normal_total_states_the_conflict():
    finding = run(rule, active_b12(20), b12(400))
    assert finding is not None
    assert "Conflicting results" in finding.detail and "antibody interference" in finding.detail


def test_normal_active_b12_overrides_low_total():
    assert run(rule, active_b12(90), b12(150)) is None


@pytest.mark.parametrize("total", [b12(250), b12(400)], ids=["indeterminate", "normal"])
def test_functional_deficiency_by_raised_mma_fires(total):
    finding = run(rule, total, mma(450, days=45))
    assert finding.indicator is Indicator.WARNING
    assert finding.summary.startswith("Functional B12 deficiency (MMA 450 nmol/L, 2026-05-01)")


def test_mma_against_the_lab_upper_limit():
    assert run(rule, b12(250), mma(300, high=350)) is None
    assert run(rule, b12(250), mma(300)) is not None  # default limit 271


def test_raised_mma_with_egfr_below_60_is_not_deficiency():
    assert run(rule, b12(250), mma(450), lab(Analyte.EGFR, 45)) is None


def test_scd_makes_it_critical():
    finding = run(rule, b12(118), condition(ConditionKind.SUBACUTE_COMBINED_DEGENERATION))
    assert finding.indicator is Indicator.CRITICAL
    assert "subacute combined degeneration" in finding.summary


# --- regimen choice ---------------------------------------------------------------------------
def test_neurological_involvement_gets_the_neurological_regimen_only():
    finding = run(rule, b12(118), condition(ConditionKind.PERIPHERAL_NEUROPATHY))
    assert regimens(finding) == [("im-neurological", True)]
    assert finding.selection_behavior is SelectionBehavior.AT_MOST_ONE


def test_no_neuro_no_malabsorption_not_severe_offers_oral_as_alternative():
    finding = run(rule, b12(118))
    assert regimens(finding) == [("im-standard", True), ("oral-daily", False)]
    assert "oral" in finding.detail.lower()


@pytest.mark.parametrize(
    "item",
    [condition(ConditionKind.PERNICIOUS_ANAEMIA), lab(Analyte.HAEMOGLOBIN, 9.5)],
    ids=["malabsorption", "anaemia"],
)
def test_malabsorption_or_anaemia_removes_the_oral_option(item):
    finding = run(rule, b12(118), item)
    assert regimens(finding) == [("im-standard", True)]
    assert "Oral replacement is not offered" in finding.detail


def test_exactly_one_recommended_regimen():
    contexts = [(), (condition(ConditionKind.HEADACHE),), (condition(ConditionKind.GASTRECTOMY),)]
    for items in contexts:
        finding = run(rule, b12(118), *items)
        assert sum(s.is_recommended for s in finding.suggestions) == 1


def test_malabsorption_cause_means_lifelong_treatment():
    finding = run(rule, b12(118), condition(ConditionKind.BARIATRIC_SURGERY, rid="Condition/bs"))
    assert "lifelong" in finding.detail and "Condition/bs" in finding.detail


def test_back_pain_only_is_flagged_as_possible_neurological_involvement():
    finding = run(rule, b12(118), condition(ConditionKind.BACK_PAIN))
    assert regimens(finding) == [("im-neurological", True)]
    assert "back pain recorded; the brief treats it as neurological involvement" in finding.detail
    assert "confirm clinically" in finding.detail


def test_us_formulary_uses_cyanocobalamin_im():
    finding = run(rule, b12(118), policy=Policy(formulary=Formulary.CYANOCOBALAMIN))
    first = finding.suggestions[0].actions[0].regimen
    assert first.drug is DrugClass.CYANOCOBALAMIN and first.route is Route.INTRAMUSCULAR


# --- not when ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "therapy",
    [
        med(DrugClass.HYDROXOCOBALAMIN, start=months_ago(1)),
        draft(DrugClass.HYDROXOCOBALAMIN, dose_ug=1000, interval_days=2),
        med(DrugClass.CYANOCOBALAMIN, route=Route.ORAL),
    ],
    ids=["active IM", "drafted", "active oral, no start"],
)
def test_b12_therapy_silences_the_card(therapy):
    assert run(rule, b12(118, days=60), therapy) is None


def test_result_drawn_after_therapy_began_is_not_diagnostic():
    course = med(DrugClass.HYDROXOCOBALAMIN, status="completed", start=months_ago(6))
    assert run(rule, course, b12(118, days=30)) is None


def test_stale_result_does_not_count():
    assert run(rule, b12(118, days=400)) is None


@pytest.mark.parametrize("value", [180, 250, 350, 500])
def test_not_deficient_is_silent(value):
    assert run(rule, b12(value)) is None


def test_b12_stop_order_is_the_concern():
    stop = draft(DrugClass.HYDROXOCOBALAMIN, stop=True, rid="MedicationRequest/stop")
    finding = run(rule, b12(118), stop)
    assert finding.concerns == {"MedicationRequest/stop"}
    assert "MedicationRequest/stop" in finding.detail


def test_threshold_is_read_from_site_policy():
    policy = Policy.from_mapping({"thresholds": {"total_b12_deficient_below_ng_l": 200}})
    assert run(rule, b12(190), policy=policy) is not None


def test_missing_medications_are_named():
    finding = run(rule, b12(118), missing=frozenset({DataCategory.MEDICATIONS}))
    assert "medications" in finding.detail


# --- comparator limits ("<150", ">2000"): both bands of each comparator rule -----------------
UNTREATED, INDETERMINATE, UNIT = rule.RULE.id, "b12-indeterminate", "lab-unit-unrecognised"


@pytest.mark.parametrize(
    "result, expected",
    [
        # <N / <=N with N at or below the deficient cut-off: deficient.
        (b12(150, comparator="<"), UNTREATED),
        (b12(180, comparator="<"), UNTREATED),
        (b12(180, comparator="<="), UNTREATED),
        (b12(133, "pmol/L", comparator="<"), UNTREATED),
        (active_b12(25, comparator="<"), UNTREATED),
        # <N with N above it: indeterminate, never "unlikely".
        (b12(180.1, comparator="<"), INDETERMINATE),
        (b12(2000, comparator="<"), INDETERMINATE),
        (b12(140, "pmol/L", comparator="<"), INDETERMINATE),
        (active_b12(30, comparator="<"), INDETERMINATE),
        # >N / >=N with N at or above the "unlikely" cut-off: unlikely, no card.
        (b12(350, comparator=">"), None),
        (b12(350, comparator=">="), None),
        (b12(258, "pmol/L", comparator=">"), None),
        (active_b12(70, comparator=">"), None),
        # Any other >N is not interpreted: the unit / value card reports it.
        (b12(349.9, comparator=">"), UNIT),
        (b12(200, "pmol/L", comparator=">"), UNIT),
        (active_b12(50, comparator=">"), UNIT),
    ],
    ids=str,
)
def test_a_reported_limit_is_banded_against_the_cut_offs_of_its_unit(result, expected):
    cards = shown(result)
    if expected is None:
        assert cards == []
    else:
        assert cards[0] == expected
        assert UNTREATED not in cards[1:] and INDETERMINATE not in cards[1:]


def test_b12_below_150_pg_ml_shows_the_comparator_on_the_card_never_the_bare_number():
    finding = run(rule, b12(150, "pg/mL", comparator="<", rid="Observation/t"))
    assert finding.summary.startswith("B12 deficiency confirmed (<150 pg/mL (<150 ng/L, \u2248<111")
    assert "Total B12 <150 pg/mL" in finding.detail
    assert " 150 pg/mL" not in finding.summary.replace("<150 pg/mL", "")


def test_raised_mma_reported_as_a_limit_above_the_lab_limit_is_functional_deficiency():
    finding = run(rule, b12(250), mma(500, comparator=">"))
    assert finding.summary.startswith("Functional B12 deficiency (MMA >500 nmol/L")


def test_mma_reported_below_the_limit_settles_an_indeterminate_total():
    assert shown(b12(250), mma(200, comparator="<")) == []


# --- the neurological loading order is bounded -------------------------------------------------
def test_neurological_loading_order_ends_at_3_weeks_with_a_review():
    finding = run(rule, b12(118), condition(ConditionKind.PERIPHERAL_NEUROPATHY))
    (action,) = [a for s in finding.suggestions for a in s.actions]
    loading = action.regimen.phases[0]
    assert (loading.duration, loading.duration_unit, loading.every) == (3, "wk", 2)
    assert "review at 3 weeks; continue on alternate days while improving" in loading.text
    assert "review at 3 weeks; continue on alternate days while improving" in action.regimen.text
    assert "the order runs 3 weeks, with a review then" in finding.detail


def test_a_site_can_set_the_neurological_review_to_4_weeks():
    policy = Policy.from_mapping({"windows": {"neuro_loading_review_weeks": 4}})
    finding = run(rule, b12(118), condition(ConditionKind.PARAESTHESIA), policy=policy)
    loading = finding.suggestions[0].actions[0].regimen.phases[0]
    assert loading.duration == 4 and "review at 4 weeks" in loading.text


def test_a_neurological_loading_order_without_an_end_cannot_be_configured():
    with pytest.raises(PolicyError, match="neuro_loading_review_weeks"):
        Policy.from_mapping({"windows": {"neuro_loading_review_weeks": 0}})


@pytest.mark.parametrize("formulary", [Formulary.HYDROXOCOBALAMIN, Formulary.CYANOCOBALAMIN])
def test_no_suggested_order_anywhere_has_an_unbounded_alternate_day_phase(formulary):
    finding = run(
        rule,
        b12(118),
        condition(ConditionKind.PERIPHERAL_NEUROPATHY),
        policy=Policy(formulary=formulary),
    )
    for s in finding.suggestions:
        for a in s.actions:
            for phase in a.regimen.phases:
                if phase.unit == "d" and phase.every == 2:
                    assert phase.duration is not None and phase.count is None
