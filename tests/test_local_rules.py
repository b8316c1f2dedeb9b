"""An office's own rules (config `rule_folders`): loaded beside the shipped rules/, named in the
worklist, the dashboard and the notebooks, checked by the config like a shipped rule, and unable to
stand in for a shipped one. The example rule is the README's, docs/examples/local_rules/."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import openpyxl
import pytest
import yaml

from _nightly_inbox import ALIVE, DEAD, delivery_1
from conftest import fundwatch_env
from conftest import store_scalar as _count
from pipelines import analysis, report, worklists
from pipelines.config import load_config, rule_folders
from pipelines.flows import StepFailed, nightly_flow
from pipelines.resources import rules_dir
from pipelines.store import connect, scalar

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "local_rules" / "PAID_AFTER_CREMATION.yaml"
NIGHT = date(2026, 10, 21)

pytestmark = pytest.mark.usefixtures("prefect_api")


def _office(root: Path, rule_files: list[Path], folder: str = "own_rules", extra: str = "") -> Path:
    """A config in root/conf naming a rule folder beside it (relative, as an office writes it)."""
    own = root / "conf" / folder
    own.mkdir(parents=True)
    for path in rule_files:
        shutil.copy(path, own / path.name)
    config = root / "conf" / "fundwatch.yaml"
    config.write_text(f"rule_folders: [{folder}]\n{extra}", encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def office_night(tmp_path_factory, prefect_api):
    root = tmp_path_factory.mktemp("office")
    config = _office(root, [EXAMPLE])
    inbox, db, out = root / "inbox", root / "fw.duckdb", root / "out"
    delivery_1(inbox)
    summary = nightly_flow(inbox=str(inbox), db=str(db), out=str(out), as_of=NIGHT, config_path=str(config),
                           progress=False)
    return {"root": root, "db": db, "out": out, "summary": summary}


def test_an_offices_own_rule_runs_beside_the_shipped_ones(office_night):
    con = connect(office_night["db"], read_only=True)
    try:
        found = con.execute("""select subject, amount, period_from, period_to from suspects
                               where rule_id = 'PAID_AFTER_CREMATION'""").fetchall()
        # what the rule means, asked of the store directly: recurring payments paid after the cremation
        expected = scalar(con, """select sum(p.amount) from payments p join deaths d using (person_id)
                                  where p.paid_on > d.cremated_on and p.person_id = ?""", [DEAD])
        shipped = scalar(con, "select count(*) from suspects where rule_id = 'PAID_AFTER_DEATH' and subject = ?", [DEAD])
        recorded = con.execute("select title, rule_file, recorded_on from rule_catalogue where rule_id = ?",
                               ["PAID_AFTER_CREMATION"]).fetchall()
    finally:
        con.close()
    assert expected > 0 and found == [(DEAD, expected, "202609", "202610")]
    assert ALIVE not in [s for s, *_ in found]
    assert shipped == 1  # the shipped rules ran too
    own = office_night["summary"]["by_rule"]["PAID_AFTER_CREMATION"]
    assert (own["title"], own["detected"], own["open"]) == ("火化后仍发放待遇", 1, 1)
    own_file = (office_night["root"] / "conf" / "own_rules" / "PAID_AFTER_CREMATION.yaml").resolve()
    assert recorded == [("火化后仍发放待遇", str(own_file), NIGHT)]


def test_the_worklist_names_an_own_rule_and_gives_its_policy_basis(office_night):
    (path,) = office_night["out"].glob("疑点核查台账_*.xlsx")
    book = openpyxl.load_workbook(path)
    sheet = book[worklists.SHEET]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, (c.value for c in row))) for row in sheet.iter_rows(min_row=2)]
    (own,) = [r for r in rows if r["规则编号"] == "PAID_AFTER_CREMATION"]
    assert own["规则名称"] == "火化后仍发放待遇" and own["公民身份号码"] == DEAD
    cover = "\n".join(str(c.value) for row in book[worklists.COVER].iter_rows() for c in row if c.value)
    assert "《江西省社会保险基金行政监督实施办法》第二十三条第（三）项" in cover


def test_the_dashboard_and_notebooks_name_an_own_rule_without_its_config(office_night):
    # `fundwatch report` and a notebook are often run without the night's config: the store
    # remembers the rule as the night ran it
    con = connect(office_night["db"], read_only=True)
    try:
        by_rule = {r["rule_id"]: r["rule_title"] for r in report.collect(con)["by_rule"]}
        listed = analysis.suspects_frame(con, rule_id="PAID_AFTER_CREMATION")
        rule = analysis.find_rule("PAID_AFTER_CREMATION", con)
        tried = analysis.rule_flags_at(con, "PAID_AFTER_CREMATION", "one_off_items", [[], ["基本养老金"]])
    finally:
        con.close()
    assert by_rule["PAID_AFTER_CREMATION"] == "火化后仍发放待遇"
    assert list(listed["rule_title"]) == ["火化后仍发放待遇"]
    assert rule.title == "火化后仍发放待遇" and "one_off_items" in rule.params
    assert list(tried["findings"]) == [1, 0]  # 基本养老金 counted as one-off: nothing left to find


def test_a_notebook_says_when_an_own_rules_file_is_gone_or_broken(office_night, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(office_night["db"], db)
    con = duckdb.connect(str(db))
    try:
        con.execute("update rule_catalogue set rule_file = ? where rule_id = 'PAID_AFTER_CREMATION'",
                    [str(tmp_path / "moved" / "PAID_AFTER_CREMATION.yaml")])
        with pytest.raises(KeyError, match="PAID_AFTER_CREMATION: its file .*moved.* is gone"):
            analysis.find_rule("PAID_AFTER_CREMATION", con)
        with pytest.raises(KeyError, match="no loadable rule NO_SUCH_RULE"):
            analysis.find_rule("NO_SUCH_RULE", con)
        broken = tmp_path / "PAID_AFTER_CREMATION.yaml"
        broken.write_text("id: PAID_AFTER_CREMATION\ntitle: [unclosed\n", encoding="utf-8")
        con.execute("update rule_catalogue set rule_file = ? where rule_id = 'PAID_AFTER_CREMATION'", [str(broken)])
        # the threshold notebook catches KeyError: it then back-tests the recorded suspects only
        with pytest.raises(KeyError, match="PAID_AFTER_CREMATION: its file .* no longer loads: not valid YAML"):
            analysis.find_rule("PAID_AFTER_CREMATION", con)
    finally:
        con.close()


def test_the_config_checks_an_own_rules_parameters_and_names_like_a_shipped_ones(tmp_path):
    config = _office(tmp_path, [EXAMPLE], extra="rules:\n  PAID_AFTER_CREMATION:\n    one_off_items: [丧葬补助金]\n"
                                                "disabled_rules: [PAID_AFTER_CREMATION]\n")
    loaded = load_config(config)
    assert rule_folders(loaded) == [rules_dir(), (tmp_path / "conf" / "own_rules").resolve()]
    (tmp_path / "conf" / "fundwatch.yaml").write_text(
        "rule_folders: [own_rules]\nrules:\n  PAID_AFTER_CREMATION:\n    one_off_itemz: []\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="unknown parameter.*one_off_itemz.*PAID_AFTER_CREMATION declares: one_off_items"):
        load_config(config)
    # without the folder, the same id is no rule at all
    (tmp_path / "conf" / "fundwatch.yaml").write_text("disabled_rules: [PAID_AFTER_CREMATION]\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="there is no rule 'PAID_AFTER_CREMATION'"):
        load_config(config)


@pytest.mark.parametrize("folders, problem", [
    ("[not_there]", r"rule_folders: not_there is not a folder \(.*conf/not_there\)"),
    ("own_rules", "rule_folders: expected a list of folders"),
    ("[fundwatch.yaml]", "rule_folders: fundwatch.yaml is not a folder"),
    ("['.']", r"rule_folders: \. holds this config file, which would be read as a broken rule every night"),
])
def test_a_rule_folder_that_is_not_one_is_refused_when_the_config_is_read(tmp_path, folders, problem):
    config = _office(tmp_path, [EXAMPLE])
    config.write_text(f"rule_folders: {folders}\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=problem):
        load_config(config)


def test_the_shipped_rules_folder_is_not_taken_as_an_own_one(tmp_path):
    config = tmp_path / "fundwatch.yaml"
    config.write_text(f"rule_folders: ['{rules_dir()}']\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="is the shipped rules folder"):
        load_config(config)


def test_an_own_rule_cannot_stand_in_for_a_shipped_one(tmp_path):
    # A copy of PAID_AFTER_DEATH with its threshold gone: the office's file is refused by name and
    # the night fails after the rest — the shipped rule ran, unchanged.
    own_copy = tmp_path / "PAID_AFTER_DEATH.yaml"
    own_copy.write_text((rules_dir() / "PAID_AFTER_DEATH.yaml").read_text(encoding="utf-8")
                        .replace("title: 死亡人员继续领取待遇", "title: 本地改写"), encoding="utf-8")
    config = _office(tmp_path, [own_copy, EXAMPLE])
    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    with pytest.raises(StepFailed) as failed:
        nightly_flow(inbox=str(inbox), db=str(db), out=str(out), as_of=NIGHT, config_path=str(config), progress=False)
    reason = str(failed.value)
    assert reason.startswith("task detect failed: rule ")
    assert "own_rules/PAID_AFTER_DEATH.yaml: duplicate rule id PAID_AFTER_DEATH (also in PAID_AFTER_DEATH.yaml)" in reason
    con = connect(db, read_only=True)
    try:
        ran = dict(con.execute("select rule_id, count(*) from suspects group by rule_id").fetchall())
        title = scalar(con, "select title from rule_catalogue where rule_id = 'PAID_AFTER_DEATH'")
    finally:
        con.close()
    assert ran["PAID_AFTER_DEATH"] == 1 and ran["PAID_AFTER_CREMATION"] == 1
    assert title == "死亡人员继续领取待遇"
    assert list(out.glob("疑点核查台账_*.xlsx"))


def test_a_night_without_the_config_keeps_an_own_rules_suspects_and_says_it_did_not_run_it(office_night, tmp_path):
    from _nightly_inbox import delivery_2
    from pipelines.runsummary import format_summary

    db, inbox, out = tmp_path / "fw.duckdb", tmp_path / "inbox", tmp_path / "out"
    shutil.copy(office_night["db"], db)
    delivery_1(inbox)
    delivery_2(inbox)
    before = _own_suspect(db)
    summary = nightly_flow(inbox=str(inbox), db=str(db), out=str(out), as_of=date(2026, 11, 21), progress=False)
    assert summary["status"] == "completed" and summary["rules_not_loaded"] == ["PAID_AFTER_CREMATION"]
    assert "rules not loaded tonight: PAID_AFTER_CREMATION (not run" in format_summary(summary)
    (amount, period_to, status, detected_on, events), = _own_suspect(db)
    # neither grown by November's payment nor reported gone; its casework goes on (20 working days
    # after issue, it is overdue)
    assert (amount, period_to, status, detected_on) == before[0][:4]
    assert events == before[0][4] + ["overdue"]
    (path,) = out.glob("疑点核查台账_*.xlsx")
    sheet = openpyxl.load_workbook(path)[worklists.SHEET]
    header = [c.value for c in sheet[1]]
    named = {row[header.index("规则编号")]: row[header.index("规则名称")] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert named["PAID_AFTER_CREMATION"] == "火化后仍发放待遇"


def _own_suspect(db: Path) -> tuple:
    con = connect(db, read_only=True)
    try:
        return con.execute("""select amount, period_to, status, last_detected_on,
                                     (select list(event order by happened_at) from suspect_events e
                                      where e.suspect_id = s.suspect_id)
                              from suspects s where rule_id = 'PAID_AFTER_CREMATION'""").fetchall()
    finally:
        con.close()


def test_the_configs_rule_folders_name_an_own_rule_where_the_store_has_no_record_of_it(office_night, tmp_path):
    # a store from before rule_catalogue, or a rule not yet run: the config's folders name it
    db = tmp_path / "copy.duckdb"
    shutil.copy(office_night["db"], db)
    config = load_config(office_night["root"] / "conf" / "fundwatch.yaml")
    con = connect(db)
    try:
        con.execute("delete from rule_catalogue")
        with_config = {r["rule_id"]: r["rule_title"] for r in report.collect(con, config=config)["by_rule"]}
        without = {r["rule_id"]: r["rule_title"] for r in report.collect(con)["by_rule"]}
        con.execute("update suspects set status = '已重开' where rule_id = 'PAID_AFTER_CREMATION'")  # issued again
        (path,) = worklists.write_worklists(con, tmp_path / "out", date(2026, 10, 22), config)
    finally:
        con.close()
    assert with_config["PAID_AFTER_CREMATION"] == "火化后仍发放待遇"
    assert without["PAID_AFTER_CREMATION"] == "PAID_AFTER_CREMATION"  # nothing to name it by
    sheet = openpyxl.load_workbook(path)[worklists.SHEET]
    header = [c.value for c in sheet[1]]
    named = {row[header.index("规则编号")]: row[header.index("规则名称")] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert named["PAID_AFTER_CREMATION"] == "火化后仍发放待遇"


def _failed_night(tmp_path: Path, office_night: dict, *rule_files: Path) -> tuple[str, dict]:
    db, inbox, out = tmp_path / "fw.duckdb", tmp_path / "inbox", tmp_path / "out"
    shutil.copy(office_night["db"], db)
    delivery_1(inbox)
    config = _office(tmp_path, list(rule_files))
    with pytest.raises(StepFailed) as failed:
        nightly_flow(inbox=str(inbox), db=str(db), out=str(out), as_of=date(2026, 10, 22), config_path=str(config),
                     progress=False)
    con = connect(db, read_only=True)
    try:
        summary = json.loads(scalar(con, "select summary::varchar from runs order by started_at desc limit 1"))
    finally:
        con.close()
    return str(failed.value), summary


def test_own_rules_that_fail_at_night_are_all_named_by_their_paths(office_night, tmp_path):
    rule = tmp_path / "UNKNOWN_COLUMN.yaml"
    rule.write_text(EXAMPLE.read_text(encoding="utf-8").replace("PAID_AFTER_CREMATION", "UNKNOWN_COLUMN")
                    .replace("p.paid_on > c.cremated_on", "p.no_such_column > c.cremated_on"), encoding="utf-8")
    misspelt = tmp_path / "MISSPELT_KEY.yaml"
    misspelt.write_text(EXAMPLE.read_text(encoding="utf-8").replace("PAID_AFTER_CREMATION", "MISSPELT_KEY")
                        .replace("params:", "param_bounds: {}\nincremetal: select 1 as subject\nparams:"), encoding="utf-8")
    reason, summary = _failed_night(tmp_path, office_night, rule, misspelt)
    own = (tmp_path / "conf" / "own_rules").resolve()
    # every broken rule is named in the one line, each reason is in runs.summary
    assert reason.startswith(f"task detect failed: rule {own}/MISSPELT_KEY.yaml: unknown key(s) incremetal (meant incremental?)")
    assert reason.endswith(f"(and 1 more rule(s): {own}/UNKNOWN_COLUMN.yaml — each reason in runs.summary rule_errors)")
    errors = {e["file"]: e["error"] for e in summary["rule_errors"]}
    assert errors[f"{own}/MISSPELT_KEY.yaml"].startswith("unknown key(s) incremetal")
    assert errors[f"{own}/UNKNOWN_COLUMN.yaml"] == summary["by_rule"]["UNKNOWN_COLUMN"]["error"]
    assert "no_such_column" in summary["by_rule"]["UNKNOWN_COLUMN"]["error"]
    assert "error" not in summary["by_rule"]["PAID_AFTER_DEATH"]
    assert summary["status"] == "failed"


def test_an_own_rule_whose_file_no_longer_loads_is_named_by_its_path_not_said_to_be_missing(office_night, tmp_path):
    rule = tmp_path / "PAID_AFTER_CREMATION.yaml"
    rule.write_text("id: PAID_AFTER_CREMATION\ntitle: [unclosed\n", encoding="utf-8")
    reason, summary = _failed_night(tmp_path, office_night, rule)
    own = (tmp_path / "conf" / "own_rules").resolve()
    assert reason.startswith(f"task detect failed: rule {own}/PAID_AFTER_CREMATION.yaml: not valid YAML: ")
    assert reason.endswith("(line 3, column 1)") and "\n" not in reason  # PyYAML's own text spans four lines
    # its open suspect is kept, and the summary does not send the office looking for its config
    assert summary["by_rule"]["PAID_AFTER_CREMATION"]["open"] == 1
    assert summary["rules_not_loaded"] == []


def test_fundwatch_rules_lists_the_rules_a_night_would_run_and_plans_their_queries_on_the_store(office_night, capsys):
    from pipelines import cli

    config = office_night["root"] / "conf" / "fundwatch.yaml"
    runs_before = _runs(office_night["db"])
    code = cli.main(["rules", "--config", str(config), "--db", str(office_night["db"])])
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK, out
    shipped = len(list(rules_dir().glob("*.yaml")))
    assert out.splitlines()[0] == (f"fundwatch rules: {shipped + 1} rule(s) loaded ({shipped} shipped, 1 from rule_folders); "
                                   f"queries planned against {office_night['db']} as of {NIGHT}; 0 problem(s)")
    own_line = next(line for line in out.splitlines() if "PAID_AFTER_CREMATION" in line)
    assert "火化后仍发放待遇" in own_line and "own_rules/PAID_AFTER_CREMATION.yaml" in own_line
    assert _runs(office_night["db"]) == runs_before  # looked at, not run


def test_fundwatch_rules_finds_a_rule_that_would_fail_tonight_before_the_night(office_night, tmp_path, capsys):
    from pipelines import cli

    bad = tmp_path / "UNKNOWN_COLUMN.yaml"
    bad.write_text(EXAMPLE.read_text(encoding="utf-8").replace("PAID_AFTER_CREMATION", "UNKNOWN_COLUMN")
                   .replace("p.paid_on > c.cremated_on", "p.no_such_column > c.cremated_on"), encoding="utf-8")
    unreadable = tmp_path / "BROKEN.yaml"
    unreadable.write_text("id: BROKEN\ntitle: [unclosed\n", encoding="utf-8")
    wrong_columns = tmp_path / "WRONG_COLUMNS.yaml"
    wrong_columns.write_text(EXAMPLE.read_text(encoding="utf-8").replace("PAID_AFTER_CREMATION", "WRONG_COLUMNS")
                             .replace(")) as evidence", ")) as evidenz"), encoding="utf-8")
    no_subject = tmp_path / "NO_SUBJECT.yaml"  # the night reads the incremental query's `subject`
    no_subject.write_text(EXAMPLE.read_text(encoding="utf-8").replace("PAID_AFTER_CREMATION", "NO_SUBJECT")
                          + "incremental: |\n  select distinct person_id from new_payments\n", encoding="utf-8")
    upper_subject = tmp_path / "UPPER_SUBJECT.yaml"  # an identifier in capitals is the same column, as at night
    upper_subject.write_text(EXAMPLE.read_text(encoding="utf-8").replace("PAID_AFTER_CREMATION", "UPPER_SUBJECT")
                             + "incremental: |\n  SELECT DISTINCT PERSON_ID AS SUBJECT FROM NEW_PAYMENTS\n",
                             encoding="utf-8")
    config = _office(tmp_path, [bad, unreadable, wrong_columns, no_subject, upper_subject, EXAMPLE],
                     extra="disabled_rules: [AMOUNT_OUTLIER]\n")
    own = (tmp_path / "conf" / "own_rules").resolve()
    (own / "old" / "older").mkdir(parents=True)  # rules filed away: not read, and said (passed over in silence before)
    shutil.copy(EXAMPLE, own / "old" / "OLD_RULE.yaml")
    shutil.copy(EXAMPLE, own / "old" / "older" / "OLDER_RULE.yaml")
    # without a store: what loads
    assert cli.main(["rules", "--config", str(config)]) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert f"  note {own}/old: 1 rule file(s) in this sub-folder are not read" in out, out
    assert f"  note {own}/old/older: 1 rule file(s) in this sub-folder are not read" in out, out
    listing = config.read_text(encoding="utf-8").replace("rule_folders: [own_rules]", "rule_folders: [own_rules, own_rules/old]")
    (tmp_path / "conf" / "listed.yaml").write_text(listing, encoding="utf-8")
    cli.main(["rules", "--config", str(tmp_path / "conf" / "listed.yaml")])
    out = capsys.readouterr().out
    assert "/old:" not in out and f"  note {own}/old/older: 1 rule file(s)" in out, out  # a listed one is read
    assert f"problem {own}/old/OLD_RULE.yaml" in out, out
    assert f"problem {own}/BROKEN.yaml: not valid YAML" in out and "no_such_column" not in out
    assert "disabled by config" in next(line for line in out.splitlines() if "AMOUNT_OUTLIER" in line)
    # with the store: the query that names a column payments lacks, found before the night
    assert cli.main(["rules", "--config", str(config), "--db", str(office_night["db"])]) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    (problem,) = [line for line in out.splitlines() if "UNKNOWN_COLUMN.yaml" in line and "problem" in line]
    assert problem.startswith(f"  problem {own}/UNKNOWN_COLUMN.yaml: ") and "no_such_column" in problem
    # where in the query: DuckDB's LINE, the query's own line (not the file's)
    sql = yaml.safe_load(bad.read_text(encoding="utf-8"))["sql"].splitlines()
    line = next(i for i, text in enumerate(sql, start=1) if "no_such_column" in text)
    assert problem.endswith(f"(at line {line} of the query)"), problem
    (incremental,) = [line for line in out.splitlines() if "NO_SUBJECT.yaml" in line and "problem" in line]
    assert incremental.endswith("incremental: returns person_id; it must return the subjects as a column named "
                                "subject (… as subject)"), incremental
    (columns,) = [line for line in out.splitlines() if "WRONG_COLUMNS.yaml" in line and "problem" in line]
    assert columns.endswith("the final select must return exactly subject, person_id, agency_code, period_from, "
                            "period_to, amount, evidence; it returns subject, person_id, agency_code, period_from, "
                            "period_to, amount, evidenz")
    assert "; 4 problem(s)" in out.splitlines()[0]


def _runs(db: Path) -> int:
    con = connect(db, read_only=True)
    try:
        return scalar(con, "select count(*) from runs")
    finally:
        con.close()


def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly(tmp_path):
    import os
    import subprocess
    import sys

    # as `fundwatch rules | head -1`: the reader is gone before fundwatch has printed its lines
    # (the pipe is closed before the interpreter has even started)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    child = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "rules"], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0 and err == ""


@pytest.mark.parametrize("key, refused", [
    ("param_bound", "param_bounds"), ("incremetal", "incremental"), ("wacth", "watch"),
    ("config_param", "config_params"), ("description_en", None), ("title_cn", None), ("severity_en", None),
    ("incremental_note", None), ("watch_note", None), ("mode", None), ("sql2", None), ("notes", None),
])
def test_a_rule_file_key_one_slip_from_a_key_whose_loss_is_silent_is_refused_and_other_keys_are_left(tmp_path, key,
                                                                                                   refused):
    from pipelines.rules import load_rules

    folder = tmp_path / "own"
    folder.mkdir()
    (folder / EXAMPLE.name).write_text(EXAMPLE.read_text(encoding="utf-8").replace("params:", f"{key}: x\nparams:"),
                                       encoding="utf-8")
    loaded, errors = load_rules([folder])
    if refused:
        assert not loaded and [e.message for e in errors] == [f"unknown key(s) {key} (meant {refused}?)"]
    else:
        assert [r.id for r in loaded] == ["PAID_AFTER_CREMATION"] and not errors


@pytest.mark.parametrize("ending", [";", ";\n", "\n  -- the end", "  -- the end"])
def test_fundwatch_rules_takes_an_sql_that_ends_as_the_night_takes_it(office_night, tmp_path, capsys, ending):
    from pipelines import cli

    text = EXAMPLE.read_text(encoding="utf-8").rstrip("\n")
    assert text.endswith("having sum(amount) > 0")
    config = _office(tmp_path, [])
    (tmp_path / "conf" / "own_rules" / EXAMPLE.name).write_text(text + ending.replace("\n", "\n  ") if "\n" in ending
                                                                else text + ending, encoding="utf-8")
    code = cli.main(["rules", "--config", str(config), "--db", str(office_night["db"])])
    assert code == cli.EXIT_OK, capsys.readouterr().out


def test_fundwatch_rules_shows_the_parameter_values_a_night_binds_region_by_region(tmp_path, capsys):
    from pipelines import cli

    long_id = "PAID_AFTER_CREMATION_BY_PAYMENT_DATE_OWN"
    own = tmp_path / f"{long_id}.yaml"
    own.write_text(EXAMPLE.read_text(encoding="utf-8").replace("PAID_AFTER_CREMATION", long_id), encoding="utf-8")
    config = _office(tmp_path, [own], extra=(
        "rules:\n  LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 45000}\n"
        "regions:\n"
        "  '360702': {rules: {LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 30000}}}\n"
        "  '360703': {rules: {LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 30000}}}\n"
        "  '360704': {rules: {LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 45000}}}\n"))
    assert cli.main(["rules", "--config", str(config)]) == cli.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    at = lines.index(next(line for line in lines if "LARGE_PAYMENT_UNREVIEWED" in line))
    assert "2 parameter set(s)" in lines[at]
    # 360704 sets what the province sets: no set of its own
    assert lines[at + 1].strip() == ("parameters (other regions): large_payment_threshold=45000, "
                                     "review_time_required=false")
    assert lines[at + 2].strip() == ("parameters (regions 360702, 360703): large_payment_threshold=30000, "
                                     "review_time_required=false")
    death = lines[lines.index(next(line for line in lines if "PAID_AFTER_DEATH " in line)) + 1]
    assert death.split(": ", 1)[1].startswith("one_off_items=[丧葬补助金, 一次性抚恤金")
    # an id longer than the usual column keeps every rule's subject in one column
    rule_lines = [line for line in lines if "(shipped)" in line or long_id in line and "parameters" not in line]
    assert len(rule_lines) == len(list(rules_dir().glob("*.yaml"))) + 1
    assert len({line.index(line.split()[1]) for line in rule_lines}) == 1


def test_fundwatch_rules_plans_as_of_the_night_tried_when_the_stores_only_night_failed(tmp_path, capsys):
    from pipelines import cli

    bad = tmp_path / "UNKNOWN_COLUMN.yaml"
    bad.write_text(EXAMPLE.read_text(encoding="utf-8").replace("PAID_AFTER_CREMATION", "UNKNOWN_COLUMN")
                   .replace("p.paid_on > c.cremated_on", "p.no_such_column > c.cremated_on"), encoding="utf-8")
    config = _office(tmp_path, [bad])
    db, inbox = tmp_path / "fw.duckdb", tmp_path / "inbox"
    delivery_1(inbox)
    with pytest.raises(StepFailed):
        nightly_flow(inbox=str(inbox), db=str(db), out=str(tmp_path / "out"), as_of=NIGHT, config_path=str(config),
                     progress=False)
    assert cli.main(["rules", "--db", str(db)]) == cli.EXIT_OK  # the shipped rules only: they plan
    assert f"queries planned against {db} as of {NIGHT};" in capsys.readouterr().out


def test_fundwatch_rules_says_which_region_codes_no_agency_has(office_night, capsys, tmp_path):
    """From a probe: a region code no agency has ('0360702', a city's 360700 for its counties) was
    accepted and changed nothing, without a word — as a misspelt rule id would. Said by `rules --db`,
    not refused (its agencies may come in a later delivery)."""
    from pipelines import cli

    config = tmp_path / "c.yaml"
    config.write_text("regions:\n  '360702': {rules: {LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 40000}}}\n"
                      "  '360700': {rules: {LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 30000}}}\n",
                      encoding="utf-8")
    assert cli.main(["rules", "--config", str(config), "--db", str(office_night["db"])]) == cli.EXIT_OK
    notes = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("note")]
    assert notes == [f"note regions.360700: no agency in {office_night['db']} has this 行政区划代码 "
                     "(agencies.region_code); its values apply to no finding until one has"]


def _own_rule(tmp_path: Path, rule_id: str, sql_from: str, sql_to: str, name: str | None = None,
              encoding: str = "utf-8") -> Path:
    """The README's example rule as an office edits it: renamed, its SQL changed in one place."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("PAID_AFTER_CREMATION", rule_id)
    assert sql_from in text
    path = tmp_path / (name or f"{rule_id}.yaml")
    path.write_bytes(text.replace(sql_from, sql_to).encode(encoding))
    return path


def test_a_rule_of_several_statements_or_not_a_query_is_refused_before_any_of_it_runs(office_night, tmp_path, capsys):
    """From a probe of own rules: DuckDB runs every statement of an unbound text, so a rule
    `select …; delete from suspect_events; drop table deaths` emptied the events and dropped a
    table while the night said completed, and `fundwatch rules` (said to run nothing) wrote a COPY
    of the payments — names, ID numbers, accounts — to a file readable by all."""
    from pipelines import cli

    copied = tmp_path / "exfil.csv"
    ending = "having sum(amount) > 0"
    several = _own_rule(tmp_path, "SEVERAL", ending, f"{ending};\n  delete from suspect_events;\n  drop table deaths")
    copy = _own_rule(tmp_path, "COPY_OUT", ending,
                     f"{ending};\n  copy (select person_id, name, bank_account from payments) to '{copied}' (header)")
    (tmp_path / "whole").mkdir()
    whole = tmp_path / "whole" / "WHOLE_COPY.yaml"
    whole.write_text(EXAMPLE.read_text(encoding="utf-8").replace("PAID_AFTER_CREMATION", "WHOLE_COPY")
                     .split("sql: |")[0] + f"sql: |\n  copy (select * from payments) to '{copied}'\n", encoding="utf-8")
    before = {t: _count(office_night["db"], f"select count(*) from {t}") for t in ("suspect_events", "deaths")}
    config = _office(tmp_path / "check", [several, copy, whole])
    assert cli.main(["rules", "--config", str(config), "--db", str(office_night["db"])]) == 1
    out = capsys.readouterr().out
    assert "SEVERAL.yaml: sql must be one query (named CTEs ending in one select), nothing else: it holds 3 " \
           "statements (SELECT, DELETE, DROP)" in out, out
    assert "COPY_OUT.yaml: sql must be one query" in out and "WHOLE_COPY.yaml: sql must be one query" in out
    assert "it is a COPY" in out
    assert not copied.exists()
    reason, summary = _failed_night(tmp_path, office_night, several, copy)
    assert "sql must be one query" in reason and summary["status"] == "failed"
    assert not copied.exists()
    after = {t: _count(tmp_path / "fw.duckdb", f"select count(*) from {t}") for t in ("suspect_events", "deaths")}
    assert after["deaths"] == before["deaths"] and after["suspect_events"] >= before["suspect_events"] > 0


def test_an_own_rule_is_found_however_its_file_and_table_names_are_cased_and_its_file_encoded(tmp_path):
    """A rule writing FROM PAYMENTS was taken to read no extract, so incremental nights passed it
    over while its findings went stale; a file named .YAML was not loaded, without a word; one
    saved as GB18030 (Notepad, WPS) failed with Python's codec message."""
    from pipelines import rules

    upper = _own_rule(tmp_path, "UPPER_TABLES", "from payments p join cremated c", "FROM PAYMENTS p JOIN cremated c")
    upper = upper.replace(tmp_path / "UPPER_TABLES.YAML")
    gb = _own_rule(tmp_path, "GB_FILE", "火化后发放", "火化后仍发放", encoding="gb18030")
    loaded, errors = rules.load_rules([rules_dir(), tmp_path])
    assert errors == []
    own = {r.id: r for r in loaded if r.id in ("UPPER_TABLES", "GB_FILE")}
    assert sorted(own) == ["GB_FILE", "UPPER_TABLES"], [r.id for r in loaded]
    assert own["UPPER_TABLES"].reads == {"agencies", "deaths", "payments"}
    assert "火化后仍发放" in own["GB_FILE"].sql
    gb.write_bytes(b"id: GB_FILE\ntitle: \xff\xfe\x00\n")
    (error,) = rules.load_rules([rules_dir(), tmp_path])[1]
    assert error.message == "neither UTF-8 nor GB18030 text; save it as UTF-8"


@pytest.mark.parametrize("select_from, select_to, said", [
    ("sum(amount) as amount,", "-sum(amount) as amount,", "with an amount empty or below 0"),
    ("sum(amount) as amount,", "cast(null as decimal(18,2)) as amount,", "with an amount empty or below 0"),
    ("min(period) as period_from,", "'abc' as period_from,", "with a period not written YYYYMM"),
    ("max(period) as period_to,", "'202613' as period_to,", "with a period not written YYYYMM"),
    ("min(period) as period_from,", "'209901' as period_from,", "(or period_from after period_to)"),
    ("as agency_code,", "as agency_code_, null as agency_code,", "with no agency_code"),
    ("select person_id as subject,\n         person_id,", "select person_id as subject,\n         null as person_id,",
     "with no person_id (a person rule)"),
    ("select person_id as subject,", "select '' as subject,", "with an empty subject"),
    ("select person_id as subject,", "select person_id || ' ' as subject,", "with a subject with spaces around it"),
    ("as agency_code,", "as agency_code_, chr(9) as agency_code,", "with no agency_code"),
    ("min(period) as period_from,", "'000101' as period_from,", "with a period not written YYYYMM"),
], ids=["negative", "null-amount", "period-text", "month-13", "from-after-to", "no-agency", "no-person", "empty-subject",
        "spaced-subject", "tab-agency", "year-0"])
def test_findings_that_cannot_be_suspects_fail_the_rule_by_name(office_night, tmp_path, select_from, select_to, said):
    """An own rule's findings were taken whatever they held: a negative or empty 涉及金额 on a
    worklist, 所属期 "abc", a suspect without an agency that never reached a worklist."""
    from pipelines import rules

    rule = _own_rule(tmp_path, "ODD_FINDINGS", select_from, select_to)
    if "agency_code_" in select_to:  # keep the columns in the contract's order
        given = select_to.split("agency_code_, ")[1].removesuffix(" as agency_code,")
        rule.write_text(rule.read_text(encoding="utf-8").replace(
            f"first(agency_code order by period desc nulls last, amount desc, agency_code) as agency_code_, {given} as agency_code,",
            f"cast({given} as varchar) as agency_code,"), encoding="utf-8")
    con = duckdb.connect(":memory:")
    con.execute(f"attach '{office_night['db']}' as night (read_only)")
    con.execute("use night")
    (loaded,), errors = rules.load_rules(tmp_path)
    found = rules.detect(con, NIGHT, load_config(None), rules=[loaded])
    (error,) = found.errors
    assert errors == [] and error.rule_file == "ODD_FINDINGS.yaml"
    assert error.message.startswith("returns findings that cannot be suspects: 1 with ") and said in error.message
    assert scalar(con, "select count(*) from detections where rule_id = 'ODD_FINDINGS'") == 0


def test_several_rows_for_one_subject_fail_the_rule_not_one_kept_without_a_word(office_night, tmp_path):
    from pipelines import rules

    rule = _own_rule(tmp_path, "ROW_PER_PAYMENT", "group by person_id\n  having sum(amount) > 0",
                     "group by person_id, payment_id")
    (loaded,), _ = rules.load_rules(tmp_path)
    con = duckdb.connect(":memory:")
    con.execute(f"attach '{office_night['db']}' as night (read_only)")
    con.execute("use night")
    found = rules.detect(con, NIGHT, load_config(None), rules=[loaded])
    (error,) = found.errors
    assert error.message.startswith("the final select must return one row per subject; 1 subject(s) have several "
                                    "(e.g. 360702********"), error.message
    assert rule.exists()


NEVER_ENDS = """
id: NEVER_ENDS
title: 永不结束
title_en: A query that never ends
basis: 测试
severity: low
subject: person
params: {}
sql: |
  with n as (select count(*) as c from range(100000000) a, range(100000) b where a.range * b.range = -1)
  select person_id as subject, person_id, agency_code, period as period_from, period as period_to, amount,
         to_json(struct_pack(summary := 'x')) as evidence
  from payments, n where n.c < 0
"""


def test_a_rule_still_running_at_the_time_limit_is_stopped_and_named_and_the_others_run(office_night, tmp_path):
    """From a probe of own rules: a query that never ends held the night, and the store, until
    killed; the worklists of the shipped rules never came out."""
    (tmp_path / "NEVER_ENDS.yaml").write_text(NEVER_ENDS, encoding="utf-8")
    db, inbox, out = tmp_path / "fw.duckdb", tmp_path / "inbox", tmp_path / "out"
    shutil.copy(office_night["db"], db)
    delivery_1(inbox)
    config = _office(tmp_path, [tmp_path / "NEVER_ENDS.yaml"], extra="rule_time_limit_minutes: 0.05\n")
    with pytest.raises(StepFailed) as failed:
        nightly_flow(inbox=str(inbox), db=str(db), out=str(out), as_of=date(2026, 10, 22), config_path=str(config),
                     progress=False)
    own = (tmp_path / "conf" / "own_rules").resolve()
    assert str(failed.value) == (f"task detect failed: rule {own}/NEVER_ENDS.yaml: stopped after 0.05 min "
                                 "(rule_time_limit_minutes in the config): the rule was still running")
    con = connect(db, read_only=True)
    try:
        summary = json.loads(scalar(con, "select summary::varchar from runs order by started_at desc limit 1"))
        assert scalar(con, "select count(*) from suspects where rule_id = 'PAID_AFTER_DEATH'") == 1
    finally:
        con.close()
    assert summary["by_rule"]["PAID_AFTER_CREMATION"].get("error") is None
    assert list(out.glob("疑点核查台账_*.xlsx"))  # the worklists came out


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1441", ".nan", "true"])
def test_a_time_limit_that_is_no_number_of_minutes_is_refused_by_the_config(tmp_path, limit):
    config = tmp_path / "fundwatch.yaml"
    config.write_text(f"rule_time_limit_minutes: {limit}\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="rule_time_limit_minutes: expected minutes from above 0 to 1440"):
        load_config(config)
    assert load_config(None)["rule_time_limit_minutes"] == 60


# Runs `fundwatch` with rules._run_rule wrapped to touch a file as the rule NEVER_ENDS starts.
MARK_THE_RULE = r"""
import sys
from pipelines import cli, rules
real = rules._run_rule
def marked(con, rule, *args, **kwargs):
    if rule.id == "NEVER_ENDS":
        open(sys.argv[1], "w").close()
    return real(con, rule, *args, **kwargs)
rules._run_rule = marked
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_night_inside_a_query_that_never_ends_stops_at_sigterm_or_ctrl_c(office_night, tmp_path, stop, prefect_api):
    """A night in a statement ignored SIGTERM and Ctrl-C (Python runs their handlers between
    bytecodes, DuckDB runs a statement to its end): only kill -9 stopped it. It stops now as at a
    Ctrl-C between statements; the store opens and the next night runs."""
    (tmp_path / "NEVER_ENDS.yaml").write_text(NEVER_ENDS, encoding="utf-8")
    db, inbox, out, mark = tmp_path / "fw.duckdb", tmp_path / "inbox", tmp_path / "out", tmp_path / "rule-started"
    shutil.copy(office_night["db"], db)
    delivery_1(inbox)
    config = _office(tmp_path, [tmp_path / "NEVER_ENDS.yaml"])
    night = ["nightly", "--inbox", str(inbox), "--db", str(db), "--out", str(out), "--as-of", "2026-10-22",
             "--config", str(config)]
    # the session's Prefect API, as a user's PREFECT_API_URL: no temporary server started for each night
    env = fundwatch_env(tmp_path / "prefect-home", prefect_api)
    process = subprocess.Popen([sys.executable, "-c", MARK_THE_RULE, str(mark), *night], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # a background job's Ctrl-C is ignored unless restored (as a terminal's is not)
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler))
    try:
        for _ in range(600):
            if mark.exists() or process.poll() is not None:
                break
            time.sleep(0.2)
        assert mark.exists(), process.communicate(timeout=30)
        time.sleep(1)  # inside the statement
        process.send_signal(stop)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130 and err.strip().endswith("fundwatch nightly: interrupted"), err
    (tmp_path / "conf" / "own_rules" / "NEVER_ENDS.yaml").unlink()
    ran = subprocess.run([sys.executable, "-m", "pipelines.cli", *night], env=env, capture_output=True, text=True,
                         timeout=600)
    assert ran.returncode == 0, ran.stderr
    con = connect(db, read_only=True)
    try:
        assert [s for (s,) in con.execute("select status from runs order by started_at").fetchall()][-2:] == \
               ["failed", "completed"]
    finally:
        con.close()


def test_a_rule_cannot_declare_a_parameter_the_night_binds_itself(tmp_path):
    """`params: {as_of: 2020-01-01}` (and a config override of it) were listed by `fundwatch rules` as
    the value used; the night always bound its own day."""
    from pipelines import rules

    _own_rule(tmp_path, "OWN_AS_OF", "params:\n", "params:\n  as_of: '2020-01-01'\n")
    loaded, errors = rules.load_rules(tmp_path)
    assert loaded == [] and [e.message for e in errors] == [
        "params: as_of is the night's own (always $as_of); declare no such parameter"]


def test_a_failed_night_that_merged_its_findings_is_the_last_night_a_night_before_it_is_refused(office_night, tmp_path):
    """From a regression probe: a night that failed (a rule broken, or out of time) after merging
    had issued its worklists with its 逾期 — yet only completed nights counted as the store's last,
    so a night for an earlier day ran and lifted them."""
    from pipelines.flows import NightlyError

    rule = _own_rule(tmp_path, "UNKNOWN_COLUMN", "p.paid_on > c.cremated_on", "p.no_such_column > c.cremated_on")
    db, inbox, out = tmp_path / "fw.duckdb", tmp_path / "inbox", tmp_path / "out"
    shutil.copy(office_night["db"], db)
    delivery_1(inbox)
    config = str(_office(tmp_path, [rule]))
    with pytest.raises(StepFailed):
        nightly_flow(inbox=str(inbox), db=str(db), out=str(out), as_of=date(2026, 10, 30), config_path=config,
                     progress=False)
    with pytest.raises(NightlyError, match="^the store's last night was for 2026-10-30; a night for --as-of 2026-10-25 "):
        nightly_flow(inbox=str(inbox), db=str(db), out=str(out), as_of=date(2026, 10, 25), progress=False)


SLOW_WATCH = NEVER_ENDS.replace("NEVER_ENDS", "SLOW_WATCH").replace("params: {}", """params: {}
watch: |
  select person_id from payments, (select count(*) as c from range(100000000) a, range(100000) b
                                   where a.range * b.range = -1) n
  where n.c < 0""").replace("from payments, n where", "from payments_watch, n where")


def test_the_time_limit_holds_for_a_rules_watch_query_too(office_night, tmp_path):
    """From a regression probe: the limit covered a rule's sql but not its watch: (nor its
    incremental:) query, which ran on until Ctrl-C."""
    from pipelines import rules

    (tmp_path / "SLOW_WATCH.yaml").write_text(SLOW_WATCH, encoding="utf-8")
    (loaded,), errors = rules.load_rules(tmp_path)
    config = tmp_path / "fundwatch.yaml"
    config.write_text("rule_time_limit_minutes: 0.02\n", encoding="utf-8")
    con = duckdb.connect(":memory:")
    con.execute(f"attach '{office_night['db']}' as night (read_only)")
    con.execute("use night")
    found = rules.detect(con, NIGHT, load_config(config), rules=[loaded])
    assert errors == [] and [e.message for e in found.errors] == [
        "watch: stopped after 0.02 min (rule_time_limit_minutes in the config): the rule was still running"]


def test_fundwatch_rules_with_a_store_makes_no_spill_folder(office_night, tmp_path, capsys):
    """`rules --db` only plans, read-only: the config's duckdb.temp_directory is not made (a README
    audit found /srv/fundwatch/spill created by a look at the rules)."""
    from pipelines import cli

    spill = tmp_path / "srv" / "spill"
    config = tmp_path / "fundwatch.yaml"
    config.write_text(f"duckdb:\n  temp_directory: {spill}\n  memory_limit: 2GB\n", encoding="utf-8")
    assert cli.main(["rules", "--config", str(config), "--db", str(office_night["db"])]) == cli.EXIT_OK, \
        capsys.readouterr().out
    assert not spill.exists() and not spill.parent.exists()


def _rule_variant(tmp_path: Path, rule_id: str, edits: list[tuple[str, str]], extra: str = "") -> Path:
    text = EXAMPLE.read_text(encoding="utf-8").replace("PAID_AFTER_CREMATION", rule_id)
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "rules_src" / f"{rule_id}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + extra, encoding="utf-8")
    return path


def test_own_rules_reading_more_payment_columns_run_on_watch_and_incremental_nights_as_in_full(tmp_path):
    """A watching rule reading bank_account from payments_watch, a person rule with `incremental:`
    whose evidence names handled_by, and ones taking a payment's whole row: payments_watch (and a
    scoped night's payments) carried only eight columns, so the first failed every night and the
    second every incremental one (`Referenced column not found`), while `rules --db` passed both."""
    evidence = "paid_on := paid_on, amount := amount, agency_code := agency_code)"
    select = "p.person_id, p.payment_id, p.item, p.period, p.paid_on, p.amount, p.agency_code, c.cremated_on"
    rules = [
        _rule_variant(tmp_path, "OWN_INCREMENTAL_HANDLED", [
            (select, select + ", p.handled_by"),
            (evidence, evidence.replace(")", ", handled_by := handled_by)"))],
            extra="incremental: |\n  select distinct person_id as subject from new_payments\n"),
        _rule_variant(tmp_path, "OWN_WATCH_ACCOUNT", [
            ("from payments p join cremated", "from payments_watch p join cremated"),
            (select, select + ", p.bank_account"),
            (evidence, evidence.replace(")", ", bank_account := bank_account)"))],
            extra="watch: |\n  select person_id from deaths\n"),
        _rule_variant(tmp_path, "OWN_WATCH_WHOLE_ROW", [
            ("from payments p join cremated", "from payments_watch p join cremated"),
            (select, "p.*, c.cremated_on"),
            (evidence, evidence.replace(")", ", reviewed_by := reviewed_by)"))],
            extra="watch: |\n  select person_id from deaths\n"),
    ]
    own = ("OWN_INCREMENTAL_HANDLED", "OWN_WATCH_ACCOUNT", "OWN_WATCH_WHOLE_ROW")
    evidences = _nightly_as_at_once(tmp_path, rules, own)
    assert [p["handled_by"] for p in evidences["OWN_INCREMENTAL_HANDLED"]["payments"]] == ["张经办"] * 3
    assert {p["bank_account"] for p in evidences["OWN_WATCH_ACCOUNT"]["payments"]} == {"6217000000000001"}
    assert {p["reviewed_by"] for p in evidences["OWN_WATCH_WHOLE_ROW"]["payments"]} == {"赵复核"}


def test_an_own_incremental_rule_giving_a_payments_whole_row_to_a_function_sees_every_column(tmp_path):
    """`to_json(p)` in an incremental person rule, alone (no other own rule to widen the rows): its
    evidence had eight keys on incremental nights and every column's in full, the suspect written
    `updated` for nothing (a regression probe of the column scan that missed function arguments)."""
    rule = _rule_variant(tmp_path, "OWN_INCREMENTAL_WHOLE_ROW", [
        ("p.person_id, p.payment_id, p.item, p.period, p.paid_on, p.amount, p.agency_code, c.cremated_on",
         "p.person_id, p.payment_id, p.item, p.period, p.paid_on, p.amount, p.agency_code, c.cremated_on, "
         "to_json(p) as payment_row"),
        ("\n         )) as evidence", ",\n             payment_rows := list(payment_row order by payment_id)"
                                 "\n         )) as evidence")],
        extra="incremental: |\n  select distinct person_id as subject from new_payments\n")
    evidences = _nightly_as_at_once(tmp_path, [rule], ("OWN_INCREMENTAL_WHOLE_ROW",))
    rows = [json.loads(r) if isinstance(r, str) else r for r in evidences["OWN_INCREMENTAL_WHOLE_ROW"]["payment_rows"]]
    assert {r["handled_by"] for r in rows} == {"张经办"} and all("_file_hash" in r for r in rows)


def _nightly_as_at_once(tmp_path: Path, rules: list[Path], own: tuple[str, ...]) -> dict[str, dict]:
    """Two nights (the second incremental) and one night of both deliveries: the own rules' suspects
    alike in every column; their evidence by rule."""
    from _nightly_inbox import delivery_2

    found = {}
    for how in ("nightly", "at once"):
        root = tmp_path / how.replace(" ", "_")
        config = _office(root, rules)
        inbox, db, out = root / "inbox", root / "fw.duckdb", root / "out"
        delivery_1(inbox)
        nights = [NIGHT, date(2026, 11, 21)] if how == "nightly" else [date(2026, 11, 21)]
        for night in nights:
            if night.month == 11:
                delivery_2(inbox)
            summary = nightly_flow(inbox=str(inbox), db=str(db), out=str(out), as_of=night, config_path=str(config),
                                   progress=False)
            assert not summary.get("rule_errors"), summary.get("rule_errors")
            assert all(summary["by_rule"][r]["detected"] == 1 for r in own), summary["by_rule"]
        if how == "nightly":  # the second night scoped the own rules to the subjects of its new rows
            assert summary["detect_scope"].startswith("incremental: "), summary["detect_scope"]
        con = connect(db, read_only=True)
        try:
            found[how] = con.execute("select rule_id, subject, amount, period_from, period_to, evidence::varchar "
                                     "from suspects where rule_id like 'OWN_%' order by all").fetchall()
        finally:
            con.close()
    assert found["nightly"] == found["at once"]
    return {rule_id: json.loads(e) for rule_id, _, _, _, _, e in found["nightly"]}

