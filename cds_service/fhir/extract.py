"""FHIR R4 resources -> domain facts (shared/clinical/RULES.md section 1).

Hot path, in two steps (issue 3, "Performance"): cheap checks on the raw JSON select the
resources a rule can use (resource type, code system and code, status); then only the elements
the rules use are read, type-checked (``jsonread``). A resource whose used elements are
malformed is skipped and its id logged; it never fails the request. With ``strict=True``
every selected resource is first validated in full with fhir.resources.R4B and skipped if it is
not valid R4 (slower; CI applies it to every fixture).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, TypeVar

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
from .jsonread import Malformed, array, codings, first_code, number, obj, string, texts
from .lenient import repair
from .medications import dose_ug_of, interval_days_of, route_of
from .models import validate

log = logging.getLogger(__name__)

_SKIP_OBSERVATION = {"entered-in-error", "cancelled"}
_OBSERVATION_OK = {"final", "amended", "corrected", "preliminary"}
_STATEMENT_OK = {"active", "completed", "intended", "on-hold", "unknown", "stopped"}
_REQUEST_OK = {"active", "completed", "on-hold"}
_STOP_STATUSES = {"stopped", "completed", "cancelled"}
_CONDITION_INACTIVE = {"resolved", "inactive", "remission"}
_VERIFICATION_SKIP = {"entered-in-error", "refuted"}
#: Results kept per non-B12 analyte: rules read the latest current one (and fall back once).
KEEP_PER_ANALYTE = 3
PREGNANT_SNOMED = "77386006"

T = TypeVar("T")


@dataclass(frozen=True)
class Extraction:
    facts: Facts
    skipped: tuple[str, ...]  # resource ids skipped as malformed (ids only: never content)


def extract_facts(
    resources: Iterable[dict[str, Any]],
    draft_orders: Sequence[dict[str, Any]] = (),
    *,
    patient_id: str | None = None,
    selections: Iterable[str] = (),
    missing: Iterable[DataCategory] = (),
    strict: bool = False,
) -> Extraction:
    reader = _Reader(strict, f"Patient/{patient_id}" if patient_id else None)
    by_type: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        kind, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(kind, str):
            continue
        if isinstance(rid, str):
            if (kind, rid) in seen:
                continue  # the same resource from two prefetch keys
            seen.add((kind, rid))
        by_type.setdefault(kind, []).append(resource)

    index = {f"Medication/{m.get('id')}": m for m in by_type.get("Medication", ()) if m.get("id")}
    labs, pregnant = _observations(reader, by_type.get("Observation", ()))
    meds = [
        m
        for kind in ("MedicationStatement", "MedicationRequest", "MedicationOrder")
        for raw in by_type.get(kind, ())
        if (m := reader.read(raw, _medication, index, False)) is not None
    ]
    draft_labs: list[DraftLabOrder] = []
    for raw in draft_orders:
        if not isinstance(raw, dict):
            continue
        kind = raw.get("resourceType")
        if kind in ("MedicationRequest", "MedicationOrder"):
            exposure = reader.read(raw, _medication, index, True)
            if exposure is not None:
                meds.append(exposure)
        elif kind == "ServiceRequest":
            order = reader.read(raw, _lab_order, draft=True)
            if order is not None:
                draft_labs.append(order)
    conditions = [
        c for raw in by_type.get("Condition", ()) if (c := reader.read(raw, _condition)) is not None
    ]
    facts = Facts(
        patient=_patient(reader, by_type.get("Patient", ()), patient_id),
        labs=tuple(labs),
        medications=tuple(meds),
        conditions=tuple(conditions),
        draft_labs=tuple(draft_labs),
        selections=frozenset(selections),
        missing=frozenset(missing),
        pregnancy_observed=pregnant,
    )
    return Extraction(facts, tuple(reader.skipped))


def _ref(raw: dict[str, Any]) -> str:
    rid = raw.get("id")
    return f"{raw.get('resourceType', 'Resource')}/{rid if isinstance(rid, str) else '?'}"


class _Reader:
    """Runs one extractor over one resource; a malformed resource is skipped and logged."""

    def __init__(self, strict: bool, patient_ref: str | None) -> None:
        self.strict = strict
        self.patient_ref = patient_ref
        self.skipped: list[str] = []

    def read(self, raw: dict[str, Any], extractor: Callable[..., T | None], *args: Any,
             draft: bool = False) -> T | None:
        try:
            if extractor is _medication and not _medication_relevant(raw, args[0]):
                return None  # nothing a rule reads: not even repaired
            data = repair(raw, patient_ref=self.patient_ref, draft=draft)
            if self.strict:
                validate(data)
            return extractor(data, _ref(raw), *args)
        except (Malformed, ValueError, TypeError) as exc:
            self.skip(raw, exc)
            return None

    def skip(self, raw: dict[str, Any], exc: Exception) -> None:
        self.skipped.append(_ref(raw))
        # The id and the failing element's path only: validation messages quote input values.
        reason = f"malformed {exc.path}" if isinstance(exc, Malformed) else type(exc).__name__
        log.warning("resource skipped", extra={"resource": _ref(raw), "reason": reason})


# --- Observations --------------------------------------------------------------------------------
def _raw_analyte(raw: dict[str, Any]) -> tuple[Analyte, str] | None:
    code = raw.get("code")
    if not isinstance(code, dict) or not isinstance(code.get("coding"), list):
        return None
    for coding in code["coding"]:
        if isinstance(coding, dict) and coding.get("system") == LOINC:
            analyte = LOINC_ANALYTES.get(coding.get("code"))
            if analyte is not None:
                return analyte, coding["code"]
    return None


def _raw_effective(raw: dict[str, Any]) -> datetime | None:
    period = raw.get("effectivePeriod")
    value = raw.get("effectiveDateTime") or raw.get("effectiveInstant")
    if value is None and isinstance(period, dict):
        value = period.get("start") or period.get("end")
    return to_utc(value or raw.get("issued"))


def _observations(reader: _Reader, raws: Iterable[dict[str, Any]]) -> tuple[list[LabResult], bool]:
    candidates: dict[Analyte, list[tuple[datetime, dict[str, Any], str]]] = {}
    for raw in raws:
        if raw.get("status") in _SKIP_OBSERVATION:
            continue
        found = _raw_analyte(raw)
        if found is None:
            continue
        moment = _raw_effective(raw)
        if moment is None:
            log.info("observation without a usable date skipped", extra={"resource": _ref(raw)})
            continue
        candidates.setdefault(found[0], []).append((moment, raw, found[1]))
    labs: list[LabResult] = []
    pregnant = False
    for analyte, items in candidates.items():
        items.sort(key=lambda item: item[0], reverse=True)
        if analyte not in B12_FAMILY and analyte is not Analyte.IF_ANTIBODY:
            items = items[:KEEP_PER_ANALYTE]
        for moment, raw, code in items:
            result = reader.read(raw, _lab_result, analyte, code, moment)
            if result is None:
                continue
            if analyte is Analyte.PREGNANCY_STATUS:
                pregnant = pregnant or result.text_value == "pregnant"
            else:
                labs.append(result)
    return labs, pregnant


def _lab_result(
    raw: dict[str, Any], rid: str, analyte: Analyte, code: str, moment: datetime
) -> LabResult | None:
    if string(raw, "status") not in _OBSERVATION_OK:
        return None
    quantity = obj(raw, "valueQuantity")
    text_value = string(raw, "valueString")
    concept = obj(raw, "valueCodeableConcept")
    if concept is not None:
        if analyte is Analyte.PREGNANCY_STATUS:
            found = codings(concept)
            pregnant = any(s == SNOMED and c == PREGNANT_SNOMED for s, c, _ in found) or any(
                t.strip().lower() == "pregnant" for t in texts(concept)
            )
            text_value = "pregnant" if pregnant else "not pregnant"
        else:
            text_value = next(iter(texts(concept)), None) or first_code(concept)
    value = number(quantity, "value") if quantity else None
    if value is None:
        if text_value is None:
            log.info("observation without a value skipped", extra={"resource": rid})
            return None
        return LabResult(rid, analyte, code, moment, None, None, None, None, text_value=text_value)
    unit = normalise_unit(string(quantity, "code") or string(quantity, "unit"))
    canonical = to_canonical(analyte, value, unit)
    high = low = None
    for reference in array(raw, "referenceRange")[:1]:
        high_q, low_q = obj(reference, "high"), obj(reference, "low")
        if high_q is not None and number(high_q, "value") is not None:
            ref_unit = normalise_unit(string(high_q, "code") or string(high_q, "unit")) or unit
            if ref_unit == unit:
                high = number(high_q, "value")
        if low_q is not None:
            low = number(low_q, "value")
    return LabResult(
        resource_id=rid,
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
        for contained in raw.get("contained") or ():
            if isinstance(contained, dict) and contained.get("id") == target[1:]:
                return contained.get("code")
    if isinstance(target, str) and target in index:
        return index[target].get("code")
    display = reference.get("display")
    return {"text": display} if isinstance(display, str) else None


def _drug_classes(concept: Any) -> tuple[frozenset, list[str]]:
    found = codings(concept)
    classes = classify_drug_codes((s, c) for s, c, _ in found)
    names = texts(concept)
    for name in names:
        classes |= classify_drug_name(name)
    return frozenset(classes), names


def _medication_relevant(raw: dict[str, Any], index: dict[str, dict[str, Any]]) -> bool:
    """Cheap pre-check: does any rule read this medication? (classification is cached)."""
    return bool(_drug_classes(_medication_concept(raw, index))[0])


def _medication(
    raw: dict[str, Any], rid: str, index: dict[str, dict[str, Any]], draft: bool
) -> MedicationExposure | None:
    classes, names = _drug_classes(_medication_concept(raw, index))
    status = string(raw, "status")
    kind = raw["resourceType"]
    if not draft:
        allowed = _STATEMENT_OK if kind == "MedicationStatement" else _REQUEST_OK
        if status not in allowed:
            return None
    name = names[0] if names else ", ".join(sorted(c.value for c in classes))
    if kind == "MedicationStatement":
        dosages = array(raw, "dosage")
        period = obj(raw, "effectivePeriod") or {}
        start = to_utc(string(raw, "effectiveDateTime")) or to_utc(string(period, "start"))
        end = to_utc(string(period, "end"))
    else:
        dosages = array(raw, "dosageInstruction")
        dispense = obj(raw, "dispenseRequest") or {}
        validity = obj(dispense, "validityPeriod") or {}
        start = to_utc(string(raw, "authoredOn")) or to_utc(string(validity, "start"))
        end = to_utc(string(validity, "end"))
    dosage = dosages[0] if dosages else None
    interval, count = interval_days_of(dosage)
    return MedicationExposure(
        # The id the client knows (a DSTU2 MedicationOrder stays one for delete actions).
        resource_id=rid,
        classes=classes,
        name=name,
        status=status or "unknown",
        start=start,
        end=end,
        route=route_of(dosage, name),
        dose_ug=dose_ug_of(dosage, name),
        interval_days=interval,
        is_draft=draft,
        is_stop_order=draft and status in _STOP_STATUSES,
        count=count,
    )


def _lab_order(raw: dict[str, Any], rid: str) -> DraftLabOrder | None:
    concept = obj(raw, "code")
    analytes = frozenset(
        LOINC_ANALYTES[code] for system, code, _ in codings(concept) if system == LOINC and code in LOINC_ANALYTES
    )
    if not analytes:
        return None
    name = next(iter(texts(concept)), "laboratory test")
    return DraftLabOrder(rid, analytes, name)


# --- Conditions and the patient ------------------------------------------------------------------
def _condition(raw: dict[str, Any], rid: str) -> ConditionFact | None:
    if first_code(obj(raw, "clinicalStatus")) in _CONDITION_INACTIVE:
        return None
    if first_code(obj(raw, "verificationStatus")) in _VERIFICATION_SKIP:
        return None
    concept = obj(raw, "code")
    found = codings(concept)
    names = texts(concept)
    kinds = classify_condition(tuple((s, c) for s, c, _ in found), tuple(names))
    if not kinds:
        return None
    verified = any(s == SNOMED and c in SNOMED_VERIFIED for s, c, _ in found) or bool(
        classify_condition((), tuple(names))
    )
    onset_period = obj(raw, "onsetPeriod") or {}
    onset = (
        to_utc(string(raw, "onsetDateTime"))
        or to_utc(string(onset_period, "start"))
        or to_utc(string(raw, "recordedDate"))
    )
    return ConditionFact(
        resource_id=rid,
        kinds=frozenset(kinds),
        name=names[0] if names else next(iter(kinds)).value,
        onset=onset,
        verified=verified,
    )


def _patient(reader: _Reader, raws: Sequence[dict[str, Any]], patient_id: str | None) -> PatientFacts | None:
    chosen = next((r for r in raws if patient_id and r.get("id") == patient_id), None)
    if chosen is None and raws:
        chosen = raws[0]
    if chosen is None:
        return None
    return reader.read(chosen, _patient_facts)


def _patient_facts(raw: dict[str, Any], rid: str) -> PatientFacts:
    gender = string(raw, "gender") or ""
    sex = {"female": Sex.FEMALE, "male": Sex.MALE, "other": Sex.OTHER}.get(gender, Sex.UNKNOWN)
    birth = string(raw, "birthDate")
    birth_date = to_date(birth) if birth else None
    if birth and birth_date is None:
        raise Malformed("birthDate")
    return PatientFacts(rid, birth_date, sex)
