"""``b12-assay-interference``: a B12 or folate result that may not mean what it says.

Antibiotics, methotrexate and pyrimethamine invalidate microbiological B12 and folate
assays (falsely low results), and a sample drawn after B12 replacement starts reflects the
treatment, not the body's stores.

When: a current (``windows.lookback_months``) total B12, active B12, serum or red-cell folate
result with a value was drawn while a taken antibiotic, methotrexate or pyrimethamine
exposure was running (started on or before the result, ended on or after it or still
active); or a current B12-family result was drawn on B12 therapy (including the wash-out
after a finished course, ``windows.b12_washout_months``).
Then: info about the latest such result ("+N more" when several); the detail lists each
result with the interfering exposure or the therapy start. No suggestions, and no orders
concerned: the card is about results, so patient-view shows it. It cites the cyanocobalamin
label when a drug interferes, NICE NG239 otherwise.
Not when: the result is older than the look-back window; the exposure is a draft, started
after the result or ended before it; a finished exposure without an end date (it cannot be
shown to cover the result).
"""

from __future__ import annotations

from datetime import datetime

from ..cardtext import CardText, join_words
from ..facts import LabResult, MedicationExposure
from ..findings import Finding, Wording
from ..picture import ClinicalPicture
from ..resulttext import describe, result_value_text
from ..rule import Rule, summary_of
from ..sources import CYANOCOBALAMIN_LABEL, NICE_NG239
from ..vocabulary import Analyte, DrugClass, Indicator

_INTERFERING = {
    DrugClass.ANTIBIOTIC: "antibiotics",
    DrugClass.METHOTREXATE: "methotrexate",
    DrugClass.PYRIMETHAMINE: "pyrimethamine",
}
_ASSAYED = (Analyte.TOTAL_B12, Analyte.ACTIVE_B12, Analyte.FOLATE, Analyte.RBC_FOLATE)
_NAMES = {
    Analyte.TOTAL_B12: "B12",
    Analyte.ACTIVE_B12: "active B12",
    Analyte.MMA: "MMA",
    Analyte.FOLATE: "folate",
    Analyte.RBC_FOLATE: "red-cell folate",
}


_Flagged = dict[LabResult, tuple[list[MedicationExposure], bool]]


def evaluate(p: ClinicalPicture) -> Finding | None:
    flagged = _flagged(p)
    if not flagged:
        return None
    ordered = sorted(flagged, key=lambda r: (r.effective, r.resource_id), reverse=True)
    any_drug = any(flagged[r][0] for r in ordered)
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.INFO,
        wording=Wording(
            lambda: (_summary(ordered, flagged), _detail(p, ordered, flagged, any_drug))
        ),
        source=CYANOCOBALAMIN_LABEL if any_drug else NICE_NG239,
    )


def _flagged(p: ClinicalPicture) -> _Flagged:
    """Each doubtful result: the drugs running when it was drawn, and whether it was drawn
    on B12 therapy."""
    flagged: _Flagged = {}
    interfering = [m for m in p.facts.medications if _interferes(m)]
    for analyte in _ASSAYED if interfering else ():
        for r in p.results(analyte):
            if r.value is None or not p.is_current(r):
                continue
            drugs = [m for m in interfering if _running_at(m, r.effective)]
            if drugs:
                flagged[r] = (drugs, False)
    for r in p.on_therapy_results:
        if r.value is None:
            continue
        drugs, _ = flagged.get(r, ([], False))
        flagged[r] = (drugs, True)
    return flagged


def _summary(ordered: list[LabResult], flagged: _Flagged) -> str:
    latest = ordered[0]
    drugs, on_therapy = flagged[latest]
    reasons = []
    if drugs:
        reasons.append("during " + join_words(_drug_labels(drugs)))
    if on_therapy:
        reasons.append("after B12 therapy began")
    more = f" (+{len(ordered) - 1} more)" if len(ordered) > 1 else ""
    summary = (
        f"This {_NAMES[latest.analyte]} result ({result_value_text(latest)}, "
        f"{latest.effective.date().isoformat()}) may be invalid: drawn {' and '.join(reasons)}"
        f"{more}."
    )
    if len(summary) > 139:
        summary = (
            f"This {_NAMES[latest.analyte]} result may be invalid: drawn "
            f"{' and '.join(reasons)}{more}."
        )
    return summary


def _interferes(m: MedicationExposure) -> bool:
    """A taken exposure to an interfering drug, with a start to place it in time."""
    return not m.is_draft and m.start is not None and not m.classes.isdisjoint(_INTERFERING)


def _running_at(m: MedicationExposure, when: datetime) -> bool:
    """``m`` (an interfering exposure) covered ``when``."""
    if m.start is None or m.start > when:
        return False
    if m.end is not None:
        return m.end >= when
    return m.active


def _drug_labels(drugs: list[MedicationExposure]) -> list[str]:
    return [label for cls, label in _INTERFERING.items() if any(cls in m.classes for m in drugs)]


def _detail(
    p: ClinicalPicture,
    ordered: list[LabResult],
    flagged: _Flagged,
    any_drug: bool,
) -> str:
    lines = ["Results that may not reflect the patient's B12 or folate status:", ""]
    for r in ordered:
        drugs, on_therapy = flagged[r]
        lines.append(f"- {_NAMES[r.analyte]} {describe(r)}")
        for m in drugs:
            end = m.end.date().isoformat() if m.end else "ongoing"
            start = m.start.date().isoformat() if m.start else "start not recorded"
            lines.append(f"  - drawn during {m.name} ({m.resource_id}; {start} to {end})")
        if on_therapy:
            lines.append(f"  - drawn after B12 therapy began ({_therapy_start_text(p)})")
    if any_drug:
        lines += [
            "",
            "Antibiotics, methotrexate and pyrimethamine invalidate microbiological assays of "
            "B12 and folate (falsely low results). Most laboratories now use immunoassays: ask "
            "the laboratory which method was used, or repeat the test after the course.",
        ]
    if any(flagged[r][1] for r in ordered):
        lines += [
            "",
            "A sample drawn after B12 replacement starts reflects the treatment, not the body's "
            "stores: it cannot confirm or exclude deficiency, and this service did not use it to "
            "judge B12 status. Take samples before replacement (NICE NG239).",
        ]
    sources = ([CYANOCOBALAMIN_LABEL] if any_drug else []) + [NICE_NG239]
    return CardText(*lines).source(*sources).text()


def _therapy_start_text(p: ClinicalPicture) -> str:
    start = p.b12_therapy_start
    ids = ", ".join(m.resource_id for m in p.b12_taken)
    if start is None or start.year == datetime.min.year:
        return f"active B12 therapy with no recorded start date: {ids}"
    return f"first B12 therapy on {start.date().isoformat()}: {ids}"


RULE = Rule(
    id="b12-assay-interference",
    title="B12 or folate result that may be invalid",
    summary=summary_of(__doc__),
    sources=(CYANOCOBALAMIN_LABEL, NICE_NG239),
    indicators=(Indicator.INFO,),
    settings=(
        "windows.lookback_months",
        "windows.b12_washout_months",
    ),
    evaluate=evaluate,
)
