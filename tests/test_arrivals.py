"""数据报送: an agency whose month of payments has not come in by the day its recent months did is said
late, by the real nightly flow (its summary, runs.summary, the dashboard) — and not when its people
moved to another agency, stopped or died, nor before late_delivery_days have passed."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines import arrivals
from pipelines.config import load_config
from pipelines.flows import nightly_flow
from pipelines.normalise import check_digit
from pipelines.runsummary import format_summary

pytestmark = pytest.mark.usefixtures("prefect_api")

AGENCIES = {"360702001": "章贡区社保局", "360703001": "南康区社保局", "360704001": "赣县区社保局"}
LATE = "360703001"


def _id(n: int) -> str:
    first17 = f"360702195{n:02d}1010{n:02d}1"[:17]
    return first17 + check_digit(first17)


# five pensioners an agency
PERSONS = {code: [_id(10 * i + k) for k in range(1, 6)] for i, code in enumerate(AGENCIES, start=1)}


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _payments(path: Path, periods: list[str], agencies, paid_by: dict[str, str] | None = None) -> None:
    rows = []
    for code in agencies:
        for person in PERSONS[code]:
            for period in periods:
                payer = (paid_by or {}).get(code, code)
                rows.append({"payment_id": f"P{period}{person[-6:]}{payer[-3:]}", "person_id": person, "name": "张某",
                             "insurance_type": "110", "item": "基本养老金", "period": period,
                             "paid_on": f"{period[:4]}-{period[4:]}-10", "amount": "2000.00",
                             "bank_account": f"62170000{person[-8:]}", "agency_code": payer, "handled_by": "甲",
                             "reviewed_by": "乙", "reviewed_at": f"{period[:4]}-{period[4:]}-10"})
    _write(path, rows)


def _first_delivery(inbox: Path, status: str = "正常") -> None:
    d = inbox / "2026-10-21"
    _write(d / "agencies_360700_202610.csv",
           [{"agency_code": c, "agency_name": n, "region_code": c[:6], "parent_code": "360700"} for c, n in AGENCIES.items()])
    _write(d / "beneficiaries_360700_202610.csv",
           [{"person_id": p, "name": "张某", "insurance_type": "110", "agency_code": c,
             "status": status if c == LATE else "正常", "status_date": "2026-10-15" if c == LATE and status != "正常" else "",
             "start_period": "201501", "bank_account": f"62170000{p[-8:]}", "last_certified_on": "2026-06-01"}
            for c in AGENCIES for p in PERSONS[c]])
    _payments(d / "payments_360700_202610.csv", ["202609", "202610"], AGENCIES)


def _night(inbox: Path, tmp: Path, as_of: str, config: Path | None = None) -> dict:
    return nightly_flow(inbox=str(inbox), db=str(tmp / "fw.duckdb"), out=str(tmp / "out"), as_of=date.fromisoformat(as_of),
                        config_path=str(config) if config else None, progress=False)


def _late_on(tmp: Path, *days: date) -> list[list[str]]:
    """The agencies a page drawn now for each day says late (arrivals.check on the store, read-only)."""
    stored = duckdb.connect(str(tmp / "fw.duckdb"), read_only=True)
    try:
        return [[a.agency_code for a in arrivals.check(stored, day, 5).late] for day in days]
    finally:
        stored.close()


def _section_seven(tmp: Path) -> str:
    page = (tmp / "out" / "dashboard.html").read_text(encoding="utf-8")
    return page[page.index("七、数据报送"):page.index("口径：")]


def test_an_agency_without_its_month_by_its_usual_day_is_said_late_after_the_grace_and_not_once_it_arrives(tmp_path):
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    _night(inbox, tmp_path, "2026-10-21")
    # November: two of three agencies deliver; a stray row paid for a month to come does not make it "the month"
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], [c for c in AGENCIES if c != LATE])
    _payments(inbox / "2026-11-21" / "payments_360702_stray.csv", ["202703"], ["360702001"])
    s = _night(inbox, tmp_path, "2026-11-21")
    assert not s["arrivals"]["late"] and s["arrivals"]["streams"] == 3  # November due today (its day: the 21st)
    assert "3 个险种·经办机构的待遇发放数据均按其近月报送日报送" in _section_seven(tmp_path)
    assert not _night(inbox, tmp_path, "2026-11-25")["arrivals"]["late"]  # 4 days < 5

    s = _night(inbox, tmp_path, "2026-11-26")  # 5 days: said
    assert s["arrivals"] == {
        "as_of": "2026-11-26", "streams": 3,
        "late": [{"agency_code": LATE, "agency_name": AGENCIES[LATE], "persons_owed": 5,
                  "streams": [{"insurance_type": "110", "insurance_name": "企业职工基本养老保险", "missing_period": "202611",
                               "expected_on": "2026-11-21", "last_period": "202610", "in_part": False,
                               "persons_last": 5, "persons_owed": 5}]}],
        "feeds": 0, "late_feeds": [], "calendar_assumed_years": []}  # the register came once: no rhythm yet
    text = format_summary(s)
    assert "data arrivals: 1 agency(ies) late with a month of payments, by the day their recent months came in" in text
    assert (f"warning: {LATE} {AGENCIES[LATE]}: 险种 110 202611 missing (last 202610, 5 owed), due 2026-11-21 — "
            "5 person(s)") in text
    section = _section_seven(tmp_path)
    assert AGENCIES[LATE] in section and "企业职工基本养老保险：202611 未报送（应于 2026-11-21 前报送），最近 202610" in section
    assert "请督促报送" in section
    stored = duckdb.connect(str(tmp_path / "fw.duckdb"), read_only=True)
    try:
        recorded = json.loads(stored.execute("select summary from runs where as_of = '2026-11-26'").fetchall()[0][0])
        # a page drawn for that night, later, says what the night knew (not what came after)
    finally:
        stored.close()
    assert recorded["arrivals"]["late"][0]["agency_code"] == LATE and recorded["late_delivery_days"] == 5

    _payments(inbox / "2026-11-27" / "payments_360703_202611.csv", ["202611"], [LATE])
    assert not _night(inbox, tmp_path, "2026-11-27")["arrivals"]["late"]
    assert "均按其近月报送日报送" in _section_seven(tmp_path)
    from pipelines import cli

    assert cli.main(["report", "--db", str(tmp_path / "fw.duckdb"), "--out", str(tmp_path / "then"),
                     "--as-of", "2026-11-26"]) == 0
    then = (tmp_path / "then" / "dashboard.html").read_text(encoding="utf-8")
    assert "202611 未报送" in then[then.index("七、数据报送"):]  # the delivery of 11-27 not counted


def test_a_month_in_a_folder_named_for_a_day_to_come_is_pointed_to_beside_the_late_agency(tmp_path):
    """The month came, in a folder whose year was mistyped (2027-11-21): left unread, its agency read
    late — said beside it now, not only in the warning lines above — and read once renamed."""
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    _night(inbox, tmp_path, "2026-10-21")
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], [c for c in AGENCIES if c != LATE])
    _payments(inbox / "2027-11-21" / "payments_360703_202611.csv", ["202611"], [LATE])
    s = _night(inbox, tmp_path, "2026-11-26")
    assert [a["agency_code"] for a in s["arrivals"]["late"]] == [LATE]
    lines = format_summary(s).splitlines()
    said = [i for i, line in enumerate(lines) if line.startswith(f"    warning: {LATE} ")]
    assert said and lines[said[-1] + 1] == ("  note: what is late may be in the deliveries named for a day after today, "
                                            "left unread: 2027-11-21 — look there before asking the sender")
    (inbox / "2027-11-21").rename(inbox / "2026-11-26")
    s = _night(inbox, tmp_path, "2026-11-27")
    assert not s["arrivals"]["late"] and "named for a day after today" not in format_summary(s)


@pytest.mark.parametrize("case", ["moved", "stopped", "died"])
def test_an_agency_whose_people_moved_stopped_or_died_is_not_waited_for(tmp_path, case):
    inbox = tmp_path / "inbox"
    _first_delivery(inbox, status="终止" if case == "stopped" else "正常")
    if case == "died":
        _write(inbox / "2026-10-21" / "deaths_360700_202610.csv",
               [{"person_id": p, "name": "张某", "death_date": "2026-10-20", "source": "民政", "cremated_on": ""}
                for p in PERSONS[LATE]])
    _night(inbox, tmp_path, "2026-10-21")
    # (机构改革: the late agency's people paid by another agency from November)
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], AGENCIES if case == "moved" else
              [c for c in AGENCIES if c != LATE], paid_by={LATE: "360704001"} if case == "moved" else None)
    _night(inbox, tmp_path, "2026-11-21")
    assert not _night(inbox, tmp_path, "2026-11-30")["arrivals"]["late"]
    assert "均按其近月报送日报送" in _section_seven(tmp_path)


def test_late_delivery_days_null_switches_it_off_and_report_counts_as_the_night_ran(tmp_path):
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    config = tmp_path / "fw.yaml"
    config.write_text("late_delivery_days: null\n", encoding="utf-8")
    _night(inbox, tmp_path, "2026-10-21", config)
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], [c for c in AGENCIES if c != LATE])
    _night(inbox, tmp_path, "2026-11-21", config)
    s = _night(inbox, tmp_path, "2026-11-30", config)
    assert "arrivals" not in s and s["late_delivery_days"] is None
    assert "未检查" in _section_seven(tmp_path)
    # `fundwatch report` without --config counts as the last night did (off), not by the default 5 days
    from pipelines import cli

    assert cli.main(["report", "--db", str(tmp_path / "fw.duckdb"), "--out", str(tmp_path / "out")]) == 0
    assert "未检查" in _section_seven(tmp_path)
    con = duckdb.connect(str(tmp_path / "fw.duckdb"), read_only=True)
    try:
        late = arrivals.check(con, date(2026, 11, 30), 5).late  # the store says so when asked
    finally:
        con.close()
    assert [(s.agency_code, s.missing_period, s.persons_owed) for s in late] == [(LATE, "202611", 5)]


@pytest.mark.parametrize("value", [-1, 2.5, "five", 367, True])
def test_late_delivery_days_must_be_whole_days(tmp_path, value):
    config = tmp_path / "fw.yaml"
    config.write_text(f"late_delivery_days: {json.dumps(value)}\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="late_delivery_days: expected whole days from 0 to 366, or null"):
        load_config(config)
    assert load_config(None)["late_delivery_days"] == 5


def test_the_probes_cases_an_advance_row_a_month_in_part_a_later_death_an_id_in_a_name_and_a_year(tmp_path):
    """From a regression probe: an advance row weeks before started the grace of a month others had not
    delivered yet; one row of a month hid the rest missing; a death in the missing month (payable) or a
    suspension after it dropped people from the count; an agency silent for a quarter was forgotten; an
    ID number in an agency's name was shown; a page drawn months after the last delivery said all was in."""
    # (the advance row: an agency's month paid ahead is its own; the others are held to their own days)
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    named = AGENCIES[LATE] + " 360702194001018888"
    rows = (inbox / "2026-10-21" / "agencies_360700_202610.csv").read_text(encoding="utf-8")
    (inbox / "2026-10-21" / "agencies_360700_202610.csv").write_text(rows.replace(AGENCIES[LATE], named), encoding="utf-8")
    _night(inbox, tmp_path, "2026-10-21")
    on_time = [c for c in AGENCIES if c != LATE]
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], on_time)
    _payments(inbox / "2026-11-21" / "payments_360702_202612_ahead.csv", ["202612"], ["360702001"])  # paid ahead
    late_dead = PERSONS[LATE][0]
    _write(inbox / "2026-11-21" / "deaths_360700_202611.csv",  # died in the missing month: it is still owed
           [{"person_id": late_dead, "name": "张某", "death_date": "2026-11-15", "source": "民政", "cremated_on": ""}])
    _night(inbox, tmp_path, "2026-11-21")
    s = _night(inbox, tmp_path, "2026-12-02")
    (late,) = s["arrivals"]["late"]
    assert (late["agency_code"], late["persons_owed"]) == (LATE, 5)
    assert late["agency_name"] != named and "360702194001018888" not in format_summary(s)
    assert "360702194001018888" not in _section_seven(tmp_path)

    # December: the agency that paid it ahead is not late for January; the one on its day is not late either
    _payments(inbox / "2026-12-21" / "payments_360700_202612.csv", ["202612"], ["360704001"])
    s = _night(inbox, tmp_path, "2026-12-21")
    assert [(a["agency_code"], a["streams"][0]["missing_period"]) for a in s["arrivals"]["late"]] == [(LATE, "202611")]

    # one row of a month is not the month: 360704001 pays one of its five pensioners for 202701
    _payments(inbox / "2027-01-21" / "payments_360700_202701.csv", ["202701"], ["360702001"])
    _payments(inbox / "2027-01-21" / "payments_360704_202701_part.csv", ["202701"], ["360704001"])
    part = inbox / "2027-01-21" / "payments_360704_202701_part.csv"
    part.write_text("\n".join(part.read_text(encoding="utf-8").splitlines()[:2]) + "\n", encoding="utf-8")
    _night(inbox, tmp_path, "2027-01-21")
    s = _night(inbox, tmp_path, "2027-01-27")
    late = {a["agency_code"]: a for a in s["arrivals"]["late"]}
    assert late["360704001"]["streams"] == [{"insurance_type": "110", "insurance_name": "企业职工基本养老保险",
                                            "missing_period": "202701", "expected_on": "2027-01-21",
                                            "last_period": "202701", "in_part": True, "persons_last": 5,
                                            "persons_owed": 4}], late
    assert "110 202701 in part (4 of 5 owed)" in format_summary(s)
    assert "202701 仅部分报送，4/5 人未见" in _section_seven(tmp_path)
    assert late[LATE]["streams"][0]["last_period"] == "202610"  # still said, three months on

    for month, day in (("202702", "2027-02-21"), ("202703", "2027-03-21"), ("202704", "2027-04-21")):
        _payments(inbox / day / f"payments_360700_{month}.csv", [month], on_time)
        _night(inbox, tmp_path, day)
    s = _night(inbox, tmp_path, "2027-04-27")
    assert [a["agency_code"] for a in s["arrivals"]["late"]] == [LATE]  # half a year on, not forgotten

    # nothing more comes: a page drawn in July says every agency is late, not that all is in
    from pipelines import cli

    assert cli.main(["report", "--db", str(tmp_path / "fw.duckdb"), "--out", str(tmp_path / "july"),
                     "--as-of", "2027-07-01"]) == 0
    july = (tmp_path / "july" / "dashboard.html").read_text(encoding="utf-8")
    july = july[july.index("七、数据报送"):july.index("口径：")]
    assert "202705 未报送（应于 2027-05-21 前报送）" in july and "均按其近月报送日报送" not in july
    assert all(code in july for code in AGENCIES)


