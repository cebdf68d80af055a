"""Where a B12-family result falls against the site's cut-offs (rule book §2), and the other
threshold tests of one result (below / above a limit, MMA raised, folate deficient).

Each threshold test exists once, here: a result is judged in the unit it was reported in,
against the pair of cut-offs given for that unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .facts import LabResult
from .policy import Policy
from .units import to_canonical
from .vocabulary import Analyte


class Band(Enum):
    """Where one B12-family result falls (rule book §2)."""

    DEFICIENT = "deficient"
    INDETERMINATE = "indeterminate"
    UNLIKELY = "deficiency unlikely"
    UNINTERPRETABLE = "not interpretable"


@dataclass(frozen=True)
class Cutoffs:
    """The pair of cut-offs a result is banded against, in the unit they are said in."""

    deficient_below: float
    unlikely_above: float
    unit: str


def total_b12_cutoffs(unit: str | None, policy: Policy) -> Cutoffs:
    """The site's total B12 pair for a reported unit: pmol/L against the molar pair (NICE
    gives it, it is not a conversion), every mass unit against the mass pair in ng/L (ng/L,
    pg/mL and ng/mL x1000 are one mass scale)."""
    t = policy.thresholds
    if unit == "pmol/L":
        return Cutoffs(
            t.total_b12_deficient_below_pmol_l, t.total_b12_unlikely_above_pmol_l, "pmol/L"
        )
    return Cutoffs(t.total_b12_deficient_below_ng_l, t.total_b12_unlikely_above_ng_l, "ng/L")


def active_b12_cutoffs(policy: Policy) -> Cutoffs:
    t = policy.thresholds
    return Cutoffs(
        t.active_b12_deficient_below_pmol_l, t.active_b12_unlikely_above_pmol_l, "pmol/L"
    )


def total_b12_band(result: LabResult, policy: Policy) -> Band:
    """Against the pair of the *reported* unit: never convert then compare."""
    value = result.value if result.unit == "pmol/L" else result.canonical_value
    if result.value is None or value is None or not result.unit_recognised:
        return Band.UNINTERPRETABLE
    cut = total_b12_cutoffs(result.unit, policy)
    return _band(value, cut.deficient_below, cut.unlikely_above, result.comparator)


def active_b12_band(result: LabResult, policy: Policy) -> Band:
    if result.value is None or not result.unit_recognised or result.canonical_value is None:
        return Band.UNINTERPRETABLE
    cut = active_b12_cutoffs(policy)
    return _band(result.canonical_value, cut.deficient_below, cut.unlikely_above, result.comparator)


def _band(
    value: float, deficient_below: float, unlikely_above: float, comparator: str | None = None
) -> Band:
    """The band of a value, or of a reported limit ("<150", ">2000").

    ``<N`` / ``<=N`` with N at or below the deficient cut-off is deficient; with N above it,
    indeterminate (it may be deficient: never "unlikely"). ``>N`` / ``>=N`` with N at or above
    the "unlikely" cut-off is unlikely; any other ``>N`` cannot be interpreted.
    """
    if comparator in ("<", "<="):
        return Band.DEFICIENT if value <= deficient_below else Band.INDETERMINATE
    if comparator in (">", ">="):
        return Band.UNLIKELY if value >= unlikely_above else Band.UNINTERPRETABLE
    if value < deficient_below:
        return Band.DEFICIENT
    if value > unlikely_above:
        return Band.UNLIKELY
    return Band.INDETERMINATE


def below(result: LabResult | None, limit: float) -> bool:
    """Is the result (in its canonical unit) surely below ``limit``? A reported limit counts
    only when every value it allows is below ("<60" for 60, not ">10")."""
    if result is None or result.canonical_value is None:
        return False
    return _surely_below(result.canonical_value, result.comparator, limit)


def _surely_below(value: float, comparator: str | None, limit: float) -> bool:
    if comparator == "<":
        return value <= limit
    if comparator in (">", ">="):
        return False
    return value < limit


def above(result: LabResult | None, limit: float) -> bool:
    """Is the result (in its canonical unit) surely above ``limit``?"""
    if result is None or result.canonical_value is None:
        return False
    value, comparator = result.canonical_value, result.comparator
    if comparator == ">":
        return value >= limit
    if comparator in ("<", "<="):
        return False
    return value > limit


def mma_raised(result: LabResult, policy: Policy) -> bool | None:
    """MMA above its limit (True), not above it (False), or a reported limit that does not
    settle it (None: "<400" with a limit of 271, ">100")."""
    value, comparator = result.canonical_value, result.comparator
    if result.value is None or value is None or not result.unit_recognised:
        return None
    limit = mma_limit_nmol_l(result, policy)
    if comparator in ("<", "<="):
        return False if value <= limit else None
    if comparator in (">", ">="):
        return True if value >= limit else None
    return value > limit


def mma_limit_nmol_l(result: LabResult, policy: Policy) -> float:
    """The lab's upper limit (converted to nmol/L) when given, else the default (NICE)."""
    if result.reference_high is not None:
        converted = to_canonical(Analyte.MMA, result.reference_high, result.unit)
        if converted is not None and converted > 0:
            return converted
    return policy.thresholds.mma_upper_limit_nmol_l


def folate_cutoff(result: LabResult, policy: Policy) -> tuple[float, str]:
    """(deficient-below, unit) of a serum or red-cell folate, in its reported unit family
    (BSH 2014 gives a mass and a molar limit): nmol/L against the molar limit, any mass unit
    against the ng/mL limit."""
    t = policy.thresholds
    if result.analyte is Analyte.RBC_FOLATE:
        mass, molar = t.rbc_folate_deficient_below_ng_ml, t.rbc_folate_deficient_below_nmol_l
    else:
        mass, molar = t.folate_deficient_below_ng_ml, t.folate_deficient_below_nmol_l
    return (molar, "nmol/L") if result.unit == "nmol/L" else (mass, "ng/mL")


def folate_deficient(result: LabResult, policy: Policy) -> bool:
    """Below the limit of its unit, compared in the reported unit, never converted."""
    limit, _ = folate_cutoff(result, policy)
    value = result.value if result.unit == "nmol/L" else result.canonical_value
    return value is not None and _surely_below(value, result.comparator, limit)
