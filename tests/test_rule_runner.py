"""The runner knows no single rule: files in, parameters bound, broken files named, regions honoured."""

from __future__ import annotations

import dataclasses
import re
import shutil
from datetime import date
from decimal import Decimal

import pytest

from pipelines import resources, store
from pipelines.config import DEFAULTS, Config, _merge
from pipelines.rules import DetectReport, detect, load_rules, rule_texts

AS_OF = date(2026, 11, 21)
PERSON = "360702195001010011"

GOOD_RULE = """\
id: BIG_ONE_OFF
title: 大额一次性待遇
title_en: Large one-off payment
basis: 赣市人社发〔2020〕9号 第十八条
severity: low
subject: payment
params:
  floor: 1000
sql: |
  with big as (
      select * from payments where amount >= $floor and item = '丧葬补助金' and period <= $as_of_month
  )
  select payment_id as subject, person_id, agency_code, period as period_from, period as period_to,
         amount, to_json(struct_pack(payment_id := payment_id)) as evidence
  from big
"""


@pytest.fixture
def con(tmp_path):
    c = store.connect(tmp_path / "fw.duckdb")
    c.execute("insert into agencies values ('360702', '章贡区社保局', '360702', null, null, null, null, null),"
              " ('360781', '瑞金市社保局', '360781', null, null, null, null, null)")
    for pid, agency, amount, item in (("A1", "360702", "60000.00", "基本养老金"), ("A2", "360781", "60000.00", "基本养老金"),
                                      ("A3", "360781", "120000.00", "基本养老金"), ("A4", "360702", "5000.00", "丧葬补助金")):
        c.execute("insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount, agency_code) "
                  "values (?, ?, '110', ?, '202611', date '2026-11-10', ?, ?)", [pid, PERSON, item, Decimal(amount), agency])
    yield c
    c.close()


@pytest.fixture
def rules_copy(tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(resources.rules_dir(), target)
    return target


def found(con, rule_id):
    return {r[0]: r[1] for r in con.execute(
        "select subject, amount from detections where rule_id = ? order by subject", [rule_id]).fetchall()}


def config(**sections) -> Config:
    return Config(_merge(DEFAULTS, sections))


def test_shipped_rules_all_load_with_their_basis():
    rules, errors = load_rules()
    assert errors == []
    assert {r.id for r in rules} >= {
        "PAID_AFTER_DEATH", "PAID_DURING_CUSTODY", "FUND_PRIVATE_TRANSFER", "INCOME_ACCOUNT_OUTFLOW",
        "LARGE_PAYMENT_UNREVIEWED", "DUPLICATE_PENSION", "UNEMPLOYMENT_WHILE_WORKING", "PAID_WHILE_SUSPENDED",
        "CERTIFICATION_OVERDUE", "SHARED_BANK_ACCOUNT", "AMOUNT_OUTLIER"}
    texts = rule_texts()
    for r in rules:
        assert "号" in r.basis and "条" in r.basis, r.id  # document and article
        # a folded YAML line break is no space inside Chinese text: 《…办法（试行）》, not 《…办法 （试行）》
        assert not re.search(r"[^\x00-\x7f]\s+[^\x00-\x7f]", r.basis), (r.id, r.basis)
        assert texts[r.id] == (r.title, r.basis)  # what worklists and reports show
        assert r.subject in ("person", "payment", "transaction", "account")


def test_new_rule_file_is_picked_up_without_code_changes(con, rules_copy):
    (rules_copy / "BIG_ONE_OFF.yaml").write_text(GOOD_RULE, encoding="utf-8")
    report = detect(con, AS_OF, Config(), rules_dir=rules_copy)
    assert report.errors == []
    assert found(con, "BIG_ONE_OFF") == {"A4": Decimal("5000.00")}
    assert report.by_rule()["BIG_ONE_OFF"]["count"] == 1


def test_a_rule_file_read_again_in_one_process_is_what_it_says_then_and_not_what_a_caller_made_of_it(tmp_path):
    """Rule files' YAML is parsed once per text (a night reads each several times): an edited file
    is read as edited, a repeated key is refused each time, and what one caller changes in what it
    was given is not what the next is given."""
    from pipelines.config import load_yaml

    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "BIG_ONE_OFF.yaml").write_text(GOOD_RULE, encoding="utf-8")
    first, _ = load_rules(folder)
    load_yaml(GOOD_RULE)["params"]["floor"] = 99  # a caller changing its copy
    assert load_yaml(GOOD_RULE)["params"] == {"floor": 1000}
    again, _ = load_rules(folder)
    assert [r.params for r in again] == [r.params for r in first] == [{"floor": 1000}]
    (folder / "BIG_ONE_OFF.yaml").write_text(GOOD_RULE.replace("floor: 1000", "floor: 2000"), encoding="utf-8")
    assert [r.params for r in load_rules(folder)[0]] == [{"floor": 2000}]
    (folder / "BIG_ONE_OFF.yaml").write_text(GOOD_RULE + "title: 又一个标题\n", encoding="utf-8")
    for _ in range(2):
        loaded, errors = load_rules(folder)
        assert loaded == [] and "found the key 'title' twice" in errors[0].message
    assert rule_texts(folder)["BIG_ONE_OFF"].title == "又一个标题"  # named all the same, by its last title


