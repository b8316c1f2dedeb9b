"""Worklists out (疑点数据核查工作台账): one protected XLSX per agency, CONTRACT §5."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import stat
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from pipelines import casework, printing, workdays, worklists
from pipelines.casework import OUTCOME_LABELS
from pipelines.config import load_config
from pipelines.runsummary import format_summary
from pipelines.store import connect, scalar
from pipelines.workdays import add_working_days

AS_OF = dt.date(2026, 11, 20)  # a Friday
A, B = "360702001", "360703001"
CONTRACT_HEADER = ["疑点编号", "规则编号", "规则名称", "公民身份号码", "姓名", "涉及金额", "所属期起", "所属期止",
                   "下发日期", "核查期限", "核实结果", "追回金额", "核实说明", "核实日期"]


def add_suspect(con, suspect_id, agency=A, person_id="360702195001011234", amount="12345.60", status="待下发",
                name="张三", rule_id="PAID_AFTER_DEATH", first_detected_on=dt.date(2026, 11, 1), **extra):
    """Insert a suspect row straight into the store, as suspects.update_suspects would leave it."""
    row = dict(suspect_id=suspect_id, rule_id=rule_id, subject=person_id or suspect_id, person_id=person_id,
               agency_code=agency, period_from="202601", period_to="202603", amount=Decimal(amount), status=status,
               first_detected_on=first_detected_on, last_detected_on=AS_OF, name=name,
               evidence=json.dumps({"death_date": "2025-12-03", "periods": ["202601", "202602", "202603"]},
                                   ensure_ascii=False))
    row.update(extra)
    con.execute(f"insert into suspects ({', '.join(row)}) values ({', '.join('?' * len(row))})", list(row.values()))


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "fw.duckdb")
    c.execute("insert into agencies (agency_code, agency_name, region_code) values (?, '章贡区社保局', '360702'),"
              " (?, '南康区社保局', '360703')", [A, B])
    yield c
    c.close()


def sheet_of(path):
    return openpyxl.load_workbook(path)[worklists.SHEET]


def rows_by_id(ws):
    header = [c.value for c in ws[1]]
    return {r[0]: dict(zip(header, r)) for r in ws.iter_rows(min_row=2, values_only=True)}


def sheet_xml(path):
    with zipfile.ZipFile(path) as z:
        wb = z.read("xl/workbook.xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
        rid = re.search(r'<sheet [^>]*name="疑点清单"[^>]*r:id="(rId\d+)"', wb).group(1)
        target = re.search(rf'Id="{rid}"[^>]*Target="([^"]+)"', rels) or re.search(rf'Target="([^"]+)"[^>]*Id="{rid}"', rels)
        return z.read("xl/" + target.group(1).lstrip("/").removeprefix("xl/")).decode()


def test_one_workbook_per_agency_named_with_its_code_and_the_contract_header_in_order(con, tmp_path):
    add_suspect(con, "S-A1")
    add_suspect(con, "S-A2", person_id="360702195001011242")
    add_suspect(con, "S-B1", agency=B, person_id="36070319600101123X")
    paths = worklists.write_worklists(con, tmp_path / "out", AS_OF)
    assert sorted(p.name for p in paths) == [f"疑点核查台账_{A}_20261120.xlsx", f"疑点核查台账_{B}_20261120.xlsx"]
    wb = openpyxl.load_workbook(paths[0])
    assert wb.sheetnames[0] == "疑点清单" and "说明" in wb.sheetnames
    header = [c.value for c in wb["疑点清单"][1]]
    assert header[:14] == CONTRACT_HEADER
    assert {"疑点状态", "逾期", "挂牌督办", "要情类别", "证据摘要"} <= set(header[14:])


def test_an_agency_code_no_file_name_can_hold_gets_its_own_workbook_all_the_same(con, tmp_path):
    """Codes are stored as delivered: `360702/01` once failed every agency's worklist, every night
    (the store saying them issued). It is written with `_` and a hash of the code, so that
    `360702_01`, a code of its own, keeps its own file."""
    odd, plain = "360702/01", "360702_01"
    add_suspect(con, "S-ODD", agency=odd)
    add_suspect(con, "S-PLAIN", agency=plain, person_id="36070319600101123X", name="李四")
    add_suspect(con, "S-A1", person_id="360702195001011242")
    paths = worklists.write_worklists(con, tmp_path / "out", AS_OF)
    assert len({p.name for p in paths}) == 3 and all(p.parent == tmp_path / "out" for p in paths)
    by_agency = {con.execute("select agency_code from audit_log where file = ?", [str(p)]).fetchall()[0][0]: p
                 for p in paths}
    assert set(rows_by_id(sheet_of(by_agency[odd]))) == {"S-ODD"}
    assert set(rows_by_id(sheet_of(by_agency[plain]))) == {"S-PLAIN"}
    assert by_agency[odd].name.startswith("疑点核查台账_360702_01-")
    assert by_agency[plain].name == "疑点核查台账_360702_01_20261120.xlsx"


def test_agency_workbook_holds_none_of_another_agencys_suspects(con, tmp_path):
    add_suspect(con, "S-A1")
    add_suspect(con, "S-B1", agency=B, person_id="36070319600101123X", name="李四")
    add_suspect(con, "S-B2", agency=B, person_id="360703196001011248", name="王五")
    paths = {p.name.split("_")[1]: p for p in worklists.write_worklists(con, tmp_path / "out", AS_OF)}
    a_rows = rows_by_id(sheet_of(paths[A]))
    assert set(a_rows) == {"S-A1"}
    with zipfile.ZipFile(paths[A]) as z:
        everything = "".join(z.read(n).decode("utf-8", "ignore") for n in z.namelist())
    for other in ("S-B1", "S-B2", "36070319600101123X", "李四", "王五", "南康区"):
        assert other not in everything
    assert set(rows_by_id(sheet_of(paths[B]))) == {"S-B1", "S-B2"}


def test_only_the_four_answer_columns_are_unlocked_and_the_sheet_is_protected(con, tmp_path):
    add_suspect(con, "S-A1")
    ws = sheet_of(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0])
    assert ws.protection.sheet
    header = [c.value for c in ws[1]]
    for col, name in enumerate(header, start=1):
        locked = ws.cell(row=2, column=col).protection.locked
        assert locked == (name not in ("核实结果", "追回金额", "核实说明", "核实日期")), name


def test_outcome_is_a_drop_down_of_the_seven_contract_outcomes(con, tmp_path):
    add_suspect(con, "S-A1")
    ws = sheet_of(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0])
    outcome_col = openpyxl.utils.get_column_letter([c.value for c in ws[1]].index("核实结果") + 1)
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert len(lists) == 1 and f"{outcome_col}2" in lists[0].sqref
    items = lists[0].formula1.strip('"').split(",")
    assert items == list(OUTCOME_LABELS.values())
    assert items[0] == "1. 经办操作或后台修改导致数据错误，已更正" and items[6] == "7. 经核实无问题"


def test_amounts_are_money_and_id_numbers_keep_all_18_digits_as_text(con, tmp_path):
    add_suspect(con, "S-A1", person_id="360702195001011234", amount="1234567.80")
    ws = sheet_of(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0])
    header = [c.value for c in ws[1]]
    id_cell = ws.cell(row=2, column=header.index("公民身份号码") + 1)
    assert id_cell.value == "360702195001011234" and id_cell.data_type == "s"
    money = ws.cell(row=2, column=header.index("涉及金额") + 1)
    assert money.number_format == "#,##0.00" and Decimal(str(money.value)) == Decimal("1234567.80")
    assert ws.cell(row=2, column=header.index("追回金额") + 1).number_format == "#,##0.00"
    assert ws.cell(row=2, column=header.index("所属期起") + 1).value == "202601"


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2", "@x"])
def test_text_that_looks_like_a_formula_is_written_as_text(con, tmp_path, text):
    add_suspect(con, "S-A1", name=text, evidence=json.dumps({"memo": text}))
    path = worklists.write_worklists(con, tmp_path / "out", AS_OF)[0]
    ws = sheet_of(path)
    header = [c.value for c in ws[1]]
    name = ws.cell(row=2, column=header.index("姓名") + 1)
    assert name.value == text and name.data_type == "s"
    assert ws.cell(row=2, column=header.index("证据摘要") + 1).data_type == "s"
    assert "<f>" not in sheet_xml(path) and "<f " not in sheet_xml(path)


def test_issuing_marks_new_suspects_issued_with_a_deadline_of_20_working_days(con, tmp_path):
    add_suspect(con, "S-A1")
    worklists.write_worklists(con, tmp_path / "out", AS_OF)
    status, issued_on, deadline = con.execute(
        "select status, issued_on, deadline from suspects where suspect_id = 'S-A1'").fetchall()[0]
    assert (status, issued_on, deadline) == ("已下发", AS_OF, add_working_days(AS_OF, 20))
    assert scalar(con, "select count(*) from suspect_events where suspect_id = 'S-A1' and event = 'issued'") == 1


def test_open_suspects_reappear_with_their_first_issue_date_and_closed_ones_do_not(con, tmp_path):
    add_suspect(con, "S-A1")
    add_suspect(con, "S-A2", person_id="360702195001011242")
    add_suspect(con, "S-A3", person_id="360702195001011250")
    worklists.write_worklists(con, tmp_path / "out", AS_OF)
    first_deadline = scalar(con, "select deadline from suspects where suspect_id = 'S-A1'")
    con.execute("update suspects set status = '已销号', closed_on = ? where suspect_id = 'S-A2'", [AS_OF])
    con.execute("update suspects set status = '已移送' where suspect_id = 'S-A3'")
    later = AS_OF + dt.timedelta(days=10)
    path = worklists.write_worklists(con, tmp_path / "out", later)[0]
    rows = rows_by_id(sheet_of(path))
    assert set(rows) == {"S-A1"}
    assert rows["S-A1"]["下发日期"].date() == AS_OF and rows["S-A1"]["核查期限"].date() == first_deadline
    assert scalar(con, "select count(*) from suspect_events where event = 'issued'") == 3  # not again


def test_a_reopened_suspect_is_issued_again_with_a_fresh_deadline_and_stays_reopened(con, tmp_path):
    # as reopening leaves it: the first issue date on record, the deadline its closing met dropped
    add_suspect(con, "S-A1", status="已重开", issued_on=dt.date(2026, 6, 1), deadline=None)
    path = worklists.write_worklists(con, tmp_path / "out", AS_OF)[0]
    state = "select status, issued_on, deadline from suspects where suspect_id = 'S-A1'"
    assert con.execute(state).fetchall() == [("已重开", AS_OF, add_working_days(AS_OF, 20))]
    row = rows_by_id(sheet_of(path))["S-A1"]
    # the sheet's 核查期限 is its 下发日期 + 20 working days, as on every other row (CONTRACT §5)
    assert (row["疑点状态"], row["下发日期"].date(), row["核查期限"].date()) == (
        "已重开", AS_OF, add_working_days(AS_OF, 20))
    issued = json.loads(scalar(con, "select detail from suspect_events where event = 'issued'"))
    assert issued["issued_on"] == AS_OF.isoformat() and issued["from"] == "已重开"
    # the next night carries it as it is: not issued again, the same dates
    worklists.write_worklists(con, tmp_path / "out2", AS_OF + dt.timedelta(days=1))
    assert con.execute(state).fetchall() == [("已重开", AS_OF, add_working_days(AS_OF, 20))]
    assert scalar(con, "select count(*) from suspect_events where event = 'issued'") == 1


def test_agencies_without_open_suspects_get_no_workbook(con, tmp_path):
    add_suspect(con, "S-A1")
    add_suspect(con, "S-B1", agency=B, status="已销号")
    paths = worklists.write_worklists(con, tmp_path / "out", AS_OF)
    assert [p.name for p in paths] == [f"疑点核查台账_{A}_20261120.xlsx"]


def test_every_export_is_audited_with_its_hash_and_issued_rows_are_recorded(con, tmp_path):
    add_suspect(con, "S-A1")
    add_suspect(con, "S-A2", person_id="360702195001011242")
    path = worklists.write_worklists(con, tmp_path / "out", AS_OF, actor="clerk01")[0]
    rows = con.execute("select actor, action, file, file_hash, agency_code, suspect_ids from audit_log").fetchall()
    assert len(rows) == 1
    actor, action, file, file_hash, agency, ids = rows[0]
    assert (actor, action, file, agency) == ("clerk01", "export_worklist", str(path), A)
    assert file_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sorted(json.loads(ids)) == ["S-A1", "S-A2"]
    locked = json.loads(scalar(con, "select locked from worklist_rows where suspect_id = 'S-A1'"))
    assert locked["公民身份号码"] == "360702195001011234" and locked["涉及金额"] == "12345.60"
    assert locked["下发日期"] == AS_OF.isoformat()


def _issued(con):
    """The rows on record (worklist_rows), their cells as text, in one order."""
    return con.execute("select export_id, suspect_id, agency_code, row_number, file, as_of, exported_at,"
                       " cast(locked as varchar), cast(prefilled as varchar) from worklist_rows order by all").fetchall()


def test_a_suspect_issued_night_after_night_as_it_was_has_its_locked_cells_stored_once(con, tmp_path):
    """A year of nights kept 1.97 million worklist rows, each with its locked cells whole: 0.97 of a
    1.25 GB store, for 86,140 contents. Each content is stored once; every night's rows still read
    whole, and one that changed gets cells of its own."""
    add_suspect(con, "S-A1")
    add_suspect(con, "S-A2", person_id="360702195001011242")
    add_suspect(con, "S-B1", agency=B, person_id="36070319600101123X")
    out = tmp_path / "out"
    for night in (AS_OF, AS_OF + dt.timedelta(days=3), AS_OF + dt.timedelta(days=4)):
        worklists.write_worklists(con, out, night)
    assert scalar(con, "select count(*) from worklist_rows_issued") == 9
    assert scalar(con, "select count(*) from worklist_locked_cells") == 3
    rows = _issued(con)
    assert len(rows) == 9 and all(r[7] for r in rows)
    assert {sid: {r[7] for r in rows if r[1] == sid} for sid in ("S-A1", "S-A2", "S-B1")} == {
        sid: {scalar(con, "select cast(locked as varchar) from worklist_rows where suspect_id = ? limit 1", [sid])}
        for sid in ("S-A1", "S-A2", "S-B1")}
    con.execute("update suspects set amount = 20000 where suspect_id = 'S-A1'")
    worklists.write_worklists(con, out, AS_OF + dt.timedelta(days=5))
    assert scalar(con, "select count(*) from worklist_locked_cells") == 4
    latest = json.loads(scalar(con, "select arg_max(locked, exported_at) from worklist_rows where suspect_id = 'S-A1'"))
    assert latest["涉及金额"] == "20000.00"
    assert scalar(con, "select count(distinct locked_md5) = count(*) from worklist_locked_cells")


@pytest.mark.parametrize("with_prefilled", [True, False])
def test_an_older_store_s_worklist_rows_are_converted_once_and_read_as_before(con, tmp_path, with_prefilled):
    """A store an older version kept holds worklist_rows as a table, every row's cells whole (and,
    older still, no prefilled column): it is converted once on opening, the rows read as before, and
    a later night's unchanged rows point to the cells converted."""
    add_suspect(con, "S-A1")
    add_suspect(con, "S-A2", person_id="360702195001011242", status="核查中",
                outcome=OUTCOME_LABELS[4], recovered_amount=Decimal("100"))
    out = tmp_path / "out"
    for night in (AS_OF, AS_OF + dt.timedelta(days=3)):
        worklists.write_worklists(con, out, night)
    before = _issued(con)
    assert any(r[8] for r in before) and scalar(con, "select count(*) from worklist_locked_cells") == 2
    # as an older version left it
    con.execute("create table old_rows as select * from worklist_rows")
    con.execute("drop view worklist_rows")
    con.execute("drop table worklist_rows_issued")
    con.execute("drop table worklist_locked_cells")
    con.execute("alter table old_rows rename to worklist_rows")
    if not with_prefilled:
        con.execute("alter table worklist_rows drop column prefilled")
        before = [(*r[:8], None) for r in before]
    con.execute("delete from store_migrations where name = 'worklist_cells_once'")
    db = Path(scalar(con, "select path from duckdb_databases() where database_name = current_database()"))
    con.close()
    again = connect(db)
    try:
        assert _issued(again) == before
        assert scalar(again, "select count(*) from worklist_locked_cells") == 2
        assert scalar(again, "select count(*) from store_migrations where name = 'worklist_cells_once'") == 1
        worklists.write_worklists(again, out, AS_OF + dt.timedelta(days=4))
        assert scalar(again, "select count(*) from worklist_rows_issued") == 6
        assert scalar(again, "select count(*) from worklist_locked_cells") == 2  # the same cells: the same md5
    finally:
        again.close()
    with connect(db) as once_more:  # converted once: opened again, nothing moves
        assert scalar(once_more, "select count(*) from worklist_rows_issued") == 6


