"""Worklists out (疑点数据核查工作台账): one protected XLSX per agency with open suspects.

Each workbook has the sheet 疑点清单 (CONTRACT §5 header, then a few read-only extras) and the
cover sheet 说明. Only 核实结果, 追回金额, 核实说明 and 核实日期 are unlocked. What was issued —
the text of every locked cell — is kept in `worklist_rows`, so that returns (returns.py) can tell a
changed locked cell from an honest answer, and the 台账编号 printed on the cover ties a returned
workbook to its export even after WPS or LibreOffice re-saved it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import tempfile
import uuid
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell

from . import casework, runlock
from .casework import ISSUED, NEW, OPEN_STATUSES_SQL, OUTCOME_LABELS, REOPENED
from .clock import china_now
from .config import office_name, rule_folders
from .extracts import EXTRACTS
from .normalise import EXCEL_EPOCH, decode_ooxml_escapes
from .printing import print_setup, row_height, rule_id_width, wrapped_lines
from .privacy import mask_id
from .report_mask import mask_name
from .rules import RuleText, rule_texts
from .store import audit, current_actor, insert_many, path_text, scalar
from .suspects import reported_gone_sql
from .workdays import WorkCalendar, calendar_from

SHEET = "疑点清单"
# The earliest 核实日期 the sheet's validation lets a clerk type, and `returns` accepts from a paste
# or another program: a year typed 0206 for 2026 is a typo, not a verification.
EARLIEST_VERIFIED_ON = dt.date(2000, 1, 1)
COVER = "说明"
EXPORT_ID_LABEL = "台账编号"  # cover-sheet label of the export id (A column), value in B
HEADER = ("疑点编号", "规则编号", "规则名称", "公民身份号码", "姓名", "涉及金额", "所属期起", "所属期止",
          "下发日期", "核查期限", "核实结果", "追回金额", "核实说明", "核实日期")
EXTRA = ("疑点状态", "逾期", "挂牌督办", "要情类别", "疑点对象", "证据摘要")
COLUMNS = HEADER + EXTRA
EDITABLE = ("核实结果", "追回金额", "核实说明", "核实日期")
LOCKED = tuple(c for c in COLUMNS if c not in EDITABLE)
MONEY_COLUMNS = ("涉及金额", "追回金额")
DATE_COLUMNS = ("下发日期", "核查期限", "核实日期")
FILE_PREFIX = "疑点核查台账"
MAX_SHEET_ROWS = 1_048_576 - 1  # Excel's rows, less the header


# ---------------------------------------------------------------- cell values, both directions

_FULL_WIDTH = str.maketrans("０１２３４５６７８９．，－／：", "0123456789.,-/:")
_MAX_MONEY = Decimal(10) ** 16  # DECIMAL(18,2) holds less than this
# An amount as typed: digits, grouped by three with commas (or spaces) or not at all, and a point
_AMOUNT_TEXT = re.compile(r"[+-]?(?:\d+|\d{1,3}(?:,\d{3})+)?(?:\.\d*)?")


def parse_money(value: Any) -> Decimal | None:
    """Yuan with at most 2 decimals from a returned cell (number, or text with 1,234.50 / ¥ / 元).

    None for an empty cell; raises ValueError for anything else that is not an amount.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, float):
        amount = Decimal(repr(value))
        if not amount.is_finite() or abs(amount) >= _MAX_MONEY:
            raise ValueError(f"not an amount: {value!r}")
        rounded = amount.quantize(Decimal("0.01"))
        # Binary floats (0.1 + 0.2) are rounded; a real third decimal (12.345) is not an amount in yuan.
        if abs(amount - rounded) > Decimal("0.000001"):
            raise ValueError(f"more than 2 decimals: {value}")
        return rounded
    if isinstance(value, (int, Decimal)):
        amount = Decimal(value)
    else:
        # (元整: as amounts are written on a receipt)
        text = re.sub(r"^[¥￥]|元整?$", "", str(value).strip().translate(_FULL_WIDTH)).strip()
        # A separator groups thousands or it is no separator: 1,23 or 2,5 (a comma typed for the
        # point) read as 123 or 25 recorded a recovery nobody made; 1e3 is no way to write money.
        if not (_AMOUNT_TEXT.fullmatch(re.sub(r"\s+", ",", re.sub(r"\s*,\s*", ",", text)))
                and re.search(r"\d", text)):
            raise ValueError(f"not an amount: {value!r}")
        try:
            amount = Decimal(re.sub(r"[\s,]", "", text))
        except InvalidOperation:
            raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite() or abs(amount) >= _MAX_MONEY:  # NaN, ∞, or beyond DECIMAL(18,2)
        raise ValueError(f"not an amount: {value!r}")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"more than 2 decimals: {value}")
    return amount.quantize(Decimal("0.01"))


