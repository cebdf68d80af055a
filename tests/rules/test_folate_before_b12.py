import pytest

from cds_service.domain.findings import (
    OrderLab,
    OrderMedication,
    RemoveDraft,
    SelectionBehavior,
)
from cds_service.domain.policy import Formulary, Policy
from cds_service.domain.rules import folate_before_b12 as rule
from cds_service.domain.vocabulary import DataCategory, Indicator
from tests.builders import (
    Analyte,
    ConditionKind,
    DrugClass,
    Sex,
    active_b12,
    b12,
    condition,
    days_ago,
    draft,
    folic_acid_draft,
    lab,
    lab_order,
    med,
    mma,
    months_ago,
    patient,
    run,
)

ALL_SUPERSEDED = {
    "b12-deficiency-untreated",
    "b12-indeterminate",
    "b12-screening-due",
    "b12-normal-but-symptomatic",
    "b12-lifelong-therapy",
}


def actions(finding, kind):
    return [a for s in finding.suggestions for a in s.actions if isinstance(a, kind)]


def mcv(value=108):
    return lab(Analyte.MCV, value)


# --- the headline card ---------------------------------------------------------------------
def test_folic_acid_order_with_b12_118_is_critical():
    folate = folic_acid_draft(5, rid="MedicationRequest/fa")
    finding = run(rule, b12(118, days=45, rid="Observation/b12"), folate)
    assert finding.rule_id == "folate-before-b12"
    assert finding.indicator is Indicator.CRITICAL
    assert finding.summary == "Folic acid ordered with B12 118 ng/L (≈87 pmol/L): treat B12 first"
    assert "118 ng/L (≈87 pmol/L) on 2026-05-01 (Observation/b12)" in finding.detail
    assert "Do not give folic acid before B12 is treated" in finding.detail
    assert "MedicationRequest/fa" in finding.detail
    assert finding.detail.splitlines()[-1].startswith("Source: NICE NG239")
    assert finding.concerns == {"MedicationRequest/fa"}
    assert finding.supersedes == ALL_SUPERSEDED
    assert finding.selection_behavior is SelectionBehavior.ANY


def test_suggestions_are_b12_treatment_and_removal_of_the_draft():
    folate = folic_acid_draft(5, rid="MedicationRequest/fa")
    finding = run(rule, b12(118), folate)
    treatment, removal = finding.suggestions
    assert treatment.is_recommended
    assert isinstance(treatment.actions[0], OrderMedication)
    assert treatment.actions[0].regimen.key == "im-standard"
    assert not removal.is_recommended
    assert removal.actions == (RemoveDraft("MedicationRequest/fa", removal.actions[0].description),)
    assert actions(finding, OrderLab) == []  # status known: no B12 test


def test_override_reasons_with_deficient_b12_never_claim_b12_is_replete():
    finding = run(rule, b12(118), folic_acid_draft())
    assert [r.display for r in finding.override_reasons] == [
        "B12 started or given elsewhere",
        "Pregnancy / NTD prophylaxis",
        "Folic acid with methotrexate",
    ]
    assert all(r.code == r.code.lower() and " " not in r.code for r in finding.override_reasons)


def test_override_reasons_when_b12_is_not_deficient_include_folate_deficiency_b12_replete():
    finding = run(rule, b12(250), folic_acid_draft())
    assert [r.display for r in finding.override_reasons] == [
        "B12 started or given elsewhere",
        "Folate deficiency confirmed and B12 replete",
        "Pregnancy / NTD prophylaxis",
        "Folic acid with methotrexate",
    ]


# --- boundaries (rule book §2) ----------------------------------------------------------
@pytest.mark.parametrize(
    "result, expected",
    [
        (b12(179.9), Indicator.CRITICAL),
        (b12(180), Indicator.WARNING),
        (b12(350), Indicator.WARNING),
        (b12(350.1), None),
        (b12(132.9, "pmol/L"), Indicator.CRITICAL),
        (b12(133, "pmol/L"), Indicator.WARNING),
        (b12(258, "pmol/L"), Indicator.WARNING),
        (b12(258.1, "pmol/L"), None),
        (active_b12(24.9), Indicator.CRITICAL),
        (active_b12(25), Indicator.WARNING),
        (active_b12(70), Indicator.WARNING),
        (active_b12(70.1), None),
    ],
    ids=lambda v: getattr(v, "value", v),
)
def test_b12_band_sets_the_indicator(result, expected):
    finding = run(rule, result, folic_acid_draft())
    assert (finding.indicator if finding else None) == expected


