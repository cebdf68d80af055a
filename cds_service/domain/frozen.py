"""A cheaper ``__init__`` for the frozen dataclasses built by the dozen on every request.

The ``__init__`` ``@dataclass(frozen=True)`` generates sets each field through
``object.__setattr__`` (a frozen class has no other way), several times the cost of storing it
in the instance's ``__dict__``; a typical request builds some forty facts and a KeyValue per
prefetch key. ``stored_in_dict`` replaces it with one that stores the fields directly: the same
parameters, in declaration order, with the same defaults. Everything else (equality, hashing,
``repr``, ``replace``, the refusal to be changed) is the dataclass's.

The ``__init__`` is generated from the dataclass's own field list, the way ``dataclasses``
itself writes one: its source holds nothing but the fields' names (Python identifiers) and
references to their defaults, so a field added to the class is never missed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

C = TypeVar("C", bound=type)


def stored_in_dict(cls: C) -> C:
    """Decorate a ``@dataclass(frozen=True)`` class (outside the ``@dataclass``). Its fields
    must all be ``init`` fields without a ``default_factory`` (a factory would need a call
    per instance: keep the dataclass's own ``__init__`` for such a class)."""
    parameters: list[str] = []
    body: list[str] = []
    defaults: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if not field.init or field.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{field.name}: no init, or a default_factory")
        if field.default is dataclasses.MISSING:
            parameters.append(field.name)
        else:
            defaults[f"_default_{field.name}"] = field.default
            parameters.append(f"{field.name}=_default_{field.name}")
        body.append(f"    fields[{field.name!r}] = {field.name}")
    source = "\n".join(
        [f"def __init__(self, {', '.join(parameters)}):", "    fields = self.__dict__", *body]
    )
    exec(source, defaults)  # built from the dataclass's field names only
    init = defaults["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    setattr(cls, "__init__", init)
    return cls