def parse_date(value: Any) -> dt.date | None:
    """A date from a returned cell: a real date, an Excel serial number, or text in a usual form."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"not a date: {value!r}")
        if 20000 < value < 80000 and value == int(value):  # Excel serial: 1954..2119
            return EXCEL_EPOCH + dt.timedelta(days=int(value))
        value = str(int(value)) if value == int(value) else str(value)
    text = str(value).strip().translate(_FULL_WIDTH)
    m = (re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?", text)
         or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text))
    if not m:
        raise ValueError(f"not a date: {value!r}")
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise ValueError(f"not a date: {value!r}") from None


def answer_text(column: str, value: Any) -> str:
    """One answer cell in a form equal for equal answers (the outcome by its number)."""
    if column == "核实结果":
        number = casework.parse_outcome(value)
        return str(number) if number is not None else canonical(column, value)
    return canonical(column, value)


# XlsxWriter writes a control character (a CR of a Windows export's line break, a stray BEL in a
# name) as OOXML's escape _x000D_, which openpyxl reads back as those seven characters: such a cell
# would never read back as issued. Sheets show text without them; such an escape read back (from a
# sheet issued before) is decoded (normalise.decode_ooxml_escapes).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # with the two noncharacters XML escapes


def cell_text(text: str) -> str:
    """Text as a worklist cell holds it: line breaks as \n, no other control character."""
    text = decode_ooxml_escapes(text)
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def canonical(column: str, value: Any) -> str:
    """One text form per locked cell, equal whether it comes from the store, Excel, WPS or LibreOffice."""
    if value is None:
        return ""
    if column in MONEY_COLUMNS:
        try:
            amount = parse_money(value)
            return "" if amount is None else format(amount, "f")
        except ValueError:
            return str(value).strip()
    if column in DATE_COLUMNS:
        try:
            d = parse_date(value)
            return "" if d is None else d.isoformat()
        except ValueError:
            return str(value).strip()
    if isinstance(value, bool):
        return "是" if value else ""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return cell_text(str(value)).strip()


# ---------------------------------------------------------------- what goes into a worklist

def _other_agencys_person(v: dict, agency: str | None) -> bool:
    """An evidence entry about a person another agency pays (`agency_code`, or `agencies` of a
    person paid by several): an agency's worklist holds its own persons only in full."""
    if agency is None or "person_id" not in v:
        return False
    payers = v.get("agencies") if isinstance(v.get("agencies"), list) else (
        [v["agency_code"]] if v.get("agency_code") else None)
    return payers is not None and agency not in payers


# The evidence fields in the words of the extracts (CONTRACT §1's Chinese headers) and of the rules,
# for the clerk reading 证据摘要; a field not named here shows its own name.
EVIDENCE_LABELS = {
    **{c.name: c.alias for e in EXTRACTS.values() for c in e.columns},
    # names several extracts share, in the words that fit them all
    "amount": "金额", "period": "所属期", "source": "数据来源", "status": "待遇状态",
    "account_no": "本方账号", "agencies": "各经办机构", "basis_date": "认证起算日期",
    "certification_max_days": "认证有效天数", "contributing_employers": "缴费单位",
    "custody_spells": "在押记录", "death_month": "死亡月份", "death_sources": "死亡信息来源",
    "duplicate_amount": "重复金额", "earliest_death_date": "最早死亡日期", "finding": "问题",
    "kept_as_largest": "保留的最大一笔", "lapse_basis": "超期依据", "lapse_month": "超期月份",
    "match_window_days": "匹配天数", "model": "模型", "paid_to": "收款人", "payment": "发放记录",
    "payments": "发放记录", "pension_payments": "养老金发放记录", "periods": "所属期",
    "persons": "人数", "reasons": "理由", "records": "记录", "score": "异常分数（0–1，越高越异常）",
    "score_threshold": "判为异常的分数线", "statuses": "待遇状态记录", "streams": "发放渠道",
    "threshold": "大额标准", "total": "合计", "transaction": "交易",
}


def _is_money(key: str) -> bool:
    """An evidence field in yuan: amount, total, threshold, *_amount, or a label (or a rule's own
    Chinese key) ending in 金额 — 同金额笔数 is a count."""
    return key in ("amount", "total", "threshold") or key.endswith("_amount") or label_of(key).endswith("金额")


def label_of(key: str) -> str:
    return EVIDENCE_LABELS.get(key, key)


