"""``b12-treatment-monitoring``: what to check after parenteral B12 starts.

Treating megaloblastic anaemia moves potassium into new red cells (hypokalaemia, rarely
sudden death): potassium within 48 h of the first dose, reticulocytes and haematocrit on
days 5-7, platelets until normal, and a clinical review at 3 months (1 month in pregnancy).

When: parenteral B12 is starting: a parenteral B12 draft, or a taken parenteral product that
started within ``windows.recent_b12_start_days``.
Then: warning with a megaloblastic picture (anaemia by
``thresholds.haemoglobin_low_male_g_dl`` / ``..._female_g_dl`` with an MCV above
``thresholds.mcv_macrocytosis_above_fl``, or a recorded megaloblastic anaemia), offering
potassium, reticulocytes and a CBC (each unless drafted). Critical when the latest current
potassium is below ``thresholds.potassium_critical_below_mmol_l``, whatever the blood count:
a potassium already that low must not sit in an info card. Otherwise info: the review plan,
and a CBC when there is no current blood count to judge anaemia by. The card concerns the
parenteral drafts and silences nothing (monitoring is its own problem).
Not when: no parenteral B12 starting (oral or unknown routes; taken products started before
the recent window or without a start date); a draft that continues an established parenteral
course (maintenance, not a start).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..b12status import B12Status
from ..bands import below
from ..cardtext import CardText
from ..codes import LOINC_CBC, LOINC_DISPLAY, LOINC_POTASSIUM, LOINC_RETICULOCYTES
from ..facts import LabResult, MedicationExposure
from ..findings import Finding, OrderLab, SelectionBehavior, Suggestion, Wording, shorten
from ..picture import ClinicalPicture
from ..resulttext import describe
from ..rule import Rule, summary_of
from ..sources import CYANOCOBALAMIN_LABEL, NICE_NG239
from ..units import format_number
from ..vocabulary import Analyte, ConditionKind, DataCategory, Indicator

#: A drafted order for any of these stands for the CBC (the panel code itself is not an
#: analyte the adapter keeps).
_CBC_ANALYTES = frozenset(
    {Analyte.HAEMOGLOBIN, Analyte.MCV, Analyte.HAEMATOCRIT, Analyte.PLATELETS}
)


@dataclass(frozen=True)
class _Case:
    drafts: tuple[MedicationExposure, ...]
    recent: tuple[MedicationExposure, ...]
    potassium: LabResult | None
    low_k: bool
    hb: LabResult | None
    mcv: LabResult | None
    #: No diagnostic B12 yet: the plan asks for the baseline sample before the first dose.
    baseline_due: bool
    review: str


def evaluate(p: ClinicalPicture) -> Finding | None:
    drafts = tuple(m for m in p.b12_drafts if m.route.parenteral)
    recent = _recent_starts(p)
    if drafts and not recent and _established_parenteral(p):
        drafts = ()
    if not drafts and not recent:
        return None
    potassium = p.potassium
    case = _Case(
        drafts=drafts,
        recent=recent,
        potassium=potassium,
        low_k=below(potassium, p.policy.thresholds.potassium_critical_below_mmol_l),
        hb=p.latest_current(Analyte.HAEMOGLOBIN),
        mcv=p.latest_current(Analyte.MCV),
        baseline_due=p.b12.status is B12Status.UNKNOWN,
        review="1 month (pregnancy)" if p.pregnant else "3 months",
    )
    indicator, summary = _urgency(p, case)
    suggestions = _suggestions(
        p, full=p.megaloblastic_picture or case.low_k, hb=case.hb, mcv=case.mcv
    )
    return Finding(
        rule_id=RULE.id,
        indicator=indicator,
        wording=Wording(lambda: (shorten(summary), _detail(p, case))),
        source=CYANOCOBALAMIN_LABEL,
        suggestions=suggestions,
        selection_behavior=SelectionBehavior.ANY if suggestions else None,
        concerns=frozenset(m.resource_id for m in drafts),
    )


def _urgency(p: ClinicalPicture, case: _Case) -> tuple[Indicator, str]:
    review_short = "1 month (pregnant)" if p.pregnant else "3 months"
    if case.low_k and case.potassium is not None:
        return Indicator.CRITICAL, (
            f"Potassium {_mmol(case.potassium)} mmol/L as B12 starts: "
            "correct it, recheck within 48 h (B12 can lower potassium); reticulocytes days 5-7."
        )
    if p.megaloblastic_picture:
        return Indicator.WARNING, (
            f"{_blood_text(p, case.hb, case.mcv)}: check potassium within 48 h of starting B12 "
            "(hypokalaemia risk); reticulocytes and haematocrit on days 5-7."
        )
    if case.hb is None or case.mcv is None:
        return Indicator.INFO, (
            "Parenteral B12 starting with no current blood count: check a CBC (anaemia needs "
            f"potassium monitoring); review at {review_short}."
        )
    if case.baseline_due:
        return Indicator.INFO, (
            f"Parenteral B12 starting without macrocytic anaemia: review response at "
            f"{review_short}; take the B12 sample before the first dose."
        )
    # Not "no routine B12 retest": beside a card asking for a confirmation sample before
    # the first dose (active B12 in pregnancy) it would read as the opposite instruction.
    return Indicator.INFO, (
        f"Parenteral B12 starting without macrocytic anaemia: review symptoms and blood "
        f"count at {review_short}."
    )


def _mmol(result: LabResult) -> str:
    return format_number(result.canonical_value) if result.canonical_value is not None else ""


def _detail(p: ClinicalPicture, case: _Case) -> str:
    text = CardText().heading("B12 starting")
    text.bullets(f"drafted: {m.name}, {m.route.value} ({m.resource_id})" for m in case.drafts)
    text.bullets(
        f"started {m.start.date().isoformat()}: {m.name}, {m.route.value} ({m.resource_id})"
        for m in case.recent
        if m.start is not None
    )
    text.blank().heading("Evidence").bullets(_evidence(p, case)).blank()
    if DataCategory.BLOOD_COUNTS in p.facts.missing:
        text.paragraph("Blood counts could not be obtained: anaemia could not be judged.")
    if DataCategory.RENAL_LABS in p.facts.missing:
        text.paragraph("Potassium results could not be obtained.")
    text.heading("Plan").bullets(_plan(p, case))
    return text.source(CYANOCOBALAMIN_LABEL, NICE_NG239).text()


def _evidence(p: ClinicalPicture, case: _Case) -> list[str]:
    hb, mcv, potassium = case.hb, case.mcv, case.potassium
    lines = [f"haemoglobin {describe(hb)}" if hb else "no current haemoglobin"]
    lines.append(f"MCV {describe(mcv)}" if mcv else "no current MCV")
    kinds = (ConditionKind.MEGALOBLASTIC_ANAEMIA, ConditionKind.ANAEMIA)
    lines += [f"{c.name} ({c.resource_id})" for c in p.conditions_of(*kinds)]
    if potassium is not None:
        flag = " (**below 3.0 mmol/L**)" if case.low_k else ""
        lines.append(f"potassium {describe(potassium)}{flag}")
    else:
        lines.append("no current potassium")
    if p.pregnant:
        lines.append("pregnant")
    return lines


def _plan(p: ClinicalPicture, case: _Case) -> list[str]:
    lines = []
    if p.megaloblastic_picture or case.low_k:
        if case.low_k and case.potassium is not None:
            lines.append(
                f"potassium is {_mmol(case.potassium)} mmol/L: correct it and "
                "recheck within 48 h of the first dose"
            )
        lines += [
            "potassium within 48 h of the first dose: treating megaloblastic anaemia moves "
            "potassium into new red cells (hypokalaemia, rarely sudden death)",
            "reticulocytes and haematocrit on days 5-7, then until the haematocrit is normal",
            "platelets until normal",
        ]
    elif case.hb is None or case.mcv is None:
        lines.append(
            "no current blood count: check a CBC; with macrocytic anaemia, potassium within "
            "48 h and reticulocytes on days 5-7"
        )
    else:
        lines.append("no macrocytic anaemia: potassium and reticulocyte monitoring are not needed")
    if case.baseline_due:
        lines.append(
            "no diagnostic B12 result: take the B12 sample before the first dose (results "
            "drawn after replacement starts are not diagnostic)"
        )
    lines.append(
        f"clinical review at {case.review}: symptoms and blood count (once treatment has "
        "started, B12 levels on IM therapy are not informative)"
    )
    return lines


def _recent_starts(p: ClinicalPicture) -> tuple[MedicationExposure, ...]:
    window = p.policy.windows.recent_b12_start_days
    return tuple(
        m
        for m in p.facts.medications
        if m.is_b12_product
        and not m.is_draft
        and m.route.parenteral
        and m.start is not None
        and 0 <= p.days_since(m.start) <= window
    )


def _established_parenteral(p: ClinicalPicture) -> bool:
    window = p.policy.windows.recent_b12_start_days
    return any(
        m.route.parenteral and (m.start is None or p.days_since(m.start) > window)
        for m in p.established_b12_therapy
    )


def _blood_text(p: ClinicalPicture, hb: LabResult | None, mcv: LabResult | None) -> str:
    parts: list[str] = []
    if hb is not None and hb.value is not None and p.low_haemoglobin is not None:
        parts.append(f"Hb {hb.comparator or ''}{format_number(hb.value)} {hb.unit}")
    if mcv is not None and mcv.value is not None and p.macrocytosis is not None:
        parts.append(f"MCV {mcv.comparator or ''}{format_number(mcv.value)} fL")
    return ", ".join(parts) if len(parts) == 2 else "Megaloblastic anaemia"


def _suggestions(
    p: ClinicalPicture, *, full: bool, hb: LabResult | None, mcv: LabResult | None
) -> tuple[Suggestion, ...]:
    drafted = {a for order in p.facts.draft_labs for a in order.analytes}
    if drafted & _CBC_ANALYTES:
        drafted.add(Analyte.HAEMOGLOBIN)
    wanted: list[tuple[Analyte, str, str]] = []
    if full:
        wanted = [
            (Analyte.POTASSIUM, LOINC_POTASSIUM, "Potassium within 48 h of the first B12 dose"),
            (Analyte.RETICULOCYTES, LOINC_RETICULOCYTES, "Reticulocytes on days 5-7 of B12"),
            (Analyte.HAEMOGLOBIN, LOINC_CBC, "CBC (haematocrit, platelets) on days 5-7 of B12"),
        ]
    elif hb is None or mcv is None:
        wanted = [(Analyte.HAEMOGLOBIN, LOINC_CBC, "CBC: anaemia could not be judged")]
    out: list[Suggestion] = []
    for analyte, loinc, note in wanted:
        if analyte in drafted:
            continue
        display = LOINC_DISPLAY[loinc]
        out.append(
            Suggestion(
                label=f"Order {display}",
                actions=(OrderLab(loinc, display, note, note=note),),
                is_recommended=True,
            )
        )
    return tuple(out)


RULE = Rule(
    id="b12-treatment-monitoring",
    title="Monitoring after starting parenteral B12",
    summary=summary_of(__doc__),
    sources=(CYANOCOBALAMIN_LABEL, NICE_NG239),
    indicators=(Indicator.CRITICAL, Indicator.WARNING, Indicator.INFO),
    settings=(
        "windows.recent_b12_start_days",
        "thresholds.potassium_critical_below_mmol_l",
        "thresholds.mcv_macrocytosis_above_fl",
        "thresholds.haemoglobin_low_male_g_dl",
        "thresholds.haemoglobin_low_female_g_dl",
        "windows.lookback_months",
        "thresholds.total_b12_deficient_below_ng_l",
        "thresholds.total_b12_unlikely_above_ng_l",
        "windows.b12_washout_months",
        "windows.im_max_interval_months",
    ),
    evaluate=evaluate,
)
