"""The catalogue (``cds-service rules``, the home page): each rule's declared indicators are
the urgencies its cards really have (the engine refuses any other: tests/test_rule_contract.py)."""

from __future__ import annotations

import json

from cds_service.domain.catalogue import catalogue
from cds_service.domain.policy import Policy
from cds_service.domain.rules import ALL_RULES
from tests.conftest import FIXTURES


def test_every_scenario_card_has_an_indicator_its_rule_declares():
    declared = {rule.id: {i.code for i in rule.indicators} for rule in ALL_RULES}
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
