"""The 汇总表: the agency × rule summary workbook an office sends upward (no person-level data).

Every text cell is written with write_string and the workbook refuses to turn strings into
formulas, so an agency name like "=HYPERLINK(...)" stays text (no formula injection).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import xlsxwriter

from . import report_data as rd
from .printing import print_setup, row_height, rule_id_width, wrapped_lines

COUNT_COLUMNS = (
    ("suspects", "疑点数"), ("issued", "下发"), ("verified", "已核实"), ("in_progress", "核查中"), ("closed", "已销号"),
    ("reopened", "已重开"), ("overdue", "逾期"), ("escalated", "挂牌督办"), ("transferred", "已移送"),
    ("major", "要情"), ("major_serious", "其中重大要情"),
)
MONEY_COLUMNS = (("amount", "涉及金额"), ("open_amount", "在办涉及金额"), ("recovered", "追回金额"))
RATE_HEADER = "追回率"
TOTAL_LABEL = "合计"
SHEET_MAIN, SHEET_AGENCY, SHEET_RULE, SHEET_NOTES = "汇总表", "按经办机构", "按规则", "说明"

NOTES = (
    ("统计口径", ""),
    ("疑点数", "该经办机构在该规则下的全部疑点（含待下发）"),
    ("下发", "已下发给经办机构核查的疑点（有下发日期或已离开“待下发”状态）"),
    ("已核实", "经办机构已填报核实结果或核实日期的疑点（已重开的不计，重新核实后再计）"),
    ("核查中", "状态为“核查中”的疑点：已填报核实结果（如部分追回）尚未办结"),
    ("已销号", "状态为“已销号”的疑点"),
    ("已重开", "销号后又出现新证据（新的发放、交易或人员，或金额超过销号时）而重开、尚未重新核实的疑点"),
    ("逾期", "当前标记为逾期的疑点：超过核查期限仍在经办机构办理中（已下发、核查中、已重开）"),
    ("挂牌督办", "当前标记为挂牌督办（发现后超过规定天数损失仍未追回）的疑点"),
    ("已移送", "状态为“已移送”（转稽核或移送查处）的疑点"),
    ("要情", "核实损失已定级的疑点：要情（10万元以下）、重大要情（10万元起）、重大要情（报部）（50万元起），金额界限以配置为准"),
    ("其中重大要情", "其中重大要情与重大要情（报部）"),
    ("涉及金额", "疑点涉及金额合计（元），含已销号的疑点"),
    ("在办涉及金额", "尚未销号的疑点（待下发、已下发、核查中、已重开、已移送）涉及金额合计（元）"),
    ("追回金额", "经办机构填报的追回金额合计（元）；每个疑点以其涉及金额为限，超出部分（如利息）记入核实记录、不计入；"
                 "疑点损失已全部移至核实结果所针对所属期以外的（数据更正后），其追回不计入"),
    ("追回率", "追回金额 ÷ 涉及金额，保留到 0.1%（四舍五入）；涉及金额为 0 时不计算（—）"),
    ("合计", "各规则分别统计：同一人员、发放或交易被两条规则命中时是两个疑点，各计一次，合计中其涉及金额"
             "（及两行分别填报的追回金额）计入两次；经办机构在两行填报追回时，回收台账时会提示核对"),
    ("个人信息", "本表不含任何个人明细（公民身份号码、姓名、银行账号）"),
)


def _columns(leading: list[str]) -> list[str]:
    return leading + [h for _, h in COUNT_COLUMNS] + [h for _, h in MONEY_COLUMNS] + [RATE_HEADER]


def dated(as_of: date, data_as_of: date | None) -> str:
    """What date the figures are of: the last night's data, with 逾期 and 挂牌督办 counted to
    another day when the report was asked for one (the store keeps no earlier state)."""
    if data_as_of is None or data_as_of == as_of:
        return f"数据截至 {as_of.isoformat()}"
    return f"数据截至 {data_as_of.isoformat()}（逾期、挂牌督办与账龄按 {as_of.isoformat()} 计算）"


# Column widths (in Latin letters; a Chinese character is two) chosen so that the widest sheet,
# 汇总表's 21 columns, prints one A4 landscape page across at about three quarters of its size.
LEADING_WIDTHS = {"经办机构编码": 11, "经办机构名称": 18, "行政区划代码": 8, "规则编号": 14, "规则名称": 18}
COUNT_WIDTH, MONEY_WIDTH, RATE_WIDTH, NUMBER_WIDTH = 7, 14, 8, 5
NOTE_WIDTHS = (14, 90)


def _widths(leading: list[tuple[str, str]], items: list[dict]) -> list[float]:
    widths = [NUMBER_WIDTH]
    for key, header in leading:
        width = LEADING_WIDTHS[header]
        if key == "rule_id":  # one word: wrapped at the column's edge it printed CERTIFICATION_OV / ERDUE
            width = rule_id_width((str(r.get(key) or "") for r in items), width)
        widths.append(width)
    return widths + [COUNT_WIDTH] * len(COUNT_COLUMNS) + [MONEY_WIDTH] * len(MONEY_COLUMNS) + [RATE_WIDTH]


def _sheet(wb, fmt: dict, name: str, title: str, as_of: date, leading: list[tuple[str, str]], items: list[dict],
           data_as_of: date | None = None, office: str | None = None) -> None:
    ws = wb.add_worksheet(name)
    headers = _columns(["序号"] + [h for _, h in leading])
    widths = _widths(leading, items)
    for c, w in enumerate(widths):
        ws.set_column(c, c, w)
    ws.merge_range(0, 0, 0, len(headers) - 1, title, fmt["title"])
    # 填报单位 … 金额单位: the line a statistical table sent upward carries under its title
    ws.write_string(1, 0, (f"填报单位：{office}    " if office else "") + f"{dated(as_of, data_as_of)}    金额单位：元",
                    fmt["meta"])
    for c, h in enumerate(headers):
        ws.write_string(2, c, h, fmt["head"])
    ws.set_row(2, row_height(max(wrapped_lines(h, w) for h, w in zip(headers, widths))))
    row = 3
    for i, r in enumerate(items, start=1):
        texts = [str(i)] + [str(r.get(k) or "") for k, _ in leading]
        _write_row(ws, fmt, row, texts, r, fmt["cell"])
        # a long agency name or rule id wraps in its column (it was cut at the column's edge)
        ws.set_row(row, row_height(max(wrapped_lines(t, w) for t, w in zip(texts, widths))))
        row += 1
    total = rd.total_of(items)
    _write_row(ws, fmt, row, [TOTAL_LABEL] + [""] * len(leading), total, fmt["total"])
    # the figures scroll beside their agency and rule; printed, the title, the date and the header
    # row head every page, all columns across one page (15 pages split the counts and the money
    # from the agency they were of, the title halved on pages 2 and 3)
    ws.freeze_panes(3, len(leading) + 1)
    print_setup(ws, header_rows=2, page_numbers=True)


def _write_row(ws, fmt: dict, row: int, texts: list[str], r: dict, text_fmt) -> None:
    c = 0
    for t in texts:
        ws.write_string(row, c, t, text_fmt)
        c += 1
    for key, _ in COUNT_COLUMNS:
        ws.write_number(row, c, int(r[key]), fmt["int_total" if text_fmt is fmt["total"] else "int"])
        c += 1
    for key, _ in MONEY_COLUMNS:
        ws.write_number(row, c, float(r[key]), fmt["money_total" if text_fmt is fmt["total"] else "money"])
        c += 1
    if r["rate"] is None:
        ws.write_string(row, c, "—", fmt["none_total" if text_fmt is fmt["total"] else "none"])  # (left, it read 0.00—)
    else:
        ws.write_number(row, c, float(rd.rate_shown(r["rate"])), fmt["rate_total" if text_fmt is fmt["total"] else "rate"])


def write_summary(path: Path, as_of: date, summary: list[dict], agencies: list[dict], rules: list[dict],
                  data_as_of: date | None = None, office: str | None = None) -> None:
    """Write the workbook to `path` (the caller makes it atomic and records the audit); office:
    config `office`, the 填报单位 of every sheet."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    wb.set_properties({"title": f"社会保险基金疑点核查情况汇总表 {as_of.isoformat()}", "author": "fundwatch",
                       "company": office or "", "created": datetime(as_of.year, as_of.month, as_of.day)})
    base = {"font_name": "宋体", "font_size": 10, "border": 1, "valign": "vcenter"}
    fmt = {
        "title": wb.add_format({"font_name": "黑体", "font_size": 14, "bold": True, "align": "center"}),
        # quote_prefix on every text format: a name like "=HYPERLINK(…)" from an extract stays text.
        "meta": wb.add_format({"font_name": "宋体", "font_size": 10, "quote_prefix": True}),
        "note": wb.add_format({"font_name": "宋体", "font_size": 10, "quote_prefix": True, "text_wrap": True,
                               "valign": "top"}),
        "head": wb.add_format({**base, "bold": True, "align": "center", "valign": "vcenter", "bg_color": "#DDEBF7", "text_wrap": True}),
        "cell": wb.add_format({**base, "quote_prefix": True, "text_wrap": True}),
        "int": wb.add_format({**base, "num_format": "#,##0"}),
        "money": wb.add_format({**base, "num_format": "#,##0.00"}),
        "rate": wb.add_format({**base, "num_format": "0.0%"}),
        "total": wb.add_format({**base, "bold": True, "bg_color": "#F2F2F2", "quote_prefix": True}),
        "int_total": wb.add_format({**base, "bold": True, "bg_color": "#F2F2F2", "num_format": "#,##0"}),
        "money_total": wb.add_format({**base, "bold": True, "bg_color": "#F2F2F2", "num_format": "#,##0.00"}),
        "rate_total": wb.add_format({**base, "bold": True, "bg_color": "#F2F2F2", "num_format": "0.0%"}),
        "none": wb.add_format({**base, "align": "center"}),
        "none_total": wb.add_format({**base, "bold": True, "bg_color": "#F2F2F2", "align": "center"}),
    }
    _sheet(wb, fmt, SHEET_MAIN, "社会保险基金疑点核查情况汇总表（经办机构 × 规则）", as_of,
           [("agency_code", "经办机构编码"), ("agency_name", "经办机构名称"), ("region_code", "行政区划代码"),
            ("rule_id", "规则编号"), ("rule_title", "规则名称")], summary, data_as_of, office)
    _sheet(wb, fmt, SHEET_AGENCY, "社会保险基金疑点核查情况汇总表（按经办机构）", as_of,
           [("agency_code", "经办机构编码"), ("agency_name", "经办机构名称"), ("region_code", "行政区划代码")], agencies,
           data_as_of, office)
    _sheet(wb, fmt, SHEET_RULE, "社会保险基金疑点核查情况汇总表（按规则）", as_of,
           [("rule_id", "规则编号"), ("rule_title", "规则名称")], rules, data_as_of, office)
    ws = wb.add_worksheet(SHEET_NOTES)
    for c, w in enumerate(NOTE_WIDTHS):
        ws.set_column(c, c, w)
    for i, (k, v) in enumerate(NOTES):
        ws.write_string(i, 0, k, fmt["note"])
        ws.write_string(i, 1, v, fmt["note"])
        ws.set_row(i, row_height(wrapped_lines(v, NOTE_WIDTHS[1])))  # a term beside its whole definition
    print_setup(ws, page_numbers=True)
    wb.close()
