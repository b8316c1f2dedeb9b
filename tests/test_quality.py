"""Data quality of each new delivery: warnings, never crashes; results stored; Data Docs written."""

from __future__ import annotations

import json
import math
from datetime import date

import pytest

from _nightly_inbox import ALIVE, BAD_ID, DEAD, OTHER, PAY_HEADER, _pay, _write, delivery_1, delivery_2
from pipelines import quality
from pipelines.ingest import ingest_inbox
from pipelines.quality import check_deliveries, unvalidated_deliveries, unwritten_pages
from pipelines.store import connect, scalar


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """October with an unknown item for one pensioner; November with a fraction of October's rows."""
    root = tmp_path_factory.mktemp("quality")
    inbox, out = root / "inbox", root / "out"
    delivery_1(inbox, item="高龄补贴")
    con = connect(root / "fw.duckdb")
    ingest_inbox(con, inbox)
    first = check_deliveries(con, ["2026-10-21"], out, run_id="night-1")
    delivery_2(inbox)
    ingest_inbox(con, inbox)
    second = check_deliveries(con, ["2026-11-21"], out, run_id="night-2")
    yield {"con": con, "out": out, "first": first, "second": second}
    con.close()


def test_an_item_outside_the_known_lists_is_a_warning_not_a_crash(checked):
    warnings = checked["first"].warnings
    # free text outside a code list may hold a name or an ID number (补发 + a name): its first
    # character only, in the warning as in the Data Docs
    assert any("payments.item" in w and "高***" in w for w in warnings)
    assert not any("高龄补贴" in w for w in warnings)
    assert checked["first"].checked > 10


def test_wrong_check_digits_are_measured_against_rejected_rows(checked):
    con = checked["con"]
    row = con.execute("""select success, detail::varchar from quality_results
                         where run_id = 'night-1' and extract = 'payments' and column_name = 'person_id_valid'""").fetchall()
    assert len(row) == 1
    observed = json.loads(row[0][1])["observed"]
    assert observed["unexpected_count"] == 1 and observed["element_count"] == 10  # 9 accepted + 1 rejected
    assert row[0][0] is False  # 1 in 10 is far above the 1% tolerated


def test_a_delivery_much_smaller_than_the_last_of_its_kind_is_flagged(checked):
    con = checked["con"]
    # the rows each delivery added (accepted), on both sides: refused rows are in neither
    previous = scalar(con, "select sum(rows_accepted) from ingest_ledger where extract = 'payments' and delivery = '2026-10-21'")
    now = scalar(con, "select count(*) from payments where _delivery = '2026-11-21'")
    assert now < previous / 2
    # the warning says what was seen and what was expected, so a clerk can judge it
    assert (f"2026-11-21 payments: expect_table_row_count_to_be_between failed, observed {now}, "
            f"expected {math.ceil(previous * 0.5)}–{math.floor(previous * 2)} (0.5×–2× the previous delivery's rows)"
            in checked["second"].warnings)


def _payments(d: str, n: int, refused: int, start: int = 0) -> list[list]:
    """n payment rows of delivery d, the first `refused` of them with an amount of three decimals."""
    return [_pay(f"P{d[-5:].replace('-', '')}{start + i:04d}", ALIVE, "李活", "202610",
                 "1000.005" if i < refused else "1000.00", "6222000011112222") for i in range(n)]


def test_two_deliveries_alike_with_rows_refused_are_counted_on_one_basis(tmp_path):
    """From a probe of the night's figures: 20 rows delivered, 12 refused, twice — the second was
    warned of as "observed 8, expected 10–40" (its stored rows against the first's rows delivered).
    Both sides now count the rows added; and 6 rows after 13 are below half (6.5), not within."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    _write(inbox / "2026-10-21" / "payments_a.csv", PAY_HEADER, _payments("2026-10-21", 20, 12))
    _write(inbox / "2026-11-21" / "payments_b.csv", PAY_HEADER, _payments("2026-11-21", 20, 12, start=100))
    _write(inbox / "2026-12-21" / "payments_c.csv", PAY_HEADER, _payments("2026-12-21", 13, 0, start=200))
    _write(inbox / "2027-01-21" / "payments_d.csv", PAY_HEADER, _payments("2027-01-21", 6, 0, start=300))
    con = connect(tmp_path / "fw.duckdb")
    try:
        ingest_inbox(con, inbox, as_of=date(2027, 1, 21))  # the night of the last delivery
        assert scalar(con, "select count(*) from payments where _delivery = '2026-11-21'") == 8
        report = check_deliveries(con, ["2026-11-21", "2026-12-21", "2027-01-21"], out, run_id="night")
        counted = [w for w in report.warnings if "row_count" in w]
        assert counted == ["2027-01-21 payments: expect_table_row_count_to_be_between failed, observed 6, "
                           "expected 7–26 (0.5×–2× the previous delivery's rows)"], report.warnings
    finally:
        con.close()


def test_a_delivery_whose_rows_a_later_one_replaced_the_same_night_is_said_not_skipped(tmp_path):
    """Two deliveries read in one night giving the same payments: the first one's rows are all
    replaced before the checks run — said in a warning and stored, not passed over without a word."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    rows = _payments("2026-11-05", 3, 0)
    _write(inbox / "2026-11-05" / "payments_a.csv", PAY_HEADER, rows)
    _write(inbox / "2026-11-06" / "payments_b.csv", PAY_HEADER, [r[:7] + ["1200.00"] + r[8:] for r in rows])
    con = connect(tmp_path / "fw.duckdb")
    try:
        ingest_inbox(con, inbox)
        report = check_deliveries(con, ["2026-11-05", "2026-11-06"], out, run_id="night")
        said = [w for w in report.warnings if w.startswith("2026-11-05")]
        assert said == ["2026-11-05 payments: all 3 row(s) it added were replaced by a later delivery read the "
                        "same night; none of its rows is left to check"], report.warnings
        assert con.execute("select success, detail::varchar from quality_results where delivery = '2026-11-05'"
                           ).fetchall() == [(False, '{"rows_accepted": 3, "rows_left": 0}')]
    finally:
        con.close()


