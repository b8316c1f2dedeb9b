"""A hostile corpus (恶意/损坏输入): every case is generated here, put into ONE inbox and ingested by
the real nightly flow, then checked in the store. Nothing lost, nothing mis-attributed: for every
delivered file, accepted rows + rejected rows = rows delivered, every rejection carries a reason,
and each accepted row sits under the row number it was delivered at. (The hypothesis properties of
the GB 11643 id normaliser are in tests/test_normalise.py, to keep this file's one flow run fast.)"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal

import openpyxl
import pytest

from pipelines import store
from pipelines.extracts import EXTRACTS
from pipelines.flows import nightly_flow
from pipelines.normalise import check_digit

AS_OF = dt.date(2026, 11, 23)
DELIVERY = "2026-11-21"
PAY_COLS = EXTRACTS["payments"].names
AGENCY = "360702"


def person(n: int) -> str:
    first17 = f"360702{1940 + n % 50}0{1 + n % 9}1{n % 10}{n % 1000:03d}"
    return first17 + check_digit(first17)


def pay(case: str, n: int, **over) -> list[str]:
    """Data row n of a case's payments file: its payment_id carries the row number it is delivered at."""
    row = {"payment_id": f"{case}-r{n}", "person_id": person(n), "name": f"张{n}", "insurance_type": "110",
           "item": "基本养老金", "period": "202609", "paid_on": "2026-09-10", "amount": f"{100 + n}.00",
           "bank_account": f"62170000{n:08d}", "agency_code": AGENCY, "handled_by": "张经办",
           "reviewed_by": "赵复核", "reviewed_at": "2026-09-10 09:00"}
    row.update(over)
    return [row[c] for c in PAY_COLS]


def csv_text(rows: list[list[str]], header: list[str] = PAY_COLS) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


@dataclass
class Case:
    """One delivered file and what must become of it."""
    name: str
    delivered: int  # data rows delivered
    rejected: dict[int, str] = field(default_factory=dict)  # row number -> words its reason must hold
    failed: str | None = None  # the file fails as a whole, with these words
    amounts: dict[str, Decimal] = field(default_factory=dict)  # payment_id -> amount stored
    numbered: bool = True  # payment_id carries the row number (no re-used ids in the file)


CASES: list[Case] = []


def case(name: str, content: bytes | str, delivered: int, encoding: str = "utf-8", **expect) -> Case:
    c = Case(name, delivered, **expect)
    c.content = content.encode(encoding) if isinstance(content, str) else content
    CASES.append(c)
    return c


# ------------------------------------------------------------------------------ the corpus

# Truncated last line: the export stopped mid-row (no line end, fields missing).
_full = csv_text([pay("trunc", n) for n in range(1, 6)])
case("payments_truncated.csv", _full[: _full.rindex(",2026-09-10,") - 3], 5, rejected={5: "字段过少"})

# Truncated inside a quoted field: the last record never closes its quote.
case("payments_truncated_quote.csv", csv_text([pay("tq", n) for n in range(1, 4)]) + 'tq-r4,"王小', 4,
     rejected={4: "截断"})

# Too many and too few fields.
_rows = [",".join(pay("rag", n)) for n in range(1, 6)]
_rows[1] += ",多出来的字段"
_rows[3] = ",".join(pay("rag", 4)[:-2])
case("payments_ragged.csv", ",".join(PAY_COLS) + "\n" + "\n".join(_rows) + "\n", 5,
     rejected={2: "字段过多", 4: "字段过少"})

# A row one field short and another one field over add up to the header's count of fields (unquoted
# files are checked by their total of commas, with Polars refusing a long row); and a last line
# with one empty field too many and no line end after it, which Polars reads by dropping that field.
_even = [",".join(pay("even", n)) for n in range(1, 6)]
_even[1] = ",".join(pay("even", 2)[:-1])
_even[3] += ",多出来的字段"
case("payments_ragged_even.csv", ",".join(PAY_COLS) + "\n" + "\n".join(_even) + "\n", 5,
     rejected={2: "字段过少", 4: "字段过多"})