def test_a_month_paid_ahead_a_person_short_a_merger_and_a_reversed_month_as_a_second_probe_found_them(tmp_path):
    """From a second probe: most agencies paying next month ahead (春节) made the month to come the one
    owed, every other stream late; one person of a small stream missing (a death recorded a month
    late) was a late delivery; a merger that cut the streams below half hid the month and raised a
    stall; a month reversed to nothing counted as delivered; the stall came from the calendar month."""
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    _night(inbox, tmp_path, "2026-10-21")
    on_time = [c for c in AGENCIES if c != LATE]
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], AGENCIES)
    _payments(inbox / "2026-11-21" / "payments_360700_202612_ahead.csv", ["202612"], on_time)
    one_short = inbox / "2026-11-21" / "payments_360700_202611.csv"  # the late agency's last pensioner not paid
    kept = [line for line in one_short.read_text(encoding="utf-8").splitlines() if PERSONS[LATE][-1] not in line]
    one_short.write_text("\n".join(kept) + "\n", encoding="utf-8")
    _night(inbox, tmp_path, "2026-11-21")
    s = _night(inbox, tmp_path, "2026-11-27")
    assert not s["arrivals"]["late"]  # December paid ahead is not owed yet; one person short of five is churn

    # the late agency's November reversed whole (冲正), and its December never sent
    rows = [{"payment_id": f"R{p[-6:]}", "person_id": p, "name": "张某", "insurance_type": "110", "item": "基本养老金",
             "period": "202611", "paid_on": "2026-12-02", "amount": "-2000.00", "bank_account": f"62170000{p[-8:]}",
             "agency_code": LATE, "handled_by": "甲", "reviewed_by": "乙", "reviewed_at": "2026-12-02"}
            for p in PERSONS[LATE][:-1]]
    _write(inbox / "2026-12-03" / "payments_360703_202611_reversal.csv", rows)
    _night(inbox, tmp_path, "2026-12-03")
    s = _night(inbox, tmp_path, "2026-12-28")
    (late,) = s["arrivals"]["late"]
    t = late["streams"][0]  # its November reversed is no November: it still owes it, from October's people
    assert (late["agency_code"], t["missing_period"], t["last_period"], t["in_part"], t["persons_owed"]) == (
        LATE, "202611", "202610", False, 5), late


