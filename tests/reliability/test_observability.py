"""Observability never fails an invocation: when the ledger hand-off, a metrics call or the
invocation log raises, the cards still go out; the failure is counted and logged by its type,
without patient data."""

from __future__ import annotations

import logging

import pytest

from cds_service.cdshooks import application
from cds_service.storage import LedgerWriter
from cds_service.web import metrics
from cds_service.web.app import create_app
from tests.test_conformance import folate_request

SIGN = "/cds-services/b12-order-sign"


class Boom(RuntimeError):
    pass


def boom(*_args, **_kwargs):
    raise Boom("patient pat-secret-123 in an exception message")


@pytest.fixture
def app_client(settings, core):
    return create_app(settings, core).test_client()


def invoke(client):
    body = folate_request()
    response = client.post(SIGN, json=body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["cards"], "the folate alert must still go out"
    return body


def assert_counted_and_logged(core, caplog, part: str, body: dict) -> None:
    assert core.counters.get("observability_failures", 0) >= 1
    events = [r for r in caplog.records if r.msg == "observability failed"]
    assert [e.part for e in events if e.part == part], [e.__dict__ for e in events]
    patient = body["context"]["patientId"]
    for record in caplog.records:
        text = logging.Formatter().format(record) + str(record.__dict__)
        assert "pat-secret-123" not in text and patient not in text


def test_a_ledger_hand_off_that_raises(app_client, core, monkeypatch, caplog):
    monkeypatch.setattr(LedgerWriter, "submit", boom)
    body = invoke(app_client)
    assert_counted_and_logged(core, caplog, "ledger", body)


def test_a_metrics_call_that_raises(app_client, core, monkeypatch, caplog):
    before = core.counters.get("observability_failures", 0)
    core.on_card = boom  # as the vanished metrics directory made it raise
    monkeypatch.setattr(metrics.REQUESTS, "labels", boom)  # and the per-request counter
    body = invoke(app_client)
    assert_counted_and_logged(core, caplog, "metrics", body)
    assert core.counters["observability_failures"] >= before + 2


def test_the_invocation_log_that_raises(app_client, core, monkeypatch, caplog):
    monkeypatch.setattr(application.log, "info", boom)
    body = invoke(app_client)
    assert_counted_and_logged(core, caplog, "log", body)


def test_a_failed_counter_is_visible_in_the_metrics(app_client, core, monkeypatch):
    core.on_card = boom
    invoke(app_client)
    exposition = app_client.get("/metrics").get_data(as_text=True)
    assert any(
        line.startswith('cds_observability_failures_total{part="metrics"}')
        and float(line.rsplit(" ", 1)[1]) >= 1
        for line in exposition.splitlines()
    )


def test_feedback_metrics_that_raise_do_not_lose_the_acknowledgement(app_client, core, monkeypatch):
    core.on_feedback = boom
    response = app_client.post(
        SIGN + "/feedback",
        json={
            "feedback": [
                {"card": "c-1", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"}
            ]
        },
    )
    assert response.status_code == 200 and response.get_json()["stored"] == 1
    assert core.store.feedback_count() == 1
