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

Fault mode (``--faults``; ``make soak SOAK_FAULTS=1``): the service runs on a throwaway
PostgreSQL cluster (tests/pg.py), which is stopped at a quarter of the run and restarted at
half, and a worker is killed (SIGKILL) at two thirds. It passes when:
- no answer was a 5xx other than the promised 503s (feedback while the database is down:
  ``storage-unavailable`` with ``Retry-After``), and every other answer had its status (a
  token replayed to another worker while the database is down may pass: the documented
  trade-off of ``CDS_REPLAY_STORE_UNAVAILABLE=accept``);
- at most one connection error per client, right after the kill (the calls that worker held);
- every feedback entry acknowledged as stored is in the database;
- cards never stopped: no gap of more than ``--max-card-gap`` seconds between two answers with
  cards; and the killed worker was replaced.
Memory growth is not judged in this mode (workers change).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
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
    faults: bool = False
    #: Fault mode: what happened when (seconds from the start), connection errors after the
    #: kill, the longest time without an answer carrying cards.
    events: list[str] = field(default_factory=list)
    connection_errors: int = 0
    clients: int = 0
    max_card_gap_s: float = 0.0
    max_card_gap_allowed_s: float = 5.0
    promised_503: int = 0

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
        # With faults, an entry may be stored after its caller got a 503 or lost its
        # connection (it retries; the duplicate is not stored twice): never fewer.
        lost = self.feedback_in_database < self.feedback_acknowledged
        if lost or (not self.faults and self.feedback_in_database != self.feedback_acknowledged):
            found.append(
                f"feedback lost: {self.feedback_acknowledged} acknowledged,"
                f" {self.feedback_in_database} in the database"
            )
        if self.faults:
            if not self.workers_replaced:
                found.append("the killed worker was not replaced")
            if self.connection_errors > self.clients:
                found.append(f"{self.connection_errors} connection errors after the kill")
            if self.max_card_gap_s > self.max_card_gap_allowed_s:
                found.append(f"cards stopped for {self.max_card_gap_s:.1f} s")
        else:
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
        ]
        if self.faults:
            lines += [
                "faults: " + "; ".join(self.events),
                f"promised 503s {self.promised_503}; connection errors after the kill"
                f" {self.connection_errors}; longest gap between answers with cards"
                f" {self.max_card_gap_s:.2f} s",
            ]
        lines += [
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
        #: Fault mode: set while the database is down (and until /readyz is back).
        self.outage = threading.Event()
        self.card_times: list[float] = []
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
                lambda s: self.post(
                    s, sign, self.typical, self.replay_expected(), token=self.replayed
                ),
            ),
            # gunicorn discards at most 64 KB of a body the app did not read, then closes the
            # connection: a client sending 6 MB it expects refused says Connection: close.
            ("6 MB body", lambda s: self.post(s, sign, self.too_big, 413, close=True)),
        ]
        feedback = [("feedback", self.feedback)]
        pattern = good * 3 + bad[:5] + good[:2] + feedback + bad[5:] + feedback
        return itertools.cycle(pattern)

    def replay_expected(self) -> int | tuple[int, ...]:
        # Without the shared store, a worker that has not seen the token accepts it.
        return (401, 200) if self.outage.is_set() else 401

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
                if uuids:
                    self.card_times.append(time.monotonic())
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
        if response.status_code == 503 and _promised_503(response):
            return response, 503  # the promised answer while the database is down
        return response, 200


