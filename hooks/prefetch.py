"""Prefetch templates shared by the three services (CDS Hooks 2.0 query subset only:
token equality with comma for OR, ``_sort=-date``, ``_count``).

The LOINC lists come from cds_service.domain.codes, so a code added there is fetched here.
"""

from cds_service.cdshooks.service import Prefetch
from cds_service.domain.codes import LOINC, LOINC_ANALYTES
from cds_service.domain.vocabulary import Analyte, DataCategory

_B12_FAMILY = {
    Analyte.TOTAL_B12,
    Analyte.ACTIVE_B12,
    Analyte.MMA,
    Analyte.HOMOCYSTEINE,
    Analyte.FOLATE,
    Analyte.RBC_FOLATE,
    Analyte.IF_ANTIBODY,
    Analyte.PARIETAL_CELL_ANTIBODY,
    Analyte.GASTRIN,
    Analyte.PREGNANCY_STATUS,
}
_BLOOD_COUNTS = {
    Analyte.HAEMOGLOBIN,
    Analyte.MCV,
    Analyte.PLATELETS,
    Analyte.HAEMATOCRIT,
    Analyte.RETICULOCYTES,
}
_RENAL = {Analyte.POTASSIUM, Analyte.CREATININE, Analyte.EGFR}


def _codes(analytes: set[Analyte]) -> str:
    return ",".join(f"{LOINC}|{code}" for code, a in LOINC_ANALYTES.items() if a in analytes)


def _observations(analytes: set[Analyte]) -> str:
    return (
        "Observation?patient={{context.patientId}}&code="
        + _codes(analytes)
        + "&_sort=-date&_count=100"
    )


def templates(*, patient_required: bool = False) -> dict[str, Prefetch]:
    return {
        "patient": Prefetch(
            "Patient/{{context.patientId}}", DataCategory.PATIENT, patient_required
        ),
        "b12Labs": Prefetch(_observations(_B12_FAMILY), DataCategory.B12_LABS),
        "bloodCounts": Prefetch(_observations(_BLOOD_COUNTS), DataCategory.BLOOD_COUNTS),
        "renalLabs": Prefetch(_observations(_RENAL), DataCategory.RENAL_LABS),
        "medicationStatements": Prefetch(
            "MedicationStatement?patient={{context.patientId}}&_count=100", DataCategory.MEDICATIONS
        ),
        "medicationRequests": Prefetch(
            "MedicationRequest?patient={{context.patientId}}"
            "&status=active,completed,on-hold&_count=100",
            DataCategory.MEDICATIONS,
        ),
        "conditions": Prefetch(
            "Condition?patient={{context.patientId}}&_count=100", DataCategory.CONDITIONS
        ),
    }