def test_a_merger_that_leaves_one_agency_paying_everyone_is_no_late_delivery(tmp_path):
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    _night(inbox, tmp_path, "2026-10-21")
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], AGENCIES,
              paid_by={code: "360702001" for code in AGENCIES})  # 机构改革: one agency pays everyone
    _night(inbox, tmp_path, "2026-11-21")
    s = _night(inbox, tmp_path, "2026-12-10")
    assert not s["arrivals"]["late"] and s["arrivals"]["streams"] == 3


def test_a_first_delivery_of_one_month_sets_the_day_the_next_is_due(tmp_path):
    """One month with no history: it came on the 21st, so the next is due by the 21st (an earlier version
    told an office starting so, every night, that its deliveries had stopped)."""
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    only = inbox / "2026-10-21" / "payments_360700_202610.csv"
    only.unlink()
    _payments(only, ["202610"], AGENCIES)
    _night(inbox, tmp_path, "2026-10-21")
    s = _night(inbox, tmp_path, "2026-11-25")
    assert not s["arrivals"]["late"] and "data arrivals" not in format_summary(s)
    s = _night(inbox, tmp_path, "2026-11-26")  # nothing came: each agency late by its own day
    assert [(a["agency_code"], a["streams"][0]["missing_period"], a["streams"][0]["expected_on"])
            for a in s["arrivals"]["late"]] == [(code, "202611", "2026-11-21") for code in sorted(AGENCIES)]


