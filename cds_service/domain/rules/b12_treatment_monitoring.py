"""``b12-treatment-monitoring``: what to check after parenteral B12 starts.

rule book §3: "Parenteral B12 is in the draft orders (or started within 7 days) and there
is anaemia with macrocytosis (megaloblastic picture)" -> "Check potassium within 48 h of
starting B12 (hypokalaemia risk); reticulocytes and haematocrit on days 5-7; platelets until
normal; review at 3 months." warning; critical if latest potassium < 3.0 mmol/L; info when no
anaemia (review plan only); order potassium (2823-3), reticulocytes (4679-7), CBC. Section 6:
clinical review at 3 months (1 month in pregnancy), no routine B12 retest on IM.

Sources: US cyanocobalamin injection label (hypokalaemia when megaloblastic anaemia is treated
intensively; potassium, reticulocytes, haematocrit); NICE NG239 (review at 3 months, 1 month in
pregnancy).

When: parenteral B12 is starting, i.e. a parenteral (IM / SC / IV) B12 product is among the
draft orders, or a non-draft parenteral B12 exposure started within
``windows.recent_b12_start_days`` (7) days.
Then:
- **megaloblastic picture** (anaemia with MCV > 100 fL, or megaloblastic anaemia recorded):
  warning with the blood-count evidence; suggestions (``any``): potassium, reticulocytes, CBC
  (each left out when already drafted).
- **latest current potassium < ``thresholds.potassium_critical_below_mmol_l``** (3.0): critical,
  whatever the blood count says. Decided so because a potassium already that low when B12
  starts must not sit in an info card that order-sign might rank low, and the blood count can
  be missing; the card quotes the potassium's date so an old value can be judged as such.
- **no megaloblastic picture**: info, the review plan only (review at 3 months, 1 month in
  pregnancy). When there is no current haemoglobin or MCV (anaemia cannot be judged) a CBC is
  suggested.
``concerns``: the parenteral B12 drafts. No supersedes: monitoring is its own problem.

Not when: no parenteral B12 starting (oral or unknown-route products; non-draft exposures that
started more than 7 days ago or have no start date); the draft continues an established
parenteral course (a non-draft parenteral B12 exposure, active, that started before the recent
window or has no start date): that is maintenance, not a start.
"""

from __future__ import annotations

from ..b12status import B12Status
from ..bands import below
from ..codes import LOINC_CBC, LOINC_DISPLAY, LOINC_POTASSIUM, LOINC_RETICULOCYTES
from ..facts import MedicationExposure
from ..findings import Finding, OrderLab, SelectionBehavior, Suggestion, shorten
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


