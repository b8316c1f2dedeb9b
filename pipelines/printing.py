"""Sheets an office prints (xlsxwriter): A4 landscape, the columns fitted across one page or a few,
the header rows — and on a sheet several pages wide its key columns — on every page, long texts
wrapped in rows fitted to them. The agencies' worklists and the province's 汇总表 both print so: a
10-row worklist printed on 19 A4 portrait pages, its answer columns on pages without 疑点编号, and
the 汇总表 on 15 pages, its counts and money on pages without the agency they were of."""

from __future__ import annotations

import math
from typing import Any, Iterable

A4 = 9  # xlsxwriter's paper code
# points: a line of the default 11-point font as a Chinese font sets it — the CJK fonts LibreOffice
# and WPS fall back on (Noto/思源) need about 16 where Calibri takes 15: at 15 the last line of a
# wrapped 证据摘要 or 政策依据 printed cut in half
LINE_HEIGHT = 16.5
MAX_ROW_HEIGHT = 409  # points: Excel's largest (a longer text is read in the cell, or in the store)


def print_setup(ws, pages_wide: int = 1, header_rows: int | None = None, key_columns: int | None = None,
                page_numbers: bool = False) -> None:
    """A4 landscape, `pages_wide` pages across (the pages of the same rows printed one after the
    other); rows 0..header_rows and columns 0..key_columns repeated on every page; 第 N 页 共 M 页
    at the foot with `page_numbers`."""
    ws.set_paper(A4)
    ws.set_landscape()
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    if header_rows is not None:
        ws.repeat_rows(0, header_rows)
    if key_columns is not None:
        ws.repeat_columns(0, key_columns)
    if pages_wide > 1:
        ws.print_across()
    if page_numbers:
        ws.set_footer("&C第 &P 页 共 &N 页")
    ws.fit_to_pages(pages_wide, 0)


def row_height(lines: int) -> float:
    return min(LINE_HEIGHT * lines, MAX_ROW_HEIGHT)


def wrapped_lines(text: Any, width: float) -> int:
    """How many lines `text` wraps to in a column `width` Latin letters wide, a little kept for the
    cell's margins. A Chinese character is two letters wide: its GB18030 bytes count the width (3.5 µs
    a row of 900 characters, where a character at a time took 64 µs: 13 s a night of 200,000 suspects)."""
    if text is None or text == "":
        return 1
    return sum(max(1, math.ceil(len(part.encode("gb18030", "replace")) / max(width - 2, 1)))
               for part in str(text).split("\n"))


def rule_id_width(rule_ids: Iterable[str], least: float) -> int:
    """A 规则编号 column as wide as the sheet's longest rule id, kept on one line: capitals are about a
    quarter wider than the digit a column's width counts in (UNEMPLOYMENT_WHILE_WORKING, 26 of them,
    ran into the next column on print in a column 26 wide, was cut on the worklist cover's 22, and
    wrapped mid-word in the 汇总表's 14), not below `least` nor above 60 (a longer own rule id is cut
    in a locked cell, wrapped in the 汇总表)."""
    longest = max((len(str(rule_id)) for rule_id in rule_ids), default=0)
    return min(60, max(least, math.ceil(longest * 1.25) + 2))