def _only(path: Path, persons: list[str]) -> None:
    """Keep the header and the rows of these persons."""
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], *(x for x in lines[1:] if any(p in x for p in persons))]) + "\n",
                    encoding="utf-8")


def test_a_month_paid_ahead_before_spring_festival_and_a_month_sent_in_halves_keep_their_own_days(tmp_path):
    """From a third probe: with three agencies paying February ahead on 21 January, the fourth, on its
    usual 21 February, was said late all February; an agency sending each month in halves a week apart
    was said late every month between the halves; a 补发 month or two items a person moved the bar."""
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    _night(inbox, tmp_path, "2026-10-21")
    split = "360704001"
    second_half = PERSONS[split][2:]
    for month, day in (("202611", 21), ("202612", 21)):
        y, m = month[:4], month[4:]
        _payments(inbox / f"{y}-{m}-{day}" / f"payments_360700_{month}.csv", [month], AGENCIES)
        _only(inbox / f"{y}-{m}-{day}" / f"payments_360700_{month}.csv",
              [p for code in AGENCIES for p in PERSONS[code] if p not in second_half])
        _night(inbox, tmp_path, f"{y}-{m}-{day}")
        _payments(inbox / f"{y}-{m}-28" / f"payments_360704_{month}_rest.csv", [month], [split])
        _only(inbox / f"{y}-{m}-28" / f"payments_360704_{month}_rest.csv", second_half)
        _night(inbox, tmp_path, f"{y}-{m}-28")
    # January: everyone's January, and February ahead from two agencies (春节); the split agency's first half
    _payments(inbox / "2027-01-21" / "payments_360700_202701.csv", ["202701"], AGENCIES)
    _only(inbox / "2027-01-21" / "payments_360700_202701.csv",
          [p for code in AGENCIES for p in PERSONS[code] if p not in second_half])
    _payments(inbox / "2027-01-21" / "payments_360700_202702_ahead.csv", ["202702"], ["360702001", LATE])
    _night(inbox, tmp_path, "2027-01-21")
    s = _night(inbox, tmp_path, "2027-01-26")  # the split agency's January is due by the 28th, its usual day
    assert not s["arrivals"]["late"], s["arrivals"]
    _payments(inbox / "2027-01-28" / "payments_360704_202701_rest.csv", ["202701"], [split])
    _only(inbox / "2027-01-28" / "payments_360704_202701_rest.csv", second_half)
    _night(inbox, tmp_path, "2027-01-28")
    s = _night(inbox, tmp_path, "2027-02-10")  # February: the split agency's is due by the 28th, not owed yet
    assert not s["arrivals"]["late"], s["arrivals"]
    s = _night(inbox, tmp_path, "2027-03-06")  # its February never came; the others' March not due (21st)
    assert [(a["agency_code"], a["streams"][0]["missing_period"], a["streams"][0]["expected_on"])
            for a in s["arrivals"]["late"]] == [(split, "202702", "2027-02-28")], s["arrivals"]


