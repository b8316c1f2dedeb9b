"""The nightly Prefect flow on real files: incremental, idempotent, one run at a time, failures named."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from _nightly_inbox import AGENCY, ALIVE, DEAD, delivery_1, delivery_2
from conftest import fundwatch_env
from conftest import store_scalar as _count
from pipelines import analysis, cli, runlock, store
from pipelines.flows import NightlyError, StepFailed, nightly_deployment, nightly_flow
from pipelines.runsummary import format_summary
from pipelines.worklists import worklist_name
from pipelines.store import connect, scalar, size_bytes

NIGHT_1, NIGHT_2 = date(2026, 10, 21), date(2026, 11, 21)


# Flows run in this process report to the session's temporary Prefect API (conftest.py).
pytestmark = pytest.mark.usefixtures("prefect_api")


def _night(inbox: Path, db: Path, out: Path, as_of: date, config: str | None = None) -> dict:
    return nightly_flow(inbox=str(inbox), db=str(db), out=str(out), as_of=as_of, config_path=config, progress=False)


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory, prefect_api):
    """Night 1 on the October delivery, then November's arrives and night 2 runs."""
    root = tmp_path_factory.mktemp("nights")
    inbox, db, out = root / "inbox", root / "store" / "fw.duckdb", root / "out"
    delivery_1(inbox)
    first = _night(inbox, db, out, NIGHT_1)
    events_after_1 = _count(db, "select count(*) from suspect_events")
    amount_after_1 = _count(db, "select amount from suspects where rule_id = 'PAID_AFTER_DEATH' and subject = ?", [DEAD])
    delivery_2(inbox)
    second = _night(inbox, db, out, NIGHT_2)
    return {"inbox": inbox, "db": db, "out": out, "first": first, "second": second,
            "events_after_1": events_after_1, "amount_after_1": amount_after_1}


def test_first_night_reads_the_delivery_and_finds_the_dead_pensioner(two_nights):
    first = two_nights["first"]
    assert first["status"] == "completed"
    assert first["files_ingested"] == 4 and first["files_skipped"] == 0
    assert first["rows_rejected"] == 1  # the payment with a wrong check digit
    assert any("校验" in reason or "check" in reason.lower() for reason in first["rejected_by_reason"])
    assert first["by_rule"]["PAID_AFTER_DEATH"]["new"] == 1
    assert two_nights["amount_after_1"] == 6000  # 202609 + 202610; August (month of death) is payable


def test_second_night_reads_only_the_new_files_and_grows_the_same_suspect(two_nights):
    second, db = two_nights["second"], two_nights["db"]
    assert second["files_ingested"] == 1 and second["files_skipped"] == 4
    assert _count(db, "select count(*) from ingest_ledger") == 5
    assert second["by_rule"]["PAID_AFTER_DEATH"]["new"] == 0
    assert second["by_rule"]["PAID_AFTER_DEATH"]["updated"] == 1
    assert _count(db, "select amount from suspects where rule_id = 'PAID_AFTER_DEATH' and subject = ?", [DEAD]) == 9000
    assert _count(db, "select count(*) from suspects where person_id = ?", [ALIVE]) == 0  # the look-alike


def test_each_night_leaves_a_completed_runs_row_with_its_summary(two_nights):
    con = connect(two_nights["db"], read_only=True)
    try:
        rows = con.execute("select as_of, status, summary::varchar, finished_at >= started_at from runs "
                           "where command = 'nightly' order by started_at").fetchall()
    finally:
        con.close()
    assert [(r[0], r[1]) for r in rows[:2]] == [(NIGHT_1, "completed"), (NIGHT_2, "completed")]
    assert all(r[3] for r in rows)
    stored = json.loads(rows[1][2])
    assert stored["files_ingested"] == 1 and "PAID_AFTER_DEATH" in stored["by_rule"]


def test_night_writes_worklists_report_and_data_docs_owner_only(two_nights):
    out, second = two_nights["out"], two_nights["second"]
    assert second["worklists"] >= 1 and all(Path(p).is_file() for p in second["worklist_files"])
    # night 1's sheets are superseded by night 2's: OUT holds one per agency with open suspects
    assert sorted(out.glob("疑点核查台账_*.xlsx")) == sorted(Path(p) for p in second["worklist_files"])
    assert two_nights["first"]["worklists"] >= 1
    assert second["worklists_retired"] == two_nights["first"]["worklists"]
    assert Path(second["dashboard"]).is_file() and Path(second["summary_xlsx"]).is_file()
    assert (out / "data_docs" / "index.html").is_file()
    # night 1's validation pages went, and their folders with them (a year left thousands)
    assert not [d for d in (out / "data_docs").rglob("*") if d.is_dir() and not any(d.iterdir())]
    assert (out.stat().st_mode & 0o777) == 0o700
    assert DEAD not in json.dumps(second, ensure_ascii=False)  # the summary never carries an ID number


def test_rerun_on_the_same_inbox_adds_no_events_and_no_ledger_rows(two_nights):
    db = two_nights["db"]
    events = _count(db, "select count(*) from suspect_events")
    ledger = _count(db, "select count(*) from ingest_ledger")
    again = _night(two_nights["inbox"], db, two_nights["out"], NIGHT_2)
    assert again["files_ingested"] == 0 and again["files_skipped"] == 5
    assert again["new"] == again["updated"] == again["reopened"] == 0
    assert again["copies_skipped"] == []  # files seen under their own names are not news
    assert _count(db, "select count(*) from suspect_events") == events
    assert _count(db, "select count(*) from ingest_ledger") == ledger


def test_a_file_sent_again_under_another_name_is_skipped_and_named(tmp_path):
    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    first = delivery_1(inbox)
    _night(inbox, db, out, NIGHT_1)
    (inbox / "2026-11-21").mkdir()
    resent = inbox / "2026-11-21" / "payments_360700_202610_补报.csv"
    resent.write_bytes((first / "payments_360700_202610.csv").read_bytes())
    second = _night(inbox, db, out, NIGHT_2)
    assert second["files_ingested"] == 0 and second["files_skipped"] == 5
    # named by its delivery too: two deliveries' copies of one file read as two lines alike, neither
    # saying where it was (a probe of the served deployment)
    nested = inbox / "2026-11-21" / "补报" / "payments_360700_202610.csv"
    nested.parent.mkdir()
    nested.write_bytes(resent.read_bytes())
    unpacked = inbox / "2026-11-21" / "2026-11-21" / "p.csv"  # (2026-11-21.zip unpacked into its folder)
    unpacked.parent.mkdir()
    unpacked.write_bytes(resent.read_bytes())
    second = _night(inbox, db, out, NIGHT_2)
    assert second["files_ingested"] == 0 and second["files_skipped"] == 7
    assert sorted(second["copies_skipped"], key=lambda c: c["file"]) == [
        {"file": "2026-11-21/2026-11-21/p.csv", "same_as": "2026-10-21/payments_360700_202610.csv"},
        {"file": f"2026-11-21/{resent.name}", "same_as": "2026-10-21/payments_360700_202610.csv"},
        {"file": "2026-11-21/补报/payments_360700_202610.csv", "same_as": "2026-10-21/payments_360700_202610.csv"}]
    assert (f"    skipped 2026-11-21/{resent.name}: same content as 2026-10-21/payments_360700_202610.csv, "
            "already ingested" in format_summary(second).splitlines())


