"""Safety properties of the product, checked on the rule modules themselves.

These are the promises a clinician relies on, swept across values and clinical contexts rather
than single examples (rule book §§1-4):

1. Folic acid being ordered with deficient B12 and no B12 therapy is always a critical card.
2. The pregnancy exception never suggests removing the folic acid.
3. A B12-family result drawn after B12 therapy began never makes deficiency "unlikely".
4. A lower B12 value is never less severe (and a higher MMA never less severe).

The engine is wired elsewhere; where a property concerns what the clinician finally sees,
supersession is emulated here the way the engine applies it (a finding's ``supersedes`` silences
those rules).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds_service.domain.b12status import B12Status
from cds_service.domain.findings import RemoveDraft
from cds_service.domain.rules import (
    b12_deficiency_untreated,
    b12_indeterminate,
    b12_normal_but_symptomatic,
    folate_before_b12,
)
from cds_service.domain.vocabulary import Indicator, Route
from tests.builders import (
    Analyte,
    ConditionKind,
    DrugClass,
    active_b12,
    b12,
    condition,
    days_ago,
    draft,
    folic_acid_draft,
    lab,
    med,
    mma,
    months_ago,
    picture,
)

MY_RULES = (
    folate_before_b12,
    b12_deficiency_untreated,
    b12_indeterminate,
    b12_normal_but_symptomatic,
)


def severity(finding) -> int:
    return 0 if finding is None else int(finding.indicator)


def shown_severity(items, rules=MY_RULES) -> int:
    """The most urgent card left after supersession among ``rules`` (0 when none)."""
    p = picture(*items)
    findings = [f for f in (rule.evaluate(p) for rule in rules) if f is not None]
    silenced = {rule_id for f in findings for rule_id in f.supersedes}
    return max((int(f.indicator) for f in findings if f.rule_id not in silenced), default=0)


def weekly_methotrexate():
    return med(DrugClass.METHOTREXATE, name="Methotrexate 15 mg weekly", interval_days=7)


# Clinical contexts that must not change property 1 (pregnancy is the documented exception).
CONTEXTS = {
    "none": lambda: (),
    "paraesthesia": lambda: (condition(ConditionKind.PARAESTHESIA),),
    "headache only": lambda: (condition(ConditionKind.HEADACHE),),
    "macrocytosis": lambda: (lab(Analyte.MCV, 110),),
    "anaemia": lambda: (lab(Analyte.HAEMOGLOBIN, 9),),
    "pernicious anaemia": lambda: (condition(ConditionKind.PERNICIOUS_ANAEMIA),),
    "SCD": lambda: (condition(ConditionKind.SUBACUTE_COMBINED_DEGENERATION),),
    "eGFR 40": lambda: (lab(Analyte.EGFR, 40),),
    "weekly methotrexate": lambda: (weekly_methotrexate(),),
    "stale normal B12": lambda: (b12(900, days=500),),
}

DEFICIENT = {
    **{f"{v} ng/L": (lambda v=v: (b12(v),)) for v in (50, 100, 150, 179, 179.9)},
    **{f"{v} pg/mL": (lambda v=v: (b12(v, "pg/mL"),)) for v in (60, 179.9)},
    **{f"{v} pmol/L": (lambda v=v: (b12(v, "pmol/L"),)) for v in (37, 100, 132.9)},
    **{f"active {v}": (lambda v=v: (active_b12(v),)) for v in (5, 15, 24.9)},
    "active 20 with normal total": lambda: (active_b12(20), b12(450)),
    "MMA 500 with indeterminate total": lambda: (mma(500), b12(250)),
}

FOLATES = {
    "folic acid 5 mg draft": lambda: folic_acid_draft(5),
    "folic acid 0.4 mg draft": lambda: folic_acid_draft(0.4),
    "folic acid, dose unknown": lambda: draft(DrugClass.FOLIC_ACID, name="Folic acid"),
    "folinic acid draft": lambda: draft(DrugClass.FOLINIC_ACID, dose_ug=15000, interval_days=1),
    "methylfolate draft": lambda: draft(DrugClass.METHYLFOLATE, dose_ug=1000, interval_days=1),
}


# --- 1. folic acid with deficient B12 is always critical ----------------------------------------
@pytest.mark.parametrize("folate", FOLATES, ids=str)
@pytest.mark.parametrize(
    "context, result",
    [
        (c, r)
        for c in CONTEXTS
        for r in DEFICIENT
        # A raised MMA with eGFR < 60 is not specific, so not deficiency (rule book §2).
        if not (r.startswith("MMA") and c == "eGFR 40")
        # Folic acid with weekly methotrexate is the stated exception (property 1b).
        and c != "weekly methotrexate"
    ],
    ids=str,
)
def test_folic_acid_with_deficient_b12_and_no_b12_therapy_is_always_critical(
    context, result, folate
):
    items = (*DEFICIENT[result](), *CONTEXTS[context](), FOLATES[folate]())
    p = picture(*items)
    assert p.b12.status.is_deficient and not p.has_b12_therapy
    finding = folate_before_b12.evaluate(p)
    assert finding is not None and finding.indicator is Indicator.CRITICAL
    # ... and it is the card the clinician sees: nothing of ours silences it.
    assert shown_severity(items) == Indicator.CRITICAL


# --- 1b. with weekly methotrexate: a warning that never offers to stop the folate -------------
@pytest.mark.parametrize("folate", FOLATES, ids=str)
@pytest.mark.parametrize("result", DEFICIENT, ids=str)
def test_folic_acid_with_weekly_methotrexate_and_deficient_b12_is_a_warning_that_keeps_it(
    result, folate
):
    items = (*DEFICIENT[result](), weekly_methotrexate(), FOLATES[folate]())
    finding = folate_before_b12.evaluate(picture(*items))
    assert finding is not None and finding.indicator is Indicator.WARNING
    assert not [a for s in finding.suggestions for a in s.actions if isinstance(a, RemoveDraft)]
    assert shown_severity(items) >= Indicator.WARNING


# --- 2. the pregnancy exception never suggests removing folic acid -------------------------------
B12_SITUATIONS = {
    "deficient": lambda: (b12(118),),
    "active deficient": lambda: (active_b12(15),),
    "functional": lambda: (b12(250), mma(600)),
    "indeterminate": lambda: (b12(250),),
    "unknown with macrocytosis": lambda: (lab(Analyte.MCV, 112),),
    "unknown with neuropathy": lambda: (condition(ConditionKind.PERIPHERAL_NEUROPATHY),),
}
PREGNANCY = {
    "pregnant (condition)": lambda: ({}, (condition(ConditionKind.PREGNANCY),)),
    "pregnant (observation)": lambda: ({"pregnancy_observed": True}, ()),
    "planning pregnancy": lambda: ({}, (condition(ConditionKind.PRECONCEPTION),)),
}
PROPHYLAXIS = {
    **{f"{mg} mg/day": (lambda mg=mg: folic_acid_draft(mg)) for mg in (0.4, 1, 4, 5)},
    "dose unknown": lambda: draft(DrugClass.FOLIC_ACID, name="Folic acid 400 mcg"),
    "5 mg weekly": lambda: draft(
        DrugClass.FOLIC_ACID, name="Folic acid 5 mg", dose_ug=5000, interval_days=7
    ),
}
EXTRA = {
    "none": lambda: (),
    "SCD": lambda: (condition(ConditionKind.SUBACUTE_COMBINED_DEGENERATION),),
    "weekly methotrexate": lambda: (weekly_methotrexate(),),
    "second folate statement": lambda: (
        med(DrugClass.FOLIC_ACID, name="Pregnacare", dose_ug=400, interval_days=1),
    ),
}


@pytest.mark.parametrize("extra", EXTRA, ids=str)
@pytest.mark.parametrize("folate", PROPHYLAXIS, ids=str)
@pytest.mark.parametrize("pregnancy", PREGNANCY, ids=str)
@pytest.mark.parametrize("situation", B12_SITUATIONS, ids=str)
def test_pregnancy_exception_never_suggests_removing_folic_acid(
    situation, pregnancy, folate, extra
):
    kw, pregnancy_items = PREGNANCY[pregnancy]()
    drafted = PROPHYLAXIS[folate]()
    p = picture(*B12_SITUATIONS[situation](), *pregnancy_items, *EXTRA[extra](), drafted, **kw)
    finding = folate_before_b12.evaluate(p)
    assert finding is not None
    removals = [a for s in finding.suggestions for a in s.actions if isinstance(a, RemoveDraft)]
    assert removals == []
    scd_deficient = extra == "SCD" and p.b12.status.is_deficient
    if not scd_deficient:
        assert finding.indicator <= Indicator.WARNING
    assert "address B12 at the same time" in finding.detail or finding.indicator is Indicator.INFO
    # No other card of ours removes it either.
    for rule in MY_RULES:
        other = rule.evaluate(p)
        if other is not None:
            assert not any(
                isinstance(a, RemoveDraft) and a.resource_id == drafted.resource_id
                for s in other.suggestions
                for a in s.actions
            )


# --- 3. results drawn on B12 therapy never rule deficiency out ---------------------------------
THERAPIES = {
    "IM started 6 months ago": lambda: med(
        DrugClass.HYDROXOCOBALAMIN, route=Route.INTRAMUSCULAR, start=months_ago(6)
    ),
    "completed course 11 months ago": lambda: med(
        DrugClass.CYANOCOBALAMIN, status="completed", start=months_ago(11)
    ),
    "oral, no start date": lambda: med(DrugClass.CYANOCOBALAMIN, route=Route.ORAL),
    "started the day of the test": lambda: med(DrugClass.METHYLCOBALAMIN, start=days_ago(20)),
}
ON_THERAPY_RESULTS = {
    **{f"total {v} ng/L": (lambda v=v: (b12(v, days=20),)) for v in (90, 250, 351, 800, 2000)},
    **{f"total {v} pmol/L": (lambda v=v: (b12(v, "pmol/L", days=20),)) for v in (259, 1000)},
    **{f"active {v}": (lambda v=v: (active_b12(v, days=20),)) for v in (20, 71, 150)},
    **{f"MMA {v}": (lambda v=v: (mma(v, days=20),)) for v in (100, 270, 600)},
    "all three normal": lambda: (b12(900, days=20), active_b12(120, days=20), mma(120, days=20)),
}


@pytest.mark.parametrize("results", ON_THERAPY_RESULTS, ids=str)
@pytest.mark.parametrize("therapy", THERAPIES, ids=str)
def test_result_drawn_after_b12_therapy_began_never_makes_status_unlikely(therapy, results):
    p = picture(THERAPIES[therapy](), *ON_THERAPY_RESULTS[results]())
    assert p.b12.status is not B12Status.UNLIKELY
    # It rules deficiency neither in nor out: no diagnostic evidence at all.
    assert p.b12.status is B12Status.UNKNOWN


@pytest.mark.parametrize(
    "normal_after",
    [b12(900, days=20), active_b12(120, days=20), mma(100, days=20)],
    ids=["total", "active", "MMA"],
)
# Without a start date no result can be shown to predate therapy: those have no "before".
@pytest.mark.parametrize("therapy", [t for t in THERAPIES if t != "oral, no start date"], ids=str)
def test_normal_result_on_therapy_never_overrules_an_earlier_deficient_one(therapy, normal_after):
    therapy_started = THERAPIES[therapy]()
    before = b12(120, when=therapy_started.start - timedelta(days=3))
    p = picture(therapy_started, before, normal_after)
    assert p.b12.status is B12Status.DEFICIENT


# --- 4. monotonic severity ---------------------------------------------------------------------
NG_L = sorted({*range(50, 601, 5), 179.9, 180, 350, 350.1})
PMOL_L = sorted({*range(30, 451, 3), 132.9, 133, 258, 258.1})
ACTIVE = sorted({*range(2, 121, 2), 24.9, 25, 70, 70.1})

MONOTONIC_CONTEXTS = {
    **CONTEXTS,
    "pregnant": lambda: (condition(ConditionKind.PREGNANCY),),
    "paraesthesia and macrocytosis": lambda: (
        condition(ConditionKind.PARAESTHESIA),
        lab(Analyte.MCV, 110),
    ),
}


def assert_non_increasing(values, severities):
    pairs = list(zip(values, severities))
    for (low_value, low_sev), (high_value, high_sev) in zip(pairs, pairs[1:]):
        assert (
            high_sev <= low_sev
        ), f"B12 {high_value} gives severity {high_sev} but the lower {low_value} gives {low_sev}"


@pytest.mark.parametrize(
    "make, values",
    [(lambda v: b12(v), NG_L), (lambda v: b12(v, "pmol/L"), PMOL_L), (active_b12, ACTIVE)],
    ids=["total ng/L", "total pmol/L", "active pmol/L"],
)
@pytest.mark.parametrize("context", MONOTONIC_CONTEXTS, ids=str)
def test_folate_card_never_less_severe_for_a_lower_b12(context, make, values):
    severities = [
        severity(
            folate_before_b12.evaluate(
                picture(make(v), folic_acid_draft(5), *MONOTONIC_CONTEXTS[context]())
            )
        )
        for v in values
    ]
    assert_non_increasing(values, severities)
    assert severities[0] == Indicator.CRITICAL or context in ("pregnant", "weekly methotrexate")


@pytest.mark.parametrize(
    "make, values",
    [(lambda v: b12(v), NG_L), (lambda v: b12(v, "pmol/L"), PMOL_L), (active_b12, ACTIVE)],
    ids=["total ng/L", "total pmol/L", "active pmol/L"],
)
@pytest.mark.parametrize("context", MONOTONIC_CONTEXTS, ids=str)
def test_untreated_and_indeterminate_never_less_severe_for_a_lower_b12(context, make, values):
    rules = (b12_deficiency_untreated, b12_indeterminate)
    severities = []
    for v in values:
        p = picture(make(v), *MONOTONIC_CONTEXTS[context]())
        severities.append(max(severity(rule.evaluate(p)) for rule in rules))
    assert_non_increasing(values, severities)
    assert severities[0] >= Indicator.WARNING


@pytest.mark.parametrize("with_folate", [False, True], ids=["no folate", "folic acid draft"])
@pytest.mark.parametrize("context", MONOTONIC_CONTEXTS, ids=str)
def test_card_shown_after_supersession_never_less_severe_for_a_lower_b12(context, with_folate):
    folate = (folic_acid_draft(5),) if with_folate else ()
    severities = [shown_severity((b12(v), *folate, *MONOTONIC_CONTEXTS[context]())) for v in NG_L]
    assert_non_increasing(NG_L, severities)


@pytest.mark.parametrize("with_folate", [False, True], ids=["no folate", "folic acid draft"])
@pytest.mark.parametrize("total", [250, 400], ids=["total 250", "total 400"])
def test_higher_mma_is_never_less_severe(total, with_folate):
    values = sorted({*range(100, 1001, 10), 271, 271.1})
    folate = (folic_acid_draft(5),) if with_folate else ()
    severities = [shown_severity((b12(total), mma(v), *folate)) for v in values]
    # Non-decreasing in MMA = non-increasing when read from the highest MMA down.
    assert_non_increasing(values[::-1], severities[::-1])
