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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from . import contracts
from .extracts import EXTRACTS, FILE_SUFFIXES, kind_of_file
from .normalise import column_exprs, label
from .privacy import mask_id
from .store import LINEAGE_COLUMNS, ensure_schema, scalar, transaction


class IngestError(Exception):
    """Ingest could not run at all (missing inbox, a delivery that could not be written)."""


class FileProblem(Exception):
    """One file cannot be read at all (empty, damaged, unknown kind, bad header): the file fails."""


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


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    deliveries: list[str] = field(default_factory=list)

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


def today_shanghai() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


def reason_category(reason: str) -> str:
    """'发放金额(amount) 超过2位小数: '12.345'' -> '发放金额(amount) 超过2位小数' (values and numbers out)."""
    head = reason.split(";")[0].split(":")[0].strip()
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "''", head))


# ------------------------------------------------------------------------------- reading (every column as text)

@dataclass
class RawFrame:
    """A delivered file as text: headers as delivered (trimmed), columns c0..cN (Utf8) plus
    _row_number (1-based data row), and rows refused while reading: (row, column, reason, raw)."""
    headers: list[str]
    data: pl.DataFrame
    bad_rows: list[tuple] = field(default_factory=list)


def _header(h) -> str:
    return ("" if h is None else str(h)).replace("\ufeff", "").strip()


def read_raw(path: Path, data: bytes) -> RawFrame:
    if not data.strip():
        raise FileProblem("empty file (not even a header row)")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(data)
    if suffix == ".xlsx":
        return _read_xlsx(data)
    if suffix == ".parquet":
        return _read_parquet(data)
    raise FileProblem(f"unsupported format '{suffix}': deliver CSV, XLSX or Parquet")


def _frame(columns: list[list], row_numbers: list[int], n: int) -> pl.DataFrame:
    data = {f"c{i}": pl.Series(f"c{i}", columns[i] if columns else [], dtype=pl.Utf8) for i in range(n)}
    return pl.DataFrame({**data, "_row_number": pl.Series(row_numbers, dtype=pl.Int64)})


def _read_csv(data: bytes) -> RawFrame:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # No marker and not UTF-8: Chinese government systems export GBK, a subset of GB18030.
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise FileProblem(f"text is neither UTF-8 nor GB18030 (byte {exc.start}): re-export as UTF-8") from exc
        data = text.encode("utf-8")
    if not text.strip():
        raise FileProblem("empty file (not even a header row)")
    headers = [_header(h) for h in next(csv.reader(io.StringIO(text)))]
    fast = None if "\x00" in text else _read_csv_fast(data, len(headers))
    if fast is not None:
        return RawFrame(headers, fast)
    return _read_csv_rows(text, headers)


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
    df = df.filter(~pl.all_horizontal(pl.all().is_null()))  # blank lines
    if b"\x1f" in data:
        return None
    lines = pl.read_csv(io.BytesIO(data), has_header=False, separator="\x1f", quote_char=None,
                        new_columns=["l"], infer_schema=False).get_column("l")
    lines = lines.str.strip_suffix("\r").filter(lines.is_not_null() & (lines.str.strip_chars() != ""))
    quotes = lines.str.count_matches('"', literal=True)
    if quotes.sum() % 2:
        return None  # an unterminated quote: a truncated file
    if quotes.sum():
        # Lines inside a quoted field (odd quote parity before them) belong to the record above.
        records = pl.DataFrame({"l": lines, "start": ((quotes.cum_sum() - quotes) % 2 == 0)})
        records = records.with_columns(pl.col("start").cum_sum().alias("r")).group_by("r", maintain_order=True)
        lines = records.agg(pl.col("l").str.join("\n")).get_column("l").str.replace_all(r'"[^"]*"', "")
    fields = lines.str.count_matches(",", literal=True) + 1
    if len(fields) - 1 != df.height or (fields != n).any():
        return None
    return df.with_row_index("_row_number", offset=1).with_columns(pl.col("_row_number").cast(pl.Int64))


def _read_csv_rows(text: str, headers: list[str]) -> RawFrame:
    """Python's csv module, one record at a time: a ragged or damaged row is refused on its own and
    the good rows still ingest."""
    n = len(headers)
    reader = csv.reader(io.StringIO(text))
    next(reader)
    cols: list[list] = [[] for _ in range(n)]
    numbers: list[int] = []
    bad: list[tuple] = []
    row_number = 0
    for record in reader:
        if not record:
            continue
        row_number += 1
        problem = None
        if any("\x00" in f for f in record):
            problem = "row contains a NUL character (damaged file): re-export it"
        elif len(record) > n:
            problem = f"too many fields: {len(record)}, expected {n}"
        elif len(record) < n:
            problem = f"too few fields: {len(record)}, expected {n} (a truncated or broken line)"
        if problem:
            raw = json.dumps([f.replace("\x00", "\\0") for f in record], ensure_ascii=False)
            bad.append((row_number, None, problem, raw))
            continue
        numbers.append(row_number)
        for i, f in enumerate(record):
            cols[i].append(f)
    return RawFrame(headers, _frame(cols, numbers, n), bad)


