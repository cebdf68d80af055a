"""``folate-before-b12``: folate is being given while B12 deficiency is untreated or unsettled.

Folic acid can correct the anaemia of B12 deficiency while subacute combined degeneration
progresses: B12 is treated first (or with it), never folate alone.

When: a folate (folic acid, folinic acid, methylfolate) is drafted or active at more than
``thresholds.folic_acid_min_mg_per_day`` a day (or an unknown dose); no B12 therapy is
active or drafted; and the B12 status is deficient, functional deficiency, indeterminate, or
unknown with macrocytosis, neurological involvement, or B12 results or blood counts that
could not be retrieved.
Then: critical when deficient, warning otherwise. The card offers the recommended B12
regimen (recommended only once deficiency is established), deleting each folate draft, a
B12 test when the status is unknown, and the second-line test when it is indeterminate (this
card silences ``b12-indeterminate``, the deficiency, symptom, screening and lifelong cards,
so it carries their step). Exceptions, each stated on the card:
- pregnancy prophylaxis (up to ``thresholds.pregnancy_folic_acid_max_mg_per_day``, or no dose
  recorded): never offered for removal, at most warning ("address B12 at the same time"),
  and in pregnancy a deficient total alone is confirmed with active B12 first;
- weekly methotrexate: never offered for removal; info while B12 is unknown (methotrexate
  raises the MCV, and this info card leaves the screening and lifelong warnings standing);
- proven folate deficiency (``thresholds.folate_deficient_below_*``,
  ``thresholds.rbc_folate_deficient_below_*``): never offered for removal; with deficient B12,
  critical "combined deficiency: start B12 now and give the folic acid with it".
With subacute combined degeneration and deficient B12 the card stays critical: it silences
the critical ``b12-deficiency-untreated`` card.
Not when: B12 therapy active or drafted; B12 deficiency unlikely; an unknown status with
nothing that calls for B12; every folate at or below the minimum dose, stopped or completed.
"""

from __future__ import annotations

import re

from ..b12status import B12_STATUS_SETTINGS, B12Status
from ..bands import folate_cutoff
from ..cardtext import CardText
from ..codes import LOINC_ACTIVE_B12, LOINC_DISPLAY, LOINC_MMA, LOINC_TOTAL_B12
from ..evidence import (
    b12_evidence_lines,
    first_neuro_kind,
    malabsorption_causes,
    missing_data,
    neurological_lines,
    renal_mma_caveat,
    stale_reason,
)
from ..facts import DraftLabOrder, LabResult, MedicationExposure
from ..findings import (
    Finding,
    OrderLab,
    OrderMedication,
    OverrideReason,
    RemoveDraft,
    SelectionBehavior,
    Suggestion,
    Wording,
    shorten,
)
from ..picture import ClinicalPicture
from ..regimens import recommended_regimen
from ..resulttext import describe, result_value_text
from ..rule import Rule, summary_of
from ..sources import BNF_HYDROXOCOBALAMIN, CYANOCOBALAMIN_LABEL, NICE_NG239
from ..units import format_number
from ..vocabulary import (
    FOLATES,
    Analyte,
    DataCategory,
    DrugClass,
    Indicator,
)

#: The warning cards the critical and warning cards replace, but the info card of the
#: methotrexate exception must leave standing.
_WARNING_CARDS_KEPT_FOR_METHOTREXATE = frozenset({"b12-screening-due", "b12-lifelong-therapy"})

#: Folates that serve as neural-tube-defect prophylaxis (the pregnancy exception).
_NTD_PROPHYLAXIS = frozenset({DrugClass.FOLIC_ACID, DrugClass.METHYLFOLATE})
_WEEKLY = re.compile(r"weekly|once a week|every week|per week", re.IGNORECASE)