def test_broken_rule_files_are_reported_by_name_and_the_others_still_run(con, rules_copy):
    (rules_copy / "BAD_YAML.yaml").write_text("id: BAD_YAML\nsql: [unclosed\n", encoding="utf-8")
    (rules_copy / "NO_SQL.yaml").write_text(GOOD_RULE.split("sql:")[0].replace("BIG_ONE_OFF", "NO_SQL"), encoding="utf-8")
    (rules_copy / "BAD_SQL.yaml").write_text(
        GOOD_RULE.replace("BIG_ONE_OFF", "BAD_SQL").replace("from payments", "from no_such_table"), encoding="utf-8")
    (rules_copy / "WRONG_COLUMNS.yaml").write_text(
        GOOD_RULE.replace("BIG_ONE_OFF", "WRONG_COLUMNS").replace("amount, to_json", "to_json"), encoding="utf-8")
    # a key given twice: the second sql would silently replace the first
    (rules_copy / "TWO_SQL.yaml").write_text(GOOD_RULE.replace("BIG_ONE_OFF", "TWO_SQL") + "sql: select 1\n",
                                             encoding="utf-8")
    report = detect(con, AS_OF, Config(), rules_dir=rules_copy)
    by_file = {e.rule_file: e.message for e in report.errors}
    assert set(by_file) == {"BAD_YAML.yaml", "NO_SQL.yaml", "BAD_SQL.yaml", "WRONG_COLUMNS.yaml", "TWO_SQL.yaml"}
    assert "YAML" in by_file["BAD_YAML.yaml"]
    assert "found the key 'sql' twice" in by_file["TWO_SQL.yaml"]
    assert "sql" in by_file["NO_SQL.yaml"]
    assert "no_such_table" in by_file["BAD_SQL.yaml"]
    assert "exactly" in by_file["WRONG_COLUMNS.yaml"]
    assert found(con, "LARGE_PAYMENT_UNREVIEWED") == {"A1": Decimal("60000.00"), "A2": Decimal("60000.00"),
                                                      "A3": Decimal("120000.00")}
    assert "BAD_SQL" in report.summary() and "ERROR" in report.summary()


def test_sql_using_an_undeclared_parameter_is_refused(rules_copy):
    (rules_copy / "UNDECLARED.yaml").write_text(
        GOOD_RULE.replace("BIG_ONE_OFF", "UNDECLARED").replace("$floor", "$ceiling"), encoding="utf-8")
    rules, errors = load_rules(rules_copy)
    assert [(e.rule_file, "$ceiling" in e.message) for e in errors] == [("UNDECLARED.yaml", True)]
    assert "UNDECLARED" not in {r.id for r in rules}


@pytest.mark.parametrize("bounds, said", [
    ("param_bounds:\n  floor: [2000, null]\n", "params.floor: the default 1000 is outside its param_bounds: "
                                                "expected a number of at least 2000"),
    ("param_bounds:\n  floor: 1\n", "param_bounds.floor: expected [low, high] (null for an open end), got 1"),
    ("param_bounds:\n  ceiling: [0, 1]\n", "param_bounds.ceiling: not a declared numeric parameter"),
])
def test_a_rule_files_parameter_bounds_are_checked_with_its_default(rules_copy, bounds, said):
    (rules_copy / "BOUNDED.yaml").write_text(GOOD_RULE.replace("BIG_ONE_OFF", "BOUNDED").replace("sql: |", bounds + "sql: |"),
                                             encoding="utf-8")
    rules, errors = load_rules(rules_copy)
    assert [(e.rule_file, said in e.message) for e in errors] == [("BOUNDED.yaml", True)], errors


def test_a_parameter_within_the_rule_files_bounds_is_taken(rules_copy):
    (rules_copy / "BOUNDED.yaml").write_text(
        GOOD_RULE.replace("BIG_ONE_OFF", "BOUNDED").replace("sql: |", "param_bounds:\n  floor: [500, 5000]\nsql: |"),
        encoding="utf-8")
    [rule] = [r for r in load_rules(rules_copy)[0] if r.id == "BOUNDED"]
    assert rule.param_bounds == {"floor": (500, 5000)}


