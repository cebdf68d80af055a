"""No patient data in the logs: every scenario of fixtures/scenarios runs with log
capture at DEBUG, in the app and in a real server (its stderr), and no patient name,
identifier, birth date or B12 result value appears in what is logged.

Resource ids may be logged by design (docs/operations.md, "Logs"); names, identifiers, birth
dates and values may not. The fixtures' patients are all "Synthetic Test", so each request
also gets canaries: a distinctive name and an MRN-style identifier per scenario.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import requests

from cds_service.cdshooks.application import CdsApplication
from cds_service.config import load_settings
from cds_service.domain.units import NG_L_TO_PMOL_L, PMOL_L_TO_NG_L, format_number
from cds_service.logs import JsonFormatter
from cds_service.storage import open_store
from cds_service.web import create_app
from hooks import registry
from tests.integration.server import running_service

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "fixtures" / "scenarios").glob("*/request.json"))
B12_LOINCS = {"2132-9", "14685-2", "16695-9", "72160-5"}
#: Below this, a number is too common to be a canary ("0.1", "5"): only larger results count.
MIN_NUMBER = 10


def scenario(path: Path) -> tuple[dict, str, str]:
    """(request with canaries, service id, evaluation time)."""
    meta = json.loads((path.parent / "scenario.json").read_text(encoding="utf-8"))
    body = json.loads(path.read_text(encoding="utf-8"))
    number = SCENARIOS.index(path)
    patient = (body.get("prefetch") or {}).get("patient")
    if isinstance(patient, dict):
        patient.setdefault("name", []).append(
            {"text": f"Zebulon Quillfeather{number}", "family": f"Quillfeather{number}"}
        )
        patient.setdefault("identifier", []).append(
            {"system": "urn:oid:2.16.840.1.113883.19.5", "value": f"MRN{9_000_000 + number}"}
        )
    return body, meta["service"], meta["evaluationTime"]


def _walk(value, found: set[str]) -> None:
    if isinstance(value, dict):
        if value.get("resourceType") == "Patient":
            for name in value.get("name") or []:
                found.update(filter(None, [name.get("text"), name.get("family")]))
                found.update(name.get("given") or [])
            found.update(i["value"] for i in value.get("identifier") or [] if "value" in i)
            if value.get("birthDate"):
                found.add(value["birthDate"])
        if value.get("resourceType") == "Observation":
            codes = {c.get("code") for c in (value.get("code") or {}).get("coding") or []}
            number = (value.get("valueQuantity") or {}).get("value")
            if codes & B12_LOINCS and isinstance(number, (int, float)) and number >= MIN_NUMBER:
                found.add(str(number))
                # As a card would print it, and converted to the other unit.
                for v in (number, number * NG_L_TO_PMOL_L, number * PMOL_L_TO_NG_L):
                    found.add(format_number(v))
        for child in value.values():
            _walk(child, found)
    elif isinstance(value, list):
        for child in value:
            _walk(child, found)


def phi(body: dict) -> set[str]:
    found: set[str] = set()
    _walk(body, found)
    return {f for f in found if f}


def leaks(log_text: str, secrets: set[str]) -> list[str]:
    """Each secret found as a whole token (so "118" is not found in "pat-folic-118") in the
    log lines, without the timestamp and timings (``*_ms``) and gunicorn's dump of its own
    configuration (numbers that are settings, not data)."""
    cleaned = []
    for line in log_text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            cleaned.append(line)
            continue
        if isinstance(event, dict):
            if str(event.get("event", "")).startswith("Current configuration"):
                continue
            event = {k: v for k, v in event.items() if k != "ts" and not k.endswith("_ms")}
        cleaned.append(json.dumps(event, ensure_ascii=False))
    text = "\n".join(cleaned)
    found = []
    for secret in sorted(secrets):
        if re.search(rf"(?<![\w.\-/]){re.escape(secret)}(?![\w.]|-\d)", text):
            line = next(ln for ln in cleaned if secret in ln)
            found.append(f"{secret!r} in {line[:300]}")
    return found


def test_the_canaries_and_values_are_found_when_logged():
    """The detector works: a log line that quotes them is caught; ids and timings are not."""
    body, _, _ = scenario(SCENARIOS[0])
    secrets = phi(body) | {"118"}
    assert any(s.startswith("Zebulon") for s in secrets)
    assert leaks('{"event": "x", "name": "Zebulon Quillfeather0"}', secrets)
    assert leaks('{"event": "x", "value": 118}', secrets)
    assert not leaks('{"event": "x", "resource": "Patient/pat-folic-118", "count": 1180}', secrets)
    assert not leaks('{"ts": "2026-06-15T12:00:00.118+00:00", "duration_ms": 118}', secrets)


def test_no_scenario_logs_patient_data_in_the_app(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings = load_settings(
        {"CDS_PROFILE": "development", "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3"}
    )
    core = CdsApplication(
        registry=registry(), store=open_store(settings.database_url), policy=settings.policy
    )
    client = create_app(settings, core).test_client()
    secrets: set[str] = set()
    for path in SCENARIOS:
        body, service, when = scenario(path)
        secrets |= phi(body)
        response = client.post(
            f"/cds-services/{service}", json=body, headers={"CDS-Evaluation-Time": when}
        )
        assert response.status_code == 200, path.parent.name
    formatter = JsonFormatter()
    lines = []
    for record in caplog.records:
        lines.append(formatter.format(record))
        lines.append(json.dumps({"message": record.getMessage()}, ensure_ascii=False))
    assert len(secrets) > 3 * len(SCENARIOS)
    assert leaks("\n".join(lines), secrets) == []


@pytest.mark.integration
def test_no_scenario_logs_patient_data_in_a_real_server(tmp_path):
    secrets: set[str] = set()
    with running_service(tmp_path, env={"CDS_LOG_LEVEL": "DEBUG"}) as (base, log_path):
        with requests.Session() as session:
            for path in SCENARIOS:
                body, service, when = scenario(path)
                secrets |= phi(body)
                response = session.post(
                    f"{base}/cds-services/{service}",
                    json=body,
                    headers={"CDS-Evaluation-Time": when},
                    timeout=30,
                )
                assert response.status_code == 200, path.parent.name
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
    assert '"event": "invocation"' in log_text  # the log was captured at all
    assert leaks(log_text, secrets) == []
