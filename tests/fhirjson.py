"""Small builders of FHIR R4 JSON and CDS Hooks requests for tests and scenarios.

Synthetic data only. Dates are ISO strings computed by the caller from a fixed evaluation time.
"""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"


def patient(
    pid: str = "pat-1", birth_date: str = "1960-04-12", gender: str = "female"
) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": "Synthetic", "given": ["Test"]}],
        "gender": gender,
        "birthDate": birth_date,
    }


def observation(
    oid: str,
    loinc: str,
    value: float,
    unit: str,
    date: str,
    *,
    pid: str = "pat-1",
    display: str | None = None,
    high: float | None = None,
    status: str = "final",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display or loinc}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": date,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }
    if high is not None:
        resource["referenceRange"] = [
            {"high": {"value": high, "unit": unit, "system": UCUM, "code": unit}}
        ]
    return resource


def medication(
    kind: str,
    mid: str,
    text: str,
    *,
    code: str | None = None,
    status: str = "active",
    start: str | None = None,
    pid: str = "pat-1",
    route: tuple[str, str] | None = None,
    dose: tuple[float, str] | None = None,
    every: tuple[float, str] | None = None,
) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": text}
    if code:
        concept["coding"] = [{"system": RXNORM, "code": code, "display": text}]
    resource: dict[str, Any] = {
        "resourceType": kind,
        "id": mid,
        "status": status,
        "medicationCodeableConcept": concept,
        "subject": {"reference": f"Patient/{pid}"},
    }
    dosage: dict[str, Any] = {}
    if route:
        dosage["route"] = {"coding": [{"system": SNOMED, "code": route[0], "display": route[1]}]}
    if dose:
        dosage["doseAndRate"] = [
            {"doseQuantity": {"value": dose[0], "unit": dose[1], "system": UCUM, "code": dose[1]}}
        ]
    if every:
        dosage["timing"] = {"repeat": {"frequency": 1, "period": every[0], "periodUnit": every[1]}}
    if kind == "MedicationRequest":
        resource["intent"] = "order"
        if start:
            resource["authoredOn"] = start
        if dosage:
            resource["dosageInstruction"] = [dosage]
    else:
        if start:
            resource["effectivePeriod"] = {"start": start}
        if dosage:
            resource["dosage"] = [dosage]
    return resource


def condition(
    cid: str,
    text: str,
    *,
    snomed: str | None = None,
    icd10: str | None = None,
    pid: str = "pat-1",
    status: str = "active",
) -> dict[str, Any]:
    coding = []
    if snomed:
        coding.append({"system": SNOMED, "code": snomed, "display": text})
    if icd10:
        coding.append(
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd10, "display": text}
        )
    concept: dict[str, Any] = {"text": text}
    if coding:
        concept["coding"] = coding
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        },
        "code": concept,
        "subject": {"reference": f"Patient/{pid}"},
    }


def service_request(sid: str, loinc: str, display: str, *, pid: str = "pat-1") -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": sid,
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{pid}"},
    }


def bundle(resources: list[dict[str, Any]], *, type_: str | None = "searchset") -> dict[str, Any]:
    result: dict[str, Any] = {
        "resourceType": "Bundle",
        "entry": [{"resource": r} for r in resources],
    }
    if type_:
        result["type"] = type_
    return result


def request(
    hook: str,
    *,
    pid: str = "pat-1",
    drafts: list[dict[str, Any]] | None = None,
    selections: list[str] | None = None,
    prefetch: dict[str, Any] | None = None,
    hook_instance: str = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": pid}
    if hook in ("order-sign", "order-select"):
        context["draftOrders"] = bundle(drafts or [], type_="collection")
    if hook == "order-select":
        context["selections"] = selections or []
    body: dict[str, Any] = {"hook": hook, "hookInstance": hook_instance, "context": context}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def full_prefetch(
    pid: str,
    patient_resource: dict[str, Any] | None,
    labs: list[dict[str, Any]],
    statements: list[dict[str, Any]],
    requests: list[dict[str, Any]],
    conditions: list[dict[str, Any]],
) -> dict[str, Any]:
    """Every key of the services' templates, split the way the templates split them."""
    from cds_service.domain.codes import LOINC_ANALYTES
    from cds_service.domain.vocabulary import Analyte

    blood = {
        Analyte.HAEMOGLOBIN,
        Analyte.MCV,
        Analyte.PLATELETS,
        Analyte.HAEMATOCRIT,
        Analyte.RETICULOCYTES,
    }
    renal = {Analyte.POTASSIUM, Analyte.CREATININE, Analyte.EGFR}

    def analyte(obs):
        return LOINC_ANALYTES.get(obs["code"]["coding"][0]["code"])

    return {
        "patient": patient_resource,
        "b12Labs": bundle([o for o in labs if analyte(o) not in blood | renal]),
        "bloodCounts": bundle([o for o in labs if analyte(o) in blood]),
        "renalLabs": bundle([o for o in labs if analyte(o) in renal]),
        "medicationStatements": bundle(statements),
        "medicationRequests": bundle(requests),
        "conditions": bundle(conditions),
    }
