"""Suspects stay the same suspect across nights: stable ids, growing evidence, an append-only history."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from pipelines import casework, store, worklists
from pipelines.config import Config
from pipelines.rules import PERSON_TABLES, detect, load_rules
from pipelines.suspects import suspect_id, update_suspects
from pipelines.workdays import calendar_from

PERSON = "360702195001010011"
NIGHT1 = date(2026, 10, 21)
NIGHT2 = date(2026, 11, 21)


@pytest.fixture
def con(tmp_path):
    c = store.connect(tmp_path / "fw.duckdb")
    c.execute("insert into beneficiaries (person_id, name, insurance_type, agency_code, status) "
              "values (?, '刘七', '110', '360702', '正常')", [PERSON])
    c.execute("insert into deaths (person_id, death_date, source) values (?, date '2026-06-12', '公安')", [PERSON])
    for period in ("202606", "202607", "202608"):
        pay(c, period)
    yield c
    c.close()


def paid(con, payment_id, period, amount, agency, itype="110", item="基本养老金", day=10):
    """A payment to PERSON for `period`, paid on that month's `day`."""
    con.execute("insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount, agency_code) "
                "values (?, ?, ?, ?, ?, ?, ?, ?)",
                [payment_id, PERSON, itype, item, period, date(int(period[:4]), int(period[4:]), day),
                 Decimal(str(amount)), agency])


def pay(con, period, amount="3000.00"):
    paid(con, f"P{period}{amount}", period, amount, "360702")


def pay_from(con, agency, period, amount="3000.00"):
    paid(con, f"{agency}{period}", period, amount, agency)


def night(con, as_of, run_id="run"):
    rules = [r for r in load_rules()[0] if r.id == "PAID_AFTER_DEATH"]
    detect(con, as_of, Config(), rules=rules)
    return update_suspects(con, as_of, run_id)["PAID_AFTER_DEATH"]


def suspect(con):
    cols = ["suspect_id", "status", "amount", "period_from", "period_to", "first_detected_on", "last_detected_on",
            "name", "severity", "agency_code", "person_id", "subject", "closed_on"]
    row = con.execute(f"select {', '.join(cols)} from suspects").fetchall()
    assert len(row) == 1
    return dict(zip(cols, row[0]))


def events(con):
    return [(e, json.loads(d)) for e, d in con.execute(
        "select event, detail from suspect_events order by happened_at, event").fetchall()]


def snapshot(con):
    return (con.execute("select * from suspects order by suspect_id").fetchall(),
            con.execute("select * from suspect_events order by happened_at, event").fetchall())


def closed_as_no_problem(con, tmp_path) -> None:
    """The first night's suspect issued, answered 7 (经核实无问题) and closed on 2026-10-23."""
    from test_returns import Clerk

    from pipelines import returns
    from pipelines.casework import OUTCOME_LABELS

    night(con, NIGHT1)
    [sheet] = worklists.write_worklists(con, tmp_path / "out", NIGHT1)
    clerk = Clerk(sheet)
    clerk.fill(suspect(con)["suspect_id"], 核实结果=OUTCOME_LABELS[7], 核实说明="经核实为生存认证后补发")
    assert returns.apply_returns(con, [clerk.save()], date(2026, 10, 23)).refusals == []


def test_new_suspect_is_pending_with_stable_id_name_and_severity(con):
    counts = night(con, NIGHT1, "r1")
    assert counts["new"] == 1
    s = suspect(con)
    assert s["suspect_id"] == suspect_id("PAID_AFTER_DEATH", PERSON)
    assert s["suspect_id"].startswith("PAD-") and PERSON not in s["suspect_id"]
    assert (s["status"], s["amount"], s["period_from"], s["period_to"]) == ("待下发", Decimal("6000.00"), "202607", "202608")
    assert (s["first_detected_on"], s["last_detected_on"]) == (NIGHT1, NIGHT1)
    assert (s["name"], s["severity"], s["agency_code"], s["person_id"]) == ("刘七", "high", "360702", PERSON)
    # its agency on record from the first (an audit probe: only a worklist row said where it went)
    assert events(con) == [("detected", {"as_of": "2026-10-21", "amount": 6000.0, "period_from": "202607",
                                         "period_to": "202608", "agency_code": "360702"})]
    assert con.execute("select run_id from suspect_events").fetchall() == [("r1",)]


def test_rerun_on_same_data_changes_nothing(con):
    night(con, NIGHT1)
    before = snapshot(con)
    counts = night(con, NIGHT1)
    assert counts == {"new": 0, "updated": 0, "reopened": 0, "unchanged": 1, "redetected": 0, "no_longer_detected": 0,
                      "handed_over": 0}
    assert snapshot(con) == before


def test_new_month_extends_the_same_suspect(con):
    night(con, NIGHT1)
    pay(con, "202609")
    counts = night(con, NIGHT2)
    assert counts["updated"] == 1 and counts["new"] == 0
    s = suspect(con)
    assert (s["amount"], s["period_to"], s["first_detected_on"], s["last_detected_on"]) == (
        Decimal("9000.00"), "202609", NIGHT1, NIGHT2)
    event, detail = events(con)[-1]
    assert event == "updated"
    assert (detail["old_amount"], detail["new_amount"], detail["new_period_to"]) == (6000.0, 9000.0, "202609")
    evidence = json.loads(con.execute("select evidence from suspects").fetchall()[0][0])
    assert [p["period"] for p in evidence["payments"]] == ["202607", "202608", "202609"]


def test_closed_suspect_with_new_evidence_is_reopened(con):
    night(con, NIGHT1)
    con.execute("update suspects set status = '已销号', closed_on = date '2026-11-01', outcome = '7'")
    night(con, NIGHT1)  # same evidence: stays closed
    assert suspect(con)["status"] == "已销号"
    pay(con, "202609")
    counts = night(con, NIGHT2)
    assert counts["reopened"] == 1
    s = suspect(con)
    assert (s["status"], s["amount"], s["closed_on"]) == ("已重开", Decimal("9000.00"), None)
    event, detail = events(con)[-1]
    assert event == "reopened" and (detail["old_amount"], detail["new_amount"]) == (6000.0, 9000.0)
    assert detail["closed_on"] == "2026-11-01"


def test_a_closed_suspect_that_went_and_came_back_with_other_payments_is_reopened(con):
    """Closed as recovered by reversing the payments (gone), then paid again for a month it had:
    new money after the closing, though neither more than the amount before nor a wider span."""
    night(con, NIGHT1)
    con.execute("update suspects set status = '已销号', closed_on = date '2026-11-01', outcome = '4. 不符合待遇领取条件，已暂停发放并追回', "
                "recovered_amount = 6000")
    pay(con, "202607", "-3000.00")
    pay(con, "202608", "-3000.00")
    assert night(con, NIGHT2)["no_longer_detected"] == 1
    assert suspect(con)["status"] == "已销号"
    pay(con, "202608", "2999.99")  # paid again after the closing
    counts = night(con, date(2026, 12, 21))
    assert counts["reopened"] == 1
    s = suspect(con)
    assert (s["status"], s["amount"], s["closed_on"]) == ("已重开", Decimal("2999.99"), None)
    assert events(con)[-1][0] == "reopened"


def test_a_suspect_reopened_by_an_earlier_as_of_and_gone_again_is_reported_gone_again(con):
    """Reported gone, then reopened by a night run for an earlier date (its last_detected_on stays
    the later day it was last found): found since, so its going again is said, not taken as the
    earlier report (found by a simulation of an office re-running a past night)."""
    night(con, NIGHT1)
    night(con, NIGHT2)  # last found 2026-11-21
    con.execute("update suspects set status = '已销号', closed_on = date '2026-11-25', outcome = '7'")
    pay(con, "202607", "-3000.00")
    pay(con, "202608", "-3000.00")
    assert night(con, date(2026, 12, 21))["no_longer_detected"] == 1
    pay(con, "202609", "4000.00")
    pay(con, "202610", "4000.00")
    assert night(con, date(2026, 11, 1))["reopened"] == 1  # an earlier night run again
    assert suspect(con)["last_detected_on"] == NIGHT2
    pay(con, "202609", "-4000.00")
    pay(con, "202610", "-4000.00")
    assert night(con, date(2026, 12, 22))["no_longer_detected"] == 1
    assert [e for e, _ in events(con)][-2:] == ["reopened", "no_longer_detected"]


def test_a_suspect_closed_on_the_amount_its_sheet_showed_is_not_reopened_when_that_amount_comes_back(con, tmp_path):
    """The sheet showed 6000.00; a reversal lowered it to 3000.00 before the
    agency answered 4 with the 6000.00 it recovered (taken: what the sheet showed). The reversal
    undone brings back exactly what the agency verified: nothing new to reopen it on."""
    from test_returns import Clerk

    from pipelines import returns
    from pipelines.casework import OUTCOME_LABELS

    night(con, NIGHT1)
    [sheet] = worklists.write_worklists(con, tmp_path / "out", NIGHT1)
    pay(con, "202608", "-3000.00")
    night(con, date(2026, 10, 22))
    assert suspect(con)["amount"] == Decimal("3000.00")
    clerk = Clerk(sheet)
    clerk.fill(suspect(con)["suspect_id"], 核实结果=OUTCOME_LABELS[4], 追回金额=6000, 核实说明="已追回6000元")
    assert returns.apply_returns(con, [clerk.save()], date(2026, 10, 23)).refusals == []
    assert suspect(con)["status"] == "已销号"
    con.execute("delete from payments where amount < 0")  # the reversal withdrawn: the 6000.00 the sheet showed
    assert night(con, NIGHT2)["reopened"] == 0
    assert (suspect(con)["status"], suspect(con)["amount"]) == ("已销号", Decimal("6000.00"))


