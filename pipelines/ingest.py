"""Ingest (数据接入): every extract file of the inbox into the store, exactly, or into rejected_rows.

One delivery (a sub-folder of the inbox, ingested in name order) is one transaction: a crash
half-way leaves the store as it was. Each file is read with every column as text, normalised and
validated with vectorised Polars expressions (pipelines/normalise.py), gated by its pandera row
contract (pipelines/contracts.py), then written delete-then-insert by natural key so that a
re-delivered row replaces the earlier one. A file seen before (same sha256) is skipped.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import io
import json
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl
from polars.exceptions import PanicException

from . import contracts
from .clock import CHINA_TZ, china_now, china_today
from .packed import parquet_column_too_large, xlsx_part_too_large
from .privacy import mask_ids_in_text
from .extracts import DATED_DELIVERY, EXTRACTS, FILE_SUFFIXES, kind_of_file
from .normalise import (FORMAT_CHARACTERS, TEXT_MARK, clean_text, clean_value, column_exprs, decode_ooxml_escapes,
                        fast_exprs, label, repeats, typed_fast_exprs, typed_source)
from .store import LINEAGE_COLUMNS, ensure_schema, path_text, scalar, transaction


csv.field_size_limit(2**31 - 1)  # a huge field is refused by its row, not by the csv module


class IngestError(Exception):
    """Ingest could not run at all (missing inbox, a delivery that could not be written)."""


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
class FileResult:
    path: Path
    kind: str | None
    delivery: str
    status: str  # 'ingested' | 'skipped' | 'failed'
    rows_total: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_replaced: int = 0
    message: str = ""
    file_hash: str | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    # A skipped file's content came before under another name or in another delivery (source_file)
    duplicate_of: str | None = None
    not_extract: bool = False  # skipped as no extract at all (a readme beside the exports)
    notes: list[str] = field(default_factory=list)  # said in the night's summary (XLSX sheets not read)
    # A failed file's bytes failed before: where their rejected rows are (also the end of message)
    already_recorded: str | None = None


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    deliveries: list[str] = field(default_factory=list)
    dated_ahead: list[str] = field(default_factory=list)  # not read: named for a day that has not come

    def _sum(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    @property
    def rows_total(self) -> int:
        return self._sum("rows_total")

    @property
    def rows_accepted(self) -> int:
        return self._sum("rows_accepted")

    @property
    def rows_rejected(self) -> int:
        return self._sum("rows_rejected")

    @property
    def rows_replaced(self) -> int:
        return self._sum("rows_replaced")

    def with_status(self, status: str) -> list[FileResult]:
        return [f for f in self.files if f.status == status]

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        """Rejected rows counted by the kind of problem (the reason without its values)."""
        out: dict[str, int] = {}
        for f in self.files:
            for reason, n in f.rejected_by_reason.items():
                out[reason] = out.get(reason, 0) + n
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def summary(self) -> str:
        return (
            f"{len(self.with_status('ingested'))} files ingested, {len(self.with_status('skipped'))} skipped, "
            f"{len(self.with_status('failed'))} failed; rows: {self.rows_accepted} accepted "
            f"({self.rows_replaced} replacing earlier rows), {self.rows_rejected} rejected"
        )


def reason_category(reason: str) -> str:
    """'发放金额(amount) 超过2位小数: '12.345'' -> '发放金额(amount) 超过2位小数' (values and numbers out)."""
    head = reason.split(";")[0].split(":")[0].strip()
    return re.sub(r"\d{3,}", "N", re.sub(r"'[^']*'", "''", head))


# ------------------------------------------------------------------------------- reading (every column as text)

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


def _header(h) -> str:
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
    big file's piece, _csv_plan) — a piece is not judged again on its own: one holding '½' and no
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
            headers = [_header(h) for h in next(csv.reader(header_line))]
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
    headers = [_header(h) for h in next(csv.reader(io.StringIO(text)))]
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


def _problem_in(exc: FileProblem, path: Path) -> str:
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


def _abridge(text: str) -> str:
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
            bad.append((row_number, WHOLE_ROW, problem, json.dumps([_abridge(raw_text)], ensure_ascii=False)))
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
            raw = json.dumps([_abridge(f.replace("\x00", "\\0")) if f else None for f in record], ensure_ascii=False)
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
    return sum(spec.column_for(_header(h)) is not None for h in cells) >= 2


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
        headers = [_header(h) for h in header_row]
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
                paired = dict(zip(_raw_names(headers), [c if c is None else _abridge(c) for c in (cells + [None] * n)[:n]]))
                bad.append((sheet_row, headers[i], f"公式没有计算结果: '{headers[i]}' 是公式 {_abridge(formula)}，"
                            "文件里没有它的值 (程序生成、未经Excel/WPS打开保存): 请打开并保存后重新导出",
                            json.dumps(paired, ensure_ascii=False, separators=(",", ":"))))
                continue
            extra = [c for c in cells[n:] if c is not None and c.strip()]
            if extra:
                last = max(i for i, c in enumerate(cells) if c is not None and c.strip()) + 1
                bad.append((sheet_row, f"第{last}列(表头外)", f"字段过多: 该行第{last}列有值，表头只有{n}列",
                            json.dumps([c if c is None else _abridge(c) for c in cells], ensure_ascii=False)))
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


def _title_line_hint(raw: RawFrame, kind: str) -> str:
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


def _unreadable_parquet(exc: Exception) -> str:
    return f"unreadable Parquet (damaged or truncated file: {type(exc).__name__})"


def _parquet_too_large(source) -> None:
    if too_large := parquet_column_too_large(source):
        raise FileProblem(f"a column of the file unpacks to far more than it takes ({too_large}): a damaged or "
                          "crafted file — export the extract again")


def _read_parquet(data: bytes) -> RawFrame:
    _parquet_too_large(data)
    try:
        df = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise FileProblem(_unreadable_parquet(exc)) from exc
    return RawFrame([_header(h) for h in df.columns], _parquet_columns(df, 0), may_hold_nul=True)


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


def _parquet_columns(df: pl.DataFrame, offset: int) -> pl.DataFrame:
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


# ------------------------------------------------------------------------------- the inbox

_IGNORED_PREFIXES = (".", "~$")  # hidden files, Office lock files of an open workbook


def list_deliveries(inbox: Path) -> list[tuple[str, list[Path]]]:
    """[(delivery name, files)] in the order they are ingested. Loose files in the inbox itself form
    one delivery named after the inbox, ingested before the sub-folders. An entry the machine
    cannot read — a folder without permission, a link to a disk no longer mounted — raises
    IngestError naming it: passed over, its delivery was missing from a night that "completed"."""
    entries = [p for p in _listed(inbox) if not p.name.startswith(_IGNORED_PREFIXES)]
    for p in entries:
        _readable(p)
    out = []
    loose = sorted(_within(p, inbox) for p in entries if p.is_file())
    if loose:
        out.append((path_text(inbox.name or str(inbox)), loose))
    for folder in sorted((d for d in entries if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name):
        files = []
        for root, dirs, names in os.walk(folder, onerror=_unreadable, followlinks=True):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for d in dirs:
                # a link back to a folder it is in (`loop -> ..`) would be walked until the path grew
                # too long, then named as a link to a disk not mounted
                target = (Path(root) / d).resolve()
                if target == Path(root).resolve() or target in Path(root).resolve().parents:
                    raise IngestError(f"inbox entry {mask_ids_in_text(path_text(Path(root) / d))} is a link to "
                                      f"{mask_ids_in_text(path_text(target))}, a folder it is in (a loop): "
                                      "remove the link, then run again")
            for name in names:
                p = Path(root) / name
                if not name.startswith(_IGNORED_PREFIXES) and _readable(p).is_file():
                    files.append(_within(p, folder, Path(root)))
        if files:
            out.append((path_text(folder.name), sorted(files, key=lambda p: p.relative_to(folder).as_posix())))
    return out


def _listed(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as exc:
        _unreadable(exc)


def _within(file: Path, folder: Path, where: Path | None = None) -> Path:
    """`file`, a file of the delivery `folder` (found in its sub-folder `where`) — or IngestError
    where it is a link to a file outside both: a link `deaths_a.csv -> /etc/shadow` put the file's
    every line into rejected_rows (a security probe; whoever may drop files in the inbox could have
    fundwatch read any file the server lets it). A delivery folder, or a sub-folder of one, may itself
    be a link (to a disk the deliveries land on), and a file link to another beside it is read."""
    if file.is_symlink():
        target = file.resolve()
        homes = {folder.resolve(), (where or folder).resolve()}
        if not any(home in target.parents for home in homes):
            raise IngestError(f"inbox entry {mask_ids_in_text(path_text(file))} is a link to "
                              f"{mask_ids_in_text(path_text(target))}, outside its delivery folder: fundwatch "
                              "reads no file from outside the inbox through a link — copy the file into the "
                              "folder (or link the whole delivery folder), then run again")
    return file


def _readable(p: Path) -> Path:
    if p.is_symlink() and not p.exists():
        raise IngestError(f"inbox entry {mask_ids_in_text(path_text(p))} is a link to "
                          f"{mask_ids_in_text(path_text(os.readlink(p)))}, "
                          "which is not there (a disk not mounted?): mount it or remove the link, then run again")
    if not p.is_file() and not p.is_dir():
        # a named pipe, socket or device: reading one may never end, passing it over lost without
        # a word what a writer was piping in as an extract
        raise IngestError(f"inbox entry {mask_ids_in_text(path_text(p))} is {_kind_of_entry(p)}, not a file: "
                          "fundwatch reads only files — put the extract there as a file (or remove it), then run again")
    return p


def _kind_of_entry(p: Path) -> str:
    mode = p.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "neither a file nor a folder"


def _unreadable(exc: OSError) -> None:
    raise IngestError(f"inbox folder {mask_ids_in_text(path_text(exc.filename))} cannot be read ({exc.strerror or exc}): "
                      "its files would be passed over — fix its permissions, then run again") from exc


def ingest_inbox(con: duckdb.DuckDBPyConnection, inbox: Path, run_id: str | None = None,
                 on_file: Callable[[FileResult], None] | None = None, as_of: dt.date | None = None) -> IngestReport:
    """Ingest every new file under `inbox`; one transaction per delivery, in delivery-name order —
    but a delivery named for a day after today (and after the as-of) is left unread (`dated_ahead`).

    Values are judged against today (a period more than a year ahead is a typo) — or against the
    night's as-of when it is later: a night run for a later day (generated data, a rehearsal)
    accepts what that day's extracts hold."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise IngestError(f"inbox folder not found: {inbox} (check --inbox)")
    ensure_schema(con)
    report = IngestReport()
    today = max(china_today(), as_of) if as_of is not None else china_today()
    for delivery, files in list_deliveries(inbox):
        if _named_for_a_day_after(delivery, today):
            # A folder named for a day that has not come (2027-11-21 for 2026-11-21) would outrank
            # every later delivery of its keys — a status or death sent the next week set aside as
            # "older" for a year. Left in the inbox, unread and said, until it is renamed.
            report.dated_ahead.append(delivery)
            continue
        try:
            with transaction(con):
                for path in files:
                    result = _ingest_file(con, inbox, delivery, path, run_id, today)
                    report.files.append(result)
                    if on_file is not None:
                        on_file(result)
        except duckdb.Error as exc:
            cause = exc
            # "Current transaction is aborted" follows the error that aborted it: that one is told
            while isinstance(cause, duckdb.TransactionException) and isinstance(cause.__context__, duckdb.Error):
                cause = cause.__context__
            first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
            raise IngestError(f"delivery {delivery} could not be written and was rolled back: "
                              f"{mask_ids_in_text(first)}") from exc
        report.deliveries.append(delivery)
    return report