def test_worklists_are_owner_only_and_no_temporary_file_is_left(con, tmp_path):
    add_suspect(con, "S-A1")
    out = tmp_path / "out"
    path = worklists.write_worklists(con, out, AS_OF)[0]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert [p.name for p in out.iterdir()] == [path.name]


def test_cover_sheet_gives_agency_dates_counts_and_amounts_by_rule(con, tmp_path):
    add_suspect(con, "S-A1", amount="100.00")
    # partly recovered (核查中): the cover sums what the rows' 追回金额 show
    add_suspect(con, "S-A2", person_id="360702195001011242", amount="200.50", status="核查中",
                outcome=OUTCOME_LABELS[4], recovered_amount=Decimal("50.25"), verified_on=dt.date(2026, 9, 1))
    add_suspect(con, "S-A3", rule_id="LARGE_PAYMENT_UNREVIEWED", person_id=None, amount="60000.00")
    wb = openpyxl.load_workbook(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0])
    cover = {r[0]: r[1:] for r in wb["说明"].iter_rows(values_only=True) if r[0]}
    assert cover["涉及金额合计（元）"][0] == 60300.5 and cover["已追回金额合计（元）"][0] == 50.25
    assert cover["经办机构编码"][0] == A and cover["经办机构名称"][0] == "章贡区社保局"
    assert cover["下发日期"][0].date() == AS_OF
    assert cover["本次新下发疑点核查期限"][0].date() == add_working_days(AS_OF, 20)
    assert cover["疑点总数"][0] == 3
    assert not [k for k in cover if isinstance(k, str) and "尚未录入" in k]  # its deadlines' year is known
    assert cover["PAID_AFTER_DEATH"][1:3] == (2, 300.5)
    assert cover["LARGE_PAYMENT_UNREVIEWED"][1:3] == (1, 60000)
    # each rule's 政策依据, the documents named as they are written (no space a line fold in the
    # rule file would put into them)
    assert cover["规则编号"][3] == "政策依据"
    assert cover["PAID_AFTER_DEATH"][3].startswith(
        "赣市人社发〔2020〕9号《赣州市社会保险基金监督管理办法（试行）》第二十六条（")
    assert "第十八条（严格审核大额社保待遇支付，单笔超过一定额度的待遇支付未经复核不得发放）" in cover["LARGE_PAYMENT_UNREVIEWED"][3]
    assert not any(re.search(r"\s", cover[rule][3]) for rule in ("PAID_AFTER_DEATH", "LARGE_PAYMENT_UNREVIEWED"))
    assert cover["台账编号"][0].startswith(f"WL-{A}-")
    assert any(str(k).startswith("1. 只在黄色的四列填写") for k in cover)


