"""The fallback through the Flask app, as ``build_app`` wires it from settings, with request
shapes from the sandbox captures: what is fetched, 412 or degraded 200 per key policy on
every fault, always within budget, and the access token never in a log line or an answer."""

from __future__ import annotations

import io
import logging
import re
import time

import pytest

from cds_service.bootstrap import build_app
from cds_service.config import load_settings
from cds_service.logs import JsonFormatter
from tests.builders import NOW

from . import scenario
from .conftest import EHR, TOKEN, capture
from .test_client import LazyBody

BUDGET_MS = 300
# A whole call here (extraction, rules, the response) on top of the fetch, on a machine that
# may be running the rest of the suite: the fetcher's own precision against the budget
# (0.1 s) is tested in test_budget.py; here the point is an answer bounded by the budget, not
# by the EHR (a hung server would hold the call for its socket timeouts, many seconds).
SLACK_S = 0.5


@pytest.fixture
def make_client(tmp_path):
    apps = []

    def make(**env):
        # Anonymous calls (authentication is tested in tests/auth): the global allowlist applies.
        settings = load_settings(
            {
                "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds-{len(apps)}.sqlite3",
                "CDS_ALLOW_ANONYMOUS": "1",
                **env,
            }
        )
        app = build_app(settings)
        app.testing = True
        app.extensions["cds"].clock = lambda: NOW
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["cds"].fetcher.close()


@pytest.fixture
def production(make_client):
    return make_client(CDS_FHIR_ALLOWLIST=EHR, CDS_FHIR_BUDGET_MS=str(BUDGET_MS))


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_no_secret(logs, *texts):
    lines = [JsonFormatter().format(r) for r in logs.records]
    assert TOKEN not in logs.text
    assert all(TOKEN not in line for line in lines)
    assert all(TOKEN not in repr(r.__dict__) for r in logs.records)
    assert all(TOKEN not in t for t in texts)


def invocation(logs):
    return [r for r in logs.records if r.msg == "invocation"][-1]


def with_server(body: dict, server: str = EHR, token: str | None = TOKEN) -> dict:
    body["fhirServer"] = server
    if token:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds-service",
        }
    else:
        body.pop("fhirAuthorization", None)
    return body


# --- what is fetched ------------------------------------------------------------------------


def test_sandbox_patient_view_fetches_only_the_keys_it_did_not_send(make_client, mock, logs):
    # The capture: fhirServer http://localhost:8090/fhir, no token, patient + conditions sent.
    body = capture("patient-view")
    client = make_client(CDS_PROFILE="development")
    scenario.serve(
        mock,
        "http://localhost:8090/fhir",
        [{**r, "subject": {"reference": "Patient/harness-1"}} for r in scenario.resources()[1:]],
    )

    response = client.post("/cds-services/b12-patient-view", json=body)

    assert response.status_code == 200
    sent = sorted(c.request.url.split("?")[0].rsplit("/", 1)[-1] for c in mock.calls)
    assert sent == [
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "Observation",
        "Observation",
    ]
    assert all("Authorization" not in c.request.headers for c in mock.calls)
    assert sorted(invocation(logs).fetched_keys) == [
        "b12Labs",
        "bloodCounts",
        "medicationRequests",
        "medicationStatements",
        "renalLabs",
    ]
    assert response.get_json()["cards"]


@pytest.mark.parametrize(
    "name, service", [("order-sign", "b12-order-sign"), ("order-select", "b12-order-select")]
)
def test_sandbox_order_hooks_with_no_prefetch_fetch_every_key_with_the_token(
    production, mock, logs, name, service
):
    body = with_server(capture(name))
    scenario.serve(mock, EHR)
    response = production.post(f"/cds-services/{service}", json=body)
    assert response.status_code == 200
    assert len(mock.calls) == 7
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in mock.calls)
    assert all(c.request.url.startswith(EHR + "/") for c in mock.calls)
    assert_no_secret(logs, response.get_data(as_text=True))


