"""The body parse's two paths (web/jsonbody.py): the fast one (orjson, duplicates found by
counting colons) gives exactly what the exact one (the standard library with hooks) gives,
or hands the body over to it; duplicates are refused wherever they hide."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import workloads
from cds_service.cdshooks.errors import InvalidRequest
from cds_service.web import jsonbody

from .test_properties import deterministic

JSON = "application/json"

#: Keys and strings with the characters that matter here: colons, quotes, backslashes,
#: non-ASCII, and text that looks like an escape.
TEXT = st.text(alphabet=st.sampled_from(["a", "b", ":", '"', "\\", "é", "€", "😀", "u", "0", " "]))
SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT
SCALARS |= st.floats(allow_nan=False, allow_infinity=False)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=30,
)


def both_paths(raw: bytes):
    """(fast answer or None when it hands over, exact answer or the exact error message)."""
    fast = jsonbody._fast(raw)
    try:
        exact = jsonbody._exact(raw)
    except InvalidRequest as error:
        exact = error.message
    return (None if fast is jsonbody._EXACT else fast), exact


@deterministic(300)
@given(DOCUMENTS, st.booleans())
def test_the_fast_path_reads_what_the_exact_path_reads(document, ascii_only):
    raw = json.dumps({"d": document}, ensure_ascii=ascii_only).encode()
    fast, exact = both_paths(raw)
    assert exact == {"d": document}
    assert fast is None or fast == exact
    assert jsonbody.parse(raw, JSON) == exact


def _with_duplicate(document: dict, key: str, first: object, second: object) -> bytes:
    """``document`` with ``key`` written twice in its innermost object, by hand (json.dumps
    cannot write a duplicate)."""
    inner = json.dumps(document)[:-1]
    separator = ", " if document else ""
    member = f"{json.dumps(key)}: {json.dumps(first)}, {json.dumps(key)}: {json.dumps(second)}"
    return (inner + separator + member + "}").encode()


@deterministic(200)
@given(st.dictionaries(TEXT, SCALARS, max_size=4), TEXT, DOCUMENTS, DOCUMENTS)
def test_a_duplicate_member_is_refused_whatever_it_holds(document, key, first, second):
    document.pop(key, None)
    raw = _with_duplicate(document, key, first, second)
    with pytest.raises(InvalidRequest, match="duplicate key"):
        jsonbody.parse(raw, JSON)


@pytest.mark.parametrize(
    "raw",
    [
        # An escaped colon in one string would hide the colon a dropped duplicate takes away.
        b'{"x": "\\u003a", "k": 1, "k": 2}',
        b'{"x": "\\u003A", "k": 1, "k": 2}',
        # The duplicate deep inside a real request.
        json.dumps(workloads.order_sign())
        .replace('"status": "final"', '"status": "final", "status": "cancelled"', 1)
        .encode(),
    ],
)
def test_duplicates_are_found_where_the_count_cannot_be_trusted(raw):
    with pytest.raises(InvalidRequest, match="duplicate key"):
        jsonbody.parse(raw, JSON)


def test_a_real_request_takes_the_fast_path():
    raw = json.dumps(workloads.order_sign(folic_acid=True)).encode()
    assert jsonbody._fast(raw) == json.loads(raw)


def test_a_document_too_deep_to_write_back_is_read_by_the_exact_path():
    # orjson reads 1,024 levels but writes back only 254: such a body is still answered.
    raw = b'{"a": ' + b"[" * 400 + b"]" * 400 + b"}"
    assert jsonbody._fast(raw) is jsonbody._EXACT
    assert jsonbody.parse(raw, JSON) == json.loads(raw)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"v": NaN}', "not valid JSON"),
        (b'{"v": 1e400}', "out of range"),
        (b'{"v": 1' + b"0" * 400 + b"}", "out of range"),
        (b'{"v": "\\ud800"}', "unpaired surrogate"),
        (b'{"v": "\xff"}', "not valid UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ],
)
def test_refusals_keep_the_exact_paths_messages(raw, message):
    assert jsonbody._fast(raw) is jsonbody._EXACT
    with pytest.raises(InvalidRequest, match=message):
        jsonbody.parse(raw, JSON)
