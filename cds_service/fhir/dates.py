"""FHIR dates, normalised in one place.

fhir.resources returns ``datetime``, ``date`` or ``str`` depending on precision ("2026",
"2026-05", "2026-05-03", "2026-05-03T10:00:00+02:00"). Everything the domain sees is an aware
``datetime`` in UTC. Partial dates take the first instant of the period they name; values
without a zone are read as UTC (FHIR requires a zone when there is a time; real clients omit it).

A date the rules can use lies in [``EARLIEST``, ``LATEST``): "0001-01-01" or "9999-12-31" would
make calendar arithmetic overflow ("9999-12-31" plus a washout period) or stand for no date at
all. ``to_utc`` answers ``None`` for anything else; the extraction skips the resource that
carries such a date (``fhir.extract``), except an end date at or after ``LATEST``, which EHRs
use to mean "no end" (``is_open_end``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")
EARLIEST = datetime(1800, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


def to_utc(value: object) -> datetime | None:
    """An aware UTC datetime in the usable range, or ``None`` for anything unusable (never
    raises)."""
    moment = parse_utc(value)
    return moment if moment is not None and EARLIEST <= moment < LATEST else None


def is_open_end(value: object) -> bool:
    """An end date beyond the usable range ("9999-12-31"): the period has no end."""
    moment = parse_utc(value)
    return moment is not None and moment >= LATEST


def parse_utc(value: object) -> datetime | None:
    """An aware UTC datetime, whatever its year, or ``None`` when it is not a date."""
    try:
        if isinstance(value, datetime):
            return (
                value.astimezone(timezone.utc)
                if value.tzinfo
                else value.replace(tzinfo=timezone.utc)
            )
        if isinstance(value, date):
            return datetime.combine(value, time.min, tzinfo=timezone.utc)
        if isinstance(value, str):
            text = value.strip()
            match = _PARTIAL.match(text)
            if match:
                year, month, day = (int(g) if g else 1 for g in match.groups())
                return datetime(year, month, day, tzinfo=timezone.utc)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parse_utc(parsed)
    except (ValueError, OverflowError, TypeError):
        return None
    return None


def to_date(value: object) -> date | None:
    moment = to_utc(value)
    return moment.date() if moment else None
