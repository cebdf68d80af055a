"""Operations, in process: /healthz, /readyz and /metrics (no token, CORS as everywhere), the
counters the layers feed through their hooks, the log events of an invocation that succeeded
or failed, and the production settings of ``cds-service serve``."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from gunicorn.workers.gthread import ThreadWorker

from cds_service import serving
from cds_service.cdshooks.application import CdsApplication
from cds_service.config import ConfigError, load_settings
from cds_service.fhir.client import FhirFetcher
from cds_service.logs import JsonFormatter, gunicorn_logconfig
from cds_service.serving import JsonErrorWorker, gunicorn_options, prepare_metrics_dir
from cds_service.storage import SqlStore
from cds_service.web import create_app
from hooks import registry
from tests.conftest import FIXTURES, load_json
from tests.fhir.raw import observation, quantity
from tests.metrics_text import value
from tests.test_conformance import assert_outcome

SCENARIO = FIXTURES / "scenarios" / "folic-acid-with-b12-118-megaloblastic"
AT = {"CDS-Evaluation-Time": "2026-06-15T12:00:00Z"}
ORIGIN = "https://ehr.example.org"


def metrics(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def broken_store(tmp_path) -> SqlStore:
    (tmp_path / "a-file").write_text("")
    return SqlStore(f"sqlite:///{tmp_path}/a-file/cds.sqlite3")


@pytest.fixture
def production(tmp_path, core):
    settings = load_settings(
        {
            "CDS_PROFILE": "production",
            "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.sqlite3",
            "CDS_CORS_ORIGINS": ORIGIN,
        }
    )
    return create_app(settings, core).test_client()


# --- health -------------------------------------------------------------------------------


def test_operations_endpoints_need_no_token_and_carry_cors(production):
    assert production.get("/cds-services").status_code == 401  # the EHR's endpoints do
    for path in ("/healthz", "/readyz", "/metrics"):
        response = production.get(path, headers={"Origin": ORIGIN})
        assert response.status_code == 200, path
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_healthz_says_the_process_is_alive(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_checks_the_database(client, core):
    assert client.get("/readyz").get_json() == {"status": "ready", "services": 3}


def test_readyz_is_503_while_the_database_is_unreachable(settings, core, tmp_path):
    core.store = broken_store(tmp_path)
    client = create_app(settings, core).test_client()
    before = metrics(client)
    issue = assert_outcome(client.get("/readyz"), 503, "storage-unavailable")
    assert "not ready" in issue["diagnostics"]
    assert client.get("/healthz").status_code == 200  # alive all the same: no restart loop
    after = metrics(client)
    name = "cds_storage_failures_total"
    assert value(after, name, operation="check") == value(before, name, operation="check") + 1


def test_readyz_is_503_without_a_database(settings):
    core = CdsApplication(registry=registry(), store=None)
    assert_outcome(
        create_app(settings, core).test_client().get("/readyz"), 503, "storage-unavailable"
    )


# --- metrics ------------------------------------------------------------------------------


def test_metrics_count_a_scenario_run_and_its_feedback(client):
    before = metrics(client)
    response = client.post(
        "/cds-services/b12-order-sign", json=load_json(SCENARIO / "request.json"), headers=AT
    )
    assert response.status_code == 200
    card = response.get_json()["cards"][0]
    client.post(
        "/cds-services/b12-order-sign/feedback",
        json={
            "feedback": [
                {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-06-15T12:05:00Z",
                }
            ]
        },
    )
    after = metrics(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    service = {"service": "b12-order-sign"}
    assert delta("cds_cards_total", rule="folate-before-b12", indicator="critical", **service) == 1
    assert delta("cds_http_requests_total", endpoint="invoke", status="200", **service) == 1
    assert delta("cds_http_request_duration_seconds_count", endpoint="invoke", **service) == 1
    assert delta("cds_http_requests_total", endpoint="feedback", status="200", **service) == 1
    assert (
        delta("cds_feedback_total", rule="folate-before-b12", outcome="overridden", **service) == 1
    )


def test_a_made_up_service_id_never_becomes_a_label(client):
    made_up = f"evil-{uuid.uuid4().hex}"
    before = metrics(client)
    assert client.post(f"/cds-services/{made_up}", json={}).status_code == 404
    after = metrics(client)
    assert made_up not in after
    name, labels = "cds_http_requests_total", {"service": "unknown", "status": "404"}
    assert value(after, name, **labels) == value(before, name, **labels) + 1


def test_metrics_count_anonymous_calls(client):
    before = metrics(client)
    client.get("/cds-services")  # development: no token needed
    client.get("/cds-services")
    name = "cds_anonymous_calls_total"
    assert value(metrics(client), name) == value(before, name) + 2


def test_metrics_count_authentication_failures_by_reason(client):
    before = metrics(client)
    # A token that is sent is always verified, even in development.
    client.get("/cds-services", headers={"Authorization": "Bearer not-a-jwt"})
    after = metrics(client)
    name = "cds_auth_failures_total"
    assert value(after, name, reason="malformed-header") == (
        value(before, name, reason="malformed-header") + 1
    )


def test_metrics_count_fhir_fallback_keys_by_result(settings, core):
    core.fetcher = FhirFetcher()  # no allowlist: an outside FHIR server is refused, unfetched
    client = create_app(settings, core).test_client()
    body = load_json(SCENARIO / "request.json")
    del body["prefetch"]["b12Labs"]
    body["fhirServer"] = "https://ehr.example.org/fhir"
    before = metrics(client)
    assert client.post("/cds-services/b12-order-sign", json=body, headers=AT).status_code == 200
    after = metrics(client)
    name = "cds_fhir_fallback_keys_total"
    labels = {"key": "b12Labs", "result": "refused"}
    assert value(after, name, **labels) == value(before, name, **labels) + 1
    count = "cds_fhir_fallback_duration_seconds_count"
    assert value(after, count) == value(before, count) + 1


def test_a_ledger_write_that_fails_is_counted_and_the_cards_still_come(settings, core, tmp_path):
    core.store = broken_store(tmp_path)
    client = create_app(settings, core).test_client()
    before = metrics(client)
    response = client.post(
        "/cds-services/b12-order-sign", json=load_json(SCENARIO / "request.json"), headers=AT
    )
    assert response.status_code == 200 and response.get_json()["cards"]
    assert core.flush_ledger()  # the ledger is written in the background
    after = metrics(client)
    name = "cds_storage_failures_total"
    assert value(after, name, operation="record_cards") == (
        value(before, name, operation="record_cards") + 1
    )
    dropped = "cds_ledger_dropped_total"
    assert value(after, dropped, reason="database") == (
        value(before, dropped, reason="database") + len(response.get_json()["cards"])
    )


# --- log events ---------------------------------------------------------------------------


def events(caplog, name: str) -> list[dict]:
    found = []
    for record in caplog.records:
        if record.msg == name:
            found.append(json.loads(JsonFormatter().format(record)))
    return found


def test_an_invocation_logs_status_rules_and_durations(client, caplog):
    caplog.set_level(logging.INFO, logger="cds_service")
    client.post(
        "/cds-services/b12-order-sign", json=load_json(SCENARIO / "request.json"), headers=AT
    )
    (event,) = events(caplog, "invocation")
    assert event["status"] == 200 and event["service"] == "b12-order-sign"
    assert event["rules"] == ["folate-before-b12"] and event["cards"] == 1
    assert event["hookInstance"] == load_json(SCENARIO / "request.json")["hookInstance"]
    for timing in ("duration_ms", "prefetch_ms", "evaluate_ms"):
        assert event[timing] >= 0
    assert event["fetched_keys"] == []


def test_an_invocation_reads_a_blood_count_only_as_far_as_a_rule_looks(client, caplog):
    """An older result than the latest current one of an analyte outside the B12 family is
    not read (``extract_facts``'s ``enough``): a malformed one is not reported as skipped,
    while one newer than the current result still is."""
    caplog.set_level(logging.INFO, logger="cds_service")
    request = load_json(SCENARIO / "request.json")
    request["prefetch"]["bloodCounts"]["entry"] = [
        {"resource": observation(rid, "2823-3", value=quantity(value, "mmol/L"), date=day)}
        for rid, day, value in [
            ("k-new", "2026-06-14", "high"),
            ("k-current", "2026-06-10", 4.1),
            ("k-old", "2026-01-10", "low"),
        ]
    ] + request["prefetch"]["bloodCounts"]["entry"]
    response = client.post("/cds-services/b12-order-sign", json=request, headers=AT)
    assert response.status_code == 200
    (event,) = events(caplog, "invocation")
    assert event["skipped_resources"] == ["Observation/k-new"]


def test_a_failed_invocation_logs_its_status_and_code(client, caplog):
    caplog.set_level(logging.INFO, logger="cds_service")
    body = {"hook": "order-sign", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"}
    client.post("/cds-services/b12-order-sign", json=body)  # no context
    (event,) = events(caplog, "invocation failed")
    assert event["status"] == 400 and event["code"] == "invalid-request"
    assert event["service"] == "b12-order-sign"
    assert event["hookInstance"] == body["hookInstance"]
    client.post("/cds-services/b12-order-sign", data=b"{", content_type="application/json")
    assert events(caplog, "invocation failed")[-1]["hookInstance"] is None


def test_failed_feedback_logs_an_event_too(client, caplog):
    caplog.set_level(logging.INFO, logger="cds_service")
    client.post("/cds-services/b12-order-sign/feedback", json={"feedback": []})
    (event,) = events(caplog, "feedback failed")
    assert (event["status"], event["code"]) == (400, "invalid-request")


def test_gunicorn_messages_are_interpolated_and_the_services_are_not():
    record = logging.LogRecord(
        "gunicorn.error", logging.INFO, __file__, 1, "Booting worker with pid: %s", (42,), None
    )
    assert json.loads(JsonFormatter(interpolate=True).format(record))["event"] == (
        "Booting worker with pid: 42"
    )
    assert json.loads(JsonFormatter().format(record))["event"] == "Booting worker with pid: %s"


# --- serve --------------------------------------------------------------------------------


def test_serve_runs_the_production_settings():
    settings = load_settings(
        {
            "CDS_WORKERS": "3",
            "CDS_THREADS": "8",
            "CDS_GRACEFUL_TIMEOUT": "20",
            "CDS_MAX_REQUESTS": "5000",
            "CDS_FORWARDED_ALLOW_IPS": "10.0.0.2",
        }
    )
    options = gunicorn_options(settings, "0.0.0.0", 8080, settings.workers)
    assert options["bind"] == "0.0.0.0:8080"
    assert (options["workers"], options["threads"]) == (3, 8)
    # gthread, answering gunicorn's own refusals as OperationOutcomes (docs/security.md)
    assert options["worker_class"] == "cds_service.serving.JsonErrorWorker"
    assert issubclass(JsonErrorWorker, ThreadWorker)
    # A worker takes a connection only when a thread is free, and closes it after the answer.
    assert (options["worker_connections"], options["keepalive"]) == (8, 0)
    assert (options["graceful_timeout"], options["max_requests"]) == (20, 5000)
    assert options["max_requests_jitter"] == 500
    assert options["forwarded_allow_ips"] == "10.0.0.2"
    assert options["logconfig_dict"] == gunicorn_logconfig(settings.log_level)
    assert callable(options["child_exit"])
    assert gunicorn_options(settings, "::", 8080, 1)["bind"] == "[::]:8080"


def test_the_app_heap_is_frozen_before_the_workers_are_forked():
    # In a child interpreter: freezing this test process's heap would change the others.
    script = (
        "import gc, json; from cds_service import serving; serving.settle_heap();"
        " print(json.dumps([gc.get_freeze_count(), gc.get_threshold()]))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    frozen, thresholds = json.loads(done.stdout)
    assert frozen > 1000 and tuple(thresholds) == serving.GC_THRESHOLDS


def test_serve_freezes_the_heap_after_building_the_app_and_before_forking(monkeypatch, tmp_path):
    import gunicorn.app.base

    from cds_service import bootstrap

    steps = []
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(serving.logs, "configure", lambda level: None)
    monkeypatch.setattr(bootstrap, "announce", lambda settings: None)
    monkeypatch.setattr(bootstrap, "build_app", lambda settings: steps.append("build") or "app")
    monkeypatch.setattr(serving, "settle_heap", lambda: steps.append("freeze"))
    monkeypatch.setattr(gunicorn.app.base.BaseApplication, "run", lambda self: steps.append("fork"))
    serving.serve(load_settings({}), "127.0.0.1", 8080)
    assert steps == ["build", "freeze", "fork"]


def test_serve_defaults():
    settings = load_settings({})
    assert (settings.threads, settings.graceful_timeout_s, settings.max_requests) == (1, 30, 10000)
    assert settings.workers == 2 * (os.cpu_count() or 1)
    assert settings.ledger_retention_days == 365
    assert settings.forwarded_allow_ips == "127.0.0.1,::1"
    assert load_settings({"CDS_LEDGER_RETENTION_DAYS": "0"}).ledger_retention_days == 0
    with pytest.raises(ConfigError, match="CDS_LEDGER_RETENTION_DAYS"):
        load_settings({"CDS_LEDGER_RETENTION_DAYS": "-1"})
    with pytest.raises(ConfigError, match="CDS_THREADS"):
        load_settings({"CDS_THREADS": "0"})


def test_the_metrics_directory_is_fresh_or_emptied(tmp_path):
    environ: dict[str, str] = {}
    path, created = prepare_metrics_dir(environ)
    assert created and environ["PROMETHEUS_MULTIPROC_DIR"] == path
    configured = tmp_path / "metrics"
    configured.mkdir()
    (configured / "counter_123.db").write_bytes(b"stale")
    environ = {"PROMETHEUS_MULTIPROC_DIR": str(configured)}
    assert prepare_metrics_dir(environ) == (str(configured), False)
    assert list(configured.iterdir()) == []
    shutil.rmtree(path)


def test_feedback_report_names_the_setting_when_the_database_is_unreachable(
    tmp_path, monkeypatch, capsys
):
    from cds_service.cli import main

    (tmp_path / "cds.sqlite3").write_text("not a database, " * 100)
    monkeypatch.setenv("CDS_DATABASE_URL", f"sqlite:///{tmp_path}/cds.sqlite3")
    assert main(["feedback-report"]) == 2
    assert capsys.readouterr().err.startswith(
        f"CDS_DATABASE_URL: cannot use the SQLite database {tmp_path}/cds.sqlite3: database error"
    )
