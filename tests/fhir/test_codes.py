"""Code sets and classification (rule book §5 "Codes"): drugs by RxNorm ingredient,
curated SCD, ATC prefix, then ingredient name; conditions by SNOMED CT, ICD-10(-CM) prefix
and display text."""

from __future__ import annotations

import pytest

from cds_service.domain.codes import (
    ATC,
    ICD10,
    ICD10CM,
    LOINC,
    LOINC_ANALYTES,
    RXNORM,
    SNOMED,
    SNOMED_VERIFIED,
    classify_condition,
    classify_drug_codes,
    classify_drug_name,
)
from cds_service.domain.vocabulary import Analyte, ConditionKind, DrugClass

K = ConditionKind
D = DrugClass


# --- Drugs: codes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code, drug",
    [
        ("6809", D.METFORMIN),
        ("7646", D.PPI),  # omeprazole
        ("40790", D.PPI),  # pantoprazole
        ("17128", D.PPI),  # lansoprazole
        ("114979", D.PPI),  # rabeprazole
        ("283742", D.PPI),  # esomeprazole
        ("816346", D.PPI),  # dexlansoprazole
        ("2541", D.H2_BLOCKER),  # cimetidine
        ("9143", D.H2_BLOCKER),  # ranitidine
        ("4278", D.H2_BLOCKER),  # famotidine
        ("42319", D.H2_BLOCKER),  # nizatidine
        ("4511", D.FOLIC_ACID),
        ("6313", D.FOLINIC_ACID),  # leucovorin
        ("11248", D.CYANOCOBALAMIN),
        ("6851", D.METHOTREXATE),
    ],
)
def test_rxnorm_ingredient_classifies(code, drug):
    assert classify_drug_codes([(RXNORM, code)]) == {drug}


@pytest.mark.parametrize(
    "code, drug",
    [
        ("861007", D.METFORMIN),
        ("861004", D.METFORMIN),
        ("861010", D.METFORMIN),
        ("860975", D.METFORMIN),
        ("198051", D.PPI),
        ("310410", D.FOLIC_ACID),
        ("199318", D.FOLIC_ACID),
        ("309594", D.CYANOCOBALAMIN),
        ("317106", D.HYDROXOCOBALAMIN),
    ],
)
def test_curated_clinical_drug_code_classifies(code, drug):
    assert classify_drug_codes([(RXNORM, code)]) == {drug}


@pytest.mark.parametrize(
    "code, drug",
    [
        ("A10BA02", D.METFORMIN),
        ("A10BD02", D.METFORMIN),  # metformin and sulfonylureas
        ("A10BD07", D.METFORMIN),  # metformin and sitagliptin
        ("A10BD20", D.METFORMIN),  # metformin and empagliflozin
        ("a10bd15", D.METFORMIN),  # case-insensitive
        ("A02BC01", D.PPI),
        ("A02BC05", D.PPI),
        ("A02BA02", D.H2_BLOCKER),
        ("B03BB01", D.FOLIC_ACID),
        ("V03AF03", D.FOLINIC_ACID),
        ("B03BA01", D.CYANOCOBALAMIN),
        ("B03BA03", D.HYDROXOCOBALAMIN),
        ("B03BA05", D.METHYLCOBALAMIN),
        ("L01BA01", D.METHOTREXATE),
        ("L04AX03", D.METHOTREXATE),
        ("M04AC01", D.COLCHICINE),
        ("P01BD01", D.PYRIMETHAMINE),
        ("J04AA01", D.AMINOSALICYLIC_ACID),
        ("N01AX13", D.NITROUS_OXIDE),
        ("J01CA04", D.ANTIBIOTIC),  # amoxicillin
        ("J01FA09", D.ANTIBIOTIC),  # clarithromycin
        ("J01", D.ANTIBIOTIC),
    ],
)
def test_atc_prefix_classifies(code, drug):
    assert classify_drug_codes([(ATC, code)]) == {drug}


