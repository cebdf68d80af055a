"""The vocabulary scenarios are written in: a fixed evaluation time, dates relative to it, a
patient chart that fills the seven prefetch keys, and a small formulary of products.

Synthetic data only: every patient is "Synthetic", every id is made up (``pat-metformin``).
FHIR JSON comes from ``tests.fhirjson``; this module only adds what those builders leave out
(course length, end dates, dosage text, coded results, onsets, DSTU2 orders).
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from tests import fhirjson as fj

#: The one evaluation time of every scenario unless a scenario says otherwise.
EVALUATION_TIME = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)

ORDER_SIGN = "b12-order-sign"
ORDER_SELECT = "b12-order-select"
PATIENT_VIEW = "b12-patient-view"
HOOKS = {ORDER_SIGN: "order-sign", ORDER_SELECT: "order-select", PATIENT_VIEW: "patient-view"}

ORAL = ("26643006", "Oral route")
IM = ("78421000", "Intramuscular route")
ATC = "http://www.whocc.no/atc"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def iso_instant(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class When:
    """FHIR dates relative to a scenario's evaluation time (so fixtures never rot)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.today_date = now.date()

    def today(self) -> str:
        return self.today_date.isoformat()

    def days_ago(self, days: int) -> str:
        return (self.today_date - timedelta(days=days)).isoformat()

    def weeks_ago(self, weeks: int) -> str:
        return self.days_ago(7 * weeks)

    def months_ago(self, months: int) -> str:
        """Calendar months back (15 June -> 15 February for 4), day clipped to the month."""
        return _months_back(self.today_date, months).isoformat()

    def years_ago(self, years: int) -> str:
        return _months_back(self.today_date, 12 * years).isoformat()

    def days_ahead(self, days: int) -> str:
        return (self.today_date + timedelta(days=days)).isoformat()

    def born(self, age: int) -> str:
        """A birth date that makes the patient ``age`` today (birthday a month ago)."""
        return (_months_back(self.today_date, 12 * age) - timedelta(days=30)).isoformat()


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- Products -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Product:
    """A medicine as an EHR codes it (RxNorm SCD where rule book §5 lists one)."""

    text: str
    rxnorm: str | None = None
    route: tuple[str, str] | None = None
    dose: tuple[float, str] | None = None
    every: tuple[float, str] | None = None
    sig: str | None = None
    atc: str | None = None


METFORMIN = Product(
    "Metformin hydrochloride 500 MG Oral Tablet",
    "861007",
    ORAL,
    (1, "{tablet}"),
    (1, "d"),
    "1 tablet by mouth daily",
)
OMEPRAZOLE = Product(
    "Omeprazole 20 MG Delayed Release Oral Capsule",
    "198051",
    ORAL,
    (1, "{capsule}"),
    (1, "d"),
    "1 capsule by mouth daily",
)
FOLIC_ACID_5MG = Product(
    "Folic acid 5 MG Oral Tablet", "199318", ORAL, (1, "{tablet}"), (1, "d"), "5 mg by mouth daily"
)
FOLIC_ACID_400UG = Product(
    "Folic acid 0.4 MG Oral Tablet",
    None,
    ORAL,
    (400, "ug"),
    (1, "d"),
    "400 micrograms by mouth daily (pregnancy)",
)
FOLIC_ACID_100UG = Product(
    "Folic acid 0.1 MG Oral Tablet",
    None,
    ORAL,
    (100, "ug"),
    (1, "d"),
    "100 micrograms by mouth daily",
)
CYANOCOBALAMIN_IM = Product(
    "Cyanocobalamin 1000 MCG/ML Injectable Solution",
    "309594",
    IM,
    (1000, "ug"),
    (2, "d"),
    "1 mg IM on alternate days",
)
CYANOCOBALAMIN_ORAL_1000 = Product(
    "Cyanocobalamin 1000 MCG Oral Tablet",
    None,
    ORAL,
    (1000, "ug"),
    (1, "d"),
    "1000 micrograms by mouth daily",
)
CYANOCOBALAMIN_ORAL_500 = Product(
    "Cyanocobalamin 500 MCG Oral Tablet",
    None,
    ORAL,
    (500, "ug"),
    (1, "d"),
    "500 micrograms by mouth daily",
)
HYDROXOCOBALAMIN_IM = Product(
    "Hydroxocobalamin 1 MG/ML Injectable Solution",
    "317106",
    IM,
    (1, "mg"),
    (3, "mo"),
    "1 mg IM every 3 months",
)
METHOTREXATE_WEEKLY = Product(
    "Methotrexate 2.5 MG Oral Tablet (weekly)",
    "6851",
    ORAL,
    (10, "mg"),
    (1, "wk"),
    "10 mg by mouth once weekly",
)
AMOXICILLIN = Product(
    "Amoxicillin 500 MG Oral Capsule",
    None,
    ORAL,
    (500, "mg"),
    (8, "h"),
    "500 mg by mouth three times daily for 7 days",
)
NITROUS_OXIDE = Product(
    "Nitrous oxide 50% / oxygen 50% (Entonox) inhalation gas",
    atc="N01AX13",
    sig="self-administered during the procedure",
)
ATORVASTATIN = Product(
    "Atorvastatin 20 MG Oral Tablet",
    None,
    ORAL,
    (1, "{tablet}"),
    (1, "d"),
    "1 tablet by mouth at night",
)


