"""A returned worklist read (核查结果回收的台账读取): a workbook's bytes into the sheets that carry a
疑点编号 header, their answer cells as the clerk left them. Nothing here touches the store: which
export a sheet came from and what its answers do is returns.py's.

Read by header names, not positions (a re-saved or unprotected copy still reads), and by the cells
a sheet holds rather than its stated dimensions (one value typed at A1048576 or a cell formatted
at XFD1048576 cost minutes and gigabytes). A file of another kind (.xls, .ods, CSV, PDF, a damaged
or bomb-sized package) is refused in words a clerk can act on.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import openpyxl
from openpyxl.utils import get_column_letter

from .packed import xlsx_part_too_large
from .worklists import COLUMNS, COVER, EDITABLE, EXPORT_ID_LABEL, SHEET


def _clean_header(value: Any) -> str:
    return "".join(str(value).split()).strip("*") if value is not None else ""


HEADER_ROWS = 100  # the header is looked for in the sheet's first rows (title rows a clerk inserted above it)


def _filled_extent(ws) -> tuple[int, int]:
    """(last row, last column) holding a value. A cell formatted far away (Ctrl+End, a row styled to
    the sheet's end at T1048576) makes the sheet's own dimensions a million rows, whose reading by
    openpyxl (a cell object each) took minutes and gigabytes: only what holds a value is read."""
    last_row = last_column = 0
    for (row, column), c in ws._cells.items():  # (openpyxl keeps the cells it loaded here; pinned version)
        if c.value is not None and not (isinstance(c.value, str) and not c.value.strip()):
            last_row, last_column = max(last_row, row), max(last_column, column)
    return last_row, last_column


def _rows_with_cells(ws, min_row: int, max_row: int, max_col: int) -> list[tuple[int, tuple]]:
    """(row number, its values to column max_col) of the rows from min_row to max_row the sheet
    holds cells in — what ws.iter_rows(values_only=True) gives without its empty rows, which it
    makes a cell object for, each of each column: one value typed at A1048576 of a returned sheet
    grew `returns` to 24 GB until the system killed it (a security probe)."""
    held: dict[int, dict[int, Any]] = {}
    for (row, column), c in ws._cells.items():  # (openpyxl keeps the cells it loaded here; pinned version)
        if min_row <= row <= max_row and column <= max_col:
            held.setdefault(row, {})[column] = c.value
    return [(row, tuple(held[row].get(column) for column in range(1, max_col + 1))) for row in sorted(held)]


def _header_row_of(ws, last_row: int, last_column: int) -> tuple[int, dict[str, int], list[str]]:
    """(row number, {header: column index}, the columns read for answers headed twice, with their
    letters) of the sheet's 疑点编号 header in its first HEADER_ROWS rows — the worklist sheet's
    anywhere — or (0, {}, []); `last_row`, `last_column`: the sheet's _filled_extent."""
    if not last_row:
        return 0, {}, []
    # (the worklist sheet's past them: a sort that took the header row with the data, "数据包含标题"
    # left unticked, moves it down among them — to the end of a sheet of more rows than HEADER_ROWS;
    # a clerk's own sheet of notes with such a table far down is no copy of it)
    deep = (HEADER_ROWS + 1, last_row) if ws.title == SHEET else (1, 0)
    for first, last in ((1, min(HEADER_ROWS, last_row)), deep):
        for number, row in _rows_with_cells(ws, first, last, last_column) if first <= last else ():
            names = [_clean_header(v) for v in row]
            if "疑点编号" not in names:
                continue
            columns: dict[str, int] = {}
            for i, name in enumerate(names):
                columns.setdefault(name, i)
            twice = [f"“{c}”（第{'、'.join(get_column_letter(i + 1) for i, n in enumerate(names) if n == c)}列）"
                     for c in ("疑点编号", *EDITABLE) if names.count(c) > 1]
            return number, columns, twice
    return 0, {}, []


def _candidate_sheets(wb) -> list[tuple]:
    """(sheet, header row, columns, last row holding a value) of every sheet with a 疑点编号 header: the worklist sheet, and
    any copy a clerk made of it (which of them holds the answers is told by _load). A column
    read for answers headed twice refuses the workbook: which of the two holds the answer cannot be
    told, and reading the first dropped an answer typed into the other without a word."""
    found = []
    for ws in wb.worksheets:
        last_row, last_column = _filled_extent(ws)
        header_row, columns, twice = _header_row_of(ws, last_row, last_column)
        if twice:
            raise ValueError(f"工作表“{ws.title}”中列{'、'.join(twice)}出现了不止一次，无法确定以哪一列为准："
                             "请删除多余的列后重新报送")
        if header_row:
            found.append((ws, header_row, columns, last_row))
    return found


def export_id_of(wb) -> str | None:
    if COVER in wb.sheetnames:
        for row in wb[COVER].iter_rows(min_row=1, max_row=40, max_col=2, values_only=True):
            if len(row) >= 2 and _clean_header(row[0]) == EXPORT_ID_LABEL and row[1]:
                return str(row[1]).strip()
    try:
        for prop in wb.custom_doc_props.props:
            if prop.name == "fundwatch_export_id" and prop.value:
                return str(prop.value).strip()
    except AttributeError:
        pass
    subject = wb.properties.subject or ""
    return subject.strip() if subject.startswith("WL-") else None


@dataclass
class Sheet:
    header_row: int
    columns: dict[str, int]
    rows: list[tuple[int, tuple]]
    export_id: str | None
    title: str = SHEET
    # a 台账编号 on the cover that is another sheet's (_load): set aside, the rows tell the export
    other_cover: tuple[str, str] | None = None  # (台账编号, the agency it was issued to)
    # (sheet, row, text) of the cells of the workbook's other sheets (no 疑点编号 header): answered
    # rows a clerk moved there are read nowhere, and said (_not_on_the_sheet)
    elsewhere: list[tuple[str, int, str]] = field(default_factory=list)
    # the rows above the header that hold a text in its 疑点编号 column: a sort that took the header
    # row with the data moved answered rows above it (returns._load reads those naming a suspect)
    above: list[tuple[int, tuple]] = field(default_factory=list)
    # {row: (its merged range, e.g. "K5:K6", the header of the range's first column, whether the
    # range covers the row's 疑点编号 cell)} for the rows a merged range holding a value spans in the
    # template's columns: only the range's first cell holds it, so an answer a clerk sees on every
    # row of it reads as blank on the others (returns refuses the rows of a suspect)
    merged: dict[int, tuple[str, str, bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class Uncalculated:
    """An editable cell holding a formula saved without its value (written by a tool, not by Excel,
    WPS or LibreOffice, which save both): read as empty it would lose the answer silently."""
    formula: str


_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def _answer_cells_xml(path: Path, sheet_title: str, header_row: int, editable: list[int]) -> dict[tuple[int, int], tuple]:
    """{(row, column index): (formula, type, saved value)} of the answer cells below the header, as
    written in the sheet's XML — for what openpyxl cannot tell: a formula saved without its value
    (read as None, like Excel's saved empty text =IF(…,"",…), which is t="str" with an empty <v>),
    and a number in a date-formatted cell too large to be a date serial (read as #VALUE!, like a
    real error value, which is t="e")."""
    with zipfile.ZipFile(path) as z:
        book = ElementTree.fromstring(z.read("xl/workbook.xml"))
        rel_id = next(e.get(f"{_REL_NS}id") for e in book.iter(f"{_MAIN_NS}sheet") if e.get("name") == sheet_title)
        rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
        target = next(e.get("Target") for e in rels if e.get("Id") == rel_id)
        name = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        out = {}
        # A cell's reference (r) and a row's are optional in the format: without one, the next
        # column or row (as openpyxl reads it; a tool other than Excel may write them so).
        row = index = 0
        for event, element in ElementTree.iterparse(z.open(name), events=("start", "end")):
            if event == "start":
                if element.tag == f"{_MAIN_NS}row":
                    row, index = int(element.get("r") or row + 1), -1
                elif element.tag == f"{_MAIN_NS}c":
                    if ref := element.get("r"):
                        letters, row = openpyxl.utils.cell.coordinate_from_string(ref)
                        index = openpyxl.utils.cell.column_index_from_string(letters) - 1
                    else:
                        index += 1
                continue
            if element.tag == f"{_MAIN_NS}c" and row > header_row and index in editable:
                formula, value = element.find(f"{_MAIN_NS}f"), element.find(f"{_MAIN_NS}v")
                out[(row, index)] = ("=" + (formula.text or "") if formula is not None else None, element.get("t"),
                                     value.text if value is not None else None)
            if element.tag in (f"{_MAIN_NS}c", f"{_MAIN_NS}row"):
                element.clear()
        return out


def _from_xml(value: Any, xml: tuple | None) -> Any:
    """An answer cell as the clerk left it, where openpyxl's reading lost it (see _answer_cells_xml)."""
    if xml is None:
        return value
    formula, kind, saved = xml
    if value is None and formula is not None and kind != "str" and not saved:
        return Uncalculated(formula)
    if value == "#VALUE!" and kind in (None, "n") and saved:
        try:
            number = float(saved)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OTHER_FORMAT = "不是下发的 .xlsx 台账：请在下发的 .xlsx 文件中填写后报送（不要另存为其他格式）"


def _looks_like_text(head: bytes) -> bool:
    """Whether a file's first bytes read as text (a CSV saved instead), not as a PDF, image or other
    binary: UTF-8 or GB18030 (a character cut at the end aside), no control character but tab and line ends."""
    for encoding in ("utf-8", "gb18030"):
        for cut in range(4):  # a character of up to four bytes cut by the end of the head
            try:
                text = head[:len(head) - cut].decode(encoding)
            except UnicodeDecodeError:
                continue
            return bool(text.strip()) and not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)
    return False


def _text_kind(head: bytes) -> str:
    """What a text file saved instead of the workbook is, as a clerk would name it: a sheet saved as
    a web page or as flat XML (LibreOffice's .fods) is no CSV."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html")) or b"<html" in start[:300]:
        return "网页文件（HTML）"
    if start.startswith(b"<?xml") or start.startswith(b"<"):
        return "XML 文本文件（如 .fods 或“XML 电子表格”）"
    return "文本文件（如 CSV）"


# An encrypted .xlsx (a password to open it, Excel's or WPS's) is an OLE2 compound file, as a .xls
# is, holding a stream of this name (UTF-16 in the file's directory) — a .xls holds "Workbook".
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")


def _open_workbook(path: Path):
    """The workbook, told by its content rather than its name (a clerk may rename the file); a file
    of another kind is refused in words a clerk can act on, not the reader's own message."""
    data = path.read_bytes()
    if not data:
        raise ValueError("文件是空文件（0 字节），没有内容：请重新保存下发的 .xlsx 台账后报送（或重新发送附件）")
    if data.startswith(_OLE2) and _ENCRYPTION_INFO in data:
        raise ValueError("文件设置了打开密码（已加密），无法读取：请在 Excel/WPS 中取消打开密码后保存，再报送")
    if data.startswith(_OLE2):
        raise ValueError(f"文件是 Excel 97-2003（.xls）格式，{_OTHER_FORMAT}")
    if not data.startswith(b"PK"):
        kind = ("PDF 文件" if data.startswith(b"%PDF") else
                _text_kind(data[:512]) if _looks_like_text(data[:512]) else "无法识别的文件")
        raise ValueError(f"文件是{kind}，{_OTHER_FORMAT}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            if "mimetype" in names and b"opendocument" in z.read("mimetype"):
                raise ValueError(f"文件是 OpenDocument 表格（.ods），{_OTHER_FORMAT}")
            if "xl/workbook.xml" not in names:
                raise ValueError(f"文件是 zip 压缩包而不是 .xlsx 工作簿，{_OTHER_FORMAT}")
            if b"purl.oclc.org/ooxml/spreadsheetml" in z.read("xl/workbook.xml")[:4096]:
                # openpyxl finds no sheet in it, which read as a worklist sheet missing
                raise ValueError("文件是“Strict Open XML 电子表格”格式：请在 Excel 中另存为“Excel 工作簿(*.xlsx)”后报送")
    except zipfile.BadZipFile:
        raise ValueError("文件已损坏（不是完整的 .xlsx 工作簿），请重新保存后报送") from None
    if too_large := xlsx_part_too_large(data):
        # (a 1.5 MB sheet padded with 1.5 GB of blanks took 1.7 GB to read: a security probe)
        raise ValueError(f"工作簿中的部分内容解压后异常庞大（{too_large}），文件已损坏或被改动："
                         "请在 Excel/WPS 中打开并重新保存后报送")
    try:
        with warnings.catch_warnings():
            # openpyxl warns on stderr about what it skips (a date it cannot read, extensions)
            warnings.simplefilter("ignore", UserWarning)
            # data_only: a clerk's formula (=300+200) counts by the value Excel/WPS saved with it.
            return openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except Exception as exc:  # noqa: BLE001 — a damaged part of the package
        raise ValueError(f"工作簿已损坏，无法读取（{type(exc).__name__}），请在 Excel/WPS 中打开并重新保存后报送") from None


# Unicode's invisible format characters (zero-width space, BOM, word joiner, direction marks, tag
# characters): a paste from a chat or a web page leaves them in a cell, where the clerk cannot see
# what is wrong. The whole class, as ingest removes it (normalise.FORMAT_CHARACTERS, \p{Cf}).
class _Invisible(dict):
    """str.translate's table of the class, each character looked up once when first met (listing
    all 1.1 million code points at import would cost every command 0.14 s)."""

    def __missing__(self, code: int) -> int | None:
        self[code] = None if unicodedata.category(chr(code)) == "Cf" else code
        return self[code]


_INVISIBLE = _Invisible()


def _visible(value: Any) -> Any:
    """A cell read by its content (疑点编号, the answer cells): a text without invisible characters."""
    return value.translate(_INVISIBLE) if isinstance(value, str) else value


def _merged_rows(ws, header_row: int, columns: dict[str, int]) -> dict[int, tuple[str, str, bool]]:
    """Sheet.merged: the rows below the header a merged range holding a value spans in the
    template's columns (an empty one loses nothing)."""
    template = {i + 1: name for name, i in columns.items() if name in COLUMNS}
    key = columns["疑点编号"] + 1
    out: dict[int, tuple[str, str, bool]] = {}
    for merged in ws.merged_cells.ranges:
        if merged.max_row <= header_row:
            continue
        names = [template[c] for c in range(merged.min_col, merged.max_col + 1) if c in template]
        first = ws._cells.get((merged.min_row, merged.min_col))  # (openpyxl's loaded cells, as above)
        value = first.value if first is not None else None
        if not names or value is None or (isinstance(value, str) and not value.strip()):
            continue
        for row in range(max(merged.min_row, header_row + 1), merged.max_row + 1):
            covers_id = merged.min_col <= key <= merged.max_col and (row, key) != (merged.min_row, merged.min_col)
            out.setdefault(row, (merged.coord, names[0], covers_id))
    return out


def missing_column(column: str) -> str:
    return f"缺少列“{column}”：请使用下发的台账原表填写，不要删除或改名列"


def read_workbook(path: Path) -> list[Sheet]:
    """Every sheet of the workbook with a 疑点编号 header, its answer cells as the clerk left them."""
    wb = _open_workbook(path)
    try:
        export_id = export_id_of(wb)
        sheets = []
        for ws, header_row, columns, last_row in _candidate_sheets(wb):
            read = {columns[c] for c in ("疑点编号", *EDITABLE) if c in columns}

            def cells(first: int, last: int) -> list[tuple[int, tuple]]:
                """The rows from first to last as read: the 疑点编号 and answer cells without invisible characters."""
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    return [(n, tuple(_visible(v) if i in read else v for i, v in enumerate(r)))
                            for n, r in _rows_with_cells(ws, first, last, max(columns.values()) + 1)]

            rows = cells(header_row + 1, last_row)
            editable = [columns[c] for c in EDITABLE if c in columns]
            if any(i < len(r) and (r[i] is None or r[i] == "#VALUE!") for _, r in rows for i in editable):
                xml = _answer_cells_xml(path, ws.title, header_row, editable)
                rows = [(n, tuple(_from_xml(v, xml.get((n, i))) if i in editable else v for i, v in enumerate(r)))
                        for n, r in rows]
            key = columns["疑点编号"]
            above = [(n, r) for n, r in cells(1, header_row - 1) if isinstance(r[key], str) and r[key].strip()]
            sheets.append(Sheet(header_row, columns, rows, export_id, ws.title, above=above,
                                merged=_merged_rows(ws, header_row, columns)))
        headed = {sheet.title for sheet in sheets}
        elsewhere = []
        for ws in wb.worksheets:
            last_row, last_column = _filled_extent(ws)
            if ws.title in headed or not last_row:  # (openpyxl reads max_row=0 as "to the sheet's end")
                continue
            for n, row in _rows_with_cells(ws, 1, last_row, last_column):
                elsewhere.extend((ws.title, n, v.strip()) for v in row if isinstance(v, str) and 0 < len(v.strip()) <= 40)
        sheets = [replace(sheet, elsewhere=elsewhere) for sheet in sheets]
        if not sheets:
            if SHEET in wb.sheetnames:  # the sheet is there: its 疑点编号 column was deleted or renamed
                raise ValueError(f"工作表“{SHEET}”{missing_column('疑点编号')}")
            raise ValueError(f"没有找到工作表“{SHEET}”（或含“疑点编号”表头的工作表）")
        return sheets
    finally:
        wb.close()
