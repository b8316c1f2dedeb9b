"""Returns in: filled worklists applied by the outcome rules of CONTRACT §5, mistakes refused row by row."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from pipelines import casework, cli, returned_workbooks, returns, worklists
from pipelines.casework import OUTCOME_LABELS, OUTCOMES
from pipelines.config import Config
from pipelines.store import connect, scalar
from pipelines.worklists import file_sha256
from pipelines.workdays import add_working_days
from test_worklists import AS_OF, A, B, add_suspect

RETURN_DAY = AS_OF + dt.timedelta(days=10)


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "fw.duckdb")
    yield c
    c.close()


def issue(con, tmp_path, n=8, agency=A):
    for i in range(1, n + 1):
        add_suspect(con, f"S-{agency}-{i}", agency=agency, person_id=f"3607021950010{i:04d}"[:17] + "X",
                    amount="1000.00")
    return {p.name.split("_")[1]: p for p in worklists.write_worklists(con, tmp_path / "out", AS_OF)}


class Clerk:
    """Fills a worklist as an agency clerk would: opens it, types into the cells, saves."""

    def __init__(self, path: Path):
        self.path = path
        self.wb = openpyxl.load_workbook(path)
        self.ws = self.wb["疑点清单"]
        self.header = [c.value for c in self.ws[1]]
        self.rows = {self.ws.cell(row=r, column=1).value: r for r in range(2, self.ws.max_row + 1)}

    def fill(self, suspect_id, **cells):
        for name, value in cells.items():
            self.ws.cell(row=self.rows[suspect_id], column=self.header.index(name) + 1, value=value)
        return self.rows[suspect_id]

    def copy_sheet(self, title: str = "疑点清单 (2)", **answers: dict):
        """Copies 疑点清单 to a new sheet, as a clerk does, and types {suspect: {column: value}} into the copy."""
        copy = self.wb.copy_worksheet(self.ws)
        copy.title = title
        for suspect_id, cells in answers.items():
            for name, value in cells.items():
                copy.cell(row=self.rows[suspect_id], column=self.header.index(name) + 1, value=value)
        return copy

    def save(self, path: Path | None = None) -> Path:
        path = path or self.path.with_name("returned_" + self.path.name)
        self.wb.save(path)
        return path


def next_night_with_one_in_progress(con, tmp_path, n: int) -> Path:
    """S-1 answered 4 with 300 recovered (核查中); the next night's sheet, which shows that answer pre-filled."""
    path = issue(con, tmp_path, n=n)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=300)
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    return worklists.write_worklists(con, tmp_path / "out2", RETURN_DAY + dt.timedelta(days=1))[0]


def test_a_recovery_lowered_on_a_later_sheet_is_applied_with_a_notice(con, tmp_path):
    """From a probe of the worklist as a clerk reads it: 追回金额 is the total recovered (说明 item 4);
    a clerk who typed this month's instalment (100 after 300) lowered the record without a word."""
    second = next_night_with_one_in_progress(con, tmp_path, n=2)  # S-1: 4 with 300 on record
    later = Clerk(second)
    later.fill(f"S-{A}-1", 追回金额=100, 核实日期=RETURN_DAY + dt.timedelta(days=2))
    report = returns.apply_returns(con, [later.save()], RETURN_DAY + dt.timedelta(days=2))
    assert report.refusals == []
    [row] = report.applied
    assert "追回金额由 300.00 元减为 100.00 元" in row.notice and "累计" in row.notice, row.notice
    assert status_of(con, f"S-{A}-1")[2] == Decimal("100.00")  # applied: a figure typed too high is corrected so


def test_a_recovery_above_a_fallen_amount_is_no_lowering(con, tmp_path):
    """From a probe of today's worklist changes: 300 on record, the amount at risk fell to 250 since,
    and 400 typed — recorded as 250 (the loss recovered; the rest as interest), which the new notice
    took for a lowered total and asked the clerk to send the total again."""
    next_night_with_one_in_progress(con, tmp_path, n=2)  # S-1: 4 with 300 on record
    con.execute(f"update suspects set amount = 250 where suspect_id = 'S-{A}-1'")
    [third] = [p for p in worklists.write_worklists(con, tmp_path / "out3", RETURN_DAY + dt.timedelta(days=2))
               if A in p.name]
    later = Clerk(third)
    later.fill(f"S-{A}-1", 追回金额=400, 核实日期=RETURN_DAY + dt.timedelta(days=3))
    report = returns.apply_returns(con, [later.save()], RETURN_DAY + dt.timedelta(days=3))
    [row] = report.applied
    assert "高于涉及金额" in row.notice and "减为" not in row.notice, row.notice


def rows_by_id_of(path):
    ws = openpyxl.load_workbook(path)["疑点清单"]
    header = [c.value for c in ws[1]]
    return {r[0]: dict(zip(header, r)) for r in ws.iter_rows(min_row=2, values_only=True) if r[0]}


def status_of(con, sid):
    return con.execute("select status, outcome, recovered_amount, verification_note, verified_on, closed_on"
                       " from suspects where suspect_id = ?", [sid]).fetchall()[0]


def events(con, sid=None):
    sql = "select suspect_id, event from suspect_events where event not in ('issued')"
    return con.execute(sql + (" and suspect_id = ?" if sid else "") + " order by happened_at, event",
                       [sid] if sid else []).fetchall()


def _unprotected(path: Path):
    wb = openpyxl.load_workbook(path)
    ws = wb["疑点清单"]
    ws.protection.sheet = False
    return wb, ws


def _first_row_answered_closes(con, tmp_path, wb, ws, header_row: int = 1) -> None:
    """Outcome 1 with its note typed into the first row below the header, the workbook returned:
    its suspect (S-A-1) closes, nothing refused."""
    header = [c.value for c in ws[header_row]]
    ws.cell(row=header_row + 1, column=header.index("核实结果") + 1, value="1")
    ws.cell(row=header_row + 1, column=header.index("核实说明") + 1, value="后台数据已更正")
    out = tmp_path / "answered.xlsx"
    wb.save(out)
    assert returns.apply_returns(con, [out], RETURN_DAY).refusals == []
    assert status_of(con, f"S-{A}-1")[0] == "已销号"


def test_a_control_character_in_a_locked_cell_does_not_make_the_row_impossible_to_return(con, tmp_path):
    """A memo with a Windows line break (CR LF) or a name with a stray control character: the sheet
    shows the text without them, and the row, its locked cells untouched, applies — also from a sheet
    issued before, whose record still holds the CR (read back as XlsxWriter's _x000D_ escape)."""
    add_suspect(con, f"S-{A}-1", name="张\x07三", evidence=json.dumps({"summary": "往来\r\n借款 7777.00 元", "memo": "往来\r借款"},
                                                                   ensure_ascii=False))
    add_suspect(con, f"S-{A}-2", person_id="360702195001011242", name="钱\uffff芳")  # a noncharacter XML escapes too
    # text that reads like an escape is text: a surrogate pair written so, a digit
    add_suspect(con, f"S-{A}-3", person_id="360702195001011250", name="张_x0033_三",
                evidence=json.dumps({"summary": "退款_xD83D__xDE00_"}, ensure_ascii=False))
    [path] = worklists.write_worklists(con, tmp_path / "out", AS_OF)
    assert rows_by_id_of(path)[f"S-{A}-3"]["姓名"] == "张_x0033_三"
    assert rows_by_id_of(path)[f"S-{A}-3"]["证据摘要"].startswith("退款_xD83D__xDE00_")
    row = rows_by_id_of(path)[f"S-{A}-1"]
    assert row["姓名"] == "张三" and row["证据摘要"].startswith("往来\n借款") and "_x00" not in row["证据摘要"]
    assert rows_by_id_of(path)[f"S-{A}-2"]["姓名"] == "钱芳"
    # a sheet issued before this was mended: its record holds the text as the store has it
    con.execute("update worklist_locked_cells set locked = json_merge_patch(locked, ?) where locked_md5 = "
                "(select locked_md5 from worklist_rows_issued where suspect_id = ?)",
                [json.dumps({"姓名": "张\x07三"}, ensure_ascii=False), f"S-{A}-1"])
    clerk = Clerk(path)
    clerk.ws.cell(row=clerk.rows[f"S-{A}-1"], column=clerk.header.index("姓名") + 1, value="张_x0007_三")
    for sid in (f"S-{A}-1", f"S-{A}-2", f"S-{A}-3"):
        clerk.fill(sid, 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题", 核实日期=dt.date(2026, 11, 25))
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == [], report.refusals
    assert sorted(a.suspect_id for a in report.applied) == [f"S-{A}-1", f"S-{A}-2", f"S-{A}-3"], report
    assert status_of(con, f"S-{A}-1")[0] == "已销号"


def test_a_note_pre_filled_on_a_sheet_issued_before_is_kept_without_its_escape(con, tmp_path):
    """A 核查中 suspect's note with a CR LF, pre-filled on a sheet written before control characters
    were dropped (read back as 第一行_x000D_ and a line break): the clerk raises only 追回金额, and the
    note is stored as the text it is, not with the escape."""
    add_suspect(con, f"S-{A}-1", status="核查中", outcome=OUTCOME_LABELS[4], recovered_amount=Decimal("100.00"),
                verification_note="第一行\r\n第二行", verified_on=AS_OF - dt.timedelta(days=5))
    clerk = Clerk(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0])
    clerk.fill(f"S-{A}-1", 核实说明="第一行_x000D_\n第二行", 追回金额=200)  # as the older sheet reads back
    assert returns.apply_returns(con, [clerk.save()], RETURN_DAY).refusals == []
    assert status_of(con, f"S-{A}-1")[2:4] == (Decimal("200.00"), "第一行\n第二行")


def test_every_outcome_is_applied_by_the_contract_rules(con, tmp_path):
    path = issue(con, tmp_path)[A]
    clerk = Clerk(path)
    for n in (1, 2, 3, 7):
        clerk.fill(f"S-{A}-{n}", 核实结果=OUTCOME_LABELS[n], 核实说明=f"说明{n}", 核实日期=dt.date(2026, 11, 25))
    clerk.fill(f"S-{A}-4", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实说明="已全额追回")
    clerk.fill(f"S-{A}-5", 核实结果=OUTCOME_LABELS[5], 核实说明="转稽核")
    clerk.fill(f"S-{A}-6", 核实结果=OUTCOME_LABELS[6])
    clerk.fill(f"S-{A}-8", 核实结果=OUTCOME_LABELS[4], 追回金额=400.5)
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY, actor="clerk01")
    assert report.refusals == []
    for n in (1, 2, 3, 7):
        assert status_of(con, f"S-{A}-{n}")[:2] == ("已销号", OUTCOME_LABELS[n])
        assert status_of(con, f"S-{A}-{n}")[5] == dt.date(2026, 11, 25)  # closed on the 核实日期
    assert status_of(con, f"S-{A}-4")[0] == "已销号" and status_of(con, f"S-{A}-4")[5] == RETURN_DAY
    assert status_of(con, f"S-{A}-5")[0] == "已移送" and status_of(con, f"S-{A}-6")[0] == "已移送"
    partial = status_of(con, f"S-{A}-8")
    assert (partial[0], partial[2], partial[5]) == ("核查中", Decimal("400.50"), None)
    assert events(con, f"S-{A}-1") == [(f"S-{A}-1", "closed"), (f"S-{A}-1", "returned")]
    assert {e for _, e in events(con, f"S-{A}-4")} == {"returned", "recovered", "closed"}
    assert {e for _, e in events(con, f"S-{A}-6")} == {"returned", "transferred"}
    assert {e for _, e in events(con, f"S-{A}-8")} == {"returned", "recovered"}
    assert report.pending == 0
    audit = con.execute("select actor, agency_code, suspect_ids from audit_log where action = 'apply_return'").fetchall()
    assert audit[0][:2] == ("clerk01", A) and len(json.loads(audit[0][2])) == 8


def test_an_empty_row_is_not_yet_verified_and_not_a_refusal(con, tmp_path):
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == [] and report.pending == 1
    assert status_of(con, f"S-{A}-2")[0] == "已下发"


@pytest.mark.parametrize("typed", ["7", 7, 7.0, "经核实无问题", "7. 经核实无问题", "7、经核实无问题"])
def test_outcome_is_accepted_as_full_text_text_without_number_or_number(con, tmp_path, typed):
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=typed, 核实说明="核实无问题")
    assert returns.apply_returns(con, [clerk.save()], RETURN_DAY).refusals == []
    assert status_of(con, f"S-{A}-1")[:2] == ("已销号", OUTCOME_LABELS[7])


def test_every_kind_of_mistake_is_refused_with_row_and_column_and_the_other_rows_apply(con, tmp_path):
    issue(con, tmp_path, n=1, agency=B)
    path = issue(con, tmp_path, n=8)[A]
    clerk = Clerk(path)
    clerk.ws.protection.sheet = False  # the clerk removed the protection to "fix" things
    ok = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[1], 核实说明="已更正")
    r_amount = clerk.fill(f"S-{A}-2", 涉及金额=10, 核实结果=OUTCOME_LABELS[7], 核实说明="改了金额")
    r_outcome = clerk.fill(f"S-{A}-3", 核实结果="8. 已处理", 核实说明="x")
    r_money = clerk.fill(f"S-{A}-4", 核实结果=OUTCOME_LABELS[4], 追回金额="一千元")
    r_date = clerk.fill(f"S-{A}-5", 核实结果=OUTCOME_LABELS[5], 核实日期="2026-13-45")
    r_over = clerk.fill(f"S-{A}-6", 核实结果=OUTCOME_LABELS[4], 追回金额=2000.01)  # more than twice the 1000.00: a typo
    r_future = clerk.fill(f"S-{A}-7", 核实结果=OUTCOME_LABELS[7], 核实说明="x", 核实日期=RETURN_DAY + dt.timedelta(days=1))
    r_note = clerk.fill(f"S-{A}-8", 核实结果=OUTCOME_LABELS[2])
    # an unknown 疑点编号 and agency B's suspect pasted below
    last = clerk.ws.max_row
    for offset, sid in enumerate(("S-NOPE", f"S-{B}-1"), start=1):
        clerk.ws.cell(row=last + offset, column=1, value=sid)
        clerk.ws.cell(row=last + offset, column=clerk.header.index("核实结果") + 1, value=OUTCOME_LABELS[7])
        clerk.ws.cell(row=last + offset, column=clerk.header.index("核实说明") + 1, value="x")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    got = {(r.row, r.column) for r in report.refusals}
    assert got == {(r_amount, "涉及金额"), (r_outcome, "核实结果"), (r_money, "追回金额"), (r_date, "核实日期"),
                   (r_over, "追回金额"), (r_future, "核实日期"), (r_note, "核实说明"),
                   (last + 1, "疑点编号"), (last + 2, "疑点编号")}
    assert all(Path(r.file).name == "returned_" + path.name and r.reason for r in report.refusals)
    assert "其他经办机构" in next(r.reason for r in report.refusals if r.row == last + 2)
    assert "不存在" in next(r.reason for r in report.refusals if r.row == last + 1)
    assert status_of(con, f"S-{A}-1")[0] == "已销号" and ok == 2
    for i in range(2, 9):
        assert status_of(con, f"S-{A}-{i}")[0] == "已下发", i
    assert status_of(con, f"S-{B}-1")[0] == "已下发"
    stored = con.execute("select row_number, column_name from return_refusals").fetchall()
    assert set(stored) == got
    assert any("第" in line and "涉及金额" in line for line in report.lines())


def test_a_verification_date_with_a_mistyped_year_is_refused(con, tmp_path):
    """0206-11-20 for 2026-11-20, pasted past the sheet's own validation: refused, not stored as a
    verification in the year 206 (a 重大要情 report date, a pre-filled cell no sheet can show)."""
    clerk = Clerk(issue(con, tmp_path, n=4)[A])  # suspects about 202601–202603
    typo = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=100, 核实日期="0206-11-20")
    # 2001 for 2026, which the sheet's own validation lets through: it would close the suspect then
    # (found by an outside model-based test of returns)
    early = clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=100, 核实日期="2001-03-04")
    # paid ahead: 202603 two months before its month at the earliest (202601 a month before)
    clerk.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[4], 追回金额=100, 核实日期="2026-01-01")
    before = clerk.fill(f"S-{A}-4", 核实结果=OUTCOME_LABELS[4], 追回金额=100, 核实日期="2025-12-31")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert [(r.row, r.column) for r in report.refusals] == [(typo, "核实日期"), (early, "核实日期"), (before, "核实日期")]
    assert "核实日期 0206-11-20 早于 2000-01-01" in report.refusals[0].reason
    assert "核实日期 2001-03-04 早于疑点所属期 202601 一个多月，请检查年份" in report.refusals[1].reason
    assert status_of(con, f"S-{A}-1")[0] == "已下发" and status_of(con, f"S-{A}-1")[4] is None
    assert status_of(con, f"S-{A}-2")[0] == "已下发"
    assert "核实日期 2025-12-31 早于疑点所属期止 202603 两个多月" in report.refusals[2].reason
    assert status_of(con, f"S-{A}-3")[0] == "核查中"


def test_last_years_number_typed_in_january_is_refused_by_the_months_the_row_answers(con, tmp_path):
    """The slip of January, 2026-01-05 for 2027-01-05 (a year-boundary probe): a finding of 202602–
    202612 answered so was applied, 已移送 on 2026-01-05 with a 重大要情 report due a year before —
    the bound by 所属期起 alone let it through. A date both before 所属期止's payments (two months' grace)
    and half a year before the detection is refused; either alone is taken (a year paid ahead)."""
    add_suspect(con, "S-long", period_from="202602", period_to="202611", person_id="360702195001010011")
    # a year's pension paid ahead in January (periods to 202612), the death found in June: verified in July
    add_suspect(con, "S-ahead", period_from="202606", period_to="202612", person_id="360702195001010041",
                first_detected_on=dt.date(2026, 6, 20))
    add_suspect(con, "S-month", period_from="202611", period_to="202611", person_id="360702195001010021")
    add_suspect(con, "S-month-2", period_from="202611", period_to="202611", person_id="360702195001010031")
    clerk = Clerk({p.name.split("_")[1]: p for p in worklists.write_worklists(con, tmp_path / "out", AS_OF)}[A])
    slip = clerk.fill("S-long", 核实结果=OUTCOME_LABELS[5], 核实说明="已转稽核", 核实日期="2026-01-05")
    clerk.fill("S-month", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题", 核实日期="2026-10-01")  # a month's grace
    early = clerk.fill("S-month-2", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题", 核实日期="2026-09-30")
    clerk.fill("S-ahead", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题", 核实日期="2026-07-01")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert [(r.row, r.column) for r in report.refusals] == [(slip, "核实日期"), (early, "核实日期")]
    assert "核实日期 2026-01-05 早于疑点所属期止 202611 两个多月，也早于疑点发现（2026-11-01）半年多" in report.refusals[0].reason
    assert "核实日期 2026-09-30 早于疑点所属期 202611 一个多月" in report.refusals[1].reason
    assert [status_of(con, s)[0] for s in ("S-long", "S-month", "S-month-2", "S-ahead")] == ["已下发", "已销号", "已下发", "已销号"]


def test_reapplying_the_same_workbook_changes_nothing(con, tmp_path):
    path = issue(con, tmp_path, n=3)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=300)
    clerk.fill(f"S-{A}-3", 核实结果="9")
    returned = clerk.save()
    first = returns.apply_returns(con, [returned], RETURN_DAY)
    assert len(first.applied) == 2 and len(first.refusals) == 1
    before = (scalar(con, "select count(*) from suspect_events"), scalar(con, "select count(*) from audit_log"),
              scalar(con, "select count(*) from return_refusals"))
    again = returns.apply_returns(con, [returned], RETURN_DAY + dt.timedelta(days=3))
    # sent again, only the row refused the first time is looked at again: refused again, the same way
    assert again.applied == [] and again.files[0].unchanged == 2
    assert [(r.row, r.column) for r in again.refusals] == [(r.row, r.column) for r in first.refusals]
    # a copy saved again (other bytes, same answers) also changes nothing
    resaved = Clerk(returned)
    resaved.wb.properties.lastModifiedBy = "另一位经办人"  # saved by someone else: other bytes even within the same second
    copy = resaved.save(tmp_path / "copy.xlsx")
    assert file_sha256(copy) != file_sha256(returned)
    third = returns.apply_returns(con, [copy], RETURN_DAY + dt.timedelta(days=3))
    assert third.applied == [] and third.files[0].unchanged == 2
    after = (scalar(con, "select count(*) from suspect_events"), scalar(con, "select count(*) from audit_log"),
             scalar(con, "select count(*) from return_refusals"))
    assert after[0] == before[0]
    assert status_of(con, f"S-{A}-2")[0] == "核查中"


def test_partial_recovery_stays_in_progress_and_closes_once_the_amount_is_covered(con, tmp_path):
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额="600.00", 核实日期="2026/11/24")
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert status_of(con, f"S-{A}-1")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("600.00"))
    # the next worklist carries it, with what is already recorded
    later = RETURN_DAY + dt.timedelta(days=7)
    nxt = worklists.write_worklists(con, tmp_path / "out2", later)[0]
    clerk = Clerk(nxt)
    row = clerk.rows[f"S-{A}-1"]
    assert clerk.ws.cell(row=row, column=clerk.header.index("追回金额") + 1).value == 600
    clerk.fill(f"S-{A}-1", 追回金额="1,000.00", 核实日期=dt.datetime(2026, 12, 4))
    returns.apply_returns(con, [clerk.save()], later)
    assert status_of(con, f"S-{A}-1")[0] == "已销号" and status_of(con, f"S-{A}-1")[5] == dt.date(2026, 12, 4)
    recovered = [json.loads(d) for (d,) in con.execute(
        "select detail from suspect_events where event = 'recovered' order by happened_at").fetchall()]
    assert [r["to"] for r in recovered] == ["600.00", "1000.00"]


