"""The benchmark's two promises, proved small: the pandas baseline gives fundwatch's answers, and an
incremental night leaves exactly the suspects a detection from scratch finds.

Real generated Parquet deliveries, the real ingest, real DuckDB stores under tmp_path.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from pipelines import bench, bench_pandas, ingest, rules, store, suspects
from pipelines.config import Config
from pipelines.extracts import EXTRACTS
from pipelines.generate import generate

AS_OF = bench.AS_OF
NEXT = bench.NEXT_AS_OF
SUSPECT_COLUMNS = ("suspect_id, rule_id, subject, person_id, agency_code, period_from, period_to, amount, "
                   "cast(evidence as varchar)")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench_gen")
    generate(out, 300, as_of=AS_OF, fmt="parquet", split="province")
    return out / "inbox"


def _ingest(con, path: Path, inbox: Path, nights: list[str]) -> None:
    staging = path.parent / f"{path.stem}_{len(nights)}_inbox"
    staging.mkdir()
    for night in nights:
        (staging / night).symlink_to((inbox / night).resolve())
    assert ingest.ingest_inbox(con, staging).rows_accepted > 0


@pytest.fixture(scope="module")
def templates(generated, tmp_path_factory) -> dict[int, Path]:
    """Stores holding the first night, and both nights, ingested once for the module."""
    where = tmp_path_factory.mktemp("bench_stores")
    nights = [d.name for d in bench.deliveries(generated)]
    con = store.connect(where / "one.duckdb")
    _ingest(con, where / "one.duckdb", generated, nights[:1])
    con.close()
    shutil.copy(where / "one.duckdb", where / "both.duckdb")
    con = store.connect(where / "both.duckdb")
    _ingest(con, where / "both.duckdb", generated, nights[1:])
    con.close()
    return {1: where / "one.duckdb", 2: where / "both.duckdb"}


def _store(path: Path, templates: dict[int, Path], nights: int):
    shutil.copy(templates[nights], path)
    return store.connect(path)


def _deterministic():
    return bench.deterministic_rules()


def test_pandas_baseline_finds_the_same_suspects_and_amounts_as_fundwatch(generated, templates, tmp_path):
    con = _store(tmp_path / "fw.duckdb", templates, 2)
    fundwatch = bench.fundwatch_three(con, AS_OF)
    pandas = bench_pandas.three_rules(generated, AS_OF)
    counts = bench.compare_three(fundwatch, pandas)  # raises, naming the rule, when they differ
    # the generator plants every rule: an empty answer on both sides would prove nothing
    assert all(counts[rule_id] > 0 for rule_id in bench.THREE), counts
    con.close()


def test_the_pandas_baseline_is_skipped_where_it_cannot_fit_in_memory():
    # measured: the default scale (6.27M payment rows) peaked at 3 GB; the province (62.7M) was
    # OOM-killed on a 23.5 GiB machine
    assert bench.pandas_baseline_fits(6_270_660, 23.5)
    assert not bench.pandas_baseline_fits(62_745_187, 23.5)
    result = {"ratios": {"detect_vs_scan": 7.5, "pandas_vs_fundwatch": None, "incremental_vs_full": 0.5},
              "ingest_rows_per_s": {"parquet": 2e5, "csv": 1e5}, "peak_rss_mb": 3000.0}
    met = bench.targets_met(result)
    assert met["pandas_vs_fundwatch"] is None and met["detect_vs_scan"] is True
    result.update(targets_met=met, seconds={"scan": 1.0}, scale={"persons": 10, "payment_rows": 60},
                  machine={"cpus": 2, "ram_gb": 23.5})
    (line,) = [line for line in bench.table(result).splitlines() if line.startswith("pandas_vs_fundwatch")]
    assert line.split()[1] == "skipped"


def test_incremental_night_leaves_the_suspects_a_full_run_finds(templates, tmp_path):
    # Store A: the nightly way — detect and merge, then a new night (one more month of payments
    # and new deaths), detected incrementally.
    a = _store(tmp_path / "a.duckdb", templates, 2)
    first = rules.detect(a, AS_OF, Config(), rules=_deterministic(), incremental=True)
    assert first.scope_note.startswith("full run: no earlier detection state")
    suspects.update_suspects(a, AS_OF, "night-1")
    extra = tmp_path / "extra"
    added = bench.write_next_month(a, extra / NEXT.isoformat(), death_share=0.02)
    assert added["payments"] > 0 and added["deaths"] > 0
    assert ingest.ingest_inbox(a, extra, as_of=NEXT).rows_accepted == added["payments"] + added["deaths"]
    night = rules.detect(a, NEXT, Config(), rules=_deterministic(), incremental=True)
    assert "PAID_AFTER_DEATH" in night.scoped_rules and night.scope_subjects
    # as-of moved on: rules that read $as_of cannot be scoped
    assert "CERTIFICATION_OVERDUE" not in night.scoped_rules
    suspects.update_suspects(a, NEXT, "night-2")
    live_a = a.execute(f"select {SUSPECT_COLUMNS} from suspects where last_detected_on = ? order by suspect_id",
                       [NEXT]).fetchall()
    # The new deaths made new suspects: the scoped run did find them.
    dead_new = a.execute("""select count(*) from suspects where rule_id = 'PAID_AFTER_DEATH'
                            and first_detected_on = ?""", [NEXT]).fetchall()[0][0]
    assert dead_new > 0

    # Store B: the same deliveries, detected once from scratch.
    b = _store(tmp_path / "b.duckdb", templates, 2)
    assert ingest.ingest_inbox(b, extra, as_of=NEXT).rows_accepted == added["payments"] + added["deaths"]
    rules.detect(b, NEXT, Config(), rules=_deterministic())
    suspects.update_suspects(b, NEXT, "scratch")
    live_b = b.execute(f"select {SUSPECT_COLUMNS} from suspects order by suspect_id").fetchall()
    assert live_a == live_b

    # And on store A itself a full run changes nothing the incremental night left.
    rules.detect(a, NEXT, Config(), rules=_deterministic())
    changes = suspects.update_suspects(a, NEXT, "full")
    assert all(c["new"] == c["updated"] == c["reopened"] == c["no_longer_detected"] == 0 for c in changes.values())
    a.close()
    b.close()


def test_a_night_that_replaced_payment_rows_is_detected_in_full(generated, templates, tmp_path):
    """A replaced payment may have belonged to another person, now unknown: no scope can be trusted."""
    nights = [d.name for d in bench.deliveries(generated)]
    con = _store(tmp_path / "r.duckdb", templates, 1)
    rules.detect(con, date(2026, 10, 21), Config(), rules=_deterministic(), incremental=True)
    suspects.update_suspects(con, date(2026, 10, 21), "n1")
    staging = tmp_path / "night2"
    staging.mkdir()
    (staging / nights[1]).symlink_to((generated / nights[1]).resolve())
    report = ingest.ingest_inbox(con, staging)
    replaced = sum(f.rows_replaced for f in report.files if f.kind == "payments")
    night = rules.detect(con, AS_OF, Config(), rules=_deterministic(), incremental=True)
    if replaced:
        assert night.scope_note == "full run: a new payments file replaced earlier rows"
        assert night.scoped_rules == []
    else:
        assert night.scoped_rules
    con.close()


def test_a_night_without_payments_does_not_rerun_the_payment_rules_and_keeps_their_suspects(templates, tmp_path):
    """Only new death records arrive: rules reading nothing that changed are not re-run, and their
    suspects — even those of a person who has just been reported dead — stay as a full run leaves them."""
    quiet_day = date(2026, 11, 22)
    a = _store(tmp_path / "a.duckdb", templates, 2)
    rules.detect(a, AS_OF, Config(), rules=_deterministic(), incremental=True)
    suspects.update_suspects(a, AS_OF, "night-1")
    (duplicated,) = a.execute("select person_id from suspects where rule_id = 'DUPLICATE_PENSION' "
                              "order by person_id limit 1").fetchall()[0]
    pensioners = [p for (p,) in a.execute("""select distinct person_id from payments where item = '基本养老金'
                    and person_id not in (select person_id from deaths) order by person_id limit 3""").fetchall()]
    night = tmp_path / "quiet" / quiet_day.isoformat()
    night.mkdir(parents=True)
    import polars as pl  # noqa: PLC0415
    pl.DataFrame({"person_id": [duplicated, *pensioners], "name": ["某某"] * (1 + len(pensioners)),
                  "death_date": [date(2026, 10, 2)] * (1 + len(pensioners)), "source": ["民政"] * (1 + len(pensioners)),
                  "cremated_on": [None] * (1 + len(pensioners))},
                 schema_overrides={"cremated_on": pl.Date}).write_parquet(night / "deaths_quiet.parquet")
    assert ingest.ingest_inbox(a, night.parent, as_of=quiet_day).rows_accepted == 1 + len(pensioners)

    report = rules.detect(a, quiet_day, Config(), rules=_deterministic(), incremental=True)
    assert {"DUPLICATE_PENSION", "SHARED_BANK_ACCOUNT", "LARGE_PAYMENT_UNREVIEWED",
            "FUND_PRIVATE_TRANSFER"} <= set(report.unchanged_rules)
    assert "PAID_AFTER_DEATH" in report.scoped_rules and duplicated in {
        p for (p,) in a.execute("select subject from detection_subjects where rule_id = 'PAID_AFTER_DEATH'").fetchall()}
    assert "CERTIFICATION_OVERDUE" not in report.unchanged_rules  # reads $as_of, which moved on
    suspects.update_suspects(a, quiet_day, "quiet")
    assert a.execute("""select count(*) from suspect_events e join suspects s using (suspect_id)
                        where s.rule_id = 'DUPLICATE_PENSION' and e.event = 'no_longer_detected'""").fetchall()[0][0] == 0
    live_a = a.execute(f"select {SUSPECT_COLUMNS}, last_detected_on from suspects order by suspect_id").fetchall()

    b = _store(tmp_path / "b.duckdb", templates, 2)
    rules.detect(b, AS_OF, Config(), rules=_deterministic())
    suspects.update_suspects(b, AS_OF, "night-1")
    assert ingest.ingest_inbox(b, night.parent, as_of=quiet_day).rows_accepted == 1 + len(pensioners)
    rules.detect(b, quiet_day, Config(), rules=_deterministic())
    suspects.update_suspects(b, quiet_day, "scratch")
    live_b = b.execute(f"select {SUSPECT_COLUMNS}, last_detected_on from suspects order by suspect_id").fetchall()
    assert live_a == live_b
    a.close()
    b.close()


def test_the_benchs_deaths_only_night_raises_a_suspect_for_each_new_death(templates, tmp_path):
    """Its deaths fall in the month before the last one paid (the month of death is payable): every
    one is a pension paid after death — a night that found nothing would time no real work."""
    con = _store(tmp_path / "a.duckdb", templates, 2)
    rules.detect(con, AS_OF, Config(), rules=_deterministic(), incremental=True)
    suspects.update_suspects(con, AS_OF, "night-1")
    folder = tmp_path / "quiet" / bench.QUIET_AS_OF.isoformat()
    added = bench.write_deaths_only(con, folder, death_share=0.05)
    assert added["deaths"] > 0
    assert ingest.ingest_inbox(con, folder.parent, as_of=bench.QUIET_AS_OF).rows_accepted == added["deaths"]
    rules.detect(con, bench.QUIET_AS_OF, Config(), rules=_deterministic(), incremental=True)
    suspects.update_suspects(con, bench.QUIET_AS_OF, "quiet")
    dead = {p for (p,) in con.execute("select person_id from deaths where source = '民政' and _source_file like "
                                      "'%deaths_bench_quiet%'").fetchall()}
    found = {p for (p,) in con.execute("select person_id from suspects where rule_id = 'PAID_AFTER_DEATH'"
                                       " and first_detected_on = ?", [bench.QUIET_AS_OF]).fetchall()}
    assert len(dead) == added["deaths"] and found == dead
    con.close()


def test_the_ingest_floor_loads_the_same_rows_the_real_ingest_stores(generated, tmp_path):
    """The floor the ingest rates are compared with does the same work minus validation: from the
    same sample files it stores the same payments, value for value, in both formats."""
    b = bench.Bench(persons=300, data_dir=tmp_path, memory_limit="1GB", threads=None)
    rates = bench.measure_ingest(b, generated, 400)
    floors = b.extra["ingest_floor_rows_per_s"]
    assert set(floors) == set(rates) == {"parquet", "csv"} and all(v > 0 for v in floors.values())
    columns = ", ".join([*EXTRACTS["payments"].names, "_row_number"])
    for fmt in ("parquet", "csv"):
        stored = []
        for db in (f"{fmt}.duckdb", f"{fmt}_floor.duckdb"):
            con = store.connect(tmp_path / "ingest_probe" / db, read_only=True)
            stored.append(con.execute(f"select {columns} from payments order by payment_id").fetchall())
            con.close()
        assert len(stored[0]) == b.extra["ingest_sample_rows"] == 400
        assert stored[0] == stored[1], fmt
