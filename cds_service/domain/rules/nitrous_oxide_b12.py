"""``nitrous-oxide-b12``: nitrous oxide use: functional B12 deficiency with a normal total B12.

Nitrous oxide inactivates B12, so a patient can be deficient with a normal total (or active)
B12. Homocysteine is the first test (MMA also shows functional deficiency); with
neurological signs, treatment and an urgent referral must not wait for results.

When: nitrous oxide use is recorded, as an active condition, or as a taken (not drafted)
exposure that is active or started / ended within ``windows.lookback_months``.
Then: critical with neurological involvement (the ``neurological_involvement`` set;
headache or back pain alone is said to be *possible* involvement), warning otherwise. The
card offers homocysteine and MMA (each left out when a current result or a draft exists),
replacing a drafted total B12 test; with neurological involvement and no B12 therapy, the
neurological regimen (``formulary``, ``windows.neuro_loading_review_weeks``). When the B12
status is already deficient, the tests are not offered and the summary says to treat.
The card silences the symptom, indeterminate, screening and cause work-up cards (their next
step is the wrong test here, and the cause is known); it silences
``b12-deficiency-untreated`` only when it offers the neurological regimen to a deficient
patient itself.
Not when: only a drafted nitrous oxide order (Entonox for a procedure is not "use"); an
exposure that ended (or, without an end, started) before the look-back window.
"""

from __future__ import annotations

from datetime import datetime

from ..cardtext import CardText
from ..codes import LOINC_DISPLAY, LOINC_HOMOCYSTEINE, LOINC_MMA
from ..facts import ConditionFact, DraftLabOrder, MedicationExposure
from ..findings import (
    Finding,
    OrderLab,
    OrderMedication,
    RemoveDraft,
    SelectionBehavior,
    Suggestion,
    Wording,
    shorten,
)
from ..picture import ClinicalPicture
from ..regimens import neurological_regimen
from ..resulttext import describe, result_value_text
from ..rule import Rule, summary_of
from ..sources import AAFP_2025, NICE_NG239
from ..vocabulary import Analyte, ConditionKind, DataCategory, DrugClass, Indicator


def evaluate(p: ClinicalPicture) -> Finding | None:
    conditions = p.conditions_of(ConditionKind.NITROUS_OXIDE_USE)
    exposures = tuple(
        m
        for m in p.facts.medications
        if DrugClass.NITROUS_OXIDE in m.classes
        and not m.is_draft
        and (m.active or _within_window(p, m.end or m.start))
    )
    if not conditions and not exposures:
        return None
    neuro = bool(p.neurological)
    offer_regimen = neuro and not p.has_b12_therapy
    total_drafts = tuple(d for d in p.facts.draft_labs if Analyte.TOTAL_B12 in d.analytes)
    suggestions = _suggestions(p, total_drafts, offer_regimen)
    supersedes = set(RULE.always_supersedes)
    if offer_regimen and p.b12.status.is_deficient:
        # This card carries the regimen: a second card offering it would be noise.
        supersedes.add("b12-deficiency-untreated")
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.CRITICAL if neuro else Indicator.WARNING,
        wording=Wording(lambda: (shorten(_summary(p)), _detail(p, conditions, exposures))),
        source=NICE_NG239,
        suggestions=suggestions,
        selection_behavior=SelectionBehavior.ANY if suggestions else None,
        concerns=frozenset(d.resource_id for d in total_drafts),
        supersedes=frozenset(supersedes),
    )


def _summary(p: ClinicalPicture) -> str:
    """The rule book's sentence is over the summary limit: each case says the part that
    applies to it."""
    neuro = bool(p.neurological)
    if p.b12.status.is_deficient:
        key = p.b12.key_result
        value = f" ({_NAMES[key.analyte]} {result_value_text(key)})" if key is not None else ""
        if neuro:
            return (
                f"Nitrous oxide use, neurological signs and B12 deficiency{value}: start B12 now "
                "and refer urgently."
            )
        return (
            f"Nitrous oxide use and B12 deficiency{value}: stop nitrous oxide and treat the "
            "deficiency."
        )
    if neuro and p.neuro_possible_only:
        names = ", ".join(sorted({c.name.lower() for c in p.neurological}))
        return (
            f"Nitrous oxide use with possible neurological signs ({names}): start B12 now, "
            "refer urgently. Test homocysteine or MMA too."
        )
    if neuro:
        return (
            "Nitrous oxide use with neurological signs: start B12 now and refer urgently. "
            "Total B12 can be normal: test homocysteine or MMA too."
        )
    if p.b12_drafts or (p.has_malabsorption_cause and not p.has_b12_therapy):
        # B12 is being started (a draft, or a recorded cause that needs it lifelong): the
        # tests are a baseline drawn before the first dose, not a reason to wait.
        return (
            "Nitrous oxide inactivates B12: total B12 can be normal. Test homocysteine or MMA "
            "before the first B12 dose."
        )
    return (
        "Nitrous oxide inactivates B12: total B12 can be normal. Test homocysteine or MMA "
        "first; with neurological signs start B12 now."
    )