def test_a_recovery_completed_on_a_later_sheet_is_not_closed_on_the_partial_recoverys_date(con, tmp_path):
    """A 核查中 suspect (4, 300 of 1000 on RETURN_DAY) completed on a later sheet with its pre-filled
    核实日期 left: it closed on RETURN_DAY, a day it was still partly open, before that sheet was
    issued (found by an outside model-based test of returns). It closes on the day of the return,
    as with the date emptied; with a later date typed, on that date."""
    second = next_night_with_one_in_progress(con, tmp_path, n=4)
    for sid in (f"S-{A}-2", f"S-{A}-3", f"S-{A}-4"):  # more partial recoveries on record, for the other ways
        clerk = Clerk(second)
        clerk.fill(sid, 核实结果=OUTCOME_LABELS[4], 追回金额=300, 核实日期=RETURN_DAY)
        assert returns.apply_returns(con, [clerk.save(tmp_path / f"{sid}.xlsx")], RETURN_DAY + dt.timedelta(days=1)).refusals == []
    third = worklists.write_worklists(con, tmp_path / "out3", RETURN_DAY + dt.timedelta(days=2))[0]
    clerk = Clerk(third)
    clerk.fill(f"S-{A}-1", 追回金额=1000)  # the pre-filled 核实日期 left as it was
    clerk.fill(f"S-{A}-2", 追回金额=1000, 核实日期="")  # emptied
    clerk.fill(f"S-{A}-3", 追回金额=1000, 核实日期=RETURN_DAY + dt.timedelta(days=3))
    earlier = clerk.fill(f"S-{A}-4", 追回金额=1000, 核实日期=RETURN_DAY - dt.timedelta(days=1))  # before the partial
    applied_on = RETURN_DAY + dt.timedelta(days=5)
    report = returns.apply_returns(con, [clerk.save()], applied_on)
    assert [(r.row, r.column) for r in report.refusals] == [(earlier, "核实日期")] and report.files[0].applied == 3
    assert f"早于上次部分追回的核实日期 {RETURN_DAY}" in report.refusals[0].reason
    assert status_of(con, f"S-{A}-4")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("300.00"))
    assert status_of(con, f"S-{A}-1")[0] == "已销号" and status_of(con, f"S-{A}-1")[4:] == (applied_on, applied_on)
    assert status_of(con, f"S-{A}-2")[0] == "已销号" and status_of(con, f"S-{A}-2")[5] == applied_on
    assert status_of(con, f"S-{A}-3")[0] == "已销号" and status_of(con, f"S-{A}-3")[5] == RETURN_DAY + dt.timedelta(days=3)
    # the workbook re-saved by another program (other bytes, the same cells) and sent again: the
    # re-dated completions are what these cells said — nothing changes and nothing is refused but
    # the row refused before (it was refused "已销号, 不再接受变更")
    resaved = Clerk(clerk.save())
    resaved.wb.properties.creator = "LibreOffice"
    again = returns.apply_returns(con, [resaved.save(tmp_path / "resaved.xlsx")], applied_on + dt.timedelta(days=1))
    assert [(r.row, r.column) for r in again.refusals] == [(earlier, "核实日期")]
    assert (again.files[0].applied, again.files[0].unchanged) == (0, 3)
    assert status_of(con, f"S-{A}-1")[4:] == (applied_on, applied_on)


def test_a_store_from_before_class_verified_on_keeps_a_major_losss_report_date_from_its_first_answer(con, tmp_path):
    """A 重大要情 answered 4 twice on sheets showing the same 150,000.00 (a partial recovery, then the
    rest) by a version that kept no class_verified_on: the casework dated it by the later answer and
    moved the report date on (found by an upgrade probe). The conversion takes the first answer's."""
    add_suspect(con, "S-BIG", amount="150000.00", person_id="360702195001011234")
    first = Clerk(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0])
    first.fill("S-BIG", 核实结果=OUTCOME_LABELS[4], 追回金额=50000, 核实日期=RETURN_DAY)
    assert returns.apply_returns(con, [first.save()], RETURN_DAY, config=Config()).refusals == []
    later = RETURN_DAY + dt.timedelta(days=7)
    second = Clerk(worklists.write_worklists(con, tmp_path / "out2", later)[0])
    second.fill("S-BIG", 追回金额=150000, 核实日期=later)
    assert returns.apply_returns(con, [second.save()], later, config=Config()).refusals == []
    due = add_working_days(RETURN_DAY, 5)
    assert major_of(con, "S-BIG") == ("重大要情", due)
    path = tmp_path / "fw.duckdb"
    con.execute("update suspects set class_verified_on = null")  # as that version left it
    con.execute("delete from store_migrations where name = 'class_verified_on'")
    con.close()
    con = connect(path)
    try:
        assert scalar(con, "select class_verified_on from suspects") == RETURN_DAY
        casework.refresh(con, later + dt.timedelta(days=1), Config())
        assert major_of(con, "S-BIG") == ("重大要情", due)
    finally:
        con.close()


def test_a_workbook_without_its_cover_is_told_by_its_rows(con, tmp_path):
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    del clerk.wb["说明"]
    clerk.wb.properties.subject = None
    clerk.wb.custom_doc_props.props.clear()
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[3], 核实说明="已告知单位")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == [] and report.files[0].agency_code == A
    assert status_of(con, f"S-{A}-1")[0] == "已销号"


def test_a_pre_filled_answer_left_on_a_copy_without_its_cover_does_not_undo_a_later_answer(con, tmp_path):
    """The 疑点清单 of the next night's sheet, copied into a new workbook (no 说明, no properties):
    its row pre-filled with the answer on record (4, 300) and left untouched was read as a new
    answer and set the recovery back from 600 to 300 (found by an outside model-based test of
    returns). The export is told by its rows, and so is what it showed pre-filled."""
    second = next_night_with_one_in_progress(con, tmp_path, n=2)  # S-1: 4 with 300 on record
    later = Clerk(second)
    later.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=600, 核实日期=RETURN_DAY + dt.timedelta(days=2))
    assert returns.apply_returns(con, [later.save()], RETURN_DAY + dt.timedelta(days=2)).refusals == []
    # a further night: its sheet shows S-1's locked cells as `second` did, and 600 pre-filled
    worklists.write_worklists(con, tmp_path / "out3", RETURN_DAY + dt.timedelta(days=3))
    copy = Clerk(second)
    del copy.wb["说明"]
    copy.wb.properties.subject = None
    copy.wb.custom_doc_props.props.clear()
    copy.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[3], 核实说明="已告知单位")
    report = returns.apply_returns(con, [copy.save(tmp_path / "copy.xlsx")], RETURN_DAY + dt.timedelta(days=3))
    assert report.refusals == [] and report.files[0].unchanged == 1 and report.files[0].applied == 1
    assert status_of(con, f"S-{A}-1")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("600.00"))
    assert status_of(con, f"S-{A}-2")[0] == "已销号"


def test_a_copy_that_cannot_apply_does_not_veto_another_copys_answer(con, tmp_path):
    """Two copies of one sheet in one call: one refused whole (a contract column deleted) or whose
    row is refused for what it holds (an outcome not in the list) applies nothing, so the other
    copy's answer applies — it was refused as "answered differently", and the clerk never learnt
    that 9 is no outcome (found by an outside model-based test of returns)."""
    path = issue(con, tmp_path, n=2)[A]
    good = Clerk(path)
    good.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    good.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    bad_outcome = Clerk(path)
    row = bad_outcome.fill(f"S-{A}-1", 核实结果="9", 核实说明="无问题")
    no_name = Clerk(path)
    no_name.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[3], 核实说明="已告知")
    no_name.ws.delete_cols(no_name.header.index("姓名") + 1)
    report = returns.apply_returns(con, [good.save(tmp_path / "good.xlsx"), bad_outcome.save(tmp_path / "nine.xlsx"),
                                         no_name.save(tmp_path / "no_name.xlsx")], RETURN_DAY)
    assert status_of(con, f"S-{A}-1")[:2] == ("已销号", OUTCOME_LABELS[7])
    assert status_of(con, f"S-{A}-2")[:2] == ("已销号", OUTCOME_LABELS[7])
    nine = [r for r in report.refusals if Path(r.file).name == "nine.xlsx"]
    assert [(r.row, r.column) for r in nine] == [(row, "核实结果")] and "不是七种核实结果之一" in nine[0].reason
    assert not [r for r in report.refusals if "核实内容不同" in r.reason]


def test_a_copy_refused_for_a_missing_note_or_a_future_date_vetoes_no_other_copy(con, tmp_path):
    path = issue(con, tmp_path, n=2)[A]
    good = Clerk(path)
    good.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实日期=RETURN_DAY)
    good.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实日期=RETURN_DAY)
    bad = Clerk(path)
    no_note = bad.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7])  # 7 needs a 核实说明
    future = bad.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实日期=RETURN_DAY + dt.timedelta(days=1))
    report = returns.apply_returns(con, [good.save(tmp_path / "good.xlsx"), bad.save(tmp_path / "bad.xlsx")], RETURN_DAY)
    assert status_of(con, f"S-{A}-1")[0] == status_of(con, f"S-{A}-2")[0] == "已销号"
    # (7 not also for the recovery the other copy put on record: that copy closed the suspect, and a
    # closed one's recovery is no cell of this sheet — returns._read_answer)
    assert sorted((r.row, r.column) for r in report.refusals) == [(no_note, "核实说明"), (future, "核实日期")]


def test_a_copy_refused_for_what_its_suspect_allows_vetoes_no_other_copy(con, tmp_path):
    """A 追回金额 more than twice the suspect's amount, or a 核实日期 years before its 所属期, cannot apply to
    that suspect: such a copy vetoed the other copy's answer (the cells alone could not tell it)."""
    path = issue(con, tmp_path, n=2)[A]
    good = Clerk(path)
    good.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实日期=RETURN_DAY)
    good.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题", 核实日期=RETURN_DAY)
    bad = Clerk(path)
    over = bad.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=10000, 核实日期=RETURN_DAY)  # a 0 too many
    ancient = bad.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题", 核实日期="2006-11-25")
    files = [bad.save(tmp_path / "bad.xlsx"), good.save(tmp_path / "good.xlsx")]
    report = returns.apply_returns(con, files, RETURN_DAY)
    assert sorted((Path(r.file).name, r.row, r.column) for r in report.refusals) == [
        ("bad.xlsx", over, "追回金额"), ("bad.xlsx", ancient, "核实日期")]
    assert status_of(con, f"S-{A}-1")[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1000.00"))
    assert status_of(con, f"S-{A}-2")[:2] == ("已销号", OUTCOME_LABELS[7])


def test_a_name_typed_into_a_cell_is_not_repeated_in_a_refusal(con, tmp_path):
    """README: a name typed into the wrong cell is not repeated — the 疑点编号 and the locked
    columns quoted in a refusal repeated it whole (found by an outside model-based test)."""
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    clerk.ws.protection.sheet = False
    clerk.fill(f"S-{A}-1", 规则名称="陈文鑫", 核实结果=OUTCOME_LABELS[7], 核实说明="x")
    last = clerk.ws.max_row
    for offset, typed in enumerate(("刘俊刚", "彭德明", "彭德明"), start=1):  # the last pasted on two rows
        clerk.ws.cell(row=last + offset, column=1, value=typed)
        clerk.ws.cell(row=last + offset, column=clerk.header.index("核实结果") + 1, value=OUTCOME_LABELS[7])
        clerk.ws.cell(row=last + offset, column=clerk.header.index("核实说明") + 1, value="x")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    reasons = [r.reason for r in report.refusals]
    assert len(reasons) == 4 and not [r for r in reasons if "陈文鑫" in r or "刘俊刚" in r or "彭德明" in r], reasons
    assert any("疑点编号“刘…”不存在" in r for r in reasons) and any("现为“陈…”" in r for r in reasons)
    stored = con.execute("select suspect_id, reason from return_refusals").fetchall()
    assert not [s for s in stored if "陈文鑫" in str(s) or "刘俊刚" in str(s) or "彭德明" in str(s)], stored


def test_a_recovery_typed_with_a_comma_for_the_point_is_refused_not_read_as_more_digits(con, tmp_path):
    clerk = Clerk(issue(con, tmp_path, n=2)[A])
    row = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额="2,5")
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额="1,000.00")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert [(r.row, r.column) for r in report.refusals] == [(row, "追回金额")]
    assert status_of(con, f"S-{A}-1")[2] is None
    assert status_of(con, f"S-{A}-2")[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1000.00"))


def test_a_recovery_of_many_decimals_is_refused_quoting_a_number_not_a_masked_account(con, tmp_path):
    """From a probe of the worklist as a clerk reads it: =1000/3 shows 333.33 in the money format and
    was refused as “333.3333*****3333” (thirteen places masked as an account number)."""
    clerk = Clerk(issue(con, tmp_path, n=2)[A])
    row = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=1000 / 3)
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    [refused] = report.refusals
    assert (refused.row, refused.column) == (row, "追回金额")
    assert "追回金额“333.333333…”不是金额" in refused.reason and "*" not in refused.reason, refused.reason
    assert "四舍五入" in refused.reason


def test_columns_moved_about_are_read_by_their_header(con, tmp_path):
    path = issue(con, tmp_path, n=1)[A]
    wb, ws = _unprotected(path)
    ws.insert_cols(1)  # a clerk's own numbering column in front
    ws.cell(row=1, column=1, value="序号")
    ws.cell(row=2, column=1, value=1)
    _first_row_answered_closes(con, tmp_path, wb, ws)


def test_a_sheet_refused_for_a_deleted_column_still_names_its_agency(con, tmp_path):
    path = issue(con, tmp_path, n=2)[A]
    wb = openpyxl.load_workbook(path)
    ws = wb["疑点清单"]
    ws.protection.sheet = False
    ws.delete_cols([c.value for c in ws[1]].index("姓名") + 1)
    out = tmp_path / "no_name.xlsx"
    wb.save(out)
    report = returns.apply_returns(con, [out], RETURN_DAY)
    assert [(r.row, r.column) for r in report.refusals] == [(1, "姓名")]
    assert (report.files[0].agency_code, report.files[0].refused) == (A, 2)
    assert report.lines()[0].startswith(f"no_name.xlsx: 机构 {A}，应用 0 行")
    assert scalar(con, "select agency_code from audit_log where action = 'apply_return'") == A


def test_a_sheet_whose_id_column_was_deleted_is_told_so_not_that_the_sheet_is_missing(con, tmp_path):
    path = issue(con, tmp_path, n=1)[A]
    wb = openpyxl.load_workbook(path)
    ws = wb["疑点清单"]
    ws.protection.sheet = False
    ws.delete_cols(1)  # 疑点编号
    out = tmp_path / "no_ids.xlsx"
    wb.save(out)
    report = returns.apply_returns(con, [out], RETURN_DAY)
    assert report.files[0].status == "unreadable"
    assert [r.reason for r in report.refusals] == [
        "不是可读取的核查台账：工作表“疑点清单”缺少列“疑点编号”：请使用下发的台账原表填写，不要删除或改名列"]


def test_confirmed_losses_get_their_major_class_when_config_is_given(con, tmp_path):
    add_suspect(con, "S-BIG", amount="150000.00", person_id="360702195001011234")
    path = worklists.write_worklists(con, tmp_path / "out", AS_OF)[0]
    clerk = Clerk(path)
    clerk.fill("S-BIG", 核实结果=OUTCOME_LABELS[6], 核实日期=dt.date(2026, 9, 30))
    returns.apply_returns(con, [clerk.save()], RETURN_DAY, config=Config())
    assert con.execute("select major_class, report_due from suspects").fetchall() == [
        ("重大要情", dt.date(2026, 10, 13))]


def test_a_returns_run_ties_its_events_to_the_file_and_who_sent_it(con, tmp_path):
    """Each event a returns run writes — the answer, the recovery, the 要情 class recomputed after —
    carries the run's id, which its audit_log row gives with who applied which file; the answer's
    event names the file by its sha256 too (an audit probe: these events had no run, and the
    recomputation's matched no audit row)."""
    import hashlib

    add_suspect(con, "S-BIG", amount="150000.00", person_id="360702195001011234")
    path = worklists.write_worklists(con, tmp_path / "out", AS_OF)[0]
    clerk = Clerk(path)
    clerk.fill("S-BIG", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实日期=dt.date(2026, 9, 30))
    returned = clerk.save()
    report = returns.apply_returns(con, [returned], RETURN_DAY, actor="clerk-b", config=Config())
    events = dict(con.execute("select event, run_id from suspect_events where event in ('returned', 'recovered', "
                              "'major_class')").fetchall())
    assert set(events) == {"returned", "recovered", "major_class"}
    assert set(events.values()) == {report.run_id} and report.run_id.startswith(f"returns-{RETURN_DAY:%Y%m%d}-")
    [(actor, file_hash, detail)] = con.execute(
        "select actor, file_hash, detail from audit_log where action = 'apply_return'").fetchall()
    assert actor == "clerk-b" and json.loads(detail)["run_id"] == report.run_id
    [(answered,)] = con.execute("select detail from suspect_events where event = 'returned'").fetchall()
    assert json.loads(answered)["file_hash"] == file_hash == hashlib.sha256(returned.read_bytes()).hexdigest()