_OVERRIDE_REASONS = (
    OverrideReason("b12-given-elsewhere", "B12 started or given elsewhere"),
    # Offered only when B12 is not deficient (a deficient B12 is not replete).
    OverrideReason("folate-deficiency-b12-replete", "Folate deficiency confirmed and B12 replete"),
    OverrideReason("pregnancy-ntd-prophylaxis", "Pregnancy / NTD prophylaxis"),
    OverrideReason("folic-acid-with-methotrexate", "Folic acid with methotrexate"),
)
_B12_TESTS = frozenset({Analyte.TOTAL_B12, Analyte.ACTIVE_B12})
_HEADLINE = (
    "**Do not give folic acid before B12 is treated**: it can correct the anaemia while "
    "subacute combined degeneration progresses."
)
#: Proven folate deficiency with B12 deficiency: both are given (BNF).
_HEADLINE_COMBINED = (
    "**Combined deficiency: start B12 now and give the folic acid with it** (BNF: never folic "
    "acid alone in undiagnosed megaloblastic anaemia)."
)
#: The exceptions keep the folate, so the card must not tell the clinician to withhold it.
_HEADLINE_KEEP_FOLATE = (
    "**Folate can mask B12 deficiency**: it can correct the anaemia while subacute combined "
    "degeneration progresses."
)


def evaluate(p: ClinicalPicture) -> Finding | None:
    folates = () if p.has_b12_therapy else _folates(p)
    if not folates or not _b12_status_calls_for_it(p):
        return None
    status = p.b12.status
    prophylaxis = {m.resource_id for m in folates if _ntd_prophylaxis(p, m)}
    methotrexate = _weekly_methotrexate(p)
    pregnancy_exception = len(prophylaxis) == len(folates)
    indicator = _indicator(p, pregnancy_exception, bool(methotrexate))
    test_drafts = [d for d in p.facts.draft_labs if d.analytes & _B12_TESTS]
    # Deleting the folate is offered only outside the three exceptions (pregnancy prophylaxis
    # per product; weekly methotrexate; proven folate deficiency).
    keep_all = bool(methotrexate) or p.folate_deficiency is not None
    removable = () if keep_all else tuple(m for m in folates if m.resource_id not in prophylaxis)
    return Finding(
        rule_id=RULE.id,
        indicator=indicator,
        wording=Wording(
            lambda: (
                _summary(p, folates, pregnancy_exception, methotrexate),
                _detail(p, folates, prophylaxis, methotrexate, test_drafts),
            )
        ),
        source=NICE_NG239,
        suggestions=_suggestions(p, removable, test_drafts),
        selection_behavior=SelectionBehavior.ANY,
        override_reasons=tuple(
            r
            for r in _OVERRIDE_REASONS
            if not (status.is_deficient and r.code == "folate-deficiency-b12-replete")
        ),
        concerns=frozenset(m.resource_id for m in folates if m.is_draft),
        supersedes=_supersedes(p, indicator),
    )


def _b12_status_calls_for_it(p: ClinicalPicture) -> bool:
    """Deficient or unsettled B12; an unknown status only with macrocytosis, neurological
    involvement, or B12 results / blood counts that could not be retrieved (they leave
    macrocytosis unknown, not absent: a folate order must still get its warning)."""
    status = p.b12.status
    if status is B12Status.UNLIKELY:
        return False
    data_missing = bool({DataCategory.B12_LABS, DataCategory.BLOOD_COUNTS} & p.facts.missing)
    if status is B12Status.UNKNOWN:
        return p.macrocytosis is not None or bool(p.neurological) or data_missing
    return True


def _indicator(p: ClinicalPicture, pregnancy_exception: bool, methotrexate: bool) -> Indicator:
    status = p.b12.status
    indicator = Indicator.CRITICAL if status.is_deficient else Indicator.WARNING
    if pregnancy_exception:
        indicator = min(indicator, Indicator.WARNING)
    if p.folate_deficiency is not None and status.is_deficient:
        # Proven folate deficiency as well: combined deficiency, the folic acid is needed too.
        indicator = Indicator.CRITICAL
    if methotrexate:
        # Folate with weekly methotrexate prevents its toxicity: warning when B12 is known to
        # be deficient (or unsettled), info while B12 is unknown (methotrexate raises the MCV).
        unknown = status is B12Status.UNKNOWN
        indicator = Indicator.INFO if unknown else min(indicator, Indicator.WARNING)
    if status.is_deficient and p.scd_recorded:
        # This card silences b12-deficiency-untreated, which is critical with SCD.
        indicator = Indicator.CRITICAL
    return indicator