def test_a_gap_in_a_monthly_payment_stream_is_flagged(tmp_path, checked):
    con = connect(tmp_path / "fw.duckdb")
    try:
        delivery_1(tmp_path / "inbox", skip_other_in="202609")  # 陈其他 paid 202608, then 202610
        ingest_inbox(con, tmp_path / "inbox")
        report = check_deliveries(con, ["2026-10-21"], tmp_path / "out", run_id="gap")
        assert scalar(con, "select success from quality_results where column_name = 'period_gap'") is False
    finally:
        con.close()
    assert any("payments.period_gap" in w for w in report.warnings)
    # The look-alike: in the main store every stream runs 202608, 202609, 202610 without a hole.
    assert scalar(checked["con"], """select success from quality_results
                                     where run_id = 'night-1' and column_name = 'period_gap'""") is True


def test_each_payment_of_a_month_after_a_hole_counts_as_following_the_hole(tmp_path):
    """The gap is to the stream's latest earlier month: a 补发 in the same month as the payment after
    a hole is as far from the last month paid (with a window over the stream one of the two read 0,
    whichever came second)."""
    d = tmp_path / "inbox" / "2026-10-21"
    _write(d / "payments_360700_202610.csv", PAY_HEADER,
           [_pay("P202608-3", OTHER, "陈其他", "202608", "2600.00", "6217000000000003"),
            _pay("P202610-3", OTHER, "陈其他", "202610", "2600.00", "6217000000000003"),
            _pay("P202610-3b", OTHER, "陈其他", "202610", "150.00", "6217000000000003")])
    con = connect(tmp_path / "fw.duckdb")
    try:
        ingest_inbox(con, tmp_path / "inbox")
        frame, rows = quality._delivery_frame(con, "payments", "2026-10-21")
        check_deliveries(con, ["2026-10-21"], tmp_path / "out", run_id="hole")
        detail = json.loads(scalar(con, "select detail::varchar from quality_results where column_name = 'period_gap'"))
    finally:
        con.close()
    gaps = dict(zip(frame["payment_id"], frame["period_gap"]))
    assert gaps["P202610-3"] == gaps["P202610-3b"] == 2 and frame.set_index("payment_id")["period_gap"].isna()["P202608-3"]
    assert detail["observed"]["unexpected_count"] == 2


