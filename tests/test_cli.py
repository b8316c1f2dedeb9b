"""The `fundwatch` command line: one-line refusals, exit codes, the nightly and demo end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _nightly_inbox import DEAD, delivery_1
from conftest import fundwatch_env
from pipelines import cli, logs, resources
from pipelines.store import connect, scalar

REPO = Path(__file__).resolve().parent.parent


def _refusal(capsys, argv: list[str]) -> tuple[int, str]:
    code = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return code, err


def _fundwatch(args: list[str], tmp_path: Path, prefect_api: str | None = None, timeout: int = 240,
               package: Path = REPO) -> subprocess.CompletedProcess:
    # A private Prefect home, and the session's Prefect API when given (or the command's own temporary one)
    env = {**fundwatch_env(tmp_path / "prefect-home", prefect_api), "PYTHONPATH": str(package)}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_a_missing_inbox_is_refused_in_one_line(tmp_path, capsys):
    code, err = _refusal(capsys, ["nightly", "--inbox", str(tmp_path / "nowhere"), "--db", str(tmp_path / "fw.duckdb"),
                                  "--out", str(tmp_path / "out")])
    assert code == cli.EXIT_USAGE and "inbox" in err and "not found" in err
    assert not (tmp_path / "fw.duckdb").exists()
    # a delivery's file given for the inbox (an outside suite's probe: it read "not found")
    delivery = tmp_path / "payments_360700_202611.csv"
    delivery.write_text("payment_id\n", encoding="utf-8")
    code, err = _refusal(capsys, ["nightly", "--inbox", str(delivery), "--db", str(tmp_path / "fw.duckdb"),
                                  "--out", str(tmp_path / "out")])
    assert code == cli.EXIT_USAGE and f"inbox {delivery} is a file, not a folder; point --inbox at the folder" in err
    assert not (tmp_path / "fw.duckdb").exists()


def test_an_as_of_that_is_not_a_date_is_refused(tmp_path, capsys):
    (tmp_path / "inbox").mkdir()
    code, err = _refusal(capsys, ["nightly", "--inbox", str(tmp_path / "inbox"), "--db", str(tmp_path / "fw.duckdb"),
                                  "--out", str(tmp_path / "out"), "--as-of", "2026-13-01"])
    assert code == cli.EXIT_USAGE and "YYYY-MM-DD" in err


def test_rules_refuses_an_as_of_that_is_not_a_date_also_without_a_store(capsys):
    """From an audit of the README: without --db, `rules --as-of garbage` listed the rules and
    exited 0 — a mistyped day was taken without a word (with --db it was refused)."""
    code, err = _refusal(capsys, ["rules", "--as-of", "2026-02-31"])
    assert code == cli.EXIT_USAGE and err == "fundwatch rules: --as-of '2026-02-31' is not a date; write it as YYYY-MM-DD"


def test_a_bad_config_is_refused_before_anything_runs(tmp_path, capsys):
    (tmp_path / "inbox").mkdir()
    config = tmp_path / "c.yaml"
    config.write_text("rulez: {}\n", encoding="utf-8")
    code, err = _refusal(capsys, ["nightly", "--inbox", str(tmp_path / "inbox"), "--db", str(tmp_path / "fw.duckdb"),
                                  "--out", str(tmp_path / "out"), "--config", str(config)])
    assert code == cli.EXIT_USAGE and "unknown section" in err and "rulez" in err
    assert not (tmp_path / "fw.duckdb").exists()


@pytest.mark.parametrize("raw, said", [
    ("rules: [\n".encode(), "is not valid YAML: expected the node content, but found '<stream end>' (line 2, column 1)"),
    (b"\xff\xfe\x00garbage\x81\x30", "is neither UTF-8 nor GB18030 text; save it as UTF-8"),
    # a section given twice: YAML readers keep the last, silently dropping the first's overrides
    ("rules:\n  LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 30000}\ncasework: {}\n"
     "rules:\n  SHARED_BANK_ACCOUNT: {shared_account_min_persons: 4}\n".encode(),
     "is not valid YAML: found the key 'rules' twice (line 4, column 1)"),
])
def test_a_config_that_cannot_be_read_is_refused_in_one_line(tmp_path, capsys, raw, said):
    (tmp_path / "inbox").mkdir()
    config = tmp_path / "c.yaml"
    config.write_bytes(raw)
    for argv in (["nightly", "--inbox", str(tmp_path / "inbox"), "--out", str(tmp_path / "out")], ["returns"]):
        argv = [*argv, "--db", str(tmp_path / "fw.duckdb"), "--config", str(config)]
        if argv[0] == "returns":
            connect(tmp_path / "other.duckdb").close()
            argv[2] = str(tmp_path / "other.duckdb")
            argv.append(str(config))  # any existing file: the config is refused before workbooks are read
        code, err = _refusal(capsys, argv)
        assert code == cli.EXIT_USAGE and err.endswith(f"config file {config} {said}"), err
    assert not (tmp_path / "fw.duckdb").exists()


def test_a_config_sharing_settings_by_yaml_merge_keys_is_read_as_yaml_reads_it(tmp_path):
    import yaml

    from pipelines.config import load_config

    # A mapping that merges defaults and overrides one of them, anchored and merged again into a
    # region: each key is given once in its own mapping, so nothing is refused as a repeat.
    config = tmp_path / "c.yaml"
    config.write_text("rules:\n  LARGE_PAYMENT_UNREVIEWED:\n    <<: &lpu\n"
                      "      <<: {large_payment_threshold: 40000}\n      large_payment_threshold: 45000\n"
                      "regions:\n  '360702':\n    rules:\n      LARGE_PAYMENT_UNREVIEWED: *lpu\n", encoding="utf-8")
    loaded = load_config(config)
    assert loaded["rules"]["LARGE_PAYMENT_UNREVIEWED"] == {"large_payment_threshold": 45000}
    assert loaded["regions"] == yaml.safe_load(config.read_text(encoding="utf-8"))["regions"]


def test_a_config_saved_as_gbk_by_notepad_is_read(tmp_path):
    from pipelines.config import load_config

    config = tmp_path / "c.yaml"
    config.write_bytes("# 赣州市基金监督科配置\ncasework:\n  escalate_after_days: 60  # 挂牌督办\n".encode("gbk"))
    assert load_config(config)["casework"]["escalate_after_days"] == 60


@pytest.mark.parametrize("section, said", [
    ("disabled_rules: [NO_SUCH_RULE]", "disabled_rules: there is no rule 'NO_SUCH_RULE' (rules: AMOUNT_OUTLIER,"),
    ("rules: {PAID_AFTER_DEATHS: {one_off_items: []}}", "rules.PAID_AFTER_DEATHS: there is no rule 'PAID_AFTER_DEATHS'"),
    ("regions: {'360702': {rules: {SHARED_ACCOUNT: {shared_account_min_persons: 4}}}}",
     "regions.360702.rules.SHARED_ACCOUNT: there is no rule 'SHARED_ACCOUNT'"),
    ("regions: [360702]", "regions: expected a mapping, got [360702]"),
    ("disabled_rules: [[PAID_AFTER_DEATH]]", "disabled_rules: there is no rule ['PAID_AFTER_DEATH']"),
    ("duckdb: {memory_limit: lots}", "duckdb.memory_limit 'lots' is not a size DuckDB understands"),
    ("duckdb: {memory_limit: 4}", "duckdb.memory_limit '4' is not a size DuckDB understands"),
    ("duckdb: {memroy_limit: 4GB}", "duckdb: unknown setting(s) memroy_limit"),
    ("duckdb: {temp_directory: ''}", "duckdb.temp_directory: expected a folder path"),
    ("duckdb: 4GB", "duckdb: expected a mapping"),
    ("duckdb: {memory_limit: -5GB}", "duckdb.memory_limit: '-5GB' is below zero"),
    # casework: a period of days that is not one, an unknown key, thresholds out of order
    ("casework: {verify_working_days: x}", "casework.verify_working_days: expected a whole number of days from 1 to 3650"),
    ("casework: {escalate_after_days: -1}", "casework.escalate_after_days: expected a whole number of days from 1 to 3650"),
    # from a probe of the config: each a traceback, or a night failing after its suspects were merged
    ("casework: {verify_working_days: 99999999999}",
     "casework.verify_working_days: expected a whole number of days from 1 to 3650, got 99999999999"),
    ("casework: {ministry_from: .inf}", "casework.ministry_from: expected an amount in yuan above 0, got inf"),
    ("casework: {holidays: [2027-02-30]}", "a date that does not exist (day is out of range for month): check the dates"),
    ("casework: [20]", "casework: expected a mapping, got [20]"),
    ("casework: twenty", "casework: expected a mapping, got 'twenty'"),
    ("360702:\n  rules: {SHARED_BANK_ACCOUNT: {shared_account_min_persons: 4}}",
     "unknown section(s) 360702 (a region's settings go under regions: <行政区划代码>: rules: …) (known: rules, regions,"),
    ("~: 1", "unknown section(s) None (known: rules,"),
    ("schedule: {timezone: Mars/Olympus}", "schedule.timezone: 'Mars/Olympus' is not an IANA time zone name"),
    ("casework: {holidays: ['2027-02-06..']}", "casework.holidays[0]: '2027-02-06..' is not a date"),
    ("[]", "expected a mapping at the top level"),
    ("0", "expected a mapping at the top level"),
    ("casework: {verify_workdays: 10}", "casework: unknown setting(s) verify_workdays"),
    ("casework: {major_from: 600000}", "casework: major_from (600000) is above ministry_from (500000)"),
    # rule parameters: one the rule lacks, or of the wrong kind, refused before the night (not at detect)
    ("rules: {DUPLICATE_PENSION: {large_payment_threshold: 5}}",
     "unknown parameter(s) large_payment_threshold in rules.DUPLICATE_PENSION; DUPLICATE_PENSION declares: pension_item"),
    ("rules: {LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: abc}}",
     "rules.LARGE_PAYMENT_UNREVIEWED.large_payment_threshold: expected a number, got 'abc'"),
    ("rules: {CERTIFICATION_OVERDUE: {certification_max_days: true}}",
     "rules.CERTIFICATION_OVERDUE.certification_max_days: expected a whole number, got True"),
    ("regions: {'360702': {rules: {FUND_PRIVATE_TRANSFER: {match_days: -1}}}}",
     "regions.360702.rules.FUND_PRIVATE_TRANSFER.match_days: expected a number not below 0, got -1"),
    # outside the rule's param_bounds: a "shared" account of one person (every account fires), a
    # quantile above 1, a contamination the model cannot be fitted with
    ("rules: {SHARED_BANK_ACCOUNT: {shared_account_min_persons: 1}}",
     "rules.SHARED_BANK_ACCOUNT.shared_account_min_persons: expected a number of at least 2, got 1"),
    ("regions: {'360702': {rules: {AMOUNT_OUTLIER: {peer_quantile: 99.9}}}}",
     "regions.360702.rules.AMOUNT_OUTLIER.peer_quantile: expected a number of at least 0 and of at most 1, got 99.9"),
    ("outlier: {contamination: 0}", "outlier.contamination: expected a number of at least 1e-06 and of at most 0.5, got 0"),
    # the value is quoted masked, as every message (an account typed into config is one)
    ("fiscal_accounts: '6217000000000001'", "fiscal_accounts: expected a list of values, got '6217********0001'"),
    ("regions: {'360702': {foo: 1}}", "regions.360702: unknown setting(s) foo"),
    ("regions: {ABC: {rules: {}}}", "regions.ABC: a region is named by its 行政区划代码"),
    ("outlier: {max_shar: 0.1}", "outlier: unknown setting(s) max_shar"),
    # from a probe of parameters: values that passed the check and failed (or misled) the night
    ("regions: {360702: {rules: {}}, '360702': {rules: {}}}", "regions: found the key 360702 twice (once quoted, once not)"),
    ("rules: {FUND_PRIVATE_TRANSFER: {match_days: 3000000000}}",
     "rules.FUND_PRIVATE_TRANSFER.match_days: expected a whole number of at most 2147483647, got 3000000000"),
    ("rules: {CERTIFICATION_OVERDUE: {certification_max_days: 1000000000}}",
     "rules.CERTIFICATION_OVERDUE.certification_max_days: expected a number of at least 0 and of at most 36500, got 1000000000"),
    ("rules: {FUND_PRIVATE_TRANSFER: {match_days: " + "9" * 400 + "}}",
     "rules.FUND_PRIVATE_TRANSFER.match_days: expected a whole number of at most 2147483647"),
    ("rules: {LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: .inf}}",
     "rules.LARGE_PAYMENT_UNREVIEWED.large_payment_threshold: expected a number, got inf"),
    ("outlier: {seed: 4294967296}", "outlier.seed: expected a number of at least 0 and of at most 4294967295, got 4294967296"),
])
def test_a_mistyped_config_entry_is_refused_naming_it(tmp_path, capsys, section, said):
    # a rule id no rule file has (an override that would silently change nothing), a DuckDB setting
    (tmp_path / "inbox").mkdir()
    config = tmp_path / "c.yaml"
    config.write_text(section + "\n", encoding="utf-8")
    code, err = _refusal(capsys, ["nightly", "--inbox", str(tmp_path / "inbox"), "--db", str(tmp_path / "fw.duckdb"),
                                  "--out", str(tmp_path / "out"), "--config", str(config)])
    assert code == cli.EXIT_USAGE and f"config file {config}: {said}" in err
    assert not (tmp_path / "fw.duckdb").exists()


@pytest.mark.parametrize("command", ["nightly", "report"])
def test_an_empty_file_named_as_the_store_is_said_to_be_one(tmp_path, capsys, command):
    """A 0-byte file (a touch, a copy cut short) was DuckDB's "exists, but it is not a valid DuckDB
    database file!" and nothing of what to do."""
    (tmp_path / "inbox").mkdir()
    (tmp_path / "fw.duckdb").touch()
    extra = ["--inbox", str(tmp_path / "inbox")] if command == "nightly" else []
    code, err = _refusal(capsys, [command, *extra, "--db", str(tmp_path / "fw.duckdb"), "--out", str(tmp_path / "out")])
    assert code == cli.EXIT_USAGE and (f"{tmp_path / 'fw.duckdb'} is an empty file (0 bytes), not a DuckDB store: "
                                       "delete it to have a new store made there") in err, err
    assert not (tmp_path / "out").exists() and (tmp_path / "fw.duckdb").stat().st_size == 0