# --- Conditions -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    text: str
    snomed: str | None = None
    icd10: str | None = None


TYPE2_DIABETES = Problem("Type 2 diabetes mellitus", "44054006", "E11.9")
PARAESTHESIA = Problem("Paraesthesia of both feet", "91019004", "R20.2")
PERIPHERAL_NEUROPATHY = Problem("Peripheral neuropathy", "302226006", "G62.9")
PERNICIOUS_ANAEMIA = Problem("Pernicious anaemia", "84027009", "D51.0")
BARIATRIC = Problem("Status post Roux-en-Y gastric bypass (bariatric surgery)", None, "Z98.84")
GASTRECTOMY = Problem("Acquired absence of stomach (total gastrectomy)", None, "Z90.3")
CKD_3B = Problem("Chronic kidney disease stage 3b", "709044004", "N18.32")
PREGNANCY = Problem("Pregnancy", "77386006", "Z33.1")
MEGALOBLASTIC_ANAEMIA = Problem("Megaloblastic anaemia", None, "D53.1")
NITROUS_OXIDE_USE = Problem("Recreational nitrous oxide use", None, "F18.90")
RHEUMATOID_ARTHRITIS = Problem("Rheumatoid arthritis", "69896004", "M06.9")
HEADACHE = Problem("Headache", "25064002", "R51.9")
SCD = Problem("Subacute combined degeneration of spinal cord", None, "G32.0")


# --- LOINC shortcuts ------------------------------------------------------------------------
LAB_IDS = {
    "2132-9": "b12",
    "14685-2": "b12",
    "72160-5": "active-b12",
    "13964-2": "mma",
    "13965-9": "homocysteine",
    "2284-8": "folate",
    "31444-3": "if-ab",
    "82810-3": "pregnancy",
    "718-7": "hb",
    "787-2": "mcv",
    "777-3": "plt",
    "2823-3": "k",
    "98979-8": "egfr",
}
LAB_DISPLAYS = {
    "2132-9": "Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma",
    "14685-2": "Cobalamin (Vitamin B12) [Moles/volume] in Serum or Plasma",
    "72160-5": "Holotranscobalamin [Moles/volume] in Serum or Plasma",
    "13964-2": "Methylmalonate [Moles/volume] in Serum or Plasma",
    "2284-8": "Folate [Mass/volume] in Serum or Plasma",
    "31444-3": "Intrinsic factor Ab [Presence] in Serum",
    "82810-3": "Pregnancy status",
    "718-7": "Hemoglobin [Mass/volume] in Blood",
    "787-2": "MCV [Entitic volume] by Automated count",
    "777-3": "Platelets [#/volume] in Blood by Automated count",
    "2823-3": "Potassium [Moles/volume] in Serum or Plasma",
    "98979-8": "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, "
    "Plasma or Blood by Creatinine-based formula (CKD-EPI 2021)",
}


