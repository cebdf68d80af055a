"""Unit spelling and conversion (rule book §2 "Thresholds and units", section 5 "UCUM").

Rules never convert: the adapter keeps the reported value and unit and adds the canonical one.
"""

from __future__ import annotations

import pytest

from cds_service.domain.units import (
    NG_L_TO_PMOL_L,
    PMOL_L_TO_NG_L,
    b12_both_units,
    canonical_unit,
    display_unit,
    format_number,
    is_convertible,
    normalise_unit,
    to_canonical,
)
from cds_service.domain.vocabulary import Analyte

EGFR = "mL/min/{1.73_m2}"


# --- normalise_unit --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spelling, expected",
    [
        # micro: micro sign, Greek mu, u, mc
        ("\u00b5mol/L", "umol/L"),
        ("\u03bcmol/L", "umol/L"),
        ("umol/L", "umol/L"),
        ("mcmol/L", "umol/L"),
        ("\u00b5g/L", "ug/L"),
        ("\u03bcg/L", "ug/L"),
        ("mcg/L", "ug/L"),
        ("MCG/L", "ug/L"),
        ("ug/L", "ug/L"),
        # case and whitespace
        ("pg/mL", "pg/mL"),
        ("PG/ML", "pg/mL"),
        ("pg/ml", "pg/mL"),
        (" ng/L ", "ng/L"),
        ("ng / L", "ng/L"),
        ("NG/ML", "ng/mL"),
        ("pmol/l", "pmol/L"),
        ("PMOL/L", "pmol/L"),
        ("nmol/l", "nmol/L"),
        ("nmol/ml", "nmol/mL"),
        ("mmol/l", "mmol/L"),
        ("mEq/L", "mmol/L"),
        ("g/dl", "g/dL"),
        ("G/L", "g/L"),
        ("mg/dl", "mg/dL"),
        ("fl", "fL"),
        ("um3", "fL"),
        ("%", "%"),
        ("l/l", "L/L"),
        # UCUM codes and their usual displays
        ("10*9/L", "10*9/L"),
        ("10^9/L", "10*9/L"),
        ("x10^9/L", "10*9/L"),
        ("x10E9/L", "10*9/L"),
        ("10*3/uL", "10*3/uL"),
        ("10*3/\u00b5L", "10*3/uL"),
        ("10^3/uL", "10*3/uL"),
        ("x10E3/uL", "10*3/uL"),
        ("K/uL", "10*3/uL"),
        ("U/mL", "U/mL"),
        ("{titer}", "{titer}"),
    ],
)
def test_unit_spellings_normalise(spelling, expected):
    assert normalise_unit(spelling) == expected


@pytest.mark.parametrize(
    "spelling",
    [
        "mL/min/{1.73_m2}",
        "mL/min/1.73m2",
        "mL/min/1.73 m2",
        "mL/min/1.73_m2",
        "mL/min/{1.73m2}",
        "mL/min/1.73m^2",
        "mL/min/1.73 m^2",
        "mL/min/1.73m\u00b2",
        "mL/min/1.73 m\u00b2",
        "ML/MIN/1.73M2",
        " mL/min/1.73 m2 ",
    ],
)
def test_egfr_unit_variants_normalise_to_the_ucum_code(spelling):
    assert normalise_unit(spelling) == EGFR
    assert is_convertible(Analyte.EGFR, normalise_unit(spelling))


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_no_unit_is_none(empty):
    assert normalise_unit(empty) is None


@pytest.mark.parametrize("unknown", ["mg", "IU/L", "ng/dL", "  mg  ", "arbitrary unit"])
def test_an_unknown_unit_is_kept_trimmed_so_a_card_can_quote_it(unknown):
    assert normalise_unit(unknown) == unknown.strip()


# --- to_canonical ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "analyte, value, unit, expected",
    [
        # Total B12 -> ng/L (1 pg/mL = 1 ng/L; 1 pmol/L = 1.3554 ng/L; 1 ng/mL = 1000 ng/L)
        (Analyte.TOTAL_B12, 118, "ng/L", 118),
        (Analyte.TOTAL_B12, 118, "pg/mL", 118),
        (Analyte.TOTAL_B12, 100, "pmol/L", 135.54),
        (Analyte.TOTAL_B12, 133, "pmol/L", 180.2682),
        (Analyte.TOTAL_B12, 0.3, "ng/mL", 300),
        # Active B12 -> pmol/L
        (Analyte.ACTIVE_B12, 24.9, "pmol/L", 24.9),
        # MMA -> nmol/L (umol/L x 1000; nmol/mL equals umol/L)
        (Analyte.MMA, 350, "nmol/L", 350),
        (Analyte.MMA, 0.35, "umol/L", 350),
        (Analyte.MMA, 0.35, "nmol/mL", 350),
        # Homocysteine -> umol/L (nmol/mL = umol/L)
        (Analyte.HOMOCYSTEINE, 12, "umol/L", 12),
        (Analyte.HOMOCYSTEINE, 12, "nmol/mL", 12),
        # Folate -> ng/mL (1 ng/mL = 2.266 nmol/L)
        (Analyte.FOLATE, 4, "ng/mL", 4),
        (Analyte.FOLATE, 4, "ug/L", 4),
        (Analyte.FOLATE, 9.064, "nmol/L", 4),
        (Analyte.RBC_FOLATE, 453.2, "nmol/L", 200),
        # Haemoglobin -> g/dL
        (Analyte.HAEMOGLOBIN, 11.5, "g/dL", 11.5),
        (Analyte.HAEMOGLOBIN, 115, "g/L", 11.5),
        (Analyte.HAEMOGLOBIN, 8, "mmol/L", 12.888),
        (Analyte.MCV, 104, "fL", 104),
        (Analyte.PLATELETS, 150, "10*9/L", 150),
        (Analyte.PLATELETS, 150, "10*3/uL", 150),
        (Analyte.HAEMATOCRIT, 38, "%", 38),
        (Analyte.HAEMATOCRIT, 0.38, "L/L", 38),
        (Analyte.RETICULOCYTES, 1.5, "%", 1.5),
        (Analyte.POTASSIUM, 2.9, "mmol/L", 2.9),
        (Analyte.CREATININE, 1.2, "mg/dL", 1.2),
        (Analyte.CREATININE, 88.4, "umol/L", 1.0),
        (Analyte.EGFR, 38, EGFR, 38),
    ],
)
def test_to_canonical_converts_each_analyte(analyte, value, unit, expected):
    assert to_canonical(analyte, value, unit) == pytest.approx(expected)


