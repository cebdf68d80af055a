"""Typed errors raised where they arise, turned into HTTP status + OperationOutcome in one place.

Every non-2xx body is a FHIR OperationOutcome with a stable machine code (docs/protocol.md,
"Errors"): ``issue[0].details.coding[0].code`` is one of the codes below and never changes.
"""

from __future__ import annotations

from typing import Any

ERROR_CODE_SYSTEM = "https://b12-cds.example.org/CodeSystem/error"


class CdsError(Exception):
    status = 500
    code = "internal-error"
    issue_type = "exception"  # FHIR IssueType
    default_message = "The service failed to process the request."
    #: Seconds for a ``Retry-After`` header (a 503 the caller should retry), or None.
    retry_after_s: int | None = None

    def __init__(self, message: str | None = None, *, expression: list[str] | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.expression = expression or []


class InvalidRequest(CdsError):
    status, code, issue_type = 400, "invalid-request", "invalid"
    default_message = "The request is not a valid CDS Hooks request."


class Unauthorized(CdsError):
    status, code, issue_type = 401, "unauthorized", "security"
    default_message = "Authentication failed."


class UnknownService(CdsError):
    status, code, issue_type = 404, "unknown-service", "not-found"
    default_message = "No such CDS service."


class NotFound(CdsError):
    status, code, issue_type = 404, "not-found", "not-found"
    default_message = "No such endpoint."


class MethodNotAllowed(CdsError):
    status, code, issue_type = 405, "method-not-allowed", "not-supported"
    default_message = "Method not allowed on this endpoint."


class PrefetchUnavailable(CdsError):
    status, code, issue_type = 412, "prefetch-unavailable", "not-found"
    default_message = "Data the service requires could not be obtained."


class PayloadTooLarge(CdsError):
    status, code, issue_type = 413, "payload-too-large", "too-long"
    default_message = "The request body is too large."


class UriTooLong(CdsError):
    status, code, issue_type = 414, "uri-too-long", "too-long"
    default_message = "The request line is too long."


class HeadersTooLarge(CdsError):
    status, code, issue_type = 431, "headers-too-large", "too-long"
    default_message = "The request headers are too large."


class UnsupportedMediaType(CdsError):
    status, code, issue_type = 415, "unsupported-media-type", "not-supported"
    default_message = "The request body must be JSON (Content-Type: application/json)."


class StorageUnavailable(CdsError):
    status, code, issue_type = 503, "storage-unavailable", "transient"
    default_message = "Feedback could not be stored; retry later."
    retry_after_s = 5


class ServiceUnavailable(CdsError):
    """A dependency is down for now: 503 with Retry-After, never a 401."""

    status, code, issue_type = 503, "service-unavailable", "transient"
    default_message = "The service is temporarily unavailable; retry shortly."
    retry_after_s = 5

    def __init__(
        self, message: str | None = None, *, code: str | None = None, retry_after_s: int = 5
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.retry_after_s = retry_after_s


def operation_outcome(error: CdsError) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": "error" if error.status < 500 else "fatal",
        "code": error.issue_type,
        "details": {
            "coding": [{"system": ERROR_CODE_SYSTEM, "code": error.code}],
            "text": error.message,
        },
        "diagnostics": error.message,
    }
    if error.expression:
        issue["expression"] = error.expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}
