"""Typed reads of the FHIR elements the rules use, straight from R4 JSON.

The hot path does not instantiate fhir.resources models for every prefetched resource: a
pydantic model of an Observation costs far more CPU than reading the few elements a rule uses,
and a typical order-sign request carries dozens of them (docs/benchmarks.md). Instead the
adapter reads only the elements the rules use, checking each one's JSON type and FHIR
primitive format; a resource whose *used* elements are malformed raises ``Malformed`` and is
skipped (its id logged). Full R4 validation with fhir.resources.R4B stays available
(``strict`` extraction) and is what CI applies to every fixture and every emitted resource.
"""

from __future__ import annotations

import math
from typing import Any


class Malformed(ValueError):
    """An element the rules use has the wrong JSON type or format; ``path`` names it."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class within:
    """Prefix the path of a ``Malformed`` raised inside, so that the log names the element
    ("valueQuantity.value", not a bare "value" that could be any of several).

    A class rather than ``@contextmanager``: it runs for every element read on the hot path,
    and a generator-based context manager costs several times more.
    """

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, traceback: Any) -> None:
        if isinstance(exc, Malformed):
            raise Malformed(f"{self.prefix}.{exc.path}") from None


def obj(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Malformed(key)
    return value


def array(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """A list of objects; a single object where an array belongs is accepted (real clients
    send ``category`` that way, docs/protocol.md)."""
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise Malformed(key)
    for item in value:  # a loop: ``all()`` over a generator costs more for these short lists
        if not isinstance(item, dict):
            raise Malformed(key)
    return value


def string(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed(key)
    return value


def number(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Malformed(key)
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(key)
    try:
        return float(value)
    except OverflowError:  # an integer beyond a double (a FHIR server's answer can hold one)
        raise Malformed(key) from None


#: The largest amount the rules read (a result in its reported unit, a dose, a period): far
#: beyond any clinical value, and small enough that no conversion or sum overflows a double.
MAX_AMOUNT = 1_000_000.0
#: The largest count the rules read (administrations, a timing's frequency).
MAX_COUNT = 100_000


def amount(data: dict[str, Any], key: str, maximum: float = MAX_AMOUNT) -> float | None:
    """A number the rules compute with: finite, not negative and at most ``maximum``; anything
    else (-1, 1e308) is ``Malformed``, so its resource is skipped, not read (a negative B12
    would read as deficient, a huge one overflows a unit conversion)."""
    value = number(data, key)
    if value is not None and not 0 <= value <= maximum:
        raise Malformed(key)
    return value


def positive_int(data: dict[str, Any], key: str, maximum: int = MAX_COUNT) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise Malformed(key)
    return value


def codings(concept: Any) -> list[tuple[str | None, str | None, str | None]]:
    """(system, code, display) of a CodeableConcept; non-object codings are malformed."""
    if concept is None:
        return []
    if not isinstance(concept, dict):
        raise Malformed("CodeableConcept")
    found = []
    for c in array(concept, "coding"):
        system, code, display = c.get("system"), c.get("code"), c.get("display")
        if not (
            (system is None or isinstance(system, str))
            and (code is None or isinstance(code, str))
            and (display is None or isinstance(display, str))
        ):
            string(c, "system"), string(c, "code"), string(c, "display")  # names the element
        found.append((system, code, display))
    return found


def texts(concept: Any) -> list[str]:
    """``text`` then each coding's ``display``."""
    if concept is None:
        return []
    if not isinstance(concept, dict):
        raise Malformed("CodeableConcept")
    text = string(concept, "text")
    names = [text] if text else []
    names.extend(display for _, _, display in codings(concept) if display)
    return names


def coded(concept: Any) -> tuple[list[tuple[str | None, str | None, str | None]], list[str]]:
    """``codings(concept)`` and ``texts(concept)`` in one reading of the codings; a malformed
    coding is named before a malformed ``text``, as reading the codings first does."""
    if concept is None:
        return [], []
    found = codings(concept)
    text = string(concept, "text")
    names = [text] if text else []
    names.extend(display for _, _, display in found if display)
    return found, names


def first_code(concept: Any) -> str | None:
    for _, code, _ in codings(concept):
        if code:
            return code
    return None


def bundle_entries(bundle: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The resources of a Bundle's entries in order, the OperationOutcomes among them apart;
    an entry without a resource object is passed over. (Every prefetched Bundle is read
    here: compiled.)"""
    found: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    entries: Any = bundle.get("entry")
    if not isinstance(entries, list):
        return found, outcomes
    for entry in entries:
        resource: Any = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            if resource.get("resourceType") == "OperationOutcome":
                outcomes.append(resource)
            else:
                found.append(resource)
    return found, outcomes


def bundle_links(bundle: dict[str, Any]) -> dict[str, str]:
    """relation -> url of a Bundle's links ("next", "self"), the last of a relation named
    twice; a link without a string relation and url is passed over."""
    urls: dict[str, str] = {}
    links: Any = bundle.get("link")
    if not isinstance(links, list):
        return urls
    for link in links:
        if isinstance(link, dict):
            relation: Any = link.get("relation")
            url: Any = link.get("url")
            if isinstance(relation, str) and isinstance(url, str):
                urls[relation] = url
    return urls