def test_a_reopened_suspects_row_says_what_is_new_since_the_agency_closed_it(con, tmp_path):
    """The sheet of a 已重开 suspect showed its evidence as any other row: the clerk who had closed it
    as 无问题 could not see what came after — and answered the old evidence again. Its 证据摘要
    now starts with the closing's date and the amount and periods then and now."""
    closed_as_no_problem(con, tmp_path)
    pay(con, "202609")
    assert night(con, NIGHT2)["reopened"] == 1
    [sheet] = worklists.write_worklists(con, tmp_path / "out2", NIGHT2)
    [row] = [r for r in worklists_rows(sheet) if r["疑点编号"] == suspect(con)["suspect_id"]]
    assert row["疑点状态"] == "已重开"
    assert row["证据摘要"].startswith(
        "【已于 2026-10-23 销号，此后数据出现新情况：涉及金额 6,000.00 → 9,000.00 元，所属期 202607–202608 → "
        "202607–202609（新增的发放或交易，或规则参数已调整），请核实新增部分后重新填报】")


def worklists_rows(path) -> list[dict]:
    import openpyxl

    ws = openpyxl.load_workbook(path)[worklists.SHEET]
    header = [c.value for c in ws[1]]
    return [dict(zip(header, r)) for r in ws.iter_rows(min_row=2, values_only=True)]


def closed_then_death_redelivered(con, death_date: str, source: str) -> dict:
    """Closed as no problem; the death record withdrawn (gone), then delivered again: the night's counts."""
    night(con, NIGHT1)
    con.execute("update suspects set status = '已销号', closed_on = date '2026-11-01', outcome = '7'")
    con.execute("delete from deaths")
    assert night(con, NIGHT2)["no_longer_detected"] == 1
    con.execute("insert into deaths (person_id, death_date, source) values (?, ?, ?)", [PERSON, death_date, source])
    return night(con, date(2026, 12, 21))


def test_a_closed_suspect_back_with_no_payment_it_did_not_list_stays_closed(con):
    """A death record withdrawn and delivered again later-dated: fewer of the same payments count,
    no money the agency has not seen — it stays closed (a score or a source that moved likewise)."""
    counts = closed_then_death_redelivered(con, "2026-07-15", "民政")
    assert counts["reopened"] == 0 and (counts["redetected"], counts["updated"]) == (1, 0)  # back, changed
    assert (suspect(con)["status"], suspect(con)["amount"]) == ("已销号", Decimal("3000.00"))


def test_a_closed_suspect_back_with_the_very_evidence_it_was_closed_on_stays_closed(con):
    """A death record withdrawn and delivered again: nothing the agency has not seen."""
    counts = closed_then_death_redelivered(con, "2026-06-12", "公安")
    assert counts["redetected"] == 1 and counts["reopened"] == 0
    assert suspect(con)["status"] == "已销号"


def test_a_reopened_suspect_is_not_overdue_by_the_deadline_it_had_before_closing(con, tmp_path):
    # The night's order: merge, casework flags, then the worklist re-issues it with a fresh 核查期限.
    night(con, NIGHT1)
    con.execute("update suspects set status = '已销号', closed_on = date '2026-10-05', outcome = '7', "
                "issued_on = date '2026-09-01', deadline = date '2026-09-29'")
    pay(con, "202609")
    night(con, NIGHT2)
    casework.refresh(con, NIGHT2, Config())
    worklists.write_worklists(con, tmp_path / "out", NIGHT2)
    assert con.execute("select status, issued_on, deadline, coalesce(overdue, false) from suspects").fetchall() == [
        ("已重开", NIGHT2, calendar_from(Config()).add_working_days(NIGHT2, 20), False)]
    assert "overdue" not in [e for e, _ in events(con)]


def test_suspect_no_longer_detected_is_kept_and_reported_once(con):
    night(con, NIGHT1)
    con.execute("update suspects set status = '已下发'")
    pay(con, "202607", "-3000.00")
    pay(con, "202608", "-3000.00")  # the agency reversed everything
    counts = night(con, NIGHT2)
    assert counts["no_longer_detected"] == 1
    assert suspect(con)["status"] == "已下发"  # only a verification closes a suspect
    assert suspect(con)["last_detected_on"] == NIGHT1
    night(con, date(2026, 11, 22))
    assert [e for e, _ in events(con)] == ["detected", "no_longer_detected"]
    pay(con, "202607", "3000.01")  # paid again
    counts = night(con, date(2026, 11, 23))
    # counted as its event says (a probe of the night's figures found "1 updated" beside a
    # 'redetected' event): found again, changed
    assert (counts["redetected"], counts["updated"]) == (1, 0)
    assert suspect(con)["last_detected_on"] == date(2026, 11, 23)
    # the history says it came back, with what it came back with
    event, detail = events(con)[-1]
    assert event == "redetected" and (detail["old_amount"], detail["new_amount"]) == (6000.0, 3000.01)


def test_a_rule_that_failed_does_not_make_its_suspects_disappear(con, tmp_path):
    night(con, NIGHT1)
    broken = tmp_path / "rules"
    broken.mkdir()
    (broken / "PAID_AFTER_DEATH.yaml").write_text(
        "id: PAID_AFTER_DEATH\ntitle: t\ntitle_en: t\nbasis: b\nseverity: high\nsubject: person\nparams: {}\n"
        "sql: select * from no_such_table\n", encoding="utf-8")
    report = detect(con, NIGHT2, Config(), rules_dir=broken)
    assert report.errors and report.errors[0].rule_file == "PAID_AFTER_DEATH.yaml"
    counts = update_suspects(con, NIGHT2)
    assert counts["PAID_AFTER_DEATH"]["no_longer_detected"] == 0
    assert [e for e, _ in events(con)] == ["detected"]


def test_a_closed_shared_account_back_with_a_person_it_did_not_list_is_reopened(tmp_path):
    """SHARED_BANK_ACCOUNT's evidence lists persons, not payment ids: one of three persons' payment
    withdrawn (gone), then a new person paid into the account — less money, a new payee."""
    con = store.connect(tmp_path / "shared.duckdb")
    account = "6217000011112222333"

    def pay_into(pid, payment_id, amount):
        con.execute("insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount, "
                    "bank_account, agency_code) values (?, ?, '110', '基本养老金', '202607', date '2026-07-10', ?, ?, '360702')",
                    [payment_id, pid, Decimal(amount), account])

    people = [f"36070219500101{i:03d}1" for i in range(1, 4)]
    for i, pid in enumerate(people):
        pay_into(pid, f"SB{i}", "1000.00")
    shared = [r for r in load_rules()[0] if r.id == "SHARED_BANK_ACCOUNT"]

    def shared_night(as_of):
        detect(con, as_of, Config(), rules=shared)
        return update_suspects(con, as_of, "run")["SHARED_BANK_ACCOUNT"]

    assert shared_night(NIGHT1)["new"] == 1
    con.execute("update suspects set status = '已销号', closed_on = date '2026-11-01', outcome = '7'")
    con.execute("delete from payments where payment_id = 'SB2'")
    assert shared_night(NIGHT2)["no_longer_detected"] == 1
    pay_into("360702196001010014", "SB9", "900.00")
    assert shared_night(date(2026, 12, 21))["reopened"] == 1
    assert con.execute("select status, amount from suspects").fetchall() == [("已重开", Decimal("2900.00"))]
    con.close()


def test_a_closed_suspect_whose_amount_was_corrected_down_and_back_is_not_reopened(con):
    """Reopening measures against what the suspect was closed on, not against the amount the nights
    since moved it to: a payment corrected to 1000 and then back to its 3000 is nothing new."""
    night(con, NIGHT1)
    con.execute("update suspects set status = '已销号', closed_on = date '2026-11-01', outcome = '7'")
    con.execute(casework.RECORD_CLOSED_STATE_SQL, [suspect(con)["suspect_id"]])  # as every closing does
    con.execute("update payments set amount = 1000 where payment_id = 'P2026083000.00'")
    assert night(con, NIGHT2)["updated"] == 1 and suspect(con)["amount"] == Decimal("4000.00")
    con.execute("update payments set amount = 3000 where payment_id = 'P2026083000.00'")
    counts = night(con, date(2026, 11, 22))
    assert counts["reopened"] == 0 and counts["updated"] == 1
    assert (suspect(con)["status"], suspect(con)["amount"]) == ("已销号", Decimal("6000.00"))
    pay(con, "202609")  # a month paid after the closing: new evidence
    assert night(con, date(2026, 11, 23))["reopened"] == 1


