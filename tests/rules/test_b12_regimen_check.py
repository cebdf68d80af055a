import pytest

from cds_service.domain.findings import OrderMedication, RemoveDraft, SelectionBehavior
from cds_service.domain.policy import Formulary, Policy
from cds_service.domain.rules import b12_regimen_check as rule
from cds_service.domain.vocabulary import Indicator
from tests.builders import (
    ConditionKind,
    DrugClass,
    Route,
    b12,
    condition,
    draft,
    med,
    months_ago,
    run,
)

CYANO, HYDROXO = DrugClass.CYANOCOBALAMIN, DrugClass.HYDROXOCOBALAMIN


def oral_draft(dose_ug=1000.0, interval_days=1.0, route=Route.ORAL, rid="MedicationRequest/oral"):
    return draft(
        CYANO,
        name=f"Cyanocobalamin {dose_ug:g} MCG Oral Tablet",
        route=route,
        dose_ug=dose_ug,
        interval_days=interval_days,
        rid=rid,
    )


def im_draft(interval_days=None, count=None, drug=HYDROXO, rid="MedicationRequest/im"):
    return draft(
        drug,
        name=f"{drug.value} 1 MG/ML Injectable Solution",
        route=Route.INTRAMUSCULAR,
        dose_ug=1000,
        interval_days=interval_days,
        count_=count,
        rid=rid,
    )


def assert_replacement(finding, removed, regimen_key):
    assert finding.selection_behavior is SelectionBehavior.AT_MOST_ONE
    (suggestion,) = finding.suggestions
    assert suggestion.is_recommended
    removes = [a for a in suggestion.actions if isinstance(a, RemoveDraft)]
    orders = [a for a in suggestion.actions if isinstance(a, OrderMedication)]
    assert {a.resource_id for a in removes} == set(removed)
    assert [o.regimen.key for o in orders] == [regimen_key]
    assert finding.concerns == frozenset(removed)


def test_oral_b12_with_paraesthesia_is_a_warning_to_use_the_im_regimen():
    finding = run(rule, oral_draft(), condition(ConditionKind.PARAESTHESIA))
    assert finding.indicator is Indicator.WARNING
    assert finding.summary == (
        "Oral B12 is not the preferred route with neurological involvement: use the IM regimen."
    )
    assert_replacement(finding, ["MedicationRequest/oral"], "im-neurological")
    assert finding.suggestions[0].actions[-1].regimen.drug is HYDROXO
    assert "MedicationRequest/oral" in finding.detail
    assert finding.detail.rstrip().splitlines()[-1].startswith("Source: ")


def test_sublingual_b12_with_neuropathy_is_named_sublingual():
    finding = run(
        rule, oral_draft(route=Route.SUBLINGUAL), condition(ConditionKind.PERIPHERAL_NEUROPATHY)
    )
    assert finding.summary.startswith("Sublingual B12 is not the preferred route")


def test_oral_b12_with_headache_only_says_possible_involvement_plainly():
    finding = run(rule, oral_draft(), condition(ConditionKind.HEADACHE, name="Headache"))
    assert "possible neurological involvement (Headache)" in finding.summary
    assert "confirm clinically" in finding.detail.lower()
    assert_replacement(finding, ["MedicationRequest/oral"], "im-neurological")


def test_site_that_drops_headache_does_not_fire_for_oral_b12_with_headache():
    policy = Policy.from_mapping({"neurological_involvement": ["paraesthesia"]})
    assert run(rule, oral_draft(), condition(ConditionKind.HEADACHE), policy=policy) is None


def test_oral_1000_daily_without_neuro_or_malabsorption_fits():
    assert run(rule, oral_draft(), b12(150)) is None


@pytest.mark.parametrize(
    "dose_ug, interval_days, fires",
    [
        (50, 1, True),
        (999, 1, True),
        (1000, 1, False),
        (2000, 1, False),
        (500, 0.5, False),
        (1000, 2, True),
    ],
)
def test_oral_dose_below_1000_per_day_with_pernicious_anaemia(dose_ug, interval_days, fires):
    finding = run(
        rule, oral_draft(dose_ug, interval_days), condition(ConditionKind.PERNICIOUS_ANAEMIA)
    )
    assert (finding is not None) is fires
    if fires:
        assert finding.indicator is Indicator.WARNING
        assert "too low with pernicious anaemia" in finding.summary
        assert_replacement(finding, ["MedicationRequest/oral"], "im-standard")


def test_oral_dose_without_frequency_is_read_as_once_daily():
    finding = run(rule, oral_draft(50, None), condition(ConditionKind.BARIATRIC_SURGERY))
    assert "50 micrograms/day" in finding.summary
    assert "read as once daily" in finding.detail


def test_oral_dose_unknown_with_malabsorption_is_not_judged():
    unknown = draft(CYANO, route=Route.ORAL, rid="MedicationRequest/oral")
    assert run(rule, unknown, condition(ConditionKind.PERNICIOUS_ANAEMIA)) is None


def test_route_misfit_is_named_before_dose_misfit_and_both_are_in_the_detail():
    finding = run(
        rule,
        oral_draft(50),
        condition(ConditionKind.PARAESTHESIA),
        condition(ConditionKind.GASTRECTOMY),
    )
    assert finding.summary.startswith("Oral B12 is not the preferred route")
    assert "malabsorption cause" in finding.detail
    assert_replacement(finding, ["MedicationRequest/oral"], "im-neurological")


