"""``lab-unit-unrecognised``: a B12-family result whose unit cannot be converted.

RULES.md section 2: "A B12 value with a unit outside {pg/mL, ng/L, ng/mL, pmol/L} (or no unit)
is not interpreted; rule ``lab-unit-unrecognised`` reports it."

Sources: NICE NG239 (thresholds are unit-specific).

When: a current total B12, active B12 or MMA result has a value and a unit (or none) that cannot
be converted to the analyte's canonical unit.
Then: info card "B12 result 0.2 (unit 'mg') could not be interpreted." naming each result.
Not when: the unit is recognised; the result is outside the look-back window; it has no value.
"""

from __future__ import annotations

from ..findings import Finding
from ..picture import ClinicalPicture
from ..sources import NICE_NG239
from ..units import format_number
from ..vocabulary import Analyte, Indicator

ID = "lab-unit-unrecognised"
TITLE = "B12-family result with a unit that cannot be interpreted"
SOURCES = (NICE_NG239,)
SETTINGS = ("windows.lookback_months",)
#: The urgencies this rule's cards can have (the catalogue and the home page show them).
INDICATORS = (Indicator.INFO,)

_NAMES = {Analyte.TOTAL_B12: "B12", Analyte.ACTIVE_B12: "Active B12", Analyte.MMA: "MMA"}


def evaluate(p: ClinicalPicture) -> Finding | None:
    results = sorted(p.unrecognised_b12_results, key=lambda r: r.effective, reverse=True)
    if not results:
        return None
    first = results[0]
    unit = f"unit '{first.unit}'" if first.unit else "no unit"
    summary = (
        f"{_NAMES[first.analyte]} result {format_number(first.value)} ({unit}) could not be "
        "interpreted."
    )
    lines = [
        "These results have a unit this service cannot convert, so they were **not** used to "
        "judge B12 status. Check the result with the laboratory:",
        "",
    ]
    for r in results:
        # The unit as extracted (already escaped for a card): repr() doubled its backslashes.
        shown = f"unit '{r.unit}'" if r.unit else "no unit"
        lines.append(
            f"- {_NAMES[r.analyte]} {format_number(r.value)} ({shown}) on "
            f"{r.effective.date().isoformat()} ({r.resource_id})"
        )
    lines += [
        "",
        "Recognised units: total B12 in ng/L, pg/mL, ng/mL or pmol/L; active B12 in pmol/L; "
        "MMA in nmol/L or umol/L.",
        "",
        f"Source: {NICE_NG239.label}.",
    ]
    return Finding(ID, Indicator.INFO, summary, "\n".join(lines), NICE_NG239)
