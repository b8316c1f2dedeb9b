"""Data quality (数据质量) of each new delivery: a great-expectations suite per extract kind.

A failed expectation is a warning for the run summary and the dashboard, never a crash: the
night goes on and the clerk sees what looked wrong. Results go to `quality_results`; the HTML
Data Docs land under OUT/data_docs/.

Personal data: the frames handed to great-expectations carry codes, amounts, periods and flags
only — never an ID number, name or bank account — so the Data Docs can be opened by anyone who
may see the run's statistics.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import duckdb

from . import extracts as X
from .clock import CHINA_TZ, is_zone_name
from .privacy import mask_folder_name
from .report_mask import mask_agency_code, mask_name
from .store import of_files, scalar, transaction

QUALITY_DDL = """
create table if not exists quality_results (
    run_id      varchar,
    delivery    varchar,
    extract     varchar,
    expectation varchar,      -- great-expectations type, e.g. expect_column_values_to_be_in_set
    column_name varchar,
    success     boolean,
    detail      json,         -- observed value / unexpected counts and the expectation's kwargs
    checked_at  timestamp
)
"""

# Above this many rows a delivery's frame is a seeded sample: a national payments extract does
# not fit in pandas, and shares/ranges are as telling on 300 000 rows. Row counts use the ledger.
SAMPLE_ROWS = 300_000

# Thresholds. Codes from closed lists must all be known (the contract rejects unknown ones, so a
# failure means the ingest changed); shares for things that are legitimately sometimes missing.
ID_VALID_SHARE = 0.99          # share of delivered rows whose 公民身份号码 passed the check digit
PERIOD_CONTINUITY_SHARE = 0.98  # share of recurring payments following the stream's previous month
ROW_COUNT_BAND = (0.5, 2.0)     # this delivery's rows vs the last delivery of the same kind
ROWS_ADDED = "rows_added"       # the row-count check's one-row frame; stored as the table's row count
ROW_COUNT = "expect_table_row_count_to_be_between"

AMOUNT_RANGES = {  # yuan; outside is not wrong, but worth a look
    "payments": (0.01, 500_000),
    "contributions": (0.01, 100_000),
    "fund_transactions": (0.01, 100_000_000),
}

# Columns whose emptiness we watch although the contract allows it (share that must be filled).
OPTIONAL_FILLED = {
    "payments": {"bank_account": 0.95},
    # PAID_WHILE_SUSPENDED counts from the month of status_date: a stop without it is unchecked
    "beneficiaries": {"bank_account": 0.9, "last_certified_on": 0.8, "status_date": 1.0},
    "fund_transactions": {"counterparty_account": 0.95},
}
# Survival certification (生存认证) is asked of pensioners only: an unemployment or 工伤 record
# without a certification date is normal, not a gap in the extract.
FILLED_ONLY_WHERE = {
    ("beneficiaries", "last_certified_on"): "insurance_type in ({})".format(
        ", ".join(f"'{t}'" for t in X.PENSION_TYPES)),
    # a status change has a date; a 正常 record may have none
    ("beneficiaries", "status_date"): "status in ({})".format(
        ", ".join(f"'{t}'" for t in X.BENEFICIARY_STATUSES if t != "正常")),
}

# Rows each field of which is valid but that say something impossible: the contract accepts them
# (no field is wrong), a rule then finds nothing in them, so the clerk is told. Each flag must be
# true on every row of the delivery.
# A date after the day its delivery is named for (`2026-11-21…`) has not happened yet: a death dated
# 2026-12-15 in the delivery of 2026-11-21 already made November's payment a suspect, and a
# payments file paid in December was stored without a word (a data-drift probe).
_DELIVERY_DAY = f"try_strptime(regexp_extract(_delivery, '{X.DATED_DELIVERY}'), '%Y-%m-%d')::date"
CONSISTENT = {
    # a spell ending before it began holds no month in custody (PAID_DURING_CUSTODY)
    "imprisonments": {"custody_end_not_before_start": "custody_end is null or custody_end >= custody_start"},
    "deaths": {"cremated_not_before_death": "cremated_on is null or cremated_on >= death_date",
               "death_not_after_delivery": f"{_DELIVERY_DAY} is null or death_date <= {_DELIVERY_DAY}"},
    "payments": {"paid_not_after_delivery": f"{_DELIVERY_DAY} is null or paid_on <= {_DELIVERY_DAY}"},
}
# Payments set against the same stream's earlier payments (person, insurance type, item), each true
# on nearly every row of an ordinary delivery. Amounts in 分 for 元 (×100) went onto worklists a
# hundredfold, and a core system that re-keyed its payment ids delivered every earlier month again
# under new ids, doubling each person's history — with nothing said but a generic amount range, or
# nothing at all (a data-drift probe). Said with the agencies whose rows fail.
AMOUNT_JUMP = 50  # a 补发 of a year's arrears is 12×, of several years ~40×; 分 for 元 is 100×
STREAM_FLAGS = {"amount_in_line": 0.995, "not_stored_under_another_id": 0.99, "month_net_not_negative": 0.999}

CODE_SETS = {
    "insurance_type": tuple(X.INSURANCE_TYPES),
    "item": X.RECURRING_ITEMS + X.ONE_OFF_ITEMS,
    "status": X.BENEFICIARY_STATUSES,
    "source": X.DEATH_SOURCES,
    "account_type": X.ACCOUNT_TYPES,
    "direction": X.DIRECTIONS,
    "counterparty_kind": X.COUNTERPARTY_KINDS,
    "sentence_type": X.CUSTODIAL_SENTENCES + X.NON_CUSTODIAL_SENTENCES,
}
PERSONAL = {"person_id", "name", "bank_account", "counterparty_account", "counterparty_name",
            "account_no", "handled_by", "reviewed_by", "employer_id"}


@dataclass
class QualityReport:
    checked: int = 0                                     # expectations evaluated
    warnings: list[str] = field(default_factory=list)    # one line per failed expectation
    docs: Path | None = None                             # Data Docs index.html
    seconds: float = 0.0


# The files whose rows a check has seen: a delivery is checked on the rows of its files not seen
# yet — a file sent late into an earlier delivery is checked alone, not with the rows checked then.
QUALITY_FILES_DDL = """
create table if not exists quality_checked_files (
    file_hash  varchar,       -- ingest_ledger.file_hash
    run_id     varchar,
    checked_at timestamp
)
"""


# What a delivery's name may show of itself in Data Docs keys and pages: great-expectations writes
# a suite's name into its HTML unescaped, so a folder named `2026-10-21<img src=x onerror=…>` ran its
# script in every page that named it (a security probe); and its keys may not hold '/'.
_DOCS_KEY_UNSAFE = re.compile(r"[^0-9A-Za-z\u4e00-\u9fff_.-]")


def _docs_key(con, delivery: str) -> str:
    """The delivery's name as shown (mask_folder_name: one named after a person masked) with every
    character outside letters, digits, Chinese characters and `_.-` written `_` — and, where any
    was, a short hash, so that two never share: of the name, or — where it was masked — of the
    name as shown and the content hash of the delivery's first file (two names masked alike, 张三 and
    张四 of one region and last four digits, stopped the night; a hash of the name itself gives the
    masked digits back to anyone who tries them all)."""
    shown = mask_folder_name(delivery)
    safe = _DOCS_KEY_UNSAFE.sub("_", shown)
    if safe == delivery:
        return safe
    told = delivery if shown == delivery else shown + "\0" + str(scalar(
        con, "select min(file_hash) from ingest_ledger where delivery = $d", {"d": delivery}))
    return f"{safe}-{hashlib.sha256(told.encode('utf-8')).hexdigest()[:8]}"


def ensure_quality_schema(con: duckdb.DuckDBPyConnection) -> None:
    # (a store from before quality_checked_files gets it filled when opened: store_migrations)
    con.execute(QUALITY_DDL)
    con.execute(QUALITY_FILES_DDL)


def _frame_sql(kind: str, sampled: bool, files: list[str]) -> str:
    """The rows of the delivery's files not checked yet, without personal data, plus derived flags
    the suite checks. A sampled delivery (more than SAMPLE_ROWS such rows) is sampled first and only
    the sample's flags computed: a province's first payments delivery is 60 million rows."""
    spec = X.EXTRACTS[kind]
    keep = [c.name for c in spec.columns if c.name not in PERSONAL]
    for col in OPTIONAL_FILLED.get(kind, {}):
        applies = FILLED_ONLY_WHERE.get((kind, col))
        keep.append(f"({col} is not null{f' or not ({applies})' if applies else ''}) as has_{col}")
    keep += [f"coalesce({condition}, false) as {flag}" for flag, condition in CONSISTENT.get(kind, {}).items()]
    rows = f"_delivery = $delivery and {of_files(files)}"
    delivered = f"select * from {kind} where {rows}"
    if sampled:
        # The sample is drawn on the rows' positions, then its rows read (a reservoir of whole rows
        # copied every column of 5.7 million: 4.3 s against 0.5 s). USING SAMPLE applies before a
        # WHERE of the same select, hence the inner select.
        delivered = f"""
            select * from {kind} where {rows} and rowid in (
                select rowid from (select rowid from {kind} where {rows})
                using sample reservoir({SAMPLE_ROWS} rows) repeatable (7))"""
    if kind != "payments":
        return f"with delivered as ({delivered}) select {', '.join(keep)} from delivered"
    # Months since the same stream's latest earlier period (1 = continuous), from every delivery's
    # rows so that a new month is compared with last month's payment; for the delivered (or
    # sampled) recurring rows only — a window over the whole payments history took 2 of the 10
    # minutes of a province's first night, and as long again every month.
    keep += ["period_gap", "coalesce(s.amount_in_line, true) as amount_in_line",
             "coalesce(not s.stored_under_another_id, true) as not_stored_under_another_id",
             # a month reversed beyond what it was paid (a 冲正 given twice) hides the month from every
             # rule, a real suspect's included (a data-drift probe)
             "coalesce(s.month_net_not_negative, true) as month_net_not_negative"]
    month = "(cast(left({0}, 4) as int) * 12 + cast(right({0}, 2) as int))"
    earlier = "h.period < d.period"
    return f"""
        with delivered as ({delivered}),
        previous as (
            select d.payment_id as _pid,
                   {month.format('any_value(d.period)')} - {month.format(f'max(h.period) filter ({earlier})')}
                   as period_gap,
                   any_value(d.amount) <= {AMOUNT_JUMP} * max(h.amount) filter ({earlier} and h.amount > 0)
                   or any_value(d.amount) <= 0 as amount_in_line,
                   -- the same payment (month, day, amount) stored from another delivery under another id
                   -- (two of one delivery may be two payments; deliveries read the same night are
                   -- each told — their names are no order of arrival, a `backload` folder sorts last)
                   bool_or(h.period = d.period and h.paid_on = d.paid_on and h.amount = d.amount
                           and h.payment_id <> d.payment_id and h._delivery <> d._delivery)
                   as stored_under_another_id,
                   -- a reversal (a row below zero) beyond what was paid, over every row stored (not by
                   -- delivery names, which are no order of arrival: a back-load folder `backload` sorts
                   -- after `2026-11-21` — its payment was left out, a regression probe): of a month paid,
                   -- beyond that month; of a month not paid (a reversal booked to the month it was made
                   -- in), beyond the stream's months up to it. The payment it meets is not at fault.
                   any_value(d.amount) >= 0 or (
                       (not bool_or(h.period = d.period and h.amount > 0)
                        or sum(h.amount) filter (h.period = d.period) >= 0)
                       and sum(h.amount) >= 0)
                   as month_net_not_negative
            from delivered d
            join payments h on h.person_id = d.person_id and h.insurance_type = d.insurance_type
                           and h.item = d.item and h.period <= d.period
            where d.item not in ({", ".join(f"'{i}'" for i in X.ONE_OFF_ITEMS)})
            group by d.payment_id
        )
        select {", ".join(keep)} from delivered p left join previous s on s._pid = p.payment_id
    """


def _delivery_frame(con, kind: str, delivery: str, files: list[str] | None = None):
    """(frame, rows it stands for): the rows of the delivery's files given (default: all its files
    of the kind), sampled above SAMPLE_ROWS."""
    if files is None:
        files = _files(con, kind, delivery)
    rows = scalar(con, f"select count(*) from {kind} where _delivery = $delivery and {of_files(files)}",
                  {"delivery": delivery})
    frame = con.execute(_frame_sql(kind, rows > SAMPLE_ROWS, files), {"delivery": delivery}).df()
    # A value outside its code list is free text a clerk typed, and may hold a name or an ID number
    # (补发 + a name): the Data Docs and warnings show its first character only. The counts do not
    # change — a masked value is as far outside the list as the value was.
    for col, codes in CODE_SETS.items():
        if col in frame.columns:
            outside = frame[col].notna() & ~frame[col].isin(codes)  # the few values to mask, not every row
            if outside.any():
                frame.loc[outside, col] = frame.loc[outside, col].map(lambda v: mask_name(str(v)))
    # An ID number delivered as an agency code (registered or not) is shown masked, as on the
    # province's pages; the register's codes are masked alike (_suite), so the check's verdict holds.
    if "agency_code" in frame.columns:
        masked = {c: mask_agency_code(c) for c in frame["agency_code"].dropna().unique()}
        masked = {c: m for c, m in masked.items() if m != c}
        if masked:
            frame["agency_code"] = frame["agency_code"].replace(masked)
    return frame, rows


@dataclass(frozen=True)
class IdCounts:
    """The exact figures of the ID-number check where its frame is scaled down."""
    rows: int       # rows delivered: accepted + refused for their ID number
    refused: int
    frame_rows: int


def _id_validity_frame(con, files: list[str], added: int):
    """(frame, exact counts or None): one flag per delivered row of these files — did its ID number
    pass? The `added` rows they accepted (ingest_ledger.rows_accepted: also those a later delivery
    has since replaced) against the rows rejected_rows refused for their ID number.

    Above SAMPLE_ROWS rows the frame is scaled to SAMPLE_ROWS rows of the same share, rounded so
    that great-expectations decides as the exact counts do: a province's first payments delivery,
    60 million flags, took 7 s and 2.6 GB of pandas for one share. The exact counts are returned
    for the stored result and the warning."""
    import numpy as np
    import pandas as pd

    refused = int(scalar(con, f"""
        select count(*) from rejected_rows
        where {of_files(files, 'file_hash')} and column_name = 'person_id'
          -- the ID number itself refused, not a row set aside by its key (given twice in a file,
          -- or older than a stored one), which names person_id as its key's first column
          and reason like '公民身份号码%'"""))
    rows = int(added) + refused

    def flags(valid: int, invalid: int):
        return pd.DataFrame({"person_id_valid": np.concatenate([np.ones(valid, bool), np.zeros(invalid, bool)])})

    if rows <= SAMPLE_ROWS:
        return flags(int(added), refused), None
    n = SAMPLE_ROWS
    passes = _mostly(rows, refused)
    k = round(refused * n / rows)
    k = min(max(k, 1 if refused else 0), n if refused == rows else n - 1)
    while _mostly(n, k) != passes:  # at most a step or two across the threshold
        k += 1 if not passes else -1
    return flags(n - k, k), IdCounts(rows, refused, n)


def _mostly(rows: int, unexpected: int) -> bool:
    """great-expectations' own test of `mostly` (expectation._mostly_success), as floats."""
    return (float(rows) - float(unexpected)) / float(rows) >= ID_VALID_SHARE


