"""A nightly run killed (SIGKILL) part-way leaves a store that opens, no half-written file under OUT,
and the next run ends with exactly the suspects and events of a night that was never interrupted.

How a kill is placed: the real `fundwatch nightly` (pipelines.cli.main) runs in a subprocess through
a small wrapper that wraps one function of the real code so that its n-th call SIGKILLs the
process (before or after that call does its work). Nothing is mocked: the step runs for real up
to the kill. One uninterrupted reference night on a fresh store is shared by every kill point.
The subprocesses talk to this module's temporary Prefect API, so none pays the start-up of its own.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import openpyxl
import pytest

import pipelines
from _nightly_inbox import ALIVE, DEAD, PAY_HEADER, _write, person
from pipelines.flows import nightly_flow
from pipelines.store import connect

AS_OF = date(2026, 11, 21)
A1, A2 = "360702", "360703"
HELD = person("36070219510505005")
STOPPED = person("36070319530303003")
BIG = person("36070319560606006")

pytestmark = pytest.mark.slow

# Wraps `module:attr[.attr]` so that its n-th call kills this process, then runs `fundwatch ...`.
WRAPPER = r"""
import importlib, os, signal, sys
target, when, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
module, _, attrs = target.partition(":")
owner = importlib.import_module(module)
*path, name = attrs.split(".")
for part in path:
    owner = getattr(owner, part)
real = getattr(owner, name)
calls = [0]
def crashing(*args, **kwargs):
    calls[0] += 1
    if calls[0] == n and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = real(*args, **kwargs)
    if calls[0] == n and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(owner, name, crashing)
