"""The envelope's JSON-object fields (``prefetch``, ``draftOrders``) copy an object whose keys
are all strings without deserialising each key and value; anything else takes marshmallow's
own way and is refused with its messages, exactly as ``fields.Dict(keys=fields.String())``."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import Schema, ValidationError, fields

from cds_service.cdshooks.schemas import FhirObject, JsonObject, RequestSchema


class Plain(Schema):
    value = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True)


class Fast(Schema):
    value = JsonObject(values=fields.Raw(allow_none=True), allow_none=True)


def _outcome(schema: Schema, value: Any) -> tuple[str, Any]:
    try:
        return "ok", schema.load({"value": value})
    except ValidationError as error:
        return "refused", error.messages


VALUES = [
    {},
    {"a": 1, "b": None, "c": {"resourceType": "Bundle"}, "d": [1, 2]},
    {b"key": 1},
    {1: "number key"},
    {"a": 1, 2: "mixed"},
    None,
    [],
    "text",
    [("a", 1)],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_same_answer_as_a_dict_of_string_keys(value: Any) -> None:
    assert _outcome(Fast(), value) == _outcome(Plain(), value)


def test_the_copy_is_a_new_dict() -> None:
    value = {"a": {"b": 1}}
    loaded = Fast().load({"value": value})["value"]
    assert loaded == value and loaded is not value and type(loaded) is dict


@pytest.mark.parametrize(
    "values", [fields.String(), fields.Raw(), fields.Raw(allow_none=True, validate=bool)]
)
def test_values_that_change_or_refuse_are_not_accepted(values: fields.Field) -> None:
    with pytest.raises(ValueError):
        JsonObject(values=values)


def test_fhir_object_still_checks_its_resource_type_and_keys() -> None:
    class Drafts(Schema):
        orders = FhirObject("Bundle", max_entries=1)

    assert Drafts().load({"orders": {"resourceType": "Bundle"}})["orders"] == {
        "resourceType": "Bundle"
    }
    for bad, message in [
        ({"resourceType": "Patient"}, "must be a FHIR Bundle"),
        ({"resourceType": "Bundle", "entry": {}}, "entry must be an array"),
        ({"resourceType": "Bundle", "entry": [{}, {}]}, "at most 1 entries are accepted"),
        ({3: "x", "resourceType": "Bundle"}, "Not a valid string."),
    ]:
        with pytest.raises(ValidationError) as caught:
            Drafts().load({"orders": bad})
        assert message in str(caught.value.messages)


def test_request_prefetch_keeps_its_entries() -> None:
    prefetch = {"patient": {"resourceType": "Patient", "id": "p"}, "labs": None}
    loaded = RequestSchema().load(
        {"hook": "order-sign", "hookInstance": "x", "context": {}, "prefetch": prefetch}
    )
    assert loaded["prefetch"] == prefetch
