"""Casework flags (CONTRACT §5): 逾期, 挂牌督办, 要情 classes and the 重大要情 report date."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from decimal import Decimal

import openpyxl
import pytest

from pipelines import casework
from pipelines.casework import OUTCOME_LABELS, major_class_for, parse_outcome
from pipelines.config import Config, load_config
from pipelines.store import connect, scalar
from pipelines.workdays import add_working_days
from test_worklists import add_suspect

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "fw.duckdb")
    yield c
    c.close()


def flags(con, sid):
    return con.execute("select overdue, escalated, major_class, report_due from suspects where suspect_id = ?",
                       [sid]).fetchall()[0]


def count_events(con, event):
    return scalar(con, "select count(*) from suspect_events where event = ?", [event])


@pytest.mark.parametrize("typed, number", [
    ("4. 不符合待遇领取条件，已暂停发放并追回", 4), ("不符合待遇领取条件，已暂停发放并追回", 4),
    ("不符合待遇领取条件,已暂停发放并追回", 4), ("4", 4), (4, 4), (4.0, 4), ("４", 4), ("6、", 6),
    ("7.经核实无问题", 7), ("（4）不符合待遇领取条件，已暂停发放并追回", 4), ("(4)", 4), ("（7）", 7), ("(4", None),
    ("4)", 4), ("4-不符合待遇领取条件，已暂停发放并追回", 4), ("4。", 4), ("7—经核实无问题", 7), ("4-经核实无问题", None),
    ("-4", None), ("(8)", None), ("（4）经核实无问题", None), ("8", None), (4.5, None), ("4. 经核实无问题", None), ("已处理", None), ("", None),
    (None, None), (True, None),
])
def test_an_outcome_is_one_of_the_seven_by_text_or_number(typed, number):
    assert parse_outcome(typed) == number


def test_the_seven_outcomes_are_worded_as_in_the_contract():
    assert OUTCOME_LABELS[1] == "1. 经办操作或后台修改导致数据错误，已更正"
    assert OUTCOME_LABELS[6] == "6. 涉嫌欺诈骗保，已移送查处"
    assert len(casework.OUTCOMES) == 7


def test_loss_classes_start_at_100000_and_500000_yuan():
    assert major_class_for(Decimal("99999.99")) == "要情"
    assert major_class_for(Decimal("100000.00")) == "重大要情"
    assert major_class_for(Decimal("499999.99")) == "重大要情"
    assert major_class_for(Decimal("500000.00")) == "重大要情（报部）"


def test_loss_class_thresholds_come_from_config(tmp_path):
    path = tmp_path / "fw.yaml"
    path.write_text("casework:\n  major_from: 50000\n", encoding="utf-8")
    assert major_class_for(60000, load_config(path)) == "重大要情"
    assert major_class_for(60000, Config()) == "要情"


def test_an_issued_suspect_past_its_deadline_is_overdue_and_a_closed_one_is_not(con):
    add_suspect(con, "LATE", status="已下发", issued_on=dt.date(2026, 10, 9), deadline=dt.date(2026, 11, 19))
    add_suspect(con, "DUE-TODAY", status="核查中", issued_on=dt.date(2026, 10, 9), deadline=AS_OF)
    add_suspect(con, "CLOSED", status="已销号", issued_on=dt.date(2026, 10, 9), deadline=dt.date(2026, 11, 19))
    counts = casework.refresh(con, AS_OF)
    assert counts["overdue"] == 1
    assert flags(con, "LATE")[0] is True
    assert flags(con, "DUE-TODAY")[0] is False  # the deadline day itself is still in time
    assert flags(con, "CLOSED")[0] is False


def test_refresh_is_idempotent_and_each_newly_set_flag_is_one_event(con):
    add_suspect(con, "LATE", status="已下发", issued_on=dt.date(2026, 7, 1), deadline=dt.date(2026, 7, 29),
                first_detected_on=dt.date(2026, 6, 1))
    first = casework.refresh(con, AS_OF)
    assert (first["overdue"], first["escalated"]) == (1, 1)
    events_before = scalar(con, "select count(*) from suspect_events")
    second = casework.refresh(con, AS_OF)
    assert all(v == 0 for v in second.values())
    assert scalar(con, "select count(*) from suspect_events") == events_before == 2


def test_overdue_clears_once_the_suspect_is_closed(con):
    add_suspect(con, "LATE", status="已下发", issued_on=dt.date(2026, 7, 1), deadline=dt.date(2026, 7, 29))
    casework.refresh(con, AS_OF)
    con.execute("update suspects set status = '已销号' where suspect_id = 'LATE'")
    assert casework.refresh(con, AS_OF)["overdue_cleared"] == 1
    assert flags(con, "LATE")[0] is False


def test_loss_not_recovered_90_days_after_detection_is_escalated(con):
    add_suspect(con, "D91", first_detected_on=AS_OF - dt.timedelta(days=91))
    add_suspect(con, "D90", first_detected_on=AS_OF - dt.timedelta(days=90))  # the 90th day itself
    add_suspect(con, "D89", first_detected_on=AS_OF - dt.timedelta(days=89))
    add_suspect(con, "RECOVERED", status="核查中", first_detected_on=AS_OF - dt.timedelta(days=200),
                amount="500.00", recovered_amount=Decimal("500.00"))
    add_suspect(con, "PARTLY", status="核查中", first_detected_on=AS_OF - dt.timedelta(days=200),
                amount="500.00", recovered_amount=Decimal("499.99"))
    # transferred to 稽核 or the police: the money is still out (CONTRACT §5 names no exception)
    add_suspect(con, "TRANSFERRED", status="已移送", first_detected_on=AS_OF - dt.timedelta(days=200))
    add_suspect(con, "TRANSFERRED_89", status="已移送", first_detected_on=AS_OF - dt.timedelta(days=89))
    add_suspect(con, "CLOSED", status="已销号", first_detected_on=AS_OF - dt.timedelta(days=200))
    casework.refresh(con, AS_OF)
    assert {sid for (sid,) in con.execute("select suspect_id from suspects where escalated").fetchall()} == \
        {"D91", "D90", "PARTLY", "TRANSFERRED"}
    detail = json.loads(scalar(con, "select detail from suspect_events where event = 'escalated' and suspect_id = 'D90'"))
    assert detail["escalate_after_days"] == 90


def test_escalation_period_comes_from_config(con, tmp_path):
    path = tmp_path / "fw.yaml"
    path.write_text("casework:\n  escalate_after_days: 30\n", encoding="utf-8")
    add_suspect(con, "D30", first_detected_on=AS_OF - dt.timedelta(days=30))
    add_suspect(con, "D29", first_detected_on=AS_OF - dt.timedelta(days=29))
    casework.refresh(con, AS_OF, load_config(path))
    assert (flags(con, "D30")[1], flags(con, "D29")[1]) == (True, False)


def test_a_verified_major_loss_is_reported_5_working_days_after_verification(con):
    # verified the day before National Day: the report date skips the holiday week
    add_suspect(con, "BIG", status="已移送", amount="150000.00", outcome=OUTCOME_LABELS[6],
                verified_on=dt.date(2026, 9, 30))
    add_suspect(con, "HUGE", status="已销号", amount="500000.00", outcome=OUTCOME_LABELS[4],
                recovered_amount=Decimal("500000.00"), verified_on=AS_OF)
    add_suspect(con, "SMALL", status="核查中", amount="99999.99", outcome=OUTCOME_LABELS[4], verified_on=AS_OF)
    add_suspect(con, "NO-LOSS", status="已销号", amount="900000.00", outcome=OUTCOME_LABELS[7], verified_on=AS_OF)
    # a lapsed certification with no payment after the lapse, answered 4 (stopped): no money, no 要情
    add_suspect(con, "NOTHING", status="已销号", amount="0.00", outcome=OUTCOME_LABELS[4], verified_on=AS_OF)
    counts = casework.refresh(con, AS_OF)
    assert flags(con, "BIG")[2:] == ("重大要情", dt.date(2026, 10, 13))
    assert flags(con, "HUGE")[2:] == ("重大要情（报部）", add_working_days(AS_OF, 5))
    assert flags(con, "SMALL")[2:] == ("要情", None)
    assert flags(con, "NO-LOSS")[2:] == (None, None)
    assert flags(con, "NOTHING")[2:] == (None, None)
    assert counts["major_class"] == 3 == count_events(con, "major_class")
    assert casework.refresh(con, AS_OF)["major_class"] == 0


def test_a_report_day_a_holiday_notice_moves_is_counted_apart_from_a_class(con, tmp_path):
    """A 重大要情 verified before 春节 2027, its report day counted first without the year's notice,
    then with it: the class did not change, the day did — the night's console said "1 要情 classed
    or re-classed" (a year-boundary probe)."""
    add_suspect(con, "BIG", status="已移送", amount="150000.00", outcome=OUTCOME_LABELS[6],
                verified_on=dt.date(2027, 2, 3))
    with warnings.catch_warnings():  # the package knows no 2027: the law's holidays only (warned once a process)
        warnings.simplefilter("ignore")
        first = casework.refresh(con, dt.date(2027, 2, 4))
    assert (first["major_class"], first["report_due_moved"]) == (1, 0)
    before = flags(con, "BIG")[3]
    path = tmp_path / "fw.yaml"
    path.write_text("casework:\n  holidays: ['2027-02-05..2027-02-13']\n  adjusted_workdays: ['2027-02-14']\n",
                    encoding="utf-8")
    moved = casework.refresh(con, dt.date(2027, 2, 5), load_config(path))
    assert (moved["major_class"], moved["report_due_moved"]) == (0, 1)
    assert flags(con, "BIG")[2] == "重大要情" and flags(con, "BIG")[3] != before
    # a reopened 重大要情 answered again at the same class (returns cleared where its report came
    # from): a report of its own, counted as a class, not as a day moved (a regression probe)
    add_suspect(con, "AGAIN", status="已移送", amount="150000.00", outcome=OUTCOME_LABELS[6],
                verified_on=dt.date(2026, 11, 18), person_id="360702195001011242",
                major_class="重大要情", report_due=dt.date(2026, 6, 8), class_verified_on=None)
    again = casework.refresh(con, dt.date(2026, 11, 20), load_config(path))
    assert (again["major_class"], again["report_due_moved"]) == (1, 0)


