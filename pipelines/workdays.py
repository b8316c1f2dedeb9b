"""Chinese working days (工作日): 法定节假日 are off, 调休 weekend days are on.

Deadlines in CONTRACT §5 (核查期限, the 重大要情 report) count working days by the State Council's
holiday notice of each year, as kept by the maintained `chinese_calendar` package. The notice is
published late in the year before, so the package only knows a limited span of years (2004–2026
for 1.11). An office need not wait for a new release: it enters the notice's days in its config
(`casework.holidays`, `casework.adjusted_workdays`), and a year it has entered counts by them.
For a year neither knows we fall back to Monday–Friday less the holidays the law fixes (on
calendar dates, the 清明 solar term and the lunar dates of 春节, 端午 and 中秋), and warn once per
process: a deadline is then at worst a day or two off around a 调休 or a 补假, never missing; the
night's summary names the year.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from dataclasses import dataclass
from typing import Any, Iterable

import chinese_calendar

# Years already warned about, so a long run warns once rather than per suspect.
_warned_years: set[int] = set()


class CalendarFallbackWarning(UserWarning):
    """A date lies outside the years the holiday calendar knows; Monday–Friday was assumed."""


# 《全国年节及纪念日放假办法》 (as revised in 2024): the holidays on fixed calendar dates — 元旦 1 January,
# 劳动节 1–2 May, 国庆节 1–3 October — 清明节 on the day of the solar term, and on lunar dates 春节
# (除夕 and 正月初一 to 初三), 端午节 (五月初五) and 中秋节 (八月十五). They are off in every year
# whatever its notice says; what only the notice sets is the 调休 around them and the 补假 for one
# falling on a weekend.
_STATUTORY_FIXED = ((1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3))
# 正月初一, 端午 and 中秋 by the Gregorian date (MM-DD), from a table of the lunar calendar (the
# Purple Mountain Observatory's, as python-lunardate carries it; checked against chinese_calendar's
# holidays for every year both know, tests/test_workdays.py). Only the years after the package's are
# needed; 2008–2026 are here for that check. A year beyond the table keeps the other holidays.
_LUNAR_HOLIDAYS = {
    2008: ("02-07", "06-08", "09-14"), 2009: ("01-26", "05-28", "10-03"), 2010: ("02-14", "06-16", "09-22"),
    2011: ("02-03", "06-06", "09-12"), 2012: ("01-23", "06-23", "09-30"), 2013: ("02-10", "06-12", "09-19"),
    2014: ("01-31", "06-02", "09-08"), 2015: ("02-19", "06-20", "09-27"), 2016: ("02-08", "06-09", "09-15"),
    2017: ("01-28", "05-30", "10-04"), 2018: ("02-16", "06-18", "09-24"), 2019: ("02-05", "06-07", "09-13"),
    2020: ("01-25", "06-25", "10-01"), 2021: ("02-12", "06-14", "09-21"), 2022: ("02-01", "06-03", "09-10"),
    2023: ("01-22", "06-22", "09-29"), 2024: ("02-10", "06-10", "09-17"), 2025: ("01-29", "05-31", "10-06"),
    2026: ("02-17", "06-19", "09-25"), 2027: ("02-06", "06-09", "09-15"), 2028: ("01-26", "05-28", "10-03"),
    2029: ("02-13", "06-16", "09-22"), 2030: ("02-03", "06-05", "09-12"), 2031: ("01-23", "06-24", "10-01"),
    2032: ("02-11", "06-12", "09-19"), 2033: ("01-31", "06-01", "09-08"), 2034: ("02-19", "06-20", "09-27"),
    2035: ("02-08", "06-10", "09-16"), 2036: ("01-28", "05-30", "10-04"), 2037: ("02-15", "06-18", "09-24"),
    2038: ("02-04", "06-07", "09-13"), 2039: ("01-24", "05-27", "10-02"), 2040: ("02-12", "06-14", "09-20"),
    2041: ("02-01", "06-03", "09-10"), 2042: ("01-22", "06-22", "09-28"), 2043: ("02-10", "06-11", "09-17"),
    2044: ("01-30", "05-31", "10-05"), 2045: ("02-17", "06-19", "09-25"), 2046: ("02-06", "06-08", "09-15"),
    2047: ("01-26", "05-29", "10-04"), 2048: ("02-14", "06-15", "09-22"), 2049: ("02-02", "06-04", "09-11"),
    2050: ("01-23", "06-23", "09-30"),
}


def lunar_holidays(year: int) -> dict[str, dt.date]:
    """正月初一 (春节), 端午 and 中秋 of a year in the table, by name ({} beyond it)."""
    dates = _LUNAR_HOLIDAYS.get(year)
    if dates is None:
        return {}
    return {name: dt.date.fromisoformat(f"{year}-{mmdd}") for name, mmdd in zip(("春节", "端午", "中秋"), dates)}


@functools.lru_cache(maxsize=None)
def _statutory_days_off(year: int) -> frozenset[dt.date]:
    days = {dt.date(year, month, day) for month, day in _STATUTORY_FIXED}
    lunar = lunar_holidays(year)
    if lunar:
        new_year = lunar["春节"]
        days.update(new_year + dt.timedelta(days=k) for k in range(-1, 3))  # 除夕, 初一–初三
        days.update((lunar["端午"], lunar["中秋"]))
    try:
        days.update(d for d, name in chinese_calendar.get_solar_terms(dt.date(year, 4, 1), dt.date(year, 4, 30))
                    if name == "清明")
    except Exception:  # noqa: BLE001 — a year beyond the package's solar terms: the fixed dates stay
        pass
    return frozenset(days)


@functools.lru_cache(maxsize=None)
def _package_is_workday(d: dt.date) -> bool | None:
    """chinesecalendar's answer for a day (None: no notice for its year). Cached: the package checks
    each date against its whole table (0.03 ms), and a night asks of the same few weeks once per
    suspect issued — 56,000 times for 2,000 suspects."""
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        return None


def _as_date(d: dt.date | dt.datetime) -> dt.date:
    return d.date() if isinstance(d, dt.datetime) else d


def _package_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(dt.date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


@dataclass(frozen=True)
class WorkCalendar:
    """chinese_calendar's working days, with the days an office entered from a State Council
    notice: `holidays` (放假, off even on a weekday) and `adjusted_workdays` (调休上班, on even
    on a weekend). An entered day wins over the package (a correction); a year with any entered
    day counts as known, its other days by the week less the holidays the law fixes."""

    holidays: frozenset[dt.date] = frozenset()
    adjusted_workdays: frozenset[dt.date] = frozenset()

    @property
    def entered_years(self) -> frozenset[int]:
        return frozenset(d.year for d in self.holidays | self.adjusted_workdays)

    def knows(self, year: int) -> bool:
        return year in self.entered_years or _package_knows(year)

    def is_working_day(self, d: dt.date | dt.datetime) -> bool:
        d = _as_date(d)
        if d in self.holidays:
            return False
        if d in self.adjusted_workdays:
            return True
        workday = _package_is_workday(d)
        if workday is not None:
            return workday
        # No holiday notice for this year yet (or before 2004).
        if d.year not in self.entered_years:
            if not _warned_years:
                warnings.warn(
                    f"chinese_calendar has no holiday data for {d.year}; counting Monday–Friday as "
                    "working days, less the holidays the law fixes (元旦, 春节, 清明, 劳动节, 端午, 中秋, "
                    "国庆) but without the notice's 调休 and 补假: enter the State Council notice in "
                    "config casework.holidays and casework.adjusted_workdays, or update the "
                    "chinesecalendar package",
                    CalendarFallbackWarning,
                    stacklevel=2,
                )
            _warned_years.add(d.year)
        # off whatever the year's notice says, also where an office entered only part of it
        return d.weekday() < 5 and d not in _statutory_days_off(d.year)

    def add_working_days(self, d: dt.date | dt.datetime, n: int) -> dt.date:
        """The n-th working day after d (d itself never counts, as in “20 working days after issue”).

        n = 0 returns d unchanged; a negative n counts backwards.
        """
        d = _as_date(d)
        step = 1 if n >= 0 else -1
        remaining = abs(int(n))
        while remaining:
            d += dt.timedelta(days=step)
            if self.is_working_day(d):
                remaining -= 1
        return d

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days after start up to and including end (0 when end <= start)."""
        start, end = _as_date(start), _as_date(end)
        count = 0
        d = start
        while d < end:
            d += dt.timedelta(days=1)
            if self.is_working_day(d):
                count += 1
        return count

    def unknown_years(self, dates: Iterable[dt.date | None]) -> list[int]:
        """The years of `dates` counted Monday–Friday for want of a holiday notice."""
        return sorted(y for y in {_as_date(d).year for d in dates if d is not None} if not self.knows(y))


