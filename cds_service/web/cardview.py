"""A CDS Hooks response -> what an EHR shows of each card, for the home page's Try it.

The response comes back from the browser, so nothing in it is trusted: every field is
type-checked, strings are shortened, Markdown goes through ``markdown.render_markdown`` and
URLs through ``markdown.safe_url``. The template escapes everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from .markdown import render_markdown, safe_url

INDICATORS = ("critical", "warning", "info")
#: Caps on what one rendering shows: a hostile body must not make a huge page.
MAX_CARDS = 50
MAX_ITEMS = 20
MAX_TEXT = 2000
MAX_DETAIL = 20000


@dataclass(frozen=True)
class Order:
    """What a ``create`` action would order, as a clinician reads it."""

    resource_type: str
    display: str
    code: str
    dosage: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class Action:
    type: str
    description: str
    order: Order | None
    resource_id: str


@dataclass(frozen=True)
class SuggestionView:
    label: str
    recommended: bool
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class LinkView:
    label: str
    url: str | None
    type: str


@dataclass(frozen=True)
class CardView:
    indicator: str
    summary: str
    detail: Markup
    source_label: str
    source_url: str | None
    rule_id: str
    suggestions: tuple[SuggestionView, ...]
    selection_behavior: str
    links: tuple[LinkView, ...]
    override_reasons: tuple[str, ...]


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value[:MAX_ITEMS]) if isinstance(value, list) else []


#: Code systems a clinician recognises by name.
_SYSTEMS = {
    "http://loinc.org": "LOINC",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://snomed.info/sct": "SNOMED CT",
}


def _concept_code(concept: Any) -> str:
    for coding in _list(_map(concept).get("coding")):
        coding = _map(coding)
        code = _text(coding.get("code"), 100)
        if code:
            system = _text(coding.get("system"), 200)
            return f"{_SYSTEMS.get(system, system)} {code}".strip()
    return ""


def _concept_display(concept: Any) -> str:
    concept = _map(concept)
    for coding in _list(concept.get("coding")):
        display = _text(_map(coding).get("display"))
        if display:
            text = _text(concept.get("text"))
            return text if text and text.lower() != display.lower() else display
    return _text(concept.get("text"))


def _order(resource: Any) -> Order | None:
    resource = _map(resource)
    kind = _text(resource.get("resourceType"), 100)
    if not kind:
        return None
    concept = resource.get("medicationCodeableConcept") or resource.get("code")
    dosage = tuple(
        t
        for t in (_text(_map(d).get("text")) for d in _list(resource.get("dosageInstruction")))
        if t
    )
    notes = [_text(_map(n).get("text")) for n in _list(resource.get("note"))]
    return Order(
        kind,
        _concept_display(concept),
        _concept_code(concept),
        dosage,
        " ".join(n for n in notes if n),
    )


def _action(raw: Any) -> Action:
    raw = _map(raw)
    return Action(
        type=_text(raw.get("type"), 20),
        description=_text(raw.get("description")),
        order=_order(raw.get("resource")),
        resource_id=_text(raw.get("resourceId"), 200),
    )


def _suggestion(raw: Any) -> SuggestionView:
    raw = _map(raw)
    return SuggestionView(
        label=_text(raw.get("label"), 200),
        recommended=raw.get("isRecommended") is True,
        actions=tuple(_action(a) for a in _list(raw.get("actions"))),
    )


def _link(raw: Any) -> LinkView:
    raw = _map(raw)
    return LinkView(
        label=_text(raw.get("label"), 200),
        url=safe_url(raw.get("url")),
        type=_text(raw.get("type"), 20),
    )


def card_view(raw: Any) -> CardView:
    raw = _map(raw)
    indicator = _text(raw.get("indicator"), 20)
    source = _map(raw.get("source"))
    reasons = []
    for reason in _list(raw.get("overrideReasons")):
        reason = _map(reason)
        text = _text(reason.get("display"), 200) or _text(reason.get("code"), 200)
        if text:
            reasons.append(text)
    return CardView(
        indicator=indicator if indicator in INDICATORS else "info",
        summary=_text(raw.get("summary"), 200),
        detail=render_markdown(_text(raw.get("detail"), MAX_DETAIL)),
        source_label=_text(source.get("label"), 200),
        source_url=safe_url(source.get("url")),
        rule_id=_text(_map(source.get("topic")).get("code"), 100),
        suggestions=tuple(_suggestion(s) for s in _list(raw.get("suggestions"))),
        selection_behavior=_text(raw.get("selectionBehavior"), 20),
        links=tuple(_link(li) for li in _list(raw.get("links"))),
        override_reasons=tuple(reasons),
    )


def card_views(response: Any) -> list[CardView]:
    """The cards of a CDS Hooks response body, in the order the service sent them."""
    cards = _map(response).get("cards")
    return [card_view(c) for c in cards[:MAX_CARDS]] if isinstance(cards, list) else []
