"""数据报送 of the feeds without a month (deaths, custody, account statements, contributions, the
register): a feed — or one sender of it — silent late_delivery_days working days longer than the
longest of its last six intervals is said late, by the real nightly flow (its summary, runs.summary,
the dashboard); not over a holiday, not an agency that no longer pays, not a feed without a rhythm."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines import arrivals, cli
from pipelines.flows import nightly_flow
from pipelines.normalise import check_digit
from pipelines.runsummary import format_summary
from pipelines.workdays import WorkCalendar

pytestmark = pytest.mark.usefixtures("prefect_api")

AGENCIES = {"360702001": "章贡区社保局", "360703001": "南康区社保局"}


def _id(n: int) -> str:
    first17 = f"36070219{n:03d}1010{n:02d}1"[:17]
    return first17 + check_digit(first17)


def _write(path: Path, header: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


DEATHS = ["person_id", "name", "death_date", "source", "cremated_on"]
STATEMENTS = ["txn_id", "account_no", "account_type", "agency_code", "txn_at", "direction", "amount",
              "counterparty_account", "counterparty_name", "counterparty_kind", "memo"]


def _deaths(inbox: Path, night: str, sources: list[str], first: int, corrected: list[dict] = ()) -> None:
    """One death a source, people not paid by anyone (nothing to find, only the feed)."""
    _write(inbox / night / f"deaths_360700_{night}.csv", DEATHS,
           [{"person_id": _id(first + i), "name": "王某", "death_date": night, "source": s, "cremated_on": ""}
            for i, s in enumerate(sources)] + list(corrected))


def _statements(inbox: Path, night: str, agencies: list[str]) -> None:
    """A collection into each agency's income account (收入户, 对公: nothing to find)."""
    _write(inbox / night / f"fund_transactions_360700_{night}.csv", STATEMENTS,
           [{"txn_id": f"T{night}{a}", "account_no": f"3607{a}", "account_type": "收入户", "agency_code": a,
             "txn_at": f"{night} 10:00:00", "direction": "收", "amount": "1000.00", "counterparty_account": "",
             "counterparty_name": "某公司", "counterparty_kind": "对公", "memo": "保费收入"} for a in agencies])


def _payments(inbox: Path, night: str, agencies: list[str], period: str) -> None:
    _write(inbox / night / f"payments_360700_{period}_{night}.csv",
           ["payment_id", "person_id", "name", "insurance_type", "item", "period", "paid_on", "amount", "bank_account",
            "agency_code", "handled_by", "reviewed_by", "reviewed_at"],
           [{"payment_id": f"P{period}{a}", "person_id": _id(900 + i), "name": "张某", "insurance_type": "110",
             "item": "基本养老金", "period": period, "paid_on": f"{period[:4]}-{period[4:]}-10", "amount": "2000.00",
             "bank_account": f"621700009{i:05d}", "agency_code": a, "handled_by": "甲", "reviewed_by": "乙",
             "reviewed_at": f"{period[:4]}-{period[4:]}-10"} for i, a in enumerate(agencies)])


def _agencies(inbox: Path, night: str) -> None:
    _write(inbox / night / "agencies_360700.csv", ["agency_code", "agency_name", "region_code", "parent_code"],
           [{"agency_code": c, "agency_name": n, "region_code": c[:6], "parent_code": "360700"}
            for c, n in AGENCIES.items()])


def _night(inbox: Path, tmp: Path, as_of: str, grace: int | None = 2) -> dict:
    config = tmp / "fw.yaml"
    config.write_text(f"late_delivery_days: {json.dumps(grace)}\n", encoding="utf-8")
    return nightly_flow(inbox=str(inbox), db=str(tmp / "fw.duckdb"), out=str(tmp / "out"),
                        as_of=date.fromisoformat(as_of), config_path=str(config), progress=False)


def _section_seven(out: Path) -> str:
    page = (out / "dashboard.html").read_text(encoding="utf-8")
    return page[page.index("七、数据报送"):page.index("口径：")]