def _detail(
    p: ClinicalPicture,
    conditions: tuple[ConditionFact, ...],
    exposures: tuple[MedicationExposure, ...],
) -> str:
    text = CardText().heading("Nitrous oxide use")
    text.bullets(f"{c.name} ({c.resource_id})" for c in conditions)
    text.bullets(_exposure_text(m) for m in exposures)
    text.blank().heading("B12 evidence")
    b12 = p.b12
    shown = [r for r in (b12.total, b12.active, b12.mma) if r is not None]
    homocysteine = p.latest_current(Analyte.HOMOCYSTEINE)
    shown += [homocysteine] if homocysteine is not None else []
    text.bullets(f"{_NAMES[r.analyte]} {describe(r)}" for r in shown)
    if not shown:
        text.bullets(["no current B12, MMA or homocysteine result"])
    text.bullets([f"B12 status: {b12.status.value}"])
    if DataCategory.B12_LABS in p.facts.missing:
        text.bullets(["B12 results could not be obtained"])
    text.blank()
    if p.neurological:
        text.heading("Neurological involvement")
        text.bullets(f"{c.name} ({c.resource_id})" for c in p.neurological).blank()
        if p.neuro_possible_only:
            text.paragraph(_POSSIBLE_ONLY)
    text.paragraph(_MECHANISM)
    if p.neurological:
        text.paragraph(_DO_NOT_WAIT)
    return text.source(NICE_NG239, AAFP_2025, blank_before=False).text()


def _exposure_text(m: MedicationExposure) -> str:
    start = f", from {m.start.date().isoformat()}" if m.start else ""
    return f"{m.name} ({m.status}{start}; {m.resource_id})"


_POSSIBLE_ONLY = (
    "Only headache or back pain is recorded: the product brief treats it as "
    "neurological involvement; NICE/BNF reserve the intensive regimen for "
    "neuropathy, myelopathy, cognitive or optic signs. Confirm clinically: examine "
    "for sensory loss, gait ataxia and weakness."
)
_MECHANISM = (
    "Nitrous oxide oxidises the cobalt of B12 and inactivates it, so a patient can have "
    "functional deficiency with a normal total (or active) B12. NICE NG239 advises "
    "homocysteine as the initial test (MMA also shows functional deficiency), stopping "
    "nitrous oxide, and B12 replacement (IM or oral by the person's preference)."
)
_DO_NOT_WAIT = (
    "With neurological signs do not wait for results: start IM B12 now (after the "
    "samples are taken) and refer urgently (neurology); nitrous oxide myelopathy can "
    "leave permanent disability."
)


def _suggestions(
    p: ClinicalPicture, total_drafts: tuple[DraftLabOrder, ...], offer_regimen: bool
) -> tuple[Suggestion, ...]:
    suggestions: list[Suggestion] = []
    tests = () if p.b12.status.is_deficient else _test_actions(p)
    if tests:
        removals = tuple(
            RemoveDraft(
                d.resource_id,
                f"Delete the drafted total B12 test ({d.name}): total "
                "B12 can be normal after nitrous oxide",
            )
            for d in total_drafts
        )
        label = (
            "Replace the total B12 test with homocysteine and MMA"
            if removals
            else "Order homocysteine and MMA"
        )
        suggestions.append(Suggestion(label, removals + tests, is_recommended=True))
    if offer_regimen:
        regimen = neurological_regimen(
            p.policy.formulary, p.policy.windows.neuro_loading_review_weeks
        )
        suggestions.append(
            Suggestion(f"Order {regimen.label}", (OrderMedication(regimen, regimen.text),), True)
        )
    return tuple(suggestions)


_NAMES = {
    Analyte.TOTAL_B12: "total B12",
    Analyte.ACTIVE_B12: "active B12",
    Analyte.MMA: "MMA",
    Analyte.HOMOCYSTEINE: "homocysteine",
}


def _within_window(p: ClinicalPicture, when: datetime | None) -> bool:
    return when is not None and when >= p.window_start


def _test_actions(p: ClinicalPicture) -> tuple[OrderLab, ...]:
    drafted = {a for d in p.facts.draft_labs for a in d.analytes}
    actions = []
    for analyte, loinc, note in (
        (Analyte.HOMOCYSTEINE, LOINC_HOMOCYSTEINE, "Initial test after nitrous oxide (NICE)"),
        (Analyte.MMA, LOINC_MMA, "Functional B12 test: total B12 can be normal"),
    ):
        if analyte in drafted or p.latest_current(analyte) is not None:
            continue
        actions.append(OrderLab(loinc, LOINC_DISPLAY[loinc], note))
    return tuple(actions)


#: Their next step (total B12, MMA) is what this card replaces with the right tests for
#: nitrous oxide; the cause work-up because the cause is known.
_ALWAYS_SUPERSEDED = frozenset(
    {"b12-normal-but-symptomatic", "b12-indeterminate", "b12-screening-due", "b12-cause-workup"}
)


RULE = Rule(
    id="nitrous-oxide-b12",
    title="Nitrous oxide use: B12 inactivated, total B12 can be normal",
    summary=summary_of(__doc__),
    sources=(NICE_NG239, AAFP_2025),
    indicators=(Indicator.CRITICAL, Indicator.WARNING),
    settings=(
        "windows.lookback_months",
        "neurological_involvement",
        "formulary",
        "windows.neuro_loading_review_weeks",
        "thresholds.total_b12_deficient_below_ng_l",
        "thresholds.total_b12_unlikely_above_ng_l",
        "windows.b12_washout_months",
    ),
    evaluate=evaluate,
    always_supersedes=_ALWAYS_SUPERSEDED,
    supersedes=_ALWAYS_SUPERSEDED | {"b12-deficiency-untreated"},
)
