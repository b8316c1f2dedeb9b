"""Normalising and validating an extract's rows (校验): a RawFrame (every column as text) becomes the
rows accepted — typed as the store holds them — and the rows rejected, each with its row number, the
column at fault and the reason: vectorised Polars expressions (pipelines/normalise.py), then the
pandera row contract (pipelines/contracts.py). Nothing here touches the store."""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

from . import contracts
from .clock import china_today
from .extracts import EXTRACTS, TOTAL_ROW_SPACING, TOTAL_ROW_WORDS
from .normalise import (FORMAT_CHARACTERS, TEXT_MARK, clean_text, column_exprs, fast_exprs, label, repeats,
                        typed_fast_exprs)
from .readers import (MAX_FIELD_CHARS, NUL, NUL_IN_ROW, RAW_FIELD_CHARS, UNSEEN_IN_A_REASON, WHOLE_ROW, RawFrame,
                      map_headers, raw_names, shown_in_a_reason)


def reason_category(reason: str) -> str:
    """'发放金额(amount) 超过2位小数: '12.345'' -> '发放金额(amount) 超过2位小数' (values and numbers out)."""
    head = reason.split(";")[0].split(":")[0].strip()
    return re.sub(r"\d{3,}", "N", re.sub(r"'[^']*'", "''", head))


REJECT_COLUMNS = {"_row_number": pl.Int64, "column_name": pl.Utf8, "reason": pl.Utf8, "raw": pl.Utf8}


def _abridged(e: pl.Expr) -> pl.Expr:
    n = e.str.len_chars()
    return pl.when(n > RAW_FIELD_CHARS).then(
        e.str.slice(0, RAW_FIELD_CHARS) + pl.format("…(共{}个字符，已截断)", n)).otherwise(e)


def raw_json(raw: RawFrame) -> pl.Expr:
    names = raw_names(raw.headers)
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
    names = raw_names(raw.headers)
    return pl.when(_holds_nul(raw, positions)).then(pl.lit(WHOLE_ROW)).otherwise(pl.coalesce(
        [pl.when(pl.col(f"c{i}").str.len_chars() > MAX_FIELD_CHARS).then(pl.lit(canonical.get(i, names[i])))
         for i in _text_columns(raw)] + [pl.lit(None, pl.Utf8)]
    ))


def _row_fault(raw: RawFrame, positions: dict[str, int]) -> pl.Expr:
    """Reason to refuse a row as it came, before any column is read: a NUL character, else the
    first over-long field (any column, known or not); else null."""
    names = raw_names(raw.headers)
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


def _total_rows_said(bad: pl.DataFrame, raw: RawFrame, key_source: str | None) -> pl.DataFrame:
    """The refused rows that are a total line (a cell reads 合计, 总计, 小计… and the key's first
    column is empty or reads so too) refused as one — not as a record missing its 发放流水号 — so
    that the night's summary says what they are. Still kept in rejected_rows, as every row not
    stored is. A record whose memo says 合计 keeps its own reason."""
    if not bad.height:
        return bad
    def word(c: str) -> pl.Expr:
        return pl.col(c).str.replace_all(TOTAL_ROW_SPACING, "").is_in(TOTAL_ROW_WORDS)
    total = pl.any_horizontal([word(f"c{i}") for i in _text_columns(raw)] + [pl.lit(False)])
    if key_source is not None and raw.data.schema[key_source] == pl.Utf8:
        total = total & (pl.col(key_source).is_null() | (pl.col(key_source).str.strip_chars() == "") | word(key_source))
    return bad.with_columns(pl.when(total).then(pl.lit("合计行: 汇总数，不是一条记录，未入库 (无需更正)"))
                            .otherwise(pl.col("reason")).alias("reason"))


def death_before_birth() -> str:
    """The reason a deaths row dated before the birth its ID number carries is refused (here, and
    set aside from a store an older version let it into: store._deaths_not_before_birth)."""
    return (f"{label(EXTRACTS['deaths'].column('death_date'))} 早于公民身份号码所载的出生日期: 日期有误(如以1900-01-01等"
            "代替未知日期)，请更正后重报")


def normalise_frame(kind: str, raw: RawFrame, today: dt.date | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted rows in stored types + _row_number, rejected rows: _row_number, column_name, reason, raw)."""
    spec = EXTRACTS[kind]
    today = today or china_today()
    positions = map_headers(kind, raw.headers)
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
    # (Lazily: a column's check and its value share their trimmed text and parse, which only the
    # lazy engine computes once — eager with_columns runs each expression on its own.)
    frame = raw.data.lazy().with_columns(
        [v for v in fast_values if done.get(v.meta.output_name(), True)] + row_oks).collect()
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

    # A death before the birth its ID number carries: 1900-01-01, a system's placeholder for "not
    # known", made three living pensioners dead since 1900 and every payment of theirs a suspect
    # (a data-drift probe). Every field is valid; together they are impossible, so the row is refused —
    # before the same key's earlier row is set aside for it (a regression probe: the valid 2020 death
    # was refused as superseded by the 1900 one, itself refused, and the person had none).
    before_birth = good.clear()
    if kind == "deaths" and good.height:
        birth = pl.col("person_id").str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False)
        impossible = pl.col("death_date") < birth
        before_birth = good.filter(impossible).with_columns(
            pl.lit("death_date").alias("column_name"),
            pl.lit(death_before_birth()).alias("reason"))
        good = good.filter(impossible.not_() | impossible.is_null())

    # The same key twice in one file: the later row is the correction; the earlier one is recorded.
    key = list(spec.key)
    key_label = " + ".join(label(spec.column(k)) for k in key)
    # (A count of distinct keys tells whether any key repeats — half the time of is_duplicated; the
    # window over every key only when one does.)
    key_expr = pl.col(key[0]) if len(key) == 1 else pl.struct(key)
    dupes = good.clear()
    if good.select(key_expr.n_unique()).item() < good.height:
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

    parts = [p for p in (bad, dupes, before_birth, contract_bad) if p.height]
    rejected = pl.concat(
        [p.select(pl.col("_row_number"), pl.col("column_name"), pl.col("reason"), raw_json(raw).alias("raw"))
         for p in parts] + [pl.DataFrame(schema=REJECT_COLUMNS)],
        how="vertical",
    )
    if raw.bad_rows:
        # a ragged row names the first column it lacks by its header as delivered: canonical here
        bad = [(row, spec.column_for(column) or column, reason, text) for row, column, reason, text in raw.bad_rows]
        rejected = pl.concat([rejected, pl.DataFrame(bad, schema=REJECT_COLUMNS, orient="row")])
    if rejected.height and rejected.get_column("reason").str.contains(UNSEEN_IN_A_REASON).any():
        rejected = rejected.with_columns(pl.col("reason").map_elements(shown_in_a_reason, return_dtype=pl.Utf8))
    return accepted, rejected.sort("_row_number")


def reason_categories(rejected: pl.DataFrame) -> dict[str, int]:
    out: dict[str, int] = {}
    for reason in rejected.get_column("reason").to_list():
        cat = reason_category(reason or "")
        out[cat] = out.get(cat, 0) + 1
    return out