def test_a_recovery_answered_on_two_rules_suspects_of_one_object_is_told_to_be_checked(con, tmp_path):
    """From an audit probe: one transaction two rules found (FUND_PRIVATE_TRANSFER and
    INCOME_ACCOUNT_OUTFLOW) is two suspects, each row answered 追回 8,800 — 17,600 recovered in the
    汇总表 for one transfer, without a word. Both answers apply (each rule counts its suspects, as the
    汇总表's 说明 says); each row is told for the supervisor to check, naming the other."""
    add_suspect(con, "FPT-1", rule_id="FUND_PRIVATE_TRANSFER", person_id=None, subject="JY0001", amount="8800.00")
    add_suspect(con, "IAO-1", rule_id="INCOME_ACCOUNT_OUTFLOW", person_id=None, subject="JY0001", amount="8800.00")
    add_suspect(con, "FPT-2", rule_id="FUND_PRIVATE_TRANSFER", person_id=None, subject="JY0002", amount="500.00")
    clerk = Clerk(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0])
    for sid in ("FPT-1", "IAO-1", "FPT-2"):
        clerk.fill(sid, 核实结果=OUTCOME_LABELS[4], 追回金额=8800 if sid != "FPT-2" else 500, 核实日期=dt.date(2026, 9, 30))
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == [] and {a.suspect_id: a.status for a in report.applied} == {
        "FPT-1": "已销号", "IAO-1": "已销号", "FPT-2": "已销号"}
    notices = {a.suspect_id: a.notice for a in report.applied}
    assert notices["FPT-2"] is None
    assert notices["FPT-1"] == ("疑点对象同时是疑点 IAO-1（INCOME_ACCOUNT_OUTFLOW）已填报追回 8800.00 元：同一笔款项只应追回、"
                                "填报一次，如两行填报的是同一笔，请更正其中一行后重新报送")
    assert "FPT-1（FUND_PRIVATE_TRANSFER）已填报追回 8800.00 元" in notices["IAO-1"]
    assert any("IAO-1（INCOME_ACCOUNT_OUTFLOW）" in line for line in report.lines())


def major_of(con, sid):
    return con.execute("select major_class, report_due from suspects where suspect_id = ?", [sid]).fetchall()[0]


def test_a_loss_is_classed_by_what_was_verified_not_by_what_the_nights_add_after(con, tmp_path):
    """Transferred at 79,383 (要情); paid on since, the nights raise its amount past 100,000: still
    要情, no report date already past — the growth is nobody's finding (CONTRACT §5: verified losses
    are classed). A 核查中 suspect answered again at its grown amount is classed by that answer."""
    add_suspect(con, "S-MOVED", amount="79383.00", person_id="360702195001011234")
    add_suspect(con, "S-PART", amount="90000.00", person_id="360702195001011242")
    clerk = Clerk(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0])
    clerk.fill("S-MOVED", 核实结果=OUTCOME_LABELS[5], 核实说明="转稽核", 核实日期=AS_OF + dt.timedelta(days=2))
    clerk.fill("S-PART", 核实结果=OUTCOME_LABELS[4], 追回金额=10000, 核实日期=AS_OF + dt.timedelta(days=2))
    assert returns.apply_returns(con, [clerk.save()], RETURN_DAY, config=Config()).refusals == []
    assert major_of(con, "S-MOVED") == ("要情", None) and major_of(con, "S-PART") == ("要情", None)
    con.execute("update suspects set amount = amount + 60000")  # the nights since: paid on
    later = RETURN_DAY + dt.timedelta(days=60)
    casework.refresh(con, later, Config())
    assert major_of(con, "S-MOVED") == ("要情", None) and major_of(con, "S-PART") == ("要情", None)
    # S-PART's next sheet shows 150,000: answered again, its loss is verified at that amount
    clerk = Clerk(worklists.write_worklists(con, tmp_path / "out2", later)[0])
    again = later - dt.timedelta(days=1)
    clerk.fill("S-PART", 核实结果=OUTCOME_LABELS[4], 追回金额=20000, 核实日期=again)
    assert returns.apply_returns(con, [clerk.save()], later, config=Config()).refusals == []
    assert major_of(con, "S-PART") == ("重大要情", add_working_days(again, 5))


def test_the_loss_verified_is_what_the_answered_sheet_showed(con, tmp_path):
    """Issued at 90,000; a night raised it to 120,000 before the agency's answer (5) came back: the
    agency verified the 90,000 its sheet showed — 要情, not 重大要情. Where the amount fell since (a
    reversal), the lower amount is the loss."""
    add_suspect(con, "S-GREW", amount="90000.00", person_id="360702195001011234")
    add_suspect(con, "S-FELL", amount="120000.00", person_id="360702195001011242")
    clerk = Clerk(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0])
    con.execute("update suspects set amount = 120000.00 where suspect_id = 'S-GREW'")
    con.execute("update suspects set amount = 95000.00 where suspect_id = 'S-FELL'")
    for sid in ("S-GREW", "S-FELL"):
        clerk.fill(sid, 核实结果=OUTCOME_LABELS[5], 核实说明="转稽核", 核实日期=AS_OF + dt.timedelta(days=2))
    assert returns.apply_returns(con, [clerk.save()], RETURN_DAY, config=Config()).refusals == []
    assert major_of(con, "S-GREW") == ("要情", None) and major_of(con, "S-FELL") == ("要情", None)
    assert con.execute("select suspect_id, verified_amount from suspects order by 1").fetchall() == [
        ("S-FELL", Decimal("95000.00")), ("S-GREW", Decimal("90000.00"))]


def answer_on_a_sheet(con, out: Path, sid: str, issued: dt.date, returned: dt.date, **cells):
    """The worklist issued on `issued` into `out`, `sid`'s row answered with `cells`, returned on
    `returned` (with the contract's defaults as config)."""
    clerk = Clerk(worklists.write_worklists(con, out, issued)[0])
    clerk.fill(sid, **cells)
    return returns.apply_returns(con, [clerk.save()], returned, config=Config())


def test_a_reopened_suspect_answered_again_is_reported_from_that_answer(con, tmp_path):
    """重大要情 closed by a full recovery, reopened by new payments, answered again: its report is due
    from the new verification (README: the class and date of the last verification stand until
    answered again), not from the first one, long past."""
    add_suspect(con, "S-BACK", amount="150000.00", person_id="360702195001011234")
    first = AS_OF + dt.timedelta(days=1)
    answer_on_a_sheet(con, tmp_path / "out", "S-BACK", AS_OF, RETURN_DAY,
                      核实结果=OUTCOME_LABELS[4], 追回金额=150000, 核实日期=first)
    assert major_of(con, "S-BACK") == ("重大要情", add_working_days(first, 5))
    con.execute("update suspects set status = '已重开', amount = 160000.00, closed_on = null where suspect_id = 'S-BACK'")
    later = AS_OF + dt.timedelta(days=40)
    again = answer_on_a_sheet(con, tmp_path / "out2", "S-BACK", later, later,
                              核实结果=OUTCOME_LABELS[4], 追回金额=160000, 核实日期=later)
    assert again.refusals == []
    assert major_of(con, "S-BACK") == ("重大要情", add_working_days(later, 5))
    assert again.major == [("S-BACK", "重大要情", add_working_days(later, 5))]  # a report of its own: named


def test_a_class_moved_down_keeps_the_report_date_it_had(con, tmp_path):
    """重大要情（报部） at 600,000; a reversal brings it to 400,000 and the agency answers again: 重大要情,
    its report still due from the first verification (the report was due then)."""
    add_suspect(con, "S-DOWN", amount="600000.00", person_id="360702195001011234")
    first = AS_OF + dt.timedelta(days=1)
    raised = answer_on_a_sheet(con, tmp_path / "out", "S-DOWN", AS_OF, RETURN_DAY,
                               核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实日期=first)
    assert major_of(con, "S-DOWN") == ("重大要情（报部）", add_working_days(first, 5))
    assert raised.major == [("S-DOWN", "重大要情（报部）", add_working_days(first, 5))]  # named as raised
    con.execute("update suspects set amount = 400000.00 where suspect_id = 'S-DOWN'")
    later = AS_OF + dt.timedelta(days=30)
    lowered = answer_on_a_sheet(con, tmp_path / "out2", "S-DOWN", later, later,
                                核实结果=OUTCOME_LABELS[4], 追回金额=2000, 核实日期=later)
    assert lowered.refusals == []
    assert major_of(con, "S-DOWN") == ("重大要情", add_working_days(first, 5))
    # a class gone down is no new report: not named as raised (a regression probe: it was, due a
    # day long past)
    assert lowered.major == [] and not any("重大要情" in line for line in lowered.lines())


def test_a_further_recovery_does_not_move_the_report_date_of_a_major_loss(con, tmp_path):
    """重大要情（报部） from the first verification (620,000, 100,000 recovered): answered again with
    more recovered, later, the report is still due 5 working days after that first verification."""
    add_suspect(con, "S-HUGE", amount="620000.00", person_id="360702195001011234")
    first = AS_OF + dt.timedelta(days=1)
    answer_on_a_sheet(con, tmp_path / "out", "S-HUGE", AS_OF, RETURN_DAY,
                      核实结果=OUTCOME_LABELS[4], 追回金额=100000, 核实日期=first)
    due = add_working_days(first, 5)
    assert major_of(con, "S-HUGE") == ("重大要情（报部）", due)
    for n, (recovered, day) in enumerate(((300000, 30), (620000, 60)), start=2):
        on = AS_OF + dt.timedelta(days=day)
        assert answer_on_a_sheet(con, tmp_path / f"out{n}", "S-HUGE", on, on,
                                 核实结果=OUTCOME_LABELS[4], 追回金额=recovered, 核实日期=on).refusals == []
        casework.refresh(con, on, Config())
        assert major_of(con, "S-HUGE") == ("重大要情（报部）", due), recovered
    assert status_of(con, "S-HUGE")[0] == "已销号"
    assert scalar(con, "select count(*) from suspect_events where suspect_id = 'S-HUGE' and event = 'major_class'") == 1


def test_the_returns_command_classes_the_losses_it_applied_at_once_and_touches_nothing_else(con, tmp_path):
    add_suspect(con, "S-BIG", amount="150000.00", person_id="360702195001011234")
    # detected long ago and not answered in this return: the night escalates it (挂牌督办), a return does not
    add_suspect(con, "S-OLD", amount="500.00", person_id="360702195001011234", rule_id="DUPLICATE_PENSION",
                first_detected_on=dt.date(2026, 1, 5))
    path = worklists.write_worklists(con, tmp_path / "out", AS_OF)[0]
    clerk = Clerk(path)
    clerk.fill("S-BIG", 核实结果=OUTCOME_LABELS[6], 核实日期=dt.date(2026, 9, 30))
    returned = clerk.save()
    command = ["returns", "--db", str(tmp_path / "fw.duckdb"), "--as-of", RETURN_DAY.isoformat(), str(returned)]
    assert cli.main(command) == cli.EXIT_OK  # no --config: the contract's defaults
    flags = "select suspect_id, major_class, report_due, coalesce(escalated, false) from suspects order by 1"
    assert con.execute(flags).fetchall() == [("S-BIG", "重大要情", dt.date(2026, 10, 13), False),
                                             ("S-OLD", None, None, False)]
    history = scalar(con, "select count(*) from suspect_events")
    assert cli.main(command) == cli.EXIT_OK  # the same workbook again changes nothing
    assert scalar(con, "select count(*) from suspect_events") == history
    # what the return left alone is the night's: a full refresh escalates S-OLD
    casework.refresh(con, RETURN_DAY, Config())
    assert con.execute(flags).fetchall()[1] == ("S-OLD", None, None, True)


def test_returns_without_config_recompute_with_the_settings_the_last_night_ran_with(con, tmp_path, capsys):
    """An office escalates after 30 days and reports a 重大要情 in 3 working days. A return applied
    without --config used the contract's 90 and 5: it lifted 挂牌督办 (escalation_lifted
    {escalate_after_days: 90}, kept in the history though the next night set it again) and dated the
    report 5 working days on (found by an outside check). It uses the last night's now, and says so."""
    from pipelines.flows import finish_run, start_run

    office = Config(data={**Config().data, "casework": {**casework.settings(), "escalate_after_days": 30,
                                                         "report_working_days": 3}})
    add_suspect(con, "S-BIG", amount="150000.00", person_id="360702195001011234")
    add_suspect(con, "S-OLD", amount="500.00", person_id="360702195001011234", rule_id="DUPLICATE_PENSION",
                first_detected_on=AS_OF - dt.timedelta(days=40))
    path = worklists.write_worklists(con, tmp_path / "out", AS_OF, office)[0]
    start_run(con, "night-1", "nightly", AS_OF)  # the night's own record, as the flow writes it
    casework.refresh(con, AS_OF, office, "night-1")
    finish_run(con, "night-1", "completed", {"casework_settings": casework.recorded_settings(office)})
    assert con.execute("select escalated from suspects where suspect_id = 'S-OLD'").fetchall() == [(True,)]
    clerk = Clerk(path)
    clerk.fill("S-BIG", 核实结果=OUTCOME_LABELS[6], 核实日期=dt.date(2026, 9, 30))
    clerk.fill("S-OLD", 核实结果=OUTCOME_LABELS[4], 追回金额=100)  # recovery begun, the loss still out
    returned = clerk.save()
    command = ["returns", "--db", str(tmp_path / "fw.duckdb"), "--as-of", RETURN_DAY.isoformat(), str(returned)]
    assert cli.main(command) == cli.EXIT_OK
    said = capsys.readouterr().out
    assert (f"casework settings of the night of {AS_OF} used (escalate_after_days 30, report_working_days 3; "
            "the defaults would be escalate_after_days 90, report_working_days 5)") in said
    flags = "select suspect_id, major_class, report_due, escalated from suspects order by 1"
    assert con.execute(flags).fetchall() == [("S-BIG", "重大要情", dt.date(2026, 10, 10), False),  # 9-30 + 3
                                             ("S-OLD", "要情", None, True)]
    assert scalar(con, "select count(*) from suspect_events where event = 'escalation_lifted'") == 0
    # --config given: its settings are used, and the difference from the night's is said
    default_config = tmp_path / "defaults.yaml"
    default_config.write_text("# the contract's defaults\n", encoding="utf-8")
    clerk = Clerk(path)
    clerk.fill("S-OLD", 核实结果=OUTCOME_LABELS[4], 追回金额=200)
    again = ["returns", "--db", str(tmp_path / "fw.duckdb"), "--as-of", RETURN_DAY.isoformat(),
             "--config", str(default_config), str(clerk.save(tmp_path / "again.xlsx"))]
    assert cli.main(again) == cli.EXIT_OK
    assert (f"note: the casework settings of --config (escalate_after_days 90, report_working_days 5) differ from "
            f"those the night of {AS_OF} ran with (escalate_after_days 30, report_working_days 3); the config's are used"
            ) in capsys.readouterr().out
    assert con.execute("select escalated from suspects where suspect_id = 'S-OLD'").fetchall() == [(False,)]


def test_a_suspect_on_two_rows_of_one_workbook_is_refused_on_both_and_the_other_rows_apply(con, tmp_path):
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    first = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    copy = clerk.ws.max_row + 1  # the row copied below the others, answered otherwise
    for column in range(1, clerk.ws.max_column + 1):
        clerk.ws.cell(row=copy, column=column, value=clerk.ws.cell(row=first, column=column).value)
    clerk.ws.cell(row=copy, column=clerk.header.index("核实结果") + 1, value=OUTCOME_LABELS[6])
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[1], 核实说明="已更正")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert [(r.row, r.column) for r in report.refusals] == [(first, "疑点编号"), (copy, "疑点编号")]
    assert all(f"在本表出现 2 次（第 {first}、{copy} 行）" in r.reason for r in report.refusals)
    assert status_of(con, f"S-{A}-1")[0] == "已下发"  # neither answer applied
    assert status_of(con, f"S-{A}-2")[0] == "已销号"
    # answered once, in a workbook of its own, it applies; a later change to the closed suspect is refused
    again = Clerk(path)
    again.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    assert returns.apply_returns(con, [again.save(tmp_path / "once.xlsx")], RETURN_DAY).refusals == []
    later = Clerk(path)
    later.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[6])
    refused = returns.apply_returns(con, [later.save(tmp_path / "later.xlsx")], RETURN_DAY).refusals
    assert [r.reason for r in refused] == ["疑点已销号，不再接受变更；如需更正请联系监督部门"]


def test_unreadable_file_is_refused_and_the_others_still_apply(con, tmp_path):
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    bad = tmp_path / "not_a_workbook.xlsx"
    bad.write_text("hello", encoding="utf-8")
    report = returns.apply_returns(con, [bad, clerk.save()], RETURN_DAY)
    assert [(Path(r.file).name, r.row) for r in report.refusals] == [("not_a_workbook.xlsx", 0)]
    assert status_of(con, f"S-{A}-1")[0] == "已销号"


def _soffice():
    for exe in ("soffice", "libreoffice"):
        found = shutil.which(exe) or (f"/usr/bin/{exe}" if os.path.exists(f"/usr/bin/{exe}") else None)
        if found:
            return found
    return None


@pytest.mark.libreoffice
@pytest.mark.skipif(_soffice() is None, reason="LibreOffice (soffice/libreoffice) is not installed on this machine")
def test_a_worklist_resaved_by_libreoffice_is_applied(con, tmp_path):
    path = issue(con, tmp_path, n=3)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[2], 核实说明="数据转换错误已更正", 核实日期=dt.date(2026, 11, 26))
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=250.75)
    (tmp_path / "filled").mkdir()
    filled = clerk.save(tmp_path / "filled" / path.name)
    resaved_dir = tmp_path / "resaved"
    profile = (tmp_path / "lo-profile").as_uri()
    done = subprocess.run([_soffice(), f"-env:UserInstallation={profile}", "--headless", "--convert-to", "xlsx",
                           "--outdir", str(resaved_dir), str(filled)], capture_output=True, text=True, timeout=180)
    resaved = resaved_dir / path.name
    assert resaved.exists(), done.stderr or done.stdout
    assert resaved.read_bytes() != filled.read_bytes()
    report = returns.apply_returns(con, [resaved], RETURN_DAY)
    assert report.refusals == [], report.lines()
    assert status_of(con, f"S-{A}-1")[:2] == ("已销号", OUTCOME_LABELS[2])
    assert status_of(con, f"S-{A}-1")[5] == dt.date(2026, 11, 26)
    assert status_of(con, f"S-{A}-2")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("250.75"))
    assert report.pending == 1
    # applying the clerk's own copy after LibreOffice's changes nothing
    assert returns.apply_returns(con, [filled], RETURN_DAY).applied == []


