"""Domain findings -> CDS Hooks cards (PROTOCOL.md "Response"; RULES.md section 4).

``uuid`` on every card and suggestion (from a factory: time and randomness are parameters);
summary under 140 characters; optional fields omitted; ``source.topic`` carries the rule id in
the one rule code system.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from cds_service.domain.codes import OVERRIDE_REASON_SYSTEM, RULE_CODE_SYSTEM
from cds_service.domain.findings import (
    Finding,
    OrderLab,
    OrderMedication,
    RemoveDraft,
    SelectionBehavior,
    shorten,
)
from cds_service.domain.rules import ALL_RULES
from cds_service.fhir.build import medication_request, service_request

UuidFactory = Callable[[], str]

RULE_TITLES = {rule.ID: rule.TITLE for rule in ALL_RULES}


def _action(action: Any, patient_id: str) -> dict[str, Any]:
    if isinstance(action, OrderMedication):
        return {
            "type": "create",
            "description": action.description,
            "resource": medication_request(action.regimen, patient_id),
        }
    if isinstance(action, OrderLab):
        return {
            "type": "create",
            "description": action.description,
            "resource": service_request(action, patient_id),
        }
    if isinstance(action, RemoveDraft):
        return {
            "type": "delete",
            "description": action.description,
            "resourceId": action.resource_id,
        }
    raise TypeError(f"unknown action {type(action).__name__}")


def card(finding: Finding, patient_id: str, new_uuid: UuidFactory) -> dict[str, Any]:
    suggestions = [
        {
            "label": s.label,
            "uuid": new_uuid(),
            "isRecommended": True if s.is_recommended else None,
            "actions": [_action(a, patient_id) for a in s.actions],
        }
        for s in finding.suggestions
    ]
    return {
        "uuid": new_uuid(),
        "summary": shorten(finding.summary),
        "detail": finding.detail,
        "indicator": finding.indicator.code,
        "source": {
            "label": finding.source.label,
            "url": finding.source.url,
            "topic": {
                "system": RULE_CODE_SYSTEM,
                "code": finding.rule_id,
                "display": RULE_TITLES.get(finding.rule_id, finding.rule_id),
            },
        },
        "suggestions": suggestions,
        "selectionBehavior": (
            (finding.selection_behavior or SelectionBehavior.ANY).value if suggestions else None
        ),
        "overrideReasons": [
            {"system": OVERRIDE_REASON_SYSTEM, "code": r.code, "display": r.display}
            for r in finding.override_reasons
        ],
        "links": [
            {"label": link.label, "url": link.url, "type": "absolute"} for link in finding.links
        ],
    }


def cards(
    findings: Iterable[Finding], patient_id: str, new_uuid: UuidFactory
) -> list[dict[str, Any]]:
    return [card(f, patient_id, new_uuid) for f in findings]