_last = [",".join(pay("last", n)) for n in range(1, 5)]
_last[1] = ",".join(pay("last", 2)[:-1])
case("payments_last_line_over.csv", ",".join(PAY_COLS) + "\n" + "\n".join(_last) + ",", 4,
     rejected={2: "字段过少", 4: "字段过多"})

# A lone CR inside a field not quoted: the row refused whether or not another row of the file is
# ragged (Polars' reader kept it, the row-by-row reader refused it: the outcome hung on other rows).
case("payments_lone_cr.csv", csv_text([pay("cr", 1), pay("cr", 2, name="张\r二"), pay("cr", 3)]), 3,
     rejected={2: "回车符(CR)"})
_cr = [",".join(pay("crr", n)) for n in range(1, 4)]
_cr[1] = _cr[1].replace("张2", "张\r2")
_cr[2] += ",多出来的字段"
case("payments_lone_cr_and_ragged.csv", ",".join(PAY_COLS) + "\n" + "\n".join(_cr) + "\n", 3,
     rejected={2: "回车符(CR)", 3: "字段过多"})

# Quoted fields with embedded newlines, commas and quotes: accepted, values intact, rows not shifted.
case("payments_quoted.csv", csv_text([pay("q", 1, name="王,小明\n(第二行)"), pay("q", 2, handled_by='张"老张", 经办'),
                                      pay("q", 3, name="李\r\n四")]), 3)

# NUL bytes inside a field.
case("payments_nul.csv", csv_text([pay("nul", 1), pay("nul", 2, name="王\x00五"), pay("nul", 3)]), 3,
     rejected={2: "NUL"})

# NUL inside a Parquet text (a Parquet string may hold one): refused as the CSV row is, the row alone.
def _parquet(rows: list[list[str]]) -> bytes:
    import polars as pl

    buf = io.BytesIO()
    pl.DataFrame(rows, schema={c: pl.Utf8 for c in PAY_COLS}, orient="row").write_parquet(buf)
    return buf.getvalue()


case("payments_nul.parquet", _parquet([pay("pnul", 1), pay("pnul", 2, handled_by="张\x00经办"),
                                       pay("pnul", 3, bank_account="6217000000000003\x00"), pay("pnul", 4)]), 4,
     rejected={2: "NUL", 3: "NUL"})

# A program's XLSX (XlsxWriter) with control characters: stored as `_x000D_` escapes, which Excel
# shows as the characters — read as a CSV row with them is (a CR inside a quoted field kept); a NUL
# refuses its row as in a CSV file.
def _xlsxwriter(rows: list[list[str]]) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet()
    for r, values in enumerate([PAY_COLS, *rows]):
        for c, v in enumerate(values):
            ws.write_string(r, c, v)
    wb.close()
    return buf.getvalue()


case("payments_escapes.xlsx", _xlsxwriter([pay("esc", 1, name="李\r四", handled_by="张\x0b经办"),
                                           pay("esc", 2, handled_by="张\x00经办"),
                                           pay("esc", 3, name="王_x0033_五")]), 3, rejected={2: "NUL"})

# A 10 MB field.
case("payments_bigfield.csv", csv_text([pay("big", 1), pay("big", 2, name="长" * 10_000_000), pay("big", 3)]), 3,
     rejected={2: "字段过长"})

# Empty file; header only.
case("payments_empty.csv", b"", 0, failed="empty file")
case("payments_header_only.csv", csv_text([]), 0)

# Duplicated header names: an extract column twice fails the file (every row rejected, each named);
# an unknown column twice is harmless.
case("payments_dup_header.csv", csv_text([pay("dh", 1) + ["1.00"], pay("dh", 2) + ["2.00"]], PAY_COLS + ["amount"]),
     2, failed="duplicated header", rejected={1: "duplicated header", 2: "duplicated header"})