def _suggestions(
    p: ClinicalPicture,
    removable: tuple[MedicationExposure, ...],
    test_drafts: list[DraftLabOrder],
) -> tuple[Suggestion, ...]:
    status = p.b12.status
    # In pregnancy a low *total* B12 alone is not proof (it falls physiologically): confirm
    # with active B12 first unless neurological signs make waiting unsafe (NICE NG239).
    confirm_in_pregnancy = (
        p.pregnant
        and status is B12Status.DEFICIENT
        and p.b12.active is None
        and not p.neurological
        and Analyte.ACTIVE_B12 not in {a for d in p.facts.draft_labs for a in d.analytes}
    )
    # Treatment is the recommended step only when deficiency is established; otherwise the
    # test is, so that accepting everything never starts B12 before the sample is drawn.
    treat_first = status.is_deficient and not confirm_in_pregnancy
    suggestions = [_treatment(p, not status.is_deficient, recommended=treat_first)]
    suggestions += [_removal(m) for m in removable if m.is_draft]
    if status is B12Status.UNKNOWN and not test_drafts:
        suggestions.append(_b12_test())
    if status is B12Status.INDETERMINATE:
        # This card silences b12-indeterminate, so it carries its second-line test.
        suggestions += _second_line_test(p)
    if confirm_in_pregnancy:
        suggestions.append(_active_b12_test())
    return tuple(suggestions)


def _supersedes(p: ClinicalPicture, indicator: Indicator) -> frozenset[str]:
    supersedes = RULE.always_supersedes
    if indicator is not Indicator.INFO:
        supersedes = supersedes | _WARNING_CARDS_KEPT_FOR_METHOTREXATE
    if p.pregnant:
        # One card for B12 in a pregnant patient on folate: this one carries the active B12
        # confirmation that pregnancy-b12 would ask for.
        supersedes = supersedes | {"pregnancy-b12"}
    return supersedes


# --- when ------------------------------------------------------------------------------------
def _folates(p: ClinicalPicture) -> tuple[MedicationExposure, ...]:
    """Active or drafted folates above the minimum daily dose; an unknown dose counts."""
    minimum_ug = p.policy.thresholds.folic_acid_min_mg_per_day * 1000
    found = [
        m
        for m in p.medications_of(*FOLATES)
        if m.dose_ug_per_day is None or m.dose_ug_per_day > minimum_ug
    ]
    # Drafts first: the summary speaks of the order being signed.
    return tuple(sorted(found, key=lambda m: not m.is_draft))


def _ntd_prophylaxis(p: ClinicalPicture, m: MedicationExposure) -> bool:
    if not (p.pregnant or p.planning_pregnancy) or not m.classes & _NTD_PROPHYLAXIS:
        return False
    # Without an interval the amount per dose is the best estimate of the daily dose.
    per_day = m.dose_ug_per_day if m.dose_ug_per_day is not None else m.dose_ug
    limit_ug = p.policy.thresholds.pregnancy_folic_acid_max_mg_per_day * 1000
    return per_day is None or per_day <= limit_ug


def _weekly_methotrexate(p: ClinicalPicture) -> tuple[MedicationExposure, ...]:
    return tuple(
        m
        for m in p.medications_of(DrugClass.METHOTREXATE)
        if (m.interval_days is not None and m.interval_days >= 7) or _WEEKLY.search(m.name)
    )


# --- suggestions -------------------------------------------------------------------------------
def _treatment(p: ClinicalPicture, unknown: bool, *, recommended: bool) -> Suggestion:
    regimen = recommended_regimen(p)
    description = regimen.text
    if unknown:
        description += " Take the blood sample for B12 before the first dose."
    return Suggestion(
        label=f"Order {regimen.label}",
        actions=(OrderMedication(regimen, description),),
        is_recommended=recommended,
    )


