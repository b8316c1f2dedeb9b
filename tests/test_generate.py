"""The synthetic-data generator (`fundwatch generate`): valid identities, every rule planted with its
look-alikes, the formats of CONTRACT §1, determinism, streaming — and, above all, that the real
ingest and the real rules find exactly the planted suspects with exactly the answer key's amounts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import polars as pl
import pyarrow.parquet as pq
import pytest

from pipelines import config as cfg
from pipelines import generate as gen
from pipelines.extracts import EXTRACTS
from pipelines.generate_writers import Delivery
from pipelines.clock import china_today
from pipelines.ingest import ingest_inbox
from pipelines.rules import detect, load_rules
from pipelines.store import connect, ensure_schema, scalar

MODEL_RULE = "AMOUNT_OUTLIER"


def gb11643_ok(person_id: str) -> bool:
    # independent of the generator's table: weight of position i (from the left) is 2^(17-i) mod 11
    if len(person_id) != 18 or not person_id[:17].isdigit():
        return False
    total = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(person_id[:17]))
    return "10X98765432"[total % 11] == person_id[17]


@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    """A small two-night delivery, ingested into a real DuckDB file and run through every rule."""
    base = tmp_path_factory.mktemp("generated")
    summary = gen.generate(base / "out", persons=400, seed=7, split="province")
    answer = json.loads((base / "out" / "answer.json").read_text(encoding="utf-8"))
    con = connect(base / "fw.duckdb")
    ensure_schema(con)
    report = ingest_inbox(con, base / "out" / "inbox")
    result = detect(con, date.fromisoformat(answer["as_of"]), cfg.load_config(None))
    rows = con.execute("select rule_id, subject, person_id, agency_code, period_from, period_to, amount "
                       "from detections").fetchall()
    # The model on a small population: the default share (0.2 % of 3,400 payments) leaves room for
    # the large one-off payments only, so this run gives the model the room a bigger store has.
    (base / "model.yaml").write_text("outlier: {contamination: 0.01, max_share: 0.01}\n", encoding="utf-8")
    model = [r for r in load_rules()[0] if r.id == MODEL_RULE]
    detect(con, date.fromisoformat(answer["as_of"]), cfg.load_config(base / "model.yaml"), rules=model)
    flagged = {r[0] for r in con.execute("select subject from detections where rule_id = ?", [MODEL_RULE]).fetchall()}
    rejected = con.execute("select extract, column_name, reason from rejected_rows limit 5").fetchall()
    con.close()
    return {"out": base / "out", "summary": summary, "answer": answer, "report": report, "result": result,
            "rows": rows, "rejected": rejected, "model_flagged": flagged}


def _rule_ids() -> list[str]:
    rules, errors = load_rules()
    assert not errors, errors
    return sorted(r.id for r in rules)


# --- the answer key against the real ingest and rules ---------------------------------------------
def test_generated_rows_are_all_accepted_by_ingest(detected):
    assert detected["rejected"] == []
    assert [f for f in detected["report"].files if f.status != "ingested"] == []
    assert detected["report"].deliveries == detected["answer"]["nights"]


def test_detection_finds_exactly_the_planted_suspects_with_their_amounts(detected):
    assert not detected["result"].errors, detected["result"].errors
    found = {(r[0], r[1]): r for r in detected["rows"] if r[0] != MODEL_RULE}
    expected = {(s["rule_id"], s["subject"]): s for s in detected["answer"]["suspects"]}
    missed = sorted(k for k in expected if k not in found)
    extra = sorted(k for k in found if k not in expected)
    assert missed == [], f"recall < 1: planted but not found {missed}"
    assert extra == [], f"precision < 1: found but not planted {extra}"
    for key, s in expected.items():
        _rule, _subject, person, agency, period_from, period_to, amount = found[key]
        assert amount == Decimal(s["amount"]), (s["case"], key, amount, s["amount"])
        assert (period_from, period_to) == (s["period_from"], s["period_to"]), (s["case"], key)
        assert (person, agency) == (s["person_id"], s["agency_code"]), (s["case"], key)


def test_look_alikes_are_not_detected_under_the_rule_they_probe(detected):
    found = {(r[0], r[1]) for r in detected["rows"]}
    for look in detected["answer"]["look_alikes"]:
        assert look["subjects"], look["case"]
        hits = [s for s in look["subjects"] if (look["rule_id"], s) in found]
        assert hits == [], f"look-alike {look['case']} ({look['why']}) fired {look['rule_id']}"


def test_planted_amount_outliers_are_flagged_by_the_model(detected):
    planted = {o["payment_id"] for o in detected["answer"]["amount_outliers"]["payments"]}
    assert len(planted) >= 3
    assert planted <= detected["model_flagged"], (sorted(planted), sorted(detected["model_flagged"]))


# --- what is planted -------------------------------------------------------------------------------
def test_every_rule_has_planted_suspects_and_look_alikes(detected):
    answer = detected["answer"]
    planted = {s["rule_id"] for s in answer["suspects"]}
    probed = {look["rule_id"] for look in answer["look_alikes"]}
    for rule_id in _rule_ids():
        if rule_id == MODEL_RULE:
            assert answer["amount_outliers"]["payments"], "no planted amount outliers"
            continue
        assert rule_id in planted, f"no planted suspect of {rule_id}"
        assert rule_id in probed, f"no look-alike of {rule_id}"
    assert set(answer["rules"]) == planted
    for s in answer["suspects"]:
        assert Decimal(s["amount"]) > 0 and len(s["period_from"]) == 6 and s["period_from"] <= s["period_to"]


def test_every_person_id_has_18_digits_and_a_valid_check_digit(tmp_path):
    gen.generate(tmp_path, persons=150, seed=3, fmt="csv", nights=1)
    seen, legacy = 0, 0
    for path in sorted((tmp_path / "inbox").rglob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if "person_id" in row:
                    text = row["person_id"].strip()  # exports pad some ids with spaces
                    if len(text) == 15:  # now and then the legacy 15-digit form: 19 + yymmdd, no check digit
                        assert text.isdigit()
                        date(int("19" + text[6:8]), int(text[8:10]), int(text[10:12]))  # a real birth date
                        legacy += 1
                        continue
                    assert gb11643_ok(text), f"{path.name}: bad check digit"
                    seen += 1
    assert seen > 1000 and legacy > 0
    answer = json.loads((tmp_path / "answer.json").read_text(encoding="utf-8"))
    assert all(gb11643_ok(s["person_id"]) for s in answer["suspects"] if s["person_id"])


# --- formats ---------------------------------------------------------------------------------------
def test_mixed_format_has_gb18030_bom_utf8_xlsx_and_parquet(detected):
    files = sorted((detected["out"] / "inbox").rglob("*.*"))
    aliases = {c.alias for e in EXTRACTS.values() for c in e.columns}
    kinds = set()
    for path in files:
        raw = path.read_bytes()
        if path.suffix == ".csv":
            if raw.startswith(b"\xef\xbb\xbf"):
                kinds.add("utf-8 bom")
                header = raw[3:].decode("utf-8").splitlines()[0]
            else:
                try:
                    header = raw.decode("utf-8").splitlines()[0]
                    kinds.add("utf-8")
                except UnicodeDecodeError:  # GBK bytes are not UTF-8
                    header = raw.decode("gb18030").splitlines()[0]
                    kinds.add("gb18030")
                    assert set(header.split(",")) <= aliases, "GB18030 files carry Chinese headers"
        elif path.suffix == ".xlsx":
            sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
            assert next(sheet.iter_rows(max_row=1, values_only=True))[0]
            kinds.add("xlsx")
        elif path.suffix == ".parquet":
            assert pq.read_metadata(path).num_rows > 0
            kinds.add("parquet")
    assert kinds == {"utf-8 bom", "utf-8", "gb18030", "xlsx", "parquet"}


def test_deliveries_are_named_by_night_and_the_later_night_carries_the_as_of_month(detected):
    answer = detected["answer"]
    nights = sorted(p.name for p in (detected["out"] / "inbox").iterdir())
    assert nights == answer["nights"] == ["2026-10-21", "2026-11-21"]
    later = [p.name for p in (detected["out"] / "inbox" / "2026-11-21").iterdir()]
    assert any(name.startswith("payments_") and "202611" in name for name in later)


# --- determinism and streaming --------------------------------------------------------------------
def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        gen.generate(tmp_path / name, persons=120, seed=seed, fmt="csv")
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert _digests(tmp_path / "a")["answer.json"] != _digests(tmp_path / "c")["answer.json"]


def _rows_by_kind(out: Path) -> dict[str, list[tuple]]:
    """Every row of every Parquet file of a run, by extract kind, sorted; transaction ids dropped
    (a parallel run numbers them per worker)."""
    rows: dict[str, list[tuple]] = {}
    for f in sorted((out / "inbox").rglob("*.parquet")):
        kind = f.name.split("_")[0] if not f.name.startswith("fund_") else "fund_transactions"
        table = pq.read_table(f)
        keep = [c for c in table.column_names if c != "txn_id"]
        rows.setdefault(kind, []).extend(zip(*(table.column(c).to_pylist() for c in keep)))
    return {k: sorted(v, key=repr) for k, v in rows.items()}


def test_parallel_workers_write_the_same_persons_in_files_of_their_own(tmp_path):
    one = gen.generate(tmp_path / "one", persons=900, fmt="parquet", split="province", batch=100)
    two = gen.generate(tmp_path / "two", persons=900, fmt="parquet", split="province", batch=100, jobs=2)
    assert two["rows"] == one["rows"]
    assert _rows_by_kind(tmp_path / "two") == _rows_by_kind(tmp_path / "one")
    names = {Path(f).name for f in two["files"]}
    assert "payments_360000_202611_w1.parquet" in names and "payments_360000_202611_w2.parquet" in names
    txn_ids = pq.read_table(sorted((tmp_path / "two" / "inbox").rglob("fund_transactions_*.parquet")),
                            columns=["txn_id"]).column("txn_id").to_pylist()
    assert len(txn_ids) == len(set(txn_ids))  # unique across the workers' files
    assert (json.loads((tmp_path / "two" / "answer.json").read_text(encoding="utf-8"))["suspects"]
            == json.loads((tmp_path / "one" / "answer.json").read_text(encoding="utf-8"))["suspects"])


def test_an_existing_delivery_is_not_overwritten_without_force(tmp_path):
    gen.generate(tmp_path, persons=10, fmt="csv")
    with pytest.raises(gen.GenerateError, match="--force"):
        gen.generate(tmp_path, persons=10, fmt="csv")
    kept = tmp_path / "inbox" / "notes.txt"  # a user's own file beside the deliveries
    kept.write_text("收到的批次说明", encoding="utf-8")
    (tmp_path / "inbox" / "2020-01-31").mkdir()  # a delivery folder this run will not write
    assert gen.main(["--out", str(tmp_path), "--persons", "10", "--format", "csv", "--force"]) == 0
    assert kept.is_file() and not (tmp_path / "inbox" / "2020-01-31").exists()
    # written owner-only, like real extracts
    delivery = next(p for p in (tmp_path / "inbox").iterdir() if p.is_dir())
    assert delivery.stat().st_mode & 0o777 == 0o700
    assert {f.stat().st_mode & 0o777 for f in delivery.iterdir()} == {0o600}
    assert (tmp_path / "answer.json").stat().st_mode & 0o777 == 0o600


def test_writers_append_batch_by_batch_and_hold_nothing_between(tmp_path):
    d = Delivery(tmp_path, [date(2026, 11, 21)], "parquet")
    row = ("360000000", "江西省社会保险事业管理局", "360000", None)
    for _ in range(3):
        for _ in range(100):
            d.add(0, "agencies", "360000", row)
        d.flush()
        assert d._buf == {}
    paths = d.close()
    assert [p.name for p in paths] == ["agencies_360000_202611.parquet"]
    meta = pq.read_metadata(paths[0])
    assert (meta.num_rows, meta.num_row_groups) == (300, 3)


def test_memory_stays_flat_as_persons_grow(tmp_path):
    peaks = []
    for persons in (300, 1500):
        tracemalloc.start()
        gen.generate(tmp_path / str(persons), persons=persons, fmt="parquet", nights=1, batch=150)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0], f"peak {peaks[1]:,} bytes at 1500 persons vs {peaks[0]:,} at 300"


def test_committed_sample_is_what_the_generator_writes(tmp_path):
    # data/sample must be regenerated when the generator changes: same answer key, same files
    sample = Path(__file__).resolve().parent.parent / "data" / "sample"
    committed = json.loads((sample / "answer.json").read_text(encoding="utf-8"))
    gen.generate(tmp_path, persons=committed["persons"], seed=committed["seed"],
                 as_of=date.fromisoformat(committed["as_of"]), fmt=committed["format"],
                 months=committed["months"], nights=len(committed["nights"]), split=committed["split"])
    fresh = json.loads((tmp_path / "answer.json").read_text(encoding="utf-8"))
    assert fresh == committed, "regenerate: fundwatch generate --out data/sample --persons 3000 --force"
    names = sorted(str(p.relative_to(sample)) for p in (sample / "inbox").rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "inbox").rglob("*") if p.is_file())
    # and the same contents: CSV byte for byte, Parquet and XLSX value for value (an XLSX carries
    # the time it was written)
    for name in names:
        ours, theirs = sample / name, tmp_path / name
        if ours.suffix == ".csv":
            same = ours.read_bytes() == theirs.read_bytes()
        elif ours.suffix == ".parquet":
            same = pl.read_parquet(ours).equals(pl.read_parquet(theirs))
        else:
            same = _sheet_values(ours) == _sheet_values(theirs)
        assert same, f"{name} differs: regenerate: fundwatch generate --out data/sample --persons 3000 --force"


def _sheet_values(path: Path) -> list[list]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    finally:
        workbook.close()


def test_answer_key_holds_for_a_month_end_as_of_before_and_after_pay_days(tmp_path):
    # as of the 31st (three months back is the 31st, clipped to the month's end) and as of the 5th
    # (the as-of month not yet paid): the planted cases still fire, and only they
    for as_of in (date(2026, 8, 31), date(2026, 3, 5)):
        out = tmp_path / as_of.isoformat()
        gen.generate(out, persons=60, seed=5, as_of=as_of, nights=1, split="province", fmt="parquet")
        answer = json.loads((out / "answer.json").read_text(encoding="utf-8"))
        con = connect(out / "fw.duckdb")
        ensure_schema(con)
        ingest_inbox(con, out / "inbox")
        assert scalar(con, "select count(*) from rejected_rows") == 0
        report = detect(con, as_of, cfg.load_config(None))
        assert not report.errors
        found = {(r, s, str(a)) for r, s, a in con.execute(
            "select rule_id, subject, amount from detections where rule_id <> ?", [MODEL_RULE]).fetchall()}
        con.close()
        assert found == {(s["rule_id"], s["subject"], s["amount"]) for s in answer["suspects"]}, as_of


@pytest.mark.parametrize("args, said", [
    (["--as-of", "2080-06-30"], "--as-of must fall in the years 2000–2060"),  # looped for ever
    (["--as-of", "1990-12-31"], "--as-of must fall in the years 2000–2060"),
    (["--months", "1000"], "--months must be at most 360"),  # periods before 195001 were refused by ingest
    (["--copies", "-1"], "--copies must be 0 or more"),
    (["--jobs", "0"], "--jobs must be 1 or more"),
    (["--persons", "abc"], "argument --persons: invalid int value: 'abc' (see fundwatch generate --help)"),
    (["--persons", "99999999999999999999"], "is too many: the identity space (births"),
])
def test_arguments_it_cannot_serve_are_refused_in_one_line(tmp_path, capsys, args, said):
    argv = ["--out", str(tmp_path / "g"), "--persons", "5", *args]
    try:
        code = gen.main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and said in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "g" / "inbox").exists()


@pytest.mark.parametrize("occupied", ["out", "inbox", "answer.json"])
def test_an_output_path_of_the_wrong_kind_is_refused_before_anything_is_written(tmp_path, capsys, occupied):
    out = tmp_path / "g"
    if occupied == "out":
        out.write_text("a file", encoding="utf-8")
    elif occupied == "inbox":
        out.mkdir()
        (out / "inbox").write_text("a file", encoding="utf-8")
    else:
        (out / "answer.json").mkdir(parents=True)
    assert gen.main(["--out", str(out), "--persons", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "choose another --out" in err
    assert not (out / "inbox").is_dir()


def test_data_generated_for_a_later_day_is_accepted_on_that_night(tmp_path):
    """A period more than a year after today is refused as a typo — judged against the night's
    as-of when it is later: the night of 2029-06-30 takes that day's extracts whole."""
    as_of = date(2029, 6, 30)
    gen.generate(tmp_path / "g", 20, as_of=as_of, nights=1, fmt="csv")
    con = connect(tmp_path / "fw.duckdb")
    try:
        report = ingest_inbox(con, tmp_path / "g" / "inbox", as_of=as_of)
        assert report.rows_accepted > 0 and report.rows_rejected == 0
    finally:
        con.close()
    today = connect(tmp_path / "today.duckdb")
    try:
        # a night of today: the delivery, named for a day that has not come, is not read at all
        read = ingest_inbox(today, tmp_path / "g" / "inbox")
        assert read.dated_ahead == [as_of.isoformat()] and read.files == []
        # renamed for today, it is read, and its periods judged against today's date
        (tmp_path / "g" / "inbox" / as_of.isoformat()).rename(tmp_path / "g" / "inbox" / china_today().isoformat())
        assert ingest_inbox(today, tmp_path / "g" / "inbox").rows_rejected > 0
    finally:
        today.close()