# ------------------------------------------------------------------------------- one file

# A big file is read, normalised and written one chunk at a time, inside the same delivery
# transaction: peak memory follows the chunk, not the file (a whole 2.9-million-row payments file
# took about 1.1 KB a row). A Parquet file of more rows than CHUNK_ROWS goes by chunks of that many
# rows; a CSV file of more bytes than CSV_CHUNK_BYTES by pieces of about that many bytes, each cut
# at a line end outside any quoted field. XLSX files are read whole (a sheet holds at most
# 1,048,576 rows).
CHUNK_ROWS = 500_000
CSV_CHUNK_BYTES = 128 * 2**20


def _ingest_file(con, inbox: Path, delivery: str, path: Path, run_id: str | None, today: dt.date) -> FileResult:
    source = path_text(path.relative_to(inbox).as_posix())
    kind = kind_of_file(path)
    result = FileResult(path=path, kind=kind, delivery=delivery, status="failed")
    if kind is None and path.suffix.lower() not in FILE_SUFFIXES:
        result.status, result.message, result.not_extract = "skipped", f"{source}: not an extract file (ignored)", True
        return result
    big = _big_parquet(path, kind)
    big_csv = big is None and _big_csv(path, kind)
    data = None
    if big is not None or big_csv:
        as_hashed = _file_state(path)
        with path.open("rb") as f:  # the bytes of a big file are never held whole
            file_hash = hashlib.file_digest(f, "sha256").hexdigest()
    else:
        data = path.read_bytes()
        file_hash = hashlib.sha256(data).hexdigest()
    result.file_hash = file_hash
    seen = con.execute("select source_file, delivery from ingest_ledger where file_hash = ?", [file_hash]).fetchall()
    if seen:
        result.status = "skipped"
        result.message = f"{source}: already ingested (same content as {seen[0][0]} in delivery {seen[0][1]})"
        if seen[0][0] != source:  # a copy sent again (the same file seen every night is not news)
            result.duplicate_of = seen[0][0]
        return result
    lineage = {"_source_file": source, "_delivery": delivery, "_file_hash": file_hash}
    if big is not None or big_csv:
        try:
            if big is not None:
                done = _ingest_parquet_chunks(con, path, *big, kind, result, lineage, today)
            else:
                done = _ingest_csv_pieces(con, path, kind, result, lineage, today)
        except FileProblem as exc:
            return _fail(con, result, source, _problem_in(exc, path))
        except (IngestError, duckdb.Error):  # the store's error (its memory limit, a full spill
            raise                               # folder) is no damage in the file: its delivery is undone
        except (Exception, PanicException) as exc:  # a reader library's error (a Parquet column it
            # cannot read as text), or its panic: as for a file read whole, the file fails — or, once
            # rows of it are written in the open transaction, its delivery is undone, in one line
            problem = _could_not_read(exc)
            if not result.rows_total:
                return _fail(con, result, source, problem)
            raise IngestError(f"delivery {delivery} was rolled back: {source} {mask_ids_in_text(problem)}") from exc
        # A big file is read again after it was hashed: changed in between (copied over, re-exported
        # in place), its ledger row would vouch for content never read — and the whole file, sent
        # again, would be skipped as seen.
        if done:
            if _file_state(path) != as_hashed:
                raise _changed_while_read(delivery, source)
            return _ledger(con, result, source, run_id)
        data = path.read_bytes()  # a key repeats in the file, or its header fails it: read it whole
        if hashlib.sha256(data).hexdigest() != file_hash:
            raise _changed_while_read(delivery, source)
    try:
        if kind is None:
            known = ", ".join(EXTRACTS)
            raise FileProblem(f"unknown extract kind: the file name must start with one of {known}")
        raw = read_raw(path, data)
        result.notes = [mask_ids_in_text(n) for n in raw.notes]
        del data
        try:
            accepted, rejected = normalise_frame(kind, raw, today)
        except HeaderProblem as exc:
            titled = exc.header_is_data and path.suffix.lower() == ".csv"  # (XLSX: titles are skipped)
            problem = str(exc) + (_title_line_hint(raw, kind) if titled else "")
            return _fail(con, result, source, problem, raw=raw, column=exc.column,
                         header_is_data=exc.header_is_data)
        result.notes += unread_columns_note(kind, raw.headers)  # a header known to be one (not a record)
    except FileProblem as exc:
        return _fail(con, result, source, _problem_in(exc, path))
    except (Exception, PanicException) as exc:  # a reader library's own error on a damaged file (or a
        # library's panic, which is no Exception): report it, keep going — the other files still ingest
        return _fail(con, result, source, _could_not_read(exc))
    accepted, rejected = _set_aside_older(con, kind, accepted, rejected, lineage, raw)
    del raw
    _write_chunk(con, kind, accepted, rejected, result, lineage)
    return _ledger(con, result, source, run_id)


