"""``b12-indeterminate``: B12 is in the indeterminate band and nothing has settled it.

An indeterminate total B12 (between ``thresholds.total_b12_deficient_below_ng_l`` and
``thresholds.total_b12_unlikely_above_ng_l``, or the pmol/L pair) or active B12 neither
confirms nor excludes deficiency: a second-line test settles it. MMA is not specific in
renal impairment; in pregnancy active B12 confirms.

When: the B12 status is indeterminate (no current MMA or active B12 settles it) and no B12
therapy is active or drafted.
Then: info; warning with neurological involvement, saying not to delay treatment when
suspicion is strong (and that headache or back pain alone is only *possible* involvement).
The detail names each result with its band and the site's cut-offs, the renal caveat
(eGFR below ``thresholds.egfr_impaired_below``), pregnancy and drafted tests. It offers MMA
(unless current or drafted) and, when only total B12 was measured, active B12 as the
alternative; active B12 is the recommended one with impaired renal function, in pregnancy,
or when MMA is not offered. The card concerns the drafted MMA and active B12 orders.
Not when: deficient, functional deficiency, unlikely or unknown status; B12 therapy active
or drafted (results are then not diagnostic).
"""

from __future__ import annotations

from ..b12status import B12_STATUS_SETTINGS, B12Status
from ..cardtext import CardText
from ..codes import LOINC_ACTIVE_B12, LOINC_DISPLAY, LOINC_MMA
from ..evidence import b12_evidence_lines, first_neuro_kind, neurological_lines, renal_mma_caveat
from ..facts import DraftLabOrder
from ..findings import Finding, OrderLab, SelectionBehavior, Suggestion, Wording, shorten
from ..picture import ClinicalPicture
from ..resulttext import describe, result_value_text
from ..rule import Rule, summary_of
from ..sources import NICE_NG239
from ..units import format_number
from ..vocabulary import Analyte, DataCategory, Indicator

_MMA_NOTE = "Draw before any B12 is given: MMA falls within days of replacement."


def evaluate(p: ClinicalPicture) -> Finding | None:
    a = p.b12
    if a.status is not B12Status.INDETERMINATE or p.has_b12_therapy:
        return None
    mma_drafts = _drafts(p, Analyte.MMA)
    active_drafts = _drafts(p, Analyte.ACTIVE_B12)
    suggest_mma = a.mma is None and not mma_drafts
    # Active B12 is the alternative to MMA; still worth it beside a drafted MMA that renal
    # impairment would make non-specific.
    suggest_active = a.active is None and not active_drafts and (not mma_drafts or p.egfr_impaired)
    prefer_active = suggest_active and (p.pregnant or p.egfr_impaired or not suggest_mma)
    suggestions = _suggestions(suggest_mma, suggest_active, prefer_active)
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.WARNING if p.neurological else Indicator.INFO,
        wording=Wording(
            lambda: (
                _summary(
                    p, suggest_mma and not prefer_active, suggest_active, mma_drafts, active_drafts
                ),
                _detail(p, suggest_mma, mma_drafts + active_drafts),
            )
        ),
        source=NICE_NG239,
        suggestions=suggestions,
        selection_behavior=SelectionBehavior.ANY if suggestions else None,
        concerns=frozenset(d.resource_id for d in mma_drafts + active_drafts),
    )


def _suggestions(
    suggest_mma: bool, suggest_active: bool, prefer_active: bool
) -> tuple[Suggestion, ...]:
    suggestions = []
    if suggest_mma:
        mma = OrderLab(LOINC_MMA, LOINC_DISPLAY[LOINC_MMA], "Serum MMA", note=_MMA_NOTE)
        suggestions.append(
            Suggestion(
                "Order serum methylmalonic acid (MMA)", (mma,), is_recommended=not prefer_active
            )
        )
    if suggest_active:
        active = OrderLab(
            LOINC_ACTIVE_B12,
            LOINC_DISPLAY[LOINC_ACTIVE_B12],
            "Active B12 (holotranscobalamin)",
            note="Draw before any B12 is given.",
        )
        label = "Order active B12 (holotranscobalamin)" + ("" if prefer_active else " instead")
        suggestions.append(Suggestion(label, (active,), is_recommended=prefer_active))
    return tuple(suggestions)


