"""Typed facts: what the FHIR adapter extracts and the rules read (rule book §1).

Every fact keeps the id of the resource it came from (``"Observation/abc"``) so that cards can
cite their evidence. Dates are timezone-aware ``datetime`` in UTC, normalised by the adapter,
within 1800-2199 (a resource with another date is skipped).

Text that came from the request (``resource_id``, ``name``, a medication's ``status``, an
unrecognised ``unit``) is already safe to print in a card (``safetext``: escaped, one line, at
most 80 characters; an id outside the FHIR id pattern reads "(invalid id)"): print it as it is,
never escape it again. ``LabResult.text_value`` is the exception: rules read its words, so it is
raw, and ``picture.result_value_text`` escapes it when a card shows it.

The facts an extraction builds by the dozen (results, medications, conditions, draft orders, the
patient) are frozen dataclasses whose ``__init__`` stores the fields in the instance's
``__dict__`` (``frozen.stored_in_dict``; tests/fhir/test_facts_init.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from .frozen import stored_in_dict
from .vocabulary import (
    B12_PRODUCTS,
    FOLATES,
    Analyte,
    ConditionKind,
    DataCategory,
    DrugClass,
    Route,
    Sex,
)

#: Statuses of a non-draft medication record that mean the patient takes it now.
EXPOSURE_NOW = frozenset({"active", "on-hold"})
#: Comparators a laboratory can put before a value (FHIR ``Quantity.comparator``).
COMPARATORS = ("<", "<=", ">", ">=")


@stored_in_dict
@dataclass(frozen=True)
class LabResult:
    """One numeric (or coded) laboratory result."""

    resource_id: str
    analyte: Analyte
    loinc: str
    effective: datetime
    value: float | None
    unit: str | None  # as reported, spelling normalised (units.normalise_unit)
    canonical_value: float | None  # None when the unit is not convertible
    canonical_unit: str | None
    reference_high: float | None = None  # in the reported unit
    reference_low: float | None = None
    #: Coded / text answer ("positive", "detected") for qualitative results, or the text of a
    #: ``valueString`` that could not be read as a number.
    text_value: str | None = None
    #: ``<``, ``<=``, ``>`` or ``>=`` when the laboratory reported a limit ("<150"), else None.
    comparator: str | None = None

    @property
    def unit_recognised(self) -> bool:
        return self.canonical_value is not None


@stored_in_dict
@dataclass(frozen=True)
class MedicationExposure:
    """A medication the patient takes, took, or is being ordered (a draft order)."""

    resource_id: str
    classes: frozenset[DrugClass]
    name: str
    status: str
    start: datetime | None = None
    end: datetime | None = None
    route: Route = Route.UNKNOWN
    #: Amount per administration in micrograms, when the dose is a mass.
    dose_ug: float | None = None
    #: Interval between administrations in days (1 = daily, 7 = weekly), when computable.
    interval_days: float | None = None
    is_draft: bool = False
    #: A draft that stops or completes therapy (re-signed with status stopped/completed).
    is_stop_order: bool = False
    #: Number of administrations when the order is a course (``timing.repeat.count``).
    count: int | None = None

    @property
    def dose_ug_per_day(self) -> float | None:
        if self.dose_ug is None or not self.interval_days:
            return None
        return self.dose_ug / self.interval_days

    @property
    def is_b12_product(self) -> bool:
        return bool(self.classes & B12_PRODUCTS)

    @property
    def is_injected_b12(self) -> bool:
        """A parenteral B12 product; hydroxocobalamin without a route counts (it is an
        injection only, in the BNF and on the US market)."""
        if not self.is_b12_product:
            return False
        if self.route.parenteral:
            return True
        return self.route is Route.UNKNOWN and self.classes & B12_PRODUCTS == {
            DrugClass.HYDROXOCOBALAMIN
        }

    @property
    def is_folate(self) -> bool:
        return bool(self.classes & FOLATES)

    @property
    def active(self) -> bool:
        """Being taken now, or being ordered (not a stop order).

        Only active / on-hold records are current exposure (completed is
        past exposure); ``intended``, ``not-taken``, ``stopped``, ``entered-in-error``,
        ``unknown`` and a ``draft`` outside the draft orders are never exposure.
        """
        if self.is_draft:
            return not self.is_stop_order
        return self.status in EXPOSURE_NOW


@stored_in_dict
@dataclass(frozen=True)
class DraftLabOrder:
    """A ServiceRequest among the draft orders, by the analyte it orders."""

    resource_id: str
    analytes: frozenset[Analyte]
    name: str


@stored_in_dict
@dataclass(frozen=True)
class ConditionFact:
    resource_id: str
    kinds: frozenset[ConditionKind]
    name: str
    onset: datetime | None = None
    #: The code that matched needs a display-text check (docs/rulebook.md: unverified SNOMED codes).
    verified: bool = True


@stored_in_dict
@dataclass(frozen=True)
class PatientFacts:
    resource_id: str
    birth_date: date | None = None
    sex: Sex = Sex.UNKNOWN

    def age_years(self, now: datetime) -> int | None:
        if self.birth_date is None:
            return None
        today = now.date()
        years = today.year - self.birth_date.year
        if (today.month, today.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


@dataclass(frozen=True)
class Facts:
    """Everything the rules know about one invocation."""

    patient: PatientFacts | None = None
    labs: tuple[LabResult, ...] = ()
    medications: tuple[MedicationExposure, ...] = ()
    conditions: tuple[ConditionFact, ...] = ()
    draft_labs: tuple[DraftLabOrder, ...] = ()
    #: For order-select: the draft orders the clinician selected (resource ids).
    selections: frozenset[str] = frozenset()
    #: Data the service could not obtain (absent prefetch that could not be fetched).
    missing: frozenset[DataCategory] = field(default_factory=frozenset)
    #: Patient observed to be pregnant by an Observation (LOINC 82810-3 answer "pregnant").
    pregnancy_observed: bool = False

    @property
    def draft_ids(self) -> frozenset[str]:
        ids = {m.resource_id for m in self.medications if m.is_draft}
        ids.update(d.resource_id for d in self.draft_labs)
        return frozenset(ids)