def test_report_on_a_data_file_named_as_the_store_says_it_is_not_one(tmp_path, capsys):
    (tmp_path / "payments.csv").write_text("payment_id,amount\nP1,100.00\n", encoding="utf-8")
    code, err = _refusal(capsys, ["report", "--db", str(tmp_path / "payments.csv"), "--out", str(tmp_path / "out")])
    assert code == cli.EXIT_USAGE and "payments.csv is not a DuckDB store" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["report", "--out", "OUT"], ["returns", "WORKBOOK"], ["rules"]])
def test_a_folder_named_as_the_store_is_said_to_be_one(tmp_path, capsys, command):
    (tmp_path / "store").mkdir()
    (tmp_path / "back.xlsx").write_bytes(b"")
    args = [{"OUT": str(tmp_path / "out"), "WORKBOOK": str(tmp_path / "back.xlsx")}.get(a, a) for a in command]
    code, err = _refusal(capsys, [*args, "--db", str(tmp_path / "store")])
    assert code == cli.EXIT_USAGE
    assert f"{tmp_path / 'store'} is a folder, not a DuckDB store: name the store's file in it " \
           f"(e.g. {tmp_path / 'store' / 'fundwatch.duckdb'})" in err, err
    assert not (tmp_path / "out").exists() and not any((tmp_path / "store").iterdir())


