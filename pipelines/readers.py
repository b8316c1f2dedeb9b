"""Reading a delivered extract file (CSV, XLSX, Parquet) into a RawFrame: every column as text, with
the row numbers the file shows, for validate.normalise_frame. CSV is read as UTF-8 or GB18030 (what
government systems export); a big CSV file is cut into pieces at record ends (CsvPieces, csv_plan)
that read exactly as the whole file would. A file that cannot be read at all raises FileProblem
(HeaderProblem: its rows read, but its header makes them meaningless)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .clock import CHINA_TZ
from .packed import parquet_column_too_large, xlsx_part_too_large
from .privacy import mask_ids_in_text
from .extracts import EXTRACTS, kind_of_file
from .normalise import clean_value, decode_ooxml_escapes, label, typed_source


csv.field_size_limit(2**31 - 1)  # a huge field is refused by its row, not by the csv module


# column_name of a rejected row whose fault is not one column: the row as a whole (a NUL byte, a
# broken quote) or the file (unreadable, or refused for its header with no column to name)
WHOLE_ROW, WHOLE_FILE = "(整行)", "(整个文件)"


class FileProblem(Exception):
    """One file cannot be read at all (empty, damaged, unknown kind, bad header): the file fails."""


class HeaderProblem(FileProblem):
    """The rows could be read but the header makes them meaningless (a required column missing, a
    column given twice): the file fails and every one of its rows is rejected with this reason."""

    def __init__(self, message: str, column: str | None = None, header_is_data: bool = False):
        super().__init__(message)
        self.column = column
        self.header_is_data = header_is_data  # no cell is a column name: the first row is a record


@dataclass
class RawFrame:
    """A delivered file as text: headers as delivered (trimmed), columns c0..cN (Utf8) plus
    _row_number (1-based data row), and rows refused while reading: (row, column, reason, raw)."""
    headers: list[str]
    data: pl.DataFrame
    bad_rows: list[tuple] = field(default_factory=list)
    # CSV read row by row: the text ended inside a quoted field (a piece of a big file so ending was
    # not cut at a record's end: the file is read whole instead).
    ends_in_quote: bool = False
    notes: list[str] = field(default_factory=list)  # what the night's summary should say of the file
    # A Parquet text may hold a NUL, an XLSX cell its escape _x0000_; a CSV reader refuses its row.
    may_hold_nul: bool = False


def header_text(h) -> str:
    return ("" if h is None else str(h)).replace("\ufeff", "").strip()


def read_raw(path: Path, data: bytes) -> RawFrame:
    if re.search(rb"\S", data) is None:  # only blanks (as data.strip(), without copying the file)
        raise FileProblem("empty file (not even a header row)")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(data)
    if suffix == ".xlsx":
        return _read_xlsx(data, kind_of_file(path))
    if suffix == ".parquet":
        return _read_parquet(data)
    raise FileProblem(f"unsupported format '{suffix}': deliver CSV, XLSX or Parquet")


def _frame(columns: list[list], row_numbers: list[int], n: int) -> pl.DataFrame:
    data = {f"c{i}": pl.Series(f"c{i}", columns[i] if columns else [], dtype=pl.Utf8) for i in range(n)}
    return pl.DataFrame({**data, "_row_number": pl.Series(row_numbers, dtype=pl.Int64)})


# Chinese characters, CJK punctuation and full-width forms: what a Chinese extract's text is made of.
_CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")


_SIGNS_IN_UTF8 = set("¥·°×÷±®©²³µ")  # (not ¬ ¶ ½: what 卢露 and 陆路 in GB18030 read as in UTF-8)


_RUNS_JUDGED = 10_000  # runs of non-ASCII bytes that decide: a GB18030 file has names in every row


def _non_ascii_runs(data: bytes, limit: int) -> list[tuple[int, int]]:
    """(start, end) of the first `limit` runs of non-ASCII bytes (numpy: a 150 MB file of codes
    with a '¥' at its end is looked at in a tenth of a second, not decoded)."""
    import numpy as np

    at = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) >= 0x80)
    if not at.size:
        return []
    cut = np.flatnonzero(np.diff(at) > 1)[:limit]
    starts = np.concatenate(([at[0]], at[cut + 1]))[:limit]
    ends = np.concatenate((at[cut], [at[-1]]))[:limit] + 1
    return list(zip(starts.tolist(), ends.tolist()))


def _utf8_reading(data: bytes) -> str:
    """What bytes that are valid UTF-8 hold: 'utf8' (surely UTF-8: a Chinese character, a letter of a
    Western name such as José, a sign such as '–' or '€'), 'garbled' (only Latin-1 signs, and
    letters not inside an ASCII word, which read as GB18030 are Chinese: 卢露 in
    GB18030 is C2 AC C2 B6, which UTF-8 reads as '¬¶'), or 'plain' (ASCII, or only the signs an
    ASCII extract may carry: '¥1,234'). Only the runs of non-ASCII bytes are looked at (a valid
    UTF-8 character never holds an ASCII byte), so a big file of codes is not decoded whole."""
    if data.isascii():
        return "plain"
    if _CJK.search(data[:65536].decode("utf-8", errors="ignore")):
        return "utf8"  # the usual UTF-8 file says so in its first rows
    odd = False
    for start, end in _non_ascii_runs(data, _RUNS_JUDGED):
        try:
            text = data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            return "plain"  # not UTF-8 at all: read as GB18030 anyway
        if _CJK.search(text) or max(map(ord, text)) > 0x7FF:
            return "utf8"  # Chinese, or a sign of three bytes and more ('–', '’', '€')
        if any(c.isalpha() for c in text) and (data[start - 1:start].isalpha() or data[end:end + 1].isalpha()):
            return "utf8"  # a letter inside an ASCII word: José, Müller (not a sign beside one: A¬¶)
        odd = odd or not set(text) <= _SIGNS_IN_UTF8
    if not odd:
        return "plain"
    try:
        return "garbled" if _CJK.search(data.decode("gb18030")) else "plain"
    except UnicodeDecodeError:
        return "plain"


def _read_csv(data: bytes, utf8_judged: bool = False) -> RawFrame:
    """A CSV file's rows as text. `utf8_judged`: the bytes are UTF-8 by the whole file's reading (a
    big file's piece, csv_plan) — a piece is not judged again on its own: one holding '½' and no
    Chinese read as GB18030 (陆) while the file's other pieces did not."""
    if b"\n" not in data and b"\r" in data:
        # lines ended by CR alone: Excel for Mac's "CSV (Macintosh)" (a CR is one byte in UTF-8 and
        # GB18030 alike, never part of a character)
        data = data.replace(b"\r", b"\n")
    marker = 0
    if data.startswith(b"\xef\xbb\xbf"):
        data, marker = data[3:], 3  # marked UTF-8 (a byte is named as in the file)
    elif not utf8_judged and _utf8_reading(data) == "garbled":  # GB18030 bytes that happen to be valid UTF-8
        data = _gb18030(data).encode("utf-8")
    _refuse_other_text_exports(data)
    # The usual file (UTF-8, no NUL, a visible character so not blank) is read by Polars straight
    # from its bytes: Polars refuses bytes that are not UTF-8, and the whole text is never built
    # as a Python string (decoding, scanning and copying it cost more than Polars' read).
    if b"\x00" not in data and re.search(rb"[!-~]", data):
        try:
            header_line = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="\n")
            headers = [header_text(h) for h in next(csv.reader(header_line))]
        except (UnicodeDecodeError, csv.Error, StopIteration):
            headers = None
        fast = None if headers is None else _read_csv_fast(data, len(headers))
        if fast is not None:
            _refuse_tab_separated(headers)
            return RawFrame(headers, fast)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as not_utf8:
        # No marker and not UTF-8: Chinese government systems export GBK, a subset of GB18030.
        try:
            text = _gb18030(data)
        except UnicodeDecodeError as exc:
            # the byte where the reading that got further broke: a UTF-8 file with one bad byte
            # late in it is named at that byte, not at its first Chinese character
            raise NotText(marker + max(exc.start, not_utf8.start)) from exc
        data = text.encode("utf-8")
    if not text.strip():
        raise FileProblem("empty file (not even a header row)")
    headers = [header_text(h) for h in next(csv.reader(io.StringIO(text)))]
    _refuse_tab_separated(headers)
    fast = None if "\x00" in text else _read_csv_fast(data, len(headers))
    if fast is not None:
        return RawFrame(headers, fast)
    return _read_csv_rows(text, headers)


