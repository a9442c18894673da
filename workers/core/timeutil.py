"""Event time as integer microseconds since the Unix epoch (UTC): exact and cheap to compare."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

from pydantic import TypeAdapter

US = 1
SECOND = 1_000_000
HOUR = 3600 * SECOND
DAY = 24 * HOUR

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_ONE_US = timedelta(microseconds=1)

# The decoder's contracts parse every timestamp written with ``Z`` or ``+00:00`` to a
# datetime whose tzinfo is one shared object. Subtracting two datetimes with the same tzinfo
# object skips both ``utcoffset`` calls, which cost more than half of ``to_us`` otherwise.
_ZULU = TypeAdapter(datetime).validate_json(b'"1970-01-01T00:00:00Z"').tzinfo
_ZULU_EPOCH = datetime(1970, 1, 1, tzinfo=_ZULU)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact integer arithmetic)."""
    if moment.tzinfo is _ZULU:  # offset zero: the naive difference is the true one
        delta = moment - _ZULU_EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (moment - _EPOCH) // _ONE_US


def from_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def day_number(day: date) -> int:
    """Days since the epoch of a calendar date."""
    return day.toordinal() - _EPOCH_ORDINAL


def day_start_us(day_no: int) -> int:
    """00:00 UTC of a day number."""
    return day_no * DAY


def date_of_day(day_no: int) -> date:
    return date.fromordinal(day_no + _EPOCH_ORDINAL)


def add_months_us(micros: int, months: int) -> int:
    """Add calendar months, clamping the day to the target month's length (Jan 31 + 1 = Feb 28)."""
    moment = from_us(micros)
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return to_us(moment.replace(year=year, month=month, day=day))


def hours(value: float) -> int:
    return round(value * HOUR)


def days(value: float) -> int:
    return round(value * DAY)


def iso(micros: int) -> str:
    """RFC 3339 UTC text for evidence fields."""
    return from_us(micros).isoformat().replace("+00:00", "Z")
