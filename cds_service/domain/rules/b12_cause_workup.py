"""``b12-cause-workup``: B12 deficiency with no known cause: look for one.

A deficiency needs a cause: autoimmune gastritis (intrinsic factor antibodies),
H. pylori, coeliac disease, diet or medicines.

When: the B12 status is deficient or functional deficiency, and no cause is recorded (no
malabsorption cause or positive intrinsic factor antibody; no risk drug past its window,
``windows.metformin_months`` / ``windows.acid_suppression_months``, nor colchicine or
para-aminosalicylic acid; no vegan diet), and no intrinsic factor antibody result exists or
is drafted.
Then: info naming the deciding B12 evidence, offering intrinsic factor antibody and an
H. pylori stool antigen (with a proton pump inhibitor caveat); coeliac serology and a review
of diet and medicines are in the detail. The antibody is not offered within
``windows.if_antibody_after_injection_days`` of a B12 injection (falsely positive results):
the card says from when it can be drawn; with ongoing or drafted injections the order says
when to draw it. The card concerns the B12 drafts (the sample belongs before the first dose).
Not when: not deficient; a cause is recorded; an antibody result or order exists. Recorded
nitrous oxide use is a cause too: ``nitrous-oxide-b12`` silences this card.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..b12status import B12_STATUS_SETTINGS
from ..cardtext import CardText
from ..codes import LOINC_DISPLAY, LOINC_H_PYLORI_STOOL_AG, LOINC_IF_ANTIBODY
from ..evidence import missing_data
from ..facts import MedicationExposure
from ..findings import Finding, OrderLab, SelectionBehavior, Suggestion, Wording
from ..picture import ClinicalPicture
from ..resulttext import describe, duration_text
from ..rule import Rule, summary_of
from ..sources import NICE_NG239
from ..units import format_number
from ..vocabulary import Analyte, ConditionKind, DataCategory, DrugClass, Indicator

_NAMES = {Analyte.TOTAL_B12: "B12", Analyte.ACTIVE_B12: "active B12", Analyte.MMA: "MMA"}


def evaluate(p: ClinicalPicture) -> Finding | None:
    if not p.b12.status.is_deficient or _known_cause(p):
        return None
    if p.results(Analyte.IF_ANTIBODY):
        return None
    if any(Analyte.IF_ANTIBODY in d.analytes for d in p.facts.draft_labs):
        return None
    days = p.policy.windows.if_antibody_after_injection_days
    recent = _recent_injections(p, days)
    ongoing = [m for m in p.b12_therapy if m.is_injected_b12 and m not in recent]
    drafted = [m for m in p.b12_drafts if m.is_injected_b12]
    suggestions: list[Suggestion] = []
    if not recent:
        suggestions.append(_if_antibody(_when_to_draw(days, ongoing, drafted)))
    suggestions.append(_h_pylori(bool(p.medications_of(DrugClass.PPI, drafts=False))))
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.INFO,
        wording=Wording(lambda: (_summary(p), _detail(p, recent, ongoing, drafted, days))),
        source=NICE_NG239,
        suggestions=tuple(suggestions),
        selection_behavior=SelectionBehavior.ANY,
        concerns=frozenset(m.resource_id for m in p.b12_drafts),
    )


def _when_to_draw(
    days: int, ongoing: list[MedicationExposure], drafted: list[MedicationExposure]
) -> str | None:
    if ongoing:
        return f"Draw at least {days} days after the last B12 injection."
    if drafted:
        return f"Draw before the first B12 injection, or at least {days} days after it."
    return None


def _if_antibody(note: str | None) -> Suggestion:
    order = OrderLab(
        LOINC_IF_ANTIBODY,
        LOINC_DISPLAY[LOINC_IF_ANTIBODY],
        "Intrinsic factor antibody (autoimmune gastritis)",
        note,
    )
    return Suggestion("Order intrinsic factor antibody", (order,))


def _h_pylori(on_ppi: bool) -> Suggestion:
    note = (
        "On a proton pump inhibitor: it can make the test falsely negative; "
        "stop it 2 weeks before if possible."
        if on_ppi
        else None
    )
    order = OrderLab(
        LOINC_H_PYLORI_STOOL_AG,
        LOINC_DISPLAY[LOINC_H_PYLORI_STOOL_AG],
        "Helicobacter pylori stool antigen",
        note,
    )
    return Suggestion("Order H. pylori stool antigen", (order,))


def _summary(p: ClinicalPicture) -> str:
    key = p.b12.key_result
    short = (
        "Find the cause of B12 deficiency: intrinsic factor antibodies, H. pylori, coeliac "
        "serology; review diet and medicines."
    )
    if key is None or key.value is None:
        return short
    summary = (
        f"Find the cause of B12 deficiency ({_NAMES[key.analyte]} {key.comparator or ''}"
        f"{format_number(key.value)} {key.unit}): intrinsic factor antibodies, H. pylori, "
        "coeliac serology; review diet and medicines."
    )
    return short if len(summary) > 139 else summary


def _known_cause(p: ClinicalPicture) -> bool:
    return bool(
        p.has_malabsorption_cause
        or p.drug_risk_factors
        or p.conditions_of(ConditionKind.VEGAN_DIET)
    )


def _recent_injections(p: ClinicalPicture, days: int) -> list[MedicationExposure]:
    since = p.now - timedelta(days=days)
    return [
        m
        for m in p.facts.medications
        if m.is_b12_product
        and not m.is_draft
        and m.is_injected_b12
        and m.start is not None
        and since <= m.start <= p.now
    ]


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment is not None else "on an unknown date"


def _detail(
    p: ClinicalPicture,
    recent: list[MedicationExposure],
    ongoing: list[MedicationExposure],
    drafted: list[MedicationExposure],
    days: int,
) -> str:
    b12 = p.b12
    lines = [f"B12 status: **{b12.status.value}**."]
    lines += [f"- {_NAMES.get(r.analyte, r.analyte.value)} {describe(r)}" for r in b12.deciding]
    if b12.conflict:
        lines += ["", b12.conflict]
    lines += [
        "",
        "No cause is recorded: no malabsorption cause (autoimmune gastritis / pernicious "
        "anaemia, bariatric surgery, gastrectomy, ileal resection, ileal Crohn's disease), no "
        "medicine known to lower B12 for long enough, no vegan diet, and no intrinsic factor "
        "antibody result.",
        "",
        "Find the cause (NICE NG239):",
        "",
    ]
    if recent:
        starts = [m.start for m in recent if m.start is not None]
        names = ", ".join(f"{m.name} started {_day(m.start)} ({m.resource_id})" for m in recent)
        first_day = (max(starts) + timedelta(days=days)).date().isoformat()
        lines.append(
            f"- **Intrinsic factor antibodies: not ordered now.** A B12 injection in the last "
            f"{days} days ({names}) can make the result falsely positive; test from "
            f"{first_day}."
        )
    elif ongoing:
        lines.append(
            "- Intrinsic factor antibodies (autoimmune gastritis). The patient has B12 "
            f"injections: draw the sample at least {days} days after the last one (falsely "
            "positive results)."
        )
    elif drafted:
        lines.append(
            "- Intrinsic factor antibodies (autoimmune gastritis): draw the sample before the "
            f"first B12 injection, or at least {days} days after it (falsely positive results)."
        )
    else:
        lines.append("- Intrinsic factor antibodies (autoimmune gastritis).")
    lines.append(
        "- A negative intrinsic factor antibody does not exclude autoimmune gastritis; if "
        "suspicion stays high, consider gastrin or parietal cell antibodies."
    )
    lines.append("- H. pylori test (stool antigen or breath test).")
    coeliac = p.conditions_of(ConditionKind.COELIAC)
    if coeliac:
        c = coeliac[0]
        lines.append(
            f"- Coeliac disease is recorded ({c.name}, {c.resource_id}): review adherence to "
            "the gluten-free diet."
        )
    else:
        lines.append("- Coeliac serology (tissue transglutaminase IgA with total IgA).")
    lines.append("- Review the diet (animal products, dairy, eggs, fortified foods) and medicines.")
    for m in p.medications_of(
        DrugClass.METFORMIN, DrugClass.PPI, DrugClass.H2_BLOCKER, drafts=False
    ):
        months = p.months_on(m)
        since = f"for {duration_text(months)}" if months is not None else "(start unknown)"
        lines.append(
            f"  - {m.name} {since} ({m.resource_id}): not long enough (or not known to be) to "
            "count as the cause here, but it may contribute."
        )
    for c in p.conditions_of(ConditionKind.ALCOHOL_USE_DISORDER)[:1]:
        lines.append(f"  - Heavy alcohol use is recorded ({c.resource_id}).")
    missing = missing_data(p, DataCategory.CONDITIONS, DataCategory.MEDICATIONS)
    if missing:
        lines += ["", f"{missing}. A cause may be recorded there."]
    return CardText(*lines).source(NICE_NG239).text()


RULE = Rule(
    id="b12-cause-workup",
    title="B12 deficiency without a known cause",
    summary=summary_of(__doc__),
    sources=(NICE_NG239,),
    indicators=(Indicator.INFO,),
    settings=(
        *B12_STATUS_SETTINGS,
        "windows.lookback_months",
        "windows.metformin_months",
        "windows.acid_suppression_months",
        "windows.if_antibody_after_injection_days",
    ),
    evaluate=evaluate,
)