# -- a store from an older fundwatch (found by an upgrade probe: old versions' stores run on by this one)

def _as_an_older_fundwatch_left_it(con, path, migration: str, *updates: str):
    """The store as a version before `migration` left it: the state set by `updates`, the conversion
    not yet run; then opened by this fundwatch (which runs it)."""
    for update in updates:
        con.execute(update)
    con.execute("delete from store_migrations where name = ?", [migration])
    con.close()
    return store.connect(path)


def test_a_suspect_closed_before_its_closing_state_was_kept_is_not_reopened_by_an_amount_put_back(con, tmp_path):
    """Closed (answered 7) on a sheet showing 6,000.00 by a fundwatch that kept no closed_amount; a
    reversal then lowered it to 3,000.00 and was withdrawn: the store, upgraded, compared the 6,000.00
    back with the 3,000.00 and reopened it for nothing. It takes what the answered sheet showed."""
    closed_as_no_problem(con, tmp_path)
    pay(con, "202608", "-3000.00")
    night(con, date(2026, 10, 24))
    assert (suspect(con)["status"], suspect(con)["amount"]) == ("已销号", Decimal("3000.00"))
    con = _as_an_older_fundwatch_left_it(
        con, tmp_path / "fw.duckdb", "closed_state",
        "update suspects set closed_amount = null, closed_period_from = null, closed_period_to = null")
    try:
        assert con.execute("select closed_amount, closed_period_from, closed_period_to from suspects").fetchall() == [
            (Decimal("6000.00"), "202607", "202608")]
        con.execute("delete from payments where amount < 0")  # the reversal withdrawn
        assert night(con, NIGHT2)["reopened"] == 0
        assert (suspect(con)["status"], suspect(con)["amount"]) == ("已销号", Decimal("6000.00"))
    finally:
        con.close()


def test_a_reopened_suspect_issued_again_by_an_older_fundwatch_is_shown_reopened_from_its_reissue(con, tmp_path):
    """Before 2026-12-02 a reopened suspect issued again read 已下发, with its first 下发日期 beside
    the fresh 核查期限: the agency saw a new suspect, the 汇总表 no 已重开. Opened by this fundwatch
    it is 已重开, issued the night its worklist carried it again."""
    closed_as_no_problem(con, tmp_path)
    pay(con, "202609")
    assert night(con, NIGHT2)["reopened"] == 1
    worklists.write_worklists(con, tmp_path / "out2", NIGHT2)
    as_now = con.execute("select status, issued_on, deadline from suspects").fetchall()
    assert as_now[0][:2] == ("已重开", NIGHT2)
    closed_on = con.execute("select closed_amount, closed_period_from, closed_period_to from suspects").fetchall()
    assert closed_on == [(Decimal("6000.00"), "202607", "202608")]
    for migration in ("closed_state", "reissued_as_reopened"):
        con.execute("delete from store_migrations where name = ?", [migration])
    con = _as_an_older_fundwatch_left_it(con, tmp_path / "fw.duckdb", "reissued_as_reopened",
                                         f"update suspects set status = '已下发', issued_on = date '{NIGHT1}'",
                                         "update suspects set closed_amount = null, closed_period_from = null,"
                                         " closed_period_to = null")
    try:
        assert con.execute("select status, issued_on, deadline from suspects").fetchall() == as_now
        # and what it was closed on, for its row's banner (taken from the sheet answered)
        assert con.execute("select closed_amount, closed_period_from, closed_period_to from suspects"
                           ).fetchall() == closed_on
        # as this fundwatch leaves it, the conversion changes nothing (run again on a current store)
        con = _as_an_older_fundwatch_left_it(con, tmp_path / "fw.duckdb", "reissued_as_reopened")
        assert con.execute("select status, issued_on, deadline from suspects").fetchall() == as_now
    finally:
        con.close()


def test_a_version_stamping_in_the_servers_zone_refuses_a_store_stamped_in_china_time(tmp_path, monkeypatch):
    """Every stamp is China's wall-clock time since 2026-12-06; the versions before, with the
    newer-store check but the same conversions, ran on such a store without a word — on a server in
    UTC one stamped a reopening before this version's earlier export, and an answer on that older
    sheet closed the reopened suspects again (an upgrade probe). The change is marked in
    store_migrations, so they refuse it."""
    path = tmp_path / "fw.duckdb"
    store.connect(path).close()
    before = path.read_bytes()
    older = tuple(m for m in store._MIGRATIONS if m[0] != "stamps_in_china_time")
    assert len(older) == len(store._MIGRATIONS) - 1
    monkeypatch.setattr(store, "_MIGRATIONS", older)  # the conversions the versions before knew
    with pytest.raises(store.NewerStore, match=r"converted by a newer fundwatch \(stamps_in_china_time\)"):
        store.connect(path)
    assert path.read_bytes() == before


def test_a_store_converted_by_a_newer_fundwatch_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    """An older fundwatch run on a newer store stored codes in a form the newer one had converted
    away, and nothing converted them back (found by a downgrade probe). This one refuses a store
    converted in a way it does not know; a read-only look (a notebook) is still allowed."""
    from pipelines import cli

    path = tmp_path / "fw.duckdb"
    con = store.connect(path)
    con.execute("insert into store_migrations values ('a_later_conversion', current_timestamp)")
    con.close()
    before = path.read_bytes()
    with pytest.raises(store.NewerStore, match=r"was converted by a newer fundwatch \(a_later_conversion\)"):
        store.connect(path)
    assert path.read_bytes() == before
    store.connect(path, read_only=True).close()
    assert cli.main(["report", "--db", str(path), "--out", str(tmp_path / "out")]) == cli.EXIT_USAGE
    assert "was converted by a newer fundwatch (a_later_conversion)" in capsys.readouterr().err
    # the night and serve refuse it before anything is made: serve served nights that each failed
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert cli.main(["nightly", "--inbox", str(inbox), "--db", str(path), "--out", str(tmp_path / "night")]) == cli.EXIT_USAGE
    said = capsys.readouterr().err
    assert said.count(str(path)) == 1 and "converted by a newer fundwatch" in said
    assert not (tmp_path / "night").exists()
    import prefect

    def served(*_a, **_k):
        raise AssertionError("serve must refuse the store before serving")

    monkeypatch.setattr(prefect, "serve", served)
    assert cli.main(["serve", "--inbox", str(inbox), "--db", str(path), "--out", str(tmp_path / "night")]) == cli.EXIT_USAGE
    assert "converted by a newer fundwatch" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_a_reopened_suspects_escalation_days_count_from_the_night_it_reopened(con):
    """From a probe of nights over time: closed with its loss recovered, reopened 102 days after its
    first detection by a payment made since — and flagged 挂牌督办 that very night, the agency not
    having had a day for the new loss. The 90 days count from the reopening now."""
    night(con, NIGHT1)
    con.execute("update suspects set status = '已销号', closed_on = date '2026-11-01', outcome = '4', "
                "recovered_amount = amount")
    pay(con, "202609")
    reopened_night = date(2027, 1, 31)  # 102 days after the first detection (2026-10-21)
    assert night(con, reopened_night)["reopened"] == 1
    casework.refresh(con, reopened_night)
    assert con.execute("select status, reopened_on, escalated from suspects").fetchall() == [
        ("已重开", reopened_night, False)]
    casework.refresh(con, date(2027, 5, 1))  # 90 days after the reopening
    assert con.execute("select escalated from suspects").fetchall() == [(True,)]
    detail = json.loads(con.execute("select detail from suspect_events where event = 'escalated'").fetchall()[0][0])
    assert (detail["first_detected_on"], detail["reopened_on"]) == ("2026-10-21", "2027-01-31")


def test_a_rules_severity_edited_in_its_file_holds_for_the_suspects_it_found_before(con, tmp_path):
    """From a probe of own rules: `severity: high` changed to `medium` between nights changed only
    suspects found or changed since; those found before kept the old word."""
    from pipelines.resources import rules_dir

    night(con, NIGHT1)
    edited = tmp_path / "rules"
    edited.mkdir()
    shipped = (rules_dir() / "PAID_AFTER_DEATH.yaml").read_text(encoding="utf-8")
    assert "\nseverity: high\n" in shipped
    (edited / "PAID_AFTER_DEATH.yaml").write_text(shipped.replace("\nseverity: high\n", "\nseverity: medium\n"),
                                                  encoding="utf-8")
    detect(con, NIGHT2, Config(), rules_dir=edited)
    assert update_suspects(con, NIGHT2)["PAID_AFTER_DEATH"]["unchanged"] == 1
    assert suspect(con)["severity"] == "medium"


