"""Scale-out, proven on real processes: two replicas of the service (``cds-service serve``,
production profile, two gunicorn workers each) started at once against one real PostgreSQL
database in a throwaway cluster (tests/pg.py), as they would run behind a load balancer.

- a JWT used on one replica is refused on the other (the replay store is shared);
- feedback posted to both replicas lands in one report, attributed through one ledger;
- concurrent writes from both lose nothing, and a token raced to both passes exactly once;
- each replica's /metrics counts what it did.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.storage import IssuedCard, open_store
from tests.auth.conftest import BASE, EHR_ISSUER, EHR_KID, claims, jwks_of, sign
from tests.conftest import sandbox_request
from tests.integration.server import running_replicas
from tests.metrics_text import value

pytestmark = pytest.mark.integration

SERVICE = "b12-order-sign"
INVOKE = f"/cds-services/{SERVICE}"
FEEDBACK = f"/cds-services/{SERVICE}/feedback"


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def cluster(postgres, key, tmp_path_factory):
    """(database URL, [replica A, replica B]) sharing one PostgreSQL database."""
    url = postgres.create_database("scaleout")
    home = tmp_path_factory.mktemp("replicas")
    clients = home / "trusted-clients.json"
    clients.write_text(
        json.dumps({"clients": [{"issuer": EHR_ISSUER, "jwks": jwks_of((key, EHR_KID))}]})
    )
    env = {
        "CDS_PROFILE": "production",
        "CDS_DATABASE_URL": url,
        "CDS_TRUSTED_CLIENTS": str(clients),
        # Both replicas are one service to the EHR: the same public URL, behind one balancer.
        "CDS_PUBLIC_BASE_URL": BASE,
        "CDS_LOG_LEVEL": "INFO",
    }
    with running_replicas(home, 2, env, workers=2) as replicas:
        yield url, [base for base, _ in replicas], [log for _, log in replicas]


@pytest.fixture
def ledger(cluster):
    store = open_store(cluster[0])
    yield store
    store.close()


def token(key, path: str) -> str:
    """A fresh token (new jti) for one endpoint, issued now: the servers use the real clock."""
    return sign(key, claims(path, now=int(time.time())))


def post(base: str, path: str, body: dict, bearer: str) -> requests.Response:
    return requests.post(
        base + path, json=body, headers={"Authorization": f"Bearer {bearer}"}, timeout=15
    )


def feedback(*entries: tuple[str, str]) -> dict:
    return {
        "feedback": [
            {"card": card, "outcome": outcome, "outcomeTimestamp": "2027-01-15T08:00:00Z"}
            for card, outcome in entries
        ]
    }


def issue(ledger, rule: str, count: int) -> list[str]:
    """Cards in the shared ledger, as a replica records them when it answers."""
    uuids = [f"{rule}-{i}" for i in range(count)]
    moment = datetime.now(timezone.utc)
    ledger.record_cards(
        [IssuedCard(u, SERVICE, rule, "warning", "hook-scale-out", moment) for u in uuids]
    )
    return uuids


def metrics(base: str) -> str:
    response = requests.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def test_both_replicas_are_ready_on_the_shared_database(cluster):
    _, replicas, _ = cluster
    for base in replicas:
        assert requests.get(f"{base}/readyz", timeout=5).json()["status"] == "ready"


def test_a_token_replayed_on_the_other_replica_is_refused(cluster, key):
    _, (a, b), _ = cluster
    for first, second in ((a, b), (b, a)):
        bearer = token(key, INVOKE)
        assert post(first, INVOKE, sandbox_request("order-sign"), bearer).status_code == 200
        replayed = post(second, INVOKE, sandbox_request("order-sign"), bearer)
        assert replayed.status_code == 401
        assert replayed.json()["resourceType"] == "OperationOutcome"
    for base in (a, b):
        assert value(metrics(base), "cds_auth_failures_total", reason="replayed-jti") >= 1


def test_a_token_raced_to_both_replicas_passes_exactly_once(cluster, key):
    _, (a, b), _ = cluster
    bearer = token(key, INVOKE)
    barrier = threading.Barrier(8)

    def attempt(index: int) -> int:
        barrier.wait()
        base = (a, b)[index % 2]
        return post(base, INVOKE, sandbox_request("order-sign"), bearer).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, range(8)))
    assert sorted(statuses) == [200] + [401] * 7


def test_feedback_posted_to_both_replicas_is_in_one_report(cluster, key, ledger):
    _, (a, b), _ = cluster
    cards = issue(ledger, "report-rule", 4)
    answers = [
        post(a, FEEDBACK, feedback((cards[0], "accepted")), token(key, FEEDBACK)),
        post(b, FEEDBACK, feedback((cards[1], "accepted")), token(key, FEEDBACK)),
        post(a, FEEDBACK, feedback((cards[2], "overridden")), token(key, FEEDBACK)),
        post(
            b,
            FEEDBACK,
            feedback((cards[3], "overridden"), ("never-issued", "accepted")),
            token(key, FEEDBACK),
        ),
        # the same entry again, on the other replica: a duplicate, not a second row
        post(a, FEEDBACK, feedback((cards[3], "overridden")), token(key, FEEDBACK)),
    ]
    assert [r.status_code for r in answers] == [200] * 5
    assert answers[3].json() == {"stored": 2, "duplicates": 0, "unknownCards": 1}
    assert answers[4].json() == {"stored": 0, "duplicates": 1, "unknownCards": 0}
    report = {r.rule_id: r for r in ledger.feedback_report()}["report-rule"]
    assert (report.issued, report.accepted, report.overridden) == (4, 2, 2)


def test_concurrent_writes_from_both_replicas_lose_nothing(cluster, key, ledger):
    _, (a, b), _ = cluster
    cards = issue(ledger, "concurrency-rule", 40)
    before = ledger.feedback_count()
    totals = {"a": metrics(a), "b": metrics(b)}

    def worker(index: int) -> tuple[int, int]:
        mine, other = ((a, b), (b, a))[index % 2]
        stored = duplicates = 0
        for card in [c for position, c in enumerate(cards) if position // 5 == index]:
            first = post(mine, FEEDBACK, feedback((card, "accepted")), token(key, FEEDBACK))
            # a retry of the same entry on the other replica, batched with a new one
            second = post(
                other,
                FEEDBACK,
                feedback((card, "accepted"), (card, "overridden")),
                token(key, FEEDBACK),
            )
            for answer in (first, second):
                assert answer.status_code == 200, answer.text
                stored += answer.json()["stored"]
                duplicates += answer.json()["duplicates"]
        return stored, duplicates

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    assert sum(s for s, _ in results) == 80
    assert sum(d for _, d in results) == 40
    assert ledger.feedback_count() == before + 80
    report = {r.rule_id: r for r in ledger.feedback_report()}["concurrency-rule"]
    assert (report.accepted, report.overridden) == (40, 40)

    # Each replica counted its own share; together, every entry once (all workers summed).
    counted = 0.0
    for name, base in (("a", a), ("b", b)):
        for outcome in ("accepted", "overridden"):
            labels = {"rule": "concurrency-rule", "outcome": outcome}
            counted += value(metrics(base), "cds_feedback_total", **labels) - value(
                totals[name], "cds_feedback_total", **labels
            )
    assert counted == 80


def test_the_replicas_log_json_lines_without_tokens(cluster, key):
    _, (a, _), logs = cluster
    bearer = token(key, INVOKE)
    post(a, INVOKE, sandbox_request("order-sign"), bearer)
    for log in logs:
        text = log.read_text()
        assert bearer.split(".")[2] not in text
        for line in text.splitlines():
            json.loads(line)  # gunicorn's own lines too
