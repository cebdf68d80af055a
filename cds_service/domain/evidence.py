"""Card wording shared by the rules: how B12 evidence and neurological involvement are named.

One place, so that every card states a result, its band and the cut-offs in effect, and the
"possible neurological involvement" caveat, in the same words (rule book §§1 and 4).
"""

from __future__ import annotations

from .bands import Band, active_b12_cutoffs, mma_limit_nmol_l, total_b12_cutoffs
from .facts import LabResult
from .picture import ClinicalPicture
from .resulttext import describe
from .units import format_number
from .vocabulary import POSSIBLE_NEUROLOGICAL, ConditionKind, DataCategory

#: Said once per card that shows a converted total B12 ("180 ng/L (\u2248133 pmol/L)").
CONVERSION_NOTE = (
    "(\u2248: the other unit, rounded, for reference; the band is judged in the unit the "
    "laboratory reported.)"
)


def band_text(band: Band, low: float, high: float, unit: str) -> str:
    """ "deficient (below 180 ng/L)", "indeterminate (180-350 ng/L)", ..."""
    if band is Band.DEFICIENT:
        cut = f"below {format_number(low)} {unit}"
    elif band is Band.UNLIKELY:
        cut = f"above {format_number(high)} {unit}"
    else:
        cut = f"{format_number(low)}-{format_number(high)} {unit}"
    return f"{band.value} ({cut})"


def b12_evidence_lines(p: ClinicalPicture) -> list[str]:
    """One Markdown bullet per diagnostic B12-family result, with its band and the site's
    cut-offs for the unit it was reported in."""
    a = p.b12
    lines = []
    if a.total is not None and a.total_band is not None:
        cut = total_b12_cutoffs(a.total.unit, p.policy)
        band = band_text(a.total_band, cut.deficient_below, cut.unlikely_above, cut.unit)
        lines.append(f"- Total B12 {describe(a.total)}: {band}")
        lines.append(CONVERSION_NOTE)
    if a.active is not None and a.active_band is not None:
        cut = active_b12_cutoffs(p.policy)
        band = band_text(a.active_band, cut.deficient_below, cut.unlikely_above, cut.unit)
        lines.append(f"- Active B12 {describe(a.active)}: {band}")
    if a.mma is not None:
        limit = format_number(mma_limit_nmol_l(a.mma, p.policy))
        state = "raised" if a.mma_raised else "not raised"
        lines.append(f"- MMA {describe(a.mma)}: {state} (limit {limit} nmol/L)")
    return lines


def renal_mma_caveat(p: ClinicalPicture, consequence: str) -> str | None:
    """ "MMA is raised but eGFR ... is below 60: renal impairment raises MMA on its own" and
    what that means for this card; ``None`` unless the B12 status carries the renal caveat."""
    a = p.b12
    if not (a.mma_renal_caveat and a.mma is not None and p.egfr is not None):
        return None
    limit = format_number(p.policy.thresholds.egfr_impaired_below)
    return (
        f"MMA is raised but eGFR {describe(p.egfr)} is below {limit}: renal impairment raises "
        f"MMA on its own{consequence}"
    )


def first_neuro_kind(p: ClinicalPicture) -> str | None:
    """The neurological finding a summary names: a definite sign before headache/back pain."""
    wanted = p.policy.neurological_involvement
    kinds = sorted((k for c in p.neurological for k in c.kinds & wanted), key=lambda k: k.value)
    definite = [k for k in kinds if k not in POSSIBLE_NEUROLOGICAL]
    return (definite or kinds)[0].value if kinds else None


def possible_neuro_text(p: ClinicalPicture) -> str:
    """rule book §1: headache / back pain are *possible* involvement, said plainly."""
    found = {k for c in p.neurological for k in c.kinds & POSSIBLE_NEUROLOGICAL}
    names = [k.value for k in (ConditionKind.HEADACHE, ConditionKind.BACK_PAIN) if k in found]
    pronoun = "it" if len(names) == 1 else "them"
    return (
        f"{' and '.join(names)} recorded; the brief treats {pronoun} as neurological "
        "involvement; NICE/BNF reserve the intensive regimen for neuropathy, myelopathy, "
        "cognitive or optic signs; confirm clinically."
    )


def stale_reason(p: ClinicalPicture, result: LabResult) -> str:
    """Why a B12 result on record is not diagnostic evidence now."""
    if p.drawn_on_therapy(result):
        return "drawn after B12 therapy began, so not diagnostic"
    return f"older than {p.policy.windows.lookback_months} months"


def neurological_lines(p: ClinicalPicture) -> list[str]:
    """The recorded neurological involvement, and the *possible* caveat when it rests only on
    headache / back pain; empty when there is none."""
    if not p.neurological:
        return []
    names = ", ".join(f"{c.name} ({c.resource_id})" for c in p.neurological)
    lines = [f"Neurological involvement: {names}."]
    if p.neuro_possible_only:
        lines.append(f"Possible neurological involvement only: {possible_neuro_text(p)}")
    return lines


def malabsorption_causes(p: ClinicalPicture) -> str:
    """Each malabsorption cause with its evidence, for the "treatment is lifelong" line."""
    causes = [f"{c.name} ({c.resource_id})" for c in p.malabsorption]
    if p.if_antibody_positive is not None:
        causes.append(f"intrinsic factor antibody {describe(p.if_antibody_positive)}")
    return ", ".join(causes)


def missing_data(p: ClinicalPicture, *categories: DataCategory) -> str | None:
    """ "Not available for this request: medications, conditions" for those of ``categories``
    the service could not obtain (in the order given), or ``None``; the caller adds what the
    clinician should check."""
    missing = [c.value for c in categories if c in p.facts.missing]
    return f"Not available for this request: {', '.join(missing)}" if missing else None
