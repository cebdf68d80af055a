"""The patient's B12 status from the current diagnostic evidence (rule book §2, "Conflicts").

Decided once per request by ``ClinicalPicture.b12``: every rule that speaks of B12 status
speaks of the same evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from .bands import Band, active_b12_band, mma_raised, total_b12_band
from .facts import LabResult
from .resulttext import result_value_text
from .vocabulary import Analyte

if TYPE_CHECKING:  # the picture calls assess_b12; typing only
    from .picture import ClinicalPicture


#: The site-policy keys the B12 status reads (cut-offs of each test, the MMA limit, the eGFR
#: below which a raised MMA is not specific, the washout after injections): a rule that calls
#: ``assess_b12`` declares them with its own.
B12_STATUS_SETTINGS = (
    "thresholds.total_b12_deficient_below_ng_l",
    "thresholds.total_b12_unlikely_above_ng_l",
    "thresholds.total_b12_deficient_below_pmol_l",
    "thresholds.total_b12_unlikely_above_pmol_l",
    "thresholds.active_b12_deficient_below_pmol_l",
    "thresholds.active_b12_unlikely_above_pmol_l",
    "thresholds.mma_upper_limit_nmol_l",
    "thresholds.egfr_impaired_below",
    "windows.b12_washout_months",
)


class B12Status(Enum):
    """The patient's B12 status from the current diagnostic evidence."""

    DEFICIENT = "deficient"
    FUNCTIONAL_DEFICIENCY = "functional deficiency"
    INDETERMINATE = "indeterminate"
    UNLIKELY = "deficiency unlikely"
    UNKNOWN = "unknown"

    @property
    def is_deficient(self) -> bool:
        return self in (B12Status.DEFICIENT, B12Status.FUNCTIONAL_DEFICIENCY)


@dataclass(frozen=True)
class B12Assessment:
    status: B12Status
    total: LabResult | None = None
    total_band: Band | None = None
    active: LabResult | None = None
    active_band: Band | None = None
    mma: LabResult | None = None
    mma_raised: bool | None = None
    #: MMA is raised but eGFR < 60 makes it non-specific.
    mma_renal_caveat: bool = False
    #: Plain-language statement of discordant evidence, when there is one.
    conflict: str | None = None
    #: The results that decided the status, most specific first.
    deciding: tuple[LabResult, ...] = ()

    @property
    def key_result(self) -> LabResult | None:
        return self.deciding[0] if self.deciding else None


def assess_b12(p: ClinicalPicture) -> B12Assessment:
    """B12 status from current diagnostic results (rule book §2, "Conflicts").

    The most specific current evidence wins: active B12 over total B12; MMA above its limit with
    eGFR >= 60 outranks an indeterminate or normal total B12 (antibody interference can make
    total B12 falsely normal). A raised MMA with eGFR < 60 is not specific (renal impairment
    raises MMA on its own). Results drawn after B12 therapy began never count.
    """
    total = p.diagnostic(Analyte.TOTAL_B12)
    active = p.diagnostic(Analyte.ACTIVE_B12)
    mma = p.diagnostic(Analyte.MMA)
    total_band = total_b12_band(total, p.policy) if total else None
    active_band = active_b12_band(active, p.policy) if active else None
    raised = None
    renal_caveat = False
    if mma is not None:
        raised = mma_raised(mma, p.policy)
        renal_caveat = bool(raised) and p.egfr_impaired
    mma_decisive = bool(raised) and not renal_caveat

    def decided(
        *, status: B12Status, deciding: tuple[LabResult, ...], conflict: str | None = None
    ) -> B12Assessment:
        return B12Assessment(
            status,
            total=total,
            total_band=total_band,
            active=active,
            active_band=active_band,
            mma=mma,
            mma_raised=raised,
            mma_renal_caveat=renal_caveat,
            conflict=conflict,
            deciding=deciding,
        )

    if active_band is Band.DEFICIENT:
        conflict = None
        if total_band is Band.UNLIKELY:
            conflict = (
                f"Total B12 is normal ({_value(total)}) but active B12 is low "
                f"({_value(active)}): active B12 is the more specific test "
                "(antibody interference can make total B12 falsely normal)."
            )
        return decided(
            status=B12Status.DEFICIENT, conflict=conflict, deciding=_opt(active) + _opt(total)
        )
    if active_band is Band.UNLIKELY:
        conflict = None
        if total_band is Band.DEFICIENT:
            conflict = (
                f"Total B12 is low ({_value(total)}) but active B12 is normal "
                f"({_value(active)}): active B12 is the more specific test."
            )
        if mma_decisive:
            conflict = (
                f"Active B12 is normal ({_value(active)}) but MMA is raised "
                f"({_value(mma)}) with normal renal function: "
                "treat as functional deficiency."
            )
            return decided(
                status=B12Status.FUNCTIONAL_DEFICIENCY,
                conflict=conflict,
                deciding=_opt(mma) + _opt(active),
            )
        return decided(
            status=B12Status.UNLIKELY, conflict=conflict, deciding=_opt(active) + _opt(total)
        )
    if total_band is Band.DEFICIENT:
        return decided(status=B12Status.DEFICIENT, deciding=_opt(total) + _opt(active))

    # Total indeterminate / unlikely / absent, active indeterminate / absent.
    indeterminate = total_band is Band.INDETERMINATE or active_band is Band.INDETERMINATE
    if mma_decisive:
        conflict = None
        if total_band is Band.UNLIKELY:
            conflict = (
                f"Total B12 is normal ({_value(total)}) but MMA is raised "
                f"({_value(mma)}) with normal renal function: total B12 can be falsely "
                "normal (antibody interference); MMA is the more specific test."
            )
        deciding = _opt(mma) + _opt(active) + _opt(total)
        return decided(status=B12Status.FUNCTIONAL_DEFICIENCY, conflict=conflict, deciding=deciding)
    if indeterminate:
        if mma is not None and not raised:
            # A normal MMA settles an indeterminate result.
            return decided(
                status=B12Status.UNLIKELY, deciding=_opt(mma) + _opt(active) + _opt(total)
            )
        return decided(
            status=B12Status.INDETERMINATE, deciding=_opt(active) + _opt(total) + _opt(mma)
        )
    if total_band is Band.UNLIKELY:
        return decided(status=B12Status.UNLIKELY, deciding=_opt(total))
    return decided(status=B12Status.UNKNOWN, deciding=_opt(mma))


def _opt(result: LabResult | None) -> tuple[LabResult, ...]:
    return (result,) if result is not None else ()


def _value(result: LabResult | None) -> str:
    return result_value_text(result) if result is not None else "no value"
