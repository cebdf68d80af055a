"""``lab-unit-unrecognised``: a B12-family result whose value or unit cannot be interpreted.

The cut-offs are unit-specific, so a result in an unknown unit (or none), a text that is not
one number ("see comment"), or a reported limit that settles no band (">100" in ng/L) is not
interpreted. It is never dropped silently: this card reports it.

When: a current (``windows.lookback_months``) total B12, active B12 or MMA result cannot be
read; a limit is judged against the banding cut-offs of its unit
(``thresholds.total_b12_deficient_below_ng_l``, ``thresholds.total_b12_unlikely_above_ng_l``).
Then: info naming each such result, with what the service can read; warning when a folate is
drafted (the folate card then treats B12 as unknown), and the card concerns those drafts.
Not when: every current result is readable; the result is older than the look-back window.
"""

from __future__ import annotations

from ..cardtext import CardText
from ..facts import LabResult, MedicationExposure
from ..findings import Finding, Wording, shorten
from ..picture import ClinicalPicture
from ..rule import Rule, summary_of
from ..safetext import request_text
from ..sources import NICE_NG239
from ..units import format_number
from ..vocabulary import FOLATES, Analyte, Indicator

_NAMES = {Analyte.TOTAL_B12: "B12", Analyte.ACTIVE_B12: "Active B12", Analyte.MMA: "MMA"}


def _value(r: LabResult) -> str:
    """The result as reported: "0.2 (unit 'mg')", "'see comment'", ">100 (unit 'ng/L')"."""
    if r.value is None:
        return f"'{request_text(r.text_value) or 'no value'}'"
    # The unit as extracted is already escaped for a card (repr() would double backslashes).
    unit = f"unit '{r.unit}'" if r.unit else "no unit"
    return f"{r.comparator or ''}{format_number(r.value)} ({unit})"


def evaluate(p: ClinicalPicture) -> Finding | None:
    results = sorted(p.unrecognised_b12_results, key=lambda r: r.effective, reverse=True)
    if not results:
        return None
    folate_drafts = p.medications_of(*FOLATES, drafts=True)
    return Finding(
        RULE.id,
        Indicator.WARNING if folate_drafts else Indicator.INFO,
        Wording(lambda: (_summary(results[0]), _detail(results, folate_drafts))),
        NICE_NG239,
        concerns=frozenset(m.resource_id for m in folate_drafts),
    )


def _summary(first: LabResult) -> str:
    return shorten(f"{_NAMES[first.analyte]} result {_value(first)} could not be interpreted.")


def _detail(results: list[LabResult], folate_drafts: tuple[MedicationExposure, ...]) -> str:
    text = CardText(
        "These results have a value or unit this service cannot read, so they were **not** "
        "used to judge B12 status. Check the result with the laboratory:",
        "",
    )
    text.bullets(
        f"{_NAMES[r.analyte]} {_value(r)} on {r.effective.date().isoformat()} ({r.resource_id})"
        for r in results
    )
    text.blank().line(
        "Recognised: a number, optionally with a limit sign (<150, >2000), in ng/L, pg/mL, "
        "ng/mL or pmol/L for total B12; pmol/L for active B12; nmol/L or umol/L for MMA."
    )
    if folate_drafts:
        names = ", ".join(f"{m.name} ({m.resource_id})" for m in folate_drafts)
        text.blank().line(
            f"Folate is being ordered ({names}): without a readable B12 result the folate alert "
            "treats B12 as unknown. Settle B12 before giving folate alone."
        )
    return text.source(NICE_NG239).text()


RULE = Rule(
    id="lab-unit-unrecognised",
    title="B12-family result with a value or unit that cannot be interpreted",
    summary=summary_of(__doc__),
    sources=(NICE_NG239,),
    indicators=(Indicator.WARNING, Indicator.INFO),
    settings=(
        "windows.lookback_months",
        "thresholds.total_b12_deficient_below_ng_l",
        "thresholds.total_b12_unlikely_above_ng_l",
    ),
    evaluate=evaluate,
)