def _named_for_a_day_after(delivery: str, today: dt.date) -> bool:
    """Whether a delivery's name starts with a real date after `today` (2026-13-45 is no date: read,
    ordered by its name, as before)."""
    if not re.match(DATED_DELIVERY, delivery):
        return False
    try:
        return dt.date.fromisoformat(delivery[:10]) > today
    except ValueError:
        return False


def _file_state(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def _changed_while_read(delivery: str, source: str) -> IngestError:
    """The error (its delivery rolled back) for a file that changed after it was hashed."""
    return IngestError(f"delivery {delivery} was rolled back: {mask_ids_in_text(source)} changed while it was being "
                      "read (copied over or exported again during the night?): run again once the file is complete")


def _could_not_read(exc: BaseException) -> str:
    """A file's problem when a reader library failed on it (or panicked), in one line."""
    return f"could not be read ({type(exc).__name__}: {' '.join(str(exc).split())})"


def _set_aside_older(con, kind: str, accepted: pl.DataFrame, rejected: pl.DataFrame, lineage: dict[str, str],
                     raw: RawFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted, rejected) with the rows a later-dated delivery already holds moved from the first
    to the second (_superseded), each with its row as delivered from `raw`."""
    accepted, older = _superseded(con, kind, accepted, lineage, raw)
    if older.height:
        rejected = pl.concat([rejected, older], how="vertical_relaxed").sort("_row_number")
    return accepted, rejected


def _superseded(con, kind: str, accepted: pl.DataFrame, lineage: dict[str, str],
                raw: RawFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows to write, rows refused): a row whose natural key a later-dated delivery already holds
    is older data than the stored row — a delivery folder that turned up late — and does not
    replace it ("later delivery wins" by the delivery's date, so the store does not depend on the
    order folders arrive in). Kept in rejected_rows saying which delivery holds the newer row.
    Folders not named by date keep arrival order."""
    delivery = lineage["_delivery"] or ""
    none = accepted.clear().select(pl.col("_row_number"))
    if accepted.height == 0 or not re.match(DATED_DELIVERY, delivery):
        return accepted, none
    # The usual night (deliveries in date order) costs one look at the ledger, not a key join.
    later = scalar(con, "select count(*) from ingest_ledger where extract = ? and delivery > ? "
                        "and regexp_matches(delivery, ?)", [kind, delivery, DATED_DELIVERY])
    if not later:
        return accepted, none
    spec = EXTRACTS[kind]
    _fw_staged = _scannable(con, accepted.select([*spec.key, "_row_number"]))  # noqa: F841 — read by name below
    newer = pl.DataFrame(con.execute(
        f"""select s._row_number, max(t._delivery) as held_by
            from _fw_staged s join {kind} t on {_same_key(spec)}
            where regexp_matches(t._delivery, ?) and t._delivery > ?
            group by s._row_number""", [DATED_DELIVERY, delivery]).fetchall(),
        schema={"_row_number": pl.Int64, "held_by": pl.Utf8}, orient="row")
    if newer.height == 0:
        return accepted, newer
    keep = accepted.join(newer, on="_row_number", how="anti")
    # the row as delivered, as every rejected row keeps it (not its normalised values)
    delivered = raw.data.join(newer.select("_row_number"), on="_row_number", how="semi").select(
        pl.col("_row_number"), _raw_json(raw).alias("raw"))
    refused = newer.join(delivered, on="_row_number", how="left").select(
        pl.col("_row_number"), pl.lit(spec.key[0]).alias("column_name"),
        pl.format("较旧的交付: 交付 {} 已有同一记录(按{})的更新版本，本行未替换它", pl.col("held_by"),
                  pl.lit("+".join(spec.key))).alias("reason"),
        pl.col("raw"))
    return keep, refused


def _write_chunk(con, kind: str, accepted: pl.DataFrame, rejected: pl.DataFrame, result: FileResult,
                 lineage: dict[str, str], replace: bool = True) -> None:
    """Write one normalised chunk (or the whole file) and add its counts to the file's result.
    replace=False: insert only, the stored rows it replaces are deleted after the file's last
    chunk (_replace_by_file)."""
    result.rows_replaced += _write_rows(con, kind, accepted, lineage, replace)
    _write_rejected(con, kind, rejected, lineage)
    result.rows_accepted += accepted.height
    result.rows_rejected += rejected.height
    result.rows_total += accepted.height + rejected.height
    for reason, n in _categories(rejected).items():
        result.rejected_by_reason[reason] = result.rejected_by_reason.get(reason, 0) + n


def _ledger(con, result: FileResult, source: str, run_id: str | None) -> FileResult:
    """The file's one ledger row, with its counts summed over its chunks."""
    result.status = "ingested"
    result.message = (f"{source}: {result.rows_accepted} rows accepted ({result.rows_replaced} replaced), "
                      f"{result.rows_rejected} rejected")
    con.execute(
        "insert into ingest_ledger values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [result.file_hash, source, result.delivery, result.kind, result.rows_total, result.rows_accepted,
         result.rows_rejected, result.rows_replaced, china_now(), run_id],
    )
    return result


