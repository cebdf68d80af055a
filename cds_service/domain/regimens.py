"""B12 treatment regimens (rule book §3, ``b12-deficiency-untreated``; BNF; NICE NG239).

The default formulary is hydroxocobalamin (BNF/NICE). A US formulary setting swaps in
cyanocobalamin 1000 micrograms IM (US label), on the same loading schedule, monthly maintenance.
"""

from __future__ import annotations

from .codes import (
    RXNORM_CYANOCOBALAMIN_INJECTION,
    RXNORM_CYANOCOBALAMIN_ORAL_1000,
    RXNORM_HYDROXOCOBALAMIN_INJECTION,
)
from .dates import DAYS_PER_MONTH
from .facts import MedicationExposure
from .findings import DosePhase, OrderMedication, Regimen, Suggestion
from .picture import ClinicalPicture
from .policy import Formulary
from .units import format_number
from .vocabulary import DrugClass, Route

MG = 1000.0  # micrograms

#: The neurological loading phase is bounded (``windows.neuro_loading_review_weeks``): an
#: order "until no further improvement" has no end an EHR can schedule.
REVIEW_TEXT = "review at {weeks} weeks; continue on alternate days while improving"


def _alternate_days(weeks: int) -> DosePhase:
    return DosePhase(
        f"1 mg IM on alternate days; {REVIEW_TEXT.format(weeks=weeks)}",
        MG,
        every=2,
        duration=weeks,
        duration_unit="wk",
    )


_THREE_A_WEEK = DosePhase(
    "1 mg IM three times a week for 2 weeks",
    MG,
    frequency=3,
    every=1,
    unit="wk",
    count=6,
    duration=2,
    duration_unit="wk",
)
_EVERY_2_MONTHS = DosePhase("then 1 mg IM every 2 months", MG, every=2, unit="mo")
_EVERY_2_3_MONTHS = DosePhase("then 1 mg IM every 2-3 months", MG, every=2, every_max=3, unit="mo")
_MONTHLY = DosePhase("then 1000 micrograms IM monthly", MG, every=1, unit="mo")


def _hydroxo(key: str, label: str, phases: tuple[DosePhase, ...], text: str) -> Regimen:
    return Regimen(
        key,
        label,
        DrugClass.HYDROXOCOBALAMIN,
        RXNORM_HYDROXOCOBALAMIN_INJECTION,
        Route.INTRAMUSCULAR,
        phases,
        text,
    )


def _cyano_im(key: str, label: str, first: DosePhase, text: str) -> Regimen:
    first = DosePhase(
        first.text.replace("1 mg", "1000 micrograms"),
        MG,
        first.frequency,
        first.every,
        first.every_max,
        first.unit,
        first.count,
        first.duration,
        first.duration_unit,
    )
    return Regimen(
        key,
        label,
        DrugClass.CYANOCOBALAMIN,
        RXNORM_CYANOCOBALAMIN_INJECTION,
        Route.INTRAMUSCULAR,
        (first, _MONTHLY),
        text,
    )


def neurological_regimen(formulary: Formulary, review_weeks: int = 3) -> Regimen:
    """BNF: alternate days until no further improvement, then every 2 months. The loading
    order carries ``boundsDuration`` of ``review_weeks`` and says to review then."""
    review = REVIEW_TEXT.format(weeks=review_weeks)
    loading = _alternate_days(review_weeks)
    if formulary is Formulary.CYANOCOBALAMIN:
        return _cyano_im(
            "im-neurological",
            "Cyanocobalamin 1000 mcg IM (neurological regimen)",
            loading,
            f"Cyanocobalamin 1000 micrograms IM on alternate days; {review}; then 1000 "
            "micrograms IM monthly; lifelong if the cause is irreversible.",
        )
    return _hydroxo(
        "im-neurological",
        "Hydroxocobalamin 1 mg IM (neurological regimen)",
        (loading, _EVERY_2_MONTHS),
        f"Hydroxocobalamin 1 mg IM on alternate days; {review}; then 1 mg IM every 2 months; "
        "lifelong if the cause is irreversible.",
    )


