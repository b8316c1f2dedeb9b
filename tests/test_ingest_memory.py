"""Memory of a big delivery: a chunk's rows, once written, are not held until the delivery commits
(inside the open transaction a registered-then-unregistered DuckDB view kept its frame alive, so
every chunk of the delivery stayed in memory at once); the names ingest reads its frames by are
reserved."""

from __future__ import annotations

import gc
import weakref

import polars as pl
import pytest

from pipelines import ingest, store
from pipelines.ingest import IngestError, ingest_inbox
from test_ingest import row_for, snapshot, write_extract


def test_a_written_chunk_is_freed_before_its_delivery_commits(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    rows = [row_for("payments", i)[0] for i in range(120)]
    rows.insert(7, {**rows[7], "payment_id": "BAD1", "amount": "12.345"})  # a rejected row too
    write_extract(inbox / "d1" / "payments_big.parquet", "payments", rows, "parquet")
    write_extract(inbox / "d1" / "deaths_small.csv", "deaths", [row_for("deaths", i)[0] for i in range(5)],
                  "csv-utf8")

    # Every Arrow table DuckDB takes from a Polars frame, watched by a weak reference.
    taken: list[weakref.ref] = []
    to_arrow = pl.DataFrame.to_arrow

    def watched(self, *args, **kwargs):
        table = to_arrow(self, *args, **kwargs)
        taken.append(weakref.ref(table))
        return table

    monkeypatch.setattr(pl.DataFrame, "to_arrow", watched)
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 25)
    alive_in_transaction: list[int] = []

    def on_file(result):  # called inside the delivery's open transaction
        gc.collect()
        alive_in_transaction.append(sum(r() is not None for r in taken))

    con = store.connect(tmp_path / "fw.duckdb")
    report = ingest_inbox(con, inbox, on_file=on_file)
    assert report.rows_accepted == 125 and report.rows_rejected == 1
    assert len(taken) >= 5  # each chunk of the big file (121 rows, 25 a chunk) was read from Polars
    assert alive_in_transaction == [0, 0]
    assert store.scalar(con, "select count(*) from payments") == 120


@pytest.mark.parametrize("make", ["create table {name} (x int)", "create view {name} as select 1 as x"])
def test_a_table_or_view_named_like_ingest_frames_fails_the_delivery_and_leaves_the_store_as_it_was(tmp_path, make):
    inbox = tmp_path / "inbox"
    write_extract(inbox / "d1" / "deaths_a.csv", "deaths", [row_for("deaths", i)[0] for i in range(3)], "csv-utf8")
    write_extract(inbox / "d2" / "deaths_b.csv", "deaths", [row_for("deaths", i)[0] for i in range(3, 6)], "csv-utf8")
    con = store.connect(tmp_path / "fw.duckdb")
    (inbox / "d2").rename(tmp_path / "d2")
    ingest_inbox(con, inbox)
    before = snapshot(con)
    (tmp_path / "d2").rename(inbox / "d2")
    con.execute(make.format(name="_fw_staged"))
    with pytest.raises(IngestError, match="_fw_staged"):
        ingest_inbox(con, inbox)
    assert snapshot(con) == before  # d2 rolled back: no rows, no ledger entry


@pytest.mark.parametrize("failing_write", [1, 2])
def test_the_stores_error_writing_a_big_file_is_told_as_the_stores_not_as_a_file_that_could_not_be_read(
        tmp_path, monkeypatch, failing_write):
    """A DuckDB error while a big file's chunks are written (its memory limit, a full spill folder)
    is no damage in the file: it was reported as "could not be read", or — before any row was
    written — recording that in the aborted transaction failed, and the night said only "Current
    transaction is aborted". (The error is DuckDB's own, raised in the store by the chunk's write.)"""
    inbox = tmp_path / "inbox"
    write_extract(inbox / "d1" / "payments_big.parquet", "payments", [row_for("payments", i)[0] for i in range(60)],
                  "parquet")
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 25)
    con = store.connect(tmp_path / "fw.duckdb")
    ingest.ensure_schema(con)
    before = snapshot(con)
    write_chunk, calls = ingest._write_chunk, []

    def write_until_the_store_fails(con, *args, **kwargs):
        calls.append(1)
        if len(calls) == failing_write:
            con.execute("select error('Out of Memory Error: failed to offload data block')").fetchall()
        return write_chunk(con, *args, **kwargs)

    monkeypatch.setattr(ingest, "_write_chunk", write_until_the_store_fails)
    with pytest.raises(IngestError) as failed:
        ingest_inbox(con, inbox)
    said = str(failed.value)
    assert said == ("delivery d1 could not be written and was rolled back: Invalid Input Error: "
                    "Out of Memory Error: failed to offload data block"), said
    assert snapshot(con) == before
