"""The dashboard and the 汇总表: masked, embedded, and adding up to the suspects table.

`build_store` (also used by test_notebooks.py and test_dashboard_browser.py) writes a real DuckDB
store through pipelines.store.connect with suspects of several rules, agencies, statuses and
verdicts, three nights in `runs`, and payments for the threshold notebook.
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl
import pytest

from pipelines import report, report_dashboard, rules
from pipelines.casework import OUTCOME_LABELS
from pipelines.quality import ensure_quality_schema
from pipelines.report_summary import SHEET_AGENCY, SHEET_MAIN, SHEET_RULE, TOTAL_LABEL
from pipelines.store import connect, scalar

AS_OF = date(2026, 11, 21)
OUTCOME_OK = OUTCOME_LABELS[7]  # "7. 经核实无问题", as returns stores it
OUTCOME_RECOVER = OUTCOME_LABELS[4]
OUTCOME_FRAUD = OUTCOME_LABELS[6]
INJECTION = '=HYPERLINK("http://evil.example/x","点我")'

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def person_id(region: str, birth: str, seq: int) -> str:
    """A valid GB 11643 number (check digit computed), so masks are tested on real-looking IDs."""
    body = f"{region}{birth}{seq:03d}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS)) % 11]
    return body + check


PEOPLE = [person_id("360702", f"19{50 + i:02d}0{1 + i % 9}1{i % 10}", 100 + i) for i in range(12)]
ACCOUNTS = [f"62170012345678{i:05d}" for i in range(4)]


def _suspects() -> list[dict]:
    """Hand-made suspects: every status, outcomes 4/6/7, overdue, escalated, 要情, null amounts."""
    d = lambda n: AS_OF - timedelta(days=n)  # noqa: E731
    rows = []

    def add(rule, subject, agency, amount, status, detected_days, pid=None, name=None, **kw):
        n = len(rows) + 1
        evidence = {"person_id": pid, "bank_account": ACCOUNTS[n % 4], "payments": [
            {"payment_id": f"P{n:05d}", "period": "202608", "amount": str(amount), "bank_account": ACCOUNTS[n % 4]}]}
        rows.append({
            "suspect_id": f"S{n:05d}", "rule_id": rule, "subject": subject, "person_id": pid, "agency_code": agency,
            "period_from": "202606", "period_to": "202610", "amount": amount, "status": status,
            "first_detected_on": d(detected_days), "last_detected_on": AS_OF, "evidence": json.dumps(evidence),
            "name": name, "severity": "高", **kw})

    P = PEOPLE
    add("PAID_AFTER_DEATH", P[0], "360702", Decimal("12000.00"), "待下发", 0, P[0], "张三")
    add("PAID_AFTER_DEATH", P[1], "360702", Decimal("150000.50"), "已销号", 120, P[1], "李四",
        issued_on=d(115), deadline=d(87), verified_on=d(90), outcome=OUTCOME_RECOVER,
        recovered_amount=Decimal("150000.50"), closed_on=d(90), major_class="重大要情", report_due=d(83),
        class_verified_on=d(92))  # classed by a first answer; the later one (d(90)) kept the class
    add("PAID_AFTER_DEATH", P[2], "360703", Decimal("8800.00"), "核查中", 100, P[2], "王五",
        issued_on=d(95), deadline=d(65), overdue=True, escalated=True, recovered_amount=Decimal("1000.00"))
    add("PAID_DURING_CUSTODY", P[3], "360703", Decimal("620000.00"), "已移送", 60, P[3], "赵六",
        issued_on=d(55), deadline=d(27), verified_on=d(10), outcome=OUTCOME_FRAUD,
        major_class="重大要情（报部）", report_due=AS_OF + timedelta(days=3))
    add("PAID_DURING_CUSTODY", P[4], "360702", Decimal("45000.00"), "已下发", 30, P[4], "钱七",
        issued_on=d(25), deadline=d(-3))
    add("LARGE_PAYMENT_UNREVIEWED", "P20261100001", "360702", Decimal("52000.00"), "已销号", 80, P[5], "孙八",
        issued_on=d(75), deadline=d(47), verified_on=d(50), outcome=OUTCOME_OK, closed_on=d(50))
    add("LARGE_PAYMENT_UNREVIEWED", "P20261100002", "360702", Decimal("80000.00"), "已销号", 80, P[6], "周九",
        issued_on=d(75), deadline=d(47), verified_on=d(48), outcome=OUTCOME_RECOVER,
        recovered_amount=Decimal("80000.00"), closed_on=d(48), major_class="要情", report_due=None)
    add("LARGE_PAYMENT_UNREVIEWED", "P20261100003", "360703", Decimal("300000.00"), "核查中", 40, P[7], "吴十",
        issued_on=d(35), deadline=d(5), overdue=True)
    add("SHARED_BANK_ACCOUNT", ACCOUNTS[0], "360703", Decimal("36000.00"), "已重开", 200, None, None,
        issued_on=d(190), deadline=d(160), verified_on=d(150), outcome=OUTCOME_OK, escalated=True)
    add("FUND_PRIVATE_TRANSFER", "T0000001", "360799", Decimal("99999.99"), "已下发", 10, None, None,
        issued_on=d(5), deadline=d(-20))
    add("DUPLICATE_PENSION", P[8], None, Decimal("3000.00"), "待下发", 400, P[8], "郑十一")
    add("AMOUNT_OUTLIER", "P20261100009", "360702", None, "待下发", 2, P[9], "王小二")
    return rows


AGENCIES = [
    ("360700", "赣州市社会保险事业管理局", "360700", None),
    ("360702", "章贡区社会保险事业管理局", "360702", "360700"),
    ("360703", "南康区社会保险事业管理局", "360703", "360700"),
    ("360799", INJECTION, "360799", "360700"),
]


def build_store(path: Path, empty: bool = False) -> Path:
    """A real store file; `empty` leaves every table empty (a first night with nothing found)."""
    con = connect(path)
    if not empty:
        con.executemany("insert into agencies (agency_code, agency_name, region_code, parent_code) values (?, ?, ?, ?)", AGENCIES)
        cols = sorted({k for s in _suspects() for k in s})
        con.executemany(f"insert into suspects ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
                        [[s.get(c) for c in cols] for s in _suspects()])
        for s in _suspects():
            con.execute("insert into suspect_events values (?, ?, 'detected', ?, 'run-3')",
                        [s["suspect_id"], datetime(2026, 11, 21, 2), json.dumps({"amount": str(s["amount"])})])
        runs = [
            # the shape pipelines.runsummary writes, money as text; nested per-rule detail is not charted
            ("run-1", date(2026, 11, 19), json.dumps({"new": 5, "suspects": 5, "amount": "700000.50", "rows_rejected": 3,
                                                      "by_rule": {"PAID_AFTER_DEATH": {"open": 5}}})),
            ("run-2", date(2026, 11, 20), None),  # a night whose summary was never written
            ("run-3", AS_OF, json.dumps({"new": 7, "rows_rejected": 0, "note": "text is ignored", "files_read": 4})),
        ]
        for run_id, as_of, summary in runs:
            con.execute("insert into runs values (?, 'nightly', ?, ?, ?, 'completed', ?)",
                        [run_id, datetime.combine(as_of, datetime.min.time()), datetime.combine(as_of, datetime.min.time()),
                         as_of, summary])
        payments = []
        for i, amount in enumerate([Decimal("52000.00"), Decimal("80000.00"), Decimal("300000.00"), Decimal("30000.00"),
                                    Decimal("45000.00"), Decimal("2100.00")]):
            payments.append((f"P2026110000{i + 1}", PEOPLE[5 + i], "某某", "110", "基本养老金", "202610",
                             date(2026, 10, 15), amount, ACCOUNTS[i % 4], "360702", "经办甲", None, None))
        con.executemany("""insert into payments (payment_id, person_id, name, insurance_type, item, period, paid_on, amount,
                           bank_account, agency_code, handled_by, reviewed_by, reviewed_at)
                           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", payments)
    con.close()
    return path