@pytest.mark.parametrize("folder, said", [("night.wal?1", "'?'"), ("back\\slash", "'\\'")])
@pytest.mark.parametrize("command", [["nightly", "--inbox", "INBOX", "--out", "OUT"], ["report", "--out", "OUT"]])
def test_a_store_path_duckdb_would_read_otherwise_is_refused_naming_the_character(tmp_path, capsys, monkeypatch,
                                                                                 command, folder, said):
    """DuckDB takes '?' as the start of a database's options and '\\' as a folder separator: a store
    there was refused as a file not found in a folder that exists, a 12 KB file left behind (a
    hostile-environment probe)."""
    (tmp_path / folder).mkdir()
    (tmp_path / "inbox").mkdir()
    db = tmp_path / folder / "fw.duckdb"
    args = [{"OUT": str(tmp_path / "out"), "INBOX": str(tmp_path / "inbox")}.get(a, a) for a in command]
    code, err = _refusal(capsys, [*args, "--db", str(db)])
    assert code == cli.EXIT_USAGE
    assert f"{db}: DuckDB cannot keep a store at a path holding {said} (it reads '?' as the start of options, " \
           "'\\' as a folder separator): choose a path without it" in err, err
    assert not any((tmp_path / folder).iterdir()) and not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name not in (folder, "inbox")]
    # a relative --db from a folder whose path holds one: DuckDB opens it there (a regression probe)
    monkeypatch.chdir(tmp_path / folder)
    code, err = _refusal(capsys, [*args, "--db", "fw.duckdb"])
    assert code == cli.EXIT_USAGE and f"{db}: DuckDB cannot keep a store at a path holding {said}" in err, err
    assert not any((tmp_path / folder).iterdir())


def test_demo_with_a_bad_config_is_refused_before_it_makes_anything(tmp_path, capsys):
    code, err = _refusal(capsys, ["demo", "--out", str(tmp_path / "demo"), "--config", str(tmp_path / "none.yaml")])
    assert code == cli.EXIT_USAGE and "none.yaml" in err
    assert not (tmp_path / "demo").exists()


def test_report_without_a_store_says_to_run_nightly_first(tmp_path, capsys):
    code, err = _refusal(capsys, ["report", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "out")])
    assert code == cli.EXIT_USAGE and "fundwatch nightly" in err


def test_returns_names_a_missing_workbook(tmp_path, capsys):
    code, err = _refusal(capsys, ["returns", "--db", str(tmp_path / "fw.duckdb"), str(tmp_path / "gone.xlsx")])
    assert code == cli.EXIT_USAGE and "gone.xlsx" in err


def test_returns_given_a_folder_says_it_wants_the_workbooks(tmp_path, capsys):
    (tmp_path / "returned").mkdir()
    code, err = _refusal(capsys, ["returns", "--db", str(tmp_path / "fw.duckdb"), str(tmp_path / "returned")])
    assert code == cli.EXIT_USAGE and "is a folder, not a workbook" in err and "not found" not in err


def test_returns_without_a_store_says_to_run_nightly_first_and_creates_none(tmp_path, capsys):
    workbook = tmp_path / "疑点核查台账_360702_20261201.xlsx"
    workbook.write_bytes(b"PK")  # never opened: the missing store is refused first
    code, err = _refusal(capsys, ["returns", "--db", str(tmp_path / "fw.duckdb"), str(workbook)])
    assert code == cli.EXIT_USAGE and "store" in err and "fundwatch nightly" in err
    assert not (tmp_path / "fw.duckdb").exists()


def test_a_file_name_with_a_line_break_starts_no_line_of_its_own_in_what_the_night_says(tmp_path, prefect_api):
    """A file named `deaths_x` + newline + `fundwatch nightly … completed, 0 failed` + newline + `.csv`
    printed that forged line in the console's log and the night's summary (a security probe). Shown
    with its control characters escaped; stored as delivered (which file of a delivery is the later
    goes by its name: escaped, a tab sorted after '.')."""
    inbox = tmp_path / "inbox" / "2026-10-21"
    inbox.mkdir(parents=True)
    forged = "fundwatch nightly 20261021-aaaa as of 2026-10-21: completed, 0 failed"
    name = f"deaths_x\n{forged}\n.csv"
    (inbox / name).write_text("garbage\n1\n", encoding="utf-8")
    # --verbose: the log's "could not read" line is INFO (the summary says it); shown so, escaped too.
    # (Given after the command, where a user adds it to a command that failed: it was refused there.)
    done = _fundwatch(["nightly", "--inbox", "inbox", "--db", "store/fw.duckdb", "--out", "out",
                       "--as-of", "2026-10-21", "--verbose"], tmp_path, prefect_api)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-3000:]
    assert not [line for line in said.splitlines() if line.startswith(forged) or line.startswith(".csv")], said[-3000:]
    assert f"failed file deaths_x\\n{forged}\\n.csv" in done.stdout and f"could not read deaths_x\\n{forged}" in said
    con = connect(tmp_path / "store" / "fw.duckdb", read_only=True)
    try:
        assert scalar(con, "select any_value(source_file) from rejected_rows") == f"2026-10-21/{name}"
    finally:
        con.close()