from pipelines import cli
sys.exit(cli.main(sys.argv[4:]))
"""


def _pay(pid, person_id, name, period, amount, account, agency, item="基本养老金", reviewed_by="赵复核"):
    paid_on = f"{period[:4]}-{period[4:]}-10"
    return [pid, person_id, name, "110", item, period, paid_on, amount, account, agency, "张经办",
            reviewed_by, paid_on if reviewed_by else ""]


def build_inbox(inbox: Path) -> None:
    """Two agencies, two deliveries, five planted cases under four rules (and a rejected row)."""
    d1 = inbox / "2026-10-21"
    _write(d1 / "agencies_360700_202610.csv", ["agency_code", "agency_name", "region_code", "parent_code"],
           [[A1, "章贡区社保局", A1, "360700"], [A2, "南康区社保局", A2, "360700"]])
    _write(d1 / "beneficiaries_360700_202610.csv",
           ["person_id", "name", "insurance_type", "agency_code", "status", "status_date", "start_period",
            "bank_account", "last_certified_on"],
           [[DEAD, "王死", "110", A1, "正常", "", "201001", "6217000000000001", "2026-06-01"],
            [HELD, "赵押", "110", A1, "正常", "", "201101", "6217000000000005", "2026-06-01"],
            [ALIVE, "李正常", "110", A1, "正常", "", "201201", "6217000000000002", "2026-06-01"],
            [STOPPED, "孙停", "110", A2, "暂停", "2026-08-05", "201301", "6217000000000003", "2026-06-01"],
            [BIG, "周大", "110", A2, "正常", "", "201601", "6217000000000006", "2026-06-01"]])
    rows = []
    for period in ("202608", "202609", "202610"):
        rows.append(_pay(f"P{period}-1", DEAD, "王死", period, "3000.00", "6217000000000001", A1))
        rows.append(_pay(f"P{period}-5", HELD, "赵押", period, "2900.00", "6217000000000005", A1))
        rows.append(_pay(f"P{period}-2", ALIVE, "李正常", period, "2800.00", "6217000000000002", A1))
        rows.append(_pay(f"P{period}-3", STOPPED, "孙停", period, "2600.00", "6217000000000003", A2))
        rows.append(_pay(f"P{period}-6", BIG, "周大", period, "2500.00", "6217000000000006", A2))
    rows.append(_pay("P202610-9", DEAD[:-1] + ("0" if DEAD[-1] != "0" else "1"), "坏号码", "202610", "100.00",
                     "6217000000000009", A1))  # wrong check digit: rejected
    _write(d1 / "payments_360700_202610.csv", PAY_HEADER, rows)
    _write(d1 / "deaths_360700_202610.csv", ["person_id", "name", "death_date", "source", "cremated_on"],
           [[DEAD, "王死", "2026-08-15", "民政", "2026-08-18"]])

    d2 = inbox / "2026-11-21"
    _write(d2 / "imprisonments_360700_202611.csv",
           ["person_id", "name", "sentence_type", "custody_start", "custody_end", "facility"],
           [[HELD, "赵押", "有期徒刑", "2026-07-10", "", "赣州监狱"]])
    _write(d2 / "payments_360700_202611.csv", PAY_HEADER,
           [_pay("P202611-1", DEAD, "王死", "202611", "3000.00", "6217000000000001", A1),
            _pay("P202611-5", HELD, "赵押", "202611", "2900.00", "6217000000000005", A1),
            _pay("P202611-2", ALIVE, "李正常", "202611", "2800.00", "6217000000000002", A1),
            _pay("P202611-3", STOPPED, "孙停", "202611", "2600.00", "6217000000000003", A2),
            _pay("P202611-6", BIG, "周大", "202611", "2500.00", "6217000000000006", A2),
            _pay("P202611-7", BIG, "周大", "202611", "80000.00", "6217000000000006", A2,
                 item="个人账户余额一次性支付", reviewed_by="")])


# ---------------------------------------------------------------------------- helpers


def _night(root: Path) -> dict:
    return nightly_flow(inbox=str(root / "inbox"), db=str(root / "store" / "fw.duckdb"), out=str(root / "out"),
                        as_of=AS_OF, progress=False)


def _state(db: Path) -> dict:
    """What must not depend on a crash: suspects and their history (timestamps and run ids aside)."""
    con = connect(db, read_only=True)
    try:
        return {
            "suspects": con.execute(
                """select suspect_id, rule_id, subject, person_id, agency_code, status, amount, period_from,
                          period_to, evidence::varchar, first_detected_on, last_detected_on, issued_on, deadline,
                          coalesce(overdue, false), coalesce(escalated, false)
                   from suspects order by suspect_id""").fetchall(),
            "events": con.execute(
                "select suspect_id, event, detail::varchar from suspect_events order by all").fetchall(),
            # every delivery checked exactly once, whichever night got to it
            "quality": con.execute(
                "select delivery, extract, expectation, column_name, success from quality_results "
                "order by all").fetchall(),
        }
    finally:
        con.close()


def _worklist_ids(out: Path) -> dict[str, tuple]:
    """Each worklist's suspect ids and its cover's counts (其中本次新下发 …): a night run again after
    one killed once its suspects were issued said 0 newly issued where the night itself said 2."""
    from pipelines.worklists import COVER

    found = {}
    for path in sorted(out.glob("疑点核查台账_*.xlsx")):
        wb = openpyxl.load_workbook(path, read_only=True)
        ids = {r[0] for r in wb["疑点清单"].iter_rows(min_row=2, values_only=True) if r[0]}
        counts = {r[0]: r[1] for r in wb[COVER].iter_rows(values_only=True)
                  if r and r[0] in ("疑点总数", "其中本次新下发", "以前下发尚未办结", "逾期", "挂牌督办")}
        assert len(counts) == 5, counts
        found[path.name] = (ids, counts)
        wb.close()
    return found


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fundwatch(api_url: str, *argv: str) -> subprocess.CompletedProcess:
    """`python <argv>` with the pipelines this test imports, against the module's Prefect API."""
    env = dict(os.environ, PREFECT_API_URL=api_url,
               PYTHONPATH=os.pathsep.join([str(Path(pipelines.__file__).resolve().parents[1]),
                                           os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=300)


def _nightly_args(root: Path) -> list[str]:
    return ["nightly", "--inbox", str(root / "inbox"), "--db", str(root / "store" / "fw.duckdb"),
            "--out", str(root / "out"), "--as-of", AS_OF.isoformat()]


def _kill_at(root: Path, api_url: str, target: str, when: str, n: int) -> subprocess.CompletedProcess:
    return _fundwatch(api_url, "-c", WRAPPER, target, when, str(n), *_nightly_args(root))


@pytest.fixture(scope="module")
def reference(prefect_api, tmp_path_factory):
    """The same inbox, one uninterrupted `fundwatch --verbose nightly` on a fresh store."""
    root = tmp_path_factory.mktemp("reference")
    build_inbox(root / "inbox")
    run = _fundwatch(prefect_api, "-m", "pipelines.cli", "--verbose", *_nightly_args(root))
    assert run.returncode == 0, run.stderr[-2000:]
    state = _state(root / "store" / "fw.duckdb")
    # The scenario is worth crashing: suspects under several rules, in both agencies' worklists.
    assert {s[1] for s in state["suspects"]} >= {"PAID_AFTER_DEATH", "PAID_DURING_CUSTODY",
                                                  "PAID_WHILE_SUSPENDED", "LARGE_PAYMENT_UNREVIEWED"}
    assert {q[0] for q in state["quality"]} == {"2026-10-21", "2026-11-21"}
    worklists = _worklist_ids(root / "out")
    assert len(worklists) == 2
    return {"state": state, "worklists": worklists, "console": run.stdout + run.stderr, "root": root}


# Kill points: (step, function of the real code, kill before/after its n-th call).
KILL_POINTS = [
    # delivery 1 (4 files) committed, inside delivery 2's transaction after its first file
    pytest.param("pipelines.ingest:_ingest_file", "after", 5, id="ingest-second-delivery"),
    # both deliveries committed, the data-quality checks under way (none stored yet)
    pytest.param("pipelines.quality:_suite", "after", 2, id="validate-mid-checks"),
    pytest.param("pipelines.rules:_run_rule", "after", 3, id="detect-third-rule"),
    # the merge written, its transaction (and the incremental-detection state) not yet committed
    pytest.param("pipelines.suspects:_apply", "after", 1, id="update-suspects-before-commit"),
    # 逾期/挂牌督办/要情 refreshed and committed, no worklist issued yet
    pytest.param("pipelines.casework:refresh", "after", 1, id="casework-after-commit"),
    # first workbook written to its temp file, issuing not committed
    pytest.param("pipelines.worklists:_write_workbook", "after", 1, id="worklists-mid-write"),
    # exports committed, no workbook moved into place yet
    pytest.param("pipelines.worklists:_stage_worklists", "after", 1, id="worklists-after-commit"),
    # dashboard published, 汇总表 written to its temp file
    pytest.param("pipelines.report_summary:write_summary", "after", 1, id="report-summary"),
]


@pytest.mark.parametrize("target, when, n", KILL_POINTS)
def test_a_night_killed_part_way_is_completed_by_the_next_run_as_if_never_interrupted(
        reference, prefect_api, tmp_path, target, when, n):
    build_inbox(tmp_path / "inbox")
    db, out = tmp_path / "store" / "fw.duckdb", tmp_path / "out"

    killed = _kill_at(tmp_path, prefect_api, target, when, n)
    assert killed.returncode == -signal.SIGKILL, (
        f"the run was not killed at {target} (exit {killed.returncode}): {killed.stderr[-2000:]}")

    # The store opens (DuckDB replays or drops what the dead process left in its WAL).
    con = connect(db)
    try:
        interrupted = con.execute("select run_id, status from runs").fetchall()
        assert [s for _, s in interrupted] == ["running"]
    finally:
        con.close()

    # Never a half-written XLSX under OUT, and never a file there without its export on record.
    con = connect(db, read_only=True)
    try:
        audited = {(f, h) for f, h in con.execute("select file, file_hash from audit_log").fetchall()}
    finally:
        con.close()
    for path in out.rglob("*.xlsx"):
        openpyxl.load_workbook(path, read_only=True).close()
        if "data_docs" not in path.parts:
            assert (str(path), _sha256(path)) in audited, f"{path.name} is under OUT without its audit row"

    summary = _night(tmp_path)
    assert summary["status"] == "completed"

    assert _state(db) == reference["state"]
    assert _worklist_ids(out) == reference["worklists"]
    assert not [p.name for p in out.rglob("*.tmp")], "a killed run's temp file was left under OUT"
    con = connect(db, read_only=True)
    try:
        runs = dict(con.execute("select run_id, status from runs").fetchall())
        assert runs[interrupted[0][0]] == "failed"
        assert "interrupted" in con.execute("select summary->>'error' from runs where run_id = ?",
                                            [interrupted[0][0]]).fetchall()[0][0]
        # every workbook now under OUT is the one last recorded for that name
        for path in out.glob("*.xlsx"):
            last = con.execute("select arg_max(file_hash, happened_at) from audit_log where file = ?",
                               [str(path)]).fetchall()[0][0]
            assert last == _sha256(path)
    finally:
        con.close()


def test_the_nightly_console_never_shows_a_full_id_number(reference):
    """Prefect's INFO logs, the run summary and the rejected row's reason (it quotes the bad number)."""
    console = reference["console"]
    assert "rejected" in console or "拒" in console  # the summary was printed
    bad = DEAD[:-1] + ("0" if DEAD[-1] != "0" else "1")
    for pid in (DEAD, HELD, ALIVE, STOPPED, BIG, bad, DEAD[:6] + DEAD[8:17]):
        assert pid not in console


def _casework(db: Path) -> list[tuple]:
    """What returns and their recomputation set: answers, statuses, 要情 classes and report dates."""
    con = connect(db, read_only=True)
    try:
        return con.execute("""
            select suspect_id, status, outcome, recovered_amount, verified_on, verified_amount, major_class,
                   report_due, class_verified_on, coalesce(overdue, false), coalesce(escalated, false)
            from suspects order by suspect_id""").fetchall() + con.execute(
            "select suspect_id, event, detail::varchar from suspect_events order by all").fetchall()
    finally:
        con.close()


def test_returns_killed_before_their_casework_is_recomputed_recompute_it_when_run_again(reference, prefect_api, tmp_path):
    """Each workbook's answers commit in their own transaction; the 要情 classes and flags of the
    suspects they changed are recomputed after. Killed between the two, the run again found the
    workbook on record ("already applied"), changed nothing, and so recomputed nothing: a
    transferred loss had no 要情 class and no report date, and nothing said so (found by a random
    SIGKILL probe). The suspects left to recompute are kept with the answers."""
    import shutil

    from pipelines.casework import OUTCOME_LABELS

    runs = {}
    for name in ("uninterrupted", "killed"):
        root = tmp_path / name
        shutil.copytree(reference["root"] / "store", root / "store")
        shutil.copytree(reference["root"] / "out", root / "out")
        path = next((root / "out").glob(f"疑点核查台账_{A2}_*.xlsx"))
        wb = openpyxl.load_workbook(path)
        ws = wb["疑点清单"]
        header = [c.value for c in ws[1]]
        answered = 0
        for row in range(2, ws.max_row + 1):
            if ws.cell(row=row, column=1).value:
                ws.cell(row=row, column=header.index("核实结果") + 1, value=OUTCOME_LABELS[6])
                ws.cell(row=row, column=header.index("核实日期") + 1, value="2026-11-24")
                answered += 1
        assert answered >= 2
        returned = root / "returned.xlsx"
        if runs:  # the same bytes (a workbook saved a second later differs in its stamp, and so in its sha256)
            shutil.copyfile(runs["uninterrupted"][1][-1], returned)
        else:
            wb.save(returned)
        runs[name] = (root, ["returns", "--db", str(root / "store" / "fw.duckdb"), "--as-of", "2026-11-25",
                             str(returned)])

    root, args = runs["uninterrupted"]
    done = _fundwatch(prefect_api, "-m", "pipelines.cli", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = _casework(root / "store" / "fw.duckdb")
    assert sum(row[1] == "已移送" and row[6] == "要情" for row in expected[:4]) == 2  # (a 要情 has no report date)

    root, args = runs["killed"]
    killed = _fundwatch(prefect_api, "-c", WRAPPER, "pipelines.casework:refresh", "before", "1", *args)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    between = _casework(root / "store" / "fw.duckdb")
    assert between != expected  # the answers are in, their 要情 classes not yet
    again = _fundwatch(prefect_api, "-m", "pipelines.cli", *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _casework(root / "store" / "fw.duckdb") == expected
