"""``pregnancy-b12``: total B12 is not reliable in pregnancy; review treatment at 1 month.

rule book §3: "Pregnant and a total B12 result below 350 ng/L (133-258 pmol/L band or
lower) without active B12, or B12 treatment started in pregnancy" -> "Total B12 falls in
pregnancy: NICE recommends active B12 to confirm. Review 1 month after starting treatment."
warning when total B12 < 180 without active B12; else info; order active B12 (72160-5).
Section 6: clinical review at 1 month in pregnancy; use active B12 for testing in pregnancy.

Sources: NICE NG239 (active B12 in pregnancy, as total B12 falls physiologically; review 1
month after starting treatment in pregnancy).

When: the patient is pregnant (``p.pregnant``) and
- **(a)** the current diagnostic total B12 is deficient or indeterminate against the pair of
  its reported unit (< 350 ng/L, 350 itself being indeterminate by section 2; <= 258 pmol/L)
  and there is no current active B12 result; or
- **(b)** B12 treatment starts in pregnancy: a B12 product among the draft orders, or active
  B12 therapy that started on or after the start of the pregnancy (the earliest onset of an
  active pregnancy condition; without one, the last 42 weeks).
Then: warning when (a) and the total is in the deficient band (< 180 ng/L, < 133 pmol/L);
otherwise info. Suggestion: active B12 (72160-5), for (a) only, left out when an active B12
test is already drafted. The detail names the total B12 and the pregnancy evidence, and the
review at 1 month (not 3) after starting treatment. ``concerns``: the B12 drafts and a drafted
active B12 test. ``supersedes``: ``b12-indeterminate`` when (a) fires (active B12, not MMA,
is the next test in pregnancy).

Decision on ``b12-deficiency-untreated``: superseded when (a) fires with a deficient total and
*nothing corroborates it*: the status rests on total B12 alone (no active B12; no MMA raised
with eGFR >= 60), no neurological involvement, and a current haemoglobin and MCV that do not
show macrocytic anaemia, and no B12 therapy. Why: total B12 falls physiologically in
pregnancy (to about half by the third trimester), so a low total alone does not "confirm"
deficiency as that card would say, and most low totals in pregnancy need no treatment (SPS);
two cards saying "start treatment" and "confirm first" would contradict each other. To avoid
harm from delay this card then also offers the standard regimen (not recommended: "if active B12
is not available promptly"), with ``any`` selection, and says to take the sample before the
first dose. With neurological involvement, a megaloblastic picture, a corroborating MMA, or
no current blood count, treatment must not wait: ``b12-deficiency-untreated`` keeps its card
and this one only adds the active B12 test and the 1-month review. When this card does
supersede ``b12-deficiency-untreated`` it also supersedes ``b12-cause-workup``: deficiency is
not confirmed yet, so the search for its cause (IF antibodies, H. pylori) waits for active B12.

Not when: not pregnant; total B12 above 350 ng/L / 258 pmol/L, stale, drawn after B12 therapy
began, or not interpretable, and no B12 treatment starting; an active B12 result exists and no
treatment is starting.
"""

from __future__ import annotations

from datetime import timedelta