def _cell_text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d") if v.time() == dt.time(0) else v.isoformat(sep=" ")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, float):
        if abs(v) >= 1e15:
            return f"{v:.15G}"  # Excel kept 15 digits: show it as the scientific notation it is
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    return str(v)


def _read_xlsx(data: bytes) -> RawFrame:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise FileProblem(f"unreadable XLSX (damaged or truncated file: {type(exc).__name__})") from exc
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header_row = next(rows, None)
        if header_row is None or all(h is None for h in header_row):
            raise FileProblem("empty workbook: the first sheet has no header row")
        headers = [_header(h) for h in header_row]
        while headers and not headers[-1]:
            headers.pop()
        n = len(headers)
        cols: list[list] = [[] for _ in range(n)]
        numbers: list[int] = []
        bad: list[tuple] = []
        for sheet_row, values in enumerate(rows, start=1):
            cells = [_cell_text(v) for v in values]
            if all(c is None or not c.strip() for c in cells):
                continue  # blank (often formatted) rows
            extra = [c for c in cells[n:] if c is not None and c.strip()]
            if extra:
                last = max(i for i, c in enumerate(cells) if c is not None and c.strip()) + 1
                bad.append((sheet_row, None, f"too many fields: {last}, expected {n}",
                            json.dumps(cells, ensure_ascii=False)))
                continue
            cells = (cells + [None] * n)[:n]
            numbers.append(sheet_row)
            for i, c in enumerate(cells):
                cols[i].append(c)
    except FileProblem:
        raise
    except Exception as exc:
        raise FileProblem(f"unreadable XLSX (damaged or truncated file: {type(exc).__name__})") from exc
    finally:
        wb.close()
    return RawFrame(headers, _frame(cols, numbers, n), bad)


def _read_parquet(data: bytes) -> RawFrame:
    try:
        df = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise FileProblem(f"unreadable Parquet (damaged or truncated file: {type(exc).__name__})") from exc
    headers = [_header(h) for h in df.columns]
    out = df.select(
        [pl.col(c).cast(pl.Utf8).alias(f"c{i}") for i, c in enumerate(df.columns)]
    ).with_row_index("_row_number", offset=1).with_columns(pl.col("_row_number").cast(pl.Int64))
    return RawFrame(headers, out)


# ------------------------------------------------------------------------------- the inbox

_IGNORED_PREFIXES = (".", "~$")  # hidden files, Office lock files of an open workbook


def list_deliveries(inbox: Path) -> list[tuple[str, list[Path]]]:
    """[(delivery name, files)] in the order they are ingested. Loose files in the inbox itself form
    one delivery named after the inbox, ingested before the sub-folders."""
    def visible(p: Path) -> bool:
        return p.is_file() and not p.name.startswith(_IGNORED_PREFIXES)

    out = []
    loose = sorted(p for p in inbox.iterdir() if visible(p))
    if loose:
        out.append((inbox.name or str(inbox), loose))
    for folder in sorted((d for d in inbox.iterdir() if d.is_dir() and not d.name.startswith(".")),
                         key=lambda d: d.name):
        files = sorted((p for p in folder.rglob("*") if visible(p)
                        and not any(part.startswith(".") for part in p.relative_to(folder).parts)),
                       key=lambda p: p.relative_to(folder).as_posix())
        if files:
            out.append((folder.name, files))
    return out