def _big_parquet(path: Path, kind: str | None) -> tuple[int, list[str]] | None:
    """(rows, column names) of a Parquet extract of more than CHUNK_ROWS rows, from its footer;
    None for any other file (read whole, and a damaged one reported as always)."""
    if kind is None or path.suffix.lower() != ".parquet":
        return None
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as pf:
            rows, names = pf.metadata.num_rows, list(pf.schema_arrow.names)
    except Exception:
        return None
    return (rows, names) if rows > CHUNK_ROWS else None


def _ingest_parquet_chunks(con, path: Path, rows: int, names: list[str], kind: str, result: FileResult,
                           lineage: dict[str, str], today: dt.date) -> bool:
    """Ingest a big Parquet file CHUNK_ROWS rows at a time (Polars reads only the row groups of
    each slice, with the same column types as the whole-file reader); False, with nothing
    written, when it must be read whole instead: its header fails it (every row is then rejected
    with the header's problem), or a raw key repeats in it.

    The same key twice in one file is reported and the later row kept; a chunk only sees its own
    rows, so first the key columns of the whole file are read (a hash per row, 8 bytes) and any
    repeated raw key sends the file to the whole-file path, which reports it exactly. Left to the
    chunks: two different raw texts of one key (e.g. a payment id with and without a trailing
    space) in different chunks. The later row then replaces the earlier one as a re-delivered row
    would, and is counted in rows_replaced instead of being reported as an in-file repeat; in the
    same chunk it is reported as always."""
    _parquet_too_large(path)
    headers = [_header(h) for h in names]
    if len(set(names)) != len(names):
        return False  # a column name given twice: the whole-file reader decides
    try:
        positions = _map_headers(kind, headers)  # the header, checked once for the file
    except HeaderProblem:
        return False
    result.notes = unread_columns_note(kind, headers)
    spec = EXTRACTS[kind]
    key_cols = [names[positions[k]] for k in spec.key if k in positions]
    # A row without a required key part is refused in its chunk anyway: never a repeat to report.
    keyed = pl.all_horizontal([pl.col(names[positions[k]]).is_not_null() for k in spec.key
                               if spec.column(k).required] + [pl.lit(True)])
    starts = range(0, rows, CHUNK_ROWS)
    try:
        hashes = pl.concat([pl.scan_parquet(path).slice(start, CHUNK_ROWS).filter(keyed)
                            .select(pl.struct(key_cols).hash().alias("h")).collect().get_column("h")
                            for start in starts])
    except Exception as exc:
        raise FileProblem(_unreadable_parquet(exc)) from exc
    if hashes.is_duplicated().any():
        return False
    del hashes

    chunks = iter(starts)

    def next_chunk() -> RawFrame | None:
        start = next(chunks, None)
        if start is None:
            return None
        try:
            chunk = pl.scan_parquet(path).slice(start, CHUNK_ROWS).collect()
        except Exception as exc:
            raise _damaged(lineage, start, _unreadable_parquet(exc)) from exc
        return RawFrame(headers, _parquet_columns(chunk, start), may_hold_nul=True)

    _write_chunks(con, kind, next_chunk, result, lineage, today)
    return True


def _write_chunks(con, kind: str, next_chunk: Callable[[], RawFrame | None], result: FileResult,
                  lineage: dict[str, str], today: dt.date) -> None:
    """Normalise and write a big file's chunks one at a time, as `next_chunk` reads them (None: no
    more). Only one chunk is held at a time: `next_chunk` keeps no reference to what it returns."""
    while (raw := next_chunk()) is not None:
        accepted, rejected = normalise_frame(kind, raw, today)
        accepted, rejected = _set_aside_older(con, kind, accepted, rejected, lineage, raw)
        del raw
        _write_chunk(con, kind, accepted, rejected, result, lineage, replace=False)
        del accepted, rejected  # freed before the next chunk is read
    result.rows_replaced += _replace_by_file(con, kind, lineage)


def _replace_by_file(con, kind: str, lineage: dict[str, str]) -> int:
    """After a big file's chunks are all inserted, delete the stored rows it replaces: rows of
    other files with one of its natural keys, and a row of its own whose key a later row of it
    gives again in another spelling (e.g. with a trailing space, in another chunk; the later row
    wins, as a re-delivered one does). Returns how many. One join for the file: a delete per
    chunk scanned the whole table each time, which grew with the store (a province's first
    night: 115 chunks of payments, each against up to 57 million rows)."""
    spec = EXTRACTS[kind]
    keys = ", ".join(spec.key)
    this_file = lineage["_file_hash"]
    return int(con.execute(
        f"""delete from {kind} t
            using (select {keys}, _row_number from {kind} where _file_hash = ?) s
            where {_same_key(spec)}
              and (t._file_hash is distinct from ? or t._row_number < s._row_number)""",
        [this_file, this_file]).fetchall()[0][0] or 0)


def _damaged(lineage: dict[str, str], rows_before: int, problem: str) -> Exception:
    """The error for a big file that cannot be read on: a file problem while nothing of it is
    written; after that, rows of it are in the open transaction, so the delivery is undone."""
    if rows_before == 0:
        return FileProblem(problem)
    return IngestError(f"delivery {lineage['_delivery']} was rolled back: {lineage['_source_file']} "
                       f"is damaged after its row {rows_before}: {mask_ids_in_text(problem)}")


def _big_csv(path: Path, kind: str | None) -> bool:
    """Whether a file is a CSV extract of more than CSV_CHUNK_BYTES bytes (read in pieces)."""
    if kind is None or path.suffix.lower() != ".csv":
        return False
    try:
        return path.stat().st_size > CSV_CHUNK_BYTES
    except OSError:
        return False  # read whole: the error is reported as always


_BOM = b"\xef\xbb\xbf"


class _CsvPieces:
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


class _ReadWhole(Exception):
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


def _in_utf8(piece: bytes, start: int, encoding: str) -> bytes:
    """A piece in UTF-8: a GB18030 file is converted piece by piece (a piece ends at an LF, never
    inside a character in either encoding); the byte named when it is neither is the file's."""
    if encoding == "utf-8":
        return piece
    try:
        return (_gb18030(piece) if encoding == "gb18030" else piece.decode(encoding)).encode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotText(start + exc.start) from exc


def _csv_piece_frame(piece: bytes, start: int, plan: _CsvPlan) -> RawFrame:
    """One piece (UTF-8) read by the whole-file reader (_read_csv): the first as it is, a later one
    after the file's header record. Its rows are numbered from 1."""
    return _read_csv(piece if start == 0 else plan.header + piece, utf8_judged=True)