def _removal(m: MedicationExposure) -> Suggestion:
    return Suggestion(
        label=f"Remove draft: {m.name}",
        actions=(
            RemoveDraft(
                m.resource_id,
                f"Remove the draft order {m.name}: do not give folate until B12 is treated.",
            ),
        ),
    )


def _b12_test() -> Suggestion:
    return Suggestion(
        label="Order serum vitamin B12",
        actions=(
            OrderLab(
                LOINC_TOTAL_B12,
                LOINC_DISPLAY[LOINC_TOTAL_B12],
                "Serum vitamin B12 (total)",
                note=(
                    "Draw before any B12 is given: results drawn after replacement starts "
                    "cannot confirm or exclude deficiency (NICE NG239)."
                ),
            ),
        ),
        is_recommended=True,
    )


def _active_b12_test() -> Suggestion:
    label = "Order active B12 (holotranscobalamin)"
    return Suggestion(
        label,
        (
            OrderLab(
                LOINC_ACTIVE_B12,
                LOINC_DISPLAY[LOINC_ACTIVE_B12],
                label[6:],
                note=(
                    "Total B12 falls in pregnancy: NICE NG239 recommends active B12 to confirm "
                    "deficiency. Draw before any B12 is given."
                ),
            ),
        ),
        is_recommended=True,
    )


def _second_line_test(p: ClinicalPicture) -> list[Suggestion]:
    drafted = {a for d in p.facts.draft_labs for a in d.analytes}
    note = "Draw before any B12 is given."
    if p.b12.mma is None and Analyte.MMA not in drafted:
        loinc, label = LOINC_MMA, "Order serum methylmalonic acid (MMA)"
    elif (
        p.b12.active is None
        and Analyte.ACTIVE_B12 not in drafted
        # A current MMA here is raised with eGFR < 60; a drafted one is only non-specific then.
        and (p.b12.mma is not None or p.egfr_impaired)
    ):
        loinc, label = LOINC_ACTIVE_B12, "Order active B12 (holotranscobalamin)"
    else:
        return []
    return [
        Suggestion(
            label,
            (OrderLab(loinc, LOINC_DISPLAY[loinc], label[6:], note=note),),
            is_recommended=True,
        )
    ]


# --- card text ---------------------------------------------------------------------------------
def _drug_name(m: MedicationExposure) -> str:
    for cls in (DrugClass.FOLIC_ACID, DrugClass.FOLINIC_ACID, DrugClass.METHYLFOLATE):
        if cls in m.classes:
            return str(cls.value).capitalize()
    return "Folate"


def _analyte_label(analyte: Analyte) -> str:
    labels = {Analyte.ACTIVE_B12: "active B12", Analyte.MMA: "MMA"}
    return labels.get(analyte, "B12")


def _summary(
    p: ClinicalPicture,
    folates: tuple[MedicationExposure, ...],
    prophylaxis: bool,
    methotrexate: tuple[MedicationExposure, ...],
) -> str:
    first = folates[0]
    drug = f"{_drug_name(first)} {'ordered' if first.is_draft else 'being taken'}"
    status = p.b12.status
    key = p.b12.key_result
    if status is B12Status.UNKNOWN or key is None:
        none = (
            "B12 results unavailable"
            if DataCategory.B12_LABS in p.facts.missing
            else "no current B12 result"
        )
        if methotrexate:
            return shorten(f"{_drug_name(first)} with weekly methotrexate, {none}: check B12")
        action = "address B12 at the same time" if prophylaxis else "test B12 first"
        trigger = _unknown_trigger(p)
        if trigger is None:  # data missing, no known trigger: the missing data is the reason
            return shorten(f"{drug}, {none}: {action}")
        return shorten(f"{drug}, {none} and {trigger}: {action}")
    folate_low = p.folate_deficiency
    if status is B12Status.FUNCTIONAL_DEFICIENCY:
        evidence = f"MMA {result_value_text(key)} (functional B12 deficiency)"
    elif status is B12Status.DEFICIENT:
        evidence = f"{_analyte_label(key.analyte)} {result_value_text(key)}"
    else:
        evidence = f"indeterminate {_analyte_label(key.analyte)} {result_value_text(key)}"
    if folate_low is not None and status.is_deficient and not methotrexate:
        folate = f"folate {result_value_text(folate_low)}"
        text = f"Combined deficiency ({evidence}, {folate}): start B12 now, give folic acid with it"
        if len(text) > 139:
            text = f"Combined deficiency ({evidence}): start B12 now, give folic acid with it"
        return shorten(text)
    if methotrexate:
        drug = f"{_drug_name(first)} with weekly methotrexate"
        action = "treat B12, keep the folate" if status.is_deficient else "settle B12, keep folate"
    elif folate_low is not None:
        action = "folate is low too: settle B12 at the same time"
    elif prophylaxis:
        action = "address B12 at the same time"
    elif status.is_deficient:
        action = "treat B12 first"
    else:
        action = "settle or treat B12 first"
    text = f"{drug} with {evidence}: {action}"
    return shorten(text)