def ingest_inbox(con: duckdb.DuckDBPyConnection, inbox: Path, run_id: str | None = None,
                 on_file: Callable[[FileResult], None] | None = None) -> IngestReport:
    """Ingest every new file under `inbox`; one transaction per delivery, in delivery-name order."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise IngestError(f"inbox folder not found: {inbox} (check --inbox)")
    ensure_schema(con)
    report = IngestReport()
    today = today_shanghai()
    for delivery, files in list_deliveries(inbox):
        try:
            with transaction(con):
                for path in files:
                    result = _ingest_file(con, inbox, delivery, path, run_id, today)
                    report.files.append(result)
                    if on_file is not None:
                        on_file(result)
        except duckdb.Error as exc:
            raise IngestError(f"delivery {delivery} could not be written and was rolled back: {exc}") from exc
        report.deliveries.append(delivery)
    return report


# ------------------------------------------------------------------------------- one file

def _ingest_file(con, inbox: Path, delivery: str, path: Path, run_id: str | None, today: dt.date) -> FileResult:
    source = path.relative_to(inbox).as_posix()
    kind = kind_of_file(path)
    result = FileResult(path=path, kind=kind, delivery=delivery, status="failed")
    if kind is None and path.suffix.lower() not in FILE_SUFFIXES:
        result.status, result.message = "skipped", f"{source}: not an extract file (ignored)"
        return result
    data = path.read_bytes()
    result.file_hash = file_hash = hashlib.sha256(data).hexdigest()
    seen = con.execute("select source_file, delivery from ingest_ledger where file_hash = ?", [file_hash]).fetchall()
    if seen:
        result.status = "skipped"
        result.message = f"{source}: already ingested (same content as {seen[0][0]} in delivery {seen[0][1]})"
        return result
    try:
        if kind is None:
            known = ", ".join(EXTRACTS)
            raise FileProblem(f"unknown extract kind: the file name must start with one of {known}")
        raw = read_raw(path, data)
        accepted, rejected = normalise_frame(kind, raw, today)
    except FileProblem as exc:
        return _fail(con, result, source, str(exc), run_id)
    except Exception as exc:  # a reader library's own error on a damaged file: report it, keep going
        return _fail(con, result, source, f"could not be read ({type(exc).__name__}: {exc})", run_id)

    lineage = {"_source_file": source, "_delivery": delivery, "_file_hash": file_hash}
    result.rows_replaced = _write_rows(con, kind, accepted, lineage)
    _write_rejected(con, kind, rejected, lineage)
    result.status = "ingested"
    result.rows_accepted = accepted.height
    result.rows_rejected = rejected.height
    result.rows_total = accepted.height + rejected.height
    result.rejected_by_reason = _categories(rejected)
    result.message = (f"{source}: {result.rows_accepted} rows accepted ({result.rows_replaced} replaced), "
                      f"{result.rows_rejected} rejected")
    con.execute(
        "insert into ingest_ledger values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [file_hash, source, delivery, kind, result.rows_total, result.rows_accepted, result.rows_rejected,
         result.rows_replaced, dt.datetime.now(), run_id],
    )
    return result


def _fail(con, result: FileResult, source: str, problem: str, run_id: str | None) -> FileResult:
    """A file that cannot be read at all: reported, and kept durably in rejected_rows (row 0) so it is
    not lost; not entered in the ledger, so a corrected re-delivery (or this one, fixed) is read."""
    result.status = "failed"
    result.message = f"{source}: {problem}"
    already = scalar(con, "select count(*) from rejected_rows where file_hash = ? and row_number = 0 and reason = ?",
                     [result.file_hash, problem])
    if not already:
        con.execute(
            "insert into rejected_rows values (?, ?, 0, null, ?, null, ?, ?, ?)",
            [result.kind, source, problem, result.file_hash, result.delivery, dt.datetime.now()],
        )
    return result


# ------------------------------------------------------------------------------- normalise + validate

_REJECT_COLUMNS = {"_row_number": pl.Int64, "column_name": pl.Utf8, "reason": pl.Utf8, "raw": pl.Utf8}


def _raw_json(raw: RawFrame) -> pl.Expr:
    names = [h if h else f"column{i + 1}" for i, h in enumerate(raw.headers)]
    return pl.struct([pl.col(f"c{i}").alias(n) for i, n in enumerate(names)]).struct.json_encode()


def normalise_frame(kind: str, raw: RawFrame, today: dt.date | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted rows in stored types + _row_number, rejected rows: _row_number, column_name, reason, raw)."""
    spec = EXTRACTS[kind]
    today = today or today_shanghai()
    positions = _map_headers(kind, raw.headers)
    exprs: list[pl.Expr] = []
    for col in spec.columns:
        src = pl.col(f"c{positions[col.name]}") if col.name in positions else pl.lit(None, pl.Utf8)
        value, reason = column_exprs(src, col, today)
        exprs += [value.alias(col.name), reason.alias(f"_r_{col.name}")]
    reasons = [pl.col(f"_r_{c.name}") for c in spec.columns]
    frame = (
        raw.data.lazy()
        .with_columns(exprs)
        .with_columns(
            pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("reason"),
            pl.coalesce([pl.when(r.is_not_null()).then(pl.lit(c.name)) for r, c in zip(reasons, spec.columns)])
            .alias("column_name"),
        )
        .collect()
    )
    bad = frame.filter(pl.col("column_name").is_not_null())
    good = frame.filter(pl.col("column_name").is_null())

    # The same key twice in one file: the later row is the correction; the earlier one is recorded.
    key = list(spec.key)
    good = good.with_columns(pl.col("_row_number").max().over(key).alias("_kept_row"))
    dupes = good.filter(pl.col("_row_number") != pl.col("_kept_row")).with_columns(
        pl.lit("+".join(key)).alias("column_name"),
        pl.format(f"duplicate {' + '.join(key)} in this file; the later row (row {{}}) was kept",
                  pl.col("_kept_row")).alias("reason"),
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
            pl.Series("reason", [_mask_ids(r) for r in failing.values()], dtype=pl.Utf8),
            pl.lit("(row contract)").alias("column_name"),
        )
        keep = pl.Series([True] * accepted.height)
        keep[list(failing)] = False
        accepted = accepted.filter(keep)

    parts = [bad, dupes] + ([contract_bad] if failing else [])
    rejected = pl.concat(
        [p.select(pl.col("_row_number"), pl.col("column_name"), pl.col("reason"), _raw_json(raw).alias("raw"))
         for p in parts],
        how="vertical",
    )
    if raw.bad_rows:
        rejected = pl.concat([rejected, pl.DataFrame(raw.bad_rows, schema=_REJECT_COLUMNS, orient="row")])
    return accepted, rejected.sort("_row_number")


