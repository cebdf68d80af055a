"""Unit spelling and conversion (rule book §2).

Rules never convert: the adapter gives each result its value in the reported unit *and* in
the analyte's canonical unit. B12 bands are decided against the threshold pair of the
*reported* unit (133 pmol/L converts to 180.3 ng/L and would otherwise flip band).
"""

from __future__ import annotations

import re
from functools import lru_cache

from .vocabulary import Analyte

#: 1 ng/L = 0.7378 pmol/L; 1 pmol/L = 1.3554 ng/L (rule book §2).
NG_L_TO_PMOL_L = 0.7378
PMOL_L_TO_NG_L = 1.3554

_ALIASES = {
    "pg/ml": "pg/mL",
    "ng/l": "ng/L",
    "ng/ml": "ng/mL",
    "ug/l": "ug/L",
    "pmol/l": "pmol/L",
    "nmol/l": "nmol/L",
    "nmol/ml": "nmol/mL",
    "umol/l": "umol/L",
    "mmol/l": "mmol/L",
    "meq/l": "mmol/L",
    "g/dl": "g/dL",
    "g/l": "g/L",
    "mg/dl": "mg/dL",
    "fl": "fL",
    "um3": "fL",
    "10*3/ul": "10*3/uL",
    "10^3/ul": "10*3/uL",
    "x10^3/ul": "10*3/uL",
    # "x10E3/uL", "x10E9/L": how several US laboratories print these counts.
    "10e3/ul": "10*3/uL",
    "x10e3/ul": "10*3/uL",
    "k/ul": "10*3/uL",
    "10*9/l": "10*9/L",
    "10^9/l": "10*9/L",
    "x10^9/l": "10*9/L",
    "10e9/l": "10*9/L",
    "x10e9/l": "10*9/L",
    "%": "%",
    "l/l": "L/L",
    "ml/min/{1.73_m2}": "mL/min/{1.73_m2}",
    "ml/min/1.73m2": "mL/min/{1.73_m2}",
    "ml/min/1.73_m2": "mL/min/{1.73_m2}",
    "ml/min/1.73 m2": "mL/min/{1.73_m2}",
    "ml/min/{1.73m2}": "mL/min/{1.73_m2}",
    "ml/min/1.73m^2": "mL/min/{1.73_m2}",
    "u/ml": "U/mL",
    "{titer}": "{titer}",
}


@lru_cache(maxsize=4096)
def normalise_unit(unit: str | None) -> str | None:
    """Canonical spelling of a unit code or display; ``None`` when empty.

    Accepts the micro sign, Greek mu, ``u`` and ``mc`` spellings (rule book §5).
    Unknown units are returned trimmed so that a card can quote them.
    """
    if unit is None:
        return None
    text = unit.strip()
    if not text:
        return None
    key = text.replace("\u00b5", "u").replace("\u03bc", "u")
    # "mL/min/1.73 m\u00b2" (superscript two) is the usual eGFR display; it was left unread.
    key = key.replace("\u00b2", "2")
    key = re.sub(r"^mc(?=[gmlL]|mol)", "u", key)
    key = re.sub(r"\s+", "", key).lower() if "1.73" not in key else key.lower()
    key = key.replace("mcmol", "umol").replace("mcg", "ug")
    return _ALIASES.get(key, _ALIASES.get(key.replace(" ", ""), text))