@pytest.mark.parametrize("code", ["A10BD19", "A10BD21", "A10BD04", "A10BD09"])
def test_a10bd_combinations_without_metformin_are_not_metformin(code):
    # empagliflozin + linagliptin, saxagliptin + dapagliflozin, glimepiride + rosiglitazone,
    # pioglitazone + alogliptin: no metformin, so no B12 screening risk factor
    assert DrugClass.METFORMIN not in classify_drug_codes([(ATC, code)])


@pytest.mark.parametrize(
    "codings",
    [
        [(RXNORM, "999999")],  # unknown RxCUI
        [(RXNORM, "B03BA01")],  # an ATC code under the RxNorm system
        [(ATC, "6809")],  # an RxCUI under the ATC system
        [(SNOMED, "6809")],
        [(None, "6809")],
        [(RXNORM, None), (RXNORM, "")],
        [(ATC, "J04AB02")],  # rifampicin: J04 is not J01
        [(ATC, "A10BB01")],  # glibenclamide
        [],
    ],
)
def test_codes_outside_the_sets_or_under_another_system_do_not_classify(codings):
    assert classify_drug_codes(codings) == set()


def test_several_codings_union_their_classes():
    found = classify_drug_codes([(RXNORM, "6809"), (ATC, "A02BC01"), (RXNORM, "nope")])
    assert found == {D.METFORMIN, D.PPI}


# --- Drugs: names ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, classes",
    [
        ("Metformin hydrochloride 850 MG Oral Tablet", {D.METFORMIN}),
        ("METFORMIN HCL ER 500 MG TABLET", {D.METFORMIN}),
        ("sitagliptin 50 MG / metformin hydrochloride 1000 MG Oral Tablet", {D.METFORMIN}),
        ("Omeprazole 20 MG Delayed Release Oral Capsule", {D.PPI}),
        ("esomeprazole magnesium 40 MG", {D.PPI}),
        ("Famotidine 20 MG Oral Tablet", {D.H2_BLOCKER}),
        ("Folic Acid 1 MG Oral Tablet", {D.FOLIC_ACID}),
        ("Folate 400 MCG", {D.FOLIC_ACID}),
        ("Leucovorin Calcium 15 MG Oral Tablet", {D.FOLINIC_ACID}),
        ("Folinic acid 15 mg", {D.FOLINIC_ACID}),
        ("Calcium folinate 15 mg tablets", {D.FOLINIC_ACID}),
        ("levoleucovorin 50 MG Injection", {D.FOLINIC_ACID}),
        ("L-methylfolate calcium 15 MG Oral Tablet", {D.METHYLFOLATE}),
        ("Methylfolate 7.5 mg", {D.METHYLFOLATE}),
        ("5-methyltetrahydrofolate 1 mg", {D.METHYLFOLATE}),
        ("cyanocobalamin 1000 MCG/ML Injectable Solution", {D.CYANOCOBALAMIN}),
        ("Hydroxocobalamin 1 mg/mL solution for injection", {D.HYDROXOCOBALAMIN}),
        ("hydroxybalamin 1 mg", set()),
        ("Methylcobalamin 1000 MCG Sublingual Tablet", {D.METHYLCOBALAMIN}),
        ("Mecobalamin 500 mcg", {D.METHYLCOBALAMIN}),
        ("Methotrexate 2.5 MG Oral Tablet", {D.METHOTREXATE}),
        ("Colchicine 0.6 MG Oral Tablet", {D.COLCHICINE}),
        ("Pyrimethamine 25 MG Oral Tablet", {D.PYRIMETHAMINE}),
        ("Para-aminosalicylic acid 4 G granules", {D.AMINOSALICYLIC_ACID}),
        ("Entonox", {D.NITROUS_OXIDE}),
        ("Nitrous oxide 50% / oxygen 50%", {D.NITROUS_OXIDE}),
        ("Amoxicillin 500 MG Oral Capsule", {D.ANTIBIOTIC}),
        ("Cefalexin 500 mg", {D.ANTIBIOTIC}),
        ("Trimethoprim 200 mg tablets", {D.ANTIBIOTIC}),
        ("Paracetamol 500 mg", set()),
        ("Lisinopril 10 MG Oral Tablet", set()),
        ("", set()),
    ],
)
def test_name_fallback_classifies_case_insensitively(name, classes):
    assert classify_drug_name(name) == classes


