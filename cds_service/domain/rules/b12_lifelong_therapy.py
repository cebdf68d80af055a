"""``b12-lifelong-therapy``: an irreversible malabsorption cause needs lifelong B12.

Pernicious anaemia, gastrectomy, bariatric surgery or ileal resection stop B12 being
absorbed for good: treatment continues for life (after bariatric surgery, oral daily per
AAFP 2017 or IM monthly per ASMBS 2016).

When: a malabsorption cause is recorded (a condition, or a positive intrinsic factor
antibody) and either no B12 therapy is active or drafted, or a B12 stop order is being
signed with no other B12 draft continuing treatment (a stop beside a new order is a switch).
Ileal Crohn's disease alone counts only with evidence of deficiency: most people with
Crohn's disease do not need lifelong B12.
Then: warning naming the causes and their evidence, with the maintenance regimen
(``formulary``; the neurological regimen with ``neurological_involvement``); after bariatric
surgery without neurological involvement, the oral and the IM bariatric regimens (oral
recommended). With no current diagnostic B12 result (``windows.lookback_months``), the
suggestions also order a B12 test and a blood count, drawn before the first dose. A stop
order gets override reasons (given elsewhere, patient declines, specialist advice, cause
resolved) and is what the card concerns. The card silences the screening, indeterminate and
symptom cards: for this patient the missing treatment is the problem, whatever the level.
Not when: B12 therapy active or drafted and not being stopped; no malabsorption cause.
"""

from __future__ import annotations

from ..b12status import B12Status
from ..cardtext import CardText, join_words
from ..codes import LOINC_CBC, LOINC_DISPLAY, LOINC_TOTAL_B12
from ..facts import MedicationExposure
from ..findings import (
    Finding,
    OrderLab,
    OrderMedication,
    OverrideReason,
    Regimen,
    SelectionBehavior,
    Suggestion,
    Wording,
)
from ..picture import ClinicalPicture
from ..regimens import BARIATRIC_IM, BARIATRIC_ORAL, maintenance_regimen
from ..resulttext import describe
from ..rule import Rule, summary_of
from ..sources import AAFP_2017, ASMBS_2016, NICE_NG239
from ..vocabulary import MALABSORPTION_CAUSES, Analyte, ConditionKind, DataCategory, Indicator

#: A stop order can be legitimate: the override reasons say which.
STOP_OVERRIDE_REASONS = (
    OverrideReason("given-elsewhere", "Given elsewhere / care transferred"),
    OverrideReason("patient-declines", "Patient declines"),
    OverrideReason("specialist-advised-stopping", "Specialist advised stopping"),
    OverrideReason("cause-resolved", "Cause resolved"),
)

#: Stable order for naming causes on the card (the order of rule book §1).
_CAUSE_ORDER = (
    ConditionKind.PERNICIOUS_ANAEMIA,
    ConditionKind.AUTOIMMUNE_GASTRITIS,
    ConditionKind.IF_ANTIBODY_POSITIVE,
    ConditionKind.BARIATRIC_SURGERY,
    ConditionKind.GASTRECTOMY,
    ConditionKind.ILEAL_RESECTION,
    ConditionKind.ILEAL_CROHNS,
    ConditionKind.POSTSURGICAL_MALABSORPTION,
)


