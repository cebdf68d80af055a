import pytest

from cds_service.domain.codes import LOINC_ACTIVE_B12
from cds_service.domain.findings import OrderLab, OrderMedication, SelectionBehavior
from cds_service.domain.rules import pregnancy_b12 as rule
from cds_service.domain.vocabulary import Indicator
from tests.builders import (
    Analyte,
    ConditionKind,
    DrugClass,
    Route,
    Sex,
    active_b12,
    b12,
    condition,
    draft,
    lab,
    lab_order,
    med,
    mma,
    months_ago,
    patient,
    replace,
    run,
)


def pregnant(onset=None):
    c = condition(ConditionKind.PREGNANCY, name="Pregnancy", rid="Condition/preg")
    return replace(c, onset=onset) if onset else c


NORMAL_COUNT = (lab(Analyte.HAEMOGLOBIN, 12.5), lab(Analyte.MCV, 90))


def loincs(finding):
    return [a.loinc for s in finding.suggestions for a in s.actions if isinstance(a, OrderLab)]


def test_pregnant_with_total_b12_150_is_a_warning_to_confirm_with_active_b12():
    finding = run(rule, pregnant(), b12(150, rid="Observation/b12"), *NORMAL_COUNT)
    assert finding.indicator is Indicator.WARNING
    assert finding.summary == (
        "Total B12 150 ng/L (≈111 pmol/L) in pregnancy: total B12 falls in pregnancy; NICE "
        "recommends active B12 to confirm."
    )
    assert loincs(finding) == [LOINC_ACTIVE_B12] and LOINC_ACTIVE_B12 == "72160-5"
    assert finding.suggestions[0].is_recommended
    assert finding.selection_behavior is SelectionBehavior.ANY
    assert "b12-indeterminate" in finding.supersedes
    assert "Observation/b12" in finding.detail and "Condition/preg" in finding.detail
    assert "1 month" in finding.detail
    assert finding.detail.rstrip().splitlines()[-1].startswith("Source: ")


@pytest.mark.parametrize(
    "value, unit, indicator",
    [
        (179.9, "ng/L", Indicator.WARNING),
        (180, "ng/L", Indicator.INFO),
        (350, "ng/L", Indicator.INFO),
        (350.1, "ng/L", None),
        (132.9, "pmol/L", Indicator.WARNING),
        (133, "pmol/L", Indicator.INFO),
        (258, "pmol/L", Indicator.INFO),
        (258.1, "pmol/L", None),
        (179.9, "pg/mL", Indicator.WARNING),
    ],
)
def test_total_b12_boundaries_in_pregnancy(value, unit, indicator):
    finding = run(rule, pregnant(), b12(value, unit), *NORMAL_COUNT)
    if indicator is None:
        assert finding is None
    else:
        assert finding.indicator is indicator
        assert len(finding.summary) < 140
        assert loincs(finding) == [LOINC_ACTIVE_B12]
        assert "b12-indeterminate" in finding.supersedes


@pytest.mark.parametrize("holotc", [20, 50, 80])
def test_any_active_b12_result_silences_the_total_b12_part(holotc):
    assert run(rule, pregnant(), b12(150), active_b12(holotc)) is None


def test_drafted_active_b12_keeps_the_card_without_a_second_order():
    finding = run(rule, pregnant(), b12(250), lab_order(Analyte.ACTIVE_B12, rid="ServiceRequest/a"))
    assert finding.indicator is Indicator.INFO
    assert finding.suggestions == ()
    assert finding.concerns == frozenset({"ServiceRequest/a"})
    assert "already among the draft orders" in finding.detail


def test_not_pregnant_is_silent():
    assert run(rule, b12(150)) is None


def test_male_is_never_pregnant():
    assert run(rule, pregnant(), b12(150), patient_=patient(sex=Sex.MALE)) is None


