"""FHIR dates normalised once (docs/architecture.md): every date the domain sees is an aware UTC
``datetime``; partial dates take the first instant of the period they name; no zone = UTC;
anything unusable is ``None`` and never an exception."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from cds_service.fhir.dates import to_date, to_utc

UTC = timezone.utc


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-05", datetime(2026, 5, 1, tzinfo=UTC)),
        ("2026-05-03", datetime(2026, 5, 3, tzinfo=UTC)),
        (" 2026-05-03 ", datetime(2026, 5, 3, tzinfo=UTC)),
        ("2026-05-03T10:00:00Z", datetime(2026, 5, 3, 10, tzinfo=UTC)),
        ("2026-05-03T10:00:00+00:00", datetime(2026, 5, 3, 10, tzinfo=UTC)),
        ("2026-05-03T10:00:00+02:00", datetime(2026, 5, 3, 8, tzinfo=UTC)),
        ("2026-05-03T22:30:00-05:00", datetime(2026, 5, 4, 3, 30, tzinfo=UTC)),
        ("2026-05-03T00:30:00+14:00", datetime(2026, 5, 2, 10, 30, tzinfo=UTC)),
        ("2026-05-03T10:00:00.250Z", datetime(2026, 5, 3, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-05-03T10:00:00", datetime(2026, 5, 3, 10, tzinfo=UTC)),  # no zone: UTC
        ("2026-05-03T10:00", datetime(2026, 5, 3, 10, tzinfo=UTC)),
    ],
)
def test_fhir_date_strings_become_aware_utc(value, expected):
    result = to_utc(value)
    assert result == expected
    assert result.tzinfo is not None and result.utcoffset() == timedelta(0)


def test_partial_year_takes_the_first_instant_of_the_year():
    assert to_utc("1960") == datetime(1960, 1, 1, tzinfo=UTC)


def test_fractional_seconds_beyond_microseconds_are_read():
    assert to_utc("2026-05-03T10:00:00.123456789Z") is not None


def test_a_date_object_is_midnight_utc():
    assert to_utc(date(2026, 5, 3)) == datetime(2026, 5, 3, tzinfo=UTC)


def test_a_naive_datetime_is_taken_as_utc():
    assert to_utc(datetime(2026, 5, 3, 10)) == datetime(2026, 5, 3, 10, tzinfo=UTC)


def test_an_aware_datetime_is_converted_to_utc():
    plus_two = timezone(timedelta(hours=2))
    result = to_utc(datetime(2026, 5, 3, 10, tzinfo=plus_two))
    assert result == datetime(2026, 5, 3, 8, tzinfo=UTC)
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "yesterday",
        "2026-13",
        "2026-02-30",
        "2026-05-32",
        "0000",
        "2026-05-03T25:00:00Z",
        "03/05/2026",
        "2026-05-03Tnoon",
        "\ud800",
        2026,
        20260503.0,
        True,
        [],
        {},
        ["2026-05-03"],
        {"start": "2026-05-03"},
        object(),
        # the UTC instant is outside what datetime can hold
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:00:00+05:00",
    ],
)
def test_garbage_is_none_and_never_raises(value):
    assert to_utc(value) is None
    assert to_date(value) is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1960", date(1960, 1, 1)),
        ("1960-04", date(1960, 4, 1)),
        ("1960-04-12", date(1960, 4, 12)),
        (date(1960, 4, 12), date(1960, 4, 12)),
    ],
)
def test_to_date_reads_partial_birth_dates(value, expected):
    assert to_date(value) == expected