def test_active_b12_low_outranks_normal_total_and_the_conflict_is_stated():
    finding = run(rule, active_b12(20), b12(400), folic_acid_draft())
    assert finding.indicator is Indicator.CRITICAL
    assert "active B12 20 pmol/L" in finding.summary
    assert "Conflicting results" in finding.detail
    assert "antibody interference" in finding.detail


def test_functional_deficiency_by_mma_is_critical():
    finding = run(rule, b12(250), mma(450), folic_acid_draft())
    assert finding.indicator is Indicator.CRITICAL
    assert "MMA 450 nmol/L (functional B12 deficiency)" in finding.summary


def test_raised_mma_with_low_egfr_is_indeterminate_with_renal_caveat():
    finding = run(rule, b12(250), mma(450), lab(Analyte.EGFR, 45), folic_acid_draft())
    assert finding.indicator is Indicator.WARNING
    assert "indeterminate B12 250 ng/L" in finding.summary
    assert "renal impairment raises MMA" in finding.detail


def test_indeterminate_b12_carries_the_mma_test_of_the_card_it_silences():
    finding = run(rule, b12(250), folic_acid_draft())
    assert "b12-indeterminate" in finding.supersedes
    assert [a.loinc for a in actions(finding, OrderLab)] == ["13964-2"]


def test_indeterminate_with_non_specific_mma_suggests_active_b12():
    finding = run(rule, b12(250), mma(450), lab(Analyte.EGFR, 45), folic_acid_draft())
    assert [a.loinc for a in actions(finding, OrderLab)] == ["72160-5"]


def test_indeterminate_with_drafted_mma_adds_no_test():
    order = lab_order(Analyte.MMA, name="MMA")
    assert actions(run(rule, b12(250), folic_acid_draft(), order), OrderLab) == []


# --- unknown B12 status -------------------------------------------------------------------------
def test_no_b12_result_with_macrocytosis_is_warning_and_suggests_a_b12_test():
    finding = run(rule, mcv(108), folic_acid_draft())
    assert finding.indicator is Indicator.WARNING
    assert finding.summary == (
        "Folic acid ordered, no current B12 result and MCV 108 fL: test B12 first"
    )
    (test,) = actions(finding, OrderLab)
    assert test.loinc == "2132-9"
    assert "before any B12 is given" in test.note
    # The test is the recommended step: accepting everything must not start B12 unsampled.
    assert [s.is_recommended for s in finding.suggestions] == [False, False, True]


def test_b12_labs_that_could_not_be_retrieved_still_give_a_warning():
    finding = run(rule, folic_acid_draft(), missing=frozenset({DataCategory.B12_LABS}))
    assert finding.indicator is Indicator.WARNING
    assert actions(finding, OrderLab)[0].loinc == "2132-9"


def test_no_b12_result_and_nothing_missing_without_macrocytosis_is_silent():
    assert run(rule, folic_acid_draft(), missing=frozenset()) is None


def test_indeterminate_b12_recommends_the_test_not_the_treatment():
    finding = run(rule, b12(250), folic_acid_draft())
    treatment = [
        s for s in finding.suggestions if any(isinstance(a, OrderMedication) for a in s.actions)
    ]
    assert treatment and not treatment[0].is_recommended
    assert any(s.is_recommended for s in finding.suggestions if s not in treatment)


def test_pregnancy_with_low_total_b12_only_confirms_with_active_b12_and_silences_pregnancy_b12():
    finding = run(rule, b12(150), folic_acid_draft(0.4), condition(ConditionKind.PREGNANCY))
    assert finding.indicator is Indicator.WARNING
    assert "pregnancy-b12" in finding.supersedes
    tests = [a.loinc for a in actions(finding, OrderLab)]
    assert tests == ["72160-5"]
    treatment = [
        s for s in finding.suggestions if any(isinstance(a, OrderMedication) for a in s.actions)
    ]
    assert not treatment[0].is_recommended


