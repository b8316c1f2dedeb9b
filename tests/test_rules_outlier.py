"""AMOUNT_OUTLIER: a reproducible model that names its reasons and never floods the worklists."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from pipelines import store
from pipelines.config import DEFAULTS, Config, _merge
from pipelines.rules import detect, load_rules

AS_OF = date(2026, 11, 21)
MONTHS = [f"2026{m:02d}" for m in range(1, 13)]


def person(i: int) -> str:
    return f"3607021950{i:04d}001X"[:18]


@pytest.fixture
def con(tmp_path):
    c = store.connect(tmp_path / "fw.duckdb")
    rows = []
    for i in range(40):
        base = 2000 + 25 * i
        for m in MONTHS:
            rows.append((f"P{i:03d}{m}", person(i), m, Decimal(base) + Decimal(i % 7)))
    rows += [(f"RICH{m}", person(99), m, Decimal("30000.00")) for m in MONTHS]  # always high: not an outlier
    c.executemany("insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount, agency_code) "
                  "values (?, ?, '110', '基本养老金', ?, date '2026-11-10', ?, '360702')", rows)
    yield c
    c.close()


def spike(con, i, month, amount):
    con.execute("update payments set amount = ? where payment_id = ?", [Decimal(amount), f"P{i:03d}{month}"])


def run(con, config=None):
    rules = [r for r in load_rules()[0] if r.id == "AMOUNT_OUTLIER"]
    report = detect(con, AS_OF, config or Config(), rules=rules)
    assert not report.errors, report.errors
    return {s: (a, json.loads(e)) for s, a, e in con.execute(
        "select subject, amount, evidence from detections where rule_id = 'AMOUNT_OUTLIER'").fetchall()}


def test_spike_against_own_history_is_flagged_with_score_and_reasons(con):
    spike(con, 3, "202609", "25000.00")  # 12x the person's 2075 median
    found = run(con)
    assert set(found) == {"P003202609"}
    amount, evidence = found["P003202609"]
    assert amount == Decimal("25000.00")
    assert 0 < evidence["score"] <= 1
    assert 0 < evidence["score_threshold"] < evidence["score"]  # a clerk sees the scale it was judged on, and above it
    assert any("本人同项目中位数的 12.0 倍" in r for r in evidence["reasons"])
    assert "RICH202601" not in found  # consistently high is that person's normal


def test_a_spike_reversed_in_full_is_money_returned_not_a_suspect(con):
    spike(con, 3, "202609", "25000.00")
    spike(con, 5, "202610", "26000.00")
    # 冲正: the spike of person 3 paid back in full; person 5's only in part
    con.executemany("insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount,"
                    " agency_code) values (?, ?, '110', '基本养老金', ?, date '2026-11-12', ?, '360702')",
                    [("REV3", person(3), "202609", Decimal("-25000.00")), ("REV5", person(5), "202610", Decimal("-20000.00"))])
    assert set(run(con)) == {"P005202610"}


def test_outlier_model_is_reproducible(con):
    spike(con, 3, "202609", "25000.00")
    first = run(con)
    assert run(con) == first


def test_outliers_never_flood_beyond_max_share(con):
    for i in range(10):
        spike(con, i, "202610", str(20000 + 1000 * i))
    share = Config(_merge(DEFAULTS, {"outlier": {"max_share": 0.004, "contamination": 0.05}}))  # 492 payments -> 1
    assert len(run(con, share)) == 1
    wider = Config(_merge(DEFAULTS, {"outlier": {"max_share": 0.02, "contamination": 0.05}}))  # -> 9
    found = run(con, wider)
    assert 1 < len(found) <= 9
    assert "P009202610" in found  # the most anomalous first


@pytest.fixture
def mixed_agency(tmp_path):
    """One agency paying 基本养老金 of two insurance types: 600 enterprise pensioners (110, 2,500–
    4,000 yuan) and 200 resident pensioners (170, 150–350 yuan), 12 months each; and 240 one-off
    丧葬补助金 (5,000–9,000 yuan), each person once."""
    c = store.connect(tmp_path / "mixed.duckdb")
    # (one statement each: row-by-row inserts of ten thousand payments took 20 s)
    c.execute("""
        insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount, agency_code)
        select format('M{:04d}{}', i, m), format('3607021940{:04d}0000', i), if(i >= 600, '170', '110'),
               '基本养老金', m, date '2026-11-10',
               cast(if(i >= 600, 150 + i % 200, 2500 + (i * 37) % 1500) as decimal(18,2)), '360702'
        from range(800) t(i), (select unnest(?) as m)""", [MONTHS])
    c.execute("""
        insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount, agency_code)
        select format('F{:04d}', i), format('3607021930{:04d}0000', i), '110', '丧葬补助金', '202608',
               date '2026-11-10', cast(5000 + (i * 53) % 4000 as decimal(18,2)), '360702'
        from range(240) t(i)""")
    yield c
    c.close()


def test_a_resident_pension_paid_many_times_over_is_flagged_beside_larger_enterprise_pensions(mixed_agency):
    """6,200 yuan is an ordinary enterprise pension but 31 times this resident pensioner's 200: the
    peer group is item × insurance type × agency, and the forest weighs the two ratios, not the
    amount's own size (the amount-based model scored it ordinary)."""
    mixed_agency.execute("update payments set amount = 6200.00 where payment_id = 'M0650202608'")  # usual 200
    found = run(mixed_agency)
    assert "M0650202608" in found, sorted(found)
    reasons = found["M0650202608"][1]["reasons"]
    assert any("本人同项目中位数的 31.0 倍" in r for r in reasons), reasons
    assert any("同险种" in r for r in reasons), reasons


