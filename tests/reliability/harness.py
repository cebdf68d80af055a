"""The service in this process (production profile, authentication on, the bench's test EHR
trusted) on a real database, and calls timed the way an EHR would see them."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import workloads
from bench.issuer import TestIssuer
from cds_service.bootstrap import build_app

BASE = "http://localhost"
SIGN = "/cds-services/b12-order-sign"
FEEDBACK = SIGN + "/feedback"
#: What the issue promises an EHR during a database or key-server fault.
CARDS_WITHIN_S = 1.5
HEALTH_WITHIN_S = 1.0
READY_WITHIN_S = 1.0
FEEDBACK_WITHIN_S = 1.0


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any
    elapsed_s: float

    @property
    def cards(self) -> list[dict]:
        return self.body.get("cards", []) if isinstance(self.body, dict) else []

    @property
    def code(self) -> str | None:
        try:
            return self.body["issue"][0]["details"]["coding"][0]["code"]
        except (KeyError, IndexError, TypeError):
            return None


class Service:
    def __init__(self, tmp_path: Path, database_url: str, **env: str) -> None:
        self.issuer = TestIssuer()
        clients = self.issuer.write_clients_file(tmp_path)
        environ = {
            "CDS_PROFILE": "production",
            "CDS_TRUSTED_CLIENTS": str(clients),
            "CDS_PUBLIC_BASE_URL": BASE,
            "CDS_DATABASE_URL": database_url,
            **env,
        }
        self.app = build_app(environ=environ)
        self.core = self.app.extensions["cds"]
        self.client = self.app.test_client()
        self.folic = workloads.order_sign(folic_acid=True)

    def token(self, path: str) -> str:
        return self.issuer.token(BASE + path)

    def _timed(self, method: str, path: str, **kwargs: Any) -> Answer:
        started = time.monotonic()
        response = self.client.open(path, method=method, **kwargs)
        elapsed = time.monotonic() - started
        return Answer(
            response.status_code, response.get_json(silent=True), response.headers, elapsed
        )

    def invoke(self, token: str | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {token or self.token(SIGN)}"}
        return self._timed("POST", SIGN, json=self.folic, headers=headers)

    def feedback(self, card: str | None = None) -> Answer:
        body = {
            "feedback": [
                {
                    "card": card or str(uuid.uuid4()),
                    "outcome": "overridden",
                    "outcomeTimestamp": f"2026-06-15T12:00:00.{uuid.uuid4().int % 10**6:06d}Z",
                    "overrideReason": {"userComment": "fault test"},
                }
            ]
        }
        headers = {"Authorization": f"Bearer {self.token(FEEDBACK)}"}
        return self._timed(
            "POST",
            FEEDBACK,
            data=json.dumps(body),
            headers=headers,
            content_type="application/json",
        )

    def healthz(self) -> Answer:
        return self._timed("GET", "/healthz")

    def readyz(self) -> Answer:
        return self._timed("GET", "/readyz")

    def close(self) -> None:
        self.core.close()
        self.core.store.close()


def assert_cards_in_time(answer: Answer) -> None:
    assert answer.status == 200, answer.body
    assert answer.cards, "the folate alert must go out"
    assert answer.elapsed_s < CARDS_WITHIN_S, f"{answer.elapsed_s:.2f} s"


def assert_retry_later(answer: Answer, within_s: float, code: str | None = None) -> None:
    assert answer.status == 503, answer.body
    assert answer.body["resourceType"] == "OperationOutcome"
    assert int(answer.headers["Retry-After"]) > 0
    if code is not None:
        assert answer.code == code
    assert answer.elapsed_s < within_s, f"{answer.elapsed_s:.2f} s"


def wait_until(condition, timeout_s: float = 20.0, interval_s: float = 0.2):
    """Poll ``condition()`` until it returns something truthy; that value, or None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    return None
