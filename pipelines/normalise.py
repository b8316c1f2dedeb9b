"""Normalisation (规范化) of delivered text into the stored forms of pipelines/extracts.py.

Every parser here is a pair of Polars expressions over a column read as text: the value in its
stored type, and a reason a clerk understands when the text cannot be accepted (null when it can).
Ingest evaluates them for a whole file at once, so a million rows cost one pass, not a million
Python calls. `normalise_person_id` is the same rule for one value (for tests and a reader at a prompt).
"""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

from .clock import china_today
from .extracts import DEATH_SOURCES, INSURANCE_TYPES, Column

# A program writing XLSX (XlsxWriter, Excel itself) stores a control character (a CR of a Windows
# line break, a stray BEL) or U+FFFE/U+FFFF as OOXML's escape _x000D_, which Excel shows as the
# character and openpyxl reads back as those seven characters. Only these are decoded: any other
# _xHHHH_ is text (a surrogate half decoded would be no text at all).
_OOXML_ESCAPE = re.compile(r"_x(00[01][0-9A-Fa-f]|[Ff]{3}[EeFf])_")


def decode_ooxml_escapes(text: str) -> str:
    """A cell's text as Excel shows it (see _OOXML_ESCAPE)."""
    return _OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "_x" in text else text


# Government exports mix full-width (全角) characters into numbers typed by hand.
_FULLWIDTH = {chr(0xFF10 + i): str(i) for i in range(10)}
_FULLWIDTH.update({"Ｘ": "X", "ｘ": "x", "．": ".", "－": "-", "−": "-", "，": ",", "＋": "+",
                   "／": "/", "：": ":", "\u3000": " ", "Ｅ": "E", "ｅ": "e"})
_FW_FROM = list(_FULLWIDTH)
_FW_TO = list(_FULLWIDTH.values())

# GB 11643-1999: weights 2^(17-i) mod 11 of the first 17 digits; the sum mod 11 picks the check char.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
ID_PATTERN = r"^[0-9]{17}[0-9X]$"
_SCIENTIFIC = r"^-?[0-9]+(\.[0-9]+)?E[+]?[0-9]+$"
# What Excel (and a number cell or float read here) makes of 16 or more digits: one digit, the
# rest after the point, E+ and two digits. A code is held to this exact form: codes such as 3E5 or
# 360E01 are codes.
_EXCEL_SCIENTIFIC = r"^-?[0-9](\.[0-9]+)?E\+[0-9]{2,3}$"

# Excel counts days from 1899-12-30 (the 1900 leap-year bug folded in); five digits = 1927..2173.
EXCEL_EPOCH = dt.date(1899, 12, 30)
MIN_YEAR, MAX_YEAR = 1900, 2100
MIN_PERIOD = "195001"


F = pl.field


def _let(base: pl.Expr, *steps: dict[str, pl.Expr]) -> pl.Expr:
    """Named intermediate results, like `let` bindings: a struct that starts with the text as field
    `s` and gains the fields of each step in turn (a step may use earlier fields via pl.field).
    Without this, an intermediate used in several places is copied into the expression tree each
    time, and the plan of a date column grows to thousands of nodes (seconds per file)."""
    e = pl.struct(base.alias("s"))
    for step in steps:
        e = e.struct.with_fields(**step)
    return e


