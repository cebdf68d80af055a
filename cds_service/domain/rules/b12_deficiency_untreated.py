"""``b12-deficiency-untreated``: B12 deficiency is confirmed and no B12 therapy is in place.

Untreated deficiency can cause permanent spinal cord damage within about 3 months: treat
now, with the regimen that fits the situation (NICE NG239, BNF; oral replacement as an
alternative when nothing calls for injections, AAFP 2025).

When: the B12 status is deficient (total or active B12 below the cut-off of its unit, the
most specific current evidence winning) or functional deficiency (MMA above its limit with
eGFR at or above ``thresholds.egfr_impaired_below``), and no B12 therapy is active or drafted.
Then: warning, critical when subacute combined degeneration is recorded. The detail names
each result with its band, any conflict between results, neurological involvement (saying
plainly when it rests on headache or back pain alone), a malabsorption cause (treatment is
lifelong), why this regimen, and missing data. The suggestions are the treatment options
(exactly one recommended): the neurological regimen with involvement
(``neurological_involvement``, ``windows.neuro_loading_review_weeks``), else the standard IM
regimen, with oral cyanocobalamin as an alternative when there is no malabsorption cause,
anaemia or degeneration; the product follows ``formulary``. The card concerns drafted B12
stop orders, and silences the indeterminate, symptom, screening and lifelong cards: it
carries the treatment, and its regimen continues into maintenance.
Not when: B12 therapy active or drafted; status indeterminate, unlikely or unknown; a raised
MMA with impaired renal function alone; results drawn on therapy (not diagnostic).
"""

from __future__ import annotations

from ..b12status import B12_STATUS_SETTINGS, B12Status
from ..cardtext import CardText
from ..evidence import (
    b12_evidence_lines,
    malabsorption_causes,
    missing_data,
    neurological_lines,
    renal_mma_caveat,
)
from ..findings import Finding, OrderMedication, SelectionBehavior, Suggestion, Wording, shorten
from ..picture import ClinicalPicture
from ..regimens import treatment_options
from ..resulttext import result_value_text
from ..rule import Rule, summary_of
from ..sources import AAFP_2025, BNF_HYDROXOCOBALAMIN, NICE_NG239
from ..vocabulary import Analyte, ConditionKind, DataCategory, Indicator


def evaluate(p: ClinicalPicture) -> Finding | None:
    if not p.b12.status.is_deficient or p.has_b12_therapy:
        return None
    options = treatment_options(p)
    stop_orders = frozenset(
        m.resource_id
        for m in p.facts.medications
        if m.is_b12_product and m.is_draft and m.is_stop_order
    )
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.CRITICAL if p.scd_recorded else Indicator.WARNING,
        wording=Wording(lambda: (_summary(p), _detail(p, options, stop_orders))),
        source=NICE_NG239,
        suggestions=options,
        selection_behavior=SelectionBehavior.AT_MOST_ONE,
        concerns=stop_orders,
        supersedes=RULE.always_supersedes,
    )


def _summary(p: ClinicalPicture) -> str:
    key = p.b12.key_result
    if key is None:  # a deficient status always has its deciding result
        return shorten("B12 deficiency confirmed: start treatment.")
    when = key.effective.date().isoformat()
    if p.b12.status is B12Status.FUNCTIONAL_DEFICIENCY:
        head = f"Functional B12 deficiency (MMA {result_value_text(key)}, {when})"
    else:
        label = "active B12 " if key.analyte is Analyte.ACTIVE_B12 else ""
        head = f"B12 deficiency confirmed ({label}{result_value_text(key)}, {when})"
    if p.scd_recorded:
        return shorten(f"{head} with subacute combined degeneration: start treatment now.")
    return shorten(f"{head}: start treatment.")


def _detail(
    p: ClinicalPicture, options: tuple[Suggestion, ...], stop_orders: frozenset[str]
) -> str:
    a = p.b12
    lines = [
        "**Start treatment.** Untreated deficiency can cause permanent spinal cord damage "
        "within about 3 months.",
        "",
        f"B12 status: **{a.status.value}**.",
        "",
    ]
    lines += b12_evidence_lines(p) + [""]
    if a.conflict:
        lines += [f"Conflicting results: {a.conflict}", ""]
    if renal := renal_mma_caveat(p, "; the deficiency rests on the B12 result."):
        lines.append(renal)
    if p.scd_recorded:
        names = ", ".join(
            f"{c.name} ({c.resource_id})"
            for c in p.conditions_of(ConditionKind.SUBACUTE_COMBINED_DEGENERATION)
        )
        lines.append(f"Subacute combined degeneration recorded: {names}. Treat without delay.")
    lines += neurological_lines(p)
    if p.has_malabsorption_cause:
        lines.append(
            f"Malabsorption cause: {malabsorption_causes(p)}. Treatment is **lifelong**: "
            "continue the maintenance injections after loading."
        )
    if stop_orders:
        lines.append(
            f"A draft order stops B12 therapy ({', '.join(sorted(stop_orders))}): "
            "the deficiency is confirmed and untreated."
        )
    lines += ["", "Regimen:", ""]
    for option in options:
        tag = "Recommended" if option.is_recommended else "Alternative"
        lines += [
            f"- {tag}: {a.regimen.text}"
            for a in option.actions[:1]
            if isinstance(a, OrderMedication)
        ]
    lines.append("")
    lines.append(_regimen_reason(p))
    missing = missing_data(p, DataCategory.MEDICATIONS, DataCategory.CONDITIONS)
    if missing:
        lines += [
            "",
            f"{missing}. Check that B12 is not already given, and for neurological signs or a "
            "malabsorption cause.",
        ]
    return CardText(*lines).source(NICE_NG239, BNF_HYDROXOCOBALAMIN, AAFP_2025).text()


def _regimen_reason(p: ClinicalPicture) -> str:
    if p.neurological:
        weeks = p.policy.windows.neuro_loading_review_weeks
        return (
            "Neurological involvement: the intensive IM regimen, alternate days until no "
            f"further improvement (BNF); the order runs {weeks} weeks, with a review then."
        )
    reasons = []
    if p.has_malabsorption_cause:
        reasons.append("a malabsorption cause")
    if p.anaemia:
        reasons.append("anaemia")
    if p.scd_recorded:
        reasons.append("subacute combined degeneration")
    if reasons:
        return f"Oral replacement is not offered: {' and '.join(reasons)}."
    return (
        "No neurological involvement, no malabsorption cause and no anaemia: oral "
        "cyanocobalamin is an alternative to IM (NICE NG239; AAFP 2025)."
    )


#: The test, symptom and lifelong-therapy cards: this card's treatment answers them.
_SUPERSEDED = (
    "b12-indeterminate",
    "b12-normal-but-symptomatic",
    "b12-screening-due",
    "b12-lifelong-therapy",
)


RULE = Rule(
    id="b12-deficiency-untreated",
    title="Confirmed B12 deficiency without treatment",
    summary=summary_of(__doc__),
    sources=(NICE_NG239, BNF_HYDROXOCOBALAMIN, AAFP_2025),
    indicators=(Indicator.CRITICAL, Indicator.WARNING),
    settings=(
        *B12_STATUS_SETTINGS,
        "thresholds.haemoglobin_low_male_g_dl",
        "thresholds.haemoglobin_low_female_g_dl",
        "windows.lookback_months",
        "neurological_involvement",
        "formulary",
        "windows.neuro_loading_review_weeks",
    ),
    evaluate=evaluate,
    always_supersedes=frozenset(_SUPERSEDED),
    supersedes=frozenset(_SUPERSEDED),
)
