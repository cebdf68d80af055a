"""Domain findings -> CDS Hooks cards (docs/protocol.md "Response"; rule book §4).

``uuid`` on every card and suggestion (from a factory: time and randomness are parameters);
summary under 140 characters; optional fields omitted; ``source.topic`` carries the rule id in
the one rule code system.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from cds_service.domain.codes import LOINC, OVERRIDE_REASON_SYSTEM, RULE_CODE_SYSTEM, RXNORM
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

from .clients import OrderCode, TrustedClient

UuidFactory = Callable[[], str]

RULE_TITLES = {rule.id: rule.title for rule in ALL_RULES}


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
    findings: Iterable[Finding],
    patient_id: str,
    new_uuid: UuidFactory,
    notes: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Standard CDS Hooks cards; each of ``notes`` (what could not be evaluated) ends every
    card's detail."""
    built = [card(f, patient_id, new_uuid) for f in findings]
    if notes:
        for c in built:
            c["detail"] = (
                "\n\n".join([c["detail"], *notes]) if c.get("detail") else "\n\n".join(notes)
            )
    return built


# --- Client profiles: the standard cards reshaped for what a client can carry out -----------
# One layer over the standard cards (rules never know the client): ``shape`` applies the
# client's capabilities (clients.Capabilities); ``profile_problems`` is the check the tests run
# over every scenario for every profile.

#: RxNorm as an OID (HL7 OID registry), the form Epic reads medication codings in.
RXNORM_OID = "urn:oid:2.16.840.1.113883.6.88"
TOPIC_CODE_MAX = 100
_TOPIC_CODE = re.compile(r"[A-Za-z0-9]{1,100}")
_RULE_ID = re.compile(r"[a-z][a-z0-9]*(-[a-z][a-z0-9]*)*")


def topic_code(rule_id: str) -> str:
    """The rule id in letters and digits only, reversibly: each hyphen-separated part with its
    first letter upper-cased (``folate-before-b12`` -> ``FolateBeforeB12``). Every part of a
    rule id starts with a lower-case letter (``test_catalogue`` checks), so ``rule_id_of``
    gives the rule id back."""
    if not _RULE_ID.fullmatch(rule_id):
        raise ValueError(f"rule id {rule_id!r} cannot be mapped to letters and digits")
    return "".join(part[0].upper() + part[1:] for part in rule_id.split("-"))[:TOPIC_CODE_MAX]


def rule_id_of(code: str) -> str | None:
    """The rule id of a topic code in either form (``folate-before-b12`` or
    ``FolateBeforeB12``, compared without regard to case); None for an unknown code."""
    if code in RULE_TITLES:
        return code
    if _TOPIC_CODE.fullmatch(code):
        rule_id = re.sub(r"(?<!^)(?=[A-Z])", "-", code).lower()
        if rule_id in RULE_TITLES:
            return rule_id
        return _TOPIC_CODES_FOLDED.get(code.casefold())
    return None


def _safe_topic_code(rule_id: str) -> str:
    try:
        return topic_code(rule_id)
    except ValueError:
        # Not reversible by rule (a part starting with a digit): still letters and digits
        # only; ``rule_id_of`` finds it through the table below.
        return re.sub(r"[^A-Za-z0-9]", "", rule_id)[:TOPIC_CODE_MAX] or "Rule"


_TOPIC_CODES_FOLDED = {_safe_topic_code(r).casefold(): r for r in RULE_TITLES}


def _host_allowed(url: Any, hosts: Sequence[str]) -> bool:
    try:
        host = urlsplit(url).hostname if isinstance(url, str) else None
    except ValueError:
        return False
    return host is not None and host in hosts


def _codings(resource: dict[str, Any]) -> list[dict[str, Any]] | None:
    key = (
        "medicationCodeableConcept"
        if resource.get("resourceType") == "MedicationRequest"
        else "code"
    )
    concept = resource.get(key)
    coding = concept.get("coding") if isinstance(concept, dict) else None
    return coding if isinstance(coding, list) else None


def _order_code(coding: OrderCode) -> dict[str, str]:
    return {"system": coding.system, "code": coding.code, "display": coding.display}


def _code_of(resource: dict[str, Any], system: str) -> str | None:
    return next(
        (c.get("code") for c in _codings(resource) or () if c.get("system") == system), None
    )


def _shape_action(
    action: dict[str, Any], client: TrustedClient, lines: list[str]
) -> dict[str, Any] | None:
    """One action for the client, or None when it cannot carry it out (``lines`` gets what
    the clinician must do instead)."""
    caps = client.capabilities
    resource = action.get("resource")
    if action.get("type") != "create" or not isinstance(resource, dict):
        return action
    codings = _codings(resource)
    if codings is None:
        return action
    if resource.get("resourceType") == "MedicationRequest":
        rxnorm = _code_of(resource, RXNORM)
        preferred = client.medication_codes.get(rxnorm) if rxnorm else None
        if caps.rxnorm_oid:
            codings.extend(
                {**c, "system": RXNORM_OID}
                for c in list(codings)
                if c.get("system") == RXNORM
                and not any(
                    o.get("system") == RXNORM_OID and o.get("code") == c.get("code")
                    for o in codings
                )
            )
        if preferred is not None:
            codings.insert(0, _order_code(preferred))
        if caps.manual_doses:
            doses = "; ".join(
                d["text"] for d in resource.get("dosageInstruction") or () if d.get("text")
            )
            name = resource["medicationCodeableConcept"].get("text") or "the medicine"
            lines.append(
                f"**Set the dose by hand**: this EHR opens the suggested {name} order without "
                f"the service's dose details. Enter: {doses}."
            )
    elif resource.get("resourceType") == "ServiceRequest":
        loinc = _code_of(resource, LOINC)
        preferred = client.lab_codes.get(loinc) if loinc else None
        if preferred is not None:
            codings.insert(0, _order_code(preferred))
        elif caps.lab_orders_need_preference_code:
            name = resource["code"].get("text") or loinc
            lines.append(
                f"**Order by hand**: {name} (LOINC {loinc}); no order code for it is set up"
                " for this EHR, so it cannot be offered as a one-click order."
            )
            return None
    return action


