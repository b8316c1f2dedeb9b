"""The DuckDB store: one file holding extracts, the ingest ledger, suspects and their history.

Every module receives a connection from here; none opens its own. The schema is created
idempotently on connect, so an old store opened by a newer fundwatch gains any new tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import duckdb

from .clock import CHINA_TZ, china_now
from .extracts import EXTRACTS, SENDER_COLUMNS, SQL_TYPES
from .normalise import ACCOUNT_GROUPED, ACCOUNT_SEPARATOR, FORMAT_CHARACTERS, TEXT_MARK

# Bookkeeping columns every extract table carries: where each row came from.
LINEAGE_COLUMNS = (
    ("_source_file", "VARCHAR"),
    ("_row_number", "BIGINT"),
    ("_delivery", "VARCHAR"),
    ("_file_hash", "VARCHAR"),
)

CASEWORK_DDL = """
create table if not exists ingest_ledger (
    file_hash      varchar primary key,  -- sha256 of the file's bytes: a file seen before is skipped
    source_file    varchar not null,
    delivery       varchar,
    extract        varchar,
    rows_total     bigint,
    rows_accepted  bigint,
    rows_rejected  bigint,
    rows_replaced  bigint,              -- accepted rows that replaced an earlier delivery's row
    ingested_at    timestamp,
    run_id         varchar
);
-- 被替换的记录: a stored extract row a later delivery replaced (same natural key), as it was: what a
-- suspect's evidence, an agency's answer or a recovery rested on stays on record after a corrected
-- re-delivery, with the file and row it came from
create table if not exists replaced_rows (
    extract      varchar,
    row          json,                  -- every column as stored, its lineage (_source_file, _row_number, _delivery, _file_hash) too
    replaced_by  varchar,               -- the sha256 of the file whose row replaced it
    replaced_at  timestamp
);
-- 再次报送的同一文件: a file whose bytes came before, sent again under another name or in another
-- delivery (skipped: its rows are stored) — a sender that sends the same file ("nothing today", a
-- header alone) is still sending: 数据报送 counts it (arrivals.py)
create table if not exists ingest_copies (
    file_hash    varchar not null,       -- the ledger's file of the same bytes
    source_file  varchar not null,
    delivery     varchar,
    extract      varchar,
    seen_at      timestamp,             -- the first night it was seen
    run_id       varchar,
    primary key (source_file, file_hash)
);
-- 报送方: per file of an extract several send (extracts.SENDER_COLUMNS), the senders it brought rows
-- of keys new to the store of (a row sent again, changed or not, as in a cumulative re-export, is no news)
create table if not exists ingest_senders (
    file_hash  varchar not null,
    extract    varchar,
    sender     varchar,
    new_rows   bigint
);
create table if not exists rejected_rows (
    extract      varchar,
    source_file  varchar,
    row_number   bigint,               -- 1-based data row (the header is row 0)
    column_name  varchar,
    reason       varchar,
    raw          varchar,               -- the row as delivered, JSON of header -> text
    file_hash    varchar,
    delivery     varchar,
    rejected_at  timestamp
);
create table if not exists suspects (
    suspect_id        varchar primary key,
    rule_id           varchar not null,
    subject           varchar not null,  -- person_id, payment_id, txn_id or bank_account
    person_id         varchar,
    agency_code       varchar,
    period_from       varchar,           -- YYYYMM
    period_to         varchar,
    amount            decimal(18,2),     -- 涉及金额
    status            varchar not null,  -- 待下发/已下发/核查中/已移送/已销号/已重开
    first_detected_on date,
    last_detected_on  date,
    evidence          json,
    outcome           varchar,           -- 核实结果 (1..7 with its text)
    recovered_amount  decimal(18,2),     -- 追回金额
    closed_on         date,
    -- casework (CONTRACT §5)
    name              varchar,
    severity          varchar,
    issued_on         date,              -- 下发日期 (a reopened suspect's: its re-issue)
    deadline          date,              -- 核查期限
    verified_on       date,              -- 核实日期
    verification_note varchar,           -- 核实说明
    overdue           boolean default false,  -- 逾期
    escalated         boolean default false,  -- 挂牌督办
    major_class       varchar,           -- 要情 / 重大要情 / 重大要情（报部）
    report_due        date,
    verified_amount   decimal(18,2),     -- 涉及金额 when the last answer was applied: the verified loss
    class_verified_on date,              -- the verification the 要情 class (and its report date) comes from
    -- what it was when last closed (已销号): new evidence after the closing is measured against it,
    -- not against the amount and span the nights since have moved it to
    closed_amount      decimal(18,2),
    closed_period_from varchar,
    closed_period_to   varchar
);
create table if not exists suspect_events (
    suspect_id  varchar not null,
    happened_at timestamp not null,
    event       varchar not null,        -- detected/updated/reopened/issued/returned/closed/transferred/overdue/escalated/...
    detail      json,
    run_id      varchar
);
create table if not exists runs (
    run_id      varchar primary key,
    command     varchar,
    started_at  timestamp,
    finished_at timestamp,
    as_of       date,
    status      varchar,                 -- running/completed/failed
    summary     json
);
create table if not exists audit_log (
    happened_at timestamp,
    actor       varchar,                 -- OS user running fundwatch
    action      varchar,                 -- export_worklist/export_summary/apply_return/...
    file        varchar,
    file_hash   varchar,
    agency_code varchar,
    suspect_ids json,
    detail      json
);
-- 疑点规则 as the nights ran them: a worklist, the dashboard or a notebook names the suspects of an
-- office's own rule (config `rule_folders`) even where that config is not given
create table if not exists rule_catalogue (
    rule_id     varchar primary key,
    title       varchar,
    basis       varchar,                 -- 政策依据
    rule_file   varchar,                 -- the file it was read from
    recorded_on date                     -- the as-of of the last night that loaded it
);
-- Suspects a return changed whose 要情 class and flags are not yet recomputed: written with the
-- answers, removed by casework.refresh. A returns run killed between the two recomputes them when
-- run again (the workbook itself is then already on record and changes nothing).
create table if not exists casework_pending (
    suspect_id  varchar primary key
);
"""

# 台账行: what each export issued, a row per suspect (worklists.py writes them, returns.py checks a
# returned sheet against them), read through the view worklist_rows. The text of a row's locked
# cells is stored once per content, by its md5: a suspect still open is issued again every night
# with the same cells, and a row a night holding them whole was nearly all of a store that had run a
# year (1.97 million rows, 0.97 of its 1.25 GB, 86,140 contents among them).
WORKLIST_DDL = """
create table if not exists worklist_rows_issued (
    export_id   varchar not null,  -- 台账编号 printed on the cover sheet
    suspect_id  varchar not null,
    agency_code varchar not null,
    row_number  integer,           -- the Excel row (header is row 1)
    file        varchar,
    as_of       date,
    exported_at timestamp,
    locked_md5  varchar,           -- its locked cells: worklist_locked_cells
    prefilled   json               -- column -> answer_text of each answer cell as issued (a 核查中 or
                                   -- 已重开 row carries the answer on record), null when issued empty
);
create table if not exists worklist_locked_cells (
    locked_md5  varchar not null,  -- md5 of `locked`'s text, one row a content
    locked      json               -- column -> canonical text of each locked cell as issued
)"""
WORKLIST_VIEW = """
create view worklist_rows as
select i.export_id, i.suspect_id, i.agency_code, i.row_number, i.file, i.as_of, i.exported_at,
       c.locked, i.prefilled
from worklist_rows_issued i left join worklist_locked_cells c on c.locked_md5 = i.locked_md5"""


def extract_table_ddl(kind: str) -> str:
    spec = EXTRACTS[kind]
    cols = [f"{c.name} {SQL_TYPES[c.type]}" for c in spec.columns]
    cols += [f"{n} {t}" for n, t in LINEAGE_COLUMNS]
    return f"create table if not exists {kind} ({', '.join(cols)})"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for kind in EXTRACTS:
        con.execute(extract_table_ddl(kind))
    for stmt in CASEWORK_DDL.split(";"):
        if stmt.strip():
            con.execute(stmt)
    # a store made before these columns existed (its closed suspects compared, its 要情 classed
    # as before)
    for column, kind in (("closed_amount", "decimal(18,2)"), ("closed_period_from", "varchar"),
                         ("closed_period_to", "varchar"), ("verified_amount", "decimal(18,2)"),
                         ("class_verified_on", "date"),
                         # the months (所属期) the last answer's sheet showed: what a recovery is for
                         ("answered_period_from", "varchar"), ("answered_period_to", "varchar"),
                         # the night it last reopened: its 挂牌督办 days count from there
                         ("reopened_on", "date"),
                         # the agency its latest finding names: where it is handed over to (suspects.py)
                         ("finding_agency", "varchar")):
        con.execute(f"alter table suspects add column if not exists {column} {kind}")
    con.execute("create table if not exists store_migrations (name varchar primary key, applied_at timestamp)")
    ensure_worklist_tables(con)


def ensure_worklist_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The tables of the worklists issued and their view worklist_rows — where a store older than
    them still holds the table worklist_rows, that table until _worklist_cells_once converts it."""
    for stmt in WORKLIST_DDL.split(";"):
        con.execute(stmt)
    if _worklist_rows_kind(con) is None:
        con.execute(WORKLIST_VIEW)


def _worklist_rows_kind(con: duckdb.DuckDBPyConnection) -> str | None:
    """'view' (this version's), 'table' (an older version's: every row's locked cells in it), None."""
    if table_exists(con, "worklist_rows"):
        return "table"
    if scalar(con, "select count(*) from duckdb_views() where view_name = 'worklist_rows' "
                   "and database_name = current_database()"):
        return "view"
    return None


# Until 2026-12-02 ingest stored a bank account as delivered; since then as its digits when it was
# written in groups or full-width (normalise.account_value: 6222-0212-3456-7890 -> 6222021234567890).
ACCOUNT_COLUMNS = (("beneficiaries", "bank_account"), ("payments", "bank_account"),
                   ("fund_transactions", "account_no"), ("fund_transactions", "counterparty_account"))
_MIGRATION_BATCH_ROWS = 1_000_000


def _account_digits_sql(column: str) -> tuple[str, str]:
    """(SQL: the column holds an account written in groups or full-width, SQL: its digits)."""
    grouped = f"regexp_matches({column}, '{_sql_text(ACCOUNT_GROUPED)}')"
    digits = (f"translate(regexp_replace({column}, '{_sql_text(ACCOUNT_SEPARATOR)}', '', 'g'), "
              "'０１２３４５６７８９', '0123456789')")
    return f"(not regexp_full_match({column}, '[0-9]+') and {grouped})", digits


def _accounts_as_digits(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: the accounts an older store holds as delivered become their digits, so that an
    account delivered before the change and after it is one account to the rules.

    In batches of rows, each committed (an UPDATE holds what it changed in memory until its commit:
    10 million rows in one did not fit a 300 MB limit); the conversion gives the same result when
    repeated, so a crash half-way only means the next start converts the rest. detect_state is cleared
    first (rows changed under files a night has seen: the next night detects in full) and the
    migration recorded last. A SHARED_BANK_ACCOUNT suspect whose subject was a grouped account takes
    the digits as its subject and keeps its id, status and answers (suspects.update_suspects finds a
    suspect by rule × subject) — unless two spellings of one account were two suspects, whose
    subjects are then left as they were."""
    if table_exists(con, "detect_state"):
        con.execute("delete from detect_state")
    for table, column in ACCOUNT_COLUMNS:
        grouped, digits = _account_digits_sql(column)
        rows = scalar(con, f"select coalesce(max(rowid) + 1, 0) from {table}")
        for first in range(0, rows, _MIGRATION_BATCH_ROWS):
            con.execute(f"update {table} set {column} = {digits} "
                        f"where rowid between {first} and {first + _MIGRATION_BATCH_ROWS - 1} and {grouped}")
    grouped, digits = _account_digits_sql("subject")
    with transaction(con):
        con.execute(f"""
            update suspects set subject = m.digits
            from (select suspect_id, {digits} as digits from suspects
                  where rule_id = 'SHARED_BANK_ACCOUNT' and {grouped}
                  qualify count(*) over (partition by {digits}) = 1) m
            where suspects.suspect_id = m.suspect_id
              and m.digits not in (select subject from suspects where rule_id = 'SHARED_BANK_ACCOUNT')""")
        con.execute("insert into store_migrations values ('accounts_as_digits', current_timestamp)")


def _clean_codes(con: duckdb.DuckDBPyConnection, migration: str, holds_one, cleaned) -> None:
    """The body of a conversion of the codes and accounts an older store holds as delivered into
    what ingest now reads: `holds_one(column, optional)` is SQL true where a stored value is to
    change, `cleaned(column, optional)` SQL for what it becomes (`optional`: the column may be
    empty, so a value of nothing but the character is NULL) — else the same payment delivered again as ingest now
    reads it would be stored beside its row and summed twice. Where two rows of a table share a
    natural key so cleaned, the later delivered one stands, as a re-delivery replaces: the other is
    deleted first, then the rest cleaned in committed batches — so that a crash anywhere only leaves
    the next start less to do. Suspects whose subject or agency held one take the cleaned text (two
    that become one are left as they were; the one no longer detected says so on its sheet), and so
    do the agencies of the worklists on record (a sheet issued before is still returned);
    detect_state is cleared: the next night detects in full."""
    for kind, spec in EXTRACTS.items():
        columns = {c.name: not c.required for c in spec.columns if c.code or c.type == "account"}
        if not columns:
            continue
        any_held = " or ".join(holds_one(c, optional) for c, optional in columns.items())
        if not scalar(con, f"select count(*) from {kind} where {any_held}"):
            continue
        if table_exists(con, "detect_state"):
            con.execute("delete from detect_state")
        key = ", ".join(cleaned(k, columns[k]) if k in columns else k for k in spec.key)
        # rows found by what they hold, not by rowids kept from an earlier statement; by the hash of
        # their key, which is one for an empty key part (employer_id) as the partition's grouping is
        con.execute(f"""
            delete from {kind} where rowid in (
                select rowid from (
                    select rowid, row_number() over (partition by {key}
                        order by _delivery desc nulls last, _source_file desc nulls last, _row_number desc nulls last) as n
                    from {kind}
                    where hash({key}) in (select hash({key}) from {kind} where {any_held}))
                where n > 1)""")
        last = scalar(con, f"select coalesce(max(rowid) + 1, 0) from {kind}")
        for first in range(0, last, _MIGRATION_BATCH_ROWS):  # committed batches, as _accounts_as_digits
            con.execute(f"update {kind} set {', '.join(f'{c} = {cleaned(c, o)}' for c, o in columns.items())} "
                        f"where rowid between {first} and {first + _MIGRATION_BATCH_ROWS - 1} and ({any_held})")
    with transaction(con):
        # (a subject or an agency is never empty: one of nothing but the character stays as it is)
        con.execute(f"""
            update suspects set subject = m.clean
            from (select suspect_id, rule_id, {cleaned("subject", False)} as clean from suspects
                  where {holds_one("subject", False)}
                  qualify count(*) over (partition by rule_id, {cleaned("subject", False)}) = 1) m
            where suspects.suspect_id = m.suspect_id
              and m.clean not in (select subject from suspects s where s.rule_id = m.rule_id)""")
        # (not audit_log: what was done is on record as it was done)
        for table in ("suspects", "worklist_rows", "worklist_rows_issued"):
            if table_exists(con, table):  # (worklist_rows: an older version's table)
                con.execute(f"update {table} set agency_code = {cleaned('agency_code', False)} "
                            f"where {holds_one('agency_code', False)}")
        con.execute(f"insert into store_migrations values ('{migration}', current_timestamp)")


def _codes_without_format_characters(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: the codes and accounts an older store holds with invisible format characters
    (ingest drops them since 2026-12-02) lose them. Only a text beyond ASCII can hold such a
    character: the others are not searched."""
    _clean_codes(
        con, "codes_without_format_characters",
        lambda c, _: f"(length({c}) <> strlen({c}) and regexp_matches({c}, '{FORMAT_CHARACTERS}'))",
        lambda c, _: f"regexp_replace({c}, '{FORMAT_CHARACTERS}', '', 'g')")


def _clean_terms(con: duckdb.DuckDBPyConnection, migration: str, holds: Callable[[str], str],
                 cleaned: Callable[[str], str]) -> None:
    """The body of a conversion of the listed words (Column.term: 待遇项目, 刑罚类型) an older store
    holds into what ingest now reads: `holds(column)` SQL true where one held a character ingest
    drops, `cleaned(column)` what it becomes, trimmed as ingest trims. A word that would become empty
    stays as it is (the column is never empty). Not part of a key; one transaction; the next night
    detects in full."""
    with transaction(con):
        for kind, spec in EXTRACTS.items():
            for c in (c.name for c in spec.columns if c.term):
                held = f"{holds(c)} and length({cleaned(c)}) > 0"
                if scalar(con, f"select count(*) from {kind} where {held}"):
                    if table_exists(con, "detect_state"):
                        con.execute("delete from detect_state")
                    con.execute(f"update {kind} set {c} = {cleaned(c)} where {held}")
        con.execute("insert into store_migrations values (?, current_timestamp)", [migration])


def _trimmed(text_sql: str) -> str:
    return f"regexp_replace({text_sql}, '^{_WHITE_SPACE}+|{_WHITE_SPACE}+$', '', 'g')"


def _terms_without_format_characters(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: a listed word held with an invisible format character (ingest drops it since
    2026-12-05) loses it, and the white space it kept apart from the word — a 丧葬补助金 so held was an
    unknown item, treated as recurring."""
    _clean_terms(con, "terms_without_format_characters",
                 lambda c: f"regexp_matches({c}, '{FORMAT_CHARACTERS}')",
                 lambda c: _trimmed(f"regexp_replace({c}, '{FORMAT_CHARACTERS}', '', 'g')"))


def _terms_without_text_mark(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: a listed word held with Excel's text mark ('丧葬补助金: ingest kept it where
    every other row of its file was plain, until 2026-12-06) loses it and the white space after it."""
    _clean_terms(con, "terms_without_text_mark", lambda c: f"starts_with({c}, '{_sql_text(TEXT_MARK)}')",
                 lambda c: _trimmed(f"substr({c}, 2)"))


def _quality_checked_files(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store, before anything is ingested into it: quality_checked_files (the files whose
    rows a data-quality check has seen) holds what an older fundwatch checked — the files of a
    delivery with results, ingested before its last result (one ingested after, by a night killed
    before its checks, is checked by the next night), and the files whose every row was refused,
    which it never checked (checked now, the first night would warn of each again). In one
    transaction: an empty table left by a crash would have every delivery checked again."""
    from .quality import QUALITY_FILES_DDL  # quality reads the store: not at the top

    with transaction(con):
        con.execute(QUALITY_FILES_DDL)
        stamped = scalar(con, """select count(*) from information_schema.columns
                                 where table_name = 'quality_results' and column_name = 'checked_at'""")
        last = "max(checked_at)" if stamped else "max(timestamp '9999-12-31')"  # unstamped: all before it
        checked = (f"select delivery, {last} as last from quality_results group by delivery"
                   if table_exists(con, "quality_results") else "select null as delivery, null::timestamp as last")
        con.execute(f"""
            insert into quality_checked_files
            select l.file_hash, null, current_timestamp from ingest_ledger l
            left join ({checked}) q on q.delivery = l.delivery
            where (l.ingested_at <= q.last or l.rows_accepted = 0)
              and l.file_hash not in (select file_hash from quality_checked_files)""")
        con.execute("insert into store_migrations values ('quality_checked_files', current_timestamp)")


# What Polars' strip_chars() takes off a text (Unicode White_Space), in RE2
_WHITE_SPACE = r"[\s\x0B\x{85}\p{Z}]"


def _codes_without_text_mark(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: the codes and accounts an older store holds with the apostrophe Excel is told
    'this is text' by ('360702: ingest drops it since 2026-12-02) lose it, as ingest now reads them:
    the rest trimmed, an account so freed that was written in groups as its digits, and a value of
    nothing but the mark empty where the column may be (employer_id, bank_account: else a
    re-delivery of the row, read without it, would be stored beside it, and an account of `'`
    shared by its payees). In a column never empty (a payment number) such a value stays as it is."""
    mark = f"'{_sql_text(TEXT_MARK)}'"

    def freed(c: str) -> str:
        return f"regexp_replace(substr({c}, 2), '^{_WHITE_SPACE}+|{_WHITE_SPACE}+$', '', 'g')"

    def holds_one(c: str, optional: bool) -> str:
        return f"(starts_with({c}, {mark}){'' if optional else f' and length({freed(c)}) > 0'})"

    def cleaned(c: str, optional: bool) -> str:
        grouped, digits = _account_digits_sql(freed(c))
        # an account's digits, as account_value reads it; a SHARED_BANK_ACCOUNT subject is one
        account = ("true" if c in {column for _, column in ACCOUNT_COLUMNS}
                   else "rule_id = 'SHARED_BANK_ACCOUNT'" if c == "subject" else "false")
        return (f"(case when not starts_with({c}, {mark}) then {c} "
                f"when length({freed(c)}) = 0 then {'null' if optional else c} "
                f"when {account} and {grouped} then {digits} else {freed(c)} end)")
    _clean_codes(con, "codes_without_text_mark", holds_one, cleaned)


# The sheet a suspect's last answer was given on (export_id) and when (answered_at), by its last
# `returned` event; and when it last reopened. Subqueries for the conversions below and returns.
LAST_ANSWERED_SHEET = """
    select suspect_id, arg_max(json_extract_string(detail, '$.export_id'), happened_at) as export_id,
           max(happened_at) as answered_at
    from suspect_events where event = 'returned' group by suspect_id"""
_LAST_REOPENED = """
    select suspect_id, max(happened_at) as reopened_at from suspect_events where event = 'reopened' group by suspect_id"""


def _verified_amounts(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: an answer applied before suspects.verified_amount was kept gets, as the loss
    it verified, what the answered sheet showed (its export's locked 涉及金额, found by the export id
    its last `returned` event names), or less where the amount fell since — as returns now records
    it — so that a 已移送 case paid on since is not re-classed by growth nobody verified (it can take
    no further answer to mend it). A suspect without such a record keeps being classed by its
    amount at risk, as before."""
    with transaction(con):
        if _worklist_rows_kind(con):
            con.execute(f"""
                update suspects set verified_amount = least(a.shown, suspects.amount)
                from (select r.suspect_id, try_cast(json_extract_string(w.locked, '$.涉及金额') as decimal(18,2)) as shown
                      from ({LAST_ANSWERED_SHEET}) r
                      join worklist_rows w on w.export_id = r.export_id and w.suspect_id = r.suspect_id) a
                where suspects.suspect_id = a.suspect_id and suspects.verified_amount is null
                  and suspects.outcome is not null and a.shown is not null""")
        con.execute("insert into store_migrations values ('verified_amounts', current_timestamp)")


def _closed_state(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: a suspect closed before what it was closed on was kept (closed_amount and
    span, since 2026-12-02) was compared by its amount now, which the nights since may have lowered
    — a corrected payment put back then reopened it for nothing (found by an upgrade probe). It gets
    what returns records at a closing: the 涉及金额 and 所属期 of the sheet its answer was given on,
    or its own where these are more or wider. A suspect reopened since and not answered again gets
    the sheet's (its worklist row says what is new since the closing). One without such a sheet
    stays compared as before."""
    with transaction(con):
        if _worklist_rows_kind(con):
            con.execute(f"""
                update suspects set
                    closed_amount = if(suspects.status = '已销号', greatest(a.amount, suspects.amount), a.amount),
                    closed_period_from = if(suspects.status = '已销号',
                                            least(coalesce(a.period_from, suspects.period_from), suspects.period_from),
                                            a.period_from),
                    closed_period_to = if(suspects.status = '已销号',
                                          greatest(coalesce(a.period_to, suspects.period_to), suspects.period_to),
                                          a.period_to)
                from (select r.suspect_id, r.answered_at, o.reopened_at,
                             try_cast(json_extract_string(w.locked, '$.涉及金额') as decimal(18,2)) as amount,
                             nullif(json_extract_string(w.locked, '$.所属期起'), '') as period_from,
                             nullif(json_extract_string(w.locked, '$.所属期止'), '') as period_to
                      from ({LAST_ANSWERED_SHEET}) r
                      join worklist_rows w on w.export_id = r.export_id and w.suspect_id = r.suspect_id
                      left join ({_LAST_REOPENED}) o on o.suspect_id = r.suspect_id) a
                where suspects.suspect_id = a.suspect_id and suspects.closed_amount is null and a.amount is not null
                  -- closed, or reopened and not answered since (its banner says what is new since)
                  and (suspects.status = '已销号' or (suspects.status = '已重开' and suspects.closed_on is null
                                                      and a.reopened_at > a.answered_at))""")
        con.execute("insert into store_migrations values ('closed_state', current_timestamp)")


def _reissued_as_reopened(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: a reopened suspect issued again before 2026-12-02 read 已下发 (until 5d6d0eb)
    or kept its first 下发日期 beside the fresh 核查期限 (until a53fc3d); the agency saw a new suspect
    and the 汇总表 counted no 已重开 (found by an upgrade probe). Not answered since it reopened, it
    is 已重开 again, with the 下发日期 of the first worklist that carried it after reopening."""
    with transaction(con):
        if _worklist_rows_kind(con):
            con.execute(f"""
                update suspects set status = '已重开', issued_on = x.reissued_on
                from (select o.suspect_id, min(w.as_of) as reissued_on
                      from ({_LAST_REOPENED}) o
                      left join ({LAST_ANSWERED_SHEET}) r using (suspect_id)
                      join worklist_rows w on w.suspect_id = o.suspect_id and w.exported_at >= o.reopened_at
                      where r.answered_at is null or r.answered_at < o.reopened_at
                      group by o.suspect_id) x
                where suspects.suspect_id = x.suspect_id and suspects.status in ('已下发', '已重开')
                  and suspects.deadline is not null
                  and (suspects.status = '已下发' or suspects.issued_on < x.reissued_on)""")
        con.execute("insert into store_migrations values ('reissued_as_reopened', current_timestamp)")


def _class_verified_on(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: a 要情 classed before the verification that classed it was kept
    (class_verified_on) was dated by the night's casework from its latest answer — a further recovery
    of the same class moved a 重大要情's report date later (found by an upgrade probe). Where every
    answer with a loss (4, 5 or 6) since it last reopened was given on a sheet showing the same
    涉及金额 (so the class cannot have risen between them), it gets the first one's date; the
    casework keeps it while the class does not rise. Others stay dated as before."""
    with transaction(con):
        if _worklist_rows_kind(con):
            con.execute(f"""
                update suspects set class_verified_on = f.verified_on
                from (select e.suspect_id,
                             arg_min(try_cast(json_extract_string(e.detail, '$.verified_on') as date), e.happened_at)
                                 as verified_on,
                             count(distinct json_extract_string(w.locked, '$.涉及金额')) as amounts_shown
                      from suspect_events e
                      join worklist_rows w on w.suspect_id = e.suspect_id
                                          and w.export_id = json_extract_string(e.detail, '$.export_id')
                      left join ({_LAST_REOPENED}) o on o.suspect_id = e.suspect_id
                      where e.event = 'returned'
                        and try_cast(regexp_extract(json_extract_string(e.detail, '$.outcome'), '^\\s*(\\d)', 1)
                                     as integer) in (4, 5, 6)
                        and (o.reopened_at is null or e.happened_at > o.reopened_at)
                      group by e.suspect_id) f
                where suspects.suspect_id = f.suspect_id and suspects.class_verified_on is null
                  and suspects.major_class is not null and f.verified_on is not null and f.amounts_shown = 1""")
        con.execute("insert into store_migrations values ('class_verified_on', current_timestamp)")


def _reopened_on(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: a suspect reopened before reopened_on was kept gets the as-of of its last
    `reopened` event, so that its 挂牌督办 days count from that night as a suspect reopened since."""
    with transaction(con):
        con.execute("""
            update suspects set reopened_on = r.reopened_on
            from (select suspect_id, max(try_cast(json_extract_string(detail, '$.as_of') as date)) as reopened_on
                  from suspect_events where event = 'reopened' group by suspect_id) r
            where suspects.suspect_id = r.suspect_id and suspects.reopened_on is null""")
        con.execute("insert into store_migrations values ('reopened_on', current_timestamp)")


def _stamps_in_china_time(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: a mark, nothing converted. From this version on every stamp the store keeps
    is China's wall-clock time (clock.py); the stamps before stay as they were taken (their zone is
    not known). The mark makes the versions before it refuse the store (_refuse_a_newer_store): run
    on a server in UTC after this one, such a version stamped a reopening hours before this one's
    earlier export, and an answer on that older sheet closed the reopened suspects again (found by
    an upgrade probe)."""
    con.execute("insert into store_migrations values ('stamps_in_china_time', current_timestamp)")


def _suspects_follow_their_agency(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: the next night detects in full (no incremental start), so that every open
    suspect whose finding is now another agency's is handed over (suspects._hand_over) — not only
    those whose subject a later delivery happens to touch. Older versions, which keep a suspect with
    its first agency, refuse the store from here on."""
    with transaction(con):
        if table_exists(con, "detect_state"):
            con.execute("update detect_state set fingerprint = null")
        con.execute("insert into store_migrations values ('suspects_follow_their_agency', current_timestamp)")


def _finding_agency(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: a store whose suspects do not all know the agency their finding names (kept
    since suspects.finding_agency was added; an interim version kept none) detects in full on its
    next night, which fills it, so that an incremental night hands over as a full one does."""
    with transaction(con):
        if (table_exists(con, "detect_state")
                and scalar(con, "select count(*) from suspects where finding_agency is null")):
            con.execute("update detect_state set fingerprint = null")
        con.execute("insert into store_migrations values ('finding_agency', current_timestamp)")


def _deaths_not_before_birth(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: the deaths rows an older version stored dated before the birth their ID number
    carries (a 1900-01-01 placeholder for "not known"), which ingest refuses since 2026-12-07, are set
    aside into rejected_rows with the reason ingest gives (`raw`: the row as stored, the text as
    delivered is gone) and counted there in the ingest ledger; the latest delivered valid row of the
    same person and source among the rows replaced before (replaced_rows) is stored again, as ingest
    now keeps it. The next night detects in full. Left stored, the placeholder kept a living pensioner's every payment
    a PAID_AFTER_DEATH suspect that no delivery could lift (the placeholder re-sent is refused) and
    that every month reopened after its agency answered 本人健在 (an upgrade probe)."""
    from .validate import death_before_birth  # noqa: PLC0415 — validate's import chain reaches this module

    def born(row: str) -> str:  # the birth date its ID carries, read as validate.normalise_frame reads it
        return f"try_strptime(substr({row}.person_id, 7, 8), '%Y%m%d')::date"

    with transaction(con):
        con.execute(f"create or replace temp table _unborn as select rowid as rid, * from deaths d where d.death_date < {born('d')}")
        if scalar(con, "select count(*) from _unborn"):
            delivered = ", ".join(EXTRACTS["deaths"].names)
            columns = ", ".join([delivered, *(n for n, _ in LINEAGE_COLUMNS)])
            con.execute(f"""insert into rejected_rows
                            select 'deaths', _source_file, _row_number, 'death_date', ?,
                                   to_json(struct_pack({delivered})), _file_hash, _delivery, ?
                            from _unborn order by _source_file, _row_number""", [death_before_birth(), china_now()])
            con.execute("""update ingest_ledger set rows_accepted = rows_accepted - u.n, rows_rejected = rows_rejected + u.n
                           from (select _file_hash, count(*) as n from _unborn group by all) u
                           where ingest_ledger.file_hash = u._file_hash""")
            con.execute("delete from deaths where rowid in (select rid from _unborn)")
            # the latest delivered possible death each key had before (replaced_rows): whichever file's
            # row replaced it — the placeholder delivered twice, the second replacing the first without
            # a trace (a row sent again unchanged is not kept), the real death was replaced by the first
            # (a regression probe: it was lost, and a dead pensioner still paid was no suspect)
            types = ", ".join(f'"{name}": "{kind}"' for name, kind in con.execute(
                "select column_name, data_type from duckdb_columns() "
                "where table_name = 'deaths' and schema_name = 'main' and database_name = current_database() "
                "order by column_index").fetchall())
            con.execute(f"""
                create or replace temp table _restored as
                select r.* from (
                    select unnest(from_json(x.row, '{{{types}}}')), x.replaced_by, x.replaced_at from replaced_rows x
                    where x.extract = 'deaths') r
                semi join _unborn u on u.person_id = r.person_id and u.source = r.source
                where not r.death_date < {born('r')}
                  and not exists (select 1 from deaths d where d.person_id = r.person_id and d.source = r.source)
                qualify row_number() over (partition by r.person_id, r.source
                                           order by r._delivery desc nulls last, r._source_file desc nulls last,
                                                    r._row_number desc nulls last, r.replaced_at desc) = 1""")
            con.execute(f"insert into deaths ({columns}) select {columns} from _restored")
            con.execute("""update ingest_ledger set rows_replaced = greatest(rows_replaced - u.n, 0)
                           from (select replaced_by, count(*) as n from _restored group by all) u
                           where ingest_ledger.file_hash = u.replaced_by""")
            con.execute("drop table _restored")
            if table_exists(con, "detect_state"):
                con.execute("update detect_state set fingerprint = null")
        con.execute("drop table _unborn")
        con.execute("insert into store_migrations values ('deaths_not_before_birth', current_timestamp)")


def _handovers_to_listed_agencies(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: an open suspect an older version handed over (移交) to an agency code the
    register does not list — a source system that changed its codes' form — goes back to the agency it
    came from, with the 下发日期 and 核查期限 it had there (its last issue before the handover; none
    where it was reopened since, so that it is issued afresh), as the current version keeps such a
    suspect until the register lists the code (suspects._find_handovers). Left where it was, it stayed
    on a worklist of an agency without a name, its 逾期 lifted, and no night said so (an upgrade probe).
    Not where no register was delivered, nor where no agency it came from is listed."""
    from .casework import OPEN_STATUSES_SQL  # noqa: PLC0415 — casework imports this module

    listed = "(select agency_code from agencies where agency_code is not null)"
    with transaction(con):
        if scalar(con, f"select count(*) from {listed}"):
            con.execute(f"""
                create or replace temp table _sent_back as
                with handovers as (
                    select suspect_id, detail, happened_at from suspect_events where event = 'handed_over'
                ),
                latest as (  -- where its last handover took it
                    select suspect_id, arg_max(detail->>'to_agency', happened_at) as to_agency
                    from handovers group by all
                ),
                handed as (  -- its last handover from a listed agency: a nameless one may have handed it on
                    select suspect_id, arg_max(detail, happened_at) as detail, max(happened_at) as handed_at
                    from handovers where detail->>'from_agency' in {listed} group by all
                )
                select s.suspect_id, h.detail->>'from_agency' as from_agency,
                       case when exists (select 1 from suspect_events r where r.suspect_id = s.suspect_id
                                         and r.event = 'reopened' and r.happened_at > h.handed_at) then null
                            else (select arg_max(i.detail, i.happened_at) from suspect_events i
                                  where i.suspect_id = s.suspect_id and i.event = 'issued'
                                    and i.happened_at < h.handed_at) end as issue
                from suspects s join latest l on l.suspect_id = s.suspect_id join handed h on h.suspect_id = s.suspect_id
                where s.status in ({OPEN_STATUSES_SQL}) and s.agency_code = l.to_agency
                  and s.agency_code not in {listed}""")
            con.execute("""update suspects set agency_code = b.from_agency,
                                               issued_on = cast(b.issue->>'issued_on' as date),
                                               deadline = cast(b.issue->>'deadline' as date)
                           from _sent_back b where suspects.suspect_id = b.suspect_id""")
            con.execute("drop table _sent_back")
        con.execute("insert into store_migrations values ('handovers_to_listed_agencies', current_timestamp)")


def _ingest_senders(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: the senders of the files an older version read (ingest_senders), each key
    counted for the first file that brought it, of those its stored row and the rows a later delivery
    changed (replaced_rows) name — a key re-sent unchanged left no trace of its earlier file, so it
    is counted for the later one. Older versions, which record no senders (their files would read as
    silence), refuse the store from here on."""
    with transaction(con):
        con.execute("delete from ingest_senders")
        for kind, column in SENDER_COLUMNS.items():
            keys = EXTRACTS[kind].key
            stored = ", ".join(f"cast({k} as varchar) as {k}" for k in keys)
            replaced = ", ".join(f"json_extract_string(row, '$.{k}') as {k}" for k in keys)
            con.execute(f"""
                insert into ingest_senders
                select file_hash, '{kind}', sender, count(*) from (
                    select arg_min(v.file_hash, l.ingested_at) as file_hash, arg_min(v.sender, l.ingested_at) as sender
                    from (select {stored}, _file_hash as file_hash, {column} as sender from {kind}
                          union all
                          select {replaced}, json_extract_string(row, '$._file_hash'),
                                 json_extract_string(row, '$.{column}')
                          from replaced_rows where extract = '{kind}') v
                    join ingest_ledger l on l.file_hash = v.file_hash
                    group by {", ".join(f"v.{k}" for k in keys)})
                where sender is not null
                group by all""")
        con.execute("insert into store_migrations values ('ingest_senders', current_timestamp)")


def _worklist_cells_once(con: duckdb.DuckDBPyConnection) -> None:
    """Once per store: the worklist rows an older version kept, each with its locked cells whole,
    become rows pointing to their cells stored once per content (WORKLIST_DDL), read through the view
    worklist_rows as before. Older versions, which would write into a view, refuse the store from
    here on. The space freed is reused by the nights after (DuckDB does not shrink the file)."""
    with transaction(con):
        if _worklist_rows_kind(con) == "table":
            columns = {c for (c,) in con.execute(
                "select column_name from duckdb_columns() where table_name = 'worklist_rows' "
                "and database_name = current_database()").fetchall()}
            prefilled = "prefilled" if "prefilled" in columns else "cast(null as json)"
            con.execute("""
                insert into worklist_locked_cells
                select md5(cast(locked as varchar)) as locked_md5, any_value(locked) from worklist_rows
                where locked is not null
                  and md5(cast(locked as varchar)) not in (select locked_md5 from worklist_locked_cells)
                group by locked_md5""")
            con.execute(f"""
                insert into worklist_rows_issued
                select export_id, suspect_id, agency_code, row_number, file, as_of, exported_at,
                       md5(cast(locked as varchar)), {prefilled}
                from worklist_rows""")
            con.execute("drop table worklist_rows")
            con.execute(WORKLIST_VIEW)
        con.execute("insert into store_migrations values ('worklist_cells_once', current_timestamp)")


# The one-time conversions an older store needs, in order; each records itself in store_migrations
# with its last step, so that one cut short is run again.
_MIGRATIONS = (("accounts_as_digits", _accounts_as_digits),
               ("codes_without_format_characters", _codes_without_format_characters),
               ("codes_without_text_mark", _codes_without_text_mark),
               ("terms_without_format_characters", _terms_without_format_characters),
               ("terms_without_text_mark", _terms_without_text_mark),
               ("quality_checked_files", _quality_checked_files),
               ("verified_amounts", _verified_amounts),
               # a reopened suspect's status first: closed_state gives the reopened ones their banner
               ("reissued_as_reopened", _reissued_as_reopened),
               ("closed_state", _closed_state),
               ("class_verified_on", _class_verified_on),
               ("reopened_on", _reopened_on),
               ("stamps_in_china_time", _stamps_in_china_time),
               ("suspects_follow_their_agency", _suspects_follow_their_agency),
               ("finding_agency", _finding_agency),
               ("deaths_not_before_birth", _deaths_not_before_birth),
               ("handovers_to_listed_agencies", _handovers_to_listed_agencies),
               ("ingest_senders", _ingest_senders),
               ("worklist_cells_once", _worklist_cells_once))


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    applied = {name for (name,) in con.execute("select name from store_migrations").fetchall()}
    run_id = None  # one for the conversions of this opening, as a command's run id is
    held = None  # the suspects as the last conversion left them (the next one's "before")
    for name, convert in _MIGRATIONS:
        if name not in applied:
            run_id = run_id or new_run_id(china_now().date(), "migrate")
            before = _suspects_as_held(con) if held is None else held
            convert(con)
            held = _record_migration(con, name, before, run_id)


# What a conversion may change of a suspect, each change an event of its own (`migrated`)
_MIGRATED_COLUMNS = ("subject", "agency_code", "status", "issued_on", "deadline", "finding_agency")


def _suspects_as_held(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    columns = ", ".join(f"cast({c} as varchar)" for c in _MIGRATED_COLUMNS)
    return {sid: rest for sid, *rest in con.execute(f"select suspect_id, {columns} from suspects").fetchall()}


def _record_migration(con: duckdb.DuckDBPyConnection, name: str, before: dict[str, tuple],
                      run_id: str) -> dict[str, tuple]:
    """A conversion of a store that held anything is on record: an audit_log row (who ran the
    fundwatch that converted it), and an event for each suspect it changed, old and new values —
    it changed suspects without a trace (an audit probe). A new, empty store's conversions find
    nothing and say nothing. Returns the suspects as the conversion left them."""
    after = _suspects_as_held(con)
    if not before and not scalar(con, "select count(*) from runs"):
        return after
    changed = {sid: {c: [old, new] for c, old, new in zip(_MIGRATED_COLUMNS, before[sid], now) if old != new}
               for sid, now in after.items() if sid in before and before[sid] != now}
    when = china_now()
    with transaction(con):
        if changed:
            insert_many(con, "suspect_events", ["suspect_id", "happened_at", "event", "detail", "run_id"],
                        [[sid, when, "migrated", json.dumps({"migration": name, "changed": c}, ensure_ascii=False),
                          run_id] for sid, c in sorted(changed.items())])
        audit(con, "migrate_store", current_actor(), {"migration": name, "suspects_changed": len(changed),
                                                      "run_id": run_id}, happened_at=when)
    return after


def check_not_newer(db_path: Path) -> None:
    """NewerStore, before a command makes anything (`serve` would otherwise serve nights that each
    fail), for an existing store a newer fundwatch converted. A store held by a run or another
    program is left to the command itself to meet."""
    with glance(db_path) as con:
        if con is not None:
            _refuse_a_newer_store(con, db_path)


@contextlib.contextmanager
def glance(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The store opened read-only for a look before a command's own lock (its last night, whether a
    newer fundwatch converted it) — or None where there is none yet, a run holds it, or another
    program does: the command's own lock or opening says so, in its words."""
    if not db_path.is_file() or run_holding(db_path):
        yield None
        return
    try:
        con = duckdb.connect(str(db_path), read_only=True)
    except duckdb.Error:
        yield None
        return
    try:
        yield con
    finally:
        con.close()


def _refuse_a_newer_store(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    """NewerStore when a later fundwatch has converted the store in a way this one does not know:
    run on it, this version would write rows the later one no longer reads right (an older version
    run on a newer store stored codes with Excel's mark again, and nothing converted them back)."""
    if not table_exists(con, "store_migrations"):
        return
    known = {name for name, _ in _MIGRATIONS}
    unknown = sorted(name for (name,) in con.execute("select name from store_migrations").fetchall()
                     if name not in known)
    if unknown:
        raise NewerStore(f"{db_path} was converted by a newer fundwatch ({', '.join(unknown)}); this version "
                         "would write what that one no longer reads right: run the newer fundwatch on it")


def run_holding(db_path: Path) -> str | None:
    """runlock.running: what a reader is told while a fundwatch run of another process holds the store."""
    from .runlock import running  # runlock imports this module

    return running(db_path)


def refuse_while_running(db_path: Path) -> None:
    """StoreBusy for a reader while a run of another process holds the store: opened after a night
    had started, the reader held the store when the night came to open it, and failed the night."""
    told = run_holding(db_path)
    if told:
        raise StoreBusy(told)


class StoreBusy(RuntimeError):
    """Another process holds the store: a fundwatch run (pipelines.runlock) or another program
    that has the DuckDB file open (a notebook kernel, a DuckDB shell)."""


# DuckDB's words when another process has the file: 'Could not set lock on file "…": Conflicting
# lock is held in /usr/bin/python3.11 (PID 4711)'
_HELD_BY = re.compile(r"Could not set lock on file.*Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)",
                      re.DOTALL)


# A mark in each OUT folder naming the store whose worklists it holds: two stores given one OUT
# (two offices on one server, a mistyped --out) each wrote their agencies' worklists over the other's.
OUT_MARK = ".fundwatch-store"


class OutOfAnotherStore(RuntimeError):
    """OUT holds the outputs of another store."""


def store_identity(con: duckdb.DuckDBPyConnection, first_run: str | None = None) -> str:
    """The store's own id: a copy or a restored backup is the same store, a new one not. A store is
    known by its first night's run id (`first_run`: the night about to start, for a store without
    one) — so a backup made before the id was kept (before 2026-12-06) is still the same store; one
    without nights gets a random id. Kept in store_identity once made."""
    import uuid

    con.execute("create table if not exists store_identity (id varchar not null, created_at timestamp)")
    found = con.execute("select id from store_identity limit 1").fetchall()
    if found:
        return found[0][0]
    first = (scalar(con, "select run_id from runs order by started_at, run_id limit 1")
             if table_exists(con, "runs") else None) or first_run
    made = f"run:{first}" if first else uuid.uuid4().hex
    con.execute("insert into store_identity values (?, current_timestamp)", [made])
    return made


def _out_mark(out: Path) -> list[str]:
    try:
        return (Path(out) / OUT_MARK).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return []


def _another_stores(out: Path, db: Path, said: list[str]) -> OutOfAnotherStore:
    other = said[1].strip() if len(said) > 1 else ""
    which = (f"of an earlier store at this path ({other}: the store was made anew since)"
             if other == str(Path(db).resolve()) else f"of another store ({other or 'its path not said'})")
    return OutOfAnotherStore(f"output folder {out} holds the worklists {which}: give each store its own OUT "
                             f"folder — or, for this store to take it over, delete {Path(out) / OUT_MARK} (the "
                             "worklists there are then replaced by this store's)")


def check_out_before_the_store(out: Path, db: Path) -> None:
    """OutOfAnotherStore, before anything is made, for a store yet to be made whose OUT another store
    marked: refused only once inside the night, a mistyped --db was left behind as a new empty store
    with its lock file (a new office's probe)."""
    said = _out_mark(out)
    if not Path(db).exists() and said and said[0].strip():
        raise _another_stores(out, db, said)


def claim_out(con: duckdb.DuckDBPyConnection, out: Path, db: Path, run_id: str | None = None) -> None:
    """Mark OUT as this store's, or raise OutOfAnotherStore when another store's mark is there."""
    mark = Path(out) / OUT_MARK
    me = store_identity(con, run_id)
    said = _out_mark(out)
    if said and said[0].strip() and said[0].strip() != me:
        raise _another_stores(out, db, said)
    wanted = [me, str(Path(db).resolve())]
    if said != wanted:
        fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(wanted) + "\n")


class NotAStore(OSError):
    """The store path names a file that is not a DuckDB database."""


class UnusableStorePath(NotAStore):
    """The store's path holds a character DuckDB reads as something else."""


class NewerStore(NotAStore):
    """The store was converted by a later fundwatch than this one (store_migrations)."""


# Where a DuckDB database file says what it is (its header: a checksum, then "DUCK").
_DUCKDB_MAGIC = (8, b"DUCK")


def check_store_file(db_path: Path) -> None:
    """NotAStore for a path that cannot be the store: a folder, or a file that is not a DuckDB
    database. DuckDB opens an existing CSV, Parquet or JSON file named as a database as an in-memory
    database with a view over it: a night would run, say it completed, and keep nothing. A file
    already there must be a DuckDB database. A path DuckDB would read otherwise is refused too."""
    # (as DuckDB opens it: a relative path from a folder whose path holds one is refused too)
    odd = sorted(set("?\\") & set(os.path.abspath(db_path)))
    if odd:
        # DuckDB 2.0 takes '?' as the start of a database's options and '\\' as a folder separator:
        # refused as `Cannot open file ".../night.wal?1/fw.duckdb": No such file or directory` of a
        # folder that exists, a 12 KB file left behind (a hostile-environment probe)
        held = " or ".join("'" + c + "'" for c in odd)
        raise UnusableStorePath(f"{os.path.abspath(db_path)}: DuckDB cannot keep a store at a path holding "
                                f"{held} (it reads '?' as the start of options, "
                                "'\\' as a folder separator): choose a path without it")
    try:
        with db_path.open("rb") as f:
            head = f.read(_DUCKDB_MAGIC[0] + len(_DUCKDB_MAGIC[1]))
    except FileNotFoundError:
        return  # a store yet to be made
    except IsADirectoryError:
        # (DuckDB's own words were "Could not read from file …: Is a directory")
        raise NotAStore(f"{db_path} is a folder, not a DuckDB store: name the store's file in it "
                        f"(e.g. {db_path / 'fundwatch.duckdb'})") from None
    if not head:
        # (DuckDB's own words: "exists, but it is not a valid DuckDB database file!")
        raise NotAStore(f"{db_path} is an empty file (0 bytes), not a DuckDB store: delete it to have a new "
                        "store made there, or name the store's file")
    if head[_DUCKDB_MAGIC[0]:] != _DUCKDB_MAGIC[1]:
        raise NotAStore(f"{db_path} is not a DuckDB store (a data file? --db names the store fundwatch "
                        "keeps, e.g. fundwatch.duckdb; the extracts go in --inbox)")


# Another program holding the store for a moment — a command's check before its own lock, a
# `rules --db` — is waited for this long before a run is refused (two returns started together:
# the one that won the lock was failed by the other's check).
_BRIEF_HOLD_SECONDS = 3.0


def _duckdb_connect(db_path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    check_store_file(db_path)
    deadline = time.monotonic() + _BRIEF_HOLD_SECONDS
    while True:
        try:
            return duckdb.connect(str(db_path), read_only=read_only)
        except duckdb.IOException as exc:
            held = _HELD_BY.search(str(exc))
            if held is None:
                raise
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
    raise StoreBusy(
        f"{db_path} is open in another program ({Path(held['program']).name}, pid {held['pid']}) — a notebook "
        f"kernel or a DuckDB shell left open? Close it (in Jupyter: shut the kernel down), then run again")


@contextlib.contextmanager
def stopped_by_signals(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Ctrl-C or SIGTERM stop what runs on `con`, even inside a statement. Python runs a signal's
    handler only between bytecodes and DuckDB runs a statement to its end first: a night in a query
    that never ends (an office's rule joining payments to itself) ignored both, and only `kill -9`
    stopped it. Python writes each signal's number to its wakeup fd as it arrives; a thread reading
    it interrupts the statement running — and every one after, as the steps' own handlers of a
    failed statement go on to the next — until the block ends, which then raises
    KeyboardInterrupt: the night stops as at a Ctrl-C between statements (DuckDB's client turns the
    handler's own exception into an error of the statement, which a step would take for a failure).
    Only in the main thread, where signals are handled; a wakeup fd set before (an event loop's) is
    passed every byte and restored."""
    import select
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:
        os.close(read_end)
        os.close(write_end)
        yield
        return
    stopping: list[int] = []

    def watch() -> None:
        while True:
            if stopping:
                con.interrupt()
            if not select.select([read_end], [], [], 0.2 if stopping else None)[0]:
                continue
            try:
                got = os.read(read_end, 64)
            except OSError:
                return
            if not got:
                return  # the block has ended
            if previous >= 0:
                with contextlib.suppress(OSError):
                    os.write(previous, got)
            stopping.extend(n for n in got if n in (signal.SIGINT, signal.SIGTERM))

    watcher = threading.Thread(target=watch, name="fundwatch-signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(write_end)  # the watcher reads the end of the pipe and stops
        watcher.join(timeout=5)
        os.close(read_end)
        if stopping:
            raise KeyboardInterrupt


def new_run_id(as_of: dt.date, command: str | None = None) -> str:
    """The id of one command's changes to the store: a night's `20261121-1a2b3c4d` (its `runs` row),
    a `returns` or `reopen` run's `returns-20261124-…`. Each event it writes carries it
    (suspect_events.run_id), and so does its audit_log row's detail (who ran it, with what)."""
    return f"{command + '-' if command else ''}{as_of:%Y%m%d}-{uuid.uuid4().hex[:8]}"


def audit(con: duckdb.DuckDBPyConnection, action: str, actor: str, detail: dict, *,
          happened_at: dt.datetime | None = None, file: str | None = None, file_hash: str | None = None,
          agency_code: str | None = None, suspect_ids: list[str] | None = None) -> None:
    """One audit_log row: who (`actor`, see current_actor) did what, when, to which file (its
    sha256), agency and suspects; `detail` as JSON."""
    con.execute("insert into audit_log (happened_at, actor, action, file, file_hash, agency_code, suspect_ids, detail)"
                " values (?, ?, ?, ?, ?, ?, ?, ?)",
                [happened_at or china_now(), actor, action, file, file_hash, agency_code,
                 None if suspect_ids is None else json.dumps(suspect_ids, ensure_ascii=False),
                 json.dumps(detail, ensure_ascii=False)])


def current_actor(actor: str | None = None) -> str:
    """Who an audit_log row says did it: the name given, else the login name (else $USER or the uid:
    some containers have no login name)."""
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER") or str(os.getuid())


def connect(db_path: str | Path, read_only: bool = False, memory_limit: str | None = None,
            temp_directory: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    """Open (and on first use create) the store. Personal data: the file is made owner-only (0600).

    `memory_limit` and `temp_directory` are DuckDB's (config `duckdb:`): past the limit DuckDB
    spills to the folder instead of failing; see apply_settings."""
    db_path = Path(db_path)
    if temp_directory is not None:
        # made first: a spill folder that cannot be made stops before the store file is touched
        owner_only_folder(Path(temp_directory))
    if read_only:
        refuse_while_running(db_path)
        con = _duckdb_connect(db_path, read_only=True)
        apply_settings(con, memory_limit, temp_directory)
        return con
    owner_only_folder(db_path.parent)
    # Owner-only from the first byte: the store and its WAL hold ID numbers and bank accounts.
    old_umask = os.umask(0o077)
    try:
        con = _duckdb_connect(db_path)
    finally:
        os.umask(old_umask)
    try:
        apply_settings(con, memory_limit, temp_directory)
        _refuse_a_newer_store(con, db_path)  # before anything is written to it
    except BaseException:
        con.close()
        raise
    ensure_schema(con)
    _migrate(con)  # here, not in ensure_schema: ingest calls that inside its transaction
    return con


# Characters that end or redraw a line: in a file's name they forged lines of the night's console and
# log (`deaths_x` + newline + `fundwatch nightly … completed, 0 failed` — a security probe).
_LINE_CONTROLS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with each control character written as its escape (`\\n`), for a line of the console
    or the log: a file's name never starts a line of its own there. (Stored names keep them: which
    of a delivery's files is the later goes by its name as delivered.)"""
    return _LINE_CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def path_text(path: Path | str) -> str:
    """A path as text to show and store: its bytes on disk read as UTF-8, else as GB18030 — whatever
    the locale Python decoded them with. A name that is not UTF-8 (GB18030 bytes, as a copy from a
    Windows share, an old archive, or fundwatch itself run under a GB18030 locale gives them) Python
    holds as surrogates under a UTF-8 locale, which no UTF-8 text (DuckDB's, JSON's, Prefect's) can
    carry; under a GB18030 locale a UTF-8 name reads as other characters (the worklists one locale's
    night wrote were neither removed nor named by the other's: a hostile-environment probe)."""
    raw = os.fsencode(str(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")


def file_in_the_way(path: Path) -> Path:
    """Of a folder that could not be made because a file is where a folder is needed: that file
    (`path` itself or one of its parents), for the message."""
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return path


def free_space_note(exc: BaseException, paths: tuple) -> str:
    """The free space where a "no space left" failure happened: the folder of the file it names
    (DuckDB's `Could not write file "…/fw.duckdb.wal"`, an OSError's filename) — else, where it names
    none (a workbook's writer, the report's), of the folders among `paths` (the step's Path
    arguments): which disk is full, the store's or OUT's. (A failure naming the store's WAL was said
    with the free space of the inbox the step reads, 56 GB, the store's disk at 0: a hostile-
    environment probe.)"""
    import errno

    if not (getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc)):
        return ""
    # (a relative name too: DuckDB quotes the store's WAL as it was given, `"fw.duckdb.wal"`)
    named = [Path(f) for f in re.findall(r'"([^"\n]*[/.][^"\n]*)"', str(exc))]
    if isinstance(getattr(exc, "filename", None), str):
        named.append(Path(exc.filename))

    def free_of(folders) -> list[str]:
        free = []
        for folder in dict.fromkeys(folders):
            try:
                free.append(f"{folder} {shutil.disk_usage(folder if folder.is_dir() else folder.parent).free / 2**20:,.1f} MB")
            except OSError:  # not a path, or its folder is gone: not the one to tell
                continue
        return free

    free = free_of(named) or free_of(a for a in paths if isinstance(a, Path))
    return f" (free: {', '.join(free)})" if free else ""


def owner_only_folder(folder: Path) -> None:
    """Make folder and any missing parents owner-only (0700); folders already there are left as
    they are. What fundwatch creates holds extract rows, ID numbers or their lock."""
    old_umask = os.umask(0o077)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(old_umask)


# Without a limit of the office's, DuckDB takes 80 % of RAM, and uses it: a province's first night
# (123.7 million extract rows, 2 cores, 23.5 GB of RAM) peaked at 21.3 GB RSS, against 6.3 GB
# under 4 GiB in the same time (10 min 19 s against 10 min 42 s; detection a little slower,
# ingest a little faster). So the default is 4 GiB, or DuckDB's own where that is smaller (a small
# machine, a container's limit); config duckdb.memory_limit sets any other.
DEFAULT_MEMORY_LIMIT = 4 * 2**30
_SIZE = re.compile(r"^\s*([0-9.]+)\s*(bytes|[KMGTP]i?B)\s*$")


def size_bytes(text: str) -> float | None:
    """Bytes of a size as DuckDB shows one ("18.8 GiB", "500.0 MiB", "4.0 GB"); None if not one."""
    m = _SIZE.match(text)
    if m is None:
        return None
    unit = m[2]
    power = "BKMGTP".index(unit[0]) if unit != "bytes" else 0
    return float(m[1]) * ((1024 if "i" in unit else 1000) ** power)


def apply_settings(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None,
                   temp_directory: str | Path | None = None) -> None:
    """DuckDB's memory limit (e.g. "4GB", "80%"; by default DEFAULT_MEMORY_LIMIT, or DuckDB's own
    where smaller) and the folder it spills to beyond it. The spill folder is created owner-only:
    what DuckDB spills are rows of the extracts (ID numbers, names, bank accounts). A value DuckDB
    does not understand raises ValueError naming it. And China's clock for `current_timestamp` (the
    runs, quality results, migrations it stamps), as Python's stamps are (clock.china_now)."""
    con.execute(f"set TimeZone = '{CHINA_TZ}'")
    if memory_limit is None:
        own = size_bytes(str(con.execute("select current_setting('memory_limit')").fetchall()[0][0]))
        if own is not None and own > DEFAULT_MEMORY_LIMIT:
            con.execute(f"set memory_limit = '{DEFAULT_MEMORY_LIMIT // 2**20}MiB'")
    else:
        try:
            con.execute(f"set memory_limit = '{_sql_text(str(memory_limit))}'")
        except duckdb.Error as exc:
            raise ValueError(f"memory_limit '{memory_limit}' is not a size DuckDB understands "
                             f"(e.g. 4GB, 500MB, 80%): {str(exc).splitlines()[0]}") from None
    if temp_directory is not None:
        folder = Path(temp_directory)
        owner_only_folder(folder)
        con.execute(f"set temp_directory = '{_sql_text(str(folder))}'")


# Told with an out-of-memory failure: what the office can change (DuckDB's own text names the sizes).
# DuckDB says which of the two it was: a block it could not offload (spill) to its folder, or memory
# it could not allocate for work that does not spill — where a folder with more space changes nothing.
SPILL_FULL_HINT = ("DuckDB reached its memory limit and its spill folder is full (or at its max_temp_directory_size): "
                   "free space there, set duckdb.temp_directory to a folder with more, or raise duckdb.memory_limit "
                   "in the config")
OUT_OF_MEMORY_HINT = ("DuckDB reached its memory limit in work it cannot spill to disk: raise duckdb.memory_limit "
                      "in the config")


def _address_space_limit() -> int | None:
    """The process's address-space limit (`ulimit -v`, RLIMIT_AS) in bytes; None when unlimited."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


def failure_hint(exc: BaseException | None) -> str:
    """What to add to a failure's one line: for DuckDB running out of memory (however it was
    wrapped), which setting to change; else nothing. Under an address-space limit (`ulimit -v`) the
    allocation fails before DuckDB's own limit is reached, where raising that limit makes it worse
    (a hostile-environment probe was told to raise it)."""
    while exc is not None:
        if isinstance(exc, duckdb.OutOfMemoryException):
            spill_full = "offload" in str(exc) or "max_temp_directory_size" in str(exc)
            limit = _address_space_limit()
            if limit is not None and "bad allocation" in str(exc):
                return (f" (the process may use at most {limit / 2**20:,.0f} MiB of address space (ulimit -v): lift "
                        "that limit, or set duckdb.memory_limit in the config well below it)")
            return f" ({SPILL_FULL_HINT if spill_full else OUT_OF_MEMORY_HINT})"
        exc = exc.__cause__ or exc.__context__
    return ""


def settings(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The DuckDB settings in effect that decide whether a big night spills or fails."""
    row = con.execute("select current_setting('memory_limit'), current_setting('temp_directory')").fetchall()[0]
    return {"memory_limit": str(row[0]), "temp_directory": str(row[1])}


# Below this much free space on the store's disk a night may not be able to write its changes
# and checkpoint them (DuckDB then keeps them in the WAL, and the next night fails to commit).
LOW_DISK_MB = 256


def disk_room(db_path: str | Path) -> dict[str, float]:
    """Free space on the store's disk, in MB."""
    return {"free_mb": round(shutil.disk_usage(Path(db_path).resolve().parent).free / 2**20, 1)}


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: a crash or exception inside leaves the store as it was."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    else:
        con.execute("commit")


def of_files(hashes: list[str], column: str = "_file_hash") -> str:
    """SQL true for the rows of these ingested files (an extract's lineage column; `file_hash` of the
    ledger and rejected_rows). The hashes are written as constants: DuckDB then skips, by their
    statistics, the row groups of other files (a file's rows are contiguous)."""
    listed = ", ".join(f"'{h}'" for h in hashes if re.fullmatch(r"[0-9a-f]+", h))
    return f"{column} in ({listed})" if listed else "false"


def store_catalog(con: duckdb.DuckDBPyConnection) -> str:
    """The store's own catalog as an SQL identifier, to reach a table past a temp table of the same
    name. DuckDB names it after the file, which may hold a double quote (`fw"x.duckdb`)."""
    return '"' + scalar(con, "select current_database()").replace('"', '""') + '"'


def last_night(con: duckdb.DuckDBPyConnection):
    """The as-of of the store's last night (a date), or None before its first: its last completed
    night, or a later one that failed after merging its findings (a rule that failed or ran out of
    time fails the night, whose suspects, casework and worklists are still that day's — a night
    before it would step them back as before a completed one)."""
    days = [scalar(con, "select max(as_of) from runs where status = 'completed'") if table_exists(con, "runs") else None,
            scalar(con, "select max(last_detected_on) from suspects") if table_exists(con, "suspects") else None]
    return max((d for d in days if d is not None), default=None)


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """A table of the store, or a temp table of this connection (a detection's), named `name`."""
    return bool(scalar(con, "select count(*) from duckdb_tables() where table_name = ? "
                            "and database_name in (current_database(), 'temp')", [name]))


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None):
    """First column of the first row (DuckDB 2: results must be fetched to the end)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


INSERT_PART_ROWS = 10_000


def insert_many(con: duckdb.DuckDBPyConnection, table: str, columns: list[str], rows: list[list]) -> None:
    """Rows inserted by one statement, a list a column: `executemany` runs the statement once a row
    (about a millisecond each: 2,000 suspects issued took seconds)."""
    # (in parts: a statement's lists are held twice over as DuckDB values, 620 MB for 70,000
    # worklist rows of JSON at once)
    for start in range(0, len(rows), INSERT_PART_ROWS):
        lists = [list(column) for column in zip(*rows[start:start + INSERT_PART_ROWS])]
        con.execute(f"insert into {table} ({', '.join(columns)}) select {', '.join(['unnest(?)'] * len(columns))}",
                    lists)