def _days(entries: Any, key: str) -> set[dt.date]:
    """Dates from config: YAML dates, 'YYYY-MM-DD' texts, or 'YYYY-MM-DD..YYYY-MM-DD' ranges
    (as a notice writes 10月1日至7日), in a list."""
    if entries is None:
        return set()
    if not isinstance(entries, list):
        raise ValueError(f"casework.{key}: expected a list of dates (YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD)")
    out: set[dt.date] = set()
    for i, entry in enumerate(entries):
        if isinstance(entry, dt.date) and not isinstance(entry, dt.datetime):
            out.add(entry)
            continue
        text = str(entry).strip()
        try:
            first, dots, last = text.partition("..")
            start = dt.date.fromisoformat(first.strip())
            # '2027-02-06..' (the end left out) is no one-day holiday
            end = dt.date.fromisoformat(last.strip()) if dots else start
        except ValueError:
            raise ValueError(f"casework.{key}[{i}]: {text!r} is not a date "
                             "(YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD)") from None
        if end < start:
            raise ValueError(f"casework.{key}[{i}]: {text!r} ends before it starts")
        if (end - start).days > 31:
            raise ValueError(f"casework.{key}[{i}]: {text!r} spans more than a month: not a holiday")
        out.update(start + dt.timedelta(days=k) for k in range((end - start).days + 1))
    return out