def strip_plotlyjs(page: str) -> str:
    """The page without the embedded plotly.js bundle (whose constants look like long numbers)."""
    return re.sub(r'<script type="text/javascript" id="plotlyjs">.*?</script>', "", page, flags=re.S)


@pytest.fixture()
def store(tmp_path) -> Path:
    return build_store(tmp_path / "fundwatch.duckdb")


@pytest.fixture()
def written(store, tmp_path):
    con = connect(store)
    paths = report.write_report(con, tmp_path / "out", AS_OF, actor="tester")
    return con, paths


def by_key(lines: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["经办机构编码"], r["规则编号"]): r for r in lines}


def _sheet_rows(path: Path, sheet: str) -> tuple[list[str], list[dict]]:
    ws = openpyxl.load_workbook(path)[sheet]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    h = next(i for i, r in enumerate(values) if "涉及金额" in r)
    header = values[h]
    return header, [dict(zip(header, r)) for r in values[h + 1:] if any(v is not None for v in r)]


def test_dashboard_and_summary_carry_no_full_id_or_account(written):
    con, paths = written
    page = paths.dashboard.read_text(encoding="utf-8")
    book = openpyxl.load_workbook(paths.summary)
    cells = " ".join(str(c) for ws in book for r in ws.iter_rows(values_only=True) for c in r if c is not None)
    for secret in PEOPLE + ACCOUNTS:
        assert secret not in page
        assert secret not in cells
    rest = strip_plotlyjs(page)
    assert len(rest) < len(page) / 2, "the plotly bundle marker was not found"
    assert not re.search(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])", rest)
    assert not re.search(r"(?<![0-9])[0-9]{15,19}(?![0-9])", cells)
    # The masked form is what a province reader sees instead.
    assert f"{PEOPLE[3][:6]}********{PEOPLE[3][-4:]}" in page
    assert "赵*" in page and "赵六" not in page


def test_an_id_number_delivered_as_an_agency_code_is_masked_and_a_real_code_is_not(store, tmp_path):
    """A 公民身份号码 in the 经办机构编码 column (a column shifted by one) becomes a suspect's agency:
    the province's pages show it masked, in the agency tables and the flagged lists alike."""
    con = connect(store)
    shifted = PEOPLE[10]
    con.execute("update suspects set agency_code = ? where suspect_id = 'S00003'", [shifted])  # overdue, escalated
    paths = report.write_report(con, tmp_path / "out", AS_OF, actor="tester")
    page = strip_plotlyjs(paths.dashboard.read_text(encoding="utf-8"))
    book = openpyxl.load_workbook(paths.summary)
    cells = [str(c) for ws in book for r in ws.iter_rows(values_only=True) for c in r if c is not None]
    assert shifted not in page and shifted not in " ".join(cells)
    masked = f"{shifted[:6]}********{shifted[-4:]}"
    assert masked in page and masked in cells
    assert "360703" in cells and "360703" in page  # an agency's own code is shown as it is


def test_a_transferred_suspect_is_listed_as_escalated_without_days_overdue(written):
    con, _ = written
    later = AS_OF + timedelta(days=40)  # the 已移送 S00004 detected 100 days before: 挂牌督办
    _, items = report.collect(con, later)["flagged"]
    by_id = {r["suspect_id"]: r for r in items}
    assert by_id["S00004"]["status"] == "已移送" and by_id["S00004"]["escalated"]
    assert by_id["S00004"]["days_overdue"] is None  # its 核查期限 was the agency's, and passed to 稽核/查处
    assert by_id["S00003"]["days_overdue"] == (later - (AS_OF - timedelta(days=65))).days


def test_plotly_is_embedded_not_fetched(written):
    _, paths = written
    page = paths.dashboard.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, flags=re.I)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']https?:", page, flags=re.I)
    assert "plotly.js v" in page and page.count("Plotly.newPlot") == 6
    assert 'data-figures="6"' in page


def test_summary_rows_equal_sums_over_suspects_per_agency_and_rule(written):
    con, paths = written
    header, body = _sheet_rows(paths.summary, SHEET_MAIN)
    total = body[-1]
    lines = body[:-1]
    assert total["序号"] == TOTAL_LABEL
    expected = {(a or "", r): (n, amt, rec, issued, closed, overdue, transferred, verified)
                for a, r, n, amt, rec, issued, closed, overdue, transferred, verified in con.execute("""
        select agency_code, rule_id, count(*), coalesce(sum(amount), 0),
               coalesce(sum(least(coalesce(recovered_amount, 0), coalesce(amount, 0))), 0),
               count(*) filter (where status <> '待下发'), count(*) filter (where status = '已销号'),
               count(*) filter (where overdue), count(*) filter (where status = '已移送'),
               -- (a suspect 已重开 is to be verified again: not counted as verified until answered)
               count(*) filter (where outcome is not null and status <> '已重开')
        from suspects group by all""").fetchall()}
    got = {(r["经办机构编码"], r["规则编号"]): (r["疑点数"], Decimal(str(r["涉及金额"])).quantize(Decimal("0.01")),
                                          Decimal(str(r["追回金额"])).quantize(Decimal("0.01")), r["下发"], r["已销号"],
                                          r["逾期"], r["已移送"], r["已核实"]) for r in lines}
    assert got == expected
    # S00009, answered 7 and then 已重开 (an analyst probe: it was counted 已核实 while it awaits an answer)
    assert (got[("360703", "SHARED_BANK_ACCOUNT")][-1], by_key(lines)[("360703", "SHARED_BANK_ACCOUNT")]["已重开"]) == (0, 1)
    assert total["疑点数"] == scalar(con, "select count(*) from suspects") == 12
    assert Decimal(str(total["涉及金额"])).quantize(Decimal("0.01")) == scalar(con, "select sum(amount) from suspects")
    assert Decimal(str(total["追回金额"])).quantize(Decimal("0.01")) == scalar(con, "select sum(recovered_amount) from suspects")
    # what is still open: every suspect not 已销号, per row and in all
    open_by_row = dict(con.execute("""select coalesce(agency_code, '') || '|' || rule_id, coalesce(sum(amount), 0) from suspects
                                      where status <> '已销号' group by all""").fetchall())
    for r in lines:
        assert Decimal(str(r["在办涉及金额"])).quantize(Decimal("0.01")) == \
            open_by_row.get(f"{r['经办机构编码']}|{r['规则编号']}", Decimal("0.00")), r
    assert Decimal(str(total["在办涉及金额"])).quantize(Decimal("0.01")) == scalar(
        con, "select sum(amount) from suspects where status <> '已销号'") < Decimal(str(total["涉及金额"]))
    for col in ("下发", "已核实", "核查中", "已销号", "已重开", "逾期", "挂牌督办", "已移送", "要情", "其中重大要情"):
        assert total[col] == sum(r[col] for r in lines)
    # the states a supervisor asks about beside the closed and transferred: in progress, reopened, 要情
    by_state = {(a or "", r): (prog, reopened, major, serious) for a, r, prog, reopened, major, serious in con.execute("""
        select agency_code, rule_id, count(*) filter (where status = '核查中'), count(*) filter (where status = '已重开'),
               count(*) filter (where major_class is not null), count(*) filter (where major_class like '重大要情%')
        from suspects group by all""").fetchall()}
    assert {(r["经办机构编码"], r["规则编号"]): (r["核查中"], r["已重开"], r["要情"], r["其中重大要情"]) for r in lines} == by_state
    assert (total["核查中"], total["已重开"], total["要情"], total["其中重大要情"]) == (2, 1, 3, 2)  # as the fixture has them
    # The agency and rule sheets add up to the same total.
    for sheet in (SHEET_AGENCY, SHEET_RULE):
        _, other = _sheet_rows(paths.summary, sheet)
        assert other[-1]["疑点数"] == total["疑点数"] and other[-1]["涉及金额"] == pytest.approx(total["涉及金额"])