def test_a_reopened_suspect_keeps_the_class_of_its_last_verification_until_verified_again(con):
    """Closed on outcome 4 at 90,000 (要情); reopened at 120,000 by new evidence nobody has verified:
    not 重大要情 with a report date counted from the old verification (already past)."""
    add_suspect(con, "BACK", status="已销号", amount="90000.00", outcome=OUTCOME_LABELS[4],
                recovered_amount=Decimal("90000.00"), verified_on=dt.date(2026, 10, 26))
    casework.refresh(con, AS_OF)
    assert flags(con, "BACK")[2:] == ("要情", None)
    con.execute("update suspects set status = '已重开', amount = 120000.00, closed_on = null where suspect_id = 'BACK'")
    casework.refresh(con, AS_OF)
    assert flags(con, "BACK")[2:] == ("要情", None)
    # verified again on the new evidence: classed by it, reported after this verification
    verified = AS_OF + dt.timedelta(days=3)
    con.execute("update suspects set status = '已移送', outcome = ?, verified_on = ? where suspect_id = 'BACK'",
                [OUTCOME_LABELS[5], verified])
    casework.refresh(con, verified)
    assert flags(con, "BACK")[2:] == ("重大要情", add_working_days(verified, 5))


def test_a_store_from_before_verified_amounts_keeps_its_transferred_cases_classed_as_verified(tmp_path):
    """An answer (5) to a sheet showing 90,000, applied before verified amounts were kept; the person
    was paid on to 120,000 since. Opened by this fundwatch, the store takes what the answered sheet
    showed as the loss verified: the case stays 要情 — it can take no further answer to mend a class
    set by growth. A suspect answered without a sheet on record is classed by its amount, as before."""
    from pipelines import returns, worklists
    path = tmp_path / "old.duckdb"
    con = connect(path)
    add_suspect(con, "MOVED", amount="90000.00")
    sheet = worklists.write_worklists(con, tmp_path / "out", AS_OF)[0]
    wb = openpyxl.load_workbook(sheet)
    ws = wb[worklists.SHEET]
    head = [c.value for c in ws[1]]
    ws.cell(row=2, column=head.index("核实结果") + 1, value=OUTCOME_LABELS[5])
    wb.save(sheet)
    assert returns.apply_returns(con, [sheet], AS_OF + dt.timedelta(days=2)).refusals == []
    add_suspect(con, "NO-SHEET", status="已移送", amount="120000.00", outcome=OUTCOME_LABELS[5],
                verified_on=dt.date(2026, 10, 26), person_id="360702195001011242")
    # as an older fundwatch left it: paid on since, no verified amount, the conversion not yet run
    con.execute("update suspects set amount = 120000.00, verified_amount = null")
    con.execute("delete from store_migrations where name = 'verified_amounts'")
    con.close()
    con = connect(path)
    try:
        assert con.execute("select suspect_id, verified_amount from suspects order by 1").fetchall() == [
            ("MOVED", Decimal("90000.00")), ("NO-SHEET", None)]
        casework.refresh(con, AS_OF + dt.timedelta(days=30))
        assert flags(con, "MOVED")[2:] == ("要情", None)
        assert flags(con, "NO-SHEET")[2] == "重大要情"
        assert scalar(con, "select count(*) from store_migrations where name = 'verified_amounts'") == 1
    finally:
        con.close()