def test_no_b12_result_with_paraesthesia_is_warning_with_neurological_regimen():
    finding = run(rule, condition(ConditionKind.PARAESTHESIA), folic_acid_draft())
    assert finding.indicator is Indicator.WARNING
    assert "paraesthesia recorded" in finding.summary
    assert actions(finding, OrderMedication)[0].regimen.key == "im-neurological"


def test_headache_only_is_flagged_as_possible_neurological_involvement():
    finding = run(rule, condition(ConditionKind.HEADACHE), folic_acid_draft())
    assert finding.indicator is Indicator.WARNING
    assert (
        "headache recorded; the brief treats it as neurological involvement; NICE/BNF reserve "
        "the intensive regimen for neuropathy, myelopathy, cognitive or optic signs; confirm "
        "clinically"
    ) in finding.detail


def test_no_b12_result_without_macrocytosis_or_neurology_is_silent():
    assert run(rule, folic_acid_draft(), mcv(100)) is None


def test_stale_b12_does_not_count_and_is_mentioned():
    finding = run(rule, b12(118, days=400, rid="Observation/old"), mcv(), folic_acid_draft())
    assert finding.indicator is Indicator.WARNING
    assert "Observation/old" in finding.detail and "older than 12 months" in finding.detail


def test_b12_drawn_after_therapy_began_is_not_diagnostic():
    course = med(DrugClass.HYDROXOCOBALAMIN, status="completed", start=months_ago(11))
    finding = run(rule, course, b12(600, days=30), mcv(), folic_acid_draft())
    assert finding is not None and finding.indicator is Indicator.WARNING
    assert "drawn after B12 therapy began" in finding.detail


def test_drafted_b12_test_is_not_suggested_again():
    order = lab_order(Analyte.TOTAL_B12, rid="ServiceRequest/b")
    finding = run(rule, mcv(), folic_acid_draft(), order)
    assert actions(finding, OrderLab) == []
    assert "ServiceRequest/b" in finding.detail


def test_missing_b12_labs_are_named():
    finding = run(rule, mcv(), folic_acid_draft(), missing=frozenset({DataCategory.B12_LABS}))
    assert "B12 results unavailable" in finding.summary
    assert "B12 results" in finding.detail


# --- which folates count --------------------------------------------------------------------------
@pytest.mark.parametrize("mg, fires", [(0.1, False), (0.2, True), (0.4, True), (5, True)])
def test_dose_above_minimum_counts(mg, fires):
    assert (run(rule, b12(118), folic_acid_draft(mg)) is not None) is fires


def test_unknown_dose_counts():
    finding = run(rule, b12(118), draft(DrugClass.FOLIC_ACID, name="Folic acid tablet"))
    assert finding.indicator is Indicator.CRITICAL
    assert "dose not recorded" in finding.detail


def test_minimum_dose_is_read_from_site_policy():
    policy = Policy.from_mapping({"thresholds": {"folic_acid_min_mg_per_day": 1}})
    assert run(rule, b12(118), folic_acid_draft(0.4), policy=policy) is None
    assert run(rule, b12(118), folic_acid_draft(1.5), policy=policy) is not None


@pytest.mark.parametrize(
    "drug, name",
    [(DrugClass.FOLINIC_ACID, "Folinic acid"), (DrugClass.METHYLFOLATE, "Methylfolate")],
)
def test_folinic_acid_and_methylfolate_count(drug, name):
    finding = run(rule, b12(118), draft(drug, dose_ug=15000, interval_days=1))
    assert finding.indicator is Indicator.CRITICAL
    assert finding.summary.startswith(f"{name} ordered with B12 118")


def test_active_folic_acid_statement_fires_without_removal_suggestion():
    taking = med(DrugClass.FOLIC_ACID, name="Folic acid 5 mg", dose_ug=5000, interval_days=1)
    finding = run(rule, b12(118), taking)
    assert finding.indicator is Indicator.CRITICAL
    assert finding.summary.startswith("Folic acid being taken with B12 118")
    assert actions(finding, RemoveDraft) == []
    assert finding.concerns == frozenset()


def test_each_folate_draft_gets_its_own_removal():
    a = folic_acid_draft(5, rid="MedicationRequest/a")
    b = draft(DrugClass.FOLINIC_ACID, dose_ug=15000, interval_days=1, rid="MedicationRequest/b")
    finding = run(rule, b12(118), a, b)
    assert {r.resource_id for r in actions(finding, RemoveDraft)} == {
        "MedicationRequest/a",
        "MedicationRequest/b",
    }
    assert finding.concerns == {"MedicationRequest/a", "MedicationRequest/b"}