def test_every_agency_of_the_register_is_a_line_of_the_agency_sheet_and_table_with_or_without_suspects(written):
    """An agency with no suspects is a line of zeros, not left out (left out, it read as one the
    office does not cover); the chart draws only agencies with suspects."""
    con, paths = written
    _, lines = _sheet_rows(paths.summary, SHEET_AGENCY)
    by_code = {r["经办机构编码"]: r for r in lines[:-1]}
    registered = {a[0] for a in AGENCIES}
    with_suspects = {a or "" for (a,) in con.execute("select distinct agency_code from suspects").fetchall()}
    assert set(by_code) == registered | with_suspects
    quiet = by_code["360700"]  # the city bureau: in the register, no suspect of its own
    assert quiet["经办机构名称"] == "赣州市社会保险事业管理局" and quiet["疑点数"] == 0
    assert quiet["涉及金额"] == 0 and quiet["追回金额"] == 0 and quiet["追回率"] in (None, "", "—")
    assert sum(r["疑点数"] for r in lines[:-1]) == lines[-1]["疑点数"] == scalar(con, "select count(*) from suspects")
    data = report.collect(con, AS_OF)
    page = paths.dashboard.read_text(encoding="utf-8")
    table = page[page.index("经办机构编码"):]
    assert "赣州市社会保险事业管理局" in table
    assert len(with_suspects) < len(data["by_agency"])
    charts = strip_plotlyjs(page)
    charts = charts[charts.index("一、疑点分布"):charts.index("二、要情")]
    drawn = [name for name in ("章贡区社会保险事业管理局", "赣州市社会保险事业管理局")
             if name in charts or json.dumps(name)[1:-1] in charts]
    assert drawn == ["章贡区社会保险事业管理局"]


def test_two_agencies_of_one_name_are_two_bars_on_the_dashboard(store, tmp_path):
    """Each county's 社会保险事业管理局 may be named alike: the by-agency chart tells them apart by
    code rather than drawing their bars on one category."""
    con = connect(store)
    con.execute("update agencies set agency_name = '社会保险事业管理局' where agency_code in ('360702', '360703')")
    data = report.collect(con, AS_OF)
    figure = report_dashboard._count_and_amount(data["by_agency"], "agency_name", "按经办机构")
    labels = list(figure.data[0].y)
    assert len(labels) == len(set(labels)) == len(data["by_agency"])
    assert {"社会保险事业管理局（360702）", "社会保险事业管理局（360703）"} <= set(labels)
    assert INJECTION[:17] + "…" in labels and INJECTION in list(figure.data[0].customdata)  # (cut on the axis)
    con.close()


def test_a_long_name_is_cut_on_a_charts_axis_and_whole_in_its_hover(store, tmp_path):
    """From a look at the printed page: a 60-character agency name left its bars 60 px wide and the
    axis titles printed over each other; two names alike in their first characters stay two bars."""
    long = "江西省南昌市东湖区城乡居民社会养老保险暨机关事业单位工作人员养老保险及失业保险工伤保险待遇发放管理服务中心"
    con = connect(store)
    con.execute("update agencies set agency_name = ? || agency_code where agency_code in ('360702', '360703')", [long])
    data = report.collect(con, AS_OF)
    figure = report_dashboard._count_and_amount(data["by_agency"], "agency_name", "按经办机构")
    labels, names = list(figure.data[0].y), list(figure.data[0].customdata)
    assert len(labels) == len(set(labels)) == len(data["by_agency"])
    cut = long[:report_dashboard.AXIS_LABEL_CHARACTERS - 1] + "…"
    assert {f"{cut}（360702）", f"{cut}（360703）"} <= set(labels)
    # whole in the hover, with the code where two read alike (a regression probe: the hover lost it)
    assert {f"{long}360702（360702）", f"{long}360703（360703）"} <= set(names)
    assert [c[0] for c in figure.data[1].customdata] == names  # the money panel's hover names it whole too
    assert all(len(label) <= 2 * report_dashboard.AXIS_LABEL_CHARACTERS + 2 for label in labels)
    # two own rules alike in their first characters, one with an id of 67: the code is cut too
    rules_alike = [{"rule_title": long + "甲", "rule_id": "PAYMENTS_TO_PERSONS_WITH_SUSPICIOUSLY_LONG_IDENTIFIERS_AND_MORE_XYZ",
                    "amount": Decimal("10"), "recovered": Decimal("0"), "rate": None, "suspects": 1},
                   {"rule_title": long + "乙", "rule_id": "LOCAL_B", "amount": Decimal("20"), "recovered": Decimal("0"),
                    "rate": None, "suspects": 1}]
    for figure in (report_dashboard.fig_recovery(rules_alike),
                   report_dashboard._count_and_amount(rules_alike, "rule_title", "按规则")):
        assert len(set(figure.data[0].y)) == 2
        assert all(len(label) <= 2 * report_dashboard.AXIS_LABEL_CHARACTERS + 2 for label in figure.data[0].y)
    # one title, ids alike in their first characters too (an office's variant of a shipped rule):
    # two bars, by the whole id (a second probe: cut alike, they fell on one category)
    variants = [dict(rules_alike[0], rule_title="生存认证超期仍发放", rule_id="CERTIFICATION_OVERDUE"),
                dict(rules_alike[1], rule_title="生存认证超期仍发放", rule_id="CERTIFICATION_OVERDUE_LOCAL")]
    assert set(report_dashboard.fig_recovery(variants).data[0].y) == {
        "生存认证超期仍发放（CERTIFICATION_OVERDUE）", "生存认证超期仍发放（CERTIFICATION_OVERDUE_LOCAL）"}
    con.close()


def test_a_name_is_masked_by_the_first_character_a_reader_sees():
    """A zero-width space before the surname is passed over (the page showed only stars), a
    combining accent stays with its letter, a surname beyond the BMP stays whole."""
    from pipelines.report_mask import mask_name
    assert mask_name("\u200b赵六") == "赵*"
    assert mask_name("e\u0301李") == "e\u0301*"
    assert mask_name("𪚥𰻞芳") == "𪚥**"
    assert mask_name("葛\U000E0100亮") == "葛\U000E0100*"  # an ideographic variation selector stays with its character
    assert mask_name("阿依古丽·买买提") == "阿" + "*" * 7
    assert mask_name("张") == "张*" and mask_name("\u200b") == ""


def test_recovery_rate_is_recovered_over_amount_and_blank_without_amount(written):
    _, paths = written
    _, body = _sheet_rows(paths.summary, SHEET_MAIN)
    death_702 = next(r for r in body if r["经办机构编码"] == "360702" and r["规则编号"] == "PAID_AFTER_DEATH")
    # 150000.50 recovered of 12000.00 + 150000.50 at risk
    assert death_702["追回率"] == pytest.approx(150000.50 / 162000.50, abs=1e-4)
    outlier = next(r for r in body if r["规则编号"] == "AMOUNT_OUTLIER")
    assert outlier["涉及金额"] == 0 and outlier["追回率"] == "—"
    dashes = [c for row in openpyxl.load_workbook(paths.summary)[SHEET_MAIN].iter_rows() for c in row if c.value == "—"]
    assert dashes and all(c.alignment.horizontal == "center" for c in dashes)  # (left, it read 0.00— printed)
    total = body[-1]
    # the cell holds the rate as shown (0.1 %, three places), rounded once, half up
    exact = Decimal(str(total["追回金额"])) / Decimal(str(total["涉及金额"]))
    assert Decimal(str(total["追回率"])) == exact.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    assert report.report_data.recovery_rate(Decimal("1"), Decimal("3")) == Decimal(1) / Decimal(3)
    assert report.report_data.recovery_rate(Decimal("5"), Decimal("0")) is None