def test_flags_from_casework_refresh_show_in_the_extra_columns(con, tmp_path):
    add_suspect(con, "S-A1", status="已下发", issued_on=dt.date(2026, 7, 1), deadline=dt.date(2026, 7, 29),
                first_detected_on=dt.date(2026, 6, 1))
    casework.refresh(con, AS_OF)
    rows = rows_by_id(sheet_of(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0]))
    assert rows["S-A1"]["逾期"] == "是" and rows["S-A1"]["挂牌督办"] == "是"
    assert rows["S-A1"]["疑点状态"] == "已下发"
    assert "死亡日期: 2025-12-03" in rows["S-A1"]["证据摘要"]


def _cover_lines(path) -> list[str]:
    return [r[0] for r in openpyxl.load_workbook(path)["说明"].iter_rows(values_only=True) if isinstance(r[0], str)]


def test_a_sheet_whose_deadlines_were_counted_without_a_holiday_notice_says_so(con, tmp_path, monkeypatch):
    """The 说明 promises 法定节假日、调休按国务院通知: where a 核查期限 falls in a year no notice is
    known for, the sheet says it was counted by the law's holidays only (found by an outside check)."""
    monkeypatch.setattr(workdays, "_warned_years", set())
    add_suspect(con, "S-A1")
    with pytest.warns(workdays.CalendarFallbackWarning):
        out = worklists.write_worklists(con, tmp_path / "out", dt.date(2026, 12, 21))[0]
    assert rows_by_id(sheet_of(out))["S-A1"]["核查期限"].year == 2027
    notes = [line for line in _cover_lines(out) if "尚未录入" in line]
    assert notes == ["   注：2027年的国务院节假日安排尚未录入，该年内的核查期限按法定节假日推算（未含调休、补假），可能相差一两天。"]


