"""Domain actions -> FHIR R4 resources a clinician can accept with one click.

Every resource built here is validated with fhir.resources.R4B before it leaves (a bug here
must fail loudly in tests, not reach an EHR). A resource depends only on the (frozen) regimen
or lab order and the patient, so each shape is validated once and cached; the patient is
filled into a fresh copy per card.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cds_service.domain.codes import LOINC, RXNORM, SNOMED, UCUM
from cds_service.domain.findings import DosePhase, OrderLab, Regimen
from cds_service.domain.vocabulary import Route

from .models import validate

ROUTE_CODES = {
    Route.ORAL: ("26643006", "Oral route"),
    Route.SUBLINGUAL: ("37839007", "Sublingual route"),
    Route.INTRAMUSCULAR: ("78421000", "Intramuscular route"),
    Route.SUBCUTANEOUS: ("34206005", "Subcutaneous route"),
    Route.INTRAVENOUS: ("47625008", "Intravenous route"),
    Route.INTRANASAL: ("46713006", "Nasal route"),
}
LABORATORY_PROCEDURE = ("108252007", "Laboratory procedure")


def _dose(phase: DosePhase) -> dict[str, Any]:
    if phase.dose_ug >= 1000 and (phase.dose_ug / 1000).is_integer():
        return {"value": int(phase.dose_ug / 1000), "unit": "mg", "system": UCUM, "code": "mg"}
    value = int(phase.dose_ug) if float(phase.dose_ug).is_integer() else phase.dose_ug
    return {"value": value, "unit": "microgram", "system": UCUM, "code": "ug"}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _timing(phase: DosePhase) -> dict[str, Any]:
    repeat: dict[str, Any] = {
        "frequency": phase.frequency,
        "period": _number(phase.every),
        "periodUnit": phase.unit,
    }
    if phase.every_max is not None:
        repeat["periodMax"] = _number(phase.every_max)
    if phase.count is not None:
        repeat["count"] = phase.count
    if phase.duration is not None and phase.duration_unit:
        repeat["boundsDuration"] = {
            "value": _number(phase.duration),
            "unit": {"d": "days", "wk": "weeks", "mo": "months"}.get(
                phase.duration_unit, phase.duration_unit
            ),
            "system": UCUM,
            "code": phase.duration_unit,
        }
    return {"repeat": repeat}


_PATIENT = "Patient/{patient}"


def _for_patient(template: str, patient_id: str) -> dict[str, Any]:
    resource = json.loads(template)
    resource["subject"] = {"reference": f"Patient/{patient_id}"}
    return resource


def medication_request(regimen: Regimen, patient_id: str) -> dict[str, Any]:
    return _for_patient(_medication_request(regimen), patient_id)


def service_request(order: OrderLab, patient_id: str) -> dict[str, Any]:
    return _for_patient(_service_request(order), patient_id)


@lru_cache(maxsize=256)
def _medication_request(regimen: Regimen) -> str:
    code, display = regimen.rxnorm
    route_code, route_display = ROUTE_CODES[regimen.route]
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": _PATIENT},
        "medicationCodeableConcept": {
            "coding": [{"system": regimen.system or RXNORM, "code": code, "display": display}],
            "text": display,
        },
        "dosageInstruction": [
            {
                "sequence": index,
                "text": phase.text,
                "timing": _timing(phase),
                "route": {
                    "coding": [{"system": SNOMED, "code": route_code, "display": route_display}],
                    "text": route_display,
                },
                "doseAndRate": [{"doseQuantity": _dose(phase)}],
            }
            for index, phase in enumerate(regimen.phases, start=1)
        ],
        "note": [{"text": regimen.text}],
    }
    validate(resource)
    return json.dumps(resource)


@lru_cache(maxsize=256)
def _service_request(order: OrderLab) -> str:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "category": [
            {
                "coding": [
                    {
                        "system": SNOMED,
                        "code": LABORATORY_PROCEDURE[0],
                        "display": LABORATORY_PROCEDURE[1],
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": order.system or LOINC, "code": order.loinc, "display": order.display}
            ],
            "text": order.display,
        },
        "subject": {"reference": _PATIENT},
    }
    if order.note:
        resource["note"] = [{"text": order.note}]
    validate(resource)
    return json.dumps(resource)