@pytest.mark.parametrize("recovered, amount, shown", [
    ("39307.50", "117507.91", "33.5%"),  # 33.451 %: cut to 0.3345 first, it was shown as 33.4 %
    ("5994.6", "10000", "59.9%"),        # 59.946 %: cut to 0.5995 first, it was shown as 60.0 %
    ("1", "16", "6.3%"),                 # 6.25 %, exactly half: up (as Excel shows a 0.0% cell), not to even
    ("373", "2000", "18.7%"),            # 18.65 %: likewise
    ("0", "5", "0.0%"), ("5", "5", "100.0%"),
])
def test_a_recovery_rate_is_shown_rounded_once_half_up(recovered, amount, shown):
    rate = report.report_data.recovery_rate(Decimal(recovered), Decimal(amount))
    assert report_dashboard.fmt_rate(rate) == shown
    assert report_dashboard.fmt_rate(None) == "—"


def test_a_recovery_above_an_amount_a_later_night_lowered_counts_up_to_that_amount(store, tmp_path):
    """S00002 was closed with 150,000.50 recovered; a later night's reversal lowered its 涉及金额 to
    100,000.00. The store keeps what was recovered; every figure of the report counts 100,000.00
    (the 说明 and the dashboard say 追回金额 counts up to 涉及金额): no 追回率 above 100 %."""
    con = connect(store)
    con.execute("update suspects set amount = 100000.00 where suspect_id = 'S00002'")
    paths = report.write_report(con, tmp_path / "out", AS_OF, actor="tester")
    assert scalar(con, "select recovered_amount from suspects where suspect_id = 'S00002'") == Decimal("150000.50")
    counted = scalar(con, "select sum(least(coalesce(recovered_amount, 0), coalesce(amount, 0))) from suspects")
    assert counted == scalar(con, "select sum(recovered_amount) from suspects") - Decimal("50000.50")

    _, body = _sheet_rows(paths.summary, SHEET_MAIN)
    row = next(r for r in body if r["经办机构编码"] == "360702" and r["规则编号"] == "PAID_AFTER_DEATH")
    assert Decimal(str(row["追回金额"])).quantize(Decimal("0.01")) == Decimal("100000.00")
    assert Decimal(str(row["追回率"])) == Decimal("0.893")  # 100,000.00 / 112,000.00 = 89.29 %
    assert Decimal(str(body[-1]["追回金额"])).quantize(Decimal("0.01")) == counted
    for sheet in (SHEET_AGENCY, SHEET_RULE):
        _, other = _sheet_rows(paths.summary, sheet)
        assert Decimal(str(other[-1]["追回金额"])).quantize(Decimal("0.01")) == counted
        assert all(r["追回率"] == "—" or r["追回率"] <= 1 for r in other)

    data = report.collect(con, AS_OF)
    assert data["headline"]["recovered"] == counted
    assert sum(r["recovered"] for r in data["by_agency"]) == sum(r["recovered"] for r in data["by_rule"]) == counted
    major = {r["suspect_id"]: r for r in data["major"][1]}
    assert major["S00002"]["recovered"] == Decimal("100000.00") == major["S00002"]["amount"]
    page = paths.dashboard.read_text(encoding="utf-8")
    assert report_dashboard.fmt_money(counted) in page
    assert "150,000.50" not in page


def test_a_recovery_for_months_the_loss_has_left_counts_nothing(store, tmp_path):
    """S00003 (PAID_AFTER_DEATH, 360703) was answered 4 with 1,000.00 recovered for 202601–202603; a
    corrected record moved its loss to 202606–202610, months no sheet showed: for casework nothing of
    it is recovered (it stays 核查中, 挂牌督办), and the report counts nothing of it either."""
    con = connect(store)
    before = report.collect(con, AS_OF)
    con.execute("update suspects set answered_period_from = '202601', answered_period_to = '202603'"
                " where suspect_id = 'S00003'")
    after = report.collect(con, AS_OF)
    assert after["headline"]["recovered"] == before["headline"]["recovered"] - Decimal("1000.00")
    row = lambda data: next(r for r in data["summary"] if (r["agency_code"], r["rule_id"]) == ("360703", "PAID_AFTER_DEATH"))  # noqa: E731
    assert (row(before)["recovered"], row(after)["recovered"]) == (Decimal("1000.00"), Decimal("0.00"))
    flagged = {r["suspect_id"]: r for r in after["flagged"][1]}
    assert flagged["S00003"]["recovered"] == Decimal("0.00")
    # within the months answered, or a loss grown by months since (202606–202608 answered), it counts
    for answered in (("202606", "202610"), ("202606", "202608"), ("202601", "202606")):
        con.execute("update suspects set answered_period_from = ?, answered_period_to = ? where suspect_id = 'S00003'",
                    list(answered))
        assert report.collect(con, AS_OF)["headline"]["recovered"] == before["headline"]["recovered"], answered


def test_the_suspects_new_on_the_night_are_counted_also_in_a_report_for_another_date(written, tmp_path):
    con, _ = written
    new_that_night = scalar(con, "select count(*) from suspects where first_detected_on = ?", [AS_OF])
    assert new_that_night >= 1
    for day in (AS_OF, AS_OF + timedelta(days=30), AS_OF - timedelta(days=3)):
        assert report.collect(con, day)["headline"]["new_today"] == new_that_night, day
        page = report.write_report(con, tmp_path / day.isoformat(), day).dashboard.read_text(encoding="utf-8")
        assert f"当晚新发现疑点 {new_that_night:,} 件" in page


def test_summary_strings_cannot_become_formulas(written):
    _, paths = written
    ws = openpyxl.load_workbook(paths.summary)[SHEET_MAIN]
    cell = next(c for row in ws.iter_rows() for c in row if c.value == INJECTION)
    assert cell.data_type == "s"


def test_export_is_audited_with_sha256_and_files_are_owner_only(written):
    import hashlib
    con, paths = written
    audit = con.execute("select action, file, file_hash, actor from audit_log order by action").fetchall()
    actions = {a: (f, h, who) for a, f, h, who in audit}
    f, h, who = actions["export_summary"]
    assert Path(f) == paths.summary and who == "tester"
    assert h == hashlib.sha256(paths.summary.read_bytes()).hexdigest()
    assert paths.summary.name == "汇总表_20261121.xlsx" and paths.dashboard.name == "dashboard.html"
    for p in (paths.dashboard, paths.summary):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert not [p for p in paths.summary.parent.iterdir() if p.name.endswith(".tmp")]


def test_dashboard_lists_major_cases_by_report_due_and_overdue_items(written):
    _, paths = written
    page = paths.dashboard.read_text(encoding="utf-8")
    major = page[page.index("要情 / 重大要情（按报告期限）"):page.index("三、逾期与挂牌督办")]
    # S00002 was due 83 days ago (late, first), S00004 in 3 days, S00007 has no due date (last).
    assert major.index("S00002") < major.index("S00004") < major.index("S00007")
    # each suspect's money to the fen: its class is by the exact amount (499,999.99 was "50.00 万元")
    assert "重大要情（报部）" in major and "620,000.00 元" in major and "万元" not in major
    # beside the report date, the verification it counts from, not the later answer of the same class
    row = major[major.index("S00002"):major.index("</tr>", major.index("S00002"))]
    assert "定级核实日期" in major and str(AS_OF - timedelta(days=92)) in row
    assert str(AS_OF - timedelta(days=90)) not in row
    flagged = page[page.index("三、逾期与挂牌督办"):page.index("四、各经办机构汇总")]
    assert "S00003" in flagged and "S00008" in flagged and "S00009" in flagged
    assert "S00002" not in flagged  # closed (已销号) items drop off the action list
    # 挂牌督办 said both ways: a blank cell read as "not known" beside the 是 of an escalated one
    head = re.findall(r"<th[^>]*>(.*?)</th>", flagged[:flagged.index("</tr>")])
    for suspect_id, escalated in (("S00003", "是"), ("S00008", "否")):
        start = flagged.rindex("<tr", 0, flagged.index(suspect_id))
        cells = re.findall(r"<td[^>]*>(.*?)</td>", flagged[start:flagged.index("</tr>", start)])
        assert cells[head.index("挂牌督办")] == escalated, (suspect_id, cells)
    assert "暂无数据" not in page[:page.index("五、运行趋势")]


