"""``b12-regimen-check``: a drafted B12 order that does not fit the patient.

rule book §3: "A B12 product is in the draft orders and it does not fit: oral or
sublingual product with neurological involvement; oral dose < 1000 µg/day with a malabsorption
cause; one-off or interval > 3 months IM without loading" -> "Oral B12 is not the preferred
route with neurological involvement: use the IM regimen." warning; "replace (delete draft +
create) with the matching IM regimen".

Sources: NICE NG239 (oral vs IM by situation; IM with neurological involvement or
malabsorption); BNF hydroxocobalamin (loading, then maintenance); AAFP 2025.

When: a B12 product (cyanocobalamin, hydroxocobalamin, methylcobalamin) is among the draft
orders (stop orders excluded) and at least one of:

- **route**: it is oral or sublingual and neurological involvement is recorded (the site's set;
  headache / back pain are *possible* involvement and the card says so plainly);
- **dose**: it is oral or sublingual, a malabsorption cause is recorded and the dose is below
  ``thresholds.oral_min_ug_per_day_malabsorption`` (1000 µg/day). A dose without a frequency
  is read as once daily (the usual oral order; a higher frequency would have to be stated);
- **no loading**: it is parenteral (IM / SC / IV), the patient has no loading phase, and the
  order is a one-off (``count == 1``, or no repeat schedule at all) or repeats less often than
  every ``windows.im_max_interval_months`` (3) months. "A loading phase" is: active B12 therapy
  (``p.b12_therapy``), a non-draft parenteral B12 exposure started within the look-back window
  (a course completed recently: UK practice often orders each maintenance injection as a
  one-off), or another drafted parenteral B12 order given at least weekly (the loading course
  drafted alongside the maintenance order).

Then: warning. The summary names the most important misfit (route, then dose, then loading),
the detail lists every misfit with the evidence. One suggestion, recommended, ``at-most-one``:
delete every misfitting draft and order ``regimens.recommended_regimen(p)`` (the neurological
IM regimen with neurological involvement, else the standard IM regimen). ``concerns``: the
misfitting drafts. ``supersedes`` ``cyanocobalamin-renal`` when the replacement is
hydroxocobalamin and it removes every cyanocobalamin draft (the replacement already fixes it).

Not when: no B12 draft; the draft fits; the route is unknown (nothing to judge: the adapter
reads route from the dosage, its text or the product name); an oral dose is unknown (no dose
and no strength in the name); an oral product with neither neurological involvement nor a
malabsorption cause (oral 1000-2000 µg daily is a NICE option then); a parenteral order with a
loading phase as above.
"""

from __future__ import annotations

from ..dates import DAYS_PER_MONTH
from ..facts import MedicationExposure
from ..findings import (
    Finding,
    OrderMedication,
    RemoveDraft,
    SelectionBehavior,
    Suggestion,
    shorten,
)
from ..picture import ClinicalPicture
from ..regimens import recommended_regimen
from ..rule import Rule, summary_of
from ..sources import AAFP_2025, BNF_HYDROXOCOBALAMIN, NICE_NG239
from ..units import format_number
from ..vocabulary import DataCategory, DrugClass, Indicator, Route

_ENTERAL = (Route.ORAL, Route.SUBLINGUAL)
#: A drafted parenteral order given at least this often is a loading course (BNF: alternate
#: days, or three times a week, for the first weeks).
_LOADING_MAX_INTERVAL_DAYS = 7.0

# Misfit kinds, most important first (the summary names the first).
_ROUTE, _DOSE, _ONE_OFF, _INTERVAL = "route", "dose", "one-off", "interval"
_ORDER = (_ROUTE, _DOSE, _ONE_OFF, _INTERVAL)