def test_folinic_acid_is_not_folic_acid():
    assert D.FOLIC_ACID not in classify_drug_name("Folinic acid 15 mg")
    assert D.FOLIC_ACID not in classify_drug_name("Calcium folinate")


def test_methylfolate_is_not_folic_acid():
    assert D.FOLIC_ACID not in classify_drug_name("L-methylfolate 15 mg")


@pytest.mark.parametrize(
    "name, classes",
    [
        (
            "Folic acid 1 MG / cyanocobalamin 1 MG / pyridoxine 25 MG Oral Tablet",
            {D.FOLIC_ACID, D.CYANOCOBALAMIN},
        ),
        (
            "L-methylfolate / methylcobalamin / pyridoxal phosphate",
            {D.METHYLFOLATE, D.METHYLCOBALAMIN},
        ),
        ("Folic acid and leucovorin", {D.FOLIC_ACID, D.FOLINIC_ACID}),
        ("Metformin / omeprazole", {D.METFORMIN, D.PPI}),
        ("Sulfamethoxazole 800 MG / Trimethoprim 160 MG", {D.ANTIBIOTIC}),
    ],
)
def test_combination_products_give_every_class(name, classes):
    assert classify_drug_name(name) == classes


def test_name_classification_is_a_frozenset_and_cached():
    first = classify_drug_name("Metformin 500 MG")
    assert isinstance(first, frozenset)
    assert classify_drug_name("Metformin 500 MG") is first


# --- Conditions: codes -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "code, kind",
    [
        ("84027009", K.PERNICIOUS_ANAEMIA),
        ("190634004", K.B12_DEFICIENCY),
        ("34000006", K.ILEAL_CROHNS),
        ("44054006", K.TYPE2_DIABETES),
        ("709044004", K.CKD),
        ("77386006", K.PREGNANCY),
        ("396331005", K.COELIAC),
        ("25064002", K.HEADACHE),
        ("161891005", K.BACK_PAIN),
        ("279039007", K.BACK_PAIN),
        ("91019004", K.PARAESTHESIA),
        ("302226006", K.PERIPHERAL_NEUROPATHY),
        ("42345000", K.PERIPHERAL_NEUROPATHY),
        ("7200002", K.ALCOHOL_USE_DISORDER),
    ],
)
def test_snomed_condition_classifies(code, kind):
    assert kind in classify_condition([(SNOMED, code)], ())


def test_verified_snomed_codes_are_the_four_rules_md_lists():
    assert SNOMED_VERIFIED == {"84027009", "190634004", "34000006", "44054006"}


def test_pernicious_anaemia_implies_b12_deficiency_but_not_anaemia():
    # The diagnosis name is a malabsorption cause; anaemia is a haemoglobin or its own diagnosis.
    assert classify_condition([(SNOMED, "84027009")], ()) == {
        K.PERNICIOUS_ANAEMIA,
        K.B12_DEFICIENCY,
    }


