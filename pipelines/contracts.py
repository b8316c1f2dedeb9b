"""Row contracts (行级数据契约): the pandera schema every normalised extract frame must satisfy.

The parsers in normalise.py do the work and explain each refusal; this is the last gate before
rows reach the store, written from the same spec (pipelines/extracts.py) so a parser that drifts
from the contract is caught here, row by row, instead of reaching the rules as a wrong value.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

import pandera.polars as pa
import polars as pl

from .extracts import EXTRACTS, INSURANCE_TYPES, Column
from .privacy import mask_id
from .normalise import ID_PATTERN, MAX_YEAR, MIN_PERIOD, MIN_YEAR, id_check_digit_ok, max_period

POLARS_TYPES: dict[str, pl.DataType] = {
    "id": pl.Utf8,
    "text": pl.Utf8,
    "date": pl.Date,
    "datetime": pl.Datetime("us"),
    "period": pl.Utf8,
    "money": pl.Decimal(18, 2),
    "insurance_type": pl.Utf8,
}


def _id_check(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(id_check_digit_ok(pl.col(data.key)))


def _checks(col: Column, today: dt.date) -> list[pa.Check]:
    if col.type == "id":
        return [pa.Check.str_matches(ID_PATTERN), pa.Check(_id_check, name="gb11643_check_digit")]
    if col.type == "period":
        return [pa.Check.str_matches(r"^[0-9]{4}(0[1-9]|1[0-2])$"),
                pa.Check.in_range(MIN_PERIOD, max_period(today))]
    if col.type == "insurance_type":
        return [pa.Check.isin(list(INSURANCE_TYPES))]
    if col.type == "date":
        return [pa.Check.in_range(dt.date(MIN_YEAR, 1, 1), dt.date(MAX_YEAR, 12, 31))]
    if col.type == "datetime":
        return [pa.Check.in_range(dt.datetime(MIN_YEAR, 1, 1), dt.datetime(MAX_YEAR, 12, 31, 23, 59, 59))]
    if col.allowed:
        return [pa.Check.isin(list(col.allowed))]
    if col.type == "text":
        # Stored text is trimmed and never the empty string (empty means missing).
        return [pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).str.strip_chars().str.len_bytes() > 0),
                         name="trimmed_not_empty")]
    return []


@lru_cache(maxsize=None)
def _schema(kind: str, today: dt.date) -> pa.DataFrameSchema:
    spec = EXTRACTS[kind]
    columns = {
        c.name: pa.Column(POLARS_TYPES[c.type], checks=_checks(c, today), nullable=not c.required)
        for c in spec.columns
    }
    return pa.DataFrameSchema(columns, name=kind, strict=False, unique=list(spec.key))


def schema_for(kind: str, today: dt.date | None = None) -> pa.DataFrameSchema:
    """The contract of one extract's normalised frame (canonical columns, stored types)."""
    return _schema(kind, today or dt.date.today())


_ID_IN_TEXT = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}")


def mask_ids_in_text(text: str) -> str:
    """A refused value may be an ID number: never put a full one in a reason."""
    return _ID_IN_TEXT.sub(lambda m: mask_id(m.group(0)), text)


def failing_rows(kind: str, frame: pl.DataFrame, today: dt.date | None = None) -> dict[int, str]:
    """Validate lazily; {row index in `frame`: reason} for every row that breaks the contract."""
    try:
        schema_for(kind, today).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        out: dict[int, str] = {}
        cases = exc.failure_cases
        for index, column, check, case in cases.select("index", "column", "check", "failure_case").iter_rows():
            if index is None:
                continue
            what = f"{column}: {check}" if column else str(check)
            reason = mask_ids_in_text(f"数据契约校验失败 ({what}, 值 {case!r})")
            out.setdefault(int(index), reason)
        if not out and len(cases):
            # A frame-level failure with no row (wrong dtype): every row is suspect.
            reason = "数据契约校验失败: " + "; ".join(str(c) for c in cases.get_column("check").unique())
            out = {i: reason for i in range(frame.height)}
        return out
    return {}