def _unknown_trigger(p: ClinicalPicture) -> str | None:
    if p.macrocytosis is not None:
        return f"MCV {result_value_text(p.macrocytosis)}"
    kind = first_neuro_kind(p)
    return f"{kind} recorded" if kind else None


def _detail(
    p: ClinicalPicture,
    folates: tuple[MedicationExposure, ...],
    prophylaxis: set[str],
    methotrexate: tuple[MedicationExposure, ...],
    test_drafts: list[DraftLabOrder],
) -> str:
    a = p.b12
    folate_low = p.folate_deficiency
    keep = len(prophylaxis) == len(folates) or bool(methotrexate) or folate_low is not None
    if folate_low is not None and a.status.is_deficient:
        headline = _HEADLINE_COMBINED
    else:
        headline = _HEADLINE_KEEP_FOLATE if keep else _HEADLINE
    lines = [headline, "", "Folate:", ""]
    lines += [f"- {_folate_line(p, m)}" for m in folates]
    if folate_low is not None:
        lines.append(f"- {_folate_result_line(p, folate_low)}")
    lines += ["", f"B12 status: **{a.status.value}**.", ""]
    evidence = b12_evidence_lines(p)
    if evidence:
        lines += evidence + [""]
    if a.conflict:
        lines += [f"Conflicting results: {a.conflict}", ""]
    if a.status is B12Status.UNKNOWN:
        lines += _unknown_lines(p, test_drafts)
    if renal := renal_mma_caveat(p, ", so it does not settle B12 status."):
        lines.append(renal)
    lines += neurological_lines(p)
    if p.scd_recorded:
        lines.append("Subacute combined degeneration is recorded: start B12 without delay.")
    if p.macrocytosis is not None:
        lines.append(f"Macrocytosis: MCV {describe(p.macrocytosis)}.")
    if p.has_malabsorption_cause:
        lines.append(
            f"Malabsorption cause: {malabsorption_causes(p)}: B12 treatment is lifelong; keep the "
            "maintenance injections going after loading."
        )
    lines.append("No B12 therapy is active or among the draft orders.")
    if prophylaxis:
        undosed = any(m.dose_ug is None for m in folates if m.resource_id in prophylaxis)
        lines += ["", _pregnancy_text(p, undosed)]
    if methotrexate:
        names = ", ".join(f"{m.name} ({m.resource_id})" for m in methotrexate)
        if a.status is B12Status.UNKNOWN:
            tail = (
                "methotrexate itself can raise the MCV, so this is for information only while "
                "B12 is unknown: check B12 rather than stop the folate."
            )
        else:
            tail = "do not stop it: treat or settle B12 alongside."
        lines += [
            "",
            f"Weekly methotrexate: {names}. Folate taken with weekly methotrexate prevents its "
            f"toxicity; {tail}",
        ]
    if folate_low is not None and not a.status.is_deficient:
        lines += [
            "",
            "Folate deficiency is proven, so the folate is not offered for removal; B12 is not "
            "settled: settle it now, before or alongside the folate, never folate alone for "
            "long.",
        ]
    missing = missing_data(
        p, DataCategory.B12_LABS, DataCategory.MEDICATIONS, DataCategory.BLOOD_COUNTS
    )
    if missing:
        lines += [
            "",
            f"{missing}. Check the record (B12 may already be given or measured elsewhere).",
        ]
    text = CardText(*lines)
    return text.source(NICE_NG239, BNF_HYDROXOCOBALAMIN, CYANOCOBALAMIN_LABEL).text()


