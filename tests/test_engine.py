"""The engine's safety controls (clinical rules, section 4): one failing rule never silences
the others, and the order hooks show only what concerns the orders being signed or is urgent
(alert fatigue), while patient-view shows every finding, most urgent first."""

from __future__ import annotations

import logging
from dataclasses import replace

from cds_service.domain.engine import HookKind, evaluate
from cds_service.domain.findings import Wording
from cds_service.domain.rules import ALL_RULES
from cds_service.domain.vocabulary import DrugClass
from tests.builders import NOW, b12, facts, folic_acid_draft, med, shown


def _metformin_for_six_years():
    return med(DrugClass.METFORMIN, months=72, rid="MedicationStatement/met")


def test_a_failing_rule_does_not_silence_the_others(caplog):
    def broken(picture):
        raise OverflowError("date value out of range")

    rules = (replace(ALL_RULES[0], id="broken-rule", evaluate=broken), *ALL_RULES)
    with caplog.at_level(logging.ERROR):
        result = evaluate(
            facts(_metformin_for_six_years()), NOW, HookKind.PATIENT_VIEW, rules=rules
        )
    assert [f.rule_id for f in result.shown] == ["b12-screening-due"]
    assert result.failed_rules == ("broken-rule",)
    (record,) = [r for r in caplog.records if r.getMessage() == "rule failed"]
    assert record.rule == "broken-rule" and record.error == "OverflowError"


def test_order_sign_shows_the_critical_card_about_the_drafted_order():
    items = (b12(118), folic_acid_draft())
    assert shown(*items, hook=HookKind.ORDER_SIGN) == ["folate-before-b12"]


def test_order_sign_leaves_an_info_card_unrelated_to_the_drafts_for_patient_view():
    assert shown(_metformin_for_six_years(), hook=HookKind.ORDER_SIGN) == []
    assert shown(_metformin_for_six_years(), hook=HookKind.PATIENT_VIEW) == ["b12-screening-due"]


# --- a card's text is written only for the cards returned (findings.Wording) -----------------
def _with_text(rule, write):
    """``rule`` whose findings' text is written by ``write(finding)``."""

    def evaluate_(picture):
        finding = rule.evaluate(picture)
        if finding is None:
            return None
        return replace(finding, wording=Wording(lambda: write(finding)))

    return replace(rule, evaluate=evaluate_)


def _rules_with_text(rule_id, write):
    return tuple(_with_text(r, write) if r.id == rule_id else r for r in ALL_RULES)


def _recording(written):
    """A text writer that notes each rule whose text it writes, and writes the rule's own."""

    def write(finding):
        written.append(finding.rule_id)
        return finding.summary, finding.detail

    return write


def test_the_text_of_a_finding_the_budget_drops_is_never_written():
    written = []
    rules = _rules_with_text("b12-screening-due", _recording(written))
    chart = facts(_metformin_for_six_years())
    order_sign = evaluate(chart, NOW, HookKind.ORDER_SIGN, rules=rules)
    assert [f.rule_id for f in order_sign.findings] == ["b12-screening-due"]
    assert order_sign.shown == () and written == []
    patient_view = evaluate(chart, NOW, HookKind.PATIENT_VIEW, rules=rules)
    assert [f.rule_id for f in patient_view.shown] == ["b12-screening-due"] and written == [
        "b12-screening-due"
    ]
    assert (
        patient_view.shown[0].detail == evaluate(chart, NOW, HookKind.PATIENT_VIEW).shown[0].detail
    )


def test_the_text_of_a_superseded_finding_is_never_written():
    written = []
    rules = _rules_with_text("b12-deficiency-untreated", _recording(written))
    result = evaluate(facts(b12(118), folic_acid_draft()), NOW, HookKind.PATIENT_VIEW, rules=rules)
    assert [f.rule_id for f in result.shown][0] == "folate-before-b12"
    assert "b12-deficiency-untreated" not in [f.rule_id for f in result.shown]
    assert written == []


def test_a_rule_whose_text_fails_is_a_failed_rule_and_what_it_superseded_comes_back(caplog):
    def write(finding):
        raise OverflowError("date value out of range")

    rules = _rules_with_text("folate-before-b12", write)
    with caplog.at_level(logging.ERROR):
        result = evaluate(
            facts(b12(118), folic_acid_draft()), NOW, HookKind.ORDER_SIGN, rules=rules
        )
    assert result.failed_rules == ("folate-before-b12",)
    # Without the folate card, the untreated deficiency it superseded is a card again, as
    # when the rule fails outright.
    assert [f.rule_id for f in result.shown] == ["b12-deficiency-untreated"]
    assert "folate-before-b12" not in [f.rule_id for f in result.findings]
    (record,) = [r for r in caplog.records if r.getMessage() == "rule failed"]
    assert record.rule == "folate-before-b12" and record.error == "OverflowError"
    assert "date value" not in caplog.text


def test_wording_is_written_once_and_compared_by_its_text():
    calls = []

    def write():
        calls.append(1)
        return "summary", "detail"

    wording = Wording(write)
    assert repr(wording) == "Wording(unwritten)"
    assert wording == Wording.of("summary", "detail") and calls == [1]
    assert (wording.summary, wording.detail) == ("summary", "detail") and calls == [1]
    assert hash(wording) == hash(Wording.of("summary", "detail"))
    assert wording != Wording.of("summary", "other")
