"""What a rule concludes, before it becomes a CDS Hooks card.

A Finding is protocol-free: the ``cdshooks`` layer turns it into a card and the ``fhir`` layer
turns its actions into FHIR resources. Rules never build JSON.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Finding:
    rule_id: str
    indicator: Indicator
    summary: str
    detail: str
    source: Source
    suggestions: tuple[Suggestion, ...] = ()
    selection_behavior: SelectionBehavior | None = None
    override_reasons: tuple[OverrideReason, ...] = ()
    links: tuple[Link, ...] = ()
    #: Draft-order resource ids this finding is about (the order-sign budget reads this).
    concerns: frozenset[str] = frozenset()
    #: Rule ids this finding silences ("never two cards for one problem").
    supersedes: frozenset[str] = frozenset()


#: rule book §2/4: summaries are under 140 characters.
SUMMARY_MAX = 139


def shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    """Trim at a word boundary with an ellipsis; used so that no summary exceeds the limit."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:.")
    return cut + "\u2026"