def test_the_largest_of_a_small_peer_group_is_no_outlier_for_being_the_largest(mixed_agency):
    """In a peer group of fewer than 1,000 payments the 99.9 % quantile is about its largest payment:
    being above it is a reason only at peer_min_ratio times the group's median or more."""
    found = run(mixed_agency)
    assert not [s for s in found if s.startswith("F")], sorted(found)
    mixed_agency.execute("update payments set amount = 30000.00 where payment_id = 'F0007'")  # ~4.3x the median
    found = run(mixed_agency)
    assert "F0007" in found, sorted(found)
    assert any("高于同机构同险种同项目" in r for r in found["F0007"][1]["reasons"])


# From a probe of the model against the data it was given (all on the fixture's 40 pensioners).

def test_payments_below_their_norms_take_nothing_from_an_outlier(con):
    """The forest scored low payments (a 30-yuan adjustment) as far out as high ones, and they spent
    the contamination's share: twenty of them hid every planted outlier of the sample, and here one
    10-yuan payment hid the spike. Only a payment above its norms can be a suspect; below them it is
    ordinary to the forest too."""
    spike(con, 3, "202609", "25000.00")
    con.executemany("insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount, agency_code) "
                    "values (?, ?, '110', '基本养老金', '202611', date '2026-11-10', ?, '360702')",
                    [("ADJ000", person(0), Decimal("10.00"))])
    assert set(run(con)) == {"P003202609"}


def test_a_persons_norm_is_of_the_same_insurance_type(con):
    """A person moving from a 城乡居民 pension (200 yuan) to an enterprise one: the enterprise pension
    was 15 times "本人中位数 200.00" — it is measured against that person's enterprise pensions."""
    con.executemany("insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount, agency_code) "
                    "values (?, ?, ?, '基本养老金', ?, date '2026-11-10', ?, '360702')",
                    [(f"MOVE{m}", person(77), "170" if m < "202612" else "110", m,
                      Decimal("200.00") if m < "202612" else Decimal("2100.00")) for m in MONTHS])
    assert not any(s.startswith("MOVE") for s in run(con))


def test_a_persons_median_is_not_cut_to_the_fen(con):
    """100.00, 100.01, 100.02 and 500.06: the median is 100.015 and 500.06 is 4.9999 times it, below
    min_ratio 5 — DuckDB's median of DECIMAL read 100.01 and raised it as 5.0 times."""
    con.executemany("insert into payments (payment_id, person_id, insurance_type, item, period, paid_on, amount, agency_code) "
                    "values (?, ?, '110', '供养亲属抚恤金', ?, date '2026-11-10', ?, '360702')",
                    [(f"FEW{k}", person(55), MONTHS[k], Decimal(a))
                     for k, a in enumerate(("100.00", "100.01", "100.02", "500.06"))])
    assert "FEW3" not in run(con, Config(data=_merge(DEFAULTS, {"rules": {"AMOUNT_OUTLIER": {"min_history": 2}}})))


def test_max_share_zero_raises_no_suspect(con):
    spike(con, 3, "202609", "25000.00")
    assert run(con, Config(data=_merge(DEFAULTS, {"outlier": {"max_share": 0}}))) == {}


def test_a_regions_own_share_is_spent_on_its_own_payments(con):
    """A region's max_share ranked the whole province's payments: its one slot went to a payment of
    another region, dropped as outside it, and the region's own outlier was lost."""
    con.execute("insert into agencies (agency_code, agency_name, region_code, parent_code) values "
                "('360702', '章贡区', '360702', '360700'), ('360703', '南康区', '360703', '360700')")
    spike(con, 3, "202609", "40000.00")  # region 360702
    spike(con, 5, "202609", "20000.00")  # region 360703: its own share of one
    con.execute("update payments set agency_code = '360703' where payment_id similar to 'P0(0[5-9]|1[0-9]).*'")  # 15 pensioners
    found = run(con, Config(data=_merge(DEFAULTS, {"regions": {"360703": {"rules": {"AMOUNT_OUTLIER": {"max_share": 0.00001}}}}})))
    assert set(found) == {"P003202609", "P005202609"}


def test_a_seed_scikit_learn_cannot_take_is_refused_with_the_config(tmp_path):
    from pipelines.config import load_config
    path = tmp_path / "c.yaml"
    path.write_text("outlier:\n  seed: 4294967296\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="outlier.seed: .*at most 4294967295, got 4294967296"):
        load_config(path)
