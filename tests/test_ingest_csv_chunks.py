"""Big CSV files are ingested in pieces of about CSV_CHUNK_BYTES bytes, with exactly the outcome of
reading them whole. The oracle is the whole-file path: the same file ingested into two fresh stores,
once in pieces (CSV_CHUNK_BYTES lowered to a few hundred bytes) and once whole."""

from __future__ import annotations

import csv
import io

import pytest

from pipelines import ingest, readers, store
from pipelines.extracts import EXTRACTS
from pipelines.ingest import ingest_inbox
from test_ingest import _bad, _contents, _ingest_counting_chunks, header, person, rejected, row_for, stored

COLS = EXTRACTS["payments"].names
PIECE = 3000  # bytes: a file of a few hundred rows splits into a dozen pieces (each costs ~0.1 s)
NAME = "payments_360700_202611.csv"


def _records(rows: list[dict[str, str]], head: list[str] | None = None) -> list[str]:
    """The header and each row as CSV text (quoted where needed), without line ends."""
    def record(values: list[str]) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(values)  # (a field with a line end is quoted)
        return out.getvalue()[:-1]
    return [record(head or COLS)] + [record([r[c] for c in COLS]) for r in rows]


def _lines(rows: list[dict[str, str]], newline: str = "\n", head: list[str] | None = None) -> str:
    return newline.join(_records(rows, head)) + newline


def _ascii_row(i: int) -> dict[str, str]:
    """A valid payments row of ASCII text only."""
    return {**row_for("payments", i)[0], "person_id": person(i), "name": f"Li{i}", "item": "pension",
            "insurance_type": "110", "amount": "100.00", "handled_by": "clerk", "reviewed_by": "",
            "reviewed_at": ""}


def _ingest(monkeypatch, tmp_path, label: str, data: bytes, piece_bytes: int):
    """Ingest `data` as one delivery into a fresh store with CSV_CHUNK_BYTES set; the store, the
    report, and the heights of the frames normalised (one per piece when read in pieces)."""
    inbox = tmp_path / "inbox"
    path = inbox / "d1" / NAME
    if not path.exists():
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
    monkeypatch.setattr(readers, "CSV_CHUNK_BYTES", piece_bytes)  # (undone by the helper)
    con = store.connect(tmp_path / f"{label}.duckdb")
    report, heights = _ingest_counting_chunks(monkeypatch, con, inbox, ingest.CHUNK_ROWS)
    return con, report, heights


def _both(monkeypatch, tmp_path, data: bytes, piece_bytes: int = PIECE):
    whole, whole_report, whole_heights = _ingest(monkeypatch, tmp_path, "whole", data, 10**12)
    chunked, report, heights = _ingest(monkeypatch, tmp_path, "chunked", data, piece_bytes)
    assert [f.message for f in report.files] == [f.message for f in whole_report.files]
    assert [f.rejected_by_reason for f in report.files] == [f.rejected_by_reason for f in whole_report.files]
    return whole, chunked, whole_heights, heights


def _ledger(con):
    return con.execute("select rows_total, rows_accepted, rows_rejected, rows_replaced from ingest_ledger").fetchall()


def _crosses_a_piece(data: bytes, field: bytes, bom: int = 0) -> bool:
    """Whether some copy of `field` in the file spans a multiple of PIECE (where a read ends)."""
    at = data.find(field)
    while at >= 0:
        if (at + bom) // PIECE != (at + len(field) + bom) // PIECE:
            return True
        at = data.find(field, at + 1)
    return False


# A free-text field with line ends and commas inside its quotes.
MEMO = "复核意见:\n金额核对无误, 已发放,\n请存档" + "，备注" * 20


