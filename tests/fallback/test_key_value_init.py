"""``KeyValue`` has an ``__init__`` of its own (fields stored in ``__dict__``): it must take the
dataclass's fields in order with their defaults and stay a frozen dataclass."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from cds_service.cdshooks.prefetch import KeyState, KeyValue, classify


def test_init_takes_the_fields_in_order_with_their_defaults() -> None:
    parameters = list(inspect.signature(KeyValue.__init__).parameters.values())[1:]
    fields = dataclasses.fields(KeyValue)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, field in zip(parameters, fields):
        expected = (
            inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        )
        assert parameter.default == expected, field.name


def test_frozen_and_compared_by_value() -> None:
    value = KeyValue(KeyState.BUNDLE, ({"resourceType": "Patient"},), "n", self_url="s")
    assert vars(value) == {
        "state": KeyState.BUNDLE,
        "resources": ({"resourceType": "Patient"},),
        "next_url": "n",
        "self_url": "s",
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.state = KeyState.NULL  # type: ignore[misc]
    assert value == dataclasses.replace(value)
    assert KeyValue(KeyState.NULL) == classify(None)
    assert repr(KeyValue(KeyState.NULL)).startswith("KeyValue(state=<KeyState.NULL")


def test_one_pass_keeps_the_order_of_resources_and_outcomes() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "Observation", "id": "a"}},
            "not an entry",
            {"resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "warning"}]}},
            {"resource": ["not a resource"]},
            {"resource": {"resourceType": "Observation", "id": "b"}},
        ],
    }
    assert [r["id"] for r in classify(bundle).resources] == ["a", "b"]
    bundle["entry"] = bundle["entry"][1:4]  # only the warning outcome: an empty result
    assert classify(bundle).state is KeyState.EMPTY