def test_no_prefetch_gives_the_same_cards_as_full_prefetch(production, mock):
    scenario.serve(mock, EHR)
    for hook, service in [
        ("patient-view", "b12-patient-view"),
        ("order-sign", "b12-order-sign"),
        ("order-select", "b12-order-select"),
    ]:
        fetched = production.post(
            f"/cds-services/{service}", json=with_server(scenario.request(hook))
        )
        sent = production.post(
            f"/cds-services/{service}",
            json=with_server(scenario.request(hook, prefetch=scenario.full_prefetch())),
        )
        assert fetched.status_code == sent.status_code == 200
        cards = scenario.without_uuids(fetched.get_json()["cards"])
        assert cards and cards == scenario.without_uuids(sent.get_json()["cards"])


def test_production_without_an_allowlist_fetches_nothing(make_client, mock, logs):
    client = make_client()
    response = client.post(
        "/cds-services/b12-patient-view", json=with_server(scenario.request("patient-view"))
    )
    assert response.status_code == 412
    assert "not on the allowlist" in response.get_json()["issue"][0]["diagnostics"]
    assert not mock.calls


def test_a_missing_b12_result_is_said_on_the_card(production, mock):
    prefetch = scenario.full_prefetch()
    del prefetch["b12Labs"]
    mock.get(re.compile(re.escape(EHR) + "/Observation.*"), status=500)
    response = production.post(
        "/cds-services/b12-order-sign",
        json=with_server(scenario.request("order-sign", prefetch=prefetch)),
    )
    assert response.status_code == 200
    card = response.get_json()["cards"][0]
    assert "B12 results unavailable" in card["summary"]
    assert "Not available for this request: B12 results" in card["detail"]


# --- faults: 412 for the required patient of patient-view, degraded 200 for order-sign ------


def _status(status):
    return lambda mock: mock.get(
        re.compile(re.escape(EHR) + "/.*"),
        status=status,
        json={"resourceType": "OperationOutcome", "issue": [{"diagnostics": f"echo {TOKEN}"}]},
    )


def _body(data):
    return lambda mock: mock.get(
        re.compile(re.escape(EHR) + "/.*"), body=data, content_type="application/fhir+json"
    )


def _huge(mock):
    # A body of its own per call: the keys are fetched in parallel, and one reader shared
    # between them could run dry (an empty or short body instead of a 50 MB one).
    mock.add_callback(
        "GET",
        re.compile(re.escape(EHR) + "/.*"),
        callback=lambda request: (200, {}, io.BufferedReader(LazyBody(50 * 1024 * 1024))),
    )


def _redirect(mock):
    mock.get(
        re.compile(re.escape(EHR) + "/.*"),
        status=302,
        headers={"Location": "http://169.254.169.254/latest/meta-data/iam"},
    )


def _next_elsewhere(mock):
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in scenario.resources()[1:]],
        "link": [{"relation": "next", "url": "https://other.example.net/fhir/Observation?page=2"}],
    }
    mock.get(f"{EHR}/Patient/{scenario.PID}", json=scenario.resources()[0])
    mock.get(re.compile(re.escape(EHR) + r"/\w+\?.*"), json=page)