@pytest.mark.parametrize(
    "code, kinds",
    [
        ("D51.0", {K.PERNICIOUS_ANAEMIA, K.B12_DEFICIENCY}),
        ("D510", {K.PERNICIOUS_ANAEMIA, K.B12_DEFICIENCY}),
        ("D51.1", {K.B12_DEFICIENCY}),
        ("D51.9", {K.B12_DEFICIENCY}),
        ("E53.8", {K.B12_DEFICIENCY}),
        ("D53.1", {K.MEGALOBLASTIC_ANAEMIA, K.ANAEMIA}),
        ("G32.0", {K.SUBACUTE_COMBINED_DEGENERATION}),
        ("K50.0", {K.ILEAL_CROHNS}),
        ("K50.00", {K.ILEAL_CROHNS}),
        ("K50.80", {K.ILEAL_CROHNS}),
        ("K50.90", {K.ILEAL_CROHNS}),
        ("N18.3", {K.CKD}),
        ("N18.30", {K.CKD}),
        ("N18.6", {K.CKD}),
        ("Z99.2", {K.DIALYSIS}),
        ("O99.019", {K.PREGNANCY}),
        ("O24.419", {K.PREGNANCY}),
        ("Z33.1", {K.PREGNANCY}),
        ("Z3A.20", {K.PREGNANCY}),
        ("Z31.69", {K.PRECONCEPTION}),
        ("Z98.84", {K.BARIATRIC_SURGERY}),
        ("K91.2", {K.POSTSURGICAL_MALABSORPTION}),
        ("Z90.49", {K.ILEAL_RESECTION}),
        ("Z90.3", {K.GASTRECTOMY}),
        ("K90.0", {K.COELIAC}),
        ("R51.9", {K.HEADACHE}),
        ("R51", {K.HEADACHE}),
        ("M54.5", {K.BACK_PAIN}),
        ("M54.50", {K.BACK_PAIN}),
        ("R20.2", {K.PARAESTHESIA}),
        ("G62.9", {K.PERIPHERAL_NEUROPATHY}),
        ("G63", {K.PERIPHERAL_NEUROPATHY}),
        ("R26.0", {K.ATAXIA}),
        ("R27.0", {K.ATAXIA}),
        ("F03.90", {K.COGNITIVE_IMPAIRMENT}),
        ("G31.84", {K.COGNITIVE_IMPAIRMENT}),
        ("H46.9", {K.OPTIC_NEUROPATHY}),
        ("H47.011", {K.OPTIC_NEUROPATHY}),
        ("G95.89", {K.MYELOPATHY}),
        ("F10.20", {K.ALCOHOL_USE_DISORDER}),
        ("F18.10", {K.NITROUS_OXIDE_USE}),
        ("F18.929", {K.NITROUS_OXIDE_USE}),
        ("T41.0X1A", {K.NITROUS_OXIDE_USE}),
        ("t41.0x1a", {K.NITROUS_OXIDE_USE}),
        ("D50.9", {K.ANAEMIA, K.EXPLAINED_ANAEMIA}),
        ("D64.9", {K.ANAEMIA}),
    ],
)
def test_icd10cm_prefix_classifies(code, kinds):
    assert classify_condition([(ICD10CM, code)], ()) == kinds


def test_icd10_who_system_is_read_too():
    assert classify_condition([(ICD10, "D51.0")], ()) >= {K.PERNICIOUS_ANAEMIA}


@pytest.mark.parametrize("code", ["K50.1", "K50.10", "K50.119"])
def test_colonic_crohns_k50_1_spares_the_ileum(code):
    assert classify_condition([(ICD10CM, code)], ()) == set()


@pytest.mark.parametrize(
    "codings",
    [
        [(ICD10CM, "T41.1X1A")],  # intravenous anaesthetics, not nitrous oxide
        [(ICD10CM, "I10")],
        [(ICD10CM, "D52.9")],  # folate deficiency anaemia
        [(SNOMED, "D51.0")],  # ICD code under the SNOMED system
        [(ICD10CM, "84027009")],
        [(LOINC, "2132-9")],
        [(None, "D51.0")],
        [(ICD10CM, None), (SNOMED, "")],
    ],
)
def test_codes_outside_the_sets_do_not_classify(codings):
    assert classify_condition(codings, ()) == set()