def _promised_503(response) -> bool:
    try:
        code = response.json()["issue"][0]["details"]["coding"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    return code == "storage-unavailable" and bool(response.headers.get("Retry-After"))


def _check(response, expected: int | tuple[int, ...]) -> str | None:
    status = response.status_code
    if status not in (expected if isinstance(expected, tuple) else (expected,)):
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
    faults: bool = False,
    max_card_gap_s: float = 5.0,
) -> Report:
    issuer = TestIssuer()
    report = Report(seconds=seconds, max_growth_kb=int(max_growth_mb * 1024))
    report.faults, report.clients, report.max_card_gap_allowed_s = faults, clients, max_card_gap_s
    cluster = None
    with tempfile.TemporaryDirectory(prefix="cds-soak-") as tmp:
        directory = Path(workdir or tmp)
        extra = {"CDS_MAX_REQUESTS": "0"}
        try:
            if faults:
                from tests import pg  # the throwaway PostgreSQL cluster of the tests

                cluster = pg.start_cluster()
                extra["CDS_DATABASE_URL"] = cluster.create_database("soak")
            with servers.real_service(directory, issuer, workers=workers, **extra) as server:
                _soak(server, issuer, report, seconds, clients, cluster, out)
                if cluster is None:
                    with sqlite3.connect(str(server.database)) as db:
                        report.feedback_in_database = db.execute(
                            "SELECT count(*) FROM feedback"
                        ).fetchone()[0]
            if cluster is not None:
                from cds_service.storage import open_store

                store = open_store(extra["CDS_DATABASE_URL"])
                try:
                    report.feedback_in_database = store.feedback_count()
                finally:
                    store.close()
        finally:
            if cluster is not None:
                pg.stop_cluster(cluster)
    if out is not None:
        print(report.summary(), file=out)
    return report


def _soak(server, issuer, report: Report, seconds: float, clients: int, cluster, out) -> None:
    initial_workers = server.settled_workers()
    mix = _Mix(server.base, issuer)
    mix.spend_replayed_token()
    started = time.monotonic()
    deadline = started + seconds
    warm_until = started + seconds / 5
    lock = threading.Lock()
    schedule = mix.schedule()
    killed_at: list[float] = []

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
                        if killed_at and time.monotonic() - killed_at[0] < 5:
                            report.connection_errors += 1  # a call the killed worker held
                        else:
                            report.unexpected.append(
                                f"{name} (after {previous}): {type(exc).__name__} {exc}"[:300]
                            )
                    previous = name
                    continue
                previous = name
                problem = _check(response, expected)
                status = response.status_code
                promised = status == 503 and expected == 503
                with lock:
                    report.requests += 1
                    report.statuses[status] += 1
                    report.server_errors += status >= 500 and not promised
                    report.promised_503 += promised
                    if problem:
                        report.unexpected.append(f"{name}: {problem}")

    def at(fraction: float) -> None:
        while time.monotonic() < started + seconds * fraction:
            time.sleep(0.05)

    def note(event: str) -> None:
        report.events.append(f"{time.monotonic() - started:.1f} s {event}")
        if out is not None:
            print(report.events[-1], file=out, flush=True)

    def inject_faults() -> None:
        at(0.25)
        mix.outage.set()
        cluster.stop()
        note("database stopped")
        at(0.5)
        cluster.start_server()
        note("database restarted")
        until = time.monotonic() + 30
        while time.monotonic() < until:
            try:
                if requests.get(server.base + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        note("/readyz 200 again")
        time.sleep(2)  # each worker retries the replay store within a second
        mix.outage.clear()
        at(2 / 3)
        victim = server.workers()[0]
        killed_at.append(time.monotonic())
        os.kill(victim, signal.SIGKILL)
        note(f"worker {victim} killed")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    if cluster is not None:
        threads.append(threading.Thread(target=inject_faults, daemon=True))
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
    moments = [started] + sorted(mix.card_times) + [time.monotonic()]
    report.max_card_gap_s = max(b - a for a, b in zip(moments, moments[1:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-growth-mb", type=float, default=40)
    parser.add_argument(
        "--faults",
        action="store_true",
        help="on PostgreSQL: stop and restart the database, kill a worker (see above)",
    )
    parser.add_argument("--max-card-gap", type=float, default=5.0)
    args = parser.parse_args(argv)
    report = run(
        args.seconds,
        clients=args.clients,
        max_growth_mb=args.max_growth_mb,
        out=sys.stdout,
        faults=args.faults,
        max_card_gap_s=args.max_card_gap,
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