def test_a_workbook_issued_before_the_suspect_reopened_cannot_close_it_again(con, tmp_path):
    first = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(first)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题")
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert status_of(con, f"S-{A}-1")[0] == "已销号"
    # new evidence: the night reopens it with a larger amount (as suspects.update_suspects does)
    con.execute("update suspects set status = '已重开', amount = 1500.00, closed_on = null, deadline = null "
                "where suspect_id = ?", [f"S-{A}-1"])
    casework.add_event(con, f"S-{A}-1", "reopened", {"as_of": "2026-11-30", "old_amount": 1000.0, "new_amount": 1500.0})
    second = worklists.write_worklists(con, tmp_path / "out2", RETURN_DAY + dt.timedelta(days=1))[0]

    # the first sheet, re-saved with a changed note, answers the old evidence: refused, nothing changes
    stale = Clerk(first)
    row = stale.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="仍无问题")
    stale.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[1], 核实说明="已更正")
    report = returns.apply_returns(con, [stale.save(tmp_path / "stale.xlsx")], RETURN_DAY + dt.timedelta(days=2))
    refusals = con.execute("select row_number, column_name, reason from return_refusals").fetchall()
    assert [(r, c) for r, c, _ in refusals] == [(row, "核实结果")]
    assert "已于 2026-11-30 因新证据重开" in refusals[0][2] and "重开后下发的台账" in refusals[0][2]
    assert status_of(con, f"S-{A}-1")[0] == "已重开"
    assert status_of(con, f"S-{A}-2")[0] == "已销号"  # the other row applies
    assert report.files[0].applied == 1

    # the sheet issued after reopening is answered normally
    fresh = Clerk(second)
    fresh.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=1500, 核实说明="已追回")
    returns.apply_returns(con, [fresh.save()], RETURN_DAY + dt.timedelta(days=2))
    assert status_of(con, f"S-{A}-1")[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1500.00"))


def test_a_recovery_that_covers_an_amount_fallen_since_closes_the_suspect_and_its_row_returns_unchanged(con, tmp_path):
    path = issue(con, tmp_path, n=1)[A]  # 涉及金额 1000.00
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=600, 核实说明="已追回600元", 核实日期=dt.date(2026, 11, 25))
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert status_of(con, f"S-{A}-1")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("600.00"))
    # a reversal delivered later: the night's merge lowers the amount at risk below what was recovered
    con.execute("update suspects set amount = 500.00 where suspect_id = ?", [f"S-{A}-1"])
    night = RETURN_DAY + dt.timedelta(days=1)
    # a sheet issued in between shows 涉及金额 500.00 with the 600.00 recorded; sent back as it is,
    # it claims nothing new and is not refused
    [sheet] = worklists.write_worklists(con, tmp_path / "out2", night)
    row = rows_by_id_of(sheet)[f"S-{A}-1"]
    assert (row["涉及金额"], row["追回金额"]) == (500, 600)
    copy = tmp_path / "as_issued.xlsx"
    shutil.copy(sheet, copy)
    report = returns.apply_returns(con, [copy], night)
    assert report.refusals == [] and report.files[0].unchanged == 1
    # the night's casework closes it: 追回金额 covers 涉及金额
    assert casework.refresh(con, night, Config())["closed_recovered"] == 1
    assert status_of(con, f"S-{A}-1")[0::5] == ("已销号", night)
    assert scalar(con, "select closed_amount from suspects where suspect_id = ?", [f"S-{A}-1"]) == Decimal("500.00")
    detail = json.loads(scalar(con, "select detail from suspect_events where event = 'closed' and suspect_id = ?",
                               [f"S-{A}-1"]))
    assert (Decimal(detail["amount"]), Decimal(detail["recovered_amount"])) == (Decimal("500"), Decimal("600"))
    assert casework.refresh(con, night, Config())["closed_recovered"] == 0  # once


def test_a_recovery_for_the_months_a_sheet_showed_does_not_cover_a_loss_moved_since_to_a_month_it_did_not(con, tmp_path):
    # From a probe of the worklists: a death date corrected after a partial recovery — the months
    # answered (202601–202603) were no loss; the loss is now 202604 alone, less than what was
    # recovered. No agency has seen 202604: the night's casework leaves the suspect 核查中, and the
    # next sheet shows it with its new months; answered there (the clerk dates the check), it closes.
    sid = f"S-{A}-1"
    path = issue(con, tmp_path, n=1)[A]  # 涉及金额 1000.00, 202601–202603
    clerk = Clerk(path)
    clerk.fill(sid, 核实结果=OUTCOME_LABELS[4], 追回金额=600, 核实说明="已追回600元", 核实日期=dt.date(2026, 11, 25))
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    detail = json.loads(scalar(con, "select detail from suspect_events where event = 'returned' and suspect_id = ?", [sid]))
    assert detail["shown_periods"] == ["202601", "202603"]  # what the recovery was for
    con.execute("update suspects set amount = 500.00, period_from = '202604', period_to = '202604'"
                " where suspect_id = ?", [sid])
    night = RETURN_DAY + dt.timedelta(days=1)
    assert casework.refresh(con, night, Config())["closed_recovered"] == 0
    assert status_of(con, sid)[0] == "核查中"
    # ...and it is not recovered for 挂牌督办 either (90 days after its first detection)
    day_90 = "date '2027-01-30'"  # add_suspect's first detection 2026-11-01 + 90 days
    assert scalar(con, f"select {casework.escalated_sql(day_90, '90')} from suspects where suspect_id = ?", [sid])
    [sheet] = worklists.write_worklists(con, tmp_path / "out2", night)
    row = rows_by_id_of(sheet)[sid]
    assert (row["涉及金额"], str(row["所属期起"]), str(row["所属期止"]), row["追回金额"]) == (500, "202604", "202604", 600)
    # the row says why it is still open
    assert row["证据摘要"].startswith("【已报送的核实结果针对所属期 202601–202603；此后数据有变，疑点现在所属期 202604–202604（其外的月份尚未核实）")
    # answered there — the clerk writes a note and leaves the date the sheet shows (the earlier
    # answer's): it closes, dated the day of the return, not back to before the loss was known
    again = Clerk(sheet)
    again.fill(sid, 核实说明="已核实202604并追回")
    report = returns.apply_returns(con, [again.save()], night)
    assert report.refusals == [] and "已应用、请核对" not in "\n".join(report.lines())
    closed = status_of(con, sid)
    assert (closed[0], closed[4], closed[5]) == ("已销号", night, night)  # status, 核实日期, closed_on


def test_a_recovery_of_what_a_sheet_showed_does_not_close_a_loss_moved_since_to_a_month_it_did_not_show(con, tmp_path):
    # The same, the answer coming after the night that moved the loss: the recovery of the 1000.00
    # the sheet showed is taken (recorded as given), but the loss now in 202604 is no agency's
    # verified one — 核查中, said under 已应用、请核对. Likewise the money 稽核 got back on a case
    # transferred from that sheet, reported as 4 on it.
    path = issue(con, tmp_path, n=2)[A]  # 涉及金额 1000.00 each, 202601–202603
    first = Clerk(path)
    first.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[6], 核实说明="移送稽核")
    returns.apply_returns(con, [first.save(tmp_path / "transfer.xlsx")], RETURN_DAY)
    assert status_of(con, f"S-{A}-2")[0] == "已移送"
    con.execute("update suspects set amount = 400.00, period_from = '202604', period_to = '202604'")
    clerk = Clerk(path)
    one = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实说明="已追回1000元")
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实说明="稽核追回1000元")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY + dt.timedelta(days=1))
    assert report.refusals == []
    for sid in (f"S-{A}-1", f"S-{A}-2"):
        assert status_of(con, sid)[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("1000.00")), sid
    lines = "\n".join(report.lines())
    assert "已应用、请核对 2 处" in lines and f"第{one}行 疑点 S-{A}-1" in lines
    assert "损失现在所属期 202604–202604，不在本台账所列的 202601–202603 内" in lines
    assert casework.refresh(con, RETURN_DAY + dt.timedelta(days=1), Config())["closed_recovered"] == 0


def test_a_recovery_above_the_amount_covers_it_and_closes_with_a_notice_but_an_extra_digit_is_refused(con, tmp_path):
    # CONTRACT §5: outcome 4 closes once 追回金额 covers 涉及金额 — the overpayment with its interest
    # (本金及利息) covers it. It is recorded as the amount (the loss recovered: 追回率, a reopened
    # suspect's new loss weigh it), what was above kept in the event. More than twice the amount is
    # no interest but a typo (60000 as 600000).
    path = issue(con, tmp_path, n=3)[A]  # 涉及金额 1000.00 each
    clerk = Clerk(path)
    with_interest = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=1000.50, 核实说明="本金及利息")
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=2000, 核实说明="两倍为限")
    typo = clerk.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[4], 追回金额=10000, 核实说明="多输一位")
    saved = clerk.save()
    report = returns.apply_returns(con, [saved], RETURN_DAY)
    assert [(r.row, r.column) for r in report.refusals] == [(typo, "追回金额")]
    assert "大于涉及金额 1000.00 的 2 倍" in report.refusals[0].reason
    assert status_of(con, f"S-{A}-1")[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1000.00"))
    assert status_of(con, f"S-{A}-2")[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1000.00"))
    assert status_of(con, f"S-{A}-3")[0] == "已下发"
    [detail] = [json.loads(d) for (d,) in con.execute(
        "select detail from suspect_events where suspect_id = ? and event = 'returned'", [f"S-{A}-1"]).fetchall()]
    assert (Decimal(str(detail["given_recovered_amount"])), Decimal(str(detail["recovered_above_amount"]))) == \
        (Decimal("1000.50"), Decimal("0.50"))
    # the supervisor is told which rows gave more than the amount: applied, to look at — printed,
    # and kept with the application in audit_log
    printed = "\n".join(report.lines())
    assert "已应用、请核对 2 处" in printed
    assert f"第{with_interest}行 疑点 S-{A}-1 追回金额 1000.50 高于涉及金额 1000.00：记为追回 1000.00 元，超出的 0.50 元" in printed
    [audit] = con.execute("select detail from audit_log where action = 'apply_return'").fetchall()
    assert len(json.loads(audit[0])["notices"]) == 2
    # sent again, the same bytes: nothing changes, nothing more to look at
    again = returns.apply_returns(con, [saved], RETURN_DAY)
    assert again.unchanged == 2 and "已应用、请核对" not in "\n".join(again.lines())


def test_interest_recovered_on_a_closed_suspect_does_not_cover_the_new_loss_it_reopens_with(con, tmp_path):
    """1050 recovered on 1000 (5 % interest) closes it; new evidence reopens it at 1040: the 40 is a
    new loss nobody recovered — 挂牌督办 past 90 days, and the reopened sheet sent back with only a
    new date does not close it (found by a review: the interest covered the new evidence)."""
    sid = f"S-{A}-1"
    clerk = Clerk(issue(con, tmp_path, n=1)[A])  # 涉及金额 1000.00, first detected before AS_OF
    clerk.fill(sid, 核实结果=OUTCOME_LABELS[4], 追回金额=1050, 核实说明="本金及利息", 核实日期=dt.date(2026, 11, 25))
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert status_of(con, sid)[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1000.00"))
    con.execute("update suspects set status = '已重开', amount = 1040.00, closed_on = null, deadline = null"
                " where suspect_id = ?", [sid])
    casework.add_event(con, sid, "reopened", {"as_of": "2026-12-01", "old_amount": 1000.0, "new_amount": 1040.0})
    late = dt.date(2027, 2, 10)
    casework.refresh(con, late, Config())
    assert con.execute("select escalated from suspects where suspect_id = ?", [sid]).fetchall() == [(True,)]
    [sheet] = worklists.write_worklists(con, tmp_path / "reopened", late)
    back = Clerk(sheet)
    back.fill(sid, 核实日期=late)  # only a new date: no new money
    returns.apply_returns(con, [back.save()], late)
    assert status_of(con, sid)[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("1000.00"))


def test_a_capped_recovery_sent_again_with_the_reopened_sheet_pasted_does_not_veto_it(con, tmp_path):
    """The sheet that recorded 1050 as 1000 re-saved (same cells, other bytes) and sent in one call
    with the sheet issued after the suspect reopened, pasted into a new workbook: the re-sent row
    says what was applied, no new answer — the reopened sheet's answer applies (both were refused as
    copies answering differently: the answer on record no longer equals the cells it was given)."""
    sid = f"S-{A}-1"
    first = Clerk(issue(con, tmp_path, n=1)[A])
    first.fill(sid, 核实结果=OUTCOME_LABELS[4], 追回金额=1050, 核实说明="本金及利息", 核实日期=dt.date(2026, 11, 25))
    applied = first.save()
    returns.apply_returns(con, [applied], RETURN_DAY)
    assert status_of(con, sid)[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1000.00"))
    con.execute("update suspects set status = '已重开', amount = 1040.00, closed_on = null, deadline = null"
                " where suspect_id = ?", [sid])
    casework.add_event(con, sid, "reopened", {"as_of": "2026-12-01", "old_amount": 1000.0, "new_amount": 1040.0})
    later = RETURN_DAY + dt.timedelta(days=10)
    [reopened] = worklists.write_worklists(con, tmp_path / "reopened", later)
    answer = Clerk(reopened)
    answer.fill(sid, 核实结果=OUTCOME_LABELS[4], 追回金额=1040, 核实说明="再次追回", 核实日期=later)
    pasted = openpyxl.Workbook()
    sheet = pasted.active
    sheet.title = "疑点清单"
    for row in answer.ws.iter_rows(values_only=True):
        sheet.append(list(row))
    pasted.save(tmp_path / "pasted.xlsx")
    again = Clerk(applied)
    again.wb.properties.creator = "LibreOffice"  # re-saved by another program: the same cells, other bytes
    resaved = again.save(tmp_path / "resaved.xlsx")
    assert file_sha256(resaved) != file_sha256(applied)
    report = returns.apply_returns(con, [resaved, tmp_path / "pasted.xlsx"], later)
    assert status_of(con, sid)[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1040.00"))
    assert not [r for r in report.refusals if "无法确定以哪一份为准" in r.reason], report.lines()


def test_a_recovery_of_the_amount_the_sheet_showed_is_taken_when_the_amount_fell_since(con, tmp_path):
    # The agency recovered the 1000.00 its sheet showed; before it sent the sheet back, a reversal
    # (or a rule parameter the office changed) lowered the amount at risk to 400.00. The money was
    # recovered: the answer is taken, and it covers the amount, so the suspect closes — without a
    # notice, it is what the sheet showed. More than twice what the sheet showed is still a typo.
    path = issue(con, tmp_path, n=2)[A]  # 涉及金额 1000.00 each
    con.execute("update suspects set amount = 400.00")
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实说明="已追回1000元")
    over = clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=2000.01, 核实说明="多追回")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    refused = report.refusals
    assert [(r.row, r.column) for r in refused] == [(over, "追回金额")] and "大于涉及金额 1000.00" in refused[0].reason
    assert status_of(con, f"S-{A}-1")[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1000.00"))
    assert status_of(con, f"S-{A}-2")[0] == "已下发"
    assert "已应用、请核对" not in "\n".join(report.lines())


def test_a_workbook_named_twice_in_one_call_is_applied_once(con, tmp_path, monkeypatch):
    # From a review: the same path twice (a glob and its name) was a second workbook — its refusals
    # printed twice and a second apply_return audit row repeating the first one's suspects.
    path = issue(con, tmp_path, n=3)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果="9", 核实说明="?")
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    returned = clerk.save()
    monkeypatch.chdir(returned.parent)
    report = returns.apply_returns(con, [returned, Path(returned.name), returned], RETURN_DAY)
    assert len(report.files) == 1 and report.files[0].applied == 1
    assert [(r.suspect_id, r.column) for r in report.refusals] == [(f"S-{A}-1", "核实结果")]
    assert scalar(con, "select count(*) from audit_log where action = 'apply_return'") == 1
    assert status_of(con, f"S-{A}-2")[0] == "已销号"


def test_a_workbook_applied_as_of_a_day_before_it_was_issued_is_refused(con, tmp_path):
    # a mistyped --as-of would date the closings before the sheet existed
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    row = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    returned = clerk.save()
    report = returns.apply_returns(con, [returned], AS_OF - dt.timedelta(days=1))
    assert {(r.row, r.column) for r in report.refusals} == {(row, "下发日期"), (row + 1, "下发日期")}
    assert f"本台账于 {AS_OF} 下发，晚于本次回收日期 {AS_OF - dt.timedelta(days=1)}" in report.refusals[0].reason
    assert status_of(con, f"S-{A}-1")[0] == "已下发"
    assert returns.apply_returns(con, [returned], AS_OF).refusals == []  # the day it was issued: applied
    assert status_of(con, f"S-{A}-1")[0] == "已销号"


def test_two_workbooks_of_one_call_answering_a_suspect_differently_are_both_refused_for_it(con, tmp_path):
    path = issue(con, tmp_path, n=3)[A]
    first, second = Clerk(path), Clerk(path)
    first.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=300, 核实说明="追回300")
    second.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=600, 核实说明="追回600")
    first.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[1], 核实说明="已更正")  # the same answer in both: fine
    second.fill(f"S-{A}-2", 核实结果="1", 核实说明="已更正")
    second.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")  # only in one: applies
    files = [first.save(tmp_path / "clerk_a.xlsx"), second.save(tmp_path / "clerk_b.xlsx")]
    report = returns.apply_returns(con, files, RETURN_DAY)
    refused = [(Path(r.file).name, r.suspect_id, r.column) for r in report.refusals]
    assert sorted(refused) == [("clerk_a.xlsx", f"S-{A}-1", "核实结果"), ("clerk_b.xlsx", f"S-{A}-1", "核实结果")]
    assert "clerk_a.xlsx、clerk_b.xlsx" in report.refusals[0].reason
    assert status_of(con, f"S-{A}-1")[:3] == ("已下发", None, None)  # neither order decides
    assert status_of(con, f"S-{A}-2")[0] == status_of(con, f"S-{A}-3")[0] == "已销号"
    # sent alone later, one of them applies
    alone = Clerk(path)
    alone.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=600, 核实说明="追回600")
    returns.apply_returns(con, [alone.save(tmp_path / "clerk_b_again.xlsx")], RETURN_DAY)
    assert status_of(con, f"S-{A}-1")[2] == Decimal("600.00")


@pytest.mark.parametrize("later_first", [True, False])
def test_of_sheets_of_two_nights_sent_together_the_later_issued_one_answers(tmp_path, later_first):
    """Yesterday's sheet and today's, both filled in and sent in one call, answering a suspect
    differently: they refused each other, as two clerks' copies do. Sent one after the other the
    later-issued sheet's answer stands (an earlier sheet's differing answer is refused): so it does
    sent together, whatever the order of the file names. Two copies of today's still refuse each other
    (and then yesterday's too: no later answer can be told), and so does a sheet whose issue the
    workbook does not name (pasted into a new one)."""
    con = connect(tmp_path / "fw.duckdb")
    older = issue(con, tmp_path, n=4)[A]
    newer = worklists.write_worklists(con, tmp_path / "out2", AS_OF + dt.timedelta(days=3))[0]
    yesterday, today, today_copy = Clerk(older), Clerk(newer), Clerk(newer)
    yesterday.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    today.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=300, 核实说明="追回300")
    yesterday.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[1], 核实说明="已更正")  # only on the older sheet: applies
    today.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    today_copy.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[1], 核实说明="已更正")
    yesterday.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")  # as one of today's copies: no later answer told
    pasted = openpyxl.Workbook()  # yesterday's rows pasted into a new workbook (no 台账编号): not dated,
    pasted.active.title = "疑点清单"  # though its cells equal today's sheet's too (S-4 unanswered both nights)
    for row in Clerk(older).ws.iter_rows(values_only=True):
        pasted.active.append(row)
    pasted_row = [r for r in range(2, pasted.active.max_row + 1) if pasted.active.cell(row=r, column=1).value == f"S-{A}-4"][0]
    pasted.active.cell(row=pasted_row, column=today.header.index("核实结果") + 1, value=OUTCOME_LABELS[1])
    pasted.active.cell(row=pasted_row, column=today.header.index("核实说明") + 1, value="已更正")
    pasted.save(tmp_path / "pasted.xlsx")
    today.fill(f"S-{A}-4", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    files = [yesterday.save(tmp_path / "older.xlsx"), today.save(tmp_path / "newer.xlsx"),
             today_copy.save(tmp_path / "newer_copy.xlsx"), tmp_path / "pasted.xlsx"]
    report = returns.apply_returns(con, files[::-1] if later_first else files, RETURN_DAY)
    refused = sorted((Path(r.file).name, r.suspect_id) for r in report.refusals)
    assert refused == [("newer.xlsx", f"S-{A}-3"), ("newer.xlsx", f"S-{A}-4"), ("newer_copy.xlsx", f"S-{A}-3"),
                       ("older.xlsx", f"S-{A}-1"), ("older.xlsx", f"S-{A}-3"), ("pasted.xlsx", f"S-{A}-4")]
    [why] = [r.reason for r in report.refusals if Path(r.file).name == "older.xlsx" and r.suspect_id == f"S-{A}-1"]
    assert f"newer.xlsx（{AS_OF + dt.timedelta(days=3)} 下发）" in why and "以后下发的台账为准" in why
    assert status_of(con, f"S-{A}-1")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("300.00"))
    assert [e for _, e in events(con, f"S-{A}-1")] == ["recovered", "returned"]  # the older answer never applied
    assert status_of(con, f"S-{A}-2")[0] == "已销号"
    assert status_of(con, f"S-{A}-3")[0] == status_of(con, f"S-{A}-4")[0] == "已下发"
    con.close()