def test_amounts_in_fen_rekeyed_payments_and_dates_after_the_delivery_are_said_with_their_agencies(tmp_path):
    """A data-drift probe: one agency's month delivered in 分 for 元 (×100) went onto worklists a
    hundredfold, a core system that re-keyed its payment ids doubled each person's history, and a
    death or payment dated after the delivery's day was taken — each with a generic amount-range line
    or nothing at all. Each is its own check now, said with what it likely means and by agency; an
    ordinary month (the first delivery, a 补发 a few times the monthly amount) raises none of them. So is
    a month reversed beyond what it was paid (a 冲正 given twice hid a real suspect's month)."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"

    def pay(pid, who, name, period, amount, agency, paid_on=None):
        row = _pay(pid, who, name, period, amount, "6217000000000003")
        row[9] = agency
        if paid_on:
            row[6] = paid_on
        return row

    first = [pay(f"A{p}", ALIVE, "李活", p, "3000.00", "360702") for p in ("202608", "202609", "202610")]
    first += [pay(f"O{p}", OTHER, "陈其他", p, "2600.00", "360703") for p in ("202608", "202609", "202610")]
    first.append(pay("O202610b", OTHER, "陈其他", "202610", "7800.00", "360703"))  # a 补发 of three months
    _write(inbox / "2026-10-21" / "payments_a.csv", PAY_HEADER, first)
    _write(inbox / "2026-11-21" / "payments_b.csv", PAY_HEADER, [
        pay("A202611", ALIVE, "李活", "202611", "300000.00", "360702"),           # 3,000.00 元 in 分
        pay("NEW-O202610", OTHER, "陈其他", "202610", "2600.00", "360703"),       # O202610 under a new id
        pay("O202611", OTHER, "陈其他", "202611", "2600.00", "360703", "2026-11-25"),  # after the delivery
        *(pay(f"R{k}O202609", OTHER, "陈其他", "202609", "-2600.00", "360703") for k in (1, 2))])  # 冲正 twice
    _write(inbox / "2026-11-21" / "deaths_b.csv", ["person_id", "name", "death_date", "source", "cremated_on"],
           [[DEAD, "张死", "2026-12-15", "公安", ""]])
    con = connect(tmp_path / "fw.duckdb")
    try:
        ingest_inbox(con, inbox, as_of=date(2026, 11, 21))
        report = check_deliveries(con, ["2026-10-21", "2026-11-21"], out, run_id="night")
        details = dict(con.execute("select column_name, detail::varchar from quality_results "
                                   "where delivery = '2026-11-21' and not success").fetchall())
    finally:
        con.close()
    said = {w.split(":")[0].split(" ")[1]: w for w in report.warnings
            if w.startswith("2026-11-21") and "row_count" not in w}
    assert set(said) == {"payments.amount_in_line", "payments.not_stored_under_another_id",
                         "payments.paid_not_after_delivery", "deaths.death_not_after_delivery",
                         "payments.month_net_not_negative", "payments.amount"}, report.warnings
    assert said["payments.amount_in_line"].endswith(
        "1 of 5 rows unexpected: amounts over 50× the most the same stream (person, insurance type, item) was "
        "paid in an earlier month — amounts in 分 (fen) for 元? (rows by agency: 360702 1)")
    assert said["payments.not_stored_under_another_id"].endswith("— payment ids re-keyed by a system change? "
                                                                 "(rows by agency: 360703 1)")
    assert said["payments.paid_not_after_delivery"].endswith(
        "payments dated after the day the delivery is named for (rows by agency: 360703 1)")
    assert said["deaths.death_not_after_delivery"].endswith("death dates after the day the delivery is named for")
    assert said["payments.month_net_not_negative"].endswith(
        "2 of 5 rows unexpected: rows of a stream's month (person, insurance type, item, period) whose payments net "
        "below zero — a reversal larger than what was paid, or given twice? (rows by agency: 360703 2)")
    # read the same night, the delivery holding the original is told too (names are no order of arrival)
    assert [w.split(":")[0] for w in report.warnings if w.startswith("2026-10-21")] == [
        "2026-10-21 payments.not_stored_under_another_id"], report.warnings
    check, _, words = quality.described("payments", "expect_column_values_to_be_in_set", "amount_in_line",
                                        details["amount_in_line"])
    assert "疑为以分代元" in check and "5 行中 1 行不符" in words


def test_a_reversal_its_payment_covers_is_no_month_netting_below_zero_whatever_the_folders_are_named(tmp_path):
    """A regression probe: the month's net was taken over the deliveries named up to the reversal's, and
    a back-load folder not named by a date (`backload`) sorts after `2026-11-21`: its payment was left
    out and a reversal it covers warned of. Every stored row counts."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    _write(inbox / "backload" / "payments_a.csv", PAY_HEADER,
           [_pay(f"A{p}", ALIVE, "李活", p, "3000.00", "6217000000000003") for p in ("202609", "202610")])
    # and a reversal booked to the month it was made in, which paid nothing (a second regression probe):
    # October's 2,600.00 reversed in November's run under 202611
    _write(inbox / "backload" / "payments_o.csv", PAY_HEADER,
           [_pay("O202610", OTHER, "陈其他", "202610", "2600.00", "6217000000000004")])
    _write(inbox / "2026-11-21" / "payments_b.csv", PAY_HEADER,
           [_pay("RA202610", ALIVE, "李活", "202610", "-3000.00", "6217000000000003"),
            _pay("A202611", ALIVE, "李活", "202611", "3000.00", "6217000000000003"),
            _pay("RO202610", OTHER, "陈其他", "202611", "-2600.00", "6217000000000004")])
    con = connect(tmp_path / "fw.duckdb")
    try:
        ingest_inbox(con, inbox / "backload")
        ingest_inbox(con, inbox)
        report = check_deliveries(con, ["backload", "2026-11-21"], out, run_id="night")
        netted = scalar(con, "select bool_and(success) from quality_results where column_name = 'month_net_not_negative'")
    finally:
        con.close()
    assert netted is True and not [w for w in report.warnings if "month_net_not_negative" in w], report.warnings


