"""Row contracts (行级数据契约): the pandera schema every normalised extract frame must satisfy.

The parsers in normalise.py do the work and explain each refusal; this is the last gate before
rows reach the store, written from the same spec (pipelines/extracts.py) so a parser that drifts
from the contract is caught here, row by row, instead of reaching the rules as a wrong value.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import pandera.polars as pa
import polars as pl

from .extracts import EXTRACTS, INSURANCE_TYPES, Column
from .clock import china_today
from .privacy import mask_ids_in_text
from .normalise import ID_PATTERN, MAX_YEAR, MIN_PERIOD, MIN_YEAR, id_check_digit_ok, max_period, repeats

POLARS_TYPES: dict[str, pl.DataType] = {
    "id": pl.Utf8,
    "text": pl.Utf8,
    "account": pl.Utf8,
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
        # (any moment of the last year's last second: 23:59:59.5 is within the years ingest accepts)
        return [pa.Check.in_range(dt.datetime(MIN_YEAR, 1, 1), dt.datetime(MAX_YEAR, 12, 31, 23, 59, 59, 999999))]
    if col.allowed:
        return [pa.Check.isin(list(col.allowed))]
    if col.type in ("text", "account"):
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
    return _schema(kind, today or china_today())


def _cases(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame | None:
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return exc.failure_cases.select("index", "column", "check", "failure_case")
    return None


def failing_rows(kind: str, frame: pl.DataFrame, today: dt.date | None = None) -> dict[int, str]:
    """Validate lazily; {row index in `frame`: reason} for every row that breaks the contract.

    Every column check is a rule about one value, so a column that repeats its values (periods,
    dates, a person's id on each payment) is validated on its distinct values and a failure is
    traced back to every row holding that value: the same verdicts as validating the whole frame,
    at the cost of the distinct values. Two pandera validations in all (pandera's own cost is per
    validation and per check): the frame itself, for the natural-key uniqueness and the columns
    that hardly repeat (and any column missing); and one frame of the repeating columns' distinct
    values side by side, each column cycled through its values to the longest one's length.
    Failure cases are only computed when a check fails."""
    schema = _schema(kind, today or china_today())
    repeating = [n for n in schema.columns if n in frame.columns and repeats(frame.get_column(n))]
    whole = pa.DataFrameSchema({n: c for n, c in schema.columns.items() if n not in repeating},
                               name=kind, unique=schema.unique)
    found: list[tuple[int | None, object, object, object]] = []
    cases = _cases(whole, frame)
    if cases is not None:
        found += cases.iter_rows()
    if not repeating:
        return _reasons(found, frame.height, list(schema.columns))
    # (The distinct values of all repeating columns in one parallel run.)
    distinct = {n: d.get_column(n) for n, d in
                zip(repeating, pl.collect_all([frame.lazy().select(pl.col(n).unique()) for n in repeating]))}
    height = max(len(s) for s in distinct.values())
    cycle = pl.int_range(0, height, eager=True)
    side_by_side = pl.DataFrame([s.gather(cycle % len(s)) if len(s) else s for s in distinct.values()])
    cases = _cases(pa.DataFrameSchema({n: schema.columns[n] for n in repeating}, name=kind), side_by_side)
    if cases is None:
        return _reasons(found, frame.height, list(schema.columns))
    found += [row for row in cases.iter_rows() if row[0] is None]
    for name, values in distinct.items():
        # Rows past a column's own distinct values only repeat verdicts already given.
        bad = (cases.filter((pl.col("column") == name) & (pl.col("index") < len(values)))
               .with_columns(pl.col("index").cast(pl.UInt32)).with_row_index("_k"))
        if not bad.height:
            continue
        rows = (frame.select(name).with_row_index("_i")
                .join(values.to_frame().with_row_index("_u").join(bad, left_on="_u", right_on="index"),
                      on=name, nulls_equal=True)
                .sort("_i", "_k"))
        found += rows.select("_i", "column", "check", "failure_case").iter_rows()
    return _reasons(found, frame.height, list(schema.columns))


def _reasons(found: list[tuple], height: int, columns: list[str]) -> dict[int, str]:
    """{row: its first failure as a reason}, the key uniqueness first, then the columns in the
    contract's order; a failure with no row (a wrong dtype, a missing column) makes every row suspect."""
    rank = {name: i + 1 for i, name in enumerate(columns)}
    found = sorted(found, key=lambda case: rank.get(case[1], 0) if case[1] else 0)
    out: dict[int, str] = {}
    for index, column, check, case in found:
        if index is None:
            continue
        what = f"{column}: {check}" if column else str(check)
        reason = mask_ids_in_text(f"数据契约校验失败 ({what}, 值 {case!r})")
        out.setdefault(int(index), reason)
    if not out and found:
        # A frame-level failure with no row (wrong dtype): every row is suspect.
        checks = dict.fromkeys(str(c[2]) for c in found)
        reason = "数据契约校验失败: " + "; ".join(checks)
        out = {i: reason for i in range(height)}
    return out
