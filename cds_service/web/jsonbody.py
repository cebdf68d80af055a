"""Reading a JSON request body defensively: every failure is a typed 4xx, never a 500; and
writing the responses' JSON (``write``).

What a body must be (docs/benchmarks.md, "The body parse", says why it is read this way):
UTF-8 JSON (RFC 8259) without NaN / Infinity, without a number beyond a double's range,
without a lone surrogate escape, nested less than about 1,000 deep, and **without a duplicate
member name in any object**. Duplicates are refused (400) rather than resolved "last wins":
two readers of the same body (a proxy, an audit log, this service) could otherwise each see a
different request, and no EHR sends them on purpose.

Two paths give the same answers:

- the fast one, orjson (C), which already refuses everything above except duplicates; those
  are found without walking the document: outside strings every object member has exactly one
  ``:``, and orjson writes strings back with their colons as they were, so re-serialising the
  parsed document loses colons exactly when a duplicate member was dropped. Only an escaped
  colon (``\u003a``) breaks that count, and such a body takes the exact path;
- the exact one, the standard library with a hook per object and per number, taken when the
  fast path refuses a body (so that its error message is the one a client always got), finds
  it too deep to write back, or cannot count on the colons.

An integer beyond 64 bits comes out as a float on the fast path (the rules read numbers as
floats anyway).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

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
#: 400-digit integer would otherwise reach a float conversion and fail there.
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
    return mimetype is not None and (mimetype == "application/json" or mimetype.endswith("+json"))


def parse(raw: bytes, mimetype: str | None) -> Any:
    if not is_json_media_type(mimetype):
        raise UnsupportedMediaType()
    if not raw.strip():
        raise InvalidRequest("The request body is empty; a JSON object is required.")
    document = _fast(raw)
    return document if document is not _EXACT else _exact(raw)


#: ``_fast``'s answer when the body needs the exact path.
_EXACT = object()


def _fast(raw: bytes) -> Any:
    if b"\\u003" in raw:  # maybe an escaped colon: the count below could not be trusted
        return _EXACT
    try:
        document = orjson.loads(raw)
        if orjson.dumps(document).count(b":") != raw.count(b":"):
            return _EXACT  # a duplicate member was dropped: the exact path names it
    except (ValueError, TypeError, RecursionError):  # orjson.JSONDecodeError, JSONEncodeError
        return _EXACT  # refused, or nested too deeply to write back: the exact path decides
    return document


def _exact(raw: bytes) -> Any:
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
            # "\ud800" alone decodes to a string no UTF-8 encoder accepts (an error answer
            # quoting it could not be sent). Rare in real bodies, so checked only when one is
            # escaped.
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        return document
    except UnicodeEncodeError:
        raise InvalidRequest("The request body has an unpaired surrogate escape.") from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.") from None
    except ValueError as exc:
        message = str(exc).split(":")[0] if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InvalidRequest(f"The request body is not valid JSON ({message}).") from None


def write(document: Any) -> bytes:
    """Compact JSON in insertion order, UTF-8, with a final newline (as Flask writes it);
    TypeError for what orjson cannot write (an integer beyond 64 bits)."""
    return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)
