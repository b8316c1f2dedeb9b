"""Ingest (pipelines/ingest.py) on real files into real DuckDB stores: every extract kind, every
format, every header form, every date/period/money form; the ledger, re-delivery, rejected rows
with their reasons, and bad input. (A crash half-way: tests/test_ingest_crash.py.)"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
from decimal import Decimal
from pathlib import Path

import openpyxl
from openpyxl.utils import get_column_letter
import polars as pl
import pytest

from pipelines import ingest, readers, returns, rules, store, worklists
from pipelines.casework import OUTCOME_LABELS
from pipelines.extracts import EXTRACTS
from pipelines.ingest import IngestError, ingest_inbox
from pipelines.normalise import check_digit

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("csv-utf8", "csv-utf8-bom", "csv-gb18030", "xlsx", "parquet")
HEADER_FORMS = ("canonical", "chinese")
FULLWIDTH = str.maketrans("0123456789Xx.,", "０１２３４５６７８９Ｘｘ．，")


def person(i: int) -> str:
    first17 = f"360702{1930 + i % 60}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    return first17 + check_digit(first17)


def id_form(i: int, pid: str) -> str:
    """The person id as some export would deliver it: canonical, lowercase x, spaced, full-width, 15-digit."""
    form = i % 5
    if form == 1:
        return pid.lower().replace("X", "x")
    if form == 2:
        return f"  {pid} "
    if form == 3:
        return pid.translate(FULLWIDTH)
    if form == 4:
        return pid[:6] + pid[8:17]  # the legacy 15-digit number of the same person (all born 19xx)
    return pid


def date_form(i: int, d: dt.date) -> str:
    return (d.isoformat(), d.strftime("%Y%m%d"), d.strftime("%Y/%m/%d"))[i % 3]


def datetime_form(i: int, t: dt.datetime) -> str:
    return (t.strftime("%Y-%m-%d %H:%M:%S"), t.strftime("%Y/%m/%d %H:%M"), t.strftime("%Y%m%d"))[i % 3]


def period_form(i: int, p: str) -> str:
    return (p, f"{p[:4]}-{p[4:]}")[i % 2]


MONEY = [("1,234.56", "1234.56"), ("1234.5", "1234.50"), ("-300.00", "-300.00"), ("１２３.４５元", "123.45"),
         ("2,800", "2800.00")]


def row_for(kind: str, i: int) -> tuple[dict[str, str], dict[str, object]]:
    """One delivered row (canonical column -> text) and the values the store must hold for it."""
    pid = person(i)
    d = dt.date(2020, 1, 1) + dt.timedelta(days=i * 7)
    t = dt.datetime(2026, 3, 1, 8, 30, 15) + dt.timedelta(hours=i)
    t_expected = t.replace(second=0) if i % 3 == 1 else (t.replace(hour=0, minute=0, second=0) if i % 3 == 2 else t)
    period = f"{2020 + i % 6}{1 + i % 12:02d}"
    money_text, money = MONEY[i % len(MONEY)]
    ins_text, ins = (("110", "110"), ("企业职工基本养老保险", "110"), ("失业保险", "210"))[i % 3]
    agency = f"36{i % 100:04d}"
    text_rows = {
        "agencies": {"agency_code": agency + f"{i}", "agency_name": f"第{i}社保局", "region_code": "360702",
                     "parent_code": "" if i % 2 else "360700"},
        "beneficiaries": {"person_id": id_form(i, pid), "name": f"张{i}", "insurance_type": ins_text,
                          "agency_code": agency, "status": ("正常", "暂停", "终止")[i % 3],
                          "status_date": date_form(i, d), "start_period": period_form(i, period),
                          "bank_account": f"62170000{i:08d}", "last_certified_on": "" if i % 4 == 0 else date_form(i + 1, d)},
        "payments": {"payment_id": f"P{i:06d}", "person_id": id_form(i, pid), "name": f"李{i}", "insurance_type": ins_text,
                     "item": "基本养老金", "period": period_form(i, period), "paid_on": date_form(i, d),
                     "amount": money_text, "bank_account": f"62170000{i:08d}", "agency_code": agency,
                     "handled_by": "张经办", "reviewed_by": "" if i % 2 else "赵复核",
                     "reviewed_at": "" if i % 2 else datetime_form(i, t)},
        "deaths": {"person_id": id_form(i, pid), "name": f"王{i}", "death_date": date_form(i, d),
                   "source": ("公安", "民政户籍注销", "卫健", "法院")[i % 4], "cremated_on": ""},
        "imprisonments": {"person_id": id_form(i, pid), "name": f"赵{i}", "sentence_type": "有期徒刑",
                          "custody_start": date_form(i, d), "custody_end": "" if i % 2 else date_form(i, d + dt.timedelta(days=400)),
                          "facility": "某监狱"},
        "fund_transactions": {"txn_id": f"T{i:06d}", "account_no": f"1502{i:08d}", "account_type": "支出户",
                              "agency_code": agency, "txn_at": datetime_form(i, t), "direction": "支",
                              "amount": money_text, "counterparty_account": f"6217{i:012d}",
                              "counterparty_name": f"钱{i}", "counterparty_kind": "对私", "memo": "养老金"},
        "contributions": {"person_id": id_form(i, pid), "employer_id": "" if i % 3 == 0 else f"E{i:05d}",
                          "insurance_type": ins_text, "period": period_form(i, period), "amount": money_text},
    }
    row = text_rows[kind]
    expected: dict[str, object] = {}
    for col in EXTRACTS[kind].columns:
        text = row[col.name]
        if text.strip() == "":
            expected[col.name] = None
        elif col.type == "id":
            expected[col.name] = pid
        elif col.type == "date":
            expected[col.name] = d if col.name not in ("last_certified_on", "custody_end") else \
                (d if col.name == "last_certified_on" else d + dt.timedelta(days=400))
        elif col.type == "datetime":
            expected[col.name] = t_expected
        elif col.type == "period":
            expected[col.name] = period
        elif col.type == "money":
            expected[col.name] = Decimal(money)
        elif col.type == "insurance_type":
            expected[col.name] = ins
        elif col.name == "source":
            expected[col.name] = text[:2]
        else:
            expected[col.name] = text
    return row, expected


def header(kind: str, form: str) -> list[str]:
    return [c.name if form == "canonical" else c.alias for c in EXTRACTS[kind].columns]


def write_extract(path: Path, kind: str, rows: list[dict[str, str]], fmt: str, form: str = "canonical") -> Path:
    """Write rows (canonical column -> text) as a delivery file in the given format and header form."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [c.name for c in EXTRACTS[kind].columns]
    heads = header(kind, form)
    if fmt.startswith("csv"):
        encoding = {"csv-utf8": "utf-8", "csv-utf8-bom": "utf-8-sig", "csv-gb18030": "gb18030"}[fmt]
        with path.open("w", encoding=encoding, newline="") as f:
            w = csv.writer(f)
            w.writerow(heads)
            w.writerows([[r[c] for c in cols] for r in rows])
    elif fmt == "xlsx":
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "数据"
        ws.append(heads)
        for r in rows:
            ws.append([r[c] if r[c] != "" else None for c in cols])
        other = wb.create_sheet("说明")  # only the first sheet is data
        other.append(["这一页不是数据", "请忽略"])
        wb.save(path)
    elif fmt == "parquet":
        pl.DataFrame({h: [r[c] or None for r in rows] for h, c in zip(heads, cols)},
                     schema={h: pl.Utf8 for h in heads}).write_parquet(path)
    else:
        raise ValueError(fmt)
    return path


def suffix(fmt: str) -> str:
    return "csv" if fmt.startswith("csv") else fmt


def stored(con, kind: str, source_file: str) -> list[dict]:
    cols = EXTRACTS[kind].names
    rows = con.execute(f"select {', '.join(cols)} from {kind} where _source_file = ? order by _row_number",
                       [source_file]).fetchall()
    return [dict(zip(cols, r)) for r in rows]


def rejected(con, source_file: str | None = None) -> list[tuple]:
    sql = "select source_file, row_number, column_name, reason, raw from rejected_rows"
    params = []
    if source_file:
        sql += " where source_file = ?"
        params = [source_file]
    return con.execute(sql + " order by source_file, row_number", params).fetchall()


def snapshot(con) -> dict[str, list]:
    tables = [*EXTRACTS, "ingest_ledger", "rejected_rows"]
    return {t: con.execute(f"select * from {t} order by all").fetchall() for t in tables}


# ------------------------------------------------------------------------------ formats x header forms