def test_another_agencys_row_pasted_into_a_sheet_does_not_block_the_owning_agencys_answer(con, tmp_path):
    """CONTRACT §5: a suspect of another agency is refused and the other rows still apply. Sent in
    the same call as the owner's sheet with another answer, the pasted row is no conflicting copy:
    it is refused as another agency's, and the owner's answer applies."""
    sheets = {**issue(con, tmp_path, n=1, agency=B), **issue(con, tmp_path, n=2, agency=A)}
    owner = Clerk(sheets[A])
    owner.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题")
    pasted = Clerk(sheets[B])
    last = pasted.ws.max_row + 1
    for name, value in (("疑点编号", f"S-{A}-1"), ("核实结果", OUTCOME_LABELS[6]), ("核实说明", "移送公安")):
        pasted.ws.cell(row=last, column=pasted.header.index(name) + 1, value=value)
    files = [owner.save(tmp_path / "a_ok.xlsx"), pasted.save(tmp_path / "b_with_a_row.xlsx")]
    report = returns.apply_returns(con, files, RETURN_DAY)
    assert [(Path(r.file).name, r.row, r.column) for r in report.refusals] == [("b_with_a_row.xlsx", last, "疑点编号")]
    assert f"属于其他经办机构（{A}）" in report.refusals[0].reason
    assert status_of(con, f"S-{A}-1")[:2] == ("已销号", OUTCOME_LABELS[7])


def test_an_answer_given_as_a_formula_without_its_value_is_refused_not_read_as_empty(con, tmp_path):
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    row = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额="=500*2", 核实说明="已追回")  # openpyxl: no value
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实说明="已追回")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert [(r.row, r.column) for r in report.refusals] == [(row, "追回金额")]
    assert "=500*2" in report.refusals[0].reason and "没有保存计算结果" in report.refusals[0].reason
    assert status_of(con, f"S-{A}-1")[0] == "已下发" and status_of(con, f"S-{A}-2")[0] == "已销号"


@pytest.mark.parametrize("outcome", [1, 2, 3, 7])
def test_a_recovery_with_an_outcome_that_finds_no_loss_is_refused(con, tmp_path, outcome):
    """1, 2 and 3 (a data error corrected, an employer told) close a suspect without a loss, as 7
    does: a recovery there would count in 追回金额 for a suspect with no verified loss."""
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[outcome], 追回金额=1000, 核实说明="说明")
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[outcome], 追回金额=0, 核实说明="说明")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert [r.column for r in report.refusals] == ["追回金额"] and "核实结果 4" in report.refusals[0].reason
    assert f"核实结果为 {outcome}（" in report.refusals[0].reason
    assert status_of(con, f"S-{A}-1")[0] == "已下发"
    assert status_of(con, f"S-{A}-2")[0] == "已销号"  # 0 recovered: nothing claimed


def test_a_reopened_suspects_sheet_shows_the_recovery_on_record(con, tmp_path):
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实说明="全额追回", 核实日期=dt.date(2026, 11, 25))
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    con.execute("update suspects set status = '已重开', amount = 1500.00, closed_on = null, deadline = null")
    [sheet] = worklists.write_worklists(con, tmp_path / "out2", RETURN_DAY + dt.timedelta(days=1))
    row = rows_by_id_of(sheet)[f"S-{A}-1"]
    assert (row["核实结果"], row["追回金额"], row["疑点状态"]) == (OUTCOME_LABELS[4], 1000, "已重开")
    # the clerk brings the recovery up to the new amount: closed again, the 1000 not lost on the way
    again = Clerk(sheet)
    again.fill(f"S-{A}-1", 追回金额=1500, 核实说明="追回新增月份", 核实日期=dt.date(2026, 12, 1))
    returns.apply_returns(con, [again.save()], RETURN_DAY + dt.timedelta(days=2))
    assert status_of(con, f"S-{A}-1")[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1500.00"))
    # untouched, a reopened suspect's prefilled row is no new answer: it stays 已重开
    con.execute("update suspects set status = '已重开', amount = 2000.00, closed_on = null, deadline = null")
    [third] = worklists.write_worklists(con, tmp_path / "out3", RETURN_DAY + dt.timedelta(days=3))
    copy = tmp_path / "untouched.xlsx"
    shutil.copy(third, copy)
    report = returns.apply_returns(con, [copy], RETURN_DAY + dt.timedelta(days=3))
    assert report.refusals == [] and status_of(con, f"S-{A}-1")[0] == "已重开"


def test_a_formula_excel_saved_with_an_empty_text_result_is_an_empty_cell_not_a_lost_answer(con, tmp_path):
    import re
    import zipfile

    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实说明='=IF(1,"","")')  # nothing else: still to answer
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实说明="已追回", 核实日期='=IF(1,"","")')
    saved = clerk.save()
    # as Excel saves such a cell: typed as text, with its (empty) value
    patched = tmp_path / "as_excel_saves.xlsx"
    typed = 0
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(patched, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                text, n = re.subn(r'<c r="([A-Z]+[0-9]+)"([^>]*)><f>(IF\(1,"",""\))</f><v ?/>',
                                  r'<c r="\1"\2 t="str"><f>\3</f><v></v>', data.decode("utf-8"))
                typed += n
                data = text.encode("utf-8")
            dst.writestr(item, data)
    assert typed == 2
    report = returns.apply_returns(con, [patched], RETURN_DAY)
    assert report.refusals == []
    assert status_of(con, f"S-{A}-1")[0] == "已下发" and report.files[0].pending == 1
    assert status_of(con, f"S-{A}-2")[0::4] == ("已销号", RETURN_DAY)  # an empty 核实日期: the day applied


def test_outcome_7_is_refused_while_a_recovery_is_on_record_and_accepted_once_it_is_set_to_0(con, tmp_path):
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=300, 核实说明="追回300")
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)  # 核查中 with 300 on record
    [sheet] = worklists.write_worklists(con, tmp_path / "out2", RETURN_DAY)
    for n, recovered in enumerate((300, None)):  # the pre-filled 300 kept, or the cell emptied (keeps it)
        later = Clerk(sheet)
        later.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 追回金额=recovered, 核实说明="复核后无问题")
        refused = returns.apply_returns(con, [later.save(tmp_path / f"seven_{n}.xlsx")], RETURN_DAY).refusals
        assert [r.column for r in refused] == ["追回金额"] and "现为 300.00" in refused[0].reason
    assert status_of(con, f"S-{A}-1")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("300.00"))
    zero = Clerk(sheet)
    zero.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 追回金额=0, 核实说明="复核后无问题")
    assert returns.apply_returns(con, [zero.save(tmp_path / "seven_zero.xlsx")], RETURN_DAY).refusals == []
    assert status_of(con, f"S-{A}-1")[:3] == ("已销号", OUTCOME_LABELS[7], Decimal("0.00"))


def test_a_sheet_left_with_the_answer_on_record_does_not_conflict_with_one_that_completes_it(con, tmp_path):
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=300, 核实说明="追回300", 核实日期=dt.date(2026, 11, 25))
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    [sheet] = worklists.write_worklists(con, tmp_path / "out2", RETURN_DAY)
    untouched = tmp_path / "untouched.xlsx"
    shutil.copy(sheet, untouched)
    done = Clerk(sheet)
    done.fill(f"S-{A}-1", 追回金额=1000, 核实说明="全部追回", 核实日期=dt.date(2026, 11, 28))
    report = returns.apply_returns(con, [untouched, done.save(tmp_path / "done.xlsx")], RETURN_DAY)
    assert report.refusals == []
    assert status_of(con, f"S-{A}-1")[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1000.00"))


def test_a_clean_workbook_sent_again_is_not_applied_again(con, tmp_path):
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=300)
    returned = clerk.save()
    assert len(returns.apply_returns(con, [returned], RETURN_DAY).applied) == 1
    audits = scalar(con, "select count(*) from audit_log")
    again = returns.apply_returns(con, [returned], RETURN_DAY)
    assert again.files[0].status == "already_applied" and again.refusals == []
    assert "已回收过" in again.lines()[0]
    # nothing applied, but the file's coming again is in the audit log, as the README says (a probe
    # of returned workbooks: it was not, unless a row of it had been refused)
    assert scalar(con, "select count(*) from audit_log") == audits + 1
    last = con.execute("select action, file, agency_code, suspect_ids, detail from audit_log"
                       " order by happened_at desc limit 1").fetchall()[0]
    assert last[:4] == ("apply_return", str(returned.absolute()), A, "[]")
    detail = json.loads(last[4])
    assert detail == {"already_applied": True, "as_of": RETURN_DAY.isoformat(), "run_id": again.run_id}
    # and the bytes sent a third time are still known as applied
    assert returns.apply_returns(con, [returned], RETURN_DAY).files[0].status == "already_applied"


def test_a_workbook_refused_for_a_passing_reason_applies_when_sent_again(con, tmp_path):
    """A refusal that says what to do must not be a dead end: the clerk does it — sends one of two
    conflicting copies alone, or the same sheet once its 核实日期 is no longer in the future — and
    the same bytes now apply; the rows applied the first time are not applied over newer answers."""
    path = issue(con, tmp_path, n=3)[A]
    one, two = Clerk(path), Clerk(path)
    one.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    two.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=500)
    one.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=100)
    one.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[1], 核实说明="已更正", 核实日期=RETURN_DAY + dt.timedelta(days=2))
    first, second = one.save(tmp_path / "clerk1.xlsx"), two.save(tmp_path / "clerk2.xlsx")
    both = returns.apply_returns(con, [first, second], RETURN_DAY)
    assert {(r.file, r.suspect_id) for r in both.refusals} == {
        (str(first), f"S-{A}-1"), (str(second), f"S-{A}-1"), (str(first), f"S-{A}-3")}
    assert "请只报送其中一份" in " ".join(r.reason for r in both.refusals)
    assert status_of(con, f"S-{A}-1")[0] == "已下发" and status_of(con, f"S-{A}-2")[2] == Decimal("100.00")
    # the agency answers S-2 again on a later sheet: more recovered
    later = Clerk(path)
    later.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=400)
    assert len(returns.apply_returns(con, [later.save(tmp_path / "later.xlsx")], RETURN_DAY).applied) == 1

    alone = returns.apply_returns(con, [first], RETURN_DAY + dt.timedelta(days=2))
    assert alone.refusals == [] and alone.files[0].status == "applied"
    assert status_of(con, f"S-{A}-1")[:2] == ("已销号", OUTCOME_LABELS[7])
    assert status_of(con, f"S-{A}-3")[:2] == ("已销号", OUTCOME_LABELS[1])  # its date has come
    assert status_of(con, f"S-{A}-2")[2] == Decimal("400.00")  # not set back to the first sheet's 100
    assert alone.files[0].applied == 2 and alone.files[0].unchanged == 1
    assert returns.apply_returns(con, [first], RETURN_DAY + dt.timedelta(days=2)).files[0].status == "already_applied"


def test_a_number_typed_into_the_date_cell_is_read_as_the_date(con, tmp_path):
    """20261126 pasted into the date-formatted 核实日期 cell is a number no date serial can be:
    openpyxl reads it as #VALUE! (and warns on stderr); it is the date the clerk typed."""
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    row = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题", 核实日期=20261126)
    clerk.ws.cell(row=row, column=clerk.header.index("核实日期") + 1).number_format = "yyyy-mm-dd"
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == []
    assert status_of(con, f"S-{A}-1")[4] == dt.date(2026, 11, 26)


@pytest.mark.parametrize("kind", ["xls", "ods", "csv", "gbk_csv", "zip", "pdf", "png"])
def test_a_file_of_another_format_is_refused_in_words_a_clerk_can_act_on(con, tmp_path, kind):
    import zipfile
    path = issue(con, tmp_path, n=1)[A]
    sent = tmp_path / f"returned.{kind}"
    if kind == "xls":  # an OLE2 compound file, as Excel 97-2003 saves
        sent.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1024)
    elif kind == "ods":
        with zipfile.ZipFile(sent, "w") as z:
            z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
            z.writestr("content.xml", "<office:document-content/>")
    elif kind in ("csv", "gbk_csv"):
        sent.write_text("疑点编号,核实结果\nS-1,7\n" * 60, encoding="utf-8" if kind == "csv" else "gb18030")
    elif kind == "pdf":
        sent.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<</Type/Catalog>>\nendobj\n")
    elif kind == "png":  # a photo of the sheet, named .xlsx (its bytes hold no NUL in the first line)
        sent.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(1, 256)) * 3)
    else:
        with zipfile.ZipFile(sent, "w") as z:
            z.writestr("a.txt", "x")
    report = returns.apply_returns(con, [sent], RETURN_DAY)
    (refusal,) = report.refusals
    assert refusal.row == 0 and "不是下发的 .xlsx 台账" in refusal.reason, refusal.reason
    assert not any(word in refusal.reason.lower() for word in ("openpyxl", "xlrd", "file", "format", "support"))
    assert {"xls": ".xls", "ods": ".ods", "csv": "文本文件", "gbk_csv": "文本文件", "zip": "zip", "pdf": "PDF 文件",
            "png": "无法识别的文件"}[kind] in refusal.reason
    assert path.exists()


def test_a_worklist_renamed_to_another_extension_is_read_by_its_content(con, tmp_path):
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    renamed = clerk.save(tmp_path / "台账.xls")
    report = returns.apply_returns(con, [renamed], RETURN_DAY)
    assert report.refusals == [] and status_of(con, f"S-{A}-1")[0] == "已销号"


def test_a_copied_worklist_sheet_is_read_where_the_answers_are(con, tmp_path):
    """A clerk copies 疑点清单 and fills the copy: its answers apply (taking the empty original would
    drop them silently); two sheets both filled in are refused naming both."""
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    clerk.copy_sheet(**{f"S-{A}-1": {"核实结果": OUTCOME_LABELS[4], "追回金额": 1000}})
    one = clerk.save(tmp_path / "copy_filled.xlsx")
    report = returns.apply_returns(con, [one], RETURN_DAY)
    assert report.refusals == [] and status_of(con, f"S-{A}-1")[0] == "已销号"

    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    both = clerk.save(tmp_path / "both_filled.xlsx")
    report = returns.apply_returns(con, [both], RETURN_DAY)
    (refusal,) = report.refusals
    assert refusal.row == 0 and "“疑点清单”" in refusal.reason and "“疑点清单 (2)”" in refusal.reason
    assert status_of(con, f"S-{A}-2")[0] == "已下发"


def test_an_untouched_prefilled_row_does_not_undo_an_answer_given_since(con, tmp_path):
    """Two clerks take copies of a night's sheet, where a 核查中 suspect shows 4 / 300 on record. One
    records 600 recovered; the other answers only another suspect. The second copy's untouched
    row is what was issued, not a new answer: the 600 stands — and once the suspect is closed, the
    untouched row is not refused either."""
    night = next_night_with_one_in_progress(con, tmp_path, n=3)
    assert rows_by_id_of(night)[f"S-{A}-1"]["追回金额"] == 300
    first, second = Clerk(night), Clerk(night)
    first.fill(f"S-{A}-1", 追回金额=600)
    returns.apply_returns(con, [first.save(tmp_path / "first.xlsx")], RETURN_DAY + dt.timedelta(days=2))
    assert status_of(con, f"S-{A}-1")[2] == Decimal("600.00")
    before = events(con, f"S-{A}-1")
    second.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    report = returns.apply_returns(con, [second.save(tmp_path / "second.xlsx")], RETURN_DAY + dt.timedelta(days=3))
    assert report.refusals == [] and report.files[0].unchanged == 1 and report.files[0].applied == 1
    assert status_of(con, f"S-{A}-1")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("600.00"))
    assert events(con, f"S-{A}-1") == before

    third = Clerk(night)
    third.fill(f"S-{A}-1", 追回金额=1000)
    returns.apply_returns(con, [third.save(tmp_path / "third.xlsx")], RETURN_DAY + dt.timedelta(days=3))
    assert status_of(con, f"S-{A}-1")[0] == "已销号"
    late = Clerk(night)
    late.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    report = returns.apply_returns(con, [late.save(tmp_path / "late.xlsx")], RETURN_DAY + dt.timedelta(days=4))
    assert report.refusals == [] and status_of(con, f"S-{A}-3")[0] == "已销号"


def test_two_copies_one_untouched_and_one_answered_do_not_conflict(con, tmp_path):
    night = next_night_with_one_in_progress(con, tmp_path, n=1)
    answered, untouched = Clerk(night), Clerk(night)
    answered.fill(f"S-{A}-1", 追回金额=1000)
    untouched.ws.cell(row=1, column=1).comment = None  # saved again, nothing typed
    report = returns.apply_returns(con, [answered.save(tmp_path / "a.xlsx"), untouched.save(tmp_path / "b.xlsx")],
                                   RETURN_DAY + dt.timedelta(days=2))
    assert report.refusals == [] and status_of(con, f"S-{A}-1")[0] == "已销号"


def test_a_workbook_sent_again_takes_part_in_conflicts_with_its_retried_rows_only(con, tmp_path):
    """Sent again with a newer workbook, a workbook's rows applied the first time are no answers
    now: they neither conflict with the newer answer nor, refused for it, come back later to undo it."""
    path = issue(con, tmp_path, n=3)[A]
    old = Clerk(path)
    old.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=100)
    old.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题", 核实日期=RETURN_DAY + dt.timedelta(days=5))
    first = old.save(tmp_path / "a.xlsx")
    assert [r.suspect_id for r in returns.apply_returns(con, [first], RETURN_DAY).refusals] == [f"S-{A}-3"]
    night = worklists.write_worklists(con, tmp_path / "out2", RETURN_DAY + dt.timedelta(days=1))[0]
    newer = Clerk(night)
    newer.fill(f"S-{A}-1", 追回金额=1000)
    both = returns.apply_returns(con, [first, newer.save(tmp_path / "n.xlsx")], RETURN_DAY + dt.timedelta(days=6))
    assert both.refusals == []
    assert status_of(con, f"S-{A}-1")[:3] == ("已销号", OUTCOME_LABELS[4], Decimal("1000.00"))
    assert status_of(con, f"S-{A}-3")[0] == "已销号"  # the retried row, its date now come
    again = returns.apply_returns(con, [first], RETURN_DAY + dt.timedelta(days=7))
    assert again.files[0].status == "already_applied"
    assert status_of(con, f"S-{A}-1")[2] == Decimal("1000.00")


