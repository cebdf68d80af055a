"""Text bound for the database is clean before it gets there, identically on SQLite and
PostgreSQL (docs/security.md, "What is refused"): NUL and other control characters in
feedback, hookInstance and jti are a 400 (or a 401 for a token), never a 503 "transient"
that every retry repeats; feedback has per-field limits and a retention period."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from cds_service.cdshooks.application import CdsApplication
from cds_service.cdshooks.auth import Authenticator
from cds_service.cdshooks.errors import Unauthorized
from cds_service.config import load_settings
from cds_service.storage import FeedbackRecord, IssuedCard
from cds_service.storage.tables import feedback, issued_cards
from cds_service.web import create_app
from hooks import registry
from tests.auth.conftest import claims, ehr_client, sign
from tests.conftest import sandbox_request
from tests.test_conformance import assert_outcome

NOW = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)
URL = "/cds-services/b12-order-sign/feedback"
CONTROLS = ["\u0000", "\u0001", "\u001b", "\u007f", "\u0085", "\u009f"]


@pytest.fixture
def core(store):
    return CdsApplication(registry=registry(), store=store, clock=lambda: NOW)


@pytest.fixture
def client(core, tmp_path):
    settings = load_settings(
        {"CDS_PROFILE": "development", "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/unused.db"}
    )
    return create_app(settings, core).test_client()


def entry(card: str, **extra) -> dict:
    return {
        "card": card,
        "outcome": "accepted",
        "outcomeTimestamp": "2026-06-15T12:00:00Z",
        **extra,
    }


def overridden(card: str, *, comment="why", code="c", display="d", system="s") -> dict:
    return {
        **entry(card),
        "outcome": "overridden",
        "overrideReason": {
            "reason": {"system": system, "code": code, "display": display},
            "userComment": comment,
        },
    }


def stored(store) -> list:
    with store.engine.connect() as db:
        return list(db.execute(select(feedback).order_by(feedback.c.id)))


CASES = [("\u0000", where) for where in ("card", "suggestion", "code", "display", "system")]
CASES += [(control, "comment") for control in CONTROLS]


@pytest.mark.parametrize("control, where", CASES)
def test_a_control_character_in_feedback_is_a_400_and_nothing_is_stored(
    client, core, store, control, where
):
    bad = {
        "comment": overridden("card-x", comment=f"a{control}b"),
        "card": entry(f"card{control}x"),
        "suggestion": entry("card-x", acceptedSuggestions=[{"id": f"s{control}1"}]),
        "code": overridden("card-x", code=f"c{control}"),
        "display": overridden("card-x", display=f"d{control}"),
        "system": overridden("card-x", system=f"s{control}"),
    }[where]
    valid = [entry(f"card-{i}") for i in range(5)]
    response = client.post(URL, json={"feedback": [*valid, bad]})
    issue = assert_outcome(response, 400, "invalid-request")
    assert "control characters" in issue["diagnostics"]
    assert stored(store) == []
    assert core.counters.get("storage_failures", 0) == 0
    # The five valid entries, sent again without the bad one, are stored: nothing is stuck.
    again = client.post(URL, json={"feedback": valid})
    assert again.status_code == 200 and again.get_json()["stored"] == 5


def test_a_comment_keeps_its_line_breaks_and_any_unicode(client, store):
    comment = "line one\nline two\r\n\ttabbed \u00e9 \u4e2d \U0001f600 \u200b"
    response = client.post(URL, json={"feedback": [overridden("card-1", comment=comment)]})
    assert response.status_code == 200
    assert [row.user_comment for row in stored(store)] == [comment]


@pytest.mark.parametrize("control", ["\u0000", "\u001b", "\n"])
def test_a_control_character_in_hook_instance_is_a_400_and_the_ledger_is_untouched(
    client, core, store, control
):
    body = sandbox_request("order-sign")
    body["hookInstance"] = f"hook{control}1"
    response = client.post("/cds-services/b12-order-sign", json=body)
    issue = assert_outcome(response, 400, "invalid-request")
    assert issue["expression"] == ["hookInstance"]
    with store.engine.connect() as db:
        assert list(db.execute(select(issued_cards))) == []
    assert core.counters.get("storage_failures", 0) == 0


@pytest.mark.parametrize("jti", ["a\u0000b", "a\u001bb", "x" * 300])
def test_a_jti_the_store_could_not_hold_is_refused_before_it(store, jti):
    key = ec.generate_private_key(ec.SECP384R1())
    outages = []
    authenticator = Authenticator(
        [ehr_client(key)],
        store=store,
        public_bases=("https://cds.example.org/b12",),
        clock=lambda: NOW.timestamp(),
        on_failure=outages.append,
    )
    token = sign(key, claims("/cds-services", now=int(NOW.timestamp()), jti=jti))
    with pytest.raises(Unauthorized):
        authenticator.authenticate(f"Bearer {token}", path="/cds-services")
    assert outages == ["malformed-jti"]
    # A clean jti still reaches the store and is remembered.
    token = sign(key, claims("/cds-services", now=int(NOW.timestamp()), jti="clean-1"))
    assert authenticator.authenticate(f"Bearer {token}", path="/cds-services") is not None


# --- per-field limits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({"feedback": [entry(f"c{i}") for i in range(101)]}, "feedback"),
        ({"feedback": [overridden("c", comment="x" * 2001)]}, "userComment"),
        ({"feedback": [entry("c" * 201)]}, "card"),
        (
            {"feedback": [entry("c", acceptedSuggestions=[{"id": str(i)} for i in range(101)])]},
            "acceptedSuggestions",
        ),
        ({"feedback": [entry("c", acceptedSuggestions=[{"id": "s" * 201}])]}, "id"),
        ({"feedback": [overridden("c", code="x" * 201)]}, "code"),
        ({"feedback": [overridden("c", display="x" * 501)]}, "display"),
        ({"feedback": [overridden("c", system="x" * 501)]}, "system"),
    ],
)
def test_feedback_beyond_a_limit_is_a_400_naming_the_field(client, store, body, field):
    issue = assert_outcome(client.post(URL, json=body), 400, "invalid-request")
    assert field in issue["expression"][0]
    assert stored(store) == []


def test_feedback_at_every_limit_is_stored(client, store):
    entries = [overridden("c0", comment="x" * 2000, code="k" * 200, display="d" * 500)]
    entries += [
        entry(f"c{i}", acceptedSuggestions=[{"id": f"{j:0200d}"} for j in range(100)])
        for i in range(1, 100)
    ]
    response = client.post(URL, json={"feedback": entries})
    assert response.status_code == 200
    assert response.get_json()["stored"] == 100


# --- retention ----------------------------------------------------------------------------


def test_feedback_older_than_the_retention_period_is_purged(open_another):
    store = open_another(feedback_retention_days=30)
    record = FeedbackRecord("card-1", "accepted", NOW - timedelta(days=40))
    store.record_cards(
        [IssuedCard("card-1", "b12-order-sign", "rule", "info", "h", NOW - timedelta(days=40))]
    )
    store.record_feedback("b12-order-sign", [record], NOW - timedelta(days=31))
    store.record_feedback(
        "b12-order-sign", [FeedbackRecord("card-2", "accepted", NOW)], NOW - timedelta(days=29)
    )
    assert store.purge_feedback(NOW) == 1
    assert store.feedback_count() == 1
    assert store.purge_feedback(NOW) == 0


def test_feedback_is_purged_as_it_is_recorded_at_most_once_an_hour(open_another):
    store = open_another(feedback_retention_days=1)
    old = datetime(2020, 1, 1, tzinfo=timezone.utc)
    store.record_feedback("s", [FeedbackRecord("card-1", "accepted", old)], old)
    # The next write, a year later, purges the old entry along the way.
    later = old + timedelta(days=365)
    store.record_feedback("s", [FeedbackRecord("card-2", "accepted", later)], later)
    assert store.feedback_count() == 1


def test_zero_keeps_feedback_for_ever(open_another):
    store = open_another(feedback_retention_days=0)
    old = datetime(2001, 1, 1, tzinfo=timezone.utc)
    store.record_feedback("s", [FeedbackRecord("card-1", "accepted", old)], old)
    assert store.purge_feedback(NOW) == 0
    assert store.feedback_count() == 1