def test_a_cover_whose_own_deadline_was_counted_without_a_holiday_notice_says_so(con, tmp_path, monkeypatch):
    """The 说明's 本次新下发疑点核查期限 is a 核查期限 too: printed on a sheet none of whose rows was
    issued tonight (found by a probe of the worklists), it says how it was counted."""
    monkeypatch.setattr(workdays, "_warned_years", set())
    add_suspect(con, "S-A1", status="已下发", issued_on=dt.date(2026, 12, 1), deadline=dt.date(2026, 12, 29))
    with pytest.warns(workdays.CalendarFallbackWarning):
        out = worklists.write_worklists(con, tmp_path / "out", dt.date(2026, 12, 21))[0]
    assert rows_by_id(sheet_of(out))["S-A1"]["核查期限"].year == 2026
    cover = _cover_lines(out)
    deadline = [r for r in openpyxl.load_workbook(out)["说明"].iter_rows(values_only=True) if r[0] == "本次新下发疑点核查期限"]
    assert deadline and str(deadline[0][1])[:4] == "2027", deadline
    assert [line for line in cover if "尚未录入" in line] == [
        "   注：2027年的国务院节假日安排尚未录入，该年内的核查期限按法定节假日推算（未含调休、补假），可能相差一两天。"]


def test_a_deadline_running_into_a_year_entered_from_the_holiday_notice_skips_its_holidays(con, tmp_path):
    # Issued Monday 21 December 2026: 20 working days run into 2027, which chinesecalendar 1.11
    # does not know; the office entered the (made-up) notice: New Year 1–3 January off, Sunday 10
    # January on.
    path = tmp_path / "fundwatch.yaml"
    path.write_text("casework:\n  holidays: ['2027-01-01..2027-01-03', '2027-01-11..2027-01-15']\n"
                    "  adjusted_workdays: ['2027-01-10']\n", encoding="utf-8")
    config = load_config(path)
    issued = dt.date(2026, 12, 21)
    add_suspect(con, "S-A1")
    out = worklists.write_worklists(con, tmp_path / "out", issued, config)[0]
    deadline = scalar(con, "select deadline from suspects where suspect_id = 'S-A1'")
    # 22 Dec..31 Dec: 8 working days; then 4–8 Jan: 5; Sunday 10 Jan: 1; 11–15 Jan off; 18–22 Jan: 5;
    # the 20th is Monday 25 January. The fallback (Monday–Friday, less 元旦) would have given
    # Tuesday 19 January.
    assert deadline == dt.date(2027, 1, 25)
    assert add_working_days(issued, 20) == dt.date(2027, 1, 19)
    assert rows_by_id(sheet_of(out))["S-A1"]["核查期限"].date() == deadline
    assert not [line for line in _cover_lines(out) if "尚未录入" in line]  # the notice is entered
    assert casework.years_counted_by_the_week(con, config) == []
    # Without the notice the night's summary says the year was counted by the week.
    assert casework.years_counted_by_the_week(con, None) == [2027]
    assert "no holiday notice for 2027" in format_summary({"calendar_assumed_years": [2027]})