def test_b12_conversion_factors_are_those_of_rules_md():
    assert PMOL_L_TO_NG_L == 1.3554
    assert NG_L_TO_PMOL_L == 0.7378


def test_b12_ng_per_ml_is_a_thousand_times_ng_per_l():
    # the product brief's "180 ng/mL" typo is 1000x (rule book §6)
    assert to_canonical(Analyte.TOTAL_B12, 0.18, "ng/mL") == pytest.approx(180)


@pytest.mark.parametrize(
    "analyte, unit",
    [
        (Analyte.TOTAL_B12, "mg"),
        (Analyte.TOTAL_B12, "nmol/L"),
        (Analyte.TOTAL_B12, None),
        (Analyte.TOTAL_B12, "pg/ml"),  # not normalised: callers normalise first
        (Analyte.ACTIVE_B12, "ng/L"),
        (Analyte.MMA, "mg/dL"),
        (Analyte.EGFR, "mL/min"),
        (Analyte.IF_ANTIBODY, "U/mL"),  # qualitative: no canonical unit at all
        (Analyte.PREGNANCY_STATUS, None),
    ],
)
def test_an_unconvertible_unit_gives_none(analyte, unit):
    assert to_canonical(analyte, 1.0, unit) is None
    assert not is_convertible(analyte, unit)


@pytest.mark.parametrize(
    "analyte, unit",
    [
        (Analyte.TOTAL_B12, "ng/L"),
        (Analyte.ACTIVE_B12, "pmol/L"),
        (Analyte.MMA, "nmol/L"),
        (Analyte.HOMOCYSTEINE, "umol/L"),
        (Analyte.FOLATE, "ng/mL"),
        (Analyte.HAEMOGLOBIN, "g/dL"),
        (Analyte.MCV, "fL"),
        (Analyte.PLATELETS, "10*9/L"),
        (Analyte.POTASSIUM, "mmol/L"),
        (Analyte.EGFR, EGFR),
        (Analyte.IF_ANTIBODY, None),
    ],
)
def test_canonical_units(analyte, unit):
    assert canonical_unit(analyte) == unit


@pytest.mark.parametrize("ng_per_l", [87, 118, 179.9, 180, 200, 350, 350.1, 1000, 2000])
def test_round_trip_ng_l_to_pmol_l_and_back_within_rounding(ng_per_l):
    pmol = b12_both_units(ng_per_l)[1]
    back = to_canonical(Analyte.TOTAL_B12, pmol, "pmol/L")
    assert back == pytest.approx(ng_per_l, rel=1e-4)
    assert format_number(back) == format_number(ng_per_l)


def test_both_units_for_a_card():
    ng, pmol = b12_both_units(118)
    assert (format_number(ng), format_number(pmol)) == ("118", "87.1")


def test_133_pmol_l_converts_across_the_180_ng_l_boundary():
    # why rules compare in the reported unit (rule book §2)
    assert to_canonical(Analyte.TOTAL_B12, 133, "pmol/L") > 180


# --- display ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "unit, shown",
    [
        (EGFR, "mL/min/1.73 m\u00b2"),
        ("umol/L", "\u00b5mol/L"),
        ("ug/L", "\u00b5g/L"),
        ("10*9/L", "\u00d710\u2079/L"),
        ("10*3/uL", "\u00d710\u00b3/\u00b5L"),
        ("ng/L", "ng/L"),
        ("pmol/L", "pmol/L"),
        ("mg", "mg"),
        (None, ""),
        ("", ""),
    ],
)
def test_display_unit(unit, shown):
    assert display_unit(unit) == shown


@pytest.mark.parametrize(
    "value, text",
    [
        (118, "118"),
        (118.0, "118"),
        (179.9, "179.9"),
        (180.2682, "180.3"),
        (87.06, "87.1"),
        (10, "10"),
        (9.999, "10"),
        (2.9, "2.9"),
        (1.3554, "1.36"),
        (1.0, "1"),
        (0.35, "0.35"),
        (0.2, "0.2"),
        (0.0004, "0"),
        (0, "0"),
        (-0.0001, "0"),
        (-3.5, "-3.5"),
        (-12.26, "-12.3"),
        (2000, "2000"),
    ],
)
def test_format_number_drops_trailing_zeros(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_format_number_of_non_finite_values_does_not_raise(value):
    assert format_number(value) == str(value)
