"""Seed a FHIR R4 server with the fixture patients (docker-compose.yml, ``--profile demo``).

    python seed_fhir.py [--wait SECONDS] [--token BEARER] FHIR_BASE SCENARIOS_DIR

Each ``SCENARIOS_DIR/<slug>/request.json`` carries one synthetic patient and the resources
its prefetch holds; they are PUT to ``FHIR_BASE`` in one transaction Bundle per scenario, so
that the service's prefetch fallback can fetch them back (send a scenario without its
``prefetch`` and with ``"fhirServer": "http://fhir:8080/fhir"``). Resource ids are reused
across scenarios (``b12-1``), so each is prefixed with its patient's id; PUT makes a second
run replace rather than duplicate. Standard library only: it runs in a bare python image.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

FHIR_JSON = "application/fhir+json"
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def resources_of(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources a scenario's prefetch holds (Bundles unpacked)."""
    found = []
    for value in (request.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            found += [e["resource"] for e in value.get("entry") or [] if "resource" in e]
        elif value.get("resourceType") != "OperationOutcome":
            found.append(value)
    return found


def seeded_id(patient_id: str, resource: dict[str, Any]) -> str:
    if resource["resourceType"] == "Patient":
        return resource["id"]
    return f"{patient_id}-{resource['id']}"[:64]


def transaction(request: dict[str, Any]) -> dict[str, Any]:
    """One transaction Bundle: the scenario's patient and resources, PUT by id."""
    patient_id = request["context"]["patientId"]
    entries = []
    for resource in resources_of(request):
        resource = dict(resource, id=seeded_id(patient_id, resource))
        kind = resource["resourceType"]
        entries.append(
            {
                "fullUrl": f"{kind}/{resource['id']}",
                "resource": resource,
                "request": {"method": "PUT", "url": f"{kind}/{resource['id']}"},
            }
        )
    # The patient first: the other resources refer to it.
    entries.sort(key=lambda e: e["resource"]["resourceType"] != "Patient")
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def bundles(scenarios: Path) -> dict[str, dict[str, Any]]:
    """Scenario slug -> its transaction Bundle."""
    found = {}
    for path in sorted(scenarios.glob("*/request.json")):
        found[path.parent.name] = transaction(json.loads(path.read_text(encoding="utf-8")))
    return found


def _call(method: str, url: str, body: dict[str, Any] | None = None, token: str = "") -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", FHIR_JSON)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", FHIR_JSON)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_for(base: str, seconds: float, token: str = "") -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if _call("GET", f"{base}/metadata", token=token) == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{base} did not answer within {seconds:.0f} s")
        time.sleep(3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="FHIR base URL, e.g. http://fhir:8080/fhir")
    parser.add_argument("scenarios", type=Path, help="fixtures/scenarios")
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the server")
    parser.add_argument("--token", default="", help="a Bearer token, if the server wants one")
    args = parser.parse_args(argv)
    base = args.base.rstrip("/")
    if args.wait:
        wait_for(base, args.wait, args.token)
    scenarios = bundles(args.scenarios)
    failed = 0
    for slug, bundle in scenarios.items():
        status = _call("POST", base, bundle, args.token)
        ok = 200 <= status < 300
        failed += not ok
        size = len(bundle["entry"])
        print(f"{'seeded' if ok else 'FAILED'} {slug} ({size} resources, HTTP {status})")
    print(f"{len(scenarios) - failed} scenarios seeded, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