def _refuse_other_text_exports(data: bytes) -> None:
    """Excel's "Unicode text" export (UTF-16, tab-separated) saved under a .csv name: said so,
    rather than read as GB18030 garble or refused for a missing column."""
    head = data[:400]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) >= 8 and head.count(b"\x00") * 3 > len(head)):
        raise FileProblem("text is UTF-16 (Excel's 'Unicode text' export), not CSV: save it as "
                          "'CSV UTF-8' (or GB18030 CSV) and deliver it again")


def _refuse_tab_separated(headers: list[str]) -> None:
    if len(headers) == 1 and "\t" in headers[0]:
        raise FileProblem("columns are separated by tabs, not commas (a tab-separated text export): "
                          "save it as CSV and deliver it again")


class NotText(FileProblem):
    """A CSV file neither UTF-8 nor GB18030: refused whole (a file in another encoding is not
    guessed at), naming the byte where the reading that got further broke — and its line, which a
    clerk can find (told by `where`, which has the file)."""

    def __init__(self, byte: int):
        super().__init__(f"text is neither UTF-8 nor GB18030 (byte {byte}): re-export as UTF-8")
        self.byte = byte

    def where(self, path: Path) -> str:
        line_ends, crs = 0, 0
        with path.open("rb") as f:
            left = self.byte
            while left > 0 and (block := f.read(min(left, 1 << 24))):
                line_ends, crs = line_ends + block.count(b"\n"), crs + block.count(b"\r")
                left -= len(block)
        lines = 1 + (line_ends or crs)  # (Excel for Mac's CSV ends its lines with CR alone)
        return (f"text is neither UTF-8 nor GB18030 (byte {self.byte}, line {lines} counting the header "
                "as line 1): re-export as UTF-8")


def problem_in(exc: FileProblem, path: Path) -> str:
    return exc.where(path) if isinstance(exc, NotText) else str(exc)


# GB18030-2022 (mandatory since 2023-08) gives 25 two-byte codes the characters that GB18030-2005
# — Python's codec — reads as private-use ones: FE59 is 龴 U+9FB4, not U+E81E (a box on the
# worklist, and another spelling than the same name from an XLSX or Parquet extract). Both
# editions' files mean these characters by these codes: they are read as the 2022 edition says
# (the table is glibc's GB18030-2022 iconv against Python's codec, every two-byte code compared).
_GB18030_2022 = str.maketrans({
    0xE78D: 0xFE10, 0xE78E: 0xFE12, 0xE78F: 0xFE11, 0xE790: 0xFE13, 0xE791: 0xFE14, 0xE792: 0xFE15,
    0xE793: 0xFE16, 0xE794: 0xFE17, 0xE795: 0xFE18, 0xE796: 0xFE19, 0xE7C7: 0x1E3F,
    0xE816: 0x20087, 0xE817: 0x20089, 0xE818: 0x200CC, 0xE81E: 0x9FB4, 0xE826: 0x9FB5, 0xE82B: 0x9FB6,
    0xE82C: 0x9FB7, 0xE831: 0x215D7, 0xE832: 0x9FB8, 0xE83B: 0x2298F, 0xE843: 0x9FB9, 0xE854: 0x9FBA,
    0xE855: 0x241FE, 0xE864: 0x9FBB,
})


_GB18030_2005_PRIVATE = re.compile("[" + "".join(map(chr, _GB18030_2022)) + "]")


def _gb18030(data: bytes) -> str:
    """GB18030 bytes as text, the codes GB18030-2022 re-mapped read as it says (UnicodeDecodeError
    as Python's codec raises it)."""
    text = data.decode("gb18030")
    return text.translate(_GB18030_2022) if _GB18030_2005_PRIVATE.search(text) else text


def _lone_cr(data: bytes) -> bool:
    """Whether a CR stands in `data` other than before an LF (a CR is looked for before CRs are counted)."""
    return b"\r" in data and data.count(b"\r") != data.count(b"\r\n")