def evaluate(p: ClinicalPicture) -> Finding | None:
    causes = _causes(p)
    if not causes:
        return None
    if set(causes) == {ConditionKind.ILEAL_CROHNS} and not _deficiency_evidence(p):
        return None
    stops = tuple(
        m for m in p.facts.medications if m.is_draft and m.is_stop_order and m.is_b12_product
    )
    stopping = bool(stops) and not p.b12_drafts
    if p.has_b12_therapy and not stopping:
        return None
    bariatric = ConditionKind.BARIATRIC_SURGERY in causes
    regimens: tuple[Regimen, ...] = (maintenance_regimen(p),)
    if bariatric and not p.neurological:
        # Post-bariatric maintenance (AAFP 2017 oral daily; ASMBS 2016 IM monthly).
        regimens = (BARIATRIC_ORAL, BARIATRIC_IM)
    # With no current diagnostic B12 result, each regimen also orders B12 and a blood count,
    # drawn before the first dose (results drawn after replacement starts are not diagnostic).
    baseline = _baseline_tests(p) if not stopping and p.b12.status is B12Status.UNKNOWN else ()
    options = tuple(
        Suggestion(
            f"{'Check B12 and blood count, then order' if baseline else 'Order'} {r.label}",
            baseline + (OrderMedication(r, r.text),),
            is_recommended=index == 0,
        )
        for index, r in enumerate(regimens)
    )
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.WARNING,
        wording=_wording(p, causes, stops if stopping else (), regimens, bool(baseline)),
        source=ASMBS_2016 if bariatric else NICE_NG239,
        suggestions=options,
        selection_behavior=SelectionBehavior.AT_MOST_ONE,
        override_reasons=STOP_OVERRIDE_REASONS if stopping else (),
        concerns=frozenset(m.resource_id for m in stops) if stopping else frozenset(),
        supersedes=RULE.always_supersedes,
    )


def _wording(
    p: ClinicalPicture,
    causes: list[ConditionKind],
    stops: tuple[MedicationExposure, ...],
    regimens: tuple[Regimen, ...],
    baseline: bool,
) -> Wording:
    return Wording(
        lambda: (_summary(p, causes, stops), _detail(p, causes, stops, regimens, baseline))
    )


def _summary(
    p: ClinicalPicture, causes: list[ConditionKind], stops: tuple[MedicationExposure, ...]
) -> str:
    names = [k.value for k in causes]
    cause_text = join_words(names)
    subject = cause_text[:1].upper() + cause_text[1:]
    verb = "mean" if len(names) > 1 else "means"
    if stops:
        summary = (
            f"{subject} {verb} lifelong B12: keep treatment going, do not stop {stops[0].name}."
        )
    else:
        ever = any(m.is_b12_product and not m.is_draft for m in p.facts.medications)
        summary = (
            f"{subject} {verb} lifelong B12, but no B12 treatment is recorded: "
            f"{'restart' if ever else 'start'} it."
        )
    if len(summary) > 139:
        summary = f"{subject} {verb} lifelong B12: keep treatment going."
    if len(summary) > 139:
        summary = "This malabsorption cause means lifelong B12: keep treatment going."
    return summary


def _baseline_tests(p: ClinicalPicture) -> tuple[OrderLab, ...]:
    drafted = {a for d in p.facts.draft_labs for a in d.analytes}
    note = (
        "Draw before the first B12 dose: results drawn after replacement starts are not "
        "diagnostic."
    )
    tests = []
    if not drafted & {Analyte.TOTAL_B12, Analyte.ACTIVE_B12}:
        tests.append(
            OrderLab(LOINC_TOTAL_B12, LOINC_DISPLAY[LOINC_TOTAL_B12], "Serum vitamin B12", note)
        )
    if not drafted & {Analyte.HAEMOGLOBIN, Analyte.MCV}:
        tests.append(OrderLab(LOINC_CBC, LOINC_DISPLAY[LOINC_CBC], "Full blood count", note))
    return tuple(tests)


def _causes(p: ClinicalPicture) -> list[ConditionKind]:
    found = {k for c in p.malabsorption for k in c.kinds & MALABSORPTION_CAUSES}
    if p.if_antibody_positive is not None:
        found.add(ConditionKind.IF_ANTIBODY_POSITIVE)
    # Named once: a positive IF antibody *is* the evidence of pernicious anaemia when both exist.
    if ConditionKind.PERNICIOUS_ANAEMIA in found:
        found.discard(ConditionKind.IF_ANTIBODY_POSITIVE)
    return [k for k in _CAUSE_ORDER if k in found]


def _deficiency_evidence(p: ClinicalPicture) -> bool:
    return p.b12.status.is_deficient or bool(p.conditions_of(ConditionKind.B12_DEFICIENCY))


