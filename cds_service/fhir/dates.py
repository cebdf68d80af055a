"""FHIR dates, normalised in one place.

fhir.resources returns ``datetime``, ``date`` or ``str`` depending on precision ("2026",
"2026-05", "2026-05-03", "2026-05-03T10:00:00+02:00"). Everything the domain sees is an aware
``datetime`` in UTC. Partial dates take the first instant of the period they name; values
without a zone are read as UTC (FHIR requires a zone when there is a time; real clients omit it).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def to_utc(value: object) -> datetime | None:
    """An aware UTC datetime, or ``None`` for anything unusable (never raises)."""
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
            return to_utc(parsed)
    except (ValueError, OverflowError, TypeError):
        return None
    return None


def to_date(value: object) -> date | None:
    moment = to_utc(value)
    return moment.date() if moment else None