def test_a_sampled_delivery_measures_its_sampled_rows_against_the_whole_history(checked, monkeypatch):
    """A delivery of more than SAMPLE_ROWS rows is checked on a sample; each sampled payment's gap
    is still to its stream's month before, delivered earlier."""
    monkeypatch.setattr(quality, "SAMPLE_ROWS", 2)
    frame, rows = quality._delivery_frame(checked["con"], "payments", "2026-11-21")
    assert rows == 3 and len(frame) == 2
    assert set(frame["payment_id"]) <= {"P202611-1", "P202611-2", "P202611-3"}
    assert frame["period_gap"].tolist() == [1, 1]
    assert not {"person_id", "name", "bank_account"} & set(frame.columns)


def test_results_are_stored_per_delivery_and_extract(checked):
    con = checked["con"]
    rows = con.execute("select delivery, extract, count(*) from quality_results group by all order by all").fetchall()
    kinds_1 = {k for d, k, _ in rows if d == "2026-10-21"}
    assert {"agencies", "beneficiaries", "payments", "deaths"} <= kinds_1
    assert {k for d, k, _ in rows if d == "2026-11-21"} == {"payments"}
    failed = scalar(con, "select count(*) from quality_results where not success")
    assert failed == len(checked["first"].warnings) + len(checked["second"].warnings)


def test_data_docs_are_written_and_carry_no_id_numbers(checked):
    docs = checked["out"] / "data_docs"
    assert (docs / "index.html").is_file()
    pages = list(docs.rglob("*.html"))
    assert len(pages) > 3
    text = "".join(p.read_text(encoding="utf-8") for p in pages)
    for pid in (DEAD, ALIVE, BAD_ID):
        assert pid not in text
    assert "高龄补贴" not in text


def test_data_docs_pages_left_empty_are_found(checked, tmp_path):
    """great-expectations logs a page it cannot write (a full disk) and goes on, leaving it empty:
    the night says so instead of pointing at them."""
    assert unwritten_pages(checked["out"] / "data_docs") == []
    assert not any("Data Docs incomplete" in w for w in checked["first"].warnings + checked["second"].warnings)
    (tmp_path / "validations" / "x").mkdir(parents=True)
    (tmp_path / "index.html").write_text("<html></html>", encoding="utf-8")
    (tmp_path / "validations" / "x" / "page.html").write_bytes(b"")
    assert unwritten_pages(tmp_path) == [tmp_path / "validations" / "x" / "page.html"]


def test_no_new_delivery_means_no_check_and_no_great_expectations(tmp_path):
    con = connect(tmp_path / "fw.duckdb")
    try:
        report = check_deliveries(con, [], tmp_path / "out")
    finally:
        con.close()
    assert report.checked == 0 and report.warnings == [] and not (tmp_path / "out" / "data_docs").exists()


def _beneficiaries(path, rows):
    from _nightly_inbox import person
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["person_id,name,insurance_type,agency_code,status,status_date,start_period,bank_account,last_certified_on"]
    for i, (itype, certified) in enumerate(rows):
        pid = person(f"36070219600101{i:03d}")
        lines.append(f"{pid},测试{i},{itype},360702,正常,,201501,62170000000000{i:05d},{certified or ''}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("uncertified, warned", [("210", False), ("110", True)],
                         ids=["unemployed-never-certified", "pensioners-never-certified"])
def test_missing_certification_dates_count_only_for_pensioners(tmp_path, uncertified, warned):
    # 生存认证 is asked of pensioners: 10 unemployment records without a date are normal,
    # 10 pension records without one are a gap in the extract.
    rows = [("110", "2026-03-01")] * 10 + [(uncertified, None)] * 10
    _beneficiaries(tmp_path / "inbox" / "2026-10-21" / "beneficiaries_360700_202610.csv", rows)
    _, report = _ingested_and_checked(tmp_path, "cert")
    assert any("beneficiaries.has_last_certified_on" in w for w in report.warnings) is warned


def _ingested_and_checked(tmp_path, run_id: str):
    """The inbox under tmp_path ingested into a fresh store and its delivery 2026-10-21 checked:
    (ingest report, check report)."""
    con = connect(tmp_path / "fw.duckdb")
    try:
        return ingest_inbox(con, tmp_path / "inbox"), check_deliveries(con, ["2026-10-21"], tmp_path / "out",
                                                                      run_id=run_id)
    finally:
        con.close()


