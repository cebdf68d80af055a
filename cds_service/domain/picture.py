"""The clinical picture: evidence derived once from the facts and shared by every rule.

Rules receive a ``ClinicalPicture`` (facts + ``now`` + site policy). Derived values are cached
properties, so the B12 status is decided once per invocation, in one place, and every rule that
speaks of it speaks of the same evidence. Pure: no clock, no I/O.
"""

from __future__ import annotations

import calendar
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import cached_property

from .facts import ConditionFact, Facts, LabResult, MedicationExposure
from .policy import DEFAULT_POLICY, Policy
from .safetext import request_text
from .units import NG_L_TO_PMOL_L, PMOL_L_TO_NG_L, display_unit, format_number, to_canonical
from .vocabulary import (
    B12_FAMILY,
    MALABSORPTION_CAUSES,
    POSSIBLE_NEUROLOGICAL,
    Analyte,
    ConditionKind,
    DrugClass,
    Sex,
)

DAYS_PER_MONTH = 30.4375

log = logging.getLogger(__name__)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day ``months`` calendar months later (clamped to the month's last day)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def months_between(start: datetime, end: datetime) -> float:
    """Calendar months, with the part-month as a fraction: 15 Feb -> 15 Jun is 4.0.

    Clinical windows are said in calendar months ("metformin for 4 months"); dates are
    compared by calendar day, so a date-only start counts from its day, not its midnight.
    """
    start_day, end_day = start.date(), end.date()
    if end_day < start_day:
        return -months_between(end, start)
    whole = (end_day.year - start_day.year) * 12 + end_day.month - start_day.month
    anchor = add_months(start, whole).date()
    if anchor > end_day:
        whole -= 1
        anchor = add_months(start, whole).date()
    following = add_months(start, whole + 1).date()
    return whole + (end_day - anchor).days / (following - anchor).days


class Band(Enum):
    """Where one B12-family result falls (rule book §2)."""

    DEFICIENT = "deficient"
    INDETERMINATE = "indeterminate"
    UNLIKELY = "deficiency unlikely"
    UNINTERPRETABLE = "not interpretable"


class B12Status(Enum):
    """The patient's B12 status from the current diagnostic evidence."""

    DEFICIENT = "deficient"
    FUNCTIONAL_DEFICIENCY = "functional deficiency"
    INDETERMINATE = "indeterminate"
    UNLIKELY = "deficiency unlikely"
    UNKNOWN = "unknown"

    @property
    def is_deficient(self) -> bool:
        return self in (B12Status.DEFICIENT, B12Status.FUNCTIONAL_DEFICIENCY)


def b12_pair(result: LabResult, policy: Policy) -> tuple[float, float, float]:
    """(value, deficient-below, unlikely-above) of a total B12 in the scale of its reported
    unit: pmol/L against the molar pair, every mass unit against the mass pair."""
    t = policy.thresholds
    if result.unit == "pmol/L":
        return (
            result.value,
            t.total_b12_deficient_below_pmol_l,
            t.total_b12_unlikely_above_pmol_l,
        )
    # ng/L, pg/mL and ng/mL (x1000) are one mass scale: the mass pair applies.
    return (
        result.canonical_value,
        t.total_b12_deficient_below_ng_l,
        t.total_b12_unlikely_above_ng_l,
    )


def total_b12_band(result: LabResult, policy: Policy) -> Band:
    """Against the pair of the *reported* unit: never convert then compare."""
    if result.value is None or not result.unit_recognised:
        return Band.UNINTERPRETABLE
    value, low, high = b12_pair(result, policy)
    return _band(value, low, high, result.comparator)


def active_b12_band(result: LabResult, policy: Policy) -> Band:
    t = policy.thresholds
    if result.value is None or not result.unit_recognised:
        return Band.UNINTERPRETABLE
    return _band(
        result.canonical_value,
        t.active_b12_deficient_below_pmol_l,
        t.active_b12_unlikely_above_pmol_l,
        result.comparator,
    )


def _band(
    value: float, deficient_below: float, unlikely_above: float, comparator: str | None = None
) -> Band:
    """The band of a value, or of a reported limit ("<150", ">2000").

    ``<N`` / ``<=N`` with N at or below the deficient cut-off is deficient; with N above it,
    indeterminate (it may be deficient: never "unlikely"). ``>N`` / ``>=N`` with N at or above
    the "unlikely" cut-off is unlikely; any other ``>N`` cannot be interpreted.
    """
    if comparator in ("<", "<="):
        return Band.DEFICIENT if value <= deficient_below else Band.INDETERMINATE
    if comparator in (">", ">="):
        return Band.UNLIKELY if value >= unlikely_above else Band.UNINTERPRETABLE
    if value < deficient_below:
        return Band.DEFICIENT
    if value > unlikely_above:
        return Band.UNLIKELY
    return Band.INDETERMINATE


def below(result: LabResult | None, limit: float) -> bool:
    """Is the result (in its canonical unit) surely below ``limit``? A reported limit counts
    only when every value it allows is below ("<60" for 60, not ">10")."""
    if result is None or result.canonical_value is None:
        return False
    value, comparator = result.canonical_value, result.comparator
    if comparator == "<":
        return value <= limit
    if comparator in (">", ">="):
        return False
    return value < limit


def above(result: LabResult | None, limit: float) -> bool:
    """Is the result (in its canonical unit) surely above ``limit``?"""
    if result is None or result.canonical_value is None:
        return False
    value, comparator = result.canonical_value, result.comparator
    if comparator == ">":
        return value >= limit
    if comparator in ("<", "<="):
        return False
    return value > limit


def mma_raised(result: LabResult, policy: Policy) -> bool | None:
    """MMA above its limit (True), not above it (False), or a reported limit that does not
    settle it (None: "<400" with a limit of 271, ">100")."""
    if result.value is None or not result.unit_recognised:
        return None
    limit = mma_limit_nmol_l(result, policy)
    value, comparator = result.canonical_value, result.comparator
    if comparator in ("<", "<="):
        return False if value <= limit else None
    if comparator in (">", ">="):
        return True if value >= limit else None
    return value > limit


def mma_limit_nmol_l(result: LabResult, policy: Policy) -> float:
    """The lab's upper limit (converted to nmol/L) when given, else the default (NICE)."""
    if result.reference_high is not None:
        converted = to_canonical(Analyte.MMA, result.reference_high, result.unit)
        if converted is not None and converted > 0:
            return converted
    return policy.thresholds.mma_upper_limit_nmol_l


def describe(result: LabResult) -> str:
    """Evidence as a card names it: value in both units for B12, date, resource."""
    day = result.effective.date().isoformat()
    return f"{result_value_text(result)} on {day} ({result.resource_id})"


def result_value_text(result: LabResult, policy: Policy = DEFAULT_POLICY) -> str:
    """The reported value first, with its comparator ("<150 pg/mL"); a total B12 also in the
    other unit as a whole-number approximation ("180 ng/L (\u2248133 pmol/L)")."""
    if result.value is None:
        return request_text(result.text_value) or "no value"
    cmp = result.comparator or ""
    reported = f"{cmp}{format_number(result.value)} {display_unit(result.unit)}".strip()
    if result.analyte is Analyte.TOTAL_B12 and result.unit_recognised:
        if result.unit == "pmol/L":
            other = f"{_approx(result, policy, result.value * PMOL_L_TO_NG_L)} ng/L"
        else:
            ng_l = result.canonical_value
            other = f"{_approx(result, policy, ng_l * NG_L_TO_PMOL_L)} pmol/L"
            if result.unit != "ng/L":
                other = f"{cmp}{format_number(ng_l)} ng/L, {other}"
        return f"{reported} ({other})"
    if result.analyte is Analyte.MMA and result.unit_recognised and result.unit != "nmol/L":
        return f"{reported} ({cmp}{format_number(result.canonical_value)} nmol/L)"
    return reported


def _approx(result: LabResult, policy: Policy, converted: float) -> str:
    """A converted total B12 as "\u2248133": a whole number, moved by one when rounding would
    put it on the other side of the other unit's cut-off than the reported value's band
    (179.9 ng/L is deficient: "\u2248132 pmol/L", never 133)."""
    whole = round(converted)
    t = policy.thresholds
    if result.unit == "pmol/L":
        low, high = t.total_b12_deficient_below_ng_l, t.total_b12_unlikely_above_ng_l
    else:
        low, high = t.total_b12_deficient_below_pmol_l, t.total_b12_unlikely_above_pmol_l
    if result.comparator is None and math.isfinite(converted):
        band = total_b12_band(result, policy)
        if band is Band.DEFICIENT and whole >= low:
            whole = math.ceil(low) - 1
        elif band is Band.INDETERMINATE and whole < low:
            whole = math.ceil(low)
        elif band is Band.INDETERMINATE and whole > high:
            whole = math.floor(high)
        elif band is Band.UNLIKELY and whole <= high:
            whole = math.floor(high) + 1
    return f"\u2248{result.comparator or ''}{whole}"


@dataclass(frozen=True)
class B12Assessment:
    status: B12Status
    total: LabResult | None = None
    total_band: Band | None = None
    active: LabResult | None = None
    active_band: Band | None = None
    mma: LabResult | None = None
    mma_raised: bool | None = None
    #: MMA is raised but eGFR < 60 makes it non-specific.
    mma_renal_caveat: bool = False
    #: Plain-language statement of discordant evidence, when there is one.
    conflict: str | None = None
    #: The results that decided the status, most specific first.
    deciding: tuple[LabResult, ...] = ()

    @property
    def key_result(self) -> LabResult | None:
        return self.deciding[0] if self.deciding else None


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

    # --- time -----------------------------------------------------------------------------
    @cached_property
    def window_start(self) -> datetime:
        return add_months(self.now, -self.policy.windows.lookback_months)

    def is_current(self, result: LabResult) -> bool:
        return self.window_start <= result.effective <= self.now + timedelta(days=1)

    def days_since(self, moment: datetime) -> int:
        """Whole calendar days from ``moment`` to now (a date-only start counts from its day)."""
        return (self.now.date() - moment.date()).days

    def months_on(self, medication: MedicationExposure) -> float | None:
        if medication.start is None:
            return None
        return max(0.0, months_between(medication.start, self.now))

    # --- medications ------------------------------------------------------------------------
    def medications_of(
        self, *classes: DrugClass, drafts: bool | None = None
    ) -> tuple[MedicationExposure, ...]:
        wanted = set(classes)
        return tuple(
            m
            for m in self.facts.medications
            if m.classes & wanted and m.active and (drafts is None or m.is_draft == drafts)
        )

    @cached_property
    def b12_therapy(self) -> tuple[MedicationExposure, ...]:
        """Active B12 products the patient is on (not drafts)."""
        return tuple(
            m for m in self.facts.medications if m.is_b12_product and m.active and not m.is_draft
        )

    @cached_property
    def b12_drafts(self) -> tuple[MedicationExposure, ...]:
        return tuple(
            m for m in self.facts.medications if m.is_b12_product and m.is_draft and m.active
        )

    @cached_property
    def established_b12_therapy(self) -> tuple[MedicationExposure, ...]:
        """B12 replacement under way: an active B12 product, or a completed course or
        injection whose last date (end, else start) lies within the longest maintenance
        interval (``windows.im_max_interval_months``): injections given in clinic are often
        recorded as completed orders, one per dose. A first B12 order among the drafts is
        not established therapy."""
        since = add_months(self.now, -self.policy.windows.im_max_interval_months)
        recent = tuple(
            m
            for m in self.facts.medications
            if m.is_b12_product
            and not m.is_draft
            and m.status == "completed"
            and (m.end or m.start) is not None
            and (m.end or m.start) >= since
        )
        return self.b12_therapy + recent

    @cached_property
    def has_b12_therapy(self) -> bool:
        """rule book §3: an active B12 product, or one among the draft orders."""
        return bool(self.b12_therapy or self.b12_drafts)

    @cached_property
    def b12_therapy_start(self) -> datetime | None:
        """When B12 replacement first began (the earliest start among B12 products taken).

        Active therapy without a start date counts as started before every result.
        """
        starts = []
        for m in self.facts.medications:
            if not m.is_b12_product or m.is_draft:
                continue
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
        for m in self.facts.medications:
            if not m.is_b12_product or m.is_draft:
                continue
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

    @cached_property
    def _results_by_analyte(self) -> dict[Analyte, tuple[LabResult, ...]]:
        grouped: dict[Analyte, list[LabResult]] = {}
        latest = self.now + timedelta(days=1)
        for lab in self.facts.labs:
            if lab.effective > latest:
                # A result dated more than a day ahead is a data error: never current, never
                # "the last result" either. Skipped, its id logged.
                log.info("future-dated result skipped", extra={"resource": lab.resource_id})
                continue
            grouped.setdefault(lab.analyte, []).append(lab)
        return {
            k: tuple(sorted(v, key=lambda r: r.effective, reverse=True)) for k, v in grouped.items()
        }

    def latest_current(self, analyte: Analyte, *, numeric: bool = True) -> LabResult | None:
        for result in self.results(analyte):
            if not self.is_current(result):
                continue
            if numeric and (result.value is None or not result.unit_recognised):
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

    @cached_property
    def on_therapy_results(self) -> tuple[LabResult, ...]:
        """Current B12-family results drawn after B12 therapy began (not diagnostic)."""
        return tuple(
            r
            for a in (Analyte.TOTAL_B12, Analyte.ACTIVE_B12, Analyte.MMA)
            for r in self.results(a)
            if self.is_current(r) and self.drawn_on_therapy(r)
        )

    @cached_property
    def unrecognised_b12_results(self) -> tuple[LabResult, ...]:
        """Current B12-family results whose value or unit cannot be interpreted (text such as
        "see comment", an unknown unit, a limit such as ">100" that settles nothing)."""
        return tuple(
            r
            for a in B12_FAMILY
            for r in self.results(a)
            if self.is_current(r) and not self.interpretable(r)
        )

    @cached_property
    def stale_b12(self) -> LabResult | None:
        """The latest total/active B12 that is not current diagnostic evidence."""
        candidates = [
            r
            for a in (Analyte.TOTAL_B12, Analyte.ACTIVE_B12)
            for r in self.results(a)
            if r.value is not None and (not self.is_current(r) or self.drawn_on_therapy(r))
        ]
        return max(candidates, key=lambda r: r.effective, default=None)

    @cached_property
    def egfr(self) -> LabResult | None:
        return self.latest_current(Analyte.EGFR)

    @cached_property
    def renal_impairment(self) -> bool:
        return self.egfr_impaired or bool(
            self.conditions_of(ConditionKind.CKD, ConditionKind.DIALYSIS)
        )

    @cached_property
    def egfr_impaired(self) -> bool:
        return below(self.egfr, self.policy.thresholds.egfr_impaired_below)

    @cached_property
    def macrocytosis(self) -> LabResult | None:
        mcv = self.latest_current(Analyte.MCV)
        return mcv if above(mcv, self.policy.thresholds.mcv_macrocytosis_above_fl) else None

    @cached_property
    def low_haemoglobin(self) -> LabResult | None:
        """The latest current haemoglobin when it is below the sex-specific limit (13 g/dL men,
        12 g/dL women; a patient whose sex is not male is judged against the lower limit)."""
        hb = self.latest_current(Analyte.HAEMOGLOBIN)
        t = self.policy.thresholds
        sex = self.facts.patient.sex if self.facts.patient else Sex.UNKNOWN
        limit = t.haemoglobin_low_male_g_dl if sex is Sex.MALE else t.haemoglobin_low_female_g_dl
        return hb if below(hb, limit) else None

    @cached_property
    def anaemia_conditions(self) -> tuple[ConditionFact, ...]:
        """Recorded anaemia diagnoses. The *name* pernicious anaemia is a malabsorption cause,
        not a haemoglobin: it never counts here by itself."""
        return self.conditions_of(ConditionKind.ANAEMIA, ConditionKind.MEGALOBLASTIC_ANAEMIA)

    @cached_property
    def anaemia(self) -> bool:
        """Haemoglobin below the sex-specific limit in a current result, or an anaemia
        condition (pernicious anaemia alone is not one)."""
        return self.low_haemoglobin is not None or bool(self.anaemia_conditions)

    @cached_property
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

    @cached_property
    def folate_deficiency(self) -> LabResult | None:
        """The latest current serum or red-cell folate when it is below the BSH 2014 limit of
        its unit (serum < 3 ng/mL = 7 nmol/L; red cell < 150 ng/mL = 340 nmol/L)."""
        t = self.policy.thresholds
        limits = {
            Analyte.FOLATE: (t.folate_deficient_below_ng_ml, t.folate_deficient_below_nmol_l),
            Analyte.RBC_FOLATE: (
                t.rbc_folate_deficient_below_ng_ml,
                t.rbc_folate_deficient_below_nmol_l,
            ),
        }
        found = []
        for analyte, (mass, molar) in limits.items():
            result = self.latest_current(analyte)
            if result is None:
                continue
            limit = molar if result.unit == "nmol/L" else mass
            # Compared in the reported unit (ng/mL, µg/L or nmol/L), never converted.
            value = result.value if result.unit == "nmol/L" else result.canonical_value
            reported = LabResult(
                result.resource_id,
                analyte,
                result.loinc,
                result.effective,
                value,
                result.unit,
                value,
                result.unit,
                comparator=result.comparator,
            )
            if below(reported, limit):
                found.append(result)
        return max(found, key=lambda r: r.effective, default=None)

    @cached_property
    def megaloblastic_picture(self) -> bool:
        """Anaemia with macrocytosis, or a recorded megaloblastic anaemia."""
        return (self.anaemia and self.macrocytosis is not None) or bool(
            self.conditions_of(ConditionKind.MEGALOBLASTIC_ANAEMIA)
        )

    @cached_property
    def potassium(self) -> LabResult | None:
        return self.latest_current(Analyte.POTASSIUM)

    # --- conditions -------------------------------------------------------------------------
    def conditions_of(self, *kinds: ConditionKind) -> tuple[ConditionFact, ...]:
        wanted = set(kinds)
        return tuple(c for c in self.facts.conditions if c.kinds & wanted)

    @cached_property
    def neurological(self) -> tuple[ConditionFact, ...]:
        """Conditions in the site's neurological-involvement set (rule book §1)."""
        return self.conditions_of(*self.policy.neurological_involvement)

    @cached_property
    def neuro_possible_only(self) -> bool:
        """Involvement rests only on headache / back pain: the card must say so plainly."""
        return bool(self.neurological) and all(
            not (c.kinds & (self.policy.neurological_involvement - POSSIBLE_NEUROLOGICAL))
            for c in self.neurological
        )

    @cached_property
    def scd_recorded(self) -> bool:
        return bool(self.conditions_of(ConditionKind.SUBACUTE_COMBINED_DEGENERATION))

    @cached_property
    def malabsorption(self) -> tuple[ConditionFact, ...]:
        return self.conditions_of(*MALABSORPTION_CAUSES)

    @cached_property
    def if_antibody_positive(self) -> LabResult | None:
        for result in self.results(Analyte.IF_ANTIBODY):
            text = (result.text_value or "").lower()
            if any(w in text for w in ("positive", "detected", "present", "reactive")) and not any(
                w in text
                for w in ("not detected", "negative", "absent", "non-reactive", "nonreactive")
            ):
                return result
        return None

    @cached_property
    def has_malabsorption_cause(self) -> bool:
        return bool(self.malabsorption) or self.if_antibody_positive is not None

    @cached_property
    def pregnant(self) -> bool:
        if self.facts.patient is not None and self.facts.patient.sex is Sex.MALE:
            return False
        return self.facts.pregnancy_observed or bool(self.conditions_of(ConditionKind.PREGNANCY))

    @cached_property
    def planning_pregnancy(self) -> bool:
        return bool(self.conditions_of(ConditionKind.PRECONCEPTION))

    @cached_property
    def age(self) -> int | None:
        return self.facts.patient.age_years(self.now) if self.facts.patient else None

    # --- B12 status -------------------------------------------------------------------------
    @cached_property
    def b12(self) -> B12Assessment:
        return assess_b12(self)

    # --- risk factors (b12-screening-due, b12-cause-workup) ---------------------------------
    @cached_property
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

    @cached_property
    def other_risk_factors(self) -> tuple[RiskFactor, ...]:
        found: list[RiskFactor] = []
        if self.age is not None and self.age > self.policy.thresholds.age_risk_above_years:
            found.append(RiskFactor(f"age {self.age}", self.facts.patient.resource_id))
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


def duration_text(months: float) -> str:
    if months >= 24:
        return f"{int(months // 12)} years"
    if months >= 12:
        return "1 year" if months < 13 else f"{int(months)} months"
    whole = int(months)
    return f"{whole} month{'s' if whole != 1 else ''}"


def assess_b12(p: ClinicalPicture) -> B12Assessment:
    """B12 status from current diagnostic results (rule book §2, "Conflicts").

    The most specific current evidence wins: active B12 over total B12; MMA above its limit with
    eGFR >= 60 outranks an indeterminate or normal total B12 (antibody interference can make
    total B12 falsely normal). A raised MMA with eGFR < 60 is not specific (renal impairment
    raises MMA on its own). Results drawn after B12 therapy began never count.
    """
    total = p.diagnostic(Analyte.TOTAL_B12)
    active = p.diagnostic(Analyte.ACTIVE_B12)
    mma = p.diagnostic(Analyte.MMA)
    total_band = total_b12_band(total, p.policy) if total else None
    active_band = active_b12_band(active, p.policy) if active else None
    raised = None
    renal_caveat = False
    if mma is not None:
        raised = mma_raised(mma, p.policy)
        renal_caveat = bool(raised) and p.egfr_impaired
    mma_decisive = bool(raised) and not renal_caveat
    base = dict(
        total=total,
        total_band=total_band,
        active=active,
        active_band=active_band,
        mma=mma,
        mma_raised=raised,
        mma_renal_caveat=renal_caveat,
    )

    if active_band is Band.DEFICIENT:
        conflict = None
        if total_band is Band.UNLIKELY:
            conflict = (
                f"Total B12 is normal ({result_value_text(total)}) but active B12 is low "
                f"({result_value_text(active)}): active B12 is the more specific test "
                "(antibody interference can make total B12 falsely normal)."
            )
        return B12Assessment(
            B12Status.DEFICIENT, conflict=conflict, deciding=(active,) + _opt(total), **base
        )
    if active_band is Band.UNLIKELY:
        conflict = None
        if total_band is Band.DEFICIENT:
            conflict = (
                f"Total B12 is low ({result_value_text(total)}) but active B12 is normal "
                f"({result_value_text(active)}): active B12 is the more specific test."
            )
        if mma_decisive:
            conflict = (
                f"Active B12 is normal ({result_value_text(active)}) but MMA is raised "
                f"({result_value_text(mma)}) with normal renal function: "
                "treat as functional deficiency."
            )
            return B12Assessment(
                B12Status.FUNCTIONAL_DEFICIENCY, conflict=conflict, deciding=(mma, active), **base
            )
        return B12Assessment(
            B12Status.UNLIKELY, conflict=conflict, deciding=(active,) + _opt(total), **base
        )
    if total_band is Band.DEFICIENT:
        return B12Assessment(B12Status.DEFICIENT, deciding=(total,) + _opt(active), **base)

    # Total indeterminate / unlikely / absent, active indeterminate / absent.
    indeterminate = total_band is Band.INDETERMINATE or active_band is Band.INDETERMINATE
    if mma_decisive:
        conflict = None
        if total_band is Band.UNLIKELY:
            conflict = (
                f"Total B12 is normal ({result_value_text(total)}) but MMA is raised "
                f"({result_value_text(mma)}) with normal renal function: total B12 can be falsely "
                "normal (antibody interference); MMA is the more specific test."
            )
        deciding = (mma,) + _opt(active) + _opt(total)
        return B12Assessment(
            B12Status.FUNCTIONAL_DEFICIENCY, conflict=conflict, deciding=deciding, **base
        )
    if indeterminate:
        if mma is not None and not raised:
            # A normal MMA settles an indeterminate result.
            return B12Assessment(
                B12Status.UNLIKELY, deciding=(mma,) + _opt(active) + _opt(total), **base
            )
        return B12Assessment(
            B12Status.INDETERMINATE, deciding=_opt(active) + _opt(total) + _opt(mma), **base
        )
    if total_band is Band.UNLIKELY:
        return B12Assessment(B12Status.UNLIKELY, deciding=(total,), **base)
    return B12Assessment(B12Status.UNKNOWN, deciding=_opt(mma), **base)


def _opt(result: LabResult | None) -> tuple[LabResult, ...]:
    return (result,) if result is not None else ()
