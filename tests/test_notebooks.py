"""Analyst notebooks run top to bottom against a real store, read-only, showing no full ID number.

Each notebook under notebooks/ is executed with nbclient on the python3 (ipykernel) kernel, the
store passed through FUNDWATCH_DB, once on a store with suspects and verdicts and once on an
empty one (no runs, no verdicts). The analysis helpers they call are tested directly as well.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

import pipelines
from pipelines import analysis, report, report_dashboard, rules
from pipelines.config import Config
from pipelines.report_mask import mask_subject
from pipelines.store import connect

from test_report import ACCOUNTS, AS_OF, OUTCOME_OK, OUTCOME_RECOVER, PEOPLE, build_store

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
ID_RE = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


def test_the_two_required_notebooks_exist_without_stored_outputs():
    names = {p.name for p in NOTEBOOKS}
    assert {"explore_suspects.ipynb", "tune_threshold.ipynb"} <= names
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert params and "DB_PATH = None" in params[0].source
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} has outputs committed"


def _texts(nb) -> list[str]:
    """Every plain-text output (the HTML outputs carry plotly.js, whose constants look like IDs)."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o.get("text", ""))
            elif "data" in o:
                out.append(o["data"].get("text/plain", ""))
                out.append(o["data"].get("text/markdown", ""))
            elif o.get("output_type") == "error":
                out.append("\n".join(o.get("traceback", [])))
    return out


@pytest.fixture()
def kernel_env(monkeypatch):
    # The kernel imports the same pipelines as this test (source tree or installed package).
    root = str(Path(pipelines.__file__).resolve().parent.parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]))


@pytest.mark.slow
@pytest.mark.parametrize("empty", [False, True], ids=["store-with-verdicts", "empty-store"])
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_against_the_store(notebook, empty, tmp_path, monkeypatch, kernel_env):
    db = build_store(tmp_path / "fundwatch.duckdb", empty=empty)
    before = db.read_bytes()
    monkeypatch.setenv("FUNDWATCH_DB", str(db))
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(_texts(nb))
    assert str(db) in text  # it read the store it was given, not the demo output
    for secret in PEOPLE + ACCOUNTS:
        assert secret not in text
    assert not ID_RE.search(text)
    assert db.read_bytes() == before  # read-only: the notebook changed nothing
    if notebook.stem == "explore_suspects" and not empty:
        assert "masking check passed" in text and "360702********" in text
        con = duckdb.connect(str(db), read_only=True)
        open_n, amount = con.execute("select count(*), sum(amount) from suspects where status <> '已销号'").fetchall()[0]
        con.close()
        # the headline is the store's open suspects, as the dashboard counts them
        assert f"在办疑点（当前）{open_n} " in text and f"在办涉及金额 {amount:,.2f} 元" in text
        assert f"({open_n} open), amount at risk of the open ones {amount:,.2f} yuan" in text
        heads = [o["data"]["text/plain"].split("\n")[0].split() for cell in nb.cells for o in cell.get("outputs", [])
                 if o.get("data", {}).get("text/plain")]  # each table's header line
        assert ["疑点编号", "规则编号", "规则名称", "疑点对象", "公民身份号码", "姓名"] in [h[:6] for h in heads]
        assert ["发生时间", "事件", "详情", "运行编号"] in heads  # the drilled suspect's history
        assert not any({"suspect_id", "rule_title", "amount", "happened_at"} & set(h) for h in heads), heads
    if notebook.stem == "tune_threshold":
        assert ("尚无核实结果" in text) == empty
        heads = [o["data"]["text/plain"].split("\n")[0].split() for cell in nb.cells for o in cell.get("outputs", [])
                 if o.get("data", {}).get("text/plain")]
        assert empty or ["规则编号", "规则名称", "疑点数", "已核实", "经核实无问题", "查准率"] in heads
        assert empty or ["阈值", "疑点数", "涉及金额", "已核实", "经核实无问题", "核实属实", "查准率"] in [h[:7] for h in heads]
    # the charts as an analyst reads them (a visual probe): precision on ticks of its own (on the
    # counts' ticks a precision of 1.0 sat at the one labelled 0.9); the statuses in the dashboard's
    # colours (已销号 was red here, green there)
    figures = [o["data"]["application/vnd.plotly.v1+json"] for cell in nb.cells for o in cell.get("outputs", [])
               if "application/vnd.plotly.v1+json" in o.get("data", {})]
    if notebook.stem == "tune_threshold" and not empty:
        [precision_axis] = [f["layout"]["yaxis2"] for f in figures if "yaxis2" in f["layout"]]
        assert precision_axis["tickmode"] == "linear" and precision_axis["tickformat"] == ".0%"
        assert precision_axis["dtick"] == 0.2 and precision_axis["range"] == [0, 1.05]
    if notebook.stem == "explore_suspects" and not empty:
        [by_status] = [f for f in figures if "按规则与状态" in str(f["layout"].get("title"))]
        assert {bar["name"]: bar["marker"]["color"] for bar in by_status["data"]} == {
            bar["name"]: report_dashboard.STATUS_COLORS[bar["name"]] for bar in by_status["data"]}
        assert len(by_status["data"]) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("moved", [False, True], ids=["amount-lowered", "and-a-loss-moved-to-other-months"])
