"""The clinical picture: evidence derived once from the facts and shared by every rule.

Rules receive a ``ClinicalPicture`` (facts + ``now`` + site policy). Derived values are cached
properties, so the B12 status is decided once per invocation, in one place, and every rule that
speaks of it speaks of the same evidence. Pure: no clock, no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, Generic, TypeVar, overload

from .b12status import B12Assessment, assess_b12
from .bands import (
    Band,
    above,
    active_b12_band,
    below,
    folate_deficient,
    mma_raised,
    total_b12_band,
)
from .dates import add_months, months_between
from .facts import ConditionFact, Facts, LabResult, MedicationExposure
from .policy import DEFAULT_POLICY, Policy
from .resulttext import duration_text
from .vocabulary import (
    B12_FAMILY,
    MALABSORPTION_CAUSES,
    POSSIBLE_NEUROLOGICAL,
    Analyte,
    ConditionKind,
    DrugClass,
    Sex,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
_EFFECTIVE = attrgetter("effective")


class derived(Generic[T]):
    """A value the picture derives on first use and keeps (in the instance's ``__dict__``).

    ``functools.cached_property`` without its lock: before Python 3.12 that lock is one per
    property, shared by every instance, so concurrent requests queue on each other's first
    reads. A picture belongs to one invocation and one thread; it needs no lock.
    """

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> derived[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> derived[T] | T:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)
        return value


def _numeric(result: LabResult) -> bool:
    return result.value is not None and result.unit_recognised


def latest_current_found(
    now: datetime, policy: Policy = DEFAULT_POLICY
) -> Callable[[LabResult], bool]:
    """Would ``ClinicalPicture.latest_current`` of a picture at ``now`` under ``policy``
    stop at this result, numeric or not? A current, numeric result ends both searches, so once
    an analyte's results, read newest first, reach one, neither needs an older result. The
    extraction stops there (``fhir.extract.extract_facts``'s ``enough``) for the analytes
    outside the B12 family, which the rules read through ``latest_current`` only."""
    picture = ClinicalPicture(Facts(), now, policy)

    def found(result: LabResult) -> bool:
        return picture.is_current(result) and _numeric(result)

    return found


@dataclass(frozen=True)
class RiskFactor:
    text: str
    evidence: str | None = None  # resource id


class ClinicalPicture:
    """Facts, the evaluation time and the site policy, with derived evidence."""

    def __init__(self, facts: Facts, now: datetime, policy: Policy = DEFAULT_POLICY) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.facts = facts
        self.now = now
        self.policy = policy
        #: A result dated after this is a data error (see ``_results_by_analyte``).
        self._latest = now + timedelta(days=1)

    # --- time -----------------------------------------------------------------------------
    @derived
    def window_start(self) -> datetime:
        return add_months(self.now, -self.policy.windows.lookback_months)

    def is_current(self, result: LabResult) -> bool:
        return self.window_start <= result.effective <= self._latest

    def days_since(self, moment: datetime) -> int:
        """Whole calendar days from ``moment`` to now (a date-only start counts from its day)."""
        return (self.now.date() - moment.date()).days

    def months_on(self, medication: MedicationExposure) -> float | None:
        if medication.start is None:
            return None
        return max(0.0, months_between(medication.start, self.now))

    # --- medications ------------------------------------------------------------------------
    @derived
    def _b12_products(self) -> tuple[MedicationExposure, ...]:
        """Every B12 product in the record and the drafts, in the facts' order."""
        return tuple(m for m in self.facts.medications if m.is_b12_product)

    def medications_of(
        self, *classes: DrugClass, drafts: bool | None = None
    ) -> tuple[MedicationExposure, ...]:
        if self._drug_classes.isdisjoint(classes):  # the common answer, without a scan
            return ()
        wanted = set(classes)
        return tuple(
            m
            for m in self.facts.medications
            if m.classes & wanted and m.active and (drafts is None or m.is_draft == drafts)
        )

    @derived
    def _drug_classes(self) -> frozenset[DrugClass]:
        """Every class any medication (or draft) has."""
        return frozenset(k for m in self.facts.medications for k in m.classes)

    @derived
    def b12_therapy(self) -> tuple[MedicationExposure, ...]:
        """Active B12 products the patient is on (not drafts)."""
        return tuple(m for m in self._b12_products if m.active and not m.is_draft)

    @derived
    def b12_drafts(self) -> tuple[MedicationExposure, ...]:
        return tuple(m for m in self._b12_products if m.is_draft and m.active)

    @derived
    def established_b12_therapy(self) -> tuple[MedicationExposure, ...]:
        """B12 replacement under way: an active B12 product, or a completed course or
        injection whose last date (end, else start) lies within the longest maintenance
        interval (``windows.im_max_interval_months``): injections given in clinic are often
        recorded as completed orders, one per dose. A first B12 order among the drafts is
        not established therapy."""
        since = add_months(self.now, -self.policy.windows.im_max_interval_months)
        recent = tuple(
            m
            for m in self._b12_products
            if not m.is_draft
            and m.status == "completed"
            and (last := m.end or m.start) is not None
            and last >= since
        )
        return self.b12_therapy + recent

    @derived
    def has_b12_therapy(self) -> bool:
        """rule book §3: an active B12 product, or one among the draft orders."""
        return bool(self.b12_therapy or self.b12_drafts)

    @derived
    def b12_taken(self) -> tuple[MedicationExposure, ...]:
        """B12 products taken or given, in any status (not drafts): the therapy history."""
        return tuple(m for m in self._b12_products if not m.is_draft)

    @derived
    def b12_therapy_start(self) -> datetime | None:
        """When B12 replacement first began (the earliest start among B12 products taken).

        Active therapy without a start date counts as started before every result.
        """
        starts = []
        for m in self.b12_taken:
            if m.start is not None:
                starts.append(m.start)
            elif m.active:
                return datetime.min.replace(tzinfo=self.now.tzinfo)
        return min(starts) if starts else None

    def drawn_on_therapy(self, result: LabResult) -> bool:
        """Was B12 replacement running (or recently stopped) when this sample was drawn?

        NICE: take samples before replacement; a result drawn on therapy can never rule
        deficiency in or out. Active therapy counts from its start (from before every result
        when its start is unknown). A finished course counts until its end plus the wash-out
        window (``windows.b12_washout_months``: IM hydroxocobalamin keeps serum B12 raised for
        months). A course without an end date counts as still running: its end cannot be
        shown to predate the sample (the safety property "results after B12 therapy started
        never rule deficiency out" outranks the cost of a missed re-test).
        """
        washout_months = self.policy.windows.b12_washout_months
        for m in self.b12_taken:
            if m.start is None:
                if m.active:
                    return True
                continue
            if result.effective < m.start:
                continue
            if m.end is None or result.effective <= add_months(m.end, washout_months):
                return True
        return False

    # --- labs -------------------------------------------------------------------------------
    def results(self, analyte: Analyte) -> tuple[LabResult, ...]:
        """All results for an analyte, newest first."""
        return self._results_by_analyte.get(analyte, ())

    @derived
    def _results_by_analyte(self) -> dict[Analyte, tuple[LabResult, ...]]:
        grouped: dict[Analyte, list[LabResult]] = {}
        latest = self._latest
        for lab in self.facts.labs:
            if lab.effective > latest:
                # A result dated more than a day ahead is a data error: never current, never
                # "the last result" either. Skipped, its id logged.
                log.info("future-dated result skipped", extra={"resource": lab.resource_id})
                continue
            grouped.setdefault(lab.analyte, []).append(lab)
        return {k: tuple(sorted(v, key=_EFFECTIVE, reverse=True)) for k, v in grouped.items()}

    def latest_current(self, analyte: Analyte, *, numeric: bool = True) -> LabResult | None:
        """The newest current result (a number in a recognised unit, unless ``numeric`` is
        False): the only way the rules read an analyte outside the B12 family, which is why
        the extraction may stop at the first result ``latest_current_found`` accepts."""
        for result in self.results(analyte):
            if not self.is_current(result):
                continue
            if numeric and not _numeric(result):
                continue
            return result
        return None

    def interpretable(self, result: LabResult) -> bool:
        """A B12-family result the bands can read: a number in a recognised unit, and a
        reported limit ("<150", ">2000") only when it settles the band."""
        if result.value is None or not result.unit_recognised:
            return False
        if result.comparator is None:
            return True
        if result.analyte is Analyte.TOTAL_B12:
            return total_b12_band(result, self.policy) is not Band.UNINTERPRETABLE
        if result.analyte is Analyte.ACTIVE_B12:
            return active_b12_band(result, self.policy) is not Band.UNINTERPRETABLE
        if result.analyte is Analyte.MMA:
            return mma_raised(result, self.policy) is not None
        return True

    def diagnostic(self, analyte: Analyte) -> LabResult | None:
        """Latest current, interpretable B12-family result drawn before therapy began."""
        for result in self.results(analyte):
            if (
                self.is_current(result)
                and self.interpretable(result)
                and not self.drawn_on_therapy(result)
            ):
                return result
        return None

    @derived
    def on_therapy_results(self) -> tuple[LabResult, ...]:
        """Current B12-family results drawn after B12 therapy began (not diagnostic)."""
        return tuple(
            r
            for a in (Analyte.TOTAL_B12, Analyte.ACTIVE_B12, Analyte.MMA)
            for r in self.results(a)
            if self.is_current(r) and self.drawn_on_therapy(r)
        )

    @derived
    def unrecognised_b12_results(self) -> tuple[LabResult, ...]:
        """Current B12-family results whose value or unit cannot be interpreted (text such as
        "see comment", an unknown unit, a limit such as ">100" that settles nothing)."""
        return tuple(
            r
            for a in B12_FAMILY
            for r in self.results(a)
            if self.is_current(r) and not self.interpretable(r)
        )

    @derived
    def stale_b12(self) -> LabResult | None:
        """The latest total/active B12 that is not current diagnostic evidence."""
        candidates = [
            r
            for a in (Analyte.TOTAL_B12, Analyte.ACTIVE_B12)
            for r in self.results(a)
            if r.value is not None and (not self.is_current(r) or self.drawn_on_therapy(r))
        ]
        return max(candidates, key=_EFFECTIVE, default=None)

    @derived
    def egfr(self) -> LabResult | None:
        return self.latest_current(Analyte.EGFR)

    @derived
    def renal_impairment(self) -> bool:
        return self.egfr_impaired or bool(
            self.conditions_of(ConditionKind.CKD, ConditionKind.DIALYSIS)
        )

    @derived
    def egfr_impaired(self) -> bool:
        return below(self.egfr, self.policy.thresholds.egfr_impaired_below)

    @derived
    def macrocytosis(self) -> LabResult | None:
        mcv = self.latest_current(Analyte.MCV)
        return mcv if above(mcv, self.policy.thresholds.mcv_macrocytosis_above_fl) else None

    @derived
    def low_haemoglobin(self) -> LabResult | None:
        """The latest current haemoglobin when it is below the sex-specific limit (13 g/dL men,
        12 g/dL women; a patient whose sex is not male is judged against the lower limit)."""
        hb = self.latest_current(Analyte.HAEMOGLOBIN)
        t = self.policy.thresholds
        sex = self.facts.patient.sex if self.facts.patient else Sex.UNKNOWN
        limit = t.haemoglobin_low_male_g_dl if sex is Sex.MALE else t.haemoglobin_low_female_g_dl
        return hb if below(hb, limit) else None

    @derived
    def anaemia_conditions(self) -> tuple[ConditionFact, ...]:
        """Recorded anaemia diagnoses. The *name* pernicious anaemia is a malabsorption cause,
        not a haemoglobin: it never counts here by itself."""
        return self.conditions_of(ConditionKind.ANAEMIA, ConditionKind.MEGALOBLASTIC_ANAEMIA)

    @derived
    def anaemia(self) -> bool:
        """Haemoglobin below the sex-specific limit in a current result, or an anaemia
        condition (pernicious anaemia alone is not one)."""
        return self.low_haemoglobin is not None or bool(self.anaemia_conditions)

    @derived
    def unexplained_anaemia(self) -> bool:
        """Anaemia (a screening sign) whose cause is not already recorded: an anaemia
        diagnosis that names another cause (iron deficiency, blood loss, kidney disease,
        haemoglobinopathy, chronic disease) explains it. A megaloblastic anaemia does not:
        it is the picture B12 testing is for."""
        if not self.anaemia:
            return False
        return not any(
            ConditionKind.EXPLAINED_ANAEMIA in c.kinds
            and ConditionKind.MEGALOBLASTIC_ANAEMIA not in c.kinds
            for c in self.facts.conditions
        )

    @derived
    def folate_deficiency(self) -> LabResult | None:
        """The latest current serum or red-cell folate below the limit for its unit
        (``thresholds.folate_deficient_below_*``, ``thresholds.rbc_folate_deficient_below_*``)."""
        found = [
            result
            for analyte in (Analyte.FOLATE, Analyte.RBC_FOLATE)
            if (result := self.latest_current(analyte)) is not None
            and folate_deficient(result, self.policy)
        ]
        return max(found, key=_EFFECTIVE, default=None)

    @derived
    def megaloblastic_picture(self) -> bool:
        """Anaemia with macrocytosis, or a recorded megaloblastic anaemia."""
        return (self.anaemia and self.macrocytosis is not None) or bool(
            self.conditions_of(ConditionKind.MEGALOBLASTIC_ANAEMIA)
        )

    @derived
    def potassium(self) -> LabResult | None:
        return self.latest_current(Analyte.POTASSIUM)

    # --- conditions -------------------------------------------------------------------------
    def conditions_of(self, *kinds: ConditionKind) -> tuple[ConditionFact, ...]:
        if self._condition_kinds.isdisjoint(kinds):  # the common answer, without a scan
            return ()
        wanted = set(kinds)
        return tuple(c for c in self.facts.conditions if c.kinds & wanted)

    @derived
    def _condition_kinds(self) -> frozenset[ConditionKind]:
        """Every kind any recorded condition has."""
        return frozenset(k for c in self.facts.conditions for k in c.kinds)

    @derived
    def neurological(self) -> tuple[ConditionFact, ...]:
        """Conditions in the site's neurological-involvement set (rule book §1)."""
        return self.conditions_of(*self.policy.neurological_involvement)

    @derived
    def neuro_possible_only(self) -> bool:
        """Involvement rests only on headache / back pain: the card must say so plainly."""
        return bool(self.neurological) and all(
            not (c.kinds & (self.policy.neurological_involvement - POSSIBLE_NEUROLOGICAL))
            for c in self.neurological
        )

    @derived
    def scd_recorded(self) -> bool:
        return bool(self.conditions_of(ConditionKind.SUBACUTE_COMBINED_DEGENERATION))

    @derived
    def malabsorption(self) -> tuple[ConditionFact, ...]:
        return self.conditions_of(*MALABSORPTION_CAUSES)

    @derived
    def if_antibody_positive(self) -> LabResult | None:
        for result in self.results(Analyte.IF_ANTIBODY):
            text = (result.text_value or "").lower()
            if any(w in text for w in ("positive", "detected", "present", "reactive")) and not any(
                w in text
                for w in ("not detected", "negative", "absent", "non-reactive", "nonreactive")
            ):
                return result
        return None

    @derived
    def has_malabsorption_cause(self) -> bool:
        return bool(self.malabsorption) or self.if_antibody_positive is not None

    @derived
    def pregnant(self) -> bool:
        if self.facts.patient is not None and self.facts.patient.sex is Sex.MALE:
            return False
        return self.facts.pregnancy_observed or bool(self.conditions_of(ConditionKind.PREGNANCY))

    @derived
    def planning_pregnancy(self) -> bool:
        return bool(self.conditions_of(ConditionKind.PRECONCEPTION))

    @derived
    def age(self) -> int | None:
        return self.facts.patient.age_years(self.now) if self.facts.patient else None

    # --- B12 status -------------------------------------------------------------------------
    @derived
    def b12(self) -> B12Assessment:
        return assess_b12(self)

    # --- risk factors (b12-screening-due, b12-cause-workup) ---------------------------------
    @derived
    def drug_risk_factors(self) -> tuple[RiskFactor, ...]:
        w = self.policy.windows
        found: list[RiskFactor] = []
        for cls, minimum, label in (
            (DrugClass.METFORMIN, w.metformin_months, "metformin"),
            (DrugClass.PPI, w.acid_suppression_months, "a proton pump inhibitor"),
            (DrugClass.H2_BLOCKER, w.acid_suppression_months, "an H2 blocker"),
        ):
            best = None
            for m in self.medications_of(cls, drafts=False):
                months = self.months_on(m)
                if months is not None and months >= minimum and (best is None or months > best[0]):
                    best = (months, m)
            if best:
                found.append(
                    RiskFactor(f"on {label} for {duration_text(best[0])}", best[1].resource_id)
                )
        for cls, label in (
            (DrugClass.COLCHICINE, "colchicine"),
            (DrugClass.AMINOSALICYLIC_ACID, "para-aminosalicylic acid"),
        ):
            for m in self.medications_of(cls, drafts=False)[:1]:
                found.append(RiskFactor(f"on {label}", m.resource_id))
        return tuple(found)

    @derived
    def other_risk_factors(self) -> tuple[RiskFactor, ...]:
        found: list[RiskFactor] = []
        patient = self.facts.patient
        if self.age is not None and self.age > self.policy.thresholds.age_risk_above_years:
            found.append(RiskFactor(f"age {self.age}", patient.resource_id if patient else None))
        for kind, label in (
            (ConditionKind.VEGAN_DIET, "vegan / strict vegetarian diet"),
            (ConditionKind.ALCOHOL_USE_DISORDER, "heavy alcohol use"),
        ):
            for c in self.conditions_of(kind)[:1]:
                found.append(RiskFactor(label, c.resource_id))
        for c in self.malabsorption:
            found.append(RiskFactor(c.name, c.resource_id))
        if self.if_antibody_positive is not None:
            found.append(
                RiskFactor(
                    "intrinsic factor antibody positive", self.if_antibody_positive.resource_id
                )
            )
        return tuple(found)