def _single_label(action: dict[str, Any]) -> str:
    """A label for a suggestion made of one action of a larger one, that makes sense alone."""
    description = action["description"].rstrip(".")
    if action["type"] == "create":
        description = "Order " + description[:1].lower() + description[1:]
    return shorten(description)


def shape(
    cards: list[dict[str, Any]], client: TrustedClient | None, new_uuid: UuidFactory
) -> list[dict[str, Any]]:
    """The standard cards as ``client``'s profile needs them (unchanged for ``standard``)."""
    if client is None:
        return cards
    caps = client.capabilities
    shaped = []
    for card_ in cards:
        lines: list[str] = []
        suggestions: list[dict[str, Any]] = []
        split = False
        for suggestion in card_.get("suggestions") or ():
            actions = [
                a for a in (_shape_action(a, client, lines) for a in suggestion["actions"]) if a
            ]
            if not actions:
                continue
            if caps.one_action_per_suggestion and len(actions) > 1:
                split = True
                suggestions.extend(
                    {
                        "label": _single_label(a),
                        "uuid": new_uuid(),
                        "isRecommended": suggestion.get("isRecommended"),
                        "actions": [a],
                    }
                    for a in actions
                )
            else:
                suggestions.append({**suggestion, "actions": actions})
        if split:
            lines.append(
                "Each change is offered as its own suggestion: accept both the removal and"
                " the new order to replace the drafted order."
            )
        card_["suggestions"] = suggestions
        if not suggestions:
            card_["selectionBehavior"] = None
        elif caps.selection_any:
            card_["selectionBehavior"] = "any"
        if lines:
            card_["detail"] = "\n\n".join(
                [card_.get("detail") or "", *dict.fromkeys(lines)]
            ).strip()
        if client.link_hosts is not None:
            card_["links"] = [
                link
                for link in card_.get("links") or ()
                if _host_allowed(link.get("url"), client.link_hosts)
            ]
            source = card_["source"]
            if source.get("url") is not None and not _host_allowed(
                source["url"], client.link_hosts
            ):
                source["url"] = None
        if caps.topic_code_alphanumeric:
            topic = card_["source"]["topic"]
            rule_id = topic["code"]
            topic["code"] = _safe_topic_code(rule_id)
            topic["display"] = f"{RULE_TITLES.get(rule_id, rule_id)} ({rule_id})"
        shaped.append(card_)
    return shaped


def profile_problems(card_: dict[str, Any], client: TrustedClient | None) -> list[str]:
    """Why a card (as sent, after ``shape``) would not work for ``client``; empty when fine."""
    problems: list[str] = []
    if client is None:
        return problems
    caps = client.capabilities
    suggestions = card_.get("suggestions") or []
    if caps.selection_any and suggestions and card_.get("selectionBehavior") != "any":
        problems.append("selectionBehavior must be 'any'")
    for suggestion in suggestions:
        actions = suggestion.get("actions") or []
        if caps.one_action_per_suggestion and len(actions) != 1:
            problems.append(f"suggestion {suggestion.get('label')!r} has {len(actions)} actions")
        for action in actions:
            resource = action.get("resource") or {}
            codings = _codings(resource) or []
            systems = {(c.get("system"), c.get("code")) for c in codings}
            if caps.rxnorm_oid and resource.get("resourceType") == "MedicationRequest":
                for system, code in list(systems):
                    if system == RXNORM and (RXNORM_OID, code) not in systems:
                        problems.append(f"RxNorm {code} has no {RXNORM_OID} coding")
            if (
                caps.lab_orders_need_preference_code
                and resource.get("resourceType") == "ServiceRequest"
            ):
                wanted = {(c.system, c.code) for c in client.lab_codes.values()}
                if not systems & wanted:
                    problems.append("a lab order without a preference-list code")
    code = card_["source"]["topic"]["code"]
    if caps.topic_code_alphanumeric and not _TOPIC_CODE.fullmatch(code):
        problems.append(f"topic.code {code!r} is not letters and digits (at most 100)")
    if client.link_hosts is not None:
        for link in card_.get("links") or ():
            if not _host_allowed(link.get("url"), client.link_hosts):
                problems.append(f"link to an unregistered host: {link.get('url')}")
            if "appContext" in link:
                problems.append("appContext is not supported")
        url = card_["source"].get("url")
        if url is not None and not _host_allowed(url, client.link_hosts):
            problems.append(f"source.url on an unregistered host: {url}")
    return problems
