"""Soak: the real service (production profile, authentication on) under a steady mix of good
requests, hostile ones and feedback posts for a fixed time; then the checks.

    .venv/bin/python -m bench.soak --seconds 600      # by hand; CI runs it for ~10 s

Passes when:
- no answer was a 5xx, and every answer had the status its request calls for (a good request
  200, a hostile one its 4xx; a 4xx always a FHIR OperationOutcome);
- no feedback was lost: every feedback entry the service acknowledged as stored is in the
  database, counted there at the end;
- the workers' memory (RSS from /proc) grew by less than ``--max-growth-mb`` each between the
  end of the warm-up (the first fifth of the run) and the end, and no worker died.

Worker recycling (``CDS_MAX_REQUESTS``) is turned off for the run, so that a leak shows
instead of being hidden by restarts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import servers, workloads
from bench.issuer import TestIssuer

JSON = "application/json"


@dataclass
class Report:
    seconds: float
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    server_errors: int = 0
    feedback_acknowledged: int = 0
    feedback_in_database: int = 0
    rss_kb_start: dict[int, int] = field(default_factory=dict)
    rss_kb_end: dict[int, int] = field(default_factory=dict)
    max_growth_kb: int = 0
    workers_replaced: bool = False
    log_tail: str = ""

    @property
    def growth_kb(self) -> dict[int, int]:
        return {pid: self.rss_kb_end.get(pid, 0) - kb for pid, kb in self.rss_kb_start.items()}

    @property
    def problems(self) -> list[str]:
        found = []
        if self.server_errors:
            found.append(f"{self.server_errors} answers were 5xx")
        if self.unexpected:
            found.append(f"{len(self.unexpected)} unexpected answers, e.g. {self.unexpected[:3]}")
        if self.feedback_in_database != self.feedback_acknowledged:
            found.append(
                f"feedback lost: {self.feedback_acknowledged} acknowledged,"
                f" {self.feedback_in_database} in the database"
            )
        if self.workers_replaced:
            found.append("a worker died or was replaced during the run")
        grown = {p: g for p, g in self.growth_kb.items() if g > self.max_growth_kb}
        if grown:
            found.append(f"worker memory grew past {self.max_growth_kb} kB: {grown}")
        if not self.requests:
            found.append("no request was sent")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        rate = self.requests / self.seconds if self.seconds else 0
        growth = ", ".join(f"{g / 1024:+.1f} MB" for g in self.growth_kb.values())
        start = ", ".join(f"{kb / 1024:.0f} MB" for kb in self.rss_kb_start.values())
        lines = [
            f"{self.requests} requests in {self.seconds:.0f} s ({rate:.0f}/s);"
            f" statuses {dict(sorted(self.statuses.items()))}",
            f"feedback: {self.feedback_acknowledged} entries acknowledged,"
            f" {self.feedback_in_database} in the database",
            f"worker RSS after warm-up {start}; growth {growth}",
            "PASS" if self.ok else "FAIL: " + "; ".join(self.problems),
        ]
        return "\n".join(lines)


class _Mix:
    """The requests of the soak, each with the status it must get."""

    def __init__(self, base: str, issuer: TestIssuer) -> None:
        self.base = base
        self.issuer = issuer
        self.cards: list[str] = []
        self.lock = threading.Lock()
        self.feedback_acknowledged = 0
        self.typical = json.dumps(workloads.order_sign()).encode()
        self.folic = json.dumps(workloads.order_sign(folic_acid=True)).encode()
        self.view = json.dumps(workloads.patient_view()).encode()
        self.large = json.dumps(workloads.order_sign(n_obs=300, n_meds=30)).encode()
        good = workloads.order_sign(folic_acid=True)
        self.nan = json.dumps(good).replace('"value": 118', '"value": NaN', 1).encode()
        wrong = dict(good, context={**good["context"], "patientId": 17})
        self.wrong_type = json.dumps(wrong).encode()
        self.deep = b"[" * 20000 + b"]" * 20000
        self.too_big = b'{"a": "' + b"x" * (6 * 1024 * 1024) + b'"}'
        self.replayed = issuer.token(f"{base}/cds-services/b12-order-sign")

    def spend_replayed_token(self) -> None:
        """Use the token once, so that every later use in the run is a replay."""
        path = "/cds-services/b12-order-sign"
        requests.post(
            self.base + path, data=self.typical, headers=self.headers(path, token=self.replayed)
        ).raise_for_status()

    def headers(self, path: str, *, token: str | None = None, content_type: str | None = JSON):
        headers = {"Authorization": f"Bearer {token or self.issuer.token(self.base + path)}"}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def schedule(self):
        """(name, callable(session) -> (status, expected status)) in a fixed repeating order:
        about 55 % good calls, 30 % hostile ones, 15 % feedback."""
        sign, view = "/cds-services/b12-order-sign", "/cds-services/b12-patient-view"
        good = [
            ("order-sign typical", lambda s: self.post(s, sign, self.typical, 200)),
            ("order-sign folic acid", lambda s: self.post(s, sign, self.folic, 200, cards=True)),
            ("patient-view", lambda s: self.post(s, view, self.view, 200, cards=True)),
            ("order-sign 300 obs", lambda s: self.post(s, sign, self.large, 200)),
        ]
        bad = [
            ("NaN", lambda s: self.post(s, sign, self.nan, 400)),
            ("wrong type", lambda s: self.post(s, sign, self.wrong_type, 400)),
            ("deep nesting", lambda s: self.post(s, sign, self.deep, 400)),
            ("invalid UTF-8", lambda s: self.post(s, sign, b'{"hook": "\xff"}', 400)),
            (
                "text/plain",
                lambda s: self.post(s, sign, self.typical, 415, content_type="text/plain"),
            ),
            ("unknown service", lambda s: self.post(s, "/cds-services/nope", self.typical, 404)),
            ("GET on a service", lambda s: self.get(s, sign, 405)),
            ("no token", lambda s: self.post(s, sign, self.typical, 401, token="")),
            (
                "replayed token",
                lambda s: self.post(s, sign, self.typical, 401, token=self.replayed),
            ),
            # gunicorn discards at most 64 KB of a body the app did not read, then closes the
            # connection: a client sending 6 MB it expects refused says Connection: close.
            ("6 MB body", lambda s: self.post(s, sign, self.too_big, 413, close=True)),
        ]
        feedback = [("feedback", self.feedback)]
        pattern = good * 3 + bad[:5] + good[:2] + feedback + bad[5:] + feedback
        return itertools.cycle(pattern)

    def post(
        self,
        session,
        path,
        body,
        expected,
        *,
        cards=False,
        token=None,
        content_type=JSON,
        close=False,
    ):
        if token == "":
            headers = {"Content-Type": content_type}
        else:
            headers = self.headers(path, token=token, content_type=content_type)
        if close:
            headers["Connection"] = "close"
        response = session.post(self.base + path, data=body, headers=headers, timeout=60)
        if cards and response.status_code == 200:
            uuids = [c["uuid"] for c in response.json()["cards"]]
            with self.lock:
                self.cards.extend(uuids[:1])
                del self.cards[:-1000]
        return response, expected

    def get(self, session, path, expected):
        response = session.get(self.base + path, headers=self.headers(path), timeout=60)
        return response, expected

    def feedback(self, session):
        with self.lock:
            card = self.cards[len(self.cards) // 2] if self.cards else str(uuid.uuid4())
        path = "/cds-services/b12-order-sign/feedback"
        body = {
            "feedback": [
                {
                    "card": card,
                    "outcome": "overridden",
                    # Unique per post: the service de-duplicates (card, outcome, timestamp).
                    "outcomeTimestamp": f"2026-06-15T12:00:00.{uuid.uuid4().int % 10**6:06d}Z",
                    "overrideReason": {"userComment": "soak"},
                }
            ]
        }
        response = session.post(
            self.base + path, data=json.dumps(body), headers=self.headers(path), timeout=60
        )
        if response.status_code == 200:
            with self.lock:
                self.feedback_acknowledged += response.json()["stored"]
        return response, 200


def _check(response, expected: int) -> str | None:
    status = response.status_code
    if status != expected:
        return f"{status} instead of {expected}"
    if status >= 400:
        try:
            body = response.json()
        except ValueError:
            return f"{status} without a JSON body"
        if body.get("resourceType") != "OperationOutcome":
            return f"{status} without an OperationOutcome"
    return None


def run(
    seconds: float,
    *,
    clients: int = 4,
    workers: int | None = None,
    max_growth_mb: float = 40,
    workdir: Path | None = None,
    out=None,
) -> Report:
    issuer = TestIssuer()
    report = Report(seconds=seconds, max_growth_kb=int(max_growth_mb * 1024))
    with tempfile.TemporaryDirectory(prefix="cds-soak-") as tmp:
        directory = Path(workdir or tmp)
        with servers.real_service(
            directory, issuer, workers=workers, CDS_MAX_REQUESTS="0"
        ) as server:
            initial_workers = server.settled_workers()
            mix = _Mix(server.base, issuer)
            mix.spend_replayed_token()
            started = time.monotonic()
            deadline = started + seconds
            warm_until = started + seconds / 5
            lock = threading.Lock()
            schedule = mix.schedule()

            def client() -> None:
                previous = "nothing"
                with requests.Session() as session:
                    session.trust_env = False
                    while time.monotonic() < deadline:
                        with lock:
                            name, call = next(schedule)
                        try:
                            response, expected = call(session)
                        except requests.RequestException as exc:
                            with lock:
                                report.requests += 1
                                report.unexpected.append(
                                    f"{name} (after {previous}): {type(exc).__name__} {exc}"[:300]
                                )
                            previous = name
                            continue
                        previous = name
                        problem = _check(response, expected)
                        with lock:
                            report.requests += 1
                            report.statuses[response.status_code] += 1
                            report.server_errors += response.status_code >= 500
                            if problem:
                                report.unexpected.append(f"{name}: {problem}")

            threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
            for thread in threads:
                thread.start()
            while time.monotonic() < warm_until:
                time.sleep(0.05)
            report.rss_kb_start = server.worker_rss_kb()
            for thread in threads:
                thread.join(timeout=seconds + 120)
            report.rss_kb_end = server.worker_rss_kb()
            report.seconds = time.monotonic() - started
            report.workers_replaced = server.workers() != initial_workers
            report.feedback_acknowledged = mix.feedback_acknowledged
            report.log_tail = server.log()[-3000:]
            with sqlite3.connect(str(server.database)) as db:
                report.feedback_in_database = db.execute(
                    "SELECT count(*) FROM feedback"
                ).fetchone()[0]
    if out is not None:
        print(report.summary(), file=out)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-growth-mb", type=float, default=40)
    args = parser.parse_args(argv)
    report = run(
        args.seconds, clients=args.clients, max_growth_mb=args.max_growth_mb, out=sys.stdout
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
