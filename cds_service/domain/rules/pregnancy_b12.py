"""``pregnancy-b12``: total B12 is not reliable in pregnancy; review treatment at 1 month.

Total B12 falls physiologically in pregnancy, so a low total does not confirm deficiency:
active B12 does. Treatment started in pregnancy is reviewed at 1 month, not 3.

When: the patient is pregnant and either (a) the current diagnostic total B12 is deficient
or indeterminate against the pair of its reported unit
(``thresholds.total_b12_unlikely_above_ng_l`` / ``..._pmol_l``) with no current active B12,
or (b) B12 treatment starts in pregnancy: a B12 draft, or therapy started since the
pregnancy's earliest recorded onset (without one, within the last 42 weeks).
Then: warning when (a) and the total is in the deficient band, info otherwise. For (a) the
card offers active B12 (unless already drafted) and silences ``b12-indeterminate`` (active
B12, not MMA, is the next test in pregnancy). When a deficient total is the only evidence
(no active B12, no decisive MMA, no neurological involvement, a current blood count without
macrocytic anaemia, no B12 therapy), treatment can wait for active B12: this card then
silences ``b12-deficiency-untreated`` and ``b12-cause-workup`` and offers the standard
regimen as a fallback ("if active B12 is not available promptly", not recommended), so two
cards never say "start" and "confirm first". Anything that corroborates the deficiency
leaves ``b12-deficiency-untreated`` its card.
Not when: not pregnant; no low total B12 in the look-back window (or one drawn on therapy,
or an active B12 already exists) and no treatment starting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..b12status import B12Status
from ..bands import Band
from ..cardtext import CardText
from ..codes import LOINC_ACTIVE_B12, LOINC_DISPLAY
from ..facts import DraftLabOrder, LabResult, MedicationExposure
from ..findings import (
    Finding,
    OrderLab,
    OrderMedication,
    SelectionBehavior,
    Suggestion,
    Wording,
    shorten,
)
from ..picture import ClinicalPicture
from ..regimens import recommended_regimen
from ..resulttext import describe, result_value_text
from ..rule import Rule, summary_of
from ..sources import NICE_NG239
from ..vocabulary import Analyte, ConditionKind, DataCategory, Indicator

#: Without a dated pregnancy record, treatment started within a full-term pregnancy's length
#: (42 weeks) counts as started in pregnancy.
_MAX_PREGNANCY_DAYS = 42 * 7


@dataclass(frozen=True)
class _Case:
    total: LabResult | None
    active: LabResult | None
    #: (a): a low or indeterminate total B12 without active B12.
    low_total: bool
    deficient: bool
    started: tuple[MedicationExposure, ...]
    active_drafts: tuple[DraftLabOrder, ...]
    #: Treatment can wait for active B12 (nothing corroborates a deficient total).
    can_wait: bool


def evaluate(p: ClinicalPicture) -> Finding | None:
    if not p.pregnant:
        return None
    total, band = p.b12.total, p.b12.total_band
    active = p.latest_current(Analyte.ACTIVE_B12)
    low_total = total is not None and band in (Band.DEFICIENT, Band.INDETERMINATE)
    low_total = low_total and active is None
    started = _started_in_pregnancy(p)
    if not low_total and not started:
        return None
    deficient = low_total and band is Band.DEFICIENT
    active_drafts = tuple(d for d in p.facts.draft_labs if Analyte.ACTIVE_B12 in d.analytes)
    case = _Case(
        total, active, low_total, deficient, started, active_drafts,
        deficient and _uncorroborated(p),
    )  # fmt: skip
    suggestions = _suggestions(p, case)
    concerns = {m.resource_id for m in p.b12_drafts} | {d.resource_id for d in active_drafts}
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.WARNING if deficient else Indicator.INFO,
        wording=Wording(lambda: (shorten(_summary(case)), _detail(p, case))),
        source=NICE_NG239,
        suggestions=suggestions,
        selection_behavior=SelectionBehavior.ANY if suggestions else None,
        concerns=frozenset(concerns),
        supersedes=_supersedes(case),
    )


def _supersedes(case: _Case) -> frozenset[str]:
    supersedes = set()
    if case.low_total:
        supersedes.add("b12-indeterminate")
    if case.can_wait:
        # Deficiency is not confirmed yet: looking for its cause comes after active B12.
        supersedes.update({"b12-deficiency-untreated", "b12-cause-workup"})
    return frozenset(supersedes)


def _summary(case: _Case) -> str:
    if not case.low_total or case.total is None:
        return (
            "B12 treatment starting in pregnancy: review 1 month after starting treatment "
            "(NICE), not at 3 months."
        )
    if case.started:
        return (
            f"Total B12 {result_value_text(case.total)} in pregnancy: confirm with active B12 "
            "(sample before the first dose); review 1 month after starting."
        )
    return (
        f"Total B12 {result_value_text(case.total)} in pregnancy: total B12 falls in pregnancy; "
        "NICE recommends active B12 to confirm."
    )


def _detail(p: ClinicalPicture, case: _Case) -> str:
    text = CardText().heading("Pregnancy")
    for c in p.conditions_of(ConditionKind.PREGNANCY):
        onset = f", onset {c.onset.date().isoformat()}" if c.onset else ""
        text.bullets([f"{c.name} ({c.resource_id}{onset})"])
    if p.facts.pregnancy_observed:
        text.bullets(["pregnancy status observation: pregnant"])
    text.blank().heading("B12 evidence").bullets(_evidence(p, case)).blank()
    if case.low_total:
        text.paragraph(
            "Total B12 falls physiologically in pregnancy (to about half by the third "
            "trimester), so a low total does not confirm deficiency: NICE NG239 recommends "
            "active B12 (holotranscobalamin) to confirm it in pregnancy."
        )
        if case.active_drafts:
            text.paragraph("An active B12 test is already among the draft orders.")
    if case.can_wait:
        text.paragraph(
            "Nothing else points to deficiency (no neurological involvement, no macrocytic "
            "anaemia, no raised MMA), so treatment can wait for the active B12 result. If "
            "active B12 is not available promptly, or symptoms develop, start treatment "
            "(second suggestion); take the active B12 sample before the first dose."
        )
    text.line(
        "Review 1 month after starting treatment in pregnancy (3 months otherwise): symptoms "
        "and blood count."
    )
    return text.source(NICE_NG239).text()


def _evidence(p: ClinicalPicture, case: _Case) -> list[str]:
    lines = []
    if case.total is not None and p.b12.total_band is not None:
        lines.append(f"total B12 {describe(case.total)}: {p.b12.total_band.value}")
    if case.active is not None:
        lines.append(f"active B12 {describe(case.active)}")
    elif case.low_total:
        lines.append("no current active B12 result")
    if p.b12.mma is not None:
        lines.append(f"MMA {describe(p.b12.mma)}")
    if DataCategory.B12_LABS in p.facts.missing:
        lines.append("B12 results could not be obtained")
    for m in case.started:
        when = "drafted" if m.is_draft or m.start is None else f"started {m.start.date()}"
        lines.append(f"B12 treatment {when}: {m.name} ({m.resource_id})")
    return lines


def _suggestions(p: ClinicalPicture, case: _Case) -> tuple[Suggestion, ...]:
    suggestions: list[Suggestion] = []
    if case.low_total and not case.active_drafts:
        note = "Active B12 to confirm deficiency in pregnancy (total B12 falls in pregnancy)"
        order = OrderLab(LOINC_ACTIVE_B12, LOINC_DISPLAY[LOINC_ACTIVE_B12], note)
        suggestions.append(Suggestion("Order active B12 (holotranscobalamin)", (order,), True))
    if case.can_wait:
        regimen = recommended_regimen(p)
        suggestions.append(
            Suggestion(
                f"If active B12 is not available promptly: {regimen.label}",
                (OrderMedication(regimen, regimen.text),),
                is_recommended=False,
            )
        )
    return tuple(suggestions)


def _pregnancy_start(p: ClinicalPicture) -> datetime:
    onsets = [c.onset for c in p.conditions_of(ConditionKind.PREGNANCY) if c.onset is not None]
    return min(onsets) if onsets else p.now - timedelta(days=_MAX_PREGNANCY_DAYS)


def _started_in_pregnancy(p: ClinicalPicture) -> tuple[MedicationExposure, ...]:
    since = _pregnancy_start(p)
    return p.b12_drafts + tuple(
        m for m in p.b12_therapy if m.start is not None and m.start >= since
    )


def _uncorroborated(p: ClinicalPicture) -> bool:
    """A deficient total B12 is the only evidence (see the module docstring)."""
    b12 = p.b12
    if b12.status is not B12Status.DEFICIENT or b12.key_result is not b12.total:
        return False
    if b12.mma_raised and not b12.mma_renal_caveat:
        return False
    if p.neurological or p.megaloblastic_picture or p.has_b12_therapy:
        return False
    return (
        p.latest_current(Analyte.HAEMOGLOBIN) is not None
        and p.latest_current(Analyte.MCV) is not None
    )


RULE = Rule(
    id="pregnancy-b12",
    title="Pregnancy: confirm with active B12; review 1 month after starting treatment",
    summary=summary_of(__doc__),
    sources=(NICE_NG239,),
    indicators=(Indicator.WARNING, Indicator.INFO),
    settings=(
        "thresholds.total_b12_deficient_below_ng_l",
        "thresholds.total_b12_unlikely_above_ng_l",
        "thresholds.total_b12_deficient_below_pmol_l",
        "thresholds.total_b12_unlikely_above_pmol_l",
        "windows.lookback_months",
        "neurological_involvement",
        "formulary",
        "thresholds.haemoglobin_low_female_g_dl",
        "windows.b12_washout_months",
    ),
    evaluate=evaluate,
    supersedes=frozenset({"b12-indeterminate", "b12-deficiency-untreated", "b12-cause-workup"}),
)