case("payments_dup_extra_header.csv",
     csv_text([pay("dx", 1) + ["a", "b"], pay("dx", 2) + ["c", "d"]], PAY_COLS + ["备注", "备注"]), 2)

# GB18030 without any marker next to a UTF-8 file.
case("payments_gbk.csv", csv_text([pay("gbk", 1, name="欧阳锋"), pay("gbk", 2, name="诸葛亮")]), 2,
     encoding="gb18030")
case("payments_utf8.csv", csv_text([pay("utf", 1, name="欧阳锋"), pay("utf", 2, name="诸葛亮")]), 2)

# IDs mangled by Excel: scientific notation, lost leading digits.
case("payments_ids.csv", csv_text([pay("id", 1), pay("id", 2, person_id="3.60702E+17"),
                                   pay("id", 3, person_id=person(3)[1:]),
                                   pay("id", 4, person_id=person(4)[:-1] + ("1" if person(4)[-1] != "1" else "2"))]),
     4, rejected={2: "科学计数法", 3: "丢失了数字", 4: "校验位错误"})

# Amounts with 元, full-width digits, thousands separators.
case("payments_money.csv", csv_text([pay("m", 1, amount="3,000.00元"), pay("m", 2, amount="３０００．５"),
                                     pay("m", 3, amount="1,234,567.89"), pay("m", 4, amount="￥12.5"),
                                     pay("m", 5, amount=" -1,000 元 ")]), 5,
     amounts={"m-r1": Decimal("3000.00"), "m-r2": Decimal("3000.50"), "m-r3": Decimal("1234567.89"),
              "m-r4": Decimal("12.50"), "m-r5": Decimal("-1000.00")})

# Periods outside any sensible range.
case("payments_periods.csv", csv_text([pay("per", 1), pay("per", 2, period="190001"), pay("per", 3, period="209912"),
                                       pay("per", 4, period="000000"), pay("per", 5, period="20261")]), 5,
     rejected={2: "超出合理范围", 3: "超出合理范围", 4: "月份无效", 5: "不是有效年月"})

# The same payment_id twice in one file with different content: reported, last wins.
case("payments_dup_id.csv", csv_text([pay("dup", 1, payment_id="dup-same", amount="100.00"), pay("dup", 2),
                                      pay("dup", 3, payment_id="dup-same", amount="200.00")]), 3,
     rejected={1: "重复"}, amounts={"dup-same": Decimal("200.00")}, numbered=False)

# A file whose kind cannot be told from its name.
case("export_202611.csv", csv_text([pay("unk", 1)]), 1, failed="unknown extract kind")

# 冲正 reversals: a dead pensioner paid for three months after death, one payment reversed.
DEAD = person(900)
case("payments_reversal.csv", csv_text([
    pay("rev", 1, person_id=DEAD, period="202607", amount="3000.00", bank_account="6217999"),
    pay("rev", 2, person_id=DEAD, period="202608", amount="3000.00", bank_account="6217999"),
    pay("rev", 3, person_id=DEAD, period="202609", amount="3000.00", bank_account="6217999"),
    pay("rev", 4, person_id=DEAD, period="202609", amount="-3000.00", bank_account="6217999", item="基本养老金"),
]), 4, amounts={"rev-r4": Decimal("-3000.00")})
case("deaths_reversal.csv", csv_text([[DEAD, "王死", "2026-06-15", "公安户籍注销", ""]], EXTRACTS["deaths"].names), 1,
     numbered=False)


def _xlsx(rows: list[list], header: list[str] = PAY_COLS) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _xrow(n: int, **over) -> list:
    row = dict(zip(PAY_COLS, pay("x", n)))
    row.update(over)
    return [row[c] for c in PAY_COLS]


