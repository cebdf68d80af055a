import pytest

from cds_service.domain.findings import OrderLab, SelectionBehavior
from cds_service.domain.rules import b12_normal_but_symptomatic as rule
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


def mcv(value=108):
    return lab(Analyte.MCV, value)


def test_normal_b12_with_paraesthesia_suggests_mma():
    finding = run(rule, b12(420, rid="Observation/b12"), condition(ConditionKind.PARAESTHESIA))
    assert finding.rule_id == "b12-normal-but-symptomatic"
    assert finding.indicator is Indicator.INFO
    assert finding.summary == (
        "Normal total B12 (420 ng/L (≈310 pmol/L)) with paraesthesia: consider MMA or active B12."
    )
    assert "does not exclude deficiency" in finding.detail
    assert "Observation/b12" in finding.detail
    assert finding.detail.splitlines()[-1].startswith("Source: NICE NG239")
    (suggestion,) = finding.suggestions
    assert suggestion.is_recommended
    assert [a.loinc for a in suggestion.actions if isinstance(a, OrderLab)] == ["13964-2"]
    assert finding.selection_behavior is SelectionBehavior.ANY
    assert finding.concerns == frozenset() and finding.supersedes == frozenset()


def test_normal_b12_with_macrocytosis_names_the_mcv():
    finding = run(rule, b12(420), mcv(108))
    assert "MCV 108 fL" in finding.summary


@pytest.mark.parametrize(
    "result, fires",
    [
        (b12(350), False),
        (b12(350.1), True),
        (b12(258, "pmol/L"), False),
        (b12(258.1, "pmol/L"), True),
    ],
    ids=["350", "350.1", "258 pmol", "258.1 pmol"],
)
def test_unlikely_band_boundary(result, fires):
    assert (run(rule, result, mcv()) is not None) is fires


@pytest.mark.parametrize("value, fires", [(100, False), (100.1, True)])
def test_macrocytosis_boundary(value, fires):
    assert (run(rule, b12(420), mcv(value)) is not None) is fires


def test_no_symptoms_or_signs_is_silent():
    assert run(rule, b12(420), mcv(95)) is None


def test_headache_only_is_flagged_as_possible_neurological_involvement():
    finding = run(rule, b12(420), condition(ConditionKind.HEADACHE))
    assert "headache recorded; the brief treats it as neurological involvement" in finding.detail


@pytest.mark.parametrize(
    "second_line", [active_b12(90), mma(150), mma(400, high=450)], ids=["active", "MMA", "MMA lab"]
)
def test_current_active_b12_or_mma_is_silent(second_line):
    assert run(rule, b12(420), mcv(), second_line) is None


def test_stale_active_b12_does_not_count():
    assert run(rule, b12(420), mcv(), active_b12(90, days=400)) is not None


@pytest.mark.parametrize(
    "therapy",
    [
        med(DrugClass.HYDROXOCOBALAMIN, start=None),
        draft(DrugClass.CYANOCOBALAMIN, dose_ug=1000, interval_days=1),
    ],
    ids=["active", "drafted"],
)
def test_b12_therapy_silences_the_card(therapy):
    assert run(rule, b12(420), mcv(), therapy) is None


def test_drafted_mma_is_the_concern_and_not_suggested_again():
    order = lab_order(Analyte.MMA, name="MMA", rid="ServiceRequest/mma")
    finding = run(rule, b12(420), mcv(), order)
    assert finding.concerns == {"ServiceRequest/mma"}
    assert finding.suggestions == () and finding.selection_behavior is None


def test_egfr_below_60_warns_that_mma_is_not_specific():
    finding = run(rule, b12(420), mcv(), lab(Analyte.EGFR, 40))
    assert "raised MMA would not be specific" in finding.detail


def test_summary_fits_with_both_signs_and_long_units():
    loss = condition(ConditionKind.PROPRIOCEPTION_LOSS)
    finding = run(rule, b12(0.42, "ng/mL"), mcv(112.5), loss)
    assert len(finding.summary) < 140
