"""FHIR R4 resources -> domain facts (rule book §1).

Hot path, in two steps: cheap checks on the raw JSON select the
resources a rule can use (resource type, code system and code, status); then only the elements
the rules use are read, type-checked (``jsonread``). A resource whose used elements are
malformed is skipped and its id logged; it never fails the request. With ``strict=True``
every selected resource is first validated in full with fhir.resources.R4B and skipped if it is
not valid R4 (slower; CI applies it to every fixture).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
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
    COMPARATORS,
    ConditionFact,
    DraftLabOrder,
    Facts,
    LabResult,
    MedicationExposure,
    PatientFacts,
)
from cds_service.domain.safetext import request_text, resource_ref, safe_id
from cds_service.domain.units import (
    canonical_unit,
    is_convertible,
    normalise_unit,
    parse_value_text,
    to_canonical,
)
from cds_service.domain.vocabulary import (
    B12_FAMILY,
    Analyte,
    ConditionKind,
    DataCategory,
    DrugClass,
    Sex,
)

from .dates import is_open_end, to_date, to_utc
from .jsonread import (
    Malformed,
    amount,
    array,
    coded,
    codings,
    first_code,
    obj,
    string,
    texts,
    within,
)
from .lenient import repair
from .medications import dose_ug_of, interval_days_of, route_of
from .models import validate

log = logging.getLogger(__name__)

_SKIP_OBSERVATION = {"entered-in-error", "cancelled"}
_OBSERVATION_OK = {"final", "amended", "corrected", "preliminary"}
#: ``stopped`` is kept as history only (a B12 course that ran makes later samples
#: non-diagnostic); ``MedicationExposure.active`` never counts it as exposure. ``intended``,
#: ``not-taken``, ``unknown``, ``entered-in-error`` and ``draft`` records are not exposure.
_STATEMENT_OK = {"active", "completed", "on-hold", "stopped"}
_REQUEST_OK = {"active", "completed", "on-hold"}
_STOP_STATUSES = {"stopped", "completed", "cancelled"}
_CONDITION_INACTIVE = {"resolved", "inactive", "remission"}
_VERIFICATION_SKIP = {"entered-in-error", "refuted"}
#: Results kept per non-B12 analyte: rules read the latest current one (and fall back once).
KEEP_PER_ANALYTE = 3
PREGNANT_SNOMED = "77386006"
_KIND_ORDER = list(ConditionKind)  # declaration order: names a text-less condition stably
# Members the hot path compares with, named once: ``Analyte.PREGNANCY_STATUS`` is a class
# attribute lookup through the Enum machinery (~0.3 us in CPython 3.11) every time it runs.
_PREGNANCY_STATUS = Analyte.PREGNANCY_STATUS
_IF_ANTIBODY = Analyte.IF_ANTIBODY
_SEXES = {"female": Sex.FEMALE, "male": Sex.MALE, "other": Sex.OTHER}
_SEX_UNKNOWN = Sex.UNKNOWN

T = TypeVar("T")


@dataclass(frozen=True)
class Extraction:
    facts: Facts
    skipped: tuple[str, ...]  # resource ids skipped as malformed (ids only: never content)


def extract_facts(
    resources: Iterable[Any],
    draft_orders: Sequence[Any] = (),
    *,
    patient_id: str | None = None,
    selections: Iterable[str] = (),
    missing: Iterable[DataCategory] = (),
    strict: bool = False,
    enough: Callable[[LabResult], bool] | None = None,
) -> Extraction:
    """``enough``: for an analyte outside the B12 family, the result after which no rule
    reads an older one (``domain.picture.latest_current_found`` for the evaluation's time
    and policy); its results are read newest first up to that one, at most
    ``KEEP_PER_ANALYTE``. Older results are then not read at all: not kept, and not reported
    as skipped when malformed. Without it, ``KEEP_PER_ANALYTE`` results are read."""
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
            key = (kind, rid)
            if key in seen:
                continue  # the same resource from two prefetch keys
            seen.add(key)
        group = by_type.get(kind)
        if group is None:
            group = by_type[kind] = []
        group.append(resource)

    # Referenced resources (Medication, ...) from the prefetch and from draftOrders: Epic sends
    # a draft's Medication as its own entry of the draftOrders Bundle, not in the prefetch.
    index = reference_index(
        [r for kind, items in by_type.items() if kind in REFERENCED_TYPES for r in items],
        (r for r in draft_orders if isinstance(r, dict) and _referenced(r.get("resourceType"))),
    )
    labs, pregnant = _observations(reader, by_type.get("Observation", ()), enough)
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
            # ``draft=True`` for the repair too (it was only passed to the extractor): a draft
            # without status / intent / subject is this patient's draft (docs/protocol.md).
            exposure = reader.read(raw, _medication, index, True, draft=True)
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
        # The same names the facts use: a selected draft with an invalid id still matches it.
        selections=frozenset(_selection_ref(s) for s in selections),
        missing=frozenset(missing),
        pregnancy_observed=pregnant,
    )
    return Extraction(facts, tuple(reader.skipped))


#: Resource types a rule reads through a reference (``medicationReference`` today).
REFERENCED_TYPES = frozenset({"Medication"})
#: The trailing ``Type/id`` of a reference, relative or absolute, with an optional version
#: (``https://ehr.example.org/fhir/Medication/x/_history/2`` -> ``Medication/x``).
_TRAILING_REFERENCE = re.compile(
    r"(?:^|/)([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]{1,64})?/?$"
)


def _referenced(kind: Any) -> bool:
    # A hostile resourceType may be a list or an object: never hash it.
    return isinstance(kind, str) and kind in REFERENCED_TYPES


def reference_key(reference: str) -> str | None:
    """``Type/id`` of a FHIR reference as EHRs write it: relative (``Medication/x``), absolute
    (``https://.../Medication/x``, matched on its trailing ``Type/id``, with or without
    ``/_history/n``); None for anything else (``#contained`` is looked up by the caller)."""
    if len(reference) > 2048:
        return None
    match = _TRAILING_REFERENCE.search(reference)
    return f"{match.group(1)}/{match.group(2)}" if match else None


def reference_index(*sources: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``Type/id`` -> resource, the first source first (the prefetch before draftOrders)."""
    index: dict[str, dict[str, Any]] = {}
    for source in sources:
        for resource in source:
            kind, rid = resource.get("resourceType"), resource.get("id")
            if isinstance(kind, str) and isinstance(rid, str):
                index.setdefault(f"{kind}/{rid}", resource)
    return index


def resolve_reference(
    reference: Any, holder: dict[str, Any], index: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The resource a ``Reference`` points at: ``#id`` among ``holder``'s contained resources,
    else by ``Type/id`` in ``index`` (prefetched resources and draftOrders entries)."""
    if not isinstance(reference, dict):
        return None
    target = reference.get("reference")
    if not isinstance(target, str) or not target:
        return None
    if target.startswith("#"):
        contained = holder.get("contained")
        for resource in contained if isinstance(contained, list) else ():
            if isinstance(resource, dict) and resource.get("id") == target[1:]:
                return resource
        return None
    key = reference_key(target)
    return index.get(key) if key is not None else None


#: The resource types extraction reads: each is a valid type name as it stands, so naming one
#: of these checks only its id.
_READ_TYPES = frozenset(
    {
        "Observation",
        "MedicationStatement",
        "MedicationRequest",
        "MedicationOrder",
        "ServiceRequest",
        "Condition",
        "Patient",
        "Medication",
    }
)


def _ref(raw: dict[str, Any]) -> str:
    """How facts, cards and logs name a resource: "Type/id", the id shown as "(invalid id)"
    when it is not a FHIR id (a card or a log line never carries arbitrary request text)."""
    kind, rid = raw.get("resourceType"), raw.get("id")
    if isinstance(kind, str) and kind in _READ_TYPES:
        return f"{kind}/{safe_id(rid)}"
    return resource_ref(kind, rid)


def _selection_ref(selection: object) -> str:
    kind, _, rid = selection.partition("/") if isinstance(selection, str) else ("", "", None)
    return resource_ref(kind, rid)


class _Reader:
    """Runs one extractor over one resource; a malformed resource is skipped and logged."""

    def __init__(self, strict: bool, patient_ref: str | None) -> None:
        self.strict = strict
        self.patient_ref = patient_ref
        self.skipped: list[str] = []

    def read(
        self,
        raw: dict[str, Any],
        extractor: Callable[..., T | None],
        *args: Any,
        draft: bool = False,
    ) -> T | None:
        try:
            if extractor is _medication:
                # Classified once, before anything else: what no rule reads is not even repaired.
                drug = _drug_classes(_medication_concept(raw, args[0]))
                if not drug[0]:
                    return None
                args = (*args, drug)
            if self.strict:
                data = repair(raw, patient_ref=self.patient_ref, draft=draft)
                validate(data)
            elif extractor in _READS_UNREPAIRED:
                data = raw
            else:
                data = repair(raw, patient_ref=self.patient_ref, draft=draft)
            return extractor(data, _ref(raw), *args)
        except (Malformed, ValueError, TypeError) as exc:
            self.skip(raw, exc)
            return None

    def result(
        self, raw: dict[str, Any], analyte: Analyte, code: str, moment: datetime
    ) -> LabResult | None:
        """``read(raw, _lab_result, ...)`` without its dispatch: it runs for every result."""
        if self.strict:
            return self.read(raw, _lab_result, analyte, code, moment)
        try:
            return _lab_result(raw, _ref(raw), analyte, code, moment)
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
    """The analyte of a LOINC coding we read, or None. ``Malformed`` when ``code.coding`` is
    not objects or a code is not a string: such a resource cannot be judged relevant, so it
    is skipped and its id logged instead of silently dropped (an unhashable code must not
    raise out of the cheap pre-check and fail the whole request).

    Runs for every prefetched Observation: well-formed codings are read inline here, and
    anything unusual goes to ``_checked_analyte``, which gives the same answer or names the
    malformed element."""
    code = raw.get("code")
    if code is None:
        return None
    coding = code.get("coding") if isinstance(code, dict) else None
    if isinstance(coding, list):
        for entry in coding:  # a loop: ``all()`` over a generator costs more
            if not isinstance(entry, dict):
                return _checked_analyte(raw)
        for entry in coding:
            system = entry.get("system")
            if system != LOINC:
                if system is None or isinstance(system, str):
                    continue
                break
            value = entry.get("code")
            if value is None:
                continue
            if not isinstance(value, str):
                break
            if value in LOINC_ANALYTES:
                return LOINC_ANALYTES[value], value
        else:
            return None
    return _checked_analyte(raw)


def _checked_analyte(raw: dict[str, Any]) -> tuple[Analyte, str] | None:
    code = obj(raw, "code")
    if code is None:
        return None
    # One coding object where the array belongs is accepted, as everywhere (jsonread.array).
    with within("code"):
        entries = array(code, "coding")
    for coding in entries:
        with within("code.coding"):
            # Not ``continue`` inside the ``with``: mypyc does not compile it (compiled.py).
            value = string(coding, "code") if string(coding, "system") == LOINC else None
        if value is not None and value in LOINC_ANALYTES:
            return LOINC_ANALYTES[value], value
    return None


def _raw_effective(raw: dict[str, Any]) -> datetime | None:
    period = raw.get("effectivePeriod")
    value = raw.get("effectiveDateTime") or raw.get("effectiveInstant")
    if value is None and isinstance(period, dict):
        value = period.get("start") or period.get("end")
    value = value or raw.get("issued")
    return _utc_of_text(value) if isinstance(value, str) else to_utc(value)


#: Results of one request (and of the next) share their dates: parse each text once.
#: ``to_utc`` never raises and its answers are immutable, so caching them changes nothing else.
_utc_of_text = lru_cache(maxsize=8192)(to_utc)


def forget_dates() -> None:
    """Empty the dates' cache: ``make bench`` times each call as a new patient's would run."""
    _utc_of_text.cache_clear()


def _observations(
    reader: _Reader,
    raws: Iterable[dict[str, Any]],
    enough: Callable[[LabResult], bool] | None = None,
) -> tuple[list[LabResult], bool]:
    candidates: dict[Analyte, list[tuple[datetime, dict[str, Any], str]]] = {}
    for raw in raws:
        try:
            found = _raw_analyte(raw)
            if found is None or string(raw, "status") in _SKIP_OBSERVATION:
                continue
        except Malformed as exc:
            reader.skip(raw, exc)
            continue
        moment = _raw_effective(raw)
        if moment is None:
            log.info("observation without a usable date skipped", extra={"resource": _ref(raw)})
            continue
        candidates.setdefault(found[0], []).append((moment, raw, found[1]))
    labs: list[LabResult] = []
    pregnant: bool | None = None
    for analyte, items in candidates.items():
        items.sort(key=itemgetter(0), reverse=True)
        limited = analyte not in B12_FAMILY and analyte is not _IF_ANTIBODY
        kept = 0
        for moment, raw, code in items:
            # Count results actually read, not candidates: pending (registered), valueless or
            # malformed newer ones must not push the latest usable result out of the window.
            if limited and kept >= KEEP_PER_ANALYTE:
                break
            if analyte is _PREGNANCY_STATUS and pregnant is not None:
                break
            result = reader.result(raw, analyte, code, moment)
            if result is None:
                continue
            kept += 1
            if analyte is _PREGNANCY_STATUS:
                # The latest status wins: "not pregnant" after an earlier "pregnant" (delivery,
                # a negative test) must not leave the patient pregnant.
                pregnant = result.text_value == "pregnant"
            else:
                labs.append(result)
                if limited and enough is not None and enough(result):
                    break
    return labs, bool(pregnant)


def _lab_result(
    raw: dict[str, Any], rid: str, analyte: Analyte, code: str, moment: datetime
) -> LabResult | None:
    if string(raw, "status") not in _OBSERVATION_OK:
        return None
    quantity = obj(raw, "valueQuantity")
    text_value = string(raw, "valueString")
    concept = obj(raw, "valueCodeableConcept")
    if concept is not None:
        with within("valueCodeableConcept"):
            if analyte is _PREGNANCY_STATUS:
                found = codings(concept)
                pregnant = any(s == SNOMED and c == PREGNANT_SNOMED for s, c, _ in found) or any(
                    t.strip().lower() == "pregnant" for t in texts(concept)
                )
                text_value = "pregnant" if pregnant else "not pregnant"
            else:
                text_value = next(iter(texts(concept)), None) or first_code(concept)
    value = unit = comparator = factor = to_unit = None
    if quantity is not None:
        try:  # ``within("valueQuantity")``, inline: this runs for every result read
            value = amount(quantity, "value")
            unit, factor, to_unit = _converted_unit(
                string(quantity, "code"), string(quantity, "unit"), code
            )
            comparator = string(quantity, "comparator")
        except Malformed as exc:
            raise Malformed(f"valueQuantity.{exc.path}") from None
        if comparator is not None and comparator not in COMPARATORS:
            # Not a limit a rule can read ("ad"): kept as text, so that a B12 result is
            # reported as uninterpretable rather than silently dropped.
            text_value = f"{comparator} {'' if value is None else f'{value:g}'}".strip()
            value = comparator = None
    elif text_value is not None and concept is None:
        # Labs send their lowest / highest results as text: "<150 pg/mL", "< 150", "165 ng/L".
        parsed = parse_value_text(text_value)
        if parsed is not None:
            comparator, value, text_unit = parsed
            unit = _reference_unit(raw, analyte) or normalise_unit(text_unit)
            factor = _factor(analyte, unit)
            to_unit = None if factor is None else _canonical_unit(analyte)
    if value is None:
        if text_value is None:
            log.info("observation without a value skipped", extra={"resource": rid})
            return None
        return LabResult(rid, analyte, code, moment, None, None, None, None, text_value=text_value)
    # ``units.to_canonical``'s product, its factor looked up once per (unit, analyte).
    canonical = None if factor is None else value * factor
    high = low = None
    ranges = raw.get("referenceRange")  # most results have none: no call to read nothing
    for reference in array(raw, "referenceRange")[:1] if ranges is not None else ():
        with within("referenceRange"):
            high = _limit_in_unit(obj(reference, "high"), analyte, unit, "high")
            # The same unit check as ``high``: both limits are "in the reported unit" (facts).
            low = _limit_in_unit(obj(reference, "low"), analyte, unit, "low")
    # Positional (the fields' declaration order): one of the two calls made per result read.
    return LabResult(
        rid,
        analyte,
        code,
        moment,
        value,
        unit,
        canonical,
        None if canonical is None else to_unit,
        high,
        low,
        text_value,
        comparator,
    )


def _reference_unit(raw: dict[str, Any], analyte: Analyte) -> str | None:
    """The unit of the first reference range's limits: the only unit field an Observation
    with a text value has."""
    for reference in array(raw, "referenceRange")[:1]:
        with within("referenceRange"):
            for key in ("high", "low"):
                limit = obj(reference, key)
                if limit is not None:
                    with within(key):
                        found = _unit_of(limit, analyte)
                    if found:
                        return found
    return None


@lru_cache(maxsize=4096)
def _converted_unit(
    code: str | None, display: str | None, loinc: str
) -> tuple[str | None, float | None, str | None]:
    """A result's unit (``_unit_of``), the factor to its analyte's canonical unit and that
    unit, or None, None when it does not convert. Keyed on the result's LOINC code (a key of
    ``LOINC_ANALYTES``): strings hash in C, an ``Analyte`` through ``Enum.__hash__``."""
    analyte = LOINC_ANALYTES[loinc]
    unit = _unit_spelling(code, display, analyte)
    factor = _factor(analyte, unit)
    return unit, factor, None if factor is None else _canonical_unit(analyte)


@lru_cache(maxsize=4096)
def _factor(analyte: Analyte, unit: str | None) -> float | None:
    """``units.to_canonical``'s factor (its answer for 1.0: ``1.0 * factor`` is the factor)."""
    return to_canonical(analyte, 1.0, unit)


_canonical_unit = lru_cache(maxsize=64)(canonical_unit)


def _unit_of(quantity: dict[str, Any], analyte: Analyte) -> str | None:
    """The unit of a Quantity: its code, else its display; the display also when only it is
    convertible (a local, non-UCUM code beside a readable "pg/mL" must not make the result
    uninterpretable)."""
    return _unit_spelling(string(quantity, "code"), string(quantity, "unit"), analyte)


@lru_cache(maxsize=4096)
def _unit_spelling(code: str | None, display: str | None, analyte: Analyte) -> str | None:
    """``_unit_of`` once its elements are read: units are a small vocabulary that recurs in
    every request (as ``normalise_unit``'s), and the answer is an immutable string."""
    spellings = [u for u in (normalise_unit(code), normalise_unit(display)) if u]
    unit = next((u for u in spellings if is_convertible(analyte, u)), None)
    if unit is not None:
        return unit  # one of our spellings
    # Not one the rules convert: request text, shown as data (lab-unit-unrecognised names it).
    return request_text(spellings[0]) if spellings else None


def _limit_in_unit(
    limit: dict[str, Any] | None, analyte: Analyte, unit: str | None, path: str
) -> float | None:
    """A reference limit when it is in the result's unit (a limit without a unit is taken to
    be in it); a limit in another unit is ignored rather than compared across units."""
    if limit is None:
        return None
    with within(path):
        value = amount(limit, "value")
        limit_unit = _unit_of(limit, analyte)
    if value is None or (limit_unit or unit) != unit:
        return None
    return value


# --- Dates ---------------------------------------------------------------------------------------
def _when(data: dict[str, Any], key: str) -> datetime | None:
    """A date element: ``None`` when absent; ``Malformed`` when present but not a date the rules
    can use ("9999-12-31", "0001-01-01", "2026-02-30"), so that the resource is skipped rather
    than read with a date that would overflow the rules' calendar arithmetic."""
    text = string(data, key)
    if text is None:
        return None
    moment = _utc_of_text(text)
    if moment is None:
        raise Malformed(key)
    return moment


def _end(data: dict[str, Any], key: str) -> datetime | None:
    """An end date; one beyond the usable range ("9999-12-31") is how EHRs say "no end"."""
    text = string(data, key)
    if text is not None and is_open_end(text):
        return None
    return _when(data, key)


# --- Medications ---------------------------------------------------------------------------------
def _medication_concept(raw: dict[str, Any], index: dict[str, dict[str, Any]]) -> Any:
    concept = raw.get("medicationCodeableConcept")
    if concept is not None:
        return concept
    reference = raw.get("medicationReference")
    if not isinstance(reference, dict):
        return None
    # The index holds Medications only; a contained resource is taken as the one the reference
    # names (strict mode then skips one that is not a valid resource).
    target = resolve_reference(reference, raw, index)
    if target is not None and target.get("code") is not None:
        return target["code"]
    # A Medication without a code (or out of reach) falls back to the reference's display.
    display = reference.get("display")
    return {"text": display} if isinstance(display, str) else None


def _drug_classes(concept: Any) -> tuple[frozenset, list[str]]:
    found, names = coded(concept)
    return _classes_of_drug(tuple([(s, c) for s, c, _ in found]), tuple(names)), names


@lru_cache(maxsize=4096)
def _classes_of_drug(
    pairs: tuple[tuple[str | None, str | None], ...], names: tuple[str, ...]
) -> frozenset[DrugClass]:
    """The classes of a medication's codes and names: products are a small vocabulary that
    recurs in every request (as ``classify_drug_name``'s), and the answer is immutable."""
    classes = classify_drug_codes(pairs)
    for name in names:
        classes |= classify_drug_name(name)
    return frozenset(classes)


def _medication(
    raw: dict[str, Any],
    rid: str,
    index: dict[str, dict[str, Any]],
    draft: bool,
    drug: tuple[frozenset, list[str]],
) -> MedicationExposure | None:
    """``drug``: the classes and names ``_Reader.read`` found when it checked that a rule reads
    this medication (a repair does not change the elements they come from)."""
    classes, names = drug
    status = string(raw, "status")
    kind = raw["resourceType"]
    if not draft:
        allowed = _STATEMENT_OK if kind == "MedicationStatement" else _REQUEST_OK
        if status not in allowed:
            return None
    raw_name = names[0] if names else ", ".join(sorted(c.value for c in classes))
    if kind == "MedicationStatement":
        dosages = array(raw, "dosage")
        period = obj(raw, "effectivePeriod") or {}
        with within("effectivePeriod"):
            start_of_period, end = _when(period, "start"), _end(period, "end")
        start = _when(raw, "effectiveDateTime") or start_of_period
    else:
        dosages = array(raw, "dosageInstruction")
        dispense = obj(raw, "dispenseRequest") or {}
        validity = obj(dispense, "validityPeriod") or {}
        with within("dispenseRequest.validityPeriod"):
            start_of_period, end = _when(validity, "start"), _end(validity, "end")
        start = _when(raw, "authoredOn") or start_of_period
    dosage = dosages[0] if dosages else None
    interval, count = interval_days_of(dosage)
    return MedicationExposure(
        # The id the client knows (a DSTU2 MedicationOrder stays one for delete actions).
        resource_id=rid,
        classes=classes,
        name=request_text(raw_name),
        # A draft's status is not checked against a list: it is shown as data.
        status=request_text(status) if status else "unknown",
        start=start,
        end=end,
        route=route_of(dosage, raw_name),
        dose_ug=dose_ug_of(dosage, raw_name),
        interval_days=interval,
        is_draft=draft,
        is_stop_order=draft and status in _STOP_STATUSES,
        count=count,
    )


def _lab_order(raw: dict[str, Any], rid: str) -> DraftLabOrder | None:
    concept = obj(raw, "code")
    analytes = frozenset(
        LOINC_ANALYTES[code]
        for system, code, _ in codings(concept)
        if system == LOINC and code in LOINC_ANALYTES
    )
    if not analytes:
        return None
    name = next(iter(texts(concept)), "laboratory test")
    return DraftLabOrder(rid, analytes, request_text(name))


# --- Conditions and the patient ------------------------------------------------------------------
def _condition(raw: dict[str, Any], rid: str) -> ConditionFact | None:
    if first_code(obj(raw, "clinicalStatus")) in _CONDITION_INACTIVE:
        return None
    if first_code(obj(raw, "verificationStatus")) in _VERIFICATION_SKIP:
        return None
    concept = obj(raw, "code")
    found, names = coded(concept)
    kinds, verified, kind_name = _condition_kinds(
        tuple([(s, c) for s, c, _ in found]), tuple(names)
    )
    if not kinds:
        return None
    onset_period = obj(raw, "onsetPeriod") or {}
    with within("onsetPeriod"):
        onset_of_period = _when(onset_period, "start")
    onset = _when(raw, "onsetDateTime") or onset_of_period or _when(raw, "recordedDate")
    return ConditionFact(
        rid, kinds, request_text(names[0]) if names else kind_name, onset, verified
    )


@lru_cache(maxsize=4096)
def _condition_kinds(
    pairs: tuple[tuple[str | None, str | None], ...], names: tuple[str, ...]
) -> tuple[frozenset[ConditionKind], bool, str]:
    """(kinds, verified, the name of a text-less condition) of a condition's codes and names:
    diagnoses are a small vocabulary that recurs in every request, and the answer is
    immutable. No kind: ``(frozenset(), True, "")``."""
    kinds = classify_condition(pairs, names)
    if not kinds:
        return frozenset(), True, ""
    # Only the SNOMED codes rule book §5 leaves unverified need the display-text check:
    # a kind is verified when text, a verified SNOMED code or an ICD-10 code gives it (an
    # ICD-10-coded condition without matching text is verified too).
    trusted_pairs = [(s, c) for s, c in pairs if s != SNOMED or c in SNOMED_VERIFIED]
    # Every code trusted: the same inputs give the same kinds, all verified.
    verified = len(trusted_pairs) == len(pairs) or kinds <= classify_condition(trusted_pairs, names)
    # Without text, the first kind in declaration order: iterating the set would name a
    # multi-kind code (D51.0) differently from one process to the next (hash seeds).
    return frozenset(kinds), verified, min(kinds, key=_KIND_ORDER.index).value


def _patient(
    reader: _Reader, raws: Sequence[dict[str, Any]], patient_id: str | None
) -> PatientFacts | None:
    chosen = next((r for r in raws if patient_id and r.get("id") == patient_id), None)
    if chosen is None and raws:
        chosen = raws[0]
    if chosen is None:
        return None
    return reader.read(chosen, _patient_facts)


def _patient_facts(raw: dict[str, Any], rid: str) -> PatientFacts:
    gender = string(raw, "gender") or ""
    sex = _SEXES.get(gender, _SEX_UNKNOWN)
    birth = string(raw, "birthDate")
    birth_date = to_date(birth) if birth else None
    if birth and birth_date is None:
        raise Malformed("birthDate")
    return PatientFacts(rid, birth_date, sex)


#: Extractors that read nothing a repair changes: an Observation's or a Condition's repairs
#: only wrap a single object in a list (``category``, ``referenceRange``, ...), and ``array``
#: reads a single object as a list of one. They read the resource as sent unless strict mode
#: validates it, which needs the repaired form.
_READS_UNREPAIRED = frozenset({_lab_result, _condition})
