"""Chinese working days (工作日): 法定节假日 are off, 调休 weekend days are on.

Deadlines in CONTRACT §5 (核查期限, the 重大要情 report) count working days by the State Council's
holiday notice of each year, as kept by the maintained `chinese_calendar` package. The notice is
published late in the year before, so the package only knows a limited span of years (2004–2026
for 1.11). Outside it we fall back to Monday–Friday and warn once per process: a deadline is then
at worst a few days off around a holiday, never missing.
"""

from __future__ import annotations

import datetime as dt
import warnings

import chinese_calendar

# Years already warned about, so a long run warns once rather than per suspect.
_warned_years: set[int] = set()


class CalendarFallbackWarning(UserWarning):
    """A date lies outside the years the holiday calendar knows; Monday–Friday was assumed."""


def _as_date(d: dt.date | dt.datetime) -> dt.date:
    return d.date() if isinstance(d, dt.datetime) else d


def is_working_day(d: dt.date | dt.datetime) -> bool:
    d = _as_date(d)
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        # No holiday notice for this year yet (or before 2004).
        if not _warned_years:
            warnings.warn(
                f"chinese_calendar has no holiday data for {d.year}; counting Monday–Friday as "
                "working days (update the chinesecalendar package once the State Council notice is out)",
                CalendarFallbackWarning,
                stacklevel=2,
            )
        _warned_years.add(d.year)
        return d.weekday() < 5


def add_working_days(d: dt.date | dt.datetime, n: int) -> dt.date:
    """The n-th working day after d (d itself never counts, as in “20 working days after issue”).

    n = 0 returns d unchanged; a negative n counts backwards.
    """
    d = _as_date(d)
    step = 1 if n >= 0 else -1
    remaining = abs(int(n))
    while remaining:
        d += dt.timedelta(days=step)
        if is_working_day(d):
            remaining -= 1
    return d


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days after start up to and including end (0 when end <= start)."""
    start, end = _as_date(start), _as_date(end)
    count = 0
    d = start
    while d < end:
        d += dt.timedelta(days=1)
        if is_working_day(d):
            count += 1
    return count
