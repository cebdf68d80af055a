"""Repairs for what real clients send (docs/protocol.md, "Be lenient").

Applied to a raw resource before it is read; a resource that needs a repair is copied (shallow)
first, so the input is never mutated, and one that needs none is read as it is:
- ``category`` sent as one object instead of an array (the public sandbox does this);
- DSTU2 ``MedicationOrder`` (the sandbox's default server) reshaped as an R4 MedicationRequest;
- draft orders without ``subject`` / ``intent``: they are, by definition, orders for this patient.
"""

from __future__ import annotations

from typing import Any

_LIST_FIELDS = {
    "MedicationRequest": ("category", "dosageInstruction", "reasonCode", "note"),
    # Not "category": in R4 MedicationStatement.category is one CodeableConcept (0..1), and
    # wrapping it would make every valid MedicationStatement with a category fail strict
    # validation.
    "MedicationStatement": ("dosage", "reasonCode", "note"),
    "Observation": ("category", "referenceRange", "interpretation", "performer"),
    "Condition": ("category",),
    "ServiceRequest": ("category", "reasonCode"),
}

_DSTU2_STATUS = {
    "active": "active",
    "on-hold": "on-hold",
    "completed": "completed",
    "entered-in-error": "entered-in-error",
    "stopped": "stopped",
    "draft": "draft",
}


def repair(
    resource: dict[str, Any], *, patient_ref: str | None = None, draft: bool = False
) -> dict[str, Any]:
    """``resource`` itself when nothing needs repair (the usual case: no copy per resource),
    else a repaired shallow copy."""
    kind = resource.get("resourceType")
    data = _medication_order_to_request(resource) if kind == "MedicationOrder" else resource
    kind = data.get("resourceType")
    fields = _LIST_FIELDS.get(kind, ()) if isinstance(kind, str) else ()
    for field in fields:
        value = data.get(field)
        if isinstance(value, dict):
            if data is resource:
                data = dict(resource)
            data[field] = [value]
    if draft and kind in ("MedicationRequest", "ServiceRequest"):
        missing_subject = "subject" not in data and patient_ref
        if missing_subject or "intent" not in data or "status" not in data:
            if data is resource:
                data = dict(resource)
            if missing_subject:
                data["subject"] = {"reference": patient_ref}
            data.setdefault("intent", "order")
            data.setdefault("status", "draft")
    return data


def _medication_order_to_request(order: dict[str, Any]) -> dict[str, Any]:
    """DSTU2 MedicationOrder -> R4 MedicationRequest (only the elements we read)."""
    request: dict[str, Any] = {"resourceType": "MedicationRequest"}
    for key in ("id", "medicationCodeableConcept", "medicationReference", "contained"):
        if key in order:
            request[key] = order[key]
    status = order.get("status")
    # A status that is not a string is passed on for the reader to refuse by its path.
    request["status"] = _DSTU2_STATUS.get(status, "unknown") if isinstance(status, str) else status
    request["intent"] = "order"
    if "patient" in order:
        request["subject"] = order["patient"]
    if "dateWritten" in order:
        request["authoredOn"] = order["dateWritten"]
    if "prescriber" in order:
        request["requester"] = order["prescriber"]
    dosages = []
    for old in order.get("dosageInstruction") or []:
        if not isinstance(old, dict):
            continue
        new = {k: old[k] for k in ("text", "timing", "route", "site", "method") if k in old}
        dose = {k: old[k] for k in ("doseQuantity", "doseRange") if k in old}
        if dose:
            new["doseAndRate"] = [dose]
        dosages.append(new)
    if dosages:
        request["dosageInstruction"] = dosages
    if isinstance(order.get("dispenseRequest"), dict):
        dispense = order["dispenseRequest"]
        request["dispenseRequest"] = {
            k: dispense[k] for k in ("validityPeriod", "expectedSupplyDuration") if k in dispense
        }
    return request
