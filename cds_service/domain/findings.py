"""What a rule concludes, before it becomes a CDS Hooks card.

A Finding is protocol-free: the ``cdshooks`` layer turns it into a card and the ``fhir`` layer
turns its actions into FHIR resources. Rules never build JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .sources import Source
from .vocabulary import DrugClass, Indicator, Route


class SelectionBehavior(Enum):
    AT_MOST_ONE = "at-most-one"
    ANY = "any"


@dataclass(frozen=True)
class DosePhase:
    """One phase of a regimen: ``dose_ug`` every ``every`` ``unit`` (FHIR Timing)."""

    text: str
    dose_ug: float
    frequency: int = 1
    every: float = 1
    #: Upper end of a ranged interval ("every 2-3 months"), FHIR ``periodMax``.
    every_max: float | None = None
    unit: str = "d"  # UCUM: d, wk, mo
    #: Administrations in this phase, or ``None`` for "until review" / lifelong.
    count: int | None = None
    #: Phase length (``boundsDuration``) in ``duration_unit`` when fixed.
    duration: float | None = None
    duration_unit: str | None = None


@dataclass(frozen=True)
class Regimen:
    """A B12 treatment plan a suggestion can order."""

    key: str
    label: str
    drug: DrugClass
    rxnorm: tuple[str, str]  # (code, display): RxNorm, or the site's code in ``system``
    route: Route
    phases: tuple[DosePhase, ...]
    text: str
    #: The code system of ``rxnorm`` when a site formulary maps the product (else RxNorm).
    system: str | None = None


@dataclass(frozen=True)
class OrderMedication:
    regimen: Regimen
    description: str


@dataclass(frozen=True)
class OrderLab:
    loinc: str
    display: str
    description: str
    note: str | None = None
    #: The code system of ``loinc`` when a site formulary maps the test (else LOINC).
    system: str | None = None


@dataclass(frozen=True)
class RemoveDraft:
    """Delete one of the draft orders (``resourceId`` "MedicationRequest/x")."""

    resource_id: str
    description: str


Action = OrderMedication | OrderLab | RemoveDraft


@dataclass(frozen=True)
class Suggestion:
    label: str
    actions: tuple[Action, ...]
    is_recommended: bool = False


@dataclass(frozen=True)
class OverrideReason:
    code: str
    display: str


@dataclass(frozen=True)
class Link:
    label: str
    url: str


class Wording:
    """A finding's summary and detail, written when they are first read.

    Most of what a rule costs is its text (numbers formatted, results described, paragraphs
    joined), and a finding that a supersession or the hook's budget drops is never read: its
    text is never written. A rule passes ``Wording(lambda: (summary, detail))``; the engine
    writes the text of every finding it shows, where a rule whose text fails is handled like a
    rule that failed (``engine._written``). The function runs at most once; it must only read
    the picture (which never changes) and the rule's own values.
    """

    __slots__ = ("_write", "_text")

    def __init__(self, write: Callable[[], tuple[str, str]]) -> None:
        self._write: Callable[[], tuple[str, str]] | None = write
        self._text: tuple[str, str] = ("", "")

    @classmethod
    def of(cls, summary: str, detail: str) -> Wording:
        """Text already written."""
        wording = cls.__new__(cls)
        wording._write = None
        wording._text = (summary, detail)
        return wording

    def text(self) -> tuple[str, str]:
        """(summary, detail), written now if they were not yet; raises what the rule's
        function raises (and again at the next read)."""
        if self._write is not None:
            self._text = self._write()
            self._write = None
        return self._text

    @property
    def summary(self) -> str:
        return self.text()[0]

    @property
    def detail(self) -> str:
        return self.text()[1]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Wording) and self.text() == other.text()

    def __hash__(self) -> int:
        return hash(self.text())

    def __repr__(self) -> str:
        return "Wording(unwritten)" if self._write is not None else f"Wording.of{self._text!r}"


@dataclass(frozen=True)
class Finding:
    rule_id: str
    indicator: Indicator
    #: The card's summary and detail (``summary`` and ``detail`` read them).
    wording: Wording
    source: Source
    suggestions: tuple[Suggestion, ...] = ()
    selection_behavior: SelectionBehavior | None = None
    override_reasons: tuple[OverrideReason, ...] = ()
    links: tuple[Link, ...] = ()
    #: Draft-order resource ids this finding is about (the order-sign budget reads this).
    concerns: frozenset[str] = frozenset()
    #: Rule ids this finding silences ("never two cards for one problem").
    supersedes: frozenset[str] = frozenset()

    @property
    def summary(self) -> str:
        return self.wording.summary

    @property
    def detail(self) -> str:
        return self.wording.detail


#: rule book §2/4: summaries are under 140 characters.
SUMMARY_MAX = 139


def shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    """Trim at a word boundary with an ellipsis; used so that no summary exceeds the limit."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:.")
    return cut + "\u2026"
