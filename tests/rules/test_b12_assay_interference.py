from dataclasses import replace

import pytest

from cds_service.domain.rules import b12_assay_interference as rule
from cds_service.domain.sources import CYANOCOBALAMIN_LABEL, NICE_NG239
from cds_service.domain.vocabulary import Indicator
from tests.builders import (
    Analyte,
    DrugClass,
    Route,
    active_b12,
    b12,
    days_ago,
    draft,
    lab,
    med,
    mma,
    run,
)


def methotrexate(start_days: float = 200, end_days: float | None = None, **kw):
    m = med(
        DrugClass.METHOTREXATE,
        name="Methotrexate 2.5 MG Oral Tablet",
        start=days_ago(start_days),
        **kw,
    )
    return replace(m, end=days_ago(end_days)) if end_days is not None else m


def test_b12_drawn_during_methotrexate_is_info_without_suggestions():
    finding = run(
        rule, b12(150, days=30, rid="Observation/b12"), methotrexate(rid="MedicationStatement/mtx")
    )
    assert finding.rule_id == "b12-assay-interference"
    assert finding.indicator is Indicator.INFO
    assert finding.summary.startswith("This B12 result (150 ng/L (≈111 pmol/L), 2026-05-16) may")
    assert finding.summary.endswith("may be invalid: drawn during methotrexate.")
    assert finding.suggestions == ()
    assert finding.selection_behavior is None
    assert finding.concerns == frozenset()
    assert finding.source is CYANOCOBALAMIN_LABEL
    assert "Observation/b12" in finding.detail and "MedicationStatement/mtx" in finding.detail
    assert finding.detail.rstrip().splitlines()[-1].startswith("Source: US cyanocobalamin")


@pytest.mark.parametrize(
    "result",
    [
        lab(Analyte.FOLATE, 3.1, days=30),
        lab(Analyte.RBC_FOLATE, 150, "ng/mL", days=30),
        active_b12(30, days=30),
    ],
    ids=["folate", "rbc-folate", "active-b12"],
)
def test_folate_and_active_b12_count(result):
    assert run(rule, result, methotrexate()) is not None


@pytest.mark.parametrize(
    "cls, word",
    [(DrugClass.ANTIBIOTIC, "antibiotics"), (DrugClass.PYRIMETHAMINE, "pyrimethamine")],
)
def test_antibiotics_and_pyrimethamine_interfere(cls, word):
    exposure = med(cls, start=days_ago(35), status="completed")
    exposure = replace(exposure, end=days_ago(25))
    finding = run(rule, b12(150, days=30), exposure)
    assert f"drawn during {word}" in finding.summary


@pytest.mark.parametrize(
    "start_days, end_days, fires",
    [
        (31, None, True),  # ongoing
        (30, None, True),  # started that day
        (29, None, False),  # started after the result
        (60, 30, True),  # ended that day
        (60, 31, False),  # ended the day before
    ],
)
def test_exposure_must_cover_the_result_date(start_days, end_days, fires):
    finding = run(rule, b12(150, days=30), methotrexate(start_days, end_days))
    assert (finding is not None) is fires


def test_completed_course_without_end_date_is_not_assumed_to_cover_later_results():
    old_course = med(DrugClass.ANTIBIOTIC, start=days_ago(200), status="completed")
    assert run(rule, b12(150, days=30), old_course) is None


def test_draft_exposure_does_not_count():
    assert run(rule, b12(150, days=30), draft(DrugClass.METHOTREXATE, start=days_ago(100))) is None


@pytest.mark.parametrize("days, fires", [(364, True), (366, False)])
def test_only_results_in_the_window(days, fires):
    assert (run(rule, b12(150, days=days), methotrexate(start_days=400)) is not None) is fires


def test_b12_drawn_after_therapy_began_is_flagged_citing_nice():
    therapy = med(
        DrugClass.HYDROXOCOBALAMIN,
        route=Route.INTRAMUSCULAR,
        start=days_ago(90),
        rid="MedicationStatement/hydroxo",
    )
    finding = run(rule, b12(900, days=10, rid="Observation/on-tx"), therapy)
    assert finding.summary.endswith("may be invalid: drawn after B12 therapy began.")
    assert finding.source is NICE_NG239
    assert "Observation/on-tx" in finding.detail
    assert "MedicationStatement/hydroxo" in finding.detail
    assert "first B12 therapy on" in finding.detail


def test_b12_drawn_before_therapy_is_not_flagged():
    therapy = med(DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR, start=days_ago(5))
    assert run(rule, b12(150, days=10), therapy) is None


def test_mma_on_therapy_is_flagged():
    therapy = med(DrugClass.CYANOCOBALAMIN, route=Route.ORAL, start=days_ago(90))
    finding = run(rule, mma(150, days=10), therapy)
    assert finding.summary.startswith("This MMA result")


def test_therapy_without_start_date_makes_every_result_on_therapy():
    therapy = med(DrugClass.CYANOCOBALAMIN, route=Route.ORAL)
    finding = run(rule, b12(600, days=10), therapy)
    assert "no recorded start date" in finding.detail


def test_both_reasons_and_several_results():
    therapy = med(DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR, start=days_ago(90))
    finding = run(
        rule,
        b12(900, days=10),
        lab(Analyte.FOLATE, 3.1, days=40),
        methotrexate(start_days=200),
        therapy,
    )
    assert "drawn during methotrexate and after B12 therapy began (+1 more)" in finding.summary
    assert finding.source is CYANOCOBALAMIN_LABEL
    assert "NICE NG239" in finding.detail.rstrip().splitlines()[-1]
    assert len(finding.summary) < 140


def test_nothing_interfering_is_silent():
    assert run(rule, b12(150, days=30)) is None
    assert run(rule, methotrexate()) is None