@pytest.mark.parametrize("encoding,newline", [("utf-8-sig", "\r\n"), ("utf-8", "\n"), ("gb18030", "\r\n")])
def test_a_big_csv_read_in_pieces_stores_exactly_what_reading_it_whole_stores(tmp_path, monkeypatch, encoding, newline):
    rows = [row_for("payments", i)[0] for i in range(240)]
    for i in range(0, 240, 4):
        rows[i]["handled_by"] = MEMO  # quoted fields with line ends and commas, crossing pieces
    # Bad values in late pieces: an ID number with a wrong check digit, an impossible date.
    rows[200]["person_id"] = person(200)[:-1] + ("0" if person(200)[-1] != "0" else "1")
    rows[210]["paid_on"] = "2026-02-30"
    # records[n] is data row n; the GB18030 export has the Chinese header
    records = _records(rows, head=header("payments", "chinese") if encoding == "gb18030" else None)
    # Ragged rows in a late piece (one field too many, one too few), and blank lines (not rows).
    records[181] += ",多出的字段"
    records[191] = records[191].rsplit(",", 1)[0]
    records[30:30] = ["", ""]
    data = (newline.join(records) + newline).encode(encoding)

    whole, chunked, whole_heights, heights = _both(monkeypatch, tmp_path, data)

    assert len(whole_heights) == 1 and len(heights) >= len(data) // PIECE  # read whole, and in pieces
    assert sum(heights) == whole_heights[0]
    assert _crosses_a_piece(data, MEMO.encode(encoding.removesuffix("-sig")))
    assert _contents(chunked) == _contents(whole)
    assert _ledger(chunked) == _ledger(whole) == [(len(rows), len(rows) - 4, 4, 0)]
    bad = [(row, col, reason) for _, row, col, reason, _ in rejected(chunked)]
    # a field too many names the first column outside the header, one too few the column it lacks
    assert [b[:2] for b in bad] == [(181, "第14列(表头外)"), (191, "reviewed_at"), (201, "person_id"), (211, "paid_on")]
    assert "字段过多" in bad[0][2] and "字段过少" in bad[1][2]
    got = stored(chunked, "payments", "d1/" + NAME)
    assert [r["payment_id"] for r in got[:3]] == ["P000000", "P000001", "P000002"]
    assert got[-1]["name"] == "李239" and got[0]["handled_by"] == MEMO
    # Memory follows the piece: no frame holds more rows than about two pieces' worth.
    shortest = min(len(r.encode(encoding)) for r in records[1:] if r)
    assert max(heights) <= 2 * PIECE // shortest


def test_the_same_key_in_two_pieces_is_read_whole_and_the_repeat_reported_exactly(tmp_path, monkeypatch):
    rows = [row_for("payments", i)[0] for i in range(150)]
    rows.append({**row_for("payments", 3)[0], "amount": "5.00"})  # payment 3 again, many pieces later
    whole, chunked, whole_heights, heights = _both(monkeypatch, tmp_path, _lines(rows).encode())

    assert heights == whole_heights == [len(rows)]  # the file went to the whole-file path
    assert _contents(chunked) == _contents(whole)
    [(_, row, col, reason, _)] = rejected(chunked)
    assert (row, col) == (4, "payment_id") and f"第{len(rows)}行为准" in reason
    kept = [r for r in stored(chunked, "payments", "d1/" + NAME) if r["payment_id"] == "P000003"]
    assert [str(r["amount"]) for r in kept] == ["5.00"]


def test_a_big_csv_that_quotes_nothing_is_checked_for_repeats_on_its_keys_alone(tmp_path, monkeypatch):
    """The first pass reads a piece that quotes nothing for its keys alone (_piece_keys): a repeat
    in a later piece still sends the file whole, and without one it is still read in pieces."""
    seen = []
    keys_of_piece = readers._piece_keys
    # (not by monkeypatch: the ingest helper undoes it before the ingest reads a piece)
    readers._piece_keys = lambda *args: seen.append(keys_of_piece(*args)) or seen[-1]
    try:
        rows = [_ascii_row(i) for i in range(150)]
        repeated = rows + [{**_ascii_row(3), "amount": "5.00"}]
        whole, chunked, whole_heights, heights = _both(monkeypatch, tmp_path / "repeat", _lines(repeated).encode())
        assert len(seen) > 1 and all(k is not None and k.height for k in seen)  # every piece by its keys
        assert heights == whole_heights == [len(repeated)]  # the repeat sent the file to the whole-file path
        assert _contents(chunked) == _contents(whole)
        assert [(row, col) for _, row, col, _, _ in rejected(chunked)] == [(4, "payment_id")]
        seen.clear()
        whole, chunked, whole_heights, heights = _both(monkeypatch, tmp_path / "once", _lines(rows).encode())
        assert len(seen) > 1 and all(k is not None for k in seen)
        assert len(heights) > 1 and sum(heights) == whole_heights[0] == len(rows)  # read in pieces
        assert _contents(chunked) == _contents(whole)
    finally:
        readers._piece_keys = keys_of_piece


def test_a_key_with_an_invisible_character_in_another_piece_is_the_same_key(tmp_path, monkeypatch):
    """Payment 3 again, many pieces later, with a zero-width space in its 发放流水号: the same key
    read in pieces as read whole (the later row wins, the repeat reported)."""
    rows = [row_for("payments", i)[0] for i in range(150)]
    rows.append({**row_for("payments", 3)[0], "payment_id": "P000003\u200b", "amount": "5.00"})
    whole, chunked, whole_heights, heights = _both(monkeypatch, tmp_path, _lines(rows).encode())
    assert heights == whole_heights == [len(rows)]  # the repeat sent the file to the whole-file path
    assert _contents(chunked) == _contents(whole)
    kept = [r for r in stored(chunked, "payments", "d1/" + NAME) if r["payment_id"] == "P000003"]
    assert [str(r["amount"]) for r in kept] == ["5.00"]


