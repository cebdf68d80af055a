"""``cyanocobalamin-renal``: high-dose cyanocobalamin drafted with impaired renal function.

rule book §3: "Cyanocobalamin (any route, ≥ 1 mg doses or ≥ 1000 µg/day) is in the draft
orders and eGFR < 60 or CKD / dialysis is recorded" -> "eGFR 38: prefer hydroxocobalamin to
cyanocobalamin." warning (never critical); "replace with hydroxocobalamin at the same schedule".
Methylcobalamin is an unlicensed supplement in the UK, in neither NICE nor the BNF: the card
never suggests or names it as an alternative. Section 6: the brief's "do not use" becomes a
warning, not a block, because the evidence is indirect.

Sources: DIVINe (House et al., JAMA 2010;303:1603); Spence et al., Lancet Neurol 2017.

When: a cyanocobalamin product is among the draft orders (stop orders excluded) with a
qualifying dose, and renal function is impaired: the latest current eGFR is below
``thresholds.egfr_impaired_below`` (60), or CKD or dialysis is recorded.

A qualifying dose: ``dose_ug`` >= ``thresholds.cyanocobalamin_renal_min_ug`` (1000 µg) per
administration, or that much per day (500 µg twice daily counts). **Unknown dose** (no dose in
the order and none the adapter could read from the strength): the product name decides. A name
that states a cyanocobalamin strength of at least 1 mg ("1000 MCG/ML", "1 MG Oral Tablet")
qualifies, because one unit (an ampoule of 1 mL, a tablet) is the usual dose; a name without a
strength, or with a lower one (a multivitamin with 6 micrograms), does not: low-dose products
were not what DIVINe tested, and a card on every multivitamin would be noise.

Then: warning naming the renal evidence and each qualifying draft. Detail: DIVINe (high-dose B
vitamins including cyanocobalamin 1 mg in diabetic nephropathy: faster GFR decline, more
vascular events, HR 2.0); the evidence is indirect; it is not a labelled contraindication. One
suggestion (``at-most-one``): for each qualifying draft, delete it and order hydroxocobalamin at
the same schedule (``regimens.same_schedule_hydroxocobalamin``, with the course length and a
single dose kept, and three-times-weekly written as such). It is recommended when every draft is
parenteral with a readable schedule. An **oral / sublingual** draft is replaced by
hydroxocobalamin IM (there is no oral hydroxocobalamin): the maintenance regimen when the
patient is already on B12, else the standard / neurological regimen. This route change is never
recommended. A parenteral draft with a repeat count but no readable interval, or a draft of
unknown route, gets no automatic replacement (the detail says why). Override reasons:
hydroxocobalamin not on formulary; benefit outweighs risk. ``concerns``: the qualifying drafts.

Not when: no cyanocobalamin draft; the dose does not qualify; the latest current eGFR is >= 60
and no CKD / dialysis is recorded; no current eGFR and no CKD / dialysis (including when renal
results could not be obtained: the card cannot speak of evidence it does not have).
"""

from __future__ import annotations

import re

from ..facts import MedicationExposure
from ..findings import (
    Finding,
    OrderMedication,
    OverrideReason,
    Regimen,
    RemoveDraft,
    SelectionBehavior,
    Suggestion,
    shorten,
)
from ..picture import ClinicalPicture
from ..policy import Formulary
from ..regimens import (
    maintenance_regimen,
    neurological_regimen,
    same_schedule_hydroxocobalamin,
    standard_regimen,
)
from ..resulttext import describe
from ..rule import Rule, summary_of
from ..sources import DIVINE
from ..units import format_number
from ..vocabulary import ConditionKind, DrugClass, Indicator, Route

OVERRIDE_REASONS = (
    OverrideReason("hydroxocobalamin-not-on-formulary", "Hydroxocobalamin not on formulary"),
    OverrideReason("benefit-outweighs-risk", "Benefit outweighs risk"),
)

_STRENGTH = r"(\d+(?:\.\d+)?)\s*(mcg|µg|μg|ug|micrograms?|mg|milligrams?)\b"
_CYANO_STRENGTH = re.compile(r"cyanocobalamin\D{0,30}?" + _STRENGTH, re.IGNORECASE)
_ANY_STRENGTH = re.compile(_STRENGTH, re.IGNORECASE)