def evidence_summary(evidence: Any, limit: int = 800, agency: str | None = None) -> str:
    """The evidence JSON as one readable line: its summary sentence first, then "字段: 值；列表: 3项
    (a, b, c…)" with the fields in Chinese (EVIDENCE_LABELS). With `agency`, the worklist's: a
    person of another agency in it (SHARED_BANK_ACCOUNT's other payees) is shown masked, with the
    agencies that pay them, so that the two can be put in touch by the office."""
    if evidence is None:
        return ""
    if isinstance(evidence, str):
        try:
            evidence = json.loads(evidence)
        except ValueError:
            return evidence[:limit]

    def short(v: Any, key: str | None = None) -> str:
        if isinstance(v, dict):
            if _other_agencys_person(v, agency):
                v = {**v, "person_id": mask_id(v["person_id"]),
                     **({"name": mask_name(v["name"])} if v.get("name") else {})}
            return "，".join(f"{label_of(k)}={short(x, k)}" for k, x in v.items())
        if isinstance(v, list):
            head = "，".join(short(x, key) for x in v[:3])
            return f"{len(v)}项（{head}{'…' if len(v) > 3 else ''}）"
        if isinstance(v, bool):
            return "是" if v else "否"
        if isinstance(v, (int, float)) and key is not None and _is_money(key):
            return f"{Decimal(str(v)):.2f}"  # JSON drops a decimal's trailing zero: 3237.6 is 3237.60 yuan
        return "无" if v is None else str(v)

    if isinstance(evidence, dict):
        summary = evidence.get("summary")
        said = summary if isinstance(summary, str) and summary.strip() else None  # the rule's sentence
        rest = "；".join(f"{label_of(k)}: {short(v, k)}" for k, v in evidence.items()
                        if not (k == "summary" and isinstance(v, str)))
        text = "；".join(part for part in (said, rest) if part)
    else:
        text = short(evidence)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _agencies_with_open_suspects(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [a for (a,) in con.execute(f"select distinct agency_code from suspects where status in ({OPEN_STATUSES_SQL})"
                                      " and agency_code is not null order by agency_code").fetchall()]


def _open_suspects(con: duckdb.DuckDBPyConnection, agency_code: str) -> list[dict]:
    """An agency's open suspects, as its worklist shows them (one agency at a time: a night with a
    province's first 200,000 suspects held them all with their evidence, ~9 KB each)."""
    cur = con.execute(
        f"""
        select s.suspect_id, s.rule_id, s.subject, s.person_id, s.agency_code,
               coalesce(s.name, json_extract_string(s.evidence, '$.name'),
                        (select any_value(b.name) from beneficiaries b where b.person_id = s.person_id)) as name,
               s.amount, s.period_from, s.period_to, s.status, s.issued_on, s.deadline, s.last_detected_on,
               {reported_gone_sql("s")} as gone,
               s.outcome, s.recovered_amount, s.verification_note, s.verified_on,
               coalesce(s.overdue, false) as overdue, coalesce(s.escalated, false) as escalated,
               s.major_class, s.evidence::varchar as evidence,
               s.closed_amount, s.closed_period_from, s.closed_period_to,
               s.answered_period_from, s.answered_period_to,
               not {casework.loss_answered_sql("s")} as loss_unanswered,
               -- its last reopening: the closing it undid (closed_on), or, sent back by the supervision
               -- office (casework.reopen_by_office), its day, reason and old status
               case when s.status = '{REOPENED}' then
                   (select arg_max(e.detail, e.happened_at) from suspect_events e
                    where e.suspect_id = s.suspect_id and e.event = 'reopened') end as reopened_detail
        from suspects s
        where s.status in ({OPEN_STATUSES_SQL}) and s.agency_code = ?
        order by s.rule_id, s.suspect_id
        """, [agency_code]
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _issue(con, rows: list[dict], as_of: dt.date, days: int, calendar: WorkCalendar, run_id: str | None,
           now: dt.datetime) -> None:
    """待下发 → 已下发. A 已重开 suspect is issued again — tonight's 下发日期 and a fresh 核查期限 for
    the new evidence (reopening dropped the old one; the sheet's 核查期限 is its 下发日期 + N working
    days, as on every row; the first issue stays in its `issued` event) — and stays 已重开, so that
    the agency and the supervisor see it came back after closing. An issued open suspect keeps its own."""
    updates, events = [], []
    deadlines: dict[dt.date, dt.date] = {}  # by 下发日期: most rows share tonight's
    for r in rows:
        # reopened after its closing, or handed over from another agency (suspects._hand_over)
        reissuing = (r["status"] == REOPENED or r["issued_on"] is None) and r["deadline"] is None
        issuing = r["status"] == NEW or reissuing
        if not issuing and r["issued_on"] is not None and r["deadline"] is not None:
            # 本次新下发 is what tonight's date issued: the same when this night is run again after
            # one killed once its suspects were issued (they are 已下发 by then)
            r["new"] = r["issued_on"] == as_of
            continue
        issued_on = as_of if reissuing else r["issued_on"] or as_of
        if r["deadline"] is None:
            if issued_on not in deadlines:
                deadlines[issued_on] = calendar.add_working_days(issued_on, days)
            deadline = deadlines[issued_on]
        else:
            deadline = r["deadline"]
        status = ISSUED if r["status"] == NEW else r["status"]
        updates.append([r["suspect_id"], status, issued_on, deadline])
        if issuing:
            events.append((r["suspect_id"], "issued", {"issued_on": issued_on, "deadline": deadline, "from": r["status"]}))
        r.update(status=status, issued_on=issued_on, deadline=deadline, new=issuing or issued_on == as_of)
    casework.set_suspect_columns(con, ["status", "issued_on", "deadline"], updates, events, run_id, now)


def _reopened_banner(r: dict) -> str:
    """What a 已重开 row's agency must look at: what is new since it closed the suspect — the
    amount and the periods then and now (recorded at the closing: closed_amount, closed_period_*) —
    so that a clerk verifies the new part instead of answering the old one again; or, sent back by
    the supervision office, its reason."""
    detail = json.loads(r["reopened_detail"]) if r.get("reopened_detail") else {}
    changed = []
    if r["closed_amount"] is not None and r["amount"] is not None and r["closed_amount"] != r["amount"]:
        changed.append(f"涉及金额 {r['closed_amount']:,.2f} → {r['amount']:,.2f} 元")
    then = (r["closed_period_from"], r["closed_period_to"])
    if then[0] is not None and then != (r["period_from"], r["period_to"]):
        changed.append(f"所属期 {then[0]}–{then[1]} → {r['period_from']}–{r['period_to']}")
    if detail.get("by_office"):
        # sent back by the office; new evidence since is said too (the closing's amounts against now)
        was = detail.get("old_status") if detail.get("old_status") in (casework.TRANSFERRED, casework.CLOSED) else "已办结"
        since = f"此后数据另有新情况：{'，'.join(changed)}；" if changed else ""
        return (f"【原{was}，监督部门于 {detail.get('as_of')} 退回重新核实：{detail.get('office_reason')}。"
                f"{since}请核实后重新填报核实结果】")
    closed = f"已于 {detail['closed_on']} 销号" if detail.get("closed_on") else "曾销号"
    what = (f"：{'，'.join(changed)}（新增的发放或交易，或规则参数已调整）" if changed
            else "（新的发放、交易或收款人，或规则参数已调整）")
    return f"【{closed}，此后数据出现新情况{what}，请核实新增部分后重新填报】"


def _row_values(r: dict, texts: dict[str, RuleText]) -> dict[str, Any]:
    # A partly answered suspect shows the answer on record, and so does a reopened one: its
    # 追回金额 so far stands (a clerk who typed only the newly recovered month would lower it).
    show_answer = r["status"] in (casework.IN_PROGRESS, REOPENED)
    evidence = evidence_summary(r["evidence"], agency=r["agency_code"])
    if r["gone"]:
        # Still open — only the agency's answer closes a suspect — but the latest data no longer
        # raise it (a corrected or reversed record): the agency should know, and may answer 1 or 2.
        evidence = (f"【最近一次检出为 {r['last_detected_on']:%Y-%m-%d}，此后的数据已不再触发本规则"
                    f"（数据可能已更正或冲正，或规则参数已调整），请核实后填报】" + evidence)
    if r["status"] == REOPENED:
        evidence = _reopened_banner(r) + evidence
    if r["status"] == casework.IN_PROGRESS and r["loss_unanswered"]:
        # the answer on record was for other months (a record corrected since): its recovery does
        # not cover this loss, which no sheet showed before — as closing and 挂牌督办 weigh it
        answered = (r["answered_period_from"], r["answered_period_to"])
        evidence = (f"【已报送的核实结果针对所属期 {answered[0]}–{answered[1]}；此后数据有变，疑点现在所属期 "
                    f"{r['period_from']}–{r['period_to']}（其外的月份尚未核实）：请核实后报送（填写本次核实日期）】" + evidence)
    values = {
        "疑点编号": r["suspect_id"], "规则编号": r["rule_id"], "规则名称": texts[r["rule_id"]].title if r["rule_id"] in texts else r["rule_id"],
        "公民身份号码": r["person_id"], "姓名": r["name"], "涉及金额": r["amount"],
        "所属期起": r["period_from"], "所属期止": r["period_to"],
        "下发日期": r["issued_on"], "核查期限": r["deadline"],
        "核实结果": r["outcome"] if show_answer else None,
        "追回金额": r["recovered_amount"] if show_answer else None,
        "核实说明": r["verification_note"] if show_answer else None,
        "核实日期": r["verified_on"] if show_answer else None,
        "疑点状态": r["status"], "逾期": "是" if r["overdue"] else "", "挂牌督办": "是" if r["escalated"] else "",
        "要情类别": r["major_class"], "疑点对象": r["subject"], "证据摘要": evidence,
    }
    return {k: cell_text(v) if isinstance(v, str) else v for k, v in values.items()}


# ---------------------------------------------------------------- the workbook

WIDTHS = {"疑点编号": 22, "规则编号": 26, "规则名称": 24, "公民身份号码": 21, "姓名": 10, "涉及金额": 14,
          "所属期起": 9, "所属期止": 9, "下发日期": 11, "核查期限": 11, "核实结果": 40, "追回金额": 14,
          "核实说明": 36, "核实日期": 11, "疑点状态": 9, "逾期": 6, "挂牌督办": 8, "要情类别": 14,
          "疑点对象": 30, "证据摘要": 60}

HOW_TO = (
    "1. 只在黄色的四列填写：核实结果（从下拉列表选择）、追回金额（元，最多两位小数）、核实说明、核实日期（如 2026-11-20）。",
    "2. 其余各列为下发的疑点信息，已锁定，请勿修改、删除或调整行列；改动的行在回收时将被退回。",
    "3. 核实结果为 1、2、3、7 的，须填写核实说明，审核后销号。",
    "4. 核实结果为 4 的，请填写累计追回金额；追回金额达到涉及金额时销号，未足额的继续跟踪（核查中）。",
    "5. 核实结果为 5、6 的，疑点转为已移送；稽核或查处追回资金后，在移送时报送的本台账中改填核实结果 4 和追回金额，再次报送。",
    "6. 尚未核实完毕的行请保持空白；核实日期不得晚于报送日期；追回金额可含利息（不含罚款），以涉及金额记为追回，超出部分记入核实记录；大于涉及金额的 2 倍的视为笔误退回。",
    "7. 核查期限按工作日计算（法定节假日、调休按国务院通知）；逾期及挂牌督办的疑点请优先办理。",
    "8. 填写完毕后原文件名报送；可用 Excel 或 WPS 打开保存，请勿另存为其他格式。",
)


def _write_workbook(path: Path, agency: tuple[str, str | None], export_id: str, as_of: dt.date,
                    new_deadline: dt.date, rows: list[dict[str, Any]], flags: list[dict],
                    texts: dict[str, RuleText], estimated_years: list[int] = (), contact: str | None = None,
                    office: str | None = None) -> None:
    """estimated_years: years of the sheet's 核查期限 counted without a holiday notice (the 说明 says so);
    contact: config casework.contact, where to send the sheet and whom to ask; office: config
    office, the 下发单位 (returns find the sheet by its labels, so the row moves nothing)."""
    # strings_to_*: False — a name or note like "=1+1" or "-2" stays text, never a formula or number.
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False,
                                         "strings_to_urls": False})
    wb.set_properties({"title": f"疑点数据核查工作台账 {agency[0]}", "subject": export_id,
                       "keywords": f"fundwatch {export_id}", "author": "fundwatch"})
    wb.set_custom_property("fundwatch_export_id", export_id)
    header = wb.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True, "valign": "vcenter"})
    edit_header = wb.add_format({"bold": True, "bg_color": "#FFE699", "border": 1, "text_wrap": True, "valign": "vcenter"})
    # quote_prefix (Excel's leading '): a text cell stays text even after a clerk edits it or the
    # sheet is saved as CSV elsewhere — formula injection is impossible both ways.
    # Each kind of cell, locked and (edit_) as an answer cell; each at the top of its row, as a row
    # is as tall as its longest wrapped text. The long texts wrap in their column (证据摘要 ran
    # unbroken across eight printed pages).
    kinds = {"text": {"num_format": "@", "quote_prefix": True},
             "wrapped_text": {"num_format": "@", "quote_prefix": True, "text_wrap": True},
             "money": {"num_format": "#,##0.00"}, "date": {"num_format": "yyyy-mm-dd"}}
    fmt = {}
    # a light rule round every cell: printed, a tall row's lines of 规则名称 read as the next row's
    ruled = {"border": 1, "border_color": "#BFBFBF"}
    for kind, look in kinds.items():
        fmt[kind] = wb.add_format({**look, **ruled, "valign": "top"})
        fmt["edit_" + kind] = wb.add_format({**look, **ruled, "valign": "top", "locked": False, "bg_color": "#FFF2CC"})
    ws = wb.add_worksheet(SHEET)
    id_width = rule_id_width((x["rule_id"] for x in flags), WIDTHS["规则编号"])  # the sheet's and the cover's 规则编号 column
    widths = {**WIDTHS, "规则编号": id_width}
    for c, name in enumerate(COLUMNS):
        ws.write_string(0, c, name, edit_header if name in EDITABLE else header)
        ws.set_column(c, c, widths.get(name, 12))
    for i, values in enumerate(rows, start=1):
        # the row as tall as its longest wrapped text (neither Excel nor LibreOffice fits a row
        # written by a program: the wrapped lines printed over one another)
        ws.set_row(i, row_height(max(wrapped_lines(values[name], WIDTHS.get(name, 12)) for name in WRAPPED_COLUMNS)))
        for c, name in enumerate(COLUMNS):
            kind = ("money" if name in MONEY_COLUMNS else "date" if name in DATE_COLUMNS
                    else "wrapped_text" if name in WRAPPED_COLUMNS else "text")
            f = fmt[("edit_" if name in EDITABLE else "") + kind]
            v = values[name]
            if v is None or v == "":
                ws.write_blank(i, c, None, f)
            elif kind == "money":
                ws.write_number(i, c, float(v), f)
            elif kind == "date":
                ws.write_datetime(i, c, dt.datetime.combine(v, dt.time()), f)
            else:
                ws.write_string(i, c, str(v), f)
    last = max(len(rows), 1)
    col = {name: COLUMNS.index(name) for name in EDITABLE}
    ws.data_validation(1, col["核实结果"], last, col["核实结果"], {
        "validate": "list", "source": list(OUTCOME_LABELS.values()),
        "input_title": "核实结果", "input_message": "请从下拉列表选择核查结论",
        "error_title": "核实结果", "error_message": "只能选择下拉列表中的七种核实结果之一"})
    # at most two decimals too: 100.555 showed as 100.56 in the money format, and the return was
    # refused for a value the clerk never saw (the cell's top-left reference is relative)
    first = xl_rowcol_to_cell(1, col["追回金额"])
    ws.data_validation(1, col["追回金额"], last, col["追回金额"], {
        "validate": "custom", "value": f"=AND(ISNUMBER({first}),{first}>=0,ROUND({first},2)={first})",
        "error_title": "追回金额", "error_message": "请填写不小于 0、最多两位小数的金额（元）"})
    ws.data_validation(1, col["核实日期"], last, col["核实日期"], {
        "validate": "date", "criteria": "between",
        "minimum": dt.datetime.combine(EARLIEST_VERIFIED_ON, dt.time()), "maximum": dt.datetime(2099, 12, 31),
        "error_title": "核实日期", "error_message": "请填写日期，如 2026-11-20"})
    ws.freeze_panes(1, 1)
    ws.autofilter(0, 0, last, len(COLUMNS) - 1)
    # two pages across, with the header row and 疑点编号 on each
    print_setup(ws, pages_wide=2, header_rows=0, key_columns=0, page_numbers=True)
    ws.protect("", {"autofilter": True, "format_columns": True, "format_rows": True,
                    "select_locked_cells": True, "select_unlocked_cells": True})

    cover = wb.add_worksheet(COVER)
    bold = wb.add_format({"bold": True})
    title = wb.add_format({"bold": True, "font_size": 14})
    money = fmt["money"]
    # the cover's facts beside their labels, left as its texts are (dates and counts stood at the far
    # edge of the 40-wide column, read as a second column); no rules round them
    date = wb.add_format({"num_format": "yyyy-mm-dd", "align": "left"})
    count = wb.add_format({"align": "left"})
    total_money = wb.add_format({"num_format": "#,##0.00", "align": "left"})
    info_text = wb.add_format({"num_format": "@", "quote_prefix": True})
    note = wb.add_format({"num_format": "@", "quote_prefix": True, "text_wrap": True, "valign": "top"})
    cover_widths = (max(COVER_WIDTHS[0], id_width), *COVER_WIDTHS[1:])
    for c, width in enumerate(cover_widths):
        cover.set_column(c, c, width)
    cover.write_string(0, 0, "疑点数据核查工作台账", title)
    info = ([("下发单位", office)] if office else []) + [
        ("经办机构编码", agency[0]), ("经办机构名称", agency[1] or ""), (EXPORT_ID_LABEL, export_id)]
    r = 2
    for label, value in info:
        cover.write_string(r, 0, label, bold)
        cover.write_string(r, 1, value, info_text)
        r += 1
    for label, value in (("下发日期", as_of), ("本次新下发疑点核查期限", new_deadline)):
        cover.write_string(r, 0, label, bold)
        cover.write_datetime(r, 1, dt.datetime.combine(value, dt.time()), date)
        r += 1
    total = sum((Decimal(x["amount"] or 0) for x in flags), Decimal(0))
    counts = [("疑点总数", len(flags)), ("其中本次新下发", sum(1 for x in flags if x.get("new"))),
              ("以前下发尚未办结", sum(1 for x in flags if not x.get("new"))),
              ("逾期", sum(1 for x in flags if x["overdue"])), ("挂牌督办", sum(1 for x in flags if x["escalated"]))]
    for label, n in counts:
        cover.write_string(r, 0, label, bold)
        cover.write_number(r, 1, n, count)
        r += 1
    cover.write_string(r, 0, "涉及金额合计（元）", bold)
    cover.write_number(r, 1, float(total), total_money)
    r += 1
    # what the partly answered rows below already got back, as their 追回金额 shows it (a clerk's
    # report upward quotes it beside the amount at risk; it was summed by hand from the rows)
    recovered = sum((Decimal(str(v["追回金额"])) for v in rows if isinstance(v.get("追回金额"), (int, float, Decimal))),
                    Decimal(0))
    cover.write_string(r, 0, "已追回金额合计（元）", bold)
    cover.write_number(r, 1, float(recovered), total_money)
    r += 2
    cover.write_string(r, 0, "按规则统计", bold)
    r += 1
    # 政策依据: the documents and articles each rule rests on (rules/*.yaml, basis)
    for c, name in enumerate(("规则编号", "规则名称", "疑点数", "涉及金额（元）", "政策依据")):
        cover.write_string(r, c, name, header)
    r += 1
    by_rule: dict[str, list] = defaultdict(lambda: [None, 0, Decimal(0)])
    for x, values in zip(flags, rows):
        entry = by_rule[x["rule_id"]]
        entry[0] = values["规则名称"]
        entry[1] += 1
        entry[2] += Decimal(x["amount"] or 0)
    top = wb.add_format({"valign": "top", **ruled})  # each cell of a rule's line beside the start of its 政策依据
    for rule_id, (title_text, n, amount) in sorted(by_rule.items()):
        cover.write_string(r, 0, rule_id, fmt["wrapped_text"])
        cover.write_string(r, 1, title_text, fmt["wrapped_text"])  # (an own rule's long title was cut)
        cover.write_number(r, 2, n, top)
        cover.write_number(r, 3, float(amount), money)
        basis = cell_text(texts[rule_id].basis) if rule_id in texts else ""
        cover.write_string(r, 4, basis, fmt["wrapped_text"])
        cover.set_row(r, row_height(max(wrapped_lines(basis, COVER_WIDTHS[4]), wrapped_lines(title_text, COVER_WIDTHS[1]),
                                        wrapped_lines(rule_id, cover_widths[0]))))
        r += 1
    r += 1
    cover.write_string(r, 0, "填写说明", bold)
    r += 1
    notes = list(HOW_TO)
    if contact:
        # the refusals a clerk hears of tell them to ask the supervision office: say whom
        notes.append(f"9. 报送与联系：{cell_text(contact.strip())}")
    if estimated_years:
        # item 7 promises the notice's days: say where a deadline could not have them
        notes.append(f"   注：{'、'.join(str(y) for y in estimated_years)}年的国务院节假日安排尚未录入，"
                     "该年内的核查期限按法定节假日推算（未含调休、补假），可能相差一两天。")
    for line in notes:
        # across the cover's five columns, wrapped (a line of item 1 was cut at the printed page's
        # edge); a merged cell's height is not fitted by Excel, so it is set for the line's length
        cover.merge_range(r, 0, r, 4, line, note)
        cover.set_row(r, row_height(wrapped_lines(line, sum(COVER_WIDTHS) - 4)))  # (less each cell's margins)
        r += 1
    r += 1
    cover.write_string(r, 0, "核实结果（下拉选项）", bold)
    r += 1
    for label in OUTCOME_LABELS.values():
        cover.write_string(r, 0, label)
        r += 1
    cover.protect("", {"select_locked_cells": True, "select_unlocked_cells": True})
    print_setup(cover, page_numbers=True)  # (a 140-row sheet printed 14 pages none could put back in order)
    wb.close()