def test_one_off_injection_without_loading_is_replaced_by_the_standard_regimen():
    finding = run(rule, im_draft(count=1))
    assert finding.indicator is Indicator.WARNING
    assert finding.summary.startswith("Single B12 injection without a loading course")
    assert "three times a week" in finding.summary
    assert_replacement(finding, ["MedicationRequest/im"], "im-standard")


def test_injection_without_any_repeat_schedule_counts_as_one_off():
    finding = run(rule, im_draft())
    assert "no repeat schedule" in finding.detail


def test_one_off_injection_with_neuro_is_replaced_by_the_neurological_regimen():
    finding = run(rule, im_draft(count=1), condition(ConditionKind.ATAXIA))
    assert "alternate days" in finding.summary
    assert_replacement(finding, ["MedicationRequest/im"], "im-neurological")


@pytest.mark.parametrize(
    "months, fires", [(1, False), (2, False), (3, False), (3.1, True), (6, True)]
)
def test_im_interval_longer_than_3_months_without_loading(months, fires):
    finding = run(rule, im_draft(interval_days=months * 30.4375))
    assert (finding is not None) is fires
    if fires:
        assert f"every {months:g} months without a loading course" in finding.summary
        assert_replacement(finding, ["MedicationRequest/im"], "im-standard")


def test_site_window_for_im_interval_is_read_from_policy():
    policy = Policy.from_mapping({"windows": {"im_max_interval_months": 6}})
    assert run(rule, im_draft(interval_days=4 * 30.4375), policy=policy) is None


@pytest.mark.parametrize(
    "existing",
    [
        pytest.param(lambda: med(HYDROXO, route=Route.INTRAMUSCULAR, months=24), id="active-im"),
        pytest.param(lambda: med(CYANO, route=Route.ORAL, months=5), id="active-oral"),
        pytest.param(
            lambda: med(HYDROXO, route=Route.INTRAMUSCULAR, status="completed", months=2),
            id="completed-course-in-window",
        ),
        pytest.param(
            lambda: im_draft(interval_days=7 / 3, count=6, rid="MedicationRequest/loading"),
            id="loading-drafted-alongside",
        ),
    ],
)
def test_maintenance_injection_after_or_with_loading_is_silent(existing):
    assert run(rule, im_draft(count=1), existing()) is None
    assert run(rule, im_draft(interval_days=6 * 30.4375), existing()) is None


def test_completed_course_outside_the_window_is_not_loading():
    old = med(HYDROXO, route=Route.INTRAMUSCULAR, status="completed", start=months_ago(20))
    assert run(rule, im_draft(count=1), old) is not None


def test_unknown_route_is_not_judged():
    assert (
        run(rule, draft(CYANO, dose_ug=50, interval_days=1), condition(ConditionKind.PARAESTHESIA))
        is None
    )


def test_stop_order_is_not_judged():
    stop = draft(CYANO, route=Route.ORAL, dose_ug=50, interval_days=1, stop=True)
    assert run(rule, stop, condition(ConditionKind.PARAESTHESIA)) is None


def test_no_b12_draft_is_silent():
    assert (
        run(
            rule,
            med(CYANO, route=Route.ORAL, dose_ug=50, interval_days=1),
            condition(ConditionKind.PARAESTHESIA),
        )
        is None
    )


def test_hydroxocobalamin_replacement_supersedes_cyanocobalamin_renal():
    finding = run(rule, oral_draft(), condition(ConditionKind.PARAESTHESIA))
    assert finding.supersedes == frozenset({"cyanocobalamin-renal"})


def test_us_formulary_replacement_is_cyanocobalamin_and_does_not_supersede_renal():
    policy = Policy(formulary=Formulary.CYANOCOBALAMIN)
    finding = run(rule, oral_draft(), condition(ConditionKind.PARAESTHESIA), policy=policy)
    assert finding.suggestions[0].actions[-1].regimen.drug is CYANO
    assert finding.supersedes == frozenset()


def test_renal_not_superseded_when_another_cyanocobalamin_draft_stays():
    fitting = im_draft(interval_days=2, drug=CYANO, rid="MedicationRequest/cyano-im")
    finding = run(rule, oral_draft(), fitting, condition(ConditionKind.PARAESTHESIA))
    assert finding.concerns == frozenset({"MedicationRequest/oral"})
    assert finding.supersedes == frozenset()


def test_every_misfitting_draft_is_removed_by_the_one_suggestion():
    finding = run(
        rule,
        oral_draft(),
        oral_draft(route=Route.SUBLINGUAL, rid="MedicationRequest/sl"),
        condition(ConditionKind.PARAESTHESIA),
    )
    assert_replacement(
        finding, ["MedicationRequest/oral", "MedicationRequest/sl"], "im-neurological"
    )


@pytest.mark.parametrize(
    "items",
    [
        (oral_draft(), condition(ConditionKind.PARAESTHESIA)),
        (oral_draft(), condition(ConditionKind.HEADACHE, name="Chronic tension-type headache")),
        (
            oral_draft(10),
            condition(
                ConditionKind.POSTSURGICAL_MALABSORPTION,
                name="Postsurgical malabsorption, not elsewhere classified",
            ),
        ),
        (im_draft(count=1), condition(ConditionKind.SUBACUTE_COMBINED_DEGENERATION)),
        (im_draft(interval_days=183),),
    ],
)
def test_summaries_fit_in_140_characters(items):
    finding = run(rule, *items)
    assert len(finding.summary) < 140
    assert not finding.summary.endswith("\u2026")