def test_the_major_list_is_shown_whole_and_a_cut_list_says_where_the_rest_is(store, tmp_path, monkeypatch):
    """A scale probe: 200 of 882 要情 were shown with "完整清单见各经办机构核查台账" — a verified 要情 is on
    no worklist (closed or transferred), so 682 were on no output at all. The 要情 list is the
    office's list to report upward by: shown whole. A cut list says where its rest is, its counts
    with separators as the cards above it."""
    from pipelines import report_data

    monkeypatch.setattr(report_data, "LIST_LIMIT", 1)
    con = connect(store)
    page = report.write_report(con, tmp_path / "out", AS_OF, actor="tester").dashboard.read_text(encoding="utf-8")
    n_major = scalar(con, "select count(*) from suspects where major_class is not null")
    major = page[page.index("要情 / 重大要情（按报告期限）"):page.index("三、逾期与挂牌督办")]
    assert n_major == 3 and all(s in major for s in ("S00002", "S00004", "S00007")) and "仅显示前" not in major
    flagged = page[page.index("三、逾期与挂牌督办"):page.index("四、各经办机构汇总")]
    n_flagged = scalar(con, "select count(*) from suspects where (overdue or escalated) and status <> '已销号'")
    assert n_flagged == 3
    assert "共 3 件，仅显示前 1 件（在办的完整清单见各经办机构核查台账；已移送的不再下发，在 suspects 表）" in flagged
    assert report_dashboard._more(38117, 200, "x") == '<p class="note">共 38,117 件，仅显示前 200 件（x）。</p>'


def test_trend_survives_missing_and_partial_run_summaries(written):
    _, paths = written
    page = paths.dashboard.read_text(encoding="utf-8")
    trend = page[page.index('id="fig-trend"'):]
    assert "2026-11-20" in trend and "新增疑点" in trend and "拒收行数" in trend and "在办涉及金额" in trend
    assert "files_read" in trend  # an unknown top-level number is still charted, under its own name
    assert "by_rule" not in trend


def test_quality_section_reads_quality_results_when_present(store, tmp_path):
    con = connect(store)
    ensure_quality_schema(con)  # the table as pipelines.quality creates it
    con.executemany("insert into quality_results values (?, ?, ?, ?, ?, ?, ?, current_timestamp)", [
        ("run-2", "2026-11-20", "payments", "old_failure", "paid_on", False, json.dumps({"x": 1})),
        ("run-3", "2026-11-21", "payments", "expect_column_values_to_not_be_null", "paid_on", False,
         json.dumps({"unexpected_count": 3, "example": PEOPLE[0]})),
        ("run-3", "2026-11-21", "deaths", "expect_table_row_count_to_be_between", None, True, None),
    ])
    page = report.write_report(con, tmp_path / "out", AS_OF).dashboard.read_text(encoding="utf-8")
    q = page[page.index("六、最近一批数据的质量警告"):]
    # in words a leader reads: the check, the field by its Chinese header (not GE's terms, not JSON)
    assert "2026-11-21" in q and re.search(r">不为空</td><td[^>]*>发放日期（paid_on）</td>", q)
    assert "old_failure" not in q and "本批行数" not in q and "expect_" not in q and "kwargs" not in q
    assert PEOPLE[0] not in page


def test_empty_store_still_renders(tmp_path):
    con = connect(build_store(tmp_path / "empty.duckdb", empty=True))
    paths = report.write_report(con, tmp_path / "out")
    page = paths.dashboard.read_text(encoding="utf-8")
    assert page.count("Plotly.newPlot") == 6 and "暂无数据" in page and "暂无运行记录" in page
    assert "quality_results 表不存在" in page
    _, body = _sheet_rows(paths.summary, SHEET_MAIN)
    assert body == [{**body[0], "序号": TOTAL_LABEL, "疑点数": 0, "涉及金额": 0, "追回率": "—"}]


def test_report_as_of_defaults_to_the_last_completed_night(written, tmp_path):
    con, _ = written
    paths = report.write_report(con, tmp_path / "again")
    assert paths.summary.name == "汇总表_20261121.xlsx"


def test_a_night_killed_before_its_merge_is_not_the_night_a_report_is_dated(store):
    """A night started and killed (still `running`) changed no suspect: the report stays the last
    completed night's, with that night's stored flags."""
    con = connect(store)
    later = AS_OF + timedelta(days=30)
    con.execute("insert into runs values ('run-4', 'nightly', ?, null, ?, 'running', null)",
                [datetime.combine(later, datetime.min.time()), later])
    data = report.collect(con)
    assert data["as_of"] == data["data_as_of"] == AS_OF
    stored = scalar(con, "select count(*) from suspects where overdue")
    assert data["headline"]["overdue"] == stored


def test_a_night_failed_after_its_merge_dates_the_report_and_its_flags_are_recomputed(store):
    """A night that merged its detection and then failed (in its report, say) left its suspects:
    the report is of that night, and 逾期/挂牌督办 are computed for it (its casework may not have run)."""
    con = connect(store)
    later = AS_OF + timedelta(days=30)
    con.execute(rules.DETECT_STATE_DDL)
    con.execute("insert into detect_state values (1, ?, 'x', current_timestamp)", [later])
    con.execute("insert into runs values ('run-4', 'nightly', ?, ?, ?, 'failed', null)",
                [datetime.combine(later, datetime.min.time()), datetime.combine(later, datetime.min.time()), later])
    data = report.collect(con)
    assert data["as_of"] == data["data_as_of"] == later
    awaiting = ("已下发", "核查中", "已重开")
    want = sum(1 for st, dl in con.execute("select status, deadline from suspects").fetchall()
               if st in awaiting and dl is not None and later > dl)
    assert want > scalar(con, "select count(*) from suspects where overdue")  # the stored flags are older
    assert data["headline"]["overdue"] == want


def test_a_report_drawn_for_a_later_date_shows_that_dates_overdue_and_escalated_and_writes_nothing(written, tmp_path):
    con, _ = written
    stored = con.execute("select suspect_id, overdue, escalated from suspects order by 1").fetchall()
    on_the_night = report.collect(con, AS_OF)["headline"]
    assert (on_the_night["overdue"], on_the_night["escalated"]) == (
        sum(bool(o) for _, o, _ in stored), sum(bool(e) for _, _, e in stored))  # the night's own flags

    later = AS_OF + timedelta(days=200)
    rows = con.execute("select status, deadline, first_detected_on, amount, recovered_amount from suspects").fetchall()
    awaiting, not_closed = ("已下发", "核查中", "已重开"), ("待下发", "已下发", "核查中", "已重开", "已移送")
    want_overdue = sum(1 for st, dl, _, _, _ in rows if st in awaiting and dl is not None and later > dl)
    want_escalated = sum(1 for st, _, first, amount, rec in rows
                         if st in not_closed and (rec or 0) < (amount or 0) and (later - first).days >= 90)
    assert want_overdue > on_the_night["overdue"] or want_escalated > on_the_night["escalated"]
    paths = report.write_report(con, tmp_path / "later", later)
    drawn = report.collect(con, later)["headline"]
    assert (drawn["overdue"], drawn["escalated"]) == (want_overdue, want_escalated)
    # the 汇总表 for that date counts the same
    _, main = _sheet_rows(paths.summary, SHEET_MAIN)
    total = next(r for r in main if TOTAL_LABEL in [v for v in r.values() if isinstance(v, str)])
    assert (total["逾期"], total["挂牌督办"]) == (want_overdue, want_escalated)
    # nothing in the store changed, and the connection sees the stored suspects again
    assert con.execute("select suspect_id, overdue, escalated from suspects order by 1").fetchall() == stored


