"""The scenario corpus (fixtures/scenarios/) as hostile-input tests use it: each request, the
rules it makes fire, and a way to run a (mutated) copy through the service at its fixed time.

Every rule fires in some scenario (tests/test_scenarios.py checks it), so a property that holds
for every scenario holds for every rule.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from cds_service.cdshooks.application import CdsApplication
from hooks import registry
from tests.conftest import FIXTURES, load_json

SCENARIO_DIR = FIXTURES / "scenarios"
SLUGS = tuple(sorted(p.name for p in SCENARIO_DIR.iterdir() if p.is_dir()))


@dataclass(frozen=True)
class Scenario:
    slug: str
    service: str
    now: datetime
    rules: tuple[str, ...]
    request_text: str  # JSON: every test gets a fresh copy

    def request(self) -> dict[str, Any]:
        return json.loads(self.request_text)


@lru_cache(maxsize=None)
def scenario(slug: str) -> Scenario:
    folder = SCENARIO_DIR / slug
    meta = load_json(folder / "scenario.json")
    return Scenario(
        slug,
        meta["service"],
        datetime.fromisoformat(meta["evaluationTime"]),
        tuple(meta["rules"]),
        (folder / "request.json").read_text(encoding="utf-8"),
    )


def scenarios_of(rule_id: str) -> list[str]:
    return [slug for slug in SLUGS if rule_id in scenario(slug).rules]


def invoke(s: Scenario, request: dict[str, Any]) -> dict[str, Any]:
    """The service's answer to ``request`` at the scenario's time (no HTTP, no database)."""
    counter = itertools.count(1)
    core = CdsApplication(
        registry=registry(),
        store=None,
        clock=lambda: s.now,
        new_uuid=lambda: f"00000000-0000-4000-8000-{next(counter):012d}",
    )
    return core.invoke(s.service, request)


def rules_of(response: dict[str, Any]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in response["cards"]]


# --- the resources of a request -------------------------------------------------------------
def resources(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every prefetched resource (Bundle entries too) and every draft order, in place."""
    for value in (request.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            for entry in value.get("entry") or []:
                if isinstance(entry.get("resource"), dict):
                    yield entry["resource"]
        else:
            yield value
    for entry in (request["context"].get("draftOrders") or {}).get("entry") or []:
        if isinstance(entry.get("resource"), dict):
            yield entry["resource"]


def of_type(request: dict[str, Any], *kinds: str) -> list[dict[str, Any]]:
    return [r for r in resources(request) if r.get("resourceType") in kinds]


def add_prefetched(request: dict[str, Any], resource: dict[str, Any]) -> None:
    """Put one more resource in the first prefetched Bundle (or a new prefetch key)."""
    for value in (request.get("prefetch") or {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            value.setdefault("entry", []).append({"resource": resource})
            return
    request.setdefault("prefetch", {})["extra"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": resource}],
    }


MEDICATIONS = ("MedicationStatement", "MedicationRequest", "MedicationOrder")


# --- mutations: request text in every field the extraction reads ------------------------------
def _append(concept: Any, text: str) -> None:
    """Request text added to a CodeableConcept's ``text`` and every ``display`` (the original
    words stay, so the resource still means what it meant)."""
    if not isinstance(concept, dict):
        return
    concept["text"] = f"{concept.get('text', '')} {text}"
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and "display" in coding:
            coding["display"] = f"{coding['display']} {text}"


def medication_name(request: dict[str, Any], text: str) -> None:
    for r in of_type(request, *MEDICATIONS):
        _append(r.get("medicationCodeableConcept"), text)


def medication_reference(request: dict[str, Any], text: str) -> None:
    """The name only in ``medicationReference.display`` (no Medication resource to follow)."""
    for r in of_type(request, *MEDICATIONS):
        concept = r.pop("medicationCodeableConcept", None)
        if isinstance(concept, dict):
            name = concept.get("text") or ""
            r["medicationReference"] = {
                "reference": f"Medication/{text}",
                "display": f"{name} {text}",
            }


def dosage_text(request: dict[str, Any], text: str) -> None:
    for r in of_type(request, *MEDICATIONS):
        for dosage in (r.get("dosage") or []) + (r.get("dosageInstruction") or []):
            if isinstance(dosage, dict):
                dosage["text"] = f"{dosage.get('text', '')} {text}"
                _append(dosage.get("route"), text)


def draft_status(request: dict[str, Any], text: str) -> None:
    for entry in (request["context"].get("draftOrders") or {}).get("entry") or []:
        entry["resource"]["status"] = text


def condition_text(request: dict[str, Any], text: str) -> None:
    for r in of_type(request, "Condition"):
        _append(r.get("code"), text)


def lab_order_text(request: dict[str, Any], text: str) -> None:
    for r in of_type(request, "ServiceRequest"):
        _append(r.get("code"), text)


def observation_display(request: dict[str, Any], text: str) -> None:
    for r in of_type(request, "Observation"):
        _append(r.get("code"), text)


def unit_display(request: dict[str, Any], text: str) -> None:
    """``valueQuantity.unit`` (the human unit) carries the text; the UCUM ``code`` stays."""
    for r in of_type(request, "Observation"):
        quantity = r.get("valueQuantity")
        if isinstance(quantity, dict):
            quantity["unit"] = f"{quantity.get('unit', '')}{text}"


def unit(request: dict[str, Any], text: str) -> None:
    """Both unit spellings are request text: the result's unit is not one the rules read."""
    for r in of_type(request, "Observation"):
        quantity = r.get("valueQuantity")
        if isinstance(quantity, dict):
            quantity["unit"] = quantity["code"] = text


def value_string(request: dict[str, Any], text: str) -> None:
    """Results reported as text (``valueString``; ``valueCodeableConcept.text``)."""
    for r in of_type(request, "Observation"):
        if isinstance(r.get("valueQuantity"), dict):
            del r["valueQuantity"]
            r["valueString"] = text
        _append(r.get("valueCodeableConcept"), text)


def ids(request: dict[str, Any], text: str) -> None:
    """Every resource id is request text (distinct, so no resource is a duplicate of another);
    the selections follow the drafts they name."""
    renamed: dict[str, str] = {}
    for n, r in enumerate(resources(request)):
        if r.get("resourceType") == "Patient" or not isinstance(r.get("id"), str):
            continue
        new = f"{text}{n}"
        renamed[f"{r['resourceType']}/{r['id']}"] = f"{r['resourceType']}/{new}"
        r["id"] = new
    selections = request["context"].get("selections")
    if selections:
        request["context"]["selections"] = [renamed.get(s, s) for s in selections]


#: name -> (mutation, whether the resource keeps its meaning, so the same rules must fire)
MUTATIONS: dict[str, tuple[Callable[[dict[str, Any], str], None], bool]] = {
    "medication-name": (medication_name, True),
    "medication-reference": (medication_reference, False),
    "dosage-text": (dosage_text, False),
    "draft-status": (draft_status, False),
    "condition-text": (condition_text, True),
    "lab-order-text": (lab_order_text, True),
    "observation-display": (observation_display, True),
    "unit-display": (unit_display, True),
    "unit": (unit, False),
    "value-string": (value_string, False),
    "ids": (ids, True),
}


def mutated(slug: str, mutation: str, text: str) -> tuple[Scenario, dict[str, Any]]:
    s = scenario(slug)
    request = s.request()
    MUTATIONS[mutation][0](request, text)
    return s, request


def fresh(request: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(request)