def evaluate(p: ClinicalPicture) -> Finding | None:
    drafts = tuple(m for m in p.b12_drafts if m.route.parenteral)
    recent = _recent_starts(p)
    if drafts and not recent and _established_parenteral(p):
        drafts = ()
    if not drafts and not recent:
        return None

    t = p.policy.thresholds
    potassium = p.potassium
    low_k = below(potassium, t.potassium_critical_below_mmol_l)
    review = "1 month (pregnancy)" if p.pregnant else "3 months"
    review_short = "1 month (pregnant)" if p.pregnant else "3 months"
    hb = p.latest_current(Analyte.HAEMOGLOBIN)
    mcv = p.latest_current(Analyte.MCV)
    # No diagnostic B12 yet: the plan must not say "no B12 test" while a baseline sample is
    # what the clinician should take (the screening card asks for it before the first dose).
    baseline_due = p.b12.status is B12Status.UNKNOWN

    if low_k:
        indicator = Indicator.CRITICAL
        summary = (
            f"Potassium {format_number(potassium.canonical_value)} mmol/L as B12 starts: "
            "correct it, recheck within 48 h (B12 can lower potassium); reticulocytes days 5-7."
        )
    elif p.megaloblastic_picture:
        indicator = Indicator.WARNING
        summary = (
            f"{_blood_text(p, hb, mcv)}: check potassium within 48 h of starting B12 "
            "(hypokalaemia risk); reticulocytes and haematocrit on days 5-7."
        )
    elif hb is None or mcv is None:
        indicator = Indicator.INFO
        summary = (
            "Parenteral B12 starting with no current blood count: check a CBC (anaemia needs "
            f"potassium monitoring); review at {review_short}."
        )
    elif baseline_due:
        indicator = Indicator.INFO
        summary = (
            f"Parenteral B12 starting without macrocytic anaemia: review response at "
            f"{review_short}; take the B12 sample before the first dose."
        )
    else:
        indicator = Indicator.INFO
        # Not "no routine B12 retest": beside a card asking for a confirmation sample before
        # the first dose (active B12 in pregnancy) it would read as the opposite instruction.
        summary = (
            f"Parenteral B12 starting without macrocytic anaemia: review symptoms and blood "
            f"count at {review_short}."
        )

    lines = ["**B12 starting**", ""]
    for m in drafts:
        lines.append(f"- drafted: {m.name}, {m.route.value} ({m.resource_id})")
    for m in recent:
        lines.append(
            f"- started {m.start.date().isoformat()}: {m.name}, {m.route.value} ({m.resource_id})"
        )
    lines += ["", "**Evidence**", ""]
    lines.append(f"- haemoglobin {describe(hb)}" if hb else "- no current haemoglobin")
    lines.append(f"- MCV {describe(mcv)}" if mcv else "- no current MCV")
    for c in p.conditions_of(ConditionKind.MEGALOBLASTIC_ANAEMIA, ConditionKind.ANAEMIA):
        lines.append(f"- {c.name} ({c.resource_id})")
    if potassium is not None:
        flag = " (**below 3.0 mmol/L**)" if low_k else ""
        lines.append(f"- potassium {describe(potassium)}{flag}")
    else:
        lines.append("- no current potassium")
    if p.pregnant:
        lines.append("- pregnant")
    lines.append("")
    if DataCategory.BLOOD_COUNTS in p.facts.missing:
        lines += ["Blood counts could not be obtained: anaemia could not be judged.", ""]
    if DataCategory.RENAL_LABS in p.facts.missing:
        lines += ["Potassium results could not be obtained.", ""]

    lines += ["**Plan**", ""]
    if p.megaloblastic_picture or low_k:
        if low_k:
            lines.append(
                f"- potassium is {format_number(potassium.canonical_value)} mmol/L: correct it and "
                "recheck within 48 h of the first dose"
            )
        lines += [
            "- potassium within 48 h of the first dose: treating megaloblastic anaemia moves "
            "potassium into new red cells (hypokalaemia, rarely sudden death)",
            "- reticulocytes and haematocrit on days 5-7, then until the haematocrit is normal",
            "- platelets until normal",
        ]
    elif hb is None or mcv is None:
        lines.append(
            "- no current blood count: check a CBC; with macrocytic anaemia, potassium within "
            "48 h and reticulocytes on days 5-7"
        )
    else:
        lines.append(
            "- no macrocytic anaemia: potassium and reticulocyte monitoring are not needed"
        )
    if baseline_due:
        lines.append(
            "- no diagnostic B12 result: take the B12 sample before the first dose (results "
            "drawn after replacement starts are not diagnostic)"
        )
    lines += [
        f"- clinical review at {review}: symptoms and blood count (once treatment has "
        "started, B12 levels on IM therapy are not informative)",
        "",
        f"Source: {CYANOCOBALAMIN_LABEL.label}; {NICE_NG239.label}.",
    ]

    suggestions = _suggestions(p, full=p.megaloblastic_picture or low_k, hb=hb, mcv=mcv)
    return Finding(
        rule_id=RULE.id,
        indicator=indicator,
        summary=shorten(summary),
        detail="\n".join(lines),
        source=CYANOCOBALAMIN_LABEL,
        suggestions=suggestions,
        selection_behavior=SelectionBehavior.ANY if suggestions else None,
        concerns=frozenset(m.resource_id for m in drafts),
    )


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


def _blood_text(p: ClinicalPicture, hb, mcv) -> str:
    parts = []
    if hb is not None and p.low_haemoglobin is not None:
        parts.append(f"Hb {hb.comparator or ''}{format_number(hb.value)} {hb.unit}")
    if mcv is not None and p.macrocytosis is not None:
        parts.append(f"MCV {mcv.comparator or ''}{format_number(mcv.value)} fL")
    return ", ".join(parts) if len(parts) == 2 else "Megaloblastic anaemia"


def _suggestions(p: ClinicalPicture, *, full: bool, hb, mcv) -> tuple[Suggestion, ...]:
    drafted = {a for order in p.facts.draft_labs for a in order.analytes}
    if drafted & _CBC_ANALYTES:
        drafted.add(Analyte.HAEMOGLOBIN)
    wanted = []
    if full:
        wanted = [
            (Analyte.POTASSIUM, LOINC_POTASSIUM, "Potassium within 48 h of the first B12 dose"),
            (Analyte.RETICULOCYTES, LOINC_RETICULOCYTES, "Reticulocytes on days 5-7 of B12"),
            (Analyte.HAEMOGLOBIN, LOINC_CBC, "CBC (haematocrit, platelets) on days 5-7 of B12"),
        ]
    elif hb is None or mcv is None:
        wanted = [(Analyte.HAEMOGLOBIN, LOINC_CBC, "CBC: anaemia could not be judged")]
    out = []
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