@pytest.mark.parametrize("broken", [False, True], ids=["consistent", "inconsistent"])
def test_rows_valid_field_by_field_that_leave_a_rule_blind_are_warned_of(tmp_path, broken):
    # Each field is valid, so ingest accepts the rows; but a 暂停 record without its 状态变更日期
    # (PAID_WHILE_SUSPENDED counts from it), a custody ending before it began, a cremation before
    # the death, are impossible or unchecked: the clerk is told, the rows are kept.
    from _nightly_inbox import person
    d = tmp_path / "inbox" / "2026-10-21"
    d.mkdir(parents=True)
    a, b = person("36070219500101001"), person("36070219500101002")
    (d / "beneficiaries_360700_202610.csv").write_text(
        "person_id,name,insurance_type,agency_code,status,status_date,start_period,bank_account,last_certified_on\n"
        f"{a},甲,110,360702,暂停,{'' if broken else '2026-03-01'},201501,6217000000000001,2026-03-01\n"
        f"{b},乙,110,360702,正常,,201501,6217000000000002,2026-03-01\n", encoding="utf-8")
    (d / "imprisonments_360700_202610.csv").write_text(
        "person_id,name,sentence_type,custody_start,custody_end,facility\n"
        f"{a},甲,有期徒刑,2026-05-01,{'2026-04-01' if broken else '2026-06-01'},某监狱\n"
        f"{b},乙,有期徒刑,2026-05-01,,某监狱\n", encoding="utf-8")
    (d / "deaths_360700_202610.csv").write_text(
        "person_id,name,death_date,source,cremated_on\n"
        f"{a},甲,2026-05-03,民政,{'2026-05-01' if broken else '2026-05-05'}\n"
        f"{b},乙,2026-05-03,公安,\n", encoding="utf-8")
    ingested, report = _ingested_and_checked(tmp_path, "consistency")
    assert ingested.rows_rejected == 0  # warned of, not refused
    flags = ("beneficiaries.has_status_date", "imprisonments.custody_end_not_before_start",
             "deaths.cremated_not_before_death")
    for flag in flags:
        warned = [w for w in report.warnings if flag in w]
        assert warned == ([f"2026-10-21 {flag}: expect_column_values_to_be_in_set failed, 1 of 2 rows unexpected"]
                          if broken else []), flag


def test_a_delivery_ingested_but_never_checked_is_found_and_a_checked_one_is_not(tmp_path, checked):
    # The fixture's store: both deliveries checked.
    assert unvalidated_deliveries(checked["con"]) == []
    # A night killed between the ingest's commit and the checks: the delivery waits to be checked.
    inbox = tmp_path / "inbox"
    delivery_1(inbox)
    con = connect(tmp_path / "fw.duckdb")
    try:
        ingest_inbox(con, inbox)
        assert unvalidated_deliveries(con) == ["2026-10-21"]
        check_deliveries(con, unvalidated_deliveries(con), tmp_path / "out", run_id="next-night")
        assert unvalidated_deliveries(con) == []
    finally:
        con.close()


def test_a_row_set_aside_for_its_key_is_not_counted_as_a_bad_id_number(tmp_path):
    """A death record given twice in one file (the later row kept) names person_id as its key's
    first column; its ID number is sound and must not lower the share of valid ID numbers."""
    from _nightly_inbox import _write
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    header = ["person_id", "name", "death_date", "source", "cremated_on"]
    _write(inbox / "2026-11-21" / "deaths_twice.csv", header,
           [[DEAD, "王死", "2026-08-15", "民政", ""], [DEAD, "王死", "2026-08-16", "民政", ""]])
    con = connect(tmp_path / "fw.duckdb")
    try:
        ingest_inbox(con, inbox)
        assert scalar(con, "select count(*) from rejected_rows where column_name = 'person_id'") == 1
        report = check_deliveries(con, ["2026-11-21"], out, run_id="night")
        assert not any("person_id_valid" in w for w in report.warnings), report.warnings
    finally:
        con.close()


def _row_count_warnings(report) -> list[str]:
    return [w for w in report.warnings if "row_count" in w]


@pytest.fixture
def one_night(tmp_path):
    """checked(deliveries): each {delivery: payment rows} written as a payments file, ingested into
    a new store and checked in one night; the report, with the open store as `con`."""
    con = connect(tmp_path / "fw.duckdb")

    def checked(deliveries: dict[str, list[list]]):
        for letter, (delivery, rows) in zip("abcdefgh", deliveries.items()):
            _write(tmp_path / "inbox" / delivery / f"payments_{letter}.csv", PAY_HEADER, rows)
        ingest_inbox(con, tmp_path / "inbox")
        return check_deliveries(con, list(deliveries), tmp_path / "out", run_id="night")

    checked.con = con
    yield checked
    con.close()


def _observed(con, delivery: str, column: str) -> dict:
    return json.loads(scalar(con, "select detail::varchar from quality_results where delivery = ? and column_name = ?",
                             [delivery, column]))["observed"]


