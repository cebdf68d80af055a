"""``b12-screening-due``: a patient at risk of B12 deficiency has no current B12 result.

Who to test: people on metformin or acid suppression for long enough, older people, vegans,
heavy drinkers, those with a malabsorption cause or on colchicine or para-aminosalicylic
acid, and anyone with macrocytosis or unexplained anaemia. The sample comes before any B12.

When: the B12 status is unknown (no current diagnostic total or active B12 within
``windows.lookback_months``, or only results drawn on therapy) and there is a risk factor:
metformin for ``windows.metformin_months``, a PPI or H2 blocker for
``windows.acid_suppression_months``, age above ``thresholds.age_risk_above_years``, the
conditions and drugs above, or a sign (macrocytosis by ``thresholds.mcv_macrocytosis_above_fl``;
anaemia no recorded cause explains).
Then: info naming each risk factor with its duration and evidence and the last stale B12;
warning with neurological involvement or macrocytosis. One suggestion orders B12 (active
B12 in pregnancy: total B12 falls), a blood count and, when macrocytic, folate, leaving out
what is drafted. The card concerns B12 drafts (sample before the first dose) and drafted
renewals of a risk drug, so it shows when one is signed.
Not when: established B12 therapy (a level is uninformative then); a B12 test already
drafted; a current B12 result whose unit cannot be read (``lab-unit-unrecognised`` speaks);
a current normal MMA; no risk factor or sign. Neurological involvement alone is not a
trigger: it only raises the urgency.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..b12status import B12_STATUS_SETTINGS, B12Status
from ..cardtext import CardText, join_words
from ..codes import LOINC_ACTIVE_B12, LOINC_CBC, LOINC_DISPLAY, LOINC_FOLATE, LOINC_TOTAL_B12
from ..evidence import missing_data, stale_reason
from ..facts import LabResult, MedicationExposure
from ..findings import (
    SUMMARY_MAX,
    Finding,
    OrderLab,
    SelectionBehavior,
    Suggestion,
    Wording,
    shorten,
)
from ..picture import ClinicalPicture, RiskFactor
from ..resulttext import describe, result_value_text
from ..rule import Rule, summary_of
from ..sources import AAFP_2017, AAFP_2025, NICE_NG239
from ..vocabulary import Analyte, DataCategory, DrugClass, Indicator

#: Drug classes that are screening risk factors (their drafted renewals concern this card).
_RISK_DRUGS = (
    DrugClass.METFORMIN,
    DrugClass.PPI,
    DrugClass.H2_BLOCKER,
    DrugClass.COLCHICINE,
    DrugClass.AMINOSALICYLIC_ACID,
)
_B12_TESTS = frozenset({Analyte.TOTAL_B12, Analyte.ACTIVE_B12})
_BLOOD_COUNT = frozenset({Analyte.HAEMOGLOBIN, Analyte.MCV})


def evaluate(p: ClinicalPicture) -> Finding | None:
    if p.b12.status is not B12Status.UNKNOWN or p.established_b12_therapy:
        return None
    drafted = frozenset(a for d in p.facts.draft_labs for a in d.analytes)
    if drafted & _B12_TESTS:
        return None
    if _uninterpretable_current_b12(p) or _normal_mma(p):
        return None
    factors = _risk_factors(p)
    if not factors:
        return None
    warning = bool(p.neurological) or p.macrocytosis is not None
    months = p.policy.windows.lookback_months
    b12_missing = DataCategory.B12_LABS in p.facts.missing
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.WARNING if warning else Indicator.INFO,
        wording=Wording(
            lambda: (
                _summary(factors, months, b12_missing),
                _detail(p, factors, months, b12_missing),
            )
        ),
        source=NICE_NG239,
        suggestions=(_tests(p, drafted),),
        selection_behavior=SelectionBehavior.ANY,
        concerns=_concerns(p, factors),
    )


def _tests(p: ClinicalPicture, drafted: frozenset[Analyte]) -> Suggestion:
    if p.pregnant:
        # Total B12 falls in pregnancy; NICE tests active B12 instead.
        b12 = OrderLab(LOINC_ACTIVE_B12, LOINC_DISPLAY[LOINC_ACTIVE_B12], "Active B12 (pregnancy)")
    else:
        b12 = OrderLab(LOINC_TOTAL_B12, LOINC_DISPLAY[LOINC_TOTAL_B12], "Serum vitamin B12")
    actions = [b12]
    parts = ["active B12" if p.pregnant else "B12"]
    if not drafted & _BLOOD_COUNT:
        actions.append(OrderLab(LOINC_CBC, LOINC_DISPLAY[LOINC_CBC], "Full blood count"))
        parts.append("a blood count")
    if p.macrocytosis is not None and Analyte.FOLATE not in drafted:
        actions.append(
            OrderLab(LOINC_FOLATE, LOINC_DISPLAY[LOINC_FOLATE], "Serum folate (macrocytosis)")
        )
        parts.append("folate")
    label = "Order " + join_words(parts)
    return Suggestion(label=label, actions=tuple(actions))


# --- when --------------------------------------------------------------------------------------
def _uninterpretable_current_b12(p: ClinicalPicture) -> bool:
    return any(
        r.analyte in _B12_TESTS and not p.drawn_on_therapy(r) for r in p.unrecognised_b12_results
    )


def _normal_mma(p: ClinicalPicture) -> bool:
    return p.b12.mma is not None and p.b12.mma_raised is False


@dataclass(frozen=True)
class _Factor:
    """A risk factor or sign: its phrase for the summary and its line for the detail."""

    phrase: str
    line: str
    evidence: str | None


def _risk_factors(p: ClinicalPicture) -> list[_Factor]:
    """Every risk factor and sign, the one that explains a warning first (macrocytosis)."""
    found: list[_Factor] = []
    if p.macrocytosis is not None:
        value = result_value_text(p.macrocytosis)
        found.append(
            _Factor(
                f"with macrocytosis (MCV {value})",
                f"macrocytosis: MCV {describe(p.macrocytosis)}",
                p.macrocytosis.resource_id,
            )
        )
    for rf in p.drug_risk_factors:
        found.append(_Factor(rf.text, _drug_line(p, rf), rf.evidence))
    for rf in p.other_risk_factors:
        found.append(_Factor(_phrase(rf), _other_line(p, rf), rf.evidence))
    if p.unexplained_anaemia:
        hb = p.low_haemoglobin
        if hb is not None:
            found.append(
                _Factor(
                    f"with anaemia (Hb {result_value_text(hb)})",
                    f"anaemia: haemoglobin {describe(hb)}",
                    hb.resource_id,
                )
            )
        else:
            cond = p.anaemia_conditions[0]
            found.append(
                _Factor(
                    "with anaemia", f"anaemia: {cond.name} ({cond.resource_id})", cond.resource_id
                )
            )
    return found


def _phrase(rf: RiskFactor) -> str:
    if rf.text.startswith("age "):
        return "aged " + rf.text[4:]
    return "with " + rf.text[:1].lower() + rf.text[1:]


def _drug_line(p: ClinicalPicture, rf: RiskFactor) -> str:
    med = _medication(p, rf.evidence)
    since = f"since {med.start.date().isoformat()}; " if med and med.start else ""
    name = f"{med.name}, " if med else ""
    return f"{rf.text} ({name}{since}{rf.evidence})"


def _other_line(p: ClinicalPicture, rf: RiskFactor) -> str:
    if rf.text.startswith("age "):
        limit = f"{p.policy.thresholds.age_risk_above_years:g}"
        return f"{rf.text}: over {limit} ({AAFP_2017.label}; {rf.evidence})"
    return f"{rf.text} ({rf.evidence})"


def _medication(p: ClinicalPicture, resource_id: str | None) -> MedicationExposure | None:
    return next((m for m in p.facts.medications if m.resource_id == resource_id), None)


# --- then --------------------------------------------------------------------------------------
def _summary(factors: list[_Factor], months: int, b12_missing: bool) -> str:
    """As many risk factors as fit under 140 characters, the rest counted."""
    if b12_missing:
        head = "B12 results unavailable for a patient "
        tail = f": check for a B12 result in the last {months} months."
    else:
        head = f"No B12 result in {months} months for a patient "
        tail = ": check B12."
    phrases = [f.phrase for f in factors]
    for shown in range(len(phrases), 0, -1):
        more = len(phrases) - shown
        extra = f" (+{more} more risk factor{'s' if more > 1 else ''})" if more else ""
        text = head + ", ".join(phrases[:shown]) + extra + tail
        if len(text) <= SUMMARY_MAX:
            return text
    return shorten(head + phrases[0] + tail)


def _detail(p: ClinicalPicture, factors: list[_Factor], months: int, b12_missing: bool) -> str:
    lines: list[str] = []
    if b12_missing:
        lines.append(
            "B12 results could not be obtained for this request, so this service cannot tell "
            f"whether B12 was measured in the last {months} months. Check the record before "
            "ordering."
        )
    else:
        lines.append(
            f"No diagnostic B12 result in the last {months} months (since "
            f"{p.window_start.date().isoformat()})."
        )
    stale = p.stale_b12
    if stale is not None:
        why = stale_reason(p, stale)
        lines.append(f"Last {_analyte_name(stale)}: {describe(stale)}, {why}.")
    mma = p.b12.mma
    if mma is not None and p.b12.mma_renal_caveat:
        lines.append(
            f"MMA {describe(mma)} is raised, but eGFR below "
            f"{p.policy.thresholds.egfr_impaired_below:g} raises MMA on its own: it does not "
            "settle B12 status."
        )
    lines += ["", "Risk factors and signs found:", ""]
    lines += [f"- {f.line}" for f in factors]
    if p.neurological:
        names = ", ".join(f"{c.name} ({c.resource_id})" for c in p.neurological)
        lines += ["", f"Neurological involvement recorded: {names}."]
        if p.neuro_possible_only:
            lines.append(
                "Headache / back pain are treated as *possible* neurological involvement (the "
                "product brief); NICE and the BNF reserve that term for neuropathy, myelopathy, "
                "cognitive or optic signs. Confirm clinically."
            )
    test = "active B12 (holotranscobalamin)" if p.pregnant else "serum B12"
    lines += [
        "",
        f"Check {test} with a full blood count"
        + (" and serum folate (macrocytosis)." if p.macrocytosis is not None else "."),
    ]
    if p.pregnant:
        lines.append(
            "Pregnant: total B12 falls in pregnancy and can look deficient when it is not; NICE "
            "recommends active B12 to test."
        )
    if p.b12_drafts:
        names = ", ".join(f"{m.name} ({m.resource_id})" for m in p.b12_drafts)
        lines.append(
            f"B12 is being ordered ({names}): take the blood sample **before** the first dose; "
            "results drawn after replacement starts cannot confirm or exclude deficiency (NICE)."
        )
    missing = missing_data(
        p, DataCategory.MEDICATIONS, DataCategory.CONDITIONS, DataCategory.BLOOD_COUNTS
    )
    if missing:
        lines.append(f"{missing}; more risk factors may apply.")
    return CardText(*lines).source(NICE_NG239, AAFP_2017, AAFP_2025).text()


def _analyte_name(result: LabResult) -> str:
    return "active B12" if result.analyte is Analyte.ACTIVE_B12 else "total B12"


def _concerns(p: ClinicalPicture, factors: list[_Factor]) -> frozenset[str]:
    ids = {m.resource_id for m in p.b12_drafts}
    evidence = {f.evidence for f in factors}
    for cls in _RISK_DRUGS:
        on_it = any(m.resource_id in evidence for m in p.medications_of(cls, drafts=False))
        if on_it:
            ids.update(m.resource_id for m in p.medications_of(cls, drafts=True))
    return frozenset(ids)


RULE = Rule(
    id="b12-screening-due",
    title="B12 test due for a patient at risk of deficiency",
    summary=summary_of(__doc__),
    sources=(NICE_NG239, AAFP_2017, AAFP_2025),
    indicators=(Indicator.WARNING, Indicator.INFO),
    settings=(
        *B12_STATUS_SETTINGS,
        "windows.lookback_months",
        "windows.metformin_months",
        "windows.acid_suppression_months",
        "thresholds.age_risk_above_years",
        "thresholds.mcv_macrocytosis_above_fl",
        "thresholds.haemoglobin_low_male_g_dl",
        "thresholds.haemoglobin_low_female_g_dl",
        "neurological_involvement",
        "windows.im_max_interval_months",
    ),
    evaluate=evaluate,
)