def _folate_line(p: ClinicalPicture, m: MedicationExposure) -> str:
    if m.dose_ug_per_day is not None:
        dose = f"{format_number(m.dose_ug_per_day / 1000)} mg/day"
    elif m.dose_ug is not None:
        dose = f"{format_number(m.dose_ug / 1000)} mg per dose"
    else:
        dose = "dose not recorded"
    kind = "draft order" if m.is_draft else f"{m.status} medication"
    return f"{m.name}, {dose}, {kind} ({m.resource_id})"


def _folate_result_line(p: ClinicalPicture, result: LabResult) -> str:
    name = "red-cell folate" if result.analyte is Analyte.RBC_FOLATE else "serum folate"
    cutoff, unit = folate_cutoff(result, p.policy)
    limit = f"{format_number(cutoff)} {unit}"
    return f"{name} {describe(result)}: deficient (below {limit}, BSH 2014)"


def _unknown_lines(p: ClinicalPicture, test_drafts: list[DraftLabOrder]) -> list[str]:
    months = p.policy.windows.lookback_months
    lines = [f"No diagnostic B12 result in the last {months} months."]
    stale = p.stale_b12
    if stale is not None:
        why = stale_reason(p, stale)
        lines.append(f"Last B12 result: {describe(stale)}, {why}.")
    if test_drafts:
        names = ", ".join(f"{d.name} ({d.resource_id})" for d in test_drafts)
        lines.append(f"A B12 test is among the draft orders: {names}.")
    lines.append("Take the B12 sample before any B12 is given.")
    return lines


def _pregnancy_text(p: ClinicalPicture, undosed: bool) -> str:
    who = "Pregnant" if p.pregnant else "Planning pregnancy"
    limit = format_number(p.policy.thresholds.pregnancy_folic_acid_max_mg_per_day)
    text = (
        f"{who}: folic acid up to {limit} mg a day is neural-tube-defect prophylaxis. **Do not "
        "stop it: address B12 at the same time.** In pregnancy, review 1 month after starting "
        "B12 treatment (NICE NG239)."
    )
    if undosed:
        text += " A folate without a recorded dose is presumed to be prophylaxis."
    return text


RULE = Rule(
    id="folate-before-b12",
    title="Folate ordered or taken while B12 deficiency is untreated",
    summary=summary_of(__doc__),
    sources=(NICE_NG239, BNF_HYDROXOCOBALAMIN, CYANOCOBALAMIN_LABEL),
    indicators=(Indicator.CRITICAL, Indicator.WARNING, Indicator.INFO),
    settings=(
        *B12_STATUS_SETTINGS,
        "thresholds.folic_acid_min_mg_per_day",
        "thresholds.pregnancy_folic_acid_max_mg_per_day",
        "thresholds.mcv_macrocytosis_above_fl",
        "windows.lookback_months",
        "neurological_involvement",
        "formulary",
        "windows.neuro_loading_review_weeks",
        "thresholds.folate_deficient_below_ng_ml",
        "thresholds.folate_deficient_below_nmol_l",
        "thresholds.rbc_folate_deficient_below_ng_ml",
        "thresholds.rbc_folate_deficient_below_nmol_l",
    ),
    evaluate=evaluate,
    # One card per problem: the deficiency, test and symptom cards this one replaces.
    always_supersedes=frozenset(
        {"b12-deficiency-untreated", "b12-indeterminate", "b12-normal-but-symptomatic"}
    ),
    supersedes=frozenset(
        {
            "b12-deficiency-untreated",
            "b12-indeterminate",
            "b12-normal-but-symptomatic",
            "b12-screening-due",
            "b12-lifelong-therapy",
            "pregnancy-b12",
        }
    ),
)