def test_the_breakdown_by_rule_counts_a_recovery_up_to_an_amount_a_later_night_lowered(
        moved, tmp_path, monkeypatch, kernel_env):
    """As the 汇总表 counts it: S00002 (PAID_AFTER_DEATH) was closed with 150,000.50 recovered and a
    later night lowered its 涉及金额 to 100,000.00; its rule's 追回金额 is 100,000.00 + S00003's 1,000.00
    — or + nothing of S00003's, answered for 202601–202603 when a corrected record has moved its loss
    wholly to months no sheet showed (the notebook counted the 1,000.00 the 汇总表 does not)."""
    db = build_store(tmp_path / "fundwatch.duckdb")
    con = duckdb.connect(str(db))
    con.execute("update suspects set amount = 100000.00 where suspect_id = 'S00002'")
    # a rule whose sum passes 1 亿: pandas showed the whole column as 4.742721e+08 (a scale probe)
    con.execute("update suspects set amount = 123456789.12 where suspect_id = 'S00010'")
    if moved:
        con.execute("update suspects set answered_period_from = '202601', answered_period_to = '202603'"
                    " where suspect_id = 'S00003'")
    recovered, counted = con.execute(
        "select sum(recovered_amount), sum(least(coalesce(recovered_amount, 0), amount)) from suspects "
        "where rule_id = 'PAID_AFTER_DEATH'").fetchall()[0]
    con.close()
    assert (recovered, counted) == (Decimal("151000.50"), Decimal("101000.00"))
    con = connect(db, read_only=True)
    summary = next(r for r in report.collect(con, AS_OF)["by_rule"] if r["rule_id"] == "PAID_AFTER_DEATH")
    con.close()
    assert summary["recovered"] == (Decimal("100000.00") if moved else Decimal("101000.00"))
    monkeypatch.setenv("FUNDWATCH_DB", str(db))
    nb = nbformat.read(next(p for p in NOTEBOOKS if p.stem == "explore_suspects"), as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    # the tables in the terms of the worklist and the 汇总表 (an analyst probe: suspect_id, rule_title,
    # recovered_counted… in English), the frames' own names kept for code
    breakdown = next(t for t in _texts(nb) if t.split("\n")[0].split()[-4:] == ["规则名称", "疑点数", "涉及金额", "计入追回金额"])
    line = next(l for l in breakdown.splitlines() if "PAID_AFTER_DEATH" in l)
    assert f"{summary['recovered']:,.2f}" in line.split() and "151,000.50" not in line, line
    transfers = next(l for l in breakdown.splitlines() if "FUND_PRIVATE_TRANSFER" in l)
    assert "123,456,789.12" in transfers.split() and "e+" not in breakdown, breakdown


@pytest.mark.slow
def test_tuning_a_parameter_that_is_no_amount_shows_findings_and_recommends_nothing(tmp_path, monkeypatch, kernel_env):
    """certification_max_days is a count of days: verdicts (compared by 涉及金额) cannot judge it;
    the thresholds given as text, as papermill's -p passes a list, are read."""
    db = build_store(tmp_path / "fundwatch.duckdb")
    monkeypatch.setenv("FUNDWATCH_DB", str(db))
    nb = nbformat.read(NOTEBOOKS[[p.stem for p in NOTEBOOKS].index("tune_threshold")], as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += '\nRULE_ID = "CERTIFICATION_OVERDUE"\nPARAM = "certification_max_days"\nTHRESHOLDS = "[146, 365, 730]"\n'
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(_texts(nb))
    assert "certification_max_days is not an amount in yuan" in text
    assert "no recommendation: certification_max_days is not an amount" in text
    assert "lowest threshold" not in text and "could not run" not in text and "was not re-run" not in text


@pytest.mark.slow
@pytest.mark.parametrize("params, said, unsaid", [
    # a parameter of another rule: nothing back-tested against this rule's verdicts, nothing recommended
    ('RULE_ID = "CERTIFICATION_OVERDUE"\nPARAM = "large_payment_threshold"\n',
     ["CERTIFICATION_OVERDUE has no parameter large_payment_threshold (it has ",
      "no recommendation: CERTIFICATION_OVERDUE has no parameter large_payment_threshold"],
     ["lowest threshold", "large_payment_threshold is not an amount in yuan"]),
    # the values at a rule's boundary, one given twice: each once, neither rounded into the other
    ("THRESHOLDS = [50000, 49999.99, 50000]\n", ["[49999.99, 50000]"], []),
    # NumPy's numbers, as an analyst writes a range: the numbers they are (np.int64 was refused)
    ("import numpy as np\nTHRESHOLDS = np.arange(40000, 60001, 10000)\n", ["[40000, 50000, 60000]"],
     ["Traceback", "is not a number of yuan"]),
    # a count of persons: whole numbers, each once (3 × 0.6 and 3 × 0.8 both round to 2), none below
    # the rule's bound (1 person: every account would be "shared")
    ('RULE_ID = "SHARED_BANK_ACCOUNT"\nPARAM = "shared_account_min_persons"\n',
     ["not tried, outside the bounds of shared_account_min_persons (2 to any): [1]", "[2, 3, 4, 5, 6, 9, 12]"], []),
], ids=["parameter-of-another-rule", "boundary-thresholds", "numpy-range", "count-parameter"])
def test_tuning_thresholds_are_each_shown_once_and_a_parameter_the_rule_lacks_is_said(
        tmp_path, monkeypatch, kernel_env, params, said, unsaid):
    db = build_store(tmp_path / "fundwatch.duckdb")
    monkeypatch.setenv("FUNDWATCH_DB", str(db))
    nb = nbformat.read(NOTEBOOKS[[p.stem for p in NOTEBOOKS].index("tune_threshold")], as_version=4)
    next(c for c in nb.cells if "parameters" in c.metadata.get("tags", [])).source += "\n" + params
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(_texts(nb))
    for words in said:
        assert words in text, words
    for words in unsaid:
        assert words not in text, words


@pytest.mark.slow
def test_tuning_starts_from_the_value_the_latest_night_ran_with(tmp_path, monkeypatch, kernel_env):
    """The nights ran with large_payment_threshold 30,000 from config (and 80,000 in one region):
    the notebook showed the file's 50,000 as 'the default' and tried 20,000–200,000 around it.
    It names the configured value and tunes around it (runs.summary keeps each night's parameter
    sets, in the shape tests/test_flow.py asserts the real flow writes)."""
    db = build_store(tmp_path / "fundwatch.duckdb")
    con = connect(db)
    sets = [{"params": {"large_payment_threshold": 30000, "review_time_required": False}, "regions": None},
            {"params": {"large_payment_threshold": 80000, "review_time_required": False}, "regions": ["360781"]}]
    con.execute("insert into runs values ('run-4', 'nightly', ?, ?, ?, 'completed', ?)",
                [datetime(2026, 11, 22, 2), datetime(2026, 11, 22, 3), date(2026, 11, 22),
                 json.dumps({"by_rule": {"LARGE_PAYMENT_UNREVIEWED": {"parameters": sets}}})])
    con.close()
    monkeypatch.setenv("FUNDWATCH_DB", str(db))
    nb = nbformat.read(NOTEBOOKS[[p.stem for p in NOTEBOOKS].index("tune_threshold")], as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(_texts(nb))
    assert ("the latest night ran LARGE_PAYMENT_UNREVIEWED with large_payment_threshold = 30000 (its config; "
            "the rule file's default is 50000)") in text
    assert "regions 360781 ran with large_payment_threshold = 80000" in text
    assert "[12000, 18000, 24000, 30000, 36000, 48000, 60000, 90000, 120000]" in text


@pytest.mark.slow
def test_tuning_recommends_no_threshold_below_the_one_in_force(tmp_path, monkeypatch, kernel_env):
    """Verdicts exist only for what the nights raised at 50,000: at 20,000 the precision was that of
    the same suspects, and the notebook recommended 20,000 — the bottom of the range whenever the
    value in force met the target — with findings below it no agency ever checked (an analyst probe)."""
    db = build_store(tmp_path / "fundwatch.duckdb")
    monkeypatch.setenv("FUNDWATCH_DB", str(db))
    nb = nbformat.read(NOTEBOOKS[[p.stem for p in NOTEBOOKS].index("tune_threshold")], as_version=4)
    next(c for c in nb.cells if "parameters" in c.metadata.get("tags", [])).source += "\nTARGET_PRECISION = 0.5\n"
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(_texts(nb))
    assert ("not recommended from verdicts: 20,000, 30,000, 40,000 — below the 50,000 the nights ran with, "
            "the rule's extra findings (see findings) have no verdicts yet") in text
    assert "lowest threshold with precision ≥ 50%: 50,000 yuan" in text


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_against_the_demo_store(notebook, demo_run, tmp_path, monkeypatch, kernel_env):
    """As an analyst does after `make demo`: no FUNDWATCH_DB, `jupyter lab notebooks/` (the kernel
    starts in notebooks/), the store in demo-output/ beside it."""
    assert demo_run.returncode == 0, demo_run.stderr
    before = demo_run.db.read_bytes()
    monkeypatch.delenv("FUNDWATCH_DB", raising=False)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "demo-output").mkdir()
    (tmp_path / "demo-output" / "fundwatch.duckdb").symlink_to(demo_run.db)
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path / "notebooks")}}).execute()
    text = "\n".join(_texts(nb))
    assert f"store: {tmp_path / 'demo-output' / 'fundwatch.duckdb'}" in text
    assert not ID_RE.search(text)  # the demo's ID numbers never reach a notebook's output
    assert demo_run.db.read_bytes() == before


