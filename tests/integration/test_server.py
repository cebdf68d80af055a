"""The real thing: gunicorn serving the app on loopback, called over HTTP."""

from __future__ import annotations

import json

import pytest
import requests

from tests.conftest import sandbox_request
from tests.integration.server import running_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_service(tmp_path_factory.mktemp("server")) as (base, log_path):
        yield base, log_path


def test_discovery_over_http(server):
    base, _ = server
    response = requests.get(
        f"{base}/cds-services", headers={"Origin": "http://localhost:8080"}, timeout=5
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert [s["id"] for s in response.json()["services"]] == [
        "b12-order-select",
        "b12-order-sign",
        "b12-patient-view",
    ]


@pytest.mark.parametrize("hook", ["order-sign", "order-select", "patient-view"])
def test_sandbox_captures_are_accepted_over_http(server, hook):
    base, _ = server
    response = requests.post(
        f"{base}/cds-services/b12-{hook}", json=sandbox_request(hook), timeout=10
    )
    assert response.status_code == 200
    assert "cards" in response.json()


def test_errors_over_http_are_operation_outcomes(server):
    base, _ = server
    response = requests.post(
        f"{base}/cds-services/b12-order-sign",
        data=b"\xff\xfe",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert requests.get(f"{base}/missing", timeout=5).json()["resourceType"] == "OperationOutcome"


def test_logs_are_json_lines_and_carry_no_patient_data(server):
    base, log_path = server
    body = sandbox_request("patient-view")
    requests.post(f"{base}/cds-services/b12-patient-view", json=body, timeout=10)
    text = log_path.read_text()
    assert "DEVELOPMENT PROFILE" in text
    for secret in ("Testperson", "Hanna", "1970-01-01"):
        assert secret not in text
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(
        e.get("event") == "invocation" and e.get("service") == "b12-patient-view" for e in events
    )