@pytest.mark.parametrize(
    "folate",
    [
        med(DrugClass.FOLIC_ACID, status="completed", dose_ug=5000, interval_days=1),
        folic_acid_draft(5, stop=True),
    ],
    ids=["completed statement", "stop order"],
)
def test_folate_not_being_given_is_silent(folate):
    assert run(rule, b12(118), folate) is None


# --- not when ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "therapy",
    [
        med(DrugClass.HYDROXOCOBALAMIN, name="Hydroxocobalamin 1 mg/mL injection"),
        draft(DrugClass.CYANOCOBALAMIN, dose_ug=1000, interval_days=1),
    ],
    ids=["active B12", "drafted B12"],
)
def test_b12_therapy_silences_the_card(therapy):
    assert run(rule, b12(118, days=400), mcv(), folic_acid_draft(), therapy) is None


def test_normal_b12_is_silent_even_with_macrocytosis():
    assert run(rule, b12(500), mcv(), folic_acid_draft()) is None


def test_normal_mma_settles_an_indeterminate_b12():
    assert run(rule, b12(250), mma(200), folic_acid_draft()) is None


# --- pregnancy exception --------------------------------------------------------------------
@pytest.mark.parametrize("kind", [ConditionKind.PREGNANCY, ConditionKind.PRECONCEPTION])
def test_pregnancy_folic_acid_5mg_is_at_most_warning_and_never_removed(kind):
    finding = run(rule, b12(118), folic_acid_draft(5), condition(kind))
    assert finding.indicator is Indicator.WARNING
    assert finding.summary.endswith("address B12 at the same time")
    assert "address B12 at the same time" in finding.detail
    assert actions(finding, RemoveDraft) == []
    assert actions(finding, OrderMedication)


def test_pregnancy_folic_acid_above_5mg_is_not_the_exception():
    finding = run(rule, b12(118), folic_acid_draft(10), condition(ConditionKind.PREGNANCY))
    assert finding.indicator is Indicator.CRITICAL
    assert actions(finding, RemoveDraft)


def test_pregnancy_folic_acid_without_dose_is_presumed_prophylaxis():
    folate = draft(DrugClass.FOLIC_ACID, name="Folic acid")
    finding = run(rule, b12(118), folate, condition(ConditionKind.PREGNANCY))
    assert finding.indicator is Indicator.WARNING
    assert actions(finding, RemoveDraft) == []


def test_pregnancy_exception_follows_the_policy_maximum():
    policy = Policy.from_mapping({"thresholds": {"pregnancy_folic_acid_max_mg_per_day": 4}})
    finding = run(
        rule, b12(118), folic_acid_draft(5), condition(ConditionKind.PREGNANCY), policy=policy
    )
    assert finding.indicator is Indicator.CRITICAL


def test_pregnancy_with_scd_stays_critical_but_keeps_the_folic_acid():
    finding = run(
        rule,
        b12(118),
        folic_acid_draft(5),
        condition(ConditionKind.PREGNANCY),
        condition(ConditionKind.SUBACUTE_COMBINED_DEGENERATION),
    )
    assert finding.indicator is Indicator.CRITICAL
    assert actions(finding, RemoveDraft) == []


def test_pregnancy_with_unknown_b12_suggests_test_and_no_removal():
    finding = run(rule, mcv(), folic_acid_draft(0.4), condition(ConditionKind.PREGNANCY))
    assert finding.indicator is Indicator.WARNING
    assert actions(finding, RemoveDraft) == []
    assert [a.loinc for a in actions(finding, OrderLab)] == ["2132-9"]


def test_pregnancy_condition_on_a_male_patient_is_not_the_exception():
    finding = run(
        rule,
        b12(118),
        folic_acid_draft(5),
        condition(ConditionKind.PREGNANCY),
        patient_=patient(sex=Sex.MALE),
    )
    assert finding.indicator is Indicator.CRITICAL