def test_a_big_csv_whose_header_fails_it_rejects_every_row_as_when_read_whole(tmp_path, monkeypatch):
    rows = [row_for("payments", i)[0] for i in range(120)]
    head = [c if c != "agency_code" else "机构" for c in COLS]  # a required column missing
    whole, chunked, _, _ = _both(monkeypatch, tmp_path, _lines(rows, head=head).encode())

    assert _contents(chunked) == _contents(whole)
    bad = rejected(chunked)
    assert [r[1] for r in bad] == list(range(1, len(rows) + 1))
    assert all("missing required column" in r[3] for r in bad) and _ledger(chunked) == []


def test_a_truncated_big_csv_ending_inside_a_quote_refuses_its_last_row_as_when_read_whole(tmp_path, monkeypatch):
    rows = [row_for("payments", i)[0] for i in range(150)]
    rows[-1]["handled_by"] = "张经办,\n复核"
    data = _lines(rows).encode()
    data = data[:data.rindex(b"\n", 0, len(data) - 1)]  # cut inside the last row's quoted field
    whole, chunked, _, heights = _both(monkeypatch, tmp_path, data)

    assert len(heights) >= len(data) // PIECE
    assert _contents(chunked) == _contents(whole)
    [(_, row, col, reason, _)] = rejected(chunked)
    assert (row, col) == (150, "(整行)") and "文件被截断" in reason
    assert _ledger(chunked) == [(150, 149, 1, 0)]


def test_a_quote_left_open_mid_file_refuses_the_rest_as_when_read_whole(tmp_path, monkeypatch):
    rows = [_ascii_row(i) for i in range(150)]
    lines = _lines(rows).split("\n")
    lines[100] = lines[100].replace(",clerk,", ',"clerk,', 1)  # an opening quote never closed
    whole, chunked, _, heights = _both(monkeypatch, tmp_path, "\n".join(lines).encode())

    assert len(heights) > 3
    assert _contents(chunked) == _contents(whole)
    assert [(r[1], "引号不配对" in r[3]) for r in rejected(chunked)] == [(100, True)]


def test_a_late_piece_in_gb18030_makes_the_whole_file_gb18030(tmp_path, monkeypatch):
    rows = [_ascii_row(i) for i in range(150)]
    # Row 80: GB18030 bytes that are also valid UTF-8 (the UTF-8 bytes of 李四): read alone, its
    # piece would be taken for UTF-8; the file's late rows are GB18030 that is not UTF-8.
    look_alike = "李四".encode("utf-8").decode("gb18030")
    rows[80]["name"] = look_alike
    for r in rows[140:]:
        r["name"] = "欧阳娜娜"
    data = _lines(rows).encode("gb18030")
    early = data[:data.index(look_alike.encode("gb18030"))]
    assert early.isascii() and len(early) > 5 * 1500
    whole, chunked, _, heights = _both(monkeypatch, tmp_path, data, piece_bytes=1500)

    assert len(heights) > 10
    assert _contents(chunked) == _contents(whole)
    got = stored(chunked, "payments", "d1/" + NAME)
    assert got[80]["name"] == look_alike and got[0]["name"] == "Li0"
    assert {r["name"] for r in got[140:]} == {"欧阳娜娜"}


def test_a_big_csv_neither_utf8_nor_gb18030_fails_as_when_read_whole(tmp_path, monkeypatch):
    rows = [_ascii_row(i) for i in range(150)]
    data = _lines(rows).encode()
    at = data.index(b"Li140")
    data = data[:at] + b"\x81\n" + data[at:]  # a lead byte with no trail byte: in no encoding
    whole, chunked, _, heights = _both(monkeypatch, tmp_path, data)

    assert _contents(chunked) == _contents(whole) and heights == []
    [(_, row, _, reason, _)] = rejected(chunked)
    line = data[:at].count(b"\n") + 1
    assert row == 0 and f"(byte {at}, line {line} " in reason and "neither UTF-8 nor GB18030" in reason