def standard_regimen(formulary: Formulary) -> Regimen:
    text = "Hydroxocobalamin 1 mg IM three times a week for 2 weeks, then 1 mg IM every 2-3 months."
    if formulary is Formulary.CYANOCOBALAMIN:
        return _cyano_im(
            "im-standard",
            "Cyanocobalamin 1000 mcg IM",
            _THREE_A_WEEK,
            "Cyanocobalamin 1000 micrograms IM three times a week for 2 weeks, then 1000 "
            "micrograms IM monthly.",
        )
    return _hydroxo(
        "im-standard", "Hydroxocobalamin 1 mg IM", (_THREE_A_WEEK, _EVERY_2_3_MONTHS), text
    )


ORAL_REGIMEN = Regimen(
    "oral-daily",
    "Oral cyanocobalamin 1000 mcg daily",
    DrugClass.CYANOCOBALAMIN,
    RXNORM_CYANOCOBALAMIN_ORAL_1000,
    Route.ORAL,
    (DosePhase("1000 micrograms by mouth once daily (1000-2000 micrograms daily)", MG),),
    "Cyanocobalamin 1000-2000 micrograms by mouth daily (no neurological involvement, no "
    "malabsorption, not severe).",
)


#: After bariatric surgery: 1 mg oral daily indefinitely (AAFP 2017) or 1000 micrograms IM
#: monthly (ASMBS 2016).
BARIATRIC_ORAL = Regimen(
    "bariatric-oral",
    "Oral cyanocobalamin 1 mg daily, lifelong (post-bariatric)",
    DrugClass.CYANOCOBALAMIN,
    RXNORM_CYANOCOBALAMIN_ORAL_1000,
    Route.ORAL,
    (DosePhase("1000 micrograms by mouth once daily, indefinitely", MG),),
    "Cyanocobalamin 1 mg (1000 micrograms) by mouth daily, indefinitely (AAFP 2017).",
)
BARIATRIC_IM = Regimen(
    "bariatric-im",
    "Cyanocobalamin 1000 mcg IM monthly, lifelong (post-bariatric)",
    DrugClass.CYANOCOBALAMIN,
    RXNORM_CYANOCOBALAMIN_INJECTION,
    Route.INTRAMUSCULAR,
    (DosePhase("1000 micrograms IM monthly, indefinitely", MG, every=1, unit="mo"),),
    "Cyanocobalamin 1000 micrograms IM monthly, indefinitely (ASMBS 2016).",
)


def maintenance_regimen(p: ClinicalPicture, formulary: Formulary | None = None) -> Regimen:
    """Lifelong maintenance (b12-lifelong-therapy): IM every 2 months with neurological
    involvement, every 2-3 months without (BNF); monthly cyanocobalamin on a US formulary."""
    neuro = bool(p.neurological)
    if (formulary or p.policy.formulary) is Formulary.CYANOCOBALAMIN:
        return Regimen(
            "im-maintenance",
            "Cyanocobalamin 1000 mcg IM monthly (maintenance)",
            DrugClass.CYANOCOBALAMIN,
            RXNORM_CYANOCOBALAMIN_INJECTION,
            Route.INTRAMUSCULAR,
            (DosePhase("1000 micrograms IM monthly, lifelong", MG, every=1, unit="mo"),),
            "Cyanocobalamin 1000 micrograms IM monthly, lifelong.",
        )
    phase = (
        DosePhase("1 mg IM every 2 months, lifelong", MG, every=2, unit="mo")
        if neuro
        else DosePhase("1 mg IM every 2-3 months, lifelong", MG, every=2, every_max=3, unit="mo")
    )
    return _hydroxo(
        "im-maintenance",
        "Hydroxocobalamin 1 mg IM (maintenance)",
        (phase,),
        f"Hydroxocobalamin {phase.text}.",
    )


def severe(p: ClinicalPicture) -> bool:
    """Severe enough to rule out oral first-line treatment: anaemia or SCD recorded
    (NICE NG239 offers oral replacement only without neurological or severe features)."""
    return p.anaemia or p.scd_recorded


