"""A crash half-way through a delivery (SIGKILL of a real ingest process on a real DuckDB file):
the store opens afterwards holding exactly the state before that delivery, and a rerun completes;
and a database error mid-delivery rolls back that delivery only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from pipelines import store
from pipelines.ingest import ingest_inbox
from test_ingest import ROOT, row_for, snapshot, write_extract


def _first_delivery(inbox, db, delivery: str, rows: int) -> list:
    """A store holding one delivery of `rows` payments; returns its snapshot."""
    write_extract(inbox / delivery / "payments_a.csv", "payments", [row_for("payments", i)[0] for i in range(rows)],
                  "csv-utf8")
    con = store.connect(db)
    ingest_inbox(con, inbox)
    before = snapshot(con)
    con.close()
    return before


def _kill_at_midway(child_code: str, db, inbox) -> list[str]:
    """Run `child_code` on the store and inbox, read its lines until it prints MIDWAY (it then waits,
    transaction open), SIGKILL it there; returns the lines it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", child_code, str(db), str(inbox)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    lines = []
    try:
        for line in child.stdout:
            lines.append(line.strip())
            if line.startswith("MIDWAY"):
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, lines
    return lines


CRASH_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipelines import store, ingest

    con = store.connect(sys.argv[1])

    def on_file(result):
        # Called inside the delivery's transaction after each file is written to the store.
        print("WROTE", result.delivery, Path(result.path).name, result.rows_accepted, flush=True)
        if result.delivery == "2026-11-21":
            print("MIDWAY", flush=True)
            sys.stdin.readline()  # wait here, transaction open, until the parent kills us

    ingest.ingest_inbox(con, Path(sys.argv[2]), on_file=on_file)
    print("DONE", flush=True)
""")


def test_crash_mid_delivery_leaves_the_store_as_it_was_and_a_rerun_completes(tmp_path):
    inbox, db = tmp_path / "inbox", tmp_path / "fw.duckdb"
    before = _first_delivery(inbox, db, "2026-10-21", 200)

    # A big delivery: 20 000 payments (200 of them corrections of night 1's rows) and more files.
    big = [{**row_for("payments", i % 200)[0], "payment_id": f"P{i:06d}", "amount": f"{i}.01"} for i in range(20_000)]
    d = inbox / "2026-11-21"
    write_extract(d / "payments_1.csv", "payments", big[:10_000], "csv-utf8")
    write_extract(d / "payments_2.parquet", "payments", big[10_000:], "parquet")
    write_extract(d / "deaths_1.csv", "deaths", [row_for("deaths", i)[0] for i in range(500)], "csv-utf8")

    lines = _kill_at_midway(CRASH_CHILD, db, inbox)
    assert lines and lines[-1] == "MIDWAY", lines
    assert "WROTE 2026-11-21 deaths_1.csv 500" in lines  # rows really were written before the kill

    con = store.connect(db)
    assert snapshot(con) == before  # exactly the pre-crash state
    report = ingest_inbox(con, inbox)
    assert [f.status for f in report.files] == ["skipped", "ingested", "ingested", "ingested"]
    assert store.scalar(con, "select count(*) from payments") == 20_000
    assert store.scalar(con, "select count(*) from deaths") == 500
    assert store.scalar(con, "select count(*) from ingest_ledger") == 4
    assert store.scalar(con, "select sum(rows_replaced) from ingest_ledger") == 200


KILL_ANYWHERE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipelines import store, ingest

    con = store.connect(sys.argv[1])
    print("START", flush=True)
    ingest.ingest_inbox(con, Path(sys.argv[2]))
    print("DONE", flush=True)
""")


