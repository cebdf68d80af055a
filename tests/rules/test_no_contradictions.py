"""No two cards in one response give opposite instructions.

Every card is read as the instructions it gives (from its suggested actions first, then from
the fixed phrases the rules use), and every pair of cards that fire together, over the
scenario corpus and a generated set of patients, is checked against a table of forbidden
co-occurrences written from the card budget of the clinical specification ("no routine B12
retest" beside "check B12 before the first dose" is its own example).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.domain.codes import LOINC_ACTIVE_B12, LOINC_TOTAL_B12
from cds_service.domain.engine import HookKind, evaluate
from cds_service.domain.facts import Facts
from cds_service.domain.findings import (
    Finding,
    OrderLab,
    OrderMedication,
    RemoveDraft,
    Suggestion,
    Wording,
)
from cds_service.domain.vocabulary import B12_PRODUCTS, FOLATES, Route
from tests.builders import (
    NOW,
    Analyte,
    ConditionKind,
    DrugClass,
    Sex,
    active_b12,
    b12,
    condition,
    draft,
    facts,
    lab,
    lab_order,
    med,
    mma,
    patient,
)

from .corpus import scenario_cases

# --- what a card tells the clinician to do ----------------------------------------------------
TEST_B12 = "test B12 now"
NO_B12_TEST = "no B12 test"
ORDER_TOTAL_B12 = "order total B12"
ORDER_ACTIVE_B12 = "order active B12"
REMOVE_TOTAL_B12 = "remove the drafted total B12 test"
REMOVE_ACTIVE_B12 = "remove the drafted active B12 test"
WITHHOLD_FOLATE = "withhold or remove the folate"
KEEP_FOLATE = "keep the folate"
START_B12 = "start B12"
TEST_BEFORE_TREATING = "test before treating"
AVOID_CYANOCOBALAMIN = "avoid cyanocobalamin"
ORDER_CYANOCOBALAMIN = "order cyanocobalamin"
IM_ONLY = "IM route only"
ORAL_B12 = "oral B12"

#: Forbidden co-occurrences across two cards of one response, each with the reason.
FORBIDDEN: dict[frozenset[str], str] = {
    frozenset({TEST_B12, NO_B12_TEST}): "a B12 test asked for and advised against",
    frozenset({ORDER_TOTAL_B12, NO_B12_TEST}): "a B12 test ordered and advised against",
    frozenset({ORDER_ACTIVE_B12, NO_B12_TEST}): "a B12 test ordered and advised against",
    frozenset({ORDER_TOTAL_B12, REMOVE_TOTAL_B12}): "a total B12 test ordered and removed",
    frozenset({ORDER_ACTIVE_B12, REMOVE_ACTIVE_B12}): "an active B12 test ordered and removed",
    frozenset({WITHHOLD_FOLATE, KEEP_FOLATE}): "folate to be stopped and to be kept",
    frozenset({START_B12, TEST_BEFORE_TREATING}): "treat now and test before treating",
    frozenset({AVOID_CYANOCOBALAMIN, ORDER_CYANOCOBALAMIN}): "cyanocobalamin avoided and ordered",
    frozenset({IM_ONLY, ORAL_B12}): "IM required and oral recommended",
}

#: The fixed phrases the rules use for each instruction (lower case).
PHRASES: dict[str, tuple[str, ...]] = {
    TEST_B12: (
        "check b12",
        "test b12 first",
        "before the first dose",
        "check for a b12 result",
    ),
    NO_B12_TEST: (
        "no routine b12 retest",
        "levels on established im therapy are not informative",
    ),
    WITHHOLD_FOLATE: ("do not give folic acid before b12", "do not give folate until b12"),
    KEEP_FOLATE: (
        "give the folic acid with it",
        "give folic acid with it",
        "keep the folate",
        "do not stop it",
        "rather than stop the folate",
    ),
    START_B12: ("start treatment", "start b12 now"),
    TEST_BEFORE_TREATING: ("check mma before deciding", "test homocysteine or mma first"),
    AVOID_CYANOCOBALAMIN: ("prefer hydroxocobalamin to cyanocobalamin",),
    IM_ONLY: ("use the im regimen",),
}


def instructions(finding: Finding, facts: Facts) -> set[str]:
    """What one card tells the clinician to do."""
    found: set[str] = set()
    # The summary and the detail's first paragraph carry the instruction; later paragraphs
    # are evidence and context ("B12 levels on IM therapy are not informative" as background).
    head = (finding.summary + "\n" + finding.detail.split("\n\n", 1)[0]).lower()
    for instruction, phrases in PHRASES.items():
        if any(phrase in head for phrase in phrases):
            found.add(instruction)
    drafts = {m.resource_id: m for m in facts.medications if m.is_draft}
    lab_drafts = {d.resource_id: d for d in facts.draft_labs}
    for suggestion in finding.suggestions:
        for action in suggestion.actions:
            if isinstance(action, OrderLab) and action.loinc == LOINC_TOTAL_B12:
                found.add(ORDER_TOTAL_B12)
            elif isinstance(action, OrderLab) and action.loinc == LOINC_ACTIVE_B12:
                found.add(ORDER_ACTIVE_B12)
            elif isinstance(action, OrderMedication) and suggestion.is_recommended:
                found.add(START_B12)
                if action.regimen.drug is DrugClass.CYANOCOBALAMIN:
                    found.add(ORDER_CYANOCOBALAMIN)
                if action.regimen.route is Route.ORAL:
                    found.add(ORAL_B12)
            elif isinstance(action, RemoveDraft):
                medication = drafts.get(action.resource_id)
                if medication is not None and medication.is_folate:
                    found.add(WITHHOLD_FOLATE)
                order = lab_drafts.get(action.resource_id)
                if order is not None and Analyte.TOTAL_B12 in order.analytes:
                    found.add(REMOVE_TOTAL_B12)
                if order is not None and Analyte.ACTIVE_B12 in order.analytes:
                    found.add(REMOVE_ACTIVE_B12)
    return found


def contradictions(findings: Iterable[Finding], facts: Facts) -> list[str]:
    read = [(f.rule_id, instructions(f, facts)) for f in findings]
    problems = []
    for (rule_a, said_a), (rule_b, said_b) in combinations(read, 2):
        for a in said_a:
            for b in said_b:
                reason = FORBIDDEN.get(frozenset({a, b}))
                if reason and a != b:
                    problems.append(f"{rule_a} '{a}' vs {rule_b} '{b}': {reason}")
    return problems


def fired_pairs(findings: Iterable[Finding]) -> set[frozenset[str]]:
    return {frozenset({a.rule_id, b.rule_id}) for a, b in combinations(findings, 2)}


# --- the instruction reader itself --------------------------------------------------------------
def test_the_reader_sees_the_example_of_the_specification_as_a_contradiction():
    monitoring = Finding(
        "b12-treatment-monitoring",
        1,
        Wording.of(
            "Parenteral B12 starting: review response at 3 months; no routine B12 retest.", ""
        ),
        None,
    )
    screening = Finding(
        "b12-screening-due", 1, Wording.of("No B12 result in 12 months: check B12.", ""), None
    )
    assert contradictions([monitoring, screening], facts()) != []


def test_the_reader_sees_a_folate_removal_beside_keeping_it():
    folate = draft(DrugClass.FOLIC_ACID, rid="MedicationRequest/fa")
    removal = Suggestion("Remove draft", (RemoveDraft(folate.resource_id, "remove it"),))
    remove = Finding("a", 1, Wording.of("x", ""), None, (removal,))
    keep = Finding(
        "b", 1, Wording.of("Combined deficiency: start B12 now, give folic acid with it", ""), None
    )
    assert contradictions([remove, keep], facts(folate)) != []


# --- the scenario corpus ------------------------------------------------------------------------
CASES = scenario_cases()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.slug)
@pytest.mark.parametrize("hook", list(HookKind), ids=lambda h: h.value)
def test_no_two_cards_of_a_scenario_contradict(case, hook):
    evaluation = evaluate(case.facts, case.now, hook)
    assert contradictions(evaluation.findings, case.facts) == []


# --- generated patients -------------------------------------------------------------------------
def _b12_results():
    return st.one_of(
        st.just(()),
        st.builds(
            lambda v, unit, cmp, days: (b12(v, unit, comparator=cmp, days=days),),
            st.sampled_from([90, 118, 150, 179.9, 180, 250, 350, 350.1, 420, 900]),
            st.sampled_from(["ng/L", "pg/mL", "pmol/L"]),
            st.sampled_from([None, None, None, "<", ">"]),
            st.sampled_from([10, 200, 400]),
        ),
        st.builds(lambda v: (active_b12(v),), st.sampled_from([15, 24.9, 25, 50, 70.1, 120])),
        st.builds(lambda v: (b12(250), mma(v)), st.sampled_from([150, 271, 500])),
        st.just((lab(Analyte.TOTAL_B12, None, None, text="see comment"),)),
    )


def _blood():
    return st.builds(
        lambda hb, mcv: tuple(
            x
            for x in (
                lab(Analyte.HAEMOGLOBIN, hb) if hb else None,
                lab(Analyte.MCV, mcv) if mcv else None,
            )
            if x is not None
        ),
        st.sampled_from([None, 9.5, 11.9, 12.5, 13.1, 14.5]),
        st.sampled_from([None, 88, 100, 100.1, 112]),
    )


def _other_labs():
    return st.lists(
        st.sampled_from(
            [
                lab(Analyte.EGFR, 38),
                lab(Analyte.EGFR, 75),
                lab(Analyte.FOLATE, 2.1, "ng/mL"),
                lab(Analyte.FOLATE, 9, "ng/mL"),
                lab(Analyte.POTASSIUM, 2.9),
                lab(Analyte.IF_ANTIBODY, None, None, text="Positive"),
            ]
        ),
        max_size=3,
        unique_by=lambda r: (r.analyte, r.value, r.text_value),
    )


def _b12_products():
    im = dict(route=Route.INTRAMUSCULAR, dose_ug=1000)
    return st.lists(
        st.sampled_from(
            [
                med(DrugClass.HYDROXOCOBALAMIN, months=24, interval_days=91, **im),
                med(DrugClass.HYDROXOCOBALAMIN, months=1, status="completed", **im),
                med(DrugClass.CYANOCOBALAMIN, months=6, route=Route.ORAL, dose_ug=1000),
                med(DrugClass.HYDROXOCOBALAMIN, months=30, status="stopped", **im),
                draft(DrugClass.HYDROXOCOBALAMIN, interval_days=2, **im),
                draft(DrugClass.HYDROXOCOBALAMIN, count_=1, **im),
                draft(DrugClass.CYANOCOBALAMIN, interval_days=30, **im),
                draft(DrugClass.CYANOCOBALAMIN, route=Route.ORAL, dose_ug=500, interval_days=1),
                draft(DrugClass.HYDROXOCOBALAMIN, stop=True, status="stopped", **im),
            ]
        ),
        max_size=2,
        unique_by=id,
    )


def _other_medications():
    return st.lists(
        st.sampled_from(
            [
                med(DrugClass.METFORMIN, months=72),
                med(DrugClass.METFORMIN, months=72, status="intended"),
                med(DrugClass.PPI, months=30),
                med(DrugClass.METHOTREXATE, name="Methotrexate 15 mg weekly", months=12),
                med(DrugClass.NITROUS_OXIDE, months=1),
                draft(DrugClass.FOLIC_ACID, dose_ug=5000, interval_days=1),
                draft(DrugClass.FOLIC_ACID, dose_ug=400, interval_days=1),
                med(DrugClass.FOLIC_ACID, months=3, dose_ug=5000, interval_days=1),
                med(DrugClass.ANTIBIOTIC, name="Amoxicillin 500 mg", months=0.5),
                med(DrugClass.COLCHICINE, months=12),
            ]
        ),
        max_size=3,
        unique_by=id,
    )


def _conditions():
    return st.lists(
        st.sampled_from(
            [
                condition(ConditionKind.PERNICIOUS_ANAEMIA),
                condition(ConditionKind.BARIATRIC_SURGERY),
                condition(ConditionKind.PERIPHERAL_NEUROPATHY),
                condition(ConditionKind.HEADACHE),
                condition(ConditionKind.SUBACUTE_COMBINED_DEGENERATION),
                condition(ConditionKind.PREGNANCY),
                condition(ConditionKind.CKD),
                condition(ConditionKind.NITROUS_OXIDE_USE),
                condition(ConditionKind.VEGAN_DIET),
                condition(ConditionKind.ANAEMIA, name="Anaemia"),
                condition(ConditionKind.MEGALOBLASTIC_ANAEMIA),
            ]
        ),
        max_size=3,
        unique_by=id,
    )


def _lab_drafts():
    return st.lists(
        st.sampled_from(
            [
                lab_order(Analyte.TOTAL_B12, name="Serum B12"),
                lab_order(Analyte.ACTIVE_B12, name="Active B12"),
                lab_order(Analyte.MMA, name="MMA"),
            ]
        ),
        max_size=1,
    )


@st.composite
def patients(draw) -> Facts:
    items = (
        *draw(_b12_results()),
        *draw(_blood()),
        *draw(_other_labs()),
        *draw(_b12_products()),
        *draw(_other_medications()),
        *draw(_conditions()),
        *draw(_lab_drafts()),
    )
    who = patient(draw(st.sampled_from([15, 34, 58, 80])), draw(st.sampled_from(list(Sex))))
    return facts(*items, patient_=who)


DETERMINISTIC = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@DETERMINISTIC
@given(patients(), st.sampled_from(list(HookKind)))
def test_no_two_cards_contradict_for_generated_patients(patient_facts, hook):
    evaluation = evaluate(patient_facts, NOW, hook)
    assert contradictions(evaluation.findings, patient_facts) == []
    assert evaluation.failed_rules == ()


def test_the_generated_patients_and_the_corpus_exercise_many_pairs_of_rules():
    """The checks above are only as good as the pairs of rules they see fire together."""
    seen: set[frozenset[str]] = set()
    for case in CASES:
        seen |= fired_pairs(evaluate(case.facts, case.now, HookKind.PATIENT_VIEW).findings)

    @settings(max_examples=250, derandomize=True, database=None, deadline=None)
    @given(patients())
    def collect(patient_facts):
        seen.update(fired_pairs(evaluate(patient_facts, NOW, HookKind.PATIENT_VIEW).findings))

    collect()
    assert len(seen) >= 25, sorted(tuple(sorted(p)) for p in seen)
    # The pairs the specification names as ones that must not contradict.
    assert frozenset({"b12-treatment-monitoring", "b12-screening-due"}) in seen
    assert frozenset({"folate-before-b12", "b12-treatment-monitoring"}) in seen or any(
        "folate-before-b12" in p for p in seen
    )


def test_b12_products_and_folates_in_the_generator_are_what_the_rules_read():
    assert {DrugClass.HYDROXOCOBALAMIN, DrugClass.CYANOCOBALAMIN} <= B12_PRODUCTS
    assert DrugClass.FOLIC_ACID in FOLATES
