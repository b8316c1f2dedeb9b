"""Analyst notebooks run top to bottom against a real store, read-only, showing no full ID number.

Each notebook under notebooks/ is executed with nbclient on the python3 (ipykernel) kernel, the
store passed through FUNDWATCH_DB, once on a store with suspects and verdicts and once on an
empty one (no runs, no verdicts). The analysis helpers they call are tested directly as well.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbclient import NotebookClient

import pipelines
from pipelines import analysis
from pipelines.store import connect

from test_report import ACCOUNTS, OUTCOME_OK, OUTCOME_RECOVER, PEOPLE, build_store

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
    if notebook.stem == "tune_threshold":
        assert ("尚无核实结果" in text) == empty


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_against_the_demo_store(notebook, demo_run, tmp_path, monkeypatch, kernel_env):
    assert demo_run.returncode == 0, demo_run.stderr
    before = demo_run.db.read_bytes()
    monkeypatch.setenv("FUNDWATCH_DB", str(demo_run.db))
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(_texts(nb))
    assert str(demo_run.db) in text
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
    monkeypatch.chdir(tmp_path)
    assert analysis.store_path() == Path("demo-output") / "fundwatch.duckdb"
    with pytest.raises(FileNotFoundError, match="fundwatch demo"):
        analysis.open_store()
    analysis.open_store(db).close()  # an explicit DB_PATH wins over the default


def test_precision_counts_outcome_7_as_no_problem_and_is_blank_without_verdicts(tmp_path):
    con = connect(build_store(tmp_path / "fundwatch.duckdb"))
    p = analysis.rule_precision(con).set_index("rule_id")
    # LARGE_PAYMENT_UNREVIEWED: one 7 (no problem) and one 4 (recovered) -> 1/2
    assert p.loc["LARGE_PAYMENT_UNREVIEWED", ["verified", "no_problem"]].tolist() == [2, 1]
    assert p.loc["LARGE_PAYMENT_UNREVIEWED", "precision"] == 0.5
    assert p.loc["SHARED_BANK_ACCOUNT", "precision"] == 0.0
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
