"""Working days by the Chinese calendar: 法定节假日 off, 调休 weekend days on (State Council notice 2026)."""

from __future__ import annotations

import datetime as dt
import warnings

import chinese_calendar
import pytest
import yaml

from pipelines import workdays
from pipelines.config import load_config
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


def test_beyond_the_calendar_years_the_holidays_on_fixed_dates_are_still_off(monkeypatch):
    """元旦, 劳动节 (two days), 国庆节 (three days) and 清明 fall on days known in advance by law,
    whatever a year's notice adds: a deadline issued in December 2026 does not count 1 January."""
    monkeypatch.setattr(workdays, "_warned_years", set())
    with pytest.warns(CalendarFallbackWarning):
        assert not is_working_day(D(2027, 1, 1))  # a Friday
    for off in (D(2027, 4, 5), D(2027, 10, 1), D(2030, 5, 2), D(2030, 10, 3), D(2030, 4, 5)):
        assert off.weekday() < 5 and not is_working_day(off), off
    assert is_working_day(D(2027, 1, 4)) and is_working_day(D(2030, 10, 4))  # the days after: Monday, Friday
    assert add_working_days(D(2026, 12, 31), 1) == D(2027, 1, 4)
    assert working_days_between(D(2027, 9, 30), D(2027, 10, 8)) == 5  # 4, 5, 6, 7, 8 October


def test_beyond_the_calendar_years_the_lunar_holidays_are_off_too(monkeypatch):
    """春节 (除夕 to 初三), 端午 and 中秋 fall on lunar dates known in advance: a deadline issued in
    January 2027 does not count the Spring Festival as working days (found by an outside check:
    2027-01-22 + 20 working days was 2027-02-19, counting 除夕 and 初三)."""
    monkeypatch.setattr(workdays, "_warned_years", set())
    with pytest.warns(CalendarFallbackWarning):
        assert not is_working_day(D(2027, 2, 5))  # 除夕, a Friday
    for off in (D(2027, 2, 8), D(2027, 6, 9), D(2027, 9, 15), D(2028, 1, 25), D(2028, 1, 27), D(2030, 6, 5)):
        assert off.weekday() < 5 and not is_working_day(off), off
    assert is_working_day(D(2027, 2, 4)) and is_working_day(D(2027, 2, 9))  # the days before and after
    # 22 January: 25–29 Jan 5, 1–4 Feb 4, (5–8 off), 9–12 Feb 4, 15–19 Feb 5, then the 22nd
    assert add_working_days(D(2027, 1, 22), 20) == D(2027, 2, 23)


def test_the_lunar_holiday_table_agrees_with_the_package_for_every_year_both_know():
    """The table carries 2008 (the year 端午 and 中秋 became holidays) to 2026 only to be checked here:
    each of its dates is a holiday in chinese_calendar (or a weekend, or inside 国庆). A consistency
    check, not a proof of each day (a date shifted inside a holiday block would pass): the dates
    come from python-lunardate's table and were checked against lunar-python by a reviewer for
    2008–2050 (2026-12-04); no lunar library is a dependency."""

    for year in range(2008, 2027):
        for name, day in workdays.lunar_holidays(year).items():
            on_holiday, _ = chinese_calendar.get_holiday_detail(day)
            assert on_holiday or day.weekday() >= 5, (year, name, day)
            if name == "春节":  # 初一 to 初三 are all off, whatever the weekday
                assert all(chinese_calendar.is_holiday(day + dt.timedelta(days=k)) for k in range(3)), (year, day)
    assert set(workdays.lunar_holidays(2050)) == {"春节", "端午", "中秋"} and workdays.lunar_holidays(2051) == {}


def test_a_deadline_running_into_an_unknown_year_still_lands_on_a_weekday(monkeypatch):
    monkeypatch.setattr(workdays, "_warned_years", set())
    with pytest.warns(CalendarFallbackWarning):
        deadline = add_working_days(D(2026, 12, 21), 20)
    assert deadline.year == 2027 and deadline.weekday() < 5