def _read_csv_fast(data: bytes, n: int) -> pl.DataFrame | None:
    """Polars' reader, all columns as text; None when the file is ragged, so the row-by-row
    reader can refuse each bad row with its number (Polars would pad a short row with nulls)."""
    try:
        df = pl.read_csv(io.BytesIO(data), infer_schema=False, has_header=True,
                         new_columns=[f"c{i}" for i in range(n)])
    except Exception:
        return None
    if df.width != n:
        return None
    if b"\x1f" in data:
        return None
    if _lone_cr(data):
        # A CR not ending a line with its LF: Polars keeps it in a field here and drops it before a
        # comma there; the row-by-row reader refuses the row when the CR is inside a field not
        # quoted. That reader decides, so a row's outcome does not hang on whether another row of
        # the file (or of its piece) sends it there.
        return None
    df = df.filter(~pl.all_horizontal(pl.all().is_null()))  # blank lines
    quoted = b'"' in data  # (one byte is found faster than two: most extracts quote nothing)
    if quoted and b'""' in data:
        # An empty cell is null, quoted ("") or not, as the row-by-row reader gives it: a row's
        # raw copy must not depend on which reader read its file (or its piece of a big file).
        df = df.with_columns(pl.all().replace("", None))
    try:
        lines = pl.read_csv(io.BytesIO(data), has_header=False, separator="\x1f", quote_char=None,
                            new_columns=["l"], infer_schema=False).get_column("l")
    except Exception:
        return None  # e.g. bytes that are not UTF-8 in a line: the careful reader decides
    # Blank lines are not records (a CR of a CRLF line end changes no count below).
    lines = lines.filter(lines.is_not_null() & lines.str.contains(r"\S"))
    if not quoted:
        # Each line a record. Polars refuses a record of more than n fields — but for the last line
        # when no line end follows it, whose extra empty field it drops: that line is counted on its
        # own. So every line has n fields exactly when their fields add up to n a line: the commas
        # of the bytes counted at once (a blank line has none), not line by line (0.01 s against
        # 0.22 s a 128 MB piece).
        if len(lines) - 1 != df.height or data.count(b",") + len(lines) != n * len(lines) \
                or lines[-1].count(",") + 1 != n:
            return None
        return df.with_row_index("_row_number", offset=1).with_columns(pl.col("_row_number").cast(pl.Int64))
    quotes = lines.str.count_matches('"', literal=True)
    if quotes.sum() % 2:
        return None  # an unterminated quote: a truncated file
    if quotes.sum():
        if (quotes % 2 == 1).any():
            # Lines inside a quoted field (odd quote parity before them) belong to the record above
            # (with an even count of quotes on every line, each line is a record of its own).
            records = pl.DataFrame({"l": lines, "start": ((quotes.cum_sum() - quotes) % 2 == 0)})
            records = records.with_columns(pl.col("start").cum_sum().alias("r")).group_by("r", maintain_order=True)
            lines = records.agg(pl.col("l").str.join("\n")).get_column("l")
        # Each quoted field one mark: a quote left over, or a mark with more than a comma beside it,
        # is a quote that is not around a whole field (李"四, 2022-06-09 "x"24:00). Polars and the
        # row-by-row reader read those differently, so the row's outcome hung on the file's other
        # rows (and a big file's pieces): the row-by-row reader decides.
        lines = lines.str.replace_all(r'"(?:[^"]|"")*"', "\x1f")
        if (lines.str.contains('"', literal=True) | lines.str.contains("[^,]\x1f|\x1f[^,\r]")).any():
            return None
    fields = lines.str.count_matches(",", literal=True) + 1
    if len(fields) - 1 != df.height or (fields != n).any():
        return None
    return df.with_row_index("_row_number", offset=1).with_columns(pl.col("_row_number").cast(pl.Int64))


# No real extract value is longer than this; a longer one is a damaged export (a runaway quote,
# a binary blob pasted into a cell). The row is refused, and its raw copy abridged.
MAX_FIELD_CHARS = 10_000


RAW_FIELD_CHARS = 1_000


def abridge(text: str) -> str:
    if len(text) <= RAW_FIELD_CHARS:
        return text
    return text[:RAW_FIELD_CHARS] + f"…(共{len(text)}个字符，已截断)"