def test_every_extract_kind_in_every_format_and_header_form_is_stored_exactly(tmp_path):
    inbox = tmp_path / "inbox"
    expected: dict[str, tuple[str, list[dict]]] = {}
    i = 0
    for kind in EXTRACTS:
        for fmt in FORMATS:
            for form in HEADER_FORMS:
                rows, want = [], []
                for _ in range(5):  # five rows: every id/date/datetime/period/money form rotates through
                    r, e = row_for(kind, i)
                    rows.append(r)
                    want.append(e)
                    i += 1
                name = f"{kind}_{fmt}_{form}.{suffix(fmt)}"
                write_extract(inbox / "2026-11-21" / name, kind, rows, fmt, form)
                expected[f"2026-11-21/{name}"] = (kind, want)
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)

    assert [f.status for f in report.files] == ["ingested"] * len(expected), [f.message for f in report.files]
    assert report.rows_rejected == 0, rejected(con)
    for source, (kind, want) in expected.items():
        assert stored(con, kind, source) == want, source
    gb = (inbox / "2026-11-21" / "payments_csv-gb18030_chinese.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        gb.decode("utf-8")  # the GB18030 file really is not UTF-8


def test_xlsx_native_cells_serial_dates_numbers_and_datetimes(tmp_path):
    """Excel keeps dates as serial numbers or date cells and amounts as numbers; all are read exactly."""
    pid = person(7)
    path = tmp_path / "inbox" / "d1" / "payments_360700.xlsx"
    path.parent.mkdir(parents=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header("payments", "chinese"))
    ws.append(["P1", pid, "王", 110, "基本养老金", 202611, 46331, 2800.5, "6217", "360702", "张", "赵",
               dt.datetime(2026, 11, 5, 9, 30)])
    ws.append(["P2", pid, "王", 110, "基本养老金", dt.datetime(2026, 10, 1), dt.datetime(2026, 10, 5), 1234,
               "6217", "360702", "张", "赵", 46300.75])
    wb.save(path)
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox")
    got = stored(con, "payments", "d1/payments_360700.xlsx")
    assert [(r["period"], r["paid_on"], r["amount"], r["reviewed_at"]) for r in got] == [
        ("202611", dt.date(2026, 11, 5), Decimal("2800.50"), dt.datetime(2026, 11, 5, 9, 30)),
        ("202610", dt.date(2026, 10, 5), Decimal("1234.00"), dt.datetime(2026, 10, 5, 18, 0)),
    ]


def test_parquet_with_typed_columns(tmp_path):
    pid = person(8)
    frame = pl.DataFrame({
        "payment_id": ["P1"], "person_id": [pid], "name": ["王"], "insurance_type": [110], "item": ["基本养老金"],
        "period": [202611], "paid_on": [dt.date(2026, 11, 5)], "amount": [Decimal("2800.55")],
        "bank_account": [None], "agency_code": ["360702"], "handled_by": ["张"], "reviewed_by": ["赵"],
        "reviewed_at": [dt.datetime(2026, 11, 5, 9, 30, 1)],
    }, schema_overrides={"amount": pl.Decimal(18, 2), "bank_account": pl.Utf8})
    (tmp_path / "inbox").mkdir()
    frame.write_parquet(tmp_path / "inbox" / "payments_typed.parquet")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox")
    [row] = stored(con, "payments", "payments_typed.parquet")
    assert (row["insurance_type"], row["period"], row["paid_on"], row["amount"], row["reviewed_at"]) == (
        "110", "202611", dt.date(2026, 11, 5), Decimal("2800.55"), dt.datetime(2026, 11, 5, 9, 30, 1))


@pytest.mark.parametrize("fmt", ["csv-utf8", "parquet"])
def test_a_plain_file_with_one_odd_row_still_parses_that_row_and_refuses_a_blank_key(tmp_path, fmt):
    """Plain exports take the fast paths column by column; a column with one row in another form
    (a repeating column: paid_on; columns that hardly repeat: amount, reviewed_at) is parsed in
    full, and a blank required value is still refused with its reason."""
    rows = [{"payment_id": f"P{i:06d}", "person_id": person(i), "name": f"李{i}", "insurance_type": "110",
             "item": "基本养老金", "period": "202601", "paid_on": "2026-01-05", "amount": f"{100 + i}.50",
             "bank_account": f"62170000{i:08d}", "agency_code": "360702", "handled_by": "张经办",
             "reviewed_by": "赵复核", "reviewed_at": f"2026-01-05 09:{i:02d}:00"} for i in range(40)]
    rows[7].update(paid_on="2026/01/06", amount="1,107.50", reviewed_at="2026/01/05 09:07")
    rows[9]["payment_id"] = "  "
    inbox = tmp_path / "inbox"
    write_extract(inbox / "d1" / f"payments_plain.{suffix(fmt)}", "payments", rows, fmt)
    con = store.connect(tmp_path / "s.duckdb")
    report = ingest_inbox(con, inbox)
    source = f"d1/payments_plain.{suffix(fmt)}"
    got = {r["payment_id"]: r for r in stored(con, "payments", source)}
    assert report.rows_accepted == 39 and len(got) == 39 and "P000009" not in got
    assert [(r[1], r[2], r[3]) for r in rejected(con, source)] == [(10, "payment_id", "缺少必填项: 发放流水号(payment_id) 为空")]
    odd = got["P000007"]
    assert (odd["paid_on"], odd["amount"], odd["reviewed_at"]) == (
        dt.date(2026, 1, 6), Decimal("1107.50"), dt.datetime(2026, 1, 5, 9, 7))
    for i in (0, 8, 39):
        r = got[f"P{i:06d}"]
        assert (r["person_id"], r["period"], r["paid_on"], r["amount"], r["reviewed_at"]) == (
            person(i), "202601", dt.date(2026, 1, 5), Decimal(f"{100 + i}.50"), dt.datetime(2026, 1, 5, 9, i))


def test_money_sums_exactly_in_the_store(tmp_path):
    rows = []
    for i in range(3000):
        r, _ = row_for("payments", i)
        rows.append({**r, "amount": "0.10"})
    write_extract(tmp_path / "inbox" / "payments_many.csv", "payments", rows, "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox")
    assert store.scalar(con, "select sum(amount) from payments") == Decimal("300.00")
    assert store.scalar(con, "select typeof(amount) from payments limit 1") == "DECIMAL(18,2)"


# ------------------------------------------------------------------------------ ledger and re-delivery

def test_ledger_records_hash_and_counts_and_a_file_seen_before_is_skipped(tmp_path):
    import hashlib

    inbox = tmp_path / "inbox"
    rows = [row_for("payments", i)[0] for i in range(4)]
    rows[2] = {**rows[2], "amount": "abc"}
    f1 = write_extract(inbox / "2026-10-21" / "payments_a.csv", "payments", rows, "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    first = ingest_inbox(con, inbox)
    assert first.rows_accepted == 3 and first.rows_rejected == 1
    ledger = con.execute("select file_hash, source_file, delivery, extract, rows_total, rows_accepted, "
                         "rows_rejected, rows_replaced from ingest_ledger").fetchall()
    assert ledger == [(hashlib.sha256(f1.read_bytes()).hexdigest(), "2026-10-21/payments_a.csv", "2026-10-21",
                       "payments", 4, 3, 1, 0)]

    # The same bytes again, under another name in a later delivery, and the same inbox rerun: skipped.
    (inbox / "2026-11-21").mkdir()
    (inbox / "2026-11-21" / "payments_copy.csv").write_bytes(f1.read_bytes())
    again = ingest_inbox(con, inbox)
    assert [f.status for f in again.files] == ["skipped", "skipped"]
    assert "already ingested" in again.files[1].message and "2026-10-21/payments_a.csv" in again.files[1].message
    assert store.scalar(con, "select count(*) from payments") == 3
    assert store.scalar(con, "select count(*) from rejected_rows") == 1
    assert store.scalar(con, "select count(*) from ingest_ledger") == 1


def test_redelivered_row_replaces_the_earlier_one_later_delivery_wins(tmp_path):
    inbox = tmp_path / "inbox"
    rows = [row_for("payments", i)[0] for i in range(3)]
    write_extract(inbox / "2026-10-21" / "payments_a.csv", "payments", rows, "csv-utf8")
    # The next delivery corrects P000001's amount and adds one new payment.
    fixed = {**rows[1], "amount": "999.99"}
    new = row_for("payments", 3)[0]
    write_extract(inbox / "2026-11-21" / "payments_b.xlsx", "payments", [fixed, new], "xlsx", "chinese")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert report.deliveries == ["2026-10-21", "2026-11-21"]
    assert report.files[1].rows_replaced == 1 and report.rows_replaced == 1
    got = con.execute("select payment_id, amount, _delivery from payments order by payment_id").fetchall()
    assert got == [("P000000", Decimal("1234.56"), "2026-10-21"), ("P000001", Decimal("999.99"), "2026-11-21"),
                   ("P000002", Decimal("-300.00"), "2026-10-21"), ("P000003", Decimal("123.45"), "2026-11-21")]
    assert store.scalar(con, "select sum(amount) from payments") == Decimal("1234.56") + Decimal("999.99") \
        - Decimal("300.00") + Decimal("123.45")  # no double counting
    assert store.scalar(con, "select rows_replaced from ingest_ledger where delivery = '2026-11-21'") == 1
    # the row replaced stays on record as it was stored, with the file and row it came from (an audit
    # probe: a recovery rested on a row no table held any more)
    [(kind, row, replaced_by)] = con.execute("select extract, row::varchar, replaced_by from replaced_rows").fetchall()
    row = json.loads(row)
    assert kind == "payments" and (row["payment_id"], row["_row_number"]) == ("P000001", 2)
    assert Decimal(str(row["amount"])) == row_for("payments", 1)[1]["amount"] != Decimal("999.99")
    assert row["_source_file"].endswith("payments_a.csv") and row["_delivery"] == "2026-10-21"
    assert replaced_by == report.files[1].file_hash != row["_file_hash"] == report.files[0].file_hash
    # a row sent again unchanged replaces, and is not kept: a register re-sent whole each month
    # would copy itself into replaced_rows (a regression probe)
    write_extract(inbox / "2026-11-22" / "payments_c.csv", "payments", [fixed], "csv-utf8")
    assert ingest_inbox(con, inbox).rows_replaced == 1
    assert store.scalar(con, "select count(*) from replaced_rows") == 1


def test_two_files_of_one_delivery_giving_one_key_are_said_in_the_summary(tmp_path):
    """From a determinism probe: of one delivery's files the last in name order stands, so renaming
    a file changed a suspect's amount, and only "1 replaced" said anything. The file that replaced
    a row of another file of its delivery now says so (the night's summary shows a file's notes),
    and the row replaced is kept."""
    inbox = tmp_path / "inbox"
    rows = [row_for("payments", i)[0] for i in range(2)]
    write_extract(inbox / "2026-11-21" / "payments_00.csv", "payments", rows, "csv-utf8")
    write_extract(inbox / "2026-11-21" / "payments_zz.csv", "payments", [{**rows[1], "amount": "99999.00"}], "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert [f.notes for f in report.files] == [[], [
        "1 row(s) with the key of a row of payments_00.csv, in the same delivery, and other values replaced it: of "
        "one delivery's files, read in name order, the last stands — check which is right (the row replaced is kept "
        "in replaced_rows)"]]
    assert store.scalar(con, "select row->>'_source_file' from replaced_rows").endswith("payments_00.csv")
    # a file sent to the same folder a night later replaces as any later delivery does: no note (a
    # regression probe: the inbox's loose files, one delivery by name every night, each got one)
    write_extract(inbox / "2026-11-21" / "payments_late.csv", "payments", [{**rows[1], "amount": "1.00"}], "csv-utf8")
    later = ingest_inbox(con, inbox)
    assert [(f.rows_replaced, f.notes) for f in later.with_status("ingested")] == [(1, [])]


def test_a_big_files_replaced_rows_stay_on_record_as_a_small_files_do(tmp_path, monkeypatch):
    """A file read in chunks replaces the stored rows of its keys once all its chunks are in
    (_replace_by_file): those rows are kept in replaced_rows as the small file's are."""
    inbox = tmp_path / "inbox"
    rows = [row_for("payments", i)[0] for i in range(3)]
    write_extract(inbox / "2026-10-21" / "payments_a.csv", "payments", rows, "csv-utf8")
    again = [{**rows[0], "amount": "88.00"}, *[row_for("payments", i)[0] for i in range(3, 7)]]
    write_extract(inbox / "2026-11-21" / "payments_b.parquet", "payments", again, "parquet")
    con = store.connect(tmp_path / "fw.duckdb")
    report, heights = _ingest_counting_chunks(monkeypatch, con, inbox, 2)
    assert heights[1:] == [2, 2, 1] and report.rows_replaced == 1  # the Parquet file in three chunks
    [(payment_id, file_hash)] = con.execute(
        "select row->>'payment_id', row->>'_file_hash' from replaced_rows where replaced_by = ?",
        [report.files[1].file_hash]).fetchall()
    assert (payment_id, file_hash) == ("P000000", report.files[0].file_hash)
    assert store.scalar(con, "select amount from payments where payment_id = 'P000000'") == Decimal("88.00")


def test_invisible_characters_are_no_part_of_a_code_an_id_number_an_account_or_an_amount(tmp_path):
    """A zero-width space, a BOM, a word joiner or a soft hyphen pasted into a cell: the re-delivered
    payment still replaces its earlier row, its agency and account are the ones delivered before, its
    ID number and amount are read — in CSV and XLSX alike. A name keeps what was delivered."""
    inbox = tmp_path / "inbox"
    rows = [row_for("payments", i)[0] for i in range(2)]
    write_extract(inbox / "2026-10-21" / "payments_a.csv", "payments", rows, "csv-utf8")
    zw, bom, joiner, shy = "\u200b", "\ufeff", "\u2060", "\u00ad"
    first = rows[0]
    fixed = {**first, "payment_id": first["payment_id"] + zw, "agency_code": bom + first["agency_code"],
             "bank_account": first["bank_account"][:4] + joiner + first["bank_account"][4:],
             "person_id": first["person_id"][:6] + shy + first["person_id"][6:], "amount": "9" + zw + "99.99",
             "period": zw + first["period"], "name": "吴" + zw + "𪚥"}
    second = {**rows[1], "payment_id": zw + rows[1]["payment_id"], "amount": "12" + zw + "3.45"}
    write_extract(inbox / "2026-11-21" / "payments_b.csv", "payments", [fixed], "csv-utf8")
    write_extract(inbox / "2026-11-22" / "payments_c.xlsx", "payments", [second], "xlsx", "chinese")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert report.rows_rejected == 0 and report.rows_replaced == 2
    got = con.execute("select payment_id, person_id, agency_code, bank_account, period, amount, name"
                      " from payments order by payment_id").fetchall()
    assert [g[0] for g in got] == [first["payment_id"], rows[1]["payment_id"]]
    assert got[0][1:6] == (first["person_id"], first["agency_code"], first["bank_account"].replace(" ", ""),
                           first["period"], Decimal("999.99"))
    assert got[0][6] == "吴" + zw + "𪚥"  # as delivered
    assert got[1][5] == Decimal("123.45")


@pytest.mark.parametrize("fmt", ["csv-utf8", "xlsx", "parquet"])
def test_the_apostrophe_that_keeps_a_code_text_in_excel_is_no_part_of_it(tmp_path, fmt):
    """'360702 (an export's or a clerk's mark that the cell is text, which Excel does not show) was
    another agency with a worklist of its own, and '6222… another account; the payment delivered
    again with the mark was stored beside its row. Codes, accounts, dates and amounts are read
    without it; a name keeps what was delivered; a lone apostrophe is an empty cell."""
    inbox = tmp_path / "inbox"
    rows = [row_for("payments", i)[0] for i in range(3)]
    write_extract(inbox / "2026-10-21" / "payments_a.csv", "payments", rows, "csv-utf8")
    first, second = rows[0], rows[1]
    marked = {**first, "payment_id": "'" + first["payment_id"], "agency_code": " '" + first["agency_code"],
              "bank_account": "'" + first["bank_account"][:8] + " " + first["bank_account"][8:],
              "amount": "'999.99", "name": "'李0"}
    lone = {**second, "reviewed_by": "'", "handled_by": "'", "payment_id": "'"}
    write_extract(inbox / "2026-11-21" / f"payments_b.{suffix(fmt)}", "payments", [marked, lone], fmt)
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert report.rows_replaced == 1
    got = con.execute("select payment_id, agency_code, bank_account, amount, name from payments "
                      "order by payment_id").fetchall()
    assert got[0] == (first["payment_id"], first["agency_code"], first["bank_account"], Decimal("999.99"), "'李0")
    assert [g[0] for g in got] == [r["payment_id"] for r in rows]  # nothing stored beside its row
    assert store.scalar(con, "select count(distinct agency_code) from payments") == 3
    # a payment number of only the mark is missing, as an empty cell is
    assert [(r[2], r[3]) for r in rejected(con, f"2026-11-21/payments_b.{suffix(fmt)}")] == [
        ("payment_id", "缺少必填项: 发放流水号(payment_id) 为空")]


def _three_payments_stored(tmp_path):
    """(inbox, rows delivered, store path, open connection) after one delivery of three payments:
    the start of a store an older fundwatch wrote, before its codes are made as that one left them."""
    inbox = tmp_path / "inbox"
    rows = [row_for("payments", i)[0] for i in range(3)]
    write_extract(inbox / "2026-10-21" / "payments_a.csv", "payments", rows, "csv-utf8")
    path = tmp_path / "fw.duckdb"
    con = store.connect(path)
    ingest_inbox(con, inbox)
    return inbox, rows, path, con


def test_a_store_from_before_loses_the_apostrophe_of_its_codes_once(tmp_path):
    """Codes and accounts an older fundwatch stored with a leading apostrophe lose it when the store is
    opened (an account in groups becomes its digits): the next delivery of the payment replaces its
    row, a suspect's agency and account subject are the ones ingest now reads (id kept), a lone
    apostrophe stays as stored, and the conversion is recorded once."""
    inbox, rows, path, con = _three_payments_stored(tmp_path)
    mark = "'"
    # as the older code left it: P000000 with the mark on its number, agency and grouped account;
    # P000001 stored clean on 10-21 and again, with the mark, by a later delivery (11-01: 555.55)
    con.execute("update payments set payment_id = ? || payment_id, agency_code = ? || agency_code, "
                "bank_account = ? || substr(bank_account, 1, 8) || ' ' || substr(bank_account, 9) "
                "where payment_id = 'P000000'", [mark, mark, mark])
    con.execute("insert into payments select * replace (? || payment_id as payment_id, 555.55 as amount, "
                "'2026-11-01' as _delivery) from payments where payment_id = 'P000001'", [mark])
    con.execute("update payments set handled_by = ? where payment_id = 'P000002'", [mark])  # free text: as it was
    grouped = mark + rows[0]["bank_account"][:8] + " " + rows[0]["bank_account"][8:]
    con.execute("insert into suspects (suspect_id, rule_id, subject, agency_code, status, amount, first_detected_on, "
                "last_detected_on) values ('SBA-1', 'SHARED_BANK_ACCOUNT', ?, ?, '待下发', 10, date '2026-11-20', "
                "date '2026-11-20'), ('LPU-1', 'LARGE_PAYMENT_UNREVIEWED', ?, ?, '待下发', 10, date '2026-11-20', "
                "date '2026-11-20')", [grouped, mark + rows[0]["agency_code"], mark, mark + rows[0]["agency_code"]])
    con.execute("insert into audit_log (action, agency_code) values ('export_worklist', ?)", [mark + rows[0]["agency_code"]])
    assert store.scalar(con, "select count(*) from audit_log where action = 'migrate_store'") == 0  # a new store's say nothing
    con.execute("delete from store_migrations where name = 'codes_without_text_mark'")
    con.close()
    con = store.connect(path)
    try:
        # on record: who converted the store, each suspect changed with its old and new values; the
        # audit log itself as it was written (an audit probe: the conversion rewrote it, no trace)
        [(actor, detail)] = con.execute("select actor, detail::varchar from audit_log where action = 'migrate_store'").fetchall()
        detail = json.loads(detail)
        assert actor and detail == {"migration": "codes_without_text_mark", "suspects_changed": 2,
                                    "run_id": detail["run_id"]} and detail["run_id"].startswith("migrate-")
        assert {r for (r,) in con.execute("select run_id from suspect_events where event = 'migrated'").fetchall()} \
            == {detail["run_id"]}
        migrated = {sid: json.loads(d) for sid, d in con.execute(
            "select suspect_id, detail::varchar from suspect_events where event = 'migrated'").fetchall()}
        assert migrated["LPU-1"]["changed"] == {"agency_code": [mark + rows[0]["agency_code"], rows[0]["agency_code"]]}
        assert migrated["SBA-1"]["changed"]["subject"] == [grouped, rows[0]["bank_account"]]
        assert store.scalar(con, "select agency_code from audit_log where action = 'export_worklist'") == \
            mark + rows[0]["agency_code"]
        got = con.execute("select payment_id, agency_code, bank_account, amount, _delivery from payments order by 1").fetchall()
        assert [g[0] for g in got] == ["P000000", "P000001", "P000002"]
        assert got[0][1:3] == (rows[0]["agency_code"], rows[0]["bank_account"])
        assert got[1][3:] == (Decimal("555.55"), "2026-11-01")
        assert store.scalar(con, "select handled_by from payments where payment_id = 'P000002'") == mark
        assert con.execute("select suspect_id, subject, agency_code from suspects order by 1").fetchall() == [
            ("LPU-1", mark, rows[0]["agency_code"]), ("SBA-1", rows[0]["bank_account"], rows[0]["agency_code"])]
        assert store.scalar(con, "select count(*) from store_migrations where name = 'codes_without_text_mark'") == 1
        write_extract(inbox / "2026-11-21" / "payments_b.csv", "payments", [{**rows[0], "amount": "999.99"}], "csv-utf8")
        assert ingest_inbox(con, inbox).rows_replaced == 1
        assert store.scalar(con, "select count(*) from payments") == 3
    finally:
        con.close()


def test_an_older_stores_lone_apostrophe_in_an_optional_code_becomes_empty_as_ingest_reads_it(tmp_path):
    """A contribution whose 单位编号 was stored as a lone ' and is delivered again read as empty was
    stored beside its row (a key part that no longer matched); payees of an account of ' were one
    shared account; a mark followed by a tab kept the tab. Converted as ingest now reads them: the
    re-delivery replaces, the account is empty, the code trimmed (found reviewing the conversion)."""
    inbox = tmp_path / "inbox"
    contribution = {**row_for("contributions", 1)[0], "employer_id": ""}
    payment = row_for("payments", 0)[0]
    write_extract(inbox / "2026-10-21" / "contributions_a.csv", "contributions", [contribution], "csv-utf8")
    write_extract(inbox / "2026-10-21" / "payments_a.csv", "payments", [payment], "csv-utf8")
    path = tmp_path / "fw.duckdb"
    con = store.connect(path)
    ingest_inbox(con, inbox)
    # as the older code left them
    con.execute("update contributions set employer_id = ?", ["'"])
    # ...and the same contribution delivered later read empty, stored beside it (11-01: 55.00)
    con.execute("insert into contributions select * replace (null as employer_id, 55 as amount, '2026-11-01' as _delivery) "
                "from contributions")
    con.execute("update payments set bank_account = ?, agency_code = ? || agency_code", ["'", "'\t"])
    con.execute("delete from store_migrations where name = 'codes_without_text_mark'")
    con.close()
    con = store.connect(path)
    try:
        assert con.execute("select employer_id, amount from contributions").fetchall() == [(None, Decimal("55.00"))]
        assert con.execute("select bank_account, agency_code from payments").fetchall() == [(None, payment["agency_code"])]
        write_extract(inbox / "2026-11-21" / "contributions_b.csv", "contributions", [{**contribution, "amount": "99.00"}],
                      "csv-utf8")
        assert ingest_inbox(con, inbox).rows_replaced == 1
        assert con.execute("select employer_id, amount from contributions").fetchall() == [(None, Decimal("99.00"))]
    finally:
        con.close()


def test_a_store_from_before_loses_the_invisible_characters_of_its_codes_once(tmp_path):
    """Codes an older fundwatch stored with a zero-width space: opened by this one, they lose it (the
    next delivery of the same payment replaces it instead of being summed beside it); where a code
    so cleaned meets the same code stored clean, the later delivered row stands; a suspect whose
    subject held one keeps its id under the cleaned subject."""
    inbox, rows, path, con = _three_payments_stored(tmp_path)
    zw = "\u200b"
    # as the older code left it: P000000 and its agency with the character; P000001 stored clean on
    # 10-21 and again, with it, by a later delivery (11-01: 555.55)
    con.execute("update payments set payment_id = payment_id || ?, agency_code = agency_code || ? "
                "where payment_id = 'P000000'", [zw, zw])
    con.execute("insert into payments select * replace (payment_id || ? as payment_id, 555.55 as amount, "
                "'2026-11-01' as _delivery) from payments where payment_id = 'P000001'", [zw])
    con.execute("insert into suspects (suspect_id, rule_id, subject, person_id, agency_code, status, amount, "
                "first_detected_on, last_detected_on) values ('LPU-1', 'LARGE_PAYMENT_UNREVIEWED', ?, ?, ?, '待下发', "
                "1234.56, date '2026-11-20', date '2026-11-20')",
                ["P000000" + zw, rows[0]["person_id"], rows[0]["agency_code"] + zw])
    [sheet] = worklists.write_worklists(con, tmp_path / "out", dt.date(2026, 11, 20))  # issued to the agency as it was
    con.execute("delete from store_migrations where name = 'codes_without_format_characters'")
    con.close()
    con = store.connect(path)
    try:
        got = con.execute("select payment_id, agency_code, amount, _delivery from payments order by 1").fetchall()
        assert [g[0] for g in got] == ["P000000", "P000001", "P000002"]
        assert got[0][1] == rows[0]["agency_code"] and got[1][2:] == (Decimal("555.55"), "2026-11-01")
        assert con.execute("select suspect_id, subject, agency_code from suspects").fetchall() == [
            ("LPU-1", "P000000", rows[0]["agency_code"])]
        # the sheet issued before still comes back: its agency on record is cleaned too
        wb = openpyxl.load_workbook(sheet)
        ws = wb["疑点清单"]
        head = [c.value for c in ws[1]]
        ws.cell(row=2, column=head.index("核实结果") + 1, value=OUTCOME_LABELS[7])
        ws.cell(row=2, column=head.index("核实说明") + 1, value="经核实无问题")
        wb.save(sheet)
        assert returns.apply_returns(con, [sheet], dt.date(2026, 11, 25)).refusals == []
        # the next delivery of P000000 replaces it
        write_extract(inbox / "2026-11-21" / "payments_b.csv", "payments", [{**rows[0], "amount": "999.99"}], "csv-utf8")
        report = ingest_inbox(con, inbox)
        assert report.rows_replaced == 1
        assert store.scalar(con, "select count(*) from payments") == 3
        assert store.scalar(con, "select amount from payments where payment_id = 'P000000'") == Decimal("999.99")
    finally:
        con.close()


def test_a_conversion_cut_short_after_the_extract_tables_still_cleans_the_suspects(tmp_path):
    """Killed after the extract tables were cleaned, before the suspects were: the next start finds no
    table to clean but still cleans the suspects and the worklists on record, then records it."""
    path = tmp_path / "fw.duckdb"
    con = store.connect(path)
    con.execute("insert into suspects (suspect_id, rule_id, subject, agency_code, status) "
                "values ('FPT-1', 'FUND_PRIVATE_TRANSFER', 'T1\u2060', '360702\ufeff', '已下发')")
    con.execute("delete from store_migrations where name = 'codes_without_format_characters'")
    con.close()
    con = store.connect(path)
    try:
        assert con.execute("select subject, agency_code from suspects").fetchall() == [("T1", "360702")]
        assert store.scalar(con, "select count(*) from store_migrations where name = 'codes_without_format_characters'") == 1
    finally:
        con.close()


def test_a_redelivery_that_empties_a_stored_optional_column_is_said(tmp_path):
    """A re-export whose 复核人/复核时间 were headed 审核人/审核时间 (not read) replaced reviewed payments
    with unreviewed ones, and LARGE_PAYMENT_UNREVIEWED raised a payment that had been reviewed, with
    only the unread columns noted (a data-drift probe): the emptying is said, per column. Values
    cleared under their own header — even in every row (a register's only 暂停 lifted, its status
    date with it) — are corrections, not said (two regression probes)."""
    inbox = tmp_path / "inbox"
    rows = [row_for("payments", i)[0] for i in (0, 2, 4)]
    assert all(r["reviewed_by"] and r["reviewed_at"] for r in rows)
    write_extract(inbox / "2026-10-21" / "payments_a.csv", "payments", rows, "csv-utf8")
    renamed = {"reviewed_by": "审核人", "reviewed_at": "审核时间"}
    path = inbox / "2026-11-21" / "payments_a.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        names = EXTRACTS["payments"].names
        csv.writer(f).writerows([[renamed.get(n, n) for n in names]] + [[r[n] for n in names] for r in rows[:2]])
    # the third payment re-sent with its reviewer cleared under the column's own header
    write_extract(inbox / "2026-11-22" / "payments_a.csv", "payments",
                  [dict(rows[2], reviewed_by="", reviewed_at="")], "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert [f.notes for f in report.files] == [[], [
        "column(s) not read, no payments column of that name: 审核人, 审核时间 (the contract's names and Chinese "
        "aliases are read; rename a header that holds one of them)",
        *(f"2 stored row(s) had {name} and the row(s) replacing them have it empty (a column renamed or left out "
          "of the export?); the rows replaced are kept in replaced_rows" for name in ("复核人(reviewed_by)",
                                                                                   "复核时间(reviewed_at)"))], []]
    assert store.scalar(con, "select count(*) from payments where reviewed_by is null") == 3