def _value_reason(e: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    return e.struct.field("value"), e.struct.field("reason")


def label(col: Column) -> str:
    """How a clerk sees a column in a reason: the Chinese header with the canonical name."""
    return f"{col.alias}({col.name})"


def ascii_fold(e: pl.Expr) -> pl.Expr:
    """Full-width digits, X, punctuation and the ideographic space to their ASCII forms."""
    return e.str.replace_many(_FW_FROM, _FW_TO)


def clean_text(e: pl.Expr) -> pl.Expr:
    """Trimmed (incl. full-width spaces); empty -> null."""
    t = e.str.strip_chars()
    return pl.when(t.str.len_bytes() > 0).then(t)


# Unicode's invisible format characters (zero-width space, BOM, word joiner, soft hyphen, direction
# marks): a paste from a web page or a document leaves them inside a cell, where nobody can see them.
FORMAT_CHARACTERS = r"\p{Cf}"


# The apostrophe a clerk or an export writes first to keep Excel from reading a code as a number
# ('360702, '0012345): Excel shows the text without it, and so is it stored.
TEXT_MARK = "'"


def clean_value(e: pl.Expr, col: Column) -> pl.Expr:
    """clean_text — and, for every column but free text (names, memos), without format characters
    and without a leading apostrophe (TEXT_MARK): neither is part of a code, an ID number, an account,
    a date, an amount or a listed word (Column.term), and kept they make one agency, payment or
    account two. Names are stored as delivered. The fast paths take ASCII texts without the apostrophe only (fast_exprs), so this runs
    on the few others: Polars evaluates both branches of a when/then, and a regular expression over
    every value of every column cost a third of CSV ingest."""
    if col.type == "text" and not col.code and not col.allowed and not col.term:
        return clean_text(e)
    visible = (pl.when(e.str.len_bytes() != e.str.len_chars())
               .then(e.str.replace_all(FORMAT_CHARACTERS, "")).otherwise(e))
    return clean_text(visible.str.strip_chars().str.strip_prefix(TEXT_MARK))


# Rows looked at to tell whether a column repeats its values
_DISTINCT_PROBE = 10_000


def repeats(values: pl.Series) -> bool:
    """Whether a column repeats its values (periods, dates, amounts, a person's id on each of their
    payments; judged on its first rows): then work on its distinct values pays."""
    head = values.head(_DISTINCT_PROBE)
    return head.n_unique() * 2 <= head.len()


# ---------------------------------------------------------------------------------- person_id

def check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def normalise_person_id(text: str | None) -> tuple[str | None, str | None]:
    """(18-character id, None) or (None, reason). Same rule as `person_id_exprs`, one value at a time."""
    df = pl.DataFrame({"v": [text]}, schema={"v": pl.Utf8})
    value, reason = person_id_exprs(clean_value(pl.col("v"), Column("person_id", "公民身份号码", "id")))
    out = df.select(value.alias("value"), reason.alias("reason")).row(0)
    if text is None or (out[0] is None and out[1] is None):
        return None, "公民身份号码为空"
    return out[0], out[1]


def _id_check_char(t17: pl.Expr) -> pl.Expr:
    """The GB 11643 check character of the first 17 characters (null unless all are digits).
    Integer arithmetic on the 17 digits read as one number (17 digits fit an Int64): no per-row
    lists or strings, and the expression stays small however often it is reused."""
    number = pl.when(t17.str.contains(r"^[0-9]{17}")).then(t17.str.slice(0, 17).cast(pl.Int64, strict=False))
    total = _let(number, {"total": pl.when(F("s").is_not_null()).then(
        pl.sum_horizontal([(F("s") // 10 ** (16 - i)) % 10 * w for i, w in enumerate(_ID_WEIGHTS)]))}
    ).struct.field("total")
    return (total % 11).replace_strict(list(range(11)), list(_ID_CHECK), default=None, return_dtype=pl.Utf8)


def id_check_digit_ok(e: pl.Expr) -> pl.Expr:
    """True where an already normalised 18-character id carries its correct check digit."""
    return e.str.contains(ID_PATTERN) & (_id_check_char(e) == e.str.slice(17, 1))


def person_id_exprs(s: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(normalised id, reason). `s` is cleaned text (null = empty)."""
    e = _let(
        s,
        # Spaces anywhere (typed in groups), and the apostrophe an export puts first to keep Excel
        # from turning the number into a float.
        {"t": ascii_fold(F("s")).str.replace_all(r"\s+", "").str.strip_prefix("'").str.to_uppercase()},
        {"is15": F("t").str.contains(r"^[0-9]{15}$"), "n": F("t").str.len_chars()},
        # A 15-digit number (1985-1999 issue) has a 2-digit year, all 19xx, and no check digit.
        {"t17": pl.when(F("is15")).then(F("t").str.slice(0, 6) + pl.lit("19") + F("t").str.slice(6))
                  .otherwise(F("t").str.slice(0, 17))},
        {"expected": _id_check_char(F("t17"))},
        {"t18": pl.when(F("is15")).then(F("t17") + F("expected")).otherwise(F("t"))},
        {"got": F("t18").str.slice(17, 1)},
        {"reason": (
            pl.when(F("s").is_null()).then(pl.lit(None, pl.Utf8))
            .when(F("t").str.contains(_SCIENTIFIC))
            .then(pl.format("公民身份号码被Excel转成了科学计数法({})，后几位已丢失无法恢复: 请把该列设为文本后重新导出",
                            F("s")))
            .when(F("t").str.contains(r"^[0-9]+X?$") & F("n").is_between(16, 17))
            .then(pl.format("公民身份号码丢失了数字: 只有{}位 (应为18位)，疑被Excel当作数字处理丢掉了开头的数字: "
                            "请把该列设为文本后重新导出", F("n")))
            .when(F("t").str.contains(r"^[0-9]+X?$") & (F("n") != 18) & ~F("is15"))
            .then(pl.format("公民身份号码长度错误: {}位 (应为18位，或15位旧号码)", F("n")))
            .when(~F("t18").str.contains(ID_PATTERN))
            .then(pl.lit("公民身份号码含非法字符 (只能是数字，末位可为X)"))
            .when(F("expected") != F("got"))
            .then(pl.format("公民身份号码校验位错误: 按GB 11643校验位应为{}，实为{}", F("expected"), F("got")))
        )},
        {"value": pl.when(F("reason").is_null() & F("s").is_not_null()).then(F("t18"))},
    )
    return _value_reason(e)


# ---------------------------------------------------------------------------------- dates

_DATE_RE = r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
_TIME_RE = r"(?:[ T]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?)?$"


def _canonical_date_text(s: pl.Expr) -> pl.Expr:
    """YYYYMMDD and YYYY/MM/DD (with any time part) rewritten as YYYY-MM-DD…"""
    t = ascii_fold(s).str.strip_chars()
    d8 = t.str.contains(r"^[0-9]{8}(?:[ T].*)?$")
    slash = t.str.contains(r"^[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}(?:[ T].*)?$")
    return (
        pl.when(d8).then(t.str.slice(0, 4) + "-" + t.str.slice(4, 2) + "-" + t.str.slice(6))
        .when(slash).then(t.str.replace_all("/", "-", literal=True))
        .otherwise(t)
    )


def _excel_serial(t: pl.Expr) -> pl.Expr:
    """Days (with fraction) since 1899-12-30 when the text is an Excel serial number, else null."""
    return pl.when(t.str.contains(r"^[0-9]{5}(\.[0-9]+)?$")).then(t.cast(pl.Float64, strict=False))


def _year_ok(d: pl.Expr) -> pl.Expr:
    return d.dt.year().is_between(MIN_YEAR, MAX_YEAR)


def _date_parts(s: pl.Expr, *more: dict[str, pl.Expr]) -> pl.Expr:
    return _let(
        s,
        {"t": _canonical_date_text(F("s"))},
        {"p": F("t").str.extract_groups(_DATE_RE + _TIME_RE),
         "d": F("t").str.extract(_DATE_RE, 0).str.strptime(pl.Date, "%Y-%m-%d", strict=False),
         "serial": _excel_serial(F("t"))},
        *more,
    )


def date_exprs(s: pl.Expr, col: Column) -> tuple[pl.Expr, pl.Expr]:
    """(DATE, reason). A time part is accepted only when it is midnight (an export artefact)."""
    p = F("p")
    e = _date_parts(
        s,
        # the whole text must be a date with at most a time part (the pattern matched: `p` not
        # null) — '2026-11-15至2026-12-01' or '2026-1-150' is no date, though it starts with one
        {"midnight": p.struct[0].is_not_null()
                     & pl.concat_str(p.struct[3], p.struct[4], p.struct[5], p.struct[6], ignore_nulls=True)
                     .str.contains(r"^0*$")},
        {"v": pl.when(F("serial").is_not_null())
              .then(pl.lit(EXCEL_EPOCH) + pl.duration(days=F("serial").floor().cast(pl.Int64)))
              .when(F("midnight")).then(F("d"))},
        {"reason": (
            pl.when(F("s").is_null()).then(pl.lit(None, pl.Utf8))
            .when(F("v").is_null())
            .then(pl.format(f"{label(col)} 不是有效日期: '{{}}' (应为YYYY-MM-DD、YYYYMMDD或YYYY/MM/DD)", F("s")))
            .when(~_year_ok(F("v")))
            .then(pl.format(f"{label(col)} 年份超出范围({MIN_YEAR}-{MAX_YEAR}): '{{}}'", F("s")))
        )},
        {"value": pl.when(F("reason").is_null()).then(F("v"))},
    )
    return _value_reason(e)


def datetime_exprs(s: pl.Expr, col: Column) -> tuple[pl.Expr, pl.Expr]:
    """(TIMESTAMP, reason). A bare date is midnight; seconds and fractions are optional."""
    p = F("p")
    e = _date_parts(
        s,
        {"hh": p.struct[3].cast(pl.Int64, strict=False).fill_null(0),
         "mm": p.struct[4].cast(pl.Int64, strict=False).fill_null(0),
         "ss": p.struct[5].cast(pl.Int64, strict=False).fill_null(0),
         "us": p.struct[6].str.slice(0, 6).str.pad_end(6, "0").cast(pl.Int64, strict=False).fill_null(0)},
        {"v": (
            pl.when(F("serial").is_not_null())
            .then(pl.lit(dt.datetime(1899, 12, 30)).cast(pl.Datetime("us"))
                  + pl.duration(microseconds=(F("serial") * 86_400_000_000).round(0).cast(pl.Int64)))
            .when(p.struct[0].is_not_null() & (F("hh") < 24) & (F("mm") < 60) & (F("ss") < 60))
            .then(F("d").cast(pl.Datetime("us"))
                  + pl.duration(hours=F("hh"), minutes=F("mm"), seconds=F("ss"), microseconds=F("us")))
        )},
        {"reason": (
            pl.when(F("s").is_null()).then(pl.lit(None, pl.Utf8))
            .when(F("v").is_null())
            .then(pl.format(f"{label(col)} 不是有效日期时间: '{{}}' (应为YYYY-MM-DD[ HH:MM[:SS]])", F("s")))
            .when(~_year_ok(F("v")))
            .then(pl.format(f"{label(col)} 年份超出范围({MIN_YEAR}-{MAX_YEAR}): '{{}}'", F("s")))
        )},
        {"value": pl.when(F("reason").is_null()).then(F("v"))},
    )
    return _value_reason(e)


# ---------------------------------------------------------------------------------- periods

def max_period(today: dt.date | None = None) -> str:
    """The latest plausible 所属期: one year after this month (advance payments, never decades)."""
    today = today or china_today()
    return f"{today.year + 1:04d}{today.month:02d}"


def period_exprs(s: pl.Expr, col: Column, today: dt.date | None = None) -> tuple[pl.Expr, pl.Expr]:
    """('YYYYMM', reason) from YYYYMM, YYYY-MM, YYYY/MM, YYYY年MM月, or a first-of-month date
    (Excel turns a typed 2026-11 into the date 2026-11-01)."""
    t = ascii_fold(s).str.strip_chars()
    g = t.str.extract_groups(
        r"^([0-9]{4})(?:([0-9]{2})|[-/]([0-9]{1,2})(?:[-/]0?1(?:[ T]0?0:00(?::00(?:\.0+)?)?)?)?|年([0-9]{1,2})月)$"
    )
    month = pl.coalesce(g.struct[1], g.struct[2], g.struct[3]).cast(pl.Int32, strict=False)
    text = g.struct[0] + month.cast(pl.Utf8).str.pad_start(2, "0")
    hi = max_period(today)
    reason = (
        pl.when(s.is_null()).then(pl.lit(None, pl.Utf8))
        .when(g.struct[0].is_null() | month.is_null())
        .then(pl.format(f"{label(col)} 不是有效年月: '{{}}' (应为YYYYMM或YYYY-MM)", s))
        .when(~month.is_between(1, 12))
        .then(pl.format(f"{label(col)} 月份无效: '{{}}'", s))
        .when((text < MIN_PERIOD) | (text > hi))
        .then(pl.format(f"{label(col)} 超出合理范围({MIN_PERIOD}-{hi}): '{{}}'", s))
    )
    return pl.when(reason.is_null()).then(text), reason


# ---------------------------------------------------------------------------------- money

# Whole yuan digits an amount may have: below 10^12 (1万亿元), more than any one benefit payment or
# fund transfer. A rule sums amounts into DECIMAL(18,2) (16 whole digits): two rows of 6×10^15,
# which the store would take, overflowed detection and stopped every later night. A 16-digit card
# number pasted into the amount column is refused so.
MONEY_DIGITS = 12
MONEY_PATTERN = rf"^-?([0-9]{{1,{MONEY_DIGITS}}}(\.[0-9]{{0,2}})?|\.[0-9]{{1,2}})$"
_TOO_LARGE = rf"^-?[0-9]{{{MONEY_DIGITS + 1},}}(\.[0-9]{{0,2}})?$"
_PAST_THE_FEN = r"^-?[0-9]*\.[0-9]{3,}$"  # a third decimal or more


def money_exprs(s: pl.Expr, col: Column) -> tuple[pl.Expr, pl.Expr]:
    """(DECIMAL(18,2), reason), parsed from the text itself, never through a float.

    Negative amounts are valid: 冲正 (reversal) rows. Thousands separators must group by three
    (a '12,5' is refused, not read as 125); zeros past the second decimal are dropped ('12.300').
    """
    t = (
        ascii_fold(s).str.replace_all(r"\s+", "")
        .str.replace(r"^([+-])[¥￥]", "${1}")  # the sign before the yuan sign: -¥60000.00 is ¥-60000.00
        .str.strip_prefix("¥").str.strip_prefix("￥").str.strip_suffix("元")
    )
    grouped = t.str.contains(r"^[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?$")
    t = pl.when(grouped).then(t.str.replace_all(",", "", literal=True)).otherwise(t)
    t = t.str.replace(r"^\+([0-9.])", "${1}").str.replace(r"^(-?[0-9]*\.[0-9]{2})0+$", "${1}")  # +-5 stays no amount
    t = t.str.replace(r"^(-?)0+([0-9])", "${1}${2}")  # a fixed-width export's leading zeros: 0000000012.50
    # Float noise: a program's float written out in full (0.1 + 0.2 = 0.30000000000000004, from an
    # XLSX number cell or a Parquet double) is the amount in fen it stands for. Only a text of 15 or
    # more significant digits a hair from a whole fen is read so; a typed 12.345 is still refused.
    f = t.cast(pl.Float64, strict=False)
    # Below 10^11 yuan a float's last place is under 0.0001, so a typed third decimal (0.001 or
    # more off a whole fen) is never taken for noise; no benefit comes near that bound.
    noise = (t.str.contains(_PAST_THE_FEN)
             & (t.str.replace_all(r"[-.]", "").str.strip_chars_start("0").str.len_chars() >= 15)
             & (f.abs() < 1e11)
             & ((f - f.round(2)).abs() <= f.abs() * 1e-15 + 1e-15))  # a few units of the float's last place
    fen = pl.when(noise).then(f.round(2)).cast(pl.Decimal(18, 2)).cast(pl.Utf8)  # (cast only where noise)
    t = pl.when(noise).then(fen).otherwise(t)
    ok = t.str.contains(MONEY_PATTERN)
    reason = (
        pl.when(s.is_null()).then(pl.lit(None, pl.Utf8))
        .when(t.str.contains(_PAST_THE_FEN))
        .then(pl.format(f"{label(col)} 超过2位小数: '{{}}' (金额以元计，最多到分)", s))
        .when(t.str.contains(_TOO_LARGE))
        .then(pl.format(f"{label(col)} 超出合理范围: '{{}}' (单笔金额应小于1万亿元；是否把账号或证件号填进了金额列？)", s))
        .when(~ok)
        .then(pl.format(f"{label(col)} 不是有效金额: '{{}}'", s))
    )
    value = pl.when(reason.is_null()).then(t).cast(pl.Decimal(18, 2), strict=False)
    return value, reason


# ---------------------------------------------------------------------------------- codes

_INSURANCE_LOOKUP = {**{c: c for c in INSURANCE_TYPES}, **{n: c for c, n in INSURANCE_TYPES.items()}}


def insurance_type_exprs(s: pl.Expr, col: Column) -> tuple[pl.Expr, pl.Expr]:
    """(code, reason): the 3-digit code or its name (企业职工基本养老保险) -> '110'."""
    t = ascii_fold(s).str.replace_all(r"\s+", "")
    value = t.replace_strict(list(_INSURANCE_LOOKUP), list(_INSURANCE_LOOKUP.values()), default=None,
                             return_dtype=pl.Utf8)
    codes = "/".join(INSURANCE_TYPES)
    reason = (
        pl.when(s.is_null()).then(pl.lit(None, pl.Utf8))
        .when(value.is_null())
        .then(pl.format(f"{label(col)} 不在代码表: '{{}}' (应为{codes}或其名称)", s))
    )
    return value, reason


def _lost_digits(s: pl.Expr, col: Column) -> pl.Expr:
    """Whether an account's or a code's text is a number Excel cut to 15 digits. An account is
    never written with an E (in full-width digits neither: ６.２２E+18, as its digits are read); a
    code is held to Excel's exact form (3E5 is a code). Matched case-insensitively, not by
    upper-casing every value first: a third of the time."""
    if col.type == "account":
        return ascii_fold(s).str.contains("(?i)" + _SCIENTIFIC)
    return s.str.contains("(?i)" + _EXCEL_SCIENTIFIC)


# What a bank account is written with besides its digits: groups (6222-0212-3456-7890, 6222 0212
# 3456 7890, with any space or dash between them) and full-width digits typed by hand. The same
# patterns (RE2 and Rust regex alike) convert an older store's accounts (store._accounts_as_digits).
ACCOUNT_DASHES = r"\-－−‐‑–—"
ACCOUNT_SEPARATOR = rf"[\s\p{{Z}}{ACCOUNT_DASHES}]"
ACCOUNT_GROUPED = rf"^[0-9０-９]+(?:{ACCOUNT_SEPARATOR}+[0-9０-９]+)*$"


def account_value(s: pl.Expr) -> pl.Expr:
    """A bank account (收款账号, 本方账号, 对方账号) as stored: an account written in groups or in
    full-width digits is its digits — one account however each system spells it, so that
    SHARED_BANK_ACCOUNT counts its payees together and FUND_PRIVATE_TRANSFER matches a transfer to
    the payment into it. Any other text (letters, a sub-account suffix, a sign) is kept as delivered."""
    digits = s.str.replace_all(ACCOUNT_SEPARATOR, "").str.replace_many(_FW_FROM[:10], _FW_TO[:10])
    return (pl.when(s.str.contains(r"^[0-9]+$")).then(s)
            .when(s.str.contains(ACCOUNT_GROUPED)).then(digits)
            .otherwise(s))


def account_exprs(s: pl.Expr, col: Column) -> tuple[pl.Expr, pl.Expr]:
    """(value, reason) for an account number or a code (Column.code: 流水号, 编码): the text as
    delivered (an account: its digits, account_value), unless Excel turned the number into
    scientific notation (6.22236002377598E+18: only 15 digits kept) — stored so, three different
    accounts would read as one and be shared by three persons, two payments one re-delivered row."""
    lost = _lost_digits(s, col)
    reason = pl.when(lost).then(pl.format(f"{label(col)} 被Excel转成了科学计数法({{}})，后几位已丢失无法恢复: "
                                          "请把该列设为文本后重新导出", s))
    return pl.when(~lost).then(account_value(s) if col.type == "account" else s), reason


def allowed_exprs(s: pl.Expr, col: Column) -> tuple[pl.Expr, pl.Expr]:
    """(value, reason) for a closed value set. A death source may be longer text starting with
    公安/民政/卫健/法院 (公安户籍注销): the 2-character source is stored."""
    if col.allowed == DEATH_SOURCES:
        value = s.str.extract(f"^({'|'.join(DEATH_SOURCES)})", 1)
    else:
        value = pl.when(s.is_in(list(col.allowed))).then(s)
    reason = (
        pl.when(s.is_null()).then(pl.lit(None, pl.Utf8))
        .when(value.is_null())
        .then(pl.format(f"{label(col)} 取值无效: '{{}}' (应为{'/'.join(col.allowed)})", s))
    )
    return value, reason


def column_exprs(raw: pl.Expr, col: Column, today: dt.date | None = None) -> tuple[pl.Expr, pl.Expr]:
    """(stored value, reason or null) for one column of an extract, from its delivered text."""
    s = clean_value(raw, col)
    if col.type == "id":
        value, reason = person_id_exprs(s)
    elif col.type == "date":
        value, reason = date_exprs(s, col)
    elif col.type == "datetime":
        value, reason = datetime_exprs(s, col)
    elif col.type == "period":
        value, reason = period_exprs(s, col, today)
    elif col.type == "money":
        value, reason = money_exprs(s, col)
    elif col.type == "insurance_type":
        value, reason = insurance_type_exprs(s, col)
    elif col.type == "account" or col.code:
        value, reason = account_exprs(s, col)
    elif col.allowed:
        value, reason = allowed_exprs(s, col)
    else:
        value, reason = s, pl.lit(None, pl.Utf8)
    if col.required:
        reason = pl.when(s.is_null()).then(pl.lit(f"缺少必填项: {label(col)} 为空")).otherwise(reason)
    return value, reason


# ---------------------------------------------------------------------------------- fast paths

# The forms a well-behaved export writes. A text of that exact form is read by a few cheap
# vectorised steps instead of the full parser (regex groups, folding, every special case); any
# other text, or one the cheap steps cannot read, goes through `column_exprs`. For every text a
# fast path accepts, `column_exprs` gives the same value and no reason (tests/test_normalise.py
# and the ingest tests run both).
_FAST_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_FAST_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?: (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{6})?)?$"
_FAST_PERIOD = r"^[0-9]{4}(?:0[1-9]|1[0-2])$"
_FAST_MONEY = rf"^-?[0-9]{{1,{MONEY_DIGITS}}}(?:\.[0-9]{{1,2}})?$"


def fast_exprs(s: pl.Expr, col: Column, today: dt.date | None = None) -> tuple[pl.Expr, pl.Expr] | None:
    """(plain, value) for the plain form of a column's text, or None when the column has no fast
    path. `s` is trimmed text (clean_text: the plain forms are ASCII, so hold no format character); where `plain` is true and `value` is not null, `value` is what
    `column_exprs` gives (with no reason); elsewhere the row needs the full parser."""
    year_ok = s.str.slice(0, 4).cast(pl.Int32, strict=False).is_between(MIN_YEAR, MAX_YEAR)
    if col.type == "id":
        return s.str.contains(ID_PATTERN) & (_id_check_char(s) == s.str.slice(17, 1)), s
    if col.type == "date":
        d = s.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        return s.str.contains(_FAST_DATE) & year_ok, d
    if col.type == "datetime":
        seconds = s.str.slice(0, 19).str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=False)
        # A bare date is midnight (a text with a time part and a valid date never gets here).
        midnight = s.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False).cast(pl.Datetime("us"))
        fraction = s.str.slice(20, 6).cast(pl.Int64, strict=False).fill_null(0)
        v = pl.coalesce(seconds + pl.duration(microseconds=fraction), midnight)
        return s.str.contains(_FAST_DATETIME) & year_ok, v
    if col.type == "period":
        return s.str.contains(_FAST_PERIOD) & s.is_between(pl.lit(MIN_PERIOD), pl.lit(max_period(today))), s
    if col.type == "money":
        return s.str.contains(_FAST_MONEY), s.cast(pl.Decimal(18, 2), strict=False)
    if col.type == "insurance_type":
        return s.is_in(list(INSURANCE_TYPES)), s
    if col.type == "account" or col.code:
        # ASCII only: a code beyond it may hold an invisible format character, which the full
        # parser drops (clean_value), as it drops a leading apostrophe; the other fast forms are
        # ASCII without it by their patterns
        plain = (~_lost_digits(s, col) & (s.str.len_bytes() == s.str.len_chars())
                 & ~s.str.starts_with(TEXT_MARK))
        return plain, account_value(s) if col.type == "account" else s
    return None


def typed_fast_exprs(e: pl.Expr, dtype: pl.DataType, col: Column) -> tuple[pl.Expr, pl.Expr] | None:
    """(plain, value) for a column a Parquet file already delivers in its stored type (a DATE,
    a TIMESTAMP in µs or ms without time zone, a DECIMAL that fits DECIMAL(18,2)), or None when
    the column must be read as its text. Where `plain` is true and `value` is not null, `value`
    is what `column_exprs` gives for the column cast to text (the other rows are parsed so)."""
    if col.type == "date" and dtype == pl.Date:
        return e.dt.year().is_between(MIN_YEAR, MAX_YEAR), e
    if (col.type == "datetime" and isinstance(dtype, pl.Datetime) and dtype.time_zone is None
            and dtype.time_unit in ("us", "ms")):
        return e.dt.year().is_between(MIN_YEAR, MAX_YEAR), e.cast(pl.Datetime("us"))
    if (col.type == "money" and isinstance(dtype, pl.Decimal) and dtype.scale <= 2
            and dtype.precision - dtype.scale <= 16):
        return e.abs() < 10 ** MONEY_DIGITS, e.cast(pl.Decimal(18, 2))  # a larger one is refused as text
    return None


def typed_source(dtype: pl.DataType) -> bool:
    """Whether a delivered Parquet column of this type is kept as is (else it is read as text)."""
    if dtype == pl.Date:
        return True
    if isinstance(dtype, pl.Datetime):
        return dtype.time_zone is None and dtype.time_unit in ("us", "ms")
    if isinstance(dtype, pl.Decimal):
        return dtype.scale <= 2 and dtype.precision - dtype.scale <= 16
    return False