def _physical_lines(text: str) -> list[str]:
    """The file's lines with their line ends, split on LF only (a CR or other control character
    inside a field must not start a new line)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


NUL = "\x00"


NUL_IN_ROW = "该行含NUL空字符(\\0)，文件已损坏: 请重新导出"


def _read_csv_rows(text: str, headers: list[str]) -> RawFrame:
    """Python's csv module, one record at a time (strict quoting): a ragged, damaged or truncated
    record is refused on its own with its data row number, and the good rows still ingest."""
    n = len(headers)
    lines = _physical_lines(text)
    reader = csv.reader(iter(lines), strict=True)
    next(reader)
    cols: list[list] = [[] for _ in range(n)]
    numbers: list[int] = []
    bad: list[tuple] = []
    row_number = 0
    consumed = reader.line_num
    ends_in_quote = False
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            row_number += 1
            ends_in_quote = "end of data" in str(exc)
            raw_text = "".join(lines[consumed:reader.line_num])
            consumed = reader.line_num
            if "new-line character seen in unquoted field" in str(exc):
                # a lone CR inside a field that is not quoted (the Polars reader is not asked: it
                # kept some and dropped others, so the row's fate hung on the file's other rows)
                problem = "字段中有回车符(CR)，而该字段没有用引号括起: 该行已损坏，请更正后重新交付"
            elif consumed >= len(lines) and not text.endswith(("\n", '"')):
                problem = "文件在引号内的字段中途结束: 最后一行不完整(文件被截断)，请重新导出"
            elif "end of data" in str(exc):
                problem = "引号不配对: 从此行起的引号字段直到文件末尾都没有结束(文件被截断或损坏)"
            else:
                problem = f"引号格式错误: 引号字段后应紧跟逗号或换行 ({exc})"
            bad.append((row_number, WHOLE_ROW, problem, json.dumps([abridge(raw_text)], ensure_ascii=False)))
            continue
        consumed = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip() and n > 1):
            continue  # a blank line is not a row
        row_number += 1
        problem, column = None, WHOLE_ROW
        if any("\x00" in f for f in record):
            problem = NUL_IN_ROW
        elif len(record) > n:
            problem = f"字段过多: 该行有{len(record)}个字段，表头只有{n}列 (可能含未加引号的逗号)"
            column = f"第{n + 1}列(表头外)"
        elif len(record) < n:
            problem = f"字段过少: 该行只有{len(record)}个字段，表头有{n}列 (该行不完整或被截断)"
            column = headers[len(record)] or f"第{len(record) + 1}列"  # the first column it lacks
        if problem:
            # an empty cell is null, as in the rows paired with their header
            raw = json.dumps([abridge(f.replace("\x00", "\\0")) if f else None for f in record], ensure_ascii=False)
            bad.append((row_number, column, problem, raw))
            continue
        numbers.append(row_number)
        for i, f in enumerate(record):
            cols[i].append(f or None)  # an empty cell is null, as in Polars' reader
    return RawFrame(headers, _frame(cols, numbers, n), bad, ends_in_quote)


def _cell_text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return decode_ooxml_escapes(v)  # a CR or BEL a program wrote into a cell, as Excel shows it
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d") if v.time() == dt.time(0) else v.isoformat(sep=" ")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, float) and abs(v) >= 1e15 or (isinstance(v, int) and abs(v) >= 10**15
                                                     and len(str(abs(v)).rstrip("0")) <= 15):
        # Excel keeps 15 digits of a number (a 16-digit card number typed in comes out …0): shown
        # as the scientific notation it is, which ID numbers, accounts and codes refuse. A whole
        # number of more significant digits was written by a program, exactly: kept.
        return f"{v:.15G}"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    return str(v)


# Government workbooks often carry a title (表头标题) such as 待遇发放明细表 or a unit/date line above
# the column headers. The header row is the first of the leading rows naming two or more columns.
MAX_TITLE_ROWS = 5


def _names_columns(cells, kind: str) -> bool:
    """Whether a row is a header: two or more of its cells name a column of the extract."""
    spec = EXTRACTS[kind]
    return sum(spec.column_for(header_text(h)) is not None for h in cells) >= 2


def _header_index(leading: list[tuple], kind: str | None) -> int:
    if kind is None:
        return 0
    return next((i for i, row in enumerate(leading) if _names_columns(row, kind)), 0)


def _read_xlsx(data: bytes, kind: str | None = None) -> RawFrame:
    import itertools

    import openpyxl

    if too_large := xlsx_part_too_large(data):
        raise FileProblem(f"a part of the workbook unpacks to far more than it takes ({too_large}): a damaged or "
                          "crafted file — export the extract again")
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise FileProblem(f"unreadable XLSX (damaged or truncated file: {type(exc).__name__})") from exc
    try:
        ws = wb.worksheets[0]
        # Read every row and cell the sheet holds, not the range its <dimension> claims: a writer
        # that leaves it stale (A1:C6 over 11 rows × 4 columns) lost rows and columns without a word
        ws.reset_dimensions()
        rows = ws.iter_rows(values_only=True)
        leading = list(itertools.islice(rows, MAX_TITLE_ROWS + 1))
        at = _header_index(leading, kind)
        header_row = leading[at] if leading else None
        rows = itertools.chain(leading[at + 1:], rows)
        if header_row is None or all(h is None for h in header_row):
            raise FileProblem("empty workbook: the first sheet has no header row")
        headers = [header_text(h) for h in header_row]
        while headers and not headers[-1]:
            headers.pop()
        n = len(headers)
        cols: list[list] = [[] for _ in range(n)]
        numbers: list[int] = []
        bad: list[tuple] = []
        formulas = _formulas_without_value(data, ws, at, headers, kind)
        for sheet_row, values in enumerate(rows, start=1):
            cells = [_cell_text(v) for v in values]
            if all(c is None or not c.strip() for c in cells):
                continue  # blank (often formatted) rows — also one of nothing but formulas without values
            if formulas is not None and (unvalued := formulas(sheet_row)):
                i, formula = unvalued
                # the row paired with its header, as every other row refused for a cell
                paired = dict(zip(raw_names(headers), [c if c is None else abridge(c) for c in (cells + [None] * n)[:n]]))
                bad.append((sheet_row, headers[i], f"公式没有计算结果: '{headers[i]}' 是公式 {abridge(formula)}，"
                            "文件里没有它的值 (程序生成、未经Excel/WPS打开保存): 请打开并保存后重新导出",
                            json.dumps(paired, ensure_ascii=False, separators=(",", ":"))))
                continue
            extra = [c for c in cells[n:] if c is not None and c.strip()]
            if extra:
                last = max(i for i, c in enumerate(cells) if c is not None and c.strip()) + 1
                bad.append((sheet_row, f"第{last}列(表头外)", f"字段过多: 该行第{last}列有值，表头只有{n}列",
                            json.dumps([c if c is None else abridge(c) for c in cells], ensure_ascii=False)))
                continue
            cells = (cells + [None] * n)[:n]
            numbers.append(sheet_row)
            for i, c in enumerate(cells):
                cols[i].append(c)
        notes = _sheets_not_read(wb)
    except FileProblem:
        raise
    except Exception as exc:
        raise FileProblem(f"unreadable XLSX (damaged or truncated file: {type(exc).__name__})") from exc
    finally:
        wb.close()
    return RawFrame(headers, _frame(cols, numbers, n), bad, notes=notes, may_hold_nul=True)


def title_line_hint(raw: RawFrame, kind: str) -> str:
    """Where a file's first line names no column but one of the next few records does: a title
    line (待遇发放明细表) above the header of a CSV, which is read from its first line — said, with
    the record's number only (its cells are a person's data otherwise). '' when none does."""
    records = [(n, list(cells)) for n, *cells in raw.data.head(MAX_TITLE_ROWS)
               .select("_row_number", *[f"c{i}" for i in range(len(raw.headers))]).iter_rows()]
    records += [(n, json.loads(cells)) for n, _, _, cells in raw.bad_rows if n <= MAX_TITLE_ROWS]
    for n, cells in sorted(records, key=lambda r: r[0])[:MAX_TITLE_ROWS]:
        if _names_columns(cells, kind):
            return (f"; record {n + 1} of the file (blank lines not counted) names the columns: the line(s) above it "
                    "look like a title — a CSV is read from its first line (title lines are skipped in XLSX only): "
                    "delete them and deliver the file again")
    return ""


_SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _formulas_without_value(data: bytes, ws, at: int, headers: list[str], kind: str | None):
    """None when the sheet has no formula (the usual case: only its XML is searched), else a
    function of a data row's number (1 = the row under the header) giving (column index, formula)
    of the first cell of an extract column that holds a formula saved without its value — or None.
    Excel and WPS save each formula's value (an empty text as t="str" with an empty <v>, which is
    a value); a workbook written by a program may not, and the cell then reads as empty: a
    required value refused as missing, an optional one (复核人) dropped without a word. Cells are
    found in the sheet's XML (openpyxl reads both as None)."""
    import zipfile
    from xml.etree.ElementTree import iterparse

    from openpyxl.utils.cell import coordinate_from_string, column_index_from_string

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            with z.open(ws._worksheet_path) as xml:
                tail = b""
                while chunk := xml.read(1 << 20):
                    if re.search(rb"<(?:\w+:)?f[ >/]", tail + chunk):
                        break
                    tail = chunk[-16:]
                else:
                    return None
            spec = EXTRACTS[kind] if kind is not None else None
            read = {i for i, h in enumerate(headers) if spec is None or spec.column_for(h) is not None}
            unvalued: dict[int, tuple[int, str]] = {}  # sheet row -> its first such cell
            with z.open(ws._worksheet_path) as xml:
                for _, cell in iterparse(xml):
                    if cell.tag != _SHEET_NS + "c":
                        if cell.tag == _SHEET_NS + "row":
                            cell.clear()
                        continue
                    formula = cell.find(_SHEET_NS + "f")
                    value = cell.find(_SHEET_NS + "v")
                    if (formula is not None and cell.get("t") != "str"
                            and (value is None or not (value.text or "").strip()) and cell.get("r")):
                        letters, row = coordinate_from_string(cell.get("r"))
                        column = column_index_from_string(letters) - 1
                        if column in read:  # (a row's cells come in column order)
                            unvalued.setdefault(row, (column, "=" + (formula.text or "…")))
    except (KeyError, AttributeError, ValueError, zipfile.BadZipFile, SyntaxError):
        return None
    if not unvalued:
        return None
    header_row = at + 1  # the sheet's rows are read from its first

    return lambda data_row: unvalued.get(header_row + data_row)