def test_a_sheet_of_a_night_a_restored_store_lost_does_not_undo_a_later_answer(con, tmp_path):
    """From an operations probe: the store restored from a backup taken before a night, the sheet
    that night issued (a 台账编号 the store has no record of) came back after a later sheet's answer:
    its untouched pre-filled answer (4 / 300) undid the later recovery of 800 and told the clerk he
    had lowered it. Refused where it differs now (its day is in its 台账编号); its other rows apply, and
    the file is said to be one the store has no record of. A row whose locked cells differ from the
    latest sheet's is refused as not checkable — it was refused as tampered, blaming the clerk."""
    issue(con, tmp_path, n=3)
    clerk = Clerk(next((tmp_path / "out").glob("*.xlsx")))
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=300)
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    for i in (4, 5):  # found since, first issued by the lost night (下发日期 differs from the catch-up's)
        add_suspect(con, f"S-{A}-{i}", agency=A, person_id=f"3607021950010{i:04d}"[:17] + "X", amount="1000.00")
    con.execute("checkpoint")
    shutil.copy(tmp_path / "fw.duckdb", tmp_path / "backup.duckdb")  # the backup, then a night it lacks
    [lost] = worklists.write_worklists(con, tmp_path / "lost", RETURN_DAY + dt.timedelta(days=1))
    restored = connect(tmp_path / "backup.duckdb")
    try:
        restored.execute(f"update suspects set amount = 1200 where suspect_id = 'S-{A}-3'")  # grown since
        [catch_up] = worklists.write_worklists(restored, tmp_path / "out3", RETURN_DAY + dt.timedelta(days=3))
        later = Clerk(catch_up)
        later.fill(f"S-{A}-1", 追回金额=800)
        first = returns.apply_returns(restored, [later.save()], RETURN_DAY + dt.timedelta(days=3))
        assert first.refusals == [], first.refusals
        late = Clerk(lost)  # S-1 left as pre-filled (4 / 300), S-2 answered
        late.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题")
        late.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题")
        late.fill(f"S-{A}-4", 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题")  # S-5 left unanswered
        report = returns.apply_returns(restored, [late.save()], RETURN_DAY + dt.timedelta(days=4))
        whole_file = [r.reason for r in report.refusals if r.row == 0]
        assert len(whole_file) == 1 and "不在本库的下发记录中" in whole_file[0] and "备份" in whole_file[0], whole_file
        row, grown = sorted((r for r in report.refusals if r.row), key=lambda r: r.suspect_id)
        assert (row.column, row.suspect_id) == ("核实结果", f"S-{A}-1") and "本台账下发在其之前" in row.reason
        assert (grown.column, grown.suspect_id) == ("涉及金额", f"S-{A}-3")
        assert "无法核对" in grown.reason and "被修改" not in grown.reason, grown.reason
        assert status_of(restored, f"S-{A}-1")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("800.00"))
        assert status_of(restored, f"S-{A}-2")[0] == "已销号" and status_of(restored, f"S-{A}-3")[0] == "已下发"
        # its 下发日期 is the lost night's, what it verified the same: applied; the unanswered row is no refusal
        assert status_of(restored, f"S-{A}-4")[0] == "已销号" and report.files[0].pending == 1
    finally:
        restored.close()


def test_a_lost_sheet_does_not_undo_an_answer_on_the_sheet_of_the_same_day_run_again(con, tmp_path):
    """From a regression probe of the test above: the restored store ran the lost night again for the
    same day (the usual way back), its sheet answered 4 / 800; the lost sheet of that day, its
    pre-filled 4 / 300 untouched, undid the 800 — a sheet the store holds for the same day was issued
    after the restore, so it is the later one."""
    issue(con, tmp_path, n=2)
    clerk = Clerk(next((tmp_path / "out").glob("*.xlsx")))
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=300)
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    con.execute("checkpoint")
    shutil.copy(tmp_path / "fw.duckdb", tmp_path / "backup.duckdb")
    night = RETURN_DAY + dt.timedelta(days=1)
    [lost] = worklists.write_worklists(con, tmp_path / "lost", night)
    restored = connect(tmp_path / "backup.duckdb")
    try:
        [again] = worklists.write_worklists(restored, tmp_path / "again", night)
        later = Clerk(again)
        later.fill(f"S-{A}-1", 追回金额=800)
        assert returns.apply_returns(restored, [later.save()], night).refusals == []
        late = Clerk(lost)
        late.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题")
        # applied as of a day before it was issued (a mistyped --as-of): refused, as a recorded sheet is
        early = returns.apply_returns(restored, [late.save()], night - dt.timedelta(days=1))
        assert {r.column for r in early.refusals if r.row} == {"下发日期"} and status_of(restored, f"S-{A}-2")[0] == "已下发"
        report = returns.apply_returns(restored, [late.save()], night + dt.timedelta(days=1))
        [row] = [r for r in report.refusals if r.row]
        assert (row.column, row.suspect_id) == ("核实结果", f"S-{A}-1") and "同日重新下发" in row.reason
        assert status_of(restored, f"S-{A}-1")[2] == Decimal("800.00") and status_of(restored, f"S-{A}-2")[0] == "已销号"
        # a copy of it whose every row applies (or is as on record) is told nothing to correct
        agreed = Clerk(lost)
        agreed.fill(f"S-{A}-1", 追回金额=800)
        assert returns.apply_returns(restored, [agreed.save(tmp_path / "agreed.xlsx")], night + dt.timedelta(days=2)
                                     ).refusals == []
    finally:
        restored.close()


def test_a_copy_of_a_sheet_with_prefilled_answers_is_read_where_the_new_answers_are(con, tmp_path):
    night = next_night_with_one_in_progress(con, tmp_path, n=2)
    copied = Clerk(night)  # the original keeps S-1's pre-filled answer; the copy answers S-2
    copied.copy_sheet(**{f"S-{A}-2": {"核实结果": OUTCOME_LABELS[7], "核实说明": "无问题"}})
    report = returns.apply_returns(con, [copied.save(tmp_path / "copy.xlsx")], RETURN_DAY + dt.timedelta(days=2))
    assert report.refusals == [] and status_of(con, f"S-{A}-2")[0] == "已销号"
    assert status_of(con, f"S-{A}-1")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("300.00"))


def test_an_earlier_return_saved_again_does_not_undo_the_answer_of_a_later_sheet(con, tmp_path):
    """S-1 answered 4 / 300 on the first sheet, then 800 on the next night's. The first return,
    opened and saved again (other bytes), still says 300: refused, the 800 stands. A row of that
    old sheet whose suspect no later sheet answered still applies."""
    night = next_night_with_one_in_progress(con, tmp_path, n=2)
    first_return = next((tmp_path / "out").glob("returned_*.xlsx"))
    later = Clerk(night)
    later.fill(f"S-{A}-1", 追回金额=800)
    returns.apply_returns(con, [later.save(tmp_path / "later.xlsx")], RETURN_DAY + dt.timedelta(days=2))
    assert status_of(con, f"S-{A}-1")[2] == Decimal("800.00")
    before = events(con, f"S-{A}-1")

    resaved = Clerk(first_return)
    resaved.wb.properties.lastModifiedBy = "另一台电脑"
    resaved.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题")
    report = returns.apply_returns(con, [resaved.save(tmp_path / "resaved.xlsx")], RETURN_DAY + dt.timedelta(days=3))
    [refusal] = report.refusals
    assert (refusal.column, refusal.suspect_id) == ("核实结果", f"S-{A}-1")
    assert "本台账下发在其之前" in refusal.reason and "最新下发的台账" in refusal.reason
    assert status_of(con, f"S-{A}-1")[2] == Decimal("800.00") and events(con, f"S-{A}-1") == before
    assert status_of(con, f"S-{A}-2")[0] == "已销号"

    # saved once more: S-2's answer is the record now (no change), S-1's still the older one
    again = Clerk(tmp_path / "resaved.xlsx")
    again.wb.properties.lastModifiedBy = "第三台电脑"
    report = returns.apply_returns(con, [again.save(tmp_path / "resaved2.xlsx")], RETURN_DAY + dt.timedelta(days=4))
    assert [r.suspect_id for r in report.refusals] == [f"S-{A}-1"] and report.files[0].unchanged == 1


def test_an_answer_to_a_reopened_suspect_dated_no_later_than_the_closing_it_undid_is_refused(con, tmp_path):
    """A reopened suspect's sheet shows the earlier answer, with its 核实日期; a clerk answering the
    new evidence who types only the new 追回金额 would date it before the reopening. (A date before
    the 下发日期 is otherwise accepted: an agency may have found the payment itself.)"""
    path = issue(con, tmp_path, n=2)[A]  # issued AS_OF
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题", 核实日期=AS_OF - dt.timedelta(days=30))
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实说明="已追回", 核实日期=AS_OF)
    assert returns.apply_returns(con, [clerk.save()], RETURN_DAY).refusals == []
    assert status_of(con, f"S-{A}-2")[0::5] == ("已销号", AS_OF)

    # S-2 reopens on new evidence; its new sheet shows the earlier answer, dated AS_OF
    reopened_on = RETURN_DAY + dt.timedelta(days=5)
    con.execute("update suspects set status = '已重开', amount = 1500.00, closed_on = null, deadline = null "
                "where suspect_id = ?", [f"S-{A}-2"])
    casework.add_event(con, f"S-{A}-2", "reopened", {"as_of": reopened_on.isoformat(), "old_amount": 1000.0,
                                                    "new_amount": 1500.0, "closed_on": AS_OF.isoformat()})
    [sheet] = worklists.write_worklists(con, tmp_path / "out2", reopened_on)
    assert rows_by_id_of(sheet)[f"S-{A}-2"]["核实日期"] is not None
    typed_recovery_only = Clerk(sheet)
    typed_recovery_only.fill(f"S-{A}-2", 追回金额=1500)
    [refusal] = returns.apply_returns(con, [typed_recovery_only.save()], reopened_on + dt.timedelta(days=2)).refusals
    assert refusal.column == "核实日期" and f"于 {AS_OF} 销号后因新证据重开" in refusal.reason
    assert status_of(con, f"S-{A}-2")[0] == "已重开"
    # the date emptied: the day of the return, not the date of the answer before the reopening
    cleared = Clerk(sheet)
    row = cleared.fill(f"S-{A}-2", 追回金额=1500)
    cleared.ws.cell(row=row, column=cleared.header.index("核实日期") + 1).value = None  # fill() cannot set None
    report = returns.apply_returns(con, [cleared.save(tmp_path / "cleared.xlsx")], reopened_on + dt.timedelta(days=2))
    assert report.refusals == []
    assert status_of(con, f"S-{A}-2")[0::4] == ("已销号", reopened_on + dt.timedelta(days=2))


def test_a_workbook_applied_again_on_a_later_day_changes_nothing_not_even_flags(con, tmp_path):
    """CONTRACT §5: re-applying the same workbook changes nothing. Its suspects' flags of a later
    day (逾期 past the 核查期限) are the night's to set, not the re-sent workbook's."""
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=300, 核实说明="部分追回")
    returned = clerk.save()
    returns.apply_returns(con, [returned], RETURN_DAY, config=Config())
    before = con.execute("select * from suspect_events order by all").fetchall()
    much_later = RETURN_DAY + dt.timedelta(days=60)  # past the 核查期限: the night would flag 逾期
    report = returns.apply_returns(con, [returned], much_later, config=Config())
    assert report.files[0].status == "already_applied"
    assert con.execute("select * from suspect_events order by all").fetchall() == before
    assert status_of(con, f"S-{A}-1")[0] == "核查中"
    assert casework.refresh(con, much_later, Config())["overdue"] >= 1  # what the night does


def test_a_closing_records_what_the_suspect_was_closed_on(con, tmp_path):
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题")
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=400, 核实说明="部分追回")
    returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    closed = "select closed_amount, closed_period_from, closed_period_to from suspects where suspect_id = ?"
    assert con.execute(closed, [f"S-{A}-1"]).fetchall() == [(Decimal("1000.00"), "202601", "202603")]
    assert con.execute(closed, [f"S-{A}-2"]).fetchall() == [(None, None, None)]  # 核查中: not closed


def test_a_name_typed_into_an_answer_cell_is_not_repeated_in_the_refusal(con, tmp_path, capsys):
    """Refusals are printed and kept in return_refusals, which hold no names: a wrong cell's text is
    quoted by its first character unless it is digits, ASCII or date words."""
    path = issue(con, tmp_path, n=3)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果="8.司马测丙 6222021234567890")
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题", 核实日期="司马测丁 360102199001013455")
    clerk.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题", 核实日期="2026-13-01")
    returned = clerk.save()
    con.close()
    assert cli.main(["returns", "--db", str(tmp_path / "fw.duckdb"), "--as-of", RETURN_DAY.isoformat(), str(returned)]) \
        == cli.EXIT_OK
    printed = capsys.readouterr().out
    again = connect(tmp_path / "fw.duckdb")
    stored = " ".join(r for (r,) in again.execute("select reason from return_refusals").fetchall())
    again.close()
    for text in (printed, stored):
        assert "“8…”不是七种核实结果之一" in text and "核实日期“司…”不是日期" in text
        assert "核实日期“2026-13-01”不是日期" in text  # what names no one is quoted whole
        for secret in ("司马", "6222021234567890", "360102199001013455"):
            assert secret not in text
    assert "redraws them now" not in printed  # nothing applied: the night's pages are still true


def test_returns_that_applied_answers_say_the_nights_pages_are_redrawn_by_report(con, tmp_path, capsys):
    """An analyst probe: after returns the night's dashboard and 汇总表 disagreed with the notebooks
    under the same 数据截至 date, and nothing said why — the command now says how to redraw them."""
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    returned = clerk.save()
    con.close()
    db = tmp_path / "fw.duckdb"
    assert cli.main(["returns", "--db", str(db), "--as-of", RETURN_DAY.isoformat(), str(returned)]) == cli.EXIT_OK
    printed = capsys.readouterr().out
    assert "应用 1 行" in printed
    assert f"the dashboard and 汇总表 in the output folder show the night they were drawn for, without this change: " \
           f"`fundwatch report --db {db} --out <OUT>` redraws them now" in printed


def test_money_got_back_after_a_transfer_is_reported_as_outcome_4_on_the_sheet_it_went_out_on(con, tmp_path):
    """A case transferred to 稽核 (outcome 5) is on no later sheet, and it was refused any change: the
    money 稽核 got back could not be recorded, and the case stayed 挂牌督办 for good. Outcome 4 with
    the recovery is taken on the sheet it went out on, by outcome 4's rule: 核查中 while partly
    recovered (back in the agency's hands), closed once covered. No other change is taken, nor a 4
    without new money or dated before the transfer; the workbook re-saved and sent again changes nothing."""
    path = issue(con, tmp_path, n=2)[A]
    transferred_on = AS_OF + dt.timedelta(days=2)
    clerk = Clerk(path)
    for sid in (f"S-{A}-1", f"S-{A}-2"):
        clerk.fill(sid, 核实结果=OUTCOME_LABELS[5], 核实说明="转稽核", 核实日期=transferred_on)
    sent = clerk.save()
    assert returns.apply_returns(con, [sent], RETURN_DAY).refusals == []
    late = dt.date(2027, 2, 10)  # 90 days after first detection (2026-11-01) have passed
    casework.refresh(con, late)
    assert con.execute("select count(*) from suspects where escalated").fetchall() == [(2,)]
    assert worklists.write_worklists(con, tmp_path / "later", late) == []  # a transferred case is on no sheet
    back = Clerk(sent)
    back.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=400, 核实说明="稽核追回400元")  # the transfer's date left
    back.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="稽核认定无问题")
    report = returns.apply_returns(con, [back.save(tmp_path / "back.xlsx")], late)
    assert [(r.suspect_id, r.column) for r in report.refusals] == [(f"S-{A}-2", "核实结果")]
    assert "请以核实结果 4 填写追回金额报送" in report.refusals[0].reason
    assert status_of(con, f"S-{A}-1") == ("核查中", OUTCOME_LABELS[4], Decimal("400.00"), "稽核追回400元", late, None)
    assert status_of(con, f"S-{A}-2")[:2] == ("已移送", OUTCOME_LABELS[5])
    # the same answers re-saved by another program and sent again: nothing changes, nothing refused
    resaved = Clerk(tmp_path / "back.xlsx")
    resaved.wb.properties.creator = "LibreOffice"
    again = returns.apply_returns(con, [resaved.save(tmp_path / "back_resaved.xlsx")], late + dt.timedelta(days=1))
    assert again.refusals == [f for f in again.refusals if f.suspect_id == f"S-{A}-2"] and again.files[0].applied == 0
    assert status_of(con, f"S-{A}-1")[4] == late
    # the transfer's own workbook (the first version of this sheet) sent again by mistake: it would
    # take S-1 back to 已移送 — refused as an earlier version
    stale = Clerk(sent)
    stale.wb.properties.creator = "LibreOffice"
    refused = returns.apply_returns(con, [stale.save(tmp_path / "sent_again.xlsx")], late).refusals
    assert [r.suspect_id for r in refused] == [f"S-{A}-1"] and "本表是此前的版本" in refused[0].reason  # S-2's 5 is on record
    assert status_of(con, f"S-{A}-1")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("400.00"))
    # 4 without new money, or dated before the transfer, on the other one: refused
    wrong = Clerk(tmp_path / "back.xlsx")  # the clerk's latest file (S-1's first answer in `sent` would undo the 4)
    wrong.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 核实说明="")
    assert [r.column for r in returns.apply_returns(con, [wrong.save(tmp_path / "w1.xlsx")], late).refusals] == ["追回金额"]
    wrong.fill(f"S-{A}-2", 追回金额=1000, 核实日期=transferred_on - dt.timedelta(days=1))
    refused = returns.apply_returns(con, [wrong.save(tmp_path / "w2.xlsx")], late).refusals
    assert [r.column for r in refused] == ["核实日期"] and f"早于移送的核实日期 {transferred_on}" in refused[0].reason
    # a further instalment typed into the same sheet, the transfer's date still left: the date on record kept
    more = Clerk(tmp_path / "w2.xlsx")
    more.fill(f"S-{A}-1", 追回金额=700)
    assert returns.apply_returns(con, [more.save(tmp_path / "more.xlsx")], late + dt.timedelta(days=1)).refusals[0].suspect_id == f"S-{A}-2"
    assert status_of(con, f"S-{A}-1")[2:5] == (Decimal("700.00"), "稽核追回400元", late)
    # the partly recovered one is on the next sheet with its recovery; completed there, it closes
    [nxt] = worklists.write_worklists(con, tmp_path / "next", late + dt.timedelta(days=2))
    done = Clerk(nxt)
    assert set(done.rows) - {None} == {f"S-{A}-1"}
    done.fill(f"S-{A}-1", 追回金额=1000, 核实日期=late + dt.timedelta(days=3))
    assert returns.apply_returns(con, [done.save()], late + dt.timedelta(days=4), config=Config()).refusals == []
    assert status_of(con, f"S-{A}-1")[0::5] == ("已销号", late + dt.timedelta(days=3))  # 挂牌督办 lifted:
    assert con.execute("select suspect_id from suspects where escalated").fetchall() == [(f"S-{A}-2",)]