# --- A patient's chart ----------------------------------------------------------------------
@dataclass
class Chart:
    """One synthetic patient: what the EHR would prefetch, and the orders being signed."""

    t: When
    pid: str
    age: int = 58
    gender: str = "female"
    labs: list[dict[str, Any]] = field(default_factory=list)
    statements: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    drafts: list[dict[str, Any]] = field(default_factory=list)
    #: order-select: the draft ids the clinician selected.
    selections: list[str] | None = None
    _counts: dict[str, int] = field(default_factory=dict)

    def _id(self, prefix: str) -> str:
        self._counts[prefix] = self._counts.get(prefix, 0) + 1
        return f"{prefix}-{self._counts[prefix]}"

    @property
    def patient(self) -> dict[str, Any]:
        return fj.patient(self.pid, self.t.born(self.age), self.gender)

    # Results ---------------------------------------------------------------------------------
    def lab(
        self,
        loinc: str,
        value: float,
        unit: str,
        date: str | None = None,
        *,
        high: float | None = None,
    ) -> dict[str, Any]:
        obs = fj.observation(
            self._id(LAB_IDS.get(loinc, "obs")),
            loinc,
            value,
            unit,
            date or self.t.days_ago(14),
            pid=self.pid,
            display=LAB_DISPLAYS.get(loinc),
            high=high,
        )
        self.labs.append(obs)
        return obs

    def b12(self, value: float, unit: str = "ng/L", date: str | None = None) -> dict[str, Any]:
        loinc = "14685-2" if unit == "pmol/L" else "2132-9"
        return self.lab(loinc, value, unit, date)

    def active_b12(self, value: float, date: str | None = None) -> dict[str, Any]:
        return self.lab("72160-5", value, "pmol/L", date)

    def mma(self, value: float, date: str | None = None, *, high: float | None = None) -> dict:
        return self.lab("13964-2", value, "nmol/L", date, high=high)

    def blood_count(self, hb: float, mcv: float, date: str | None = None) -> None:
        self.lab("718-7", hb, "g/dL", date)
        self.lab("787-2", mcv, "fL", date)

    def egfr(self, value: float, date: str | None = None) -> dict[str, Any]:
        return self.lab("98979-8", value, "mL/min/{1.73_m2}", date)

    def potassium(self, value: float, date: str | None = None) -> dict[str, Any]:
        return self.lab("2823-3", value, "mmol/L", date)

    def coded_result(
        self, loinc: str, answer: str, date: str | None = None, *, snomed: str | None = None
    ) -> dict[str, Any]:
        """A qualitative result (IF antibody "Negative", pregnancy status "Pregnant")."""
        coding = {"system": fj.SNOMED, "code": snomed, "display": answer} if snomed else None
        obs = fj.observation(
            self._id(LAB_IDS.get(loinc, "obs")),
            loinc,
            0,
            "1",
            date or self.t.days_ago(14),
            pid=self.pid,
            display=LAB_DISPLAYS.get(loinc),
        )
        del obs["valueQuantity"]
        obs["valueCodeableConcept"] = {"text": answer, **({"coding": [coding]} if coding else {})}
        self.labs.append(obs)
        return obs

    # Conditions ------------------------------------------------------------------------------
    def problem(self, problem: Problem, onset: str | None = None) -> dict[str, Any]:
        resource = fj.condition(
            self._id("cond"), problem.text, snomed=problem.snomed, icd10=problem.icd10, pid=self.pid
        )
        if onset:
            resource["onsetDateTime"] = onset
        self.conditions.append(resource)
        return resource

    # Medications -----------------------------------------------------------------------------
    def _medication(
        self,
        kind: str,
        prefix: str,
        product: Product,
        status: str,
        start: str | None,
        *,
        end: str | None = None,
        count: int | None = None,
        dose: tuple[float, str] | None = None,
        every: tuple[float, str] | None = None,
        route: tuple[str, str] | None = None,
        sig: str | None = None,
        mid: str | None = None,
        repeat: bool = True,
    ) -> dict[str, Any]:
        resource = fj.medication(
            kind,
            mid or self._id(prefix),
            product.text,
            code=product.rxnorm,
            status=status,
            start=start,
            pid=self.pid,
            route=route or product.route,
            dose=dose or product.dose,
            every=(every or product.every) if repeat else None,
        )
        if product.atc:
            resource["medicationCodeableConcept"]["coding"] = [
                {"system": ATC, "code": product.atc, "display": product.text}
            ]
        dosages = resource.get("dosage") or resource.get("dosageInstruction")
        if dosages is None:
            dosages = [{}]
            resource["dosage" if kind == "MedicationStatement" else "dosageInstruction"] = dosages
        dosages[0] = {"text": sig or product.sig or product.text, **dosages[0]}
        if count is not None:
            dosages[0].setdefault("timing", {}).setdefault("repeat", {})["count"] = count
        if end is not None:
            if kind == "MedicationStatement":
                resource["effectivePeriod"]["end"] = end
            else:
                resource["dispenseRequest"] = {"validityPeriod": {"start": start, "end": end}}
        return resource

    def taking(
        self, product: Product, start: str, *, status: str = "active", **kw: Any
    ) -> dict[str, Any]:
        """A MedicationStatement (what the patient takes or took)."""
        resource = self._medication("MedicationStatement", "medstmt", product, status, start, **kw)
        self.statements.append(resource)
        return resource

    def prescribed(
        self, product: Product, start: str, *, status: str = "active", **kw: Any
    ) -> dict[str, Any]:
        """A non-draft MedicationRequest (the EHR's prescription record)."""
        resource = self._medication("MedicationRequest", "medrx", product, status, start, **kw)
        self.requests.append(resource)
        return resource

    def draft(
        self, product: Product, *, mid: str | None = None, status: str = "draft", **kw: Any
    ) -> dict[str, Any]:
        """A MedicationRequest among the draft orders (authored today)."""
        resource = self._medication(
            "MedicationRequest", "draft", product, status, self.t.today(), mid=mid, **kw
        )
        self.drafts.append(resource)
        return resource

    def draft_test(self, loinc: str, display: str, *, sid: str | None = None) -> dict[str, Any]:
        resource = fj.service_request(sid or self._id("draft-test"), loinc, display, pid=self.pid)
        resource["authoredOn"] = self.t.today()
        self.drafts.append(resource)
        return resource

    # The request -----------------------------------------------------------------------------
    def prefetch(self) -> dict[str, Any]:
        return fj.full_prefetch(
            self.pid, self.patient, self.labs, self.statements, self.requests, self.conditions
        )

    def request(self, service: str) -> dict[str, Any]:
        return fj.request(
            HOOKS[service],
            pid=self.pid,
            drafts=self.drafts,
            selections=self.selections,
            prefetch=self.prefetch(),
        )