# -- a holiday notice entered in config (the package does not know 2027 yet) ------------------

# A notice as an office would enter it from config (the days are made up for the test: the real
# 2027 notice is whatever the State Council publishes).
NOTICE_2027 = {"casework": {"holidays": ["2027-01-01", "2027-02-06..2027-02-13"],
                            "adjusted_workdays": [D(2027, 2, 14)]}}


def _config_file(tmp_path, text: str):
    path = tmp_path / "fundwatch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_year_entered_from_the_notice_counts_its_holidays_and_adjusted_days_without_a_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(workdays, "_warned_years", set())
    config = load_config(_config_file(tmp_path, yaml.safe_dump(NOTICE_2027, allow_unicode=True)))
    cal = workdays.calendar_from(config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a year entered is known: no fallback warning
        assert not cal.is_working_day(D(2027, 1, 1))  # a Friday, entered as holiday
        assert not cal.is_working_day(D(2027, 2, 8))  # a Monday inside the entered range
        assert cal.is_working_day(D(2027, 2, 14))  # a Sunday, entered as 调休上班
        assert cal.is_working_day(D(2027, 2, 15))  # an ordinary Monday of the year
        # Friday 5 Feb + 1 working day: the holiday week is skipped, Sunday 14th is on.
        assert cal.add_working_days(D(2027, 2, 5), 1) == D(2027, 2, 14)
        assert cal.working_days_between(D(2027, 2, 5), D(2027, 2, 15)) == 2
    assert cal.unknown_years([D(2026, 12, 31), D(2027, 3, 1), D(2028, 1, 5), None]) == [2028]
    # a notice entered in part (no 清明, 劳动节, 国庆 entered): the holidays the law fixes stay off
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for off in (D(2027, 4, 5), D(2027, 10, 1)):
            assert not cal.is_working_day(off), off
    # The package's calendar alone knows nothing of the notice: only the law's 除夕 to 初三
    # (Friday 5 to Monday 8 February) are off, not the notice's days around them.
    with pytest.warns(CalendarFallbackWarning):
        assert add_working_days(D(2027, 2, 4), 1) == D(2027, 2, 9)


def test_an_entered_day_corrects_the_package_for_a_year_it_knows(tmp_path):
    config = load_config(_config_file(tmp_path, "casework:\n  adjusted_workdays: ['2026-10-01']\n"))
    cal = workdays.calendar_from(config)
    assert cal.is_working_day(D(2026, 10, 1)) and not is_working_day(D(2026, 10, 1))
    assert not cal.is_working_day(D(2026, 10, 2))  # the rest of the notice still applies


@pytest.mark.parametrize("entries, problem", [
    ("holidays: ['2027-02-30']", r"casework\.holidays\[0\]: '2027-02-30' is not a date"),
    ("holidays: ['2027-01-01', 'Spring Festival']", r"casework\.holidays\[1\]: 'Spring Festival' is not a date"),
    ("holidays: ['2027-02-13..2027-02-06']", r"casework\.holidays\[0\]: .* ends before it starts"),
    ("holidays: ['2027-01-01..2027-12-31']", r"spans more than a month"),
    ("holidays: '2027-01-01'", r"casework\.holidays: expected a list of dates"),
    ("holidays: ['2027-02-14']\n  adjusted_workdays: ['2027-02-14']", r"both list 2027-02-14"),
    # 2027-02-22, a Monday, typed for the Sunday 2027-02-21 (which would then be a day off)
    ("adjusted_workdays: ['2027-02-22']", r"casework\.adjusted_workdays lists 2027-02-22, a Monday and a working day"),
    ("adjusted_workdays: ['2026-11-25']", r"lists 2026-11-25, a Wednesday and a working day anyway"),
])
def test_a_mistyped_notice_in_config_is_refused_naming_the_file_and_the_entry(tmp_path, entries, problem):
    path = _config_file(tmp_path, f"casework:\n  {entries}\n")
    with pytest.raises(SystemExit, match=problem) as refused:
        load_config(path)
    assert str(path) in str(refused.value)