# XLSX: ids stored as numbers by Excel, dates as serial numbers.
SERIAL_20260910 = (dt.date(2026, 9, 10) - dt.date(1899, 12, 30)).days
case("payments_excel.xlsx", _xlsx([
    _xrow(1, paid_on=SERIAL_20260910, reviewed_at=SERIAL_20260910 + 0.375, amount=101.5),
    _xrow(2, person_id=float(person(2))),            # Excel kept 15 significant digits
    _xrow(3, person_id=person(3)[1:]),               # text cell, the leading digit lost
    _xrow(4, paid_on=float(SERIAL_20260910 + 1), period=202609),
    _xrow(5, person_id=int(person(5)[1:])),          # a 17-digit number: Excel holds only 15 digits
]), 5, rejected={2: "科学计数法", 3: "丢失了数字", 5: "科学计数法"}, amounts={"x-r1": Decimal("101.50")})


# ------------------------------------------------------------------------------ one nightly run

@pytest.fixture(scope="module")
def night(tmp_path_factory, prefect_api):
    root = tmp_path_factory.mktemp("hostile")
    inbox, db, out = root / "inbox", root / "fw.duckdb", root / "out"
    d = inbox / DELIVERY
    d.mkdir(parents=True)
    for c in CASES:
        (d / c.name).write_bytes(c.content)
    summary = nightly_flow(inbox=str(inbox), db=str(db), out=str(out), as_of=AS_OF, config_path=None,
                           progress=False)
    con = store.connect(db, read_only=True)
    yield {"con": con, "summary": summary, "inbox": inbox, "db": db}
    con.close()


def _source(c: Case) -> str:
    return f"{DELIVERY}/{c.name}"


def _accepted(con, c: Case) -> list[tuple]:
    kind = c.name.split("_")[0]
    key = "payment_id" if kind == "payments" else "person_id"
    if kind not in EXTRACTS:
        return []
    return con.execute(f"select {key}, _row_number from {kind} where _source_file = ? order by _row_number",
                       [_source(c)]).fetchall()


def _rejected(con, c: Case) -> list[tuple]:
    return con.execute("select row_number, column_name, reason, raw from rejected_rows where source_file = ? "
                       "order by row_number", [_source(c)]).fetchall()


def test_the_night_ran_to_completion_on_the_hostile_inbox(night):
    status = store.scalar(night["con"], "select status from runs")
    assert status == "completed"


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_nothing_lost_nothing_misattributed(night, c):
    con = night["con"]
    accepted, rejected = _accepted(con, c), _rejected(con, c)
    if c.failed:
        assert not accepted
        assert all(c.failed in r[2] for r in rejected)
        # Each delivered row when the rows could be read, else one row-0 note for the file itself.
        assert [r[0] for r in rejected] == (sorted(c.rejected) or [0])
        assert store.scalar(con, "select count(*) from ingest_ledger where source_file = ?", [_source(c)]) == 0
        return
    assert len(accepted) + len(rejected) == c.delivered
    assert {r[0]: r[2] for r in rejected}.keys() == c.rejected.keys()
    for row, _, reason, raw in rejected:
        assert reason and c.rejected[row] in reason, (row, reason)
        assert raw is not None and len(raw) < 20_000  # the delivered row kept, a huge field abridged
    if c.numbered:
        for key, row in accepted:
            assert key.endswith(f"-r{row}"), (key, row)  # stored under the row it was delivered at
    ledger = con.execute("select rows_total, rows_accepted, rows_rejected from ingest_ledger where source_file = ?",
                         [_source(c)]).fetchall()
    assert ledger == [(c.delivered, len(accepted), len(rejected))]


def test_amounts_are_exact(night):
    con = night["con"]
    want = {k: v for c in CASES for k, v in c.amounts.items()}
    got = dict(con.execute(f"select payment_id, amount from payments where payment_id in "
                           f"({', '.join('?' * len(want))})", list(want)).fetchall())
    assert got == want