def test_an_answer_column_headed_twice_refuses_the_workbook_rather_than_drop_the_answer_in_the_other(con, tmp_path):
    """A clerk added a second 追回金额 column at the end and typed the amount there: reading the
    first (empty) one closed nothing and said nothing."""
    path = issue(con, tmp_path, n=2)[A]
    wb, ws = _unprotected(path)
    header = [c.value for c in ws[1]]
    extra = len(header) + 1
    ws.cell(row=1, column=extra, value="追回金额")
    ws.cell(row=2, column=header.index("核实结果") + 1, value=OUTCOME_LABELS[4])
    ws.cell(row=2, column=extra, value=1000)
    out = tmp_path / "twice.xlsx"
    wb.save(out)
    report = returns.apply_returns(con, [out], RETURN_DAY)
    assert report.files[0].status == "unreadable"
    from openpyxl.utils import get_column_letter
    letters = f"第{get_column_letter(header.index('追回金额') + 1)}、{get_column_letter(extra)}列"
    assert [r.reason for r in report.refusals] == [
        f"不是可读取的核查台账：工作表“疑点清单”中列“追回金额”（{letters}）出现了不止一次，无法确定以哪一列为准："
        "请删除多余的列后重新报送"]
    assert status_of(con, f"S-{A}-1")[0] == "已下发"


def test_a_cell_formatted_at_the_sheets_last_row_costs_nothing_to_read(con, tmp_path):
    """Ctrl+End or a style applied to the whole column leaves a cell at row 1,048,576: the sheet's
    own dimensions are then a million rows, which openpyxl turned into a cell object each (minutes
    and gigabytes); only the cells holding a value are read."""
    path = issue(con, tmp_path, n=2)[A]
    wb, ws = _unprotected(path)
    header = [c.value for c in ws[1]]
    ws.cell(row=2, column=header.index("核实结果") + 1, value="7")
    ws.cell(row=2, column=header.index("核实说明") + 1, value="无问题")
    ws.cell(row=1_048_576, column=16_384).number_format = "0.00"  # XFD1048576: styled, empty
    out = tmp_path / "far.xlsx"
    wb.save(out)
    sheet = returned_workbooks.read_workbook(out)[0]
    assert [n for n, _ in sheet.rows] == [2, 3] and len(sheet.rows[0][1]) <= len(header)
    assert returns.apply_returns(con, [out], RETURN_DAY).refusals == []
    assert status_of(con, f"S-{A}-1")[0] == "已销号"


def test_a_value_typed_in_the_sheets_last_row_costs_nothing_to_read_and_is_refused_by_its_row(con, tmp_path):
    """One `x` typed at row 1,048,576 (a 14 KB workbook) had openpyxl make a cell object for every
    column of every row above it: `returns` grew to 24 GB until the system killed it (a security
    probe). Only the rows holding cells are read; that row is refused for its missing 疑点编号."""
    path = issue(con, tmp_path, n=2)[A]
    wb, ws = _unprotected(path)
    header = [c.value for c in ws[1]]
    ws.cell(row=2, column=header.index("核实结果") + 1, value="7")
    ws.cell(row=2, column=header.index("核实说明") + 1, value="无问题")
    ws.cell(row=1_048_576, column=header.index("核实说明") + 1, value="x")
    out = tmp_path / "far-value.xlsx"
    wb.save(out)
    sheet = returned_workbooks.read_workbook(out)[0]
    assert [n for n, _ in sheet.rows] == [2, 3, 1_048_576] and all(len(r) <= len(header) for _, r in sheet.rows)
    report = returns.apply_returns(con, [out], RETURN_DAY)
    assert [(r.row, r.column, r.reason) for r in report.refusals] == [(1_048_576, "疑点编号", "疑点编号为空")]
    assert status_of(con, f"S-{A}-1")[0] == "已销号"


def test_a_returned_workbook_that_unpacks_to_far_more_than_it_takes_is_refused_unread(con, tmp_path):
    """A 1.5 MB worklist padded with 1.5 GB of blanks took 1.7 GB to read (a security probe): a part
    both large unpacked and packed more than 200 times refuses the workbook by its sizes."""
    import zipfile

    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    out = clerk.save()
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/media/padding.bin", b" " * (70 * 2**20))
    report = returns.apply_returns(con, [out], RETURN_DAY)
    assert report.files[0].status == "unreadable"
    [refusal] = report.refusals
    assert refusal.reason.startswith("不是可读取的核查台账：工作簿中的部分内容解压后异常庞大（xl/media/padding.bin: 73,400,320 bytes")
    assert status_of(con, f"S-{A}-1")[0] == "已下发"


def test_the_header_is_found_below_title_rows_a_clerk_inserted(con, tmp_path):
    path = issue(con, tmp_path, n=1)[A]
    wb, ws = _unprotected(path)
    ws.insert_rows(1, 11)
    ws["A1"] = "某区社会保险事业管理局疑点核查台账（核实结果）"
    _first_row_answered_closes(con, tmp_path, wb, ws, header_row=12)


@pytest.mark.parametrize("note", ["#N/A", "#NAME?", "\u200b", "\ufeff "])
def test_an_error_value_or_invisible_text_is_no_explanation_to_close_with(con, tmp_path, note):
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    row = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明=note)
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert [(r.row, r.column) for r in report.refusals] == [(row, "核实说明")]
    assert status_of(con, f"S-{A}-1")[0] == "已下发"


def _as_typed_text(clerk, row: int, column: str = "核实说明") -> None:
    """The cell holds the text typed, as a text-formatted cell keeps it (openpyxl would write a formula)."""
    clerk.ws.cell(row=row, column=clerk.header.index(column) + 1).data_type = "s"


@pytest.mark.parametrize("note", ["=NA()", "=B4", "= $K$2", "=VLOOKUP(A2,核对!A:B,2,0)", "='核对表'!C3",
                                  "=IF(A1>0,\"已核实\",\"\")", "=+B4", "=R1C1", "=R[-1]C", "+B4", "@B4",
                                  "=疑点清单!B4", "+疑点清单!B4", "=$说明.A1", "=VLOOKUP(A2,$A:$B,2,0)"])
def test_a_formula_typed_into_the_text_cell_is_no_explanation_to_close_with(con, tmp_path, note):
    """核实说明 is formatted as text, where Excel, WPS and LibreOffice keep a typed formula as its
    text (a LibreOffice clerk probe): "=NA()" closed the suspect as its explanation."""
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    row = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明=note)
    _as_typed_text(clerk, row)
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert [(r.row, r.column) for r in report.refusals] == [(row, "核实说明")]
    assert "是公式，单元格为文本格式" in report.refusals[0].reason
    assert status_of(con, f"S-{A}-1")[0] == "已下发"


NOTES_STARTING_LIKE_A_FORMULA = ["=OK(已电话核实)", "=PDF(附件)已核实", "=GB12345 标准核实", "=T1 核查组已核实",
                                 "=V1.2 系统已更正", "=A1,已核实", "=核实无误，待遇正常", "= 见附件", "-已核实", "＝B4",
                                 # (a second probe: a "!" ending the words, a quoted word, a serial number, a
                                 # character beyond the common Chinese block — each was taken for a formula)
                                 "=A1 已核实!", "-B2 查无此人!", "=5545.6*12 已追回!", "-B2 \"查无此人\"",
                                 "-FF202608170000000307001", "-B4 𪨶", "=see attached",
                                 # (a fuzz of the check: words, bracketed notes, numbers, links are notes)
                                 "=OK", "=attached", "=已核实[附件1]", "-见附件[1]", "=Tel:13800138000", "=2023/05/01",
                                 "=已联系!10:30", "=见附件.A1", "=www.rsj.gov.cn", "=500+500",
                                 # (a third: calls of no function, operands in a row, lists, codes off the grid)
                                 "=OK (P1)", "=Tel(13800138000)", "=A1(2)", "=V1->V2", "=P1,P2", "- A1\n- B2",
                                 "=PZ2026001", "@Li2 @Tom1", "=已联系本人，确认无误!V2", "-V2+"]


def test_a_note_in_words_that_starts_like_a_formula_is_a_note(con, tmp_path):
    """Notes a regression probe of the check above found refused: a formula has no Chinese outside
    its quoted strings and sheet names."""
    path = issue(con, tmp_path, n=len(NOTES_STARTING_LIKE_A_FORMULA))[A]
    clerk = Clerk(path)
    for i, note in enumerate(NOTES_STARTING_LIKE_A_FORMULA, start=1):
        _as_typed_text(clerk, clerk.fill(f"S-{A}-{i}", 核实结果=OUTCOME_LABELS[7], 核实说明=note))
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == []
    assert {status_of(con, f"S-{A}-{i}")[0] for i in range(1, len(NOTES_STARTING_LIKE_A_FORMULA) + 1)} == {"已销号"}


def test_a_note_on_record_that_looks_like_a_formula_does_not_stop_the_recovery_being_completed(con, tmp_path):
    """A partial recovery answered with the note "=B4" before the check came: the next sheet shows it
    pre-filled and the clerk raises only 追回金额 — refused for a note the clerk did not type (a
    regression probe). The note on record stands, as the date on record does."""
    add_suspect(con, f"S-{A}-1", status="核查中", amount="1000.00", outcome=OUTCOME_LABELS[4],
                recovered_amount=Decimal("300.00"), verification_note="=B4", verified_on=dt.date(2026, 11, 10))
    clerk = Clerk({p.name.split("_")[1]: p for p in worklists.write_worklists(con, tmp_path / "out", AS_OF)}[A])
    row = clerk.rows[f"S-{A}-1"]
    assert clerk.ws.cell(row=row, column=clerk.header.index("核实说明") + 1).value == "=B4"  # pre-filled
    clerk.fill(f"S-{A}-1", 追回金额=1000)
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == [] and status_of(con, f"S-{A}-1")[0] == "已销号"


def test_a_copy_refused_for_a_formula_note_vetoes_no_other_copy(con, tmp_path):
    """Two clerks' copies in one call, one with the note "=B4": it was no answer, yet both were
    refused as answered differently, and the clerk was never told the note was the trouble."""
    path = issue(con, tmp_path, n=1)[A]
    good = Clerk(path)
    good.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    formula = Clerk(path)
    row = formula.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="=B4")
    _as_typed_text(formula, row)
    report = returns.apply_returns(con, [good.save(tmp_path / "good.xlsx"), formula.save(tmp_path / "formula.xlsx")],
                                   RETURN_DAY)
    assert status_of(con, f"S-{A}-1")[:2] == ("已销号", OUTCOME_LABELS[7])
    assert [(Path(r.file).name, r.row, r.column) for r in report.refusals] == [("formula.xlsx", row, "核实说明")]
    assert "是公式" in report.refusals[0].reason


@pytest.mark.parametrize("column", ["核实结果", "追回金额", "核实日期"])
def test_an_error_value_in_an_answer_cell_is_said_as_one(con, tmp_path, column):
    """A failed formula's #VALUE! was quoted "#…" (its "!" not among the characters quoted whole)."""
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    answer = {"核实结果": OUTCOME_LABELS[4], "追回金额": 100, "核实说明": "已追回", "核实日期": "2026-10-01"}
    answer[column] = "#VALUE!"
    row = clerk.fill(f"S-{A}-1", **answer)
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    [refusal] = report.refusals
    assert (refusal.row, refusal.column) == (row, column)
    assert f"{column}“#VALUE!”是 Excel 的错误值（公式出错）" in refusal.reason


def test_an_outcome_whose_number_a_fill_counted_up_says_the_two_outcomes(con, tmp_path):
    """Dragging "4. 不符合…" down one row in Excel or LibreOffice makes "5. 不符合…": refused (which
    one was meant cannot be told), quoted "5…" until the refusal named the two."""
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    row = clerk.fill(f"S-{A}-1", 核实结果=f"5. {OUTCOMES[4]}", 追回金额=100, 核实说明="已追回", 核实日期="2026-10-01")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    [refusal] = report.refusals
    assert (refusal.row, refusal.column) == (row, "核实结果")
    assert f"核实结果的编号 5 与其文字（第 4 种：{OUTCOMES[4]}）不一致" in refusal.reason
    assert status_of(con, f"S-{A}-1")[0] == "已下发"


def test_invisible_characters_pasted_into_the_id_and_answer_cells_are_not_part_of_them(con, tmp_path):
    path = issue(con, tmp_path, n=4)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 疑点编号=f"S-{A}-1\u200b", 核实结果="7", 核实说明="无问题", 核实日期="2026-10-01")
    clerk.fill(f"S-{A}-2", 核实结果=f"{OUTCOME_LABELS[7]}\ufeff", 核实说明="无问题", 核实日期="2026-10-01\u200b")
    clerk.fill(f"S-{A}-3", 核实结果="7", 核实说明="无问题", 核实日期="2026／10／01")  # full-width slashes
    # the whole Unicode class ingest removes (Cf): a tag character an emoji left, an annotation mark
    clerk.fill(f"S-{A}-4", 疑点编号=f"S-{A}-4\U000E0020", 核实结果="7\ufff9", 核实说明="无问题", 核实日期="2026-10-01")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == []
    assert [status_of(con, f"S-{A}-{i}")[0::4] for i in (1, 2, 3, 4)] == [("已销号", dt.date(2026, 10, 1))] * 4


def test_cells_written_without_their_optional_reference_are_read(con, tmp_path):
    """The format lets a writer leave out a cell's reference (r="K2"): the next column. A formula
    check over the answer cells (run when one reads empty) took the missing reference for an error."""
    import re
    import zipfile

    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果="7", 核实说明="无问题")
    saved = clerk.save()
    out = tmp_path / "no_refs.xlsx"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<c r="[A-Z]+[0-9]+"', b"<c", data)
            dst.writestr(item, data)
    report = returns.apply_returns(con, [out], RETURN_DAY)
    assert report.refusals == [] and status_of(con, f"S-{A}-1")[0] == "已销号"


def test_a_workbook_saved_as_strict_open_xml_is_refused_saying_so(con, tmp_path):
    import zipfile

    path = issue(con, tmp_path, n=1)[A]
    out = tmp_path / "strict.xlsx"
    transitional = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item).replace(transitional, b"http://purl.oclc.org/ooxml/spreadsheetml/main"))
    report = returns.apply_returns(con, [out], RETURN_DAY)
    assert report.files[0].status == "unreadable"
    assert "Strict Open XML" in report.refusals[0].reason


def test_a_cover_copied_from_another_agencys_sheet_is_set_aside_and_the_rows_apply(con, tmp_path):
    """The 说明 page carries another agency's 台账编号 (copied from a colleague's file): read by it,
    every row of the agency's own sheet was refused as another agency's."""
    add_suspect(con, f"S-{B}-1", agency=B, person_id="360702195001021234", amount="500.00")
    sheets = issue(con, tmp_path, n=2)  # both agencies' sheets
    other = returned_workbooks.export_id_of(openpyxl.load_workbook(sheets[B]))
    clerk = Clerk(sheets[A])
    cover = clerk.wb[worklists.COVER]
    cell = next(r[1] for r in cover.iter_rows() if r[0].value == worklists.EXPORT_ID_LABEL)
    own, cell.value = cell.value, other
    clerk.fill(f"S-{A}-1", 核实结果="7", 核实说明="无问题")
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert status_of(con, f"S-{A}-1")[0] == "已销号"
    assert [(r.row, r.reason) for r in report.refusals] == [
        (0, f"“说明”页的台账编号 {other} 是下发给机构 {B} 的另一份台账的编号，本表各行都不在其中：已按行内疑点判断台账，请更正“说明”页")]
    assert report.files[0].agency_code == A and own != other


def test_a_workbook_that_cannot_be_written_stops_the_call_saying_what_was_applied_before_it(con, tmp_path, monkeypatch):
    """The store's disk filling while a call applies seven workbooks: five were committed, but the
    console said only DuckDB's error, exit 2. (The fault is injected into the real write of the
    second workbook's answers, as tests/test_crash.py injects its kills.)"""
    import duckdb

    first, second = issue(con, tmp_path, n=2)[A], None
    add_suspect(con, f"S-{B}-1", agency=B, person_id="360702195001021234", amount="500.00")
    second = worklists.write_worklists(con, tmp_path / "out2", AS_OF)
    second = next(p for p in second if f"_{B}_" in p.name)
    one, two = Clerk(first), Clerk(second)
    one.fill(f"S-{A}-1", 核实结果="7", 核实说明="无问题")
    two.fill(f"S-{B}-1", 核实结果="7", 核实说明="无问题")
    paths = [one.save(tmp_path / "a.xlsx"), two.save(tmp_path / "b.xlsx")]
    real_write, calls = returns._write_answers, []

    def disk_full_on_the_second(con_, answers):
        calls.append(1)
        if len(calls) == 2:
            raise duckdb.IOException('Could not write file "fw.duckdb.wal": No space left on device')
        return real_write(con_, answers)

    monkeypatch.setattr(returns, "_write_answers", disk_full_on_the_second)
    with pytest.raises(returns.ReturnsStopped) as stopped:
        returns.apply_returns(con, paths, RETURN_DAY)
    assert stopped.value.path == paths[1] and "No space left on device" in str(stopped.value)
    assert [Path(f.file).name for f in stopped.value.report.files] == ["a.xlsx"]
    assert status_of(con, f"S-{A}-1")[0] == "已销号" and status_of(con, f"S-{B}-1")[0] == "已下发"
    # what the workbook before it closed stands, and is named (it was not, the run having stopped)
    assert f"本次销号 1 个：S-{A}-1" in stopped.value.report.lines()
    monkeypatch.setattr(returns, "_write_answers", real_write)  # space freed: the same call again
    again = returns.apply_returns(con, paths, RETURN_DAY)
    assert [f.status for f in again.files][0] == "already_applied" and status_of(con, f"S-{B}-1")[0] == "已销号"


def test_the_command_says_which_workbook_was_undone_and_which_were_kept(con, tmp_path, monkeypatch, capsys):
    import duckdb

    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果="7", 核实说明="无问题")
    sent = clerk.save(tmp_path / "a.xlsx")
    con.close()

    def disk_full(con_, answers):
        raise duckdb.IOException('Could not write file "fw.duckdb.wal": No space left on device')

    monkeypatch.setattr(returns, "_write_answers", disk_full)
    code = cli.main(["returns", "--db", str(tmp_path / "fw.duckdb"), "--as-of", RETURN_DAY.isoformat(), str(sent)])
    assert code == cli.EXIT_FAILED
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("fundwatch returns: a.xlsx could not be applied and was undone (IOException: "
                           'Could not write file "fw.duckdb.wal": No space left on device): free disk space'), line


