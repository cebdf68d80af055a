"""``cyanocobalamin-renal``: high-dose cyanocobalamin drafted with impaired renal function.

In DIVINe, high-dose B vitamins including cyanocobalamin were followed by a faster fall in
GFR and more vascular events in diabetic nephropathy; the harm is attributed to cyanide
accumulating when renal clearance is reduced. The evidence is indirect and this is not a
labelled contraindication, so the card warns (never blocks) and prefers hydroxocobalamin.
Methylcobalamin is never suggested: it is an unlicensed supplement in neither NICE nor BNF.

When: a cyanocobalamin draft (not a stop order) has a qualifying dose, at least
``thresholds.cyanocobalamin_renal_min_ug`` per administration or per day (an unknown dose
qualifies when the product name states such a strength: one ampoule or tablet is the usual
dose), and renal function is impaired: the latest current eGFR is below
``thresholds.egfr_impaired_below``, or CKD or dialysis is recorded.
Then: warning naming the renal evidence and each qualifying draft, with one suggestion that
deletes each draft and orders hydroxocobalamin at the same schedule (recommended when every
draft is parenteral with a readable schedule). An oral or sublingual draft becomes
hydroxocobalamin IM (maintenance when already on B12, the neurological regimen with
``windows.neuro_loading_review_weeks`` when involvement is recorded, else standard): a route
change, never recommended. A draft whose schedule cannot be copied gets no replacement and
the card says why. Override reasons: not on formulary; benefit outweighs risk.
Not when: no qualifying cyanocobalamin draft; no current impaired eGFR and no CKD or dialysis
recorded (including when renal results could not be obtained).
"""

from __future__ import annotations

import re

from ..cardtext import CardText
from ..facts import MedicationExposure
from ..findings import (
    Action,
    Finding,
    OrderMedication,
    OverrideReason,
    Regimen,
    RemoveDraft,
    SelectionBehavior,
    Suggestion,
    Wording,
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
    qualifying = [
        (m, why)
        for m in p.b12_drafts
        if DrugClass.CYANOCOBALAMIN in m.classes and (why := _qualifying_dose(m, minimum))
    ]
    if not qualifying:
        return None
    actions, route_change, unreplaced = _replacements(p, qualifying)
    suggestions: tuple[Suggestion, ...] = ()
    if actions:
        label = (
            "Switch to hydroxocobalamin IM (route change)"
            if route_change
            else "Replace with hydroxocobalamin at the same schedule"
        )
        recommended = not route_change and not unreplaced
        suggestions = (Suggestion(label, tuple(actions), is_recommended=recommended),)
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.WARNING,
        wording=Wording(
            lambda: (
                shorten(f"{_lead(p)}: prefer hydroxocobalamin to cyanocobalamin."),
                _detail(p, qualifying, route_change, unreplaced),
            )
        ),
        source=DIVINE,
        suggestions=suggestions,
        selection_behavior=SelectionBehavior.AT_MOST_ONE if suggestions else None,
        override_reasons=OVERRIDE_REASONS,
        concerns=frozenset(m.resource_id for m, _ in qualifying),
    )


def _lead(p: ClinicalPicture) -> str:
    egfr = p.egfr if p.egfr_impaired else None
    if egfr is not None and egfr.value is not None:
        return f"eGFR {egfr.comparator or ''}{format_number(egfr.value)}"
    if p.conditions_of(ConditionKind.DIALYSIS):
        return "Dialysis recorded"
    return "CKD recorded"


_Qualifying = list[tuple[MedicationExposure, str]]


def _replacements(
    p: ClinicalPicture, qualifying: _Qualifying
) -> tuple[list[Action], bool, _Qualifying]:
    """The delete-and-order actions, whether any changes the route, and the drafts that get
    no replacement (with why)."""
    actions: list[Action] = []
    route_change = False
    unreplaced: _Qualifying = []
    for m, _ in qualifying:
        regimen, why_not = _replacement(p, m)
        if regimen is None:
            unreplaced.append((m, why_not))
            continue
        route_change = route_change or m.route in (Route.ORAL, Route.SUBLINGUAL)
        actions.append(RemoveDraft(m.resource_id, f"Delete the drafted order: {m.name}"))
        actions.append(OrderMedication(regimen, regimen.text))
    return actions, route_change, unreplaced


def _detail(
    p: ClinicalPicture, qualifying: _Qualifying, route_change: bool, unreplaced: _Qualifying
) -> str:
    text = CardText().heading("Renal function")
    egfr = p.egfr if p.egfr_impaired else None
    if egfr is not None:
        text.bullets([f"eGFR {describe(egfr)}"])
    elif p.egfr is not None:
        text.bullets([f"latest eGFR {describe(p.egfr)} (not below the limit)"])
    dialysis = p.conditions_of(ConditionKind.DIALYSIS)
    ckd = tuple(c for c in p.conditions_of(ConditionKind.CKD) if c not in dialysis)
    text.bullets(f"{c.name} ({c.resource_id})" for c in dialysis + ckd)
    text.blank().heading("Cyanocobalamin in the draft orders")
    text.bullets(f"{m.name} ({m.resource_id}): {why}" for m, why in qualifying).blank()
    text.paragraph(_EVIDENCE)
    if route_change:
        text.paragraph(
            "Hydroxocobalamin is given by injection only: replacing an oral cyanocobalamin "
            "order with it changes the route. If the oral route matters more, keep the "
            "cyanocobalamin and record the reason (override)."
        )
    for m, why_not in unreplaced:
        text.paragraph(f"No replacement is offered for {m.name} ({m.resource_id}): {why_not}")
    return text.source(DIVINE, "Spence et al., Lancet Neurol 2017", blank_before=False).text()


_EVIDENCE = (
    "In DIVINe, high-dose B vitamins including cyanocobalamin 1 mg daily in diabetic "
    "nephropathy (with folic acid 2.5 mg and B6 25 mg) were followed by a faster fall in "
    "GFR and more vascular events (hazard ratio 2.0). Spence et al. (Lancet Neurol 2017) "
    "attribute the harm to cyanocobalamin when renal clearance is reduced (cyanide "
    "accumulates). The evidence is indirect (a combined vitamin trial) and impaired renal "
    "function is **not a labelled contraindication**: prefer "
    "hydroxocobalamin (IM)."
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
