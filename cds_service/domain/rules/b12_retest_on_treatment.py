"""``b12-retest-on-treatment``: a total B12 test ordered on established IM therapy.

rule book §3: "A total B12 test is in the draft orders for a patient established (> 3
months) on IM B12 therapy" -> "B12 levels on established IM therapy are not informative; review
symptoms and blood count instead." info; delete the drafted test (override allowed).
Section 6: "clinical review at 3 months (1 in pregnancy); no routine B12 retest on IM".

Sources: NICE NG239 (do not routinely retest B12 on treatment; review symptoms).

When: a draft ServiceRequest orders total B12, and the patient has active (non-draft) parenteral
B12 therapy that started more than ``windows.established_im_months`` (3) months ago.
Hydroxocobalamin without a recorded route counts as parenteral (it is an injection only product
in the BNF and on the US market).
Then: info card; one suggestion (``any``) removing each drafted total-B12 test, with override
reasons "Symptoms recurred on treatment" and "Checking adherence or absorption". ``concerns``:
the drafted test ids (so the card shows at order-sign).
Not when: therapy is oral / sublingual / of unknown route (other than hydroxocobalamin), not
active, a draft, has no start date, or started 3 months ago or less; the drafted test is active
B12 or MMA only.
"""

from __future__ import annotations

from ..facts import MedicationExposure
from ..findings import (
    Finding,
    OverrideReason,
    RemoveDraft,
    SelectionBehavior,
    Suggestion,
)
from ..picture import ClinicalPicture
from ..resulttext import duration_text
from ..rule import Rule, summary_of
from ..sources import NICE_NG239
from ..vocabulary import B12_PRODUCTS, Analyte, DrugClass, Indicator, Route

OVERRIDE_REASONS = (
    OverrideReason("symptoms-recurred", "Symptoms recurred on treatment"),
    OverrideReason("checking-adherence-absorption", "Checking adherence or absorption"),
)


def evaluate(p: ClinicalPicture) -> Finding | None:
    tests = [d for d in p.facts.draft_labs if Analyte.TOTAL_B12 in d.analytes]
    if not tests:
        return None
    threshold = p.policy.windows.established_im_months
    established = [
        m for m in p.b12_therapy if _parenteral(m) and (p.months_on(m) or 0.0) > threshold
    ]
    if not established:
        return None

    longest = max(established, key=lambda m: p.months_on(m))
    duration = duration_text(p.months_on(longest))
    summary = (
        f"On IM B12 for {duration}: B12 levels on established IM therapy are not informative; "
        "review symptoms and blood count instead."
    )
    if len(summary) > 139:
        summary = (
            "B12 levels on established IM therapy are not informative; review symptoms and "
            "blood count instead."
        )

    actions = tuple(RemoveDraft(d.resource_id, _remove_text(d.name, d.analytes)) for d in tests)
    label = "Remove the drafted B12 test" + ("s" if len(tests) > 1 else "")
    lines = ["Total B12 being ordered:", ""]
    lines += [f"- {d.name} ({d.resource_id})" for d in tests]
    lines += ["", "Established parenteral B12 therapy:", ""]
    for m in established:
        lines.append(
            f"- {m.name} ({m.resource_id}), {_route(m)}, since {m.start.date().isoformat()} "
            f"({duration_text(p.months_on(m))})"
        )
    lines += [
        "",
        "Serum B12 rises with injections and stays high: on established IM therapy it says "
        "nothing about whether treatment is working. Review symptoms and the blood count "
        "instead; NICE NG239 recommends a clinical review, not a routine B12 retest.",
        "",
        "Keep the test if symptoms have recurred on treatment or you are checking adherence or "
        "absorption (choose the matching override reason).",
    ]
    if any(d.analytes - {Analyte.TOTAL_B12} for d in tests):
        lines += [
            "",
            "Removing a drafted panel also removes its other tests; re-order any that are "
            "needed.",
        ]
    lines += ["", f"Source: {NICE_NG239.label}."]
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.INFO,
        summary=summary,
        detail="\n".join(lines),
        source=NICE_NG239,
        suggestions=(Suggestion(label, actions),),
        selection_behavior=SelectionBehavior.ANY,
        override_reasons=OVERRIDE_REASONS,
        concerns=frozenset(d.resource_id for d in tests),
    )


def _parenteral(m: MedicationExposure) -> bool:
    if m.route.parenteral:
        return True
    return m.route is Route.UNKNOWN and m.classes & B12_PRODUCTS == {DrugClass.HYDROXOCOBALAMIN}


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