# --- Scenarios ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    slug: str
    title: str
    shows: str
    service: str
    rules: tuple[str, ...]
    #: Returns the patient's chart, or a request body when the scenario is about its shape.
    build: Callable[[When], Chart | dict[str, Any]]
    evaluation_time: datetime = EVALUATION_TIME

    def request(self) -> dict[str, Any]:
        made = self.build(When(self.evaluation_time))
        body = made.request(self.service) if isinstance(made, Chart) else made
        # One stable hookInstance per scenario (a UUID, as CDS Hooks asks).
        body["hookInstance"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"b12-cds-scenario:{self.slug}"))
        return body

    def description(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "shows": self.shows,
            "service": self.service,
            "evaluationTime": iso_instant(self.evaluation_time),
            "rules": list(self.rules),
        }


# --- Epic's shape of medications ------------------------------------------------------------
#: Site product names Epic shows (the record's own name): nothing a name match recognises, so
#: only the codes on the Medication resource can tell the service what the drug is.
EPIC_PRODUCT_NAMES = {
    "199318": "FA 5MG TAB",
    "309594": "CNCBL 1000MCG/ML INJ",
    "317106": "OHCBL 1MG/ML INJ",
    "861007": "MTF 500MG TAB",
    "198051": "OMP 20MG DR CAP",
    "N01AX13": "N2O/O2 50/50 INH GAS",
    "J01CA04": "AMX 500MG CAP",
}
#: Codes the general fixtures leave out, which an EHR's Medication record carries.
EPIC_EXTRA_CODES = {AMOXICILLIN.text: (ATC, "J01CA04")}
EPIC_FHIR_BASE = "https://ehr.example.org/interconnect-fhir/api/FHIR/R4"