def test_open_means_every_status_but_closed_on_the_page_as_in_the_trend_and_the_console(written, tmp_path):
    con, paths = written
    statuses = con.execute("select status, amount from suspects").fetchall()
    assert any(s == "已移送" for s, _ in statuses), "the fixture has a transferred suspect"
    h = report.collect(con, AS_OF)["headline"]
    assert h["open"] == sum(1 for s, _ in statuses if s != "已销号")
    assert h["open_amount"] == sum((a or 0 for s, a in statuses if s != "已销号"), Decimal("0"))
    page = paths.dashboard.read_text(encoding="utf-8")
    assert "在办疑点（未销号）" in page and "在办涉及金额" in page
    # every suspect ever issued is 累计下发, not the status 已下发 that the status chart counts
    issued_ever = sum(1 for (s,) in con.execute("select status from suspects").fetchall() if s != "待下发")
    assert issued_ever > sum(1 for s, _ in statuses if s == "已下发")
    assert f"累计下发 {issued_ever:,} 件" in page and f"；已下发 {issued_ever:,} 件" not in page


def test_a_report_for_another_date_says_which_date_its_data_is_of(written, tmp_path):
    con, _ = written
    paths = report.write_report(con, tmp_path / "earlier", AS_OF - timedelta(days=30))
    page = paths.dashboard.read_text(encoding="utf-8")
    said = f"数据截至 {AS_OF.isoformat()}（逾期、挂牌督办与账龄按 {(AS_OF - timedelta(days=30)).isoformat()} 计算）"
    assert said in page
    assert openpyxl.load_workbook(paths.summary)[SHEET_MAIN].cell(row=2, column=1).value.startswith(said)
    same_day = report.write_report(con, tmp_path / "same", AS_OF).dashboard.read_text(encoding="utf-8")
    assert f"数据截至 {AS_OF.isoformat()} ·" in same_day and "计算）" not in same_day


def test_a_latest_delivery_whose_every_row_was_refused_shows_its_rejections(store, tmp_path):
    con = connect(store)
    ensure_quality_schema(con)
    con.execute("insert into quality_results values ('run-3', '2026-11-21', 'payments', 'expect_x', 'paid_on', "
                "false, null, current_timestamp)")
    con.execute("""insert into rejected_rows (extract, source_file, row_number, column_name, reason, raw, file_hash,
                                              delivery, rejected_at)
                   values ('payments', '2026-11-28/p.csv', 2, 'amount', '发放金额(amount) 不是有效金额: ''abc''', '{}',
                           'h', '2026-11-28', current_timestamp)""")
    page = report.write_report(con, tmp_path / "out", AS_OF).dashboard.read_text(encoding="utf-8")
    q = page[page.index("六、最近一批数据的质量警告"):]
    assert "2026-11-28" in q and "不是有效金额" in q and "abc" not in q



def test_the_nightly_dashboard_has_that_nights_point_in_the_trend(demo_run):
    """The dashboard the night writes charts that night too (it was drawn before the night's summary
    was stored, one night behind)."""
    assert demo_run.returncode == 0, demo_run.stderr
    page = (demo_run.out / "dashboard.html").read_text(encoding="utf-8")
    trace = re.search(r'"name":"当晚在办疑点（未销号）","x":\[([^\]]*)\],"y":\[([^\]]*)\]', page)
    assert trace, "the trend has no open-suspects series"
    nights, values = trace.group(1).split(","), trace.group(2).split(",")
    con = connect(demo_run.db, read_only=True)
    try:
        last = scalar(con, "select max(as_of) from runs where status = 'completed'")
        open_now = scalar(con, "select count(*) from suspects where status <> '已销号'")
    finally:
        con.close()
    assert nights[-1].strip('"') == last.isoformat()
    assert values[-1] != "null" and float(values[-1]) == open_now


def test_the_latest_delivery_is_the_last_to_come_in_not_the_last_by_name(store, tmp_path):
    """A folder not named by a date ("补发") sorts after every dated one: the latest delivery is the
    one that came in last, or its old rejection would hide tonight's checks."""
    con = connect(store)
    ensure_quality_schema(con)
    con.execute("""insert into rejected_rows (extract, source_file, row_number, column_name, reason, raw, file_hash,
                                              delivery, rejected_at)
                   values ('payments', '补发/x.csv', 0, '(整个文件)', 'unknown extract kind', '{}', 'h', '补发',
                           timestamp '2026-11-18 02:00:00')""")
    con.execute("""insert into quality_results values ('run-3', '2026-11-21', 'payments', 'expect_tonight', 'paid_on',
                                                       false, null, timestamp '2026-11-21 02:00:00')""")
    page = report.write_report(con, tmp_path / "out", AS_OF).dashboard.read_text(encoding="utf-8")
    q = page[page.index("六、最近一批数据的质量警告"):]
    assert "2026-11-21" in q and "expect_tonight" in q and "unknown extract kind" not in q


def test_the_summary_prints_each_sheet_one_a4_landscape_page_across_with_its_header_on_every_page(written, tmp_path):
    """From a probe of the 汇总表 as the province prints it: no print setup at all — the demo's printed
    on 15 portrait pages, its counts and money on pages without the agency they were of, the title
    halved on pages 2 and 3, no page numbers; rule ids and long names cut at their column's edge."""
    import shutil
    import subprocess

    con, paths = written
    con.execute("update agencies set agency_name = ? where agency_code = '360702'",
                ["赣州市章贡区社会保险事业管理局与机关事业单位养老保险经办中心（合署办公）"])
    long_name = report.write_report(con, tmp_path / "long", AS_OF, actor="tester").summary
    wb = openpyxl.load_workbook(long_name)
    for ws in wb.worksheets:
        assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9, ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToHeight == 0, ws.title
        assert ws.page_setup.fitToWidth in (None, 1), ws.title  # (1 wide: OOXML's default)
        assert "&P" in ws.oddFooter.center.text and "&N" in ws.oddFooter.center.text, ws.title
    for name in (SHEET_MAIN, SHEET_AGENCY, SHEET_RULE):
        ws = wb[name]
        assert ws.print_title_rows == "$1:$3", name  # the title, the date and the header on every page
        count = [c.column for c in ws[3] if c.value == "疑点数"][0]
        assert ws.cell(4, count).number_format == "#,##0"  # (no thousands separator before)
    main = wb[SHEET_MAIN]
    names = [r for r in range(4, main.max_row) if str(main.cell(r, 3).value).startswith("赣州市章贡区")]
    assert names and all(main.cell(r, 3).alignment.wrap_text and main.row_dimensions[r].height >= 30 for r in names)
    assert main.freeze_panes == "G4"  # the figures scroll beside their agency and rule
    # a rule id is one word: wrapped at its column's edge it printed CERTIFICATION_OV / ERDUE
    for name in (SHEET_MAIN, SHEET_RULE):
        ws = wb[name]
        column = [c.column_letter for c in ws[3] if c.value == "规则编号"][0]
        ids = [c.value for c in ws[column][3:] if c.value and c.value != "合计"]
        assert len(ids) > 3 and ws.column_dimensions[column].width >= max(map(len, ids)) * 1.25 + 2, name
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        return  # (the layout above is what LibreOffice and Excel print from; CI has LibreOffice)
    done = subprocess.run([soffice, f"-env:UserInstallation={(tmp_path / 'lo').as_uri()}", "--headless",
                           "--convert-to", "pdf", "--outdir", str(tmp_path / "pdf"), str(paths.summary)],
                          capture_output=True, text=True, timeout=180)
    pdf = (tmp_path / "pdf" / paths.summary.with_suffix(".pdf").name).read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert pages == 4, (pages, done.stderr)  # one page each: three tables and the 说明