def _files(con, kind: str, delivery: str, unchecked: bool = False) -> list[str]:
    """The ingested files of a delivery's kind (those no check has seen, with `unchecked`)."""
    return [h for (h,) in con.execute(
        f"""select file_hash from ingest_ledger where extract = $kind and delivery = $delivery
            {'and file_hash not in (select file_hash from quality_checked_files)' if unchecked else ''}
            order by file_hash""", {"kind": kind, "delivery": delivery}).fetchall()]


def _rows_added(con, kind: str, delivery: str) -> int:
    """The rows a delivery of a kind added, over all its files (whichever night each came)."""
    return scalar(con, "select coalesce(sum(rows_accepted), 0) from ingest_ledger where extract = $k and delivery = $d",
                  {"k": kind, "d": delivery})


def _previous_rows(con, kind: str, delivery: str) -> int | None:
    """The rows the last earlier delivery of the same kind that added any had added: what this
    delivery's rows added are counted against (rows refused are in neither; the rows delivered,
    refused ones included, were compared with the rows stored — 8 stored of 20 delivered warned
    against another 20). A delivery whose every row was refused is no measure of the next one."""
    return scalar(
        con,
        """
        select rows from (
            select delivery, sum(rows_accepted) as rows from ingest_ledger
            where extract = $kind and delivery < $delivery group by delivery having sum(rows_accepted) > 0)
        order by delivery desc limit 1
        """,
        {"kind": kind, "delivery": delivery},
    )