def _epic_medication(resource: dict[str, Any], mid: str) -> dict[str, Any] | None:
    """Move the resource's drug codes to a Medication resource (RxNorm / ATC only there, no
    display) and leave a site product name: None when the resource has no code to move."""
    concept = resource.get("medicationCodeableConcept")
    if not isinstance(concept, dict):
        return None
    codings = [{"system": c["system"], "code": c["code"]} for c in concept.get("coding") or ()]
    extra = EPIC_EXTRA_CODES.get(concept.get("text", ""))
    if extra:
        codings.append({"system": extra[0], "code": extra[1]})
    if not codings:
        return None
    name = next((EPIC_PRODUCT_NAMES[c["code"]] for c in codings if c["code"] in EPIC_PRODUCT_NAMES))
    del resource["medicationCodeableConcept"]
    # Epic's dosage text is its own sig, never the product name the fixtures fall back to.
    for dosage in resource.get("dosage") or resource.get("dosageInstruction") or ():
        if dosage.get("text") == concept.get("text"):
            dosage["text"] = name
    return {"resourceType": "Medication", "id": mid, "code": {"coding": codings, "text": name}}


def epic_shape(body: dict[str, Any]) -> dict[str, Any]:
    """A request as Epic writes medications (its CDS Hooks documentation, 2024 onwards):
    draft orders carry ``medicationReference: {reference: "Medication/<id>", display}`` with the
    Medication a separate entry of draftOrders; prefetched MedicationRequests reference theirs
    absolutely (``https://<FHIR base>/Medication/<id>``) with the Medication included in the
    same searchset; MedicationStatements reference a contained Medication (``#<id>``)."""
    drafts = body.get("context", {}).get("draftOrders")
    if drafts:
        added = []
        for entry in drafts["entry"]:
            resource = entry["resource"]
            medication = _epic_medication(resource, f"med-{resource['id']}")
            if medication is not None:
                resource["medicationReference"] = {
                    "reference": f"Medication/{medication['id']}",
                    "display": medication["code"]["text"],
                }
                added.append({"resource": medication})
        drafts["entry"].extend(added)
    prefetch = body.get("prefetch") or {}
    requests = prefetch.get("medicationRequests")
    if requests:
        added = []
        for entry in requests["entry"]:
            resource = entry["resource"]
            medication = _epic_medication(resource, f"med-{resource['id']}")
            if medication is not None:
                resource["medicationReference"] = {
                    "reference": f"{EPIC_FHIR_BASE}/Medication/{medication['id']}",
                    "display": medication["code"]["text"],
                }
                added.append({"resource": medication, "search": {"mode": "include"}})
        requests["entry"].extend(added)
    statements = prefetch.get("medicationStatements")
    for entry in statements["entry"] if statements else ():
        resource = entry["resource"]
        medication = _epic_medication(resource, "med")
        if medication is not None:
            resource["contained"] = [medication]
            resource["medicationReference"] = {
                "reference": "#med",
                "display": medication["code"]["text"],
            }
    return body
