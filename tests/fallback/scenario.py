"""The fixture patient of the fallback tests, and a tiny FHIR search for ``responses``.

Patient pat-1: B12 118 pg/mL and MCV 108 fL ten days before the evaluation date, metformin
for six years, type 2 diabetes. Dates are relative to ``tests.builders.NOW``.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from tests import fhirjson as fj
from tests.builders import NOW

PID = "pat-1"


def day(days_before: int) -> str:
    return (NOW - timedelta(days=days_before)).date().isoformat()


def resources() -> list[dict]:
    return [
        fj.patient(PID, birth_date="1958-03-02"),
        fj.observation("b12-1", "2132-9", 118, "pg/mL", day(10), pid=PID, display="Cobalamin"),
        fj.observation("mcv-1", "787-2", 108, "fL", day(10), pid=PID, display="MCV"),
        fj.medication(
            "MedicationStatement",
            "metformin-1",
            "Metformin 500 MG Oral Tablet",
            code="861007",
            start=day(6 * 365),
            pid=PID,
            dose=(500, "mg"),
            every=(1, "d"),
        ),
        fj.condition("dm2-1", "Diabetes mellitus type 2", snomed="44054006", pid=PID),
    ]


def folic_acid_draft() -> dict:
    return fj.medication(
        "MedicationRequest",
        "folic-1",
        "Folic acid 5 MG Oral Tablet",
        code="199318",
        status="draft",
        start=day(0),
        pid=PID,
        dose=(1, "{tablet}"),
        every=(1, "d"),
    )


def full_prefetch() -> dict:
    patient, b12, mcv, metformin, dm2 = resources()
    return fj.full_prefetch(PID, patient, [b12, mcv], [metformin], [], [dm2])


def request(hook: str, *, prefetch: dict | None = None) -> dict:
    drafts = [folic_acid_draft()] if hook in ("order-sign", "order-select") else None
    selections = ["MedicationRequest/folic-1"] if hook == "order-select" else None
    return fj.request(hook, pid=PID, drafts=drafts, selections=selections, prefetch=prefetch)


def without_uuids(data):
    if isinstance(data, dict):
        return {k: without_uuids(v) for k, v in data.items() if k != "uuid"}
    if isinstance(data, list):
        return [without_uuids(v) for v in data]
    return data


# --- a FHIR server in a responses callback ---------------------------------------------------


def _matches(resource: dict, params: dict[str, list[str]]) -> bool:
    for name, values in params.items():
        wanted = {v for value in values for v in value.split(",")}
        if name == "patient":
            refs = {(resource.get("subject") or resource.get("patient") or {}).get("reference")}
            if not refs & {f"Patient/{w}" for w in wanted}:
                return False
        elif name == "code":
            codings = (resource.get("code") or {}).get("coding") or []
            if not {f"{c.get('system')}|{c.get('code')}" for c in codings} & wanted:
                return False
        elif name == "status" and resource.get("status") not in wanted:
            return False
    return True


def fhir_callback(store: list[dict], base_path: str = "/fhir"):
    """Reads and searches (patient, code, status; other parameters ignored) over ``store``."""

    def callback(request):
        parts = urlsplit(request.url)
        path = parts.path.removeprefix(base_path + "/")
        kind, _, rid = path.partition("/")
        if rid:
            for resource in store:
                if resource["resourceType"] == kind and resource["id"] == rid:
                    return 200, {}, json.dumps(resource)
            return 404, {}, json.dumps({"resourceType": "OperationOutcome", "issue": []})
        params = {k: v for k, v in parse_qs(parts.query).items() if not k.startswith("_")}
        found = [r for r in store if r["resourceType"] == kind and _matches(r, params)]
        return 200, {}, json.dumps(fj.bundle(found))

    return callback


def serve(mock, base: str, store: list[dict] | None = None) -> None:
    mock.add_callback(
        "GET",
        re.compile(re.escape(base) + r"/.*"),
        callback=fhir_callback(store or resources(), urlsplit(base).path),
        content_type="application/fhir+json",
    )
