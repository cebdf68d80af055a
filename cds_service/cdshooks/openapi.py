"""The service's OpenAPI 3 document, generated from the marshmallow schemas that validate the
requests and shape the responses (apispec), so the document cannot drift from the code.

Served at ``GET /openapi.json``. Each service gets its own path with the request schema of its
hook (the ``context`` fields differ per hook); every error answer is a FHIR OperationOutcome
(``errors.py``). CI fuzzes the live app against this document (tests/hostile).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields, validate

from .errors import ERROR_CODE_SYSTEM
from .schemas import (
    CONTEXT_SCHEMAS,
    DiscoverySchema,
    FeedbackSchema,
    FhirObject,
    Lenient,
    RequestSchema,
    ResponseSchema,
)
from .service import Registry

OPENAPI_VERSION = "3.0.3"

# --- documentation-only schemas (answers the code builds as plain dicts) -------------------


class ErrorCodingSchema(Schema):
    system = fields.String(required=True, validate=validate.OneOf([ERROR_CODE_SYSTEM]))
    code = fields.String(required=True)


class ErrorDetailsSchema(Schema):
    coding = fields.List(
        fields.Nested(ErrorCodingSchema), required=True, validate=validate.Length(min=1)
    )
    text = fields.String(required=True)


class ErrorIssueSchema(Schema):
    severity = fields.String(required=True, validate=validate.OneOf(["error", "fatal"]))
    code = fields.String(required=True, metadata={"description": "FHIR IssueType"})
    details = fields.Nested(ErrorDetailsSchema, required=True)
    diagnostics = fields.String(required=True)
    expression = fields.List(fields.String())


class OperationOutcomeSchema(Schema):
    """Every non-2xx answer: ``issue[0].details.coding[0].code`` is a stable error code."""

    resourceType = fields.String(required=True, validate=validate.OneOf(["OperationOutcome"]))
    issue = fields.List(
        fields.Nested(ErrorIssueSchema), required=True, validate=validate.Length(min=1)
    )


class FeedbackResultSchema(Schema):
    stored = fields.Integer(required=True, validate=validate.Range(min=0))
    duplicates = fields.Integer(required=True, validate=validate.Range(min=0))
    unknownCards = fields.Integer(required=True, validate=validate.Range(min=0))


def _request_schema(hook: str) -> type[Schema]:
    """RequestSchema with this hook's context (the service checks both in turn)."""
    name = "".join(part.title() for part in hook.split("-"))
    return type(
        f"{name}Request",
        (RequestSchema,),
        {
            "hook": fields.String(required=True, validate=validate.OneOf([hook])),
            "context": fields.Nested(CONTEXT_SCHEMAS[hook], required=True),
            "Meta": type("Meta", (Lenient.Meta,), {}),
        },
    )


_ERRORS = {
    400: "Invalid request: not JSON, invalid UTF-8, NaN/Infinity, an out-of-range number,"
    " duplicate keys, or a field missing or of the wrong type (code invalid-request).",
    401: "Authentication failed (code unauthorized).",
    404: "No such service or endpoint (code unknown-service or not-found).",
    405: "Method not allowed; the Allow header lists the right ones (code method-not-allowed).",
    412: "Data the service requires could not be obtained (code prefetch-unavailable).",
    413: "The body exceeds CDS_MAX_BODY_BYTES (code payload-too-large).",
    415: "The body is not application/json (code unsupported-media-type).",
    500: "A bug; details go to the log, not the caller (code internal-error).",
    503: "Feedback could not be stored; retry (code storage-unavailable).",
}


def _responses(ok: tuple[str, str], statuses: tuple[int, ...]) -> dict[str, Any]:
    schema, description = ok
    responses: dict[str, Any] = {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}}
    }
    for status in statuses:
        responses[str(status)] = {
            "description": _ERRORS[status],
            "content": {"application/json": {"schema": "OperationOutcome"}},
        }
    if 405 in statuses:
        responses["405"]["headers"] = {
            "Allow": {"schema": {"type": "string"}, "description": "The methods allowed here."}
        }
    if 401 in statuses:
        responses["401"]["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}
        }
    return responses


def _fhir_object(self: Any, field: Any, **_: Any) -> dict[str, Any]:
    """What ``FhirObject`` checks itself: the resourceType, and entry as a bounded array."""
    if not isinstance(field, FhirObject):
        return {}
    entry: dict[str, Any] = {"type": "array", "items": {"type": "object"}, "nullable": True}
    if field.max_entries is not None:
        entry["maxItems"] = field.max_entries
    return {
        "properties": {
            "resourceType": {"type": "string", "enum": [field.resource_type]},
            "entry": entry,
        },
        "required": ["resourceType"],
    }


def openapi_document(registry: Registry, *, title: str = "B12 CDS service") -> dict[str, Any]:
    try:
        version = metadata.version("b12-cds-service")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        version = "0"
    marshmallow_plugin = MarshmallowPlugin()
    spec = APISpec(
        title=title,
        version=version,
        openapi_version=OPENAPI_VERSION,
        plugins=[marshmallow_plugin],
        info={
            "description": "CDS Hooks 2.0.1 services for vitamin B12 deficiency. Every call"
            " carries the EHR's JWT (Authorization: Bearer); every non-2xx answer is a FHIR"
            " OperationOutcome."
        },
    )
    assert marshmallow_plugin.converter is not None
    marshmallow_plugin.converter.add_attribute_function(_fhir_object)
    spec.components.security_scheme(
        "ehrJwt", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.schema("OperationOutcome", schema=OperationOutcomeSchema)
    spec.components.schema("Discovery", schema=DiscoverySchema)
    spec.components.schema("CardsResponse", schema=ResponseSchema)
    spec.components.schema("Feedback", schema=FeedbackSchema)
    spec.components.schema("FeedbackResult", schema=FeedbackResultSchema)
    hooks = sorted({s.hook.value for s in registry})
    for hook in hooks:
        spec.components.schema(f"{hook}-request", schema=_request_schema(hook))

    security: list[dict[str, list[str]]] = [{"ehrJwt": []}]
    spec.path(
        path="/cds-services",
        operations={
            "get": {
                "operationId": "discovery",
                "summary": "CDS Hooks discovery: the services and their prefetch templates",
                "security": security,
                "responses": _responses(("Discovery", "The services"), (401, 405, 500)),
            }
        },
    )
    body_errors = (400, 401, 405, 413, 415, 500)
    for service in sorted(registry, key=lambda s: s.id):
        required = any(p.required for p in service.prefetch.values())
        statuses = tuple(sorted(body_errors + ((412,) if required else ())))
        spec.path(
            path=f"/cds-services/{service.id}",
            operations={
                "post": {
                    "operationId": f"invoke-{service.id}",
                    "summary": service.title or service.id,
                    "description": service.description,
                    "security": security,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": f"{service.hook.value}-request"}
                        },
                    },
                    "responses": _responses(("CardsResponse", "The cards"), statuses),
                }
            },
        )
        spec.path(
            path=f"/cds-services/{service.id}/feedback",
            operations={
                "post": {
                    "operationId": f"feedback-{service.id}",
                    "summary": f"Card outcomes for {service.id} (idempotent)",
                    "security": security,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": "Feedback"}},
                    },
                    "responses": _responses(
                        ("FeedbackResult", "What was stored"), tuple(sorted(body_errors + (503,)))
                    ),
                }
            },
        )
    return spec.to_dict()
