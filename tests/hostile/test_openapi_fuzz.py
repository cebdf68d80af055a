"""schemathesis against the live app: requests generated from the OpenAPI document (valid and
invalid bodies, wrong types, missing fields, wrong methods), each with a fresh valid token.
Zero 5xx, and every answer matches the document (status code, content type, headers, body).

The document fuzzed is the one ``GET /openapi.json`` serves (checked below); it is built
from the registry at import because schemathesis parametrizes the test at collection.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cds_service.cdshooks.openapi import openapi_document
from hooks import registry

from .conftest import bearer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

DOCUMENT = openapi_document(registry())
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_fuzzed_document_is_the_served_one(production_app):
    answer = production_app.test_client().get("/openapi.json")
    assert answer.status_code == 200
    assert answer.get_json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_live_app_keeps_its_openapi_contract(case, production_app, issuer):
    case.call_and_validate(app=production_app, headers=bearer(issuer, case.path), checks=CHECKS)
