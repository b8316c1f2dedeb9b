"""The deterministic rules of CONTRACT.md §2, each proved on planted cases beside their look-alikes.

Rows go straight into the extract tables of a real DuckDB store; the shipped rules/*.yaml run
through the real runner.
"""

from __future__ import annotations

import itertools
import json
from datetime import date
from decimal import Decimal

import pytest

from pipelines import store
from pipelines.config import Config, DEFAULTS, _merge, load_config
from pipelines.rules import detect, load_rules

AS_OF = date(2026, 11, 21)
_ids = itertools.count(1)


@pytest.fixture
def con(tmp_path):
    c = store.connect(tmp_path / "fw.duckdb")
    yield c
    c.close()


def put(con, table: str, **cols) -> None:
    names = ", ".join(cols)
    marks = ", ".join("?" for _ in cols)
    con.execute(f"insert into {table} ({names}) values ({marks})", list(cols.values()))


def pay(con, person_id, period, amount, item="基本养老金", insurance_type="110", agency="360702",
        paid_on=None, payment_id=None, bank_account=None, **more) -> str:
    payment_id = payment_id or f"P{next(_ids):06d}"
    if paid_on is None:
        paid_on = date(int(period[:4]), int(period[4:]), 10)
    put(con, "payments", payment_id=payment_id, person_id=person_id, insurance_type=insurance_type, item=item,
        period=period, paid_on=paid_on, amount=Decimal(str(amount)), agency_code=agency,
        bank_account=bank_account or f"62170000{person_id[-6:]}", **more)
    return payment_id


def run(con, rule_id, config: Config | None = None, as_of=AS_OF) -> dict:
    rules, errors = load_rules()
    assert not errors
    rule = [r for r in rules if r.id == rule_id]
    report = detect(con, as_of, config or Config(), rules=rule)
    assert not report.errors, report.errors
    rows = con.execute("select subject, person_id, agency_code, period_from, period_to, amount, evidence "
                       "from detections where rule_id = ?", [rule_id]).fetchall()
    return {r[0]: {"person_id": r[1], "agency_code": r[2], "period_from": r[3], "period_to": r[4],
                   "amount": r[5], "evidence": json.loads(r[6])} for r in rows}


