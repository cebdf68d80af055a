"""Explicit hostile requests: each is a 4xx OperationOutcome with a stable code, in
the app and against a real gunicorn server, whose workers survive all of them."""

from __future__ import annotations

import pytest

from .cases import cases, wrong_type_cases
from .conftest import assert_outcome, bearer

CASES = cases()
WRONG_TYPES = wrong_type_cases()


def send(app, issuer, path: str, body: bytes, content_type: str | None):
    headers = bearer(issuer, path)
    if content_type:
        headers["Content-Type"] = content_type
    return app.test_client().post(path, data=body, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_body_is_a_4xx_operation_outcome(production_app, issuer, case):
    response = send(production_app, issuer, case.path, case.body, case.content_type)
    assert_outcome(response, case.status, case.code)


@pytest.mark.parametrize("name, path, body", WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES])
def test_every_field_with_the_wrong_type_is_a_400_naming_the_field(
    production_app, issuer, name, path, body
):
    response = send(production_app, issuer, path, body, "application/json")
    issue = assert_outcome(response, 400, "invalid-request")
    field = name.split(" = ")[0]
    top = field.split(".")[0]
    # The diagnostics name the field (context fields as context.<name>), never its value.
    assert top in issue["diagnostics"] or field.split(".")[-1] in issue["diagnostics"]


def test_10000_draft_orders_are_refused_with_the_limit_named(production_app, issuer):
    case = next(c for c in CASES if c.name == "10,000 draft orders")
    assert len(case.body) < 5 * 1024 * 1024  # within the body limit: the count is what is refused
    issue = assert_outcome(
        send(production_app, issuer, case.path, case.body, "application/json"),
        400,
        "invalid-request",
    )
    assert issue["diagnostics"] == "context.draftOrders: at most 1000 entries are accepted"


def test_1000_draft_orders_are_still_answered(production_app, issuer):
    import json

    from .cases import good_body

    body = good_body()
    entry = body["context"]["draftOrders"]["entry"][-1]["resource"]
    body["context"]["draftOrders"]["entry"] = [
        {"resource": {**entry, "id": f"folic-{i}"}} for i in range(1000)
    ]
    response = send(
        production_app,
        issuer,
        "/cds-services/b12-order-sign",
        json.dumps(body).encode(),
        "application/json",
    )
    assert response.status_code == 200
    assert response.get_json()["cards"][0]["indicator"] == "critical"


def test_after_every_hostile_body_a_good_request_is_still_answered(production_app, issuer):
    from .cases import good

    for case in CASES:
        send(production_app, issuer, case.path, case.body, case.content_type)
    response = send(
        production_app, issuer, "/cds-services/b12-order-sign", good(), "application/json"
    )
    assert response.status_code == 200
    assert response.get_json()["cards"][0]["indicator"] == "critical"