# The long texts of 疑点清单, wrapped in their columns.
WRAPPED_COLUMNS = ("规则名称", "核实结果", "核实说明", "疑点对象", "证据摘要")
COVER_WIDTHS = (22, 40, 16, 16, 90)  # the 说明 sheet's five columns, in the width of a Latin letter


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# Characters no file name may hold on Linux or Windows, where agencies open their sheets.
_NOT_IN_FILE_NAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


# A 台账编号 as _stage_worklists makes it, WL-<agency>-<day issued, YYYYMMDD>-<8 hex digits>, the day
# its group (a clerk retyping it may capitalise the digits); for Python's re and DuckDB's regexp alike
EXPORT_ID_PATTERN = "WL-.+-([0-9]{8})-[0-9a-fA-F]{8}"


# What follows the agency's part of a name worklist_name gives, or _tonights_name's `_2`, `_3`… beside it
_WORKLIST_DAY = re.compile(r"_[0-9]{8}(_[1-9][0-9]{0,3})?\.xlsx")


def _code_in_file_names(agency_code: str) -> str:
    """Codes are stored as delivered: one holding a character a file name cannot (`360702/01`) is
    written with `_` there, and with a short hash of the code, so that two codes (`360702/01`,
    `360702_01`) never share — or overwrite — a file."""
    safe = _NOT_IN_FILE_NAMES.sub("_", agency_code)
    if safe != agency_code or len(safe.encode("utf-8")) > 100:
        safe = f"{safe[:40]}-{hashlib.sha256(agency_code.encode('utf-8')).hexdigest()[:8]}"
    return safe


