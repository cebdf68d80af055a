"""The rule contract: every rule is a declared ``Rule`` in one registry, and the declarations
are held to what the rule does.

- the registry refuses duplicate ids and supersessions that name no rule; a rule refuses
  settings that are not site-policy keys (at import, so a mistake never reaches a patient);
- the engine treats a finding outside its rule's declarations (an undeclared indicator or
  supersession) as a failed rule: logged by rule id, isolated like a crash;
- the settings a rule declares are exactly the site-policy keys it reads, over the scenario
  corpus and a few charts that reach the branches the corpus does not;
- rule ``evaluate`` functions decide and delegate: each is at most 40 lines; a rule's
  docstring says When / Then / Not when briefly, naming thresholds by their policy key.
"""

from __future__ import annotations

import inspect
import logging
import re
import sys
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from cds_service.domain.engine import HookKind, evaluate, run_rules
from cds_service.domain.facts import Facts
from cds_service.domain.picture import ClinicalPicture
from cds_service.domain.policy import DEFAULT_POLICY, Policy
from cds_service.domain.rule import Rule, RuleError, is_policy_key, registry
from cds_service.domain.rules import ALL_RULES
from cds_service.domain.vocabulary import Indicator
from cds_service.fhir.extract import extract_facts
from tests.builders import (
    NOW,
    Analyte,
    ConditionKind,
    DrugClass,
    Route,
    active_b12,
    b12,
    condition,
    draft,
    facts,
    folic_acid_draft,
    lab,
    mma,
    picture,
)
from tests.test_scenarios import SLUGS, evaluation_time, request_resources, scenario

BY_ID = {rule.id: rule for rule in ALL_RULES}


def _rule(**changes: Any) -> Rule:
    return replace(BY_ID["b12-indeterminate"], **changes)


# --- the registry ----------------------------------------------------------------------------
def test_the_registry_keeps_the_tie_break_order():
    assert [r.id for r in ALL_RULES][:3] == [
        "folate-before-b12",
        "b12-deficiency-untreated",
        "nitrous-oxide-b12",
    ]
    assert ALL_RULES[-1].id == "lab-unit-unrecognised"


def test_a_rule_registered_twice_is_refused():
    with pytest.raises(RuleError, match="'b12-indeterminate' is registered twice"):
        registry((*ALL_RULES, _rule()))


def test_a_supersession_naming_no_rule_is_refused():
    typo = _rule(supersedes=frozenset({"b12-screening-dew"}))
    with pytest.raises(RuleError, match=r"supersedes \['b12-screening-dew'\], which name no rule"):
        registry((*[r for r in ALL_RULES if r.id != typo.id], typo))


@pytest.mark.parametrize(
    "key", ["windows.lookback_month", "threshold.egfr_impaired_below", "formulary.cobalamin", ""]
)
def test_a_setting_that_is_not_a_policy_key_is_refused(key):
    assert not is_policy_key(key)
    with pytest.raises(RuleError, match="is not a site-policy key"):
        _rule(settings=("windows.lookback_months", key))


@pytest.mark.parametrize(
    "key", ["windows.lookback_months", "thresholds.egfr_impaired_below", "formulary"]
)
def test_policy_keys_are_recognised(key):
    assert is_policy_key(key)


def test_a_rule_without_indicators_or_with_inconsistent_supersession_is_refused():
    with pytest.raises(RuleError, match="declares no indicator"):
        _rule(indicators=())
    with pytest.raises(RuleError, match="declared twice"):
        _rule(indicators=(Indicator.INFO, Indicator.INFO))
    with pytest.raises(RuleError, match="always supersedes"):
        _rule(always_supersedes=frozenset({"b12-screening-due"}))


def test_every_rule_declares_what_the_catalogue_shows():
    for rule in ALL_RULES:
        assert rule.title and rule.summary and rule.sources, rule.id
        assert rule.summary.startswith(f"``{rule.id}``"), rule.id


# --- the engine holds findings to the declarations -------------------------------------------
def _failing_contract(caplog, rule: Rule) -> None:
    rules = tuple(rule if r.id == rule.id else r for r in ALL_RULES)
    items = (b12(250), condition(ConditionKind.PERIPHERAL_NEUROPATHY))
    with caplog.at_level(logging.ERROR):
        result = evaluate(facts(*items), NOW, HookKind.PATIENT_VIEW, rules=rules)
    assert result.failed_rules == (rule.id,)
    assert rule.id not in [f.rule_id for f in result.findings]
    (record,) = [r for r in caplog.records if r.getMessage() == "rule failed"]
    assert record.rule == rule.id and record.error == "RuleContract"
    assert "250" not in record.breach  # ids and codes, never values


def test_a_finding_with_an_undeclared_indicator_is_a_rule_failure(caplog):
    rule = BY_ID["b12-indeterminate"]
    assert rule.evaluate(picture(b12(250), condition(ConditionKind.PERIPHERAL_NEUROPATHY)))
    _failing_contract(caplog, replace(rule, indicators=(Indicator.CRITICAL,)))
    assert "undeclared indicator" in caplog.records[-1].breach


def test_a_finding_with_an_undeclared_supersession_is_a_rule_failure(caplog):
    rule = BY_ID["b12-indeterminate"]

    def greedy(p: ClinicalPicture):
        finding = rule.evaluate(p)
        return finding and replace(finding, supersedes=frozenset({"b12-screening-due"}))

    _failing_contract(caplog, replace(rule, evaluate=greedy))
    assert "undeclared supersession" in caplog.records[-1].breach


