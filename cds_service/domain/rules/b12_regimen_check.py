"""``b12-regimen-check``: a drafted B12 order that does not fit the patient.

NICE and the BNF choose the route and dose by situation: IM with neurological involvement
or a malabsorption cause, an oral dose high enough when absorption is impaired, and a
loading course before maintenance injections.

When: a B12 draft (not a stop order) misfits in at least one way:
- route: oral or sublingual with neurological involvement (``neurological_involvement``;
  headache or back pain alone is said to be *possible* involvement);
- dose: oral or sublingual below ``thresholds.oral_min_ug_per_day_malabsorption`` a day with
  a malabsorption cause (a dose without a frequency is read as once daily);
- no loading: parenteral, with no loading phase, and a one-off or less often than every
  ``windows.im_max_interval_months``. A loading phase is active B12 therapy, a taken
  parenteral product started within ``windows.lookback_months`` (clinics often record each
  maintenance injection as a one-off), or a weekly-or-more drafted parenteral course.
Then: warning; the summary names the most important misfit (route, dose, loading), the
detail lists each. One recommended suggestion deletes every misfitting draft and orders the
recommended regimen (neurological with involvement, else standard; ``formulary``,
``windows.neuro_loading_review_weeks``). When that replacement is hydroxocobalamin and it
removes every cyanocobalamin draft, it silences ``cyanocobalamin-renal``.
Not when: no B12 draft; the draft fits; an unknown route or oral dose (nothing to judge); an
oral product with neither neurological involvement nor a malabsorption cause (a NICE option).
"""

from __future__ import annotations

from ..cardtext import CardText
from ..dates import DAYS_PER_MONTH
from ..facts import MedicationExposure
from ..findings import (
    Action,
    Finding,
    OrderMedication,
    Regimen,
    RemoveDraft,
    SelectionBehavior,
    Suggestion,
    Wording,
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
    drafts = {m.resource_id: m for m in p.b12_drafts}
    loading = _has_loading(p)
    misfits = {
        m.resource_id: kinds for m in p.b12_drafts if (kinds := _misfits(p, m, loading))
    }  # draft id -> misfit kinds
    if not misfits:
        return None
    regimen = recommended_regimen(p)
    first_id, first_kind = min(
        ((rid, kind) for rid, kinds in misfits.items() for kind in kinds),
        key=lambda item: _ORDER.index(item[1]),
    )
    actions: list[Action] = [
        RemoveDraft(rid, f"Delete the drafted order: {drafts[rid].name}") for rid in misfits
    ]
    actions.append(OrderMedication(regimen, regimen.text))
    suggestion = Suggestion(f"Replace with {regimen.label}", tuple(actions), is_recommended=True)
    supersedes: frozenset[str] = frozenset()
    cyano_drafts = {m.resource_id for m in p.b12_drafts if DrugClass.CYANOCOBALAMIN in m.classes}
    if regimen.drug is DrugClass.HYDROXOCOBALAMIN and cyano_drafts <= misfits.keys():
        # The replacement already answers the renal card.
        supersedes = frozenset({"cyanocobalamin-renal"})
    return Finding(
        rule_id=RULE.id,
        indicator=Indicator.WARNING,
        wording=Wording(
            lambda: (
                shorten(_summary(p, drafts[first_id], first_kind, regimen)),
                _detail(p, drafts, misfits, regimen),
            )
        ),
        source=NICE_NG239,
        suggestions=(suggestion,),
        selection_behavior=SelectionBehavior.AT_MOST_ONE,
        concerns=frozenset(misfits),
        supersedes=supersedes,
    )


def _detail(
    p: ClinicalPicture,
    drafts: dict[str, MedicationExposure],
    misfits: dict[str, list[str]],
    regimen: Regimen,
) -> str:
    text = CardText("This drafted B12 order does not fit the clinical situation:", "")
    for rid, kinds in misfits.items():
        m = drafts[rid]
        text.bullets([f"**{m.name}** ({rid}), {_order_text(m)}:"])
        text.lines(f"  - {_reason(p, m, kind)}" for kind in kinds)
    text.blank()
    if p.neurological and p.neuro_possible_only:
        names = ", ".join(sorted({c.name for c in p.neurological}))
        text.paragraph(
            f"Neurological involvement rests on {names} only: the product brief treats it as "
            "neurological involvement; NICE/BNF reserve the intensive regimen for neuropathy, "
            "myelopathy, cognitive or optic signs. Confirm clinically."
        )
    text.paragraph(f"Suggested instead: {regimen.text}")
    if DataCategory.MEDICATIONS in p.facts.missing:
        text.paragraph(
            "Current medications could not be obtained: existing B12 therapy (a completed "
            "loading course) may not be visible here."
        )
    return text.source(NICE_NG239, BNF_HYDROXOCOBALAMIN, AAFP_2025, blank_before=False).text()


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


def _ug(value: float | None) -> str:
    return f"{_number(value)} micrograms"


def _route_word(m: MedicationExposure) -> str:
    return "Sublingual" if m.route is Route.SUBLINGUAL else "Oral"


def _summary(p: ClinicalPicture, m: MedicationExposure, kind: str, regimen: Regimen) -> str:
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
        per_day = _number(_oral_ug_per_day(m))
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


def _number(value: float | None) -> str:
    """A dose or interval the misfit test has already read (never ``None`` there)."""
    return format_number(value) if value is not None else "an unstated number of"


def _months(days: float | None) -> str:
    if days is None:
        return _number(days)
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
