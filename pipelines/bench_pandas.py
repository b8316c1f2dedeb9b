"""The benchmark's baseline: three rules written in pandas the way an analyst does them today.

`read_parquet` of the delivered extracts (every night's files, later delivery wins by natural
key, as the store does), merges and filters, one notebook cell per rule. No DuckDB, no store:
this is the yardstick `pandas_vs_fundwatch` is measured against, and it must give the same
suspects and amounts as fundwatch (pipelines/bench.py asserts it; tests/test_bench.py too).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd

from .extracts import CUSTODIAL_SENTENCES, ONE_OFF_ITEMS, PENSION_TYPES

PAYMENT_COLUMNS = ["payment_id", "person_id", "insurance_type", "item", "period", "paid_on", "amount",
                   "handled_by", "reviewed_by", "reviewed_at"]


def _read(inbox: Path, kind: str, columns: list[str] | None, key: list[str]) -> pd.DataFrame:
    """Every `<kind>_*.parquet` of every delivery, oldest delivery first; the later row of a key wins."""
    files = sorted(inbox.glob(f"*/{kind}_*.parquet")) or sorted(inbox.glob(f"{kind}_*.parquet"))
    if not files:
        return pd.DataFrame(columns=columns or key)
    frames = [pd.read_parquet(f, columns=columns, dtype_backend="pyarrow") for f in files]
    df = pd.concat(frames, ignore_index=True)
    return df.drop_duplicates(subset=key, keep="last")


def _amounts(per_subject: pd.Series) -> dict[str, Decimal]:
    return {str(k): Decimal(str(v)).quantize(Decimal("0.01")) for k, v in per_subject.items()}


def paid_after_death(payments: pd.DataFrame, deaths: pd.DataFrame) -> dict[str, Decimal]:
    died = deaths.dropna(subset=["death_date"]).groupby("person_id")["death_date"].min()
    died = pd.to_datetime(died.astype("datetime64[ms]")).dt.strftime("%Y%m").rename("death_month")
    p = payments.merge(died, left_on="person_id", right_index=True)
    p = p[(p["period"] > p["death_month"]) & ~p["item"].isin(ONE_OFF_ITEMS)]
    total = p.groupby("person_id")["amount"].sum()
    return _amounts(total[total > 0])


def paid_during_custody(payments: pd.DataFrame, imprisonments: pd.DataFrame, as_of: date) -> dict[str, Decimal]:
    s = imprisonments[imprisonments["sentence_type"].isin(CUSTODIAL_SENTENCES) & imprisonments["custody_start"].notna()]
    s = s.assign(month_in=pd.to_datetime(s["custody_start"].astype("datetime64[ms]")).dt.strftime("%Y%m"),
                 month_out=pd.to_datetime(s["custody_end"].astype("datetime64[ms]")).dt.strftime("%Y%m"))
    p = payments[payments["insurance_type"].isin(PENSION_TYPES) & ~payments["item"].isin(ONE_OFF_ITEMS)]
    m = p.merge(s[["person_id", "month_in", "month_out"]], on="person_id")
    still_held = m["month_out"].isna() & (m["period"] <= as_of.strftime("%Y%m"))
    inside = (m["period"] > m["month_in"]) & (still_held | (m["period"] < m["month_out"]).fillna(False))
    m = m[inside].drop_duplicates(subset="payment_id")  # a payment inside two spells counts once
    total = m.groupby("person_id")["amount"].sum()
    return _amounts(total[total > 0])


_NAME_FOLD = str.maketrans("ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ•・‧∙⋅･．.⸱ꞏㆍ﹒", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz············")


def large_payment_unreviewed(payments: pd.DataFrame, threshold: int = 50000) -> dict[str, Decimal]:
    p = payments[payments["amount"] >= threshold].copy()
    handler = p["handled_by"].str.strip().replace("", None)
    reviewer = p["reviewed_by"].str.strip().replace("", None)
    reviewed_day = pd.to_datetime(p["reviewed_at"].astype("datetime64[ms]")).dt.normalize()
    paid_day = pd.to_datetime(p["paid_on"].astype("datetime64[ms]"))
    # CONTRACT §2's three cases (a reviewer without a review time is none of them, as in the rule);
    # one person however the name is typed: spaces, invisible characters, full-width letters, case
    # and the middle dot of a name do not count
    def person(name: pd.Series) -> pd.Series:
        key = (name.str.normalize("NFC")
               .str.replace(r"[\s\p{Z}\p{Cf}\p{Cc}\x{FE00}-\x{FE0F}\x{E0100}-\x{E01EF}]", "", regex=True)
               .str.translate(_NAME_FOLD).str.lower())
        return key.replace("", None)

    same = person(handler) == person(reviewer)
    bad = person(reviewer).isna() | same.fillna(False) | (reviewed_day > paid_day).fillna(False)
    return _amounts(p[bad.astype(bool)].set_index("payment_id")["amount"])


def three_rules(inbox: str | Path, as_of: date) -> dict[str, dict[str, Decimal]]:
    """{rule_id: {subject: amount}} for PAID_AFTER_DEATH, PAID_DURING_CUSTODY, LARGE_PAYMENT_UNREVIEWED."""
    inbox = Path(inbox)
    payments = _read(inbox, "payments", PAYMENT_COLUMNS, ["payment_id"])
    deaths = _read(inbox, "deaths", ["person_id", "death_date", "source"], ["person_id", "source"])
    # 公安户籍注销 and 公安 are one source (the store keeps the two-character prefix)
    deaths = deaths.assign(source=deaths["source"].str.slice(0, 2)).drop_duplicates(["person_id", "source"], keep="last")
    prisons = _read(inbox, "imprisonments", ["person_id", "sentence_type", "custody_start", "custody_end"],
                    ["person_id", "custody_start"])
    return {
        "PAID_AFTER_DEATH": paid_after_death(payments, deaths),
        "PAID_DURING_CUSTODY": paid_during_custody(payments, prisons, as_of),
        "LARGE_PAYMENT_UNREVIEWED": large_payment_unreviewed(payments),
    }
