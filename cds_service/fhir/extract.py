"""FHIR R4 resources -> domain facts (shared/clinical/RULES.md section 1).

Hot path, so in two steps (issue 3, "Performance"): cheap checks on the raw JSON select the
resources a rule can use (resource type, code system and code, status), and only those are
modelled with ``fhir.resources.R4B``. A resource that fails validation is skipped and its id
logged; it never fails the request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cds_service.domain.codes import (
    LOINC,
    LOINC_ANALYTES,
    SNOMED,
    SNOMED_VERIFIED,
    classify_condition,
    classify_drug_codes,
    classify_drug_name,
)
from cds_service.domain.facts import (
    ConditionFact,
    DraftLabOrder,
    Facts,
    LabResult,
    MedicationExposure,
    PatientFacts,
)
from cds_service.domain.units import canonical_unit, normalise_unit, to_canonical
from cds_service.domain.vocabulary import B12_FAMILY, Analyte, DataCategory, Sex

from .dates import to_date, to_utc
from .lenient import repair
from .medications import dose_ug_of, interval_days_of, route_of
from .models import model_class

log = logging.getLogger(__name__)

_SKIP_OBSERVATION = {"entered-in-error", "cancelled", "registered"}
_OBSERVATION_OK = {"final", "amended", "corrected", "preliminary"}
_STATEMENT_OK = {"active", "completed", "intended", "on-hold", "unknown", "stopped"}
_REQUEST_OK = {"active", "completed", "on-hold"}
_STOP_STATUSES = {"stopped", "completed", "cancelled"}
_CONDITION_INACTIVE = {"resolved", "inactive", "remission"}
_VERIFICATION_SKIP = {"entered-in-error", "refuted"}
#: Results kept per non-B12 analyte: rules read the latest current one (and fall back once).
_KEEP_PER_ANALYTE = 3
PREGNANT_SNOMED = "77386006"


@dataclass(frozen=True)
class Extraction:
    facts: Facts
    skipped: tuple[str, ...]  # resource ids skipped as invalid (ids only: never content)


def extract_facts(
    resources: Iterable[dict[str, Any]],
    draft_orders: Sequence[dict[str, Any]] = (),
    *,
    patient_id: str | None = None,
    selections: Iterable[str] = (),
    missing: Iterable[DataCategory] = (),
) -> Extraction:
    skipped: list[str] = []
    patient_ref = f"Patient/{patient_id}" if patient_id else None
    by_type: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        kind = resource.get("resourceType")
        rid = resource.get("id")
        if isinstance(kind, str) and isinstance(rid, str):
            if (kind, rid) in seen:
                continue
            seen.add((kind, rid))
        if isinstance(kind, str):
            by_type.setdefault(kind, []).append(resource)

    medications_index = {
        f"Medication/{m.get('id')}": m for m in by_type.get("Medication", []) if m.get("id")
    }
    labs, pregnant = _observations(by_type.get("Observation", []), skipped)
    meds: list[MedicationExposure] = []
    for kind in ("MedicationStatement", "MedicationRequest", "MedicationOrder"):
        for raw in by_type.get(kind, []):
            exposure = _medication(raw, medications_index, skipped, draft=False)
            if exposure is not None:
                meds.append(exposure)
    draft_labs: list[DraftLabOrder] = []
    for raw in draft_orders:
        if not isinstance(raw, dict):
            continue
        kind = raw.get("resourceType")
        if kind in ("MedicationRequest", "MedicationOrder"):
            exposure = _medication(
                raw, medications_index, skipped, draft=True, patient_ref=patient_ref
            )
            if exposure is not None:
                meds.append(exposure)
        elif kind == "ServiceRequest":
            order = _lab_order(raw, skipped, patient_ref)
            if order is not None:
                draft_labs.append(order)
    conditions = [
        c for raw in by_type.get("Condition", []) if (c := _condition(raw, skipped)) is not None
    ]
    patient = _patient(by_type.get("Patient", []), patient_id, skipped)
    facts = Facts(
        patient=patient,
        labs=tuple(labs),
        medications=tuple(meds),
        conditions=tuple(conditions),
        draft_labs=tuple(draft_labs),
        selections=frozenset(selections),
        missing=frozenset(missing),
        pregnancy_observed=pregnant,
    )
    return Extraction(facts, tuple(skipped))


def _ref(raw: dict[str, Any]) -> str:
    return f"{raw.get('resourceType', 'Resource')}/{raw.get('id', '?')}"


def _model(raw: dict[str, Any], skipped: list[str], **repair_args: Any) -> Any | None:
    try:
        repaired = repair(raw, **repair_args)
        return model_class(repaired.get("resourceType")).model_validate(repaired)
    except (ValidationError, ValueError, TypeError) as exc:
        skipped.append(_ref(raw))
        # The id and the error *type* only: pydantic messages quote input values.
        log.warning(
            "resource skipped",
            extra={"resource": _ref(raw), "reason": type(exc).__name__},
        )
        return None


def _codings(concept: Any) -> list[tuple[str | None, str | None]]:
    if not isinstance(concept, dict):
        return []
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return []
    return [
        (c.get("system"), c.get("code"))
        for c in codings
        if isinstance(c, dict) and isinstance(c.get("code"), str)
    ]


def _texts(concept: Any) -> list[str]:
    if not isinstance(concept, dict):
        return []
    texts = [concept["text"]] if isinstance(concept.get("text"), str) else []
    codings = concept.get("coding")
    if isinstance(codings, list):
        texts += [c["display"] for c in codings if isinstance(c, dict) and isinstance(c.get("display"), str)]
    return texts


# --- Observations ------------------------------------------------------------------------------
def _observation_analyte(raw: dict[str, Any]) -> tuple[Analyte, str] | None:
    for system, code in _codings(raw.get("code")):
        if system == LOINC and code in LOINC_ANALYTES:
            return LOINC_ANALYTES[code], code
    return None


def _raw_effective(raw: dict[str, Any]) -> Any:
    period = raw.get("effectivePeriod")
    return (
        raw.get("effectiveDateTime")
        or raw.get("effectiveInstant")
        or (period.get("start") or period.get("end") if isinstance(period, dict) else None)
        or raw.get("issued")
    )


def _observations(raws: list[dict[str, Any]], skipped: list[str]) -> tuple[list[LabResult], bool]:
    candidates: dict[Analyte, list[tuple[Any, dict[str, Any], str]]] = {}
    for raw in raws:
        if raw.get("status") in _SKIP_OBSERVATION:
            continue
        found = _observation_analyte(raw)
        if found is None:
            continue
        analyte, code = found
        moment = to_utc(_raw_effective(raw))
        if moment is None:
            log.info("observation without a usable date skipped", extra={"resource": _ref(raw)})
            continue
        candidates.setdefault(analyte, []).append((moment, raw, code))
    labs: list[LabResult] = []
    pregnant = False
    for analyte, items in candidates.items():
        items.sort(key=lambda item: item[0], reverse=True)
        if analyte not in B12_FAMILY and analyte is not Analyte.IF_ANTIBODY:
            items = items[:_KEEP_PER_ANALYTE]
        for moment, raw, code in items:
            model = _model(raw, skipped)
            if model is None:
                continue
            if model.status not in _OBSERVATION_OK:
                continue
            if analyte is Analyte.PREGNANCY_STATUS:
                pregnant = pregnant or _is_pregnant_answer(model)
                continue
            lab = _lab_result(model, analyte, code, moment)
            if lab is not None:
                labs.append(lab)
    return labs, pregnant


def _is_pregnant_answer(model: Any) -> bool:
    concept = model.valueCodeableConcept
    if concept is None:
        return False
    if any(c.system == SNOMED and c.code == PREGNANT_SNOMED for c in concept.coding or []):
        return True
    texts = [concept.text or ""] + [c.display or "" for c in concept.coding or []]
    return any(t.strip().lower() == "pregnant" for t in texts)


def _lab_result(model: Any, analyte: Analyte, code: str, moment: Any) -> LabResult | None:
    quantity = model.valueQuantity
    text_value = None
    if model.valueCodeableConcept is not None:
        concept = model.valueCodeableConcept
        text_value = concept.text or next((c.display or c.code for c in concept.coding or []), None)
    elif model.valueString is not None:
        text_value = model.valueString
    if quantity is None or quantity.value is None:
        if text_value is None:
            log.info("observation without a value skipped", extra={"resource": f"Observation/{model.id}"})
            return None
        return LabResult(
            f"Observation/{model.id}", analyte, code, moment, None, None, None, None, text_value=text_value
        )
    value = float(quantity.value)
    unit = normalise_unit(quantity.code or quantity.unit)
    canonical = to_canonical(analyte, value, unit)
    high = low = None
    for reference in model.referenceRange or []:
        if reference.high is not None and reference.high.value is not None:
            ref_unit = normalise_unit(reference.high.code or reference.high.unit) or unit
            if ref_unit == unit:
                high = float(reference.high.value)
        if reference.low is not None and reference.low.value is not None:
            low = float(reference.low.value)
        break
    return LabResult(
        resource_id=f"Observation/{model.id}",
        analyte=analyte,
        loinc=code,
        effective=moment,
        value=value,
        unit=unit,
        canonical_value=canonical,
        canonical_unit=canonical_unit(analyte) if canonical is not None else None,
        reference_high=high,
        reference_low=low,
        text_value=text_value,
    )


# --- Medications ---------------------------------------------------------------------------------
def _medication_concept(raw: dict[str, Any], index: dict[str, dict[str, Any]]) -> Any:
    concept = raw.get("medicationCodeableConcept")
    if concept is not None:
        return concept
    reference = raw.get("medicationReference")
    if not isinstance(reference, dict):
        return None
    target = reference.get("reference")
    if isinstance(target, str) and target.startswith("#"):
        for contained in raw.get("contained") or []:
            if isinstance(contained, dict) and contained.get("id") == target[1:]:
                return contained.get("code")
    if isinstance(target, str) and target in index:
        return index[target].get("code")
    return {"text": reference["display"]} if isinstance(reference.get("display"), str) else None


def _medication(
    raw: dict[str, Any],
    index: dict[str, dict[str, Any]],
    skipped: list[str],
    *,
    draft: bool,
    patient_ref: str | None = None,
) -> MedicationExposure | None:
    concept = _medication_concept(raw, index)
    texts = _texts(concept)
    classes = classify_drug_codes(_codings(concept))
    for text in texts:
        classes |= classify_drug_name(text)
    if not classes:
        return None  # nothing a rule reads: not modelled
    status = raw.get("status")
    if not draft:
        allowed = _STATEMENT_OK if raw.get("resourceType") == "MedicationStatement" else _REQUEST_OK
        if status not in allowed:
            return None
    model = _model(raw, skipped, patient_ref=patient_ref, draft=draft)
    if model is None:
        return None
    name = texts[0] if texts else ", ".join(sorted(c.value for c in classes))
    kind = model.get_resource_type()
    if kind == "MedicationStatement":
        dosages = model.dosage or []
        period = model.effectivePeriod
        start = to_utc(model.effectiveDateTime) or (to_utc(period.start) if period else None)
        end = to_utc(period.end) if period else None
    else:
        dosages = model.dosageInstruction or []
        validity = model.dispenseRequest.validityPeriod if model.dispenseRequest else None
        start = to_utc(model.authoredOn) or (to_utc(validity.start) if validity else None)
        end = to_utc(validity.end) if validity else None
    dosage = dosages[0] if dosages else None
    interval, count = interval_days_of(dosage)
    return MedicationExposure(
        # The id the client knows (a DSTU2 MedicationOrder stays one for delete actions).
        resource_id=_ref(raw),
        classes=frozenset(classes),
        name=name,
        status=model.status,
        start=start,
        end=end,
        route=route_of(dosage, name),
        dose_ug=dose_ug_of(dosage, name),
        interval_days=interval,
        is_draft=draft,
        is_stop_order=draft and model.status in _STOP_STATUSES,
        count=count,
    )


def _lab_order(raw: dict[str, Any], skipped: list[str], patient_ref: str | None) -> DraftLabOrder | None:
    analytes = {
        LOINC_ANALYTES[code]
        for system, code in _codings(raw.get("code"))
        if system == LOINC and code in LOINC_ANALYTES
    }
    if not analytes:
        return None
    model = _model(raw, skipped, patient_ref=patient_ref, draft=True)
    if model is None:
        return None
    name = next(iter(_texts(raw.get("code"))), "laboratory test")
    return DraftLabOrder(f"ServiceRequest/{model.id}", frozenset(analytes), name)


# --- Conditions and the patient ------------------------------------------------------------------
def _status_code(concept: Any) -> str | None:
    codes = [code for _, code in _codings(concept)]
    return codes[0] if codes else None


def _condition(raw: dict[str, Any], skipped: list[str]) -> ConditionFact | None:
    if _status_code(raw.get("clinicalStatus")) in _CONDITION_INACTIVE:
        return None
    if _status_code(raw.get("verificationStatus")) in _VERIFICATION_SKIP:
        return None
    codings = _codings(raw.get("code"))
    texts = _texts(raw.get("code"))
    kinds = classify_condition(codings, texts)
    if not kinds:
        return None
    model = _model(raw, skipped)
    if model is None:
        return None
    verified = any(s == SNOMED and c in SNOMED_VERIFIED for s, c in codings) or bool(
        classify_condition((), texts)
    )
    onset = to_utc(model.onsetDateTime) or (
        to_utc(model.onsetPeriod.start) if model.onsetPeriod else None
    ) or to_utc(model.recordedDate)
    return ConditionFact(
        resource_id=f"Condition/{model.id}",
        kinds=frozenset(kinds),
        name=texts[0] if texts else next(iter(kinds)).value,
        onset=onset,
        verified=verified,
    )


def _patient(raws: list[dict[str, Any]], patient_id: str | None, skipped: list[str]) -> PatientFacts | None:
    chosen = next((r for r in raws if patient_id and r.get("id") == patient_id), None)
    if chosen is None and raws:
        chosen = raws[0]
    if chosen is None:
        return None
    model = _model(chosen, skipped)
    if model is None:
        return None
    sex = {"female": Sex.FEMALE, "male": Sex.MALE, "other": Sex.OTHER}.get(model.gender or "", Sex.UNKNOWN)
    return PatientFacts(f"Patient/{model.id}", to_date(model.birthDate), sex)