# --- weekly methotrexate exception ------------------------------------------------------------
@pytest.mark.parametrize(
    "mtx",
    [
        med(
            DrugClass.METHOTREXATE,
            name="Methotrexate 2.5 mg tablet",
            dose_ug=15000,
            interval_days=7,
        ),
        med(DrugClass.METHOTREXATE, name="Methotrexate 15 mg weekly"),
    ],
    ids=["interval 7 days", "weekly in name"],
)
def test_weekly_methotrexate_with_unknown_b12_is_info_only(mtx):
    folate = folic_acid_draft(5, rid="MedicationRequest/fa")
    finding = run(rule, mcv(), folate, mtx)
    assert finding.indicator is Indicator.INFO
    assert "weekly methotrexate" in finding.summary
    assert actions(finding, RemoveDraft) == []
    treatment, test = finding.suggestions
    assert not treatment.is_recommended
    assert test.is_recommended and test.actions[0].loinc == "2132-9"
    assert finding.concerns == {"MedicationRequest/fa"}
    # An info card must not silence the warnings that would otherwise show.
    assert "b12-screening-due" not in finding.supersedes
    assert "b12-lifelong-therapy" not in finding.supersedes


def test_folic_acid_with_weekly_methotrexate_and_deficient_b12_is_a_warning_that_keeps_the_folate():
    mtx = med(DrugClass.METHOTREXATE, name="Methotrexate 15 mg weekly", rid="MedicationStatement/m")
    finding = run(rule, b12(118), folic_acid_draft(5, rid="MedicationRequest/fa"), mtx)
    assert finding.indicator is Indicator.WARNING
    assert actions(finding, RemoveDraft) == []
    treatment = finding.suggestions[0]
    assert treatment.is_recommended and isinstance(treatment.actions[0], OrderMedication)
    assert "keep the folate" in finding.summary
    assert "prevents its toxicity" in finding.detail and "do not stop it" in finding.detail
    assert "MedicationStatement/m" in finding.detail


def test_weekly_methotrexate_with_deficient_b12_and_scd_stays_critical():
    mtx = med(DrugClass.METHOTREXATE, name="Methotrexate 15 mg weekly")
    scd = condition(ConditionKind.SUBACUTE_COMBINED_DEGENERATION)
    finding = run(rule, b12(118), folic_acid_draft(5), mtx, scd)
    assert finding.indicator is Indicator.CRITICAL
    assert actions(finding, RemoveDraft) == []


def test_daily_methotrexate_is_not_the_exception():
    mtx = med(DrugClass.METHOTREXATE, name="Methotrexate 2.5 mg", dose_ug=2500, interval_days=1)
    assert run(rule, mcv(), folic_acid_draft(5), mtx).indicator is Indicator.WARNING


# --- detail and regimen -----------------------------------------------------------------------
def test_malabsorption_cause_says_lifelong():
    finding = run(rule, b12(118), folic_acid_draft(), condition(ConditionKind.PERNICIOUS_ANAEMIA))
    assert "lifelong" in finding.detail


def test_us_formulary_suggests_cyanocobalamin():
    policy = Policy(formulary=Formulary.CYANOCOBALAMIN)
    finding = run(rule, b12(118), folic_acid_draft(), policy=policy)
    assert actions(finding, OrderMedication)[0].regimen.drug is DrugClass.CYANOCOBALAMIN


@pytest.mark.parametrize(
    "items",
    [
        (b12(0.1799, "ng/mL"), condition(ConditionKind.ATAXIA, name="a" * 200)),
        (b12(179.9, "pg/mL"),),
        (lab(Analyte.MCV, 123.45), condition(ConditionKind.PROPRIOCEPTION_LOSS)),
        (condition(ConditionKind.PROPRIOCEPTION_LOSS),),
    ],
)
def test_summary_stays_under_140_characters(items):
    finding = run(rule, *items, folic_acid_draft(), med(DrugClass.METHOTREXATE, name="x weekly"))
    assert len(finding.summary) < 140


def test_b12_result_date_is_cited():
    finding = run(rule, b12(150, when=days_ago(3)), folic_acid_draft())
    assert days_ago(3).date().isoformat() in finding.detail


# --- proven folate deficiency: combined deficiency (BSH 2014 limits) ---------------------------
def folate(value, unit="ng/mL", **kw):
    return lab(Analyte.FOLATE, value, unit, **kw)