def test_the_dashboard_says_one_unit_a_money_column_and_writes_no_k_on_an_axis_of_wan(written):
    """From a probe of the dashboard as leaders read it: the agency table switched each cell between
    万元 and 元 at 100,000 (12.62 万元 above 89,089.80 元: the larger-looking sum the smaller), and an
    axis of 涉及金额（万元） read 300k with plotly's default ticks. Printed, it is A4 landscape without
    the toolbar, each chart drawn again at the page's width; the trend says it is each night's record."""
    con, paths = written
    page = paths.dashboard.read_text(encoding="utf-8")
    agency_table = page[page.index("<h2>四、各经办机构汇总</h2>"):page.index("<h2>五、运行趋势</h2>")]
    assert "万元" not in agency_table and " 元</td>" in agency_table
    by_agency = report.collect(con, AS_OF)["by_agency"]
    assert any(r["amount"] >= 100000 for r in by_agency)  # (a cell that was shown in 万元)
    for r in by_agency:
        assert f'<td class="num nw">{report_dashboard.fmt_yuan(r["amount"])}</td>' in agency_table
    assert page.count(f'"tickformat":"{report_dashboard.MONEY_TICKS}"') >= 3  # by rule, by agency, recovery
    assert "@page{size:A4 landscape" in page and ".modebar-container{display:none!important}" in page
    assert "beforeprint" in page and "Plotly.Plots.resize" in page
    assert "当晚在办疑点（未销号）" in page and "其后报送的核实结果不回溯改动" in page


def test_the_dashboards_data_quality_lists_are_the_same_whatever_the_threads(tmp_path):
    """From a determinism probe: the rejected rows counted by reason were ordered by count alone, so
    tied counts came in the hash table's order — another order, and past the cut at 50 other reasons,
    from one run to the next; the failed checks of one expectation on several columns likewise. With
    no quality result, the delivery shown was the largest name (an inbox's loose files, `inbox`,
    after every dated folder), not the latest read."""
    from pipelines import report_data

    db = tmp_path / "fw.duckdb"
    con = connect(db)
    ensure_quality_schema(con)
    con.execute("""insert into rejected_rows (extract, reason, delivery, rejected_at)
                   select 'payments', 'reason ' || (i % 120), '2026-11-21', timestamp '2026-11-21 02:00:00'
                   from range(360) t(i) order by hash(i)""")
    con.execute("insert into rejected_rows (extract, reason, delivery, rejected_at) "
                "values ('deaths', 'old', 'inbox', timestamp '2026-10-21 02:00:00')")
    shown = set()
    for threads in (1, 2, 4, 8):
        con.execute(f"set threads = {threads}")
        for _ in range(3):
            q = report_data.quality(con)
            shown.add(tuple((r["extract"], r["reason"], r["n"]) for r in q["rejected"]))
    assert q["delivery"] == "2026-11-21"
    assert shown == {tuple(("待遇发放明细（payments）", r, 3) for r in sorted(f"reason {i}" for i in range(120))[:50])}
    con.execute("delete from rejected_rows")
    con.execute("""insert into quality_results (run_id, delivery, extract, expectation, column_name, success, checked_at)
                   select 'r', '2026-11-21', 'payments', 'expect_column_values_to_be_in_set', c, false, timestamp '2026-11-21 02:00:00'
                   from (values ('agency_code'), ('item'), ('insurance_type'), ('bank_account')) v(c) order by hash(c)""")
    assert [r["column_name"] for r in report_data.quality(con)["failed"]] == [
        "经办机构编码（agency_code）", "收款账号（bank_account）", "险种类型（insurance_type）", "待遇项目（item）"]
    con.close()


def test_the_summary_and_the_dashboard_name_the_office_when_the_config_sets_it(store, tmp_path):
    """config `office`: a 汇总表 sent upward or a dashboard printed said nothing of whose it was; a
    table sent upward carries 填报单位 under its title."""
    from pipelines.config import load_config

    config_file = tmp_path / "fundwatch.yaml"
    config_file.write_text("office: 江西省人力资源和社会保障厅基金监督处<局>&\n", encoding="utf-8")
    con = connect(store)
    paths = report.write_report(con, tmp_path / "out", AS_OF, actor="tester", config=load_config(config_file))
    wb = openpyxl.load_workbook(paths.summary)
    for sheet in (SHEET_MAIN, SHEET_AGENCY, SHEET_RULE):
        line = wb[sheet]["A2"].value
        assert line.startswith("填报单位：江西省人力资源和社会保障厅基金监督处<局>&    数据截至 2026-11-21"), line
        assert line.endswith("金额单位：元")
    assert wb.properties.creator == "fundwatch"
    page = paths.dashboard.read_text(encoding="utf-8")
    assert "编制单位：江西省人力资源和社会保障厅基金监督处&lt;局&gt;&amp; · 数据截至" in page
    assert re.search(r"<title>社会保险基金非现场监督看板 [^<]* · 江西省人力资源和社会保障厅基金监督处&lt;局&gt;&amp;</title>", page)
    _, rows = _sheet_rows(paths.summary, SHEET_MAIN)
    plain = report.write_report(con, tmp_path / "plain", AS_OF, actor="tester")
    _, plain_rows = _sheet_rows(plain.summary, SHEET_MAIN)
    assert rows == plain_rows  # the figures are the same; only the line names the office
    assert openpyxl.load_workbook(plain.summary)[SHEET_MAIN]["A2"].value.startswith("数据截至 ")
    assert "编制单位" not in plain.dashboard.read_text(encoding="utf-8")
    con.close()


def test_the_dashboard_words_a_failed_check_for_a_leader_and_keeps_its_cards_in_one_unit(store, tmp_path):
    """From a look at the page as a leader reads it: the quality table showed
    `expect_table_row_count_to_be_between` and `{"kwargs": {"min_value": 5521, …}}`; 追回金额 0.00 元 stood
    beside 352.46 万元; the trend's 14 lines shared 10 colours and one was the key `handed_over`."""
    con = connect(store)
    ensure_quality_schema(con)
    con.execute("insert into quality_results values ('run-3', '2026-11-21', 'beneficiaries', "
                "'expect_table_row_count_to_be_between', null, false, ?, current_timestamp)",
                [json.dumps({"kwargs": {"min_value": 5521, "max_value": 22082}, "observed": {"observed_value": 58}})])
    con.execute("insert into quality_results values ('run-3', '2026-11-21', 'payments', "
                "'expect_column_values_to_be_in_set', 'has_bank_account', false, ?, current_timestamp)",
                [json.dumps({"kwargs": {"value_set": [True], "mostly": 0.95},
                             "observed": {"element_count": 200, "unexpected_count": 30, "unexpected_percent": 15.0}})])
    data = report.collect(con, AS_OF)
    assert data["quality"]["failed"] == [
        {"extract": "待遇享受人员（beneficiaries）", "expectation": "本批行数", "column_name": "",
         "detail": "本批 58 行，应在 5,521–22,082 行之间（上一批的 0.5–2 倍）"},
        {"extract": "待遇发放明细（payments）", "expectation": "填写率不低于 95%", "column_name": "收款账号（bank_account）",
         "detail": "200 行中 30 行不符（占有值的行 15.00%）"}]
    data["headline"]["recovered"] = Decimal("950.00")  # (a first recovery beside 万元 amounts)
    assert data["headline"]["amount"] >= 100000
    page = report_dashboard.render(data)
    cards = re.findall(r'<div class="k">(涉及金额（全部）|在办涉及金额|追回金额)</div><div class="v">([^<]*)</div>', page)
    assert len(cards) == 3 and all(v.endswith(" 万元") for _, v in cards) and ("追回金额", "0.10 万元") in cards, cards
    con.execute("update runs set summary = json_merge_patch(summary, '{\"handed_over\": 2}')")
    trend = report_dashboard.fig_trend(report.collect(con, AS_OF)["history"])
    names = [t.name for t in trend.data]
    assert "移交疑点" in names and "handed_over" not in names
    colours = [t.line.color for t in trend.data]
    assert len(set(colours)) == len(colours) >= 3
    con.close()


