"""The one place fhir.resources is imported for parsing: R4 JSON through the R4B models.

The top-level ``fhir.resources`` package is R5, where MedicationStatement has another shape.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class


def model_class(resource_type: Any) -> Any:
    """The R4B model class for a resource type; ValueError for an unknown type."""
    if not isinstance(resource_type, str):
        raise ValueError("resourceType missing")
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError, ImportError):
        raise ValueError(f"unknown resourceType {resource_type!r}") from None


def validate(resource: dict[str, Any]) -> Any:
    """Model (and so validate) one R4 resource; raises pydantic.ValidationError / ValueError."""
    model = model_class(resource.get("resourceType"))
    try:
        return model.model_validate(resource)
    except (KeyError, AttributeError, IndexError) as exc:
        # fhir_core looks a contained resource's class up by its resourceType and lets the
        # KeyError of an unknown one escape: that is an invalid resource, not a crash of the
        # request (the reader skips on ValueError). The message quotes no input.
        raise ValueError(f"invalid {model.__name__} ({type(exc).__name__})") from None