def test_a_night_run_for_an_earlier_day_says_it_read_deliveries_dated_after_it(tmp_path):
    """Catching up a missed night with both deliveries in the inbox: the night reads both (every
    new delivery is read), and says which were dated after its as-of; the usual night says nothing."""
    inbox = tmp_path / "inbox"
    delivery_1(inbox)
    delivery_2(inbox)
    early = _night(inbox, tmp_path / "early.duckdb", tmp_path / "out-early", NIGHT_1)
    assert early["deliveries_after_as_of"] == ["2026-11-21"]
    assert (f"  note: deliveries dated after as-of {NIGHT_1} were read tonight: 2026-11-21 (a night reads every new "
            "delivery in the inbox; to replay past nights, give each night only its own delivery)"
            in format_summary(early).splitlines())
    usual = _night(inbox, tmp_path / "usual.duckdb", tmp_path / "out-usual", NIGHT_2)
    assert usual["deliveries_after_as_of"] == [] and "note: deliveries dated after" not in format_summary(usual)


def test_a_night_re_run_with_another_config_says_what_it_no_longer_finds_and_which_rules_it_did_not_run(tmp_path):
    """An office tightens a parameter and disables a rule, then runs the night again: the summary
    says how many suspects are no longer detected (per rule too) and which rules were not run; set
    back, how many were found again."""
    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    strict = tmp_path / "strict.yaml"  # certified 2026-06-01: 142 days before as-of, overdue at 100
    strict.write_text("rules:\n  CERTIFICATION_OVERDUE:\n    certification_max_days: 100\n"
                      "regions: {'360781': {rules: {CERTIFICATION_OVERDUE: {certification_max_days: 200}}}}\n"
                      "casework: {escalate_after_days: 30, holidays: [2027-02-09]}\n",
                      encoding="utf-8")
    first = _night(inbox, db, out, NIGHT_1, str(strict))
    assert first["by_rule"]["CERTIFICATION_OVERDUE"]["new"] == 3 and first["no_longer_detected"] == 0
    # who ran the night, with which inbox, store, OUT and config — the config's bytes by their sha256
    # (an audit probe: the night was in no audit_log row; its config nowhere)
    actor = _count(db, "select any_value(actor) from audit_log where action = 'run_night'")
    ran = json.loads(_count(db, "select any_value(detail::varchar) from audit_log where action = 'run_night'"))
    assert _count(db, "select count(*) from audit_log where action = 'run_night'") == 1
    assert actor and ran["run_id"] == first["run_id"] and ran["as_of"] == NIGHT_1.isoformat()
    assert (ran["inbox"], ran["store"], ran["out"], ran["config"]) == (
        str(inbox.absolute()), str(db.absolute()), str(out.absolute()), str(strict.absolute()))
    assert ran["config_sha256"] == hashlib.sha256(strict.read_bytes()).hexdigest() and ran["any_day"] is False
    # the values the night ran with are on record, with the region that had its own
    defaults = {"certification_max_days": 365, "recent_payment_months": 3, "pension_types": ["110", "120", "170"]}
    stored = json.loads(_count(db, "select summary::varchar from runs order by started_at desc limit 1"))
    assert stored["by_rule"]["CERTIFICATION_OVERDUE"]["parameters"] == [
        {"params": {**defaults, "certification_max_days": 100}, "regions": None},
        {"params": {**defaults, "certification_max_days": 200}, "regions": ["360781"]}]
    # and its casework settings, which returns and report use when given no --config
    assert stored["casework_settings"] == {
        "verify_working_days": 20, "escalate_after_days": 30, "major_from": 100000, "ministry_from": 500000,
        "report_working_days": 5, "holidays": ["2027-02-09"], "adjusted_workdays": []}
    usual = tmp_path / "usual.yaml"
    usual.write_text("disabled_rules: [PAID_AFTER_DEATH]\n", encoding="utf-8")
    again = _night(inbox, db, out, NIGHT_1, str(usual))
    lines = format_summary(again).splitlines()
    assert "  suspects tonight: 0 new, 0 updated, 0 reopened, 0 found again, 3 no longer detected, 0 handed over to another agency" in lines
    assert any(line.startswith("    CERTIFICATION_OVERDUE") and line.endswith(
        "(+0 new, 0 updated, 0 reopened, 0 found again, 3 no longer detected, 0 handed over to another agency)") for line in lines), lines
    assert ("  rules disabled by config: PAID_AFTER_DEATH (not run; their open suspects stay as last detected)"
            in lines)
    assert _count(db, "select count(*) from suspect_events where event = 'no_longer_detected'") == 3
    assert again["by_rule"]["CERTIFICATION_OVERDUE"]["parameters"] == [{"params": defaults, "regions": None}]
    # the parameter set back: the same suspects found again as they were, and said so
    back = format_summary(_night(inbox, db, out, NIGHT_1, str(strict))).splitlines()
    assert "  suspects tonight: 0 new, 0 updated, 0 reopened, 3 found again, 0 no longer detected, 0 handed over to another agency" in back
    assert not any("rules disabled" in line for line in back)


