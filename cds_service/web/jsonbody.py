"""Reading a JSON request body defensively: every failure is a typed 4xx, never a 500."""

from __future__ import annotations

import json
from typing import Any

from cds_service.cdshooks.errors import InvalidRequest, UnsupportedMediaType


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:40]!r}")
        result[key] = value
    return result


def is_json_media_type(mimetype: str | None) -> bool:
    return bool(mimetype) and (mimetype == "application/json" or mimetype.endswith("+json"))


def parse(raw: bytes, mimetype: str | None) -> Any:
    if not is_json_media_type(mimetype):
        raise UnsupportedMediaType()
    if not raw.strip():
        raise InvalidRequest("The request body is empty; a JSON object is required.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The request body is not valid UTF-8.") from None
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.") from None
    except ValueError as exc:
        message = str(exc).split(":")[0] if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InvalidRequest(f"The request body is not valid JSON ({message}).") from None
