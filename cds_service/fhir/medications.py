"""Medication facts from R4B MedicationStatement / MedicationRequest models.

Dose per administration in micrograms and the interval between administrations are derived
from the first dosage instruction; when the dose is counted in tablets or millilitres the
strength is read from the product name ("Folic acid 5 MG Oral Tablet", "1000 MCG/ML").
"""

from __future__ import annotations

import re
from typing import Any

from cds_service.domain.units import normalise_unit
from cds_service.domain.vocabulary import Route

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
_STRENGTH = re.compile(
    r"(\d+(?:\.\d+)?)\s*(MCG|UG|µG|μG|MG|G)\b(?:\s*/\s*(?:(\d+(?:\.\d+)?)\s*)?(ML))?", re.I
)
_PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.4375, "a": 365.25}
_TIMING_CODES = {"QD": 1.0, "AM": 1.0, "PM": 1.0, "BID": 0.5, "TID": 1 / 3, "QID": 0.25, "QOD": 2.0, "WK": 7.0, "MO": 30.4375}


def route_of(dosage: Any, name: str) -> Route:
    route = getattr(dosage, "route", None) if dosage is not None else None
    if route is not None:
        for coding in route.coding or []:
            if coding.code in SNOMED_ROUTES:
                return SNOMED_ROUTES[coding.code]
        texts = [route.text or ""] + [c.display or "" for c in route.coding or []]
        for pattern, value in _ROUTE_WORDS:
            if any(pattern.search(t) for t in texts):
                return value
    text = getattr(dosage, "text", None) if dosage is not None else None
    for source in (text or "", name):
        for pattern, value in _ROUTE_WORDS:
            if pattern.search(source):
                return value
    return Route.UNKNOWN


def strength_ug(name: str) -> tuple[float, bool] | None:
    """(micrograms per unit, per_ml) from a product name, e.g. "1000 MCG/ML" -> (1000, True)."""
    match = _STRENGTH.search(name)
    if not match:
        return None
    amount, unit, per_volume, ml = match.groups()
    unit = normalise_unit(unit.lower().replace("µ", "u").replace("μ", "u").replace("mcg", "ug"))
    factor = _MASS_TO_UG.get(unit)
    if factor is None:
        return None
    value = float(amount) * factor
    if ml and per_volume:
        value /= float(per_volume)
    return value, bool(ml)


def dose_ug_of(dosage: Any, name: str) -> float | None:
    if dosage is None:
        return None
    for dose_rate in dosage.doseAndRate or []:
        quantity = dose_rate.doseQuantity
        if quantity is None and dose_rate.doseRange is not None:
            quantity = dose_rate.doseRange.low
        if quantity is None or quantity.value is None:
            continue
        amount = float(quantity.value)
        unit = (quantity.code or quantity.unit or "").strip()
        key = unit.lower().replace("µ", "u").replace("μ", "u").replace("mcg", "ug")
        if key in _MASS_TO_UG:
            return amount * _MASS_TO_UG[key]
        strength = strength_ug(name)
        if strength is None:
            return None
        per_unit, per_ml = strength
        if per_ml and key in ("ml", "milliliter", "millilitre"):
            return amount * per_unit
        if not per_ml and key not in ("ml",):
            # Tablets, capsules, "{pill}", "1" and friends: count x strength.
            return amount * per_unit
    return None


def interval_days_of(dosage: Any) -> tuple[float | None, int | None]:
    """(days between administrations, number of administrations) from ``timing``."""
    timing = getattr(dosage, "timing", None) if dosage is not None else None
    if timing is None:
        return None, None
    repeat = timing.repeat
    count = int(repeat.count) if repeat is not None and repeat.count is not None else None
    if repeat is not None and repeat.period is not None and repeat.periodUnit in _PERIOD_DAYS:
        frequency = repeat.frequency or 1
        period_days = float(repeat.period) * _PERIOD_DAYS[repeat.periodUnit]
        if frequency > 0 and period_days > 0:
            return period_days / frequency, count
    if timing.code is not None:
        for coding in timing.code.coding or []:
            if coding.code and coding.code.upper() in _TIMING_CODES:
                return _TIMING_CODES[coding.code.upper()], count
    return None, count