def _lock_holder(db: Path) -> subprocess.Popen:
    """Another process holding the store's run lock (as another fundwatch run does) until killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from pipelines import runlock
            with runlock.hold({str(db)!r}):
                print("held", flush=True)
                sys.stdin.read()  # until killed
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_on_a_busy_store_stops_with_the_holder_named(two_nights, capsys):
    db = two_nights["db"]
    ledger = _count(db, "select count(*) from ingest_ledger")
    holder = _lock_holder(db)
    try:
        code = cli.main(["nightly", "--inbox", str(two_nights["inbox"]), "--db", str(db),
                         "--out", str(two_nights["out"]), "--as-of", "2026-11-22"])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_BUSY
    assert f"another fundwatch run (nightly) holds {db} since" in err and f"(pid {holder.pid})" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert _count(db, "select count(*) from ingest_ledger") == ledger


def test_a_library_panic_in_a_step_fails_the_night_in_one_line_and_marks_it_failed(tmp_path, capsys, monkeypatch, prefect_api):
    """A Rust library's panic (pyo3's PanicException, Polars') derives from BaseException: it went
    past every `except Exception`, printed a traceback and left the night's run `running`. Here the
    real detection panics as Polars did (the fault injected around the real function)."""
    from polars.exceptions import PanicException

    from pipelines import rules as rules_module

    def panicking(*args, **kwargs):
        raise PanicException("assertion failed: i < self.len()")

    monkeypatch.setattr(rules_module, "detect", panicking)
    inbox, db = tmp_path / "inbox", tmp_path / "fw.duckdb"
    delivery_1(inbox)
    code = cli.main(["nightly", "--inbox", str(inbox), "--db", str(db), "--out", str(tmp_path / "out"),
                     "--as-of", "2026-10-21"])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_FAILED
    assert err == "fundwatch nightly: nightly run failed: task detect failed: PanicException: assertion failed: i < self.len()"
    assert _count(db, "select count(*) from runs where status = 'failed'") == 1
    assert _count(db, "select count(*) from ingest_ledger") == 4  # the night's ingest is kept


def test_a_store_left_open_in_a_notebook_stops_each_command_with_the_program_named(two_nights, tmp_path, capsys):
    """A notebook kernel holds DuckDB's own lock on the file (read-only); the night, `report` and
    `returns` stop in one line, exit 3 as for a busy store, saying what to close."""
    db = two_nights["db"]
    ledger = _count(db, "select count(*) from ingest_ledger")
    kernel = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from pipelines import analysis
            con = analysis.open_store({str(db)!r})
            print("open", flush=True)
            sys.stdin.read()  # until killed
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    (tmp_path / "returned.xlsx").write_bytes(b"")  # never read: the store is not opened
    try:
        assert kernel.stdout.readline().strip() == "open"
        codes = [cli.main(["nightly", "--inbox", str(two_nights["inbox"]), "--db", str(db),
                           "--out", str(two_nights["out"]), "--as-of", "2026-11-22"]),
                 cli.main(["report", "--db", str(db), "--out", str(tmp_path / "report")]),
                 cli.main(["returns", "--db", str(db), str(tmp_path / "returned.xlsx")])]
    finally:
        kernel.kill()
        kernel.wait()
    lines = capsys.readouterr().err.strip().splitlines()
    assert codes == [cli.EXIT_BUSY] * 3 and len(lines) == 3, lines
    for line in lines:
        assert f"{db} is open in another program (python" in line and f"pid {kernel.pid})" in line, line
        assert "shut the kernel down" in line and "Traceback" not in line
    assert _count(db, "select count(*) from ingest_ledger") == ledger


def test_a_reader_arriving_while_a_run_holds_the_store_is_refused_naming_the_run(two_nights, tmp_path):
    """From a probe of commands side by side: a night takes the store's lock at once and opens the
    store seconds later (Prefect starting); a notebook or `rules --db` opened in between held the
    store when the night came to it, and failed the night, which blamed "a notebook kernel". A
    reader is refused while a run of another process holds the lock, naming the run; a command's
    checks before its own lock leave the store alone, and its lock says who holds it."""
    db = two_nights["db"]
    holder = _lock_holder(db)
    try:
        with pytest.raises(store.StoreBusy) as refused:
            analysis.open_store(db)
        rules_db = subprocess.run([sys.executable, "-m", "pipelines.cli", "rules", "--db", str(db)],
                                  capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
        (tmp_path / "returned.xlsx").write_bytes(b"")
        busy = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "returns", "--db", str(db), str(tmp_path / "returned.xlsx")],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    finally:
        holder.kill()
        holder.wait()
    said = f"a fundwatch nightly (pid {holder.pid}, since "
    assert said in str(refused.value) and "wait for it to finish" in str(refused.value)
    assert rules_db.returncode == cli.EXIT_BUSY and said in rules_db.stderr, rules_db.stderr
    assert busy.returncode == cli.EXIT_BUSY, busy.stderr
    assert f"another fundwatch run (nightly) holds {db} since " in busy.stderr and f"(pid {holder.pid})" in busy.stderr
    analysis.open_store(db).close()  # the run gone, the reader opens


def test_a_store_held_for_a_moment_by_another_program_is_waited_for(two_nights):
    """Two `returns` started together: the one that won the lock was failed by the other's brief
    look at the store before its own lock. A hold of a moment is waited for (a notebook left open
    still stops the command, as above)."""
    db = two_nights["db"]
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time, duckdb
            con = duckdb.connect({str(db)!r}, read_only=True)
            print("open", flush=True)
            time.sleep(1.0)
            con.close()
        """)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        con = store.connect(db)
        assert store.scalar(con, "select count(*) from ingest_ledger") > 0
        con.close()
    finally:
        reader.kill()
        reader.wait()


