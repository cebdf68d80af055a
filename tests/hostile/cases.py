"""The explicit hostile requests, shared by the in-process tests and the run against
a real gunicorn server: each is (name, path suffix, raw body, content type, expected status,
expected error code)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench import workloads

JSON = "application/json"
SIGN = "/cds-services/b12-order-sign"
VIEW = "/cds-services/b12-patient-view"
FEEDBACK = "/cds-services/b12-order-sign/feedback"


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    body: bytes
    content_type: str | None
    status: int
    code: str


def good_body() -> dict:
    return workloads.order_sign(n_obs=10, n_meds=4, n_conditions=2, folic_acid=True)


def good() -> bytes:
    return json.dumps(good_body()).encode()


def _replace_value(old: str, new: str) -> bytes:
    text = good().decode()
    assert old in text
    return text.replace(old, new, 1).encode()


def ten_thousand_drafts() -> bytes:
    body = good_body()
    draft = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "199318"}]
        },
    }
    body["context"]["draftOrders"]["entry"] = [
        {"resource": {**draft, "id": f"d{i}"}} for i in range(10_000)
    ]
    return json.dumps(body).encode()


def cases() -> list[Case]:
    deep_array = b"[" * 100_000 + b"]" * 100_000
    deep_object = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    return [
        Case("empty body", SIGN, b"", JSON, 400, "invalid-request"),
        Case("whitespace body", SIGN, b"  \n ", JSON, 400, "invalid-request"),
        Case(
            "10 MB body",
            SIGN,
            b'{"a": "' + b"x" * 10_000_000 + b'"}',
            JSON,
            413,
            "payload-too-large",
        ),
        Case("100,000-deep arrays", SIGN, deep_array, JSON, 400, "invalid-request"),
        Case("100,000-deep objects", SIGN, deep_object, JSON, 400, "invalid-request"),
        Case(
            "deep nesting inside a valid request",
            SIGN,
            _replace_value(
                '"hookInstance"', '"x": ' + "[" * 50_000 + "]" * 50_000 + ', "hookInstance"'
            ),
            JSON,
            400,
            "invalid-request",
        ),
        Case(
            "invalid UTF-8", SIGN, b'{"hook": "order-sign\xff\xfe"}', JSON, 400, "invalid-request"
        ),
        Case(
            "lone surrogate escaped",
            SIGN,
            _replace_value('"order-sign"', '"\\ud800"'),
            JSON,
            400,
            "invalid-request",
        ),
        Case("UTF-16 body", SIGN, good().decode().encode("utf-16"), JSON, 400, "invalid-request"),
        Case(
            "NaN",
            SIGN,
            _replace_value('"value": 118', '"value": NaN'),
            JSON,
            400,
            "invalid-request",
        ),
        Case(
            "Infinity",
            SIGN,
            _replace_value('"value": 118', '"value": Infinity'),
            JSON,
            400,
            "invalid-request",
        ),
        Case(
            "-Infinity",
            SIGN,
            _replace_value('"value": 118', '"value": -Infinity'),
            JSON,
            400,
            "invalid-request",
        ),
        Case(
            "1e400",
            SIGN,
            _replace_value('"value": 118', '"value": 1e400'),
            JSON,
            400,
            "invalid-request",
        ),
        Case(
            "400-digit integer",
            SIGN,
            _replace_value('"value": 118', '"value": 1' + "0" * 399),
            JSON,
            400,
            "invalid-request",
        ),
        Case(
            "400-digit decimal",
            SIGN,
            _replace_value('"value": 118', '"value": 1' + "0" * 399 + ".5"),
            JSON,
            400,
            "invalid-request",
        ),
        Case(
            "5,000-digit integer",
            SIGN,
            _replace_value('"value": 118', '"value": ' + "9" * 5000),
            JSON,
            400,
            "invalid-request",
        ),
        Case(
            "duplicate top-level key",
            SIGN,
            _replace_value('"hook": "order-sign"', '"hook": "order-sign", "hook": "order-sign"'),
            JSON,
            400,
            "invalid-request",
        ),
        Case(
            "duplicate nested key",
            SIGN,
            _replace_value('"value": 118', '"value": 118, "value": 900'),
            JSON,
            400,
            "invalid-request",
        ),
        Case("text/plain", SIGN, good(), "text/plain", 415, "unsupported-media-type"),
        Case(
            "form",
            SIGN,
            b"hook=order-sign",
            "application/x-www-form-urlencoded",
            415,
            "unsupported-media-type",
        ),
        Case("XML", SIGN, b"<hook/>", "application/xml", 415, "unsupported-media-type"),
        Case("no content type", SIGN, good(), None, 415, "unsupported-media-type"),
        Case("JSON array", SIGN, b"[]", JSON, 400, "invalid-request"),
        Case("JSON string", SIGN, b'"order-sign"', JSON, 400, "invalid-request"),
        Case("truncated JSON", SIGN, good()[:-10], JSON, 400, "invalid-request"),
        Case("10,000 draft orders", SIGN, ten_thousand_drafts(), JSON, 400, "invalid-request"),
        Case("feedback: empty", FEEDBACK, b"", JSON, 400, "invalid-request"),
        Case("feedback: NaN", FEEDBACK, b'{"feedback": NaN}', JSON, 400, "invalid-request"),
        Case("feedback: deep", FEEDBACK, deep_array, JSON, 400, "invalid-request"),
        Case(
            "feedback: wrong type",
            FEEDBACK,
            b'{"feedback": "accepted"}',
            JSON,
            400,
            "invalid-request",
        ),
        Case("patient-view: invalid UTF-8", VIEW, b"\xc3\x28", JSON, 400, "invalid-request"),
    ]


# --- every field with the wrong type ---------------------------------------------------------
WRONG = {
    "string": [17, True, None, [], {}, ["order-sign"]],
    "object": [17, "x", True, [], ["a"]],
    "array": [17, "x", {}, True],
}

#: (path into the request, JSON type the field must have). Nulls that the schema allows
#: (encounterId, fhirAuthorization, prefetch) are not "wrong".
ENVELOPE_FIELDS = [
    (("hook",), "string"),
    (("hookInstance",), "string"),
    (("fhirServer",), "string"),
    (("fhirAuthorization",), "object"),
    (("fhirAuthorization", "access_token"), "string"),
    (("fhirAuthorization", "token_type"), "string"),
    (("fhirAuthorization", "scope"), "string"),
    (("fhirAuthorization", "subject"), "string"),
    (("context",), "object"),
    (("context", "userId"), "string"),
    (("context", "patientId"), "string"),
    (("context", "encounterId"), "string"),
    (("context", "draftOrders"), "object"),
    (("context", "draftOrders", "entry"), "array"),
    (("prefetch",), "object"),
]
ALLOWED_NULL = {
    ("fhirAuthorization",),
    ("prefetch",),
    ("context", "encounterId"),
    ("context", "draftOrders", "entry"),
}

FEEDBACK_FIELDS = [
    (("feedback",), "array"),
    (("feedback", 0), "object"),
    (("feedback", 0, "card"), "string"),
    (("feedback", 0, "outcome"), "string"),
    (("feedback", 0, "outcomeTimestamp"), "string"),
    (("feedback", 0, "acceptedSuggestions"), "array"),
    (("feedback", 0, "overrideReason"), "object"),
    (("feedback", 0, "overrideReason", "userComment"), "string"),
    (("feedback", 0, "overrideReason", "reason"), "object"),
    (("feedback", 0, "overrideReason", "reason", "code"), "string"),
]


def signed_request() -> dict:
    body = good_body()
    body["fhirServer"] = "https://ehr.example.org/fhir"
    body["fhirAuthorization"] = {
        "access_token": "opaque",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    body["context"]["encounterId"] = "enc-1"
    return body


def feedback_body() -> dict:
    return {
        "feedback": [
            {
                "card": "0b7c3e2a-7f43-4d0c-9a57-1f1d6c1f9d11",
                "outcome": "overridden",
                "outcomeTimestamp": "2026-06-15T12:00:00Z",
                "acceptedSuggestions": [],
                "overrideReason": {
                    "reason": {"system": "https://example.org", "code": "x", "display": "X"},
                    "userComment": "not now",
                },
            }
        ]
    }


def wrong_type_cases() -> list[tuple[str, str, bytes]]:
    """(name, path, body) for every envelope and feedback field with each wrong JSON type."""
    found = []
    for fields, make, path in (
        (ENVELOPE_FIELDS, signed_request, SIGN),
        (FEEDBACK_FIELDS, feedback_body, FEEDBACK),
    ):
        for field, kind in fields:
            for value in WRONG[kind]:
                if value is None and field in ALLOWED_NULL:
                    continue
                body = make()
                target = body
                for key in field[:-1]:
                    target = target[key]
                target[field[-1]] = value
                name = ".".join(str(k) for k in field) + f" = {json.dumps(value)}"
                found.append((name, path, json.dumps(body).encode()))
    return found