def test_config_naming_an_unknown_parameter_is_reported_for_that_rule(con):
    report = detect(con, AS_OF, config(rules={"LARGE_PAYMENT_UNREVIEWED": {"threshold": 1}}))
    assert [e.rule_file for e in report.errors] == ["LARGE_PAYMENT_UNREVIEWED.yaml"]
    assert "threshold" in report.errors[0].message
    assert len(report.results) == len(load_rules()[0])  # every other rule ran


def test_parameter_override_and_region_override(con):
    detect(con, AS_OF, config(rules={"LARGE_PAYMENT_UNREVIEWED": {"large_payment_threshold": 100000}}))
    assert set(found(con, "LARGE_PAYMENT_UNREVIEWED")) == {"A3"}
    # 瑞金 (360781) raises its own threshold; 章贡区 keeps the default 50000
    detect(con, AS_OF, config(regions={"360781": {"rules": {"LARGE_PAYMENT_UNREVIEWED":
                                                            {"large_payment_threshold": 100000}}}}))
    assert set(found(con, "LARGE_PAYMENT_UNREVIEWED")) == {"A1", "A3"}
    detect(con, AS_OF, config(regions={"360702": {"rules": {"LARGE_PAYMENT_UNREVIEWED":
                                                            {"large_payment_threshold": 100000}}}}))
    assert set(found(con, "LARGE_PAYMENT_UNREVIEWED")) == {"A2", "A3"}


def test_disabled_rules_are_skipped(con):
    report = detect(con, AS_OF, config(disabled_rules=["LARGE_PAYMENT_UNREVIEWED"]))
    assert "LARGE_PAYMENT_UNREVIEWED" in report.skipped
    assert "LARGE_PAYMENT_UNREVIEWED" not in report.by_rule()
    assert found(con, "LARGE_PAYMENT_UNREVIEWED") == {}


def test_report_gives_count_and_amount_per_rule(con):
    report = detect(con, AS_OF, Config())
    assert isinstance(report, DetectReport)
    row = report.by_rule()["LARGE_PAYMENT_UNREVIEWED"]
    assert (row["count"], row["amount"]) == (3, Decimal("240000.00"))
    assert report.total_count >= 3
    assert "240,000.00" in report.summary()


def test_the_parameters_a_rule_ran_with_are_kept_with_a_listed_account_masked(con):
    # runs.summary keeps them: a 财政专户 typed into config is an account like any other there
    report = detect(con, AS_OF, config(fiscal_accounts=["6222360023775982595"],
                                       rules={"LARGE_PAYMENT_UNREVIEWED": {"large_payment_threshold": 30000}}))
    ran = {r.rule_id: r.parameters for r in report.results}
    assert ran["INCOME_ACCOUNT_OUTFLOW"] == [{"params": {"fiscal_accounts": ["6222***********2595"]}, "regions": None}]
    assert ran["LARGE_PAYMENT_UNREVIEWED"][0]["params"]["large_payment_threshold"] == 30000


def test_a_duckdb_message_cut_inside_a_character_is_read_as_far_as_it_goes_and_names_the_rules_line():
    """Evidence cast to JSON from a struct's text: DuckDB quoted the input cut inside a Chinese
    character, and the author was told `'utf-8' codec can't decode byte 0xe6` (as if the rule file
    were at fault) — for `2 个月`, not for `25 个月`."""
    import duckdb as _duckdb

    from pipelines.rules import Rule, _first_line

    sql = ("select 1 as a,\n       cast(cast(struct_pack(summary := format('累计领取失业保险金 {} 个月，超过最长期限 {} 个月，"
           "超期 {} 个月合计 {} 元', 2, 24, 1, '100.00'), a := 1) as varchar) as json) as evidence")
    con = _duckdb.connect()
    with pytest.raises(UnicodeDecodeError) as raised:  # DuckDB's own message, as the night meets it
        con.execute(sql).fetchall()
    rule = Rule(id="OWN", title="t", title_en="t", basis="b", severity="high", subject="person", description="d",
                params={}, sql=sql)
    said = _first_line(raised.value, rule)
    assert said.startswith("Conversion Error: Malformed JSON at byte 1 of input: unexpected character.  Input: "
                           "\"{'summary': 累计领取失业保险金 2 个…"), said
    assert "codec" not in said
    with pytest.raises(_duckdb.Error) as missing:
        con.execute("select a,\n  b\nfrom (select 1 as a) t").fetchall()
    assert _first_line(missing.value, dataclasses.replace(rule, sql="select a,\n  b\nfrom (select 1 as a) t")) == (
        'Binder Error: Referenced column "b" not found in FROM clause! Candidate bindings: "a" '
        "(at line 2 of the query)")
    # a statement of the runner's own (the rule's text does not hold its line) is not named as the rule's
    assert "of the query" not in _first_line(missing.value, rule)