def test_earlier_nights_worklists_are_removed_so_out_holds_one_per_agency_with_open_suspects(con, tmp_path):
    out = tmp_path / "out"
    add_suspect(con, "S-A1")
    add_suspect(con, "S-B1", agency=B, person_id="360703195001011231")
    night_1 = worklists.write_worklists(con, out, AS_OF)
    assert sorted(p.name for p in out.glob("*.xlsx")) == [f"疑点核查台账_{A}_20261120.xlsx", f"疑点核查台账_{B}_20261120.xlsx"]
    con.execute("update suspects set status = '已销号' where suspect_id = 'S-B1'")  # B answered everything
    next_day = AS_OF + dt.timedelta(days=3)
    night_2 = worklists.write_worklists(con, out, next_day)
    removed, changed, unknown = worklists.retire_superseded(con, out, night_2, actor="clerk01")
    assert sorted(p.name for p in removed) == sorted(p.name for p in night_1) and changed == unknown == []
    assert [p.name for p in out.glob("*.xlsx")] == [f"疑点核查台账_{A}_20261123.xlsx"]  # B: none
    retired = con.execute("select actor, file, file_hash from audit_log where action = 'retire_worklist' "
                          "order by file").fetchall()
    exported = con.execute("select 'clerk01', file, file_hash from audit_log where action = 'export_worklist' "
                           "and file in (select unnest(?)) order by file", [[str(p) for p in night_1]]).fetchall()
    assert retired == exported  # each removal on record with the hash of what was removed
    # nothing more to do on a second call, and tonight's own file is never touched
    assert worklists.retire_superseded(con, out, night_2) == ([], [], [])
    assert night_2[0].is_file()


def test_an_earlier_worklist_changed_since_it_was_issued_is_left_and_named(con, tmp_path):
    out = tmp_path / "out"
    add_suspect(con, "S-A1")
    [night_1] = worklists.write_worklists(con, out, AS_OF)
    wb = openpyxl.load_workbook(night_1)  # a clerk filled it in where it lay
    wb[worklists.SHEET].cell(row=2, column=13, value="已核实")
    wb.save(night_1)
    night_2 = worklists.write_worklists(con, out, AS_OF + dt.timedelta(days=3))
    assert worklists.retire_superseded(con, out, night_2) == ([], [night_1.resolve()], [])
    assert night_1.is_file()
    summary = {"run_id": "r", "status": "completed", "worklists": 1, "worklist_files": [str(night_2[0])],
               "worklists_retired": 0, "worklists_left_changed": [str(night_1)]}
    assert f"1 earlier worklist(s) changed since issued, left in place: {night_1.name}" in format_summary(summary)


def _filled_in_where_it_lay(path: Path) -> bytes:
    """A clerk answers the first row (7, no problem) in the worklist where it lies in OUT; its bytes."""
    wb = openpyxl.load_workbook(path)
    ws = wb[worklists.SHEET]
    header = [c.value for c in ws[1]]
    ws.cell(row=2, column=header.index("核实结果") + 1, value=OUTCOME_LABELS[7])
    ws.cell(row=2, column=header.index("核实说明") + 1, value="已核实，无问题")
    wb.save(path)
    return path.read_bytes()


def test_a_night_run_again_for_the_same_date_keeps_a_worklist_filled_in_where_it_lay(con, tmp_path):
    """The same date's name is taken by a workbook a clerk filled in since it was written: it is
    kept byte for byte and named in the summary; tonight's goes beside it (…_2.xlsx). A workbook
    still as written is simply written again under its name."""
    out = tmp_path / "out"
    add_suspect(con, "S-A1")
    [first] = worklists.write_worklists(con, out, AS_OF)
    [again] = worklists.write_worklists(con, out, AS_OF)  # untouched: the same name again
    assert again == first and sorted(p.name for p in out.glob("*.xlsx")) == [first.name]
    filled = _filled_in_where_it_lay(first)
    [third] = worklists.write_worklists(con, out, AS_OF)
    assert third.name == f"疑点核查台账_{A}_20261120_2.xlsx" and first.read_bytes() == filled
    assert rows_by_id(sheet_of(third))["S-A1"]["核实结果"] is None  # tonight's own, not the clerk's
    assert worklists.retire_superseded(con, out, [third]) == ([], [first.resolve()], [])
    # a fourth run finds its own _2 as written and writes over it, leaving the clerk's file alone
    [fourth] = worklists.write_worklists(con, out, AS_OF)
    assert fourth == third and first.read_bytes() == filled
    assert sorted(p.name for p in out.glob("*.xlsx")) == [first.name, third.name]


def test_worklists_moved_with_the_store_to_another_folder_are_still_retired(con, tmp_path):
    """From an operations probe: the store and OUT moved together (a new disk); the earlier sheets,
    on record under the old folder, were never removed again — each night left them beside its own.
    A sheet is known by its bytes (the sha256 on record), wherever OUT was when it was written."""
    add_suspect(con, "S-A1")
    [night_1] = worklists.write_worklists(con, tmp_path / "old" / "out", AS_OF)
    (tmp_path / "new").mkdir()
    moved = Path(shutil.move(str(tmp_path / "old" / "out"), str(tmp_path / "new" / "out")))
    night_2 = worklists.write_worklists(con, moved, AS_OF + dt.timedelta(days=3))
    removed, changed, unknown = worklists.retire_superseded(con, moved, night_2)
    assert [p.name for p in removed] == [night_1.name] and changed == unknown == []
    assert [p.name for p in moved.glob("*.xlsx")] == [night_2[0].name]
    [retired] = con.execute("select file from audit_log where action = 'retire_worklist'").fetchall()
    assert retired == (str(moved.resolve() / night_1.name),)


def test_worklists_a_night_under_a_gb18030_locale_named_are_retired_and_named_by_a_utf8_night(con, tmp_path):
    """From a hostile-environment probe: a night run by hand from a GB18030 shell wrote its sheets'
    names in GB18030 bytes; the next night, from cron under UTF-8, neither removed those superseded
    sheets (their old amounts and deadlines stayed in OUT beside the new) nor named the ones it kept.
    Here the names are given those bytes as such a night writes them (this process's locale is UTF-8)."""
    import os

    from pipelines.runsummary import summarise

    add_suspect(con, "S-A1")
    add_suspect(con, "S-B1", agency=B, person_id="36070319600101123X")
    out = tmp_path / "out"
    night_1 = worklists.write_worklists(con, out, AS_OF)
    as_gb18030 = [Path(os.fsdecode(os.fsencode(str(out)) + b"/" + p.name.encode("gb18030"))) for p in night_1]
    for path, renamed in zip(night_1, as_gb18030):
        os.rename(path, renamed)
    changed = as_gb18030[1]
    with changed.open("ab") as f:  # a clerk's edit where it lay: left, and named
        f.write(b"\0")
    night_2 = worklists.write_worklists(con, out, AS_OF + dt.timedelta(days=3))
    removed, left_changed, unknown = worklists.retire_superseded(con, out, night_2)
    assert removed == [as_gb18030[0].resolve()] and left_changed == [changed.resolve()] and unknown == []
    assert not as_gb18030[0].exists()
    [retired] = con.execute("select file from audit_log where action = 'retire_worklist'").fetchall()
    assert retired == (str(out.resolve() / night_1[0].name),)
    said = summarise(con, {"run_id": "r", "as_of": AS_OF, "worklists": night_2, "worklists_changed": left_changed})
    assert said["worklists_left_changed"] == [str(out.resolve() / night_1[1].name)]


