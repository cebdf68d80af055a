"""A seeded synthetic adult population as a Bulk Data export (``cds-service synth``).

Everything is drawn from ``random.Random(seed)`` per patient (``seed`` and the patient's
number), so a population is the same on every machine and its first N patients are the same
whatever N. ``PREVALENCE`` below holds every rate with its provenance: a published figure
where one exists, ``illustrative`` where not (docs/go-live.md lists them). Not for inference
about any real population: it exists to exercise the rules at scale and to demonstrate the audit.
"""

from __future__ import annotations

import gzip
import json
import random
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from cds_service.domain.codes import ICD10CM, LOINC, RXNORM, SNOMED, UCUM


@dataclass(frozen=True)
class Rate:
    value: float
    source: str  # a citation, or "illustrative"


#: Every rate the generator uses (probabilities per adult unless said otherwise).
PREVALENCE: dict[str, Rate] = {
    "female": Rate(0.51, "ONS mid-year estimates, England and Wales adults (about 51%)"),
    "type2_diabetes": Rate(0.075, "QOF 2022-23, England: diabetes 7.5% of patients 17+"),
    "metformin_if_diabetes": Rate(0.75, "illustrative (first-line therapy, NICE NG28)"),
    "ppi": Rate(0.15, "illustrative (UK primary care studies report roughly 1 adult in 6-7)"),
    "b12_low_under_60": Rate(0.06, "Hunt et al., BMJ 2014;349:g5226: about 6% under 60"),
    "b12_low_60_plus": Rate(0.20, "Hunt et al., BMJ 2014;349:g5226: nearly 20% over 60"),
    "b12_low_extra_metformin": Rate(
        0.10, "illustrative (metformin lowers B12; ADA advises " "periodic testing)"
    ),
    "pernicious_anaemia_60_plus": Rate(0.019, "Hunt et al., BMJ 2014: 1.9% over 60"),
    "pernicious_anaemia_under_60": Rate(0.001, "Hunt et al., BMJ 2014: 0.1% overall"),
    "pregnant_if_female_18_44": Rate(
        0.045,
        "derived: about 10 live births per 1,000 people "
        "a year (ONS) x 0.75 year, over women 18-44",
    ),
    "bariatric_surgery": Rate(0.002, "illustrative"),
    "folic_acid_if_pregnant": Rate(0.7, "illustrative (NICE advises 400 micrograms a day)"),
    "folic_acid_otherwise": Rate(0.015, "illustrative"),
    "b12_tested_12_months": Rate(0.12, "illustrative"),
    "b12_tested_if_risk": Rate(0.45, "illustrative"),
    "b12_result_molar_units": Rate(0.3, "illustrative (labs report ng/L or pmol/L)"),
    "b12_borderline_if_tested": Rate(0.25, "illustrative"),
    "treated_if_low": Rate(0.5, "illustrative"),
    "cbc_with_b12": Rate(0.8, "illustrative"),
    "egfr_below_60_70_plus": Rate(0.3, "illustrative (CKD 3-5 is common after 70)"),
    "paraesthesia": Rate(0.02, "illustrative"),
}
#: Age bands of the adult population (lower bound, upper bound, share): illustrative, close
#: to the adult age structure of England and Wales.
AGE_BANDS = ((18, 39, 0.36), (40, 64, 0.41), (65, 74, 0.12), (75, 95, 0.11))


def _p(name: str) -> float:
    return PREVALENCE[name].value


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


