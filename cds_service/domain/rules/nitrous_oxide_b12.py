"""``nitrous-oxide-b12``: nitrous oxide use: functional B12 deficiency with a normal total B12.

rule book §3: "Nitrous-oxide use recorded (condition or social history)" -> "Nitrous
oxide inactivates B12: total B12 can be normal. Test homocysteine or MMA first; with
neurological signs start B12 now and refer urgently." critical with neurological involvement;
warning otherwise; "order homocysteine (13965-9) / MMA; replace a drafted total-B12 test with
them".

Sources: NICE NG239 (recreational nitrous oxide is a cause; homocysteine as the initial test;
treat); AAFP 2025.

When: nitrous oxide use is recorded: an active condition of ``ConditionKind.NITROUS_OXIDE_USE``
(F18.x, T41.0X-, name), or a non-draft ``DrugClass.NITROUS_OXIDE`` exposure that is active or
started / ended within the look-back window. A *drafted* nitrous oxide order alone (Entonox for
a procedure) is not "use recorded" and does not fire: a warning on every analgesia order would
be noise.
Then: critical with neurological involvement (the site's set; headache / back pain are only
*possible* involvement and the card says so plainly, but they count, per rule book §1);
warning otherwise. The detail names the nitrous oxide evidence, the B12 evidence and the
neurological conditions. Suggestions (``any``):
- homocysteine (13965-9) and MMA (13964-2), one suggestion, recommended; each test left out
  when a current result or a drafted order exists. When a total B12 test is drafted, the same
  suggestion also deletes it ("replace a drafted total-B12 test with them").
- with neurological involvement and no B12 therapy: the neurological regimen, recommended.
Summary: the rule book's text is 142 characters, over the limit, so each case carries the part that
applies: no neurological involvement -> "... Test homocysteine or MMA first; with neurological
signs start B12 now."; with it -> "start B12 now and refer urgently" first (naming headache /
back pain as *possible* signs when they are all there is). When B12 status is already deficient
(or functional deficiency) the tests are not offered (deficiency is shown) and the summary
quotes the deciding value and says to treat instead of "test first".
``concerns``: drafted total-B12 tests. ``supersedes``:
- ``b12-normal-but-symptomatic``, ``b12-indeterminate``, ``b12-screening-due``: their next step
  (total B12, MMA) is what this card replaces with the right tests for nitrous oxide.
- ``b12-cause-workup``: the cause is known (nitrous oxide).
- ``b12-deficiency-untreated`` only when this card itself offers the neurological regimen (with
  neurological involvement, no B12 therapy, status deficient): that rule would offer the same
  regimen on a second card. Without neurological involvement it stays, as the card that carries
  the regimen choice.

Not when: no nitrous oxide use recorded; only a drafted nitrous oxide order; an exposure that
ended (or, with no end, started) before the look-back window and is no longer active.
"""

from __future__ import annotations

