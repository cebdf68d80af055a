"""Synthetic benchmark workloads (docs/rulebook.md shapes, synthetic data only)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests import fhirjson as fj

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)

_LABS = [  # (loinc, unit, value)
    ("2132-9", "pg/mL", 240),
    ("787-2", "fL", 103),
    ("718-7", "g/dL", 11.8),
    ("777-3", "10*9/L", 210),
    ("4544-3", "%", 36),
    ("2823-3", "mmol/L", 4.1),
    ("2160-0", "mg/dL", 1.1),
    ("98979-8", "mL/min/{1.73_m2}", 72),
    ("2284-8", "ng/mL", 9.5),
    ("4679-7", "%", 1.2),
]


def _day(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


def observations(count: int, pid: str = "pat-bench") -> list[dict]:
    return [
        fj.observation(
            f"obs-{i}",
            loinc,
            value + (i % 7) * 0.5,
            unit,
            _day(7 + 30 * (i // len(_LABS))),
            pid=pid,
        )
        for i, (loinc, unit, value) in ((i, _LABS[i % len(_LABS)]) for i in range(count))
    ]


def medications(count: int, pid: str = "pat-bench") -> list[dict]:
    names = [
        ("Metformin hydrochloride 500 MG Oral Tablet", "861007"),
        ("Omeprazole 20 MG Delayed Release Oral Capsule", "198051"),
        ("Atorvastatin 20 MG Oral Tablet", "617310"),
        ("Lisinopril 10 MG Oral Tablet", "314076"),
        ("Amlodipine 5 MG Oral Tablet", "197361"),
    ]
    meds = []
    for i in range(count):
        text, code = names[i % len(names)]
        kind = "MedicationStatement" if i % 2 else "MedicationRequest"
        meds.append(
            fj.medication(
                kind,
                f"med-{i}",
                text,
                code=code,
                start=_day(400 + 10 * i),
                pid=pid,
                dose=(1, "{tablet}"),
                every=(1, "d"),
            )
        )
    return meds


def conditions(count: int, pid: str = "pat-bench") -> list[dict]:
    items = [
        ("Diabetes mellitus type 2", "44054006"),
        ("Essential hypertension", "59621000"),
        ("Hyperlipidaemia", "55822004"),
        ("Osteoarthritis of knee", "239873007"),
    ]
    return [
        fj.condition(
            f"cond-{i}", items[i % len(items)][0], snomed=items[i % len(items)][1], pid=pid
        )
        for i in range(count)
    ]


def order_sign(
    n_obs: int = 40, n_meds: int = 10, n_conditions: int = 8, folic_acid: bool = False
) -> dict:
    pid = "pat-bench"
    drafts = [
        fj.medication(
            "MedicationRequest",
            "draft-1",
            "Atorvastatin 40 MG Oral Tablet",
            code="617311",
            status="draft",
            start=_day(0),
            pid=pid,
        )
    ]
    if folic_acid:
        drafts.append(
            fj.medication(
                "MedicationRequest",
                "draft-folic",
                "Folic acid 5 MG Oral Tablet",
                code="199318",
                status="draft",
                start=_day(0),
                pid=pid,
                dose=(1, "{tablet}"),
                every=(1, "d"),
            )
        )
    labs = observations(n_obs, pid)
    if folic_acid:
        labs[0] = fj.observation("obs-0", "2132-9", 118, "pg/mL", _day(10), pid=pid)
    meds = medications(n_meds, pid)
    prefetch = fj.full_prefetch(
        pid,
        fj.patient(pid),
        labs,
        [m for m in meds if m["resourceType"] == "MedicationStatement"],
        [m for m in meds if m["resourceType"] == "MedicationRequest"],
        conditions(n_conditions, pid),
    )
    return fj.request("order-sign", pid=pid, drafts=drafts, prefetch=prefetch)


def patient_view(n_obs: int = 40, n_meds: int = 10, n_conditions: int = 8) -> dict:
    """The typical order-sign chart, opened (patient-view: every finding is shown)."""
    body = order_sign(n_obs, n_meds, n_conditions)
    body["hook"] = "patient-view"
    body["context"].pop("draftOrders", None)
    return body