def test_open_store_is_read_only_and_follows_the_env_var(tmp_path, monkeypatch):
    db = build_store(tmp_path / "fundwatch.duckdb")
    monkeypatch.setenv("FUNDWATCH_DB", str(db))
    con = analysis.open_store()
    assert analysis.latest_run(con)["run_id"] == "run-3"
    with pytest.raises(duckdb.Error):
        con.execute("delete from suspects")
    con.close()
    monkeypatch.delenv("FUNDWATCH_DB")
    (tmp_path / "checkout" / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout" / "notebooks")
    here, up = tmp_path / "checkout" / "notebooks" / "demo-output", tmp_path / "checkout" / "demo-output"
    assert analysis.store_path() == here / "fundwatch.duckdb"  # named when there is none
    with pytest.raises(FileNotFoundError, match="fundwatch demo") as no_store:
        analysis.open_store()
    assert f"{here / 'fundwatch.duckdb'} or {up / 'fundwatch.duckdb'}" in str(no_store.value)
    # `make demo`'s store at the top of the checkout, read by a kernel Jupyter started in notebooks/
    up.mkdir()
    (up / "fundwatch.duckdb").write_bytes(db.read_bytes())
    assert analysis.store_path() == up / "fundwatch.duckdb"
    con = analysis.open_store()
    assert analysis.latest_run(con)["run_id"] == "run-3"
    con.close()
    # one in the kernel's own folder comes first
    here.mkdir()
    (here / "fundwatch.duckdb").write_bytes(db.read_bytes())
    assert analysis.store_path() == here / "fundwatch.duckdb"
    analysis.open_store(db).close()  # an explicit DB_PATH wins over the default


def test_a_night_killed_midway_is_not_the_last_completed_run(tmp_path):
    """A night killed by SIGKILL or a power cut stays 'running' in `runs` until the next night marks
    it failed: the notebooks' "last completed run" (its summary, the as-of LATEST_RUN_ONLY filters
    on) is still the night before it; the interrupted one is the last run whatever became of it."""
    db = build_store(tmp_path / "fundwatch.duckdb")
    con = connect(db)
    con.execute("insert into runs values ('run-4', 'nightly', ?, null, ?, 'running', null)",
                [datetime(2026, 11, 22, 2), date(2026, 11, 22)])
    # killed after it had updated the suspects: those it found again carry its date (committed)
    again = [sid for (sid,) in con.execute("select suspect_id from suspects order by suspect_id limit 2").fetchall()]
    con.execute("update suspects set last_detected_on = ? where suspect_id in (select unnest(?))",
                [date(2026, 11, 22), again])
    con.close()
    con = analysis.open_store(db)
    run = analysis.latest_run(con)
    assert run["run_id"] == "run-3"
    assert analysis.latest_run(con, completed=False)["run_id"] == "run-4"
    # LATEST_RUN_ONLY: the last completed night's suspects, and those the killed night found again
    on_run_3 = [sid for (sid,) in con.execute("select suspect_id from suspects where last_detected_on = ?",
                                              [run["as_of"]]).fetchall()]
    assert on_run_3
    shown = set(analysis.suspects_frame(con, detected_on=run["as_of"])["suspect_id"])
    assert shown == {*on_run_3, *again}
    con.close()


def test_numpy_numbers_are_the_numbers_they_are(tmp_path):
    """np.arange(40000, 60001, 10000) was "not a number of yuan", one np.int64 alone "not iterable",
    and np.int64(3) persons "expected a whole number" (an analyst probe)."""
    import numpy as np

    con = connect(build_store(tmp_path / "fundwatch.duckdb"), read_only=True)
    bt = analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVIEWED", np.arange(40000, 60001, 10000))
    assert bt["threshold"].tolist() == [40000.0, 50000.0, 60000.0]
    one = analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVIEWED", np.int64(50000))
    assert one.to_dict("records") == bt.iloc[[1]].to_dict("records")
    assert analysis.yuan(np.float32(0.5)) == Decimal("0.5")
    kw = {"as_of": AS_OF}
    shared = analysis.rule_flags_at(con, "SHARED_BANK_ACCOUNT", "shared_account_min_persons", [np.int64(3)], **kw)
    assert shared.to_dict("records") == analysis.rule_flags_at(
        con, "SHARED_BANK_ACCOUNT", "shared_account_min_persons", [3], **kw).to_dict("records")
    with pytest.raises(ValueError, match="is not a number of yuan"):
        analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVIEWED", [np.bool_(True)])
    con.close()


def test_the_latest_run_is_the_one_started_last_even_for_an_earlier_day(tmp_path):
    """A night run --any-day for 11-20 after the 11-21 night is what the suspects and the dashboard
    show: it was not the notebooks' latest run (ordered by as-of), so their header, LATEST_RUN_ONLY
    and the value in force to tune around were the 11-21 night's (an analyst probe)."""
    db = build_store(tmp_path / "fundwatch.duckdb")
    con = connect(db)
    con.execute("insert into runs values ('run-replay', 'nightly', ?, ?, ?, 'completed', null)",
                [datetime(2026, 11, 22, 9), datetime(2026, 11, 22, 10), date(2026, 11, 20)])
    con.close()
    ro = connect(db, read_only=True)
    latest = analysis.latest_run(ro)
    ro.close()
    assert (latest["run_id"], latest["as_of"]) == ("run-replay", date(2026, 11, 20))


def test_precision_counts_outcome_7_as_no_problem_and_is_blank_without_verdicts(tmp_path):
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    p = analysis.rule_precision(con).set_index("rule_id")
    # LARGE_PAYMENT_UNREVIEWED: one 7 (no problem) and one 4 (recovered) -> 1/2
    assert p.loc["LARGE_PAYMENT_UNREVIEWED", ["verified", "no_problem"]].tolist() == [2, 1]
    assert p.loc["LARGE_PAYMENT_UNREVIEWED", "precision"] == 0.5
    # SHARED_BANK_ACCOUNT's one suspect answered 7 is 已重开: its answer is no verdict until given again
    assert p.loc["SHARED_BANK_ACCOUNT", ["suspects", "verified"]].tolist() == [1, 0]
    assert p["precision"].isna()["SHARED_BANK_ACCOUNT"]
    assert p.loc["PAID_AFTER_DEATH", "precision"] == 1.0
    assert p.loc["DUPLICATE_PENSION", "verified"] == 0 and p["precision"].isna()["DUPLICATE_PENSION"]


def test_backtest_keeps_suspects_at_or_above_each_threshold(tmp_path):
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    # planted: 52 000 (outcome 7), 80 000 (outcome 4), 300 000 (no verdict)
    bt = analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVIEWED", [52000, 52000.01, 300000, 300000.01]).set_index("threshold")
    assert bt.loc[52000, ["suspects", "verified", "no_problem", "confirmed"]].tolist() == [3, 2, 1, 1]
    assert bt.loc[52000, "precision"] == 0.5
    assert bt.loc[52000.01, ["suspects", "verified", "no_problem"]].tolist() == [2, 1, 0]
    assert bt.loc[300000, ["suspects", "verified"]].tolist() == [1, 0] and bt["precision"].isna()[300000]
    assert bt.loc[300000.01, "suspects"] == 0
    assert OUTCOME_OK.startswith("7") and OUTCOME_RECOVER.startswith("4")


def test_rule_flags_at_reruns_the_rule_query_with_the_new_value(tmp_path):
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    try:
        analysis.find_rule("LARGE_PAYMENT_UNREVIEWED")
    except KeyError:
        pytest.skip("rules/LARGE_PAYMENT_UNREVIEWED.yaml is not there yet")
    # payments without a reviewer: 52 000, 80 000, 300 000, 30 000, 45 000, 2 100
    flags = analysis.rule_flags_at(con, "LARGE_PAYMENT_UNREVIEWED", "large_payment_threshold", [30000, 50000, 300001])
    assert flags["findings"].tolist() == [5, 3, 0]
    assert Decimal(str(flags["amount"][1])) == Decimal("432000")


def test_rule_flags_at_the_value_in_force_counts_what_the_night_raised_with_its_config_and_regions(tmp_path):
    """The night ran LARGE_PAYMENT_UNREVIEWED with the config's 30,000, region 360702's own 80,000 and
    review_time_required true; rule_flags_at bound every other parameter at the rule file's value and
    ignored the regions, so "findings" at the value in force was not what the night raised (5 against 3
    here). Each value now stands for the config's value: a region's own stays its own."""
    from pipelines.config import load_config

    db = build_store(tmp_path / "fundwatch.duckdb")
    (tmp_path / "fw.yaml").write_text(
        "rules:\n  LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 30000, review_time_required: true}\n"
        "regions:\n  '360702':\n    rules:\n      LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 80000}\n",
        encoding="utf-8")
    config = load_config(tmp_path / "fw.yaml")
    con = connect(db)
    # 45,000 paid by 南康 (region 360703: the config's 30,000); 30,000 reviewed without a review time
    con.execute("update payments set agency_code = '360703' where amount = 45000")
    con.execute("update payments set agency_code = '360703', reviewed_by = '复核乙' where amount = 30000")
    rule = analysis.find_rule("LARGE_PAYMENT_UNREVIEWED")
    night = rules.detect(con, AS_OF, config, rules=[rule])
    raised = {s for (s,) in con.execute("select subject from detections").fetchall()}
    parameters = night.results[0].parameters
    con.execute("insert into runs values ('run-4', 'nightly', ?, ?, ?, 'completed', ?)",
                [datetime(2026, 11, 22, 2), datetime(2026, 11, 22, 3), date(2026, 11, 22),
                 json.dumps({"by_rule": {"LARGE_PAYMENT_UNREVIEWED": {"parameters": parameters}}})])
    con.close()
    assert len(raised) == 4  # 80,000 and 300,000 in 360702; 45,000 and 30,000 (no review time) in 360703
    ro = connect(db, read_only=True)
    flags = analysis.rule_flags_at(ro, "LARGE_PAYMENT_UNREVIEWED", "large_payment_threshold", [30000, 40000, 50000],
                                   as_of=AS_OF)
    ro.close()
    assert flags["findings"].tolist() == [4, 3, 2]
    assert [Decimal(str(a)) for a in flags["amount"]] == [Decimal("455000"), Decimal("425000"), Decimal("380000")]


def test_the_backtest_measures_a_regions_suspects_against_its_own_value_and_a_past_day_is_warned_of(tmp_path):
    """An analyst probe: with region 360702's own large_payment_threshold (80,000), the back-test's
    `suspects` dropped that region's suspects as the tested value rose past theirs, while
    rule_flags_at's `findings` beside it kept them (a region's own value stays its own): the
    recommendation was judged on suspects the rule would not drop. And rule_flags_at for an earlier
    day ran over the store's extracts as they are now, said nowhere."""
    from pipelines.config import load_config

    db = build_store(tmp_path / "fundwatch.duckdb")
    (tmp_path / "fw.yaml").write_text(
        "rules:\n  LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 50000}\n"
        "regions:\n  '360702':\n    rules:\n      LARGE_PAYMENT_UNREVIEWED: {large_payment_threshold: 80000}\n",
        encoding="utf-8")
    con = connect(db)
    night = rules.detect(con, AS_OF, load_config(tmp_path / "fw.yaml"), rules=[analysis.find_rule("LARGE_PAYMENT_UNREVIEWED")])
    con.execute("insert into runs values ('run-4', 'nightly', ?, ?, ?, 'completed', ?)",
                [datetime(2026, 11, 22, 2), datetime(2026, 11, 22, 3), AS_OF,
                 json.dumps({"by_rule": {"LARGE_PAYMENT_UNREVIEWED": {"parameters": night.results[0].parameters}}})])
    con.close()
    ro = connect(db, read_only=True)
    # planted: 52,000 (outcome 7) and 80,000 (outcome 4) paid by 360702, 300,000 (no verdict) by 360703
    bt = analysis.backtest_threshold(ro, "LARGE_PAYMENT_UNREVIEWED", [30000, 100000, 300001],
                                     "large_payment_threshold").set_index("threshold")
    assert bt.loc[30000, ["suspects", "verified", "no_problem"]].tolist() == [2, 1, 0]  # 52,000 < 360702's 80,000
    assert bt.loc[100000, ["suspects", "verified"]].tolist() == [2, 1]  # 80,000 kept at 360702's own value
    assert bt.loc[300001, "suspects"] == 1
    # without a parameter named, every suspect is measured against the value tested
    assert analysis.backtest_threshold(ro, "LARGE_PAYMENT_UNREVIEWED", [30000]).loc[0, "suspects"] == 3
    for earlier in (date(2026, 10, 21), datetime(2026, 10, 21), "2026-10-21"):  # (a datetime: its day)
        with pytest.warns(UserWarning, match="as they are now"):
            analysis.rule_flags_at(ro, "LARGE_PAYMENT_UNREVIEWED", "large_payment_threshold", [50000], as_of=earlier)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analysis.rule_flags_at(ro, "LARGE_PAYMENT_UNREVIEWED", "large_payment_threshold", [50000], as_of=AS_OF)
        # a datetime is its day, bound as the night binds $as_of (a DATE, not a TIMESTAMP)
        assert analysis.rule_flags_at(ro, "LARGE_PAYMENT_UNREVIEWED", "large_payment_threshold", [50000],
                                      as_of=datetime(AS_OF.year, AS_OF.month, AS_OF.day, 8)).equals(
            analysis.rule_flags_at(ro, "LARGE_PAYMENT_UNREVIEWED", "large_payment_threshold", [50000], as_of=AS_OF))
    with pytest.raises(KeyError, match="no status 'closed'"):
        analysis.suspects_frame(ro, status="closed")  # an empty frame read as "none closed"
    assert set(analysis.suspects_frame(ro, status="已销号")["status"]) == {"已销号"}
    ro.close()


def test_masked_frames_and_drill_down_hold_no_full_id_or_account(tmp_path):
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    df = analysis.suspects_frame(con)
    text = df.astype(str).to_string()
    detail = analysis.suspect_detail(con, "S00004")
    text += repr(detail)
    for secret in PEOPLE + ACCOUNTS:
        assert secret not in text
    assert detail["evidence"]["bank_account"] == ACCOUNTS[0][:4] + "*" * 11 + ACCOUNTS[0][-4:]
    assert detail["suspect"]["name"] == "赵*"
    assert len(analysis.suspects_frame(con, rule_id="PAID_AFTER_DEATH", agency_code="360702")) == 2
    # an ID number typed for a 疑点编号 is not repeated in the error the notebook keeps
    with pytest.raises(KeyError) as refused:
        analysis.suspect_detail(con, PEOPLE[0])
    assert PEOPLE[0] not in str(refused.value) and "no suspect" in str(refused.value)


def test_the_drill_down_masks_a_name_in_the_rules_sentence_and_shows_a_clerks_note_by_its_first_character(tmp_path):
    """FUND_PRIVATE_TRANSFER writes the payee's name into its summary; a clerk's 核实说明 may name
    anyone (no mask can find that name). Neither reaches a notebook in full."""
    db = build_store(tmp_path / "fundwatch.duckdb")
    con = connect(db)
    evidence = {"summary": "从基金账户 360500000000000018（收入户）向个人 李建华（6222-0212-3456-7890）转出 8800.00 元",
                "counterparty_name": "李建华", "counterparty_account": "6222-0212-3456-7890",
                "account_type": "收入户", "account_no": "360500000000000018"}
    con.execute("update suspects set evidence = ?, verification_note = ? where suspect_id = 'S00004'",
                [json.dumps(evidence, ensure_ascii=False), "已约谈李红国（身份证360102199001010597），已追回"])
    con.execute("insert into suspect_events values ('S00004', now(), 'returned', ?, null)",
                [json.dumps({"note": "已约谈李红国", "outcome": "4"}, ensure_ascii=False)])
    detail = analysis.suspect_detail(con, "S00004")
    text = json.dumps(detail, ensure_ascii=False, default=str)
    for secret in ("李建华", "李红国", "360102199001010597", "360500000000000018", "0212-3456", "6222-0212"):
        assert secret not in text
    # accounts are stored as delivered: the form a sentence repeats is masked as the field is
    assert "向个人 李**（6222***********7890）转出" in detail["evidence"]["summary"]
    assert detail["evidence"]["account_type"] == "收入户"  # the kind of account is no account number
    assert detail["suspect"]["verification_note"] == "已…（共 33 字）"
    assert detail["events"][-1]["detail"]["note"] == "已…（共 6 字）"


def test_counts_and_back_tests_say_what_they_compare(tmp_path):
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    # the open figures are the dashboard's: every status but 已销号, also the latest night's no-shows
    headline = report.collect(con)["headline"]
    now = analysis.open_now(con)
    assert (now["suspects"], now["open"]) == (headline["suspects"], headline["open"])
    assert Decimal(str(now["open_amount"])) == Decimal(str(headline["open_amount"]))
    # a count of days compared with 涉及金额 in yuan would recommend nonsense
    with pytest.raises(ValueError, match="not an amount in yuan"):
        analysis.backtest_threshold(con, "CERTIFICATION_OVERDUE", [146, 365], "certification_max_days")
    assert len(analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVIEWED", [1], "large_payment_threshold")) == 1


def test_rule_flags_at_reruns_a_rule_that_reads_the_watched_payments(tmp_path):
    """A watching rule reads payments_watch, which only the nightly makes: re-run from a notebook
    (read-only) it reads all payments and finds what the nightly finds."""
    db = build_store(tmp_path / "fundwatch.duckdb")
    con = connect(db)
    con.execute("insert into deaths (person_id, death_date, source) values (?, date '2026-06-12', '公安')", [PEOPLE[0]])
    for period in ("202607", "202608"):
        con.execute("insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount, agency_code)"
                    " values (?, ?, '110', '基本养老金', ?, date '2026-08-10', 3000, '360702')",
                    [f"W{period}", PEOPLE[0], period])
    wanted = [r for r in rules.load_rules()[0] if r.id == "PAID_AFTER_DEATH"]
    nightly = rules.detect(con, date(2026, 11, 21), Config(), rules=wanted)
    con.close()
    ro = analysis.open_store(db)
    flags = analysis.rule_flags_at(ro, "PAID_AFTER_DEATH", "one_off_items", [["丧葬补助金"]], as_of=date(2026, 11, 21))
    assert flags["findings"].tolist() == [nightly.results[0].count] and nightly.results[0].count >= 1
    assert Decimal(str(flags["amount"][0])) == nightly.results[0].amount
    ro.close()


def test_an_account_subject_delivered_in_groups_is_masked_in_frames_the_drill_down_and_its_sentence(tmp_path):
    """A store written before accounts were stored as their digits holds them as delivered:
    SHARED_BANK_ACCOUNT's subject 6222-0212-3456-7890 (also in its sentence) is masked like
    6222021234567890; an account of a few digits masks no amount."""
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    grouped = "6222-0212-3456-7890"
    con.execute("update suspects set rule_id = 'SHARED_BANK_ACCOUNT', subject = ?, person_id = null, evidence = ? "
                "where suspect_id = 'S00004'",
                [grouped, json.dumps({"summary": f"收款账户 {grouped} 在 1 个所属期每期收到 3 人以上的待遇，合计 1000.00 元",
                                      "counterparty_account": "1000"}, ensure_ascii=False)])
    detail = analysis.suspect_detail(con, "S00004")
    frame = analysis.suspects_frame(con, rule_id="SHARED_BANK_ACCOUNT")
    text = json.dumps(detail, ensure_ascii=False, default=str) + frame.astype(str).to_string()
    assert "0212-3456" not in text and "3456-7890" not in text
    assert detail["suspect"]["subject"] == "6222***********7890"
    assert detail["evidence"]["summary"] == "收款账户 6222***********7890 在 1 个所属期每期收到 3 人以上的待遇，合计 1000.00 元"
    assert mask_subject(grouped, None) == "6222***********7890"  # the dashboard's list masks it alike
    # grouped with any separator ingest takes between groups: a full-width or em dash, a no-break
    # or ideographic space
    for spelled in ("6222－0212－3456－7890", "6222—0212—3456—7890", "6222\u00a00212\u30003456 7890"):
        assert mask_subject(spelled, None) == "6222***********7890", spelled
    # an account of 18 digits (the shape of an ID number) is masked as the account its evidence masks
    assert mask_subject("622202123456789012", None) == "6222**********9012"
    assert mask_subject("360702197202020224", "360702197202020224") == "360702********0224"


def test_an_id_number_delivered_as_an_agency_code_is_masked_in_frames_and_the_drill_down(tmp_path):
    """As on the dashboard (report_mask.mask_agency_code): a clerk's slip puts a 公民身份号码 into
    经办机构编码, and the suspect, its events and the frame carry it as the agency."""
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    slipped = PEOPLE[11]
    con.execute("update suspects set agency_code = ? where suspect_id = 'S00004'", [slipped])
    con.execute("insert into suspect_events values ('S00004', now(), 'issued', ?, null)",
                [json.dumps({"agency_code": slipped}, ensure_ascii=False)])
    frame = analysis.suspects_frame(con)
    detail = analysis.suspect_detail(con, "S00004")
    text = frame.astype(str).to_string() + json.dumps(detail, ensure_ascii=False, default=str)
    assert slipped not in text
    assert frame.loc[frame["suspect_id"] == "S00004", "agency_code"].tolist() == [slipped[:6] + "********" + slipped[-4:]]
    assert detail["suspect"]["agency_code"] == slipped[:6] + "********" + slipped[-4:]
    # an ordinary agency code is shown as it is
    assert "360702" in frame["agency_code"].tolist()


def test_rule_flags_at_takes_the_as_of_date_as_text(tmp_path):
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    as_text = analysis.rule_flags_at(con, "LARGE_PAYMENT_UNREVIEWED", "large_payment_threshold", [50000],
                                     as_of="2026-11-21")
    as_date = analysis.rule_flags_at(con, "LARGE_PAYMENT_UNREVIEWED", "large_payment_threshold", [50000],
                                     as_of=date(2026, 11, 21))
    assert as_text.equals(as_date) and as_text["findings"].tolist() == [3]


def test_a_rule_id_is_read_in_any_case_and_a_misspelt_id_or_a_threshold_in_words_is_refused(tmp_path):
    """Rule ids are upper case (the only case a rule file's id may have): 'large_payment_unreviewed'
    can mean only one rule. A misspelt id used to give an empty frame and a back-test of zeros, read
    as "nothing found"; '5万' a bare decimal.InvalidOperation."""
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    upper = analysis.suspects_frame(con, rule_id="LARGE_PAYMENT_UNREVIEWED")
    assert len(upper) == 3 and analysis.suspects_frame(con, rule_id=" large_payment_unreviewed ").equals(upper)
    backtest = analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVIEWED", [52000, "80000"], "large_payment_threshold")
    assert backtest["suspects"].tolist() == [3, 2]
    assert analysis.backtest_threshold(con, "Large_Payment_Unreviewed", [52000, "80000"]).equals(backtest)
    assert analysis.find_rule("large_payment_unreviewed", con).id == "LARGE_PAYMENT_UNREVIEWED"
    flags = analysis.rule_flags_at(con, "large_payment_unreviewed", "large_payment_threshold", [50000], as_of="2026-11-21")
    assert flags["findings"].tolist() == [3]
    for misspelt in (lambda: analysis.suspects_frame(con, rule_id="LARGE_PAYMENT_UNREVEIWED"),
                     lambda: analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVEIWED", [1])):
        with pytest.raises(KeyError, match="no rule 'LARGE_PAYMENT_UNREVEIWED': the rules are .*LARGE_PAYMENT_UNREVIEWED"):
            misspelt()
    with pytest.raises(KeyError, match=f"no rule '{PEOPLE[0][:6]}\\*{{8}}{PEOPLE[0][-4:]}'") as typed:  # an ID number typed
        analysis.backtest_threshold(con, PEOPLE[0], [1])
    assert PEOPLE[0] not in str(typed.value)
    with pytest.raises(KeyError, match="has no parameter 'large_payment_treshold'"):
        analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVIEWED", [1], "large_payment_treshold")
    for words in ("5万", "", None, float("nan"), True, "50,00", [50000]):
        with pytest.raises(ValueError, match=re.escape(f"threshold {words!r} is not a number of yuan")):
            analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVIEWED", [50000, words])
    with pytest.raises(ValueError, match=re.escape("threshold -50000 is below 0")):
        analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVIEWED", [-50000])
    for huge in (10 ** 400, Decimal("1e400"), 10 ** 16):
        with pytest.raises(ValueError, match="is beyond any amount the store can hold"):
            analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVIEWED", [huge])
    with pytest.raises(ValueError, match="'5万' is not a number of yuan: write it in digits"):
        analysis.rule_flags_at(con, "LARGE_PAYMENT_UNREVIEWED", "large_payment_threshold", [50000, "5万"])
    # one value alone is a list of one (the text '80000' is not the five values '8', '0', '0', '0', '0');
    # an amount written with thousands separators is read
    for alone in ("80000", 80000, "80,000", " 80,000.00 "):
        assert analysis.backtest_threshold(con, "LARGE_PAYMENT_UNREVIEWED", alone)["suspects"].tolist() == [2], alone
    assert analysis.rule_flags_at(con, "LARGE_PAYMENT_UNREVIEWED", "large_payment_threshold", "50,000",
                                  as_of="2026-11-21")["findings"].tolist() == [3]
    # an agency code neither the agencies nor the suspects have is refused, not shown as "0 suspects"
    assert len(analysis.suspects_frame(con, agency_code=" 360702 ")) == len(analysis.suspects_frame(con, agency_code="360702"))
    with pytest.raises(KeyError, match="no agency '3607020' in this store's agencies or suspects"):
        analysis.suspects_frame(con, agency_code="3607020")
    assert analysis.suspect_detail(con, " S00004 ")["suspect"]["suspect_id"] == "S00004"
    con.close()


def test_a_parameter_the_rule_lacks_is_refused_by_the_names_the_night_ran_it_with_once_its_file_is_gone(tmp_path):
    """An office's own rule whose file was removed: its suspects are still back-tested, and the
    parameter's name is checked against the latest night's record of the rule (runs.summary)."""
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    con.execute("update suspects set rule_id = 'OFFICE_BIG_PAY' where rule_id = 'LARGE_PAYMENT_UNREVIEWED'")
    con.execute("update runs set summary = json_merge_patch(coalesce(summary, '{}'), ?) where run_id = 'run-3'",
                [json.dumps({"by_rule": {"OFFICE_BIG_PAY": {"parameters": [{"params": {"min_amount": 60000},
                                                                              "regions": None}]}}})])
    con.close()
    con = analysis.open_store(tmp_path / "fundwatch.duckdb")
    assert analysis.backtest_threshold(con, "office_big_pay", [60000], "min_amount")["suspects"].tolist() == [2]
    with pytest.raises(KeyError, match="OFFICE_BIG_PAY has no parameter 'min_amout' \\(it has min_amount\\)"):
        analysis.backtest_threshold(con, "OFFICE_BIG_PAY", [60000], "min_amout")
    con.close()


def test_open_store_of_a_folder_says_so(tmp_path):
    with pytest.raises(OSError, match=f"{re.escape(str(tmp_path))} is a folder, not a DuckDB store: name the store's "
                                      f"file in it \\(e.g. {re.escape(str(tmp_path / 'fundwatch.duckdb'))}\\)"):
        analysis.open_store(tmp_path)


@pytest.mark.parametrize("made", ["duckdb-without-tables", "empty-file"])
def test_open_store_of_a_file_that_is_no_fundwatch_store_says_so_and_lets_go_of_it(tmp_path, made):
    """A DuckDB file without fundwatch's tables failed two cells on ("Table with name suspects does
    not exist") with the file held; a 0-byte one was DuckDB's "not a valid DuckDB database file"."""
    path = tmp_path / "other.duckdb"
    if made == "empty-file":
        path.touch()
        said = f"{path} is an empty file (0 bytes), not a DuckDB store"
    else:
        duckdb.connect(str(path)).close()
        said = f"{path} is a DuckDB database but no fundwatch store (it has no suspects table): set DB_PATH"
    with pytest.raises(OSError, match=re.escape(said)):
        analysis.open_store(path)
    if made != "empty-file":
        duckdb.connect(str(path)).close()  # let go of: a writer can open it


@pytest.mark.slow
@pytest.mark.parametrize("notebook, params, error", [
    ("explore_suspects", 'SUSPECT_ID = "S99999"\n', "no suspect 'S99999'"),
    ("explore_suspects", 'RULE_ID = "PAID_AFTER_DAETH"\n', "no rule 'PAID_AFTER_DAETH'"),
    ("explore_suspects", 'AGENCY_CODE = "3607020"\n', "no agency '3607020'"),
    ("tune_threshold", 'RULE_ID = "LARGE_PAYMENT_UNREVEIWED"\n', "no rule 'LARGE_PAYMENT_UNREVEIWED'"),
    # a threshold in words, and one beside numbers (which did not sort): refused by name, in that cell
    ("tune_threshold", 'THRESHOLDS = "5万"\n', "threshold '5万' is not a number of yuan"),
    ("tune_threshold", 'THRESHOLDS = ["5万", 50000]\n', "threshold '5万' is not a number of yuan"),
    # a count of days given None beside a number: a bare TypeError of the sorting (an analyst probe)
    ("tune_threshold", 'RULE_ID = "CERTIFICATION_OVERDUE"\nPARAM = "certification_max_days"\nTHRESHOLDS = [None, "30"]\n',
     "THRESHOLDS for certification_max_days are numbers: None is not"),
], ids=["explore-suspect-id", "explore-rule-id", "explore-agency-code", "tune-rule-id", "tune-threshold-in-words",
        "tune-threshold-in-words-among-numbers", "tune-a-count-of-none"])
def test_a_misspelt_id_stops_the_notebook_where_the_store_is_opened_and_let_go_of(
        tmp_path, monkeypatch, kernel_env, notebook, params, error):
    """Not at a later cell, past which "Run All" never reaches the one closing the store: the kernel
    would hold it until restarted, and the night stop (exit 3)."""
    from nbclient.exceptions import CellExecutionError

    db = build_store(tmp_path / "fundwatch.duckdb")
    monkeypatch.setenv("FUNDWATCH_DB", str(db))
    nb = nbformat.read(NOTEBOOKS[[p.stem for p in NOTEBOOKS].index(notebook)], as_version=4)
    next(c for c in nb.cells if "parameters" in c.metadata.get("tags", [])).source += "\n" + params
    # the kernel is kept to look at after the error: does it still hold the store?
    client = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        with pytest.raises(CellExecutionError, match=re.escape(error)):
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        failed = next(c for c in nb.cells if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.outputs))
        assert "analysis.open_store(" in failed.source  # the cell that opened the store
        connect(db).close()  # and let go of it: a night can open the store while the kernel lives


def test_rule_flags_at_refuses_a_value_the_night_would_refuse_before_running_any(tmp_path):
    """Every value is checked as the office's config is (config.param_problem): the kind of the
    rule file's default and its param_bounds. A count of days of None, or 1 person for an account
    "shared by several", ran and answered nonsense."""
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    kw = {"as_of": "2026-11-21"}
    shared = analysis.rule_flags_at(con, "SHARED_BANK_ACCOUNT", "shared_account_min_persons", [2, "3"], **kw)
    assert shared["shared_account_min_persons"].tolist() == [2, 3]  # '3' written as text is the count 3
    assert shared["findings"].tolist()[0] >= shared["findings"].tolist()[1]
    with pytest.raises(ValueError, match=re.escape("SHARED_BANK_ACCOUNT.shared_account_min_persons = 1: "
                                                   "expected a number of at least 2")):
        analysis.rule_flags_at(con, "SHARED_BANK_ACCOUNT", "shared_account_min_persons", [3, 1], **kw)
    for wrong in (None, 30.5, "a year", True):
        with pytest.raises(ValueError, match="CERTIFICATION_OVERDUE.certification_max_days = .*: expected a whole number"):
            analysis.rule_flags_at(con, "CERTIFICATION_OVERDUE", "certification_max_days", [365, wrong], **kw)
    with pytest.raises(ValueError, match=re.escape("expected a number not below 0")):
        analysis.rule_flags_at(con, "CERTIFICATION_OVERDUE", "certification_max_days", -1, **kw)
    # one list value given bare: its items are not lists — said so, with how to write it
    with pytest.raises(ValueError, match=re.escape("PAID_AFTER_DEATH.one_off_items = '丧葬补助金': expected a list "
                                                   "of values — one value of a list parameter is itself a list: ['丧葬补助金']")):
        analysis.rule_flags_at(con, "PAID_AFTER_DEATH", "one_off_items", ["丧葬补助金"], **kw)
    assert len(analysis.rule_flags_at(con, "PAID_AFTER_DEATH", "one_off_items", [["丧葬补助金"], []], **kw)) == 2


def test_a_table_is_shown_in_chinese_and_the_frame_keeps_its_names_for_code():
    frame = pd.DataFrame({"suspect_id": ["S1"], "amount": [1.5], "own_column": [2]}).set_index("suspect_id")
    shown = analysis.shown(frame)
    assert list(shown.columns) == ["涉及金额", "own_column"] and shown.index.name == "疑点编号"
    assert list(frame.columns) == ["amount", "own_column"] and frame.index.name == "suspect_id"  # a copy
    fields = pd.Series({"amount": 1.5, "status": "已下发"}, name="S1")
    assert analysis.shown(fields).index.tolist() == ["涉及金额", "疑点状态"] and fields.index.tolist() == ["amount", "status"]