def test_a_name_corrected_in_the_register_reaches_the_suspect_and_its_worklist(con, tmp_path):
    """From a probe of rare names: a suspect kept the name it was first found with, so a 生僻字 the
    register corrected later (an older export's private-use character, shown as a box) stayed wrong
    on every worklist — in the locked 姓名 cell, which the agency cannot mend."""
    from openpyxl import load_workbook

    from pipelines import ingest

    person = PERSON[:-1] + "2"  # ingest checks the GB 11643 digit the fixture's rows skip
    for table in ("beneficiaries", "deaths", "payments"):
        con.execute(f"update {table} set person_id = ?", [person])
    night(con, NIGHT1)
    assert suspect(con)["name"] == "刘七"
    delivery = tmp_path / "inbox" / "2026-11-20"
    delivery.mkdir(parents=True)
    (delivery / "beneficiaries_fix.csv").write_text(
        f"person_id,name,insurance_type,agency_code,status\n{person},刘𠈌,110,360702,正常\n", encoding="utf-8")
    assert ingest.ingest_inbox(con, tmp_path / "inbox", as_of=NIGHT2).rows_accepted == 1
    assert night(con, NIGHT2)["unchanged"] == 1
    assert suspect(con)["name"] == "刘𠈌"
    assert [d for e, d in events(con) if e == "name_corrected"] == [
        {"as_of": "2026-11-21", "old_name": "刘七", "new_name": "刘𠈌"}]
    [sheet] = worklists.write_worklists(con, tmp_path / "out", NIGHT2)
    rows = list(load_workbook(sheet)["疑点清单"].iter_rows(values_only=True))
    header = next(r for r in rows if "姓名" in r)
    assert [r[header.index("姓名")] for r in rows[rows.index(header) + 1:] if r[0]] == ["刘𠈌"]
    before = snapshot(con)
    night(con, NIGHT2)
    assert snapshot(con)[1] == before[1]  # looked up again, nothing to correct: no second event
    # A person has a register row per insurance type, each from its own system: a correction
    # delivered for one of them is the name now (the smallest spelling of all kept a stale one).
    later = tmp_path / "inbox" / "2026-11-22"
    later.mkdir()
    (later / "beneficiaries_210.csv").write_text(
        f"person_id,name,insurance_type,agency_code,status\n{person},刘𪚥,210,360702,正常\n", encoding="utf-8")
    ingest.ingest_inbox(con, tmp_path / "inbox", as_of=NIGHT2)
    night(con, NIGHT2)
    assert suspect(con)["name"] == "刘𪚥"  # the latest delivery, though 刘𠈌 (sorting first) stands for 110
    assert [d["new_name"] for e, d in events(con) if e == "name_corrected"] == ["刘𠈌", "刘𪚥"]


@pytest.mark.parametrize("inbox_name", ["inbox", "0inbox"])
def test_the_name_delivered_last_is_the_suspects_whatever_the_inbox_folder_is_called(con, tmp_path, inbox_name):
    """From a determinism probe: the inbox's loose files are a delivery named after the inbox folder,
    and names were ordered by that name against dated folders' — an inbox called `inbox` sorted after
    `2026-11-21`, so its older name won; called `0inbox`, the newer one. A dated folder's rows are now
    of its date, loose files' of the night that read them, then in the order files were read."""
    from pipelines import ingest

    person = PERSON[:-1] + "2"  # ingest checks the GB 11643 digit the fixture's rows skip
    for table in ("beneficiaries", "deaths", "payments"):
        con.execute(f"update {table} set person_id = ?", [person])
    con.execute("delete from beneficiaries")
    inbox = tmp_path / inbox_name

    def deliver(where, name: str, insurance_type: str, run_id: str | None = None, as_of=NIGHT1):
        where.mkdir(parents=True, exist_ok=True)
        (where / f"beneficiaries_{insurance_type}.csv").write_text(
            f"person_id,name,insurance_type,agency_code,status\n{person},{name},{insurance_type},360702,正常\n",
            encoding="utf-8")
        if run_id:
            con.execute("insert into runs (run_id, as_of) values (?, ?)", [run_id, as_of])
        assert ingest.ingest_inbox(con, inbox, run_id=run_id, as_of=as_of).rows_accepted == 1

    deliver(inbox, "杨荣水", "110", "night-1", NIGHT1)  # loose in the inbox, read on 10-21
    deliver(inbox / "2026-11-20", "杨荣淼", "170", "night-2", NIGHT2)  # the register's correction
    night(con, NIGHT2)
    assert suspect(con)["name"] == "杨荣淼"
    deliver(inbox, "杨荣森", "210", "night-3", date(2026, 11, 25))  # loose again, read on 11-25: the latest
    night(con, date(2026, 11, 25))
    assert suspect(con)["name"] == "杨荣森"