FAULTS = {
    "401": (_status(401), "the FHIR server did not accept the access token (HTTP 401)"),
    "403": (_status(403), "the FHIR server denied access (HTTP 403)"),
    "404": (_status(404), "not found on the FHIR server (HTTP 404)"),
    "500": (_status(500), "the FHIR server failed (HTTP 500)"),
    "invalid-json": (
        _body(b'{"resourceType": "Patient", '),
        "the FHIR server's answer is not valid JSON",
    ),
    "50-mb": (_huge, "the FHIR server's answer exceeds the size limit"),
    "redirect-to-metadata": (_redirect, "a redirect points to another origin and was not followed"),
    "next-link-elsewhere": (_next_elsewhere, None),  # the Patient read succeeds
}


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_is_a_412_or_a_degraded_200_within_budget(make_client, mock, logs, fault):
    arrange, reason = FAULTS[fault]
    arrange(mock)
    client = make_client(
        CDS_FHIR_ALLOWLIST=EHR, CDS_FHIR_BUDGET_MS=str(BUDGET_MS), CDS_FHIR_MAX_BYTES="200000"
    )
    # Once untimed: a worker's first fetch builds its HTTP session and TLS context; the budget
    # is about what each call waits for the EHR, not about one-time set-up.
    client.post(
        "/cds-services/b12-patient-view", json=with_server(scenario.request("patient-view"))
    )
    texts = []
    for service, hook in [("b12-patient-view", "patient-view"), ("b12-order-sign", "order-sign")]:
        started = time.perf_counter()
        response = client.post(f"/cds-services/{service}", json=with_server(scenario.request(hook)))
        assert time.perf_counter() - started < BUDGET_MS / 1000 + SLACK_S
        texts.append(response.get_data(as_text=True))
        if service == "b12-patient-view" and reason is not None:
            assert response.status_code == 412
            issue = response.get_json()["issue"][0]
            assert (
                issue["diagnostics"]
                == f"Required prefetch 'patient' could not be obtained: {reason}."
            )
            assert issue["expression"] == ["prefetch.patient"]
        else:
            assert response.status_code == 200
            assert {"B12_LABS", "BLOOD_COUNTS", "CONDITIONS", "MEDICATIONS"} <= set(
                invocation(logs).missing
            )
    assert all(c.request.url.startswith(EHR + "/") for c in mock.calls)  # nothing else was called
    assert_no_secret(logs, *texts)


def test_dns_failure_is_a_412_or_a_degraded_200(make_client, mock, logs):
    server = "https://ehr.unresolvable.example/fhir"
    client = make_client(CDS_FHIR_ALLOWLIST=server)
    view = client.post(
        "/cds-services/b12-patient-view", json=with_server(scenario.request("patient-view"), server)
    )
    sign = client.post(
        "/cds-services/b12-order-sign", json=with_server(scenario.request("order-sign"), server)
    )
    assert view.status_code == 412
    assert "host name could not be resolved" in view.get_json()["issue"][0]["diagnostics"]
    assert sign.status_code == 200
    assert not mock.calls
    assert_no_secret(logs, view.get_data(as_text=True), sign.get_data(as_text=True))


def test_a_hanging_server_answers_within_budget(make_client, local_server, logs):
    local_server.hang(None)
    client = make_client(CDS_PROFILE="development", CDS_FHIR_BUDGET_MS=str(BUDGET_MS))
    server = f"{local_server.base}/fhir"

    started = time.perf_counter()
    view = client.post(
        "/cds-services/b12-patient-view", json=with_server(scenario.request("patient-view"), server)
    )
    view_seconds = time.perf_counter() - started
    started = time.perf_counter()
    sign = client.post(
        "/cds-services/b12-order-sign", json=with_server(scenario.request("order-sign"), server)
    )
    sign_seconds = time.perf_counter() - started

    assert view.status_code == 412
    assert view.get_json()["issue"][0]["diagnostics"] == (
        "Required prefetch 'patient' could not be obtained: "
        "the FHIR server did not answer within the time budget."
    )
    assert sign.status_code == 200
    assert view_seconds < BUDGET_MS / 1000 + SLACK_S
    assert sign_seconds < BUDGET_MS / 1000 + SLACK_S
    assert_no_secret(logs, view.get_data(as_text=True), sign.get_data(as_text=True))


def test_the_token_is_sent_only_to_fhir_server(make_client, mock):
    client = make_client(CDS_FHIR_ALLOWLIST=f"{EHR},https://other.example.net/fhir")
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [],
        "link": [{"relation": "next", "url": "https://other.example.net/fhir/Observation?page=2"}],
    }
    mock.get(re.compile(re.escape(EHR) + "/.*"), json=page)
    mock.get(re.compile("https://other.example.net/.*"), json=page)
    client.post("/cds-services/b12-order-sign", json=with_server(scenario.request("order-sign")))
    assert mock.calls and all(c.request.url.startswith(EHR + "/") for c in mock.calls)
