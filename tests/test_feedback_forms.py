"""Feedback in the specification's form and in Epic's: the override reason and the
clinician's comment are kept whichever form carries them."""

from __future__ import annotations

import pytest

from cds_service.cdshooks.schemas import FeedbackSchema, override_reason

CODING = {"system": "https://b12.example/override", "code": "not-relevant", "display": "No"}


@pytest.mark.parametrize(
    "entry, comment",
    [
        ({"overrideReason": {"reason": CODING, "userComment": "on it"}}, "on it"),
        ({"overrideReasons": {"reason": CODING, "userComment": "on it"}}, "on it"),
        ({"overrideReasons": [{"reason": CODING, "userComment": ["on", "it"]}]}, "on; it"),
        ({"overrideReasons": {**CODING, "userComment": ["on it"]}}, "on it"),
        (
            {"overrideReasons": {"reason": CODING}, "extension": {"com.epic.userComment": "on it"}},
            "on it",
        ),
        ({"overrideReasons": {"reason": CODING}, "epicUserComment": "on it"}, "on it"),
        ({"overrideReason": {"reason": CODING}}, None),
    ],
)
def test_reason_and_comment_in_either_form(entry, comment):
    base = {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-06-15T12:00:00Z"}
    loaded = FeedbackSchema().load({"feedback": [{**base, **entry}]})["feedback"][0]
    assert override_reason(loaded) == (CODING, comment)


@pytest.mark.parametrize(
    "entry",
    [
        {},
        {"overrideReasons": "nonsense"},
        {"overrideReasons": [7]},
        {"overrideReasons": {"reason": {"display": "no code"}}},
        {"extension": ["not", "an", "object"]},
    ],
)
def test_nothing_usable_is_no_reason_not_an_error(entry):
    assert override_reason(entry) == ({}, None)


def test_a_long_comment_is_cut():
    reason, comment = override_reason({"overrideReasons": {"userComment": "x" * 5000}})
    assert reason == {} and len(comment) == 2000


def test_epic_overridden_feedback_is_stored_with_reason_and_comment(client, core):
    from datetime import datetime, timezone

    from cds_service.storage import IssuedCard

    moment = datetime(2026, 6, 15, 12, tzinfo=timezone.utc)
    core.store.record_cards(
        [IssuedCard("card-1", "b12-order-sign", "folate-before-b12", "critical", "h", moment)]
    )
    body = {
        "feedback": [
            {
                "card": "card-1",
                "outcome": "overridden",
                "outcomeTimestamp": "2026-06-15T12:05:00Z",
                "overrideReasons": {"reason": CODING, "userComment": ["planned pregnancy"]},
            }
        ]
    }
    response = client.post(
        "/cds-services/b12-order-sign/feedback",
        json=body,
        headers={"Origin": "https://sandbox.cds-hooks.org"},
    )
    assert response.status_code == 200 and response.get_json()["stored"] == 1
    (report,) = [r for r in core.feedback_report() if r.rule_id == "folate-before-b12"]
    assert report.override_reasons == {"No": 1}