def evaluate(p: ClinicalPicture) -> Finding | None:
    misfits: dict[str, list[str]] = {}  # draft id -> misfit kinds
    drafts = {m.resource_id: m for m in p.b12_drafts}
    loading = _has_loading(p)
    for m in p.b12_drafts:
        kinds = _misfits(p, m, loading)
        if kinds:
            misfits[m.resource_id] = kinds
    if not misfits:
        return None

    regimen = recommended_regimen(p)
    first_id, first_kind = min(
        ((rid, kind) for rid, kinds in misfits.items() for kind in kinds),
        key=lambda item: _ORDER.index(item[1]),
    )
    summary = shorten(_summary(p, drafts[first_id], first_kind, regimen))

    lines = ["This drafted B12 order does not fit the clinical situation:", ""]
    for rid, kinds in misfits.items():
        m = drafts[rid]
        lines.append(f"- **{m.name}** ({rid}), {_order_text(m)}:")
        for kind in kinds:
            lines.append(f"  - {_reason(p, m, kind)}")
    lines.append("")
    if p.neurological and p.neuro_possible_only:
        names = ", ".join(sorted({c.name for c in p.neurological}))
        lines += [
            f"Neurological involvement rests on {names} only: the product brief treats it as "
            "neurological involvement; NICE/BNF reserve the intensive regimen for neuropathy, "
            "myelopathy, cognitive or optic signs. Confirm clinically.",
            "",
        ]
    lines += [f"Suggested instead: {regimen.text}", ""]
    if DataCategory.MEDICATIONS in p.facts.missing:
        lines += [
            "Current medications could not be obtained: existing B12 therapy (a completed "
            "loading course) may not be visible here.",
            "",
        ]
    lines.append(f"Source: {NICE_NG239.label}; {BNF_HYDROXOCOBALAMIN.label}; {AAFP_2025.label}.")

    actions: list = [
        RemoveDraft(rid, f"Delete the drafted order: {drafts[rid].name}") for rid in misfits
    ]
    actions.append(OrderMedication(regimen, regimen.text))
    suggestion = Suggestion(
        label=f"Replace with {regimen.label}", actions=tuple(actions), is_recommended=True
    )

    supersedes: frozenset[str] = frozenset()
    cyano_drafts = {m.resource_id for m in p.b12_drafts if DrugClass.CYANOCOBALAMIN in m.classes}
    if regimen.drug is DrugClass.HYDROXOCOBALAMIN and cyano_drafts <= misfits.keys():
        supersedes = frozenset({"cyanocobalamin-renal"})

    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.WARNING,
        summary=summary,
        detail="\n".join(lines),
        source=NICE_NG239,
        suggestions=(suggestion,),
        selection_behavior=SelectionBehavior.AT_MOST_ONE,
        concerns=frozenset(misfits),
        supersedes=supersedes,
    )


def _misfits(p: ClinicalPicture, m: MedicationExposure, loading: frozenset[str]) -> list[str]:
    kinds: list[str] = []
    if m.route in _ENTERAL:
        if p.neurological:
            kinds.append(_ROUTE)
        per_day = _oral_ug_per_day(m)
        if (
            p.has_malabsorption_cause
            and per_day is not None
            and per_day < p.policy.thresholds.oral_min_ug_per_day_malabsorption
        ):
            kinds.append(_DOSE)
    elif m.route.parenteral and not (loading - {m.resource_id}):
        if _one_off(m):
            kinds.append(_ONE_OFF)
        elif m.interval_days is not None and m.interval_days > _max_interval_days(p):
            kinds.append(_INTERVAL)
    return kinds


def _has_loading(p: ClinicalPicture) -> frozenset[str]:
    """Ids of the evidence of a loading phase (see the module docstring)."""
    ids = {m.resource_id for m in p.b12_therapy}
    for m in p.facts.medications:
        if not m.is_b12_product or not m.route.parenteral:
            continue
        if not m.is_draft and m.start is not None and m.start >= p.window_start:
            ids.add(m.resource_id)
        elif (
            m.is_draft
            and m.active
            and m.interval_days is not None
            and m.interval_days <= _LOADING_MAX_INTERVAL_DAYS
            and m.count != 1
        ):
            ids.add(m.resource_id)
    return frozenset(ids)


def _one_off(m: MedicationExposure) -> bool:
    """docs/rulebook.md "one-off": a single administration, or no repeat schedule at all."""
    return m.count == 1 or (m.interval_days is None and m.count is None)


def _max_interval_days(p: ClinicalPicture) -> float:
    return p.policy.windows.im_max_interval_months * DAYS_PER_MONTH


def _oral_ug_per_day(m: MedicationExposure) -> float | None:
    if m.dose_ug is None:
        return None
    if m.interval_days is None:
        return m.dose_ug  # no frequency stated: read as once daily (docstring)
    return m.dose_ug_per_day


def _ug(value: float) -> str:
    return f"{format_number(value)} micrograms"


def _route_word(m: MedicationExposure) -> str:
    return "Sublingual" if m.route is Route.SUBLINGUAL else "Oral"