def test_a_delivery_whose_every_row_was_refused_is_checked_on_no_rows(one_night):
    """From a probe of the checks: ten payments whose every ID number had a wrong check digit left
    no rows, and the delivery got no result at all ("0 warning(s)") — and the next delivery's row
    count was then compared with nothing. Now it is checked on no rows: 0 added against the band,
    no valid ID number; the next one is measured against the last delivery that added rows."""
    report = one_night({"2026-11-01": _payments("2026-11-01", 20, 0),
                        "2026-11-02": [r[:1] + [BAD_ID] + r[2:] for r in _payments("2026-11-02", 10, 0, start=100)],
                        "2026-11-03": _payments("2026-11-03", 5, 0, start=200)})
    con = one_night.con
    assert scalar(con, "select count(*) from payments where _delivery = '2026-11-02'") == 0
    assert _row_count_warnings(report) == [
        "2026-11-02 payments: expect_table_row_count_to_be_between failed, observed 0, expected 10–40 "
        "(0.5×–2× the previous delivery's rows)",
        "2026-11-03 payments: expect_table_row_count_to_be_between failed, observed 5, expected 10–40 "
        "(0.5×–2× the previous delivery's rows)"]
    ids = _observed(con, "2026-11-02", "person_id_valid")
    assert ids["unexpected_count"] == 10 and ids["element_count"] == 10
    assert any(w.startswith("2026-11-02 payments.person_id_valid") for w in report.warnings)


def test_a_delivery_is_measured_by_the_rows_it_added_also_where_a_later_one_replaced_some(one_night):
    """From the probe: 100 rows after a delivery of 30 passed the 15–60 band because a later
    delivery of the same night replaced 60 of them (measured as the 40 left), while as the
    previous delivery it counted its 100. Both sides are now the rows each added."""
    hundred = _payments("2026-11-02", 100, 0, start=100)
    report = one_night({"2026-11-01": _payments("2026-11-01", 30, 0), "2026-11-02": hundred,
                        "2026-11-03": [r[:7] + ["1100.00"] + r[8:] for r in hundred[:60]]})
    assert scalar(one_night.con, "select count(*) from payments where _delivery = '2026-11-02'") == 40
    assert _row_count_warnings(report) == [
        "2026-11-02 payments: expect_table_row_count_to_be_between failed, observed 100, expected 15–60 "
        "(0.5×–2× the previous delivery's rows)"]  # and 60 after 100: within 50–200
    assert _observed(one_night.con, "2026-11-02", "person_id_valid")["element_count"] == 100


def test_a_file_sent_late_into_an_earlier_delivery_is_checked_alone(tmp_path):
    """From the probe: a night read 2026-11-20/payments_a.csv (40 rows, 5 of an unknown item); a
    later night read payments_late.csv into the same delivery, and the checks ran again on all 50
    rows, warning again of the 5. Each file's rows are checked once; the row count is the
    delivery's, all its files."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    rows = _payments("2026-11-20", 40, 0)
    for r in rows[:5]:
        r[4] = "高龄补贴"
    _write(inbox / "2026-11-20" / "payments_a.csv", PAY_HEADER, rows)
    con = connect(tmp_path / "fw.duckdb")
    try:
        ingest_inbox(con, inbox)
        first = check_deliveries(con, ["2026-11-20"], out, run_id="night-1")
        assert [w for w in first.warnings if "payments.item" in w] == [
            "2026-11-20 payments.item: expect_column_values_to_be_in_set failed, 5 of 40 rows unexpected (e.g. 高***)"]
        _write(inbox / "2026-11-20" / "payments_late.csv", PAY_HEADER, _payments("2026-11-20", 10, 0, start=500))
        ingest_inbox(con, inbox)
        assert unvalidated_deliveries(con) == ["2026-11-20"]
        second = check_deliveries(con, ["2026-11-20"], out, run_id="night-2")
        assert not any("payments.item" in w for w in second.warnings), second.warnings
        items = json.loads(scalar(con, """select detail::varchar from quality_results
                                          where run_id = 'night-2' and column_name = 'item'"""))["observed"]
        assert items["element_count"] == 10 and items["unexpected_count"] == 0
        assert unvalidated_deliveries(con) == []
        assert check_deliveries(con, ["2026-11-20"], out, run_id="night-3").checked == 0  # nothing new
    finally:
        con.close()


def test_a_sampled_delivery_counts_its_rows_from_the_ledger(one_night, monkeypatch):
    """From the probe: a delivery above SAMPLE_ROWS had no row-count check at all, the exact count
    being known without a sample."""
    monkeypatch.setattr(quality, "SAMPLE_ROWS", 4)
    report = one_night({"2026-11-01": _payments("2026-11-01", 3, 0), "2026-11-02": _payments("2026-11-02", 9, 0, start=100)})
    assert _row_count_warnings(report) == [
        "2026-11-02 payments: expect_table_row_count_to_be_between failed, observed 9, expected 2–6 "
        "(0.5×–2× the previous delivery's rows)"]
    assert _observed(one_night.con, "2026-11-02", "amount")["element_count"] == 4  # the other checks: on the sample


def test_a_store_from_before_the_checked_files_counts_what_it_checked_as_checked(tmp_path):
    """quality_checked_files came after quality_results: a store without it, when opened, takes as
    checked the files of a delivery with results ingested before its last result, and the files
    whose every row was refused (never checked before: the first night would warn of each again);
    a file a night killed before its checks had read into a checked delivery waits to be checked —
    filled at the first opening, before anything is ingested, so tonight's files are not among them."""
    inbox, path = tmp_path / "inbox", tmp_path / "fw.duckdb"
    delivery_1(inbox)
    con = connect(path)
    ingest_inbox(con, inbox)
    check_deliveries(con, ["2026-10-21"], tmp_path / "out", run_id="night-1")
    _write(inbox / "2026-10-21" / "payments_late.csv", PAY_HEADER, _payments("2026-10-21", 4, 0, start=600))
    _write(inbox / "2026-10-22" / "payments_refused.csv", PAY_HEADER,
           [r[:1] + [BAD_ID] + r[2:] for r in _payments("2026-10-22", 3, 0, start=700)])
    ingest_inbox(con, inbox)  # the late file and a refused one; killed before the checks
    con.execute("drop table quality_checked_files")
    con.execute("delete from store_migrations where name = 'quality_checked_files'")
    con.close()
    con = connect(path)
    try:
        late = scalar(con, "select file_hash from ingest_ledger where source_file like '%payments_late.csv'")
        assert scalar(con, "select count(*) from quality_checked_files") == scalar(
            con, "select count(*) from ingest_ledger") - 1
        assert scalar(con, "select count(*) from quality_checked_files where file_hash = ?", [late]) == 0
        assert unvalidated_deliveries(con) == ["2026-10-21"]
    finally:
        con.close()


