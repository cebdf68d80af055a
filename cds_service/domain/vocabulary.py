"""The closed sets the rules speak in. Facts carry these, never raw codes."""

from __future__ import annotations

from enum import Enum, IntEnum


class _Term(Enum):
    """A vocabulary's terms are compared by identity (plain ``Enum``); hashed the same way.
    ``Enum.__hash__`` hashes the member's name in Python code, and facts, rules and sets of
    classes hash these terms many times per request."""

    __hash__ = object.__hash__


class Analyte(_Term):
    TOTAL_B12 = "total-b12"
    ACTIVE_B12 = "active-b12"
    MMA = "mma"
    HOMOCYSTEINE = "homocysteine"
    FOLATE = "folate"
    RBC_FOLATE = "rbc-folate"
    HAEMOGLOBIN = "haemoglobin"
    MCV = "mcv"
    PLATELETS = "platelets"
    HAEMATOCRIT = "haematocrit"
    RETICULOCYTES = "reticulocytes"
    POTASSIUM = "potassium"
    CREATININE = "creatinine"
    EGFR = "egfr"
    IF_ANTIBODY = "intrinsic-factor-antibody"
    PARIETAL_CELL_ANTIBODY = "parietal-cell-antibody"
    GASTRIN = "gastrin"
    PREGNANCY_STATUS = "pregnancy-status"


#: Results whose interpretation decides B12 status (rule book §2).
B12_FAMILY = frozenset({Analyte.TOTAL_B12, Analyte.ACTIVE_B12, Analyte.MMA})


class DrugClass(_Term):
    METFORMIN = "metformin"
    PPI = "proton pump inhibitor"
    H2_BLOCKER = "H2 blocker"
    FOLIC_ACID = "folic acid"
    FOLINIC_ACID = "folinic acid"
    METHYLFOLATE = "methylfolate"
    CYANOCOBALAMIN = "cyanocobalamin"
    HYDROXOCOBALAMIN = "hydroxocobalamin"
    METHYLCOBALAMIN = "methylcobalamin"
    METHOTREXATE = "methotrexate"
    COLCHICINE = "colchicine"
    PYRIMETHAMINE = "pyrimethamine"
    AMINOSALICYLIC_ACID = "para-aminosalicylic acid"
    NITROUS_OXIDE = "nitrous oxide"
    ANTIBIOTIC = "antibiotic"


B12_PRODUCTS = frozenset(
    {DrugClass.CYANOCOBALAMIN, DrugClass.HYDROXOCOBALAMIN, DrugClass.METHYLCOBALAMIN}
)
FOLATES = frozenset({DrugClass.FOLIC_ACID, DrugClass.FOLINIC_ACID, DrugClass.METHYLFOLATE})


class Route(_Term):
    ORAL = "oral"
    SUBLINGUAL = "sublingual"
    INTRAMUSCULAR = "intramuscular"
    SUBCUTANEOUS = "subcutaneous"
    INTRAVENOUS = "intravenous"
    INTRANASAL = "intranasal"
    UNKNOWN = "unknown"

    @property
    def parenteral(self) -> bool:
        return self in (Route.INTRAMUSCULAR, Route.SUBCUTANEOUS, Route.INTRAVENOUS)


class ConditionKind(_Term):
    # Malabsorption causes (rule book §1)
    PERNICIOUS_ANAEMIA = "pernicious anaemia"
    AUTOIMMUNE_GASTRITIS = "autoimmune gastritis"
    IF_ANTIBODY_POSITIVE = "intrinsic factor antibody positive"
    BARIATRIC_SURGERY = "bariatric surgery"
    GASTRECTOMY = "gastrectomy"
    ILEAL_RESECTION = "ileal resection"
    ILEAL_CROHNS = "ileal Crohn's disease"
    POSTSURGICAL_MALABSORPTION = "postsurgical malabsorption"
    # Neurological involvement
    SUBACUTE_COMBINED_DEGENERATION = "subacute combined degeneration"
    PARAESTHESIA = "paraesthesia"
    PERIPHERAL_NEUROPATHY = "peripheral neuropathy"
    ATAXIA = "ataxia / gait disturbance"
    PROPRIOCEPTION_LOSS = "loss of proprioception"
    COGNITIVE_IMPAIRMENT = "cognitive impairment"
    OPTIC_NEUROPATHY = "optic neuropathy"
    MYELOPATHY = "myelopathy"
    HEADACHE = "headache"
    BACK_PAIN = "back pain"
    # Other context
    B12_DEFICIENCY = "vitamin B12 deficiency"
    MEGALOBLASTIC_ANAEMIA = "megaloblastic anaemia"
    ANAEMIA = "anaemia"
    #: An anaemia whose cause is recorded (iron deficiency, blood loss, kidney disease, a
    #: haemoglobinopathy, haemolysis): not "unexplained anaemia" for screening.
    EXPLAINED_ANAEMIA = "anaemia with a recorded cause"
    TYPE2_DIABETES = "type 2 diabetes"
    CKD = "chronic kidney disease"
    DIALYSIS = "dialysis"
    PREGNANCY = "pregnancy"
    PRECONCEPTION = "planning pregnancy"
    COELIAC = "coeliac disease"
    ALCOHOL_USE_DISORDER = "heavy alcohol use"
    NITROUS_OXIDE_USE = "nitrous oxide use"
    VEGAN_DIET = "vegan / strict vegetarian diet"


MALABSORPTION_CAUSES = frozenset(
    {
        ConditionKind.PERNICIOUS_ANAEMIA,
        ConditionKind.AUTOIMMUNE_GASTRITIS,
        ConditionKind.IF_ANTIBODY_POSITIVE,
        ConditionKind.BARIATRIC_SURGERY,
        ConditionKind.GASTRECTOMY,
        ConditionKind.ILEAL_RESECTION,
        ConditionKind.ILEAL_CROHNS,
        ConditionKind.POSTSURGICAL_MALABSORPTION,
    }
)

#: Neurological involvement per rule book §1. Headache and back pain are only
#: *possible* involvement (the product brief's reading); sites may drop them.
DEFINITE_NEUROLOGICAL = frozenset(
    {
        ConditionKind.SUBACUTE_COMBINED_DEGENERATION,
        ConditionKind.PARAESTHESIA,
        ConditionKind.PERIPHERAL_NEUROPATHY,
        ConditionKind.ATAXIA,
        ConditionKind.PROPRIOCEPTION_LOSS,
        ConditionKind.COGNITIVE_IMPAIRMENT,
        ConditionKind.OPTIC_NEUROPATHY,
        ConditionKind.MYELOPATHY,
    }
)
POSSIBLE_NEUROLOGICAL = frozenset({ConditionKind.HEADACHE, ConditionKind.BACK_PAIN})


class Sex(_Term):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class Indicator(IntEnum):
    """Card urgency, ordered: info < warning < critical."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def code(self) -> str:
        return self.name.lower()


class DataCategory(_Term):
    """What a prefetch key provides, so that a card can say which data were missing."""

    PATIENT = "patient"
    B12_LABS = "B12 results"
    BLOOD_COUNTS = "blood counts"
    RENAL_LABS = "renal function and potassium results"
    MEDICATIONS = "medications"
    CONDITIONS = "conditions"
