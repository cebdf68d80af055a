"""The scenario corpus as domain facts, for tests that run the whole engine over every patient.

Each scenario's request (``tests.scenarios.definitions``) goes through the same extraction as
a live request: prefetch bundles and draft orders become ``Facts``; a prefetch key the request
leaves out is reported as missing data, as the service would after a failed fallback.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cds_service.domain.engine import HookKind
from cds_service.domain.facts import Facts
from cds_service.domain.vocabulary import DataCategory
from cds_service.fhir.extract import extract_facts
from tests.scenarios.definitions import SCENARIOS
from tests.scenarios.kit import HOOKS

#: The prefetch keys of the scenario services and the data each one carries.
_CATEGORIES = {
    "b12Labs": DataCategory.B12_LABS,
    "bloodCounts": DataCategory.BLOOD_COUNTS,
    "renalLabs": DataCategory.RENAL_LABS,
    "medicationStatements": DataCategory.MEDICATIONS,
    "medicationRequests": DataCategory.MEDICATIONS,
    "conditions": DataCategory.CONDITIONS,
}


@dataclass(frozen=True)
class Case:
    slug: str
    facts: Facts
    now: datetime
    hook: HookKind


def _resources(value: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(value, dict):
        return
    if value.get("resourceType") == "Bundle":
        for entry in value.get("entry") or ():
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield entry["resource"]
    else:
        yield value


def scenario_cases() -> list[Case]:
    cases = []
    for scenario in SCENARIOS:
        body = scenario.request()
        context = body.get("context", {})
        prefetch = body.get("prefetch") or {}
        resources = [r for value in prefetch.values() for r in _resources(value)]
        drafts = list(_resources(context.get("draftOrders")))
        # The sandbox scenario sends no prefetch at all: nothing is "missing" there, the
        # service would fetch it. Only a partial prefetch marks the keys it leaves out.
        missing = [c for key, c in _CATEGORIES.items() if prefetch and key not in prefetch]
        facts = extract_facts(
            resources,
            drafts,
            patient_id=context.get("patientId"),
            selections=context.get("selections") or (),
            missing=missing,
        ).facts
        hook = HookKind(HOOKS[scenario.service])
        cases.append(Case(scenario.slug, facts, scenario.evaluation_time, hook))
    return cases