@pytest.mark.parametrize("case", ["a file", "under a HOME that is no folder"])
def test_a_prefect_home_that_is_a_file_or_cannot_be_written_is_refused_in_one_line(tmp_path, case):
    """From a probe of the temporary server's start: PREFECT_HOME naming a file made Prefect wait
    90 s for a server that could not start, then print thousands of lines of its traceback — and so
    did a service account's HOME it could not write, with no PREFECT_HOME (a hostile-environment
    probe: 4,600 lines, exit 1 after 97 s). As root no folder is read-only to this test: a HOME that
    is a file stands for one."""
    inbox = tmp_path / "inbox"
    delivery_1(inbox)
    home = tmp_path / "prefect-home"
    home.write_text("not a folder", encoding="utf-8")
    env = fundwatch_env(home)
    if case != "a file":
        del env["PREFECT_HOME"]
        env["HOME"] = str(home)
    night = subprocess.run([sys.executable, "-m", "pipelines.cli", "nightly", "--inbox", str(inbox), "--db",
                            str(tmp_path / "fw.duckdb"), "--out", str(tmp_path / "out"), "--as-of", "2026-10-21"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert night.returncode == cli.EXIT_USAGE, night.stderr[-2000:]
    assert len(night.stderr.strip().splitlines()) <= 2, night.stderr[-2000:]
    assert night.stderr.strip().splitlines()[-1] == (
        f"fundwatch nightly: PREFECT_HOME {home} is a file, not a folder: Prefect keeps its database there — "
        "point PREFECT_HOME at a folder (default ~/.prefect)" if case == "a file" else
        f"fundwatch nightly: Prefect's home {home / '.prefect'} cannot be written (Not a directory): Prefect keeps "
        "its database there — set PREFECT_HOME to a folder this user can write (default ~/.prefect)")


def _children(pid: int) -> list[int]:
    """The processes whose parent is pid (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_night_killed_with_kill_9_leaves_no_temporary_prefect_server_behind(tmp_path):
    """Prefect stops its temporary API server as the process exits; a night killed with `kill -9`
    (an out-of-memory kill) left it running for good, ~200 MB each time (a probe of operations).
    The server now takes SIGTERM when the night's process ends however it ends."""
    import signal
    import time

    inbox = tmp_path / "inbox"
    delivery_1(inbox)
    night = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "nightly", "--inbox", str(inbox), "--db",
                              str(tmp_path / "fw.duckdb"), "--out", str(tmp_path / "out"), "--as-of", "2026-10-21"],
                             cwd=tmp_path, env=fundwatch_env(tmp_path / "prefect-home"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = []
    try:
        deadline = time.monotonic() + 120
        while not server and night.poll() is None and time.monotonic() < deadline:
            server = _children(night.pid)
            time.sleep(0.05)
        assert server, "the night started no temporary server"
        assert "uvicorn" in Path(f"/proc/{server[0]}/cmdline").read_bytes().decode(errors="replace")
        night.send_signal(signal.SIGKILL)
        night.wait()
        deadline = time.monotonic() + 30
        while _alive(server[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server[0]), "Prefect's temporary server outlived the night killed with kill -9"
    finally:
        if night.poll() is None:
            night.kill()
            night.wait()
        for pid in server:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_broken_rule_fails_the_night_by_name_after_the_other_rules_issued_their_worklists(tmp_path,
                                                                                           broken_rule_checkout):
    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    # the real command, from a copy of fundwatch whose SHARED_BANK_ACCOUNT.yaml query fails, with
    # Prefect's temporary server (no PREFECT_API_URL) set to speak at length: its console is its log
    # file, not the night's (stopped as the command ended, it printed a shutdown traceback under the
    # night's one line once, on a busy machine)
    env = {**fundwatch_env(tmp_path / "prefect-home"), "PYTHONPATH": str(broken_rule_checkout),
           "PREFECT_SERVER_LOGGING_LEVEL": "DEBUG"}
    # ...and run as a job whose standard output is closed (`>&-`): Python has no sys.stdout, and the
    # server inherited the closed descriptor and died on it, the night waiting 90 s for it (a probe)
    night = subprocess.run(["sh", "-c", 'exec "$0" "$@" >&-', sys.executable, "-m", "pipelines.cli", "nightly",
                            "--inbox", str(inbox), "--db", str(db), "--out", str(out), "--as-of", "2026-10-21"],
                           cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, timeout=300)
    err = night.stderr.strip()
    assert night.returncode == cli.EXIT_FAILED
    assert "task detect failed" in err and "SHARED_BANK_ACCOUNT" in err and len(err.splitlines()) == 1, err
    assert "Started server process" in (tmp_path / "prefect-home" / "temporary-server.log").read_text(encoding="utf-8")
    # the console stays at one line; Prefect's UI has the tasks' own log lines (it had none of a
    # night run without --verbose)
    import sqlite3
    with sqlite3.connect(tmp_path / "prefect-home" / "prefect.db") as prefect_db:
        logged = [m for (m,) in prefect_db.execute("select message from log where level = 20")]
    assert "ingested 4 new file(s) of 4; new deliveries: 2026-10-21" in logged
    assert any(m.startswith("PAID_AFTER_DEATH: 1 finding(s)") for m in logged)
    # ...but not Prefect's own report of the failure: it quotes the exception unmasked, traceback and all
    with sqlite3.connect(tmp_path / "prefect-home" / "prefect.db") as prefect_db:
        assert prefect_db.execute("select count(*) from log where level >= 40").fetchone()[0] == 0
        assert not any("Traceback" in m for (m,) in prefect_db.execute("select message from log"))
    con = connect(db, read_only=True)
    try:
        status, summary = con.execute("select status, summary::varchar from runs").fetchall()[0]
        assert status == "failed" and "task detect failed" in json.loads(summary)["error"]
        assert scalar(con, "select count(*) from ingest_ledger") == 4
        # The rules that ran still reached the agency: 王死's PAID_AFTER_DEATH suspect is issued.
        assert scalar(con, "select status from suspects where rule_id = 'PAID_AFTER_DEATH' and person_id = ?", [DEAD]) == "已下发"
        # ...and the report is of this night, whose suspects it shows (it fell back to "today")
        from pipelines.report_data import data_night
        assert data_night(con) == date(2026, 10, 21)
    finally:
        con.close()
    assert list(out.glob("疑点核查台账_*.xlsx")) and (out / "dashboard.html").is_file()


def test_a_worklist_that_cannot_be_written_fails_that_task_by_name(tmp_path):
    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    # A folder squats where the agency's worklist must go: the write fails whoever runs it.
    (out / worklist_name(AGENCY, NIGHT_1)).mkdir(parents=True)
    with pytest.raises(StepFailed, match="task issue-worklists failed"):
        _night(inbox, db, out, NIGHT_1)
    assert _count(db, "select status from runs") == "failed"
    # The worklist step is all or nothing: no suspect is marked issued without its workbook.
    assert _count(db, "select count(*) from suspects where status = '已下发'") == 0
    assert _count(db, "select count(*) from suspects where status = '待下发'") >= 1


def test_the_deployment_carries_the_configured_schedule(tmp_path):
    config = tmp_path / "schedule.yaml"
    config.write_text("schedule:\n  cron: '30 3 * * 1-5'\n  timezone: Asia/Urumqi\n", encoding="utf-8")
    deployment = nightly_deployment(tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out", str(config))
    schedule = deployment.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("30 3 * * 1-5", "Asia/Urumqi")
    assert deployment.parameters["db"] == str(tmp_path / "fw.duckdb")
    overridden = nightly_deployment(tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out", None,
                                    cron="0 1 * * *")
    assert (overridden.schedules[0].schedule.cron, overridden.schedules[0].schedule.timezone) == ("0 1 * * *", "Asia/Shanghai")


def test_lock_is_released_after_a_run(tmp_path):
    db = tmp_path / "fw.duckdb"
    with runlock.hold(db):
        pass
    with runlock.hold(db):  # a crashed or finished holder never blocks the next night
        assert runlock.lock_path(db).exists()


# -- DuckDB's memory: the limit and the spill folder come from config (duckdb:) ----------------

def _suspects(db: Path) -> list[tuple]:
    con = connect(db, read_only=True)
    try:
        return con.execute("select suspect_id, amount, status from suspects order by suspect_id").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("settings, query, said", [
    # work that does not spill (one list of two million texts): a folder with more space changes nothing
    ("", "select list(md5(i::varchar)) from range(2000000) r(i)", "in work it cannot spill to disk: raise"),
    # a hash aggregate that spills, its folder held to 1 MB (as a full disk holds it)
    ("set max_temp_directory_size = '1MB';",
     "select a, count(*) from (select md5(i::varchar) a from range(1000000) r(i)) group by a order by 2 desc limit 1",
     "its spill folder is full (or at its max_temp_directory_size): free space there"),
])
def test_a_night_out_of_memory_is_told_whether_its_spill_folder_was_full(tmp_path, settings, query, said):
    """DuckDB's two out-of-memory failures want different changes: the hint used to send an office
    to a folder with free space when the work could not spill at all."""
    from pipelines.store import failure_hint

    con = duckdb.connect()
    con.execute(f"set memory_limit = '20MB'; set threads = 1; set temp_directory = '{tmp_path}'; {settings}")
    with pytest.raises(duckdb.OutOfMemoryException) as raised:
        con.execute(query).fetchall()
    try:  # as a step meets it: wrapped in the error of the delivery or rule that failed
        raise RuntimeError("delivery could not be written") from raised.value
    except RuntimeError as wrapped:
        hint = failure_hint(wrapped)
    assert said in hint and hint.count("DuckDB reached its memory limit") == 1, hint


def test_out_of_memory_under_an_address_space_limit_is_told_to_lift_it_not_to_raise_duckdbs(tmp_path):
    """Under `ulimit -v` an allocation fails before DuckDB's own limit is reached ("bad allocation"):
    the hint said to raise duckdb.memory_limit, which makes it worse (a hostile-environment probe).
    In a process of its own, its address space limited to 400 MB more than it holds."""
    script = tmp_path / "limited.py"
    script.write_text(
        "import resource, duckdb\n"
        "from pipelines import store\n"
        "con = duckdb.connect()\n"
        "con.execute(\"set threads = 1; set memory_limit = '4GB'\")\n"
        "held = int([l for l in open('/proc/self/status') if l.startswith('VmSize')][0].split()[1]) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (held + 400 * 2**20, resource.RLIM_INFINITY))\n"
        "try:\n"
        "    con.execute('select list(md5(i::varchar)) from range(20000000) r(i)').fetchall()\n"
        "except duckdb.OutOfMemoryException as exc:\n"
        "    print(store.failure_hint(RuntimeError('wrapped').with_traceback(None)) or '-', store.failure_hint(exc))\n",
        encoding="utf-8")
    ran = subprocess.run([sys.executable, str(script)], env=fundwatch_env(tmp_path / "prefect"), capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    nothing, hint = ran.stdout.split(" ", 1)
    assert nothing == "-"
    assert hint.startswith(" (the process may use at most ") or hint.startswith("(the process may use at most "), hint
    assert "MiB of address space (ulimit -v): lift that limit, or set duckdb.memory_limit in the config well below " \
           "it)" in hint and "raise duckdb.memory_limit" not in hint, hint


def test_the_night_runs_under_the_configured_memory_limit_and_spills_to_an_owner_only_folder(tmp_path):
    inbox = tmp_path / "inbox"
    delivery_1(inbox)
    spill = tmp_path / "spill" / "fundwatch"  # not there yet: created owner-only
    config = tmp_path / "memory.yaml"
    config.write_text(f"duckdb:\n  memory_limit: 64MB\n  temp_directory: '{spill}'\n", encoding="utf-8")
    limited = _night(inbox, tmp_path / "limited.duckdb", tmp_path / "out-limited", NIGHT_1, str(config))
    plain = _night(inbox, tmp_path / "plain.duckdb", tmp_path / "out-plain", NIGHT_1)
    # The settings the night ran with are stored with its summary and told at its end.
    assert limited["store_settings"] == {"memory_limit": "61.0 MiB", "temp_directory": str(spill)}
    assert f"store: DuckDB memory limit 61.0 MiB, spills beyond it to {spill}" in format_summary(limited)
    # Without the section: spilling beside the store, under 4 GiB — or DuckDB's own 80 % of RAM
    # where that is less (on this 24 GB machine it would be 18.8 GiB, and a province's night used it)
    assert plain["store_settings"]["temp_directory"] == str(tmp_path / "plain.duckdb") + ".tmp"
    own = duckdb.connect().execute("select current_setting('memory_limit')").fetchall()[0][0]
    assert plain["store_settings"]["memory_limit"] == ("4.0 GiB" if size_bytes(own) > 4 * 2**30 else own)
    assert spill.is_dir() and (spill.stat().st_mode & 0o777) == 0o700
    assert _suspects(tmp_path / "limited.duckdb") == _suspects(tmp_path / "plain.duckdb")
    assert limited["suspects"] >= 1


def test_a_configured_memory_limit_above_the_default_is_taken_as_written(tmp_path):
    for read_only in (False, True):  # the night's connection, and a notebook's or the report's
        con = connect(tmp_path / "fw.duckdb", read_only=read_only, memory_limit="10GB")
        try:
            assert con.execute("select current_setting('memory_limit')").fetchall()[0][0] == "9.3 GiB"
        finally:
            con.close()
    con = connect(tmp_path / "fw.duckdb", read_only=True)
    try:
        assert size_bytes(con.execute("select current_setting('memory_limit')").fetchall()[0][0]) <= 4 * 2**30
    finally:
        con.close()


def test_past_the_memory_limit_duckdb_spills_to_the_configured_folder_instead_of_failing(tmp_path):
    # A hash aggregate of 1.5M distinct 32-character texts needs far more than 50 MB: with the
    # spill folder it completes; with spilling switched off the same work fails.
    work = "create temp table texts as select md5(range::varchar) as t from range(1500000)"
    count = "select count(*) from (select t, count(*) from texts group by t)"
    con = connect(tmp_path / "spilling.duckdb", memory_limit="50MB", temp_directory=tmp_path / "spill")
    try:
        con.execute(work)
        assert scalar(con, count) == 1_500_000
    finally:
        con.close()
    con = connect(tmp_path / "no-spill.duckdb", memory_limit="50MB")
    try:
        con.execute("set temp_directory = ''")
        with pytest.raises(duckdb.OutOfMemoryException):
            con.execute(work)
            con.execute(count).fetchall()
    finally:
        con.close()


def test_a_night_that_runs_out_of_memory_fails_in_one_line_saying_what_to_change_and_leaves_the_store_whole(tmp_path):
    inbox, db = tmp_path / "inbox", tmp_path / "fw.duckdb"
    delivery_1(inbox)
    config = tmp_path / "tiny.yaml"
    config.write_text("duckdb: {memory_limit: 4MB}\n", encoding="utf-8")
    with pytest.raises(StepFailed) as failed:
        _night(inbox, db, tmp_path / "out", NIGHT_1, str(config))
    message = str(failed.value)
    assert "Out of Memory" in message and "\n" not in message
    # the spill folder beside the store has room: the work that ran out could not spill
    assert "(DuckDB reached its memory limit in work it cannot spill to disk: raise duckdb.memory_limit" in message
    # Whichever step ran out, the store is whole: the delivery is in it entirely or not at all
    # (every payment row the ledger counts, no other), and the failed run is on record.
    assert _count(db, "select count(*) from ingest_ledger") in (0, 4)
    assert _count(db, "select count(*) from payments") == _count(
        db, "select coalesce(sum(rows_accepted), 0) from ingest_ledger where extract = 'payments'")
    assert _count(db, "select status from runs") == "failed"


def test_the_night_says_when_the_stores_disk_is_nearly_full(tmp_path):
    """A night that left its disk full exits 0 (DuckDB keeps what it could not checkpoint in the
    WAL); the next night would fail to commit. The summary carries the disk's room and warns."""
    inbox = tmp_path / "inbox"
    delivery_1(inbox)
    before = shutil.disk_usage(tmp_path).free / 2**20
    night = _night(inbox, tmp_path / "fw.duckdb", tmp_path / "out", NIGHT_1)
    free = shutil.disk_usage(tmp_path).free / 2**20
    # the disk's free space as the night ended; `make test`'s other process writes and removes
    # files of its own on the same disk meanwhile (hundreds of MB at most)
    slack = max(512, free * 0.02)
    assert min(before, free) - slack < night["store_disk"]["free_mb"] < max(before, free) + slack
    assert ("note: the store's disk" in format_summary(night)) == (free < 256)
    full = {**night, "store_disk": {"free_mb": 0.0}}
    assert ("  note: the store's disk has 0.0 MB free: the next night may fail to write its changes; free some "
            "space first") in format_summary(full).splitlines()


def test_a_scheduled_night_that_finds_the_store_held_waits_for_it_then_runs(tmp_path, monkeypatch, capsys):
    """Served, a night that finds a `returns` or a notebook holding the store at 02:00 waits for it
    (up to an hour) instead of failing at once and losing the night until the next day."""
    from pipelines import flows, logs

    monkeypatch.setenv(logs.SERVED, "quiet")
    monkeypatch.setattr(flows, "SERVED_BUSY_POLL_SECONDS", 0.5)
    delivery_1(tmp_path / "inbox")
    db = tmp_path / "fw.duckdb"
    # another fundwatch command holding the store's lock for ten seconds: long enough that the night
    # finds it held however long its start takes on a busy machine (two seconds were not, beside an
    # outside suite: the night started after the hold and had nothing to wait for)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pipelines import runlock; "
                               "cm = runlock.hold(sys.argv[1], 'returns'); cm.__enter__(); "
                               "print('held', flush=True); time.sleep(10)", str(db)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(cli.__file__).parents[1])})
    try:
        assert holder.stdout.readline().strip() == "held"
        summary = _night(tmp_path / "inbox", db, tmp_path / "out", NIGHT_1)
    finally:
        holder.wait(timeout=30)
    assert summary["status"] == "completed"
    err = capsys.readouterr().err
    assert "another fundwatch run (returns) holds" in err and "waiting for it (up to 60 min)" in err
    assert _count(db, "select count(*) from runs where status = 'completed'") == 1


def test_a_scheduled_night_before_the_stores_last_is_refused_as_a_night_by_hand_is(tmp_path, monkeypatch, capsys):
    """From the last probe's left items: a night run ahead by hand (`nightly --as-of` a day to come,
    allowed up to a year ahead) on the store the deployment serves, and the next scheduled night,
    dated before it, ran — lifting every 逾期 and 挂牌督办 and replacing the agencies' worklists with
    ones of the earlier day, which `nightly` by hand refuses."""
    from pipelines import flows, logs

    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    assert _night(inbox, db, out, NIGHT_1 + timedelta(days=30))["status"] == "completed"
    worklists = {p.name: p.stat().st_mtime_ns for p in out.glob("*.xlsx")}
    monkeypatch.setenv(logs.SERVED, "quiet")
    with pytest.raises(flows.NightlyError) as refused:
        _night(inbox, db, out, NIGHT_1)
    said = (f"the store's last night was for {NIGHT_1 + timedelta(days=30)} (run ahead by hand); this scheduled "
            f"night for {NIGHT_1} would step every suspect back to that day")
    assert str(refused.value).startswith(said), refused.value
    assert f"fundwatch serve: nightly run failed: {said}" in capsys.readouterr().err
    assert _count(db, "select count(*) from runs") == 1  # not even begun
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.xlsx")} == worklists
    # the day itself and the days after run as ever
    assert _night(inbox, db, out, NIGHT_1 + timedelta(days=30))["status"] == "completed"


def test_a_served_night_that_fails_in_a_step_says_what_it_did_and_why_in_one_line(tmp_path, capsys, monkeypatch,
                                                                                   prefect_api):
    """As `nightly` does: the summary of what ran (status failed, the file it could not read) on
    standard output, the one line on standard error — no WARNING line per unreadable file before it."""
    from pipelines import flows, logs

    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    (inbox / "2026-10-21" / "payments_broken.xlsx").write_bytes(b"PK\x03\x04 broken")
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "BROKEN_T.yaml").write_text(
        "id: BROKEN_T\ntitle: 坏规则\nbasis: 测试\nseverity: medium\nsubject: payment\nsql: |\n"
        "  select payment_id as subject, person_id, agency_code, period as period_from, period as period_to, amount,\n"
        "         to_json(struct_pack(x := no_such_column)) as evidence from payments\n", encoding="utf-8")
    (tmp_path / "fw.yaml").write_text(f"rule_folders: [{tmp_path / 'own'}]\n", encoding="utf-8")
    monkeypatch.setenv(logs.SERVED, "quiet")
    capsys.readouterr()
    with pytest.raises(flows.StepFailed):
        _night(inbox, db, out, NIGHT_1, str(tmp_path / "fw.yaml"))
    said = capsys.readouterr()
    assert said.out.splitlines()[0].endswith(f"as of {NIGHT_1}: failed"), said.out
    assert "failed file payments_broken.xlsx" in said.out
    err = [line for line in said.err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("fundwatch serve: nightly run failed: task detect failed"), said.err


def test_a_scheduled_night_is_dated_by_the_day_it_was_scheduled_for(monkeypatch):
    """Prefect's runner starts a run up to ten seconds early: at a midnight schedule, today's
    date would be the day before."""
    from datetime import datetime, timezone

    from prefect.runtime import flow_run

    from pipelines import flows

    monkeypatch.setattr(flow_run, "scheduled_start_time", datetime(2026, 12, 6, 16, 0, 0, tzinfo=timezone.utc),
                        raising=False)
    assert flows._scheduled_day() == date(2026, 12, 7)  # 00:00 in China
    monkeypatch.setattr(flow_run, "scheduled_start_time", None, raising=False)
    assert flows._scheduled_day() is None


def test_a_full_disk_a_workbook_writer_reports_without_a_path_is_said_with_the_free_space_of_out(
        tmp_path, capsys, monkeypatch, prefect_api):
    """XlsxWriter says "[Errno 28] No space left on device" and no file: with the store and OUT on
    different disks, which one was full could not be told. (The fault is injected around the real
    writer, as a full disk raises it.)"""
    import errno

    from pipelines import worklists

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(worklists, "write_worklists", disk_full)
    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    code = cli.main(["nightly", "--inbox", str(inbox), "--db", str(db), "--out", str(out), "--as-of", "2026-10-21"])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_FAILED
    assert err.startswith("fundwatch nightly: nightly run failed: task issue-worklists failed: OSError: "
                          f"[Errno 28] No space left on device (free: {out} "), err
    assert err.endswith(" MB)"), err


def test_a_full_disk_the_report_by_hand_meets_is_said_with_the_free_space_of_out_and_the_store(
        tmp_path, capsys, monkeypatch, prefect_api):
    """`fundwatch report` run by hand: the 汇总表's writer says "[Errno 28]" and no file, as in a
    night's step. (The fault is injected in the library's writer, where a full disk raises it.)"""
    import errno

    import xlsxwriter

    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    assert cli.main(["nightly", "--inbox", str(inbox), "--db", str(db), "--out", str(out), "--as-of", "2026-10-21"]) == 0
    capsys.readouterr()

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xlsxwriter.Workbook, "close", disk_full)
    code = cli.main(["report", "--db", str(db), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_USAGE
    assert err.startswith(f"fundwatch report: OSError: [Errno 28] No space left on device (free: {out} "), err
    assert f", {db} " in err and err.endswith(" MB)"), err


@pytest.mark.parametrize("command", ["nightly", "report"])
def test_a_full_disk_met_as_the_store_opens_is_said_with_the_free_space_of_the_store(tmp_path, capsys, monkeypatch,
                                                                                    prefect_api, command):
    """An older store's one-time conversion (the worklists' cells stored once) writes as the store
    opens: on a full disk the first night failed with DuckDB's words and no free space, the second
    try with it (a regression probe). (The fault is injected where the conversion runs, in DuckDB's
    words for it.)"""
    import duckdb

    from pipelines import store

    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    assert cli.main(["nightly", "--inbox", str(inbox), "--db", str(db), "--out", str(out), "--as-of", "2026-10-21"]) == 0
    capsys.readouterr()

    def disk_full(con):
        raise duckdb.FatalException("FATAL Error: Failed to create checkpoint because of error: "
                                    "IO Error: No space left on device")

    monkeypatch.setattr(store, "_migrate", disk_full)
    args = (["nightly", "--inbox", str(inbox), "--as-of", "2026-10-22"] if command == "nightly" else ["report"])
    code = cli.main([*args, "--db", str(db), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "No space left on device (free: " in err, err
    assert f"(free: {db} " in err and err.endswith(" MB)"), err


def test_a_full_disk_duckdb_names_is_said_with_the_free_space_of_that_file_not_the_steps_other_folders(tmp_path,
                                                                                                    monkeypatch):
    """DuckDB names the file it could not write (the store's WAL): ingest's failure on a full store
    disk was said with the free space of the inbox it reads (56 GB), the store's disk at 0 (a
    hostile-environment probe). Its words as DuckDB gives them, its free space as the disk has it."""
    import shutil

    import duckdb

    from pipelines import store

    inbox, db = tmp_path / "inbox", tmp_path / "disk" / "fw.duckdb"
    inbox.mkdir()
    db.parent.mkdir()
    full = duckdb.IOException(f'IO Error: Could not write file "{db}.wal": No space left on device')
    note = store.free_space_note(full, (inbox, "2026-10-21"))
    assert note.startswith(f" (free: {db}.wal ") and str(inbox) not in note, note
    megabytes = float(note.split()[-2].replace(",", ""))
    assert abs(megabytes - shutil.disk_usage(db.parent).free / 2**20) < 64
    # an OSError's own file name likewise; one naming none keeps the step's folders
    named = OSError(28, "No space left on device", str(db))
    assert store.free_space_note(named, (inbox,)).startswith(f" (free: {db} ")
    assert store.free_space_note(OSError(28, "No space left on device"), (inbox,)).startswith(f" (free: {inbox} ")
    assert store.free_space_note(OSError(13, "Permission denied", str(db)), (inbox,)) == ""
    # a relative name, as DuckDB quotes a relative --db's WAL (a regression probe); one whose folder is
    # gone tells the step's folders instead of nothing
    monkeypatch.chdir(db.parent)
    relative = duckdb.IOException('IO Error: Could not write file "fw.duckdb.wal": No space left on device')
    assert store.free_space_note(relative, (inbox,)).startswith(" (free: fw.duckdb.wal ")
    gone = OSError(28, "No space left on device", "nowhere/fw.duckdb")
    assert store.free_space_note(gone, (inbox,)).startswith(f" (free: {inbox} ")


def test_a_delivery_named_for_a_day_that_has_not_come_is_left_unread_and_said_until_renamed(tmp_path):
    """From a probe of nights over time: a folder named 2027-11-21 for 2026-11-21 was read as the
    latest delivery of its keys, and every status or death sent for them later was set aside as
    "older" (较旧的交付) — a suspension missed for a year, the night saying only "1 rejected"."""
    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    delivery_1(inbox)
    delivery_2(inbox).rename(inbox / "2027-11-21")
    night = _night(inbox, db, out, NIGHT_2)
    assert night["deliveries"] == ["2026-10-21"] and night["deliveries_dated_ahead"] == ["2027-11-21"]
    assert ("  warning: deliveries named for a day after today were not read: 2027-11-21 (a mistyped date? as the "
            "latest delivery its rows would outrank every later one: rename the folder to the day it was delivered; "
            "it is read the next night)") in format_summary(night).splitlines()
    assert _count(db, "select count(*) from payments where period = '202611'") == 0
    (inbox / "2027-11-21").rename(inbox / "2026-11-21")
    again = _night(inbox, db, out, NIGHT_2)
    assert again["deliveries"] == ["2026-11-21"] and again["deliveries_dated_ahead"] == []
    assert _count(db, "select count(*) from payments where period = '202611'") > 0


def test_a_store_reached_through_a_link_and_by_its_own_name_has_one_lock(tmp_path):
    """From a probe of installs: fw.duckdb a link to the store on another disk, a night on each
    name — each took the lock beside its own name, and the second got as far as DuckDB's file lock
    (named as "another program") after making its output folder."""
    from pipelines import runlock
    from pipelines.store import StoreBusy

    real = tmp_path / "disk3" / "real.duckdb"
    real.parent.mkdir()
    connect(real).close()
    link = tmp_path / "fw.duckdb"
    link.symlink_to(real)
    holder = _lock_holder(link)
    try:
        with pytest.raises(StoreBusy, match=f"pid {holder.pid}"):
            with runlock.hold(real):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert runlock.lock_path(link) == runlock.lock_path(real) == real.with_name("real.duckdb.lock")


def test_a_second_store_given_the_same_out_folder_is_refused_and_the_first_ones_worklists_stay(tmp_path, capsys):
    """From a probe of installs: two offices' stores given one OUT — the second night wrote its
    agencies' worklists over the first's without a word, and the first's next night blamed clerks
    for "changed" files. A copy of the store (a backup restored elsewhere) is the same store."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    delivery_1(inbox)
    first, second = tmp_path / "office1" / "fw.duckdb", tmp_path / "office3" / "fw.duckdb"
    _night(inbox, first, out, NIGHT_1)
    written = {p.name: p.read_bytes() for p in out.glob("*.xlsx")}
    assert written
    with pytest.raises(NightlyError) as refused:
        _night(inbox, second, out, NIGHT_1)
    assert str(refused.value) == (f"output folder {out} holds the worklists of another store ({first}): give each "
                                  f"store its own OUT folder — or, for this store to take it over, delete "
                                  f"{out / '.fundwatch-store'} (the worklists there are then replaced by this store's)")
    assert {p.name: p.read_bytes() for p in out.glob("*.xlsx")} == written
    assert cli.main(["report", "--db", str(second), "--out", str(out)]) == cli.EXIT_USAGE
    assert "holds the worklists of another store" in capsys.readouterr().err
    # a mistyped --db is refused before anything is made there (it was left as a new empty store and its lock)
    typo = tmp_path / "typo" / "fw.duckbd"
    assert cli.main(["nightly", "--inbox", str(inbox), "--db", str(typo), "--out", str(out),
                     "--as-of", NIGHT_1.isoformat()]) == cli.EXIT_USAGE
    assert "holds the worklists of another store" in capsys.readouterr().err
    assert not typo.parent.exists()
    # and the demo given that OUT: refused before its store, lock and staged sample are made there
    before = sorted(p.name for p in out.iterdir())
    assert cli.main(["demo", "--out", str(out)]) == cli.EXIT_USAGE
    assert "holds the worklists of another store" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before
    restored = tmp_path / "restored" / "fw.duckdb"
    restored.parent.mkdir()
    shutil.copy(first, restored)
    assert _night(inbox, restored, out, NIGHT_1)["files_ingested"] == 0
    assert (out / ".fundwatch-store").read_text(encoding="utf-8").splitlines()[1] == str(restored)
    # a backup made before its id was kept (an older version's store) is the same store too: known
    # by its first night
    con = connect(restored)
    con.execute("drop table store_identity")
    con.close()
    assert _night(inbox, restored, out, NIGHT_1)["files_ingested"] == 0
    # a store made anew at a path whose OUT the old one marked: said so, not "another store"
    restored.unlink()
    with pytest.raises(NightlyError, match=f"holds the worklists of an earlier store at this path \\({restored}: the "
                                           "store was made anew since\\)"):
        _night(inbox, restored, out, NIGHT_1)


def test_a_report_from_an_older_copy_of_the_store_does_not_replace_the_live_outputs(tmp_path, capsys):
    """From an operations probe: an analyst's copy taken a month ago, its report drawn into the live
    OUT, replaced the dashboard (数据截至 back a month) and rewrote that night's 汇总表, exit 0 — and the
    OUT mark then named the copy. Refused now, before anything is written; into its own folder it draws."""
    inbox, out, db = tmp_path / "inbox", tmp_path / "out", tmp_path / "fw.duckdb"
    delivery_1(inbox)
    _night(inbox, db, out, NIGHT_1)
    copy = tmp_path / "analyst" / "fw.duckdb"
    copy.parent.mkdir()
    shutil.copy(db, copy)
    delivery_2(inbox)
    _night(inbox, db, out, NIGHT_2)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert cli.main(["report", "--db", str(copy), "--out", str(out)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"after this store's last ({NIGHT_1})" in err, err
    assert f"汇总表_{NIGHT_2:%Y%m%d}.xlsx" in err and "older copy" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    # the later 汇总表 filed away elsewhere, the later night's worklists still tell (a regression probe)
    filed = tmp_path / "filed"
    filed.mkdir()
    shutil.move(str(out / f"汇总表_{NIGHT_2:%Y%m%d}.xlsx"), filed)
    assert cli.main(["report", "--db", str(copy), "--out", str(out)]) == cli.EXIT_USAGE
    assert f"_{NIGHT_2:%Y%m%d}.xlsx" in capsys.readouterr().err
    shutil.move(str(filed / f"汇总表_{NIGHT_2:%Y%m%d}.xlsx"), out)
    assert cli.main(["report", "--db", str(copy), "--out", str(tmp_path / "analyst" / "out")]) == cli.EXIT_OK
    # the live store's own report for an earlier day still draws into OUT (README: report --as-of) —
    # and one for a later day is its own too: the reports after it are not refused (a regression probe)
    assert cli.main(["report", "--db", str(db), "--out", str(out), "--as-of", NIGHT_1.isoformat()]) == cli.EXIT_OK
    later = (NIGHT_2 + timedelta(days=9)).isoformat()
    assert cli.main(["report", "--db", str(db), "--out", str(out), "--as-of", later]) == cli.EXIT_OK
    # a clerk's returned copy kept in OUT with a day of its own in its name is no night's output
    (out / f"疑点核查台账_{AGENCY}_{NIGHT_2:%Y%m%d}_已填_{NIGHT_2 + timedelta(days=20):%Y%m%d}.xlsx").write_bytes(b"PK")
    assert cli.main(["report", "--db", str(db), "--out", str(out)]) == cli.EXIT_OK


def test_the_nights_casework_changes_are_said_on_the_console(two_nights):
    """From a probe of nights over time: a night that lifted every 逾期 and 挂牌督办 said nothing of
    it on the console (only runs.summary held the counts)."""
    night = two_nights["second"]
    said = {**night, "casework": {"overdue": 2, "overdue_cleared": 0, "escalated": 0, "escalation_lifted": 10,
                                  "closed_recovered": 0, "major_class": 1}}
    assert "  casework: 2 newly 逾期, 10 挂牌督办 lifted, 1 要情 classed or re-classed" in format_summary(said).splitlines()
    quiet = {**night, "casework": dict.fromkeys(said["casework"], 0)}
    assert not any(line.startswith("  casework:") for line in format_summary(quiet).splitlines())


def test_a_delivery_named_after_a_person_and_an_id_number_delivered_as_an_agency_code_are_masked_above_the_agency(
        tmp_path):
    """A privacy audit: a supplementary delivery's folder named after one case (2026-10-21_王死_<ID>)
    was shown in full on the dashboard, in Data Docs' pages and paths, in the night's quality
    lines and Prefect's log; an ID number delivered as an agency code with more around it
    (<ID>-01, A<ID>) reached the 汇总表, the dashboard and Data Docs (its unexpected values, the
    register's value set) in full. Only an agency's own worklist holds its persons."""
    from _nightly_inbox import OTHER
    import zipfile
    inbox, db, out = tmp_path / "inbox", tmp_path / "fw.duckdb", tmp_path / "out"
    folder = delivery_1(inbox).rename(inbox / f"2026-10-21_王死_{DEAD}")
    shifted, registered = f"{OTHER}-01", f"A{ALIVE}"
    for f in folder.glob("*.csv"):  # the dead pensioner's agency: an ID number with a suffix
        lines = f.read_text(encoding="utf-8").splitlines()
        f.write_text("\n".join(line.replace(f",{AGENCY},", f",{shifted},") if DEAD in line else line
                               for line in lines) + "\n", encoding="utf-8")
    with (folder / "agencies_360700_202610.csv").open("a", encoding="utf-8") as f:
        f.write(f"{registered},某区社保局,360702,360700\n")
    summary = _night(inbox, db, out, NIGHT_1)
    assert summary["status"] == "completed" and summary["by_rule"]["PAID_AFTER_DEATH"]["new"] == 1
    secrets = (DEAD, OTHER, ALIVE, "王死")
    said = json.dumps(summary, ensure_ascii=False) + format_summary(summary)
    assert not [s for s in secrets if s in said]
    assert f"2026-10-21_王*_{DEAD[:6]}********{DEAD[-4:]}" in said  # the folder, as shown
    assert any("agency_code" in w and f"{OTHER[:6]}********{OTHER[-4:]}-01" in w for w in summary["quality_warnings"])
    shown = []
    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.name.startswith("疑点核查台账_"):
            continue  # (an agency's own worklist holds its own persons)
        text = str(path.relative_to(out))
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                text += "".join(book.read(n).decode("utf-8") for n in book.namelist())
        else:
            text += path.read_bytes().decode("utf-8", errors="replace")
        assert not [s for s in secrets if s in text], path
        shown.append(text)
    pages = "".join(shown)
    assert f"{OTHER[:6]}********{OTHER[-4:]}-01" in pages  # the 汇总表 and dashboard name the agency masked
    assert f"A{ALIVE[:6]}********{ALIVE[-4:]}" in pages  # the register's value set in Data Docs
    assert "2026-10-21_王_" in pages  # the delivery's Data Docs pages, named as shown


def test_a_skipped_copys_paths_are_masked_as_delivery_folders_are():
    """Both paths of a skipped copy's line: a folder named after a person showed its name in full in
    `same_as` (its ID number masked) where the same folder is shown 王* elsewhere."""
    from pipelines.runsummary import _shown_path

    assert _shown_path("2026-12-04_王五_360702195001011234/赵六_13812345678/deaths_360700_202610.csv") == (
        "2026-12-04_王*_360702********1234/赵*_138****5678/deaths_360700_202610.csv")
    assert _shown_path("2026-11-21/补报/payments_360700_202610.csv") == "2026-11-21/补报/payments_360700_202610.csv"