def _sheets_not_read(wb) -> list[str]:
    """CONTRACT §1 reads an XLSX extract's first sheet. Said in the night's summary, so that nothing
    goes unread without a word: later sheets holding data (a long export split over sheets), and a
    first sheet that is hidden (the one a clerk sees is another)."""
    import itertools

    def holds_data(ws) -> bool:
        ws.reset_dimensions()  # (as the first sheet is read: not by a stale <dimension>)
        rows = itertools.islice(ws.iter_rows(values_only=True), MAX_TITLE_ROWS + 2)
        return sum(any(v is not None and str(v).strip() for v in row) for row in rows) >= 2

    def looks_full(ws) -> bool:
        try:
            return holds_data(ws)
        except Exception:  # noqa: BLE001 — a damaged sheet that is not read must not fail the file
            return True

    notes = []
    first = wb.worksheets[0]
    if getattr(first, "sheet_state", "visible") != "visible":
        notes.append(f"the first sheet '{first.title}' is hidden; it is the one read (CONTRACT: the first sheet)")
    later = [ws.title for ws in wb.worksheets[1:] if looks_full(ws)]
    if later:
        notes.append(f"only the first sheet is read (CONTRACT); sheet(s) {', '.join(repr(t) for t in later)} "
                     "also hold rows and were not read: deliver them as files of their own")
    return notes


def unreadable_parquet(exc: Exception) -> str:
    return f"unreadable Parquet (damaged or truncated file: {type(exc).__name__})"


def refuse_parquet_too_large(source) -> None:
    if too_large := parquet_column_too_large(source):
        raise FileProblem(f"a column of the file unpacks to far more than it takes ({too_large}): a damaged or "
                          "crafted file — export the extract again")


def _read_parquet(data: bytes) -> RawFrame:
    refuse_parquet_too_large(data)
    try:
        df = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise FileProblem(unreadable_parquet(exc)) from exc
    return RawFrame([header_text(h) for h in df.columns], parquet_columns(df, 0), may_hold_nul=True)


def _float_text(e: pl.Expr, single: bool = False) -> pl.Expr:
    """A float column's text as an XLSX number cell reads (_cell_text): a whole number without
    '.0' (pandas turns an integer column with one empty cell into floats: 110.0, 202611.0, a
    15-digit ID), 16 or more digits in scientific notation (a float keeps about 15: refused for
    IDs, accounts and codes; a Float32, `single`, keeps about 7 digits: from 2^24 on), NaN empty;
    any other as its own shortest text (a Float32 0.1 is '0.1'; a Float64 0.30000000000000004 is
    read as a money amount with float noise; inf is refused as no amount)."""
    own = e.fill_nan(None)
    x = own.cast(pl.Float64)
    finite = x.is_finite()
    big = finite & (x.abs() >= (2 ** 24 if single else 1e15))  # beyond the digits the float keeps
    exponent = pl.when(big).then(x.abs().log10().floor())
    # log10 of 1e15 comes out 14.99…: a mantissa of 10 moves up a power
    exponent = pl.when(x.abs() / pl.lit(10.0).pow(exponent) >= 10).then(exponent + 1).otherwise(exponent)
    mantissa = (x / pl.lit(10.0).pow(exponent)).round(14)
    scientific = pl.concat_str([mantissa.cast(pl.Utf8), pl.lit("E+"),
                                exponent.cast(pl.Int64, strict=False).cast(pl.Utf8).str.zfill(2)])  # E+08, as Excel
    whole = finite & ~big & (x.round(0) == x)
    return (pl.when(big).then(scientific)
            .when(whole).then(x.cast(pl.Int64, strict=False).cast(pl.Utf8))
            .otherwise(own.cast(pl.Utf8)))


def parquet_columns(df: pl.DataFrame, offset: int) -> pl.DataFrame:
    """Parquet rows as c0..cN + _row_number (offset + 1, ...: the file's own data row numbers).
    A column already in a stored type (DATE, TIMESTAMP, DECIMAL) is kept so: it is checked, not
    re-parsed; it is cast to its text only for the rows that need a reason or a raw copy."""
    def column(c: str) -> pl.Expr:
        e, dtype = pl.col(c), df.schema[c]
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            # An instant with its zone (UTC, +08:00): the date and time it was in China, as every
            # other date of the extracts is — 2026-09-14T16:00Z was paid on 2026-09-15.
            e, dtype = e.dt.convert_time_zone(CHINA_TZ).dt.replace_time_zone(None), pl.Datetime(dtype.time_unit)
        if dtype in (pl.Float32, pl.Float64):
            return _float_text(e, single=dtype == pl.Float32)
        return e if typed_source(dtype) else e.cast(pl.Utf8)

    return df.select(
        [column(c).alias(f"c{i}") for i, c in enumerate(df.columns)]
    ).with_row_index("_row_number", offset=offset + 1).with_columns(pl.col("_row_number").cast(pl.Int64))