def treatment_options(p: ClinicalPicture) -> tuple[Suggestion, ...]:
    """The regimens for an untreated deficiency, exactly one recommended (``at-most-one``).

    Neurological involvement -> the neurological IM regimen; none -> the standard IM regimen;
    no neurological involvement, no malabsorption cause and not severe -> oral is offered as
    an alternative (NICE NG239; AAFP 2025).
    """
    formulary = p.policy.formulary
    if p.neurological:
        regimen = neurological_regimen(formulary, p.policy.windows.neuro_loading_review_weeks)
        return (_suggest(regimen, recommended=True),)
    options = [_suggest(standard_regimen(formulary), recommended=True)]
    if not p.has_malabsorption_cause and not severe(p):
        options.append(_suggest(ORAL_REGIMEN, recommended=False))
    return tuple(options)


def recommended_regimen(p: ClinicalPicture, formulary: Formulary | None = None) -> Regimen:
    formulary = formulary or p.policy.formulary
    if p.neurological:
        return neurological_regimen(formulary, p.policy.windows.neuro_loading_review_weeks)
    return standard_regimen(formulary)


def same_schedule_hydroxocobalamin(m: MedicationExposure) -> Regimen | None:
    """Hydroxocobalamin IM at the schedule of a drafted parenteral cyanocobalamin order
    (``cyanocobalamin-renal``): a single dose stays single, a course keeps its count, and
    frequencies that are not a whole number of days (three times a week) are written as
    frequency per period. ``None`` when the schedule cannot be copied (no readable interval
    on a repeated order)."""
    single = m.count == 1 or (m.interval_days is None and m.count is None)
    if m.interval_days is None and not single:
        return None
    dose = m.dose_ug or MG
    dose_text = f"{dose / MG:g} mg" if dose >= MG else f"{format_number(dose)} micrograms"
    if single or m.interval_days is None:
        phase = DosePhase(f"{dose_text} IM once", dose, count=1)
    else:
        frequency, every, unit, words = schedule(m.interval_days)
        count_text = f", {m.count} doses" if m.count else ""
        phase = DosePhase(
            f"{dose_text} IM {words}{count_text}",
            dose,
            frequency=frequency,
            every=every,
            unit=unit,
            count=m.count,
        )
    return _hydroxo(
        "hydroxocobalamin-same-schedule",
        "Hydroxocobalamin instead of cyanocobalamin",
        (phase,),
        f"Hydroxocobalamin {phase.text} (in place of the cyanocobalamin order).",
    )


def schedule(days: float) -> tuple[int, float, str, str]:
    """(frequency, period, UCUM unit, words) for an interval between doses in days."""
    months = days / DAYS_PER_MONTH
    if days >= 28 and abs(months - round(months)) < 0.05:
        n = round(months)
        return 1, n, "mo", "monthly" if n == 1 else f"every {n} months"
    if days >= 7 and abs(days / 7 - round(days / 7)) < 1e-6:
        n = round(days / 7)
        return 1, n, "wk", "weekly" if n == 1 else f"every {n} weeks"
    per_day = 1 / days
    if days < 1 and abs(per_day - round(per_day)) < 1e-6:
        n = round(per_day)
        return n, 1, "d", f"{n} times a day"
    per_week = 7 / days
    if 1 < days < 7 and abs(per_week - round(per_week)) < 1e-6 and abs(days - round(days)) > 1e-6:
        n = round(per_week)
        return n, 1, "wk", f"{n} times a week"
    if abs(days - 1) < 1e-6:
        return 1, 1, "d", "daily"
    if abs(days - 2) < 1e-6:
        return 1, 2, "d", "on alternate days"
    return 1, days, "d", f"every {format_number(days)} days"


def _suggest(regimen: Regimen, *, recommended: bool) -> Suggestion:
    return Suggestion(
        label=f"Order {regimen.label}",
        actions=(OrderMedication(regimen, regimen.text),),
        is_recommended=recommended,
    )