def test_rows_of_a_small_csv_are_unchanged_and_a_bad_row_in_the_first_piece_keeps_its_number(tmp_path, monkeypatch):
    rows = [row_for("payments", i)[0] for i in range(40)]
    rows[2] = _bad(2, amount="12.345")
    whole, chunked, whole_heights, heights = _both(monkeypatch, tmp_path, _lines(rows).encode(), piece_bytes=600)

    assert len(heights) > 5 and _contents(chunked) == _contents(whole)
    assert [(r[1], r[2]) for r in rejected(chunked)] == [(3, "amount")]


def test_a_stray_quote_inside_a_field_misleads_no_cut_the_file_is_still_read_in_pieces(tmp_path, monkeypatch):
    rows = [_ascii_row(i) for i in range(150)]
    for i in range(0, 150, 3):
        rows[i]["handled_by"] = "line one\nline two\nline three"  # quoted, over three lines
    records = _records(rows)
    # A '"' inside an unquoted field is a plain character to the CSV reader, but it turns the
    # count of quotes odd: from there, the line ends that count puts "outside quotes" are the ones
    # inside the quoted fields (then the reader itself tells where its records end).
    records[20] = records[20].replace(",clerk,", ',cl"erk,', 1)
    records[100] = records[100].replace(",clerk,", ',cl"erk,', 1)
    data = ("\n".join(records) + "\n").encode()
    whole, chunked, whole_heights, heights = _both(monkeypatch, tmp_path, data, piece_bytes=1500)


    assert _contents(chunked) == _contents(whole)
    assert whole_heights == [150] and sum(heights) == 150 and len(heights) >= len(data) // 1500
    assert _ledger(chunked) == [(150, 150, 0, 0)]
    assert stored(chunked, "payments", "d1/" + NAME)[19]["handled_by"] == 'cl"erk'


