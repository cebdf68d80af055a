"""Builders for domain facts in tests: readable, with clinical defaults.

``NOW`` is the fixed evaluation time of every unit test; dates are given as days before it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from itertools import count

from cds_service.domain.codes import LOINC_ANALYTES
from cds_service.domain.engine import HookKind, evaluate
from cds_service.domain.facts import (
    ConditionFact,
    DraftLabOrder,
    Facts,
    LabResult,
    MedicationExposure,
    PatientFacts,
)
from cds_service.domain.picture import ClinicalPicture
from cds_service.domain.policy import DEFAULT_POLICY, Policy
from cds_service.domain.units import canonical_unit, normalise_unit, to_canonical
from cds_service.domain.vocabulary import Analyte, ConditionKind, DrugClass, Route, Sex

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
_ids = count(1)

_DEFAULT_LOINC = {}
for _code, _analyte in LOINC_ANALYTES.items():
    _DEFAULT_LOINC.setdefault(_analyte, _code)
_DEFAULT_UNIT = {
    Analyte.TOTAL_B12: "ng/L",
    Analyte.ACTIVE_B12: "pmol/L",
    Analyte.MMA: "nmol/L",
    Analyte.HAEMOGLOBIN: "g/dL",
    Analyte.MCV: "fL",
    Analyte.POTASSIUM: "mmol/L",
    Analyte.EGFR: "mL/min/{1.73_m2}",
    Analyte.FOLATE: "ng/mL",
    Analyte.PLATELETS: "10*9/L",
    Analyte.RETICULOCYTES: "%",
    Analyte.HAEMATOCRIT: "%",
    Analyte.HOMOCYSTEINE: "umol/L",
    Analyte.CREATININE: "mg/dL",
}


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def months_ago(months: float) -> datetime:
    return NOW - timedelta(days=months * 30.4375)


def lab(
    analyte: Analyte,
    value: float | None,
    unit: str | None = "default",
    *,
    days: float = 10,
    when: datetime | None = None,
    loinc: str | None = None,
    high: float | None = None,
    text: str | None = None,
    rid: str | None = None,
    comparator: str | None = None,
) -> LabResult:
    if unit == "default":
        unit = _DEFAULT_UNIT.get(analyte)
    unit = normalise_unit(unit)
    canonical = to_canonical(analyte, value, unit) if value is not None else None
    return LabResult(
        resource_id=rid or f"Observation/obs-{next(_ids)}",
        analyte=analyte,
        loinc=loinc or _DEFAULT_LOINC[analyte],
        effective=when or days_ago(days),
        value=value,
        unit=unit,
        canonical_value=canonical,
        canonical_unit=canonical_unit(analyte) if canonical is not None else None,
        reference_high=high,
        text_value=text,
        comparator=comparator,
    )


def b12(value: float, unit: str = "ng/L", **kw) -> LabResult:
    if unit == "pmol/L":
        kw.setdefault("loinc", "14685-2")
    return lab(Analyte.TOTAL_B12, value, unit, **kw)


def active_b12(value: float, **kw) -> LabResult:
    return lab(Analyte.ACTIVE_B12, value, "pmol/L", **kw)


def mma(value: float, unit: str = "nmol/L", **kw) -> LabResult:
    return lab(Analyte.MMA, value, unit, **kw)


def med(
    *classes: DrugClass,
    name: str | None = None,
    status: str = "active",
    start: datetime | None = None,
    months: float | None = None,
    route: Route = Route.UNKNOWN,
    dose_ug: float | None = None,
    interval_days: float | None = None,
    draft: bool = False,
    stop: bool = False,
    count_: int | None = None,
    rid: str | None = None,
) -> MedicationExposure:
    if months is not None:
        start = months_ago(months)
    prefix = "MedicationRequest" if draft else "MedicationStatement"
    return MedicationExposure(
        resource_id=rid or f"{prefix}/med-{next(_ids)}",
        classes=frozenset(classes),
        name=name or " + ".join(c.value for c in classes),
        status="draft" if draft and not stop else status,
        start=start,
        route=route,
        dose_ug=dose_ug,
        interval_days=interval_days,
        is_draft=draft,
        is_stop_order=stop,
        count=count_,
    )


def draft(*classes: DrugClass, **kw) -> MedicationExposure:
    kw.setdefault("start", NOW)
    return med(*classes, draft=True, **kw)


def folic_acid_draft(mg_per_day: float = 5, **kw) -> MedicationExposure:
    kw.setdefault("name", f"Folic acid {mg_per_day:g} MG Oral Tablet")
    return draft(
        DrugClass.FOLIC_ACID, route=Route.ORAL, dose_ug=mg_per_day * 1000, interval_days=1, **kw
    )


def condition(
    *kinds: ConditionKind, name: str | None = None, rid: str | None = None
) -> ConditionFact:
    return ConditionFact(
        resource_id=rid or f"Condition/cond-{next(_ids)}",
        kinds=frozenset(kinds),
        name=name or kinds[0].value,
    )


def lab_order(*analytes: Analyte, name: str = "B12 test", rid: str | None = None) -> DraftLabOrder:
    return DraftLabOrder(rid or f"ServiceRequest/sr-{next(_ids)}", frozenset(analytes), name)


def patient(age: int = 50, sex: Sex = Sex.FEMALE) -> PatientFacts:
    return PatientFacts("Patient/p1", date(NOW.year - age, 1, 1), sex)


def facts(*items, patient_: PatientFacts | None = None, **kw) -> Facts:
    """Facts from a mixed list of labs, medications, conditions and draft lab orders."""
    return Facts(
        patient=patient_ or patient(),
        labs=tuple(i for i in items if isinstance(i, LabResult)),
        medications=tuple(i for i in items if isinstance(i, MedicationExposure)),
        conditions=tuple(i for i in items if isinstance(i, ConditionFact)),
        draft_labs=tuple(i for i in items if isinstance(i, DraftLabOrder)),
        **kw,
    )


def picture(*items, policy: Policy = DEFAULT_POLICY, now: datetime = NOW, **kw) -> ClinicalPicture:
    return ClinicalPicture(facts(*items, **kw), now, policy)


def run(rule, *items, **kw):
    """``rule.evaluate`` over facts built from ``items``."""
    return rule.evaluate(picture(*items, **kw))


def shown(*items, hook: HookKind = HookKind.PATIENT_VIEW, policy: Policy = DEFAULT_POLICY, **kw):
    """Rule ids of the cards a hook shows, in order."""
    return [f.rule_id for f in evaluate(facts(*items, **kw), NOW, hook, policy).shown]


__all__ = [
    "NOW",
    "days_ago",
    "months_ago",
    "lab",
    "b12",
    "active_b12",
    "mma",
    "med",
    "draft",
    "folic_acid_draft",
    "condition",
    "lab_order",
    "patient",
    "facts",
    "picture",
    "run",
    "shown",
    "replace",
    "Analyte",
    "ConditionKind",
    "DrugClass",
    "Route",
    "Sex",
    "HookKind",
]