def test_a_source_that_stops_then_the_whole_deaths_feed_is_said_late_by_working_days_past_its_rhythm(tmp_path):
    inbox = tmp_path / "inbox"
    _agencies(inbox, "2026-11-02")
    # four weekly deliveries (Mondays) from 公安 and 民政: intervals of 5 working days
    # (the third corrects the second's 民政 row: the second's night stays one of 民政's, as recorded then)
    corrected = [{"person_id": _id(11), "name": "王某", "death_date": "2026-11-08", "source": "民政", "cremated_on": ""}]
    for k, night in enumerate(["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]):
        _deaths(inbox, night, ["公安", "民政"], first=10 * k, corrected=corrected if k == 2 else [])
        s = _night(inbox, tmp_path, night)
        if k == 2:
            assert s["arrivals"]["feeds"] == 0  # three deliveries: no rhythm yet
    assert s["arrivals"]["feeds"] == 3 and s["arrivals"]["late_feeds"] == []  # deaths, from 公安, from 民政
    # 民政 stops; 公安 goes on
    _deaths(inbox, "2026-11-30", ["公安"], first=50)
    _night(inbox, tmp_path, "2026-11-30")
    # 7 working days after 11-23 (5 + 2): not yet
    assert _night(inbox, tmp_path, "2026-12-02")["arrivals"]["late_feeds"] == []
    assert "3 项均在其近六次报送间隔内报送" in _section_seven(tmp_path / "out")
    _deaths(inbox, "2026-12-07", ["公安"], first=60)
    s = _night(inbox, tmp_path, "2026-12-07")
    assert s["arrivals"]["late_feeds"] == [
        {"extract": "deaths", "extract_name": "死亡火化信息", "part": "民政", "part_name": None,
         "last_on": "2026-11-23", "silent_days": 10, "longest_days": 5, "due_by": "2026-12-02"}]
    assert ("warning: deaths 死亡火化信息 from 民政: no new rows since 2026-11-23, 10 working day(s) (its intervals at "
            "most 5; due by 2026-12-02)") in format_summary(s)
    section = _section_seven(tmp_path / "out")
    assert "下列数据停报已超过其近六次报送的最长间隔" in section and ">民政</td>" in section

    # a file with its header alone is a delivery ("nothing today") of the feed, not of 民政
    _write(inbox / "2026-12-08" / "deaths_360700_empty.csv", DEATHS, [])
    s = _night(inbox, tmp_path, "2026-12-08")
    assert [(f["part"], f["last_on"]) for f in s["arrivals"]["late_feeds"]] == [("民政", "2026-11-23")]
    # then nothing at all: the feed is said, once, not again by each source
    s = _night(inbox, tmp_path, "2026-12-18")
    assert [(f["extract"], f["part"], f["last_on"], f["silent_days"], f["longest_days"])
            for f in s["arrivals"]["late_feeds"]] == [("deaths", None, "2026-12-08", 8, 5)]
    assert "warning: deaths 死亡火化信息: nothing since 2026-12-08, 8 working day(s)" in format_summary(s)
    assert ">全部</td>" in _section_seven(tmp_path / "out")

    # a page drawn for an earlier night says what that night knew
    assert cli.main(["report", "--db", str(tmp_path / "fw.duckdb"), "--out", str(tmp_path / "then"),
                     "--as-of", "2026-12-02"]) == 0
    assert "3 项均在其近六次报送间隔内报送" in _section_seven(tmp_path / "then")
    con = duckdb.connect(str(tmp_path / "fw.duckdb"), read_only=True)
    try:
        # a year of silence: forgotten
        assert arrivals.check_feeds(con, date(2027, 12, 20), 2, WorkCalendar()) == ([], 0, [])
    finally:
        con.close()


def test_a_weekly_feed_over_the_national_day_holiday_is_not_late_and_off_with_null(tmp_path):
    inbox = tmp_path / "inbox"
    for k, day in enumerate(["2026-09-07", "2026-09-14", "2026-09-21", "2026-09-28"]):
        _deaths(inbox, day, ["公安"], first=10 * k)
    _night(inbox, tmp_path, "2026-09-28")  # four weekly folders, read in one night: each by its folder's day
    # 11 calendar days after 09-28, 4 working days (国庆 2026-10-01..07; 10-10 a 调休 Saturday counts)
    con = duckdb.connect(str(tmp_path / "fw.duckdb"), read_only=True)
    try:
        assert arrivals.check_feeds(con, date(2026, 10, 9), 2, WorkCalendar())[:2] == ([], 2)
    finally:
        con.close()
    s = _night(inbox, tmp_path, "2026-10-16", grace=None)
    assert "arrivals" not in s and "nothing since" not in format_summary(s)
    s = _night(inbox, tmp_path, "2026-10-19")
    assert [(f["extract"], f["part"], f["silent_days"]) for f in s["arrivals"]["late_feeds"]] == [("deaths", None, 11)]


def test_an_agencys_statements_are_waited_for_while_it_pays_and_its_code_is_masked(tmp_path):
    inbox = tmp_path / "inbox"
    _agencies(inbox, "2026-11-02")
    paying, merged = list(AGENCIES)
    _payments(inbox, "2026-11-02", [paying, merged], "202609")  # the merged agency's last payments: 2026-09-10
    _payments(inbox, "2026-11-02", [paying], "202611")
    for day in ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]:
        _statements(inbox, day, [paying, merged])
    s = _night(inbox, tmp_path, "2026-11-23")
    # the feed and the paying agency's statements (the merged one paid nothing since 09-10: not waited for)
    assert s["arrivals"]["feeds"] == 2
    _statements(inbox, "2026-11-30", [merged])
    _statements(inbox, "2026-12-07", [merged])
    s = _night(inbox, tmp_path, "2026-12-07")
    assert [(f["extract"], f["part"], f["part_name"], f["last_on"]) for f in s["arrivals"]["late_feeds"]] == [
        ("fund_transactions", paying, AGENCIES[paying], "2026-11-23")]
    assert f"warning: fund_transactions 基金账户交易流水 from {paying} {AGENCIES[paying]}: no new rows since 2026-11-23" \
        in format_summary(s)


CUSTODY = ["person_id", "name", "sentence_type", "custody_start", "custody_end", "facility"]


def test_the_same_file_sent_again_each_week_keeps_the_feed_alive_until_it_stops(tmp_path):
    inbox = tmp_path / "inbox"
    for k, day in enumerate(["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]):
        _write(inbox / day / "imprisonments_360700.csv", CUSTODY,
               [{"person_id": _id(200 + k), "name": "李某", "sentence_type": "有期徒刑", "custody_start": day,
                 "custody_end": "", "facility": "某监狱"}])
    _night(inbox, tmp_path, "2026-11-23")
    # "nothing this week": the header alone, the same bytes each week (skipped as already ingested)
    for night in ["2026-11-30", "2026-12-07", "2026-12-14"]:
        _write(inbox / night / "imprisonments_360700.csv", CUSTODY, [])
        s = _night(inbox, tmp_path, night)
    con = duckdb.connect(str(tmp_path / "fw.duckdb"), read_only=True)
    try:
        assert arrivals.check_feeds(con, date(2026, 12, 21), 2, WorkCalendar())[:2] == ([], 1)
    finally:
        con.close()
    s = _night(inbox, tmp_path, "2026-12-28")
    assert [(f["extract"], f["last_on"], f["silent_days"]) for f in s["arrivals"]["late_feeds"]] == [
        ("imprisonments", "2026-12-14", 10)]
    con = duckdb.connect(str(tmp_path / "fw.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from ingest_copies where extract = 'imprisonments'").fetchall() == [(2,)]
    finally:
        con.close()


SEVEN = [f"36070{k}001" for k in range(2, 9)]


def _workdays_from(first: date, n: int) -> list[str]:
    from pipelines.workdays import add_working_days

    start = add_working_days(first, -1)
    return [add_working_days(start, k).isoformat() for k in range(1, n + 1)]


def test_seven_agencies_sending_on_seven_days_of_each_month_are_each_held_to_their_month(tmp_path):
    """The probe's 'staggered senders': the extract as a whole comes in on seven working days in a row
    each month (a rhythm of one day), so the whole is never said for its quiet weeks — only an agency that
    misses its month. Read in one night: each delivery's day is its folder's date."""
    inbox = tmp_path / "inbox"
    _payments(inbox, "2026-11-20", SEVEN, "202611")  # all seven pay (paid 2026-11-10)
    for month in (date(2026, 8, 3), date(2026, 9, 1), date(2026, 10, 9), date(2026, 11, 2)):
        for agency, day in zip(SEVEN, _workdays_from(month, 7)):
            _statements(inbox, day, [agency])
    s = _night(inbox, tmp_path, "2026-11-20")
    assert s["arrivals"]["feeds"] == 8 and s["arrivals"]["late_feeds"] == []  # the extract and its seven agencies
    # December: the last agency does not send its month
    for agency, day in zip(SEVEN[:6], _workdays_from(date(2026, 12, 1), 6)):
        _statements(inbox, day, [agency])
    s = _night(inbox, tmp_path, "2026-12-28")
    assert [(f["extract"], f["part"], f["last_on"]) for f in s["arrivals"]["late_feeds"]] == [
        ("fund_transactions", SEVEN[6], _workdays_from(date(2026, 11, 2), 7)[-1])]


def test_a_cumulative_re_export_is_no_news_from_a_sender_that_only_repeats_its_rows(tmp_path):
    """Each week's deaths file holds every earlier row again and the week's new ones; 民政's last new
    rows came on 10-26 (its old rows re-sent reformatted from 11-16 are no news: their keys were stored).
    Its earlier weeks stay its own (ingest_senders, recorded as read)."""
    inbox = tmp_path / "inbox"
    rows: list[dict] = []
    for k, day in enumerate(["2026-10-05", "2026-10-12", "2026-10-19", "2026-10-26", "2026-11-02", "2026-11-09",
                             "2026-11-16", "2026-11-23"]):
        sources = ["公安", "民政"] if k < 4 else ["公安"]
        rows += [{"person_id": _id(300 + 10 * k + i), "name": "王某", "death_date": day, "source": src,
                  "cremated_on": ""} for i, src in enumerate(sources)]
        if k == 6:
            rows = [{**r, "name": "王*"} if r["source"] == "民政" else r for r in rows]
        _write(inbox / day / "deaths_360700_all.csv", DEATHS, rows)
    s = _night(inbox, tmp_path, "2026-11-23")
    assert s["arrivals"]["feeds"] == 3
    assert [(f["part"], f["last_on"], f["longest_days"]) for f in s["arrivals"]["late_feeds"]] == [
        ("民政", "2026-10-26", 5)]
    con = duckdb.connect(str(tmp_path / "fw.duckdb"), read_only=True)
    try:
        recorded = con.execute("""select l.delivery, s.sender, s.new_rows from ingest_senders s
                                  join ingest_ledger l using (file_hash) order by all""").fetchall()
    finally:
        con.close()
    assert recorded[-3:] == [("2026-11-09", "公安", 1), ("2026-11-16", "公安", 1), ("2026-11-23", "公安", 1)]
    assert ("2026-10-26", "民政", 1) in recorded and len(recorded) == 12


def test_a_year_without_a_holiday_notice_is_said_beside_the_feeds(tmp_path):
    inbox = tmp_path / "inbox"
    for k, day in enumerate(["2027-01-04", "2027-01-11", "2027-01-18", "2027-01-25"]):
        _deaths(inbox, day, ["公安"], first=400 + k)
    s = _night(inbox, tmp_path, "2027-02-01")
    assert s["arrivals"]["feeds"] == 2
    unknown = [] if WorkCalendar().knows(2027) else [2027]
    assert s["arrivals"]["calendar_assumed_years"] == unknown
    if unknown:
        assert "data arrivals: no holiday notice for 2027" in format_summary(s)


def test_an_older_stores_senders_are_recorded_from_its_rows_once(tmp_path):
    """Each key counted for the first file that brought it: the second corrects the first's 公安 row
    (no news from 公安; the first file named by the row it replaced) and brings one new 民政 row."""
    inbox = tmp_path / "inbox"
    _deaths(inbox, "2026-11-02", ["公安", "民政"], first=500)
    _write(inbox / "2026-11-09" / "deaths_360700_2026-11-09.csv", DEATHS,
           [{"person_id": _id(500), "name": "王某", "death_date": "2026-11-01", "source": "公安", "cremated_on": ""},
            {"person_id": _id(511), "name": "王某", "death_date": "2026-11-09", "source": "民政", "cremated_on": ""}])
    _night(inbox, tmp_path, "2026-11-09")
    db = tmp_path / "fw.duckdb"
    con = duckdb.connect(str(db))
    try:
        as_read = con.execute("select l.delivery, s.sender, s.new_rows from ingest_senders s "
                              "join ingest_ledger l using (file_hash) order by all").fetchall()
        assert as_read == [("2026-11-02", "公安", 1), ("2026-11-02", "民政", 1), ("2026-11-09", "民政", 1)]
        # as an older version left it: no senders recorded, the conversion not yet run
        con.execute("delete from ingest_senders")
        con.execute("delete from store_migrations where name = 'ingest_senders'")
    finally:
        con.close()
    from pipelines import store

    con = store.connect(db)
    try:
        assert con.execute("select l.delivery, s.sender, s.new_rows from ingest_senders s "
                           "join ingest_ledger l using (file_hash) order by all").fetchall() == as_read
        assert con.execute("select count(*) from store_migrations where name = 'ingest_senders'").fetchall() == [(1,)]
    finally:
        con.close()


def test_agencies_on_seven_days_of_their_first_two_months_are_no_false_alarm(tmp_path):
    inbox = tmp_path / "inbox"
    _payments(inbox, "2026-11-20", SEVEN, "202611")
    for month in (date(2026, 10, 9), date(2026, 11, 2)):
        for agency, day in zip(SEVEN, _workdays_from(month, 7)):
            _statements(inbox, day, [agency])
    # no agency has four deliveries yet: the whole is held to its last months (a quiet fortnight in them)
    assert _night(inbox, tmp_path, "2026-11-20")["arrivals"]["late_feeds"] == []
    assert _night(inbox, tmp_path, "2026-11-27")["arrivals"]["late_feeds"] == []
    # then all stop: the whole is late, by the same rhythm however long after (its months as they stay)
    con = duckdb.connect(str(tmp_path / "fw.duckdb"), read_only=True)
    try:
        said = [arrivals.check_feeds(con, day, 5, WorkCalendar())[0] for day in (date(2026, 12, 21), date(2027, 3, 1))]
    finally:
        con.close()
    assert [[(f.part, f.longest_days, f.due_by) for f in late] for late in said] == \
        [[(None, 11, date(2026, 12, 2))]] * 2


def test_a_folder_named_for_a_day_behind_the_feed_came_in_when_it_was_read(tmp_path):
    """A year typed wrong (2025-11-30), or a 补报 named for its month: not a day of the feed's history."""
    inbox = tmp_path / "inbox"
    for k, day in enumerate(["2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16"]):
        _deaths(inbox, day, ["公安"], first=600 + k)
    s = _night(inbox, tmp_path, "2026-11-16")  # back-loaded: the folders' days are its history
    assert s["arrivals"]["feeds"] == 2
    _deaths(inbox, "2026-11-23", ["公安"], first=610)
    _night(inbox, tmp_path, "2026-11-23")
    _deaths(inbox, "2025-11-30", ["公安"], first=620)
    _night(inbox, tmp_path, "2026-11-30")
    s = _night(inbox, tmp_path, "2026-12-15")
    assert [(f["part"], f["last_on"], f["longest_days"]) for f in s["arrivals"]["late_feeds"]] == [
        (None, "2026-11-30", 5)]


def test_a_statement_moved_to_another_agency_is_no_news_of_that_agency_and_leaves_the_first_its_own(tmp_path):
    inbox = tmp_path / "inbox"
    a, b = list(AGENCIES)
    _payments(inbox, "2026-10-26", [a, b], "202610")
    _payments(inbox, "2026-11-23", [a, b], "202611")
    for day in ["2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16"]:
        _statements(inbox, day, [a, b])
    _night(inbox, tmp_path, "2026-11-16")
    # A's new statement, B's, and A's first one corrected to B
    _statements(inbox, "2026-11-23", [a, b])
    moved = inbox / "2026-11-23" / "fund_transactions_360700_moved.csv"
    _statements(inbox, "2026-10-26", [a])
    (inbox / "2026-10-26" / "fund_transactions_360700_2026-10-26.csv").rename(moved)
    _write(moved, STATEMENTS, [{**row, "agency_code": b} for row in csv.DictReader(moved.open(encoding="utf-8"))])
    assert _night(inbox, tmp_path, "2026-11-30")["arrivals"]["late_feeds"] == []
    con = duckdb.connect(str(tmp_path / "fw.duckdb"), read_only=True)
    try:
        assert con.execute("""select s.sender, sum(s.new_rows) from ingest_senders s join ingest_ledger l using (file_hash)
                              where l.delivery = '2026-11-23' group by all order by all""").fetchall() == [(a, 1), (b, 1)]
    finally:
        con.close()


def test_nights_run_afterwards_for_the_days_missed_date_each_folder_by_its_own_day(tmp_path):
    """No nights for two weeks, folders still coming; the office then runs the missed nights with --as-of
    (the first reads every folder dated up to the day it ran)."""
    from pipelines.workdays import add_working_days

    inbox = tmp_path / "inbox"
    days = [add_working_days(date(2026, 11, 1), k) for k in range(1, 26)]  # working days 11-02 .. 12-04
    for k, day in enumerate(days[:15]):
        _deaths(inbox, day.isoformat(), ["公安"], first=700 + k)
    _night(inbox, tmp_path, days[14].isoformat())  # 11-20
    for k, day in enumerate(days[15:], start=15):
        _deaths(inbox, day.isoformat(), ["公安"], first=700 + k)
    s = _night(inbox, tmp_path, "2026-11-23")
    assert s["arrivals"]["late_feeds"] == []
    s = _night(inbox, tmp_path, "2026-12-04")
    assert s["arrivals"]["late_feeds"] == [] and s["arrivals"]["feeds"] == 2