def test_rows_deleted_from_the_sheet_or_moved_to_another_are_said_not_passed_over(con, tmp_path):
    """From a probe of returned workbooks: answered rows cut from 疑点清单 and pasted (without the
    header) into a sheet of their own, or rows deleted, were dropped without a word — the suspects
    stayed 已下发, to go 逾期 and 挂牌督办 against an agency that believed it had answered."""
    path = issue(con, tmp_path, n=5)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    clerk.fill(f"S-{A}-4", 核实结果=OUTCOME_LABELS[1], 核实说明="已更正")
    clerk.fill(f"S-{A}-5", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    moved = clerk.wb.create_sheet("Sheet2")
    for row in (clerk.rows[f"S-{A}-4"], clerk.rows[f"S-{A}-5"]):  # cut and pasted below a note
        moved.append([c.value for c in clerk.ws[row]])
    moved.insert_rows(1)
    moved["A1"] = "已核实的两条"
    notes = clerk.wb.create_sheet("备忘")  # a clerk's to-do list: S-2 is left on the sheet, unanswered
    notes.append(["待核实", f"S-{A}-2"])
    clerk.ws.delete_rows(clerk.rows[f"S-{A}-3"], 3)  # S-3 deleted; S-4 and S-5 cut
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert [status_of(con, f"S-{A}-{n}")[0] for n in range(1, 6)] == ["已销号", "已下发", "已下发", "已下发", "已下发"]
    by_suspect = {r.suspect_id: r for r in report.refusals}
    assert set(by_suspect) == {f"S-{A}-4", f"S-{A}-5"}
    assert (by_suspect[f"S-{A}-4"].row, by_suspect[f"S-{A}-4"].column) == (2, "疑点编号")
    assert "写在工作表“Sheet2”第2行，不在“疑点清单”的该疑点行中" in by_suspect[f"S-{A}-4"].reason
    (result,) = report.files
    assert (result.applied, result.pending, result.refused, result.missing) == (1, 1, 2, [f"S-{A}-3"])
    lines = report.lines()
    assert lines[0].endswith("未核实 1 行，退回 2 行，缺少 1 行"), lines
    assert f"  returned_{path.name}：S-{A}-3" in lines
    detail = json.loads(scalar(con, "select detail from audit_log where action = 'apply_return'"))
    assert detail["missing"] == [f"S-{A}-3"]
    # a sheet returned whole says nothing of the kind; nor does a row answered since by another sheet
    whole = Clerk(path)
    whole.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    again = returns.apply_returns(con, [whole.save(tmp_path / "whole.xlsx")], RETURN_DAY)
    assert again.refusals == [] and again.files[0].missing == [] and "缺少" not in "\n".join(again.lines())


def test_two_copies_of_one_name_are_told_apart_by_their_paths(con, tmp_path):
    """The 说明 asks for the workbook back under its own name, so two clerks' copies share it: every
    line named both by the bare name, and which copy to withdraw could not be told. Stored paths are
    full ones, as a worklist export's are."""
    path = issue(con, tmp_path, n=2)[A]
    copies = []
    for clerk_folder, outcome in (("clerkA", 7), ("clerkB", 1)):
        clerk = Clerk(path)
        clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[outcome], 核实说明="核实")
        (tmp_path / clerk_folder).mkdir()
        copies.append(clerk.save(tmp_path / clerk_folder / path.name))
    report = returns.apply_returns(con, copies, RETURN_DAY)
    lines = report.lines()
    assert [line.split(":")[0] for line in lines[:2]] == [str(c) for c in copies]
    assert all(f"在同时报送的台账 {copies[0]}、{copies[1]} 中核实内容不同" in r.reason for r in report.refusals)
    assert sorted(f for (f,) in con.execute("select file from return_refusals").fetchall()) == sorted(map(str, copies))
    # one file alone is named by its name
    alone = returns.apply_returns(con, [copies[0]], RETURN_DAY)
    assert alone.lines()[0].startswith(f"{path.name}: ")


@pytest.mark.parametrize("content, kind", [
    ('<?xml version="1.0" encoding="UTF-8"?>\n<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0">',
     "XML 文本文件"),
    ("<!DOCTYPE html>\n<html><body><table><tr><td>疑点编号</td></tr></table></body></html>", "网页文件（HTML）"),
    ("疑点编号,经办机构\nS-1,360102001\n", "文本文件（如 CSV）"),
], ids=["fods", "html", "csv"])
def test_a_sheet_saved_as_text_is_refused_as_what_it_is(con, tmp_path, content, kind):
    """A flat-XML (.fods) or web-page save was refused as "a text file (such as CSV)"."""
    saved = tmp_path / "疑点核查台账.xlsx"
    saved.write_text(content, encoding="utf-8")
    (refusal,) = returns.apply_returns(con, [saved], RETURN_DAY).refusals
    assert f"文件是{kind}" in refusal.reason, refusal.reason


# ---------------------------------------------------------------- what agencies send back (a probe of real returns)

def _letter(clerk: Clerk, column: str) -> str:
    return openpyxl.utils.get_column_letter(clerk.header.index(column) + 1)


def test_answers_in_merged_cells_are_refused_on_every_row_of_the_merge_not_read_as_unanswered(con, tmp_path):
    """A clerk merged 核实结果 down two rows (the answer shows on both): only the range's first cell
    holds a value, so the second row read as unanswered and nothing said so. Every row the merge
    spans is refused, naming the range; the rows outside it apply."""
    path = issue(con, tmp_path, n=3)[A]
    clerk = Clerk(path)
    clerk.ws.protection.sheet = False
    first = clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[2], 核实说明="已更正")
    second = clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    clerk.fill(f"S-{A}-3", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    span = f"{_letter(clerk, '核实结果')}{first}:{_letter(clerk, '核实结果')}{second}"
    clerk.ws.merge_cells(span)
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert {(r.row, r.column) for r in report.refusals} == {(first, "核实结果"), (second, "核实结果")}
    assert all(f"单元格 {span} 是合并单元格" in r.reason for r in report.refusals)
    assert {r.suspect_id for r in report.refusals} == {f"S-{A}-1", f"S-{A}-2"}
    assert status_of(con, f"S-{A}-1")[0] == status_of(con, f"S-{A}-2")[0] == "已下发"
    assert status_of(con, f"S-{A}-3")[0] == "已销号"
    assert report.files[0].refused == 2 and report.pending == 0


def test_rows_a_sort_moved_above_the_header_are_read_not_said_to_be_missing(con, tmp_path):
    """Sorted with "数据包含标题" unticked, the header row went to the end of the sheet among the data:
    every answered row was above it, said to be missing from the sheet, its answer lost. Here a
    sheet of more rows than the header is first looked for in (100)."""
    path = issue(con, tmp_path, n=101)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    clerk.fill(f"S-{A}-101", 核实结果=OUTCOME_LABELS[4], 追回金额=1000)
    ws = clerk.ws
    ws.protection.sheet = False
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=1, max_row=ws.max_row)]
    rows = rows[1:] + rows[:1] + [[None] * len(rows[0])]  # the header sorted below the data
    for r, values in enumerate(rows, start=1):
        for c, value in enumerate(values, start=1):
            ws.cell(row=r, column=c).value = value  # (value=None to ws.cell keeps what the cell held)
    ws.insert_rows(1)
    ws.cell(row=1, column=1, value="章贡区社保局疑点核查结果")  # and a title typed above it all
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == [] and report.files[0].missing == []
    assert report.files[0].applied == 2 and report.pending == 99
    assert status_of(con, f"S-{A}-1")[0] == status_of(con, f"S-{A}-101")[0] == "已销号"


def test_an_older_sheets_row_answered_since_on_a_later_sheet_is_told_so_before_its_cells(con, tmp_path):
    """The older sheet's row answered 7 for a suspect a later sheet answered 4 with money recovered:
    it was told to set 追回金额 to 0 — done, it was then refused as an older sheet's row. The older
    sheet's reason comes first."""
    older = Clerk(issue(con, tmp_path, n=2)[A])
    later = Clerk(worklists.write_worklists(con, tmp_path / "out2", AS_OF + dt.timedelta(days=1))[0])
    later.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=300)
    assert returns.apply_returns(con, [later.save()], RETURN_DAY).refusals == []
    row = older.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    (refusal,) = returns.apply_returns(con, [older.save()], RETURN_DAY).refusals
    assert (refusal.row, refusal.column) == (row, "核实结果")
    assert refusal.reason.startswith(f"疑点 S-{A}-1 已按 {AS_OF + dt.timedelta(days=1)} 下发的台账报送了核实结果"), refusal.reason
    assert status_of(con, f"S-{A}-1")[:3] == ("核查中", OUTCOME_LABELS[4], Decimal("300.00"))


def test_an_empty_file_and_a_password_protected_one_are_each_told_as_what_they_are(con, tmp_path):
    """A 0-byte attachment read as "无法识别的文件"; a workbook with a password to open it (here one
    encrypted by msoffcrypto-tool, as Excel does: tests/fixtures/password_protected.xlsx, password
    fundwatch) as ".xls 格式或设置了打开密码" — which of the two it was, not said."""
    issue(con, tmp_path, n=1)
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    locked = Path(__file__).parent / "fixtures" / "password_protected.xlsx"
    report = returns.apply_returns(con, [empty, locked], RETURN_DAY)
    reasons = {Path(r.file).name: r.reason for r in report.refusals}
    assert "文件是空文件（0 字节）" in reasons["empty.xlsx"]
    assert "设置了打开密码（已加密）" in reasons["password_protected.xlsx"] and ".xls" not in reasons["password_protected.xlsx"]


def test_an_excel_lock_file_picked_up_by_a_glob_is_passed_over_with_a_line(con, tmp_path):
    """Excel and WPS keep ~$<name>.xlsx beside a workbook that is open (who opened it): a glob of the
    folder picked it up, and it was refused as an unrecognised file, counted among the corrections
    the agency had to make."""
    path = issue(con, tmp_path, n=1)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    returned = clerk.save()
    lock = returned.with_name("~$" + returned.name)
    lock.write_bytes(b"\x06zhangsan" + b" " * 47 + b"\x06\x00z\x00h\x00a\x00n\x00g\x00" + b"\x20\x00" * 40)
    report = returns.apply_returns(con, [returned, lock], RETURN_DAY)
    assert report.refusals == [] and status_of(con, f"S-{A}-1")[0] == "已销号"
    assert f"{lock.name}: Excel/WPS 打开工作簿时生成的临时锁定文件（~$ 开头），不是台账，已跳过" in report.lines()
    assert scalar(con, "select count(*) from return_refusals") == 0


def test_a_total_line_a_clerk_added_is_passed_over_not_refused_as_an_unknown_suspect(con, tmp_path):
    path = issue(con, tmp_path, n=2)[A]
    clerk = Clerk(path)
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=1000)
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=500)
    last = clerk.ws.max_row
    clerk.ws.cell(row=last + 1, column=1, value="合计")
    clerk.ws.cell(row=last + 1, column=clerk.header.index("追回金额") + 1, value=1500)
    clerk.ws.cell(row=last + 2, column=clerk.header.index("姓名") + 1, value="总 计")  # the id cell left empty
    clerk.ws.cell(row=last + 2, column=clerk.header.index("涉及金额") + 1, value=2000)
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == [] and report.files[0].applied == 2
    # a row saying 合计 with an outcome is no sum: refused as ever
    clerk.ws.cell(row=last + 1, column=clerk.header.index("核实结果") + 1, value=OUTCOME_LABELS[7])
    (refusal,) = returns.apply_returns(con, [clerk.save(tmp_path / "again.xlsx")], RETURN_DAY).refusals
    assert (refusal.row, refusal.column) == (last + 1, "疑点编号") and "不存在" in refusal.reason


def test_a_whole_recovery_of_an_older_sheets_amount_that_has_grown_since_is_told(con, tmp_path):
    """The older sheet's 涉及金额 recovered in full, but a month was paid since and the suspect's loss
    grew: it stays 核查中 — applied with a line saying why, not only counted as applied."""
    clerk = Clerk(issue(con, tmp_path, n=1)[A])
    con.execute(f"update suspects set amount = 1200.00, period_to = '202604' where suspect_id = 'S-{A}-1'")
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[4], 追回金额=1000)
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == [] and status_of(con, f"S-{A}-1")[0] == "核查中"
    (noticed,) = [a for a in report.applied if a.notice]
    assert noticed.notice.startswith("追回金额已达本台账所列涉及金额 1000.00 元，但本台账下发后疑点的涉及金额增至 1200.00 元"
                                     "（所属期 202601–202604）：仍为核查中"), noticed.notice


def test_a_closing_answer_on_an_older_sheet_whose_suspect_grew_since_says_the_months_it_closed_too(con, tmp_path):
    """Answered 7 on December's sheet after January was paid: closed on what the suspect is now (the
    larger of the sheet's and the current evidence, as decided) — said, as outcome 4's is, where it
    was applied without a word and money no agency saw was closed with it (a year-boundary probe)."""
    clerk = Clerk(issue(con, tmp_path, n=2)[A])
    con.execute(f"update suspects set amount = 1200.00, period_to = '202604' where suspect_id = 'S-{A}-1'")
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[7], 核实说明="已认证，无问题")
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[1], 核实说明="数据已更正")  # as issued: no word
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == [] and [status_of(con, f"S-{A}-{i}")[0] for i in (1, 2)] == ["已销号", "已销号"]
    (noticed,) = [a for a in report.applied if a.notice]
    assert noticed.suspect_id == f"S-{A}-1"
    assert noticed.notice.startswith("本台账下发后疑点的涉及金额增至 1200.00 元（所属期 202601–202604，本台账所列 "
                                     "1000.00 元、202601–202603），已按本行核实结果一并销号"), noticed.notice
    assert scalar(con, f"select closed_amount from suspects where suspect_id = 'S-{A}-1'") == Decimal("1200.00")


def test_a_closing_answer_on_an_older_sheet_whose_loss_fell_to_another_month_says_it_changed(con, tmp_path):
    """The loss fell, or stayed, but moved to months the sheet did not show: the line said it grew
    (增至) to the lower amount, or became (变为) the amount it was (two regression probes)."""
    clerk = Clerk(issue(con, tmp_path, n=2)[A])
    con.execute(f"update suspects set amount = 500.00, period_from = '202604', period_to = '202604'"
                f" where suspect_id = 'S-{A}-1'")
    con.execute(f"update suspects set period_from = '202602', period_to = '202604' where suspect_id = 'S-{A}-2'")
    for i in (1, 2):
        clerk.fill(f"S-{A}-{i}", 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    fell, stayed = [a.notice for a in returns.apply_returns(con, [clerk.save()], RETURN_DAY).applied]
    assert fell.startswith("本台账下发后疑点的涉及金额减为 500.00 元（所属期 202604–202604，本台账所列 "
                           "1000.00 元、202601–202603）"), fell
    assert stayed.startswith("本台账下发后疑点的涉及金额仍为 1000.00 元（所属期 202602–202604"), stayed
    assert fell.endswith("本台账未列的部分如另有问题，请监督部门重开")


def test_what_a_regression_probe_of_the_above_found_reads_as_before(con, tmp_path):
    """A regression probe of the changes above: a filled-in example row of a suspect copied above a
    header left in place made the real row below a duplicate (its answer lost); a 合计 line merged
    across its first cells was told to unmerge; empty answer cells merged on unanswered rows refused
    them; a table far down a clerk's sheet of notes made the workbook two answered copies."""
    path = issue(con, tmp_path, n=4)[A]
    clerk = Clerk(path)
    ws = clerk.ws
    ws.protection.sheet = False
    clerk.fill(f"S-{A}-1", 核实结果=OUTCOME_LABELS[1], 核实说明="已更正")
    clerk.fill(f"S-{A}-2", 核实结果=OUTCOME_LABELS[4], 追回金额=1000)
    ws.insert_rows(1, 2)  # (openpyxl moves no merged range: the merges are made after)
    ws.cell(row=1, column=1, value="填写示例（请勿修改）")
    note = _letter(clerk, "核实说明")
    ws.merge_cells(f"{note}6:{note}7")  # S-3 and S-4: unanswered, their empty notes merged
    last = ws.max_row
    ws.cell(row=last + 1, column=1, value="合计")
    ws.merge_cells(start_row=last + 1, start_column=1, end_row=last + 1, end_column=5)
    ws.cell(row=last + 1, column=clerk.header.index("追回金额") + 1, value=f"=SUM(L4:L{last})")
    for c, name in enumerate(clerk.header, start=1):  # the example: a copy of S-1's row, answered otherwise
        ws.cell(row=2, column=c).value = {"疑点编号": f"S-{A}-1", "核实结果": OUTCOME_LABELS[7], "核实说明": "示例"}.get(name)
    notes = clerk.wb.create_sheet("工作记录")
    for r in range(1, 106):
        notes.cell(row=r, column=1, value=f"第{r}条电话记录")
    notes.append(["疑点编号", "核实说明"])
    notes.append([f"S-{A}-1", "电话联系本人，已更正"])
    report = returns.apply_returns(con, [clerk.save()], RETURN_DAY)
    assert report.refusals == [], [r.line() for r in report.refusals]
    assert (report.files[0].applied, report.pending) == (2, 2)
    assert status_of(con, f"S-{A}-1")[:2] == ("已销号", OUTCOME_LABELS[1])


def test_the_returns_summary_names_what_it_closed_transferred_and_raised_to_a_major_loss(con, tmp_path, capsys):
    """From an agency-side probe: the summary counted rows but named no suspect closed or
    transferred, nor the 重大要情 an answer raised and the day its report is due — what the office
    acts on next."""
    for sid, amount in (("S-OK", "800.00"), ("S-BACK", "1000.00"), ("S-PART", "2000.00"), ("S-FRAUD", "150000.00")):
        add_suspect(con, sid, amount=amount, person_id="360702195001011234")
    clerk = Clerk(worklists.write_worklists(con, tmp_path / "out", AS_OF)[0])
    clerk.fill("S-OK", 核实结果=OUTCOME_LABELS[7], 核实说明="本人健在，系数据错误", 核实日期=dt.date(2026, 9, 29))
    clerk.fill("S-BACK", 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实日期=dt.date(2026, 9, 29))
    clerk.fill("S-PART", 核实结果=OUTCOME_LABELS[4], 追回金额=500, 核实日期=dt.date(2026, 9, 29))
    clerk.fill("S-FRAUD", 核实结果=OUTCOME_LABELS[6], 核实日期=dt.date(2026, 9, 30))
    command = ["returns", "--db", str(tmp_path / "fw.duckdb"), "--as-of", RETURN_DAY.isoformat(), str(clerk.save())]
    assert cli.main(command) == cli.EXIT_OK
    printed = capsys.readouterr().out.splitlines()
    assert "本次销号 2 个：S-BACK、S-OK" in printed
    assert "本次移送 1 个（稽核/查处，在移送台账上继续报送）：S-FRAUD" in printed
    assert "  疑点 S-FRAUD 重大要情，报告期限 2026-10-13" in printed
    assert not any("S-PART" in line for line in printed)  # still 核查中: nothing to act on
    # the same workbook again: applied before, nothing named
    assert cli.main(command) == cli.EXIT_OK
    assert not any(line.startswith(("本次", "  疑点")) for line in capsys.readouterr().out.splitlines())


def test_a_loss_moved_up_to_a_major_class_on_the_day_it_was_first_verified_is_named_raised(con, tmp_path):
    """要情 at 90,000 verified on 10-01; its amount grows and the agency answers again with the same
    核实日期: 重大要情, its report due from that day — a new report, named though the day it counts
    from did not change."""
    add_suspect(con, "S-UP", amount="90000.00", person_id="360702195001011234")
    day = AS_OF + dt.timedelta(days=1)
    first = answer_on_a_sheet(con, tmp_path / "out", "S-UP", AS_OF, RETURN_DAY,
                              核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实日期=day)
    assert major_of(con, "S-UP")[0] == "要情" and first.major == []  # 要情: no report to the province
    con.execute("update suspects set amount = 120000.00 where suspect_id = 'S-UP'")
    later = AS_OF + dt.timedelta(days=20)
    up = answer_on_a_sheet(con, tmp_path / "out2", "S-UP", later, later,
                           核实结果=OUTCOME_LABELS[4], 追回金额=2000, 核实日期=day)
    assert up.refusals == [] and major_of(con, "S-UP") == ("重大要情", add_working_days(day, 5))
    assert up.major == [("S-UP", "重大要情", add_working_days(day, 5))]
