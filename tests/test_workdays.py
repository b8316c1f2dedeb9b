"""Working days by the Chinese calendar: 法定节假日 off, 调休 weekend days on (State Council notice 2026)."""

from __future__ import annotations

import datetime as dt
import warnings

import chinese_calendar
import pytest

from pipelines import workdays
from pipelines.workdays import CalendarFallbackWarning, add_working_days, is_working_day, working_days_between

D = dt.date


def test_national_day_2026_is_a_holiday_even_on_a_weekday():
    assert D(2026, 10, 1).weekday() == 3  # a Thursday
    assert not is_working_day(D(2026, 10, 1))
    assert not is_working_day(D(2026, 10, 7))
    assert is_working_day(D(2026, 10, 8))


def test_adjusted_saturday_of_national_day_2026_is_a_working_day():
    # 调休: the package (the State Council notice) lists the 2026 weekend days that are worked.
    worked_weekends = [d for d in (D(2026, 1, 1) + dt.timedelta(n) for n in range(365))
                       if d.weekday() >= 5 and chinese_calendar.is_workday(d)]
    assert D(2026, 10, 10) in worked_weekends and D(2026, 2, 14) in worked_weekends
    for d in worked_weekends:
        assert is_working_day(d), d
    assert not is_working_day(D(2026, 10, 11))  # the Sunday after stays a rest day


def test_deadline_counts_over_national_day_and_its_adjusted_saturday():
    # 2026-09-30 (Wed) + 1 → 10-08, the holiday week skipped; the 3rd is the 调休 Saturday 10-10.
    assert add_working_days(D(2026, 9, 30), 1) == D(2026, 10, 8)
    assert add_working_days(D(2026, 9, 30), 3) == D(2026, 10, 10)
    assert add_working_days(D(2026, 9, 30), 5) == D(2026, 10, 13)


def test_deadline_counts_over_spring_festival_2026():
    # Friday 02-13 + 1 is the 调休 Saturday 02-14; then the festival runs 02-15 … 02-23.
    assert add_working_days(D(2026, 2, 13), 1) == D(2026, 2, 14)
    assert add_working_days(D(2026, 2, 13), 2) == D(2026, 2, 24)
    assert not is_working_day(D(2026, 2, 16))


def test_issue_day_itself_does_not_count_and_zero_days_is_the_same_day():
    assert add_working_days(D(2026, 11, 2), 0) == D(2026, 11, 2)
    assert add_working_days(D(2026, 11, 2), 1) == D(2026, 11, 3)  # Mon → Tue
    assert add_working_days(D(2026, 11, 6), 1) == D(2026, 11, 9)  # Fri → Mon
    assert add_working_days(dt.datetime(2026, 11, 6, 15, 30), 1) == D(2026, 11, 9)


def test_twenty_working_days_is_the_count_of_working_days_between():
    start = D(2026, 9, 21)
    end = add_working_days(start, 20)
    assert working_days_between(start, end) == 20
    assert is_working_day(end)
    assert (end - start).days > 28  # the National Day week lengthens it beyond four calendar weeks


def test_beyond_the_calendar_years_monday_to_friday_is_assumed_with_one_warning(monkeypatch):
    monkeypatch.setattr(workdays, "_warned_years", set())
    with pytest.warns(CalendarFallbackWarning, match="2030"):
        assert is_working_day(D(2030, 1, 7))  # a Monday
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: no second warning
        assert not is_working_day(D(2030, 1, 5))  # a Saturday
        assert add_working_days(D(2030, 1, 4), 1) == D(2030, 1, 7)


def test_a_deadline_running_into_an_unknown_year_still_lands_on_a_weekday(monkeypatch):
    monkeypatch.setattr(workdays, "_warned_years", set())
    with pytest.warns(CalendarFallbackWarning):
        deadline = add_working_days(D(2026, 12, 21), 20)
    assert deadline.year == 2027 and deadline.weekday() < 5