def _detail(
    p: ClinicalPicture,
    causes: list[ConditionKind],
    stops: tuple[MedicationExposure, ...],
    regimens: tuple[Regimen, ...],
    baseline: bool,
) -> str:
    lines = ["Malabsorption cause recorded:", ""]
    for c in p.malabsorption:
        kinds = [k.value for k in _CAUSE_ORDER if k in c.kinds and k.value != c.name.lower()]
        lines.append(f"- {c.name} ({'; '.join(kinds + [c.resource_id])})")
    if p.if_antibody_positive is not None:
        lines.append(f"- intrinsic factor antibody {describe(p.if_antibody_positive)}")
    lines.append("")
    if stops:
        for m in stops:
            lines.append(f"Being signed: **{m.status}** order for {m.name} ({m.resource_id}).")
        lines.append(
            "The cause is irreversible, so B12 replacement is lifelong: do not stop it because "
            "levels or symptoms have normalised (NICE NG239). If this closes a loading course, "
            "order the maintenance phase."
        )
    else:
        lines.append("No active B12 product is recorded and none is among the draft orders.")
        past = [
            m for m in p.facts.medications if m.is_b12_product and not m.active and not m.is_draft
        ]
        if past:
            last = max(past, key=lambda m: m.start.timestamp() if m.start else 0.0)
            started = f", started {last.start.date().isoformat()}" if last.start else ""
            lines.append(
                f"Last recorded B12: {last.name} ({last.status}{started}; {last.resource_id})."
            )
        lines.append(
            "The cause is irreversible, so B12 replacement is lifelong (NICE NG239). If injections "
            "are given elsewhere, record them."
        )
        if DataCategory.MEDICATIONS in p.facts.missing:
            lines.append(
                "The medication list could not be obtained for this request: check whether the "
                "patient already receives B12."
            )
        key = p.b12.key_result
        if p.b12.status in (B12Status.INDETERMINATE, B12Status.UNLIKELY) and key is not None:
            lines.append(
                f"B12 {describe(key)} is {p.b12.status.value}: the recorded cause makes "
                "treatment lifelong whatever the level, so no further test is needed to decide."
            )
        if p.b12.status is B12Status.UNKNOWN:
            months = p.policy.windows.lookback_months
            lines.append(
                f"No diagnostic B12 result in the last {months} months: check B12 status first. "
                "The suggestion orders B12 and a blood count with the regimen; take the sample "
                "before the first dose (results drawn after replacement starts are not "
                "diagnostic)."
                if baseline
                else f"No diagnostic B12 result in the last {months} months: take the sample "
                "before the first dose."
            )
    # The detail describes the regimen the recommended suggestion orders, never another one.
    lines += ["", f"Maintenance (recommended): {regimens[0].text}"]
    for alternative in regimens[1:]:
        lines.append(f"Alternative: {alternative.text}")
    bariatric = regimens[0] is BARIATRIC_ORAL
    sources = [NICE_NG239] + ([AAFP_2017, ASMBS_2016] if bariatric else [])
    return CardText(*lines).source(*sources).text()


#: For a patient who needs lifelong B12 the problem is the missing treatment: a card asking
#: for a B12 test, or for MMA "before deciding", would contradict "start it" (the recorded
#: cause decides, whatever the level).
_SUPERSEDED = ("b12-screening-due", "b12-indeterminate", "b12-normal-but-symptomatic")


RULE = Rule(
    id="b12-lifelong-therapy",
    title="Lifelong B12 for an irreversible malabsorption cause",
    summary=summary_of(__doc__),
    sources=(NICE_NG239, AAFP_2017, ASMBS_2016),
    indicators=(Indicator.WARNING,),
    settings=(
        "formulary",
        "neurological_involvement",
        "windows.lookback_months",
        "thresholds.total_b12_deficient_below_ng_l",
        "thresholds.total_b12_unlikely_above_ng_l",
        "windows.b12_washout_months",
    ),
    evaluate=evaluate,
    always_supersedes=frozenset(_SUPERSEDED),
    supersedes=frozenset(_SUPERSEDED),
)
