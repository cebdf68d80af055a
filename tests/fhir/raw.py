"""Builders of raw R4 JSON for the FHIR adapter tests: the shapes ``tests.fhirjson`` does not
cover (coded values, periods, references, dosage details). Synthetic data only."""

from __future__ import annotations

from typing import Any

from tests.fhirjson import LOINC, RXNORM, SNOMED, UCUM

ATC = "http://www.whocc.no/atc"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
PID = "pat-1"
SUBJECT = {"reference": f"Patient/{PID}"}


def concept(*codings: tuple[str, str, str], text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept from (system, code, display) triples."""
    result: dict[str, Any] = {}
    if codings:
        result["coding"] = [{"system": s, "code": c, "display": d} for s, c, d in codings]
    if text is not None:
        result["text"] = text
    return result


def quantity(
    value: Any, unit: str | None = None, *, code: str | None = None, system: str | None = UCUM
) -> dict[str, Any]:
    """A Quantity; ``code`` defaults to ``unit`` (pass ``code=""`` for a display-only unit)."""
    result: dict[str, Any] = {"value": value}
    if unit is not None:
        result["unit"] = unit
    code = unit if code is None else code
    if code:
        result["code"] = code
        if system:
            result["system"] = system
    return result


def observation(
    oid: str,
    loinc: str,
    *,
    value: dict[str, Any] | None = None,
    date: str | None = "2026-05-01",
    status: str | None = "final",
    **extra: Any,
) -> dict[str, Any]:
    """An Observation with ``value`` as a valueQuantity (or anything via ``extra``)."""
    resource: dict[str, Any] = {"resourceType": "Observation", "id": oid}
    if status is not None:
        resource["status"] = status
    resource["code"] = concept((LOINC, loinc, loinc))
    resource["subject"] = SUBJECT
    if date is not None:
        resource["effectiveDateTime"] = date
    if value is not None:
        resource["valueQuantity"] = value
    resource.update(extra)
    return resource


def pregnancy_status(oid: str, date: str, code: str, display: str) -> dict[str, Any]:
    """LOINC 82810-3 with a SNOMED answer (77386006 pregnant, 60001007 not pregnant)."""
    return observation(
        oid, "82810-3", date=date, valueCodeableConcept=concept((SNOMED, code, display))
    )


def rx(code: str, display: str) -> tuple[str, str, str]:
    return (RXNORM, code, display)


def repeat(frequency: int = 1, period: float = 1, unit: str = "d", **extra: Any) -> dict[str, Any]:
    return {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit, **extra}}


def dosage(
    *,
    dose: dict[str, Any] | None = None,
    timing: dict[str, Any] | None = None,
    route: dict[str, Any] | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if text is not None:
        result["text"] = text
    if timing is not None:
        result["timing"] = timing
    if route is not None:
        result["route"] = route
    if dose is not None:
        result["doseAndRate"] = [{"doseQuantity": dose}]
    return result


def request(
    mid: str,
    medication: dict[str, Any] | None = None,
    *,
    status: str = "active",
    dosage_: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A MedicationRequest; ``medication`` is the medicationCodeableConcept."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": status,
        "intent": "order",
        "subject": SUBJECT,
    }
    if medication is not None:
        resource["medicationCodeableConcept"] = medication
    if dosage_ is not None:
        resource["dosageInstruction"] = [dosage_]
    resource.update(extra)
    return resource


def statement(
    mid: str,
    medication: dict[str, Any] | None = None,
    *,
    status: str = "active",
    dosage_: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": mid,
        "status": status,
        "subject": SUBJECT,
    }
    if medication is not None:
        resource["medicationCodeableConcept"] = medication
    if dosage_ is not None:
        resource["dosage"] = [dosage_]
    resource.update(extra)
    return resource


def condition(
    cid: str,
    code: dict[str, Any],
    *,
    clinical: str | None = "active",
    verification: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Condition", "id": cid, "subject": SUBJECT}
    if clinical is not None:
        resource["clinicalStatus"] = concept(
            ("http://terminology.hl7.org/CodeSystem/condition-clinical", clinical, clinical)
        )
    if verification is not None:
        resource["verificationStatus"] = concept(
            (
                "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                verification,
                verification,
            )
        )
    resource["code"] = code
    resource.update(extra)
    return resource


__all__ = [
    "ATC",
    "ICD10CM",
    "LOINC",
    "PID",
    "RXNORM",
    "SNOMED",
    "SUBJECT",
    "UCUM",
    "concept",
    "condition",
    "dosage",
    "observation",
    "pregnancy_status",
    "quantity",
    "repeat",
    "request",
    "rx",
    "statement",
]
