import pytest

from cds_service.domain.findings import RemoveDraft, SelectionBehavior
from cds_service.domain.policy import Policy
from cds_service.domain.rules import b12_retest_on_treatment as rule
from cds_service.domain.vocabulary import Indicator
from tests.builders import Analyte, DrugClass, Route, draft, lab_order, med, run


def im_b12(months: float = 12, **kw):
    kw.setdefault("route", Route.INTRAMUSCULAR)
    return med(
        DrugClass.HYDROXOCOBALAMIN, name="Hydroxocobalamin 1 mg/mL injection", months=months, **kw
    )


def b12_test(**kw):
    return lab_order(Analyte.TOTAL_B12, name="Vitamin B12", **kw)


def test_b12_test_on_established_im_therapy_suggests_removing_it():
    finding = run(
        rule, im_b12(12, rid="MedicationStatement/im"), b12_test(rid="ServiceRequest/b12")
    )
    assert finding.rule_id == "b12-retest-on-treatment"
    assert finding.indicator is Indicator.INFO
    assert "not informative" in finding.summary and "blood count" in finding.summary
    assert "1 year" in finding.summary
    (suggestion,) = finding.suggestions
    (action,) = suggestion.actions
    assert isinstance(action, RemoveDraft)
    assert action.resource_id == "ServiceRequest/b12"
    assert finding.selection_behavior is SelectionBehavior.ANY
    assert [r.display for r in finding.override_reasons] == [
        "Symptoms recurred on treatment",
        "Checking adherence or absorption",
    ]
    assert finding.concerns == frozenset({"ServiceRequest/b12"})
    assert "MedicationStatement/im" in finding.detail
    assert finding.detail.rstrip().splitlines()[-1].startswith("Source: NICE NG239")
    assert len(finding.summary) < 140


@pytest.mark.parametrize("months, fires", [(2.9, False), (3, False), (3.1, True)])
def test_established_means_more_than_3_months(months, fires):
    assert (run(rule, im_b12(months), b12_test()) is not None) is fires


def test_threshold_follows_site_policy():
    policy = Policy.from_mapping({"windows": {"established_im_months": 6}})
    assert run(rule, im_b12(5), b12_test(), policy=policy) is None
    assert run(rule, im_b12(7), b12_test(), policy=policy) is not None


@pytest.mark.parametrize("route", [Route.SUBCUTANEOUS, Route.INTRAVENOUS])
def test_other_parenteral_routes_count(route):
    assert run(rule, im_b12(route=route), b12_test()) is not None


@pytest.mark.parametrize("route", [Route.ORAL, Route.SUBLINGUAL, Route.INTRANASAL])
def test_non_parenteral_therapy_is_silent(route):
    assert run(rule, im_b12(route=route), b12_test()) is None


def test_hydroxocobalamin_without_route_is_an_injection():
    assert run(rule, im_b12(route=Route.UNKNOWN), b12_test()) is not None


def test_cyanocobalamin_without_route_is_not_assumed_parenteral():
    oral_or_im = med(DrugClass.CYANOCOBALAMIN, months=12)
    assert run(rule, oral_or_im, b12_test()) is None


def test_no_drafted_total_b12_is_silent():
    assert run(rule, im_b12()) is None
    assert run(rule, im_b12(), lab_order(Analyte.ACTIVE_B12)) is None
    assert run(rule, im_b12(), lab_order(Analyte.MMA)) is None


def test_stopped_or_drafted_therapy_is_silent():
    assert run(rule, im_b12(status="completed"), b12_test()) is None
    drafted = draft(DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR)
    assert run(rule, drafted, b12_test()) is None


def test_therapy_without_start_date_is_silent():
    undated = med(DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR)
    assert run(rule, undated, b12_test()) is None


def test_panel_removal_warns_about_the_other_tests():
    panel = lab_order(
        Analyte.TOTAL_B12, Analyte.FOLATE, name="B12 and folate", rid="ServiceRequest/panel"
    )
    finding = run(rule, im_b12(), panel)
    (action,) = finding.suggestions[0].actions
    assert "also removes: folate" in action.description
    assert "other tests" in finding.detail


def test_two_drafted_tests_are_both_removed():
    finding = run(
        rule, im_b12(), b12_test(rid="ServiceRequest/a"), b12_test(rid="ServiceRequest/b")
    )
    ids = [a.resource_id for a in finding.suggestions[0].actions]
    assert ids == ["ServiceRequest/a", "ServiceRequest/b"]
    assert finding.concerns == frozenset(ids)