def test_a_worklist_the_store_has_no_record_of_is_neither_written_over_nor_removed(con, tmp_path):
    """From an operations probe: the store restored from a backup taken before a night, that night's
    sheet — filled in by a clerk where it lay in OUT — was written over by the night run again for
    its date, the answers gone without a word. A sheet not on record is kept byte for byte and named;
    tonight's goes beside it."""
    out = tmp_path / "out"
    add_suspect(con, "S-A1")
    con.execute("checkpoint")
    backup = tmp_path / "backup.duckdb"
    shutil.copy(tmp_path / "fw.duckdb", backup)
    [lost] = worklists.write_worklists(con, out, AS_OF)  # the night the restored store will not hold
    filled = _filled_in_where_it_lay(lost)
    restored = connect(backup)
    try:
        [again] = worklists.write_worklists(restored, out, AS_OF)
        assert again.name == f"疑点核查台账_{A}_20261120_2.xlsx" and lost.read_bytes() == filled
        assert worklists.retire_superseded(restored, out, [again]) == ([], [], [lost.resolve()])
        assert lost.read_bytes() == filled
        summary = {"run_id": "r", "status": "completed", "worklists": 1, "worklist_files": [str(again)],
                   "worklists_retired": 0, "worklists_left_unknown": [str(lost)]}
        assert (f"1 worklist(s) this store has no record of (issued by a night it does not hold — restored from a "
                f"backup? — or copied here), left in place: {lost.name}") in format_summary(summary)
        # a copy a clerk saved into OUT under a name of their own is theirs: neither removed nor named —
        # an untouched one was removed as the worklist it copies (a regression probe)
        shutil.copy(lost, out / f"{lost.stem}（已填）.xlsx")
        shutil.copy(again, out / f"{again.stem} - 副本.xlsx")
        shutil.copy(again, out / f"{lost.stem}_20261125.xlsx")
        assert worklists.retire_superseded(restored, out, [again]) == ([], [], [lost.resolve()])
        assert len(list(out.glob("*.xlsx"))) == 5
        # a name found in OUT may hold an ID number (an agency code delivered in the wrong column): masked
        from pipelines.runsummary import summarise
        found = out / "疑点核查台账_360702195001021234_20261120.xlsx"
        said = summarise(restored, {"run_id": "r", "as_of": AS_OF, "worklists": [again], "worklists_unknown": [found]})
        assert said["worklists_left_unknown"] and "360702195001021234" not in json.dumps(said, ensure_ascii=False)
    finally:
        restored.close()


def test_an_open_suspect_no_longer_detected_says_so_on_the_sheet(con, tmp_path):
    last = AS_OF - dt.timedelta(days=30)
    add_suspect(con, "S-A1", last_detected_on=last)  # gone since: a corrected record
    casework.add_event(con, "S-A1", "no_longer_detected", {"as_of": AS_OF, "last_detected_on": last})
    add_suspect(con, "S-A2", person_id="360702195001011242")  # found again tonight
    # unseen since, but its rule failed tonight: nothing is known to have changed
    add_suspect(con, "S-A3", person_id="360702195001011250", last_detected_on=last)
    rows = rows_by_id(sheet_of(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0]))
    assert rows["S-A1"]["证据摘要"].startswith("【最近一次检出为 2026-10-21，此后的数据已不再触发本规则")
    assert not rows["S-A2"]["证据摘要"].startswith("【") and not rows["S-A3"]["证据摘要"].startswith("【")


def test_a_relative_out_named_otherwise_on_a_later_night_still_retires_the_earlier_worklists(con, tmp_path,
                                                                                           monkeypatch):
    add_suspect(con, "S-A1")
    monkeypatch.chdir(tmp_path)
    [night_1] = worklists.write_worklists(con, "out", AS_OF)  # run from the office folder, OUT relative
    assert night_1.is_absolute()
    monkeypatch.chdir("/")
    night_2 = worklists.write_worklists(con, tmp_path / "out", AS_OF + dt.timedelta(days=3))  # absolute
    removed, changed, unknown = worklists.retire_superseded(con, tmp_path / "out", night_2)
    assert [p.name for p in removed] == [night_1.name] and changed == unknown == []
    assert [p.name for p in (tmp_path / "out").glob("*.xlsx")] == [night_2[0].name]


def test_the_evidence_column_reads_in_chinese_summary_first(con, tmp_path):
    """证据摘要 is for the clerk: the rule's own sentence first, then each field under the name the
    extracts give it in Chinese (or the rule's word for it), yes/no and empty in words — not the
    JSON's English keys."""
    add_suspect(con, "S-E1", rule_id="LARGE_PAYMENT_UNREVIEWED", evidence=json.dumps({
        "summary": "单笔 60000.00 元的一次性伤残补助金支付未经有效复核：无复核人",
        "finding": "无复核人", "threshold": 50000,
        "payment": {"payment_id": "FF1", "item": "一次性伤残补助金", "period": "202604", "paid_on": "2026-04-16",
                    "amount": 60000.0, "handled_by": "夏磊", "reviewed_by": None, "kept_as_largest": False}},
        ensure_ascii=False))
    text = rows_by_id(sheet_of(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0]))["S-E1"]["证据摘要"]
    assert text.startswith("单笔 60000.00 元的一次性伤残补助金支付未经有效复核：无复核人；问题: 无复核人；大额标准: 50000.00；"), text
    assert ("发放记录: 发放流水号=FF1，待遇项目=一次性伤残补助金，所属期=202604，发放日期=2026-04-16，金额=60000.00，"
            "经办人=夏磊，复核人=无，保留的最大一笔=否") in text, text
    assert not re.search(r"[a-z_]{4,}[:=]", text), text