def _drafts(p: ClinicalPicture, analyte: Analyte) -> list[DraftLabOrder]:
    return [d for d in p.facts.draft_labs if analyte in d.analytes]


def _summary(
    p: ClinicalPicture,
    mma_first: bool,
    suggest_active: bool,
    mma_drafts: list[DraftLabOrder],
    active_drafts: list[DraftLabOrder],
) -> str:
    key = p.b12.key_result
    if key is None:  # an indeterminate status always has its deciding result
        head = "B12 indeterminate"
    elif key.analyte is Analyte.ACTIVE_B12:
        head = f"Active B12 indeterminate ({result_value_text(key)})"
    else:
        head = f"B12 indeterminate ({result_value_text(key)})"
    if mma_first:
        step = "check MMA before deciding"
    elif suggest_active:
        step = "check active B12 before deciding"
    elif mma_drafts or active_drafts:
        step = "the drafted " + ("MMA" if mma_drafts else "active B12") + " will settle it"
    else:
        step = "MMA not specific with low eGFR; decide clinically"
    if p.neurological:
        kind = first_neuro_kind(p)
        text = f"{head} with {kind}: {step}; do not delay treatment if suspicion is strong."
        if len(text) > 139:
            text = f"{head} with {kind}: {step}; do not delay treatment."
        return shorten(text)
    return shorten(f"{head}: {step}.")


def _detail(p: ClinicalPicture, suggest_mma: bool, drafts: list[DraftLabOrder]) -> str:
    lines = [
        "An indeterminate B12 result neither confirms nor excludes deficiency: a second-line "
        "test (MMA, or active B12 when only total B12 was measured) settles it.",
        "",
    ]
    lines += b12_evidence_lines(p) + [""]
    if renal := renal_mma_caveat(p, ", so it does not settle the question."):
        lines.append(renal)
    elif suggest_mma and p.egfr_impaired and p.egfr is not None:
        lines.append(
            f"eGFR {describe(p.egfr)} is below "
            f"{format_number(p.policy.thresholds.egfr_impaired_below)}: a raised MMA would not "
            "be specific (renal impairment raises MMA on its own); active B12 is preferred."
        )
    if p.pregnant:
        lines.append(
            "Pregnant: total B12 falls in pregnancy; NICE recommends active B12 to confirm."
        )
    if p.neurological:
        lines += neurological_lines(p)
        lines.append(
            "**Do not delay treatment if suspicion is strong**: take the samples for MMA / active "
            "B12 first, then start B12 without waiting for the results (NICE NG239)."
        )
    if p.macrocytosis is not None:
        lines.append(f"Macrocytosis: MCV {describe(p.macrocytosis)}.")
    if drafts:
        names = ", ".join(f"{d.name} ({d.resource_id})" for d in drafts)
        lines.append(f"Already among the draft orders: {names}.")
    if DataCategory.MEDICATIONS in p.facts.missing:
        lines.append(
            "Medications were not available for this request: check that B12 is not already "
            "given (results drawn after replacement are not diagnostic)."
        )
    return CardText(*lines).source(NICE_NG239).text()


RULE = Rule(
    id="b12-indeterminate",
    title="Indeterminate B12 result not yet settled by MMA or active B12",
    summary=summary_of(__doc__),
    sources=(NICE_NG239,),
    indicators=(Indicator.WARNING, Indicator.INFO),
    settings=(
        *B12_STATUS_SETTINGS,
        "windows.lookback_months",
        "neurological_involvement",
        "thresholds.mcv_macrocytosis_above_fl",
    ),
    evaluate=evaluate,
)
