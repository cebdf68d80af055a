"""How a card names a result and a duration: the reported value first, a total B12 also in
the other unit, the date and the resource id."""

from __future__ import annotations

import math

from .bands import Band, total_b12_band, total_b12_cutoffs
from .facts import LabResult
from .policy import DEFAULT_POLICY, Policy
from .safetext import request_text
from .units import NG_L_TO_PMOL_L, PMOL_L_TO_NG_L, display_unit, format_number
from .vocabulary import Analyte


def describe(result: LabResult) -> str:
    """Evidence as a card names it: value in both units for B12, date, resource."""
    day = result.effective.date().isoformat()
    return f"{result_value_text(result)} on {day} ({result.resource_id})"


def result_value_text(result: LabResult, policy: Policy = DEFAULT_POLICY) -> str:
    """The reported value first, with its comparator ("<150 pg/mL"); a total B12 also in the
    other unit as a whole-number approximation ("180 ng/L (\u2248133 pmol/L)")."""
    if result.value is None:
        return request_text(result.text_value) or "no value"
    cmp = result.comparator or ""
    reported = f"{cmp}{format_number(result.value)} {display_unit(result.unit)}".strip()
    canonical = result.canonical_value
    if canonical is None or not result.unit_recognised:
        return reported
    if result.analyte is Analyte.TOTAL_B12:
        if result.unit == "pmol/L":
            other = f"{_approx(result, policy, result.value * PMOL_L_TO_NG_L)} ng/L"
        else:
            ng_l = canonical
            other = f"{_approx(result, policy, ng_l * NG_L_TO_PMOL_L)} pmol/L"
            if result.unit != "ng/L":
                other = f"{cmp}{format_number(ng_l)} ng/L, {other}"
        return f"{reported} ({other})"
    if result.analyte is Analyte.MMA and result.unit != "nmol/L":
        return f"{reported} ({cmp}{format_number(canonical)} nmol/L)"
    return reported


def _approx(result: LabResult, policy: Policy, converted: float) -> str:
    """A converted total B12 as "\u2248133": a whole number, moved by one when rounding would
    put it on the other side of the other unit's cut-off than the reported value's band
    (179.9 ng/L is deficient: "\u2248132 pmol/L", never 133)."""
    whole = round(converted)
    other = total_b12_cutoffs("ng/L" if result.unit == "pmol/L" else "pmol/L", policy)
    low, high = other.deficient_below, other.unlikely_above
    if result.comparator is None and math.isfinite(converted):
        band = total_b12_band(result, policy)
        if band is Band.DEFICIENT and whole >= low:
            whole = math.ceil(low) - 1
        elif band is Band.INDETERMINATE and whole < low:
            whole = math.ceil(low)
        elif band is Band.INDETERMINATE and whole > high:
            whole = math.floor(high)
        elif band is Band.UNLIKELY and whole <= high:
            whole = math.floor(high) + 1
    return f"\u2248{result.comparator or ''}{whole}"


def duration_text(months: float) -> str:
    if months >= 24:
        return f"{int(months // 12)} years"
    if months >= 12:
        return "1 year" if months < 13 else f"{int(months)} months"
    whole = int(months)
    return f"{whole} month{'s' if whole != 1 else ''}"