# a CSV file of more bytes than this is read in pieces of about as many (ingest writes each as it comes)
CSV_CHUNK_BYTES = 128 * 2**20


def is_big_csv(path: Path, kind: str | None) -> bool:
    """Whether a file is a CSV extract of more than CSV_CHUNK_BYTES bytes (read in pieces)."""
    if kind is None or path.suffix.lower() != ".csv":
        return False
    try:
        return path.stat().st_size > CSV_CHUNK_BYTES
    except OSError:
        return False  # read whole: the error is reported as always


_BOM = b"\xef\xbb\xbf"


class CsvPieces:
    """A CSV file's bytes in pieces of about `size` bytes, read from the open file (the file is
    never held whole). Each piece ends at a line end outside any quoted field: an even count of '"'
    before it in the piece, or, where no line end has that, one the reader itself ends a record at
    (the first pass checks each piece with the reader and cuts it again, give_back, or lets it run
    on to a record's end, run_on, where they disagree). The last runs to the end of the file. The UTF-8 BOM is left out of the first. After read(): `start`, where
    the piece begins in the file's bytes after the BOM, and `last`; `lengths`: the pieces' lengths
    so far, to read the same pieces again (`replay`)."""

    def __init__(self, f, size: int, replay: list[int] | None = None):
        self.f, self.size = f, size
        head = f.read(len(_BOM))
        self.rest = b"" if head == _BOM else head
        self.start = self.end = 0
        self.last = False
        self.lengths: list[int] = []
        self.replay = None if replay is None else list(replay)

    def read(self) -> bytes | None:
        if self.replay is not None:
            piece = self._replayed()
        else:
            piece = self._cut()
        if not piece:
            return None
        self.start, self.end = self.end, self.end + len(piece)
        self.lengths.append(len(piece))
        return piece

    def give_back(self, tail: bytes) -> None:
        """The last piece read ends `tail` earlier: the next one starts with it."""
        self.rest = tail + self.rest
        self.end -= len(tail)
        self.lengths[-1] -= len(tail)
        self.last = False

    def extend(self, piece: bytes) -> bytes:
        """The last piece read, `piece`, and up to `size` bytes after it (a record runs on past it)."""
        block = self.f.read(self.size)
        more, self.rest = self.rest + block, b""
        self.last = not block
        self.end += len(more)
        self.lengths[-1] += len(more)
        return piece + more

    def run_on(self, piece: bytes) -> bytes:
        """The last piece read, `piece`, in which the reader ends no record, run on until it ends
        one and cut at the last such end (what follows goes back), or run to the end of the file:
        a piece never ends inside a record, whose rest would be read as rows of their own."""
        while True:
            piece = self.extend(piece)
            if self.last:
                return piece
            if cut := _record_end_by_reader(piece):
                self.give_back(piece[cut:])
                return piece[:cut]

    def _replayed(self) -> bytes | None:
        if not self.replay:
            return None
        n = self.replay.pop(0)
        piece, self.rest = self.rest[:n], self.rest[n:]
        piece += self.f.read(n - len(piece))
        self.last = not self.replay
        return piece

    def _cut(self) -> bytes:
        parts, quotes = [self.rest], _quotes(self.rest)
        self.rest = b""
        asked_reader = False
        while block := self.f.read(self.size):
            cut = _line_end_outside_quotes(block, quotes)
            if cut is not None:
                parts.append(block[:cut])
                self.rest = block[cut:]
                break
            parts.append(block)  # no line end outside quotes yet: the piece goes on
            quotes += _quotes(block)
            if not asked_reader:
                # Most likely a stray '"' inside an unquoted field has turned the count: ask the
                # reader itself where its records end (once a piece: a quote left open to the end
                # of the file has no record end, and the piece then runs to the end).
                asked_reader = True
                parts = [b"".join(parts)]
                cut = _record_end_by_reader(parts[0])
                if cut:
                    self.rest = parts[0][cut:]
                    parts[0] = parts[0][:cut]
                    break
        else:
            self.last = True
        return b"".join(parts)


def _quotes(data: bytes) -> int:
    """The count of '"' in `data` (most extracts quote nothing: one byte is looked for faster than
    it is counted)."""
    return data.count(b'"') if b'"' in data else 0


def _line_end_outside_quotes(block: bytes, quotes_before: int) -> int | None:
    """Just after the last LF of `block` with an even count of '"' before it (counting
    `quotes_before` of the piece so far), or None."""
    i, quotes = len(block), quotes_before + _quotes(block)
    while (j := block.rfind(b"\n", 0, i)) >= 0:
        quotes -= block.count(b'"', j + 1, i)
        if quotes % 2 == 0:
            return j + 1
        i = j
    return None


def _record_end_by_reader(data: bytes) -> int | None:
    """Just after the last line end of `data` at which the row-by-row reader (_read_csv_rows: the
    csv module, strict, line by line) is between records, or None: exact where the count of quotes
    misleads, and slower (Python a line). The bytes are read as Latin-1, one character a byte: the
    reader heeds only '"', ',', CR and LF, never part of a character in UTF-8 or GB18030."""
    lines = _physical_lines(data.decode("latin-1"))
    complete = len(lines) if data.endswith(b"\n") else len(lines) - 1
    reader = csv.reader(iter(lines), strict=True)
    ends_after = 0  # lines
    while True:
        try:
            next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "end of data" in str(exc):
                break  # inside a quoted field at the end: not between records
        if reader.line_num > complete:
            break
        ends_after = reader.line_num
    return sum(map(len, lines[:ends_after])) or None


class ReadWhole(Exception):
    """A big CSV file the pieces cannot give exactly as the whole-file reader does: read it whole."""


class _NotUtf8(Exception):
    """A piece of a big CSV file is not UTF-8: the whole file is read as GB18030."""