@pytest.mark.parametrize("accepted, refused", [(198, 2), (197, 3), (0, 120), (240, 0)])
def test_a_big_deliverys_id_check_is_scaled_down_and_decides_as_the_exact_counts(tmp_path, monkeypatch, accepted, refused):
    """A province's first payments delivery handed great-expectations 60 million flags (7 s, 2.6 GB
    of pandas). Above SAMPLE_ROWS the frame is scaled to SAMPLE_ROWS rows of the same share,
    rounded so that its verdict is the exact counts' — 2 refused of 200 is exactly the 1 %
    tolerated, 3 is over; the stored result and the warning carry the exact counts."""
    rows = _payments("2026-11-01", accepted, 0) + [r[:1] + [BAD_ID] + r[2:] for r in _payments("2026-11-01", refused, 0, start=500)]
    results = {}
    for sample_rows in (10_000, 50):
        monkeypatch.setattr(quality, "SAMPLE_ROWS", sample_rows)
        root = tmp_path / str(sample_rows)
        _write(root / "inbox" / "2026-11-01" / "payments_a.csv", PAY_HEADER, rows)
        con = connect(root / "fw.duckdb")
        try:
            ingest_inbox(con, root / "inbox")
            report = check_deliveries(con, ["2026-11-01"], root / "out", run_id="night")
            success, detail = con.execute("select success, detail::varchar from quality_results "
                                          "where column_name = 'person_id_valid'").fetchall()[0]
        finally:
            con.close()
        results[sample_rows] = (success, json.loads(detail)["observed"],
                                [w for w in report.warnings if "person_id_valid" in w])
    (exact_success, exact, exact_warnings), (success, scaled, warnings) = results[10_000], results[50]
    assert exact["element_count"] == accepted + refused and exact["unexpected_count"] == refused
    assert exact_success is (refused * 100 <= accepted + refused)
    assert success is exact_success and warnings == exact_warnings
    assert {k: scaled[k] for k in ("element_count", "unexpected_count", "unexpected_percent")} == {
        k: exact[k] for k in ("element_count", "unexpected_count", "unexpected_percent")}
    assert scaled["frame_rows"] == 50 and "frame_rows" not in exact


@pytest.mark.parametrize("zone", ["CST-8", "UTC0"])
def test_data_docs_are_written_where_tz_is_a_posix_zone_string(tmp_path, monkeypatch, zone):
    """From a probe of clocks: with TZ=CST-8 (a POSIX string, common on Chinese servers) the local
    zone great-expectations asks tzlocal for is refused, every page was left empty and the night
    blamed a full disk. The checks are the same; the pages are written; TZ is as it was after."""
    import time

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        delivery_1(tmp_path / "inbox")
        con = connect(tmp_path / "fw.duckdb")
        ingest_inbox(con, tmp_path / "inbox")
        report = check_deliveries(con, ["2026-10-21"], tmp_path / "out", run_id="night-1")
        con.close()
        import os

        assert os.environ["TZ"] == zone
    finally:
        monkeypatch.undo()
        time.tzset()
    assert report.checked > 0
    assert not [w for w in report.warnings if "Data Docs" in w], report.warnings
    assert unwritten_pages(tmp_path / "out" / "data_docs") == []
    assert (tmp_path / "out" / "data_docs" / "index.html").stat().st_size > 0


