"""``is_fhir_id`` checks the FHIR id pattern without the regex engine: it must agree with the
pattern on every kind of input."""

from __future__ import annotations

import re

import pytest

from cds_service.domain.safetext import INVALID_ID, is_fhir_id, safe_id

PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
SAMPLES = [
    "obs-1",
    "A.b-9",
    "x" * 64,
    "x" * 65,
    "",
    " ",
    "obs 1",
    " obs",
    "obs\n",
    "obs/1",
    "obs_1",
    "<b>",
    "ob\u00e9",
    "\u0661\u0662",  # Arabic-Indic digits: str.isdigit, not an id
    "-",
    ".",
    "a\x00b",
]


@pytest.mark.parametrize("value", SAMPLES)
def test_agrees_with_the_id_pattern(value: str) -> None:
    expected = PATTERN.fullmatch(value) is not None
    assert is_fhir_id(value) is expected
    assert safe_id(value) == (value if expected else INVALID_ID)


@pytest.mark.parametrize("value", [None, 12, ["a"], {"a": 1}, b"abc"])
def test_not_a_string_is_not_an_id(value: object) -> None:
    assert is_fhir_id(value) is False
    assert safe_id(value) == INVALID_ID