def _csv_plan(path: Path, kind: str) -> _CsvPlan:
    """The first pass over a big CSV file's pieces: its encoding (UTF-8 unless a piece is not, then
    GB18030 for every piece), its header record, where its pieces end (each at a record's end by the
    reader itself), and the checks that send it to the whole-file reader (_ReadWhole): a header that
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
        pieces = _CsvPieces(f, CSV_CHUNK_BYTES)
        while (piece := pieces.read()) is not None:
            if plan is None:
                if encoding == "utf-8" and not _is_utf8(piece):
                    raise _NotUtf8
                plan = _csv_header(_in_utf8(piece, 0, encoding), encoding)
                try:
                    positions = _map_headers(kind, plan.headers)
                except HeaderProblem as exc:
                    raise _ReadWhole from exc  # every row is rejected with the header's problem
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
                raise _ReadWhole
            hashes.append(raw.data.select(keys).filter(keyed).select(pl.struct(key_cols).hash()).to_series())
            del raw
    if encoding == "utf-8" and reading == "garbled":
        raise _NotUtf8  # GB18030 bytes that happen to be valid UTF-8, and no Chinese read as UTF-8
    if plan is None or pl.concat(hashes).is_duplicated().any():
        raise _ReadWhole
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
    piece = _in_utf8(piece, start, plan.encoding)
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
    piece = _in_utf8(piece, start, plan.encoding)
    try:
        return _csv_piece_frame(piece, start, plan)
    except Exception as exc:  # e.g. a damaged header record
        raise _ReadWhole from exc


def _csv_header(first: bytes, encoding: str) -> _CsvPlan:
    """The header record of a big CSV file (its first line, or lines while a quote is open) from its
    first piece in UTF-8, which the CSV reader must read as exactly one record."""
    i = 0
    while (j := first.find(b"\n", i)) >= 0 and first.count(b'"', 0, j) % 2:
        i = j + 1
    if j < 0:
        raise _ReadWhole
    header = first[:j + 1]
    try:
        records = list(csv.reader(io.StringIO(header.decode("utf-8")), strict=True))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise _ReadWhole from exc
    if len(records) != 1 or not records[0]:
        raise _ReadWhole
    return _CsvPlan(encoding, header, [_header(h) for h in records[0]])


def _ingest_csv_pieces(con, path: Path, kind: str, result: FileResult, lineage: dict[str, str],
                       today: dt.date) -> bool:
    """Ingest a big CSV file piece by piece (_CsvPieces), each read by the whole-file reader so that
    the outcome is the whole-file path's: rows keep the file's own numbers (a piece's are offset by
    the records numbered before it: data rows and the rows refused while reading; blank lines are
    not numbered). False, with nothing written, when the file must be read whole instead (see
    _csv_plan; the same limit as for Parquet: two spellings of one key in different pieces)."""
    try:
        plan = _csv_plan(path, kind)
    except _ReadWhole:
        return False
    result.notes = unread_columns_note(kind, plan.headers)
    numbered = 0
    with path.open("rb") as f:
        pieces = _CsvPieces(f, CSV_CHUNK_BYTES, replay=plan.lengths)

        def next_piece() -> RawFrame | None:
            nonlocal numbered
            while True:
                try:
                    piece = pieces.read()
                    if piece is None:
                        return None
                    raw = _csv_piece_frame(_in_utf8(piece, pieces.start, plan.encoding), pieces.start, plan)
                except Exception as exc:
                    problem = str(exc) if isinstance(exc, FileProblem) else \
                        _could_not_read(exc)
                    raise _damaged(lineage, numbered, problem) from exc
                del piece
                offset, numbered = numbered, numbered + raw.data.height + len(raw.bad_rows)
                if raw.data.height or raw.bad_rows:  # (a piece of blank lines has nothing to write)
                    return RawFrame(raw.headers, raw.data.with_columns(pl.col("_row_number") + offset),
                                    [(row + offset, *rest) for row, *rest in raw.bad_rows])

        _write_chunks(con, kind, next_piece, result, lineage, today)
    return True


def _fail(con, result: FileResult, source: str, problem: str,
          raw: RawFrame | None = None, column: str | None = None, header_is_data: bool = False) -> FileResult:
    """A file that cannot be ingested: reported in one line, and kept durably in rejected_rows so
    nothing is lost — every data row with the file's problem when the rows could be read, else one
    row 0 for the file. Not entered in the ledger, so a corrected re-delivery is read; the same
    bytes delivered again add no second copy of their rejections."""
    # One line, whatever a reader library said; and a header that is really a data row (an export
    # without its header) must not put an ID number into the log.
    problem = mask_ids_in_text(" ".join(problem.split()))
    result.status = "failed"
    result.message = f"{source}: {problem}"
    lineage = {"_source_file": source, "_delivery": result.delivery, "_file_hash": result.file_hash}
    rows = None
    if raw is not None:
        rows = raw.data.select(
            pl.col("_row_number"), pl.lit(column, pl.Utf8).alias("column_name"),
            pl.lit(f"整个文件被拒收: {problem}").alias("reason"), _raw_json(raw).alias("raw"))
        if raw.bad_rows:
            rows = pl.concat([rows, pl.DataFrame(raw.bad_rows, schema=_REJECT_COLUMNS, orient="row")])
        if header_is_data:  # the first record, read as the header, is kept as row 0
            first = [(0, column, f"整个文件被拒收: {problem}",
                      json.dumps([_abridge(h) for h in raw.headers], ensure_ascii=False))]
            rows = pl.concat([pl.DataFrame(first, schema=_REJECT_COLUMNS, orient="row"), rows])
        rows = rows.sort("_row_number")
        result.rows_total = result.rows_rejected = rows.height
        result.rejected_by_reason = _categories(rows)
    else:  # unreadable: the one row-0 record of the file is what rejected_rows gets, counted as one
        result.rows_rejected = 1
        result.rejected_by_reason = {reason_category(f"整个文件被拒收: {problem}"): 1}
    already = [] if result.file_hash is None else con.execute(
        "select source_file, delivery from rejected_rows where file_hash = ? order by rejected_at, source_file limit 1",
        [result.file_hash]).fetchall()
    if already:
        # the same bytes failed before — on an earlier night, or tonight under another name:
        # nothing new is rejected (the night's count is what it added to rejected_rows), and the
        # message names the file whose rejected rows hold them
        result.rows_rejected, result.rejected_by_reason = 0, {}
        (first_source, first_delivery), = already
        result.already_recorded = (f"same content as {first_source} in delivery {first_delivery}: its rejected "
                                   f"rows are recorded under that name" if first_source != source else
                                   f"rejected rows already recorded in delivery {first_delivery}")
        result.message += f" ({result.already_recorded})"
        return result
    if rows is not None and rows.height:
        _write_rejected(con, result.kind, rows, lineage)
    else:
        con.execute(
            "insert into rejected_rows values (?, ?, 0, ?, ?, null, ?, ?, ?)",
            [result.kind, source, column or WHOLE_FILE, problem, result.file_hash, result.delivery, china_now()],
        )
    return result


# ------------------------------------------------------------------------------- normalise + validate

_REJECT_COLUMNS = {"_row_number": pl.Int64, "column_name": pl.Utf8, "reason": pl.Utf8, "raw": pl.Utf8}


def _raw_names(headers: list[str]) -> list[str]:
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


def _abridged(e: pl.Expr) -> pl.Expr:
    n = e.str.len_chars()
    return pl.when(n > RAW_FIELD_CHARS).then(
        e.str.slice(0, RAW_FIELD_CHARS) + pl.format("…(共{}个字符，已截断)", n)).otherwise(e)


def _raw_json(raw: RawFrame) -> pl.Expr:
    names = _raw_names(raw.headers)
    return pl.struct([_abridged(pl.col(f"c{i}").cast(pl.Utf8)).alias(n)
                      for i, n in enumerate(names)]).struct.json_encode()


def _text_columns(raw: RawFrame) -> list[int]:
    """Positions of the columns read as text (a typed Parquet column cannot be over-long)."""
    schema = raw.data.schema  # once: built anew at each call, it made a wide file's reading quadratic
    return [i for i in range(len(raw.headers)) if schema[f"c{i}"] == pl.Utf8]


def _holds_nul(raw: RawFrame, positions: dict[str, int]) -> pl.Expr:
    """Whether a row holds a NUL character in a text column of the extract (raw.may_hold_nul: a
    Parquet or XLSX file's), a row as damaged as the CSV row refused for one. (A column with a NUL never
    takes its fast path, _fast_column: so this is asked.)"""
    return pl.any_horizontal([pl.col(f"c{i}").str.contains(NUL, literal=True) for i in _text_columns(raw)
                              if raw.may_hold_nul and i in positions.values()] + [pl.lit(False)])


def _row_fault_column(raw: RawFrame, positions: dict[str, int]) -> pl.Expr:
    """The column named in a refusal of the row as it came (_row_fault): the row as a whole for a
    NUL; for a too-long field its canonical name when known, else the header."""
    canonical = {i: name for name, i in positions.items()}
    names = _raw_names(raw.headers)
    return pl.when(_holds_nul(raw, positions)).then(pl.lit(WHOLE_ROW)).otherwise(pl.coalesce(
        [pl.when(pl.col(f"c{i}").str.len_chars() > MAX_FIELD_CHARS).then(pl.lit(canonical.get(i, names[i])))
         for i in _text_columns(raw)] + [pl.lit(None, pl.Utf8)]
    ))


def _row_fault(raw: RawFrame, positions: dict[str, int]) -> pl.Expr:
    """Reason to refuse a row as it came, before any column is read: a NUL character, else the
    first over-long field (any column, known or not); else null."""
    names = _raw_names(raw.headers)
    return pl.when(_holds_nul(raw, positions)).then(pl.lit(NUL_IN_ROW)).otherwise(pl.coalesce(
        [pl.when(pl.col(f"c{i}").str.len_chars() > MAX_FIELD_CHARS).then(
            pl.format(f"字段过长: '{names[i]}' 有{{}}个字符 (上限{MAX_FIELD_CHARS})，疑为损坏数据",
                      pl.col(f"c{i}").str.len_chars()))
         for i in _text_columns(raw)] + [pl.lit(None, pl.Utf8)]
    ))


def _evaluate(frame: pl.DataFrame, col, today: dt.date) -> pl.DataFrame:
    """`frame` (column s: text, or a typed Parquet column) with the column's value and reason.
    Plain texts and typed values take the fast path (normalise.fast_exprs, typed_fast_exprs);
    only the others go through the full parser, on their text."""
    dtype = frame.schema["s"]
    value, reason = column_exprs(pl.col("s").cast(pl.Utf8), col, today)
    if dtype == pl.Utf8:
        fast = fast_exprs(pl.col("_clean"), col, today)
        f = frame.with_columns(clean_text(pl.col("s")).alias("_clean"))
    else:
        fast = typed_fast_exprs(pl.col("s"), dtype, col)
        f = frame
    if fast is None:
        return frame.select("s", value.alias("value"), reason.alias("reason"))
    ok, fast_value = fast
    f = (f.select("s", ok.fill_null(False).alias("_ok"), fast_value.alias("value"))
         .with_columns(pl.col("_ok") & pl.col("value").is_not_null()))
    if f.get_column("_ok").all():
        return f.select("s", "value", pl.lit(None, pl.Utf8).alias("reason"))
    f = f.with_row_index("_i")
    quick = f.filter(pl.col("_ok")).select("_i", "s", "value", pl.lit(None, pl.Utf8).alias("reason"))
    slow = f.filter(~pl.col("_ok")).select("_i", "s", value.alias("value"), reason.alias("reason"))
    return pl.concat([quick, slow.cast(quick.schema)]).sort("_i").drop("_i")


def _column_values(data: pl.DataFrame, src: str | None, col, today: dt.date) -> pl.DataFrame:
    """(value, reason) of one column for every row of `data`, in its order. A column repeats few
    distinct texts (periods, dates, amounts, a person's id on each of their payments): each
    distinct text is parsed once and the result joined back."""
    n = data.height
    s = (data.get_column(src) if src is not None else pl.repeat(None, n, dtype=pl.Utf8, eager=True)).alias("s")
    if s.dtype != pl.Utf8 and typed_fast_exprs(pl.col("s"), s.dtype, col) is None:
        s = s.cast(pl.Utf8)  # a typed Parquet column delivered for another kind of column: its text
    if col.type == "text" and not col.allowed and not col.code and not col.term:
        return _evaluate(s.to_frame(), col, today).drop("s")
    if not repeats(s):
        return _evaluate(s.to_frame(), col, today).drop("s")  # mostly distinct: parse as is
    domain = s.unique()
    parsed = _evaluate(domain.to_frame(), col, today)
    return s.to_frame().join(parsed, on="s", how="left", nulls_equal=True, maintain_order="left").drop("s")


def _fast_column(raw: RawFrame, src: str, col, today: dt.date) -> tuple[pl.Expr, pl.Expr] | None:
    """(ok, value) of one column's fast path over the whole file, or None when the column has
    none. Where `ok` is true, `value` is what the full parser gives, with no reason: the plain form
    (normalise.fast_exprs), a value already in its stored type (typed_fast_exprs), a trimmed text,
    or an empty cell of an optional column (null, as the parser gives)."""
    s = pl.col(src)
    dtype = raw.data.schema[src]
    fast = typed_fast_exprs(s, dtype, col) if dtype != pl.Utf8 else None
    if fast is not None:
        clean = s
    else:
        clean = clean_text(s.cast(pl.Utf8) if dtype != pl.Utf8 else s)
        fast = fast_exprs(clean, col, today)
        if fast is None and col.term:  # a listed word: as trimmed, unless it holds a format character
            # or starts with Excel's text mark (clean_value drops both: '丧葬补助金 is 丧葬补助金)
            fast = (~clean.str.contains(FORMAT_CHARACTERS) & ~clean.str.starts_with(TEXT_MARK), clean)
        elif fast is None and col.type == "text" and not col.allowed:
            fast = (pl.lit(True), clean)  # free text: its value is the trimmed text
    if fast is None:
        return None
    ok, value = fast
    ok = ok.fill_null(False) & value.is_not_null()
    if raw.may_hold_nul and dtype == pl.Utf8 and (col.type in ("text", "account") or col.code):
        # forms whose fast check lets a control character through: a NUL (a damaged Parquet text)
        # sends the column to the full parse, where its row is refused (_row_fault)
        ok = ok & ~clean.str.contains(NUL, literal=True)
    if not col.required:
        ok = ok | clean.is_null()
    return ok, value


# The words of a total line (合计行) a clerk's export ends with, or a page of it (本页合计)
TOTAL_ROW_WORDS = ("合计", "总计", "小计", "本页合计", "累计", "总合计", "合计金额")


def _total_rows_said(bad: pl.DataFrame, raw: RawFrame, key_source: str | None) -> pl.DataFrame:
    """The refused rows that are a total line (a cell reads 合计, 总计, 小计… and the key's first
    column is empty or reads so too) refused as one — not as a record missing its 发放流水号 — so
    that the night's summary says what they are. Still kept in rejected_rows, as every row not
    stored is. A record whose memo says 合计 keeps its own reason."""
    if not bad.height:
        return bad
    def word(c: str) -> pl.Expr:
        return pl.col(c).str.replace_all(r"[\s:：\u3000]", "").is_in(TOTAL_ROW_WORDS)
    total = pl.any_horizontal([word(f"c{i}") for i in _text_columns(raw)] + [pl.lit(False)])
    if key_source is not None and raw.data.schema[key_source] == pl.Utf8:
        total = total & (pl.col(key_source).is_null() | (pl.col(key_source).str.strip_chars() == "") | word(key_source))
    return bad.with_columns(pl.when(total).then(pl.lit("合计行: 汇总数，不是一条记录，未入库 (无需更正)"))
                            .otherwise(pl.col("reason")).alias("reason"))


def normalise_frame(kind: str, raw: RawFrame, today: dt.date | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted rows in stored types + _row_number, rejected rows: _row_number, column_name, reason, raw)."""
    spec = EXTRACTS[kind]
    today = today or china_today()
    positions = _map_headers(kind, raw.headers)
    # One chunk per column: a Parquet file is read as one chunk per row group, and Polars 1.x
    # panics (`assertion failed: i < self.len()`) evaluating a string function on the filtered
    # rows of such a column — a file of several row groups with one bad amount stopped the night.
    raw.data = raw.data.rechunk()

    # Every column's fast path, checked in one parallel run (pl.collect_all). A column that
    # repeats its texts (ids, periods, dates, amounts) is checked on its distinct texts: the same
    # verdict at the cost of the distinct values; one that hardly repeats is checked on its rows
    # together with computing its values (one pass, not two). A column every row of which takes
    # its fast path is done; only the others go through the full parser (_column_values), which
    # also gives each refused row its reason.
    fast_values, checks, row_oks = [], [], []
    for col in spec.columns:
        src = f"c{positions[col.name]}" if col.name in positions else None
        fast = _fast_column(raw, src, col, today) if src is not None else None
        if fast is None:
            continue
        ok, value = fast
        fast_values.append(value.alias(col.name))
        if repeats(raw.data.get_column(src)):
            checks.append(raw.data.lazy().select(src).unique().select(ok.all().alias(col.name)))
        else:
            row_oks.append(ok.alias(f"_ok_{col.name}"))
    checks.append(raw.data.lazy().select(
        pl.any_horizontal([pl.col(f"c{i}").str.len_chars().max() > MAX_FIELD_CHARS for i in _text_columns(raw)]
                          + [pl.lit(False)]).alias("_long")))
    done = {k: v for result in pl.collect_all(checks) for k, v in result.row(0, named=True).items()}
    any_long = done.pop("_long")
    frame = raw.data.with_columns([v for v in fast_values if done.get(v.meta.output_name(), True)] + row_oks)
    if row_oks:
        ok_names = [o.meta.output_name() for o in row_oks]
        done.update({k.removeprefix("_ok_"): v for k, v in
                     frame.select(pl.col(ok_names).all()).row(0, named=True).items()})
        frame = frame.drop(ok_names)
    clean = {name for name, ok in done.items() if ok}
    dirty = [c for c in spec.columns if c.name not in clean]  # their values are replaced below

    if not dirty and not any_long:
        bad = frame.clear()  # every row read by its fast paths: nothing to explain
        good = frame
    else:
        parsed: list[pl.Series] = []
        for col in dirty:
            src = f"c{positions[col.name]}" if col.name in positions else None
            out = _column_values(raw.data, src, col, today)
            parsed += [out.get_column("value").alias(col.name), out.get_column("reason").alias(f"_r_{col.name}")]
        reasons = [pl.col(f"_r_{c.name}") for c in dirty]
        row_fault = pl.col("_r_row")
        frame = (
            frame.with_columns(parsed).lazy()
            .with_columns(_row_fault(raw, positions).alias("_r_row"))
            .with_columns(
                pl.when(row_fault.is_not_null()).then(row_fault)
                .otherwise(pl.concat_str(reasons + [pl.lit(None, pl.Utf8)], separator="; ", ignore_nulls=True))
                .alias("reason"),
                _row_fault_column(raw, positions).alias("_row_col"),
                pl.coalesce([pl.when(r.is_not_null()).then(pl.lit(c.name)) for r, c in zip(reasons, dirty)]
                            + [pl.lit(None, pl.Utf8)]).alias("column_name"),
            )
            .with_columns(
                pl.coalesce(pl.col("_row_col"), pl.col("column_name")).alias("column_name"))
            .collect()
        )
        key_source = f"c{positions[spec.key[0]]}" if spec.key[0] in positions else None
        bad = _total_rows_said(frame.filter(pl.col("column_name").is_not_null()), raw, key_source)
        good = frame.filter(pl.col("column_name").is_null())

    # The same key twice in one file: the later row is the correction; the earlier one is recorded.
    key = list(spec.key)
    key_label = " + ".join(label(spec.column(k)) for k in key)
    # (One hash pass tells whether any key repeats; the window over every key only when one does.)
    key_expr = pl.col(key[0]) if len(key) == 1 else pl.struct(key)
    dupes = good.clear()
    if good.select(key_expr.is_duplicated().any()).item():
        good = good.with_columns(pl.col("_row_number").max().over(key).alias("_kept_row"))
        dupes = good.filter(pl.col("_row_number") != pl.col("_kept_row")).with_columns(
            pl.lit(key[0]).alias("column_name"),  # the first column at fault, as every rejection names one
            pl.format(f"同一文件中{key_label}重复: 以后面的第{{}}行为准，本行未采用", pl.col("_kept_row")).alias("reason"),
        )
        good = good.filter(pl.col("_row_number") == pl.col("_kept_row"))

    # The pandera row contract is the last gate: a row the parsers let through but the contract
    # refuses is rejected with the contract's reason, never stored.
    out_cols = [*spec.names, "_row_number"]
    accepted = good.select(out_cols)
    failing = contracts.failing_rows(kind, accepted.select(spec.names), today)
    contract_bad = pl.DataFrame()
    if failing:
        idx = pl.Series("i", list(failing), dtype=pl.UInt32)
        contract_bad = good[idx].with_columns(
            pl.Series("reason", list(failing.values()), dtype=pl.Utf8),
            pl.lit("(row contract)").alias("column_name"),
        )
        keep = pl.Series([True] * accepted.height)
        keep[list(failing)] = False
        accepted = accepted.filter(keep)

    parts = [p for p in (bad, dupes, contract_bad) if p.height]
    rejected = pl.concat(
        [p.select(pl.col("_row_number"), pl.col("column_name"), pl.col("reason"), _raw_json(raw).alias("raw"))
         for p in parts] + [pl.DataFrame(schema=_REJECT_COLUMNS)],
        how="vertical",
    )
    if raw.bad_rows:
        # a ragged row names the first column it lacks by its header as delivered: canonical here
        bad = [(row, spec.column_for(column) or column, reason, text) for row, column, reason, text in raw.bad_rows]
        rejected = pl.concat([rejected, pl.DataFrame(bad, schema=_REJECT_COLUMNS, orient="row")])
    if rejected.height and rejected.get_column("reason").str.contains(_UNSEEN_IN_A_REASON).any():
        rejected = rejected.with_columns(pl.col("reason").map_elements(_shown_in_a_reason, return_dtype=pl.Utf8))
    return accepted, rejected.sort("_row_number")


# A character a clerk cannot see: a format or control character, a space other than the plain and
# the ideographic one, a variation selector. A reason quoting the refused value showed
# '正常' for 正常 followed by U+E0100, and nothing to correct; the stored raw row keeps the text.
_UNSEEN_IN_A_REASON = r"[\p{Cf}\p{Cc}\x{00A0}\x{2000}-\x{200A}\x{202F}\x{205F}\x{FE00}-\x{FE0F}\x{E0100}-\x{E01EF}]"


def _shown_in_a_reason(reason: str) -> str:
    """The reason with each character no one sees written as <U+XXXX>."""
    return "".join(f"<U+{ord(c):04X}>" if _unseen(c) else c for c in reason)


def _unseen(c: str) -> bool:
    code = ord(c)
    return (unicodedata.category(c) in ("Cf", "Cc") or code == 0xA0 or 0x2000 <= code <= 0x200A
            or code in (0x202F, 0x205F) or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF)


def _map_headers(kind: str, headers: list[str]) -> dict[str, int]:
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
        # only the cells that are column names are shown: another cell may be anything
        known = [headers[i] for i in sorted(positions.values())]
        others = len(headers) - len(known)
        shown = ", ".join(known) + (f" and {others} other column(s)" if others else "")
        raise HeaderProblem(f"missing required column {', '.join(label(c) for c in missing)} "
                            f"(header has: {_abridge(shown)})", missing[0].name)
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
    named = ", ".join(_abridge(h) for h in unread[:10]) + (f" and {len(unread) - 10} more" if len(unread) > 10 else "")
    return [mask_ids_in_text(f"column(s) not read, no {kind} column of that name: {named} (the contract's "
                             f"names and Chinese aliases are read; rename a header that holds one of them)")]


def _categories(rejected: pl.DataFrame) -> dict[str, int]:
    out: dict[str, int] = {}
    for reason in rejected.get_column("reason").to_list():
        cat = reason_category(reason or "")
        out[cat] = out.get(cat, 0) + 1
    return out


# ------------------------------------------------------------------------------- writing

def _same_key(spec) -> str:
    """SQL: stored row t and staged row s have the same natural key. `is not distinct from` where a
    key part may be empty (contributions.employer_id) and must still match; plain `=` for a required
    part (never null), which DuckDB joins by hash."""
    return " and ".join(f"t.{k} = s.{k}" if spec.column(k).required else f"t.{k} is not distinct from s.{k}"
                        for k in spec.key)


def _write_rows(con, kind: str, accepted: pl.DataFrame, lineage: dict[str, str], replace: bool = True) -> int:
    """Delete-then-insert by natural key (replace=False: insert only); returns how many stored
    rows the rows replaced."""
    if accepted.height == 0:
        return 0
    spec = EXTRACTS[kind]
    staged = accepted.select([*spec.names, *(n for n, _ in LINEAGE_COLUMNS if n not in lineage)])
    _fw_staged = _scannable(con, staged)  # noqa: F841 — read by name in the SQL below (see _scannable)
    replaced = 0
    if replace:
        replaced = con.execute(f"delete from {kind} t using _fw_staged s where {_same_key(spec)}").fetchall()[0][0]
    cols = ", ".join([*spec.names, *(n for n, _ in LINEAGE_COLUMNS)])
    # The file's lineage (source, delivery, hash: one value for all its rows) as query parameters,
    # not as columns of the frame: DuckDB then stores a constant, not 200,000 copies of a 64-character
    # hash handed over from Polars (a 200k-row file written in 0.38 s instead of 0.44 s, medians of 8).
    values = ", ".join([*spec.names, *(f"${n}" if n in lineage else n for n, _ in LINEAGE_COLUMNS)])
    con.execute(f"insert into {kind} ({cols}) select {values} from _fw_staged", dict(lineage)).fetchall()
    return int(replaced or 0)


_SCAN_NAMES = ("_fw_staged", "_fw_rejected")


def _scannable(con, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame`, to be read by SQL through its Python variable name (a DuckDB replacement scan),
    never through con.register: inside the delivery's open transaction a registered view, even
    once unregistered, keeps its frame alive until the commit (its dropped catalog entry holds it
    for a rollback), so every chunk of a big delivery stayed in memory at once (+~2 GB RSS for
    the bench's 5.7M payments rows). A replacement scan holds the frame only while its statement
    runs. A table or view of the same name would be read instead: refused here."""
    clash = scalar(con, "select count(*) from duckdb_tables() where table_name in (?, ?)", list(_SCAN_NAMES)) \
        + scalar(con, "select count(*) from duckdb_views() where view_name in (?, ?)", list(_SCAN_NAMES))
    if clash:
        raise IngestError(f"the store holds a table or view named {' or '.join(_SCAN_NAMES)}: "
                          "drop it (a name ingest reserves for its own rows)")
    return frame


_DIGIT_RUN = re.compile(r"[0-9０-９]{4}")


def _write_rejected(con, kind: str, rejected: pl.DataFrame, lineage: dict[str, str]) -> None:
    if rejected.height == 0:
        return
    # A reason quotes the refused cell, and an ID number or card number may sit in the wrong column
    # (an amount, a date): masked, as in every message (`raw` keeps the row as delivered).
    # Each distinct reason once: a file refused whole gives every row the same one.
    reasons = rejected.get_column("reason").unique().drop_nulls().to_list()
    masked = {r: mask_ids_in_text(r) for r in reasons if _DIGIT_RUN.search(r)}
    if masked:
        rejected = rejected.with_columns(pl.col("reason").replace(masked))
    staged = rejected.select(
        pl.lit(kind).alias("extract"),
        pl.lit(lineage["_source_file"]).alias("source_file"),
        pl.col("_row_number").alias("row_number"),
        "column_name",
        "reason",
        "raw",
        pl.lit(lineage["_file_hash"]).alias("file_hash"),
        pl.lit(lineage["_delivery"]).alias("delivery"),
        pl.lit(china_now()).alias("rejected_at"),
    )
    _fw_rejected = _scannable(con, staged)  # noqa: F841 — read by name in the SQL below (see _scannable)
    con.execute("insert into rejected_rows by name select * from _fw_rejected").fetchall()
