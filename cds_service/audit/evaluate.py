"""Phase 2: one partition's patients through the service's own code.

For each patient: the chart as of the audit date (what an EHR opened that day could hold),
then exactly what an invocation does with it (``fhir.extract.extract_facts`` and the engine
with the hook and the site policy): patient-view for everyone; order-sign, with a draft
MedicationRequest copied from the active folic acid, for patients who take it. The cards the
service would return are counted as ``active``; what silent rules would have shown, as
``silent`` (the ledger's two kinds).

Memory: the partition's lines (its share of the export) plus one patient parsed at a time.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from cds_service.domain.engine import Evaluation, HookKind, evaluate
from cds_service.domain.policy import Policy
from cds_service.fhir.dates import to_utc
from cds_service.fhir.extract import extract_facts

from .partition import partition_dir
from .tally import ANY_RULE, Tally

#: The elements that date a resource in a chart (the first one present counts).
_DATED_BY = {
    "Observation": ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod.start", "dateAsserted"),
    "MedicationRequest": ("authoredOn",),
    "Condition": ("onsetDateTime", "onsetPeriod.start", "recordedDate"),
}
AUDIT_DRAFT_ID = "audit-folic-acid-reorder"


@dataclass(frozen=True)
class PartitionTask:
    index: int
    workdir: str
    policy: Policy
    as_of: datetime
    strict_fhir: bool = False
    #: Write this partition's (patient id, hook, rule, indicator, mode) rows for a worklist.
    worklist: bool = False


_auditing = threading.local()


class _QuietSkips(logging.Filter):
    """The service logs each malformed resource's id; the audit counts them instead (a
    population's worth of ids in a log is patient-linked data, and noise). Only in a thread
    that is running an audit task: the service, or anything else sharing the process (a Dask
    worker, a test run), keeps its log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_auditing, "active", False):
            return record.getMessage() != "resource skipped"
        return True


_QUIET = _QuietSkips()


def _quiet_extraction() -> None:
    logger = logging.getLogger("cds_service.fhir.extract")
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)


@lru_cache(maxsize=4)
def evaluate_partition(task: PartitionTask) -> Tally:
    _quiet_extraction()
    _auditing.active = True
    try:
        return _evaluate_partition(task)
    finally:
        _auditing.active = False


def _evaluate_partition(task: PartitionTask) -> Tally:
    tally = Tally()
    by_patient: dict[str, list[bytes]] = {}
    folder = partition_dir(task.workdir, task.index)
    files = sorted(folder.glob("chunk-*.ndjson")) if folder.is_dir() else []
    for path in files:
        with open(path, "rb") as stream:
            for line in stream:
                key, _, raw = line.rstrip(b"\n").partition(b"\t")
                by_patient.setdefault(key.decode("utf-8"), []).append(raw)
    worklist = None
    writer = None
    if task.worklist:
        target = Path(task.workdir) / "worklist" / f"part-{task.index:05d}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        worklist = open(target, "w", encoding="utf-8", newline="")
        writer = csv.writer(worklist)
    try:
        for patient_id in sorted(by_patient):
            resources = [json.loads(raw) for raw in by_patient.pop(patient_id)]
            if not any(r.get("resourceType") == "Patient" for r in resources):
                tally.counts["resources_of_absent_patient"] += len(resources)
                continue
            tally.counts["patients"] += 1
            chart = chart_as_of(resources, task.as_of)
            tally.counts["resources_after_as_of"] += len(resources) - len(chart)
            extraction = extract_facts(chart, (), patient_id=patient_id, strict=task.strict_fhir)
            tally.counts["resources_skipped_malformed"] += len(extraction.skipped)
            facts = extraction.facts
            evaluation = evaluate(facts, task.as_of, HookKind.PATIENT_VIEW, task.policy)
            _count(tally, writer, patient_id, HookKind.PATIENT_VIEW, evaluation)
            draft = folic_acid_reorder(chart, patient_id, task.as_of, facts)
            if draft is not None:
                extraction = extract_facts(
                    chart, [draft], patient_id=patient_id, strict=task.strict_fhir
                )
                evaluation = evaluate(
                    extraction.facts, task.as_of, HookKind.ORDER_SIGN, task.policy
                )
                _count(tally, writer, patient_id, HookKind.ORDER_SIGN, evaluation)
    finally:
        if worklist is not None:
            worklist.close()
    return tally


def _count(tally: Tally, writer: Any, patient_id: str, hook: HookKind, ev: Evaluation) -> None:
    tally.invocations[hook.value] += 1
    for rule_id in ev.failed_rules:
        tally.failed_rules[rule_id] += 1
    rows = [(f.rule_id, f.indicator.code, "active") for f in ev.shown]
    rows += [(f.rule_id, f.indicator.code, "silent") for f in ev.silent]
    if ev.shown:
        rows.append((ANY_RULE, max(ev.shown, key=lambda f: f.indicator).indicator.code, "active"))
    for rule_id, indicator, mode in rows:
        tally.patients[(hook.value, rule_id, indicator, mode)] += 1
        if writer is not None and rule_id != ANY_RULE:
            writer.writerow((patient_id, hook.value, rule_id, indicator, mode))


def chart_as_of(resources: list[dict[str, Any]], as_of: datetime) -> list[dict[str, Any]]:
    """The resources an EHR could show on ``as_of``: those dated after it are left out (an
    undated resource stays)."""
    chart = []
    for resource in resources:
        moment = _dated(resource)
        if moment is None or moment <= as_of:
            chart.append(resource)
    return chart


def _dated(resource: dict[str, Any]) -> datetime | None:
    for path in _DATED_BY.get(resource.get("resourceType", ""), ()):
        value: Any = resource
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            return to_utc(value)
    return None


def folic_acid_reorder(
    chart: list[dict[str, Any]], patient_id: str, as_of: datetime, facts: Any = None
) -> dict[str, Any] | None:
    """A draft MedicationRequest re-ordering the patient's active folic acid (its medication
    and dosage copied), or None when the service's extraction finds none active."""
    if facts is None:
        facts = extract_facts(chart, (), patient_id=patient_id).facts
    active = [m for m in facts.medications if m.is_folate and m.active and not m.is_draft]
    if not active:
        return None
    by_ref = {f"{r.get('resourceType')}/{r.get('id')}": r for r in chart}
    source = by_ref.get(active[0].resource_id)
    if source is None:
        return None
    draft: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": AUDIT_DRAFT_ID,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": as_of.date().isoformat(),
    }
    for element in ("medicationCodeableConcept", "medicationReference"):
        if element in source:
            draft[element] = source[element]
    dosage = source.get("dosageInstruction") or source.get("dosage")
    if dosage:
        draft["dosageInstruction"] = dosage
    return draft