_ID_IN_TEXT = re.compile(r"[0-9]{17}[0-9Xx]")


def _mask_ids(text: str) -> str:
    return _ID_IN_TEXT.sub(lambda m: mask_id(m.group(0)), text)


def _map_headers(kind: str, headers: list[str]) -> dict[str, int]:
    """Canonical column -> position. Duplicated headers and missing required columns fail the file."""
    spec = EXTRACTS[kind]
    hmap = spec.header_map()
    seen: dict[str, int] = {}
    positions: dict[str, int] = {}
    for i, h in enumerate(headers):
        if h and h in seen:
            raise FileProblem(f"duplicated header: '{h}' appears in columns {seen[h] + 1} and {i + 1}")
        seen[h] = i
        name = hmap.get(h)
        if name is None:
            continue  # extra columns are kept in raw only
        if name in positions:
            first = headers[positions[name]]
            raise FileProblem(f"duplicated header: '{first}' and '{h}' are both {label(spec.column(name))}")
        positions[name] = i
    missing = [label(c) for c in spec.columns if c.required and c.name not in positions]
    if missing:
        raise FileProblem(f"missing required column {', '.join(missing)} (header: {', '.join(headers)})")
    return positions


def _categories(rejected: pl.DataFrame) -> dict[str, int]:
    out: dict[str, int] = {}
    for reason in rejected.get_column("reason").to_list():
        cat = reason_category(reason or "")
        out[cat] = out.get(cat, 0) + 1
    return out


# ------------------------------------------------------------------------------- writing

def _write_rows(con, kind: str, accepted: pl.DataFrame, lineage: dict[str, str]) -> int:
    """Delete-then-insert by natural key; returns how many stored rows the file replaced."""
    if accepted.height == 0:
        return 0
    spec = EXTRACTS[kind]
    staged = accepted.with_columns(
        *(pl.lit(v, pl.Utf8).alias(k) for k, v in lineage.items())
    ).select([*spec.names, *(n for n, _ in LINEAGE_COLUMNS)])
    con.register("_fw_staged", staged)
    try:
        # `is not distinct from`: a key part may be empty (contributions.employer_id) and still match.
        on = " and ".join(f"t.{k} is not distinct from s.{k}" for k in spec.key)
        replaced = con.execute(f"delete from {kind} t using _fw_staged s where {on}").fetchall()[0][0]
        cols = ", ".join([*spec.names, *(n for n, _ in LINEAGE_COLUMNS)])
        con.execute(f"insert into {kind} ({cols}) select {cols} from _fw_staged").fetchall()
    finally:
        con.unregister("_fw_staged")
    return int(replaced or 0)


def _write_rejected(con, kind: str, rejected: pl.DataFrame, lineage: dict[str, str]) -> None:
    if rejected.height == 0:
        return
    staged = rejected.select(
        pl.lit(kind).alias("extract"),
        pl.lit(lineage["_source_file"]).alias("source_file"),
        pl.col("_row_number").alias("row_number"),
        "column_name",
        "reason",
        "raw",
        pl.lit(lineage["_file_hash"]).alias("file_hash"),
        pl.lit(lineage["_delivery"]).alias("delivery"),
        pl.lit(dt.datetime.now()).alias("rejected_at"),
    )
    con.register("_fw_rejected", staged)
    try:
        con.execute("insert into rejected_rows by name select * from _fw_rejected").fetchall()
    finally:
        con.unregister("_fw_rejected")