def _summary(p: ClinicalPicture, m: MedicationExposure, kind: str, regimen) -> str:
    # The first clause only: a bounded loading phase goes on "; review at 3 weeks; ...".
    first_phase = regimen.phases[0].text.split(";")[0]
    if kind == _ROUTE:
        if p.neuro_possible_only:
            names = ", ".join(sorted({c.name for c in p.neurological}))
            return (
                f"{_route_word(m)} B12 is not the preferred route with possible neurological "
                f"involvement ({names}): use the IM regimen."
            )
        return (
            f"{_route_word(m)} B12 is not the preferred route with neurological involvement: "
            "use the IM regimen."
        )
    if kind == _DOSE:
        cause = p.malabsorption[0].name if p.malabsorption else "a positive IF antibody"
        if cause[:2].istitle():
            cause = cause[0].lower() + cause[1:]  # "Pernicious anaemia" mid-sentence
        per_day = format_number(_oral_ug_per_day(m))
        return (
            f"{_route_word(m)} B12 {per_day} micrograms/day is too low with {cause}: "
            "use the IM regimen."
        )
    if kind == _ONE_OFF:
        return f"Single B12 injection without a loading course: use the IM regimen ({first_phase})."
    return (
        f"B12 injection every {_months(m.interval_days)} months without a loading course: "
        f"use the IM regimen ({first_phase})."
    )


def _reason(p: ClinicalPicture, m: MedicationExposure, kind: str) -> str:
    if kind == _ROUTE:
        evidence = "; ".join(f"{c.name} ({c.resource_id})" for c in p.neurological)
        return (
            f"{_route_word(m).lower()} route with neurological involvement: {evidence}. NICE "
            "NG239 and the BNF give IM hydroxocobalamin on alternate days until no further "
            "improvement when there are neurological features."
        )
    if kind == _DOSE:
        evidence = "; ".join(f"{c.name} ({c.resource_id})" for c in p.malabsorption)
        if not evidence and p.if_antibody_positive is not None:
            evidence = f"intrinsic factor antibody positive ({p.if_antibody_positive.resource_id})"
        assumed = " (no frequency stated: read as once daily)" if m.interval_days is None else ""
        minimum = p.policy.thresholds.oral_min_ug_per_day_malabsorption
        return (
            f"{_ug(_oral_ug_per_day(m))} a day{assumed} with a malabsorption cause: {evidence}. "
            f"Below {_ug(minimum)} a day too little is absorbed without intrinsic factor; "
            "IM replacement is the dependable route."
        )
    if kind == _ONE_OFF:
        what = "a single dose (count 1)" if m.count == 1 else "no repeat schedule (a single dose)"
        return (
            f"the order has {what} and the patient has no loading course or current B12 "
            "therapy: one injection does not replete body stores."
        )
    months = p.policy.windows.im_max_interval_months
    return (
        f"injections every {_months(m.interval_days)} months "
        f"(longer than {months} months) with no loading course or current B12 therapy: a "
        "maintenance interval without loading leaves stores empty."
    )


def _months(days: float) -> str:
    months = days / DAYS_PER_MONTH
    return str(round(months)) if abs(months - round(months)) < 0.1 else f"{months:.1f}"


def _order_text(m: MedicationExposure) -> str:
    parts = [m.route.value]
    if m.dose_ug is not None:
        parts.append(_ug(m.dose_ug))
    if m.interval_days is not None:
        days = m.interval_days
        parts.append("daily" if days == 1 else f"every {format_number(days)} days")
    if m.count is not None:
        parts.append(f"{m.count} dose{'s' if m.count != 1 else ''}")
    return ", ".join(parts)


RULE = Rule(
    id="b12-regimen-check",
    title="Drafted B12 order that does not fit the clinical situation",
    summary=summary_of(__doc__),
    sources=(NICE_NG239, BNF_HYDROXOCOBALAMIN, AAFP_2025),
    indicators=(Indicator.WARNING,),
    settings=(
        "thresholds.oral_min_ug_per_day_malabsorption",
        "windows.im_max_interval_months",
        "windows.lookback_months",
        "neurological_involvement",
        "formulary",
        "windows.neuro_loading_review_weeks",
    ),
    evaluate=evaluate,
    supersedes=frozenset({"cyanocobalamin-renal"}),
)