def months(first: str, last: str) -> list[str]:
    y, m = int(first[:4]), int(first[4:])
    out = []
    while f"{y}{m:02d}" <= last:
        out.append(f"{y}{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


A = "360702195001010011"  # planted
B = "360702195202020022"  # look-alike
C = "360702195303030033"

# ---------------------------------------------------------------- PAID_AFTER_DEATH


def test_month_of_death_is_payable(con):
    put(con, "deaths", person_id=A, death_date=date(2026, 3, 15), source="公安")
    for period in months("202602", "202605"):
        pay(con, A, period, "3000.00", paid_on=date(2026, 4, 10) if period == "202603" else None)
    found = run(con, "PAID_AFTER_DEATH")
    assert found[A]["amount"] == Decimal("6000.00")  # 202604 + 202605; 202603 (paid after death) is payable
    assert (found[A]["period_from"], found[A]["period_to"]) == ("202604", "202605")
    assert found[A]["evidence"]["death_month"] == "202603"


def test_one_off_items_never_after_death(con):
    put(con, "deaths", person_id=A, death_date=date(2026, 3, 15), source="民政")
    pay(con, A, "202605", "8000.00", item="丧葬补助金")
    pay(con, A, "202605", "2000.00", item="一次性抚恤金")
    pay(con, A, "202605", "1500.00", item="伤残津贴", insurance_type="410")
    put(con, "deaths", person_id=B, death_date=date(2026, 3, 15), source="民政")
    pay(con, B, "202605", "8000.00", item="丧葬补助金")
    found = run(con, "PAID_AFTER_DEATH")
    assert found[A]["amount"] == Decimal("1500.00")
    assert B not in found


def test_item_outside_both_lists_counts_as_recurring(con):
    put(con, "deaths", person_id=A, death_date=date(2026, 3, 15), source="卫健")
    pay(con, A, "202604", "120.00", item="高龄津贴")
    assert run(con, "PAID_AFTER_DEATH")[A]["amount"] == Decimal("120.00")


def test_earliest_death_date_across_sources(con):
    put(con, "deaths", person_id=A, death_date=date(2026, 5, 2), source="公安")
    put(con, "deaths", person_id=A, death_date=date(2026, 3, 20), source="民政")
    for period in months("202603", "202605"):
        pay(con, A, period, "2500.50")
    found = run(con, "PAID_AFTER_DEATH")
    assert found[A]["amount"] == Decimal("5001.00")
    assert [s["source"] for s in found[A]["evidence"]["death_sources"]] == ["民政", "公安"]


def test_reversal_after_death_is_netted(con):
    put(con, "deaths", person_id=A, death_date=date(2026, 3, 15), source="公安")
    pay(con, A, "202604", "3000.00")
    pay(con, A, "202604", "-3000.00")  # 冲正
    pay(con, A, "202605", "3000.00")
    put(con, "deaths", person_id=B, death_date=date(2026, 3, 15), source="公安")
    pay(con, B, "202604", "3000.00")
    pay(con, B, "202604", "-3000.00")
    found = run(con, "PAID_AFTER_DEATH")
    assert found[A]["amount"] == Decimal("3000.00")
    assert B not in found  # fully reversed: nothing at risk


# ---------------------------------------------------------------- PAID_DURING_CUSTODY


def test_custody_months_of_entry_and_release_are_payable(con):
    put(con, "imprisonments", person_id=A, sentence_type="有期徒刑", custody_start=date(2026, 2, 10),
        custody_end=date(2026, 6, 5))
    for period in months("202601", "202607"):
        pay(con, A, period, "1000.00")
    found = run(con, "PAID_DURING_CUSTODY")
    assert found[A]["amount"] == Decimal("3000.00")  # 202603, 202604, 202605
    assert (found[A]["period_from"], found[A]["period_to"]) == ("202603", "202605")


def test_still_held_counts_up_to_as_of_month(con):
    put(con, "imprisonments", person_id=A, sentence_type="拘役", custody_start=date(2026, 8, 1))
    for period in months("202608", "202612"):
        pay(con, A, period, "1000.00")
    found = run(con, "PAID_DURING_CUSTODY")
    assert (found[A]["period_from"], found[A]["period_to"], found[A]["amount"]) == ("202609", "202611", Decimal("3000.00"))


def test_non_custodial_sentence_does_not_fire(con):
    for person, sentence in ((A, "无期徒刑"), (B, "缓刑"), (C, "暂予监外执行")):
        put(con, "imprisonments", person_id=person, sentence_type=sentence, custody_start=date(2026, 2, 10))
        pay(con, person, "202605", "1000.00")
    found = run(con, "PAID_DURING_CUSTODY")
    assert set(found) == {A}


def test_custody_only_pension_recurring_payments(con):
    put(con, "imprisonments", person_id=A, sentence_type="有期徒刑", custody_start=date(2026, 2, 10))
    pay(con, A, "202604", "1000.00", insurance_type="120")
    pay(con, A, "202604", "800.00", insurance_type="170")
    pay(con, A, "202604", "1500.00", item="失业保险金", insurance_type="210")
    pay(con, A, "202604", "2000.00", item="伤残津贴", insurance_type="410")
    pay(con, A, "202604", "5000.00", item="个人账户余额一次性支付", insurance_type="110")
    assert run(con, "PAID_DURING_CUSTODY")[A]["amount"] == Decimal("1800.00")


def test_overlapping_custody_spells_count_a_payment_once(con):
    put(con, "imprisonments", person_id=A, sentence_type="拘役", custody_start=date(2026, 1, 5), custody_end=date(2026, 9, 1))
    put(con, "imprisonments", person_id=A, sentence_type="有期徒刑", custody_start=date(2026, 3, 5))
    pay(con, A, "202605", "1000.00")
    found = run(con, "PAID_DURING_CUSTODY")
    assert found[A]["amount"] == Decimal("1000.00")
    assert len(found[A]["evidence"]["custody_spells"]) == 2


# ---------------------------------------------------------------- FUND_PRIVATE_TRANSFER


def txn(con, txn_id, amount, at, direction="支", kind="对私", account="3601001", account_type="支出户",
        counterparty=None, agency="360702", **more):
    put(con, "fund_transactions", txn_id=txn_id, account_no=account, account_type=account_type, agency_code=agency,
        txn_at=at, direction=direction, amount=Decimal(str(amount)), counterparty_account=counterparty,
        counterparty_kind=kind, **more)


def test_private_transfer_matching_payment_within_5_days_is_not_suspect(con):
    pay(con, A, "202610", "1800.00", paid_on=date(2026, 10, 29), bank_account="ACC-A")
    txn(con, "T-matched", "1800.00", "2026-11-03 09:00:00", counterparty="ACC-A")  # 5 days: a benefit payment
    pay(con, B, "202610", "1800.00", paid_on=date(2026, 10, 28), bank_account="ACC-B")
    txn(con, "T-6days", "1800.00", "2026-11-03 09:00:00", counterparty="ACC-B")  # 6 days: not matched
    txn(con, "T-other-amount", "1800.01", "2026-11-03 09:00:00", counterparty="ACC-A")
    txn(con, "T-no-account", "500.00", "2026-11-03 09:00:00", counterparty=None)
    txn(con, "T-public", "1800.00", "2026-11-03 09:00:00", kind="对公", counterparty="ACC-X")
    txn(con, "T-incoming", "1800.00", "2026-11-03 09:00:00", direction="收", counterparty="ACC-X")
    found = run(con, "FUND_PRIVATE_TRANSFER")
    assert set(found) == {"T-6days", "T-other-amount", "T-no-account"}
    assert found["T-6days"]["amount"] == Decimal("1800.00")
    assert found["T-6days"]["person_id"] is None
    assert found["T-6days"]["period_from"] == "202611"


def test_a_reversed_outflow_is_no_transfer_and_no_income_account_outflow(con):
    # 冲正: a 支 row of a negative amount brings money back; one of zero moves nothing. Neither rule
    # raises them (a transaction's amount at risk is never zero or negative); the outflow itself is raised.
    txn(con, "T-out", "500.00", "2026-11-03 09:00:00", counterparty="ACC-P", account="INCOME-1", account_type="收入户")
    txn(con, "T-reversal", "-500.00", "2026-11-04 09:00:00", counterparty="ACC-P", account="INCOME-1",
        account_type="收入户")
    txn(con, "T-zero", "0.00", "2026-11-04 10:00:00", counterparty="ACC-P", account="INCOME-1", account_type="收入户")
    assert set(run(con, "FUND_PRIVATE_TRANSFER")) == {"T-out"}
    assert set(run(con, "INCOME_ACCOUNT_OUTFLOW")) == {"T-out"}


# ---------------------------------------------------------------- INCOME_ACCOUNT_OUTFLOW


def test_income_account_outflow_only_to_non_fiscal_accounts(con):
    txn(con, "T-fiscal-seen", "100.00", "2026-11-01 10:00:00", direction="收", kind="对公",
        account="FISCAL-1", account_type="财政专户", counterparty="INCOME-1")
    txn(con, "T-to-fiscal", "90000.00", "2026-11-02 10:00:00", kind="对公", account="INCOME-1",
        account_type="收入户", counterparty="FISCAL-1")
    txn(con, "T-to-config-fiscal", "1000.00", "2026-11-02 10:00:00", kind="对公", account="INCOME-1",
        account_type="收入户", counterparty="FISCAL-2")
    txn(con, "T-to-company", "12345.67", "2026-11-02 11:00:00", kind="对公", account="INCOME-1",
        account_type="收入户", counterparty="CORP-9", agency="360703")
    txn(con, "T-spending-account", "500.00", "2026-11-02 11:00:00", kind="对公", account="SPEND-1",
        account_type="支出户", counterparty="CORP-9")
    txn(con, "T-income-in", "500.00", "2026-11-02 11:00:00", direction="收", kind="对公", account="INCOME-1",
        account_type="收入户", counterparty="CORP-9")
    config = Config(_merge(DEFAULTS, {"fiscal_accounts": ["FISCAL-2"]}))
    found = run(con, "INCOME_ACCOUNT_OUTFLOW", config)
    assert set(found) == {"T-to-company"}
    assert found["T-to-company"]["amount"] == Decimal("12345.67")
    assert found["T-to-company"]["agency_code"] == "360703"  # the account-holding agency
    assert "T-to-config-fiscal" in run(con, "INCOME_ACCOUNT_OUTFLOW")  # without the config entry
    # the rule's own list adds to the config's (both are "listed in config"); it does not replace it
    both = Config(_merge(DEFAULTS, {"fiscal_accounts": ["FISCAL-2"],
                                    "rules": {"INCOME_ACCOUNT_OUTFLOW": {"fiscal_accounts": ["CORP-9"]}}}))
    assert set(run(con, "INCOME_ACCOUNT_OUTFLOW", both)) == set()


def test_a_fiscal_account_listed_in_groups_is_the_stored_digits(con):
    # ingest stores an account as its digits; an operator copies the 财政专户 from a bank letter
    txn(con, "T-to-listed", "1000.00", "2026-11-02 10:00:00", kind="对公", account="INCOME-1",
        account_type="收入户", counterparty="36070000000000000001")
    txn(con, "T-to-lettered", "1000.00", "2026-11-02 10:00:00", kind="对公", account="INCOME-1",
        account_type="收入户", counterparty="FISCAL-2")
    assert set(run(con, "INCOME_ACCOUNT_OUTFLOW")) == {"T-to-listed", "T-to-lettered"}
    listed = Config(_merge(DEFAULTS, {"fiscal_accounts": ["3607 0000 0000 0000 0001", " FISCAL-2 "]}))
    assert set(run(con, "INCOME_ACCOUNT_OUTFLOW", listed)) == set()
    other = Config(_merge(DEFAULTS, {"fiscal_accounts": ["3607-0000-0000-0000-0002"]}))
    assert set(run(con, "INCOME_ACCOUNT_OUTFLOW", other)) == {"T-to-listed", "T-to-lettered"}


def test_a_fiscal_account_with_a_leading_zero_written_unquoted_is_that_account(con, tmp_path):
    # YAML 1.1 reads 01234567 as the octal number 342391: the listed 财政专户 matched nothing and
    # every transfer to it became a suspect. Digits with a leading zero are the text written.
    txn(con, "T-to-zero-led", "1000.00", "2026-11-02 10:00:00", kind="对公", account="INCOME-1",
        account_type="收入户", counterparty="01234567")
    txn(con, "T-to-other", "1000.00", "2026-11-02 10:00:00", kind="对公", account="INCOME-1",
        account_type="收入户", counterparty="342391")
    path = tmp_path / "fundwatch.yaml"
    path.write_text("fiscal_accounts: [01234567]\nrules:\n  INCOME_ACCOUNT_OUTFLOW:\n"
                    "    fiscal_accounts:\n      - 0777\n", encoding="utf-8")
    config = load_config(path)
    assert config["fiscal_accounts"] == ["01234567"]
    assert config["rules"]["INCOME_ACCOUNT_OUTFLOW"]["fiscal_accounts"] == ["0777"]
    assert set(run(con, "INCOME_ACCOUNT_OUTFLOW", config)) == {"T-to-other"}
    # a number typed so (read as octal before: 010 days were 8) is refused saying why
    for setting in ("casework:\n  verify_working_days: 010\n", "rule_time_limit_minutes: 030\n",
                    "rules:\n  LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 050000}\n"):
        path.write_text(setting, encoding="utf-8")
        with pytest.raises(SystemExit) as refused:
            load_config(path)
        assert "leading zero" in str(refused.value) and "write the number without it" in str(refused.value), \
            str(refused.value)


# ---------------------------------------------------------------- LARGE_PAYMENT_UNREVIEWED


def test_same_day_review_is_a_review(con):
    paid = date(2026, 11, 10)
    pay(con, A, "202611", "60000.00", payment_id="same-day", paid_on=paid, handled_by="张三", reviewed_by="李四",
        reviewed_at="2026-11-10 17:59:00")
    pay(con, A, "202611", "60000.00", payment_id="next-day", paid_on=paid, handled_by="张三", reviewed_by="李四",
        reviewed_at="2026-11-11 08:00:00")
    found = run(con, "LARGE_PAYMENT_UNREVIEWED")
    assert set(found) == {"next-day"}
    assert found["next-day"]["amount"] == Decimal("60000.00")
    assert found["next-day"]["person_id"] == A


def test_reviewer_empty_or_same_as_handler_fires(con):
    paid = date(2026, 11, 10)
    pay(con, A, "202611", "50000.00", payment_id="no-reviewer", paid_on=paid, handled_by="张三", reviewed_by=" ")
    pay(con, A, "202611", "70000.00", payment_id="self-review", paid_on=paid, handled_by="张三", reviewed_by="张三",
        reviewed_at="2026-11-09 10:00:00")
    pay(con, A, "202611", "49999.99", payment_id="below", paid_on=paid, handled_by="张三")
    pay(con, A, "202611", "80000.00", payment_id="no-review-time", paid_on=paid, handled_by="张三", reviewed_by="李四")
    pay(con, A, "202611", "80000.00", payment_id="reviewed", paid_on=paid, handled_by="张三", reviewed_by="李四",
        reviewed_at="2026-11-09 10:00:00")
    found = run(con, "LARGE_PAYMENT_UNREVIEWED")
    # threshold is inclusive; a reviewer without a review time is none of CONTRACT §2's three cases
    assert set(found) == {"no-reviewer", "self-review"}
    strict = Config(_merge(DEFAULTS, {"rules": {"LARGE_PAYMENT_UNREVIEWED": {"review_time_required": True}}}))
    assert set(run(con, "LARGE_PAYMENT_UNREVIEWED", strict)) == {"no-reviewer", "self-review", "no-review-time"}
    raised = Config(_merge(DEFAULTS, {"rules": {"LARGE_PAYMENT_UNREVIEWED": {"large_payment_threshold": 75000}}}))
    assert set(run(con, "LARGE_PAYMENT_UNREVIEWED", raised)) == set()


def test_a_reviewer_is_the_handler_however_the_name_is_typed(con):
    paid, at = date(2026, 11, 10), "2026-11-09 10:00:00"
    for pid, handler, reviewer in (("spaced", "王五", "王 五"), ("full-width-space", "王　五", "王五"),
                                   ("latin-case", "Wang Wu", "wang wu"), ("no-break-space", "王\u00a0五", "王五"),
                                   ("zero-width-space", "王\u200b五", "王五"), ("full-width-latin", "Ｗａｎｇ", "Wang"),
                                   ("bullet", "阿依古丽·买买提", "阿依古丽•买买提"),
                                   ("katakana-dot", "阿依古丽·买买提", "阿依古丽・买买提"),
                                   ("invisible-reviewer", "王五", "\u200b"), ("control", "王五", "王\x0b五\x1f"),
                                   ("other", "王五", "王六"), ("other-minority", "阿依古丽·买买提", "阿依古丽·吐尔逊"),
                                   # from a probe of rare names: forms NFC makes one, other dots, a
                                   # variation selector; two 生僻字 or private-use characters stay two
                                   ("greek-ano-teleia", "阿依古丽·买买提", "阿依古丽\u0387买买提"),
                                   ("small-full-stop", "阿依古丽·买买提", "阿依古丽﹒买买提"),
                                   ("word-separator-dot", "阿依古丽·买买提", "阿依古丽⸱买买提"),
                                   ("compatibility", "金丽", "\uf90a丽"), ("decomposed", "José", "Jose\u0301"),
                                   ("variation-selector", "邊", "邊\U000E0101"),
                                   ("other-rare", "王𠈌", "王𡓄"), ("other-private", "张\ue000", "张\ue001")):
        pay(con, A, "202611", "60000.00", payment_id=pid, paid_on=paid, handled_by=handler, reviewed_by=reviewer,
            reviewed_at=at)
    found = run(con, "LARGE_PAYMENT_UNREVIEWED")
    assert set(found) == {"spaced", "full-width-space", "latin-case", "no-break-space", "zero-width-space",
                          "full-width-latin", "bullet", "katakana-dot", "invisible-reviewer", "control",
                          "greek-ano-teleia", "small-full-stop", "word-separator-dot", "compatibility", "decomposed",
                          "variation-selector"}
    assert found["spaced"]["evidence"]["finding"] == "复核人与经办人为同一人"
    assert found["invisible-reviewer"]["evidence"]["finding"] == "无复核人"
    # the bench's pandas baseline (written as an analyst would) takes the same names for one person
    from pipelines import bench_pandas
    frame = con.execute("select * from payments").df()
    assert set(bench_pandas.large_payment_unreviewed(frame)) == set(found)


# ---------------------------------------------------------------- DUPLICATE_PENSION


def test_duplicate_amount_is_all_but_largest(con):
    pay(con, A, "202601", "3000.00", insurance_type="110", agency="360702")
    pay(con, A, "202601", "200.00", insurance_type="170", agency="360703")
    pay(con, A, "202601", "500.00", insurance_type="110", agency="360703")
    pay(con, A, "202602", "3000.00", insurance_type="110", agency="360702")
    pay(con, A, "202603", "3000.00", insurance_type="110", agency="360702")
    pay(con, A, "202603", "3000.00", insurance_type="120", agency="360702")
    found = run(con, "DUPLICATE_PENSION")
    assert found[A]["amount"] == Decimal("3700.00")  # 202601: 200 + 500; 202603: 3000
    assert (found[A]["period_from"], found[A]["period_to"]) == ("202601", "202603")
    assert [p["period"] for p in found[A]["evidence"]["periods"]] == ["202601", "202603"]


def test_same_stream_twice_is_not_duplicate_pension(con):
    pay(con, B, "202601", "3000.00")
    pay(con, B, "202601", "3000.00")  # same (110, agency): a different problem, not this rule
    pay(con, B, "202602", "3000.00", insurance_type="170")  # other stream, other month
    pay(con, C, "202601", "3000.00")
    pay(con, C, "202601", "800.00", item="伤残津贴", insurance_type="410")
    assert run(con, "DUPLICATE_PENSION") == {}


def test_duplicate_stream_reversed_to_zero_is_not_paid(con):
    pay(con, A, "202601", "3000.00", insurance_type="110")
    pay(con, A, "202601", "900.00", insurance_type="170", agency="360799")
    pay(con, A, "202601", "-900.00", insurance_type="170", agency="360799")
    pay(con, A, "202602", "3000.00", insurance_type="110")
    pay(con, A, "202602", "900.00", insurance_type="170", agency="360799")
    found = run(con, "DUPLICATE_PENSION")
    assert found[A]["amount"] == Decimal("900.00")
    assert found[A]["agency_code"] == "360702"  # the latest, then largest payment's agency


def test_a_duplicate_pensions_agency_is_one_of_the_streams_it_is_about(con):
    """From a probe of the rules: with a third stream paid and reversed in full that month, its
    agency (the month's largest payment, +5000) got the suspect, whose evidence did not name it."""
    pay(con, A, "202610", "3000.00", insurance_type="110", agency="360102")
    pay(con, A, "202610", "5000.00", insurance_type="110", agency="360721")
    pay(con, A, "202610", "-5000.00", insurance_type="110", agency="360721")
    pay(con, A, "202610", "2500.00", insurance_type="110", agency="360730")
    found = run(con, "DUPLICATE_PENSION")
    assert found[A]["amount"] == Decimal("2500.00")
    assert [s["agency_code"] for s in found[A]["evidence"]["periods"][0]["streams"]] == ["360102", "360730"]
    assert found[A]["agency_code"] == "360102"  # the latest, then largest payment of those streams


# ---------------------------------------------------------------- UNEMPLOYMENT_WHILE_WORKING


def test_unemployment_benefit_with_employer_contribution_or_pension(con):
    for period in months("202603", "202606"):
        pay(con, A, period, "1800.00", item="失业保险金", insurance_type="210")
    put(con, "contributions", person_id=A, employer_id="E001", insurance_type="110", period="202603",
        amount=Decimal("500.00"))
    put(con, "contributions", person_id=A, employer_id=None, insurance_type="110", period="202604",
        amount=Decimal("500.00"))  # flexible employment (灵活就业): no employer, not working for one
    pay(con, A, "202605", "2600.00", item="基本养老金", insurance_type="110")
    found = run(con, "UNEMPLOYMENT_WHILE_WORKING")
    assert found[A]["amount"] == Decimal("3600.00")  # 202603 + 202605 only
    assert (found[A]["period_from"], found[A]["period_to"]) == ("202603", "202605")


# ---------------------------------------------------------------- PAID_WHILE_SUSPENDED


def test_paid_while_suspended_same_insurance_type_after_status_month(con):
    put(con, "beneficiaries", person_id=A, name="王五", insurance_type="110", agency_code="360702", status="暂停",
        status_date=date(2026, 5, 20))
    pay(con, A, "202605", "2000.00")  # the month of the status change is payable
    pay(con, A, "202606", "2000.00")
    pay(con, A, "202607", "2000.00")
    pay(con, A, "202607", "300.00", insurance_type="170")  # another insurance type
    pay(con, A, "202607", "5000.00", item="个人账户余额一次性支付")
    put(con, "beneficiaries", person_id=B, name="赵六", insurance_type="110", agency_code="360702", status="正常",
        status_date=date(2026, 5, 20))
    pay(con, B, "202607", "2000.00")
    found = run(con, "PAID_WHILE_SUSPENDED")
    assert set(found) == {A}
    assert found[A]["amount"] == Decimal("4000.00")
    assert (found[A]["period_from"], found[A]["period_to"]) == ("202606", "202607")


# ---------------------------------------------------------------- CERTIFICATION_OVERDUE


def beneficiary(con, person, last_certified_on=None, start_period="202001", status="正常", insurance_type="110"):
    put(con, "beneficiaries", person_id=person, name="某", insurance_type=insurance_type, agency_code="360702",
        status=status, start_period=start_period, last_certified_on=last_certified_on)


def test_certification_overdue_amount_is_periods_after_lapse_month(con):
    beneficiary(con, A, last_certified_on=date(2025, 9, 1))  # lapse 2026-09-01 -> month 202609
    for period in months("202607", "202611"):
        pay(con, A, period, "2100.00")
    found = run(con, "CERTIFICATION_OVERDUE")
    assert found[A]["amount"] == Decimal("4200.00")
    assert (found[A]["period_from"], found[A]["period_to"]) == ("202610", "202611")


def test_certification_exactly_365_days_is_not_overdue(con):
    beneficiary(con, A, last_certified_on=date(2025, 11, 21))  # 365 days before as-of
    beneficiary(con, B, last_certified_on=date(2025, 11, 20))  # 366 days: overdue, lapse month 202611
    for person in (A, B):
        pay(con, person, "202611", "2100.00", paid_on=date(2026, 11, 5))
    found = run(con, "CERTIFICATION_OVERDUE")
    assert set(found) == {B}
    assert found[B]["amount"] == Decimal("0.00")


def test_certification_overdue_needs_a_recent_payment_and_normal_status(con):
    beneficiary(con, A, last_certified_on=date(2024, 1, 1))
    pay(con, A, "202608", "2100.00", paid_on=date(2026, 8, 21))  # exactly 3 months before: outside
    beneficiary(con, B, last_certified_on=date(2024, 1, 1), status="暂停")
    pay(con, B, "202611", "2100.00", paid_on=date(2026, 11, 5))
    beneficiary(con, C, last_certified_on=date(2024, 1, 1))
    pay(con, C, "202608", "2100.00", paid_on=date(2026, 8, 22))
    assert set(run(con, "CERTIFICATION_OVERDUE")) == {C}


def test_a_reversal_in_the_recent_window_is_no_payment_that_keeps_a_lapsed_pension_flowing(con):
    # last really paid in June; the only row of the last 3 months takes money back
    beneficiary(con, A, last_certified_on=date(2024, 1, 1))
    pay(con, A, "202606", "2100.00", paid_on=date(2026, 6, 15))
    pay(con, A, "202606", "-2100.00", paid_on=date(2026, 10, 10))
    beneficiary(con, B, last_certified_on=date(2024, 1, 1))  # the same, with a payment in the window
    pay(con, B, "202606", "2100.00", paid_on=date(2026, 6, 15))
    pay(con, B, "202610", "2100.00", paid_on=date(2026, 10, 10))
    assert set(run(con, "CERTIFICATION_OVERDUE")) == {B}


def test_never_certified_lapses_a_year_after_the_award(con):
    beneficiary(con, A, last_certified_on=None, start_period="202501")  # lapse 2026-01-01 -> 202601
    for period in months("202512", "202603"):
        pay(con, A, period, "1000.00", paid_on=date(2026, 10, 1))
    found = run(con, "CERTIFICATION_OVERDUE")
    assert found[A]["amount"] == Decimal("2000.00")  # 202602 + 202603
    assert "从未认证" in found[A]["evidence"]["records"][0]["lapse_basis"]


def test_reversals_outweighing_the_payments_at_risk_leave_an_overdue_pension_at_0_not_the_rule_failed(con):
    """From a regression probe: a reversal of a payment not in the store (−200,000) gave one
    subject an amount below 0, which the runner refuses — and the whole rule failed, every other
    overdue pension lost for the night."""
    beneficiary(con, A, last_certified_on=date(2025, 9, 1))  # lapse month 202609
    pay(con, A, "202610", "2100.00")
    pay(con, A, "202611", "2100.00")
    pay(con, A, "202611", "-200000.00", paid_on=date(2026, 11, 12))
    beneficiary(con, B, last_certified_on=date(2025, 9, 1))
    pay(con, B, "202611", "2100.00")
    found = run(con, "CERTIFICATION_OVERDUE")
    assert (found[A]["amount"], found[B]["amount"]) == (Decimal("0.00"), Decimal("2100.00"))
    assert found[A]["evidence"]["payments"][-1]["amount"] == -200000.0  # the evidence shows the rows as they are


# ---------------------------------------------------------------- SHARED_BANK_ACCOUNT


def test_shared_account_counts_only_periods_with_enough_persons(con):
    for person, amount in ((A, "1000.00"), (B, "1100.00"), (C, "1200.00")):
        pay(con, person, "202610", amount, bank_account="SHARED", agency="360702" if person != C else "360703")
    pay(con, A, "202611", "1000.00", bank_account="SHARED")
    pay(con, B, "202611", "1100.00", bank_account="SHARED")  # only two persons this month
    pay(con, A, "202610", "-100.00", bank_account="SHARED")  # reversal netted
    pay(con, A, "202610", "900.00", bank_account="PAIR")
    pay(con, B, "202610", "900.00", bank_account="PAIR")
    found = run(con, "SHARED_BANK_ACCOUNT")
    assert set(found) == {"SHARED"}
    assert found["SHARED"]["amount"] == Decimal("3200.00")
    assert found["SHARED"]["person_id"] is None
    assert found["SHARED"]["agency_code"] == "360702"
    assert (found["SHARED"]["period_from"], found["SHARED"]["period_to"]) == ("202610", "202610")
    fewer = Config(_merge(DEFAULTS, {"rules": {"SHARED_BANK_ACCOUNT": {"shared_account_min_persons": 2}}}))
    assert set(run(con, "SHARED_BANK_ACCOUNT", fewer)) == {"SHARED", "PAIR"}


def test_an_account_whose_payments_net_to_nothing_is_no_shared_account_suspect(con):
    for person in (A, B, C):
        pay(con, person, "202610", "1000.00", bank_account="NETTED")
    pay(con, A, "202610", "-3500.00", bank_account="NETTED")  # a reversal of more than was paid in
    assert run(con, "SHARED_BANK_ACCOUNT") == {}


# ---------------------------------------------------------------- the agency a suspect goes to


D = "360702195404040044"


def test_a_tie_goes_to_the_lower_agency_code_in_the_rules_and_in_the_answer_key(con):
    """Every rule breaks a tie between agencies the same way, and the generator's answer key as
    the rules do: the person rules' latest-then-largest payment, and an account's most paid."""
    from pipelines import generate_answer
    from pipelines.generate_core import Group

    group = Group()

    def both(person, period, amount, agency, insurance_type="110", account=None):
        payment_id = pay(con, person, period, amount, insurance_type=insurance_type, agency=agency,
                         bank_account=account)
        paid_on = date(int(period[:4]), int(period[4:]), 10)
        group.payments.append((payment_id, person, "", insurance_type, "基本养老金", int(period), paid_on,
                               int(Decimal(amount) * 100), account or f"62170000{person[-6:]}", agency,
                               "甲", "乙", None))

    # A died in July and is still paid the same 3000.00 for August by two agencies (two streams):
    # PAID_AFTER_DEATH's latest and largest payments tie, and DUPLICATE_PENSION's streams do.
    put(con, "deaths", person_id=A, death_date=date(2026, 7, 15), source="公安")
    group.deaths.append((A, "", date(2026, 7, 15), "公安", None))
    both(A, "202608", "3000.00", "360703")
    both(A, "202608", "3000.00", "360702", insurance_type="170")
    # One account paid 1000.00 for B by 360703 and 600.00 + 400.00 for C and D by 360702: a tie
    # of the totals, though 360703 made the largest payment.
    both(B, "202610", "1000.00", "360703", account="SHARED")
    both(C, "202610", "600.00", "360702", account="SHARED")
    both(D, "202610", "400.00", "360702", account="SHARED")

    found = {rule: run(con, rule) for rule in ("PAID_AFTER_DEATH", "DUPLICATE_PENSION", "SHARED_BANK_ACCOUNT")}
    assert found["PAID_AFTER_DEATH"][A]["agency_code"] == "360702"
    assert found["DUPLICATE_PENSION"][A]["agency_code"] == "360702"
    assert found["SHARED_BANK_ACCOUNT"]["SHARED"]["agency_code"] == "360702"
    key = {(s["rule_id"], s["subject"]): s["agency_code"] for s in generate_answer.evaluate(group, AS_OF)}
    assert key == {(rule, subject): hit["agency_code"] for rule, hits in found.items() for subject, hit in hits.items()}


def _custody(con):
    put(con, "imprisonments", person_id=A, sentence_type="有期徒刑", custody_start=date(2026, 5, 10))


def _suspended(con):
    put(con, "beneficiaries", person_id=A, name="王五", insurance_type="110", agency_code="360702", status="暂停",
        status_date=date(2026, 5, 20))


def _working(con):
    put(con, "contributions", person_id=A, employer_id="E0001", insurance_type="110", period="202610",
        amount=Decimal("800.00"))


def _lapsed(con):
    beneficiary(con, A, last_certified_on=date(2025, 1, 1))


@pytest.mark.parametrize("rule_id, setting, item, insurance_type", [
    ("PAID_DURING_CUSTODY", _custody, "基本养老金", "110"),
    ("PAID_WHILE_SUSPENDED", _suspended, "基本养老金", "110"),
    ("UNEMPLOYMENT_WHILE_WORKING", _working, "失业保险金", "210"),
    ("CERTIFICATION_OVERDUE", _lapsed, "基本养老金", "110"),
])
def test_every_person_rule_gives_a_tie_to_the_lower_agency_code(con, rule_id, setting, item, insurance_type):
    setting(con)
    for agency in ("360703", "360702"):  # the same month, the same amount, from two agencies
        pay(con, A, "202610", "2000.00", item=item, insurance_type=insurance_type, agency=agency)
    assert run(con, rule_id)[A]["agency_code"] == "360702"


def _aggregates(sql: str):
    """Each list()/string_agg()/array_agg() call in `sql` (comments removed): its name, its
    argument with nested calls' parentheses flattened away, and the text just before it."""
    import re

    sql = re.sub(r"--[^\n]*", "", sql)
    for m in re.finditer(r"\b(list|string_agg|array_agg|group_concat|listagg)\s*\(", sql, re.IGNORECASE):
        i, depth = m.end(), 1
        while depth:
            depth += (sql[i] == "(") - (sql[i] == ")")
            i += 1
        own = sql[m.end():i - 1]
        while (flat := re.sub(r"\([^()]*\)", "", own)) != own:  # a nested call's order by is its own
            own = flat
        yield m.group(1), own, sql[max(0, m.start() - 12):m.start()]


def test_every_list_a_shipped_rule_aggregates_is_ordered_so_evidence_is_the_same_every_night():
    """An aggregate's order is the order its rows arrive in, which differs between runs on two
    threads: CERTIFICATION_OVERDUE's summary listed a person's records in either order, so two
    detections of one store (an incremental night and a full one) told the same suspect two ways
    and update_suspects wrote it 'updated' for nothing. Each list is ordered or sorted."""
    unordered = [(rule.id, name, " ".join(arg.split())[:80])
                 for rule in load_rules()[0] for text in (rule.sql, rule.watch or "", rule.incremental or "")
                 for name, arg, before in _aggregates(text)
                 if "order by" not in arg.lower() and not before.rstrip().lower().endswith("list_sort(")]
    assert unordered == []
    # the check finds what it is for
    assert list(_aggregates("select string_agg(distinct x, ',') from t"))[0][1] == "distinct x, ','"


def test_a_person_with_several_overdue_records_is_told_in_one_order(con):
    """The summary names the records sorted (110 before 120), whatever order the rows came in."""
    for insurance_type, certified in (("120", date(2024, 3, 1)), ("110", date(2024, 1, 10))):
        beneficiary(con, A, last_certified_on=certified, insurance_type=insurance_type)
        pay(con, A, "202611", "2100.00", insurance_type=insurance_type, paid_on=date(2026, 11, 5))
    summary = run(con, "CERTIFICATION_OVERDUE")[A]["evidence"]["summary"]
    assert summary.startswith("110 最近认证 2024-01-10，120 最近认证 2024-03-01；"), summary


# Standard SQL, or the same name and meaning in Spark SQL and Trino: not listed for porting.
_PORTABLE = {"*", "+", "-", "/", "||", "abs", "count", "count_star", "max", "min", "sum", "nullif", "lower", "trim",
             "row_number"}


def _functions_called(node, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        if node.get("class") in ("FUNCTION", "AGGREGATE", "WINDOW") and node.get("function_name"):
            found.add(node["function_name"])
        for value in node.values():
            _functions_called(value, found)
    elif isinstance(node, list):
        for value in node:
            _functions_called(value, found)
    return found


def test_the_readme_lists_every_duckdb_function_the_shipped_rules_call_for_porting():
    """README "Porting the rules to a distributed SQL engine": every function the shipped rules'
    SQL calls (as DuckDB's own parser reads it) that is not standard is in its table, so the list an
    engineer ports from stays whole."""
    import duckdb
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "docs" / "readme" / "rules.md").read_text(encoding="utf-8")
    section = readme.split("### Porting the rules to a distributed SQL engine", 1)[1].split("\n### ", 1)[0]
    con = duckdb.connect()
    called: set[str] = set()
    for rule in load_rules()[0]:
        for sql in (rule.sql, rule.watch, rule.incremental):
            if sql:
                tree = json.loads(con.execute("select json_serialize_sql(?)", [sql]).fetchall()[0][0])
                assert not tree.get("error"), (rule.id, tree.get("error_message"))
                _functions_called(tree, called)
    listed = {name for name in called - _PORTABLE
              if f"`{name}(" in section or (name == "list_value" and "`list_value`" in section)}
    assert called - _PORTABLE - listed == set()
    assert {"hash", "struct_pack", "to_json", "nfc_normalize"} <= called  # the walk finds what the rules call