def test_the_other_rules_still_answer_when_one_breaks_its_contract():
    rule = replace(BY_ID["b12-indeterminate"], indicators=(Indicator.CRITICAL,))
    rules = tuple(rule if r.id == rule.id else r for r in ALL_RULES)
    items = (b12(250), folic_acid_draft(), condition(ConditionKind.PERIPHERAL_NEUROPATHY))
    findings, failed = run_rules(picture(*items), rules)
    assert failed == ("b12-indeterminate",)
    assert "folate-before-b12" in [f.rule_id for f in findings]


# --- settings: declared == read --------------------------------------------------------------
class _Recorder:
    """A Policy stand-in that records each site-policy key read through it."""

    def __init__(self, target: Any, prefix: str, reads: set[str]) -> None:
        self._target, self._prefix, self._reads = target, prefix, reads

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not self._prefix and name in ("thresholds", "windows"):
            return _Recorder(value, name, self._reads)
        self._reads.add(f"{self._prefix}.{name}" if self._prefix else name)
        return value


def _scenario_charts() -> list[tuple[Facts, datetime]]:
    charts = []
    for slug in SLUGS:
        request, meta, _ = scenario(slug)
        context = request["context"]
        resources = [
            r
            for where, r in request_resources(request)
            if where.startswith("prefetch") and r.get("resourceType") != "Bundle"
        ]
        drafts = [e["resource"] for e in (context.get("draftOrders") or {}).get("entry") or []]
        extraction = extract_facts(
            resources,
            drafts,
            patient_id=context["patientId"],
            selections=context.get("selections") or (),
        )
        charts.append((extraction.facts, evaluation_time(meta)))
    return charts


def _branch_charts() -> list[tuple[Facts, datetime]]:
    """Charts for branches no scenario reaches: results in pmol/L, a raised MMA with impaired
    renal function, red-cell folate in both units, an oral cyanocobalamin draft with
    neuropathy, pregnancy with a low molar B12 and neuropathy."""
    neuro = condition(ConditionKind.PERIPHERAL_NEUROPATHY)
    egfr = lab(Analyte.EGFR, 40)
    pregnant = condition(ConditionKind.PREGNANCY)
    charts = [
        (b12(120, "pmol/L"), folic_acid_draft()),
        (b12(150), lab(Analyte.RBC_FOLATE, 100, "ng/mL"), folic_acid_draft()),
        (b12(150), lab(Analyte.RBC_FOLATE, 200, "nmol/L"), folic_acid_draft()),
        (active_b12(20), folic_acid_draft()),
        (b12(250), mma(500), egfr, folic_acid_draft()),
        (b12(150), mma(500), egfr),
        (b12(250), mma(500), egfr, neuro),
        (b12(150, "pmol/L"), pregnant, neuro),
        (b12(150, "pmol/L"), pregnant),
        (
            draft(
                DrugClass.CYANOCOBALAMIN,
                name="cyanocobalamin 1000 MCG Oral Tablet",
                route=Route.ORAL,
                dose_ug=1000,
                interval_days=1,
            ),
            egfr,
            neuro,
        ),
    ]
    return [(facts(*items), NOW) for items in charts]


@pytest.fixture(scope="module")
def settings_read() -> dict[str, set[str]]:
    reads: dict[str, set[str]] = {rule.id: set() for rule in ALL_RULES}
    for chart, now in _scenario_charts() + _branch_charts():
        for rule in ALL_RULES:
            # A fresh picture per rule: what the picture derives for a rule is read for it.
            recorder: Any = _Recorder(DEFAULT_POLICY, "", reads[rule.id])
            finding = rule.evaluate(ClinicalPicture(chart, now, recorder))
            if finding is not None:
                finding.wording.text()  # written when a card needs it: settings read there too
    return reads


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.id)
def test_a_rule_declares_exactly_the_settings_it_reads(rule, settings_read):
    assert sorted(settings_read[rule.id]) == sorted(rule.settings)


def test_the_recorder_sees_a_site_policy_read():
    reads: set[str] = set()
    recorder: Any = _Recorder(Policy(), "", reads)
    assert recorder.windows.lookback_months == 12 and recorder.formulary
    assert reads == {"windows.lookback_months", "formulary"}


# --- evaluate decides and delegates ----------------------------------------------------------
@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.id)
def test_evaluate_is_at_most_forty_lines(rule):
    lines, _ = inspect.getsourcelines(rule.evaluate)
    assert len(lines) <= 40, f"{rule.id}: evaluate is {len(lines)} lines"


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.id)
def test_a_rule_docstring_says_when_then_and_not_when_briefly(rule):
    doc = sys.modules[rule.evaluate.__module__].__doc__ or ""
    assert doc.splitlines()[0] == rule.summary
    assert "\nWhen: " in doc and "\nThen: " in doc and "\nNot when: " in doc, rule.id
    assert len(doc.strip().splitlines()) <= 30, rule.id
    # Cut-offs are named by their policy key, not quoted as numbers a site can change.
    assert not re.search(r"\d ?(ng/L|pg/mL|pmol/L|nmol/L|fL|mmol/L|g/dL|micrograms)", doc), rule.id
