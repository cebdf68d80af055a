"""Feedback: stored with its rule through the issued-card ledger, idempotent on repeats,
unknown cards flagged not rejected, nothing lost under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from cds_service.storage import IssuedCard, SqlStore
from tests.conftest import sandbox_request
from tests.test_conformance import assert_outcome

URL = "/cds-services/b12-order-sign/feedback"


def entry(card: str, outcome: str = "accepted", ts: str = "2026-06-15T12:00:00Z", **extra) -> dict:
    return {"card": card, "outcome": outcome, "outcomeTimestamp": ts, **extra}


def issue(store, uuid: str, rule: str = "folate-before-b12") -> None:
    store.record_cards(
        [IssuedCard(uuid, "b12-order-sign", rule, "critical", "hook-1", datetime.now(timezone.utc))]
    )


def test_sandbox_feedback_capture_is_accepted(client, store):
    response = client.post(URL, json=sandbox_request("feedback"))
    assert response.status_code == 200
    assert store.feedback_count() == 1


def test_feedback_is_attributed_to_the_rule_of_the_card(client, store):
    issue(store, "card-1")
    client.post(
        URL,
        json={
            "feedback": [
                entry(
                    "card-1",
                    "overridden",
                    overrideReason={
                        "reason": {
                            "system": "x",
                            "code": "b12-given-elsewhere",
                            "display": "B12 already given elsewhere",
                        },
                        "userComment": "free text",
                    },
                )
            ]
        },
    )
    report = {r.rule_id: r for r in store.feedback_report()}
    assert report["folate-before-b12"].overridden == 1
    assert report["folate-before-b12"].override_reasons == {"B12 already given elsewhere": 1}


def test_repeated_feedback_is_idempotent(client, store):
    issue(store, "card-1")
    body = {"feedback": [entry("card-1")]}
    first = client.post(URL, json=body).get_json()
    second = client.post(URL, json=body).get_json()
    assert first == {"stored": 1, "duplicates": 0, "unknownCards": 0}
    assert second == {"stored": 0, "duplicates": 1, "unknownCards": 0}
    assert store.feedback_count() == 1


def test_batched_feedback_stores_every_entry(client, store):
    for i in range(5):
        issue(store, f"card-{i}")
    body = {
        "feedback": [entry(f"card-{i}", "accepted" if i % 2 else "overridden") for i in range(5)]
    }
    assert client.post(URL, json=body).get_json()["stored"] == 5
    report = {r.rule_id: r for r in store.feedback_report()}["folate-before-b12"]
    assert (report.accepted, report.overridden, report.issued) == (2, 3, 5)


def test_unknown_card_is_stored_and_flagged(client, store):
    result = client.post(URL, json={"feedback": [entry("never-issued")]}).get_json()
    assert result == {"stored": 1, "duplicates": 0, "unknownCards": 1}
    assert {r.rule_id for r in store.feedback_report()} == {"(unknown card)"}


def test_invalid_feedback_is_400(client):
    for body in (
        {},
        {"feedback": []},
        {
            "feedback": [
                {"card": "x", "outcome": "ignored", "outcomeTimestamp": "2026-01-01T00:00:00Z"}
            ]
        },
        {"feedback": [{"card": "x", "outcome": "accepted"}]},
    ):
        assert_outcome(
            client.post(URL, json=body, headers={"Origin": "https://x.example"}),
            400,
            "invalid-request",
        )


def test_feedback_to_an_unknown_service_is_404(client):
    assert_outcome(
        client.post(
            "/cds-services/nope/feedback",
            json={"feedback": [entry("x")]},
            headers={"Origin": "https://x.example"},
        ),
        404,
        "unknown-service",
    )


def test_concurrent_posts_from_eight_threads_lose_nothing(app, store):
    for i in range(80):
        issue(store, f"card-{i}")

    def post(thread: int) -> int:
        client = app.test_client()

        def send(body) -> int:
            # 503 (the write's deadline passed on a busy machine) means retry, as an EHR does.
            for _ in range(20):
                response = client.post(URL, json=body)
                if response.status_code != 503:
                    return response.get_json()["stored"]
            raise AssertionError("still 503 after 20 tries")

        stored = 0
        for j in range(10):
            card = f"card-{thread * 10 + j}"
            # every entry twice: once alone, once in a batch with a repeat
            stored += send({"feedback": [entry(card)]})
            stored += send({"feedback": [entry(card), entry(card, "overridden")]})
        return stored

    with ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(post, range(8)))
    # An entry stored just after its 503 comes back as a duplicate on the retry.
    assert 0 < total <= 160
    assert store.feedback_count() == 160


def broken_store(tmp_path) -> SqlStore:
    """A database that cannot be opened: its path runs through a plain file."""
    (tmp_path / "a-file").write_text("")
    return SqlStore(f"sqlite:///{tmp_path}/a-file/cds.sqlite3")


def test_storage_failure_answers_503_so_the_ehr_can_retry(client, core, tmp_path):
    core.store = broken_store(tmp_path)
    assert_outcome(
        client.post(URL, json={"feedback": [entry("x")]}, headers={"Origin": "https://x.example"}),
        503,
        "storage-unavailable",
    )
    assert core.counters["storage_failures"] == 1


def test_storage_failure_never_breaks_an_invocation(client, core, tmp_path):
    from tests.test_conformance import folate_request

    core.store = broken_store(tmp_path)
    response = client.post("/cds-services/b12-order-sign", json=folate_request())
    assert response.status_code == 200
    assert response.get_json()["cards"]
    assert core.flush_ledger()  # the ledger is written in the background
    assert core.counters["storage_failures"] == 1
    assert core.counters["ledger_dropped"] == len(response.get_json()["cards"])