def test_a_sheet_issued_before_a_reopening_is_refused_whatever_zone_each_command_ran_in(con, tmp_path, monkeypatch):
    """From a probe of clocks: timestamps were the server's local time, so a reopening stamped by a
    night under TZ=UTC (08:39) came before the export of an older sheet stamped under Asia/Shanghai
    (16:38) — and an answer on that older sheet closed the reopened suspect again. Every stamp is
    China's clock now, whatever TZ each command ran in."""
    import time

    from test_returns import Clerk

    from pipelines import returns
    from pipelines.casework import OUTCOME_LABELS

    def zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    try:
        zone("Asia/Shanghai")
        closed_as_no_problem(con, tmp_path)
        [issued] = sorted((tmp_path / "out").glob("疑点核查台账_*.xlsx"))
        zone("Pacific/Honolulu")  # 18 hours behind China
        pay(con, "202609")
        assert night(con, NIGHT2)["reopened"] == 1
        zone("Asia/Shanghai")
        clerk = Clerk(issued)
        clerk.fill(suspect(con)["suspect_id"], 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题")
        result = returns.apply_returns(con, [clerk.save(tmp_path / "again.xlsx")], date(2026, 11, 23))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert suspect(con)["status"] == "已重开"
    assert [r.reason for r in result.refusals if "重开" in r.reason], result.refusals
    stamps = [e for (e,) in con.execute("select event from suspect_events order by happened_at").fetchall()]
    assert stamps.index("detected") < stamps.index("closed") < stamps.index("reopened")


def test_an_open_suspect_goes_to_the_agency_now_paying_issued_to_it_afresh(con, tmp_path):
    """移交: a person paid after death moved to another agency, which pays them now. Kept with the
    agency that first had it, the agency now paying was never told (only it can stop the payment)
    while the first agency's sheets carried the other's payments (a reorganisation probe). The
    suspect goes over with its answers so far, issued to the new agency with a fresh 核查期限; the
    first agency's sheet sent back has its row refused, saying where it went; one 已移送 stays."""
    from test_returns import Clerk

    from pipelines import returns
    from pipelines.casework import OUTCOME_LABELS

    night(con, NIGHT1)
    [sheet] = worklists.write_worklists(con, tmp_path / "out", NIGHT1)
    first = suspect(con)
    assert (first["agency_code"], first["status"]) == ("360702", "已下发")
    old_deadline = con.execute("select deadline from suspects").fetchall()[0][0]
    # the person moved: the new agency pays 202609 and 202610 (after the death, as before)
    for period in ("202609", "202610"):
        paid(con, f"B{period}", period, 3000, "360721")
    counts = night(con, NIGHT2)
    assert (counts["updated"], counts["handed_over"]) == (1, 1)  # the console's night summary says so
    moved = suspect(con)
    assert (moved["agency_code"], moved["status"], moved["amount"]) == ("360721", "已下发", Decimal("12000.00"))
    [(detail,)] = con.execute("select detail from suspect_events where event = 'handed_over'").fetchall()
    assert {k: json.loads(detail)[k] for k in ("from_agency", "to_agency", "status", "as_of")} == \
        {"from_agency": "360702", "to_agency": "360721", "status": "已下发", "as_of": "2026-11-21"}
    written = worklists.write_worklists(con, tmp_path / "out2", NIGHT2)
    assert [p.name.split("_")[1] for p in written] == ["360721"]  # the first agency has nothing open
    issued_on, deadline = con.execute("select issued_on, deadline from suspects").fetchall()[0]
    assert issued_on == NIGHT2 and deadline > old_deadline
    assert con.execute("select count(*) from suspect_events where event = 'issued'").fetchall()[0][0] == 2
    # the first agency answers on its old sheet: refused, saying to whom it went
    clerk = Clerk(sheet)
    clerk.fill(first["suspect_id"], 核实结果=OUTCOME_LABELS[4], 追回金额=6000, 核实说明="已追回")
    result = returns.apply_returns(con, [clerk.save()], date(2026, 11, 24))
    [refusal] = result.refusals
    assert "已于 2026-11-21 移交，现由经办机构 360721 核查" in refusal.reason and "告知 360721" in refusal.reason
    assert suspect(con)["status"] == "已下发"
    # once 已移送 (to 稽核/公安) it stays where it was, whoever pays next
    con.execute("update suspects set status = '已移送'")
    paid(con, "C202611", "202611", 3000, "360781")
    con.execute("delete from payments where agency_code = '360721'")
    night(con, date(2026, 12, 21))
    assert (suspect(con)["agency_code"], suspect(con)["status"]) == ("360721", "已移送")


def test_a_closed_suspect_reopened_by_another_agencys_payment_goes_to_that_agency(con):
    night(con, NIGHT1)
    con.execute("update suspects set status = '已销号', closed_on = date '2026-11-01', outcome = '7'")
    paid(con, "B202609", "202609", 3000, "360721")
    assert night(con, NIGHT2)["reopened"] == 1
    s = suspect(con)
    assert (s["status"], s["agency_code"]) == ("已重开", "360721")
    assert [e for e, _ in events(con)][-2:] in (["handed_over", "reopened"], ["reopened", "handed_over"])


def test_a_store_of_a_version_that_kept_a_suspect_with_its_first_agency_detects_in_full_next(con, tmp_path):
    """Upgraded from a version that kept a suspect with its first agency, an incremental night would
    hand over only the suspects whose subjects a delivery touches: the next night runs in full."""
    night(con, NIGHT1)
    con.execute("create table if not exists detect_state (id integer primary key, as_of date, fingerprint varchar,"
                " updated_at timestamp)")
    con.execute("insert or replace into detect_state values (1, ?, 'abc', current_timestamp)", [NIGHT1])
    con.execute("delete from store_migrations where name = 'suspects_follow_their_agency'")
    path = tmp_path / "fw.duckdb"
    con.close()
    again = store.connect(path)
    try:
        assert again.execute("select fingerprint from detect_state").fetchall() == [(None,)]
        assert store.scalar(again, "select count(*) from store_migrations where name = 'suspects_follow_their_agency'") == 1
    finally:
        again.close()


def test_the_office_sends_a_transferred_suspect_back_to_its_agency_to_be_verified_again(con, tmp_path, capsys):
    """An answer 5 chosen by mistake, or a transfer 稽核 later cleared, stayed 已移送 for good (挂牌督办
    at day 90, its 要情 loss kept), the agency told to ask the supervision office, which had no
    command for it. `fundwatch reopen` sends it back: 已重开, on the agency's next sheet with the
    reason and a fresh 核查期限, its answer on record shown; the agency's new answer closes it, one
    on the older sheet is refused; an open suspect or an unknown id is refused before anything."""
    from test_returns import Clerk

    from pipelines import cli, returns
    from pipelines.casework import OUTCOME_LABELS

    night(con, NIGHT1)
    [sheet] = worklists.write_worklists(con, tmp_path / "out", NIGHT1)
    sid = suspect(con)["suspect_id"]
    clerk = Clerk(sheet)
    clerk.fill(sid, 核实结果=OUTCOME_LABELS[5], 核实说明="金额较大，转稽核")
    assert returns.apply_returns(con, [clerk.save()], date(2026, 10, 23)).refusals == []
    assert suspect(con)["status"] == "已移送"
    # found in June, 挂牌督办 since its day 90: the loss sent back is the same old one, still flagged
    con.execute("update suspects set escalated = true, first_detected_on = date '2026-06-01'")
    db = tmp_path / "fw.duckdb"
    con.close()
    assert cli.main(["reopen", "--db", str(db), "--suspect", "PAD-0000000000", "--reason", "误选"]) == cli.EXIT_USAGE
    assert "suspect PAD-0000000000 not found" in capsys.readouterr().err
    assert cli.main(["reopen", "--db", str(db), "--suspect", sid, "--reason", "x" * 501]) == cli.EXIT_USAGE
    assert "at most 500" in capsys.readouterr().err
    assert cli.main(["reopen", "--db", str(db), "--suspect", sid, "--reason", "误选", "--as-of", "2026-10-22"]) == cli.EXIT_USAGE
    assert "before that" in capsys.readouterr().err  # it was transferred on 2026-10-23
    # --config as returns takes it (its note, without a night on record, told to pass one it refused)
    bad = tmp_path / "bad.yaml"
    bad.write_text("casework:\n  verify_working_days: 0\n", encoding="utf-8")
    assert cli.main(["reopen", "--db", str(db), "--suspect", sid, "--reason", "误选", "--config", str(bad)]) == cli.EXIT_USAGE
    assert "bad.yaml" in capsys.readouterr().err
    config = tmp_path / "fundwatch.yaml"
    config.write_text("casework:\n  verify_working_days: 15\n", encoding="utf-8")
    assert cli.main(["reopen", "--db", str(db), "--suspect", f" {sid} ", "--reason", "稽核查明系生存认证延迟，非违规领取（举报人王小明）",
                     "--as-of", "2026-11-02", "--config", str(config)]) == cli.EXIT_OK
    said = capsys.readouterr().out
    assert f"reopened 1 suspect(s) (已重开): {sid}" in said
    # the night's dashboard and 汇总表 are as they were drawn: said, with the command that redraws them
    assert f"`fundwatch report --db {db} --out <OUT>` redraws them now" in said
    again = store.connect(db)
    try:
        assert cli.main(["reopen", "--db", str(db), "--suspect", sid, "--reason", "x"]) == cli.EXIT_USAGE
        s = again.execute("select status, reopened_on, deadline, outcome from suspects").fetchall()[0]
        assert s == ("已重开", None, None, OUTCOME_LABELS[5])
        [(detail, run_id)] = again.execute("select detail, run_id from suspect_events where event = 'reopened'").fetchall()
        assert json.loads(detail)["by_office"] is True and json.loads(detail)["old_status"] == "已移送"
        # the command's run id ties its events to its audit_log row: who reopened it (an audit probe)
        [(actor, audited)] = again.execute("select actor, detail from audit_log where action = 'reopen_by_office'").fetchall()
        assert run_id.startswith("reopen-20261102-") and json.loads(audited)["run_id"] == run_id and actor
        assert again.execute("select count(*) from casework_pending").fetchall() == [(0,)]  # recomputed at once
        assert again.execute("select escalated from suspects").fetchall() == [(True,)]
        assert again.execute("select count(*) from suspect_events where event = 'escalation_lifted'").fetchall() == [(0,)]
        # the province's drill-down shows the office's free text as it shows a clerk's note
        from pipelines import analysis
        shown = json.dumps(analysis.suspect_detail(again, sid)["events"], ensure_ascii=False, default=str)
        assert "王小明" not in shown and "稽…" in shown
        [new_sheet] = worklists.write_worklists(again, tmp_path / "out2", date(2026, 11, 3))
        row = Clerk(new_sheet)
        cells = {h: row.ws.cell(row=row.rows[sid], column=i + 1).value for i, h in enumerate(row.header)}
        assert cells["证据摘要"].startswith("【原已移送，监督部门于 2026-11-02 退回重新核实：稽核查明系生存认证延迟，非违规领取（举报人王小明）。")
        assert cells["核实结果"] == OUTCOME_LABELS[5] and cells["下发日期"] is not None
        # the older sheet answered again is refused; the new sheet's answer closes it
        old = Clerk(sheet)
        old.fill(sid, 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
        [refusal] = returns.apply_returns(again, [old.save(tmp_path / "old_again.xlsx")], date(2026, 11, 4)).refusals
        assert "已于 2026-11-02 由监督部门退回重新核实" in refusal.reason
        # the transfer's 核实日期 left as the sheet shows it: no date of this verification — it closed the
        # case on the transfer's day, before the office sent it back (an agency-side probe)
        row.fill(sid, 核实结果=OUTCOME_LABELS[7], 核实说明="经稽核，生存认证延迟，无多发")
        [refusal] = returns.apply_returns(again, [row.save()], date(2026, 11, 5)).refusals
        assert (refusal.column, refusal.reason) == ("核实日期", "本疑点于 2026-10-23 移送，后由监督部门退回重新核实，核实日期 "
                                                    "2026-10-23 不在移送之后：请填写本次核实的日期")
        row.fill(sid, 核实结果=OUTCOME_LABELS[7], 核实说明="经稽核，生存认证延迟，无多发", 核实日期=date(2026, 11, 4))
        assert returns.apply_returns(again, [row.save(tmp_path / "dated.xlsx")], date(2026, 11, 5)).refusals == []
        assert again.execute("select status, outcome, verified_on, closed_on from suspects").fetchall() == \
            [("已销号", OUTCOME_LABELS[7], date(2026, 11, 4), date(2026, 11, 4))]
    finally:
        again.close()


def test_a_returned_sheet_sent_again_after_its_suspect_reopened_is_no_change_not_a_list_to_correct(con, tmp_path):
    """From an agency-side probe: a sheet applied (a full recovery closed one suspect, another row
    refused), the first suspect then reopened by a later payment — the same file sent again (its
    refused rows looked at again), or the sheet saved again with nothing in the row changed (as a
    clerk adding a transfer's recovery to another row does), came back with the row refused twice
    over ("核实日期 … 不在销号之后", "本台账下发在重开之前") and "请更正后重新报送", for a row the clerk
    never touched. It says what it said: no change."""
    from test_returns import Clerk

    from pipelines import returns
    from pipelines.casework import OUTCOME_LABELS

    other = "360702196001011232"
    con.execute("insert into deaths (person_id, death_date, source) values (?, date '2026-05-02', '民政')", [other])
    con.execute("insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount, agency_code)"
                " values ('O202606', ?, '110', '基本养老金', '202606', date '2026-06-10', 2000, '360702')", [other])
    night(con, NIGHT1)
    [sheet] = worklists.write_worklists(con, tmp_path / "out", NIGHT1)
    [(sid, amount)] = con.execute("select suspect_id, amount from suspects where person_id = ?", [PERSON]).fetchall()
    [refused_sid] = [s for (s,) in con.execute("select suspect_id from suspects where person_id = ?", [other]).fetchall()]
    clerk = Clerk(sheet)
    clerk.fill(sid, 核实结果=OUTCOME_LABELS[4], 追回金额=float(amount), 核实日期=date(2026, 10, 22), 核实说明="已全额追回")
    clerk.fill(refused_sid, 核实结果=OUTCOME_LABELS[7])  # no 核实说明: refused
    returned = clerk.save()
    assert [r.suspect_id for r in returns.apply_returns(con, [returned], date(2026, 10, 23)).refusals] == [refused_sid]
    pay(con, "202609")
    assert night(con, NIGHT2)["reopened"] == 1
    before = snapshot(con)[0]
    resaved = Clerk(returned).save(tmp_path / "resaved.xlsx")  # other bytes, the same cells
    for sent in (returned, resaved):
        result = returns.apply_returns(con, [sent], date(2026, 11, 24))
        assert [r.suspect_id for r in result.refusals] == [refused_sid], result.refusals
        assert result.unchanged == 1
    assert snapshot(con)[0] == before
    assert con.execute("select status from suspects where suspect_id = ?", [sid]).fetchall() == [("已重开",)]


def test_a_suspect_stays_with_its_agency_while_that_agency_still_pays_and_goes_once_it_stopped(con, tmp_path):
    """Handed over to the agency that paid most each month, a suspect two agencies paid moved every
    month, a fresh 核查期限 each time that never ran out (a regression probe): it goes only once its
    agency no longer pays the subject in the latest month paid; an answer on the old sheet is refused
    naming where it is now, a row left blank is no answer, a row applied before is unchanged."""
    from test_returns import Clerk

    from pipelines import returns
    from pipelines.casework import OUTCOME_LABELS

    night(con, NIGHT1)
    [sheet_a] = worklists.write_worklists(con, tmp_path / "a", NIGHT1)
    pay_from(con, "360721", "202609", "3500.00")  # both pay 202609, the other agency more
    pay(con, "202609")
    night(con, NIGHT2)
    s = suspect(con)
    assert (s["agency_code"], con.execute("select finding_agency from suspects").fetchall()[0][0]) == ("360702", "360721")
    assert con.execute("select count(*) from suspect_events where event = 'handed_over'").fetchall() == [(0,)]
    pay_from(con, "360721", "202610")  # 202610: only the other agency pays
    assert night(con, date(2026, 12, 21))["handed_over"] == 1
    assert suspect(con)["agency_code"] == "360721"
    # and on, to a third agency, once the second stopped too
    pay_from(con, "360781", "202611")
    night(con, date(2027, 1, 21))
    assert suspect(con)["agency_code"] == "360781"
    # the first agency's sheet: blank, then answered
    result = returns.apply_returns(con, [Clerk(sheet_a).save(tmp_path / "blank.xlsx")], date(2027, 1, 22))
    assert result.refusals == [] and (result.files[0].pending, result.files[0].refused) == (0, 0)
    clerk = Clerk(sheet_a)
    clerk.fill(s["suspect_id"], 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    [refusal] = returns.apply_returns(con, [clerk.save()], date(2027, 1, 22)).refusals
    assert "已于 2026-12-21 移交，现由经办机构 360781 核查" in refusal.reason


def _one_month_recovered(con, out, note: str):
    """Night 1, its worklist written to `out`, its one suspect answered 4 with 1,000 recovered and
    applied on 2026-10-23: (the suspect's id, the returned workbook)."""
    from test_returns import Clerk

    from pipelines import returns
    from pipelines.casework import OUTCOME_LABELS

    night(con, NIGHT1)
    [sheet] = worklists.write_worklists(con, out, NIGHT1)
    sid = suspect(con)["suspect_id"]
    clerk = Clerk(sheet)
    clerk.fill(sid, 核实结果=OUTCOME_LABELS[4], 追回金额=1000, 核实说明=note)
    returned = clerk.save()
    assert returns.apply_returns(con, [returned], date(2026, 10, 23)).refusals == []
    return sid, returned


def issued_then_paid_under_a_code_the_register_lacks(con, tmp_path) -> list[tuple]:
    """The register lists 360702; the first night's suspect issued; then the person paid under
    360702000 (a code changed in form). Returns the suspect's (下发日期, 核查期限) as issued."""
    con.execute("insert into agencies (agency_code, agency_name, region_code) values "
                "('360702', '章贡区社保局', '360702')")
    night(con, NIGHT1)
    worklists.write_worklists(con, tmp_path / "out", NIGHT1)
    issued = con.execute("select issued_on, deadline from suspects").fetchall()
    for period in ("202609", "202610"):
        paid(con, f"B{period}", period, 3000, "360702000")
    return issued


def test_a_suspect_is_not_handed_over_to_a_code_the_register_does_not_list_until_it_does(con, tmp_path):
    """A source system changed its agency codes' form (9 digits to 12): every open suspect was handed
    over to agencies without a name, issued afresh with its 逾期 lifted (a data-drift probe). With a
    register delivered, a code it does not list takes nothing over; the night says so, and once the
    register lists the code the suspect goes over."""
    from pipelines import runsummary

    issued = issued_then_paid_under_a_code_the_register_lacks(con, tmp_path)
    counts = night(con, NIGHT2)
    assert (counts["updated"], counts["handed_over"]) == (1, 0)
    assert (suspect(con)["agency_code"], con.execute("select issued_on, deadline from suspects").fetchall()) == \
        ("360702", issued)
    said = runsummary.summarise(con, {"run_id": "r", "as_of": NIGHT2, "changes": {"PAID_AFTER_DEATH": counts}})
    assert said["handovers_waiting"] == [{"agency_code": "360702000", "suspects": 1}]
    assert "1 open suspect(s) not handed over: the data now name agency code(s) 360702000, which the register " \
        "(agencies) does not list" in runsummary.format_summary(said)
    # the register lists the code: the suspect goes over, and nothing is said to be waiting
    con.execute("insert into agencies (agency_code, agency_name, region_code) values "
                "('360702000', '章贡区社会保险事业管理局', '360702')")
    assert night(con, date(2026, 12, 21))["handed_over"] == 1
    assert suspect(con)["agency_code"] == "360702000"
    assert "handovers_waiting" not in runsummary.summarise(
        con, {"run_id": "r", "as_of": date(2026, 12, 21), "changes": {}})


def test_a_suspect_its_agency_still_pays_is_not_said_to_wait_for_an_unregistered_code(con):
    """A regression probe: counted from the state alone, a suspect staying because its own agency still
    pays (no handover either way) was said to wait for the register, which would never hand it over."""
    from pipelines import runsummary

    con.execute("insert into agencies (agency_code, agency_name, region_code) values "
                "('360702', '章贡区社保局', '360702')")
    night(con, NIGHT1)
    for period in ("202609", "202610"):
        paid(con, f"B{period}", period, 3500, "360702000")  # the larger: the finding names it
    pay(con, "202610")  # and the person's own agency still pays the latest month
    counts = night(con, NIGHT2)
    assert counts["handed_over"] == 0 and suspect(con)["agency_code"] == "360702"
    assert con.execute("select finding_agency from suspects").fetchall() == [("360702000",)]
    said = runsummary.summarise(con, {"run_id": "r", "as_of": NIGHT2, "changes": {"PAID_AFTER_DEATH": counts}})
    assert "handovers_waiting" not in said and "not handed over" not in runsummary.format_summary(said)


def reopened_as_upgraded(con, tmp_path, migration: str):
    """The store closed and opened again by this version as if `migration` had never run on it."""
    con.execute("delete from store_migrations where name = ?", [migration])
    con.close()
    return store.connect(tmp_path / "fw.duckdb")


def test_a_suspect_an_older_version_handed_to_an_unregistered_code_goes_back_with_its_deadline(con, tmp_path):
    """Upgraded from a version that handed suspects over to any code the data named (a source system's
    codes changed from 6 to 9 digits, the register not re-sent): the suspect sat on a worklist of an
    agency without a name, its 逾期 lifted, and no night said so (an upgrade probe). Opened by this
    version it goes back to the agency it came from with the 下发日期 and 核查期限 it had there, the
    change an event of its own; the next night holds it and says so, as on a store never handed over."""
    from pipelines import runsummary

    issued = issued_then_paid_under_a_code_the_register_lacks(con, tmp_path)
    night(con, NIGHT2)
    # what the older version did that night: handed over, then issued afresh to the new code
    sid = suspect(con)["suspect_id"]
    con.execute("update suspects set agency_code = '360702000', issued_on = null, deadline = null")
    con.execute("""insert into suspect_events values (?, current_timestamp, 'handed_over',
                   '{"as_of": "2026-11-21", "from_agency": "360702", "to_agency": "360702000", "status": "已下发"}', 'old')""",
                [sid])
    worklists.write_worklists(con, tmp_path / "out", NIGHT2)
    # and on again, from one nameless code to another, by a later night of that version
    con.execute("update suspects set agency_code = '360702000000', issued_on = null, deadline = null")
    con.execute("""insert into suspect_events values (?, current_timestamp + interval 1 second, 'handed_over',
                   '{"as_of": "2026-11-22", "from_agency": "360702000", "to_agency": "360702000000", "status": "已下发"}',
                   'old')""", [sid])
    worklists.write_worklists(con, tmp_path / "out", NIGHT2)
    [(moved_to, moved_on, moved_deadline)] = con.execute("select agency_code, issued_on, deadline from suspects").fetchall()
    assert (moved_to, moved_on) == ("360702000000", NIGHT2)

    con = reopened_as_upgraded(con, tmp_path, "handovers_to_listed_agencies")
    try:
        assert (suspect(con)["agency_code"], con.execute("select issued_on, deadline from suspects").fetchall()) == \
            ("360702", issued)
        [(detail,)] = con.execute("select detail from suspect_events where event = 'migrated'").fetchall()
        assert json.loads(detail) == {"migration": "handovers_to_listed_agencies", "changed": {
            "agency_code": ["360702000000", "360702"], "issued_on": [str(NIGHT2), str(issued[0][0])],
            "deadline": [str(moved_deadline), str(issued[0][1])]}}
        counts = night(con, date(2026, 12, 21))
        assert (counts["handed_over"], suspect(con)["agency_code"]) == (0, "360702")
        said = runsummary.summarise(con, {"run_id": "r", "as_of": date(2026, 12, 21), "changes": {}})
        assert said["handovers_waiting"] == [{"agency_code": "360702000", "suspects": 1}]
    finally:
        con.close()


@pytest.mark.parametrize("delivered", ["once", "twice"])
def test_a_death_before_birth_an_older_version_stored_is_set_aside_and_the_death_it_replaced_kept(con, tmp_path,
                                                                                                 delivered):
    """Upgraded from a version that stored a 1900-01-01 death (a placeholder for "not known") over the
    person's real one: every payment of theirs stayed a PAID_AFTER_DEATH suspect that no delivery could
    lift — the placeholder re-sent is refused now — and that reopened each month after its agency
    answered 本人健在 (an upgrade probe). Opened by this version the row is set aside into rejected_rows
    with ingest's reason, counted so in the ledger; the death it replaced is stored again; the next
    night detects in full, from the real death. Delivered twice, the second placeholder replaced the
    first without a trace (a row sent again unchanged is not kept): the real death, replaced by the
    first, is still found (a regression probe: it was lost)."""
    from pipelines.validate import death_before_birth

    night(con, NIGHT1)
    real = suspect(con)["amount"]
    # what the older version stored from a later delivery: the placeholder over the real death
    con.execute("insert into replaced_rows select 'deaths', to_json(d), 'h2', current_timestamp from deaths d")
    con.execute("""update deaths set death_date = date '1900-01-01', _source_file = '2026-11-21/deaths.csv',
                   _row_number = 3, _delivery = '2026-11-21', _file_hash = 'h2'""")
    con.execute("insert into ingest_ledger values ('h2', '2026-11-21/deaths.csv', '2026-11-21', 'deaths', 1, 1, 0, 1,"
                " current_timestamp, 'old')")
    if delivered == "twice":  # and again next month, the same row
        con.execute("""update deaths set _source_file = '2026-12-21/deaths.csv', _row_number = 5,
                       _delivery = '2026-12-21', _file_hash = 'h3'""")
        con.execute("insert into ingest_ledger values ('h3', '2026-12-21/deaths.csv', '2026-12-21', 'deaths', 1, 1, 0,"
                    " 1, current_timestamp, 'old')")
    night(con, NIGHT2)
    assert suspect(con)["amount"] > real  # every payment since 1900

    con = reopened_as_upgraded(con, tmp_path, "deaths_not_before_birth")
    try:
        assert con.execute("select death_date, source, _file_hash from deaths").fetchall() == \
            [(date(2026, 6, 12), "公安", None)]
        [rejected] = con.execute("select extract, source_file, row_number, column_name, reason, raw::json->>'death_date',"
                                 " file_hash, delivery from rejected_rows").fetchall()
        stored_from = ("2026-11-21/deaths.csv", 3, "h2", "2026-11-21") if delivered == "once" else \
            ("2026-12-21/deaths.csv", 5, "h3", "2026-12-21")
        assert rejected == ("deaths", stored_from[0], stored_from[1], "death_date", death_before_birth(), "1900-01-01",
                            stored_from[2], stored_from[3])
        # the file whose row was set aside counts it rejected; the one whose row replaced the real
        # death, none replaced (the placeholder stored under the other, gone without a trace, stays counted)
        assert dict((h, (a, r, p)) for h, a, r, p in con.execute(
            "select file_hash, rows_accepted, rows_rejected, rows_replaced from ingest_ledger").fetchall()) == \
            ({"h2": (0, 1, 0)} if delivered == "once" else {"h2": (1, 0, 0), "h3": (0, 1, 1)})
        assert night(con, date(2026, 12, 21))["updated"] == 1
        assert suspect(con)["amount"] == real
        # once: opened again, nothing more is set aside
        con.close()
        con = store.connect(tmp_path / "fw.duckdb")
        assert store.scalar(con, "select count(*) from rejected_rows") == 1
    finally:
        con.close()


def test_a_row_applied_before_its_suspect_was_handed_over_is_unchanged_on_a_resaved_copy(con, tmp_path):
    from pipelines import returns

    sid, first = _one_month_recovered(con, tmp_path / "out", "已追回一个月")
    pay_from(con, "360721", "202609")
    night(con, NIGHT2)
    assert (suspect(con)["agency_code"], suspect(con)["status"]) == ("360721", "核查中")
    import openpyxl

    copy = tmp_path / "copy.xlsx"
    wb = openpyxl.load_workbook(first)
    wb.properties.creator = "a clerk's office suite"
    wb.save(copy)  # re-saved: other bytes, the same answers
    assert copy.read_bytes() != first.read_bytes()
    result = returns.apply_returns(con, [copy], date(2026, 11, 24))
    assert result.refusals == [] and result.files[0].unchanged == 1


def test_a_suspect_reopened_by_the_office_goes_to_the_agency_its_finding_names_on_any_next_night(con, tmp_path):
    """Reopened by the office where it was, while its finding names another agency (it had stayed
    where it was as 已移送): the next night hands it over, whether or not it re-runs its subject — an
    incremental night left it where a full one moved it (a regression probe); finding_agency is kept."""
    from pipelines import casework

    night(con, NIGHT1)
    con.execute("update suspects set status = '已移送'")
    pay_from(con, "360721", "202609")
    night(con, NIGHT2)
    assert (suspect(con)["agency_code"], suspect(con)["status"]) == ("360702", "已移送")
    casework.reopen_by_office(con, [suspect(con)["suspect_id"]], "稽核查明无违规", date(2026, 11, 25), "office")
    # a night that finds nothing new for the suspect: its detections hold no row of it
    rules = [r for r in load_rules()[0] if r.id == "PAID_AFTER_DEATH"]
    detect(con, date(2026, 11, 26), Config(), rules=rules)
    con.execute("delete from detections")
    update_suspects(con, date(2026, 11, 26), "quiet")
    assert (suspect(con)["agency_code"], suspect(con)["status"]) == ("360721", "已重开")


def test_an_older_sheet_answered_7_after_a_full_recovery_closed_it_is_refused_as_closed_not_for_its_empty_cell(con, tmp_path):
    """A longevity probe: closed by a full recovery on the later sheet, the older sheet sent back
    with 7 and 追回金额 left empty was told to clear a recovery (现为 6000.00) the clerk never typed."""
    from test_returns import Clerk

    from pipelines import returns
    from pipelines.casework import OUTCOME_LABELS

    night(con, NIGHT1)
    [older] = worklists.write_worklists(con, tmp_path / "a", NIGHT1)
    night(con, NIGHT2)
    [later] = worklists.write_worklists(con, tmp_path / "b", NIGHT2)
    sid = suspect(con)["suspect_id"]
    clerk = Clerk(later)
    clerk.fill(sid, 核实结果=OUTCOME_LABELS[4], 追回金额=6000, 核实说明="已全部追回")
    assert returns.apply_returns(con, [clerk.save()], date(2026, 11, 24)).refusals == []
    assert suspect(con)["status"] == "已销号"
    late = Clerk(older)
    late.fill(sid, 核实结果=OUTCOME_LABELS[7], 核实说明="经核实无问题")
    [refusal] = returns.apply_returns(con, [late.save()], date(2026, 12, 25)).refusals
    assert refusal.column == "核实结果" and "追回金额" not in refusal.reason, refusal.reason


def test_a_one_off_payment_its_agency_rightly_makes_does_not_hold_a_suspect_back(con):
    """The agency that first had it pays the 丧葬补助金 (a one-off, no loss): not what the suspect is
    about, so the pension the other agency now pays hands it over (a regression probe: any payment of
    the person — a 伤残津贴 of a stream not suspended, a one-off — held it back, the agency paying never
    told)."""
    night(con, NIGHT1)
    for period in ("202609", "202610"):
        pay_from(con, "360721", period)
    paid(con, "FUN202610", "202610", 5000, "360702", item="丧葬补助金", day=12)
    night(con, NIGHT2)
    assert suspect(con)["agency_code"] == "360721"


def test_a_month_its_agency_paid_and_reversed_is_no_payment_that_holds_a_suspect_back(con):
    night(con, NIGHT1)
    pay_from(con, "360721", "202609", "3500.00")
    pay(con, "202609")
    paid(con, "REV202609", "202609", -3000, "360702", day=20)
    night(con, NIGHT2)
    assert suspect(con)["agency_code"] == "360721"


def test_an_older_sheet_answered_7_with_its_prefilled_recovery_left_is_refused_as_closed(con, tmp_path):
    from test_returns import Clerk

    from pipelines import returns
    from pipelines.casework import OUTCOME_LABELS

    sid, _ = _one_month_recovered(con, tmp_path / "a", "追回一个月")
    [second] = worklists.write_worklists(con, tmp_path / "b", date(2026, 10, 24))  # 1000 pre-filled
    [third] = worklists.write_worklists(con, tmp_path / "c", date(2026, 10, 25))
    clerk = Clerk(third)
    clerk.fill(sid, 核实结果=OUTCOME_LABELS[4], 追回金额=6000, 核实说明="已全部追回")
    assert returns.apply_returns(con, [clerk.save()], date(2026, 10, 26)).refusals == []
    late = Clerk(second)
    late.fill(sid, 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")  # 追回金额 left as pre-filled
    [refusal] = returns.apply_returns(con, [late.save()], date(2026, 10, 27)).refusals
    assert refusal.column == "核实结果" and "追回金额" not in refusal.reason, refusal.reason


def test_a_suspect_the_office_sent_back_then_new_evidence_shows_both_on_its_row(con, tmp_path):
    from pipelines import casework

    night(con, NIGHT1)
    con.execute("update suspects set status = '已销号', closed_on = date '2026-10-23', outcome = '7. 经核实无问题',"
                " closed_amount = amount, closed_period_from = period_from, closed_period_to = period_to")
    sid = suspect(con)["suspect_id"]
    casework.reopen_by_office(con, [sid], "核实说明与证据不符", date(2026, 11, 2), "office")
    pay(con, "202609")
    night(con, NIGHT2)
    [sheet] = worklists.write_worklists(con, tmp_path / "out", NIGHT2)
    from test_returns import Clerk
    row = Clerk(sheet)
    text = row.ws.cell(row=row.rows[sid], column=row.header.index("证据摘要") + 1).value
    assert text.startswith("【原已销号，监督部门于 2026-11-02 退回重新核实：核实说明与证据不符。此后数据另有新情况："
                           "涉及金额 6,000.00 → 9,000.00 元"), text


def test_a_store_whose_suspects_do_not_know_their_findings_agency_detects_in_full_next(con, tmp_path):
    night(con, NIGHT1)
    con.execute("create table if not exists detect_state (id integer primary key, as_of date, fingerprint varchar,"
                " updated_at timestamp)")
    con.execute("insert or replace into detect_state values (1, ?, 'abc', current_timestamp)", [NIGHT1])
    con.execute("update suspects set finding_agency = null")  # as a version between two of 2026-12-06 left it
    con.execute("delete from store_migrations where name = 'finding_agency'")
    con.close()
    again = store.connect(tmp_path / "fw.duckdb")
    try:
        assert again.execute("select fingerprint from detect_state").fetchall() == [(None,)]
    finally:
        again.close()


def test_a_stream_delivered_before_another_is_no_stop_of_the_other(con):
    """Two agencies pay the dead person, each its own stream; the second's month came first: by the
    latest month across streams the first looked stopped, and the suspect went to the second for
    good (a regression probe). Each stream is judged by its own latest month."""
    for period in ("202607", "202608", "202609"):
        paid(con, f"INJ{period}", period, 500, "360730", itype="410", item="伤残津贴", day=12)
    night(con, NIGHT1)  # A pays 110 up to 202608 (the fixture), C 410 up to 202609: the finding names C
    assert con.execute("select agency_code, finding_agency from suspects").fetchall() in ([("360702", "360730")],
                                                                                          [("360730", "360730")])
    con.execute("update suspects set agency_code = '360702'")  # as issued to A before C's month came
    night(con, NIGHT2)
    assert suspect(con)["agency_code"] == "360702"  # A's stream's latest month is A's


def test_an_unemployment_suspect_is_not_held_back_by_the_pension_its_evidence_lists_beside_it(con):
    """UNEMPLOYMENT_WHILE_WORKING lists the pension paid in the same months beside each 失业保险金
    payment: the agency paying the pension held the suspect back, though another agency pays the
    失业保险金 now and only it can stop it (a regression probe)."""
    from pipelines.rules import detect

    con.execute("delete from payments")
    con.execute("delete from deaths")

    def uww_night(as_of):
        rules = [r for r in load_rules()[0] if r.id == "UNEMPLOYMENT_WHILE_WORKING"]
        detect(con, as_of, Config(), rules=rules)
        return update_suspects(con, as_of, "uww")["UNEMPLOYMENT_WHILE_WORKING"]

    paid(con, "U202607", "202607", 1500, "360702", itype="210", item="失业保险金")
    paid(con, "P202607", "202607", 1000, "360702")
    uww_night(NIGHT1)
    assert suspect(con)["agency_code"] == "360702"
    paid(con, "U202608", "202608", 1500, "360721", itype="210", item="失业保险金")
    paid(con, "P202608", "202608", 1000, "360702")
    assert uww_night(NIGHT2)["handed_over"] == 1
    assert suspect(con)["agency_code"] == "360721"


def test_an_old_sheets_row_of_a_suspect_handed_over_and_sent_back_since_gets_one_refusal(con, tmp_path):
    from test_returns import Clerk

    from pipelines import casework, returns
    from pipelines.casework import OUTCOME_LABELS

    night(con, NIGHT1)
    [sheet] = worklists.write_worklists(con, tmp_path / "out", NIGHT1)
    sid = suspect(con)["suspect_id"]
    pay_from(con, "360721", "202609")
    night(con, NIGHT2)
    con.execute("update suspects set status = '已销号', closed_on = date '2026-11-22', outcome = '7. 经核实无问题'")
    casework.reopen_by_office(con, [sid], "说明不符", date(2026, 11, 23), "office")
    clerk = Clerk(sheet)
    clerk.fill(sid, 核实结果=OUTCOME_LABELS[7], 核实说明="无问题")
    [refusal] = returns.apply_returns(con, [clerk.save()], date(2026, 11, 24)).refusals
    assert "现由经办机构 360721 核查" in refusal.reason


def test_a_gone_suspect_the_office_reopens_stays_gone_on_incremental_and_full_nights(con, tmp_path):
    """From a differential probe (incremental vs full nights): a suspect the data no longer raise,
    closed, then sent back by the office (`fundwatch reopen`), was dated found by every incremental
    night after (its row lost the 'no longer triggers' banner, its reversed amount shown as at risk)
    and reported gone a second time by a full one. The office's reopening finds nothing: it stays
    gone, the same whichever way the night detects."""
    rules = [r for r in load_rules()[0] if r.id == "PAID_AFTER_DEATH"]
    detect(con, NIGHT1, Config(), rules=rules, incremental=True)
    update_suspects(con, NIGHT1, "n1")
    con.execute("update suspects set status = '已下发'")
    pay(con, "202607", "-3000.00")
    pay(con, "202608", "-3000.00")
    pay(con, "202606", "-3000.00")  # every payment reversed: gone
    assert night(con, NIGHT2)["no_longer_detected"] == 1
    sid = suspect(con)["suspect_id"]
    con.execute("update suspects set status = '已销号', closed_on = ?, outcome = ? where suspect_id = ?",
                [NIGHT2, casework.OUTCOME_LABELS[1], sid])
    casework.reopen_by_office(con, [sid], "请补充核实依据", date(2026, 11, 23), "监督处", "reopen-1")
    # a night with nothing new (incremental: nothing re-checked), then one detected in full
    for table in PERSON_TABLES:  # the rows as ingest leaves them, with their file: no full run for want of it
        con.execute(f"update {table} set _file_hash = 'f1'")
    quiet = detect(con, date(2026, 11, 24), Config(), rules=rules, incremental=True)
    assert quiet.scope_note.startswith("incremental: ")
    update_suspects(con, date(2026, 11, 24), "n3")
    assert suspect(con)["last_detected_on"] == NIGHT1
    assert night(con, date(2026, 11, 25))["no_longer_detected"] == 0
    assert suspect(con)["last_detected_on"] == NIGHT1 and suspect(con)["status"] == "已重开"
    assert [e for e, _ in events(con)].count("no_longer_detected") == 1
    [sheet] = worklists.write_worklists(con, tmp_path / "out", date(2026, 11, 25))
    [row] = worklists_rows(sheet)
    assert f"【最近一次检出为 {NIGHT1:%Y-%m-%d}，此后的数据已不再触发本规则" in row["证据摘要"]