class _Patient:
    def __init__(self, number: int, seed: int, as_of: date) -> None:
        self.rng = random.Random(f"{seed}:{number}")
        self.id = f"synth-{number:08d}"
        self.as_of = as_of
        self.resources: list[dict[str, Any]] = []
        self._n = 0

    def rid(self, prefix: str) -> str:
        self._n += 1
        return f"{self.id}-{prefix}{self._n}"

    def days_ago(self, low: int, high: int) -> str:
        return (self.as_of - timedelta(days=self.rng.randint(low, high))).isoformat()

    def add(self, resource: dict[str, Any]) -> None:
        self.resources.append(resource)

    def ref(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.id}"}

    def observation(self, loinc: str, display: str, value: float, unit: str, when: str) -> None:
        self.add(
            {
                "resourceType": "Observation",
                "id": self.rid("obs"),
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/"
                                "observation-category",
                                "code": "laboratory",
                            }
                        ]
                    }
                ],
                "code": _coding(LOINC, loinc, display),
                "subject": self.ref(),
                "effectiveDateTime": when,
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            }
        )

    def medication(
        self,
        kind: str,
        rxnorm: str,
        name: str,
        dose: float,
        unit: str,
        period_days: int,
        start: str,
        route: tuple[str, str] = ("26643006", "Oral route"),
    ) -> None:
        resource: dict[str, Any] = {
            "resourceType": kind,
            "id": self.rid("med"),
            "status": "active",
            "medicationCodeableConcept": _coding(RXNORM, rxnorm, name),
            "subject": self.ref(),
        }
        dosage = {
            "text": f"{dose:g} {unit} every {period_days} day(s)",
            "route": _coding(SNOMED, *route),
            "doseAndRate": [
                {"doseQuantity": {"value": dose, "unit": unit, "system": UCUM, "code": unit}}
            ],
            "timing": {"repeat": {"frequency": 1, "period": period_days, "periodUnit": "d"}},
        }
        if kind == "MedicationRequest":
            resource.update(intent="order", authoredOn=start, dosageInstruction=[dosage])
        else:
            resource.update(effectivePeriod={"start": start}, dosage=[dosage])
        self.add(resource)

    def condition(self, system: str, code: str, display: str, onset: str) -> None:
        self.add(
            {
                "resourceType": "Condition",
                "id": self.rid("cond"),
                "clinicalStatus": _coding(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"
                ),
                "verificationStatus": _coding(
                    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "confirmed",
                    "Confirmed",
                ),
                "code": _coding(system, code, display),
                "subject": self.ref(),
                "onsetDateTime": onset,
            }
        )