def test_combined_deficiency_is_critical_keeps_the_folic_acid_and_shows_the_folate_value():
    finding = run(
        rule,
        b12(118, rid="Observation/b12"),
        folate(2.1, rid="Observation/fol"),
        mcv(),
        folic_acid_draft(5, rid="MedicationRequest/fa"),
    )
    assert finding.indicator is Indicator.CRITICAL
    assert finding.summary.startswith("Combined deficiency (B12 118 ng/L")
    assert "folate 2.1 ng/mL" in finding.summary
    assert "give folic acid with it" in finding.summary
    assert len(finding.summary) < 140
    assert actions(finding, RemoveDraft) == []
    assert "Combined deficiency: start B12 now and give the folic acid with it" in finding.detail
    assert "never folic acid alone in undiagnosed megaloblastic anaemia" in finding.detail
    assert "2.1 ng/mL" in finding.detail and "Observation/fol" in finding.detail
    assert "Do not give folic acid before B12" not in finding.detail
    assert finding.suggestions[0].is_recommended


@pytest.mark.parametrize(
    "result, deficient",
    [
        (folate(2.99), True),
        (folate(3.0), False),
        (folate(6.9, "nmol/L"), True),
        (folate(7.0, "nmol/L"), False),
        (folate(2.9, "ug/L"), True),
        (lab(Analyte.RBC_FOLATE, 149.9, "ng/mL"), True),
        (lab(Analyte.RBC_FOLATE, 150, "ng/mL"), False),
        (lab(Analyte.RBC_FOLATE, 339, "nmol/L"), True),
        (lab(Analyte.RBC_FOLATE, 340, "nmol/L"), False),
    ],
    ids=[
        "serum 2.99 ng/mL",
        "serum 3.0 ng/mL",
        "serum 6.9 nmol/L",
        "serum 7.0 nmol/L",
        "serum 2.9 ug/L",
        "red cell 149.9 ng/mL",
        "red cell 150 ng/mL",
        "red cell 339 nmol/L",
        "red cell 340 nmol/L",
    ],
)
def test_folate_deficiency_limits_are_judged_in_the_reported_unit(result, deficient):
    finding = run(rule, b12(118), result, folic_acid_draft(5))
    assert (actions(finding, RemoveDraft) == []) is deficient
    assert finding.summary.startswith("Combined deficiency") is deficient


def test_folate_reported_below_a_limit_counts_as_proven_deficiency():
    low = lab(Analyte.FOLATE, 2.0, "ng/mL", comparator="<")
    finding = run(rule, b12(118), low, folic_acid_draft(5))
    assert "folate <2 ng/mL" in finding.summary


def test_a_stale_folate_result_is_not_proof_of_folate_deficiency():
    finding = run(rule, b12(118), folate(2.1, days=400), folic_acid_draft(5))
    assert finding.indicator is Indicator.CRITICAL
    assert len(actions(finding, RemoveDraft)) == 1


def test_proven_folate_deficiency_with_indeterminate_b12_keeps_the_folate_as_a_warning():
    finding = run(rule, b12(250), folate(2.1), folic_acid_draft(5))
    assert finding.indicator is Indicator.WARNING
    assert actions(finding, RemoveDraft) == []
    assert "Folate deficiency is proven" in finding.detail


def test_pregnancy_exception_mentions_the_one_month_review():
    pregnant = condition(ConditionKind.PREGNANCY)
    finding = run(rule, b12(150), folic_acid_draft(0.4), pregnant)
    assert finding.indicator is Indicator.WARNING
    assert actions(finding, RemoveDraft) == []
    assert "review 1 month after starting B12 treatment" in finding.detail
    assert "address B12 at the same time" in finding.summary


def test_b12_reported_as_text_below_150_with_folic_acid_and_mcv_110_is_critical():
    text_b12 = lab(Analyte.TOTAL_B12, 150, "pg/mL", text="<150 pg/mL", comparator="<")
    finding = run(rule, text_b12, mcv(110), folic_acid_draft(5))
    assert finding.indicator is Indicator.CRITICAL
    assert "<150 pg/mL" in finding.summary


def test_uninterpretable_b12_counts_as_no_current_result_for_the_folate_alert():
    odd = lab(Analyte.TOTAL_B12, None, None, text="see comment")
    finding = run(rule, odd, mcv(110), folic_acid_draft(5))
    assert finding.indicator is Indicator.WARNING
    assert "no current B12 result" in finding.summary
