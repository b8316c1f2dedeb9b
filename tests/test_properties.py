"""Property-based tests (hypothesis): period (待遇所属期) parsing, Chinese working-day arithmetic,
and the parser of returned worklists (money, dates, outcomes, locked cells read back).

(The 公民身份号码 normaliser's properties live with ingest, in tests/test_normalise.py.)
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from pipelines import returns, worklists
from pipelines.casework import OUTCOME_LABELS, OUTCOMES, parse_outcome
from pipelines.extracts import EXTRACTS
from pipelines.normalise import period_exprs
from pipelines.store import connect
from pipelines.workdays import add_working_days, is_working_day, working_days_between

# The years the State Council holiday notices cover in chinese_calendar (no fallback warning).
KNOWN_DAYS = st.dates(min_value=dt.date(2005, 1, 1), max_value=dt.date(2026, 6, 30))
TODAY = dt.date(2026, 11, 21)
PERIOD_COLUMN = next(c for c in EXTRACTS["payments"].columns if c.name == "period")


# ---------------------------------------------------------------- periods (YYYYMM)

def _periods(texts: list[str]) -> list[tuple[str | None, str | None]]:
    value, reason = period_exprs(pl.col("raw"), PERIOD_COLUMN, today=TODAY)
    out = pl.DataFrame({"raw": texts}, schema={"raw": pl.Utf8}).select(value.alias("v"), reason.alias("r"))
    return list(zip(out["v"].to_list(), out["r"].to_list()))


@given(year=st.integers(1950, 2026), month=st.integers(1, 12))
def test_every_written_form_of_a_period_normalises_to_the_same_yyyymm(year, month):
    want = f"{year:04d}{month:02d}"
    forms = [want, f"{year}-{month:02d}", f"{year}-{month}", f"{year}/{month}", f"{year}年{month}月",
             f"{year}-{month:02d}-01", f" {year}-{month:02d} ", f"{year}{month:02d}".translate(
                 str.maketrans("0123456789", "０１２３４５６７８９"))]
    assume(want <= "202711")
    assert _periods(forms) == [(want, None)] * len(forms)


@given(year=st.integers(1950, 2026), month=st.integers(13, 99))
def test_a_period_with_a_month_outside_1_to_12_is_rejected_with_a_reason(year, month):
    [(value, reason)] = _periods([f"{year}{month:02d}"])
    assert value is None and reason and "月份" in reason


@given(a=st.dates(dt.date(1950, 1, 1), dt.date(2026, 12, 31)), b=st.dates(dt.date(1950, 1, 1), dt.date(2026, 12, 31)))
def test_yyyymm_text_orders_periods_as_the_calendar_does(a, b):
    """Rules compare periods as text ('period > death month'): that must be calendar order."""
    pa, pb = f"{a:%Y%m}", f"{b:%Y%m}"
    assert (pa < pb) == ((a.year, a.month) < (b.year, b.month))
    [(va, _), (vb, _)] = _periods([pa, pb])
    assert (va, vb) == (pa, pb)


# ---------------------------------------------------------------- working days (工作日)

@given(d=KNOWN_DAYS, n=st.integers(1, 60))
def test_the_nth_working_day_after_is_a_working_day_n_working_days_later(d, n):
    end = add_working_days(d, n)
    assert end > d and is_working_day(end)
    assert working_days_between(d, end) == n
    assert working_days_between(d, end - dt.timedelta(days=1)) == n - 1  # the first such day


@given(d=KNOWN_DAYS, a=st.integers(0, 40), b=st.integers(0, 40))
def test_adding_working_days_composes_and_is_monotonic(d, a, b):
    assert add_working_days(add_working_days(d, a), b) == add_working_days(d, a + b)
    if a <= b:
        assert add_working_days(d, a) <= add_working_days(d, b)


@given(d=KNOWN_DAYS, n=st.integers(1, 40))
def test_counting_back_from_a_working_day_returns_to_it(d, n):
    assume(is_working_day(d))
    assert add_working_days(add_working_days(d, n), -n) == d
    assert add_working_days(d, 0) == d


# ---------------------------------------------------------------- the returned-sheet parser

AMOUNTS = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999999.99"), places=2)


@given(amount=AMOUNTS)
def test_an_amount_reads_the_same_however_a_clerk_or_excel_wrote_it(amount):
    text = format(amount, "f")
    whole, _, cents = text.partition(".")
    grouped = f"{int(whole):,}.{cents}"
    forms = [amount, float(amount), text, grouped, f"¥{grouped}", f"{text}元", f"{grouped}元整", f" {grouped} ",
             text.translate(str.maketrans("0123456789.", "０１２３４５６７８９．"))]
    for form in forms:
        assert worklists.parse_money(form) == amount, form
    assert worklists.canonical("涉及金额", float(amount)) == worklists.canonical("涉及金额", text) == text


@given(whole=st.integers(min_value=10, max_value=10**9), cut=st.integers(min_value=1, max_value=9),
       sep=st.sampled_from([",", "，", " "]))
def test_a_separator_that_does_not_group_thousands_makes_no_amount(whole, cut, sep):
    """1,23 or 2,5 (a comma typed for the point) read as 123 or 25 recorded a recovery nobody made
    (found by an outside model-based test of returns)."""
    digits = str(whole)
    assume(cut < len(digits) and (len(digits) - cut) % 3 != 0)
    form = digits[:cut] + sep + digits[cut:]
    with pytest.raises(ValueError, match="not an amount"):
        worklists.parse_money(form)


@pytest.mark.parametrize("form", ["1e3", "1E3", "2,5", "1234，5", "1,2345.00", "12,34,567"])
def test_exponents_and_misgrouped_commas_are_no_amount(form):
    with pytest.raises(ValueError, match="not an amount"):
        worklists.parse_money(form)


@given(amount=st.decimals(min_value=Decimal("0"), max_value=Decimal("999999"), places=3))
def test_an_amount_with_a_real_third_decimal_is_refused(amount):
    assume(amount != amount.quantize(Decimal("0.01")))
    for form in (format(amount, "f"), amount):
        try:
            worklists.parse_money(form)
        except ValueError:
            continue
        raise AssertionError(f"{form!r} accepted")


@given(d=st.dates(dt.date(1955, 1, 1), dt.date(2099, 12, 31)))
def test_a_date_reads_the_same_in_every_usual_form_and_as_an_excel_serial(d):
    serial = (d - dt.date(1899, 12, 30)).days
    forms = [d, dt.datetime.combine(d, dt.time(9, 30)), d.isoformat(), f"{d:%Y/%m/%d}", f"{d:%Y%m%d}",
             f"{d.year}年{d.month}月{d.day}日", f"{d.year}年{d.month}月{d.day}号", f"{d.year}.{d.month}.{d.day}",
             f"{d.isoformat()} 08:00", serial,
             float(serial)]
    for form in forms:
        assert worklists.parse_date(form) == d, form


@given(number=st.sampled_from(sorted(OUTCOMES)), spaces=st.sampled_from(["", " ", "  "]),
       sep=st.sampled_from([". ", "、", "．", ":", "）", " ", "-", "－", "—", "。"]))
def test_every_way_of_writing_an_outcome_reads_as_that_outcome(number, spaces, sep):
    text, chinese = OUTCOMES[number], "一二三四五六七"[number - 1]
    for form in (OUTCOME_LABELS[number], f"{spaces}{number}{sep}{text}{spaces}", text, str(number), number,
                 float(number), text.replace("，", ","), f"({number})", f"（{number}）{text}",
                 f"{spaces}({spaces}{number}{spaces}){spaces}{text}",
                 # numbered as a document's headings are: 四、… （四）… or the numeral alone
                 f"{chinese}{sep}{text}", f"（{chinese}）{text}", chinese):
        assert parse_outcome(form) == number, form


@given(value=st.one_of(st.text(max_size=40), st.integers(), st.floats(allow_nan=True), st.none(), st.booleans()))
@example(float("inf"))
@example(float("nan"))
def test_any_cell_in_the_outcome_column_is_one_of_the_seven_or_none_never_an_error(value):
    assert parse_outcome(value) in {None, *OUTCOMES}


ANY_CELL = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.decimals(allow_nan=True, allow_infinity=True), st.text(max_size=30), st.dates(),
                    st.datetimes())


@given(value=ANY_CELL)
@example(float("inf"))
@example(float("nan"))
@example(1e26)
def test_any_cell_in_the_money_or_date_columns_parses_or_is_refused_never_crashes(value):
    """A refusal (ValueError, reported with row and column) is the only way a bad cell may fail."""
    for parse in (worklists.parse_money, worklists.parse_date):
        try:
            parse(value)
        except ValueError:
            pass
    for column in ("涉及金额", "下发日期", "姓名"):
        assert isinstance(worklists.canonical(column, value), str)


@given(number=st.sampled_from(sorted(OUTCOMES)), other=st.sampled_from(sorted(OUTCOMES)))
def test_a_number_with_another_outcomes_text_is_not_accepted(number, other):
    assume(number != other)
    assert parse_outcome(f"{number}. {OUTCOMES[other]}") is None


CELL_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30).map(str.strip).filter(bool)


def _seen(text: str) -> str:
    """A text as a clerk sees it: without Unicode's invisible format characters (Cf), which are no
    part of an answer (a soft hyphen or zero-width space pasted with a note)."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf").strip()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=CELL_TEXT, note=CELL_TEXT.filter(_seen), amount=AMOUNTS.filter(lambda a: a > 0))