@pytest.mark.parametrize("layout", ["one-folder", "monthly-folders"])
def test_a_history_read_the_first_night_is_dated_by_its_folders_not_by_that_night(tmp_path, layout):
    """From a README audit: a year of payments in a folder dated 2026-11-21, read by a first night of
    2026-12-31, came in (by that night) some 60 days into its months, so 202612 — not come — was not due
    until the end of January and no agency was said late. A delivery's day is its folder's date, as a
    feed's: the months came on the 21st, and 202612 was due by 2026-12-21."""
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    (inbox / "2026-10-21" / "payments_360700_202610.csv").unlink()
    months = [f"2025{m:02d}" for m in (12,)] + [f"2026{m:02d}" for m in range(1, 12)]
    if layout == "one-folder":
        _payments(inbox / "2026-11-21" / "payments_360700_history.csv", months, AGENCIES)
    else:
        for month in months:
            _payments(inbox / f"{month[:4]}-{month[4:]}-21" / f"payments_360700_{month}.csv", [month], AGENCIES)
    s = _night(inbox, tmp_path, "2026-12-31")
    assert [(a["agency_code"], a["streams"][0]["missing_period"], a["streams"][0]["expected_on"])
            for a in s["arrivals"]["late"]] == [(code, "202612", "2026-12-21") for code in sorted(AGENCIES)]
    # a page drawn for a day before that night counts the folders dated by then, read or not
    stored = duckdb.connect(str(tmp_path / "fw.duckdb"), read_only=True)
    try:
        assert len(arrivals.check(stored, date(2026, 12, 26), 5).late) == 3
        assert not arrivals.check(stored, date(2026, 12, 25), 5).late
        assert not arrivals.check(stored, date(2025, 12, 20), 5).streams  # (nothing dated by then)
    finally:
        stored.close()


