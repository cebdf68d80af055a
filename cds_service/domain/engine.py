"""Runs every rule over one clinical picture and applies the card budget (RULES.md section 4).

Site policy sets each rule's mode: ``off`` rules are not evaluated; ``silent`` rules are
evaluated, but their findings neither reach the cards nor supersede a visible finding (the
visible cards are exactly those of a policy with the silent rules off). What a silent rule
would have shown, had it been active, is returned apart (``Evaluation.silent``) for the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from types import ModuleType

from .facts import Facts
from .findings import Finding
from .picture import ClinicalPicture
from .policy import DEFAULT_POLICY, Policy, RuleMode
from .rules import ALL_RULES
from .vocabulary import Indicator

log = logging.getLogger(__name__)


class HookKind(Enum):
    ORDER_SIGN = "order-sign"
    ORDER_SELECT = "order-select"
    PATIENT_VIEW = "patient-view"


@dataclass(frozen=True)
class Evaluation:
    findings: tuple[Finding, ...]  # every finding, after suppression, most urgent first
    shown: tuple[Finding, ...]  # what the hook's budget lets through
    failed_rules: tuple[str, ...] = ()
    #: Silent rules' findings that the budget would have shown were the rules active: recorded
    #: in the ledger as silent, never returned.
    silent: tuple[Finding, ...] = ()


def run_rules(
    picture: ClinicalPicture, rules: Sequence[ModuleType] = ALL_RULES
) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """Every finding, superseded ones removed, critical first (then rule order)."""
    fired, failed = _fire(picture, rules)
    return _ranked(fired), failed


def _fire(
    picture: ClinicalPicture, rules: Sequence[ModuleType]
) -> tuple[list[tuple[int, Finding]], tuple[str, ...]]:
    fired: list[tuple[int, Finding]] = []
    failed: list[str] = []
    for order, rule in enumerate(rules):
        try:
            finding = rule.evaluate(picture)
        except Exception as exc:  # one broken rule must not silence the others
            # Type only: an exception message could quote patient data.
            log.error("rule failed", extra={"rule": rule.ID, "error": type(exc).__name__})
            failed.append(rule.ID)
            continue
        if finding is not None:
            fired.append((order, finding))
    return fired, tuple(failed)


def _ranked(fired: Sequence[tuple[int, Finding]]) -> tuple[Finding, ...]:
    superseded = {rule_id for _, f in fired for rule_id in f.supersedes}
    kept = [(o, f) for o, f in fired if f.rule_id not in superseded]
    kept.sort(key=lambda item: (-item[1].indicator, item[0]))
    return tuple(f for _, f in kept)


def within_budget(finding: Finding, hook: HookKind, focus: frozenset[str]) -> bool:
    """order-sign / order-select: only what concerns the orders in focus, or warning and above.

    patient-view shows everything. ``focus`` is the draft orders (order-sign) or the selected
    ones (order-select).
    """
    if hook is HookKind.PATIENT_VIEW:
        return True
    return finding.indicator >= Indicator.WARNING or bool(finding.concerns & focus)


def evaluate(
    facts: Facts,
    now: datetime,
    hook: HookKind,
    policy: Policy = DEFAULT_POLICY,
    rules: Sequence[ModuleType] = ALL_RULES,
) -> Evaluation:
    picture = ClinicalPicture(facts, now, policy)
    modes = {rule.ID: policy.mode_of(rule.ID) for rule in rules}
    fired, failed = _fire(picture, [r for r in rules if modes[r.ID] is not RuleMode.OFF])
    if hook is HookKind.ORDER_SELECT and facts.selections:
        focus = facts.selections
    else:
        focus = facts.draft_ids
    silent_ids = {rid for rid, mode in modes.items() if mode is RuleMode.SILENT}
    visible = [(o, f) for o, f in fired if f.rule_id not in silent_ids]
    findings = _ranked(visible)
    shown = tuple(f for f in findings if within_budget(f, hook, focus))
    silent: tuple[Finding, ...] = ()
    if len(visible) < len(fired):
        # As if the silent rules were active: what of theirs would have been shown.
        silent = tuple(
            f for f in _ranked(fired) if f.rule_id in silent_ids and within_budget(f, hook, focus)
        )
    return Evaluation(findings, shown, failed, silent)