def _is_utf8(piece: bytes) -> bool:
    """Whether the bytes are valid UTF-8, as Python's strict codec judges them (no surrogates, no
    overlong forms), checked by Arrow's validator on the bytes in place: a tenth of the time of
    decoding them into a string that is thrown away (0.04 s against 0.37 s a 128 MB piece)."""
    if piece.isascii():
        return True
    import pyarrow as pa

    offsets = pa.array([0, len(piece)], pa.int64()).buffers()[1]
    as_binary = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(piece)])
    try:
        as_binary.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


@dataclass
class _CsvPlan:
    encoding: str
    header: bytes  # the header record's bytes, UTF-8 (put before each later piece)
    headers: list[str]
    lengths: list[int] = field(default_factory=list)  # the pieces' lengths, as the first pass cut them


def in_utf8(piece: bytes, start: int, encoding: str) -> bytes:
    """A piece in UTF-8: a GB18030 file is converted piece by piece (a piece ends at an LF, never
    inside a character in either encoding); the byte named when it is neither is the file's."""
    if encoding == "utf-8":
        return piece
    try:
        return (_gb18030(piece) if encoding == "gb18030" else piece.decode(encoding)).encode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotText(start + exc.start) from exc


def csv_piece_frame(piece: bytes, start: int, plan: _CsvPlan) -> RawFrame:
    """One piece (UTF-8) read by the whole-file reader (_read_csv): the first as it is, a later one
    after the file's header record. Its rows are numbered from 1."""
    return _read_csv(piece if start == 0 else plan.header + piece, utf8_judged=True)


def csv_plan(path: Path, kind: str) -> _CsvPlan:
    """The first pass over a big CSV file's pieces: its encoding (UTF-8 unless a piece is not, then
    GB18030 for every piece), its header record, where its pieces end (each at a record's end by the
    reader itself), and the checks that send it to the whole-file reader (ReadWhole): a header that
    fails the file, or a raw key (as trimmed) given twice, so that the repeat is reported exactly.
    Raises FileProblem for a file that is neither UTF-8 nor GB18030."""
    try:
        return _csv_key_pass(path, kind, "utf-8")
    except _NotUtf8:
        return _csv_key_pass(path, kind, "gb18030")


def _csv_key_pass(path: Path, kind: str, encoding: str) -> _CsvPlan:
    spec = EXTRACTS[kind]
    plan: _CsvPlan | None = None
    hashes: list[pl.Series] = []
    reading = "plain"
    with path.open("rb") as f:
        pieces = CsvPieces(f, CSV_CHUNK_BYTES)
        while (piece := pieces.read()) is not None:
            if plan is None:
                if encoding == "utf-8" and not _is_utf8(piece):
                    raise _NotUtf8
                plan = _csv_header(in_utf8(piece, 0, encoding), encoding)
                try:
                    positions = map_headers(kind, plan.headers)
                except HeaderProblem as exc:
                    raise ReadWhole from exc  # every row is rejected with the header's problem
                # an optional key part the file lacks (contributions without 单位编号) is empty in every
                # row: no part of telling rows apart (as for a big Parquet file)
                key_cols = [k for k in spec.key if k in positions]
                keys = [clean_value(pl.col(f"c{positions[k]}"), spec.column(k)).alias(k) for k in key_cols]
                # A row without a required key part is refused anyway: never a repeat to report.
                keyed = pl.all_horizontal([pl.col(k).is_not_null() for k in key_cols if spec.column(k).required]
                                          + [pl.lit(True)])
            # (_read_csv reads a piece of GB18030 bytes that happen to be valid UTF-8 as GB18030)
            piece_reading = _utf8_reading(piece) if encoding == "utf-8" else "plain"
            light = None if piece_reading == "garbled" else \
                _piece_keys(piece, pieces.start, plan, [positions[k] for k in key_cols])
            if light is not None:
                if piece_reading != "plain":
                    reading = piece_reading
                hashes.append(light.select(keys).filter(keyed).select(pl.struct(key_cols).hash()).to_series())
                continue
            raw = _csv_piece_read(piece, pieces.start, plan)
            while raw.ends_in_quote and not pieces.last:
                # The reader ends this piece inside a quoted field (a stray '"' misled the count
                # of quotes): cut it where the reader's last record ends, or, if no record ends
                # in it, let it run on to one; and read it again.
                cut = _record_end_by_reader(piece)
                if cut:
                    pieces.give_back(piece[cut:])
                    piece = piece[:cut]
                else:
                    piece = pieces.run_on(piece)
                raw = _csv_piece_read(piece, pieces.start, plan)
            if encoding == "utf-8" and reading != "utf8":
                # the file's encoding is the whole file's, as _read_csv judges it (_utf8_reading)
                piece_reading = _utf8_reading(piece)
                reading = piece_reading if piece_reading != "plain" else reading
            del piece
            if raw.headers != plan.headers:
                raise ReadWhole
            hashes.append(raw.data.select(keys).filter(keyed).select(pl.struct(key_cols).hash()).to_series())
            del raw
    if encoding == "utf-8" and reading == "garbled":
        raise _NotUtf8  # GB18030 bytes that happen to be valid UTF-8, and no Chinese read as UTF-8
    if plan is None or pl.concat(hashes).is_duplicated().any():
        raise ReadWhole
    plan.lengths = pieces.lengths
    return plan


def _piece_keys(piece: bytes, start: int, plan: _CsvPlan, key_positions: list[int]) -> pl.DataFrame | None:
    """The key columns (c<position>) of a piece that quotes nothing and ends its lines with LF or
    CRLF only — the usual extract — read alone (a third of the whole read of the piece). Its records
    are the ones the fast reader (_read_csv_fast) makes; a ragged or blank line adds a key the whole
    read would refuse, which can only send the file to the whole-file path (a repeat seen), never
    hide one. None where the piece needs the whole read (a quote, a lone CR, not UTF-8)."""
    # (these bytes are never part of a character in UTF-8 or GB18030: looked for before decoding)
    if b'"' in piece or b"\x00" in piece or b"\x1f" in piece or _lone_cr(piece):
        return None
    if plan.encoding == "utf-8" and not _is_utf8(piece):
        return None
    piece = in_utf8(piece, start, plan.encoding)
    try:
        keys = pl.read_csv(io.BytesIO(piece if start == 0 else plan.header + piece), has_header=True,
                           infer_schema=False, columns=key_positions)
    except Exception:  # noqa: BLE001 — the whole read decides (and reports) what is wrong
        return None
    keys.columns = [f"c{i}" for i in key_positions]
    return keys