def test_a_delivery_named_with_markup_is_no_markup_in_the_data_docs(tmp_path):
    """great-expectations writes a suite's name into its pages unescaped: a delivery folder named
    `2026-10-21<img src=x onerror=…>` ran its script in every page that named it (a security probe).
    The name shows there by its safe characters and a hash; the store keeps it as delivered."""
    import shutil

    hostile = "2026-10-21<img src=x onerror=document.title='XSS'>"
    inbox = tmp_path / "inbox"
    shutil.move(str(delivery_1(inbox)), str(inbox / hostile))
    con = connect(tmp_path / "fw.duckdb")
    try:
        ingest_inbox(con, inbox)
        report = check_deliveries(con, [hostile], tmp_path / "out", run_id="night-1")
        stored = {d for (d,) in con.execute("select distinct delivery from quality_results").fetchall()}
    finally:
        con.close()
    assert report.checked > 10 and stored == {hostile}
    pages = list((tmp_path / "out" / "data_docs").rglob("*.html"))
    assert len(pages) > 3 and unwritten_pages(tmp_path / "out" / "data_docs") == []
    text = "".join(p.read_text(encoding="utf-8") for p in pages)
    assert "onerror=" not in text and "<img src=x" not in text  # (its words stay, as text)
    assert quality._docs_key(None, hostile) in text and quality._docs_key(None, "2026-10-21") == "2026-10-21"


def test_two_deliveries_named_after_people_masked_alike_each_get_their_own_data_docs_pages(tmp_path):
    """A regression probe: folders named 2026-10-21_张三_<ID> and 2026-10-21_张四_<ID'> (one region,
    the same last four characters) are both shown 2026-10-21_张*_360702********1234: their Data Docs key
    hashed the name as shown, so the second's suite clashed with the first's and every night failed."""
    from pipelines.normalise import check_digit

    first = "36070219900101123"
    one = first + check_digit(first)
    other = next(b + check_digit(b) for b in (f"360702{1950 + y}0101123" for y in range(40))
                 if check_digit(b) == one[-1] and b != first)
    inbox = tmp_path / "inbox"
    named = [inbox / f"2026-10-21_张三_{one}", inbox / f"2026-10-21_张四_{other}"]
    delivery_1(inbox).rename(named[0])
    delivery_2(inbox).rename(named[1])
    con = connect(tmp_path / "fw.duckdb")
    try:
        ingest_inbox(con, inbox)
        report = check_deliveries(con, [p.name for p in named], tmp_path / "out", run_id="night-1")
        keys = [quality._docs_key(con, p.name) for p in named]
    finally:
        con.close()
    assert report.checked > 10
    shown = f"2026-10-21_张__360702________{one[-4:]}"
    assert keys[0] != keys[1] and all(k.startswith(shown + "-") for k in keys)
    pages = {p.name for p in (tmp_path / "out" / "data_docs").rglob("*.html")}
    assert any(keys[0] in p for p in pages) and any(keys[1] in p for p in pages)
    text = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "out" / "data_docs").rglob("*.html"))
    assert one not in text and other not in text and "张三" not in text and "张四" not in text


@pytest.mark.parametrize("code", ["360702", "360799", "３６０７０２"])
def test_an_agency_code_the_register_does_not_list_is_warned_of_by_its_code(tmp_path, code):
    """A code no register lists — a typo, a full-width code, an agency abolished — was taken without
    a word: its suspects went to a worklist of an agency without a name, its region's parameters were
    passed over (a reorganisation probe). The rows are kept; the warning names the code."""
    from _nightly_inbox import person
    d = tmp_path / "inbox" / "2026-10-21"
    d.mkdir(parents=True)
    a = person("36070219500101001")
    (d / "agencies_360700_202610.csv").write_text(
        "agency_code,agency_name,region_code,parent_code\n360700,赣州市社保局,360700,\n360702,章贡区社保局,360702,360700\n",
        encoding="utf-8")
    (d / "beneficiaries_360700_202610.csv").write_text(
        "person_id,name,insurance_type,agency_code,status,status_date,start_period,bank_account,last_certified_on\n"
        f"{a},甲,110,{code},正常,,201501,6217000000000001,2026-03-01\n", encoding="utf-8")
    ingested, report = _ingested_and_checked(tmp_path, "agencies")
    assert ingested.rows_rejected == 0
    warned = [w for w in report.warnings if "agency_code" in w]
    assert warned == ([] if code == "360702" else
                      [f"2026-10-21 beneficiaries.agency_code: expect_column_values_to_be_in_set failed, "
                       f"1 of 1 rows unexpected (e.g. {code})"])
