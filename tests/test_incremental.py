"""Incremental detection: a busy night — new rows aimed at every way a rule's findings can change —
detected only for the subjects those rows can change, must leave exactly the suspects and events a
detection from scratch leaves.

Real generated Parquet deliveries, the real ingest, real DuckDB stores under tmp_path. Each
planted change is also checked on its own, so that the equality cannot hold because nothing
happened.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines import bench, ingest, resources, rules, store, suspects
from pipelines import report as report_module
from pipelines.config import Config
from pipelines.generate import generate

AS_OF = bench.AS_OF
NEXT = bench.NEXT_AS_OF


@pytest.fixture(scope="module")
def night_one(tmp_path_factory) -> Path:
    """A store with both generated nights ingested, detected and merged as of AS_OF."""
    where = tmp_path_factory.mktemp("incremental")
    generate(where / "gen", 300, as_of=AS_OF, fmt="parquet", split="province")
    con = store.connect(where / "night_one.duckdb")
    assert ingest.ingest_inbox(con, where / "gen" / "inbox").rows_accepted > 0
    rules.detect(con, AS_OF, Config(), rules=bench.deterministic_rules(), incremental=True)
    suspects.update_suspects(con, AS_OF, "night-1")
    con.close()
    return where / "night_one.duckdb"


def _copy(con, select: str, path: Path, params: list | None = None) -> None:
    con.execute(f"copy ({select}) to '{path}' (format parquet)", params or [])


def _one(con, sql: str, params: list | None = None) -> tuple:
    rows = con.execute(sql, params or []).fetchall()
    assert rows, f"the generated data has no row for: {' '.join(sql.split())[:160]}"
    return rows[0]


def write_busy_night(con, night: Path) -> dict[str, str]:
    """One month of payments and deaths (as the bench's night) plus rows aimed at each rule's
    incremental path. Returns what was planted, for the checks."""
    bench.write_next_month(con, night, death_share=0.02)
    living = """person_id not in (select person_id from deaths) and person_id not in (select person_id from imprisonments)
                and person_id not in (select person_id from suspects where person_id is not null)"""
    planted: dict[str, str] = {}

    # DUPLICATE_PENSION: a back-paid pension for an old month from a second agency
    dup_id, dup_period, dup_agency = _one(con, f"""
        select person_id, period, agency_code from payments
        where item = '基本养老金' and {living} order by person_id, period limit 1""")
    other_agency = _one(con, "select agency_code from agencies where agency_code <> ? order by agency_code", [dup_agency])[0]
    planted["DUPLICATE_PENSION"] = dup_id
    # SHARED_BANK_ACCOUNT: two more persons paid into one pensioner's account in an old month
    owner, account, shared_period = _one(con, f"""
        select person_id, bank_account, period from payments
        where item = '基本养老金' and bank_account is not null and {living} and person_id <> ?
          and bank_account not in (select subject from suspects where rule_id = 'SHARED_BANK_ACCOUNT')
        order by person_id, period limit 1""", [dup_id])
    planted["SHARED_BANK_ACCOUNT"] = account
    # FUND_PRIVATE_TRANSFER: a payment now matches a transfer found before; a new transfer
    gone_txn, to_account, txn_amount, txn_day = _one(con, """
        select t.txn_id, t.counterparty_account, t.amount, cast(t.txn_at as date) from fund_transactions t
        where t.txn_id in (select subject from suspects where rule_id = 'FUND_PRIVATE_TRANSFER')
          and t.counterparty_account is not null order by t.txn_id limit 1""")
    planted["FUND_PRIVATE_TRANSFER gone"] = gone_txn
    planted["FUND_PRIVATE_TRANSFER"] = "TXNBUSY000001"
    _copy(con, f"""
        select 'BUSYDUP1' as payment_id, person_id, name, insurance_type, item, period, paid_on, amount,
               bank_account, ? as agency_code, handled_by, reviewed_by, reviewed_at
        from payments where person_id = ? and period = ? and item = '基本养老金' and agency_code = ?
        qualify row_number() over (order by payment_id) = 1
        union all
        select 'BUSYSBA' || row_number() over (order by person_id), person_id, name, insurance_type, item, period,
               paid_on, amount, ? as bank_account, agency_code, handled_by, reviewed_by, reviewed_at
        from (select * from payments
              where period = ? and item = '基本养老金' and person_id not in (?, ?) and {living}
              qualify row_number() over (partition by person_id order by payment_id) = 1
              order by person_id limit 2)
        union all
        select 'BUSYFPT1', person_id, name, insurance_type, item, strftime(?::date, '%Y%m'), ?::date,
               ?::decimal(18,2), ?, agency_code, handled_by, reviewed_by, reviewed_at
        from payments where item = '基本养老金' and {living} and person_id not in (?, ?)
        qualify row_number() over (order by person_id desc, payment_id) = 1""",
          night / "payments_busy.parquet",
          [other_agency, dup_id, dup_period, dup_agency, account, shared_period, dup_id, owner,
           txn_day, txn_day, txn_amount, to_account, dup_id, owner])
    _copy(con, """
        select ? as txn_id, account_no, account_type, agency_code, txn_at, direction, amount + 1 as amount,
               'BUSY-NO-SUCH-ACCOUNT' as counterparty_account, counterparty_name, counterparty_kind, memo
        from fund_transactions where direction = '支' and counterparty_kind = '对私'
        order by txn_id limit 1""", night / "fund_transactions_busy.parquet", [planted["FUND_PRIVATE_TRANSFER"]])

    # UNEMPLOYMENT_WHILE_WORKING: a contribution arrives for a month 失业保险金 was paid
    jobless, jobless_period = _one(con, """
        select u.person_id, u.period from payments u
        where u.item = '失业保险金'
          and u.person_id not in (select subject from suspects where rule_id = 'UNEMPLOYMENT_WHILE_WORKING')
          and not exists (select 1 from contributions c where c.person_id = u.person_id and c.period = u.period)
        order by u.person_id, u.period limit 1""")
    planted["UNEMPLOYMENT_WHILE_WORKING"] = jobless
    _copy(con, """select ? as person_id, 'EMPBUSY0001' as employer_id, insurance_type, ? as period, amount
                  from contributions order by person_id limit 1""",
          night / "contributions_busy.parquet", [jobless, jobless_period])

    # PAID_DURING_CUSTODY: a custodial spell reported for a pensioner paid since
    jailed = _one(con, f"""select distinct person_id from payments where item = '基本养老金' and {living}
                           and person_id not in (?, ?) order by person_id limit 1 offset 3""", [dup_id, owner])[0]
    planted["PAID_DURING_CUSTODY"] = jailed
    _copy(con, """select ? as person_id, '某某' as name, '有期徒刑' as sentence_type, date '2025-12-03' as custody_start,
                         cast(null as date) as custody_end, '某监狱' as facility""",
          night / "imprisonments_busy.parquet", [jailed])

    # PAID_WHILE_SUSPENDED: one record suspended (found), one found before restored (gone)
    suspended = _one(con, f"""select person_id, insurance_type from beneficiaries
                              where status = '正常' and {living} and person_id not in (?, ?, ?)
                                and person_id in (select person_id from payments where item = '基本养老金')
                              order by person_id limit 1 offset 5""", [dup_id, owner, jailed])
    restored = _one(con, """select b.person_id, b.insurance_type from beneficiaries b
                            join suspects s on s.subject = b.person_id and s.rule_id = 'PAID_WHILE_SUSPENDED'
                            where b.status in ('暂停', '终止') order by b.person_id limit 1""")
    planted["PAID_WHILE_SUSPENDED"], planted["PAID_WHILE_SUSPENDED gone"] = suspended[0], restored[0]
    _copy(con, """
        select person_id, name, insurance_type, agency_code,
               case when person_id = ? then '暂停' else '正常' end as status,
               case when person_id = ? then date '2025-11-20' else status_date end as status_date,
               start_period, bank_account,
               case when person_id = ? then last_certified_on else current_date end as last_certified_on
        from beneficiaries where (person_id = ? and insurance_type = ?) or (person_id = ? and insurance_type = ?)""",
          night / "beneficiaries_busy.parquet",
          [suspended[0], suspended[0], suspended[0], *suspended, *restored])
    return planted


def _state(con) -> tuple[list, list]:
    live = con.execute("""
        select suspect_id, rule_id, subject, person_id, agency_code, period_from, period_to, amount,
               cast(evidence as varchar), status, first_detected_on, last_detected_on, name
        from suspects order by suspect_id""").fetchall()
    events = con.execute("""
        select suspect_id, event, cast(detail as varchar) from suspect_events
        where run_id = 'night-2' order by suspect_id, event""").fetchall()
    return live, events


def test_a_busy_night_detected_for_the_changed_subjects_only_leaves_what_a_full_run_leaves(night_one, tmp_path):
    a_path, b_path = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    shutil.copy(night_one, a_path)
    shutil.copy(night_one, b_path)
    a = store.connect(a_path)
    night = tmp_path / "busy" / NEXT.isoformat()
    night.mkdir(parents=True)
    planted = write_busy_night(a, night)

    assert ingest.ingest_inbox(a, night.parent, as_of=NEXT).rows_rejected == 0
    report = rules.detect(a, NEXT, Config(), rules=bench.deterministic_rules(), incremental=True)
    assert not report.errors, report.errors
    # every rule that can be scoped was (PAID_DURING_CUSTODY reads $as_of, which moved on: run in
    # full), and each re-checked the planted subject
    assert set(report.scoped_rules) == {"DUPLICATE_PENSION", "SHARED_BANK_ACCOUNT", "UNEMPLOYMENT_WHILE_WORKING",
                                        "FUND_PRIVATE_TRANSFER", "PAID_AFTER_DEATH", "PAID_WHILE_SUSPENDED"}
    subjects = dict(a.execute("select rule_id, list(subject) from detection_subjects group by rule_id").fetchall())
    for rule_id, subject in planted.items():
        if rule_id.split()[0] in report.scoped_rules:
            assert subject in subjects[rule_id.split()[0]], f"{rule_id}: {subject} not re-checked"
    # the clerk's summary says which rules ran for a few subjects only, and how many
    by_rule = {r.rule_id: r for r in report.results}
    assert by_rule["DUPLICATE_PENSION"].subjects == len(subjects["DUPLICATE_PENSION"])
    assert f"(re-checked {by_rule['DUPLICATE_PENSION'].subjects} subject(s) new rows can change)" in report.summary()
    assert by_rule["CERTIFICATION_OVERDUE"].subjects is None  # reads $as_of: in full
    suspects.update_suspects(a, NEXT, "night-2")
    live_a, events_a = _state(a)

    b = store.connect(b_path)
    assert ingest.ingest_inbox(b, night.parent, as_of=NEXT).rows_rejected == 0
    full = rules.detect(b, NEXT, Config(), rules=bench.deterministic_rules())
    assert full.scope_note == "full run" and not full.errors
    suspects.update_suspects(b, NEXT, "night-2")
    live_b, events_b = _state(b)

    assert live_a == live_b
    assert events_a == events_b

    # and the planted changes did happen
    def events_of(rule_id: str, subject: str) -> set[str]:
        return {e for (e,) in a.execute("""select e.event from suspect_events e join suspects s using (suspect_id)
                                            where s.rule_id = ? and s.subject = ? and e.run_id = 'night-2'""",
                                        [rule_id, subject]).fetchall()}
    for rule_id in ("DUPLICATE_PENSION", "SHARED_BANK_ACCOUNT", "UNEMPLOYMENT_WHILE_WORKING",
                    "FUND_PRIVATE_TRANSFER", "PAID_DURING_CUSTODY", "PAID_WHILE_SUSPENDED"):
        assert "detected" in events_of(rule_id, planted[rule_id]), rule_id
    for rule_id in ("FUND_PRIVATE_TRANSFER", "PAID_WHILE_SUSPENDED"):
        assert events_of(rule_id, planted[f"{rule_id} gone"]) == {"no_longer_detected"}, rule_id
    a.close()
    b.close()


def _night_with_duplicate_pension_changed(night_one: Path, tmp_path: Path, old: str, new: str):
    """DUPLICATE_PENSION with `old` replaced by `new` in its file, detected in full as of AS_OF (a
    changed rule is a new fingerprint: a state to go on from), then one more month of payments
    detected incrementally. Returns the store, the full run's report and the night's report."""
    rules_dir = tmp_path / "rules"
    shutil.copytree(resources.rules_dir(), rules_dir)
    changed = rules_dir / "DUPLICATE_PENSION.yaml"
    text = changed.read_text(encoding="utf-8")
    assert old in text
    changed.write_text(text.replace(old, new, 1), encoding="utf-8")
    loaded, errors = rules.load_rules(rules_dir)
    assert not errors
    deterministic = [r for r in loaded if r.engine != "model"]
    shutil.copy(night_one, tmp_path / "s.duckdb")
    con = store.connect(tmp_path / "s.duckdb")
    full = rules.detect(con, AS_OF, Config(), rules=deterministic)
    suspects.update_suspects(con, AS_OF, "night-1b")
    night = tmp_path / "night" / NEXT.isoformat()
    bench.write_next_month(con, night)
    ingest.ingest_inbox(con, night.parent, as_of=NEXT)
    return con, full, rules.detect(con, NEXT, Config(), rules=deterministic, incremental=True)


def test_a_broken_incremental_query_is_reported_against_its_rule_and_the_others_still_run(night_one, tmp_path):
    con, _, report = _night_with_duplicate_pension_changed(
        night_one, tmp_path, "from new_payments where item = $pension_item", "from new_paymentz where item = $pension_item")
    assert [e.rule_file for e in report.errors] == ["DUPLICATE_PENSION.yaml"]
    assert report.errors[0].message.startswith("incremental: ") and "new_paymentz" in report.errors[0].message
    by_rule = {r.rule_id: r for r in report.results}
    assert by_rule["PAID_AFTER_DEATH"].error is None and by_rule["PAID_AFTER_DEATH"].count > 0
    con.close()


def test_a_rule_failing_on_its_subjects_rows_leaves_no_shadow_table_for_the_rules_after_it(night_one, tmp_path):
    """A person rule run for its subjects reads a payments table of their rows only; one that fails
    there (here on purpose: it refuses to run on fewer than 1,000 payments) is reported by name, and
    the rules after it still see the whole payments table."""
    where = "where item = $pension_item\n        and hash(person_id) in"
    con, full, report = _night_with_duplicate_pension_changed(
        night_one, tmp_path, where, "where item = $pension_item and case when (select count(*) from payments) < 1000 "
                                    "then error('only the subjects'' rows') else true end\n        and hash(person_id) in")
    assert not full.errors  # a full run reads every row
    assert "DUPLICATE_PENSION" in report.scoped_rules
    assert [e.rule_file for e in report.errors] == ["DUPLICATE_PENSION.yaml"]
    assert "only the subjects' rows" in report.errors[0].message
    by_rule = {r.rule_id: r for r in report.results}
    assert by_rule["SHARED_BANK_ACCOUNT"].error is None and by_rule["SHARED_BANK_ACCOUNT"].subjects
    assert not con.execute("select table_name from duckdb_tables() where temporary and table_name = 'payments'").fetchall()
    assert store.scalar(con, "select count(*) from payments") > 0
    con.close()


@pytest.mark.parametrize("column", ["bank_account", "_file_hash"])
def test_a_person_rule_reading_another_payments_column_runs_on_its_subjects_rows_as_in_full(night_one, tmp_path,
                                                                                           column):
    """Its subjects' rows carried only rules.WATCH_COLUMNS: a rule not shipped (here DUPLICATE_PENSION
    edited in a folder of its own) naming another column (or a row's lineage) failed every incremental
    night by name, and `rules --db`, planning on payments, passed it. Such a rule reads every column."""
    columns = "select person_id, insurance_type, agency_code, period, payment_id, paid_on, amount"
    con, full, report = _night_with_duplicate_pension_changed(night_one, tmp_path, columns, f"{columns}, {column}")
    try:
        assert not full.errors and not report.errors, report.errors
        assert "DUPLICATE_PENSION" in report.scoped_rules
    finally:
        con.close()


def test_a_night_whose_rule_failed_is_the_nights_data_and_the_next_night_detects_in_full(night_one, tmp_path):
    """From an audit of the README: a night that merged its other rules' findings and failed by one
    rule emptied detect_state, so the report fell back to the night before — its page dated and
    its 汇总表 named for a night whose suspects it no longer showed. The merge's night is kept
    (the report's data night), with no fingerprint: no incremental night starts from it."""
    con, _, report = _night_with_duplicate_pension_changed(
        night_one, tmp_path, "from new_payments where item = $pension_item", "from new_paymentz where item = $pension_item")
    try:
        assert [e.rule_file for e in report.errors] == ["DUPLICATE_PENSION.yaml"]
        suspects.update_suspects(con, NEXT, "night-2")
        assert con.execute("select as_of, fingerprint from detect_state").fetchall() == [(NEXT, None)]
        assert report_module.collect(con)["data_as_of"] == NEXT
        loaded, _ = rules.load_rules(tmp_path / "rules")
        again = rules.detect(con, NEXT, Config(), rules=[r for r in loaded if r.engine != "model"], incremental=True)
        assert again.scope_note == "full run: a rule failed at the last detection"
    finally:
        con.close()


def test_a_same_day_rerun_with_another_config_reports_what_it_no_longer_finds(night_one, tmp_path):
    """The night re-run for the same as-of with a higher threshold: the suspects it no longer finds
    are reported no_longer_detected at once — and the next night (same config, incremental) does
    not count them as found again."""
    path = tmp_path / "rerun.duckdb"
    shutil.copy(night_one, path)
    con = store.connect(path)
    try:
        large = con.execute("""select suspect_id, amount from suspects where rule_id = 'LARGE_PAYMENT_UNREVIEWED'
                               order by amount""").fetchall()
        assert len(large) >= 2, "the generated data plants several large unreviewed payments"
        threshold = float(large[-1][1])  # only the largest stays a suspect
        config = Config({"rules": {"LARGE_PAYMENT_UNREVIEWED": {"large_payment_threshold": threshold}}})
        rules.detect(con, AS_OF, config, rules=bench.deterministic_rules(), incremental=True)
        suspects.update_suspects(con, AS_OF, "rerun")
        gone = {sid for (sid,) in con.execute("""select suspect_id from suspect_events
                                                 where event = 'no_longer_detected' and run_id = 'rerun'""").fetchall()}
        assert gone == {sid for sid, amount in large if float(amount) < threshold}
        # and re-run once more with the original config, the same day: found again, not "gone" any more
        rules.detect(con, AS_OF, Config(), rules=bench.deterministic_rules(), incremental=True)
        suspects.update_suspects(con, AS_OF, "rerun-2")
        still_gone = con.execute(f"select count(*) from suspects s where list_contains(?, suspect_id) "
                                 f"and {suspects.reported_gone_sql('s')}", [sorted(gone)]).fetchall()[0][0]
        assert still_gone == 0
        rules.detect(con, AS_OF, config, rules=bench.deterministic_rules(), incremental=True)
        suspects.update_suspects(con, AS_OF, "rerun-3")  # and gone again under the higher threshold
        rules.detect(con, NEXT, config, rules=bench.deterministic_rules(), incremental=True)
        suspects.update_suspects(con, NEXT, "next")
        stale = con.execute("select count(*) from suspects where list_contains(?, suspect_id) and last_detected_on = ?",
                            [sorted(gone), NEXT]).fetchall()[0][0]
        assert stale == 0
    finally:
        con.close()


def test_a_store_whose_file_name_holds_a_double_quote_runs_incremental_nights_and_dated_reports(night_one, tmp_path):
    """The store's own catalog is reached by its name (past the temp tables that shadow its tables):
    a file named `fw"x 1.duckdb` once broke every incremental night and `report --as-of`."""
    path = tmp_path / 'fw"x 1.duckdb'
    shutil.copy(night_one, path)
    con = store.connect(path)
    night = tmp_path / "night" / NEXT.isoformat()
    bench.write_next_month(con, night)
    assert ingest.ingest_inbox(con, night.parent, as_of=NEXT).rows_rejected == 0
    report = rules.detect(con, NEXT, Config(), rules=bench.deterministic_rules(), incremental=True)
    assert not report.errors, report.errors
    assert report.scoped_rules, report.scope_note  # the scoped path, which reads the store by its name
    suspects.update_suspects(con, NEXT, "night-2")
    earlier = report_module.collect(con, AS_OF)  # drawn for another day: a view over the store by name
    assert earlier and report_module.collect(con, NEXT)
    con.close()


def test_after_a_night_run_for_an_earlier_day_the_next_night_is_detected_in_full(night_one, tmp_path):
    """A night re-run for an earlier day (a backdated --as-of) cannot call a suspect found at the
    later day gone: it knows less. It then left suspects that are not what it found, and the next
    night, incremental, kept one as detected that no detection of the data finds (found by a
    differential fuzz). That night runs in full, says why, and leaves what a full run leaves."""
    earlier = AS_OF.replace(day=AS_OF.day - 3)
    a_path, b_path = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    shutil.copy(night_one, a_path)
    a = store.connect(a_path)
    # the earlier night brings the payment that matches a transfer found at AS_OF
    gone_txn, to_account, amount, day = _one(a, """
        select t.txn_id, t.counterparty_account, t.amount, cast(t.txn_at as date) from fund_transactions t
        where t.txn_id in (select subject from suspects where rule_id = 'FUND_PRIVATE_TRANSFER')
          and t.counterparty_account is not null order by t.txn_id limit 1""")
    night = tmp_path / "earlier" / earlier.isoformat()
    night.mkdir(parents=True)
    _copy(a, """select 'BACKDATED1' as payment_id, person_id, name, insurance_type, item, strftime(?::date, '%Y%m') as period,
                       ?::date as paid_on, ?::decimal(18,2) as amount, ? as bank_account, agency_code, handled_by,
                       reviewed_by, reviewed_at
                from payments where item = '基本养老金' order by person_id, payment_id limit 1""",
          night / "payments_backdated.parquet", [day, day, amount, to_account])
    assert ingest.ingest_inbox(a, night.parent, as_of=AS_OF).rows_accepted == 1
    backdated = rules.detect(a, earlier, Config(), rules=bench.deterministic_rules(), incremental=True)
    assert backdated.scope_note.startswith("full run: as-of")
    suspects.update_suspects(a, earlier, "night-earlier")
    # it knows less than AS_OF's night: the transfer's suspect is kept, not called gone
    assert a.execute("select last_detected_on from suspects where subject = ?", [gone_txn]).fetchall() == [(AS_OF,)]
    a.execute("checkpoint")
    a.close()
    shutil.copy(a_path, b_path)

    a = store.connect(a_path)
    report = rules.detect(a, NEXT, Config(), rules=bench.deterministic_rules(), incremental=True)
    assert report.scope_note == (f"full run: the last detection was for {earlier}, an earlier day than suspects "
                                 f"it kept (found up to {AS_OF})")
    suspects.update_suspects(a, NEXT, "night-2")
    b = store.connect(b_path)
    rules.detect(b, NEXT, Config(), rules=bench.deterministic_rules())
    suspects.update_suspects(b, NEXT, "night-2")
    assert _state(a) == _state(b)
    assert ("no_longer_detected",) in a.execute(
        "select event from suspect_events where run_id = 'night-2' and suspect_id in "
        "(select suspect_id from suspects where subject = ?)", [gone_txn]).fetchall()
    # and the night after is incremental again
    a.execute("checkpoint")
    assert rules.detect(a, NEXT, Config(), rules=bench.deterministic_rules(), incremental=True).scope_note.startswith(
        "incremental:")
    a.close()
    b.close()