def test_redelivered_row_with_a_composite_key_and_an_empty_key_part_replaces(tmp_path):
    inbox = tmp_path / "inbox"
    r = {**row_for("contributions", 0)[0], "employer_id": ""}
    write_extract(inbox / "d1" / "contributions_a.csv", "contributions", [r], "csv-utf8")
    write_extract(inbox / "d2" / "contributions_a.csv", "contributions", [{**r, "amount": "50"}], "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, inbox)
    assert con.execute("select employer_id, amount from contributions").fetchall() == [(None, Decimal("50.00"))]


def test_deliveries_ingest_in_name_order_and_loose_files_first(tmp_path):
    inbox = tmp_path / "inbox"
    r = row_for("payments", 0)[0]
    write_extract(inbox / "payments_loose.csv", "payments", [{**r, "amount": "1"}], "csv-utf8")
    write_extract(inbox / "2026-11-21" / "payments.csv", "payments", [{**r, "amount": "3"}], "csv-utf8")
    write_extract(inbox / "2026-10-21" / "payments.csv", "payments", [{**r, "amount": "2"}], "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert report.deliveries == ["inbox", "2026-10-21", "2026-11-21"]
    assert store.scalar(con, "select amount from payments") == Decimal("3.00")


@pytest.mark.parametrize("where", ["file", "delivery"])
def test_an_inbox_entry_linked_to_a_disk_not_there_fails_the_night_naming_it(tmp_path, where):
    """A delivery folder (or a file) that is a link to a disk no longer mounted was passed over: the
    night "completed" without it, and rules ran as of a day whose data it lacked."""
    inbox = tmp_path / "inbox"
    r = row_for("payments", 0)[0]
    write_extract(inbox / "2026-10-21" / "payments.csv", "payments", [r], "csv-utf8")
    link = inbox / "2026-11-21" if where == "delivery" else inbox / "2026-10-21" / "payments_2.csv"
    link.symlink_to(tmp_path / "gone_nfs" / link.name)
    con = store.connect(tmp_path / "fw.duckdb")
    with pytest.raises(IngestError, match=f"inbox entry {link} is a link to .*gone_nfs.*, which is not there"):
        ingest_inbox(con, inbox)
    assert store.scalar(con, "select count(*) from ingest_ledger") == 0
    link.unlink()  # (hidden entries and Office lock files are still passed over, as before)
    (inbox / "2026-10-21" / ".~lock.payments.csv#").symlink_to(tmp_path / "gone")
    assert ingest_inbox(con, inbox).deliveries == ["2026-10-21"]


# ------------------------------------------------------------------------------ rejected rows, one per reason

def _bad(i: int, **changes) -> dict[str, str]:
    return {**row_for("payments", i)[0], **changes}


REASONS = [
    # (changes to an otherwise valid payments row, column_name, words in the reason)
    ({"person_id": person(101)[:-1] + ("0" if person(101)[-1] != "0" else "1")}, "person_id", "校验位错误"),
    ({"person_id": "3.60702E+17"}, "person_id", "科学计数法"),
    ({"person_id": person(102)[1:]}, "person_id", "丢失了数字"),
    ({"person_id": "36070219X0010100A1"}, "person_id", "非法字符"),
    ({"person_id": "12345"}, "person_id", "长度错误"),
    ({"person_id": ""}, "person_id", "缺少必填项: 公民身份号码(person_id)"),
    ({"paid_on": "2026-02-30"}, "paid_on", "不是有效日期"),
    ({"paid_on": "1850-01-01"}, "paid_on", "年份超出范围"),
    ({"period": "2026.11"}, "period", "不是有效年月"),
    ({"period": "202613"}, "period", "月份无效"),
    ({"period": "203001"}, "period", "超出合理范围"),
    ({"amount": "12.345"}, "amount", "超过2位小数"),
    ({"amount": "一千元"}, "amount", "不是有效金额"),
    ({"insurance_type": "养老"}, "insurance_type", "不在代码表"),
    ({"reviewed_at": "昨天"}, "reviewed_at", "不是有效日期时间"),
    ({"item": " "}, "item", "缺少必填项: 待遇项目(item)"),
    # Excel kept 15 digits of a 19-digit account: three accounts would read as one (and be "shared")
    ({"bank_account": "6.22236002377598E+18"}, "bank_account", "收款账号(bank_account) 被Excel转成了科学计数法"),
    ({"bank_account": "6.22236e+18"}, "bank_account", "科学计数法"),
]


def test_every_row_that_cannot_be_accepted_lands_in_rejected_rows_with_its_reason(tmp_path):
    inbox = tmp_path / "inbox"
    rows = [row_for("payments", 0)[0]]
    rows += [_bad(100 + n, **changes) for n, (changes, _, _) in enumerate(REASONS)]
    rows.append({**row_for("payments", 0)[0], "amount": "5.00"})  # the same payment_id again: last wins
    write_extract(inbox / "payments_bad.csv", "payments", rows, "csv-utf8")
    bad_status = [{**row_for("beneficiaries", 200)[0], "status": "已死亡"}]
    write_extract(inbox / "beneficiaries_bad.xlsx", "beneficiaries", bad_status, "xlsx", "chinese")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)

    got = {row: (col, reason, json.loads(raw)) for _, row, col, reason, raw in rejected(con, "payments_bad.csv")}
    for n, (changes, column, words) in enumerate(REASONS):
        col, reason, raw = got[n + 2]
        assert col == column and words in reason, (n + 2, col, reason)
        [(name, value)] = changes.items()
        assert raw[name] == (value or None)  # the row as delivered, for the clerk to correct
        assert person(101) not in reason
    col, reason, _ = got[1]
    assert col == "payment_id" and "重复" in reason and f"第{len(rows)}行为准" in reason
    assert len(got) == len(REASONS) + 1
    assert stored(con, "payments", "payments_bad.csv")[0]["amount"] == Decimal("5.00")
    [(_, row, col, reason, _)] = rejected(con, "beneficiaries_bad.xlsx")
    assert (row, col) == (1, "status") and "待遇状态(status) 取值无效" in reason
    assert report.rows_total == report.rows_accepted + report.rows_rejected == len(rows) + 1


def test_rejected_rows_are_counted_by_reason_in_the_report(tmp_path):
    inbox = tmp_path / "inbox"
    rows = [_bad(i, amount="12.345") for i in range(3)] + [_bad(9, period="202613")]
    write_extract(inbox / "payments.csv", "payments", rows, "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert report.rejected_by_reason == {"发放金额(amount) 超过2位小数": 3, "待遇所属期(period) 月份无效": 1}


# ------------------------------------------------------------------------------ bad input

def test_missing_inbox_is_a_one_line_error(tmp_path):
    con = store.connect(tmp_path / "fw.duckdb")
    with pytest.raises(IngestError) as exc:
        ingest_inbox(con, tmp_path / "no-such-inbox")
    assert "no-such-inbox" in str(exc.value) and "\n" not in str(exc.value)


def test_bad_files_fail_with_one_line_naming_the_file_others_still_ingest_nothing_stored_is_lost(tmp_path):
    inbox = tmp_path / "inbox"
    con = store.connect(tmp_path / "fw.duckdb")
    write_extract(inbox / "2026-10-21" / "payments_old.csv", "payments", [row_for("payments", 0)[0]], "csv-utf8")
    ingest_inbox(con, inbox)
    before = snapshot(con)

    d = inbox / "2026-11-21"
    good = write_extract(d / "payments_good.csv", "payments", [row_for("payments", 1)[0]], "csv-utf8")
    write_extract(d / "bonuses_202611.csv", "payments", [row_for("payments", 2)[0]], "csv-utf8")
    xlsx = write_extract(d / "deaths_truncated.xlsx", "deaths", [row_for("deaths", 3)[0]], "xlsx")
    xlsx.write_bytes(xlsx.read_bytes()[: len(xlsx.read_bytes()) // 2])
    pq = write_extract(d / "contributions_truncated.parquet", "contributions", [row_for("contributions", 4)[0]],
                       "parquet")
    pq.write_bytes(pq.read_bytes()[:-20])
    (d / "agencies_binary.csv").write_bytes(bytes(range(256)) * 4)
    missing = [{k: v for k, v in row_for("payments", n)[0].items() if k != "amount"} for n in (5, 6)]
    with (d / "payments_no_amount.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(missing[0]))
        w.writeheader()
        w.writerows(missing)
    (d / "payments_format.json").write_text("{}", encoding="utf-8")
    (d / "readme.txt").write_text("notes from the agency", encoding="utf-8")
    # Excel's "Unicode text" export (UTF-16, tab-separated) renamed .csv, with and without its BOM;
    # and a tab-separated UTF-8 text
    tsv = "\r\n".join("\t".join(str(v) for v in r) for r in
                        [list(row_for("payments", 7)[0]), list(row_for("payments", 7)[0].values())]) + "\r\n"
    (d / "payments_unicode_text.csv").write_bytes(b"\xff\xfe" + tsv.encode("utf-16-le"))
    (d / "payments_unicode_text_nobom.csv").write_bytes(tsv.encode("utf-16-le"))
    (d / "payments_tabs.csv").write_text(tsv, encoding="utf-8")

    kept_before = store.scalar(con, "select count(*) from rejected_rows")
    report = ingest_inbox(con, inbox)
    # the night's count of rejected rows is what it added to rejected_rows (a file unreadable as a
    # whole counts as its one row-0 record), and the counts by reason add up to it
    added = store.scalar(con, "select count(*) from rejected_rows") - kept_before
    assert report.rows_rejected == added == sum(report.rejected_by_reason.values()) > 0
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["payments_good.csv"].status == "ingested"
    assert by_name["readme.txt"].status == "skipped"
    expected_words = {
        "bonuses_202611.csv": "unknown extract kind",
        "deaths_truncated.xlsx": "unreadable XLSX",
        "contributions_truncated.parquet": "unreadable Parquet",
        "agencies_binary.csv": "neither UTF-8 nor GB18030",
        "payments_no_amount.csv": "missing required column 发放金额(amount)",
        "payments_format.json": "unsupported format",
        "payments_unicode_text.csv": "text is UTF-16 (Excel's 'Unicode text' export)",
        "payments_unicode_text_nobom.csv": "text is UTF-16 (Excel's 'Unicode text' export)",
        "payments_tabs.csv": "columns are separated by tabs, not commas",
    }
    for name, words in expected_words.items():
        f = by_name[name]
        assert f.status == "failed" and words in f.message, (name, f.message)
        assert f.message.startswith(f"2026-11-21/{name}: ") and "\n" not in f.message
    # Nothing is lost: the rows of the header-less file are each rejected; the others leave a row-0 note.
    no_amount = rejected(con, "2026-11-21/payments_no_amount.csv")
    assert [(r[1], r[2]) for r in no_amount] == [(1, "amount"), (2, "amount")]
    assert all("整个文件被拒收" in r[3] for r in no_amount)
    assert by_name["payments_no_amount.csv"].rows_rejected == 2
    for name in ("bonuses_202611.csv", "deaths_truncated.xlsx", "contributions_truncated.parquet"):
        assert [r[1] for r in rejected(con, f"2026-11-21/{name}")] == [0]
    after = snapshot(con)
    for table, rows in before.items():
        assert set(rows) <= set(after[table]), table  # nothing already stored was lost
    assert stored(con, "payments", "2026-11-21/payments_good.csv")
    assert str(good.name) in {r[1].split("/")[-1] for r in con.execute("select * from ingest_ledger").fetchall()}

    # Delivered again, the failed files are reported again but their rejections are not duplicated.
    n = store.scalar(con, "select count(*) from rejected_rows")
    again = ingest_inbox(con, inbox)
    assert len(again.with_status("failed")) == len(expected_words)
    assert store.scalar(con, "select count(*) from rejected_rows") == n
    assert again.rows_rejected == 0 and again.rejected_by_reason == {}  # nothing new rejected tonight
    assert all("rejected rows already recorded in delivery 2026-11-21" in f.message
               for f in again.with_status("failed"))
    # the night's summary cuts a long reason, but says whole where the rows were recorded
    from pipelines import runsummary
    summary = runsummary.summarise(con, {"run_id": "r", "as_of": "2026-11-22", "ingest": again})
    assert len(summary["failed_files"]) == len(expected_words)
    assert any(len(f.message) > 180 for f in again.with_status("failed"))  # cut to 120 before
    assert all(f["reason"].endswith(" (rejected rows already recorded in delivery 2026-11-21)")
               for f in summary["failed_files"])


def test_copies_of_a_failed_file_in_one_night_name_the_file_whose_rejections_hold_them(tmp_path):
    """The same bytes under three names in one delivery: the rows are rejected once, under the
    first name, and each copy's message names that file (not "an earlier night")."""
    inbox = tmp_path / "inbox" / "2026-11-21"
    rows = [row_for("payments", i)[0] for i in range(2)]
    first = write_extract(inbox / "payments_a.csv", "payments", rows, "csv-utf8")
    text = first.read_text(encoding="utf-8").replace("amount", "amt", 1)  # a header that fails the file
    for name in ("payments_a.csv", "payments_b.csv", "payments_c.csv"):
        (inbox / name).write_text(text, encoding="utf-8")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, tmp_path / "inbox")
    by_name = {f.path.name: f for f in report.files}
    assert all(f.status == "failed" for f in by_name.values())
    assert {r[0] for r in rejected(con)} == {"2026-11-21/payments_a.csv"}
    assert by_name["payments_a.csv"].rows_rejected == 2 and report.rows_rejected == 2
    for copy in ("payments_b.csv", "payments_c.csv"):
        assert ("same content as 2026-11-21/payments_a.csv in delivery 2026-11-21"
                in by_name[copy].message), by_name[copy].message
        assert "earlier night" not in by_name[copy].message


def test_a_corrected_redelivery_of_a_failed_file_is_read(tmp_path):
    inbox = tmp_path / "inbox"
    rows = [row_for("payments", n)[0] for n in range(2)]
    (inbox / "d1").mkdir(parents=True)
    with (inbox / "d1" / "payments_a.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[k for k in rows[0] if k != "amount"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    write_extract(inbox / "d2" / "payments_a.csv", "payments", rows, "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert [f.status for f in report.files] == ["failed", "ingested"]
    assert store.scalar(con, "select count(*) from payments") == 2


def test_float_amounts_are_read_as_excel_shows_them_never_rounded(tmp_path):
    """A float is the amount its 15 significant digits say, as Excel shows it: 0.1 + 0.2 computed
    by pandas (0.30000000000000004) is 0.30; a float that says 2800.505 is refused, not rounded."""
    rows = [row_for("payments", i)[0] for i in range(4)]
    frame = pl.DataFrame({c: [r[c] or None for r in rows] for c in EXTRACTS["payments"].names},
                         schema={c: pl.Utf8 for c in EXTRACTS["payments"].names})
    frame = frame.with_columns(pl.Series("amount", [2800.5, 0.1 + 0.2, 1e6, 2800.505], dtype=pl.Float64))
    (tmp_path / "inbox").mkdir()
    frame.write_parquet(tmp_path / "inbox" / "payments_float.parquet")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox")
    assert [r["amount"] for r in stored(con, "payments", "payments_float.parquet")] == [
        Decimal("2800.50"), Decimal("0.30"), Decimal("1000000.00")]
    [(_, row, col, reason, _)] = rejected(con)
    assert (row, col) == (4, "amount") and "超过2位小数" in reason and "2800.505" in reason


def test_xlsx_with_a_title_row_above_the_header_is_read(tmp_path):
    path = tmp_path / "inbox" / "payments_titled.xlsx"
    path.parent.mkdir(parents=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["待遇发放明细表"])
    ws.append(["填报单位: 章贡区社保局", None, None, "2026年11月"])
    ws.append(header("payments", "chinese"))
    r = row_for("payments", 0)[0]
    ws.append([r[c] for c in EXTRACTS["payments"].names])
    ws.append([r[c] if c != "amount" else "abc" for c in EXTRACTS["payments"].names])
    wb.save(path)
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox")
    assert [x["payment_id"] for x in stored(con, "payments", "payments_titled.xlsx")] == ["P000000"]
    assert [(x[1], x[2]) for x in rejected(con)] == [(2, "amount")]  # numbered from the header row


@pytest.mark.parametrize("fmt", ["csv-gb18030", "xlsx"])
def test_a_total_line_at_the_foot_of_an_export_is_refused_as_one(tmp_path, fmt):
    # 合计 under the names with the sum under the amounts: refused as a record missing its 发放流水号
    # each night, which sent a clerk looking for a payment; it is said to be a total line, and kept
    rows = [row_for("payments", i)[0] for i in range(3)]
    total = {c: "" for c in EXTRACTS["payments"].names} | {"name": "合　计", "amount": "4,000.00"}
    subtotal = total | {"name": "", "payment_id": "本页合计："}
    # a record of its own (a payment number) whose name reads 合计 keeps its own reason
    named = row_for("payments", 9)[0] | {"name": "合计", "amount": "abc"}
    path = write_extract(tmp_path / "inbox" / "2026-11-21" / f"payments_t.{suffix(fmt)}", "payments",
                         rows + [subtotal, total, named], fmt, "chinese")
    con = store.connect(tmp_path / "fw.duckdb")
    [result] = ingest_inbox(con, tmp_path / "inbox").files
    assert result.status == "ingested" and result.rejected_by_reason["合计行"] == 2
    assert [(r[1], r[3]) for r in rejected(con)] == [(4, "合计行: 汇总数，不是一条记录，未入库 (无需更正)"),
                                                     (5, "合计行: 汇总数，不是一条记录，未入库 (无需更正)"),
                                                     (6, "发放金额(amount) 不是有效金额: 'abc'")]
    assert len(stored(con, "payments", f"2026-11-21/{path.name}")) == 3


def test_an_export_without_its_header_fails_saying_so_keeps_every_record_and_echoes_none(tmp_path):
    rows = [row_for("payments", i)[0] for i in range(2)]
    path = tmp_path / "inbox" / "payments_noheader.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([[r[c] for c in EXTRACTS["payments"].names] for r in rows])
    con = store.connect(tmp_path / "fw.duckdb")
    [result] = ingest_inbox(con, tmp_path / "inbox").files
    assert result.status == "failed" and "no header row" in result.message
    # the first record is not echoed: neither its ID number (even masked) nor its name or account
    for value in (rows[0]["person_id"], rows[0]["person_id"][-4:], rows[0]["name"], rows[0]["bank_account"]):
        assert value not in result.message
    # nothing is lost: the first record, read as the header, is kept as row 0 with its fields
    kept = rejected(con)
    assert [(r[1], r[2]) for r in kept] == [(0, "payment_id"), (1, "payment_id")]
    assert json.loads(kept[0][4]) == [rows[0][c] for c in EXTRACTS["payments"].names]
    assert all(rows[0]["person_id"] not in r[3] for r in kept)  # nor in the reasons
    assert result.rows_rejected == 2


@pytest.mark.parametrize("titles", [[["待遇发放明细表"]], [["待遇发放明细表"] + [""] * 12, ["单位：元", "制表日期：2026-11-21"]]],
                         ids=["one-cell-title", "title-and-unit-lines"])
def test_a_csv_with_a_title_above_its_header_says_which_record_names_the_columns(tmp_path, titles):
    # Refused whole as "no header row" without a word of why (title lines are skipped in XLSX only):
    # the message says which record is the header and what to do; every record is kept
    rows = [row_for("payments", i)[0] for i in range(2)]
    path = tmp_path / "inbox" / "payments_titled.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", encoding="gb18030", newline="") as f:
        csv.writer(f).writerows(titles + [header("payments", "chinese")]
                                + [[r[c] for c in EXTRACTS["payments"].names] for r in rows])
    con = store.connect(tmp_path / "fw.duckdb")
    [result] = ingest_inbox(con, tmp_path / "inbox").files
    assert result.status == "failed"
    assert (f"record {len(titles) + 1} of the file (blank lines not counted) names the columns: the line(s) above it "
            "look like a title") in result.message
    assert rows[0]["person_id"][-4:] not in result.message and rows[0]["name"] not in result.message
    assert store.scalar(con, "select count(*) from rejected_rows") == len(titles) + 1 + len(rows)


# ------------------------------------------------------------------------------ big files in chunks

def _contents(con) -> dict[str, list]:
    """Everything ingest stores, except the moments it was stored."""
    out = {t: con.execute(f"select * from {t} order by all").fetchall() for t in EXTRACTS}
    out["rejected_rows"] = con.execute("select * exclude (rejected_at) from rejected_rows order by all").fetchall()
    out["ingest_ledger"] = con.execute("select * exclude (ingested_at) from ingest_ledger order by all").fetchall()
    return out


def _ingest_counting_chunks(monkeypatch, con, inbox, chunk_rows: int) -> tuple[object, list[int]]:
    """Ingest with CHUNK_ROWS set; also the heights of the frames normalised (one per chunk)."""
    from pipelines import ingest

    heights: list[int] = []
    real = ingest.normalise_frame

    def normalise(kind, raw, today=None):
        heights.append(raw.data.height)
        return real(kind, raw, today)

    monkeypatch.setattr(ingest, "CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(ingest, "normalise_frame", normalise)
    report = ingest_inbox(con, inbox)
    monkeypatch.undo()
    return report, heights


def test_a_big_parquet_file_ingested_in_chunks_stores_exactly_what_reading_it_whole_stores(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    # An earlier delivery some of whose rows the big file replaces.
    write_extract(inbox / "d1" / "payments_old.csv", "payments",
                  [{**row_for("payments", i)[0], "amount": "1.00"} for i in range(0, 60, 3)], "csv-utf8")
    rows = [row_for("payments", i)[0] for i in range(280)]
    for n, (changes, _, _) in enumerate(REASONS):  # bad rows spread over many chunks
        rows.insert(n * 17 + 5, {**_bad(500 + n, **changes), "payment_id": f"B{n:03d}"})
    rows += [{**_bad(600 + n), "payment_id": ""} for n in range(2)]  # no key: refused, not a repeat
    write_extract(inbox / "d2" / "payments_big.parquet", "payments", rows, "parquet")
    write_extract(inbox / "d2" / "deaths_small.csv", "deaths", [row_for("deaths", i)[0] for i in range(5)], "csv-utf8")

    whole_con, chunked_con = store.connect(tmp_path / "whole.duckdb"), store.connect(tmp_path / "chunked.duckdb")
    whole, whole_heights = _ingest_counting_chunks(monkeypatch, whole_con, inbox, 10**9)
    chunked, heights = _ingest_counting_chunks(monkeypatch, chunked_con, inbox, 7)

    assert len(rows) in whole_heights  # read whole ...
    assert heights[:2] == [20, 5] and sum(heights[2:]) == len(rows)  # ... and in chunks of 7 rows
    assert max(heights[2:]) == 7 and len(heights[2:]) == -(-len(rows) // 7)
    assert _contents(chunked_con) == _contents(whole_con)
    bad = rejected(chunked_con, "d2/payments_big.parquet")
    assert [row for _, row, *_ in bad] == [n * 17 + 6 for n in range(len(REASONS))] + [len(rows) - 1, len(rows)]
    assert [(col, words in reason) for (_, _, col, reason, _), (_, col2, words) in zip(bad, REASONS)] == \
        [(col2, True) for _, col2, _ in REASONS]  # the file's own row numbers, with their reasons
    assert [col for _, _, col, _, _ in bad[-2:]] == ["payment_id", "payment_id"]
    [ledger] = chunked_con.execute("select rows_total, rows_accepted, rows_rejected, rows_replaced from "
                                   "ingest_ledger where source_file = 'd2/payments_big.parquet'").fetchall()
    assert ledger == (len(rows), 280, len(REASONS) + 2, 20)
    big = [f for f in chunked.files if f.path.name == "payments_big.parquet"][0]
    assert big.rejected_by_reason == [f for f in whole.files if f.path.name == "payments_big.parquet"][0].rejected_by_reason
    assert chunked.rows_total == whole.rows_total == chunked.rows_accepted + chunked.rows_rejected


def test_a_big_parquet_file_with_a_key_given_twice_reports_it_and_the_later_row_wins(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    rows = [row_for("payments", i)[0] for i in range(100)]
    rows.append({**row_for("payments", 3)[0], "amount": "5.00"})  # payment 3 again, many chunks later
    write_extract(inbox / "payments_twice.parquet", "payments", rows, "parquet")
    con = store.connect(tmp_path / "fw.duckdb")
    report, _ = _ingest_counting_chunks(monkeypatch, con, inbox, 7)

    [(_, row, col, reason, _)] = rejected(con, "payments_twice.parquet")
    assert (row, col) == (4, "payment_id") and "重复" in reason and "第101行为准" in reason
    [(amount,)] = con.execute("select amount from payments where payment_id = 'P000003'").fetchall()
    assert amount == Decimal("5.00")
    assert (report.rows_total, report.rows_accepted, report.rows_rejected, report.rows_replaced) == (101, 100, 1, 0)


def test_a_big_parquet_file_giving_a_key_again_in_another_spelling_and_chunk_keeps_only_the_later_row(
        tmp_path, monkeypatch):
    """Payment 3 again, many chunks later, with a trailing space: not a repeat of the raw key, so the
    file is read in chunks; the later row replaces the earlier one of the same file, as a re-delivery
    would, and the store holds the key once."""
    inbox = tmp_path / "inbox"
    write_extract(inbox / "d1" / "payments_old.csv", "payments",
                  [{**row_for("payments", i)[0], "amount": "1.00"} for i in (3, 50)], "csv-utf8")
    rows = [row_for("payments", i)[0] for i in range(100)]
    rows.append({**row_for("payments", 3)[0], "payment_id": "P000003 ", "amount": "5.00"})
    write_extract(inbox / "d2" / "payments_again.parquet", "payments", rows, "parquet")
    con = store.connect(tmp_path / "fw.duckdb")
    report, heights = _ingest_counting_chunks(monkeypatch, con, inbox, 7)

    assert heights[0] == 2 and len(heights[1:]) == -(-len(rows) // 7)  # read in chunks
    assert con.execute("select amount, _row_number from payments where payment_id = 'P000003'").fetchall() == \
        [(Decimal("5.00"), 101)]
    assert store.scalar(con, "select count(*) - count(distinct payment_id) from payments") == 0
    assert con.execute("select _delivery from payments where payment_id = 'P000050'").fetchall() == [("d2",)]
    [big] = [f for f in report.files if f.path.name == "payments_again.parquet"]
    # d1's payments 3 and 50, and the file's own earlier payment 3
    assert (big.rows_accepted, big.rows_rejected, big.rows_replaced) == (101, 0, 3)


def test_a_big_parquet_file_whose_header_fails_rejects_every_row_once(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    frame = pl.read_parquet(write_extract(tmp_path / "p.parquet", "payments",
                                          [row_for("payments", i)[0] for i in range(30)], "parquet"))
    frame.drop("person_id").write_parquet(inbox.mkdir() or inbox / "payments_noid.parquet")
    con = store.connect(tmp_path / "fw.duckdb")
    report, _ = _ingest_counting_chunks(monkeypatch, con, inbox, 7)
    assert [f.status for f in report.files] == ["failed"]
    got = rejected(con, "payments_noid.parquet")
    assert [row for _, row, *_ in got] == list(range(1, 31))
    assert all("missing required column" in reason for _, _, _, reason, _ in got)
    assert store.scalar(con, "select count(*) from payments") == 0


def test_a_delivery_folder_that_arrives_late_does_not_replace_a_later_deliverys_rows(tmp_path):
    """Later delivery wins by the delivery's date: the store does not depend on arrival order."""
    inbox = tmp_path / "inbox"
    row = row_for("payments", 0)[0]

    def deliver(folder: str, amount: str) -> None:
        write_extract(inbox / folder / f"payments_{folder}.csv", "payments", [dict(row, amount=amount)], "csv-utf8")

    con = store.connect(tmp_path / "arrived.duckdb")
    deliver("2026-11-01", "2500.00")
    ingest_inbox(con, inbox)
    deliver("2026-11-21", "2600.00")  # the correction
    ingest_inbox(con, inbox)
    deliver("2026-11-10", "2,550.00")  # an older extract, sent late
    [late] = ingest_inbox(con, inbox).with_status("ingested")
    assert (late.rows_accepted, late.rows_rejected, late.rows_replaced) == (0, 1, 0)
    [(row_number, column, reason, raw)] = [r[1:] for r in rejected(con, "2026-11-10/payments_2026-11-10.csv")]
    assert (row_number, column) == (1, "payment_id") and "交付 2026-11-21 已有同一记录" in reason
    assert json.loads(raw)["amount"] == "2,550.00"  # kept as delivered, not lost
    stored_now = con.execute("select payment_id, amount, _delivery from payments").fetchall()
    assert stored_now == [(row["payment_id"], Decimal("2600.00"), "2026-11-21")]
    # the same three deliveries read at once, in date order, leave the same row
    fresh = store.connect(tmp_path / "fresh.duckdb")
    ingest_inbox(fresh, inbox)
    assert fresh.execute("select payment_id, amount, _delivery from payments").fetchall() == stored_now


def test_account_numbers_excel_stored_as_numbers_are_refused_not_merged(tmp_path):
    """Three 19-digit accounts typed into number cells keep 15 digits each — one and the same text."""
    inbox = tmp_path / "inbox"
    rows = [{**row_for("payments", i)[0], "bank_account": 6222360023775982595 + i} for i in range(3)]
    rows.append({**row_for("payments", 3)[0], "bank_account": "6222360023775982598"})  # typed as text: fine
    path = write_extract(inbox / "payments_numbers.xlsx", "payments", rows, "xlsx")
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    col = [c.value for c in ws[1]].index("bank_account") + 1
    for r in range(2, 5):
        ws.cell(row=r, column=col).value = float(ws.cell(row=r, column=col).value)  # as Excel holds them
    wb.save(path)
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, inbox)
    refused = rejected(con, "payments_numbers.xlsx")
    assert [(r[1], r[2]) for r in refused] == [(1, "bank_account"), (2, "bank_account"), (3, "bank_account")]
    # the digits Excel kept are most of an account: masked as one in the reason
    assert all("科学计数法(6.2223******7598E+18)" in r[3] for r in refused)
    assert con.execute("select bank_account from payments").fetchall() == [("6222360023775982598",)]


@pytest.mark.parametrize("fmt", ["csv-utf8", "xlsx", "parquet"])
def test_an_account_written_in_groups_or_full_width_is_one_account_its_digits(tmp_path, fmt):
    """Systems spell one bank account differently (6222-0212-…, 6222 0212 …, full-width digits): the
    store holds its digits, so the rules see one account; an account with other characters is kept."""
    from pipelines.rules import detect, load_rules  # noqa: PLC0415

    spellings = ["6222-0212-3456-7890", "6222 0212 3456 7890", "６２２２０２１２３４５６７８９０"]
    inbox = tmp_path / "inbox"
    rows = [{**row_for("payments", i)[0], "period": "202610", "paid_on": "2026-10-10", "amount": "1000.00",
             "bank_account": spelling}
            for i, spelling in enumerate(spellings)]
    rows.append({**row_for("payments", 3)[0], "bank_account": "6222-0212-ABC"})  # not digits only: as written
    write_extract(inbox / f"payments_1.{suffix(fmt)}", "payments", rows, fmt)
    txns = [{**row_for("fund_transactions", i)[0], "txn_at": "2026-10-12 09:00:00", "amount": "1000.00",
             "counterparty_account": account} for i, account in enumerate(["6222　0212　3456　7890", "6217-0000-1"])]
    write_extract(inbox / f"fund_transactions_1.{suffix(fmt)}", "fund_transactions", txns, fmt)
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert report.rows_rejected == 0, rejected(con)
    assert [r["bank_account"] for r in stored(con, "payments", f"payments_1.{suffix(fmt)}")] == \
        ["6222021234567890"] * 3 + ["6222-0212-ABC"]
    assert [r["counterparty_account"] for r in stored(con, "fund_transactions", f"fund_transactions_1.{suffix(fmt)}")] \
        == ["6222021234567890", "621700001"]
    rules = [r for r in load_rules()[0] if r.id in ("SHARED_BANK_ACCOUNT", "FUND_PRIVATE_TRANSFER")]
    assert not detect(con, dt.date(2026, 11, 21), rules=rules).errors
    found = con.execute("select rule_id, subject from detections order by all").fetchall()
    # three persons paid into one account in 202610; the transfer into it matches the payment of
    # the same amount 2 days before (a benefit payment), the other transfer matches none
    assert found == [("FUND_PRIVATE_TRANSFER", "T000001"), ("SHARED_BANK_ACCOUNT", "6222021234567890")]


def test_a_store_holding_accounts_as_delivered_has_them_as_digits_once_opened(tmp_path, monkeypatch):
    """A store written before accounts were stored as their digits: opened by this fundwatch, its
    accounts become their digits once (in batches: 2 rows here), its next night detects in full, and
    a SHARED_BANK_ACCOUNT suspect keeps its id, status and answers under the account's digits."""
    from pipelines import rules, suspects  # noqa: PLC0415

    monkeypatch.setattr(store, "_MIGRATION_BATCH_ROWS", 2)
    db = tmp_path / "fw.duckdb"
    con = store.connect(db)
    con.execute("delete from store_migrations")  # as an older fundwatch left it
    grouped = "6222-0212-3456-7890"
    for i, account in enumerate([grouped, "6222 0212 3456 7890", "6222-0212-ABC", "6217000000000001", "-6222",
                                 "6222\u00a00212\u00a03456\u00a07890"]):
        con.execute("insert into payments (payment_id, person_id, period, amount, agency_code, bank_account) "
                    "values (?, ?, '202610', 1000, '360702', ?)", [f"P{i}", person(i), account])
    con.execute("insert into fund_transactions (txn_id, account_no, counterparty_account) values ('T1', '3607 0000 1', '６２２２-０２１２')")
    rules.ensure_detect_schema(con)
    con.execute("insert into detect_state values (1, date '2026-11-21', 'f', now())")
    closed = suspects.suspect_id("SHARED_BANK_ACCOUNT", grouped)
    con.execute("insert into suspects (suspect_id, rule_id, subject, agency_code, period_from, period_to, amount, "
                "status, outcome, closed_on, closed_amount, closed_period_from, closed_period_to) values "
                "(?, 'SHARED_BANK_ACCOUNT', ?, '360702', '202610', '202610', 3000, '已销号', '7', date '2026-11-22', "
                "3000, '202610', '202610')", [closed, grouped])
    for twin in ("6217 0000 1", "6217-0000-1"):  # one account, two suspects: left as they were
        con.execute("insert into suspects (suspect_id, rule_id, subject, status) values (?, 'SHARED_BANK_ACCOUNT', ?, '已下发')",
                    [suspects.suspect_id("SHARED_BANK_ACCOUNT", twin), twin])
    con.close()

    con = store.connect(db)
    assert con.execute("select bank_account from payments order by payment_id").fetchall() == [
        ("6222021234567890",), ("6222021234567890",), ("6222-0212-ABC",), ("6217000000000001",), ("-6222",),
        ("6222021234567890",)]
    assert con.execute("select account_no, counterparty_account from fund_transactions").fetchall() == [("360700001", "62220212")]
    assert con.execute("select count(*) from detect_state").fetchall() == [(0,)]
    assert con.execute("select suspect_id, subject, status from suspects order by subject").fetchall() == [
        (suspects.suspect_id("SHARED_BANK_ACCOUNT", "6217 0000 1"), "6217 0000 1", "已下发"),
        (suspects.suspect_id("SHARED_BANK_ACCOUNT", "6217-0000-1"), "6217-0000-1", "已下发"),
        (closed, "6222021234567890", "已销号")]
    # the next night finds the account (now three persons' payments into it) as the same, closed suspect
    sba = [r for r in rules.load_rules()[0] if r.id == "SHARED_BANK_ACCOUNT"]
    rules.detect(con, dt.date(2026, 11, 23), rules=sba)
    suspects.update_suspects(con, dt.date(2026, 11, 23), "r2")
    assert con.execute("select suspect_id, status from suspects where subject = '6222021234567890'").fetchall() == [
        (closed, "已销号")]
    assert con.execute("select count(*) from suspect_events where event = 'detected'").fetchall() == [(0,)]

    con.execute("update payments set bank_account = '6222-0212' where payment_id = 'P3'")
    con.close()
    con = store.connect(db)  # done once: rows stored since are as ingest stored them
    assert con.execute("select bank_account from payments where payment_id = 'P3'").fetchall() == [("6222-0212",)]
    con.execute("begin")  # a caller's own transaction: the schema check inside it works
    store.ensure_schema(con)
    ingest_inbox(con, tmp_path / "empty_inbox") if (tmp_path / "empty_inbox").mkdir() is None else None
    con.execute("commit")
    con.close()


def test_parquet_times_with_a_time_zone_are_read_as_chinas_date_and_time(tmp_path):
    import polars as pl

    folder = tmp_path / "inbox" / "2026-11-21"
    folder.mkdir(parents=True)
    rows = [row_for("payments", i)[0] for i in range(2)]
    pl.DataFrame(rows).with_columns(
        # midnight in Shanghai on the 15th, and 16:00 there (a date with a real time of day)
        pl.Series("paid_on", [dt.datetime(2026, 9, 14, 16, 0), dt.datetime(2026, 9, 14, 8, 0)]).dt.replace_time_zone("UTC"),
        pl.Series("reviewed_at", [dt.datetime(2026, 10, 16, 1, 0)] * 2).dt.replace_time_zone("Asia/Shanghai"),
    ).write_parquet(folder / "payments_tz.parquet")
    pl.DataFrame([row_for("fund_transactions", 0)[0]]).with_columns(
        pl.Series("txn_at", [dt.datetime(2026, 10, 31, 17, 30)]).dt.replace_time_zone("UTC"),
    ).write_parquet(folder / "fund_transactions_tz.parquet")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox")
    assert con.execute("select paid_on, reviewed_at from payments").fetchall() == [
        (dt.date(2026, 9, 15), dt.datetime(2026, 10, 16, 1, 0))]
    assert [(r[1], r[2]) for r in rejected(con)] == [(2, "paid_on")]  # 16:00 is no date
    assert store.scalar(con, "select txn_at from fund_transactions") == dt.datetime(2026, 11, 1, 1, 30)


def test_a_key_given_twice_in_one_file_names_its_first_column(tmp_path):
    """As every rejection names one canonical column (the first when several are at fault): a death
    record given twice (person_id + source) names person_id, as the older-delivery refusal does."""
    inbox = tmp_path / "inbox"
    row = row_for("deaths", 0)[0]
    write_extract(inbox / "2026-11-21" / "deaths_twice.csv", "deaths",
                  [row, dict(row, death_date="2026-09-20")], "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, inbox)
    [(row_number, column, reason, raw)] = [r[1:] for r in rejected(con, "2026-11-21/deaths_twice.csv")]
    assert (row_number, column) == (1, "person_id") and "重复" in reason


def test_a_death_before_the_birth_its_id_number_carries_is_refused(tmp_path):
    """1900-01-01, a system's placeholder for an unknown date, made three living pensioners dead since
    1900 and every payment of theirs a suspect (a data-drift probe): each field valid, together
    impossible. Refused with its reason (kept as delivered); a death on the day of birth and the
    other rows stay."""
    inbox = tmp_path / "inbox"
    rows = [row_for("deaths", i)[0] for i in range(3)]
    born = dt.date(int(person(1)[6:10]), int(person(1)[10:12]), int(person(1)[12:14]))
    rows[1] = dict(rows[1], person_id=person(1), death_date="1900-01-01")
    born_2 = dt.date(int(person(2)[6:10]), int(person(2)[10:12]), int(person(2)[12:14]))
    rows[2] = dict(rows[2], person_id=person(2), death_date=born_2.isoformat())
    # the same person and source again, later in the file, with a real date: a row refused for its
    # date does not set the other aside (a regression probe: both were refused, the person had no death)
    rows.append(dict(rows[0], death_date="1900-01-01"))
    write_extract(inbox / "2026-11-21" / "deaths_placeholder.csv", "deaths", rows, "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert born > dt.date(1900, 1, 1)
    got = [r[1:] for r in rejected(con, "2026-11-21/deaths_placeholder.csv")]
    assert [(row_number, column) for row_number, column, _, _ in got] == [(2, "death_date"), (4, "death_date")]
    for _, _, reason, raw in got:
        assert reason.startswith("死亡日期(death_date) 早于公民身份号码所载的出生日期") and "1900-01-01" in raw
    assert [(r["person_id"], r["death_date"]) for r in stored(con, "deaths", "2026-11-21/deaths_placeholder.csv")] == \
        [(person(0), row_for("deaths", 0)[1]["death_date"]), (person(2), born_2)]
    assert report.rows_rejected == 2


@pytest.mark.parametrize("fmt", ["csv-utf8", "xlsx", "parquet"])
def test_a_file_of_its_header_only_is_ingested_with_a_note(tmp_path, fmt):
    """An export of nothing (a register queried for the wrong month) was taken as 0 rows without a
    word, where a 0-byte file fails loudly (a data-drift probe): said in a note, in every format."""
    inbox = tmp_path / "inbox"
    ext = {"csv-utf8": "csv", "xlsx": "xlsx", "parquet": "parquet"}[fmt]
    write_extract(inbox / "2026-11-21" / f"beneficiaries_360100_202611.{ext}", "beneficiaries", [], fmt)
    write_extract(inbox / "2026-11-21" / f"deaths_360100_202611.{ext}", "deaths", [row_for("deaths", 0)[0]], fmt)
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    notes = {f.path.name.split("_")[0]: (f.status, f.rows_total, f.notes) for f in report.files}
    assert notes["beneficiaries"] == ("ingested", 0, [
        "no rows: the file holds its header only (exported for the wrong month or agency?); the stored rows "
        "stay as they were"])
    assert notes["deaths"] == ("ingested", 1, [])


def test_a_file_thousands_of_columns_wide_is_read_with_every_extra_column_kept_in_the_raw_row(tmp_path):
    """A 34 KB CSV of 5,000 columns took 145 s and a stray header cell at XFD1 of an XLSX some
    twenty minutes (the columns' types looked up anew for each column, the raw names by a list):
    1.1 and 3.4 s now (measured by the security probe's files). Extra columns, headed or not, are
    kept in a refused row's raw copy by their own names."""
    inbox = tmp_path / "inbox" / "2026-11-21"
    inbox.mkdir(parents=True)
    extra = 3000
    head = "经办机构编码,经办机构名称,行政区划代码,上级机构编码," + ",".join([""] * (extra - 1) + ["备注"])
    lines = [head, "360702001,章贡区社保局,360702,," + ",".join([""] * extra),
             ",缺编码,360703,," + ",".join([""] * (extra - 1) + ["x"])]
    (inbox / "agencies_wide.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, tmp_path / "inbox", as_of=dt.date(2026, 11, 21))
    assert [(f.status, f.rows_total, f.rows_accepted) for f in report.files] == [("ingested", 2, 1)]
    [(row_number, column, _reason, raw)] = [r[1:] for r in rejected(con)]
    assert (row_number, column) == (2, "agency_code")
    raw = json.loads(raw) if isinstance(raw, str) else raw
    assert raw["备注"] == "x" and f"column{4 + extra - 1}" in raw and len(raw) == 4 + extra


def test_a_file_that_is_no_extract_is_not_counted_as_seen_before(tmp_path):
    from pipelines import runsummary
    inbox = tmp_path / "inbox"
    write_extract(inbox / "2026-11-21" / "payments_a.csv", "payments", row_for("payments", 0), "csv-utf8")
    (inbox / "2026-11-21" / "说明.txt").write_text("本批次为11月数据", encoding="utf-8")
    con = store.connect(tmp_path / "fw.duckdb")
    found = ingest_inbox(con, inbox)
    summary = runsummary.summarise(con, {"run_id": "r", "as_of": dt.date(2026, 11, 21), "ingest": found})
    assert (summary["files_skipped"], summary["files_not_extracts"]) == (0, 1)
    line = runsummary.format_summary(summary).splitlines()[1]
    assert line == "  files: 1 ingested, 0 skipped (seen before), 0 failed, 1 not extract files (ignored)", line


def test_long_numbers_excel_cut_to_15_digits_are_refused_in_codes_and_accounts(tmp_path):
    """Excel keeps 15 digits of a number: payment numbers 20261115000000001 and …002 typed into
    number cells are both stored 2.0261115E+16 (a float in the file, or the whole number
    20261115000000000), a 16-digit card number 6222000000000001 comes out 6222000000000000. A code
    (发放流水号) or an account of 16+ digits that Excel could have cut is refused naming the column,
    never stored cut — two payments would be one re-delivered row, two accounts one shared account.
    A whole number of more than 15 significant digits cannot come from Excel (a program wrote it,
    exactly): kept."""
    rows = [row_for("payments", i)[0] for i in range(4)]
    path = tmp_path / "inbox" / "payments_numbers.xlsx"
    path.parent.mkdir(parents=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header("payments", "canonical"))
    cols = EXTRACTS["payments"].names
    for r, column, number in ((rows[0], "payment_id", 2.0261115e16), (rows[1], "payment_id", 20261115000000000),
                              (rows[2], "bank_account", 6222000000000000), (rows[3], "payment_id", 1234567890123456)):
        values = [r[c] for c in cols]
        values[cols.index(column)] = number  # a number cell
        ws.append(values)
    wb.save(path)
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox")
    assert [r["payment_id"] for r in stored(con, "payments", "payments_numbers.xlsx")] == ["1234567890123456"]
    refusals = [(row, col, reason) for _, row, col, reason, _ in rejected(con)]
    assert [(row, col) for row, col, _ in refusals] == [(1, "payment_id"), (2, "payment_id"), (3, "bank_account")]
    assert all("被Excel转成了科学计数法" in reason for _, _, reason in refusals), refusals
    assert "2.0261115E+16" in refusals[0][2] and "6.222E+15" in refusals[2][2]


def test_codes_that_hold_an_e_are_codes(tmp_path):
    """Only Excel's own form (one digit, the rest after the point, E+ and two digits) is taken for
    a number Excel cut: agency codes 3E5 and 360E01 are stored as delivered."""
    inbox = tmp_path / "inbox" / "2026-11-21"
    inbox.mkdir(parents=True)
    (inbox / "agencies_e.csv").write_text("agency_code,agency_name,region_code,parent_code\n3E5,第一局,360702,\n"
                                          "360E01,第二局,360702,3E5\n", encoding="utf-8")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox")
    assert [(r["agency_code"], r["parent_code"]) for r in stored(con, "agencies", "2026-11-21/agencies_e.csv")] == [
        ("3E5", None), ("360E01", "3E5")]
    assert rejected(con) == []


def test_a_parquet_column_of_floats_reads_as_excel_shows_it(tmp_path):
    """pandas writes an integer column with one empty cell as floats: 110.0, 202611.0, a 15-digit
    legacy ID 360702500101001.0, NaN. They are read as the numbers they are — 110, 202611, the ID
    converted to 18 digits, empty — as from an XLSX number cell; an 18-digit ID as a float (only
    15 digits kept) is refused."""
    legacy = "360702500101001"  # born 1950-01-01, 15-digit form
    frame = pl.DataFrame({
        "person_id": [float(legacy), float(legacy), 3.60702195001011e17, float(legacy), float(legacy)],
        "employer_id": [float(20261), float("nan"), None, 1.0, 2.0],
        "insurance_type": [110.0, 110.0, 110.0, 110.0, 110.0],
        "period": [202611.0, 202610.0, 202611.0, 202609.0, 202608.0],
        "amount": [100.0, 0.1 + 0.2, 5.0, float("inf"), 12.34],
    }).with_columns(pl.col("amount").cast(pl.Float64))
    (tmp_path / "inbox").mkdir()
    frame.write_parquet(tmp_path / "inbox" / "contributions_floats.parquet")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox", as_of=dt.date(2026, 11, 21))
    got = stored(con, "contributions", "contributions_floats.parquet")
    eighteen = "36070219500101001" + check_digit("36070219500101001")
    assert [(r["person_id"], r["employer_id"], r["insurance_type"], r["period"], r["amount"]) for r in got] == [
        (eighteen, "20261", "110", "202611", Decimal("100.00")),
        (eighteen, None, "110", "202610", Decimal("0.30")),
        (eighteen, "2", "110", "202608", Decimal("12.34"))]
    refused = [(row, col, reason) for _, row, col, reason, _ in rejected(con)]
    assert [(row, col) for row, col, _ in refused] == [(3, "person_id"), (4, "amount")]  # inf is no amount
    assert "科学计数法" in refused[0][2]


def test_a_float32_amount_is_the_number_it_shows(tmp_path):
    """A Float32 column's 12.34 is 12.34 (its own shortest text), not 12.34000015258789."""
    frame = pl.DataFrame({"person_id": [person(1), person(2), person(3)], "employer_id": ["E1", "E2", None],
                          "insurance_type": ["110", "110", "110"], "period": ["202611", "202611", "202611"],
                          "amount": pl.Series([12.34, 0.1, 1.0], dtype=pl.Float32)})
    # a Float32 keeps about 7 digits: employer number 123456789 would come out 123456792
    frame = frame.with_columns(pl.Series("employer_id", [None, None, 123456789.0], dtype=pl.Float32))
    (tmp_path / "inbox").mkdir()
    frame.write_parquet(tmp_path / "inbox" / "contributions_f32.parquet")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox", as_of=dt.date(2026, 11, 21))
    assert [r["amount"] for r in stored(con, "contributions", "contributions_f32.parquet")] == [
        Decimal("12.34"), Decimal("0.10")]
    [(_, row, col, reason, _)] = rejected(con)
    assert (row, col) == (3, "employer_id") and "科学计数法" in reason


def test_gb18030_text_whose_bytes_are_also_valid_utf8_is_read_as_gb18030(tmp_path):
    """卢露 and 陆路 in GB18030 are C2 AC C2 B6 and C2 BD C2 B7, which UTF-8 reads as '¬¶' and '½·':
    a file whose only Chinese is such names, read as UTF-8, would be stored garbled without a word.
    No Chinese character in the UTF-8 reading but Chinese in the GB18030 one: it is GB18030. A
    UTF-8 file whose only non-ASCII is a '¥' stays UTF-8."""
    inbox = tmp_path / "inbox" / "2026-11-21"
    inbox.mkdir(parents=True)
    (inbox / "agencies_gbk.csv").write_bytes(
        "agency_code,agency_name,region_code,parent_code\n360702001,卢露,360702,\n360702002,陆路,360702,\n"
        "360702003,A卢露,360702,\n"
        .encode("gb18030"))
    (inbox / "contributions_yen.csv").write_text(
        f"person_id,employer_id,insurance_type,period,amount\n{person(1)},E1,110,202611,¥1234.50\n", encoding="utf-8")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox", as_of=dt.date(2026, 11, 21))
    assert [r["agency_name"] for r in stored(con, "agencies", "2026-11-21/agencies_gbk.csv")] == ["卢露", "陆路", "A卢露"]
    assert [r["amount"] for r in stored(con, "contributions", "2026-11-21/contributions_yen.csv")] == [Decimal("1234.50")]
    assert rejected(con) == []


@pytest.mark.parametrize("piece_bytes", [None, 200])
def test_gb18030_2022_codes_are_read_as_its_characters(tmp_path, monkeypatch, piece_bytes):
    """From a probe of rare names: GB18030-2022 writes 龴 U+9FB4 as FE 59, which Python's codec (the
    2005 edition) reads as the private-use U+E81E — a box on the worklist, and another spelling than
    the same name from an XLSX or Parquet extract. The 2005 edition's own four-byte code for 龴 still
    reads as 龴; a file read in pieces (a big one) reads as one read whole."""
    if piece_bytes:
        monkeypatch.setattr(readers, "CSV_CHUNK_BYTES", piece_bytes)
    inbox = tmp_path / "inbox" / "2026-11-21"
    inbox.mkdir(parents=True)
    rows = b"".join(b"36070200%d,\xc0\xee\xfe\x59%d,360702,\n" % (i, i) for i in range(20))
    (inbox / "agencies_gb2022.csv").write_bytes(
        "agency_code,agency_name,region_code,parent_code\n".encode() + rows
        + "360702100,李龴𠂇,360702,\n".encode("gb18030") + b"360702101,\xfe\x51\xa6\xd9,360702,\n")
    assert "李龴".encode("gb18030") != b"\xc0\xee\xfe\x59"  # the 2005 edition's four-byte code
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, tmp_path / "inbox", as_of=dt.date(2026, 11, 21))
    assert report.rows_accepted == 22 and rejected(con) == []
    names = [r["agency_name"] for r in stored(con, "agencies", "2026-11-21/agencies_gb2022.csv")]
    assert names == [f"李龴{i}" for i in range(20)] + ["李龴𠂇", "𠂇\ufe10"]


def test_a_reason_shows_the_characters_no_one_sees(tmp_path):
    """From a probe of rare names: 正常 followed by a variation selector was refused as
    `取值无效: '正常'` — the clerk saw nothing to correct. Such a character is written <U+XXXX> in
    the reason; the raw row keeps the text as delivered."""
    rows = [row_for("beneficiaries", i)[0] for i in range(2)]
    rows[0]["status"], rows[1]["status"] = "正常\U000E0100", "正\u00a0常"
    write_extract(tmp_path / "inbox" / "2026-11-21" / "beneficiaries_unseen.csv", "beneficiaries", rows, "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox", as_of=dt.date(2026, 11, 21))
    refused = {row: (col, reason, json.loads(raw)) for _, row, col, reason, raw in rejected(con)}
    assert refused[1][0] == "status" and "'正常<U+E0100>'" in refused[1][1], refused
    assert "'正<U+00A0>常'" in refused[2][1], refused
    assert "正常\U000E0100" in refused[1][2].values()


def test_typed_amounts_with_a_third_decimal_are_refused_row_by_row_however_large(tmp_path):
    """Float noise is read only where a float's last place is far below a fen: a typed
    9000000000000.005 is refused, not rounded; an amount too long for the store is refused alone,
    the file's other rows still ingest."""
    rows = [row_for("contributions", i)[0] for i in range(3)]
    rows[0]["amount"], rows[1]["amount"] = "9000000000000.005", "123456789012345678.123"
    write_extract(tmp_path / "inbox" / "2026-11-21" / "contributions_typed.csv", "contributions", rows, "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, tmp_path / "inbox", as_of=dt.date(2026, 11, 21))
    assert [f.status for f in report.files] == ["ingested"]
    assert len(stored(con, "contributions", "2026-11-21/contributions_typed.csv")) == 1
    assert [(r[1], r[2]) for r in rejected(con)] == [(1, "amount"), (2, "amount")]
    assert all("超过2位小数" in r[3] for r in rejected(con))


def test_a_utf8_file_with_western_names_and_no_chinese_stays_utf8(tmp_path):
    """é and ü are GB18030 characters too (Jos茅 M眉ller): a letter inside an ASCII word, or a sign of
    three bytes such as '–', says the file is UTF-8."""
    inbox = tmp_path / "inbox" / "2026-11-21"
    inbox.mkdir(parents=True)
    (inbox / "agencies_latin.csv").write_text("agency_code,agency_name,region_code,parent_code\n"
                                              "1,José Müller Office,360702,\n2,Anna–Marie Office,360702,\n",
                                              encoding="utf-8")
    (inbox / "agencies_signs.csv").write_text("agency_code,agency_name,region_code,parent_code\n"
                                              "3,Acme® 5m² Office,360702,\n", encoding="utf-8")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox")
    assert [r["agency_name"] for r in stored(con, "agencies", "2026-11-21/agencies_latin.csv")] == [
        "José Müller Office", "Anna–Marie Office"]
    assert [r["agency_name"] for r in stored(con, "agencies", "2026-11-21/agencies_signs.csv")] == ["Acme® 5m² Office"]


def _as_excel_saves_an_empty_text(path: Path, cells: list[str]) -> None:
    """Mark the formula cells as Excel marks a formula whose value is the empty text (t="str"):
    XlsxWriter writes such a value without the type."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    for ref in cells:
        parts[sheet] = parts[sheet].replace(f'<c r="{ref}">'.encode(), f'<c r="{ref}" t="str">'.encode())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in parts.items():
            z.writestr(name, body)


def test_a_formula_saved_without_its_value_refuses_its_row_naming_the_formula(tmp_path):
    """A workbook written by a program (openpyxl) holds formulas without their values; read, such a
    cell was empty — the amount refused as missing, and a 复核人 of =K3 dropped without a word (a
    reviewed 60,000-yuan payment became a suspect). The row is refused naming the column and the
    formula; a formula saved with its value (as Excel, WPS and XlsxWriter save it) is read, and one
    in a column no extract reads does not matter."""
    import xlsxwriter

    heads = [c.alias for c in EXTRACTS["payments"].columns]
    rows = [row_for("payments", i)[0] for i in (0, 2, 4)]
    cols = [c.name for c in EXTRACTS["payments"].columns]
    inbox = tmp_path / "inbox" / "2026-11-21"
    inbox.mkdir(parents=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(heads + ["备注"])
    amount, reviewer = cols.index("amount"), cols.index("reviewed_by")
    for i, r in enumerate(rows):
        cells = [r[c] or None for c in cols] + [f"=H{i + 2}*2"]  # a formula where nothing is read
        if i == 0:
            cells[amount] = "=1000*60"
        if i == 1:
            cells[reviewer] = f"=K{i + 2}"
        ws.append(cells)
    wb.save(inbox / "payments_program.xlsx")
    book = xlsxwriter.Workbook(inbox / "payments_saved.xlsx")
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, heads)
    saved = row_for("payments", 6)[0]
    sheet.write_row(1, 0, [saved[c] or None for c in cols])
    sheet.write_formula(1, amount, "=1000*60", None, 60000)
    # an empty text a formula gave, saved as Excel saves it (t="str", an empty value: =IF(K2="","",K2)),
    # and a template row filled down
    sheet.write_formula(1, reviewer, '=IF(K2="","",K2)', None, "")
    sheet.write_formula(2, reviewer, '=IF(K3="","",K3)', None, "")
    book.close()
    _as_excel_saves_an_empty_text(inbox / "payments_saved.xlsx", [f"{get_column_letter(reviewer + 1)}{r}" for r in (2, 3)])
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, tmp_path / "inbox")
    refused = rejected(con, "2026-11-21/payments_program.xlsx")
    assert [(r[1], r[2]) for r in refused] == [(1, "amount"), (2, "reviewed_by")]
    assert "是公式 =1000*60，文件里没有它的值" in refused[0][3] and "是公式 =K3" in refused[1][3]
    # the row as delivered, paired with its header as every other refused row (it was an array)
    paired = json.loads(refused[0][4])
    assert list(paired) == heads + ["备注"] and paired[heads[0]] == rows[0]["payment_id"] and paired[heads[amount]] is None
    assert [p for (p,) in con.execute("select payment_id from payments order by 1").fetchall()] == [
        rows[2]["payment_id"], saved["payment_id"]]
    assert con.execute("select amount, reviewed_by from payments where payment_id = ?", [saved["payment_id"]]).fetchall() == [
        (Decimal("60000.00"), None)]
    assert report.rows_rejected == 2


def test_a_ragged_rows_raw_copy_keeps_its_empty_cells_as_null(tmp_path):
    """From an audit of the README: a row refused for too few or too many fields kept its empty
    cells as "" in its raw array, where a row paired with its header has null."""
    inbox = tmp_path / "inbox"
    cols = EXTRACTS["payments"].names
    good = row_for("payments", 0)[0]
    inbox.mkdir()
    with (inbox / "payments_ragged.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([cols, [good[c] for c in cols], ["F3", "", "", "110"], [good[c] for c in cols] + ["", "x"]])
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, inbox)
    refused = {row: json.loads(raw) for _, row, _, _, raw in rejected(con)}
    assert refused[2] == ["F3", None, None, "110"]
    assert refused[3] == [good[c] or None for c in cols] + [None, "x"]


def test_an_xlsx_whose_later_sheets_hold_rows_says_they_were_not_read(tmp_path):
    """CONTRACT §1 reads the first sheet. A long export split over sheets (一月, 二月) and a hidden
    first sheet are said in the night's summary, so no sheet goes unread without a word; a sheet of
    one note line is no data."""
    from pipelines.runsummary import format_summary

    inbox = tmp_path / "inbox" / "2026-11-21"
    inbox.mkdir(parents=True)
    cols = EXTRACTS["payments"].names
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "一月"
    ws.append(header("payments", "canonical"))
    ws.append([row_for("payments", 0)[0][c] for c in cols])
    later = wb.create_sheet("二月")
    later.append(header("payments", "canonical"))
    later.append([row_for("payments", 1)[0][c] for c in cols])
    wb.create_sheet("说明").append(["本表由系统导出"])
    wb.save(inbox / "payments_split.xlsx")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title, ws.sheet_state = "底稿", "hidden"
    ws.append(header("payments", "canonical"))
    ws.append([row_for("payments", 2)[0][c] for c in cols])
    wb.create_sheet("发放明细").append(["见底稿"])
    wb.save(inbox / "payments_hidden.xlsx")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, tmp_path / "inbox")
    notes = {f.path.name: f.notes for f in report.files}
    assert notes["payments_split.xlsx"] == ["only the first sheet is read (CONTRACT); sheet(s) '二月' also hold rows "
                                            "and were not read: deliver them as files of their own"]
    assert notes["payments_hidden.xlsx"] == ["the first sheet '底稿' is hidden; it is the one read (CONTRACT: the first sheet)"]
    assert len(stored(con, "payments", "2026-11-21/payments_split.xlsx")) == 1  # the first sheet, as before
    text = format_summary({"run_id": "r", "as_of": "2026-11-21", "status": "completed", "files_ingested": 2,
                           "files_skipped": 0, "files_failed": 0, "rows_accepted": 2, "rows_rejected": 0,
                           "file_notes": [{"file": n, "note": x} for n, xs in notes.items() for x in xs]})
    assert "    note payments_split.xlsx: only the first sheet is read (CONTRACT); sheet(s) '二月'" in text


@pytest.mark.parametrize("fmt", ["xlsx", "csv-gb18030", "parquet"])
def test_headers_typed_with_line_breaks_spaces_or_a_unit_are_read_and_an_unknown_one_is_named(tmp_path, fmt):
    # An Alt+Enter inside 发放金额, an ideographic space inside 姓名, a unit after 发放金额 or 复核人
    # with a break: the column a clerk sees, read (a dropped 复核人 made every large payment a
    # suspect). A column of no known name (复核人员, 序号) is named in the night's summary.
    heads = {c.name: c.alias for c in EXTRACTS["payments"].columns}
    typed = {"amount": "发放金额（元）", "name": "姓\u3000名", "reviewed_by": "复核\n人", "paid_on": "发放\n日期 "}
    row, expected = row_for("payments", 0)
    inbox = tmp_path / "inbox" / "2026-11-21"
    path = inbox / f"payments_typed.{suffix(fmt)}"
    # the amount in words beside the amount (a finance export's 大写 column) is another column
    names = [typed.get(c, heads[c]) for c in heads] + ["发放金额（大写）", "序号"]
    values = [row[c] for c in heads] + ["叁仟元整", "1"]
    inbox.mkdir(parents=True)
    if fmt == "xlsx":
        wb = openpyxl.Workbook()
        wb.active.append(names)
        wb.active.append([v or None for v in values])
        wb.save(path)
    elif fmt == "parquet":
        pl.DataFrame({n: [v or None] for n, v in zip(names, values)}, schema={n: pl.Utf8 for n in names}).write_parquet(path)
    else:
        with path.open("w", encoding="gb18030", newline="") as f:
            csv.writer(f).writerows([names, values])
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, tmp_path / "inbox")
    assert report.rows_rejected == 0 and stored(con, "payments", f"2026-11-21/{path.name}") == [expected]
    assert report.files[0].notes == ["column(s) not read, no payments column of that name: 发放金额（大写）, 序号 (the "
                                     "contract's names and Chinese aliases are read; rename a header that holds one of them)"]


def test_an_amount_in_another_unit_than_yuan_is_not_read_as_yuan(tmp_path):
    # 1.5 万元 stored as 1.50 yuan would hide a 15,000-yuan payment from every rule: the file is refused
    row, _ = row_for("payments", 0)
    heads = {c.name: c.alias for c in EXTRACTS["payments"].columns}
    path = tmp_path / "inbox" / "2026-11-21" / "payments_wan.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([[("发放金额（万元）" if c == "amount" else heads[c]) for c in heads],
                                 [row[c] for c in heads]])
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, tmp_path / "inbox")
    assert report.files[0].status == "failed" and "missing required column 发放金额(amount)" in report.files[0].message
    assert store.scalar(con, "select count(*) from payments") == 0
    # the header the amount likely sits under is named first (it read "and 1 other column(s)"), so
    # that the console's line, cut at 120 characters, still shows it
    assert report.files[0].message.startswith(
        "2026-11-21/payments_wan.csv: missing required column 发放金额(amount) (not read: 发放金额（万元）; header has: "), \
        report.files[0].message


def test_an_amount_of_a_trillion_yuan_or_more_is_refused_in_every_format(tmp_path):
    """Two payments of 6×10^15 yuan (a card number pasted into the amount column, say) were stored,
    and the rule that sums them overflowed DECIMAL(18,2) and stopped every later night. An amount of
    10^12 yuan or more is refused, as text and as a Parquet DECIMAL; 999,999,999,999.99 is taken."""
    rows = [row_for("payments", i)[0] for i in range(2)]
    rows[0]["amount"], rows[1]["amount"] = "6000000000000000.00", "999999999999.99"
    write_extract(tmp_path / "inbox" / "2026-11-21" / "payments_huge.csv", "payments", rows, "csv-utf8")
    frame = pl.DataFrame({c: [r[c] or None for r in (row_for("payments", 5)[0], row_for("payments", 6)[0])]
                          for c in EXTRACTS["payments"].names}, schema={c: pl.Utf8 for c in EXTRACTS["payments"].names})
    frame = frame.with_columns(pl.Series("amount", [Decimal("6000000000000000.00"), Decimal("12.50")],
                                         dtype=pl.Decimal(18, 2)))
    frame.write_parquet(tmp_path / "inbox" / "2026-11-21" / "payments_huge.parquet")
    con = store.connect(tmp_path / "fw.duckdb")
    ingest_inbox(con, tmp_path / "inbox")
    assert [r["amount"] for r in stored(con, "payments", "2026-11-21/payments_huge.csv")] == [Decimal("999999999999.99")]
    assert [r["amount"] for r in stored(con, "payments", "2026-11-21/payments_huge.parquet")] == [Decimal("12.50")]
    refused = [(r[0].split("/")[-1], r[1], r[2]) for r in rejected(con)]
    assert refused == [("payments_huge.csv", 1, "amount"), ("payments_huge.parquet", 1, "amount")]
    assert all("超出合理范围" in r[3] for r in rejected(con))


def test_a_utf8_file_with_one_bad_byte_is_refused_naming_that_byte(tmp_path):
    """Neither UTF-8 nor GB18030: the message names the byte where the reading that got further
    broke (the bad byte in the last row of a UTF-8 file), not the file's first Chinese character."""
    inbox = tmp_path / "inbox" / "2026-11-21"
    inbox.mkdir(parents=True)
    data = "agency_code,agency_name,region_code,parent_code\n".encode() + "".join(
        f"3607020{i:02d},第{i}社保局,360702,\n" for i in range(50)).encode()
    at = len(data) + len(b"360702099,O")
    (inbox / "agencies_bad_byte.csv").write_bytes(data + b"360702099,O\x92Brien,360702,\n")
    con = store.connect(tmp_path / "fw.duckdb")
    [result] = ingest_inbox(con, tmp_path / "inbox").files
    # ...and its line, which a clerk can find: the header, 50 rows, then this one (from a probe of rare names)
    assert result.status == "failed", result.message
    assert f"neither UTF-8 nor GB18030 (byte {at}, line 52 counting the header as line 1)" in result.message
    # the same with a BOM (the byte named as in the file) and with Excel for Mac's CR line ends
    con.close()
    bad = data + b"360702099,O\x92Brien,360702,\n"
    for name, content, byte in (("agencies_bom.csv", b"\xef\xbb\xbf" + bad, at + 3),
                                ("agencies_mac.csv", bad.replace(b"\n", b"\r"), at)):
        other = tmp_path / name.removesuffix(".csv")
        (other / "inbox" / "2026-11-21").mkdir(parents=True)
        (other / "inbox" / "2026-11-21" / name).write_bytes(content)
        [result] = ingest_inbox(store.connect(other / "fw.duckdb"), other / "inbox").files
        assert f"(byte {byte}, line 52 counting" in result.message, (name, result.message)


def test_a_damaged_sheet_that_is_not_read_does_not_fail_the_first(tmp_path):
    """Only the first sheet is read: a later sheet whose XML is damaged (a number cell holding
    'abc') is said to hold rows, and the first sheet's rows still ingest."""
    import zipfile

    cols = EXTRACTS["payments"].names
    wb = openpyxl.Workbook()
    wb.active.append(header("payments", "canonical"))
    wb.active.append([row_for("payments", 0)[0][c] for c in cols])
    later = wb.create_sheet("二月")
    later.append(["x", "y"])
    later.append([1, 2])
    built = tmp_path / "built.xlsx"
    wb.save(built)
    path = tmp_path / "inbox" / "2026-11-21" / "payments_damaged_sheet2.xlsx"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(built) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet2.xml":
                data = data.replace(b"<v>2</v>", b"<v>abc</v>")
                assert b"<v>abc</v>" in data
            dst.writestr(item, data)
    con = store.connect(tmp_path / "fw.duckdb")
    [result] = ingest_inbox(con, tmp_path / "inbox").files
    assert result.status == "ingested" and len(stored(con, "payments", "2026-11-21/payments_damaged_sheet2.xlsx")) == 1
    assert any("'二月'" in n for n in result.notes), result.notes


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_a_csv_whose_lines_end_with_cr_alone_is_read_row_by_row(tmp_path, encoding):
    """Excel for Mac's "CSV (Macintosh)" ends lines with CR alone: its rows are read, numbered and
    refused as in any CSV (the whole file was refused with a Python error before)."""
    inbox = tmp_path / "inbox" / "2026-11-21"
    inbox.mkdir(parents=True)
    (inbox / "agencies_mac.csv").write_bytes(
        "经办机构编码,经办机构名称,行政区划代码,上级机构编码\r360702001,章贡区社保局,360702,\r"
        "360702002,南康区社保局,360703,\r,缺编码,360703,\r".encode(encoding))
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, tmp_path / "inbox", as_of=dt.date(2026, 11, 21))
    assert [(f.status, f.rows_total, f.rows_accepted) for f in report.files] == [("ingested", 3, 2)]
    assert [r["agency_name"] for r in stored(con, "agencies", "2026-11-21/agencies_mac.csv")] == ["章贡区社保局", "南康区社保局"]
    assert [(r[1], r[2]) for r in rejected(con)] == [(3, "agency_code")]


@pytest.mark.parametrize("fmt", ["csv-gb18030", "xlsx", "parquet"])
def test_a_listed_word_with_an_invisible_character_is_the_word(tmp_path, fmt):
    """From a probe of the data-quality checks: 丧葬补助金 pasted with a zero-width space was stored
    so — an unknown item, treated as recurring (PAID_AFTER_DEATH would count a funeral grant paid
    after death), and 有期徒刑 so was no custodial sentence. The rules' listed words (待遇项目,
    刑罚类型) lose format characters as codes do; a name keeps them; a word of nothing else is empty."""
    zw, joiner = "\u200b", "\u2060"
    pays = [row_for("payments", i)[0] for i in range(3)]
    pays[0]["item"], pays[1]["item"], pays[2]["item"] = "丧葬补助金" + zw, joiner + "基本养老金", zw
    pays[0]["name"] = "吴" + zw + "一"
    held = [row_for("imprisonments", i)[0] for i in range(2)]
    held[0]["sentence_type"] = "有期" + zw + "徒刑"
    write_extract(tmp_path / "inbox" / "2026-10-21" / f"payments_a.{fmt.split('-')[0]}", "payments", pays, fmt)
    write_extract(tmp_path / "inbox" / "2026-10-21" / f"imprisonments_a.{fmt.split('-')[0]}", "imprisonments", held, fmt)
    con = store.connect(tmp_path / "fw.duckdb")
    try:
        report = ingest_inbox(con, tmp_path / "inbox")
        assert con.execute("select item, name from payments order by payment_id").fetchall() == [
            ("丧葬补助金", "吴" + zw + "一"), ("基本养老金", pays[1]["name"])]
        assert con.execute("select column_name, reason from rejected_rows").fetchall() == [
            ("item", "缺少必填项: 待遇项目(item) 为空")]
        assert report.rows_rejected == 1
        assert store.scalar(con, "select sentence_type from imprisonments where person_id = ?",
                            [held[0]["person_id"]]) == "有期徒刑"
    finally:
        con.close()


@pytest.mark.parametrize("migration, held, alone", [
    ("terms_without_format_characters", "'丧葬补助金' || chr(9) || chr(8203)", "chr(8203)"),
    ("terms_without_text_mark", "chr(39) || ' 丧葬补助金'", "chr(39)"),  # Excel's text mark
], ids=["format characters", "text mark"])
def test_a_store_from_before_loses_what_ingest_drops_from_its_listed_words_once(tmp_path, migration, held, alone):
    inbox, rows, path, con = _three_payments_stored(tmp_path)
    con.execute(f"update payments set item = {held} where payment_id = 'P000000'")
    con.execute(f"update payments set item = {alone} where payment_id = 'P000001'")  # the old ingest kept it
    kept = store.scalar(con, "select item from payments where payment_id = 'P000001'")
    rules.ensure_detect_schema(con)
    con.execute("insert into detect_state values (1, date '2026-11-20', 'x', current_timestamp)")
    con.execute("delete from store_migrations where name = ?", [migration])
    con.close()
    con = store.connect(path)
    try:
        assert store.scalar(con, "select item from payments where payment_id = 'P000000'") == "丧葬补助金"
        assert store.scalar(con, "select item from payments where payment_id = 'P000001'") == kept  # never empty
        assert store.scalar(con, "select count(*) from detect_state") == 0  # the next night detects in full
        assert store.scalar(con, "select count(*) from store_migrations where name = ?", [migration]) == 1
    finally:
        con.close()


@pytest.mark.parametrize("chunk_rows", [10**9, 7], ids=["read whole", "in chunks"])
def test_a_parquet_file_of_many_row_groups_refuses_its_bad_rows_as_one_row_group_does(tmp_path, monkeypatch, chunk_rows):
    """From an audit of the README: a Parquet file written in row groups of 3 rows with two bad
    amounts stopped the night with a Polars panic (a string function on the filtered rows of a
    column read as one chunk per row group) — no file of the delivery was stored, the run left
    `running`. Now its bad rows are refused with their reasons, as from one row group, and the
    other files of the delivery are stored."""
    import pyarrow.parquet as pq

    rows = [row_for("payments", i)[0] for i in range(40)]
    for n, (changes, _, _) in enumerate(REASONS):
        rows.insert(n * 2 + 1, {**_bad(500 + n, **changes), "payment_id": f"B{n:03d}"})
    seen = {}
    for row_group_size in (len(rows), 3):
        inbox = tmp_path / str(row_group_size) / "inbox"
        path = write_extract(inbox / "2026-11-21" / "payments_groups.parquet", "payments", rows, "parquet")
        pq.write_table(pq.read_table(path), path, row_group_size=row_group_size)
        assert pq.ParquetFile(path).metadata.num_row_groups == -(-len(rows) // row_group_size)
        write_extract(inbox / "2026-11-21" / "deaths_small.csv", "deaths", [row_for("deaths", i)[0] for i in range(5)], "csv-utf8")
        con = store.connect(tmp_path / f"{row_group_size}.duckdb")
        try:
            report, _ = _ingest_counting_chunks(monkeypatch, con, inbox, chunk_rows)
            assert (report.rows_accepted, report.rows_rejected) == (45, len(REASONS))
            seen[row_group_size] = (
                stored(con, "payments", "2026-11-21/payments_groups.parquet"),
                len(stored(con, "deaths", "2026-11-21/deaths_small.csv")),
                [r[1:] for r in rejected(con)],  # row, column, reason, raw
                con.execute("select source_file, rows_total, rows_accepted, rows_rejected from ingest_ledger "
                            "order by source_file").fetchall())
        finally:
            con.close()
    assert seen[3] == seen[len(rows)]
    payments, deaths, refused, _ = seen[3]
    assert len(payments) == 40 and deaths == 5
    assert [(row, col) for row, col, *_ in refused] == [(n * 2 + 2, col) for n, (_, col, _) in enumerate(REASONS)]
    assert all(words in reason for (*_, reason, _), (_, _, words) in zip(refused, REASONS))


# From a fuzz of ingest (2026-12-06): each fault it found, on the smallest file that shows it.

def _one_file(tmp_path, name: str, write, monkeypatch=None, **constants):
    """Ingest one file written by `write(path)` into a fresh store (the size constants set as given:
    ingest's CHUNK_ROWS, the readers' CSV_CHUNK_BYTES to read a small file as a big one); the store
    and the report."""
    for constant, value in constants.items():
        monkeypatch.setattr(readers if hasattr(readers, constant) else ingest, constant, value)
    path = tmp_path / "inbox" / "2026-11-21" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path)
    con = store.connect(tmp_path / f"{name}.duckdb")
    return con, ingest_inbox(con, tmp_path / "inbox")


def test_a_big_csv_without_an_optional_key_column_is_read_in_pieces(tmp_path, monkeypatch):
    """contributions without 单位编号 (an optional part of its key): the big-file path's key pass
    raised KeyError: 'employer_id' and stopped the night."""
    text = "person_id,insurance_type,period,amount\n" + "".join(f"{person(i)},110,202610,{i}00.00\n" for i in range(1, 9))
    con, report = _one_file(tmp_path, "contributions_a.csv", lambda p: p.write_text(text, encoding="utf-8"),
                            monkeypatch, CSV_CHUNK_BYTES=60)
    assert [f.status for f in report.files] == ["ingested"] and report.rows_accepted == 8
    assert store.scalar(con, "select count(*) from contributions where employer_id is null") == 8


def test_a_big_parquet_file_with_a_column_no_text_reads_fails_as_read_whole(tmp_path, monkeypatch):
    """A column Polars cannot read as text (GBK bytes without the UTF-8 mark) in a big Parquet file:
    the chunked path let ComputeError escape and stopped the night; read whole, the file fails in
    one line and the night goes on — now both."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(path):
        pq.write_table(pa.table({"agency_code": [f"A{i}" for i in range(6)], "agency_name": ["赣州市社保局"] * 6,
                                 "region_code": ["360700"] * 6,
                                 "备注": pa.array(["备注".encode("gbk")] * 6, pa.binary())}), path)
    for label, chunk_rows in (("whole", 10**9), ("chunked", 2)):
        con, report = _one_file(tmp_path / label, "agencies_a.parquet", write, monkeypatch, CHUNK_ROWS=chunk_rows)
        [file] = report.files
        assert file.status == "failed" and "could not be read (ComputeError: invalid utf8" in file.message, label
        con.close()


def test_an_xlsx_whose_dimension_is_stale_is_read_whole(tmp_path):
    """A writer that leaves <dimension ref="A1:C6"/> over 11 rows × 4 columns: openpyxl's read-only
    mode trusted it — 5 of 10 rows and the 4th column lost, nothing refused, nothing said."""
    import re
    import zipfile

    def write(path):
        book = io.BytesIO()
        wb = openpyxl.Workbook()
        wb.active.append(["agency_code", "agency_name", "region_code", "parent_code"])
        for i in range(1, 11):
            wb.active.append([f"36070{i:02d}", f"机构{i}", "360700", "360700"])
        wb.save(book)
        with zipfile.ZipFile(book) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for item in zin.infolist():
                data = zin.read(item.filename)
                if item.filename == "xl/worksheets/sheet1.xml":
                    data = re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:C6"/>', data)
                out.writestr(item, data)
    con, report = _one_file(tmp_path, "agencies_a.xlsx", write)
    assert report.rows_accepted == 10 and report.rows_rejected == 0
    assert store.scalar(con, "select count(parent_code) from agencies") == 10


@pytest.mark.parametrize("text", ["2026-1-150", "2026-11-15 1:00pm", "2026-11-15至2026-12-01", "2026-11-1599"])
def test_a_date_followed_by_other_text_is_no_date(tmp_path, text):
    """The date was taken from the text's start whatever followed it (2026-11-15至2026-12-01 was
    stored as 2026-11-15): a time part that did not match at all passed as midnight."""
    def write(path):
        path.write_text(f"person_id,death_date,source\n{person(1)},{text},公安\n{person(2)},2026-11-15 00:00,民政\n",
                        encoding="utf-8")
    con, report = _one_file(tmp_path, "deaths_a.csv", write)
    [(row, column, reason, _)] = [r[1:] for r in rejected(con)]
    assert (row, column) == (1, "death_date") and "不是有效日期" in reason
    assert con.execute("select death_date from deaths").fetchall() == [(dt.date(2026, 11, 15),)]


def test_excels_text_mark_leaves_a_listed_word_whatever_the_files_other_rows(tmp_path):
    """'丧葬补助金 (Excel's text mark) was stored with its apostrophe — an unknown item, counted as
    recurring — where every other row of the file took the fast path, and without it where another
    row did not (a zero-width space elsewhere)."""
    head = "payment_id,person_id,insurance_type,item,period,paid_on,amount,agency_code\n"
    row = f"P1,{person(1)},110,'丧葬补助金,202611,2026-11-15,5000.00,360702\n"
    other = f"P2,{person(2)},110,基本养老金,202611,2026-11-15,3000.00,360702\n"
    con, _ = _one_file(tmp_path, "payments_a.csv", lambda p: p.write_text(head + row + other, encoding="utf-8"))
    assert con.execute("select item from payments where payment_id = 'P1'").fetchall() == [("丧葬补助金",)]


def test_a_big_utf8_csv_is_not_read_as_gb18030_piece_by_piece(tmp_path, monkeypatch):
    """A UTF-8 file whose first piece holds Chinese and later ones only '½': each later piece was
    judged again on its own and read as GB18030 ('½' became '陆') — the whole file's reading holds."""
    text = "agency_code,agency_name,region_code\nA000,经办机构,360000\n" + "".join(
        f"A{i:03d},rate ½,360000\n" for i in range(1, 40))
    con, _ = _one_file(tmp_path, "agencies_a.csv", lambda p: p.write_text(text, encoding="utf-8"),
                       monkeypatch, CSV_CHUNK_BYTES=200)
    assert con.execute("select agency_name, count(*) from agencies group by 1 order by 1").fetchall() == [
        ("rate ½", 39), ("经办机构", 1)]


def test_a_header_that_reads_like_a_made_unique_name_still_keeps_every_value(tmp_path):
    """Headers `x#4,x,x`: the raw copy's unique names collided (x#4 given, then made for the third
    x) and the whole file failed with Polars' DuplicateError."""
    text = "agency_code,x#4,x,x,agency_name,region_code\nA1,1,2,3,机构,360700\n,4,5,6,机构,360700\n"  # the second refused: its raw copy
    con, report = _one_file(tmp_path, "agencies_a.csv", lambda p: p.write_text(text, encoding="utf-8"))
    assert [f.status for f in report.files] == ["ingested"] and (report.rows_accepted, report.rows_rejected) == (1, 1)
    [(_, _, _, raw)] = [r[1:] for r in rejected(con)]
    assert json.loads(raw) == {"agency_code": None, "x#4": "4", "x": "5", "x#4#4": "6", "agency_name": "机构",
                               "region_code": "360700"}


def test_the_last_second_of_the_last_accepted_year_passes_the_row_contract(tmp_path):
    """2100-12-31 23:59:59.5 passed the parser (years up to 2100) and was then refused by the row
    contract's bound (…23:59:59) as `数据契约校验失败`, a reason that says nothing to a clerk."""
    head = "payment_id,person_id,insurance_type,item,period,paid_on,amount,agency_code,reviewed_at\n"
    row = f"P1,{person(1)},110,基本养老金,202611,2026-11-15,10.00,360702,2100-12-31 23:59:59.5\n"
    con, report = _one_file(tmp_path, "payments_a.csv", lambda p: p.write_text(head + row, encoding="utf-8"))
    assert report.rows_accepted == 1 and rejected(con) == []


def test_a_quote_inside_a_field_not_quoted_is_read_alike_whatever_the_files_other_rows(tmp_path, monkeypatch):
    """`2022-06-09 "\\n"24:00` in a field not quoted: Polars' reader took the row (custody_end stored
    as 2022-06-09), the row-by-row reader split it — and which read the file hung on its other rows
    (one short line elsewhere) and, for a big file, on where its pieces fell. The row-by-row reader
    now decides whenever a quote is not around a whole field."""
    body = (f"person_id,name,sentence_type,custody_start,custody_end,facility\r\n"
            f'{person(1)},"李""四",有期徒刑,2023-06-18,2022-06-09 "\n"24:00,"赣州\n监狱"\r\n'
            f"{person(2)},王五,有期徒刑,2026-06-15,,\r\n")
    outcomes = []
    for label, text, piece in (("whole", body, 10**12), ("short line", body + f"{person(3)},x\r\n", 10**12),
                               ("pieces", body, 70)):
        con, _ = _one_file(tmp_path / label, "imprisonments_a.csv", lambda p, t=text: p.write_bytes(t.encode()),
                           monkeypatch, CSV_CHUNK_BYTES=piece)
        outcomes.append((con.execute("select _row_number, name, custody_end from imprisonments").fetchall(),
                         [r[1:4] for r in rejected(con) if r[1] <= 3]))
        con.close()
    assert outcomes[0] == outcomes[1] == outcomes[2]
    stored, refused = outcomes[0]
    assert stored == [(4, "王五", None)] and [row for row, _, _ in refused] == [1, 2, 3]


def test_names_that_are_not_utf8_are_read_as_gb18030_and_the_delivery_is_ingested(tmp_path):
    """A copy from a Windows share names files and folders in GB18030 bytes, which Python holds as
    surrogates: storing such a name failed the delivery ("surrogate not allowed") — every night, the
    file never named. Read as GB18030 now, the delivery ingests."""
    inbox = tmp_path / "inbox"
    folder = inbox / os.fsdecode("2026-11-21".encode() + "社保".encode("gb18030"))
    write_extract(folder / os.fsdecode(b"deaths_" + "社保局".encode("gb18030") + b".csv"), "deaths",
                  [row_for("deaths", i)[0] for i in range(3)], "csv-utf8")
    (folder / os.fsdecode("说明".encode("gb18030") + b".csv")).write_bytes(b"a,b\n1,2\n")  # no extract: fails alone
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert report.deliveries == ["2026-11-21社保"]
    assert sorted((f.status, store.path_text(Path(f.path).name)) for f in report.files) == [
        ("failed", "说明.csv"), ("ingested", "deaths_社保局.csv")]
    assert con.execute("select distinct _source_file, _delivery from deaths").fetchall() == [
        ("2026-11-21社保/deaths_社保局.csv", "2026-11-21社保")]
    assert store.scalar(con, "select count(*) from deaths") == 3


def test_a_link_in_the_inbox_back_to_a_folder_above_it_is_named_as_one(tmp_path):
    """From a probe of installs: `ln -s .. inbox/2026-10-21/loop` was walked forty levels deep, then
    said to be a link to a disk not mounted — about another, good link at the end of the path."""
    inbox = tmp_path / "inbox"
    write_extract(inbox / "2026-10-21" / "deaths_a.csv", "deaths", [row_for("deaths", 1)[0]], "csv-utf8")
    (inbox / "2026-10-21" / "loop").symlink_to("..")
    con = store.connect(tmp_path / "fw.duckdb")
    with pytest.raises(IngestError) as failed:
        ingest_inbox(con, inbox)
    assert str(failed.value) == (f"inbox entry {inbox / '2026-10-21' / 'loop'} is a link to {inbox}, a folder it is "
                                 "in (a loop): remove the link, then run again")


def test_a_delivery_named_like_a_date_that_is_no_date_is_read_by_its_name(tmp_path):
    """Only a real day after today is left unread (a folder 2026-13-45 is read, ordered by name)."""
    inbox = tmp_path / "inbox"
    write_extract(inbox / "2026-13-45" / "deaths_a.csv", "deaths", [row_for("deaths", 1)[0]], "csv-utf8")
    write_extract(inbox / "2999-01-01" / "deaths_b.csv", "deaths", [row_for("deaths", 2)[0]], "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox)
    assert (report.deliveries, report.dated_ahead) == (["2026-13-45"], ["2999-01-01"])


def test_a_dangling_link_named_in_gb18030_is_named_in_readable_text(tmp_path):
    """The message of an inbox entry that cannot be read names it as the rest of the night does (its
    GB18030 bytes read as such): with Python's surrogates in it, recording the failed night failed."""
    inbox = tmp_path / "inbox"
    (inbox / "2026-10-21").mkdir(parents=True)
    link = inbox / "2026-10-21" / os.fsdecode("社保".encode("gb18030"))
    link.symlink_to(tmp_path / "gone")
    con = store.connect(tmp_path / "fw.duckdb")
    with pytest.raises(IngestError) as failed:
        ingest_inbox(con, inbox)
    said = str(failed.value)
    said.encode("utf-8")  # no surrogate left
    assert said.startswith(f"inbox entry {inbox / '2026-10-21' / '社保'} is a link to {tmp_path / 'gone'}, "), said


def test_a_file_linked_from_outside_its_delivery_folder_is_not_read(tmp_path):
    """A link `deaths_a.csv -> /etc/passwd` in a delivery put the file's every line into rejected_rows
    (a security probe: whoever may drop files in the inbox could have fundwatch read any file the
    server lets it). The night stops naming the link before anything is read; a link within the
    folder, and a delivery folder that is itself a link (deliveries landing on another disk), are read."""
    secret = tmp_path / "elsewhere" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    inbox = tmp_path / "inbox"
    (inbox / "2026-10-21").mkdir(parents=True)
    (inbox / "2026-10-21" / "deaths_a.csv").symlink_to(secret)
    con = store.connect(tmp_path / "fw.duckdb")
    with pytest.raises(IngestError, match=re.escape(f"inbox entry {inbox / '2026-10-21' / 'deaths_a.csv'} is a link "
                                                    f"to {secret}, outside its delivery folder")):
        ingest_inbox(con, inbox)
    assert store.scalar(con, "select count(*) from rejected_rows") == 0
    assert store.scalar(con, "select count(*) from ingest_ledger") == 0
    (inbox / "2026-10-21" / "deaths_a.csv").unlink()
    landed = tmp_path / "disk2" / "2026-10-21"
    landed.mkdir(parents=True)
    write_extract(landed / "deaths_small.csv", "deaths", [row_for("deaths", i)[0] for i in range(3)], "csv-utf8")
    (landed / "deaths_again.csv").symlink_to(landed / "deaths_small.csv")
    (inbox / "2026-10-21").rmdir()
    (inbox / "2026-10-21").symlink_to(landed)
    report = ingest_inbox(con, inbox)
    assert sorted(f.status for f in report.files) == ["ingested", "skipped"]  # (the copy by its hash)
    # a sub-folder of a delivery that is a link, holding a file linked to one beside it (a regression probe)
    city = tmp_path / "share" / "city"
    city.mkdir(parents=True)
    write_extract(city / "deaths_city.orig", "deaths", [row_for("deaths", i)[0] for i in range(3, 5)], "csv-utf8")
    (city / "deaths_city.csv").symlink_to(city / "deaths_city.orig")
    (inbox / "2026-10-22").mkdir()
    (inbox / "2026-10-22" / "city").symlink_to(city)
    read = [f for f in ingest_inbox(con, inbox).files if "2026-10-22" in str(f.path) and f.status != "skipped"]
    assert [(Path(f.path).name, f.status, f.rows_accepted) for f in read] == [("deaths_city.csv", "ingested", 2)]


@pytest.mark.parametrize("where", ["loose", "delivery", "sub-folder"])
def test_a_named_pipe_in_the_inbox_stops_the_night_naming_it(tmp_path, where):
    """A FIFO (an extract a writer pipes in) was passed over without a word, its rows lost from a
    night that completed; reading one may never end. The night stops naming it before anything is read."""
    inbox = tmp_path / "inbox"
    folder = {"loose": inbox, "delivery": inbox / "2026-10-21", "sub-folder": inbox / "2026-10-21" / "city"}[where]
    folder.mkdir(parents=True)
    write_extract(inbox / "deaths_small.csv" if where != "loose" else tmp_path / "unused.csv", "deaths",
                  [row_for("deaths", i)[0] for i in range(3)], "csv-utf8")
    pipe = folder / "payments_piped.csv"
    os.mkfifo(pipe)
    con = store.connect(tmp_path / "fw.duckdb")
    with pytest.raises(IngestError, match=re.escape(f"inbox entry {pipe} is a named pipe (FIFO), not a file")):
        ingest_inbox(con, inbox)
    assert store.scalar(con, "select count(*) from ingest_ledger") == 0
    pipe.unlink()
    assert ingest_inbox(con, inbox).rows_total == (3 if where != "loose" else 0)


@pytest.mark.parametrize("fmt", ["xlsx", "parquet"])
def test_a_file_that_unpacks_to_far_more_than_it_takes_is_refused_before_it_is_read(tmp_path, fmt):
    """A 311 KB workbook holding one shared string of 300 MB took ingest to 7.4 GB, an 11 KB Parquet
    file one 300 MB text likewise (a security probe): a part or column both large unpacked (here
    70 MB) and packed more than 200 times is refused by its sizes, the other files read."""
    import zipfile

    import polars as pl

    inbox = tmp_path / "inbox" / "2026-10-21"
    write_extract(inbox / "deaths_good.csv", "deaths", [row_for("deaths", 0)[0]], "csv-utf8")
    bomb = inbox / f"deaths_bomb.{fmt}"
    if fmt == "xlsx":
        write_extract(bomb, "deaths", [row_for("deaths", 1)[0]], "xlsx")
        with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("xl/media/padding.bin", b"\0" * (70 * 2**20))
        said = "a part of the workbook unpacks to far more than it takes (xl/media/padding.bin: 73,400,320 bytes from "
    else:
        pl.DataFrame({"person_id": ["x" * (70 * 2**20)]}).write_parquet(bomb, compression="zstd")
        said = "a column of the file unpacks to far more than it takes (column person_id: "
    assert bomb.stat().st_size < 2**20
    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, tmp_path / "inbox")
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["deaths_good.csv"].status == "ingested"
    assert by_name[bomb.name].status == "failed" and said in by_name[bomb.name].message, by_name[bomb.name].message