def _csv_piece_read(piece: bytes, start: int, plan: _CsvPlan) -> RawFrame:
    """A piece read in the first pass: a problem of the reader sends the file to the whole-file
    path, which reports it as always (a file neither UTF-8 nor GB18030 fails here)."""
    if plan.encoding == "utf-8" and not _is_utf8(piece):
        raise _NotUtf8
    piece = in_utf8(piece, start, plan.encoding)
    try:
        return csv_piece_frame(piece, start, plan)
    except Exception as exc:  # e.g. a damaged header record
        raise ReadWhole from exc


def _csv_header(first: bytes, encoding: str) -> _CsvPlan:
    """The header record of a big CSV file (its first line, or lines while a quote is open) from its
    first piece in UTF-8, which the CSV reader must read as exactly one record."""
    i = 0
    while (j := first.find(b"\n", i)) >= 0 and first.count(b'"', 0, j) % 2:
        i = j + 1
    if j < 0:
        raise ReadWhole
    header = first[:j + 1]
    try:
        records = list(csv.reader(io.StringIO(header.decode("utf-8")), strict=True))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ReadWhole from exc
    if len(records) != 1 or not records[0]:
        raise ReadWhole
    return _CsvPlan(encoding, header, [header_text(h) for h in records[0]])


def raw_names(headers: list[str]) -> list[str]:
    """JSON keys for the raw copy: the delivered headers, made unique (a repeated or blank header
    still keeps its own value)."""
    names: list[str] = []
    taken: set[str] = set()  # (a list's `in` made a file of 20,000 columns take minutes)
    for i, h in enumerate(headers):
        name = h or f"column{i + 1}"
        while name in taken:  # (a delivered header may itself read `x#4`)
            name = f"{name}#{i + 1}"
        names.append(name)
        taken.add(name)
    return names


# A character a clerk cannot see: a format or control character, a space other than the plain and
# the ideographic one, a variation selector. A reason quoting the refused value showed
# '正常' for 正常 followed by U+E0100, and nothing to correct; the stored raw row keeps the text.
UNSEEN_IN_A_REASON = r"[\p{Cf}\p{Cc}\x{00A0}\x{2000}-\x{200A}\x{202F}\x{205F}\x{FE00}-\x{FE0F}\x{E0100}-\x{E01EF}]"


def shown_in_a_reason(reason: str) -> str:
    """The reason with each character no one sees written as <U+XXXX>."""
    return "".join(f"<U+{ord(c):04X}>" if _unseen(c) else c for c in reason)


def _unseen(c: str) -> bool:
    code = ord(c)
    return (unicodedata.category(c) in ("Cf", "Cc") or code == 0xA0 or 0x2000 <= code <= 0x200A
            or code in (0x202F, 0x205F) or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF)


def map_headers(kind: str, headers: list[str]) -> dict[str, int]:
    """Canonical column -> position. A column given twice (same header, or canonical name and
    Chinese alias) or a required column missing fails the file; a repeated header that is not an
    extract column is harmless (it is kept in the raw copy only)."""
    spec = EXTRACTS[kind]
    positions: dict[str, int] = {}
    for i, h in enumerate(headers):
        name = spec.column_for(h)
        if name is None:
            continue  # extra columns are kept in raw only
        if name in positions:
            j = positions[name]
            first = headers[j]
            what = f"'{h}'" if first == h else f"'{first}' and '{h}'"
            raise HeaderProblem(f"duplicated header: {what} (columns {j + 1} and {i + 1}) are both "
                                f"{label(spec.column(name))}; cannot tell which holds the value", name)
        positions[name] = i
    missing = [c for c in spec.columns if c.required and c.name not in positions]
    if missing and not positions:
        # An export without its header line: the "header" is a person's record (name, ID number,
        # account), so none of it is echoed into a message that reaches the console.
        raise HeaderProblem(f"no header row: none of the first row's {len(headers)} cell(s) is a {kind} column "
                            f"name (a file exported without its header line, or its columns named otherwise)",
                            missing[0].name, header_is_data=True)
    if missing:
        # The cells that are column names are shown, and so are the others — the missing column is
        # most likely among them under another name (实发金额 for 发放金额: it read "and 1 other
        # column(s)", a data-drift probe) — unless one holds numbers (a record in the header row:
        # then none of them, as unread_columns_note does)
        known = [headers[i] for i in sorted(positions.values())]
        unknown = [h for i, h in enumerate(headers) if i not in positions.values() and h]
        others = len(headers) - len(known)
        shown = ", ".join(known) + (f" and {others} other column(s)" if others else "")
        unread = ""  # first: the console cuts a reason at 120 characters
        if unknown and not any(_DATA_IN_HEADER.search(h) for h in unknown):
            unread = "not read: " + ", ".join(h if len(h) <= 40 else h[:39] + "…" for h in unknown[:10]) + (
                f" and {len(unknown) - 10} more" if len(unknown) > 10 else "") + "; "
        raise HeaderProblem(f"missing required column {', '.join(label(c) for c in missing)} "
                            f"({unread}header has: {abridge(shown)})", missing[0].name)
    return positions


# Six digits in a row (ASCII or full-width) are no part of a column name: a date, an ID number,
# an account — the header row holds data.
_DATA_IN_HEADER = re.compile(r"[0-9０-９]{6}")


def unread_columns_note(kind: str, headers: list[str]) -> list[str]:
    """A note for the night's summary naming the delivered columns that are no column of the
    extract: one holding a column under another name (复核人员 for 复核人) is otherwise lost without
    a word — an empty reviewer, say, makes every large payment a suspect."""
    spec = EXTRACTS[kind]
    unread = [h for h in headers if h and spec.column_for(h) is None]
    if not unread:
        return []
    if any(_DATA_IN_HEADER.search(h) for h in unread):
        # a record typed or pasted into the header row (an ID number, an account beside a name):
        # none of its cells is repeated, a name is no more a column name than the number beside it
        return [f"{len(unread)} column(s) not read, no {kind} column of that name; their headers hold numbers "
                "(a record in the header row?) and are not shown: see the file's header row"]
    named = ", ".join(abridge(h) for h in unread[:10]) + (f" and {len(unread) - 10} more" if len(unread) > 10 else "")
    return [mask_ids_in_text(f"column(s) not read, no {kind} column of that name: {named} (the contract's "
                             f"names and Chinese aliases are read; rename a header that holds one of them)")]
