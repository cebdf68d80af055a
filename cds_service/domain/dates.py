"""Calendar arithmetic for clinical windows: "for 4 months" means calendar months, counted
by calendar day. Pure: the current time is always a parameter."""

from __future__ import annotations

import calendar
from datetime import datetime

DAYS_PER_MONTH = 30.4375
#: Days in each month of a common year (index 1-12).
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day ``months`` calendar months later (clamped to the month's last day)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    day = moment.day
    if day > 28:  # every month has 28 days; only a later day may need clamping
        length = _DAYS_IN_MONTH[month] + (month == 2 and calendar.isleap(year))
        day = min(day, length)
    return moment.replace(year=year, month=month, day=day)


def months_between(start: datetime, end: datetime) -> float:
    """Calendar months, with the part-month as a fraction: 15 Feb -> 15 Jun is 4.0.

    Clinical windows are said in calendar months ("metformin for 4 months"); dates are
    compared by calendar day, so a date-only start counts from its day, not its midnight.
    """
    start_day, end_day = start.date(), end.date()
    if end_day < start_day:
        return -months_between(end, start)
    whole = (end_day.year - start_day.year) * 12 + end_day.month - start_day.month
    anchor = add_months(start, whole).date()
    if anchor > end_day:
        whole -= 1
        anchor = add_months(start, whole).date()
    following = add_months(start, whole + 1).date()
    return whole + (end_day - anchor).days / (following - anchor).days