def test_a_big_csv_damaged_after_pieces_were_written_rolls_the_delivery_back(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    (inbox / "d1").mkdir(parents=True)
    (inbox / "d1" / "payments_early.csv").write_bytes(_lines([row_for("payments", i)[0] for i in range(500, 505)]).encode())
    rows = [row_for("payments", i)[0] for i in range(150)]
    path = inbox / "d2" / NAME
    path.parent.mkdir()
    path.write_bytes(_lines(rows).encode("gb18030"))
    con = store.connect(tmp_path / "fw.duckdb")
    (inbox / "d2").rename(tmp_path / "d2")
    ingest_inbox(con, inbox)
    before = _contents(con)
    (tmp_path / "d2").rename(inbox / "d2")

    # The file is overwritten while it is being ingested (after the pass that checks it): a late
    # part of it is now in no encoding.
    real_plan = ingest.csv_plan

    def plan_then_damage(*args):
        plan = real_plan(*args)
        data = path.read_bytes()
        at = data.index("李140".encode("gb18030"))
        path.write_bytes(data[:at] + b"\x81\n" + data[at:])
        return plan

    monkeypatch.setattr(ingest, "csv_plan", plan_then_damage)
    monkeypatch.setattr(readers, "CSV_CHUNK_BYTES", PIECE)
    with pytest.raises(ingest.IngestError) as err:
        ingest_inbox(con, inbox)
    message = str(err.value)
    assert message.startswith(f"delivery d2 was rolled back: d2/{NAME} is damaged after its row ")
    assert "neither UTF-8 nor GB18030" in message and "\n" not in message
    assert 0 < int(message.split("after its row ")[1].split(":")[0]) < 140
    assert _contents(con) == before  # nothing of d2 is stored


@pytest.mark.parametrize("seed", range(6))
def test_random_big_csvs_in_random_pieces_store_exactly_what_reading_them_whole_stores(tmp_path, monkeypatch, seed):
    import random

    rnd = random.Random(seed)
    texts = ["张经办", 'a "quoted" word', "行一\n行二, 逗号", "", "x,\r\ny", '""', "\n"]
    rows = []
    for i in range(90):
        r = {**row_for("payments", i)[0], "handled_by": rnd.choice(texts), "reviewed_by": rnd.choice(texts)}
        if rnd.random() < 0.05:
            r["paid_on"] = "2026-13-01"
        rows.append(r)
    records = _records(rows)
    for n in range(1, len(records)):
        if rnd.random() < 0.04:
            records[n] += ",多"
        elif rnd.random() < 0.04:
            records[n] = records[n].rsplit(",", 1)[0]
        elif rnd.random() < 0.05:
            records[n] = "\n" + records[n]  # a blank line before the row
        elif seed >= 4 and rnd.random() < 0.05:
            records[n] = records[n].replace("基本", 'ji"ben', 1)  # a stray quote in an unquoted field
        elif seed >= 4 and rnd.random() < 0.03:
            records[n] = records[n].replace(",基本", ',"ji"ben', 1)  # a damaged quoted field
    newline = rnd.choice(["\n", "\r\n"])
    text = newline.join(records) + newline
    if seed % 2:
        text = text[:text.rindex(",") + 1] + '"cut off'  # a truncated file, inside a quote
    data = text.encode(rnd.choice(["utf-8", "gb18030"]))
    piece = rnd.randrange(700, 1500)
    whole, chunked, whole_heights, heights = _both(monkeypatch, tmp_path, data, piece_bytes=piece)

    assert len(heights) >= len(data) // piece // 2 > 3 and len(whole_heights) == 1
    assert _contents(chunked) == _contents(whole)
    assert _ledger(chunked) == _ledger(whole)


def test_gb18030_names_that_are_valid_utf8_make_a_big_file_gb18030_as_when_read_whole(tmp_path, monkeypatch):
    """A file of ASCII rows but for a few GB18030 names whose bytes are also valid UTF-8 (卢露 reads
    '¬¶' as UTF-8) in a late piece: read in pieces it is GB18030, as when read whole."""
    rows = [_ascii_row(i) for i in range(150)]
    for r in rows[120:]:
        r["name"] = "卢露"
    data = _lines(rows).encode("gb18030")
    whole, chunked, _, heights = _both(monkeypatch, tmp_path, data, piece_bytes=1500)
    assert len(heights) > 10
    assert _contents(chunked) == _contents(whole)
    got = stored(chunked, "payments", "d1/" + NAME)
    assert {r["name"] for r in got[120:]} == {"卢露"} and got[0]["name"] == "Li0"


@pytest.mark.parametrize("piece_bytes", [90, 130])
def test_a_damaged_record_longer_than_a_piece_refuses_only_itself_as_when_read_whole(tmp_path, monkeypatch, piece_bytes):
    rows = [_ascii_row(i) for i in range(16)]
    for i in range(0, 16, 2):
        rows[i]["handled_by"] = "clerk, desk 2"  # quoted (it holds a comma)
    records = _records(rows)
    # A '"' inside an unquoted field, then a quoted field that runs over the line end into the next
    # record: the reader refuses the two lines as one damaged record. Pieces shorter than that record
    # have to run on past it; one that stopped at an arbitrary byte left the rest of a row to be
    # read as a row of its own (字段过少).
    records[8] = records[8].replace(",clerk,", ',cl"erk,"', 1)
    data = ("\n".join(records) + "\n").encode()
    assert piece_bytes < len(records[8]) + len(records[9])
    whole, chunked, whole_heights, heights = _both(monkeypatch, tmp_path, data, piece_bytes=piece_bytes)

    assert _contents(chunked) == _contents(whole)
    assert _ledger(chunked) == _ledger(whole) == [(15, 14, 1, 0)] and len(heights) > 3


@pytest.mark.parametrize("whole_after", [False, True])
def test_a_big_csv_changed_after_it_was_hashed_rolls_its_delivery_back_rather_than_vouch_for_it(
        tmp_path, monkeypatch, whole_after):
    """The ledger's hash is of the bytes first hashed; a big file is read again after. Copied over in
    between (cut short here), the ledger vouched for content never read, and the whole file sent
    again later was skipped as "already ingested" (found by a probe of I/O faults)."""
    rows = [row_for("payments", i)[0] for i in range(150)]
    if whole_after:
        rows[120] = dict(rows[3])  # a key repeated: the pieces send the file to the whole-file reader
    path = tmp_path / "inbox" / "d1" / NAME
    path.parent.mkdir(parents=True)
    full = _lines(rows).encode()
    path.write_bytes(full)
    con = store.connect(tmp_path / "fw.duckdb")
    real_plan = ingest.csv_plan

    def cut_then_plan(*args):  # after the hash, before the rows are read
        path.write_bytes(_lines(rows[:60]).encode())
        return real_plan(*args)

    monkeypatch.setattr(ingest, "csv_plan", cut_then_plan)
    monkeypatch.setattr(readers, "CSV_CHUNK_BYTES", PIECE)
    with pytest.raises(ingest.IngestError, match=f"delivery d1 was rolled back: d1/{NAME} changed while it was being read"):
        ingest_inbox(con, tmp_path / "inbox")
    assert _ledger(con) == [] and con.execute("select count(*) from payments").fetchall() == [(0,)]
    monkeypatch.setattr(ingest, "csv_plan", real_plan)
    path.write_bytes(full)  # the file complete again: read in full, not skipped as seen
    ingest_inbox(con, tmp_path / "inbox")
    assert _ledger(con) == [(150, 149 if whole_after else 150, 1 if whole_after else 0, 0)]
