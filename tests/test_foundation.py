"""The foundation: extract spec, store schema, privacy masks, config, and what the installed package carries."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import pipelines
from pipelines import config as cfg
from pipelines import resources
from pipelines.extracts import EXTRACTS, kind_of_file
from pipelines.privacy import mask_account, mask_id
from pipelines.store import connect, scalar, transaction


@pytest.mark.parametrize(
    "name, kind",
    [
        ("payments_360700_202611.csv", "payments"),
        ("PAYMENTS_360700.xlsx", "payments"),
        ("fund_transactions_360702.parquet", "fund_transactions"),
        ("deaths.csv", "deaths"),
        ("beneficiaries-2026.csv", "beneficiaries"),
        ("payment_360700.csv", None),  # not a kind: a prefix of one is not enough
        ("paymentsx.csv", None),
        ("readme.txt", None),
    ],
)
def test_kind_is_told_by_the_start_of_the_file_name(name, kind):
    assert kind_of_file(name) == kind


def test_every_extract_has_its_key_among_its_columns():
    for spec in EXTRACTS.values():
        assert set(spec.key) <= set(spec.names), spec.kind
        # Chinese aliases are unique within an extract, so a header maps to one column
        assert len({c.alias for c in spec.columns}) == len(spec.columns)


def test_store_has_the_contract_tables_and_columns(tmp_path):
    con = connect(tmp_path / "fw.duckdb")
    cols = {
        t: [r[0] for r in con.execute(f"describe {t}").fetchall()]
        for t in ("suspects", "suspect_events", "rejected_rows")
    }
    assert cols["suspect_events"][:4] == ["suspect_id", "happened_at", "event", "detail"]
    for c in ("suspect_id", "rule_id", "subject", "person_id", "agency_code", "period_from", "period_to",
              "amount", "status", "first_detected_on", "last_detected_on", "evidence", "outcome",
              "recovered_amount", "closed_on"):
        assert c in cols["suspects"]
    assert cols["rejected_rows"][:6] == ["extract", "source_file", "row_number", "column_name", "reason", "raw"]
    for kind, spec in EXTRACTS.items():
        assert [r[0] for r in con.execute(f"describe {kind}").fetchall()][: len(spec.names)] == spec.names
    amount_type = scalar(con, "select data_type from information_schema.columns where table_name='payments' and column_name='amount'")
    assert amount_type == "DECIMAL(18,2)"


def test_store_file_is_owner_only(tmp_path):
    db = tmp_path / "sub" / "fw.duckdb"
    connect(db).close()
    assert stat.S_IMODE(db.stat().st_mode) & 0o077 == 0


def test_reopening_an_existing_store_keeps_its_rows(tmp_path):
    db = tmp_path / "fw.duckdb"
    con = connect(db)
    con.execute("insert into agencies (agency_code, agency_name, region_code) values ('360702001', '章贡区社保局', '360702')")
    con.close()
    con = connect(db)
    assert scalar(con, "select count(*) from agencies") == 1


def test_transaction_rolls_back_on_error(tmp_path):
    con = connect(tmp_path / "fw.duckdb")
    with pytest.raises(RuntimeError):
        with transaction(con):
            con.execute("insert into agencies (agency_code, agency_name, region_code) values ('1', 'a', '2')")
            raise RuntimeError("boom")
    assert scalar(con, "select count(*) from agencies") == 0


def test_masks_keep_region_and_last_four_only():
    assert mask_id("36070219900101123X") == "360702********123X"
    assert mask_account("6217001234567890123") == "6217***********0123"
    assert mask_id(None) is None


def test_config_overrides_merge_over_defaults(tmp_path):
    path = tmp_path / "fundwatch.yaml"
    path.write_text("casework:\n  verify_working_days: 15\nrules:\n  LARGE_PAYMENT_UNREVIEWED:\n    large_payment_threshold: 30000\n", encoding="utf-8")
    conf = cfg.load_config(path)
    assert conf["casework"]["verify_working_days"] == 15
    assert conf["casework"]["escalate_after_days"] == 90  # untouched default survives
    assert conf["rules"]["LARGE_PAYMENT_UNREVIEWED"]["large_payment_threshold"] == 30000


def test_a_config_section_with_every_entry_commented_out_keeps_its_defaults(tmp_path):
    path = tmp_path / "fundwatch.yaml"
    path.write_text("casework:\n  # verify_working_days: 15\noutlier:\nschedule:\nrules:\nregions:\n", encoding="utf-8")
    conf = cfg.load_config(path)
    assert conf["casework"] == cfg.DEFAULTS["casework"] and conf["outlier"] == cfg.DEFAULTS["outlier"]
    assert conf["schedule"] == cfg.DEFAULTS["schedule"]


def test_config_with_unknown_section_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("rulez: {}\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="unknown section"):
        cfg.load_config(path)


def test_package_carries_rules_and_sample():
    rules = resources.rules_dir()
    assert sorted(p.name for p in rules.glob("*.yaml")), f"no rule files in {rules}"
    sample = resources.sample_dir()
    assert (sample / "answer.json").is_file(), f"no sample delivery in {sample}"


@pytest.mark.skipif("site-packages" not in pipelines.__file__, reason="runs against the installed package (make test)")
def test_installed_package_works_from_any_folder(tmp_path):
    # Under `make test` the package is a plain non-editable install: its data must be inside it.
    assert "site-packages" in str(resources.rules_dir())
    assert "site-packages" in str(resources.sample_dir())
    exe = shutil.which("fundwatch", path=str(Path(sys.executable).parent))
    assert exe, "console script fundwatch not installed"
    out = subprocess.run([exe, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for command in ("nightly", "returns", "report", "demo", "serve", "generate"):
        assert command in out.stdout