def _row_count_suite(gx, previous_rows: int):
    """For a one-row frame of the delivery's rows added (`rows_added`): the ledger's count, exact
    also where the other checks see a sample, or rows a later delivery replaced, or none at all."""
    low, high = ROW_COUNT_BAND
    suite = gx.ExpectationSuite(name="rows")
    # 0.5× of 13 is 6.5: 6 rows are below it (ceil), 26.5 rows cannot be (floor)
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(
        column=ROWS_ADDED, min_value=math.ceil(previous_rows * low), max_value=math.floor(previous_rows * high)))
    return suite


def _registered_agencies(con) -> list[str]:
    """The agency codes of the `agencies` register (none delivered: nothing to check against)."""
    return [c for (c,) in con.execute("select distinct agency_code from agencies where agency_code is not null "
                                      "order by agency_code").fetchall()]


def _suite(gx, kind: str, frame, registered: list[str] | None = None):
    E = gx.expectations
    out = []
    if registered and kind != "agencies" and "agency_code" in frame.columns:
        # a code no register lists: a typo, a full-width code or an agency abolished — its suspects
        # went to a worklist of an agency without a name, the region's parameters passed over
        out.append(E.ExpectColumnValuesToBeInSet(column="agency_code",
                                                 value_set=list(dict.fromkeys(map(mask_agency_code, registered)))))
    spec = X.EXTRACTS[kind]
    for col in spec.key:
        if col not in PERSONAL:
            out.append(E.ExpectColumnValuesToNotBeNull(column=col))
    for col, share in OPTIONAL_FILLED.get(kind, {}).items():
        out.append(E.ExpectColumnValuesToBeInSet(column=f"has_{col}", value_set=[True], mostly=share))
    for col, codes in CODE_SETS.items():
        if col in frame.columns:
            out.append(E.ExpectColumnValuesToBeInSet(column=col, value_set=list(codes)))
    for flag in CONSISTENT.get(kind, {}):
        out.append(E.ExpectColumnValuesToBeInSet(column=flag, value_set=[True]))
    if kind in AMOUNT_RANGES:
        low, high = AMOUNT_RANGES[kind]
        out.append(E.ExpectColumnValuesToBeBetween(column="amount", min_value=low, max_value=high, mostly=0.999))
    if kind == "payments":
        out.append(E.ExpectColumnValuesToBeBetween(column="period_gap", min_value=0, max_value=1,
                                                   mostly=PERIOD_CONTINUITY_SHARE))
        for flag, share in STREAM_FLAGS.items():
            out.append(E.ExpectColumnValuesToBeInSet(column=flag, value_set=[True], mostly=share))
    suite = gx.ExpectationSuite(name=kind)
    for expectation in out:
        suite.add_expectation(expectation)
    return suite