from ..codes import LOINC_DISPLAY, LOINC_HOMOCYSTEINE, LOINC_MMA
from ..findings import (
    Finding,
    OrderLab,
    OrderMedication,
    RemoveDraft,
    SelectionBehavior,
    Suggestion,
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
    deficient = p.b12.status.is_deficient
    offer_regimen = neuro and not p.has_b12_therapy
    total_drafts = tuple(d for d in p.facts.draft_labs if Analyte.TOTAL_B12 in d.analytes)

    # docs/rulebook.md's summary is 142 characters: each case says the part that applies to it.
    if deficient:
        key = p.b12.key_result
        value = f" ({_NAMES[key.analyte]} {result_value_text(key)})" if key is not None else ""
        if neuro:
            summary = (
                f"Nitrous oxide use, neurological signs and B12 deficiency{value}: start B12 now "
                "and refer urgently."
            )
        else:
            summary = (
                f"Nitrous oxide use and B12 deficiency{value}: stop nitrous oxide and treat the "
                "deficiency."
            )
    elif neuro and p.neuro_possible_only:
        names = ", ".join(sorted({c.name.lower() for c in p.neurological}))
        summary = (
            f"Nitrous oxide use with possible neurological signs ({names}): start B12 now, "
            "refer urgently. Test homocysteine or MMA too."
        )
    elif neuro:
        summary = (
            "Nitrous oxide use with neurological signs: start B12 now and refer urgently. "
            "Total B12 can be normal: test homocysteine or MMA too."
        )
    elif p.b12_drafts or (p.has_malabsorption_cause and not p.has_b12_therapy):
        # B12 is being started (a draft, or a recorded cause that needs it lifelong): the
        # tests are a baseline drawn before the first dose, not a reason to wait.
        summary = (
            "Nitrous oxide inactivates B12: total B12 can be normal. Test homocysteine or MMA "
            "before the first B12 dose."
        )
    else:
        summary = (
            "Nitrous oxide inactivates B12: total B12 can be normal. Test homocysteine or MMA "
            "first; with neurological signs start B12 now."
        )

    lines = ["**Nitrous oxide use**", ""]
    for c in conditions:
        lines.append(f"- {c.name} ({c.resource_id})")
    for m in exposures:
        start = f", from {m.start.date().isoformat()}" if m.start else ""
        lines.append(f"- {m.name} ({m.status}{start}; {m.resource_id})")
    lines += ["", "**B12 evidence**", ""]
    b12 = p.b12
    shown = [r for r in (b12.total, b12.active, b12.mma) if r is not None]
    shown += [r for a in (Analyte.HOMOCYSTEINE,) if (r := p.latest_current(a)) is not None]
    for r in shown:
        lines.append(f"- {_NAMES[r.analyte]} {describe(r)}")
    if not shown:
        lines.append("- no current B12, MMA or homocysteine result")
    lines.append(f"- B12 status: {b12.status.value}")
    if DataCategory.B12_LABS in p.facts.missing:
        lines.append("- B12 results could not be obtained")
    lines.append("")
    if neuro:
        lines += ["**Neurological involvement**", ""]
        lines += [f"- {c.name} ({c.resource_id})" for c in p.neurological]
        lines.append("")
        if p.neuro_possible_only:
            lines += [
                "Only headache or back pain is recorded: the product brief treats it as "
                "neurological involvement; NICE/BNF reserve the intensive regimen for "
                "neuropathy, myelopathy, cognitive or optic signs. Confirm clinically: examine "
                "for sensory loss, gait ataxia and weakness.",
                "",
            ]
    lines += [
        "Nitrous oxide oxidises the cobalt of B12 and inactivates it, so a patient can have "
        "functional deficiency with a normal total (or active) B12. NICE NG239 advises "
        "homocysteine as the initial test (MMA also shows functional deficiency), stopping "
        "nitrous oxide, and B12 replacement (IM or oral by the person's preference).",
        "",
    ]
    if neuro:
        lines += [
            "With neurological signs do not wait for results: start IM B12 now (after the "
            "samples are taken) and refer urgently (neurology); nitrous oxide myelopathy can "
            "leave permanent disability.",
            "",
        ]
    lines.append(f"Source: {NICE_NG239.label}; {AAFP_2025.label}.")

    suggestions: list[Suggestion] = []
    if not deficient:
        tests = _test_actions(p)
        removals = tuple(
            RemoveDraft(
                d.resource_id,
                f"Delete the drafted total B12 test ({d.name}): total "
                "B12 can be normal after nitrous oxide",
            )
            for d in total_drafts
        )
        if tests:
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
            Suggestion(
                f"Order {regimen.label}",
                (OrderMedication(regimen, regimen.text),),
                is_recommended=True,
            )
        )

    supersedes = set(RULE.always_supersedes)
    if offer_regimen and deficient:
        supersedes.add("b12-deficiency-untreated")
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.CRITICAL if neuro else Indicator.WARNING,
        summary=shorten(summary),
        detail="\n".join(lines),
        source=NICE_NG239,
        suggestions=tuple(suggestions),
        selection_behavior=SelectionBehavior.ANY if suggestions else None,
        concerns=frozenset(d.resource_id for d in total_drafts),
        supersedes=frozenset(supersedes),
    )


_NAMES = {
    Analyte.TOTAL_B12: "total B12",
    Analyte.ACTIVE_B12: "active B12",
    Analyte.MMA: "MMA",
    Analyte.HOMOCYSTEINE: "homocysteine",
}


def _within_window(p: ClinicalPicture, when) -> bool:
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
