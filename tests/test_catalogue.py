"""The catalogue (``cds-service rules``, the home page): each rule's declared INDICATORS are
the urgencies its cards can really have."""

from __future__ import annotations

import ast
import inspect
import json

import pytest

from cds_service.domain.catalogue import catalogue
from cds_service.domain.policy import Policy
from cds_service.domain.rules import ALL_RULES
from cds_service.domain.vocabulary import Indicator
from tests.conftest import FIXTURES


def indicators_named_in(rule) -> set[Indicator]:
    """Every ``Indicator.X`` the rule's code mentions outside its INDICATORS declaration."""
    tree = ast.parse(inspect.getsource(rule))
    declared = [
        n
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "INDICATORS"
    ]
    skip = {id(node) for d in declared for node in ast.walk(d)}
    return {
        Indicator[node.attr]
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Indicator"
        and id(node) not in skip
    }


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.ID)
def test_declared_indicators_cover_every_indicator_the_rule_can_set(rule):
    assert rule.INDICATORS, rule.ID
    assert indicators_named_in(rule) <= set(rule.INDICATORS)
    assert len(set(rule.INDICATORS)) == len(rule.INDICATORS)


def test_every_scenario_card_has_an_indicator_its_rule_declares():
    declared = {rule.ID: {i.code for i in rule.INDICATORS} for rule in ALL_RULES}
    seen = 0
    for expected in sorted((FIXTURES / "scenarios").glob("*/expected.json")):
        for card in json.loads(expected.read_text(encoding="utf-8")).get("cards", []):
            rule_id = card["source"]["topic"]["code"]
            assert card["indicator"] in declared[rule_id], (expected.parent.name, rule_id)
            seen += 1
    assert seen > 50


def test_the_catalogue_lists_indicators_most_urgent_first():
    entries = {e["id"]: e for e in catalogue(Policy())}
    assert entries["folate-before-b12"]["indicators"] == ["critical", "warning", "info"]
    assert entries["lab-unit-unrecognised"]["indicators"] == ["warning", "info"]


def test_cds_service_rules_prints_the_indicators(capsys):
    from cds_service import cli

    assert cli.main(["rules"]) == 0
    out = capsys.readouterr().out
    assert "folate-before-b12  Folate ordered or taken while B12 deficiency is untreated\n" in out
    assert "    indicator: critical, warning, info\n" in out