def test_quoted_fields_keep_embedded_newlines_commas_and_quotes(night):
    got = dict(night["con"].execute("select payment_id, coalesce(name, '') || '|' || handled_by from payments "
                                    "where payment_id like 'q-r%'").fetchall())
    assert got == {"q-r1": "王,小明\n(第二行)|张经办", "q-r2": '张2|张"老张", 经办', "q-r3": "李\r\n四|张经办"}


def test_control_characters_a_program_wrote_into_xlsx_cells_are_read_as_excel_shows_them(night):
    got = night["con"].execute("select payment_id, name, handled_by from payments where payment_id like 'esc-r%' "
                               "order by 1").fetchall()
    # (an escape of no control character is text, as Excel shows it)
    assert got == [("esc-r1", "李\r四", "张\x0b经办"), ("esc-r3", "王_x0033_五", "张经办")]


def test_gb18030_file_reads_the_same_as_its_utf8_twin(night):
    names = night["con"].execute("select payment_id, name from payments where payment_id similar to '(gbk|utf)-r.' "
                                 "order by payment_id").fetchall()
    assert names == [("gbk-r1", "欧阳锋"), ("gbk-r2", "诸葛亮"), ("utf-r1", "欧阳锋"), ("utf-r2", "诸葛亮")]


def test_excel_serial_dates_are_read_as_dates(night):
    got = night["con"].execute("select payment_id, paid_on, reviewed_at from payments where payment_id in "
                               "('x-r1', 'x-r4') order by 1").fetchall()
    assert got == [("x-r1", dt.date(2026, 9, 10), dt.datetime(2026, 9, 10, 9, 0)),
                   ("x-r4", dt.date(2026, 9, 11), dt.datetime(2026, 9, 10, 9, 0))]


def test_reversals_are_accepted_and_netted_by_the_rules(night):
    con = night["con"]
    assert store.scalar(con, "select sum(amount) from payments where person_id = ?", [DEAD]) == Decimal("6000.00")
    amount = store.scalar(con, "select amount from suspects where rule_id = 'PAID_AFTER_DEATH' and subject = ?",
                          [DEAD])
    assert amount == Decimal("6000.00")  # 3 x 3000 after the death month, less the 3000 冲正


def test_header_only_file_is_recorded_with_no_rows(night):
    ledger = night["con"].execute("select rows_total from ingest_ledger where source_file like '%header_only%'").fetchall()
    assert ledger == [(0,)]


def test_every_rejection_has_a_reason_and_no_full_id_in_any_reason(night):
    con = night["con"]
    assert store.scalar(con, "select count(*) from rejected_rows where reason is null or trim(reason) = ''") == 0
    reasons = " ".join(r[0] for r in con.execute("select reason from rejected_rows").fetchall())
    for n in range(1, 10):
        assert person(n) not in reasons
    summary = json.dumps(night["summary"], ensure_ascii=False, default=str)
    assert DEAD not in summary


def test_a_second_night_on_the_same_inbox_changes_nothing(night, tmp_path):
    """The same hostile files again: seen files skipped, failed ones not duplicated in rejected_rows."""
    from pipelines.ingest import ingest_inbox

    copy = tmp_path / "again.duckdb"
    copy.write_bytes(night["db"].read_bytes())
    wal = night["db"].with_name(night["db"].name + ".wal")
    if wal.exists():
        copy.with_name(copy.name + ".wal").write_bytes(wal.read_bytes())
    con = store.connect(copy)
    before = store.scalar(con, "select count(*) from rejected_rows")
    payments = store.scalar(con, "select count(*) from payments")
    report = ingest_inbox(con, night["inbox"])
    assert not report.with_status("ingested")
    assert store.scalar(con, "select count(*) from rejected_rows") == before
    assert store.scalar(con, "select count(*) from payments") == payments
    con.close()