def test_a_failed_night_says_what_it_did_on_stdout_and_why_it_failed_in_one_line_on_stderr(tmp_path, prefect_api):
    """From an outside suite written from the contract ("non-zero with a one-line reason"): a night
    with two unreadable files whose office rule then failed wrote a WARNING line per file on standard
    error before its reason, and nothing on standard output. The files are in the summary (standard
    output, as a completed night's), standard error is the one line."""
    delivery_1(tmp_path / "inbox")
    (tmp_path / "inbox" / "2026-10-21" / "payments_broken.xlsx").write_bytes(b"PK\x03\x04 broken")
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "BROKEN_T.yaml").write_text("""id: BROKEN_T
title: 坏规则
basis: 测试
severity: medium
subject: payment
sql: |
  select payment_id as subject, person_id, agency_code, period as period_from, period as period_to, amount,
         to_json(struct_pack(x := no_such_column)) as evidence from payments
""", encoding="utf-8")
    (tmp_path / "fw.yaml").write_text("rule_folders: [own]\n", encoding="utf-8")
    done = _fundwatch(["nightly", "--inbox", "inbox", "--db", "fw.duckdb", "--out", "out", "--as-of", "2026-10-21",
                       "--config", "fw.yaml"], tmp_path, prefect_api)
    err = done.stderr.strip()
    assert done.returncode == cli.EXIT_FAILED and len(err.splitlines()) == 1, err
    assert "task detect failed" in err and "BROKEN_T" in err
    assert ": failed" in done.stdout.splitlines()[0] and "failed file payments_broken.xlsx" in done.stdout, done.stdout


def test_nightly_exits_zero_with_rejected_rows_and_says_how_many(tmp_path, prefect_api):
    delivery_1(tmp_path / "inbox")
    done = _fundwatch(["nightly", "--inbox", "inbox", "--db", "store/fw.duckdb", "--out", "out",
                       "--as-of", "2026-10-21"], tmp_path, prefect_api)
    assert done.returncode == 0, done.stderr
    assert "1 rejected" in done.stdout and "PAID_AFTER_DEATH" in done.stdout
    assert DEAD not in done.stdout + done.stderr
    assert "| INFO" not in done.stderr  # Prefect is quiet unless --verbose
    con = connect(tmp_path / "store" / "fw.duckdb", read_only=True)
    try:
        assert scalar(con, "select status from runs") == "completed"
    finally:
        con.close()
    # The report command redraws from the store without re-running detection.
    again = _fundwatch(["report", "--db", "store/fw.duckdb", "--out", "report"], tmp_path, prefect_api)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "report" / "dashboard.html").is_file()


def test_a_failed_night_says_so_in_one_line_on_the_console_with_no_prefect_traceback(tmp_path, broken_rule_checkout,
                                                                                      prefect_api):
    # Through the real command (Prefect's own console handler included, which capsys does not see).
    delivery_1(tmp_path / "inbox")
    failed = _fundwatch(["nightly", "--inbox", "inbox", "--db", "fw.duckdb", "--out", "out", "--as-of", "2026-10-21"],
                        tmp_path, prefect_api, package=broken_rule_checkout)
    assert failed.returncode == cli.EXIT_FAILED
    (line,) = failed.stderr.strip().splitlines()
    assert line.startswith("fundwatch nightly: nightly run failed: task detect failed: rule SHARED_BANK_ACCOUNT.yaml: "
                           "Binder Error: ") and "no_such_column" in line, line


@pytest.mark.parametrize("db, out, said, served", [
    ("a-file/fw.duckdb", "out", "a file is in the way where a folder is needed (move it, or choose another path)", None),
    ("fw.duckdb", "a-file", "output folder a-file cannot be made: a-file is a file, not a folder", None),
    # `serve` leaves FUNDWATCH_SERVED for the nights it starts; one left in a shell or a service's
    # environment does not make a `nightly` say its outcome twice
    ("fw.duckdb", "a-file", "output folder a-file cannot be made: a-file is a file, not a folder", "quiet"),
    # the file in the way is named, not the folder below it that could not be made
    ("fw.duckdb", "a-file/sub", "output folder a-file/sub cannot be made: a-file is a file, not a folder", None),
    # DuckDB opens a CSV named as a database as an in-memory view over it: the night would keep nothing
    ("a-file", "out", "fundwatch nightly: a-file is not a DuckDB store (a data file?", None),
    ("inbox", "out", "fundwatch nightly: inbox is a folder, not a DuckDB store: name the store's file in it "
                     "(e.g. inbox/fundwatch.duckdb)", None),
], ids=["store-path", "output-folder", "output-folder-with-served-left-set", "output-folder-under-a-file",
        "store-is-a-data-file", "store-is-a-folder"])
def test_a_night_the_machine_refuses_to_start_is_one_line_too(tmp_path, db, out, said, served, monkeypatch, prefect_api):
    if served:
        monkeypatch.setenv(logs.SERVED, served)
    delivery_1(tmp_path / "inbox")
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    refused = _fundwatch(["nightly", "--inbox", "inbox", "--db", db, "--out", out, "--as-of", "2026-10-21"], tmp_path,
                         prefect_api)
    assert refused.returncode == cli.EXIT_USAGE
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fundwatch nightly: ") and said in lines[0], refused.stderr
    assert ("inbox" if db == "inbox" else "a-file") in lines[0] and "Errno" not in lines[0]
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "not a folder"
    if "DuckDB store" in said:  # refused before anything is made
        assert not (tmp_path / out).exists() and not list(tmp_path.glob("*.lock"))


