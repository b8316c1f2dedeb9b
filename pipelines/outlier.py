"""AMOUNT_OUTLIER (待遇金额异常): an IsolationForest over the features rules/AMOUNT_OUTLIER.yaml builds.

The runner calls `score(con, features_table, params, as_of)`; it returns the name of a temp table
with the detection columns. Reproducible: the model is fitted with a fixed random_state on a
sample chosen by hash of payment_id (not by chance), so the same data gives the same suspects.
Never floods: only payments with a plain reason a clerk can check are scored, and at most
max_share of all payments are returned, the most anomalous first.
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any

import duckdb
import numpy as np
import polars as pl
from sklearn.ensemble import IsolationForest

from .store import scalar

OUT_TABLE = "_outlier_rows"
# The amount against the person's own history and against the peer group, on a log scale. Not the
# amount itself: its spread is that of the benefits (a 200-yuan resident pension, a 150,000-yuan
# one-off grant), so the forest isolated large ordinary grants first and scored a resident pension
# paid 31 times over (6,300 yuan) as ordinary.
# Below 1 a ratio is taken as 1: only a payment above its norms can be a suspect, and low ones
# (a 30-yuan adjustment) scored as far out as the planted outliers and took the contamination's
# share from them — twenty such payments hid all three planted in the sample.
FEATURES = ("greatest(ln(coalesce(person_ratio, 1)), 0)", "greatest(ln(coalesce(peer_ratio, 1)), 0)")
MIN_ROWS_TO_FIT = 50  # fewer payments than this say nothing about what is normal
OUTPUT_SCHEMA = {"subject": pl.Utf8, "person_id": pl.Utf8, "agency_code": pl.Utf8, "period_from": pl.Utf8,
                 "period_to": pl.Utf8, "amount": pl.Decimal(18, 2), "evidence": pl.Utf8}


def reasons(row: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """The plain reasons a clerk can check against the payment history."""
    out = []
    if row["own_reason"]:  # decided by the rule's SQL, exactly as it picked the candidates
        out.append(f"金额为本人同项目中位数的 {float(row['person_ratio']):.1f} 倍（本人{row['item']}中位数 "
                   f"{float(row['person_median']):.2f} 元，共 {row['person_n']} 笔，含本笔）")
    if row["peer_reason"]:
        q = float(params["peer_quantile"]) * 100
        out.append(f"高于同机构同险种同项目 {q:g}% 分位（{float(row['peer_high']):.2f} 元，同组 {row['peer_n']} 笔，"
                   f"中位数 {float(row['peer_median']):.2f} 元）")
    return out


def _shown_apart(score: float, threshold: float) -> tuple[float, float]:
    """The score and the threshold it is above, to two places — more where two would show them
    equal (0.81 and 0.81 for a payment judged above the line)."""
    for places in (2, 4, 6):
        shown = round(score, places), round(threshold, places)
        if shown[0] > shown[1]:
            return shown
    return round(score, 8), round(threshold, 8)


def _write(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> str:
    frame = pl.DataFrame(rows, schema=OUTPUT_SCHEMA) if rows else pl.DataFrame(schema=OUTPUT_SCHEMA)
    con.register("_outlier_frame", frame)
    try:
        con.execute(f"create or replace temp table {OUT_TABLE} as select subject, person_id, agency_code, "
                    "period_from, period_to, cast(amount as decimal(18,2)) as amount, cast(evidence as json) as evidence "
                    "from _outlier_frame")
    finally:
        con.unregister("_outlier_frame")
    return OUT_TABLE


def score(con: duckdb.DuckDBPyConnection, features_table: str, params: dict[str, Any], as_of: date) -> str:
    total = scalar(con, f"select count(*) from {features_table}") or 0
    features = ", ".join(f"{f} as _f{i}" for i, f in enumerate(FEATURES))
    candidates = con.sql(f"select *, {features} from {features_table} where has_reason order by payment_id").pl()
    if total < MIN_ROWS_TO_FIT or candidates.is_empty():
        return _write(con, [])
    sample = con.sql(f"select {features} from {features_table} order by hash(payment_id), payment_id "
                     f"limit {int(params['sample_size'])}").fetchnumpy()
    x_fit = np.column_stack(list(sample.values())).astype(float)
    # Nearly every payment is its person's usual amount (both ratios about 1): a tree grown on
    # sklearn's default 256 rows rarely holds an unusual one to split on, so every payment outside
    # the usual scored alike and the contamination threshold fell among them (nothing flagged, or
    # hundreds). 2,048 rows a tree separate the extreme from the merely unusual.
    model = IsolationForest(n_estimators=100, contamination=float(params["contamination"]),
                            max_samples=max(1, min(int(params["max_samples"]), len(x_fit))),
                            random_state=int(params["random_state"]))
    model.fit(x_fit)
    x = candidates.select([f"_f{i}" for i in range(len(FEATURES))]).to_numpy().astype(float)
    anomaly = -model.score_samples(x)  # 0..1, higher = more anomalous
    flagged = model.predict(x) == -1
    share = float(params["max_share"])
    cap = max(1, math.floor(total * share)) if share > 0 else 0  # a small store may still show its one
    ids = candidates["payment_id"].to_list()
    order = sorted((int(i) for i in np.flatnonzero(flagged)), key=lambda i: (-anomaly[i], ids[i]))
    threshold = float(-model.offset_)
    rows = []
    for i in order[:cap]:
        row = candidates.row(i, named=True)
        why = reasons(row, params)
        if not why:
            continue
        rows.append({
            "subject": row["payment_id"], "person_id": row["person_id"], "agency_code": row["agency_code"],
            "period_from": row["period"], "period_to": row["period"], "amount": row["amount"],
            "evidence": json.dumps({
                "summary": f"{row['item']} {row['amount']:.2f} 元（所属期 {row['period']}）被模型判为异常：" + "；".join(why),
                # what the score is measured against: the payments scoring above it are anomalous
                **dict(zip(("score", "score_threshold"), _shown_apart(float(anomaly[i]), threshold))),
                "reasons": why,
                "model": "IsolationForest",
                "payment": {"payment_id": row["payment_id"], "item": row["item"],
                            "insurance_type": row["insurance_type"], "period": row["period"],
                            "paid_on": row["paid_on"].isoformat() if row["paid_on"] else None,
                            "amount": f"{row['amount']:.2f}"},
            }, ensure_ascii=False),
        })
    return _write(con, rows)