def evaluate(p: ClinicalPicture) -> Finding | None:
    if not p.renal_impairment:
        return None
    minimum = p.policy.thresholds.cyanocobalamin_renal_min_ug
    qualifying: list[tuple[MedicationExposure, str]] = []
    for m in p.b12_drafts:
        if DrugClass.CYANOCOBALAMIN not in m.classes:
            continue
        why = _qualifying_dose(m, minimum)
        if why:
            qualifying.append((m, why))
    if not qualifying:
        return None

    egfr = p.egfr if p.egfr_impaired else None
    dialysis = p.conditions_of(ConditionKind.DIALYSIS)
    ckd = p.conditions_of(ConditionKind.CKD)
    if egfr is not None:
        lead = f"eGFR {egfr.comparator or ''}{format_number(egfr.value)}"
    elif dialysis:
        lead = "Dialysis recorded"
    else:
        lead = "CKD recorded"
    summary = shorten(f"{lead}: prefer hydroxocobalamin to cyanocobalamin.")

    lines = ["**Renal function**", ""]
    if egfr is not None:
        lines.append(f"- eGFR {describe(egfr)}")
    elif p.egfr is not None:
        lines.append(f"- latest eGFR {describe(p.egfr)} (not below the limit)")
    for c in dialysis + tuple(c for c in ckd if c not in dialysis):
        lines.append(f"- {c.name} ({c.resource_id})")
    lines += ["", "**Cyanocobalamin in the draft orders**", ""]
    for m, why in qualifying:
        lines.append(f"- {m.name} ({m.resource_id}): {why}")
    lines += [
        "",
        "In DIVINe, high-dose B vitamins including cyanocobalamin 1 mg daily in diabetic "
        "nephropathy (with folic acid 2.5 mg and B6 25 mg) were followed by a faster fall in "
        "GFR and more vascular events (hazard ratio 2.0). Spence et al. (Lancet Neurol 2017) "
        "attribute the harm to cyanocobalamin when renal clearance is reduced (cyanide "
        "accumulates). The evidence is indirect (a combined vitamin trial) and impaired renal "
        "function is **not a labelled contraindication**: prefer "
        "hydroxocobalamin (IM).",
        "",
    ]

    actions: list = []
    route_change = False
    unreplaced: list[tuple[MedicationExposure, str]] = []
    for m, _ in qualifying:
        regimen, why_not = _replacement(p, m)
        if regimen is None:
            unreplaced.append((m, why_not))
            continue
        route_change = route_change or m.route in (Route.ORAL, Route.SUBLINGUAL)
        actions.append(RemoveDraft(m.resource_id, f"Delete the drafted order: {m.name}"))
        actions.append(OrderMedication(regimen, regimen.text))
    if route_change:
        lines += [
            "Hydroxocobalamin is given by injection only: replacing an oral cyanocobalamin "
            "order with it changes the route. If the oral route matters more, keep the "
            "cyanocobalamin and record the reason (override).",
            "",
        ]
    for m, why_not in unreplaced:
        lines += [f"No replacement is offered for {m.name} ({m.resource_id}): {why_not}", ""]
    lines.append(f"Source: {DIVINE.label}; Spence et al., Lancet Neurol 2017.")

    suggestions: tuple[Suggestion, ...] = ()
    if actions:
        label = (
            "Switch to hydroxocobalamin IM (route change)"
            if route_change
            else "Replace with hydroxocobalamin at the same schedule"
        )
        suggestions = (
            Suggestion(label, tuple(actions), is_recommended=not route_change and not unreplaced),
        )
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.WARNING,
        summary=summary,
        detail="\n".join(lines),
        source=DIVINE,
        suggestions=suggestions,
        selection_behavior=SelectionBehavior.AT_MOST_ONE if suggestions else None,
        override_reasons=OVERRIDE_REASONS,
        concerns=frozenset(m.resource_id for m, _ in qualifying),
    )


def _qualifying_dose(m: MedicationExposure, minimum: float) -> str | None:
    """Why the dose counts (for the detail), or ``None`` when it does not."""
    if m.dose_ug is not None:
        if m.dose_ug >= minimum:
            return f"{format_number(m.dose_ug)} micrograms per dose"
        per_day = m.dose_ug_per_day
        if per_day is not None and per_day >= minimum:
            return f"{format_number(per_day)} micrograms a day"
        return None
    strength = name_strength_ug(m.name)
    if strength is not None and strength >= minimum:
        return (
            f"dose not stated; the product strength ({format_number(strength)} micrograms) is "
            "taken as one dose"
        )
    return None


def name_strength_ug(name: str) -> float | None:
    """The cyanocobalamin strength a product name states, in micrograms (numerator only:
    "1000 MCG/ML" -> 1000). The amount after the word cyanocobalamin wins in combinations."""
    match = _CYANO_STRENGTH.search(name) or _ANY_STRENGTH.search(name)
    if not match:
        return None
    amount, unit = float(match.group(1)), match.group(2).lower()
    return amount * 1000 if unit == "mg" or unit.startswith("milligram") else amount


def _replacement(p: ClinicalPicture, m: MedicationExposure) -> tuple[Regimen | None, str]:
    if m.route in (Route.ORAL, Route.SUBLINGUAL):
        if p.b12_therapy:
            return maintenance_regimen(p, Formulary.HYDROXOCOBALAMIN), ""
        if p.neurological:
            weeks = p.policy.windows.neuro_loading_review_weeks
            return neurological_regimen(Formulary.HYDROXOCOBALAMIN, weeks), ""
        return standard_regimen(Formulary.HYDROXOCOBALAMIN), ""
    if not m.route.parenteral:
        return None, "the route of the order is not known, so its schedule cannot be copied."
    regimen = same_schedule_hydroxocobalamin(m)
    if regimen is None:
        return None, "the order has no readable dosing interval, so its schedule cannot be copied."
    return regimen, ""


RULE = Rule(
    id="cyanocobalamin-renal",
    title="High-dose cyanocobalamin with impaired renal function",
    summary=summary_of(__doc__),
    sources=(DIVINE,),
    indicators=(Indicator.WARNING,),
    settings=(
        "thresholds.cyanocobalamin_renal_min_ug",
        "thresholds.egfr_impaired_below",
        "windows.lookback_months",
        "windows.neuro_loading_review_weeks",
        "neurological_involvement",
    ),
    evaluate=evaluate,
)