def patient_resources(number: int, seed: int, as_of: date) -> list[dict[str, Any]]:
    """One synthetic patient's resources (the Patient first)."""
    p = _Patient(number, seed, as_of)
    rng = p.rng
    draw = rng.random()
    for low, high, share in AGE_BANDS:
        if draw < share:
            break
        draw -= share
    age = rng.randint(low, high)
    female = rng.random() < _p("female")
    birth = as_of - timedelta(days=365 * age + rng.randint(0, 364))
    p.add(
        {
            "resourceType": "Patient",
            "id": p.id,
            "gender": "female" if female else "male",
            "birthDate": birth.isoformat(),
        }
    )
    risk = False
    if rng.random() < _p("type2_diabetes"):
        p.condition(SNOMED, "44054006", "Type 2 diabetes mellitus", p.days_ago(400, 5000))
        if rng.random() < _p("metformin_if_diabetes"):
            risk = True
            # Durations 1 month to 10 years: both sides of the 4-month window.
            start = p.days_ago(30, 3650)
            p.medication(
                "MedicationStatement",
                "861007",
                "metformin hydrochloride 500 MG Oral " "Tablet",
                1000,
                "mg",
                1,
                start,
            )
    if rng.random() < _p("ppi"):
        risk = True
        p.medication(
            "MedicationStatement",
            "198051",
            "omeprazole 20 MG Delayed Release Oral Capsule",
            20,
            "mg",
            1,
            p.days_ago(30, 2500),
        )
    pernicious = rng.random() < _p(
        "pernicious_anaemia_60_plus" if age >= 60 else "pernicious_anaemia_under_60"
    )
    if pernicious:
        p.condition(SNOMED, "84027009", "Pernicious anemia", p.days_ago(200, 4000))
    if rng.random() < _p("bariatric_surgery"):
        risk = True
        p.condition(ICD10CM, "Z98.84", "Bariatric surgery status", p.days_ago(400, 3000))
    pregnant = female and 18 <= age <= 44 and rng.random() < _p("pregnant_if_female_18_44")
    if pregnant:
        p.condition(SNOMED, "77386006", "Pregnancy", p.days_ago(20, 200))
    if rng.random() < _p("paraesthesia"):
        p.condition(SNOMED, "91019004", "Paresthesia", p.days_ago(10, 300))
    folic = rng.random() < _p("folic_acid_if_pregnant" if pregnant else "folic_acid_otherwise")
    if folic:
        mg = 0.4 if pregnant and rng.random() < 0.8 else 5
        p.medication(
            "MedicationRequest",
            "310410" if mg < 1 else "199318",
            "folic acid 400 MCG Oral Tablet" if mg < 1 else "folic acid 5 MG Oral Tablet",
            mg,
            "mg",
            1,
            p.days_ago(10, 400),
        )
    low_rate = _p("b12_low_60_plus" if age >= 60 else "b12_low_under_60")
    if risk:
        low_rate += _p("b12_low_extra_metformin")
    low = pernicious or rng.random() < low_rate
    tested = rng.random() < _p(
        "b12_tested_if_risk" if risk or low or age >= 75 else "b12_tested_12_months"
    )
    if tested:
        when = p.days_ago(5, 330)
        molar = rng.random() < _p("b12_result_molar_units")
        if low:
            ng_l = rng.uniform(80, 179)
        elif rng.random() < _p("b12_borderline_if_tested"):
            ng_l = rng.uniform(180, 350)
        else:
            ng_l = rng.uniform(351, 900)
        if molar:
            p.observation(
                "14685-2",
                "Cobalamin [Moles/volume] in Serum or Plasma",
                round(ng_l * 0.738, 0),
                "pmol/L",
                when,
            )
        else:
            p.observation(
                "2132-9",
                "Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma",
                round(ng_l, 0),
                "ng/L",
                when,
            )
        if rng.random() < _p("cbc_with_b12"):
            macro = low and rng.random() < 0.3
            hb_low = 12.0 if female else 13.0
            hb = rng.uniform(hb_low - 2.5, hb_low - 0.1) if macro else rng.uniform(hb_low, 16)
            p.observation("718-7", "Hemoglobin [Mass/volume] in Blood", round(hb, 1), "g/dL", when)
            mcv = rng.uniform(101, 115) if macro else rng.uniform(82, 99)
            p.observation(
                "787-2", "MCV [Entitic volume] by Automated count", round(mcv, 1), "fL", when
            )
        if low and rng.random() < _p("treated_if_low"):
            p.medication(
                "MedicationStatement",
                "317106",
                "hydroxocobalamin 1 MG/ML Injectable Solution",
                1,
                "mg",
                90,
                p.days_ago(30, 900),
                ("78421000", "Intramuscular route"),
            )
    if age >= 70 or risk:
        impaired = age >= 70 and rng.random() < _p("egfr_below_60_70_plus")
        egfr = rng.uniform(25, 59) if impaired else rng.uniform(60, 110)
        p.observation(
            "98979-8",
            "Glomerular filtration rate/1.73 sq M.predicted [Volume "
            "Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula "
            "(CKD-EPI 2021)",
            round(egfr),
            "mL/min/{1.73_m2}",
            p.days_ago(10, 330),
        )
    return p.resources


def write_population(
    out: Path,
    patients: int,
    *,
    seed: int = 16,
    as_of: datetime | date | None = None,
    gzip_files: bool = False,
) -> dict[str, int]:
    """Write ``<Type>.ndjson`` (or ``.ndjson.gz``) files; returns resources per type."""
    day = as_of.date() if isinstance(as_of, datetime) else (as_of or date.today())
    out.mkdir(parents=True, exist_ok=True)
    counts = {
        kind: 0
        for kind in (
            "Patient",
            "Observation",
            "MedicationStatement",
            "MedicationRequest",
            "Condition",
        )
    }
    suffix = ".ndjson.gz" if gzip_files else ".ndjson"
    with ExitStack() as stack:
        streams = {
            kind: stack.enter_context(
                gzip.open(out / f"{kind}{suffix}", "wt", encoding="utf-8")
                if gzip_files
                else open(out / f"{kind}{suffix}", "w", encoding="utf-8")
            )
            for kind in counts
        }
        for number in range(1, patients + 1):
            for resource in patient_resources(number, seed, day):
                kind = resource["resourceType"]
                streams[kind].write(json.dumps(resource, separators=(",", ":")) + "\n")
                counts[kind] += 1
    return counts
