"""marshmallow schemas: the CDS Hooks 2.0.1 envelope in, feedback in, cards out.

Strict about the envelope (400 with the failing field), lenient inside it: unknown fields are
kept everywhere (``INCLUDE``), FHIR content is validated by the FHIR adapter, not here
(ARCHITECTURE.md: "Never both on one object").
"""

from __future__ import annotations

from typing import Any

from marshmallow import (
    INCLUDE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    validate,
    validates_schema,
)

from cds_service.domain.safetext import is_fhir_id

HOOKS = ("order-sign", "order-select", "patient-view")


class Lenient(Schema):
    class Meta:
        unknown = INCLUDE


class FhirAuthorizationSchema(Lenient):
    access_token = fields.String(required=True, validate=validate.Length(min=1))
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True, strict=False)
    scope = fields.String(required=True)
    subject = fields.String(required=True)
    patient = fields.String()

    @validates_schema
    def _bearer(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("token_type", "").lower() != "bearer":
            raise ValidationError("token_type must be 'Bearer'", "token_type")


class FhirObject(fields.Dict):
    """A JSON object that must name a given resourceType (content checked by the adapter)."""

    def __init__(
        self, resource_type: str, *, max_entries: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(keys=fields.String(), **kwargs)
        self.resource_type = resource_type
        self.max_entries = max_entries

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.get("resourceType") != self.resource_type:
            raise ValidationError(f"must be a FHIR {self.resource_type}")
        entries = result.get("entry", [])
        if entries is not None and not isinstance(entries, list):
            raise ValidationError("entry must be an array")
        if self.max_entries is not None and entries and len(entries) > self.max_entries:
            raise ValidationError(f"at most {self.max_entries} entries are accepted")
        return result


#: Orders signed or selected at once. Each draft costs work (a card may carry one action per
#: draft): the cap keeps a hostile 5 MB body of tiny drafts from holding a worker for seconds.
MAX_DRAFT_ORDERS = 1000


def _fhir_id(value: str) -> None:
    if not is_fhir_id(value):
        raise ValidationError("must be a FHIR id ([A-Za-z0-9-.], 1-64 characters)")


class PatientViewContext(Lenient):
    userId = fields.String(required=True, validate=validate.Length(min=1))
    # A FHIR id: it becomes the subject of every suggested order and part of the fallback's
    # queries, so request text that is not an id ("x?_id=y", markup, 200 KB) is refused.
    patientId = fields.String(
        required=True, validate=_fhir_id, metadata={"pattern": "^[A-Za-z0-9\\-.]{1,64}$"}
    )
    encounterId = fields.String(allow_none=True)


class OrderSignContext(PatientViewContext):
    draftOrders = FhirObject("Bundle", required=True, max_entries=MAX_DRAFT_ORDERS)


class OrderSelectContext(OrderSignContext):
    selections = fields.List(
        fields.String(), required=True, validate=validate.Length(max=MAX_DRAFT_ORDERS)
    )


CONTEXT_SCHEMAS: dict[str, type[Schema]] = {
    "patient-view": PatientViewContext,
    "order-sign": OrderSignContext,
    "order-select": OrderSelectContext,
}


class RequestSchema(Lenient):
    hook = fields.String(required=True, validate=validate.Length(min=1))
    # Log it, do not reject a non-UUID (PROTOCOL.md, "Request").
    hookInstance = fields.String(required=True, validate=validate.Length(min=1, max=200))
    fhirServer = fields.Url(require_tld=False, schemes={"http", "https"})
    fhirAuthorization = fields.Nested(FhirAuthorizationSchema, allow_none=True)
    context = fields.Dict(required=True)
    prefetch = fields.Dict(
        keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True
    )


class CodingSchema(Lenient):
    system = fields.String()
    code = fields.String()
    display = fields.String()


class OverrideReasonSchema(Lenient):
    reason = fields.Nested(CodingSchema)
    userComment = fields.String()


class AcceptedSuggestionSchema(Lenient):
    id = fields.String(required=True)


class FeedbackEntrySchema(Lenient):
    card = fields.String(required=True, validate=validate.Length(min=1, max=200))
    outcome = fields.String(required=True, validate=validate.OneOf(["accepted", "overridden"]))
    acceptedSuggestions = fields.List(fields.Nested(AcceptedSuggestionSchema))
    overrideReason = fields.Nested(OverrideReasonSchema)
    outcomeTimestamp = fields.AwareDateTime(required=True, default_timezone=None)


class FeedbackSchema(Lenient):
    feedback = fields.List(
        fields.Nested(FeedbackEntrySchema), required=True, validate=validate.Length(min=1, max=1000)
    )


# --- Out -------------------------------------------------------------------------------------
def _compact(data: Any) -> Any:
    """Optional fields are omitted, never null / "" / [] / {} (PROTOCOL.md, "Response")."""
    if isinstance(data, dict):
        cleaned = {k: _compact(v) for k, v in data.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, "", [], {})}
    if isinstance(data, list):
        return [_compact(v) for v in data]
    return data


class Out(Schema):
    @post_dump
    def _omit_empty(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return _compact(data)


class OutCoding(Out):
    system = fields.String(required=True)
    code = fields.String(required=True)
    display = fields.String(required=True)


class SourceSchema(Out):
    label = fields.String(required=True)
    url = fields.String()
    icon = fields.String()
    topic = fields.Nested(OutCoding)


class ActionSchema(Out):
    type = fields.String(required=True, validate=validate.OneOf(["create", "update", "delete"]))
    description = fields.String(required=True)
    resource = fields.Dict()
    resourceId = fields.String()

    @validates_schema
    def _shape(self, data: dict[str, Any], **_: Any) -> None:
        if data["type"] == "delete":
            if not data.get("resourceId") or "resource" in data:
                raise ValidationError("delete actions carry resourceId and no resource")
        elif not data.get("resource"):
            raise ValidationError("create/update actions carry a whole resource")


class SuggestionSchema(Out):
    label = fields.String(required=True)
    uuid = fields.String(required=True)
    isRecommended = fields.Boolean()
    actions = fields.List(
        fields.Nested(ActionSchema), required=True, validate=validate.Length(min=1)
    )


class LinkSchema(Out):
    label = fields.String(required=True)
    url = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(["absolute", "smart"]))
    appContext = fields.String()


class CardSchema(Out):
    uuid = fields.String(required=True)
    summary = fields.String(required=True, validate=validate.Length(min=1, max=139))
    detail = fields.String()
    indicator = fields.String(
        required=True, validate=validate.OneOf(["info", "warning", "critical"])
    )
    source = fields.Nested(SourceSchema, required=True)
    suggestions = fields.List(fields.Nested(SuggestionSchema))
    selectionBehavior = fields.String(validate=validate.OneOf(["at-most-one", "any"]))
    overrideReasons = fields.List(fields.Nested(OutCoding))
    links = fields.List(fields.Nested(LinkSchema))

    @validates_schema
    def _selection(self, data: dict[str, Any], **_: Any) -> None:
        suggestions = data.get("suggestions") or []
        if suggestions and not data.get("selectionBehavior"):
            raise ValidationError("selectionBehavior is required when there are suggestions")
        if data.get("selectionBehavior") == "at-most-one":
            if sum(1 for s in suggestions if s.get("isRecommended")) > 1:
                raise ValidationError("at most one suggestion may be recommended with at-most-one")


class ResponseSchema(Out):
    cards = fields.List(fields.Nested(CardSchema), required=True)
    systemActions = fields.List(fields.Nested(ActionSchema))

    @post_dump
    def _omit_empty(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        compacted = _compact(data)
        compacted.setdefault("cards", [])  # "cards": [] is required even when nothing applies
        return compacted


class ServiceSchema(Out):
    id = fields.String(required=True)
    hook = fields.String(required=True)
    title = fields.String()
    description = fields.String(required=True)
    prefetch = fields.Dict(keys=fields.String(), values=fields.String())
    usageRequirements = fields.String()


class DiscoverySchema(Out):
    services = fields.List(fields.Nested(ServiceSchema), required=True)


def first_error(messages: Any, prefix: str = "") -> tuple[str, str]:
    """(field path, message) of the first marshmallow error, for a clear OperationOutcome."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            return first_error(value, path)
    if isinstance(messages, list) and messages:
        head = messages[0]
        if isinstance(head, (dict, list)):
            return first_error(head, prefix)
        return prefix, str(head)
    return prefix, str(messages)