def _context(gx, docs_dir: Path):
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    for name in list(context.variables.data_docs_sites or {}):
        context.delete_data_docs_site(name)
    context.add_data_docs_site(
        "fundwatch",
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


def _describe(result, rows_added: int) -> tuple[str, str | None, dict]:
    cfg = result.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
    if kwargs.get("column") == ROWS_ADDED:  # the delivery's row count, as the table's (in whole rows)
        band = {k: int(kwargs[k]) for k in ("min_value", "max_value")}
        return ROW_COUNT, None, {"kwargs": band, "observed": {"observed_value": rows_added}}
    observed = {k: result.result.get(k) for k in
                ("observed_value", "element_count", "missing_count", "unexpected_count", "unexpected_percent",
                 "partial_unexpected_list") if k in result.result}
    if isinstance(observed.get("unexpected_percent"), float):  # 5.769230769230769 reads like a number to mask
        observed["unexpected_percent"] = round(observed["unexpected_percent"], 3)
    return cfg.type, kwargs.get("column"), {"kwargs": kwargs, "observed": observed}


def _exact_id_counts(detail: dict, counts: IdCounts) -> dict:
    """The scaled ID frame's result with the exact counts it stands for (the Data Docs show the
    scaled frame: the same share, the same verdict)."""
    observed = dict(detail["observed"], element_count=counts.rows, unexpected_count=counts.refused,
                    unexpected_percent=round(100 * counts.refused / counts.rows, 3), frame_rows=counts.frame_rows)
    return dict(detail, observed=observed)


def _warning(delivery: str, kind: str, expectation: str, column: str | None, detail: dict) -> str:
    obs = detail["observed"]
    what = f"{kind}.{column}" if column else kind
    if "unexpected_count" in obs:
        found = f"{obs['unexpected_count']} of {obs.get('element_count')} rows unexpected"
        sample = obs.get("partial_unexpected_list") or []
        if sample and (column in CODE_SETS or column == "agency_code"):
            found += f" (e.g. {', '.join(dict.fromkeys(map(str, sample)))})"
    else:
        found = f"observed {obs.get('observed_value')}"
        kwargs = detail["kwargs"]
        if "min_value" in kwargs or "max_value" in kwargs:  # say what was expected, not only what was seen
            found += f", expected {kwargs.get('min_value', '')}–{kwargs.get('max_value', '')}"
            if expectation == ROW_COUNT:
                low, high = ROW_COUNT_BAND
                found += f" ({low:g}×–{high:g}× the previous delivery's rows)"
    return f"{mask_folder_name(delivery)} {what}: {expectation} failed, {found}"


# What the dashboard says of a failed check, in words a leader reads (the Data Docs keep the
# expectation's own terms): the check, the field by its Chinese header, what was found.
_CONSISTENT_WORDS = {"custody_end_not_before_start": "出监日期不早于入监日期",
                     "cremated_not_before_death": "火化日期不早于死亡日期",
                     "death_not_after_delivery": "死亡日期不晚于本批交付日期",
                     "paid_not_after_delivery": "发放日期不晚于本批交付日期",
                     "amount_in_line": f"金额不超过同一待遇（同一人、险种、项目）此前最高一笔的 {AMOUNT_JUMP} 倍（疑为以分代元）",
                     "not_stored_under_another_id": "不与已入库的另一发放流水号重复（同一人、险种、项目、所属期、发放日期、金额；疑为流水号重编）",
                     "month_net_not_negative": "同一待遇同一所属期的发放净额不为负（冲正不超过原发放）"}
# what the console's line adds to a failed flag's GX terms: what it likely means
_FLAG_HINTS = {"death_not_after_delivery": "death dates after the day the delivery is named for",
               "paid_not_after_delivery": "payments dated after the day the delivery is named for",
               "amount_in_line": f"amounts over {AMOUNT_JUMP}× the most the same stream (person, insurance type, "
                                 "item) was paid in an earlier month — amounts in 分 (fen) for 元?",
               "not_stored_under_another_id": "payments already stored from another delivery under another "
                                              "payment_id (same person, insurance type, item, period, date, amount) "
                                              "— payment ids re-keyed by a system change?",
               "month_net_not_negative": "rows of a stream's month (person, insurance type, item, period) whose "
                                         "payments net below zero — a reversal larger than what was paid, or "
                                         "given twice?"}
_RANGE_WORDS = {"amount": "金额在合理范围内", "period_gap": "待遇所属期逐月连续"}
_RANGE_UNITS = {"amount": " 元", "period_gap": " 个月（相邻两期）"}


def _by_agency(frame, flag: str) -> str:
    """The agencies whose rows fail a flag, most first (codes as the frame shows them: masked where
    an ID number was delivered as one)."""
    if "agency_code" not in frame.columns:
        return ""
    counts = frame.loc[~frame[flag].astype(bool), "agency_code"].fillna("(none)").value_counts()
    shown = ", ".join(f"{code} {n:,}" for code, n in counts.head(5).items())
    more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
    return f" (rows by agency: {shown}{more})" if shown else ""


def _field_words(kind: str, column: str | None) -> str:
    if not column or column in _CONSISTENT_WORDS:
        return ""  # (the check names both fields)
    name = {"period_gap": "period", "person_id_valid": "person_id"}.get(column, column.removeprefix("has_"))
    extract = X.EXTRACTS.get(kind)
    return f"{extract.column(name).alias}（{name}）" if extract and name in extract.names else column


def _percent(share: float) -> str:
    """A check's threshold as written (99.5%, not 100%; 0.1%), to two places at most: beside a share
    shown to two places, a failed check never reads as within what it allows."""
    return f"{round(share * 100, 2):g}%"


def _number(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def extract_words(kind: str) -> str:
    extract = X.EXTRACTS.get(kind)
    return f"{extract.title}（{kind}）" if extract else kind


def described(kind: str, expectation: str, column: str | None, detail: dict | str | None) -> tuple[str, str, str]:
    """(检查项, 字段, 说明) of a failed check as the dashboard shows them, in Chinese: a leader read
    `expect_table_row_count_to_be_between` and `{"kwargs": {"min_value": 5521, …}}` there."""
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            detail = None
    detail = detail if isinstance(detail, dict) else {}
    obs = detail.get("observed") or {}
    kwargs = detail.get("kwargs") or {}
    mostly = kwargs.get("mostly") if isinstance(kwargs.get("mostly"), (int, float)) else None
    if expectation == ROW_COUNT:
        check = "本批行数"
    elif expectation == "rows_left_to_check":
        added = detail.get("rows_accepted")
        return ("可检查的行", "", f"本批入库的 {added:,} 行已全部被当晚稍后读入的一批替换，无行可查"
                if isinstance(added, int) else "本批入库的行已全部被当晚稍后读入的一批替换，无行可查")
    elif column == "person_id_valid":
        check = f"公民身份号码校验通过率不低于 {_percent(mostly)}" if mostly is not None else "公民身份号码校验通过"
    elif expectation == "expect_column_values_to_not_be_null":
        check = "不为空"
    elif column in _CONSISTENT_WORDS:
        check = _CONSISTENT_WORDS[column]
    elif column and column.startswith("has_"):
        check = f"填写率不低于 {_percent(mostly)}" if mostly is not None else "已填写"
    elif column == "agency_code" and expectation == "expect_column_values_to_be_in_set":
        check = "经办机构编码在经办机构登记表内"
    elif expectation == "expect_column_values_to_be_in_set":
        check = "取值在代码表内"
    elif column in _RANGE_WORDS:
        check = _RANGE_WORDS[column]
    else:
        check = expectation
    if "unexpected_count" in obs:
        n, of = obs.get("unexpected_count"), obs.get("element_count")
        # (a not-null check's unexpected rows are the empty ones: its share is of every row)
        missing = 0 if expectation == "expect_column_values_to_not_be_null" else obs.get("missing_count")
        share = obs.get("unexpected_percent")
        if isinstance(of, int) and isinstance(n, int) and isinstance(missing, int) and 0 <= n <= of - missing:
            # GX's share is of the rows with a value (a stream's first period has no gap): the count
            # it is of said so, and the share worked from the two numbers shown (122 of 1,000 read 12.3 %)
            base = of - missing
            said = f"{base:,} 行{'（有值的）' if missing else ''}中 {n:,} 行不符" + (f"（{n / base:.2%}）" if base else "")
        elif isinstance(of, int) and isinstance(n, int) and isinstance(share, (int, float)) and share == share:
            # stored before the empty rows were counted: GX's own share, of the rows with a value
            said = f"{of:,} 行中 {n:,} 行不符（占有值的行 {share / 100:.2%}）"
        elif isinstance(of, int) and isinstance(n, int) and 0 <= n <= of:
            said = f"{of:,} 行中 {n:,} 行不符" + (f"（{n / of:.2%}）" if of else "")
        else:
            said = f"{n} 行不符"
        if column in _RANGE_WORDS and ("min_value" in kwargs or "max_value" in kwargs):
            said += (f"；应在 {_number(kwargs.get('min_value'))}–{_number(kwargs.get('max_value'))}{_RANGE_UNITS[column]}"
                     + (f"，允许至多 {_percent(1 - mostly)} 的行在外" if mostly is not None and 0 <= mostly <= 1 else ""))
        sample = [str(v) for v in obs.get("partial_unexpected_list") or []]
        if sample and (column in CODE_SETS or column == "agency_code"):
            said += "，如 " + "、".join(list(dict.fromkeys(sample))[:5])
    else:
        value = obs.get("observed_value")
        said = (f"本批 {_number(value)} 行" if expectation == ROW_COUNT else
                f"实际为 {_number(value)}" if value is not None else "详见数据质量报告（Data Docs）")
        if value is not None and ("min_value" in kwargs or "max_value" in kwargs):
            said += f"，应在 {_number(kwargs.get('min_value'))}–{_number(kwargs.get('max_value'))}"
            if expectation == ROW_COUNT:
                said += f" 行之间（上一批的 {ROW_COUNT_BAND[0]:g}–{ROW_COUNT_BAND[1]:g} 倍）"
            else:
                said += " 之间"
    return check, _field_words(kind, column), said


def check_deliveries(
    con: duckdb.DuckDBPyConnection,
    deliveries: list[str],
    out_dir: str | Path,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> QualityReport:
    """Validate each delivery's newly ingested rows, extract by extract; store results; build Data Docs."""
    # great-expectations' modules route every warning into logging as they are imported
    # (logging.captureWarnings): the night's later warnings (no holiday notice for 2027) came out in
    # Prefect's log format on a night that read files, in fundwatch's on one that did not (a probe of
    # serve left running). Warnings are shown as before once the checks are done.
    shown = warnings.showwarning
    try:
        return _check_deliveries(con, deliveries, out_dir, run_id, progress, shown)
    finally:
        logging.captureWarnings(False)
        warnings.showwarning = shown


def _check_deliveries(con, deliveries: list[str], out_dir: str | Path, run_id: str | None,
                      progress: Callable[[str], None] | None, shown) -> QualityReport:
    started = time.monotonic()
    ensure_quality_schema(con)
    report = QualityReport()
    if not deliveries:
        return report
    # No telemetry from an offline machine; GE would otherwise try to reach its analytics host.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.validator.validator  # noqa: F401 — imported with the modules that capture warnings
    import pandas as pd

    # ...so that they are shown as fundwatch shows them during the checks too (the first night of a
    # `demo` showed a warning raised in them in Prefect's format, the second in fundwatch's)
    logging.captureWarnings(False)
    warnings.showwarning = shown

    # GX sets INFO on its own module loggers and announces each temporary docs site; the run
    # summary already says where Data Docs are.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)
    docs_dir = Path(out_dir).resolve() / "data_docs"  # great-expectations wants an absolute folder
    docs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    context = _context(gx, docs_dir)
    source = context.data_sources.add_pandas("deliveries")
    rows_out = []
    seen: list[str] = []  # the files checked tonight
    registered = _registered_agencies(con)
    for delivery in deliveries:
        docs_key = _docs_key(con, delivery)  # (once a delivery: its suites' names, a query for a masked one)
        for kind in X.EXTRACTS:
            files = _files(con, kind, delivery, unchecked=True)
            if not files:
                continue
            seen += files
            added = scalar(con, f"select coalesce(sum(rows_accepted), 0) from ingest_ledger where {of_files(files, 'file_hash')}")
            if added and not scalar(con, f"select count(*) > 0 from {kind} where _delivery = $d and {of_files(files)}",
                                    {"d": delivery}):
                # files whose rows a later delivery read the same night replaced, every one: said,
                # not skipped without a word (their rows are no longer there to check)
                report.checked += 1
                report.warnings.append(f"{mask_folder_name(delivery)} {kind}: all {added} row(s) it added were "
                                       "replaced by a later "
                                       "delivery read the same night; none of its rows is left to check")
                rows_out.append((run_id, delivery, kind, "rows_left_to_check", None, False,
                                 json.dumps({"rows_accepted": int(added), "rows_left": 0})))
                continue
            if progress:
                progress(f"quality {mask_folder_name(delivery)} {kind}")
            # Files whose every row was refused are checked too, on no rows: their row count and ID
            # numbers say what went wrong, where silence would say nothing did.
            frame, _ = _delivery_frame(con, kind, delivery, files)
            checks = [(kind, frame, _suite(gx, kind, frame, registered))]
            rows_added = _rows_added(con, kind, delivery)
            previous = _previous_rows(con, kind, delivery)
            if previous:
                checks.insert(0, (f"{kind}_rows", pd.DataFrame({ROWS_ADDED: [rows_added]}),
                                  _row_count_suite(gx, previous)))
            id_counts = None
            if "person_id" in X.EXTRACTS[kind].names:
                ids, id_counts = _id_validity_frame(con, files, added)
                suite = gx.ExpectationSuite(name=f"{kind}_ids")
                suite.add_expectation(gx.expectations.ExpectColumnValuesToBeInSet(
                    column="person_id_valid", value_set=[True], mostly=ID_VALID_SHARE))
                checks.append((f"{kind}_ids", ids, suite))
            for name, data, suite in checks:
                suite.name = f"{name}.{docs_key}"
                asset = source.add_dataframe_asset(suite.name)
                batch = asset.add_batch_definition_whole_dataframe("delivery")
                suite = context.suites.add(suite)
                definition = context.validation_definitions.add(
                    gx.ValidationDefinition(name=suite.name, data=batch, suite=suite))
                checkpoint = context.checkpoints.add(gx.Checkpoint(
                    name=suite.name, validation_definitions=[definition],
                    actions=[], result_format="SUMMARY"))
                result = checkpoint.run(batch_parameters={"dataframe": data})
                for validation in result.run_results.values():
                    for r in validation.results:
                        expectation, column, detail = _describe(r, rows_added)
                        if column == "person_id_valid" and id_counts:
                            detail = _exact_id_counts(detail, id_counts)
                        report.checked += 1
                        if not r.success:
                            line = _warning(delivery, kind, expectation, column, detail)
                            if column in _FLAG_HINTS:
                                line += f": {_FLAG_HINTS[column]}{_by_agency(data, column)}"
                            report.warnings.append(line)
                        rows_out.append((run_id, delivery, kind, expectation, column, bool(r.success),
                                         json.dumps(detail, ensure_ascii=False, default=str)))
    with transaction(con):  # results and the files they cover, or neither (a kill between: checked again)
        if rows_out:
            con.executemany(
                "insert into quality_results values (?, ?, ?, ?, ?, ?, ?, current_timestamp)", rows_out)
        if seen:
            con.executemany("insert into quality_checked_files values (?, ?, current_timestamp)",
                            [(h, run_id) for h in seen])
    try:
        with _zone_tzlocal_knows():
            context.build_data_docs()
        report.docs = docs_dir / "index.html"
    except Exception as exc:  # Data Docs are a convenience; the results are already stored
        report.warnings.append(f"Data Docs not built: {exc}")
    else:
        _remove_empty_folders(docs_dir)
        # great-expectations logs a page it could not write (a full disk) and goes on: say so
        unwritten = unwritten_pages(docs_dir)
        if unwritten:
            report.warnings.append(f"Data Docs incomplete: {len(unwritten)} page(s) under {docs_dir} are empty, "
                                   f"e.g. {unwritten[0].name} (a full disk, or an error `--verbose` shows); the "
                                   "results are in quality_results")
    report.seconds = time.monotonic() - started
    return report


@contextlib.contextmanager
def _zone_tzlocal_knows() -> Iterator[None]:
    """TZ as a POSIX string (`CST-8`, `UTC0`: common on Chinese servers) is refused by tzlocal,
    which great-expectations asks for the local zone while it renders each page — every page was
    left empty. While the pages are built such a TZ is China's zone by name (the same offset for
    CST-8; the pages' times are China's, as the store's are); any other TZ is left as it is."""
    zone = os.environ.get("TZ")
    if not zone or is_zone_name(zone.removeprefix(":")):
        yield
        return
    os.environ["TZ"] = CHINA_TZ
    time.tzset()
    try:
        yield
    finally:
        os.environ["TZ"] = zone
        time.tzset()


def _remove_empty_folders(docs_dir: Path) -> None:
    """great-expectations removes an earlier night's validation pages from the site but not their
    folders (validations/<suite>/<delivery>/__none__/<time>/): a year of nights left 2,822 empty
    folders, every night's walk of the site slower (a probe of a year of nights)."""
    for folder in sorted((p for p in docs_dir.rglob("*") if p.is_dir() and not p.is_symlink()),
                         key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty (rmdir refuses), or gone
            folder.rmdir()


def unwritten_pages(docs_dir: Path) -> list[Path]:
    """Data Docs pages left empty."""
    return sorted(p for p in Path(docs_dir).rglob("*.html") if p.is_file() and p.stat().st_size == 0)


def unvalidated_deliveries(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Deliveries with a file no check has seen: a night killed between the ingest's commit and the
    end of its checks left them so, and the next night ingests nothing new from them — they are
    checked then, or their data-quality report would never exist."""
    ensure_quality_schema(con)
    return [d for (d,) in con.execute("""
        select distinct delivery from ingest_ledger
        where file_hash not in (select file_hash from quality_checked_files)
        order by delivery""").fetchall()]

