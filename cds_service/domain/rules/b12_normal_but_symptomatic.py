"""``b12-normal-but-symptomatic``: normal total B12, but symptoms or signs suggest deficiency.

A normal total B12 does not exclude deficiency when suspicion is high: antibody
interference can make it falsely normal. MMA or active B12 is the more specific test.

When: the B12 status is "deficiency unlikely" on the total B12 alone (above
``thresholds.total_b12_unlikely_above_ng_l`` or the pmol/L cut-off; no current active B12 or
MMA), no B12 therapy is active or drafted, and there is neurological involvement
(``neurological_involvement``) or macrocytosis (``thresholds.mcv_macrocytosis_above_fl``).
Then: info naming the total B12 and each sign with its evidence, saying plainly when
involvement rests on headache or back pain alone, and that a raised MMA would not be specific
with eGFR below ``thresholds.egfr_impaired_below``. It offers MMA unless MMA or active B12 is
already drafted; those drafts are what the card concerns.
Not when: the total B12 is deficient or indeterminate; an active B12 or MMA result is current
(the B12 status already weighs it); no sign; B12 therapy active or drafted (an MMA drawn on
replacement is not diagnostic).
"""

from __future__ import annotations

from ..b12status import B12_STATUS_SETTINGS, B12Status
from ..bands import Band, total_b12_cutoffs
from ..cardtext import CardText
from ..codes import LOINC_DISPLAY, LOINC_MMA
from ..evidence import first_neuro_kind, neurological_lines
from ..facts import DraftLabOrder, LabResult
from ..findings import Finding, OrderLab, SelectionBehavior, Suggestion, Wording, shorten
from ..picture import ClinicalPicture
from ..resulttext import describe, result_value_text
from ..rule import Rule, summary_of
from ..sources import AAFP_2025, NICE_NG239
from ..units import format_number
from ..vocabulary import Analyte, Indicator

_SECOND_LINE = frozenset({Analyte.MMA, Analyte.ACTIVE_B12})


def evaluate(p: ClinicalPicture) -> Finding | None:
    a, total = p.b12, p.b12.total
    if a.status is not B12Status.UNLIKELY or a.total_band is not Band.UNLIKELY or total is None:
        return None
    if p.has_b12_therapy or any(p.latest_current(x) is not None for x in _SECOND_LINE):
        return None
    if not p.neurological and p.macrocytosis is None:
        return None
    drafts = [d for d in p.facts.draft_labs if d.analytes & _SECOND_LINE]
    suggestions: tuple[Suggestion, ...] = ()
    if not drafts:
        note = "Draw before any B12 is given."
        mma = OrderLab(LOINC_MMA, LOINC_DISPLAY[LOINC_MMA], "Serum MMA", note=note)
        suggestions = (Suggestion("Order serum methylmalonic acid (MMA)", (mma,), True),)
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.INFO,
        wording=Wording(lambda: (_summary(p, total), _detail(p, total, drafts))),
        source=NICE_NG239,
        suggestions=suggestions,
        selection_behavior=SelectionBehavior.ANY if suggestions else None,
        concerns=frozenset(d.resource_id for d in drafts),
    )


def _summary(p: ClinicalPicture, total: LabResult) -> str:
    signs = []
    if p.neurological and (kind := first_neuro_kind(p)):
        signs.append(kind)
    if p.macrocytosis is not None:
        signs.append(f"MCV {result_value_text(p.macrocytosis)}")
    head = f"Normal total B12 ({result_value_text(total)}) with {' and '.join(signs)}"
    return shorten(f"{head}: consider MMA or active B12.")


def _detail(p: ClinicalPicture, total: LabResult, drafts: list[DraftLabOrder]) -> str:
    t = p.policy.thresholds
    cut = total_b12_cutoffs(total.unit, p.policy)
    limit = f"{format_number(cut.unlikely_above)} {cut.unit}"
    lines = [
        "**Normal total B12 does not exclude deficiency when symptoms suggest it**: total B12 "
        "can be falsely normal (intrinsic factor antibody interference). MMA or active B12 is "
        "the more specific test.",
        "",
        f"- Total B12 {describe(total)}: deficiency unlikely (above {limit})",
        "- No active B12 or MMA result in the last " f"{p.policy.windows.lookback_months} months",
        "",
    ]
    lines += neurological_lines(p)
    if p.macrocytosis is not None:
        lines.append(f"Macrocytosis: MCV {describe(p.macrocytosis)}.")
    if p.egfr_impaired and p.egfr is not None:
        lines.append(
            f"eGFR {describe(p.egfr)} is below {format_number(t.egfr_impaired_below)}: renal "
            "impairment raises MMA on its own, so a raised MMA would not be specific; active "
            "B12 may be more informative."
        )
    if drafts:
        names = ", ".join(f"{d.name} ({d.resource_id})" for d in drafts)
        lines.append(f"Already among the draft orders: {names}.")
    return CardText(*lines).source(NICE_NG239, AAFP_2025).text()


RULE = Rule(
    id="b12-normal-but-symptomatic",
    title="Normal total B12 with symptoms or signs of deficiency",
    summary=summary_of(__doc__),
    sources=(NICE_NG239, AAFP_2025),
    indicators=(Indicator.INFO,),
    settings=(
        *B12_STATUS_SETTINGS,
        "thresholds.mcv_macrocytosis_above_fl",
        "windows.lookback_months",
        "neurological_involvement",
    ),
    evaluate=evaluate,
)
