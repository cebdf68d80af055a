"""The explicit hostile requests against a real gunicorn server (production profile, the test
issuer trusted): each answered with its 4xx OperationOutcome within the client's timeout, no
worker dies or is replaced, and the server still answers a good request afterwards."""

from __future__ import annotations

import pytest
import requests

from bench.issuer import TestIssuer
from bench.servers import real_service

from .cases import cases, good, wrong_type_cases

pytestmark = pytest.mark.integration


def _post(base: str, issuer: TestIssuer, path: str, body: bytes, content_type: str | None):
    headers = {"Authorization": f"Bearer {issuer.token(base + path)}", "Connection": "close"}
    if content_type:
        headers["Content-Type"] = content_type
    return requests.post(base + path, data=body, headers=headers, timeout=30)


def test_hostile_requests_leave_a_real_server_answering(tmp_path):
    issuer = TestIssuer()
    with real_service(tmp_path, issuer, CDS_MAX_REQUESTS="0") as server:
        workers = server.settled_workers()
        assert workers, "gunicorn started no worker"
        failures = []
        for case in cases():
            response = _post(server.base, issuer, case.path, case.body, case.content_type)
            body = response.json()
            code = body.get("issue", [{}])[0].get("details", {}).get("coding", [{}])[0].get("code")
            if (response.status_code, code) != (case.status, case.code):
                failures.append(f"{case.name}: {response.status_code} {code}")
        for name, path, body in wrong_type_cases():
            response = _post(server.base, issuer, path, body, "application/json")
            if response.status_code != 400:
                failures.append(f"{name}: {response.status_code}")
        assert failures == []

        after = _post(
            server.base, issuer, "/cds-services/b12-order-sign", good(), "application/json"
        )
        assert after.status_code == 200
        assert after.json()["cards"][0]["indicator"] == "critical"
        assert server.workers() == workers, "a worker died and was replaced"
        log = server.log()
        assert "WORKER TIMEOUT" not in log and "Traceback" not in log
        assert '"level": "error"' not in log