def test_a_history_in_a_folder_dated_a_year_wrong_comes_in_the_night_that_read_it(tmp_path):
    """From a regression probe: a first night read a year of payments (202512–202611) from a folder dated
    2025-11-21 for 2026-11-21; taken at its word, the months came in up to 345 days before they began,
    and every agency was said late with 202612 due 2025-12-21 — for months. A file comes no earlier than
    a month before the latest month it pays: the folder's date is not its day, the night is."""
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    (inbox / "2026-10-21" / "payments_360700_202610.csv").unlink()
    (inbox / "2026-10-21").rename(inbox / "2025-11-21")
    months = ["202512"] + [f"2026{m:02d}" for m in range(1, 12)]
    _payments(inbox / "2025-11-21" / "payments_360700_history.csv", months, AGENCIES)
    assert not _night(inbox, tmp_path, "2026-11-21")["arrivals"]["late"]
    stored = duckdb.connect(str(tmp_path / "fw.duckdb"), read_only=True)
    try:
        assert not arrivals.check(stored, date(2026, 12, 1), 5).late
        late = arrivals.check(stored, date(2026, 12, 26), 5).late
        assert [(a.missing_period, a.expected_on) for a in late] == [("202612", date(2026, 12, 21))] * 3
    finally:
        stored.close()


def test_a_page_drawn_after_one_catch_up_night_counts_each_folder_by_its_own_day(tmp_path):
    """From a regression probe: after a week without nights, one catch-up night read the folder an agency
    sent on its day; a page drawn later for a day between counted only what nights had read by then, and
    said that agency late too."""
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    _night(inbox, tmp_path, "2026-10-21")
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], [c for c in AGENCIES if c != LATE])
    _payments(inbox / "2026-11-27" / "payments_360703_202611.csv", ["202611"], [LATE])
    assert not _night(inbox, tmp_path, "2026-11-30")["arrivals"]["late"]  # the catch-up night
    assert _late_on(tmp_path, date(2026, 11, 26), date(2026, 11, 25)) == [[LATE], []]


def test_a_folder_dated_before_nights_that_looked_came_in_when_it_was_read(tmp_path):
    """From a second regression probe: nights ran every day and said 360703001 late; on 11-28 its month
    turned up under `2026-11-21补报/`, and pages drawn afterwards for 11-26 and 11-27 said all was in —
    the folder's date was held only against the days of files read before, not against the nights that
    had looked and found nothing."""
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    _night(inbox, tmp_path, "2026-10-21")
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], [c for c in AGENCIES if c != LATE])
    _night(inbox, tmp_path, "2026-11-21")
    assert [a["agency_code"] for a in _night(inbox, tmp_path, "2026-11-26")["arrivals"]["late"]] == [LATE]
    _night(inbox, tmp_path, "2026-11-27")
    _payments(inbox / "2026-11-21补报" / "payments_360703_202611.csv", ["202611"], [LATE])
    assert not _night(inbox, tmp_path, "2026-11-28")["arrivals"]["late"]
    # as the nights of those days said
    assert _late_on(tmp_path, date(2026, 11, 26), date(2026, 11, 27), date(2026, 11, 28)) == [[LATE], [LATE], []]


