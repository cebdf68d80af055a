import pytest

from cds_service.domain.findings import OrderLab, SelectionBehavior
from cds_service.domain.rules import b12_indeterminate as rule
from cds_service.domain.vocabulary import Indicator
from tests.builders import (
    Analyte,
    ConditionKind,
    DrugClass,
    active_b12,
    b12,
    condition,
    draft,
    lab,
    lab_order,
    med,
    mma,
    run,
)


def labs_offered(finding):
    return [
        (a.loinc, s.is_recommended)
        for s in finding.suggestions
        for a in s.actions
        if isinstance(a, OrderLab)
    ]


def test_b12_250_is_info_suggesting_mma_with_active_b12_as_alternative():
    finding = run(rule, b12(250, rid="Observation/b12"))
    assert finding.rule_id == "b12-indeterminate"
    assert finding.indicator is Indicator.INFO
    assert finding.summary == (
        "B12 indeterminate (250 ng/L (≈184 pmol/L)): check MMA before deciding."
    )
    assert labs_offered(finding) == [("13964-2", True), ("72160-5", False)]
    assert finding.selection_behavior is SelectionBehavior.ANY
    assert "Observation/b12" in finding.detail
    assert finding.detail.splitlines()[-1].startswith("Source: NICE NG239")
    assert finding.concerns == frozenset()
    assert finding.supersedes == frozenset()


@pytest.mark.parametrize(
    "result, fires",
    [
        (b12(179.9), False),
        (b12(180), True),
        (b12(350), True),
        (b12(350.1), False),
        (b12(132.9, "pmol/L"), False),
        (b12(133, "pmol/L"), True),
        (b12(258, "pmol/L"), True),
        (b12(258.1, "pmol/L"), False),
        (active_b12(24.9), False),
        (active_b12(25), True),
        (active_b12(70), True),
        (active_b12(70.1), False),
    ],
    ids=[
        "179.9",
        "180",
        "350",
        "350.1",
        "132.9 pmol",
        "133 pmol",
        "258 pmol",
        "258.1 pmol",
        "holoTC 24.9",
        "holoTC 25",
        "holoTC 70",
        "holoTC 70.1",
    ],
)
def test_indeterminate_band_boundaries(result, fires):
    assert (run(rule, result) is not None) is fires


def test_indeterminate_active_b12_suggests_mma_only():
    finding = run(rule, active_b12(40))
    assert finding.summary.startswith("Active B12 indeterminate (40 pmol/L)")
    assert labs_offered(finding) == [("13964-2", True)]


@pytest.mark.parametrize(
    "kind", [ConditionKind.PARAESTHESIA, ConditionKind.COGNITIVE_IMPAIRMENT, ConditionKind.HEADACHE]
)
def test_neurological_involvement_makes_it_a_warning_not_to_delay_treatment(kind):
    finding = run(rule, b12(250), condition(kind))
    assert finding.indicator is Indicator.WARNING
    assert "do not delay treatment" in finding.summary
    assert "Do not delay treatment if suspicion is strong" in finding.detail
    assert len(finding.summary) < 140


def test_headache_only_is_flagged_as_possible_neurological_involvement():
    finding = run(rule, b12(250), condition(ConditionKind.HEADACHE))
    assert "headache recorded; the brief treats it as neurological involvement" in finding.detail


# --- settled / not when -------------------------------------------------------------------------
def test_normal_mma_settles_it():
    assert run(rule, b12(250), mma(200)) is None


def test_raised_mma_with_normal_renal_function_is_deficiency_not_indeterminate():
    assert run(rule, b12(250), mma(450), lab(Analyte.EGFR, 75)) is None


@pytest.mark.parametrize(
    "active, fires", [(active_b12(90), False), (active_b12(20), False), (active_b12(50), True)]
)
def test_active_b12_settles_an_indeterminate_total_unless_itself_indeterminate(active, fires):
    assert (run(rule, b12(250), active) is not None) is fires


def test_raised_mma_with_egfr_below_60_does_not_settle_it_and_says_why():
    finding = run(rule, b12(250), mma(450), lab(Analyte.EGFR, 45))
    assert finding is not None
    assert "renal impairment raises MMA on its own" in finding.detail
    assert labs_offered(finding) == [("72160-5", True)]
    assert "check active B12" in finding.summary


def test_egfr_below_60_prefers_active_b12():
    finding = run(rule, b12(250), lab(Analyte.EGFR, 40))
    assert labs_offered(finding) == [("13964-2", False), ("72160-5", True)]
    assert "active B12 is preferred" in finding.detail


def test_pregnancy_prefers_active_b12():
    finding = run(rule, b12(250), condition(ConditionKind.PREGNANCY))
    assert labs_offered(finding) == [("13964-2", False), ("72160-5", True)]
    assert "Pregnant" in finding.detail


@pytest.mark.parametrize(
    "therapy",
    [
        med(DrugClass.HYDROXOCOBALAMIN),
        draft(DrugClass.CYANOCOBALAMIN, dose_ug=1000, interval_days=1),
    ],
    ids=["active", "drafted"],
)
def test_b12_therapy_silences_the_card(therapy):
    assert run(rule, b12(250, days=60), therapy) is None


def test_stale_result_is_silent():
    assert run(rule, b12(250, days=400)) is None


# --- drafts -----------------------------------------------------------------------------------
def test_drafted_mma_is_the_concern_and_not_suggested_again():
    order = lab_order(Analyte.MMA, name="MMA", rid="ServiceRequest/mma")
    finding = run(rule, b12(250), order)
    assert finding.concerns == {"ServiceRequest/mma"}
    assert finding.suggestions == ()
    assert finding.selection_behavior is None
    assert "ServiceRequest/mma" in finding.detail


def test_drafted_active_b12_is_the_concern():
    order = lab_order(Analyte.ACTIVE_B12, name="Active B12", rid="ServiceRequest/hc")
    finding = run(rule, b12(250), order)
    assert finding.concerns == {"ServiceRequest/hc"}
    assert labs_offered(finding) == [("13964-2", True)]


def test_drafted_total_b12_is_not_a_concern():
    finding = run(rule, b12(250), lab_order(Analyte.TOTAL_B12))
    assert finding.concerns == frozenset()


def test_summary_fits_with_long_values_and_neurology():
    finding = run(rule, b12(250, "pg/mL"), condition(ConditionKind.ATAXIA))
    assert len(finding.summary) < 140
    assert "250 pg/mL" in finding.summary
