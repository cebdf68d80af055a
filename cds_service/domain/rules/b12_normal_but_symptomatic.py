"""``b12-normal-but-symptomatic``: normal total B12, but symptoms or signs suggest deficiency.

rule book §3: "Total B12 in the 'unlikely' band, no active B12 / MMA in window, and
neurological involvement or macrocytosis" -> "Normal total B12 does not exclude deficiency when
symptoms suggest it: consider MMA or active B12." info; order MMA.

Sources: NICE NG239 (a normal total B12 does not exclude deficiency when clinical suspicion is
high; antibody interference can make total B12 falsely normal), AAFP 2025.

When: B12 status (``p.b12``) is "deficiency unlikely" because of the total B12 alone (total
above 350 ng/L / 258 pmol/L; no current diagnostic active B12 or MMA), no B12 therapy is
active or drafted, and there is neurological involvement or macrocytosis (MCV > 100 fL).
Then: info. Summary "Normal total B12 (420 ng/L (≈310 pmol/L)) with paraesthesia: consider MMA
or active B12."; detail names the total B12, each sign with its evidence, plainly flags
involvement resting on headache / back pain only, notes that MMA is not specific with eGFR <
60. Suggestion: order serum MMA (13964-2), unless MMA or active B12 is already drafted.
``concerns``: drafted MMA / active B12 orders.
Not when: the total B12 is deficient or indeterminate; an active B12 or MMA result is current
(it is the more specific evidence: ``p.b12`` already weighs it); no neurological involvement
and no macrocytosis; B12 therapy active or drafted (an MMA drawn on replacement is not
diagnostic, NICE: an addition to the docs/rulebook.md row, which is silent on therapy).
"""

from __future__ import annotations

import re

from ..b12status import B12Status
from ..bands import Band, total_b12_cutoffs
from ..codes import LOINC_DISPLAY, LOINC_MMA
from ..evidence import first_neuro_kind, neurological_lines
from ..findings import Finding, OrderLab, SelectionBehavior, Suggestion, shorten
from ..picture import ClinicalPicture
from ..resulttext import describe, result_value_text
from ..rule import Rule, summary_of
from ..sources import AAFP_2025, NICE_NG239
from ..units import format_number
from ..vocabulary import Analyte, Indicator

_SECOND_LINE = frozenset({Analyte.MMA, Analyte.ACTIVE_B12})


def evaluate(p: ClinicalPicture) -> Finding | None:
    a = p.b12
    if a.status is not B12Status.UNLIKELY or a.total_band is not Band.UNLIKELY:
        return None
    if p.has_b12_therapy or any(p.latest_current(x) is not None for x in _SECOND_LINE):
        return None
    if not p.neurological and p.macrocytosis is None:
        return None
    drafts = [d for d in p.facts.draft_labs if d.analytes & _SECOND_LINE]
    suggestions: tuple[Suggestion, ...] = ()
    if not drafts:
        suggestions = (
            Suggestion(
                "Order serum methylmalonic acid (MMA)",
                (
                    OrderLab(
                        LOINC_MMA,
                        LOINC_DISPLAY[LOINC_MMA],
                        "Serum MMA",
                        note="Draw before any B12 is given.",
                    ),
                ),
                is_recommended=True,
            ),
        )
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.INFO,
        summary=_summary(p),
        detail=_detail(p, drafts),
        source=NICE_NG239,
        suggestions=suggestions,
        selection_behavior=SelectionBehavior.ANY if suggestions else None,
        concerns=frozenset(d.resource_id for d in drafts),
    )


def _summary(p: ClinicalPicture) -> str:
    signs = []
    if p.neurological:
        signs.append(first_neuro_kind(p))
    if p.macrocytosis is not None:
        signs.append(f"MCV {result_value_text(p.macrocytosis)}")
    head = f"Normal total B12 ({result_value_text(p.b12.total)}) with {' and '.join(signs)}"
    return shorten(f"{head}: consider MMA or active B12.")


def _detail(p: ClinicalPicture, drafts: list) -> str:
    t = p.policy.thresholds
    total = p.b12.total
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
    if p.egfr_impaired:
        lines.append(
            f"eGFR {describe(p.egfr)} is below {format_number(t.egfr_impaired_below)}: renal "
            "impairment raises MMA on its own, so a raised MMA would not be specific; active "
            "B12 may be more informative."
        )
    if drafts:
        names = ", ".join(f"{d.name} ({d.resource_id})" for d in drafts)
        lines.append(f"Already among the draft orders: {names}.")
    lines += ["", f"Source: {NICE_NG239.label}; {AAFP_2025.label}."]
    # Optional sections leave blank lines behind: keep one between paragraphs.
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


RULE = Rule(
    id="b12-normal-but-symptomatic",
    title="Normal total B12 with symptoms or signs of deficiency",
    summary=summary_of(__doc__),
    sources=(NICE_NG239, AAFP_2025),
    indicators=(Indicator.INFO,),
    settings=(
        "thresholds.total_b12_unlikely_above_ng_l",
        "thresholds.total_b12_unlikely_above_pmol_l",
        "thresholds.mcv_macrocytosis_above_fl",
        "thresholds.egfr_impaired_below",
        "windows.lookback_months",
        "neurological_involvement",
        "thresholds.active_b12_deficient_below_pmol_l",
        "thresholds.active_b12_unlikely_above_pmol_l",
        "thresholds.mma_upper_limit_nmol_l",
        "thresholds.total_b12_deficient_below_ng_l",
        "thresholds.total_b12_deficient_below_pmol_l",
        "windows.b12_washout_months",
    ),
    evaluate=evaluate,
)
