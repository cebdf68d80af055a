"""The engine's safety controls (clinical rules, section 4): one failing rule never silences
the others, and the order hooks show only what concerns the orders being signed or is urgent
(alert fatigue), while patient-view shows every finding, most urgent first."""

from __future__ import annotations

import logging
from dataclasses import replace

from cds_service.domain.engine import HookKind, evaluate
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
