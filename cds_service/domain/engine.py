"""Runs every rule over one clinical picture and applies the card budget (rule book §4).

Site policy sets each rule's mode: ``off`` rules are not evaluated; ``silent`` rules are
evaluated, but their findings neither reach the cards nor supersede a visible finding (the
visible cards are exactly those of a policy with the silent rules off). What a silent rule
would have shown, had it been active, is returned apart (``Evaluation.silent``) for the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from .facts import Facts
from .findings import Finding, Wording
from .formulary import localise
from .picture import ClinicalPicture
from .policy import DEFAULT_POLICY, Policy, RuleMode
from .rule import Rule
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
    picture: ClinicalPicture, rules: Sequence[Rule] | None = None
) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """Every finding, superseded ones removed, critical first (then rule order)."""
    fired, failed = _fire(picture, ALL_RULES if rules is None else rules)
    findings, _ = _cards(fired, picture, picture.policy, lambda f: True, failed)
    return findings, tuple(failed)


def _cards(
    fired: Sequence[tuple[int, Finding]],
    picture: ClinicalPicture,
    policy: Policy,
    wanted: Callable[[Finding], bool],
    failed: list[str],
) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """The ranked findings (``_ranked``, ``_finished``) and those of them ``wanted``, with
    their text written. A rule whose text fails is handled like a rule that failed: it joins
    ``failed`` and the ranking is done again without it, so that what its finding superseded
    comes back, as when a rule fails outright."""
    while True:
        findings = _finished(_ranked(fired), picture, policy)
        chosen, broken = _written(tuple(f for f in findings if wanted(f)), failed)
        if not broken:
            return findings, chosen
        fired = [(o, f) for o, f in fired if f.rule_id not in broken]


def _finished(
    findings: tuple[Finding, ...], picture: ClinicalPicture, policy: Policy
) -> tuple[Finding, ...]:
    """What every card gets after the rules: the paediatric caveat under 16, and each
    suggested order as the site's orderable (the formulary section of the policy)."""
    if picture.age is not None and picture.age < PAEDIATRIC_BELOW_YEARS:
        findings = tuple(with_paediatric_caveat(f) for f in findings)
    return tuple(localise(f, policy.orderables) for f in findings)


def _fire(
    picture: ClinicalPicture, rules: Sequence[Rule]
) -> tuple[list[tuple[int, Finding]], list[str]]:
    """The findings of ``rules`` with each rule's place, and the rules that failed (a list
    the text writing adds to: ``_written``)."""
    fired: list[tuple[int, Finding]] = []
    failed: list[str] = []
    for order, rule in enumerate(rules):
        try:
            finding = rule.evaluate(picture)
        except Exception as exc:  # one broken rule must not silence the others
            # Type only: an exception message could quote patient data.
            log.error("rule failed", extra={"rule": rule.id, "error": type(exc).__name__})
            failed.append(rule.id)
            continue
        if finding is None:
            continue
        breach = rule.breach(finding)
        if breach is not None:
            # A finding outside the rule's declarations would mislead the catalogue and the
            # budget: handled like a crash. The breach names ids and codes, never card text.
            log.error(
                "rule failed", extra={"rule": rule.id, "error": "RuleContract", "breach": breach}
            )
            failed.append(rule.id)
            continue
        fired.append((order, finding))
    return fired, failed


def _ranked(fired: Sequence[tuple[int, Finding]]) -> tuple[Finding, ...]:
    superseded = {rule_id for _, f in fired for rule_id in f.supersedes}
    kept = [(o, f) for o, f in fired if f.rule_id not in superseded]
    kept.sort(key=lambda item: (-item[1].indicator, item[0]))
    return tuple(f for _, f in kept)


#: NICE NG239 covers over-16s: the rules still apply to a child (deficiency is no less
#: dangerous), but every card says that ranges and doses differ.
PAEDIATRIC_BELOW_YEARS = 16
PAEDIATRIC_CAVEAT = (
    "NICE NG239 covers over-16s; paediatric reference ranges and doses differ: confirm with "
    "paediatrics."
)


def with_paediatric_caveat(finding: Finding) -> Finding:
    """The caveat as its own paragraph, before the closing "Source:" line when there is one
    (written when the finding's text is)."""
    return replace(finding, wording=Wording(lambda: (finding.summary, _caveated(finding.detail))))


def _caveated(detail: str) -> str:
    lines = detail.rstrip().split("\n")
    if lines and lines[-1].startswith("Source:"):
        lines[-1:-1] = [PAEDIATRIC_CAVEAT, ""]
    else:
        lines += ["", PAEDIATRIC_CAVEAT]
    return "\n".join(lines)


def _written(
    findings: tuple[Finding, ...], failed: list[str]
) -> tuple[tuple[Finding, ...], frozenset[str]]:
    """The findings whose text could be written, and the rules whose text failed: those are
    handled like rules that failed (logged, listed in ``failed``, no card). Text is written
    only for the findings the engine returns as cards or silent cards (``Wording``)."""
    kept: list[Finding] = []
    broken: set[str] = set()
    for finding in findings:
        try:
            finding.wording.text()
        except Exception as exc:  # as in _fire: type only, a message could quote patient data
            log.error("rule failed", extra={"rule": finding.rule_id, "error": type(exc).__name__})
            failed.append(finding.rule_id)
            broken.add(finding.rule_id)
            continue
        kept.append(finding)
    return tuple(kept), frozenset(broken)


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
    rules: Sequence[Rule] | None = None,
) -> Evaluation:
    """The findings for one hook call: ``rules`` defaults to the registry."""
    rules = ALL_RULES if rules is None else rules
    picture = ClinicalPicture(facts, now, policy)
    if policy.rule_modes:
        modes = {rule.id: policy.mode_of(rule.id) for rule in rules}
        rules = [r for r in rules if modes[r.id] is not RuleMode.OFF]
    else:  # every rule active: the common case, nothing to look up
        modes = {}
    fired, failed = _fire(picture, rules)
    if hook is HookKind.ORDER_SELECT and facts.selections:
        focus = facts.selections
    else:
        focus = facts.draft_ids
    silent_ids = {rid for rid, mode in modes.items() if mode is RuleMode.SILENT}
    visible = [(o, f) for o, f in fired if f.rule_id not in silent_ids]
    findings, shown = _cards(
        visible, picture, policy, lambda f: within_budget(f, hook, focus), failed
    )
    silent: tuple[Finding, ...] = ()
    if len(visible) < len(fired):
        # As if the silent rules were active: what of theirs would have been shown (their text
        # written too, so that a silent rule whose text fails says so before it is switched on).
        _, silent = _cards(
            [(o, f) for o, f in fired if f.rule_id not in failed],
            picture,
            policy,
            lambda f: f.rule_id in silent_ids and within_budget(f, hook, focus),
            failed,
        )
    return Evaluation(findings, shown, tuple(failed), silent)