def test_report_without_config_names_the_office_the_last_night_named(store, tmp_path, capsys):
    """A regression probe: `fundwatch report` without --config (as returns and reopen advise) drew the
    汇总表 and dashboard again without the 填报单位 the night had printed."""
    from pipelines import cli
    con = connect(store)
    con.execute("update runs set summary = json_merge_patch(summary, '{\"office\": \"江西省社会保险基金监督处\"}')"
                " where status = 'completed'")
    con.close()
    assert cli.main(["report", "--db", str(store), "--out", str(tmp_path / "out")]) == 0
    summary = next((tmp_path / "out").glob("汇总表_*.xlsx"))
    assert openpyxl.load_workbook(summary)[SHEET_MAIN]["A2"].value.startswith("填报单位：江西省社会保险基金监督处")
    assert "编制单位：江西省社会保险基金监督处" in (tmp_path / "out" / "dashboard.html").read_text(encoding="utf-8")
    given = tmp_path / "fundwatch.yaml"
    given.write_text("office: 赣州市社会保险基金监督科\n", encoding="utf-8")  # --config given: its own
    assert cli.main(["report", "--db", str(store), "--out", str(tmp_path / "out2"), "--config", str(given)]) == 0
    assert "编制单位：赣州市社会保险基金监督科" in (tmp_path / "out2" / "dashboard.html").read_text(encoding="utf-8")


def test_each_kind_of_failed_check_is_said_in_its_own_words():
    """A regression probe of the words: the ID check read as a code list with an English field; the
    'nothing left to check' row pointed at Data Docs it is not in; five repeats of one code hid the
    others; 122 of 1,000 read 12.3 % (GX's share is of the rows with a value); ranges unsaid."""
    from pipelines.quality import described
    assert described("payments", "expect_column_values_to_be_in_set", "person_id_valid",
                     {"kwargs": {"mostly": 0.99}, "observed": {"unexpected_count": 25, "element_count": 1025}}) == (
        "公民身份号码校验通过率不低于 99%", "公民身份号码（person_id）", "1,025 行中 25 行不符（2.44%）")
    assert described("payments", "rows_left_to_check", None, '{"rows_accepted": 120, "rows_left": 0}') == (
        "可检查的行", "", "本批入库的 120 行已全部被当晚稍后读入的一批替换，无行可查")
    said = described("payments", "expect_column_values_to_be_in_set", "agency_code",
                     {"kwargs": {}, "observed": {"unexpected_count": 6, "element_count": 100,
                                                 "partial_unexpected_list": ["369999001"] * 5 + ["3601**********"]}})[2]
    assert said.endswith("如 369999001、3601**********")
    gap = {"kwargs": {"min_value": 0, "max_value": 1, "mostly": 0.98},
           "observed": {"unexpected_count": 122, "element_count": 1000, "missing_count": 8, "unexpected_percent": 12.298}}
    assert described("payments", "expect_column_values_to_be_between", "period_gap", gap)[2] == (
        "992 行（有值的）中 122 行不符（12.30%）；应在 0–1 个月（相邻两期），允许至多 2% 的行在外")
    # a check stored before the empty rows were counted: GX's own share, said to be of the rows with a
    # value (worked from the total, 340 of 17,946 read 1.9 % against 2 % allowed on a failed check)
    old = {"kwargs": {"min_value": 0, "max_value": 1, "mostly": 0.98},
           "observed": {"element_count": 17946, "unexpected_count": 340, "unexpected_percent": 2.099}}
    assert described("payments", "expect_column_values_to_be_between", "period_gap", old)[2].startswith(
        "17,946 行中 340 行不符（占有值的行 2.10%）")
    # shares to two places, thresholds as written: a failed check never reads as within its allowance
    amount = {"kwargs": {"min_value": 0.01, "max_value": 100000, "mostly": 0.999},
              "observed": {"unexpected_count": 12, "element_count": 10000, "missing_count": 0}}
    assert described("payments", "expect_column_values_to_be_between", "amount", amount)[2] == (
        "10,000 行中 12 行不符（0.12%）；应在 0.01–100,000 元，允许至多 0.1% 的行在外")
    assert described("payments", "expect_column_values_to_be_in_set", "has_bank_account",
                     {"kwargs": {"mostly": 0.995}, "observed": {}})[0] == "填写率不低于 99.5%"
    # a not-null check's empty rows are its unexpected ones: of every row
    assert described("payments", "expect_column_values_to_not_be_null", "payment_id",
                     {"kwargs": {}, "observed": {"element_count": 100, "unexpected_count": 3,
                                                 "unexpected_percent": 3.0}})[2] == "100 行中 3 行不符（3.00%）"


def test_the_status_chart_is_as_tall_as_the_recovery_chart_beside_it(written):
    """A visual probe: the 360-point status chart beside a taller recovery chart left a white block."""
    _, paths = written
    page = paths.dashboard.read_text(encoding="utf-8")

    def height(div_id: str) -> int:
        start = page.index(f'"{div_id}",')  # (Plotly.newPlot("fig-…", data, layout): its layout's height)
        return int(re.search(r'"height":(\d+)', page[start:]).group(1))

    assert height("fig-recovery") > 360 and height("fig-by-status") == height("fig-recovery")


def test_a_major_case_whose_amount_fell_after_its_answer_shows_the_amount_its_class_is_by(store, tmp_path):
    """An oracle of the report's figures: a case answered 5 at 123,500.00 whose payment a later
    delivery corrected to 95,000.00 showed 95,000.00 元 beside 重大要情 and a report date — the class
    stands as verified until answered again (README), and the list now says by what amount."""
    con = connect(store)
    con.execute("update suspects set amount = 95000.00, verified_amount = 123500.00, major_class = '重大要情'"
                " where suspect_id = 'S00004'")
    page = report.write_report(con, tmp_path / "out", AS_OF, actor="tester").dashboard.read_text(encoding="utf-8")
    con.close()
    major = page[page.index("要情 / 重大要情（按报告期限）"):page.index("三、逾期与挂牌督办")]
    header = major[:major.index("S00004")]
    assert header.index("要情类别") < header.index("定级金额") < header.index("定级核实日期")
    row = major[major.index("S00004"):major.index("</tr>", major.index("S00004"))]
    assert row.index("95,000.00 元") < row.index("重大要情") < row.index("123,500.00 元")
    assert "定级金额 = 要情类别所依据的已核实损失" in page


def test_a_charts_hovers_are_in_its_axis_unit(store, tmp_path):
    """The by-rule charts' axis in 万元, and a small rule's hover in 元 beside the others' 万元: one
    unit a chart, as the cards."""
    rules_of = [{"rule_title": "大", "rule_id": "BIG", "amount": Decimal("1234567.00"), "recovered": Decimal("100000.00"),
                 "rate": Decimal("0.081"), "suspects": 3},
                {"rule_title": "小", "rule_id": "SMALL", "amount": Decimal("68449.00"), "recovered": Decimal("0"),
                 "rate": Decimal("0"), "suspects": 1}]
    for figure, amounts in ((report_dashboard._count_and_amount(rules_of, "rule_title", "按规则"), 1),
                            (report_dashboard.fig_recovery(rules_of), 0)):
        hovers = [c[1] for c in figure.data[amounts].customdata]
        assert hovers == ["6.84 万元", "123.46 万元"], hovers
    recovered = [c[1] for c in report_dashboard.fig_recovery(rules_of).data[1].customdata]
    assert recovered == ["0.00 万元（0.0%）", "10.00 万元（8.1%）"], recovered


def test_the_aging_figures_come_in_one_order_youngest_bucket_first(written):
    """A differential probe compared an incremental night's dashboard figures with a full night's:
    the aging rows came in another order (no ORDER BY; the chart re-sorts them)."""
    from pipelines import report_data

    con, _ = written
    con.execute("update suspects set first_detected_on = ? where rowid % 2 = 0", [AS_OF - timedelta(days=200)])
    got = report_data.aging(con, AS_OF)
    labels = [label for _, label in report_data.AGING_BUCKETS]
    keys = [(labels.index(r["bucket"]), r["status"]) for r in got]
    assert len(got) >= 2 and keys == sorted(keys)