def test_a_night_run_later_for_an_earlier_day_counts_after_the_nights_that_ran_before_it(tmp_path):
    """From a second regression probe: a night run with --any-day for 11-24 after the night of 11-27 read
    a folder that came after it; counted by its as-of as the earlier night, it put the day of that folder
    ahead of the 2026-11-21 folder the night of 11-27 had read, which was then dated 11-27 — pages for
    11-26 said two agencies late that had sent on their day (and the late one in)."""
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    _night(inbox, tmp_path, "2026-10-21")
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], [c for c in AGENCIES if c != LATE])
    assert [a["agency_code"] for a in _night(inbox, tmp_path, "2026-11-27")["arrivals"]["late"]] == [LATE]
    _payments(inbox / "2026-11-22" / "payments_360703_202611.csv", ["202611"], [LATE])
    nightly_flow(inbox=str(inbox), db=str(tmp_path / "fw.duckdb"), out=str(tmp_path / "out"),
                 as_of=date(2026, 11, 24), progress=False, any_day=True)
    # the two on their day; 360703001's folder came after the night of 11-27 had looked (and said it
    # late): on the day after, whatever day the replay stood for
    assert _late_on(tmp_path, date(2026, 11, 26), date(2026, 11, 28)) == [[LATE], []]


@pytest.mark.parametrize("found_by", ["replay", "after-a-failed-night"])
def test_a_late_folder_comes_in_no_earlier_than_the_nights_that_looked_without_it(tmp_path, found_by):
    """From a third regression probe: a 补报 dated behind them, found after the nights of 11-26 and 11-27
    had said 360703001 late, was read by a night run later for 11-23 (--any-day) and dated 11-23 — the
    pages of 11-26 and 11-27 then said all was in; and a night that failed after its ingest (its worklists
    not written) did not count as having looked."""
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    _night(inbox, tmp_path, "2026-10-21")
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], [c for c in AGENCIES if c != LATE])
    _night(inbox, tmp_path, "2026-11-26")
    _night(inbox, tmp_path, "2026-11-27")
    if found_by == "after-a-failed-night":  # as the night's record reads when a step after ingest failed
        con = duckdb.connect(str(tmp_path / "fw.duckdb"))
        con.execute("update runs set status = 'failed' where as_of = '2026-11-27'")
        con.close()
    # dated by the last night that completed, behind the one that failed after looking
    _payments(inbox / "2026-11-26补报" / "payments_360703_202611.csv", ["202611"], [LATE])
    if found_by == "replay":
        nightly_flow(inbox=str(inbox), db=str(tmp_path / "fw.duckdb"), out=str(tmp_path / "out"),
                     as_of=date(2026, 11, 23), progress=False, any_day=True)
    else:
        _night(inbox, tmp_path, "2026-11-28")
    assert _late_on(tmp_path, date(2026, 11, 26), date(2026, 11, 27)) == [[LATE], [LATE]]  # as those nights said


def test_a_run_or_a_file_without_its_time_is_passed_over_not_a_crash(tmp_path):
    """From a third regression probe: a runs row without started_at (a store restored or edited by hand)
    stopped 数据报送 — and with it every night and every page — on comparing None with a time."""
    inbox = tmp_path / "inbox"
    _first_delivery(inbox)
    _night(inbox, tmp_path, "2026-10-21")
    _payments(inbox / "2026-11-21" / "payments_360700_202611.csv", ["202611"], [c for c in AGENCIES if c != LATE])
    _night(inbox, tmp_path, "2026-11-21")
    con = duckdb.connect(str(tmp_path / "fw.duckdb"))
    con.execute("update runs set started_at = null where as_of = '2026-10-21'")
    con.execute("update ingest_ledger set ingested_at = null where delivery = '2026-10-21' and extract = 'agencies'")
    con.close()
    assert [a["agency_code"] for a in _night(inbox, tmp_path, "2026-11-26")["arrivals"]["late"]] == [LATE]