from ..b12status import B12Status
from ..bands import Band
from ..codes import LOINC_ACTIVE_B12, LOINC_DISPLAY
from ..findings import (
    Finding,
    OrderLab,
    OrderMedication,
    SelectionBehavior,
    Suggestion,
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


def evaluate(p: ClinicalPicture) -> Finding | None:
    if not p.pregnant:
        return None
    total, band = p.b12.total, p.b12.total_band
    active = p.latest_current(Analyte.ACTIVE_B12)
    case_a = total is not None and band in (Band.DEFICIENT, Band.INDETERMINATE) and active is None
    started = _started_in_pregnancy(p)
    if not case_a and not started:
        return None

    deficient = case_a and band is Band.DEFICIENT
    active_drafts = tuple(d for d in p.facts.draft_labs if Analyte.ACTIVE_B12 in d.analytes)
    supersede_untreated = deficient and _uncorroborated(p)

    if case_a:
        summary = (
            f"Total B12 {result_value_text(total)} in pregnancy: total B12 falls in pregnancy; "
            "NICE recommends active B12 to confirm."
        )
        if started:
            summary = (
                f"Total B12 {result_value_text(total)} in pregnancy: confirm with active B12 "
                "(sample before the first dose); review 1 month after starting."
            )
    else:
        summary = (
            "B12 treatment starting in pregnancy: review 1 month after starting treatment "
            "(NICE), not at 3 months."
        )

    lines = ["**Pregnancy**", ""]
    for c in p.conditions_of(ConditionKind.PREGNANCY):
        onset = f", onset {c.onset.date().isoformat()}" if c.onset else ""
        lines.append(f"- {c.name} ({c.resource_id}{onset})")
    if p.facts.pregnancy_observed:
        lines.append("- pregnancy status observation: pregnant")
    lines += ["", "**B12 evidence**", ""]
    if total is not None:
        lines.append(f"- total B12 {describe(total)}: {band.value}")
    if active is not None:
        lines.append(f"- active B12 {describe(active)}")
    elif case_a:
        lines.append("- no current active B12 result")
    if p.b12.mma is not None:
        lines.append(f"- MMA {describe(p.b12.mma)}")
    if DataCategory.B12_LABS in p.facts.missing:
        lines.append("- B12 results could not be obtained")
    for m in started:
        when = "drafted" if m.is_draft else f"started {m.start.date().isoformat()}"
        lines.append(f"- B12 treatment {when}: {m.name} ({m.resource_id})")
    lines.append("")
    if case_a:
        lines += [
            "Total B12 falls physiologically in pregnancy (to about half by the third "
            "trimester), so a low total does not confirm deficiency: NICE NG239 recommends "
            "active B12 (holotranscobalamin) to confirm it in pregnancy.",
            "",
        ]
        if active_drafts:
            lines += ["An active B12 test is already among the draft orders.", ""]
    if supersede_untreated:
        lines += [
            "Nothing else points to deficiency (no neurological involvement, no macrocytic "
            "anaemia, no raised MMA), so treatment can wait for the active B12 result. If "
            "active B12 is not available promptly, or symptoms develop, start treatment "
            "(second suggestion); take the active B12 sample before the first dose.",
            "",
        ]
    lines += [
        "Review 1 month after starting treatment in pregnancy (3 months otherwise): symptoms "
        "and blood count.",
        "",
        f"Source: {NICE_NG239.label}.",
    ]

    suggestions: list[Suggestion] = []
    if case_a and not active_drafts:
        display = LOINC_DISPLAY[LOINC_ACTIVE_B12]
        suggestions.append(
            Suggestion(
                "Order active B12 (holotranscobalamin)",
                (
                    OrderLab(
                        LOINC_ACTIVE_B12,
                        display,
                        "Active B12 to confirm deficiency in "
                        "pregnancy (total B12 falls in pregnancy)",
                    ),
                ),
                is_recommended=True,
            )
        )
    if supersede_untreated:
        regimen = recommended_regimen(p)
        suggestions.append(
            Suggestion(
                f"If active B12 is not available promptly: {regimen.label}",
                (OrderMedication(regimen, regimen.text),),
                is_recommended=False,
            )
        )

    supersedes = set()
    if case_a:
        supersedes.add("b12-indeterminate")
    if supersede_untreated:
        # Deficiency is not confirmed yet: looking for its cause comes after active B12.
        supersedes.update({"b12-deficiency-untreated", "b12-cause-workup"})
    concerns = {m.resource_id for m in p.b12_drafts} | {d.resource_id for d in active_drafts}
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.WARNING if deficient else Indicator.INFO,
        summary=shorten(summary),
        detail="\n".join(lines),
        source=NICE_NG239,
        suggestions=tuple(suggestions),
        selection_behavior=SelectionBehavior.ANY if suggestions else None,
        concerns=frozenset(concerns),
        supersedes=frozenset(supersedes),
    )


def _pregnancy_start(p: ClinicalPicture):
    onsets = [c.onset for c in p.conditions_of(ConditionKind.PREGNANCY) if c.onset is not None]
    return min(onsets) if onsets else p.now - timedelta(days=_MAX_PREGNANCY_DAYS)


def _started_in_pregnancy(p: ClinicalPicture):
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