def worklist_name(agency_code: str, as_of: dt.date) -> str:
    """Named with the agency code (CONTRACT §5); see _code_in_file_names."""
    return f"{FILE_PREFIX}_{_code_in_file_names(agency_code)}_{as_of:%Y%m%d}.xlsx"


def write_worklists(con: duckdb.DuckDBPyConnection, out_dir: str | Path, as_of: dt.date, config: Any = None,
                    actor: str | None = None, run_id: str | None = None) -> list[Path]:
    """Issue every open suspect and write one worklist per agency into out_dir; the paths written.

    Suspects 待下发 become 已下发 and 已重开 ones are issued again, tonight's 下发日期 and a fresh 核查期限
    (event 'issued'); earlier
    issued open ones are carried with their 下发日期 and 核查期限. Each workbook appears whole (temp file + rename) and
    each export is in audit_log ('export_worklist') and worklist_rows.
    """
    # absolute: each export's file is recorded (audit_log) and found again on later nights, which
    # may be run from another folder or name OUT another way (retire_superseded)
    out_dir = Path(os.path.abspath(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out_dir, 0o700)  # worklists carry ID numbers and names: owner only
    runlock.remove_stale_temps(out_dir)  # a killed run's unpublished workbooks
    days = int(casework.settings(config)["verify_working_days"])
    calendar = calendar_from(config)
    actor = current_actor(actor)
    now = china_now()
    texts = rule_texts(rule_folders(config), con)
    written: list[Path] = []
    staged: list[tuple[Path, Path]] = []  # (temp file, final name), published after the commit
    try:
        _stage_worklists(con, out_dir, as_of, days, calendar, actor, run_id, now, texts, staged,
                         contact=casework.settings(config)["contact"], office=office_name(config))
        # Committed: every export is on record (audit_log, worklist_rows) before its file appears,
        # and each file appears whole. A run killed before this point leaves no new workbook
        # (the next run issues them again); killed in the middle, the rest come with the next run.
        for tmp, path in staged:
            os.replace(tmp, path)
            written.append(path)
    finally:
        for tmp, _path in staged:
            tmp.unlink(missing_ok=True)
    return written


def worklist_files(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[tuple[Path, str]]:
    """(path, its day YYYYMMDD) of the files in out_dir named as worklist_name names a worklist of an
    agency of the register or of an export on record (`_2`… included), sorted: `…_20261121_20261125.xlsx`
    or `… - 副本.xlsx`, a clerk's copy, is theirs."""
    agencies = {_code_in_file_names(code) for (code,) in con.execute(
        "select agency_code from agencies union select agency_code from audit_log"
        " where action = 'export_worklist'").fetchall() if code}
    found = []
    # names as their bytes read (path_text), not as this process's locale decoded them: a night run
    # under a GB18030 locale wrote its sheets' names in GB18030, which a UTF-8 night's glob never matched
    for path in sorted(out_dir.iterdir()) if out_dir.is_dir() else ():
        name = path_text(path.name)
        for code in agencies:
            rest = name[len(FILE_PREFIX) + 1 + len(code):]
            if name.startswith(f"{FILE_PREFIX}_{code}_") and _WORKLIST_DAY.fullmatch(rest) and path.is_file():
                found.append((path, rest[1:9]))
                break
    return found


def retire_superseded(con: duckdb.DuckDBPyConnection, out_dir: str | Path, tonight: list[Path],
                      actor: str | None = None, run_id: str | None = None
                      ) -> tuple[list[Path], list[Path], list[Path]]:
    """Remove from out_dir the worklists of earlier nights, so that OUT holds one workbook per agency
    with open suspects (CONTRACT §5): tonight's sheet of an agency lists every suspect still open,
    and an agency with none left gets no sheet. Each earlier export stays on record (audit_log with
    its sha256, worklist_rows with every locked cell), so a returned copy of it still applies.

    Only a file exactly as fundwatch wrote it (the sha256 of an export on record, wherever OUT was
    then: a store and OUT moved to another disk together left every earlier sheet in place) is
    removed; one changed since — say a clerk filled it in where it lay — is left, and so is one this
    store has no record of (a night the store no longer holds, restored from a backup taken before
    it: the sheet may be in a clerk's hands, filled in). Each removal is on record (audit_log
    'retire_worklist') before the file goes. Returns (removed, left because changed, left because
    not on record), for the night's summary."""
    out_dir = Path(out_dir).resolve()
    keep = {p.resolve() for p in tonight}
    exported = dict(con.execute(
        "select file_hash, arg_max(agency_code, happened_at) from audit_log"
        " where action = 'export_worklist' and file_hash is not null group by file_hash").fetchall())
    named = {Path(file).name for (file,) in con.execute(
        "select distinct file from audit_log where action = 'export_worklist' and file is not null").fetchall()}
    removable: list[tuple[Path, str, str | None]] = []
    changed: list[Path] = []
    unknown: list[Path] = []
    for path, _day in worklist_files(con, out_dir):
        if path.resolve() in keep:
            continue
        digest = file_sha256(path)
        if digest in exported:
            removable.append((path, digest, exported[digest]))
        else:
            (changed if path_text(path.name) in named else unknown).append(path)
    if removable:
        now, actor = china_now(), current_actor(actor)
        with casework.atomic(con):
            for path, file_hash, agency_code in removable:
                audit(con, "retire_worklist", actor, {"reason": "superseded by tonight's worklists", "run_id": run_id},
                      happened_at=now, file=path_text(path), file_hash=file_hash, agency_code=agency_code)
        for path, _, _ in removable:
            path.unlink(missing_ok=True)
    return [path for path, _, _ in removable], changed, unknown


def _stage_worklists(con, out_dir: Path, as_of: dt.date, days: int, calendar: WorkCalendar, actor: str,
                     run_id: str | None, now: dt.datetime, texts: dict[str, RuleText],
                     staged: list[tuple[Path, Path]], contact: str | None = None, office: str | None = None) -> None:
    """Issue, write every workbook to a temp file beside its final name, and record the exports."""
    with casework.atomic(con):
        names = dict(con.execute("select agency_code, any_value(agency_name) from agencies group by 1").fetchall())
        for agency_code in _agencies_with_open_suspects(con):
            flags = _open_suspects(con, agency_code)
            if len(flags) > MAX_SHEET_ROWS:
                # XlsxWriter drops a row past the sheet's last without a word: the rest would be
                # marked issued and never reach the agency. So many is a rule gone wrong.
                raise ValueError(f"机构 {agency_code} 有 {len(flags):,} 条未办结疑点，超过一张工作表的上限"
                                 f" {MAX_SHEET_ROWS:,} 行，台账无法写出：请检查规则参数或数据后重跑")
            _issue(con, flags, as_of, days, calendar, run_id, now)
            export_id = f"WL-{agency_code}-{as_of:%Y%m%d}-{uuid.uuid4().hex[:8]}"  # (EXPORT_ID_PATTERN)
            rows = [_row_values(s, texts) for s in flags]
            for s in flags:
                del s["evidence"]  # in the rows' 证据摘要 now; the biggest part of a suspect
            path = _tonights_name(con, out_dir / worklist_name(agency_code, as_of))
            if path.exists() and not path.is_file():
                # Found now, inside the transaction: no suspect is marked issued without its workbook.
                raise IsADirectoryError(f"{path} is not a file; the worklist cannot be written there")
            fd, tmp_name = tempfile.mkstemp(prefix=runlock.temp_prefix(path.name), suffix=".tmp", dir=out_dir)
            os.close(fd)
            tmp = Path(tmp_name)
            staged.append((tmp, path))
            new_deadline = calendar.add_working_days(as_of, days)
            # the cover's own 本次新下发疑点核查期限 too: printed though no row was issued tonight
            _write_workbook(tmp, (agency_code, names.get(agency_code)), export_id, as_of, new_deadline, rows, flags,
                            texts, calendar.unknown_years([new_deadline, *(r["核查期限"] for r in rows)]),
                            contact=contact, office=office)
            os.chmod(tmp, 0o600)
            _fsync(tmp)
            file_hash = file_sha256(tmp)
            ids = [s["suspect_id"] for s in flags]
            _record_rows(con, export_id, agency_code, str(path), as_of, now, flags, rows)
            audit(con, "export_worklist", actor,
                  {"export_id": export_id, "as_of": as_of.isoformat(), "rows": len(ids),
                   "newly_issued": sum(1 for s in flags if s.get("new")), "run_id": run_id},
                  happened_at=now, file=str(path), file_hash=file_hash, agency_code=agency_code, suspect_ids=ids)


def _record_rows(con: duckdb.DuckDBPyConnection, export_id: str, agency_code: str, file: str, as_of: dt.date,
                 now: dt.datetime, flags: list[dict], rows: list[dict]) -> None:
    """What the export issued (worklist_rows): a row per suspect, its locked cells' text stored once
    per content — the cells of a suspect issued unchanged night after night are there already."""
    locked = [json.dumps({c: canonical(c, v[c]) for c in LOCKED}, ensure_ascii=False) for v in rows]
    md5s = [hashlib.md5(text.encode("utf-8")).hexdigest() for text in locked]
    stored = {m for (m,) in con.execute("select locked_md5 from worklist_locked_cells "
                                        "where locked_md5 in (select unnest(?))", [md5s]).fetchall()}
    new = dict(pair for pair in zip(md5s, locked) if pair[0] not in stored)
    insert_many(con, "worklist_locked_cells", ["locked_md5", "locked"], [[m, text] for m, text in new.items()])
    insert_many(
        con, "worklist_rows_issued",
        ["export_id", "suspect_id", "agency_code", "row_number", "file", "as_of", "exported_at", "locked_md5", "prefilled"],
        [[export_id, s["suspect_id"], agency_code, i, file, as_of, now, md5,
          json.dumps({c: answer_text(c, v[c]) for c in EDITABLE}, ensure_ascii=False)
          if any(v[c] is not None for c in EDITABLE) else None]
         for i, (s, v, md5) in enumerate(zip(flags, rows, md5s), start=2)],
    )


def _tonights_name(con: duckdb.DuckDBPyConnection, path: Path) -> Path:
    """Where tonight's workbook of an agency goes: its usual name — unless the workbook there is not
    exactly as fundwatch wrote it: changed since (a clerk filled it in where it lay, then the night
    was run again for the same date), or not on record (the store restored from a backup taken
    before the night that wrote it: a clerk's answers in it were written over). That file is kept as
    it is (retire_superseded names it in the summary) and tonight's takes the next free name,
    `…_20261121_2.xlsx`."""
    candidate, n = path, 1
    while candidate.is_file():
        if scalar(con, "select count(*) from audit_log where action = 'export_worklist' and file_hash = ?",
                  [file_sha256(candidate)]):
            break  # exactly as fundwatch wrote it: replaced
        n += 1
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
    return candidate


def _fsync(path: Path) -> None:
    """The bytes on disk before the rename makes them the real file (power loss, not only a kill)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