def test_a_kill_at_an_arbitrary_moment_leaves_either_the_old_or_the_whole_new_state(tmp_path):
    """No hook: SIGKILL after a delay while a 30 000-row delivery is being read and written."""
    inbox, db = tmp_path / "inbox", tmp_path / "fw.duckdb"
    before = _first_delivery(inbox, db, "d1", 50)
    big = [{**row_for("payments", i % 50)[0], "payment_id": f"Q{i:06d}"} for i in range(30_000)]
    for n in range(2):
        write_extract(inbox / "d2" / f"payments_{n}.csv", "payments", big[n * 15_000:(n + 1) * 15_000], "csv-utf8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", KILL_ANYWHERE, str(db), str(inbox)], stdout=subprocess.PIPE,
                             text=True, env=env, cwd=ROOT)
    try:
        assert child.stdout.readline().strip() == "START"
        time.sleep(0.7)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    con = store.connect(db)
    after = snapshot(con)
    if after != before:  # the delivery had committed before the kill: then it is there whole
        assert store.scalar(con, "select count(*) from payments where _delivery = 'd2'") == 30_000
        assert store.scalar(con, "select count(*) from ingest_ledger") == 3
    ingest_inbox(con, inbox)
    assert store.scalar(con, "select count(*) from payments") == 30_050
    assert store.scalar(con, "select count(*) from ingest_ledger") == 3


def test_a_database_error_mid_delivery_rolls_back_that_delivery_only(tmp_path):
    import pytest

    from pipelines.ingest import IngestError

    inbox, db = tmp_path / "inbox", tmp_path / "fw.duckdb"
    write_extract(inbox / "d1" / "deaths_a.csv", "deaths", [row_for("deaths", 1)[0]], "csv-utf8")
    write_extract(inbox / "d2" / "deaths_b.csv", "deaths", [row_for("deaths", 2)[0]], "csv-utf8")
    write_extract(inbox / "d2" / "payments_b.csv", "payments", [row_for("payments", 3)[0]], "csv-utf8")
    con = store.connect(db)
    # An old store whose payments table lacks a column: writing d2's payments fails in the database.
    con.execute("alter table payments drop column reviewed_at")
    with pytest.raises(IngestError) as exc:
        ingest_inbox(con, inbox)
    message = str(exc.value)
    assert message.startswith("delivery d2 could not be written and was rolled back") and "\n" not in message
    assert con.execute("select _delivery from deaths").fetchall() == [("d1",)]  # d2's deaths file undone too
    assert con.execute("select delivery from ingest_ledger").fetchall() == [("d1",)]
    assert store.scalar(con, "select count(*) from payments") == 0


CHUNK_CRASH_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipelines import store, ingest

    ingest.CHUNK_ROWS = 50
    con = store.connect(sys.argv[1])
    real, written = ingest._write_chunk, []

    def write_chunk(con, kind, accepted, rejected, result, lineage, **how):
        real(con, kind, accepted, rejected, result, lineage, **how)
        written.append(accepted.height)
        print("CHUNK", lineage["_source_file"], accepted.height, flush=True)
        if lineage["_source_file"].endswith("payments_big.parquet") and len(written) == 3:
            print("MIDWAY", flush=True)
            sys.stdin.readline()  # inside the big file, transaction open: the parent kills us here

    ingest._write_chunk = write_chunk
    ingest.ingest_inbox(con, Path(sys.argv[2]))
    print("DONE", flush=True)
""")


def test_a_crash_between_chunks_of_a_big_file_leaves_the_store_as_it_was(tmp_path):
    inbox, db = tmp_path / "inbox", tmp_path / "fw.duckdb"
    before = _first_delivery(inbox, db, "d1", 40)
    # 400 payments, the first 40 corrections of d1's rows, read 50 rows at a time.
    big = [{**row_for("payments", i % 200)[0], "payment_id": f"P{i:06d}", "amount": f"{i}.02"} for i in range(400)]
    write_extract(inbox / "d2" / "payments_big.parquet", "payments", big, "parquet")

    lines = _kill_at_midway(CHUNK_CRASH_CHILD, db, inbox)
    assert lines == ["CHUNK d2/payments_big.parquet 50"] * 3 + ["MIDWAY"], lines  # 150 rows written

    con = store.connect(db)
    assert snapshot(con) == before  # the chunks already written are gone with the transaction
    report = ingest_inbox(con, inbox)
    assert [f.status for f in report.files] == ["skipped", "ingested"]
    assert store.scalar(con, "select count(*) from payments") == 400
    assert con.execute("select rows_total, rows_accepted, rows_rejected, rows_replaced from ingest_ledger "
                       "where delivery = 'd2'").fetchall() == [(400, 400, 0, 40)]