def test_a_store_another_program_has_open_is_refused_in_one_line(tmp_path, prefect_api):
    delivery_1(tmp_path / "inbox")
    holder = subprocess.Popen(
        # holds the store until killed (not for a fixed time, which a slow night could outlast)
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); sys.stdin.read()", str(tmp_path / "fw.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"  # a notebook, say, with the store open for writing
        refused = _fundwatch(["nightly", "--inbox", "inbox", "--db", "fw.duckdb", "--out", "out",
                              "--as-of", "2026-10-21"], tmp_path, prefect_api)
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == cli.EXIT_BUSY  # as when another fundwatch run holds it
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fundwatch nightly: fw.duckdb is open in another program (python"), \
        refused.stderr
    assert f", pid {holder.pid}) — a notebook kernel or a DuckDB shell left open?" in lines[0]


@pytest.mark.slow
def test_demo_runs_one_night_per_sample_delivery_and_names_its_outputs(demo_run):
    assert demo_run.returncode == 0, demo_run.stderr
    deliveries = sorted(p.name for p in (resources.sample_dir() / "inbox").iterdir() if p.is_dir())
    for name in deliveries:
        assert f"as of {name}" in demo_run.stdout
    assert "open suspects per rule" in demo_run.stdout
    assert f"dashboard: {(demo_run.out / 'dashboard.html').resolve()}" in demo_run.stdout
    con = connect(demo_run.db, read_only=True)
    try:
        assert scalar(con, "select count(*) from runs where status = 'completed'") == len(deliveries)
        printed = {line.split()[0]: int(line.split()[1]) for line in
                   demo_run.stdout.split("open suspects per rule")[1].splitlines()[1:] if line.startswith("  ")}
        stored = dict(con.execute("select rule_id, count(*) from suspects where status <> '已销号' group by 1").fetchall())
        assert printed == stored  # the printed count per rule is the store's
    finally:
        con.close()
    assert (demo_run.out / "dashboard.html").is_file()
    assert sorted(demo_run.out.glob("疑点核查台账_*.xlsx"))
    # The staged copy of the sample inbox is owner-only like everything else under OUT.
    staged = [demo_run.out / "inbox", *(demo_run.out / "inbox").rglob("*")]
    assert {p.stat().st_mode & 0o777 for p in staged if p.is_dir()} == {0o700}
    assert {p.stat().st_mode & 0o777 for p in staged if p.is_file()} == {0o600}
    # `make demo` passes a relative --out: the Data Docs must still be built there.
    assert "Data Docs not built" not in demo_run.stdout
    assert (demo_run.out / "data_docs" / "index.html").is_file()


def test_the_summary_says_when_it_lists_only_some_kinds_of_rejection():
    from pipelines.runsummary import format_summary

    reasons = {f"字段{i}(c{i}) 无效": 12 - i for i in range(12)}
    text = format_summary({"run_id": "r", "as_of": "2026-11-21", "status": "completed", "files_ingested": 1,
                           "files_skipped": 0, "files_failed": 0, "rows_accepted": 5, "rows_replaced": 0,
                           "rows_rejected": sum(reasons.values()), "rejected_by_reason": reasons})
    assert "字段9(c9) 无效" in text and "字段10(c10) 无效" not in text
    assert "rejected      3  for 2 other kind(s) of problem (all in rejected_rows and runs.summary)" in text


def test_the_summary_says_when_it_lists_only_some_data_quality_warnings():
    from pipelines.runsummary import format_summary

    warnings = [f"2026-11-{i:02d} payments: expect_table_row_count_to_be_between failed" for i in range(1, 27)]
    text = format_summary({"run_id": "r", "as_of": "2026-11-21", "status": "completed", "warnings": len(warnings),
                           "quality_warnings": warnings})
    assert "data quality: 26 warning(s)" in text
    assert warnings[19] in text and warnings[20] not in text
    assert "    … and 6 more warning(s) (all in quality_results and runs.summary; the Data Docs show the checks great-expectations ran)" in text
    few = format_summary({"run_id": "r", "as_of": "2026-11-21", "status": "completed", "warnings": 2,
                          "quality_warnings": warnings[:2]})
    assert "more warning(s)" not in few


@pytest.mark.parametrize("flag, value, said", [
    ("--cron", "not a cron", "serve: cron 'not a cron' is not a cron expression"),
    ("--timezone", "Mars/Olympus", "serve: time zone 'Mars/Olympus' is not an IANA time zone name"),
    # empty: said, not served at the default schedule without a word
    ("--cron", "", "serve: cron '' is not a cron expression"),
    ("--timezone", "", "serve: time zone '' is not an IANA time zone name"),
])
def test_serve_refuses_a_schedule_it_cannot_serve_in_one_line(tmp_path, capsys, flag, value, said):
    code, err = _refusal(capsys, ["serve", "--inbox", str(tmp_path / "inbox"), "--db", str(tmp_path / "fw.duckdb"),
                                  "--out", str(tmp_path / "out"), flag, value])
    assert code == cli.EXIT_USAGE and said in err


def test_serve_refuses_an_inbox_that_is_not_there(tmp_path, capsys, monkeypatch):
    import prefect

    def served(*deployments, **kw):  # (Prefect's serve never returns: fail instead of serving)
        raise AssertionError("served a deployment whose inbox is missing")

    monkeypatch.setattr(prefect, "serve", served)
    code, err = _refusal(capsys, ["serve", "--inbox", str(tmp_path / "inbx"), "--db", str(tmp_path / "fw.duckdb"),
                                  "--out", str(tmp_path / "out")])
    assert code == cli.EXIT_USAGE and f"serve: inbox {tmp_path / 'inbx'} not found" in err


@pytest.mark.parametrize("store", ["folder", "pyproject.toml"])
def test_serve_refuses_a_store_that_cannot_be_one(tmp_path, capsys, monkeypatch, store):
    """Served, every night would fail at 02:00 on it instead."""
    import prefect

    def served(*deployments, **kw):  # (Prefect's serve never returns: fail instead of serving)
        raise AssertionError("served a deployment whose store cannot be one")

    monkeypatch.setattr(prefect, "serve", served)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "folder").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    code, err = _refusal(capsys, ["serve", "--inbox", str(tmp_path / "inbox"), "--db", str(tmp_path / store),
                                  "--out", str(tmp_path / "out")])
    said = "is a folder, not a DuckDB store" if store == "folder" else "is not a DuckDB store (a data file?"
    assert code == cli.EXIT_USAGE and f"serve: {tmp_path / store} {said}" in err, err


@pytest.mark.parametrize("store", ["folder", "data file"])
def test_demo_refuses_an_out_folder_whose_store_cannot_be_one_before_making_anything(tmp_path, capsys, store):
    """From an audit of the README: the demo refused a CSV in its store's place only after making
    the lock and staging the sample, and named --db, which the demo has no option for."""
    out = tmp_path / "out"
    out.mkdir()
    if store == "folder":
        (out / cli.DEMO_DB).mkdir()
    else:
        (out / cli.DEMO_DB).write_text("payment_id,amount\nP1,100\n", encoding="utf-8")
    code, err = _refusal(capsys, ["demo", "--out", str(out)])
    assert code == cli.EXIT_USAGE
    assert err == (f"fundwatch demo: {out / cli.DEMO_DB} is not a DuckDB store, and the demo keeps its store there: "
                   "choose another --out folder")
    assert [p.name for p in out.iterdir()] == [cli.DEMO_DB]  # no lock, no staged inbox


