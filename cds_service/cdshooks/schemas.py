"""marshmallow schemas: the CDS Hooks 2.0.1 envelope in, feedback in, cards out.

Strict about the envelope (400 with the failing field), lenient inside it: unknown fields are
kept everywhere (``INCLUDE``), FHIR content is validated by the FHIR adapter, not here
(docs/architecture.md: "Never both on one object").
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
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

# --- Text bound for storage (docs/security.md, "What is refused") ---------------------------
# NUL cannot be stored in PostgreSQL text (SQLite takes it): refusing it here, for both, keeps
# the backends identical and a bad string a 400 instead of a database error. The other C0/C1
# controls have no business in an id or a coding either; a comment may keep its line breaks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS = "must not contain control characters (such as NUL)"


def no_controls(value: str) -> None:
    if _CONTROL.search(value):
        raise ValidationError(CONTROL_CHARACTERS)


def no_controls_but_line_breaks(value: str) -> None:
    if _CONTROL_IN_TEXT.search(value):
        raise ValidationError(CONTROL_CHARACTERS)


def _short_text(max_chars: int, *, required: bool = False) -> fields.String:
    return fields.String(
        required=required,
        validate=[validate.Length(min=1 if required else 0, max=max_chars), no_controls],
    )


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time with an offset, given back in UTC. A moment that UTC cannot hold
    (``9999-12-31T23:59:59-05:00``, ``0001-01-01T00:00:00+05:00``) is a validation error,
    not an OverflowError further on."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=None, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        try:
            moment = super()._deserialize(value, attr, data, **kwargs)
            return moment.astimezone(timezone.utc)
        except (OverflowError, ValueError):
            raise ValidationError("is outside the years 1 to 9999 once in UTC") from None


class Lenient(Schema):
    class Meta:
        unknown = INCLUDE


class FhirAuthorizationSchema(Lenient):
    """Only ``access_token`` is required: EHRs and the Da Vinci CRD profile differ on the rest
    (a missing field is logged by name, never refused; ``application.parse_request``)."""

    access_token = fields.String(required=True, validate=validate.Length(min=1))
    token_type = fields.String()
    expires_in = fields.Integer(strict=False)
    scope = fields.String()
    subject = fields.String()
    patient = fields.String()

    @validates_schema
    def _bearer(self, data: dict[str, Any], **_: Any) -> None:
        if "token_type" in data and data["token_type"].lower() != "bearer":
            raise ValidationError("token_type must be 'Bearer'", "token_type")


class JsonObject(fields.Dict):
    """``fields.Dict(keys=fields.String())``: an object whose keys are strings, its values kept
    as they are (``values``, when given, must take any value as it is: ``fields.Raw``).

    marshmallow deserialises every key (and value) through a field of its own; a JSON object's
    keys are always strings, so an object whose keys are all ``str`` is copied as it stands
    (marshmallow's answer for it), and only anything else (a bytes or number key from a Python
    caller) goes the field-by-field way, refused with marshmallow's own messages.
    """

    def __init__(self, **kwargs: Any) -> None:
        values = kwargs.get("values")
        if values is not None and not (
            type(values) is fields.Raw and values.allow_none and not values.validators
        ):
            raise ValueError("JsonObject keeps values as they are: fields.Raw(allow_none=True)")
        super().__init__(keys=fields.String(), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if type(value) is dict:
            for key in value:
                if type(key) is not str:
                    break
            else:
                return dict(value)
        return super()._deserialize(value, attr, data, **kwargs)


class FhirObject(JsonObject):
    """A JSON object that must name a given resourceType (content checked by the adapter)."""

    def __init__(
        self, resource_type: str, *, max_entries: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
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
#: draft): the cap keeps a hostile body of tiny drafts from holding a worker for seconds.
MAX_DRAFT_ORDERS = 1000


def _fhir_id(value: str) -> None:
    if not is_fhir_id(value):
        raise ValidationError("must be a FHIR id ([A-Za-z0-9-.], 1-64 characters)")


class PatientViewContext(Lenient):
    userId = fields.String(required=True, validate=[validate.Length(min=1), no_controls])
    # A FHIR id: it becomes the subject of every suggested order and part of the fallback's
    # queries, so request text that is not an id ("x?_id=y", markup, 200 KB) is refused.
    patientId = fields.String(
        required=True, validate=_fhir_id, metadata={"pattern": "^[A-Za-z0-9\\-.]{1,64}$"}
    )
    encounterId = fields.String(allow_none=True, validate=no_controls)


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
    # Log it, do not reject a non-UUID (docs/protocol.md, "Request").
    hookInstance = _short_text(200, required=True)  # stored in the ledger
    fhirServer = fields.Url(require_tld=False, schemes={"http", "https"})
    fhirAuthorization = fields.Nested(FhirAuthorizationSchema, allow_none=True)
    context = fields.Dict(required=True)
    prefetch = JsonObject(values=fields.Raw(allow_none=True), allow_none=True)


#: Per-field limits on feedback (docs/security.md): each is far above what an EHR sends.
FEEDBACK_MAX_ENTRIES = 100
FEEDBACK_MAX_COMMENT_CHARS = 2000
FEEDBACK_MAX_SUGGESTIONS = 100
FEEDBACK_MAX_ID_CHARS = 200
FEEDBACK_MAX_CODING_CHARS = 500


class CodingSchema(Lenient):
    system = _short_text(FEEDBACK_MAX_CODING_CHARS)
    code = _short_text(FEEDBACK_MAX_ID_CHARS)
    display = _short_text(FEEDBACK_MAX_CODING_CHARS)


class OverrideReasonSchema(Lenient):
    reason = fields.Nested(CodingSchema)
    userComment = fields.String(
        validate=[validate.Length(max=FEEDBACK_MAX_COMMENT_CHARS), no_controls_but_line_breaks]
    )


class AcceptedSuggestionSchema(Lenient):
    id = _short_text(FEEDBACK_MAX_ID_CHARS, required=True)


class FeedbackEntrySchema(Lenient):
    card = _short_text(FEEDBACK_MAX_ID_CHARS, required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["accepted", "overridden"]))
    acceptedSuggestions = fields.List(
        fields.Nested(AcceptedSuggestionSchema),
        validate=validate.Length(max=FEEDBACK_MAX_SUGGESTIONS),
    )
    overrideReason = fields.Nested(OverrideReasonSchema)
    #: Epic's form: ``overrideReasons`` as one object (or a list), read by ``override_reason``.
    overrideReasons = fields.Raw()
    outcomeTimestamp = UtcDateTime(required=True)


class FeedbackSchema(Lenient):
    feedback = fields.List(
        fields.Nested(FeedbackEntrySchema),
        required=True,
        validate=validate.Length(min=1, max=FEEDBACK_MAX_ENTRIES),
    )


MAX_COMMENT_CHARS = 2000


def _comment(value: Any) -> str | None:
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        text = "; ".join(v for v in value if isinstance(v, str))
    else:
        return None
    return text.strip()[:MAX_COMMENT_CHARS] or None


def _coding(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    coding = {k: value[k] for k in ("system", "code", "display") if isinstance(value.get(k), str)}
    return coding if coding.get("code") else None


def override_reason(entry: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    """(reason Coding, user comment) of a feedback entry in either form:

    - the specification's ``overrideReason: {reason: Coding, userComment}``;
    - Epic's ``overrideReasons`` as one object (or a list, first item read) holding either
      ``{reason: Coding, userComment}`` or the Coding fields with ``userComment`` beside them
      (an early draft of the feedback specification), and comments in extension fields (an
      ``extension`` object whose key ends in ``comment``, or a top-level key of the entry that
      does), as array or string.
    Coding is ``{}`` when none is given."""
    reason: dict[str, str] | None = None
    comment: str | None = None
    candidates: list[Any] = [entry.get("overrideReason")]
    epic = entry.get("overrideReasons")
    candidates.extend(epic[:1] if isinstance(epic, list) else [epic])
    for candidate in candidates:
        if not isinstance(candidate, dict):
            continue
        reason = reason or _coding(candidate.get("reason")) or _coding(candidate)
        comment = comment or _comment(candidate.get("userComment"))
    if comment is None:
        extension = entry.get("extension")
        places = [extension] if isinstance(extension, dict) else []
        places.append(entry)
        for place in places:
            for key, value in place.items():
                if isinstance(key, str) and key.lower().endswith("comment"):
                    comment = comment or _comment(value)
    return reason or {}, comment


# --- Out -------------------------------------------------------------------------------------
def _compact(data: Any) -> Any:
    """Optional fields are omitted, never null / "" / [] / {} (docs/protocol.md, "Response").
    A suggested action's FHIR ``resource`` is taken as it is: ``fhir/build.py`` builds it
    without empty values and validates it (FHIR allows none), and it held most of the
    objects this walked through."""
    if isinstance(data, dict):
        compacted = {}
        for key, value in data.items():
            if isinstance(value, (dict, list)) and key != "resource":
                value = _compact(value)
            if value not in _EMPTY:
                compacted[key] = value
        return compacted
    if isinstance(data, list):
        return [_compact(v) if isinstance(v, (dict, list)) else v for v in data]
    return data


_EMPTY: tuple[Any, ...] = (None, "", [], {})


def response_document(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """The response ``ResponseSchema`` dumps for ``cards`` as ``cards.py`` builds and shapes
    them, without marshmallow's work per field: they hold only the schema's fields, so the
    dump comes down to leaving out the empty ones (``cards: []`` stays). The tests check that
    the two agree for every scenario through every client profile."""
    return {"cards": _compact(cards)}


def _from_out_schema(field: fields.Field) -> bool:
    """The field's value is dumped by an ``Out`` schema, which has compacted it already."""
    if isinstance(field, fields.List):
        field = field.inner
    return isinstance(field, fields.Nested) and isinstance(field.schema, Out)


class Out(Schema):
    @post_dump
    def _omit_empty(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # A nested Out schema compacted its own part before this runs: compacting the whole
        # again at every level cost a card's dump four passes over its suggested resources.
        nested = self.__dict__.get("_compacted_fields")
        if nested is None:
            nested = frozenset(
                field.data_key or name
                for name, field in self.dump_fields.items()
                if _from_out_schema(field)
            )
            self.__dict__["_compacted_fields"] = nested
        compacted = {}
        for key, value in data.items():
            if key not in nested:
                value = _compact(value)
            if value not in _EMPTY:
                compacted[key] = value
        return compacted


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
        compacted = super()._omit_empty(data)
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
