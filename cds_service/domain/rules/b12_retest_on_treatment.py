"""``b12-retest-on-treatment``: a total B12 test ordered on established IM therapy.

Serum B12 rises with injections and stays high: on established IM therapy it says nothing
about whether treatment works. The review is clinical (symptoms, blood count), not a retest.

When: a drafted test orders total B12, and the patient has active, taken parenteral B12
therapy (hydroxocobalamin without a route counts: it is injection-only) that started more
than ``windows.established_im_months`` ago.
Then: info; one suggestion deletes each drafted total B12 test (saying which other tests a
drafted panel takes with it), with override reasons for recurring symptoms and for checking
adherence or absorption. The card concerns the drafted tests, so it shows at order-sign.
Not when: therapy oral, sublingual or of unknown route (other than hydroxocobalamin),
inactive, drafted, undated, or not yet established; the drafted test is active B12 or MMA
only.
"""

from __future__ import annotations

from ..cardtext import CardText
from ..facts import DraftLabOrder, MedicationExposure
from ..findings import (
    Finding,
    OverrideReason,
    RemoveDraft,
    SelectionBehavior,
    Suggestion,
    Wording,
)
from ..picture import ClinicalPicture
from ..resulttext import duration_text
from ..rule import Rule, summary_of
from ..sources import NICE_NG239
from ..vocabulary import Analyte, Indicator, Route

OVERRIDE_REASONS = (
    OverrideReason("symptoms-recurred", "Symptoms recurred on treatment"),
    OverrideReason("checking-adherence-absorption", "Checking adherence or absorption"),
)


def evaluate(p: ClinicalPicture) -> Finding | None:
    tests = [d for d in p.facts.draft_labs if Analyte.TOTAL_B12 in d.analytes]
    if not tests:
        return None
    threshold = p.policy.windows.established_im_months
    established = [m for m in p.b12_therapy if m.is_injected_b12 and _months(p, m) > threshold]
    if not established:
        return None
    longest = max(established, key=lambda m: _months(p, m))
    summary = (
        f"On IM B12 for {duration_text(_months(p, longest))}: B12 levels on established IM "
        "therapy are not informative; review symptoms and blood count instead."
    )
    if len(summary) > 139:
        summary = (
            "B12 levels on established IM therapy are not informative; review symptoms and "
            "blood count instead."
        )
    actions = tuple(RemoveDraft(d.resource_id, _remove_text(d.name, d.analytes)) for d in tests)
    label = "Remove the drafted B12 test" + ("s" if len(tests) > 1 else "")
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.INFO,
        wording=Wording(lambda: (summary, _detail(p, tests, established))),
        source=NICE_NG239,
        suggestions=(Suggestion(label, actions),),
        selection_behavior=SelectionBehavior.ANY,
        override_reasons=OVERRIDE_REASONS,
        concerns=frozenset(d.resource_id for d in tests),
    )


def _months(p: ClinicalPicture, m: MedicationExposure) -> float:
    return p.months_on(m) or 0.0


def _detail(
    p: ClinicalPicture, tests: list[DraftLabOrder], established: list[MedicationExposure]
) -> str:
    text = CardText("Total B12 being ordered:", "")
    text.bullets(f"{d.name} ({d.resource_id})" for d in tests)
    text.blank().line("Established parenteral B12 therapy:", "")
    text.bullets(
        f"{m.name} ({m.resource_id}), {_route(m)}, since {m.start.date().isoformat()} "
        f"({duration_text(_months(p, m))})"
        for m in established
        if m.start is not None
    )
    text.blank().paragraph(
        "Serum B12 rises with injections and stays high: on established IM therapy it says "
        "nothing about whether treatment is working. Review symptoms and the blood count "
        "instead; NICE NG239 recommends a clinical review, not a routine B12 retest."
    )
    text.line(
        "Keep the test if symptoms have recurred on treatment or you are checking adherence or "
        "absorption (choose the matching override reason)."
    )
    if any(d.analytes - {Analyte.TOTAL_B12} for d in tests):
        text.blank().line(
            "Removing a drafted panel also removes its other tests; re-order any that are "
            "needed."
        )
    return text.source(NICE_NG239).text()


def _route(m: MedicationExposure) -> str:
    return m.route.value if m.route is not Route.UNKNOWN else "injection (route not recorded)"


def _remove_text(name: str, analytes: frozenset[Analyte]) -> str:
    others = sorted(a.value for a in analytes - {Analyte.TOTAL_B12})
    also = f" (also removes: {', '.join(others)})" if others else ""
    return f"Remove the drafted {name}{also}: not informative on established IM B12."


RULE = Rule(
    id="b12-retest-on-treatment",
    title="B12 retest on established IM B12 therapy",
    summary=summary_of(__doc__),
    sources=(NICE_NG239,),
    indicators=(Indicator.INFO,),
    settings=("windows.established_im_months",),
    evaluate=evaluate,
)