@example(name="=1+1", note="=0", amount=Decimal("0.01"))  # found by a CI run: a note typed as "=0" (a formula)
@example(name="=1+1", note="=0 已核实", amount=Decimal("0.01"))  # words after it: a note
@example(name="0", note="0\xad", amount=Decimal("0.01"))  # found by a CI run: a soft hyphen pasted with it
@example(name="0", note="说明 \u200b", amount=Decimal("0.01"))  # a space before the invisible one
def test_a_worklist_returned_untouched_or_answered_reads_back_exactly_as_issued(tmp_path_factory, name, note, amount):
    """Whatever a name or note holds (formula-like text, CJK, symbols), the parser reads the locked
    cells back as issued (no refusal) and the typed note as the clerk sees it (invisible format
    characters are no part of it) — unless the whole note reads as a formula, which is refused."""
    root = tmp_path_factory.mktemp("roundtrip")
    con = connect(root / "fw.duckdb")
    try:
        as_of = dt.date(2026, 11, 20)
        con.execute(
            "insert into suspects (suspect_id, rule_id, subject, person_id, agency_code, period_from, period_to,"
            " amount, status, first_detected_on, last_detected_on, name, evidence) values"
            " ('PAD-0000000001', 'PAID_AFTER_DEATH', '36070219500101001X', '36070219500101001X', '360702',"
            " '202609', '202610', ?, '待下发', ?, ?, ?, ?)",
            [amount, as_of, as_of, name, json.dumps({"note": name}, ensure_ascii=False)])
        [path] = worklists.write_worklists(con, root / "out", as_of)
        untouched = returns.apply_returns(con, [path], as_of)
        assert untouched.refusals == [] and untouched.files[0].pending == 1

        import openpyxl

        wb = openpyxl.load_workbook(path)
        ws = wb["疑点清单"]
        header = [c.value for c in ws[1]]
        ws.cell(row=2, column=header.index("核实结果") + 1, value=OUTCOME_LABELS[7])
        typed = ws.cell(row=2, column=header.index("核实说明") + 1, value=note)
        # The note column is formatted as text (@): there Excel and WPS keep what is typed, "=0"
        # included, as text. openpyxl would make "=…" a formula with no saved value.
        typed.data_type = "s"
        answered = root / "answered.xlsx"
        wb.save(answered)
        result = returns.apply_returns(con, [answered], as_of)
        if returns._typed_formula(_seen(note)):  # "=0": a formula kept as the text typed is no explanation
            assert [(r.column, "是公式" in r.reason) for r in result.refusals] == [("核实说明", True)]
            return
        assert result.refusals == [] and len(result.applied) == 1
        assert con.execute("select status, verification_note from suspects").fetchall() == [("已销号", _seen(note))]
    finally:
        con.close()