def test_money_in_the_evidence_column_keeps_its_fen():
    """JSON writes a decimal 3237.60 as 3237.6: a field in yuan — amount, total, threshold, *_amount,
    or a key a rule author wrote in Chinese naming 金额 — shows two decimals; counts stay whole."""
    text = worklists.evidence_summary({"payments": [{"period": "202609", "amount": 3237.6}, {"amount": 3000}],
                                       "duplicate_amount": 3300.0, "persons": 3, "多发金额": 12.5, "total": 7,
                                       "同金额笔数": 4, "big_amount": 12345678901234.5})
    assert text == ("发放记录: 2项（所属期=202609，金额=3237.60，金额=3000.00）；重复金额: 3300.00；人数: 3；"
                    "多发金额: 12.50；合计: 7.00；同金额笔数: 4；big_amount: 12345678901234.50"), text


def test_an_agency_with_more_open_suspects_than_a_sheet_has_rows_fails_the_export_with_nothing_issued(con, tmp_path,
                                                                                                        monkeypatch):
    """XlsxWriter drops a row past the sheet's last without a word: those suspects would be marked
    已下发 and never reach the agency. (The limit, 1,048,575 rows, lowered to 2 here.)"""
    monkeypatch.setattr(worklists, "MAX_SHEET_ROWS", 2)
    for i in range(3):
        add_suspect(con, f"S-{A}-{i}", person_id=f"36070219500101{i:03d}X")
    add_suspect(con, f"S-{B}-1", agency=B)
    with pytest.raises(ValueError, match=f"机构 {A} 有 3 条未办结疑点，超过一张工作表的上限 2 行"):
        worklists.write_worklists(con, tmp_path / "out", AS_OF)
    assert con.execute("select distinct status from suspects").fetchall() == [("待下发",)]
    assert not list((tmp_path / "out").glob("*.xlsx"))
    assert con.execute("select count(*) from worklist_rows").fetchone() == (0,)
    assert con.execute("select count(*) from worklist_locked_cells").fetchone() == (0,)