def test_the_folders_a_command_makes_for_the_store_are_owner_only(tmp_path, prefect_api):
    (tmp_path / "inbox").mkdir()
    db = tmp_path / "new" / "store" / "fw.duckdb"
    code = cli.main(["nightly", "--inbox", str(tmp_path / "inbox"), "--db", str(db), "--out", str(tmp_path / "out"),
                     "--as-of", "2026-11-21"])
    assert code == cli.EXIT_OK
    for folder in (tmp_path / "new", tmp_path / "new" / "store"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_a_wrong_argument_is_one_line_not_the_usage_block(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["nightly", "--inbox"])
    err = capsys.readouterr().err.strip()
    assert stopped.value.code == cli.EXIT_USAGE
    assert err == "fundwatch nightly: argument --inbox: expected one argument (see fundwatch nightly --help)"


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """`code` run by this Python in a process of its own (pytest records warnings itself, so how
    the console shows one is seen only outside it), importing the pipelines under test."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)


def test_a_warning_is_one_line_on_the_console(tmp_path):
    # A warning fundwatch raises (no holiday notice for a year) as the console shows it, in a
    # process of its own: pytest records warnings itself, so the hook is seen only outside it.
    code = ("import logging, warnings; from pipelines import logs; "
            "from pipelines.workdays import CalendarFallbackWarning; "
            "logs.warnings_on_one_line('returns'); "
            "warnings.warn('chinese_calendar has no holiday data for 2027', CalendarFallbackWarning); "
            # once great-expectations is imported, warnings go through logging (captureWarnings)
            "logging.basicConfig(format='%(name)s | %(message)s'); logging.captureWarnings(True); "
            "warnings.warn('no holiday data for 2028; ID 360702195001010012', CalendarFallbackWarning)")
    shown = _python(code, tmp_path)
    assert shown.stderr.splitlines() == ["fundwatch returns: warning: chinese_calendar has no holiday data for 2027",
                                         "py.warnings | warning: no holiday data for 2028; ID 360702********0012"]


def test_a_warning_after_the_quality_checks_is_still_fundwatchs_one_line(tmp_path):
    """A probe of serve left running: great-expectations' modules route warnings into logging as they
    are imported, so on a night that read files the holiday warning came out in Prefect's log format
    (with a UTC time), on a quiet night in fundwatch's. Once the checks are done, warnings are shown
    as before them."""
    code = ("import logging, warnings; from pathlib import Path; "
            "from pipelines import logs, quality, store, ingest; "
            "from pipelines.workdays import CalendarFallbackWarning; "
            "logs.warnings_on_one_line('nightly'); logging.basicConfig(format='%(name)s | %(message)s'); "
            "d = Path('inbox/2026-11-21'); d.mkdir(parents=True); "
            "(d / 'agencies_1.csv').write_text('agency_code,agency_name,region_code,parent_code\\n"
            "360702,章贡区社保局,360702,\\n', encoding='utf-8'); "
            "con = store.connect(Path('fw.duckdb')); ingest.ingest_inbox(con, Path('inbox')); "
            # a warning raised during the checks, on the process's first (a second regression probe:
            # the first night of a demo showed it in Prefect's format, the second in fundwatch's)
            "made = quality._context; "
            "quality._context = lambda gx, d: (warnings.warn('raised during the checks'), made(gx, d))[1]; "
            "quality.check_deliveries(con, ['2026-11-21'], Path('out')); "
            "warnings.warn('chinese_calendar has no holiday data for 2027', CalendarFallbackWarning)")
    shown = _python(code, tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stderr.splitlines()[-1:] == ["fundwatch nightly: warning: chinese_calendar has no holiday data "
                                              "for 2027"], shown.stderr[-2000:]
    assert "fundwatch nightly: warning: raised during the checks" in shown.stderr.splitlines(), shown.stderr[-2000:]


def test_great_expectations_tracebacks_stay_off_the_console():
    """A page it cannot write (a full disk) is logged at ERROR with the traceback pasted into the
    message; the night's summary says what became of the Data Docs instead."""
    import logging

    def record(level, message):
        return logging.LogRecord("great_expectations.render.renderer.site_builder", level, __file__, 1, message,
                                 None, None)

    pasted = "An unexpected Exception occurred during page building:\nTraceback (most recent call last):\n  File …"
    assert not logs.console_filter(record(logging.ERROR, pasted))
    assert not logs.console_filter(record(logging.INFO, "Building Data Docs site"))
    assert logs.console_filter(record(logging.WARNING, "a warning of its own"))


def test_region_codes_written_with_and_without_quotes_are_one_kind(tmp_path, capsys):
    """From a probe: 360702: (a number to YAML) beside "361102": (text) — each accepted alone — made
    `rules` print a traceback and the night fail every rule (sorting a number with a text)."""
    config = tmp_path / "c.yaml"
    config.write_text("regions:\n  360702: {rules: {LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 60000}}}\n"
                      "  '361102': {rules: {LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 20000}}}\n"
                      "fiscal_accounts: ['6217 0000 0000 0001 234']\n", encoding="utf-8")
    assert cli.main(["rules", "--config", str(config)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "large_payment_threshold=60000 (regions 360702)" not in out  # the scope is said before the values
    assert "parameters (regions 360702): large_payment_threshold=60000" in out
    assert "parameters (regions 361102): large_payment_threshold=20000" in out
    # an account listed in config is masked on the console as in runs.summary
    assert "6217000000000001234" not in out and "6217***********1234" in out


def test_serve_without_a_prefect_server_is_refused_rather_than_wait_for_nights_that_never_come(tmp_path):
    """Without PREFECT_API_URL, Prefect serves against a temporary server of its own, whose
    scheduler creates no runs: serve said "polling for scheduled runs" and never ran a night."""
    (tmp_path / "inbox").mkdir()
    refused = _fundwatch(["serve", "--inbox", "inbox", "--db", "fw.duckdb", "--out", "out"], tmp_path, timeout=120)
    assert refused.returncode == cli.EXIT_USAGE
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("fundwatch serve: no Prefect server to serve against (PREFECT_API_URL is not set)"), line


@pytest.mark.parametrize("started, said", [("after", True), ("before", False), ("none", False)])
def test_serve_stopped_while_a_night_ran_says_so(tmp_path, capsys, started, said):
    """The night's process goes with serve: its lock's text is left (a run that ends empties it)."""
    from datetime import datetime, timedelta

    since = datetime(2026, 12, 6, 2, 0, 0)
    db = tmp_path / "fw.duckdb"
    when = {"after": since + timedelta(seconds=5), "before": since - timedelta(hours=1)}.get(started)
    (tmp_path / "fw.duckdb.lock").write_text(f"4242 {when.isoformat()} nightly\n" if when else "", encoding="utf-8")
    cli._say_if_a_night_was_stopped(str(db), since)
    err = capsys.readouterr().err
    assert ("fundwatch serve: stopped while a night (started 2026-12-06 02:00:05) was running" in err) is said, err


def test_a_reason_cut_short_in_the_summary_says_so_and_closes_its_brackets():
    from pipelines.runsummary import REASON_CHARS, _scrub

    header = "missing required column insurance_type (header has: " + ", ".join(f"列{i}" for i in range(40)) + ")"
    cut = _scrub(header)
    assert cut.startswith(header[:REASON_CHARS - 1]) and cut.endswith("…)") and cut.count("(") == cut.count(")")
    assert _scrub("a short reason (whole)") == "a short reason (whole)"


def test_an_output_folder_that_cannot_be_written_to_is_refused_before_the_night_starts(tmp_path, prefect_api):
    """It failed the night at its Data Docs, exit 1, after the ingest and the checks had run."""
    import shutil as sh

    # (a folder of one's own is made owner-only and written: it must be another owner's)
    setpriv = sh.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv: a folder of another owner, and a run without root's capabilities")
    delivery_1(tmp_path / "inbox")
    (tmp_path / "out").mkdir(mode=0o755)
    os.chown(tmp_path / "out", 65534, 65534)  # nobody's
    as_user = [setpriv, "--bounding-set=-all", "--inh-caps=-all"]  # root without its capabilities
    env = {**fundwatch_env(tmp_path / "prefect-home", prefect_api), "PYTHONPATH": str(REPO)}
    try:
        refused = subprocess.run([*as_user, sys.executable, "-m", "pipelines.cli", "nightly", "--inbox", "inbox",
                                  "--db", "fw.duckdb", "--out", "out", "--as-of", "2026-10-21"],
                                 cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    finally:
        os.chown(tmp_path / "out", 0, 0)
    assert refused.returncode == cli.EXIT_USAGE, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("fundwatch nightly: output folder out cannot be written to: "), line
    assert not (tmp_path / "fw.duckdb").exists()  # nothing ingested


@pytest.mark.parametrize("command", ["nightly", "returns", "report"])
@pytest.mark.parametrize("as_of, said", [
    ("2062-11-21", "is more than a year after today ("),  # 2026 mistyped: deadlines decades ahead, for good
    ("9999-12-31", "is more than a year after today ("),
    ("1999-12-31", "is before 2000: a mistyped year?"),
    ("2026-W47", "is not a date; write it as YYYY-MM-DD"),  # Python's ISO week form
    ("20261121", "is not a date; write it as YYYY-MM-DD"),
])
def test_an_as_of_of_a_day_that_has_not_come_or_no_plain_date_is_refused_before_anything_is_made(
        tmp_path, capsys, command, as_of, said):
    """From a probe of the CLI: --as-of 2062-11-21 (for 2026) ran a whole night — worklists dated
    2062, suspects first detected in 2062 that could never be escalated; 9999-12-31 failed after
    writing to the store."""
    delivery_1(tmp_path / "inbox")
    db = tmp_path / "fw.duckdb"
    argv = {"nightly": ["nightly", "--inbox", str(tmp_path / "inbox"), "--db", str(db), "--out", str(tmp_path / "out")],
            "returns": ["returns", "--db", str(db), str(tmp_path / "inbox" / "2026-10-21" / "payments_360700_202610.csv")],
            "report": ["report", "--db", str(db), "--out", str(tmp_path / "out")]}[command]
    if command != "nightly":
        connect(db).close()  # a store to refuse against
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err = _refusal(capsys, [*argv, "--as-of", as_of])
    assert code == cli.EXIT_USAGE and err.startswith(f"fundwatch {command}: --as-of ") and said in err, err
    assert ("--any-day" in err) == (command == "nightly" and "after today" in said), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_night_before_the_stores_last_is_refused_unless_asked_for(tmp_path, capsys, prefect_api):
    """From a probe of nights over time: a night re-run for an earlier day lifted every 逾期 and
    挂牌督办, replaced the agencies' current worklists with ones of that day and gave a suspect
    found later an earlier first detection — its deadline already past on the next night."""
    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    night = ["nightly", "--inbox", str(inbox), "--db", str(db), "--out", str(out)]
    assert cli.main([*night, "--as-of", "2026-10-21"]) == cli.EXIT_OK
    capsys.readouterr()
    worklists = sorted(p.name for p in out.glob("*.xlsx"))
    code, err = _refusal(capsys, [*night, "--as-of", "2026-10-20"])
    assert code == cli.EXIT_USAGE
    assert err == ("fundwatch nightly: the store's last night was for 2026-10-21; a night for --as-of 2026-10-20 would "
                   "step every suspect back to that day (amounts, 逾期 and 挂牌督办, the agencies' worklists): give "
                   "that day or a later one — or, to replay a past night on purpose, add --any-day"), err
    con = connect(db, read_only=True)
    assert scalar(con, "select count(*) from runs") == 1
    con.close()
    assert sorted(p.name for p in out.glob("*.xlsx")) == worklists
    # the same day again, and a replay asked for, run
    assert cli.main([*night, "--as-of", "2026-10-21"]) == cli.EXIT_OK
    assert cli.main([*night, "--as-of", "2026-10-20", "--any-day"]) == cli.EXIT_OK
    con = connect(db, read_only=True)
    assert [d.isoformat() for (d,) in con.execute("select as_of from runs where status = 'completed' order by started_at")
            .fetchall()] == ["2026-10-21", "2026-10-21", "2026-10-20"]
    con.close()


@pytest.mark.parametrize("flag", ["--out", "--db"])
def test_a_path_argument_whose_name_is_not_utf8_is_refused_in_one_line(tmp_path, capsys, flag):
    """From a probe of installs: --out or --inbox given a GB18030-named folder failed with a
    35-line traceback from Prefect's client (the flow's parameters are sent as UTF-8 JSON)."""
    db = tmp_path / "fw.duckdb"
    connect(db).close()
    odd = str(tmp_path / os.fsdecode("社保".encode("gb18030")))
    argv = ["report", "--db", str(db), "--out", str(tmp_path / "out")]
    argv[argv.index(flag) + 1] = odd
    code, err = _refusal(capsys, argv)
    assert code == cli.EXIT_USAGE
    assert err == (f"fundwatch report: {flag} '{tmp_path / '社保'}': the path's name is not UTF-8 (GB18030 bytes, as "
                   "a copy from a Windows share gives them?): rename it, or mount the share with iocharset=utf8"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw.duckdb"]


def test_under_a_gb18030_locale_a_utf8_named_workbook_is_taken_and_a_chinese_db_refused(tmp_path, monkeypatch):
    """From a regression probe: under LC_ALL=zh_CN.GB18030 a returned sheet a UTF-8 night had named
    (疑点核查台账_….xlsx in UTF-8 bytes) was refused as "not UTF-8" once names were read by their
    bytes; and a Chinese --db made the store under another name than its lock's (DuckDB names its file
    by the text's UTF-8, Python by the locale's bytes). Such a locale is stood in for by its file-name
    encoding (this machine's locale is UTF-8): argv read as GB18030, names written back so."""
    import argparse

    monkeypatch.setattr(os, "fsencode", lambda name: name if isinstance(name, bytes) else name.encode("gb18030"))
    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "gb18030")
    sheet = str(tmp_path).encode("gb18030").decode("gb18030") + "/" + "疑点核查台账_360702_20261021.xlsx".encode(
        "utf-8").decode("gb18030")  # as that locale decodes the UTF-8 bytes of the name
    cli._paths_in_utf8(argparse.Namespace(workbooks=[sheet], db=str(tmp_path / "fw.duckdb")))
    with pytest.raises(cli.Refused, match=r"^--db .*: under this locale \(gb18030\) DuckDB would keep the store under "
                                          r"another name than the one given: run fundwatch under a UTF-8 locale"):
        cli._paths_in_utf8(argparse.Namespace(workbooks=[], db=str(tmp_path / "社保.duckdb")))


def test_the_spill_folder_is_read_as_rule_folders_are_from_the_config_files_folder_and_home(tmp_path, monkeypatch):
    """From a probe of the config: `temp_directory: ~/spill` made a folder named `~` in the working
    directory, and a relative one was the working directory's (a `report` run from / spilled rows of
    the extracts into /溢出 目录), while rule_folders in the same file were the config's neighbours."""
    from pipelines.config import load_config

    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    (tmp_path / "配置 目录").mkdir()
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    config = tmp_path / "配置 目录" / "c.yaml"
    config.write_text("duckdb: {temp_directory: '溢出 目录'}\n", encoding="utf-8")
    assert load_config(config)["duckdb"]["temp_directory"] == str(tmp_path / "配置 目录" / "溢出 目录")
    config.write_text("duckdb: {temp_directory: ~/spill}\n", encoding="utf-8")
    assert load_config(config)["duckdb"]["temp_directory"] == str(home / "spill")
    assert list(elsewhere.iterdir()) == []


def test_path_arguments_mean_what_an_administrator_means(tmp_path, capsys, monkeypatch):
    """From probes of the CLI and of installs: `--db=~/fw.duckdb` (no shell expands it) put the store
    in the home folder (DuckDB expands `~`) and its lock in ./~/ — two runs could hold it at once;
    an empty --inbox (an unset $INBOX) read the working directory; OUT inside the inbox was read
    back each night as a delivery; --config given twice kept the last without a word."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    connect(home / "fw.duckdb").close()
    code, err = _refusal(capsys, ["report", "--db=~/fw.duckdb", "--out", str(tmp_path / "out"), "--as-of", "1999-01-01"])
    assert code == cli.EXIT_USAGE and "before 2000" in err  # the store in the home folder was found
    assert not (tmp_path / "~").exists()
    delivery_1(tmp_path / "inbox")
    night = ["nightly", "--db", str(tmp_path / "fw.duckdb")]
    for argv, said in [
        ([*night, "--inbox", "", "--out", "out"], "fundwatch nightly: --inbox is empty: name a folder"),
        ([*night, "--inbox", "inbox", "--out", "inbox/out"],
         "fundwatch nightly: --out inbox/out is inside the inbox inbox: each night would read it as a delivery; "
         "keep OUT outside the inbox"),
        ([*night, "--inbox", "inbox", "--out", "out", "--config", "a.yaml", "--config", "b.yaml"],
         "fundwatch nightly: --config given twice: give it once (see fundwatch nightly --help)"),
    ]:
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse's own refusal
            code = exc.code
        err = capsys.readouterr().err.strip()
        assert code == cli.EXIT_USAGE and err == said, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "inbox"]


def test_a_store_rehearsed_ahead_is_returned_to_and_reported_on_as_of_its_own_days(tmp_path, capsys, prefect_api):
    """From a regression probe: after `nightly --any-day` for a day ahead (generated data), its
    worklists could not be returned — the default as-of (today) is before their issue, and every
    later --as-of was refused. Within a year of today any day is taken (a night stepped to the day
    its 挂牌督办 falls due); beyond, up to the store's last night."""
    from datetime import timedelta

    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    today = cli._today()
    ahead = today + timedelta(days=400)
    assert cli.main(["nightly", "--inbox", str(inbox), "--db", str(db), "--out", str(out),
                     "--as-of", ahead.isoformat(), "--any-day"]) == cli.EXIT_OK
    capsys.readouterr()
    assert cli.main(["report", "--db", str(db), "--out", str(out), "--as-of", ahead.isoformat()]) == cli.EXIT_OK
    assert cli.main(["report", "--db", str(db), "--out", str(out),
                     "--as-of", (today + timedelta(days=90)).isoformat()]) == cli.EXIT_OK
    later = (ahead + timedelta(days=1)).isoformat()
    capsys.readouterr()
    code, err = _refusal(capsys, ["report", "--db", str(db), "--out", str(out), "--as-of", later])
    assert code == cli.EXIT_USAGE
    assert err == (f"fundwatch report: --as-of {later} is more than a year after today ({today}) and after the "
                   f"store's last night ({ahead}): a mistyped year?"), err
    workbook = next(out.glob("疑点核查台账_*.xlsx"))
    assert cli.main(["returns", "--db", str(db), "--as-of", ahead.isoformat(), str(workbook)]) == cli.EXIT_OK


def test_verbose_may_follow_the_command_generate_included(tmp_path):
    """A user adds --verbose to the command that failed, after its options: it was refused there as
    an unrecognised argument (by the generator too, which reads its own arguments)."""
    for argv in (["nightly", "--inbox", "i", "--db", "d", "--out", "o", "--verbose"],
                 ["report", "--db", "d", "--out", "o", "-v"], ["-v", "returns", "--db", "d", "a.xlsx"]):
        assert cli.parse_args(argv).verbose is True, argv
    assert cli.parse_args(["report", "--db", "d", "--out", "o"]).verbose is False
    # returns' options between its workbooks (the second workbook was refused as unrecognised)
    between = cli.parse_args(["returns", "--db", "d", "a.xlsx", "-v", "b.xlsx", "--as-of", "2026-12-01", "c.xlsx"])
    assert (between.workbooks, between.verbose, between.as_of) == (["a.xlsx", "b.xlsx", "c.xlsx"], True, "2026-12-01")
    assert cli.parse_args(["returns", "--db", "d", "a.xlsx"]).verbose is False
    assert cli.main(["generate", "--out", str(tmp_path / "g"), "--persons", "30", "-v"]) == cli.EXIT_OK
    assert list((tmp_path / "g" / "inbox").rglob("payments*"))