def test_pregnancy_status_observation_counts():
    finding = run(rule, b12(150), *NORMAL_COUNT, pregnancy_observed=True)
    assert finding.indicator is Indicator.WARNING
    assert "pregnancy status observation" in finding.detail


def test_stale_total_b12_is_silent():
    assert run(rule, pregnant(), b12(150, days=400)) is None


def test_b12_draft_in_pregnancy_is_info_with_the_1_month_review():
    d = draft(DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR, rid="MedicationRequest/b12")
    finding = run(rule, pregnant(), d)
    assert finding.indicator is Indicator.INFO
    assert "review 1 month after starting" in finding.summary
    assert finding.suggestions == ()
    assert finding.concerns == frozenset({"MedicationRequest/b12"})
    assert finding.supersedes == frozenset()


def test_b12_draft_with_low_total_asks_for_the_sample_before_the_first_dose():
    d = draft(DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR)
    finding = run(rule, pregnant(), d, b12(150))
    assert finding.indicator is Indicator.WARNING
    assert "sample before the first dose" in finding.summary
    assert len(finding.summary) < 140
    assert loincs(finding) == [LOINC_ACTIVE_B12]


@pytest.mark.parametrize("started_months, fires", [(2, True), (9, True), (10, False)])
def test_therapy_started_in_pregnancy_without_dated_pregnancy(started_months, fires):
    on = med(DrugClass.CYANOCOBALAMIN, route=Route.ORAL, months=started_months)
    assert (run(rule, pregnant(), on) is not None) is fires


def test_therapy_started_before_a_dated_pregnancy_is_silent():
    on = med(DrugClass.CYANOCOBALAMIN, route=Route.ORAL, months=5)
    assert run(rule, pregnant(onset=months_ago(3)), on) is None
    after = med(DrugClass.CYANOCOBALAMIN, route=Route.ORAL, months=2)
    assert run(rule, pregnant(onset=months_ago(3)), after).indicator is Indicator.INFO


def test_on_therapy_total_b12_is_not_read_as_case_a():
    on = med(DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR, months=24)
    assert run(rule, pregnant(), on, b12(150)) is None


# --- b12-deficiency-untreated: superseded only when nothing corroborates a low total ----------


def test_low_total_alone_supersedes_deficiency_untreated_and_offers_treatment_as_fallback():
    finding = run(rule, pregnant(), b12(150), *NORMAL_COUNT)
    assert finding.supersedes == frozenset(
        {"b12-indeterminate", "b12-deficiency-untreated", "b12-cause-workup"}
    )
    order_active, treat = finding.suggestions
    assert order_active.is_recommended and not treat.is_recommended
    (action,) = treat.actions
    assert isinstance(action, OrderMedication) and action.regimen.key == "im-standard"
    assert "before the first dose" in finding.detail


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(lambda: (condition(ConditionKind.PARAESTHESIA),), id="neurological"),
        pytest.param(lambda: (condition(ConditionKind.HEADACHE),), id="possible-neurological"),
        pytest.param(
            lambda: (lab(Analyte.HAEMOGLOBIN, 9.5), lab(Analyte.MCV, 108)), id="megaloblastic"
        ),
        pytest.param(lambda: (mma(450),) + NORMAL_COUNT, id="raised-mma"),
        pytest.param(lambda: (), id="no-blood-count"),
    ],
)
def test_corroborated_or_unassessable_deficiency_keeps_deficiency_untreated(extra):
    finding = run(rule, pregnant(), b12(150), *extra())
    assert finding.indicator is Indicator.WARNING
    assert finding.supersedes == frozenset({"b12-indeterminate"})
    assert not any(isinstance(a, OrderMedication) for s in finding.suggestions for a in s.actions)


def test_indeterminate_total_never_supersedes_deficiency_untreated():
    finding = run(rule, pregnant(), b12(250), *NORMAL_COUNT)
    assert finding.supersedes == frozenset({"b12-indeterminate"})
