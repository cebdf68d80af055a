"""The rule contract: what every clinical rule declares, checked when the registry is built.

A rule is data plus one function. The declarations are what governance reads (``cds-service
rules``, the home page, docs/rulebook.md) and what the engine holds each finding to:

- ``indicators``: the urgencies its cards can have. A finding with any other urgency is a
  rule error (the engine drops it and logs the rule id).
- ``supersedes``: every rule id its findings may silence; ``always_supersedes`` is the part
  that every finding silences. A finding that silences anything else is a rule error.
- ``settings``: the site-policy keys (``windows.lookback_months``, ``formulary``) its answer
  depends on. Each must name a field of ``Policy``; a test evaluates the rules over the
  scenario corpus and checks these are exactly the keys read.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .findings import Finding
from .policy import Policy
from .sources import Source
from .vocabulary import Indicator

if TYPE_CHECKING:  # the picture module imports nothing of this one; typing only
    from .picture import ClinicalPicture


class RuleError(ValueError):
    """A rule's declarations contradict each other or the registry; the message names the rule."""


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    #: One line for the catalogue: the first line of the rule module's docstring.
    summary: str
    sources: tuple[Source, ...]
    indicators: tuple[Indicator, ...]
    settings: tuple[str, ...]
    evaluate: Callable[[ClinicalPicture], Finding | None]
    supersedes: frozenset[str] = frozenset()
    always_supersedes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.indicators:
            raise RuleError(f"rule {self.id!r}: declares no indicator")
        if len(set(self.indicators)) != len(self.indicators):
            raise RuleError(f"rule {self.id!r}: an indicator is declared twice")
        if not self.always_supersedes <= self.supersedes:
            extra = sorted(self.always_supersedes - self.supersedes)
            raise RuleError(f"rule {self.id!r}: always supersedes {extra} but does not declare it")
        if self.id in self.supersedes:
            raise RuleError(f"rule {self.id!r}: supersedes itself")
        for key in self.settings:
            if not is_policy_key(key):
                raise RuleError(f"rule {self.id!r}: {key!r} is not a site-policy key")

    def breach(self, finding: Finding) -> str | None:
        """What in ``finding`` this rule did not declare, or ``None`` when it keeps the
        contract. Names rule ids and indicator codes only (never card text)."""
        if finding.rule_id != self.id:
            return f"finding carries rule id {finding.rule_id!r}"
        if finding.indicator not in self.indicators:
            return f"undeclared indicator {finding.indicator.code!r}"
        if not finding.supersedes <= self.supersedes:
            return f"undeclared supersession {sorted(finding.supersedes - self.supersedes)}"
        if not self.always_supersedes <= finding.supersedes:
            return f"missing supersession {sorted(self.always_supersedes - finding.supersedes)}"
        return None


def summary_of(docstring: str | None) -> str:
    """The first line of a rule module's docstring (the catalogue's one-line summary)."""
    lines = (docstring or "").strip().splitlines()
    if not lines:
        raise RuleError("a rule module needs a docstring: its first line is the summary")
    return lines[0]


def is_policy_key(key: str) -> bool:
    """Does ``key`` ("section" or "section.name") name a field of ``Policy``?"""
    section, _, name = key.partition(".")
    sections = typing.get_type_hints(Policy)
    if section not in sections:
        return False
    if not name:
        return True
    kind = sections[section]
    if not dataclasses.is_dataclass(kind):
        return False
    return name in {f.name for f in dataclasses.fields(kind)}


def registry(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """The rules in tie-break order, after checking that ids are unique and that every
    supersession names a rule of the registry."""
    ordered = tuple(rules)
    seen: set[str] = set()
    for rule in ordered:
        if rule.id in seen:
            raise RuleError(f"rule {rule.id!r} is registered twice")
        seen.add(rule.id)
    for rule in ordered:
        unknown = sorted(rule.supersedes - seen)
        if unknown:
            raise RuleError(f"rule {rule.id!r}: supersedes {unknown}, which name no rule")
    return ordered
