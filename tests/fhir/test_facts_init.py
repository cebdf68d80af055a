"""The facts extraction builds by the dozen, and the prefetch's ``KeyValue``, have an
``__init__`` of their own (``domain/frozen.py``: it stores the fields in the instance's
``__dict__`` instead of one ``object.__setattr__`` per field): it must take exactly the
dataclass's fields, in order, with the same defaults, and the facts must stay frozen
dataclasses (equality, hashing, ``repr``, ``replace``)."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import date, datetime, timezone

import pytest

from cds_service.cdshooks.prefetch import KeyState, KeyValue
from cds_service.domain.facts import (
    ConditionFact,
    DraftLabOrder,
    LabResult,
    MedicationExposure,
    PatientFacts,
)
from cds_service.domain.frozen import stored_in_dict
from cds_service.domain.vocabulary import Analyte, ConditionKind, DrugClass, Route, Sex

OWN_INIT = [LabResult, MedicationExposure, ConditionFact, DraftLabOrder, PatientFacts, KeyValue]
WHEN = datetime(2026, 5, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("cls", OWN_INIT, ids=lambda c: c.__name__)
def test_init_takes_the_fields_in_order_with_their_defaults(cls: type) -> None:
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, field in zip(parameters, fields):
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert parameter.default == (
            inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        ), field.name
        assert field.default_factory is dataclasses.MISSING  # an own __init__ would skip it


@pytest.mark.parametrize("cls", OWN_INIT, ids=lambda c: c.__name__)
def test_init_sets_every_field(cls: type) -> None:
    """Every field, set by keyword to a value of its own, reads back as that value."""
    values = {f.name: object() for f in dataclasses.fields(cls)}
    fact = cls(**values)
    assert {name: getattr(fact, name) for name in values} == values
    assert vars(fact) == values  # nothing else stored


SAMPLES = [
    LabResult("Observation/a", Analyte.TOTAL_B12, "2132-9", WHEN, 150.0, "pg/mL", 110.7, "pmol/L"),
    MedicationExposure(
        "MedicationRequest/m", frozenset({DrugClass.METFORMIN}), "Metformin", "active"
    ),
    ConditionFact("Condition/c", frozenset({ConditionKind.PERNICIOUS_ANAEMIA}), "PA", WHEN),
    DraftLabOrder("ServiceRequest/s", frozenset({Analyte.TOTAL_B12}), "B12"),
    PatientFacts("Patient/p", date(1950, 1, 2), Sex.FEMALE),
    KeyValue(KeyState.BUNDLE, (), "https://ehr.example/fhir/Observation?page=2"),
]


@pytest.mark.parametrize("fact", SAMPLES, ids=lambda f: type(f).__name__)
def test_facts_stay_frozen_dataclasses(fact: object) -> None:
    first = dataclasses.fields(fact)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(fact, first, "changed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(fact, first)
    same = dataclasses.replace(fact)  # type: ignore[type-var]
    assert same == fact and hash(same) == hash(fact) and same is not fact
    other = dataclasses.replace(fact, **{first: "Other/x"})  # type: ignore[type-var]
    assert other != fact
    assert repr(fact).startswith(f"{type(fact).__name__}({first}=")


def test_defaults_apply() -> None:
    exposure = MedicationExposure("MedicationStatement/m", frozenset(), "x", "active")
    assert (exposure.start, exposure.route, exposure.is_draft, exposure.count) == (
        None,
        Route.UNKNOWN,
        False,
        None,
    )
    assert PatientFacts("Patient/p").sex is Sex.UNKNOWN
    assert ConditionFact("Condition/c", frozenset(), "x").verified is True


def test_a_default_factory_is_refused() -> None:
    """Its __init__ would share one default object between instances: refused at import."""

    @dataclasses.dataclass(frozen=True)
    class WithFactory:
        items: list = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="default_factory"):
        stored_in_dict(WithFactory)
