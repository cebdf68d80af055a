"""Reading a JSON request body defensively: every failure is a typed 4xx, never a 500."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from cds_service.cdshooks.errors import InvalidRequest, UnsupportedMediaType

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Called for every object of the body: dict() does the work in C, the loop runs only
    # when there is a duplicate to name.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key[:40]!r}")
            seen.add(key)
    return result


#: Digits of the largest integer a JSON number may carry here: beyond an IEEE double's range
#: (about 1.8e308) a number cannot be compared or converted (RFC 8259 section 6), and a
#: 400-digit integer used to reach a float conversion and fail there.
MAX_INTEGER_DIGITS = 308


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError("a number is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INTEGER_DIGITS:
        raise ValueError("a number is out of range")
    return int(text)


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
        document = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            object_pairs_hook=_no_duplicates,
        )
        if _SURROGATE_ESCAPE.search(text):
            # "\ud800" alone decodes to a string no UTF-8 encoder accepts (it broke the error
            # answer that quoted it). Rare in real bodies, so checked only when one is escaped.
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        return document
    except UnicodeEncodeError:
        raise InvalidRequest("The request body has an unpaired surrogate escape.") from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.") from None
    except ValueError as exc:
        message = str(exc).split(":")[0] if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InvalidRequest(f"The request body is not valid JSON ({message}).") from None
