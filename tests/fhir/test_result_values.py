"""Reading the values laboratories send: comparators, text values, and what cannot be read.

Labs report their lowest and highest results as limits ("<150", ">2000") in
``valueQuantity.comparator`` or as ``valueString`` ("<150 pg/mL", "< 150", "165 ng/L"). These
must reach the rules as numbers with their comparator, never be dropped.
"""

from __future__ import annotations

import pytest

from cds_service.domain.units import parse_value_text
from cds_service.domain.vocabulary import Analyte
from cds_service.fhir.extract import extract_facts
from tests import fhirjson as fj


def b12_obs(oid="b12", **value):
    resource = fj.observation(oid, "2132-9", 150, "pg/mL", "2026-06-01", pid="p")
    del resource["valueQuantity"]
    resource.update(value)
    return resource


def only_lab(resource):
    (lab,) = extract_facts([resource]).facts.labs
    return lab


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<150 pg/mL", ("<", 150.0, "pg/mL")),
        ("< 150", ("<", 150.0, None)),
        ("165 ng/L", (None, 165.0, "ng/L")),
        (">2000", (">", 2000.0, None)),
        ("<=148 pmol/L", ("<=", 148.0, "pmol/L")),
        ("\u2264 2.0 ng/mL", ("<=", 2.0, "ng/mL")),
        ("0.25 ng/mL", (None, 0.25, "ng/mL")),
    ],
)
def test_a_text_value_is_read_as_comparator_number_and_unit(text, expected):
    assert parse_value_text(text) == expected


@pytest.mark.parametrize("text", ["see comment", "150-200", "haemolysed", "", "-5", "1e999"])
def test_a_text_value_that_is_not_one_number_is_not_parsed(text):
    assert parse_value_text(text) is None


def test_a_huge_or_space_padded_text_value_is_refused_quickly():
    assert parse_value_text(" " * 200_000 + "x") is None
    assert parse_value_text("<150 pg/mL" + " " * 100) == ("<", 150.0, "pg/mL")


def test_value_string_below_150_pg_ml_becomes_a_number_with_its_comparator():
    lab = only_lab(b12_obs(valueString="<150 pg/mL"))
    assert (lab.value, lab.unit, lab.comparator) == (150.0, "pg/mL", "<")
    assert lab.canonical_value == 150.0 and lab.unit_recognised


def test_value_string_without_a_unit_takes_the_reference_range_unit():
    resource = b12_obs(
        valueString="< 150", referenceRange=[{"low": {"value": 180, "unit": "ng/L"}}]
    )
    lab = only_lab(resource)
    assert (lab.value, lab.unit, lab.comparator) == (150.0, "ng/L", "<")


def test_value_string_without_any_unit_is_kept_but_not_convertible():
    lab = only_lab(b12_obs(valueString="< 150"))
    assert (lab.value, lab.unit, lab.comparator) == (150.0, None, "<")
    assert not lab.unit_recognised


def test_value_string_that_is_not_a_number_is_kept_as_text_never_dropped():
    lab = only_lab(b12_obs(valueString="see comment"))
    assert (lab.value, lab.text_value, lab.analyte) == (None, "see comment", Analyte.TOTAL_B12)


@pytest.mark.parametrize("comparator", ["<", "<=", ">", ">="])
def test_value_quantity_comparator_is_kept(comparator):
    quantity = {"value": 150, "comparator": comparator, "unit": "pg/mL", "code": "pg/mL"}
    lab = only_lab(b12_obs(valueQuantity=quantity))
    assert (lab.value, lab.comparator) == (150.0, comparator)


def test_an_unreadable_comparator_makes_the_value_text_for_the_unit_rule():
    quantity = {"value": 150, "comparator": "ad", "unit": "pg/mL"}
    lab = only_lab(b12_obs(valueQuantity=quantity))
    assert (lab.value, lab.comparator, lab.text_value) == (None, None, "ad 150")


def test_a_future_dated_result_reaches_the_facts_and_the_picture_skips_it():
    # Extraction has no clock; the picture (which has "now") skips it and logs the id.
    from datetime import datetime, timezone

    from cds_service.domain.picture import ClinicalPicture

    resource = b12_obs(valueString="118 ng/L")
    resource["effectiveDateTime"] = "2026-06-20"
    facts = extract_facts([resource]).facts
    picture = ClinicalPicture(facts, datetime(2026, 6, 15, 12, tzinfo=timezone.utc))
    assert len(facts.labs) == 1
    assert picture.results(Analyte.TOTAL_B12) == ()
    assert picture.stale_b12 is None
