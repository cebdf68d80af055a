"""Medication details from R4 JSON: route, dose per administration in micrograms, interval.

Read from the first dosage instruction; when the dose is counted in tablets or millilitres the
strength is read from the product name ("Folic acid 5 MG Oral Tablet", "1000 MCG/ML").
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from cds_service.domain.vocabulary import Route

from .jsonread import MAX_AMOUNT, amount, array, codings, obj, positive_int, string

SNOMED_ROUTES = {
    "26643006": Route.ORAL,
    "37839007": Route.SUBLINGUAL,
    "78421000": Route.INTRAMUSCULAR,
    "34206005": Route.SUBCUTANEOUS,
    "47625008": Route.INTRAVENOUS,
    "46713006": Route.INTRANASAL,
}
_ROUTE_WORDS = (
    (re.compile(r"sublingual|\bSL\b", re.I), Route.SUBLINGUAL),
    (re.compile(r"intramuscular|\bIM\b", re.I), Route.INTRAMUSCULAR),
    (re.compile(r"subcutaneous|\bSC\b|\bSQ\b|subcut", re.I), Route.SUBCUTANEOUS),
    (re.compile(r"intravenous|\bIV\b", re.I), Route.INTRAVENOUS),
    (re.compile(r"nasal", re.I), Route.INTRANASAL),
    (re.compile(r"\boral|by mouth|\bPO\b|tablet|capsule", re.I), Route.ORAL),
    # Injectable products in our classes are given IM unless a route says otherwise.
    (re.compile(r"inject|prefilled syringe|ampoule|\bvial\b", re.I), Route.INTRAMUSCULAR),
)
_MASS_TO_UG = {"ug": 1.0, "mg": 1000.0, "g": 1_000_000.0}
# A thousands separator ("1,000 MCG") is part of the amount: a bare \d+ would read "000 MCG"
# as 0.
_AMOUNT = r"(\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?)"
_STRENGTH = re.compile(
    _AMOUNT + r"\s*(MCG|UG|\u00b5G|\u03bcG|MG|G)\b(?:\s*/\s*(?:(\d+(?:\.\d+)?)\s*)?(ML))?",
    re.I,
)
_PERIOD_DAYS = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 30.4375,
    "a": 365.25,
}
_TIMING_CODES = {
    "QD": 1.0,
    "AM": 1.0,
    "PM": 1.0,
    "BID": 0.5,
    "TID": 1 / 3,
    "QID": 0.25,
    "QOD": 2.0,
    "WK": 7.0,
    "MO": 30.4375,
}


def _mass_key(unit: str) -> str:
    return unit.strip().lower().replace("\u00b5", "u").replace("\u03bc", "u").replace("mcg", "ug")


def route_of(dosage: dict[str, Any] | None, name: str) -> Route:
    route = obj(dosage, "route") if dosage else None
    if route is not None:
        found = codings(route)
        for _, code, _ in found:
            if code in SNOMED_ROUTES:
                return SNOMED_ROUTES[code]
        words = [string(route, "text") or ""] + [display or "" for _, _, display in found]
        for pattern, value in _ROUTE_WORDS:
            if any(pattern.search(w) for w in words):
                return value
    text = string(dosage, "text") if dosage else None
    for pattern, value in _ROUTE_WORDS:
        if text and pattern.search(text):
            return value
    return _route_of_name(name)


@lru_cache(maxsize=2048)
def _route_of_name(name: str) -> Route:
    """The route a product name implies. Names repeat from call to call (the same products,
    as in the drug classification's cache), and every medication read asks."""
    for pattern, value in _ROUTE_WORDS:
        if pattern.search(name):
            return value
    return Route.UNKNOWN


@lru_cache(maxsize=2048)  # a product name's strength: the same answer every time it is asked
def strength_ug(name: str) -> tuple[float, bool] | None:
    """(micrograms per unit, per_ml) from a product name, e.g. "1000 MCG/ML" -> (1000, True)."""
    match = _STRENGTH.search(name)
    if not match:
        return None
    amount, unit, per_volume, ml = match.groups()
    factor = _MASS_TO_UG.get(_mass_key(unit))
    if factor is None:
        return None
    value = float(amount.replace(",", "")) * factor
    if ml and per_volume:
        value /= float(per_volume)
    if not 0 < value <= MAX_AMOUNT * factor:  # "0 MG", or 400 digits that overflow a double
        return None
    return value, bool(ml)


def dose_ug_of(dosage: dict[str, Any] | None, name: str) -> float | None:
    if not dosage:
        return None
    for dose_rate in array(dosage, "doseAndRate"):
        quantity = obj(dose_rate, "doseQuantity")
        if quantity is None:
            dose_range = obj(dose_rate, "doseRange")
            quantity = obj(dose_range, "low") if dose_range else None
        if quantity is None:
            continue
        value = amount(quantity, "value")
        if value is None:
            continue
        key = _mass_key(string(quantity, "code") or string(quantity, "unit") or "")
        if key in _MASS_TO_UG:
            return value * _MASS_TO_UG[key]
        strength = strength_ug(name)
        if strength is None:
            return None
        per_unit, per_ml = strength
        if per_ml:
            return value * per_unit if key in ("ml", "milliliter", "millilitre") else None
        # Tablets, capsules, "{pill}", "1" and friends: count x strength.
        return value * per_unit
    return None


def interval_days_of(dosage: dict[str, Any] | None) -> tuple[float | None, int | None]:
    """(days between administrations, number of administrations) from ``timing``."""
    timing = obj(dosage, "timing") if dosage else None
    if timing is None:
        return None, None
    repeat = obj(timing, "repeat")
    count = positive_int(repeat, "count") if repeat else None
    if repeat:
        period = amount(repeat, "period")
        unit = string(repeat, "periodUnit")
        if period is not None and unit in _PERIOD_DAYS:
            frequency = positive_int(repeat, "frequency") or 1
            period_days = period * _PERIOD_DAYS[unit]
            if period_days > 0:
                return period_days / frequency, count
    for _, code, _ in codings(obj(timing, "code")):
        if code and code.upper() in _TIMING_CODES:
            return _TIMING_CODES[code.upper()], count
    return None, count