def test_a_worklist_prints_on_a_few_landscape_pages_with_its_ids_beside_the_answers(con, tmp_path):
    """From a probe of the worklist as a clerk reads it: a 10-row sheet printed on 19 A4 portrait
    pages, 证据摘要 unbroken across eight of them, the answer columns on pages without 疑点编号, the
    cover's instructions cut at the page's edge. A4 landscape, two pages across with the header row
    and 疑点编号 on each, long texts wrapped in rows tall enough; the cover one page across."""
    import subprocess

    from test_returns import _soffice

    long = "；".join(f"发放记录{i}：2026-0{i % 9 + 1}-10 基本养老金 3,000.00 元，收款账号尾号 1234" for i in range(12))
    for i in range(3):
        add_suspect(con, f"S-A{i}", evidence=json.dumps({"summary": long}, ensure_ascii=False))
    [path] = worklists.write_worklists(con, tmp_path / "out", AS_OF)
    wb = openpyxl.load_workbook(path)
    ws = wb[worklists.SHEET]
    assert (ws.page_setup.orientation, ws.page_setup.paperSize) == ("landscape", 9)
    assert (ws.print_title_rows, ws.print_title_cols) == ("$1:$1", "$A:$A")
    assert ws.sheet_properties.pageSetUpPr.fitToPage and (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (2, 0)
    assert ws.page_setup.pageOrder == "overThenDown"
    evidence = [c for c in ws[1] if c.value == "证据摘要"][0].column
    assert ws.cell(row=2, column=evidence).alignment.wrap_text
    assert ws.row_dimensions[2].height >= 15 * 6  # the summary's lines, not one
    assert printing.row_height(printing.wrapped_lines("长" * 5000, 60)) == 409  # Excel's largest row
    cover = wb[worklists.COVER]
    assert cover.page_setup.orientation == "landscape" and cover.sheet_properties.pageSetUpPr.fitToPage
    assert cover.page_setup.fitToWidth in (None, 1) and cover.page_setup.fitToHeight == 0  # (1 wide: OOXML's default)
    how_to = [r for r in cover.merged_cells.ranges if str(cover.cell(r.min_row, 1).value).startswith("1. 只在黄色")]
    assert how_to and how_to[0].max_col == 5 and cover.cell(how_to[0].min_row, 1).alignment.wrap_text
    # 追回金额: at most two decimals on the sheet, as on return (100.555 showed as 100.56)
    [money_rule] = [dv for dv in ws.data_validations.dataValidation if dv.type == "custom"]
    assert "ROUND(" in money_rule.formula1 and ">=0" in money_rule.formula1
    if _soffice() is None:
        return  # (the layout above is what LibreOffice and Excel print from; CI has LibreOffice)
    done = subprocess.run([_soffice(), f"-env:UserInstallation={(tmp_path / 'lo').as_uri()}", "--headless",
                           "--convert-to", "pdf", "--outdir", str(tmp_path / "pdf"), str(path)],
                          capture_output=True, text=True, timeout=180)
    pdf = (tmp_path / "pdf" / path.with_suffix(".pdf").name).read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 3 <= pages <= 6, (pages, done.stderr)  # 2 across (× the rows' height) and the cover


def test_the_cover_says_where_to_send_the_sheet_and_whom_to_ask_when_the_office_sets_it(con, tmp_path):
    """From a probe of the worklist as a clerk reads it: the cover said only to send the sheet back,
    and refusals tell the clerk to ask the supervision office — without a name or a route anywhere."""
    add_suspect(con, "S-A1")
    config_file = tmp_path / "fundwatch.yaml"
    config_file.write_text("casework:\n  contact: 市人社局基金监督科 张某 0797-8888888，经省社保基金监管平台报送\n",
                           encoding="utf-8")
    [path] = worklists.write_worklists(con, tmp_path / "out", AS_OF, config=load_config(config_file))
    lines = [r[0] for r in openpyxl.load_workbook(path)[worklists.COVER].iter_rows(values_only=True) if r[0]]
    assert "9. 报送与联系：市人社局基金监督科 张某 0797-8888888，经省社保基金监管平台报送" in lines
    [plain] = worklists.write_worklists(con, tmp_path / "plain", AS_OF)
    assert not [x for x in (r[0] for r in openpyxl.load_workbook(plain)[worklists.COVER].iter_rows(values_only=True))
                if str(x).startswith("9. ")]
    config_file.write_text("casework:\n  contact: 12345\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="casework.contact: expected the text"):
        load_config(config_file)


def test_the_cover_names_the_office_that_issued_it_and_a_returned_copy_still_applies(con, tmp_path):
    """config `office`: a worklist forwarded or printed did not say which supervision office sent it."""
    from pipelines import returns

    add_suspect(con, "S-A1")
    config_file = tmp_path / "fundwatch.yaml"
    config_file.write_text("office: 赣州市人力资源和社会保障局基金监督科\n", encoding="utf-8")
    [path] = worklists.write_worklists(con, tmp_path / "out", AS_OF, config=load_config(config_file))
    wb = openpyxl.load_workbook(path)
    cover = {r[0]: r[1] for r in wb[worklists.COVER].iter_rows(max_col=2, values_only=True) if r[0]}
    assert cover["下发单位"] == "赣州市人力资源和社会保障局基金监督科" and cover["经办机构编码"] == A
    ws = wb[worklists.SHEET]
    header = [c.value for c in ws[1]]
    ws.cell(row=2, column=header.index("核实结果") + 1, value=OUTCOME_LABELS[7])
    ws.cell(row=2, column=header.index("核实说明") + 1, value="已核实，死亡日期录入错误")
    ws.cell(row=2, column=header.index("核实日期") + 1, value=dt.datetime(2026, 11, 25))
    wb.save(tmp_path / "returned.xlsx")
    report = returns.apply_returns(con, [tmp_path / "returned.xlsx"], dt.date(2026, 11, 26))
    assert report.refusals == []
    assert scalar(con, "select status from suspects where suspect_id = 'S-A1'") == "已销号"
    add_suspect(con, "S-A2", person_id="360702195001011242")
    [plain] = worklists.write_worklists(con, tmp_path / "plain", AS_OF + dt.timedelta(days=7))  # no office: no row
    assert "下发单位" not in [r[0] for r in openpyxl.load_workbook(plain)[worklists.COVER].iter_rows(values_only=True)]
    for bad in ("office: 12345\n", "office: \"基金监督处\\n张某\"\n", f"office: {'长' * 61}\n", "office: '  '\n"):
        config_file.write_text(bad, encoding="utf-8")
        with pytest.raises(SystemExit, match="office: expected the office's name on one line"):
            load_config(config_file)


def test_the_longest_rule_id_fits_its_column_on_the_sheet_and_on_the_cover_printed(con, tmp_path):
    """From a look at the printed worklist: UNEMPLOYMENT_WHILE_WORKING ran into 规则名称 on the sheet
    and was cut to UNEMPLOYMENT_WHILE_WO on the cover, its count at the foot of a tall row."""
    add_suspect(con, "S-A1", rule_id="UNEMPLOYMENT_WHILE_WORKING")
    add_suspect(con, "S-A2", person_id="360702195001011242", rule_id="PAID_AFTER_DEATH")
    [path] = worklists.write_worklists(con, tmp_path / "out", AS_OF)
    wb = openpyxl.load_workbook(path)
    ws = wb[worklists.SHEET]
    column = openpyxl.utils.get_column_letter(worklists.COLUMNS.index("规则编号") + 1)
    need = 1.25 * len("UNEMPLOYMENT_WHILE_WORKING")  # capitals, a quarter wider than a column's unit
    assert ws.column_dimensions[column].width >= need
    cover = wb[worklists.COVER]
    assert cover.column_dimensions["A"].width >= need
    [line] = [r for r in cover.iter_rows() if r[0].value == "UNEMPLOYMENT_WHILE_WORKING"]
    assert all(c.alignment.vertical == "top" for c in line[:5]), [c.alignment.vertical for c in line[:5]]
    # an own rule's id of 80 characters: the column stops at 60 rather than push the sheet off the page
    assert printing.rule_id_width(["X" * 80], worklists.WIDTHS["规则编号"]) == 60
    assert printing.rule_id_width([], worklists.WIDTHS["规则编号"]) == worklists.WIDTHS["规则编号"]


def test_the_printed_worklist_numbers_its_pages_rules_its_cells_and_keeps_the_covers_facts_beside_their_labels(
        con, tmp_path):
    """From a look at printed worklists (LibreOffice's PDF of each): 14 pages without a page number;
    data rows without a rule between them (a tall row's 规则名称 read as the next row's); the last line
    of a wrapped text cut in half at 15 points a line in a CJK font; the cover's dates and counts at
    the far edge of its column; an own rule's long 规则名称 cut on the cover."""
    long_title = "火化后仍按月发放基本养老金、失业保险金及其他各项定期待遇（东湖区本地核查规则，含跨统筹区转移接续人员）"
    add_suspect(con, "S-A1")
    [path] = worklists.write_worklists(con, tmp_path / "out", AS_OF)
    wb = openpyxl.load_workbook(path)
    ws, cover = wb[worklists.SHEET], wb[worklists.COVER]
    for sheet in (ws, cover):
        assert "第 &P 页 共 &N 页" in sheet.oddFooter.center.text, sheet.title
    assert all(ws.cell(2, c).border.left.style == "thin" for c in range(1, len(worklists.COLUMNS) + 1))
    facts = {r[0].value: r[1] for r in cover.iter_rows(max_col=2) if r[0].value}
    for label in ("下发日期", "本次新下发疑点核查期限", "疑点总数", "涉及金额合计（元）"):
        assert facts[label].alignment.horizontal == "left", label
    assert printing.row_height(1) >= 16 and printing.row_height(3) >= 48
    # an own rule's title as long as the one a clerk saw cut: wrapped, its row as tall as its lines
    texts = {"PAID_AFTER_DEATH": worklists.RuleText(long_title, "赣人社规〔2023〕1号")}
    small = tmp_path / "small.xlsx"
    flags = [{"rule_id": "PAID_AFTER_DEATH", "amount": Decimal("10"), "new": True, "overdue": False, "escalated": False}]
    rows = [dict.fromkeys(worklists.COLUMNS, "") | {"规则名称": long_title}]
    worklists._write_workbook(small, (A, "章贡区社保局"), "WL-1", AS_OF, AS_OF, rows, flags, texts)
    cover = openpyxl.load_workbook(small)[worklists.COVER]
    [line] = [r for r in cover.iter_rows() if r[0].value == "PAID_AFTER_DEATH"]
    assert line[1].value == long_title and line[1].alignment.wrap_text
    lines = printing.wrapped_lines(long_title, worklists.COVER_WIDTHS[1])
    assert lines >= 2 and cover.row_dimensions[line[1].row].height >= printing.row_height(lines)
