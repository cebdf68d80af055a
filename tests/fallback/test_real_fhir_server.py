"""Against a real FHIR R4 server process on loopback (sekmet-fhir, from
the ``test`` extras), a request with no prefetch at all gives the same cards as the fully
prefetched request. The server requires a static Bearer token, so this also shows that the
token from ``fhirAuthorization`` reaches it, and what happens when it is wrong.

Not skipped when the server cannot start: the test fails and shows the server's log.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from cds_service.bootstrap import build_app
from cds_service.config import load_settings
from tests.builders import NOW

from . import scenario
from .conftest import TOKEN

pytestmark = pytest.mark.integration

SERVICES = [
    ("patient-view", "b12-patient-view"),
    ("order-sign", "b12-order-sign"),
    ("order-select", "b12-order-select"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(
    method: str, url: str, body: dict | None = None, token: str | None = TOKEN
) -> tuple[int, dict]:
    # urllib, not requests: seeding must not depend on the responses mock of the test suite.
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/fhir+json")
    if data is not None:
        request.add_header("Content-Type", "application/fhir+json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.fixture(scope="module")
def fhir_server(tmp_path_factory):
    try:
        import sekmet  # noqa: F401
    except ImportError:
        pytest.fail("sekmet-fhir is not installed: run `make test` (it installs the test extras)")
    home = tmp_path_factory.mktemp("sekmet")
    port = _free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    config = home / "settings.yaml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "base_url": base,
                "host": "127.0.0.1",
                "port": port,
                "data_dir": str(home / "data"),
                "own_private_key_path": str(home / "keys" / "sekmet.pem"),
                "simulator": {"enabled": False},
                "server_auth": {"types": ["bearer"], "tokens": [TOKEN]},
                "log_inbound": False,
            }
        )
    )
    (home / "data").mkdir()
    log_path = home / "server.log"
    command = [
        sys.executable,
        "-c",
        "from sekmet.cli import app; app()",
        "serve",
        "-c",
        str(config),
    ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=home, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the FHIR server exited at start-up:\n{log_path.read_text()[-4000:]}")
            try:
                if _call("GET", f"{base}/metadata")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the FHIR server did not start in 60 s:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.2)
        for resource in scenario.resources():
            status, answer = _call(
                "PUT", f"{base}/{resource['resourceType']}/{resource['id']}", resource
            )
            assert status in (200, 201), (resource["resourceType"], status, answer)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def client(fhir_server, tmp_path):
    # Production profile: the server is allowed by the allowlist, loopback by ALLOW_PRIVATE.
    settings = load_settings(
        {
            "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3",
            "CDS_ALLOW_ANONYMOUS": "1",
            "CDS_FHIR_ALLOWLIST": fhir_server,
            "CDS_FHIR_ALLOW_PRIVATE": "1",
        }
    )
    app = build_app(settings)
    app.extensions["cds"].clock = lambda: NOW
    yield app.test_client()
    app.extensions["cds"].fetcher.close()


def _body(hook: str, server: str, token: str | None = TOKEN, prefetch: dict | None = None) -> dict:
    body = scenario.request(hook, prefetch=prefetch)
    body["fhirServer"] = server
    body["fhirAuthorization"] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    return body


def test_the_server_holds_the_fixture_patient(fhir_server):
    status, bundle = _call(
        "GET", f"{fhir_server}/Observation?patient={scenario.PID}&code=http://loinc.org|2132-9"
    )
    assert status == 200 and [e["resource"]["id"] for e in bundle["entry"]] == ["b12-1"]
    assert _call("GET", f"{fhir_server}/Patient/{scenario.PID}", token=None)[0] == 401


@pytest.mark.parametrize("hook, service", SERVICES)
def test_no_prefetch_gives_the_same_cards_as_full_prefetch(
    fhir_server, client, caplog, hook, service
):
    caplog.set_level(logging.INFO)
    fetched = client.post(f"/cds-services/{service}", json=_body(hook, fhir_server))
    full = client.post(
        f"/cds-services/{service}", json=_body(hook, fhir_server, prefetch=scenario.full_prefetch())
    )

    assert fetched.status_code == full.status_code == 200, fetched.get_json()
    cards = scenario.without_uuids(fetched.get_json()["cards"])
    assert cards, "the fixture patient must produce cards"
    assert cards == scenario.without_uuids(full.get_json()["cards"])

    runs = [r for r in caplog.records if r.msg == "invocation"]
    assert sorted(runs[0].fetched_keys) == sorted(scenario.full_prefetch())  # all seven, over HTTP
    assert runs[0].missing == []
    assert runs[1].fetched_keys == []
    assert TOKEN not in caplog.text


def test_the_expected_advice_comes_back(fhir_server, client):
    view = client.post(
        "/cds-services/b12-patient-view", json=_body("patient-view", fhir_server)
    ).get_json()
    sign = client.post(
        "/cds-services/b12-order-sign", json=_body("order-sign", fhir_server)
    ).get_json()
    assert "118 pg/mL" in view["cards"][0]["summary"]
    assert sign["cards"][0]["indicator"] == "critical"
    assert "Folic acid" in sign["cards"][0]["summary"]


def test_a_wrong_token_is_a_412_for_patient_view_and_a_degraded_order_sign(
    fhir_server, client, caplog
):
    caplog.set_level(logging.DEBUG)
    view = client.post(
        "/cds-services/b12-patient-view", json=_body("patient-view", fhir_server, "wrong-token")
    )
    # The EHR sent the patient and the blood counts; the rest must be fetched, and cannot be.
    full = scenario.full_prefetch()
    partial = {"patient": full["patient"], "bloodCounts": full["bloodCounts"]}
    sign = client.post(
        "/cds-services/b12-order-sign",
        json=_body("order-sign", fhir_server, "wrong-token", partial),
    )
    assert view.status_code == 412
    assert view.get_json()["issue"][0]["diagnostics"] == (
        "Required prefetch 'patient' could not be obtained: "
        "the FHIR server did not accept the access token (HTTP 401)."
    )
    assert sign.status_code == 200
    card = sign.get_json()["cards"][0]
    assert "B12 results unavailable" in card["summary"]
    assert "Not available for this request: B12 results" in card["detail"]
    assert "wrong-token" not in caplog.text
