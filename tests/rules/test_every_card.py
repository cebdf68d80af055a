"""What holds for every card of every rule: the paediatric caveat, how results are shown,
future-dated results, and the site's orderables on every suggested order."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from cds_service.domain.engine import HookKind, evaluate
from cds_service.domain.findings import OrderLab, OrderMedication
from cds_service.domain.formulary import DEFAULTS
from cds_service.domain.policy import Policy, PolicyError
from cds_service.domain.resulttext import result_value_text
from tests.builders import NOW, Analyte, b12, days_ago, facts, folic_acid_draft, lab, picture

from .corpus import scenario_cases

CASES = scenario_cases()
CAVEAT = (
    "NICE NG239 covers over-16s; paediatric reference ranges and doses differ: confirm with "
    "paediatrics."
)


def aged(case, years: int, months_after_birthday: int = 1):
    """The case's facts with a patient ``years`` old at the case's evaluation time."""
    today = case.now.date()
    born = date(today.year - years, today.month, 1) - timedelta(days=31 * months_after_birthday)
    patient = case.facts.patient
    return replace(case.facts, patient=replace(patient, birth_date=born))


# --- under 16: one caveat line on every card ---------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
def test_every_card_for_a_15_year_old_says_nice_covers_over_16s(case):
    evaluation = evaluate(aged(case, 15), case.now, HookKind.PATIENT_VIEW)
    for finding in evaluation.findings:
        assert finding.detail.count(CAVEAT) == 1, finding.rule_id
        assert len(finding.summary) < 140


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
def test_no_card_for_a_16_year_old_carries_the_paediatric_caveat(case):
    evaluation = evaluate(aged(case, 16), case.now, HookKind.PATIENT_VIEW)
    assert all(CAVEAT not in f.detail for f in evaluation.findings)


def test_the_corpus_gives_the_caveat_test_cards_of_most_rules():
    rules = {
        f.rule_id
        for case in CASES
        for f in evaluate(aged(case, 15), case.now, HookKind.PATIENT_VIEW).findings
    }
    assert len(rules) >= 13, sorted(rules)


def test_the_caveat_sits_before_the_source_line():
    finding = evaluate(
        facts(b12(118), patient_=replace(facts().patient, birth_date=date(2012, 1, 1))),
        NOW,
        HookKind.PATIENT_VIEW,
    ).findings[0]
    lines = finding.detail.splitlines()
    assert lines[-1].startswith("Source:") and lines[-3] == CAVEAT


# --- converted values: whole numbers that never cross the other unit's cut-off -----------------
@pytest.mark.parametrize(
    "value, unit, text",
    [
        (180, "ng/L", "180 ng/L (\u2248133 pmol/L)"),
        (179.9, "ng/L", "179.9 ng/L (\u2248132 pmol/L)"),
        (118, "ng/L", "118 ng/L (\u224887 pmol/L)"),
        (350, "ng/L", "350 ng/L (\u2248258 pmol/L)"),
        (350.1, "ng/L", "350.1 ng/L (\u2248259 pmol/L)"),
        (132.9, "pmol/L", "132.9 pmol/L (\u2248179 ng/L)"),
        (133, "pmol/L", "133 pmol/L (\u2248180 ng/L)"),
        (258.1, "pmol/L", "258.1 pmol/L (\u2248351 ng/L)"),
        (0.25, "ng/mL", "0.25 ng/mL (250 ng/L, \u2248184 pmol/L)"),
        (150, "pg/mL", "150 pg/mL (150 ng/L, \u2248111 pmol/L)"),
    ],
)
def test_a_converted_b12_is_a_whole_number_on_the_same_side_of_the_cut_off(value, unit, text):
    assert result_value_text(b12(value, unit)) == text


def test_a_limit_is_shown_with_its_sign_in_both_units():
    assert result_value_text(b12(150, "pg/mL", comparator="<")) == (
        "<150 pg/mL (<150 ng/L, \u2248<111 pmol/L)"
    )


def test_a_card_with_a_converted_value_says_once_how_the_band_is_judged():
    (finding,) = [f for f in evaluate(facts(b12(180)), NOW, HookKind.PATIENT_VIEW).findings]
    assert finding.detail.count("the band is judged in the unit the laboratory reported") == 1


# --- future-dated results -----------------------------------------------------------------------
def test_a_result_dated_more_than_a_day_ahead_is_skipped_and_its_id_logged(caplog):
    future = b12(118, when=NOW + timedelta(days=2), rid="Observation/future")
    p = picture(future)
    with caplog.at_level("INFO"):
        assert p.results(Analyte.TOTAL_B12) == ()
    assert [r.resource for r in caplog.records if hasattr(r, "resource")] == ["Observation/future"]
    assert p.b12.status.value == "unknown" and p.stale_b12 is None


def test_a_result_dated_within_a_day_ahead_is_current():
    p = picture(b12(118, when=NOW + timedelta(hours=20)))
    assert p.b12.status.value == "deficient"


def test_a_future_dated_b12_never_hides_the_folate_alert_of_a_current_one():
    items = (
        b12(900, when=NOW + timedelta(days=30)),
        b12(118, when=days_ago(5)),
        lab(Analyte.MCV, 108),
        folic_acid_draft(5),
    )
    first, *_ = evaluate(facts(*items), NOW, HookKind.ORDER_SIGN).shown
    assert first.rule_id == "folate-before-b12" and first.indicator.name == "CRITICAL"


# --- the site's orderables on every suggested order ---------------------------------------------
SITE = {
    key: {"system": "https://example.org/site-orderables", "code": f"SITE-{key}"}
    for key in DEFAULTS
}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
def test_every_suggested_order_uses_the_site_formulary(case):
    policy = Policy.from_mapping({"formulary": {"orderables": SITE}})
    evaluation = evaluate(case.facts, case.now, case.hook, policy)
    for finding in evaluation.findings:
        for suggestion in finding.suggestions:
            for action in suggestion.actions:
                if isinstance(action, OrderMedication):
                    assert action.regimen.system == "https://example.org/site-orderables"
                    assert action.regimen.rxnorm[0].startswith("SITE-")
                elif isinstance(action, OrderLab):
                    assert action.system == "https://example.org/site-orderables"
                    assert action.loinc.startswith("SITE-")


def test_without_a_site_formulary_the_default_codes_are_ordered():
    finding = evaluate(facts(b12(118)), NOW, HookKind.PATIENT_VIEW).findings[0]
    regimen = finding.suggestions[0].actions[0].regimen
    assert regimen.rxnorm == ("317106", "hydroxocobalamin 1 MG/ML Injectable Solution")
    assert regimen.system is None


def test_an_unmapped_product_keeps_its_default_while_a_mapped_one_changes():
    policy = Policy.from_mapping(
        {
            "formulary": {
                "orderables": {
                    "hydroxocobalamin_injection": {
                        "system": "http://snomed.info/sct",
                        "code": "10000000",
                        "display": "Hydroxocobalamin 1mg/1ml solution for injection ampoules",
                    }
                }
            }
        }
    )
    finding = evaluate(facts(b12(118)), NOW, HookKind.PATIENT_VIEW, policy).findings[0]
    standard, oral = (s.actions[0].regimen for s in finding.suggestions)
    assert (standard.system, standard.rxnorm[0]) == ("http://snomed.info/sct", "10000000")
    assert oral.system is None and oral.rxnorm[0] == DEFAULTS["cyanocobalamin_oral_1000"].code


@pytest.mark.parametrize(
    "formulary, message",
    [
        ({"orderables": {"warfarin": {"code": "1"}}}, "formulary.orderables.warfarin"),
        ({"orderables": {"total_b12": {"display": "B12"}}}, "total_b12.code' is required"),
        ({"orderables": {"total_b12": {"code": ""}}}, "total_b12.code"),
        ({"orderables": {"total_b12": {"code": "1", "url": "x"}}}, "total_b12.url"),
        ({"cobalamin": "methylcobalamin"}, "formulary.cobalamin"),
        ({"drugs": {}}, "formulary.drugs"),
        ("methylcobalamin", "'formulary'"),
    ],
)
def test_a_wrong_formulary_entry_is_an_error_naming_the_key(formulary, message):
    with pytest.raises(PolicyError, match=message.replace(".", r"\.").replace("'", "'")):
        Policy.from_mapping({"formulary": formulary})


def test_the_short_formulary_form_still_chooses_the_cobalamin():
    assert Policy.from_mapping({"formulary": "cyanocobalamin"}).formulary.value == "cyanocobalamin"
    mapping = Policy.from_mapping({"formulary": {"cobalamin": "cyanocobalamin"}})
    assert mapping.formulary.value == "cyanocobalamin"
    assert mapping.as_dict()["formulary"]["orderables"]["total_b12"]["code"] == "2132-9"
