"""Code systems and the code sets the rules use (rule book §5).

Every clinical code lives here, once, with the row of the specification it comes from.
Classification falls back to display text where docs/rulebook.md says codes are unverified, so a
product we have no code for ("Metformin hydrochloride 850 MG Oral Tablet") still classifies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from .vocabulary import Analyte, ConditionKind, DrugClass

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
UCUM = "http://unitsofmeasure.org"

#: The code system of ``source.topic`` on every card: the rule id is its code.
RULE_CODE_SYSTEM = "https://b12-cds.example.org/CodeSystem/b12-rules"
#: The code system of our override reasons.
OVERRIDE_REASON_SYSTEM = "https://b12-cds.example.org/CodeSystem/override-reason"

# --- LOINC (rule book §5, "LOINC") -----------------------------------------------------
LOINC_ANALYTES: dict[str, Analyte] = {
    "2132-9": Analyte.TOTAL_B12,  # mass, serum/plasma
    "14685-2": Analyte.TOTAL_B12,  # molar, serum/plasma
    "16695-9": Analyte.TOTAL_B12,  # blood: accepted on input, never emitted
    "72160-5": Analyte.ACTIVE_B12,
    "13964-2": Analyte.MMA,
    "13965-9": Analyte.HOMOCYSTEINE,
    "2284-8": Analyte.FOLATE,
    "14732-2": Analyte.FOLATE,
    "2283-0": Analyte.RBC_FOLATE,
    "31444-3": Analyte.IF_ANTIBODY,
    "31443-5": Analyte.IF_ANTIBODY,
    "8087-9": Analyte.PARIETAL_CELL_ANTIBODY,
    "40960-7": Analyte.PARIETAL_CELL_ANTIBODY,
    "2333-3": Analyte.GASTRIN,
    "718-7": Analyte.HAEMOGLOBIN,
    "59260-0": Analyte.HAEMOGLOBIN,
    "787-2": Analyte.MCV,
    "30428-7": Analyte.MCV,
    "777-3": Analyte.PLATELETS,
    "26515-7": Analyte.PLATELETS,
    "4544-3": Analyte.HAEMATOCRIT,
    "20570-8": Analyte.HAEMATOCRIT,
    "4679-7": Analyte.RETICULOCYTES,
    "17849-1": Analyte.RETICULOCYTES,
    "14196-0": Analyte.RETICULOCYTES,
    "2823-3": Analyte.POTASSIUM,
    "6298-4": Analyte.POTASSIUM,
    "77142-8": Analyte.POTASSIUM,
    "2160-0": Analyte.CREATININE,
    "14682-9": Analyte.CREATININE,
    "98979-8": Analyte.EGFR,
    "62238-1": Analyte.EGFR,
    "33914-3": Analyte.EGFR,
    "48642-3": Analyte.EGFR,
    "48643-1": Analyte.EGFR,
    "88293-6": Analyte.EGFR,
    "88294-4": Analyte.EGFR,
    "50044-7": Analyte.EGFR,
    "70969-1": Analyte.EGFR,
    "69405-9": Analyte.EGFR,
    "82810-3": Analyte.PREGNANCY_STATUS,  # Pregnancy status (LOINC answer list LL4129-4)
}

# Codes we emit on orders (never 16695-9, rule book §5).
LOINC_TOTAL_B12 = "2132-9"
LOINC_ACTIVE_B12 = "72160-5"
LOINC_MMA = "13964-2"
LOINC_HOMOCYSTEINE = "13965-9"
LOINC_FOLATE = "2284-8"
LOINC_IF_ANTIBODY = "31444-3"
LOINC_POTASSIUM = "2823-3"
LOINC_RETICULOCYTES = "4679-7"
LOINC_CBC = "58410-2"  # CBC panel, automated count
LOINC_H_PYLORI_STOOL_AG = "17780-8"  # Helicobacter pylori Ag [Presence] in Stool
LOINC_TTG_IGA = "31017-7"  # Tissue transglutaminase IgA Ab [Units/volume] in Serum

LOINC_DISPLAY: dict[str, str] = {
    LOINC_TOTAL_B12: "Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma",
    LOINC_ACTIVE_B12: "Holotranscobalamin [Moles/volume] in Serum or Plasma",
    LOINC_MMA: "Methylmalonate [Moles/volume] in Serum or Plasma",
    LOINC_HOMOCYSTEINE: "Homocysteine [Moles/volume] in Serum or Plasma",
    LOINC_FOLATE: "Folate [Mass/volume] in Serum or Plasma",
    LOINC_IF_ANTIBODY: "Intrinsic factor Ab [Presence] in Serum",
    LOINC_POTASSIUM: "Potassium [Moles/volume] in Serum or Plasma",
    LOINC_RETICULOCYTES: "Reticulocytes/Erythrocytes in Blood by Automated count",
    LOINC_CBC: "CBC panel - Blood by Automated count",
    LOINC_H_PYLORI_STOOL_AG: "Helicobacter pylori Ag [Presence] in Stool",
    LOINC_TTG_IGA: "Tissue transglutaminase IgA Ab [Units/volume] in Serum",
}

# --- Medications (rule book §5, "RxNorm ingredients ... and ATC") ----------------------
RXNORM_INGREDIENTS: dict[str, DrugClass] = {
    "6809": DrugClass.METFORMIN,
    "7646": DrugClass.PPI,
    "40790": DrugClass.PPI,
    "17128": DrugClass.PPI,
    "114979": DrugClass.PPI,
    "283742": DrugClass.PPI,
    "816346": DrugClass.PPI,
    "2541": DrugClass.H2_BLOCKER,
    "9143": DrugClass.H2_BLOCKER,
    "4278": DrugClass.H2_BLOCKER,
    "42319": DrugClass.H2_BLOCKER,
    "4511": DrugClass.FOLIC_ACID,
    "6313": DrugClass.FOLINIC_ACID,
    "11248": DrugClass.CYANOCOBALAMIN,
    "6851": DrugClass.METHOTREXATE,
}

#: Curated clinical-drug (SCD) codes. Product codes are many; names are the fallback.
RXNORM_CLINICAL_DRUGS: dict[str, DrugClass] = {
    "861007": DrugClass.METFORMIN,  # metformin hydrochloride 500 MG Oral Tablet
    "861004": DrugClass.METFORMIN,
    "861010": DrugClass.METFORMIN,
    "860975": DrugClass.METFORMIN,
    "198051": DrugClass.PPI,  # omeprazole 20 MG Delayed Release Oral Capsule
    "310410": DrugClass.FOLIC_ACID,  # folic acid 1 MG Oral Tablet
    "199318": DrugClass.FOLIC_ACID,  # folic acid 5 MG Oral Tablet
    "309594": DrugClass.CYANOCOBALAMIN,  # cyanocobalamin 1000 MCG/ML Injectable Solution
    "317106": DrugClass.HYDROXOCOBALAMIN,  # hydroxocobalamin 1 MG/ML Injectable Solution
}

#: Codes we put on suggested orders.
RXNORM_HYDROXOCOBALAMIN_INJECTION = ("317106", "hydroxocobalamin 1 MG/ML Injectable Solution")
RXNORM_CYANOCOBALAMIN_INJECTION = ("309594", "cyanocobalamin 1 MG/ML Injectable Solution")
RXNORM_CYANOCOBALAMIN_ORAL_1000 = ("308862", "cyanocobalamin 1000 MCG Oral Tablet")

#: ATC prefixes, longest match wins.
ATC_PREFIXES: dict[str, DrugClass] = {
    "A10BA02": DrugClass.METFORMIN,
    "A10BD": DrugClass.METFORMIN,  # combinations containing metformin
    "A02BC": DrugClass.PPI,
    "A02BA": DrugClass.H2_BLOCKER,
    "B03BB01": DrugClass.FOLIC_ACID,
    "V03AF03": DrugClass.FOLINIC_ACID,
    "B03BA01": DrugClass.CYANOCOBALAMIN,
    "B03BA03": DrugClass.HYDROXOCOBALAMIN,
    "B03BA05": DrugClass.METHYLCOBALAMIN,
    "L01BA01": DrugClass.METHOTREXATE,
    "L04AX03": DrugClass.METHOTREXATE,
    "M04AC01": DrugClass.COLCHICINE,
    "P01BD01": DrugClass.PYRIMETHAMINE,
    "J04AA01": DrugClass.AMINOSALICYLIC_ACID,
    "N01AX13": DrugClass.NITROUS_OXIDE,
    "J01": DrugClass.ANTIBIOTIC,  # antibacterials for systemic use (assay interference)
}
#: A10BD combinations without metformin (WHO ATC index): phenformin + sulfonylureas,
#: glimepiride + rosiglitazone / pioglitazone, pioglitazone + alogliptin / sitagliptin,
#: empagliflozin + linagliptin, saxagliptin + dapagliflozin, sitagliptin + ertugliflozin.
#: The bare prefix made them metformin and so a B12 screening risk factor they are not.
ATC_NOT_METFORMIN = frozenset(
    {"A10BD01", "A10BD04", "A10BD06", "A10BD09", "A10BD12", "A10BD19", "A10BD21", "A10BD24"}
)

_DRUG_NAMES: tuple[tuple[re.Pattern[str], DrugClass], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), drug)
    for pattern, drug in (
        (r"\bmetformin", DrugClass.METFORMIN),
        (
            r"\b(omeprazole|esomeprazole|pantoprazole|lansoprazole|dexlansoprazole|rabeprazole)",
            DrugClass.PPI,
        ),
        (r"\b(cimetidine|ranitidine|famotidine|nizatidine)", DrugClass.H2_BLOCKER),
        (r"\b(folinic acid|leucovorin|calcium folinate|levoleucovorin)", DrugClass.FOLINIC_ACID),
        (r"\b(l-?methylfolate|methylfolate|methyltetrahydrofolate)", DrugClass.METHYLFOLATE),
        (r"\b(folic acid|folate)\b", DrugClass.FOLIC_ACID),
        (r"\bcyanocobalamin", DrugClass.CYANOCOBALAMIN),
        (r"\bhydroxo(co)?balamin", DrugClass.HYDROXOCOBALAMIN),
        (r"\bmethylcobalamin|\bmecobalamin", DrugClass.METHYLCOBALAMIN),
        (r"\bmethotrexate", DrugClass.METHOTREXATE),
        (r"\bcolchicine", DrugClass.COLCHICINE),
        (r"\bpyrimethamine", DrugClass.PYRIMETHAMINE),
        (
            r"\b(para-?aminosalicylic|aminosalicylic acid|aminosalicylate sodium)",
            DrugClass.AMINOSALICYLIC_ACID,
        ),
        (r"\bnitrous oxide|\bentonox", DrugClass.NITROUS_OXIDE),
        (
            r"\b(amoxicillin|ampicillin|penicillin|flucloxacillin|cef\w+|ceph\w+|doxycycline|"
            r"minocycline|tetracycline|azithromycin|clarithromycin|erythromycin|ciprofloxacin|"
            r"levofloxacin|moxifloxacin|trimethoprim|sulfamethoxazole|co-trimoxazole|"
            r"nitrofurantoin|metronidazole|clindamycin|vancomycin|gentamicin|linezolid|"
            r"meropenem|piperacillin)",
            DrugClass.ANTIBIOTIC,
        ),
    )
)
# Folic acid must not match "folinic"; "folate" alone names folic acid in product names, but
# methylfolate / folinic are checked first and exclude it (see classify_drug_name).


def classify_drug_codes(codings: Iterable[tuple[str | None, str | None]]) -> set[DrugClass]:
    """Classes from (system, code) pairs: RxNorm ingredient or curated SCD, or ATC prefix."""
    found: set[DrugClass] = set()
    for system, code in codings:
        if not code:
            continue
        if system == RXNORM:
            drug = RXNORM_INGREDIENTS.get(code) or RXNORM_CLINICAL_DRUGS.get(code)
            if drug:
                found.add(drug)
        elif system == ATC:
            atc = code.strip().upper()
            for prefix, drug in ATC_PREFIXES.items():
                if atc.startswith(prefix):
                    if drug is DrugClass.METFORMIN and atc in ATC_NOT_METFORMIN:
                        continue
                    found.add(drug)
    return found


def classify_drug_name(name: str) -> frozenset[DrugClass]:
    """Ingredient-name fallback, case-insensitive. Combination products give several classes.

    Cached: product names are a small vocabulary that recurs across every request.
    """
    return _classify_drug_name(name)


@lru_cache(maxsize=8192)
def _classify_drug_name(name: str) -> frozenset[DrugClass]:
    found = {drug for pattern, drug in _DRUG_NAMES if pattern.search(name)}
    if DrugClass.FOLIC_ACID in found and (
        DrugClass.FOLINIC_ACID in found or DrugClass.METHYLFOLATE in found
    ):
        if not re.search(r"\bfolic acid\b", name, re.IGNORECASE):
            found.discard(DrugClass.FOLIC_ACID)
    return frozenset(found)


# --- Conditions (rule book §5, "SNOMED CT / ICD-10-CM") --------------------------------
SNOMED_CONDITIONS: dict[str, ConditionKind] = {
    "84027009": ConditionKind.PERNICIOUS_ANAEMIA,  # verified
    "190634004": ConditionKind.B12_DEFICIENCY,  # verified
    # Crohn's disease, verified. Most Crohn's involves the terminal ileum, so an unspecified
    # record counts as a malabsorption cause (a test rather than a missed deficiency).
    "34000006": ConditionKind.ILEAL_CROHNS,
    "44054006": ConditionKind.TYPE2_DIABETES,  # verified
    "709044004": ConditionKind.CKD,
    "77386006": ConditionKind.PREGNANCY,
    "396331005": ConditionKind.COELIAC,
    "25064002": ConditionKind.HEADACHE,
    "161891005": ConditionKind.BACK_PAIN,
    "279039007": ConditionKind.BACK_PAIN,
    "91019004": ConditionKind.PARAESTHESIA,
    "302226006": ConditionKind.PERIPHERAL_NEUROPATHY,
    "42345000": ConditionKind.PERIPHERAL_NEUROPATHY,
    "7200002": ConditionKind.ALCOHOL_USE_DISORDER,
}
#: SNOMED codes docs/rulebook.md marks verified; the others must also be matched by display text.
SNOMED_VERIFIED = frozenset({"84027009", "190634004", "34000006", "44054006"})

#: ICD-10(-CM) prefixes, longest match wins (dots ignored).
ICD10_PREFIXES: dict[str, ConditionKind] = {
    "D510": ConditionKind.PERNICIOUS_ANAEMIA,
    "D51": ConditionKind.B12_DEFICIENCY,
    "D53.1": ConditionKind.MEGALOBLASTIC_ANAEMIA,
    "E538": ConditionKind.B12_DEFICIENCY,
    "G320": ConditionKind.SUBACUTE_COMBINED_DEGENERATION,
    # Crohn's of the small intestine, both, or unspecified; K50.1 (colon only) spares the ileum.
    "K50.0": ConditionKind.ILEAL_CROHNS,
    "K50.8": ConditionKind.ILEAL_CROHNS,
    "K50.9": ConditionKind.ILEAL_CROHNS,
    "N18": ConditionKind.CKD,
    "Z992": ConditionKind.DIALYSIS,
    "Z331": ConditionKind.PREGNANCY,
    "Z3A": ConditionKind.PREGNANCY,
    "O": ConditionKind.PREGNANCY,
    "Z9884": ConditionKind.BARIATRIC_SURGERY,
    "K912": ConditionKind.POSTSURGICAL_MALABSORPTION,
    "Z9049": ConditionKind.ILEAL_RESECTION,
    "Z903": ConditionKind.GASTRECTOMY,
    "K900": ConditionKind.COELIAC,
    "R51": ConditionKind.HEADACHE,
    "M54": ConditionKind.BACK_PAIN,
    "R202": ConditionKind.PARAESTHESIA,
    "G62": ConditionKind.PERIPHERAL_NEUROPATHY,
    "G63": ConditionKind.PERIPHERAL_NEUROPATHY,
    "R26": ConditionKind.ATAXIA,
    "R27": ConditionKind.ATAXIA,
    "F03": ConditionKind.COGNITIVE_IMPAIRMENT,
    "G31.84": ConditionKind.COGNITIVE_IMPAIRMENT,
    "R41": ConditionKind.COGNITIVE_IMPAIRMENT,
    "H46": ConditionKind.OPTIC_NEUROPATHY,
    "H47.0": ConditionKind.OPTIC_NEUROPATHY,
    "G95": ConditionKind.MYELOPATHY,
    "F10": ConditionKind.ALCOHOL_USE_DISORDER,
    "F18": ConditionKind.NITROUS_OXIDE_USE,
    "T410X": ConditionKind.NITROUS_OXIDE_USE,
    "Z3169": ConditionKind.PRECONCEPTION,
    "D50": ConditionKind.EXPLAINED_ANAEMIA,  # iron deficiency anaemia
    "D55": ConditionKind.EXPLAINED_ANAEMIA,  # D55-D59 haemolytic anaemias
    "D56": ConditionKind.EXPLAINED_ANAEMIA,
    "D57": ConditionKind.EXPLAINED_ANAEMIA,
    "D58": ConditionKind.EXPLAINED_ANAEMIA,
    "D59": ConditionKind.EXPLAINED_ANAEMIA,
    "D62": ConditionKind.EXPLAINED_ANAEMIA,  # acute posthaemorrhagic anaemia
    "D63": ConditionKind.EXPLAINED_ANAEMIA,  # anaemia in chronic disease / CKD
    "D64.9": ConditionKind.ANAEMIA,
}
ICD10_PREFIXES = {key.replace(".", ""): kind for key, kind in ICD10_PREFIXES.items()}

_CONDITION_NAMES: tuple[tuple[re.Pattern[str], ConditionKind], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (r"pernicious an(a)?emia|addison(ian|'s)? an(a)?emia", ConditionKind.PERNICIOUS_ANAEMIA),
        (r"autoimmune (atrophic )?gastritis", ConditionKind.AUTOIMMUNE_GASTRITIS),
        (r"intrinsic factor antibod\w* (positive|present)", ConditionKind.IF_ANTIBODY_POSITIVE),
        (
            r"bariatric|gastric bypass|roux-en-y|sleeve gastrectomy|gastric band",
            ConditionKind.BARIATRIC_SURGERY,
        ),
        (r"(?<!sleeve )gastrectomy", ConditionKind.GASTRECTOMY),
        (r"ileal resection|ileectomy|resection of (the )?ileum", ConditionKind.ILEAL_RESECTION),
        (
            r"crohn(?!'?s? (disease )?of (the )?(colon|large intestine)|'?s? colitis)",
            ConditionKind.ILEAL_CROHNS,
        ),
        (r"postsurgical malabsorption", ConditionKind.POSTSURGICAL_MALABSORPTION),
        (r"subacute combined degeneration", ConditionKind.SUBACUTE_COMBINED_DEGENERATION),
        (
            r"pa?raesthesia|paresthesia|pins and needles|tingling|numbness",
            ConditionKind.PARAESTHESIA,
        ),
        (r"(peripheral |poly)neuropathy", ConditionKind.PERIPHERAL_NEUROPATHY),
        (r"ataxia|gait (disturbance|abnormality|disorder)|unsteady gait", ConditionKind.ATAXIA),
        (
            r"(loss of|impaired) (proprioception|vibration sense)|proprioceptive",
            ConditionKind.PROPRIOCEPTION_LOSS,
        ),
        (
            r"cognitive (impairment|decline)|memory (loss|impairment)|dementia",
            ConditionKind.COGNITIVE_IMPAIRMENT,
        ),
        (r"optic (neuropathy|atrophy|neuritis)", ConditionKind.OPTIC_NEUROPATHY),
        (r"myelopathy", ConditionKind.MYELOPATHY),
        (r"headache|migraine|cephalalgia", ConditionKind.HEADACHE),
        (r"back pain|backache|lumbago|dorsalgia", ConditionKind.BACK_PAIN),
        (r"(vitamin )?b12 deficiency|cobalamin deficiency", ConditionKind.B12_DEFICIENCY),
        (r"megaloblastic", ConditionKind.MEGALOBLASTIC_ANAEMIA),
        # Any anaemia diagnosis but the *name* pernicious / Addisonian anaemia, which is a
        # malabsorption cause and not a haemoglobin.
        (
            r"(?<!pernicious )(?<!addisonian )(?<!addison's )\ban(a)?emi(a|c)\b",
            ConditionKind.ANAEMIA,
        ),
        (
            r"iron[- ]deficien\w* an(a)?emia|an(a)?emia (of|in|due to) (chronic|ckd|renal|kidney)"
            r"|renal an(a)?emia|blood loss an(a)?emia|(post)?ha?emorrhagic an(a)?emia"
            r"|thalass(a)?emia|sickle cell (an(a)?emia|disease)|ha?emolytic an(a)?emia",
            ConditionKind.EXPLAINED_ANAEMIA,
        ),
        (
            r"type 2 diabetes|diabetes mellitus type 2|type ii diabetes",
            ConditionKind.TYPE2_DIABETES,
        ),
        (
            r"chronic kidney disease|\bckd\b|chronic renal (failure|insufficiency)",
            ConditionKind.CKD,
        ),
        (r"dialysis", ConditionKind.DIALYSIS),
        (
            r"^(normal )?pregnan|\bpregnancy\b|(?<!not )(?<!non-)\bpregnant\b",
            ConditionKind.PREGNANCY,
        ),
        (
            r"planning (a )?pregnancy|pre-?conception|trying to conceive",
            ConditionKind.PRECONCEPTION,
        ),
        (r"c(o)?eliac", ConditionKind.COELIAC),
        (
            r"alcohol (use disorder|dependence|abuse)|alcoholism|harmful (use of )?alcohol",
            ConditionKind.ALCOHOL_USE_DISORDER,
        ),
        (r"nitrous oxide|laughing gas|\bn2o\b", ConditionKind.NITROUS_OXIDE_USE),
        (r"\bvegan\b|strict vegetarian", ConditionKind.VEGAN_DIET),
    )
)


@lru_cache(maxsize=8192)
def _condition_name_kinds(text: str) -> frozenset[ConditionKind]:
    found = {kind for pattern, kind in _CONDITION_NAMES if pattern.search(text)}
    if ConditionKind.PRECONCEPTION in found:
        # "Planning a pregnancy" names pre-conception, not a pregnancy (the pregnancy pattern
        # also matched it, and pregnancy-b12 / the folic-acid exception then misread it).
        found.discard(ConditionKind.PREGNANCY)
    return frozenset(found)


@lru_cache(maxsize=8192)
def _icd_kind(code: str) -> ConditionKind | None:
    compact = code.replace(".", "").upper()
    best: tuple[int, ConditionKind] | None = None
    for prefix, kind in ICD10_PREFIXES.items():
        if compact.startswith(prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), kind)
    return best[1] if best else None


def classify_condition(
    codings: Iterable[tuple[str | None, str | None]], texts: Iterable[str]
) -> set[ConditionKind]:
    """Kinds from SNOMED CT codes, ICD-10(-CM) prefixes and display text."""
    found: set[ConditionKind] = set()
    for system, code in codings:
        if not code:
            continue
        if system == SNOMED and code in SNOMED_CONDITIONS:
            found.add(SNOMED_CONDITIONS[code])
        elif system in (ICD10CM, ICD10):
            kind = _icd_kind(code)
            if kind:
                found.add(kind)
    for text in texts:
        if text:
            found.update(_condition_name_kinds(text))
    if ConditionKind.MEGALOBLASTIC_ANAEMIA in found or ConditionKind.EXPLAINED_ANAEMIA in found:
        found.add(ConditionKind.ANAEMIA)
    if ConditionKind.PERNICIOUS_ANAEMIA in found:
        # A malabsorption cause (and B12 deficiency), never evidence of anaemia by itself.
        found.add(ConditionKind.B12_DEFICIENCY)
    return found