# --- Conditions: text ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, kind",
    [
        ("Pernicious anaemia", K.PERNICIOUS_ANAEMIA),
        ("Pernicious anemia", K.PERNICIOUS_ANAEMIA),
        ("Addisonian anaemia", K.PERNICIOUS_ANAEMIA),
        ("Autoimmune atrophic gastritis", K.AUTOIMMUNE_GASTRITIS),
        ("Intrinsic factor antibody positive", K.IF_ANTIBODY_POSITIVE),
        ("Status post Roux-en-Y gastric bypass", K.BARIATRIC_SURGERY),
        ("Sleeve gastrectomy", K.BARIATRIC_SURGERY),
        ("Total gastrectomy", K.GASTRECTOMY),
        ("Ileal resection", K.ILEAL_RESECTION),
        ("Crohn's disease of ileum", K.ILEAL_CROHNS),
        ("Crohn's disease", K.ILEAL_CROHNS),
        ("Subacute combined degeneration of spinal cord", K.SUBACUTE_COMBINED_DEGENERATION),
        ("Paraesthesia of both feet", K.PARAESTHESIA),
        ("Paresthesia", K.PARAESTHESIA),
        ("Tingling in hands", K.PARAESTHESIA),
        ("Diabetic peripheral neuropathy", K.PERIPHERAL_NEUROPATHY),
        ("Polyneuropathy", K.PERIPHERAL_NEUROPATHY),
        ("Unsteady gait", K.ATAXIA),
        ("Ataxia", K.ATAXIA),
        ("Loss of vibration sense", K.PROPRIOCEPTION_LOSS),
        ("Mild cognitive impairment", K.COGNITIVE_IMPAIRMENT),
        ("Optic neuropathy", K.OPTIC_NEUROPATHY),
        ("Myelopathy", K.MYELOPATHY),
        ("Headache", K.HEADACHE),
        ("Migraine without aura", K.HEADACHE),
        ("Low back pain", K.BACK_PAIN),
        ("Lumbago", K.BACK_PAIN),
        ("Vitamin B12 deficiency", K.B12_DEFICIENCY),
        ("Megaloblastic anaemia", K.MEGALOBLASTIC_ANAEMIA),
        ("Type 2 diabetes mellitus", K.TYPE2_DIABETES),
        ("Chronic kidney disease stage 3", K.CKD),
        ("Haemodialysis", K.DIALYSIS),
        ("Pregnancy", K.PREGNANCY),
        ("Normal pregnancy", K.PREGNANCY),
        ("Pregnant", K.PREGNANCY),
        ("Planning a pregnancy", K.PRECONCEPTION),
        ("Coeliac disease", K.COELIAC),
        ("Celiac disease", K.COELIAC),
        ("Alcohol dependence", K.ALCOHOL_USE_DISORDER),
        ("Recreational nitrous oxide use", K.NITROUS_OXIDE_USE),
        ("Vegan diet", K.VEGAN_DIET),
    ],
)
def test_condition_text_classifies(text, kind):
    assert kind in classify_condition((), [text])


@pytest.mark.parametrize(
    "text",
    ["Crohn's disease of colon", "Crohn's colitis", "Crohns disease of large intestine"],
)
def test_colonic_crohns_by_text_is_not_ileal(text):
    assert K.ILEAL_CROHNS not in classify_condition((), [text])


@pytest.mark.parametrize(
    "text",
    ["Planning a pregnancy", "Preconception counselling", "Trying to conceive", "Not pregnant"],
)
def test_text_that_names_no_pregnancy_is_not_a_pregnancy(text):
    assert K.PREGNANCY not in classify_condition((), [text])


def test_megaloblastic_anaemia_text_implies_anaemia():
    assert K.ANAEMIA in classify_condition((), ["Megaloblastic anaemia"])


def test_codes_and_text_union():
    found = classify_condition([(ICD10CM, "E11.9"), (SNOMED, "25064002")], ["Low back pain"])
    assert found == {K.HEADACHE, K.BACK_PAIN}


@pytest.mark.parametrize("texts", [(), ("",), ("Essential hypertension",)])
def test_unrelated_or_empty_text_does_not_classify(texts):
    assert classify_condition((), texts) == set()


# --- LOINC -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code, analyte",
    [
        ("2132-9", Analyte.TOTAL_B12),
        ("14685-2", Analyte.TOTAL_B12),
        ("16695-9", Analyte.TOTAL_B12),
        ("72160-5", Analyte.ACTIVE_B12),
        ("13964-2", Analyte.MMA),
        ("31444-3", Analyte.IF_ANTIBODY),
        ("98979-8", Analyte.EGFR),
        ("82810-3", Analyte.PREGNANCY_STATUS),
    ],
)
def test_loinc_analytes(code, analyte):
    assert LOINC_ANALYTES[code] is analyte
