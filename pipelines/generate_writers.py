"""Streaming file writers for the generator: CSV (GB18030 / UTF-8 BOM / UTF-8), XLSX, Parquet.

Rows arrive as tuples in the canonical column order of pipelines.extracts with typed values:
date → datetime.date, datetime → (date, seconds of day), period → int YYYYMM, money → int fen.
Each file has its own "dialect" (header language, date form, period form, thousands separators)
so a delivery looks like what several government systems export. Writers append batch by batch
and never hold more than one batch.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xlsxwriter

from pipelines.extracts import EXTRACTS

FLAVOURS = ("csv_gb18030_zh", "csv_bom_zh", "csv_utf8", "xlsx", "parquet")
DATE_FORMS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d")
XLSX_MAX_ROWS = 1_000_000  # Excel holds 1,048,576 rows; a bigger extract rolls over to _2, _3 …
_FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def money_text(fen: int, separators: bool = False) -> str:
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}" if separators else f"{sign}{yuan}.{cents:02d}"


@dataclass(frozen=True)
class Dialect:
    flavour: str
    date_form: str = "%Y-%m-%d"
    period_dash: bool = False  # YYYY-MM instead of YYYYMM
    separators: bool = False  # money as 1,234.56
    excel_dates: bool = False  # XLSX: dates as real Excel dates, money as numbers

    @property
    def ext(self) -> str:
        return {"xlsx": "xlsx", "parquet": "parquet"}.get(self.flavour, "csv")


def dialect_for(fmt: str, kind_i: int, city_i: int, night: int) -> Dialect:
    if fmt == "parquet":
        return Dialect("parquet")
    if fmt == "csv":
        return Dialect("csv_utf8")
    flavour = FLAVOURS[(kind_i + city_i + night) % len(FLAVOURS)]
    return Dialect(
        flavour,
        date_form=DATE_FORMS[(2 * kind_i + city_i + night) % 3],
        period_dash=(kind_i + city_i) % 2 == 1,
        separators=flavour.startswith("csv") and flavour != "csv_utf8" and (city_i + night) % 2 == 0,
        excel_dates=flavour == "xlsx" and (kind_i + night) % 2 == 0,
    )


class _Texts:
    """Text forms of typed values for one dialect (dates cached: a run has few distinct dates)."""

    def __init__(self, d: Dialect):
        self.d = d
        self._dates: dict[date, str] = {}

    def date(self, v: date | None) -> str:
        if v is None:
            return ""
        s = self._dates.get(v)
        if s is None:
            s = self._dates[v] = v.strftime(self.d.date_form)
        return s

    def datetime(self, v) -> str:
        if v is None:
            return ""
        if isinstance(v, date):  # a bare date is midnight
            return self.date(v)
        d, secs = v
        dform = self.d.date_form if self.d.date_form != "%Y%m%d" else "%Y-%m-%d"
        h, rem = divmod(secs, 3600)
        return f"{d.strftime(dform)} {h:02d}:{rem // 60:02d}:{rem % 60:02d}"

    def period(self, v: int | None) -> str:
        if v is None:
            return ""
        return f"{v // 100}-{v % 100:02d}" if self.d.period_dash else str(v)

    def money(self, v: int | None) -> str:
        return "" if v is None else money_text(v, self.d.separators)


class FileWriter:
    """One extract file, appended to in batches; XLSX rolls over to a new part when full."""

    def __init__(self, path: Path, kind: str, dialect: Dialect):
        self.path, self.kind, self.d = path, kind, dialect
        self.ex = EXTRACTS[kind]
        self.types = [c.type for c in self.ex.columns]
        self.texts = _Texts(dialect)
        self.rows = 0
        self.paths: list[Path] = []
        self._fh = self._csv = self._pq = self._wb = None
        self._part_rows = 0
        self._ids = 0

    # --- header -----------------------------------------------------------------------------
    def _header(self) -> list[str]:
        zh = self.d.flavour.endswith("_zh") or (self.d.flavour == "xlsx" and not self.d.excel_dates)
        return [c.alias if zh else c.name for c in self.ex.columns]

    # --- text rows ----------------------------------------------------------------------------
    def _id_text(self, v: str) -> str:
        """公民身份号码 as clerks' systems really export them (CONTRACT §1 says what to normalise):
        a lowercase x (GB18030 exports), now and then surrounding spaces, full-width digits (BOM
        exports) or the 15-digit legacy number (UTF-8 exports) — all the same valid identity."""
        self._ids += 1
        f = self.d.flavour
        if f == "csv_gb18030_zh":
            v = v.replace("X", "x")
        if f == "csv_bom_zh" and self._ids % 31 == 0:
            v = v.translate(_FULL_WIDTH)
        if f == "csv_utf8" and self._ids % 37 == 0 and v[6:8] == "19":
            v = v[:6] + v[8:17]
        if self._ids % 29 == 0:
            v = f" {v} "
        return v

    def _text_row(self, row: tuple) -> list[str]:
        t = self.texts
        out = []
        for v, typ in zip(row, self.types):
            if typ == "id" and v is not None:
                out.append(self._id_text(v))
            elif typ == "date":
                out.append(t.date(v))
            elif typ == "datetime":
                out.append(t.datetime(v))
            elif typ == "period":
                out.append(t.period(v))
            elif typ == "money":
                out.append(t.money(v))
            else:
                out.append("" if v is None else v)
        return out

    def write(self, rows: list[tuple]) -> None:
        if not rows:
            return
        f = self.d.flavour
        if f.startswith("csv"):
            self._write_csv(rows)
        elif f == "xlsx":
            self._write_xlsx(rows)
        else:
            self._write_parquet(rows)
        self.rows += len(rows)

    def _write_csv(self, rows):
        if self._fh is None:
            enc = {"csv_gb18030_zh": "gb18030", "csv_bom_zh": "utf-8-sig"}.get(self.d.flavour, "utf-8")
            self._fh = open(self.path, "w", encoding=enc, newline="")
            self._csv = csv.writer(self._fh, lineterminator="\r\n" if enc == "gb18030" else "\n")
            self._csv.writerow(self._header())
            self.paths.append(self.path)
        self._csv.writerows(self._text_row(r) for r in rows)

    def _open_xlsx(self):
        part = len(self.paths) + 1
        path = self.path if part == 1 else self.path.with_name(f"{self.path.stem}_{part}.xlsx")
        self._wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self._ws = self._wb.add_worksheet(self.ex.title)
        self._fmt_date = self._wb.add_format({"num_format": "yyyy-mm-dd"})
        self._fmt_dt = self._wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self._fmt_money = self._wb.add_format({"num_format": "#,##0.00"})
        self._ws.write_row(0, 0, self._header())
        self._part_rows = 0
        self.paths.append(path)

    def _write_xlsx(self, rows):
        import datetime as _dt

        for row in rows:
            if self._wb is None or self._part_rows >= XLSX_MAX_ROWS:
                if self._wb is not None:
                    self._wb.close()
                self._open_xlsx()
            self._part_rows += 1
            r = self._part_rows
            if not self.d.excel_dates:
                for c, s in enumerate(self._text_row(row)):
                    if s != "":
                        self._ws.write_string(r, c, s)
                continue
            for c, (v, typ) in enumerate(zip(row, self.types)):
                if v is None:
                    continue
                if typ == "date":
                    self._ws.write_datetime(r, c, _dt.datetime(v.year, v.month, v.day), self._fmt_date)
                elif typ == "datetime":
                    if isinstance(v, date):
                        v = (v, 0)
                    d, secs = v
                    dt = _dt.datetime(d.year, d.month, d.day) + _dt.timedelta(seconds=secs)
                    self._ws.write_datetime(r, c, dt, self._fmt_dt)
                elif typ == "money":
                    self._ws.write_number(r, c, v / 100, self._fmt_money)
                elif typ == "period":
                    self._ws.write_string(r, c, self.texts.period(v))
                else:
                    self._ws.write_string(r, c, v)

    def _arrow_schema(self) -> pa.Schema:
        m = {
            "date": pa.date32(),
            "datetime": pa.timestamp("s"),
            "money": pa.decimal128(18, 2),
        }
        return pa.schema([(c.name, m.get(c.type, pa.string())) for c in self.ex.columns])

    def _write_parquet(self, rows):
        if self._pq is None:
            self._schema = self._arrow_schema()
            self._pq = pq.ParquetWriter(str(self.path), self._schema, compression="zstd")
            self.paths.append(self.path)
        cols = list(zip(*rows))
        arrays = []
        epoch = date(1970, 1, 1).toordinal()
        for values, typ, field in zip(cols, self.types, self._schema):
            if typ == "date":
                arrays.append(pa.array([None if v is None else v.toordinal() - epoch for v in values], pa.int32()).cast(pa.date32()))
            elif typ == "datetime":
                secs = []
                for v in values:
                    if v is None:
                        secs.append(None)
                    elif isinstance(v, date):
                        secs.append((v.toordinal() - epoch) * 86400)
                    else:
                        secs.append((v[0].toordinal() - epoch) * 86400 + v[1])
                arrays.append(pa.array(secs, pa.int64()).cast(pa.timestamp("s")))
            elif typ == "money":
                arrays.append(_decimal_array(values))
            elif typ == "period":
                arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
            else:
                arrays.append(pa.array(values, pa.string()))
        self._pq.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        if self._wb is not None:
            self._wb.close()
        if self._pq is not None:
            self._pq.close()


def _decimal_array(fens) -> pa.Array:
    """decimal128(18,2) straight from integer fen: the unscaled value is the fen count (exact)."""
    valid = np.array([v is not None for v in fens], dtype=bool)
    lo = np.array([0 if v is None else v for v in fens], dtype=np.int64)
    words = np.empty((len(lo), 2), dtype=np.int64)
    words[:, 0] = lo
    words[:, 1] = np.where(lo < 0, -1, 0)
    mask = None if valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(lo), [mask, pa.py_buffer(words.tobytes())])


PROVINCE = "360000"


class Delivery:
    """All files of one run: one writer per (night, kind, city), opened on first use.

    split="city": each city's system exports its own files (the usual case); split="province":
    one provincial file per kind and night (a 省集中 system), few files for quick tests."""

    def __init__(self, out_dir: Path, nights: list[date], fmt: str, split: str = "city", part: int = 0):
        self.out_dir, self.nights, self.fmt, self.split = out_dir, nights, fmt, split
        # part > 0: one worker's share of a parallel run, in files of its own (…_202611_w2.parquet)
        self.suffix = f"_w{part}" if part else ""
        self._writers: dict[tuple[int, str, str], FileWriter] = {}
        self._buf: dict[tuple[int, str, str], list[tuple]] = {}
        self.counts: dict[str, int] = {k: 0 for k in EXTRACTS}

    def add(self, night: int, kind: str, city: str, row: tuple) -> None:
        if self.split == "province":
            city = PROVINCE
        self._buf.setdefault((night, kind, city), []).append(row)

    def flush(self) -> None:
        from pipelines.generate_ids import CITIES

        kinds = list(EXTRACTS)
        for key in sorted(self._buf):
            rows = self._buf[key]
            night, kind, city = key
            w = self._writers.get(key)
            if w is None:
                day = self.nights[night]
                folder = self.out_dir / "inbox" / day.isoformat()
                folder.mkdir(parents=True, exist_ok=True)
                city_i = CITIES.index(city) if city in CITIES else 0
                d = dialect_for(self.fmt, kinds.index(kind), city_i, night)
                w = self._writers[key] = FileWriter(folder / f"{kind}_{city}_{day:%Y%m}{self.suffix}.{d.ext}", kind, d)
            w.write(rows)
            self.counts[kind] += len(rows)
        self._buf.clear()

    def close(self) -> list[Path]:
        self.flush()
        paths = []
        for w in self._writers.values():
            w.close()
            paths.extend(w.paths)
        return sorted(paths)