#: Canonical unit per analyte and factors that take a reported unit to it.
_CANONICAL: dict[Analyte, tuple[str, dict[str, float]]] = {
    Analyte.TOTAL_B12: (
        "ng/L",
        {"ng/L": 1.0, "pg/mL": 1.0, "ng/mL": 1000.0, "pmol/L": PMOL_L_TO_NG_L},
    ),
    Analyte.ACTIVE_B12: ("pmol/L", {"pmol/L": 1.0}),
    Analyte.MMA: ("nmol/L", {"nmol/L": 1.0, "umol/L": 1000.0, "nmol/mL": 1000.0}),
    Analyte.HOMOCYSTEINE: ("umol/L", {"umol/L": 1.0, "nmol/mL": 1.0}),
    Analyte.FOLATE: ("ng/mL", {"ng/mL": 1.0, "ug/L": 1.0, "nmol/L": 1 / 2.266}),
    Analyte.RBC_FOLATE: ("ng/mL", {"ng/mL": 1.0, "ug/L": 1.0, "nmol/L": 1 / 2.266}),
    Analyte.HAEMOGLOBIN: ("g/dL", {"g/dL": 1.0, "g/L": 0.1, "mmol/L": 1.611}),
    Analyte.MCV: ("fL", {"fL": 1.0}),
    Analyte.PLATELETS: ("10*9/L", {"10*9/L": 1.0, "10*3/uL": 1.0}),
    Analyte.HAEMATOCRIT: ("%", {"%": 1.0, "L/L": 100.0}),
    Analyte.RETICULOCYTES: ("%", {"%": 1.0}),
    Analyte.POTASSIUM: ("mmol/L", {"mmol/L": 1.0}),
    Analyte.CREATININE: ("mg/dL", {"mg/dL": 1.0, "umol/L": 1 / 88.4}),
    Analyte.EGFR: ("mL/min/{1.73_m2}", {"mL/min/{1.73_m2}": 1.0}),
}


def canonical_unit(analyte: Analyte) -> str | None:
    entry = _CANONICAL.get(analyte)
    return entry[0] if entry else None


def to_canonical(analyte: Analyte, value: float, unit: str | None) -> float | None:
    """``value`` in the analyte's canonical unit, or ``None`` when the unit is not convertible."""
    entry = _CANONICAL.get(analyte)
    if entry is None or unit is None:
        return None
    factor = entry[1].get(unit)
    return None if factor is None else value * factor


def is_convertible(analyte: Analyte, unit: str | None) -> bool:
    entry = _CANONICAL.get(analyte)
    return entry is not None and unit in entry[1]


def b12_both_units(ng_per_l: float) -> tuple[float, float]:
    """A total B12 in ng/L as (ng/L, pmol/L), for cards that show both."""
    return ng_per_l, ng_per_l * NG_L_TO_PMOL_L


_DISPLAY_UNITS = {
    "mL/min/{1.73_m2}": "mL/min/1.73 m\u00b2",
    "umol/L": "\u00b5mol/L",
    "ug/L": "\u00b5g/L",
    "10*9/L": "\u00d710\u2079/L",
    "10*3/uL": "\u00d710\u00b3/\u00b5L",
}


def display_unit(unit: str | None) -> str:
    """A unit as a clinician reads it ("mL/min/1.73 m\u00b2", not the UCUM code)."""
    if not unit:
        return ""
    return _DISPLAY_UNITS.get(unit, unit)


def format_number(value: float) -> str:
    """Clinical display without trailing zeros: one decimal from 10, two from 1, three below."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    text = text.rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


_VALUE_TEXT = re.compile(
    r"^\s*(?P<cmp><=|>=|=<|=>|\u2264|\u2265|<|>)?\s*"
    r"(?P<num>\d{1,9}(?:\.\d{1,6})?|\.\d{1,6})(?![eE][+-]?\d)\s*"
    r"(?P<unit>[A-Za-z\u00b5\u03bc%{*][^\s]{0,19}(?:\s[^\s]{1,19})?)?\s*$"
)
_COMPARATOR_SPELLINGS = {"=<": "<=", "=>": ">=", "\u2264": "<=", "\u2265": ">="}


def parse_value_text(text: str) -> tuple[str | None, float, str | None] | None:
    """A laboratory's text value as (comparator, number, unit): "<150 pg/mL", "< 150",
    "165 ng/L", ">2000". ``None`` when the text is not a single number with an optional
    comparator and unit ("see comment", "150-200", "haemolysed")."""
    text = text.strip()
    if len(text) > 48:  # no lab value is longer; also bounds the regular expression's work
        return None
    match = _VALUE_TEXT.match(text)
    if match is None:
        return None
    comparator = match.group("cmp")
    comparator = _COMPARATOR_SPELLINGS.get(comparator, comparator)
    return comparator, float(match.group("num")), match.group("unit")
