"""Operations over real HTTP: ``cds-service serve`` with two gunicorn workers, /metrics adding
up every worker's counters after a scenario run (cards by rule and indicator, requests and
latency, feedback, authentication failures, a FHIR fallback that timed out), health checks,
and every log line JSON."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
import requests

from tests.conftest import FIXTURES, load_json
from tests.integration.server import running_service
from tests.metrics_text import value

pytestmark = pytest.mark.integration

SCENARIO = FIXTURES / "scenarios" / "folic-acid-with-b12-118-megaloblastic"
AT = {"CDS-Evaluation-Time": "2026-06-15T12:00:00Z"}
SERVICE = "b12-order-sign"


@pytest.fixture(scope="module")
def silent_fhir_server():
    """A loopback FHIR 'server' that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/fhir"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("operations")
    metrics_dir = home / "metrics"
    metrics_dir.mkdir()
    # A previous run's file, unreadable: /metrics fails unless serve empties the directory.
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from a previous run")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "CDS_FHIR_BUDGET_MS": "400"}
    with running_service(home, env, workers=2) as (base, log_path):
        yield base, log_path, metrics_dir


def ledgered(database: Path, card_uuid: str, timeout_s: float = 10) -> None:
    """Wait until the ledger holds ``card_uuid`` (read-only, beside the running service)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
            found = db.execute(
                "SELECT 1 FROM issued_cards WHERE card_uuid = ?", (card_uuid,)
            ).fetchone()
        if found:
            return
        assert time.monotonic() < deadline, "the card never reached the ledger"
        time.sleep(0.05)


def metrics(base: str) -> str:
    response = requests.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.text


def test_health_endpoints(server):
    base, _, _ = server
    assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{base}/readyz", timeout=5).json()["status"] == "ready"


def test_metrics_show_the_counters_after_a_scenario_run(server, silent_fhir_server):
    base, _, metrics_dir = server
    before = metrics(base)
    runs = 10  # spread over both workers: the counts below are the sum of their files
    request = load_json(SCENARIO / "request.json")
    cards = []
    for _ in range(runs):
        answer = requests.post(
            f"{base}/cds-services/{SERVICE}", json=request, headers=AT, timeout=10
        )
        assert answer.status_code == 200
        cards += answer.json()["cards"]
    # The feedback's rule is looked up in the ledger, which each worker writes in batches:
    # sent to the other worker within a batch's wait, the card would not be there yet.
    ledgered(metrics_dir.parent / "server.sqlite3", cards[0]["uuid"])
    feedback = {
        "feedback": [
            {
                "card": cards[0]["uuid"],
                "outcome": "accepted",
                "outcomeTimestamp": "2026-06-15T12:01:00Z",
            }
        ]
    }
    assert requests.post(f"{base}/cds-services/{SERVICE}/feedback", json=feedback, timeout=10).ok
    refused = requests.get(
        f"{base}/cds-services", headers={"Authorization": "Bearer not-a-jwt"}, timeout=10
    )
    assert refused.status_code == 401
    fetching = dict(request, fhirServer=silent_fhir_server)
    fetching["prefetch"] = {k: v for k, v in request["prefetch"].items() if k != "b12Labs"}
    answer = requests.post(f"{base}/cds-services/{SERVICE}", json=fetching, headers=AT, timeout=10)
    assert answer.status_code == 200  # the fallback timed out; the cards still come
    after = metrics(base)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    service = {"service": SERVICE}
    assert (
        delta("cds_cards_total", rule="folate-before-b12", indicator="critical", **service) >= runs
    )
    assert delta("cds_http_requests_total", endpoint="invoke", status="200", **service) == runs + 1
    assert (
        delta("cds_http_request_duration_seconds_count", endpoint="invoke", **service) == runs + 1
    )
    assert delta("cds_feedback_total", rule="folate-before-b12", outcome="accepted", **service) == 1
    assert delta("cds_auth_failures_total", reason="malformed-header") == 1
    assert delta("cds_fhir_fallback_keys_total", key="b12Labs", result="timeout") == 1
    assert not (metrics_dir / "counter_999999.db").exists()
    assert list(metrics_dir.glob("*.db"))  # the workers' own files


def test_every_log_line_is_json(server):
    base, log_path, _ = server
    request = load_json(SCENARIO / "request.json")
    requests.post(f"{base}/cds-services/{SERVICE}", json=request, headers=AT, timeout=10)
    lines = log_path.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert any(e["logger"] == "gunicorn.error" and "Booting worker" in e["event"] for e in events)
    assert any(e["event"] == "invocation" and e["status"] == 200 for e in events)