def _working_day_without_entries(d: dt.date) -> bool:
    """Whether the package (or, for a year it does not know, the week less the days the law fixes)
    counts d as a working day — without a warning."""
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        return d.weekday() < 5 and d not in _statutory_days_off(d.year)


def calendar_from(config: Any = None) -> WorkCalendar:
    """The working-day calendar of a config (Config or None); ValueError naming the key when an
    entry is not a date or a day is entered both as holiday and as adjusted working day."""
    section = (config.get("casework") if config is not None and hasattr(config, "get") else None) or {}
    holidays = _days(section.get("holidays"), "holidays")
    adjusted = _days(section.get("adjusted_workdays"), "adjusted_workdays")
    both = sorted(holidays & adjusted)
    if both:
        raise ValueError(f"casework.holidays and casework.adjusted_workdays both list {both[0].isoformat()}")
    # 调休上班 is a weekend day worked: a weekday that is a working day anyway is most likely the
    # weekend day meant, typed wrong (which then counts as a day off). A weekday the package has as
    # a holiday may be listed: an office correcting the package.
    weekdays = sorted(d for d in adjusted if d.weekday() < 5 and _working_day_without_entries(d))
    if weekdays:
        day = weekdays[0]
        raise ValueError(f"casework.adjusted_workdays lists {day.isoformat()}, a {day.strftime('%A')} and a working "
                         "day anyway: an adjusted working day (调休上班) is a Saturday or Sunday worked")
    return WorkCalendar(frozenset(holidays), frozenset(adjusted))


# The package's calendar alone, without a config's days (the tests' and docs/design.md's seam).
_PACKAGE_ONLY = WorkCalendar()


def is_working_day(d: dt.date | dt.datetime) -> bool:
    return _PACKAGE_ONLY.is_working_day(d)


def add_working_days(d: dt.date | dt.datetime, n: int) -> dt.date:
    return _PACKAGE_ONLY.add_working_days(d, n)


def working_days_between(start: dt.date, end: dt.date) -> int:
    return _PACKAGE_ONLY.working_days_between(start, end)
