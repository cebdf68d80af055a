"""Worker recycling under load, through real gunicorn: the master owns the metrics directory,
so a worker replaced after ``CDS_MAX_REQUESTS`` leaves its siblings and its successor working.
Every card-issuing call answers 200 with its cards, ``/metrics`` still adds them up, and each
leaving worker (recycled, then stopped with the service) writes its queued ledger entries:
every card returned is in the ledger."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bench import servers, workloads
from bench.issuer import TestIssuer

pytestmark = pytest.mark.integration

CALLS = 240
SIGN = "/cds-services/b12-order-sign"


def test_recycled_workers_never_fail_a_card_issuing_call(tmp_path):
    issuer = TestIssuer()
    body = json.dumps(workloads.order_sign(folic_acid=True))
    with servers.real_service(
        tmp_path,
        issuer,
        workers=2,
        CDS_MAX_REQUESTS="20",  # ~12 replacements over the run
        CDS_THREADS="4",
    ) as server:  # the metrics directory is the one `serve` creates (and alone may remove)
        first_workers = set(server.settled_workers())
        tokens = issuer.mint_pool(server.base + SIGN, CALLS)

        def call(token: str) -> tuple[int, int]:
            response = requests.post(
                server.base + SIGN,
                data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                timeout=30,
            )
            cards = response.json().get("cards", []) if response.status_code == 200 else []
            return response.status_code, len(cards)

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(call, tokens))
        statuses = [status for status, _ in answers]
        assert statuses == [200] * CALLS, f"{sorted(set(statuses))}\n{server.log()[-3000:]}"
        assert all(cards >= 1 for _, cards in answers)  # the folate alert, every time
        assert not first_workers & set(server.workers()), "no worker was recycled"
        exposition = requests.get(server.base + "/metrics", timeout=10).text
        issued = sum(
            float(line.rsplit(" ", 1)[1])
            for line in exposition.splitlines()
            if line.startswith("cds_cards_total{") and 'rule="folate-before-b12"' in line
        )
        assert issued >= CALLS
        assert "FileNotFoundError" not in server.log()
        database = server.database
    returned = sum(cards for _, cards in answers)
    with sqlite3.connect(str(database)) as db:
        assert db.execute("SELECT count(*) FROM issued_cards").fetchone()[0] == returned
