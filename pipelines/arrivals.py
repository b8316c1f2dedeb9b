"""数据报送: has every agency's month of benefit payments come in?

A month one agency did not deliver is silent otherwise: its rules find nothing in rows that are
not there, and the continuity check speaks only when the agency's next month arrives. The office
has no delivery plan to hold the inbox to, and comparing agencies misleads (险种 come from different
core systems on different days, a month may come in halves a week apart, a 补发 month doubles the
rows, a month is paid ahead before 春节, agencies merge), so each payment stream (险种 × 经办机构,
recurring items) is held to its own schedule: the day of the month its recent months came in (the
day most of a month's rows were in — a file's day as a feed's below —, counted from the month's first
day; the middle of its last three months, so one month paid ahead or a year back-loaded does not
move it). A stream is late when `late_delivery_days` have passed since that day of a month — not
after the as-of month — and either it has no row of the month (net) while people it paid in its last month are still owed it, or the
month came in part while a fifth and at least three of the people of its month before are still
owed it. Owed: paid for it (net) by no agency under the same 险种, not 暂停/终止 before it, not dead
before it (the month of death is payable). A stream whose people all moved to another agency (机构改
革), stopped or died is not waited for; one silent for a year is forgotten. Payments count as they
had come in by the as-of day (each file by its day, below); deaths and the register as they are now.

The other extracts have no month to miss: deaths come in from 公安, 民政 and 卫健 as they are
registered, custody from the prisons, account statements and contributions on their own rhythms, and
a feed that stops is as silent as a missing month (PAID_AFTER_DEATH finds nothing in deaths that
never came). So each of them — and each sender of one several send (extracts.SENDER_COLUMNS: a
death's source, the agency whose accounts a statement is of, a 险种's contributions) — is held to the
intervals between its own recent deliveries: it is late when, counted in working days (工作日: 春节
and 国庆 are no silence), it has been silent `late_delivery_days` longer than the longest of its last
six intervals. A delivery's day is its folder's date (not the night that read it: a week the office
ran no nights is no silence of the sender). A file that came in counts, rows or not (a header alone
says "nothing today"), the same file sent again too (`ingest_copies`); a sender counts by the files
that brought rows of keys new to the store (`ingest_senders`: a correction, or a cumulative re-export
that only repeats a sender's rows, is no news from it). An extract is late as a whole only when each of its senders held
is late too, and is then said once. A feed needs four deliveries before it has a rhythm; one silent for
a year is forgotten; an agency that has paid nothing for two months is not waited for with its
statements.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass, field

import duckdb

from .config import DEFAULTS
from .extracts import EXTRACTS, INSURANCE_TYPES, ONE_OFF_ITEMS, SENDER_COLUMNS
from .report_mask import mask_agency_code, scrub_text
from .store import table_exists
from .workdays import WorkCalendar, calendar_from

# A stream silent for longer is no longer waited for.
LOOKBACK_MONTHS = 12
# The months whose arrival day sets a stream's schedule (their middle one).
SCHEDULE_MONTHS = 3
# Days from a month's first day within which a month sent alone comes in on a schedule (paid ahead
# up to a month before; sent at the end of the month after).
USUAL_DAYS = (-31, 62)
# The day a month "came in": when this share of its rows (as of the as-of day) were in.
MOST_ROWS = 0.8
# A stream whose month came in part is late when at least this share of its people (and PART_OWED_LEAST
# of them) are still owed it: a death or a 终止 recorded a month late is one person, not a delivery.
PART_OWED_SHARE = 0.2
PART_OWED_LEAST = 3

# The feeds held to their own rhythm (and their senders: extracts.SENDER_COLUMNS). The agencies'
# register changes when an agency does: no rhythm.
FEED_EXTRACTS = ("beneficiaries", "deaths", "imprisonments", "fund_transactions", "contributions")
# A feed's rhythm: the longest of its last intervals between deliveries (in working days) ...
FEED_INTERVALS = 6
# ... of which it needs this many before it has one (four deliveries).
FEED_LEAST_INTERVALS = 3
# An extract several send is held as a whole to the intervals of its last months as well (days).
WHOLE_WINDOW_DAYS = 92
# An agency's statements are waited for while it pays: a payment of it this recent (days).
PAYING_WITHIN_DAYS = 62


@dataclass(frozen=True)
class LateStream:
    agency_code: str        # masked where a code holds an ID number (as on every province page)
    agency_name: str | None  # masked likewise
    insurance_type: str
    last_period: str        # the month its owed people were last paid by it (missing_period when in part)
    missing_period: str     # the month not come in (or in part)
    expected_on: dt.date    # the day it was due by the stream's own schedule (late from grace days after)
    persons_last: int       # people it paid in the month its owed people are counted from
    persons_owed: int       # of them, still owed missing_period

    @property
    def in_part(self) -> bool:
        return self.last_period == self.missing_period


@dataclass(frozen=True)
class LateFeed:
    extract: str            # deaths / imprisonments / fund_transactions / contributions / beneficiaries
    part: str | None        # its sender: a death's source, an agency code (masked as on every page), a 险种; None: all of it
    part_name: str | None   # the agency's or the 险种's name
    last_on: dt.date        # the last night a file of it (a row of the part) came in
    longest_days: int       # the longest of its last intervals, in working days
    silent_days: int        # working days since last_on, to the as-of day
    due_by: dt.date         # the last day it was not yet late (late_delivery_days working days past longest_days)


@dataclass
class Arrivals:
    """The late streams and feeds as of a day, and how many were held to their schedules."""
    late: list[LateStream] = field(default_factory=list)
    streams: int = 0
    as_of: dt.date | None = None
    late_feeds: list[LateFeed] = field(default_factory=list)
    feeds: int = 0
    # the years the feeds' working days were counted Monday–Friday (no holiday notice known)
    feed_years_assumed: list[int] = field(default_factory=list)


def grace_days(config) -> int | None:
    """config `late_delivery_days` (its default without a config)."""
    days = DEFAULTS["late_delivery_days"] if config is None else config.get("late_delivery_days")
    return None if days is None else int(days)


def said(con: duckdb.DuckDBPyConnection, as_of: dt.date, config) -> dict | None:
    """数据报送 as the night's summary, runs.summary and the dashboard say it (summary()) as of a day,
    from what had come in by then; None where the config switches it off."""
    grace = grace_days(config)
    if grace is None:
        return None
    found = check(con, as_of, grace)
    found.late_feeds, found.feeds, found.feed_years_assumed = check_feeds(con, as_of, grace, calendar_from(config))
    return summary(found)


def _month(period: str, k: int) -> str:
    y, m = divmod(int(period[:4]) * 12 + int(period[4:]) - 1 + k, 12)
    return f"{y:04d}{m + 1:02d}"


def _read_on(con) -> tuple[str, str]:
    """SQL (the expression, its join) of the night that read a file — a row `s` of ingest_ledger or
    ingest_copies as (s.run_id, s.at): its run's as-of; a file read outside a night, the day it was read."""
    if table_exists(con, "runs"):
        return "coalesce(r.as_of, cast(s.at as date))", "left join runs r on r.run_id = s.run_id"
    return "cast(s.at as date)", ""


# `with … arrived`: the recurring payments of the window ($low–$high) come in by $as_of, each with the
# day its file came in (temp table _arrival_files, from _file_days: its folder's date, or the night that
# read it); a row of no file in the ledger counts as long in.
ARRIVED_SQL = """with arrived as (
        select p.*, coalesce(f.day, date '0001-01-01') as day
        from payments p left join _arrival_files f on f.file_hash = p._file_hash
        where p.period between $low and $high and not list_contains($one_off, p.item)
          and (f.file_hash is null or f.day <= $as_of)  -- (a file read after the as-of: day null)
    )"""


def _first_day(period: str) -> dt.date:
    return dt.date(int(period[:4]), int(period[4:]), 1)


def _came_in(days: dict[dt.date, int]) -> dt.date:
    """The day most of a month's rows were in (of those come in by the as-of day)."""
    total, seen = sum(days.values()), 0
    for day in sorted(days):
        seen += days[day]
        if seen >= MOST_ROWS * total:
            return day
    return max(days)


def _schedule_offsets(months: dict[str, dict[dt.date, int]], delivered: list[str]) -> list[int]:
    """Days from each delivered month's first day to the day it came in, in month order — of the
    months that came in on a schedule. Several months come in one day when a stream back-loads a
    year (the older ones are no schedule) or pays a month ahead (before 春节: the month ahead is
    none): of such a day only the months it came in within (0–30 days) count, else its earliest."""
    batches: dict[dt.date, list[tuple[str, int]]] = {}
    for p in delivered:
        if any(months[p].values()):
            day = _came_in(months[p])
            batches.setdefault(day, []).append((p, (day - _first_day(p)).days))
    kept = []
    for batch in batches.values():
        if len(batch) == 1:
            kept += [b for b in batch if USUAL_DAYS[0] <= b[1] <= USUAL_DAYS[1]]
        else:
            kept += [b for b in batch if 0 <= b[1] <= 30] or [min(batch, key=lambda b: b[1])]
    return [days for _, days in sorted(kept)]


def check(con: duckdb.DuckDBPyConnection, as_of: dt.date, grace: int) -> Arrivals:
    """The late payment streams as of `as_of` (see the module's note). Reads only the last months'
    row groups of `payments` (a filter on 所属期)."""
    out = Arrivals(as_of=as_of)
    if not table_exists(con, "payments") or not table_exists(con, "ingest_ledger"):
        return out
    this_month = f"{as_of.year:04d}{as_of.month:02d}"
    params = {"low": _month(this_month, -(LOOKBACK_MONTHS + SCHEDULE_MONTHS + 1)), "high": this_month,
              "as_of": as_of, "one_off": list(ONE_OFF_ITEMS)}
    # each payments file's day, as a feed's: a year of monthly folders read the first night is that
    # history (dated by the night, its months came in some 60 days late and 202612 was never due)
    # a file can have come no earlier than a month before the latest month it pays (paid ahead): a
    # folder dated before that is misnamed (2025-11-21 for 2026-11-21 gave months due a year back)
    earliest = {h: _first_day(p) + dt.timedelta(days=USUAL_DAYS[0]) for h, p in con.execute(
        "select _file_hash, max(period) from payments where period between $low and $high and _file_hash is not null "
        "group by 1", {"low": params["low"], "high": params["high"]}).fetchall()}
    day_of, _ = _file_days(con, "payments", as_of, earliest)
    con.execute("""create or replace temp table _arrival_files as
                   select l.file_hash, d.day from (select file_hash from ingest_ledger where extract = 'payments') l
                   left join (select unnest($files::varchar[]) as file_hash, unnest($days::date[]) as day) d
                   using (file_hash)""", {"files": list(day_of), "days": list(day_of.values())})
    try:
        return _late_streams(con, out, as_of, grace, params, this_month)
    finally:
        con.execute("drop table if exists _arrival_files")


def _late_streams(con, out: Arrivals, as_of: dt.date, grace: int, params: dict, this_month: str) -> Arrivals:
    # per stream and month: the rows come in by each day, and the month's net over all of them
    rows = con.execute(f"""
        {ARRIVED_SQL}
        select agency_code, insurance_type, period, day, count(*) filter (where amount > 0),
               sum(sum(amount)) over (partition by agency_code, insurance_type, period)
        from arrived where agency_code is not null and insurance_type is not null
        group by agency_code, insurance_type, period, day""", params).fetchall()
    months: dict[tuple[str, str], dict[str, dict[dt.date, int]]] = {}
    paid: dict[tuple[str, str], set[str]] = {}  # the months each stream paid (net)
    for agency, itype, period, day, positive, net in rows:
        by_day = months.setdefault((agency, itype), {}).setdefault(period, {})
        by_day[day] = by_day.get(day, 0) + positive
        if net > 0:
            paid.setdefault((agency, itype), set()).add(period)
    owed_from: dict[tuple[str, str], tuple[str, str]] = {}  # stream -> (month counted from, month owed)
    expected: dict[tuple[str, str], dt.date] = {}
    for stream, periods in paid.items():
        delivered = sorted(periods)
        offsets = _schedule_offsets(months[stream], delivered)[-SCHEDULE_MONTHS:]
        if not offsets:
            continue
        out.streams += 1
        day = sorted(offsets)[(len(offsets) - 1) // 2]  # its usual day of the month (the middle)
        last = delivered[-1]
        following = _month(last, 1)
        if following <= this_month and _first_day(following) + dt.timedelta(days=day + grace) <= as_of \
                and following >= _month(this_month, -LOOKBACK_MONTHS):
            owed_from[stream], expected[stream] = (last, following), _first_day(following) + dt.timedelta(days=day)
        elif (before := _month(last, -1)) in periods \
                and _first_day(last) + dt.timedelta(days=day + grace) <= as_of:
            owed_from[stream], expected[stream] = (before, last), _first_day(last) + dt.timedelta(days=day)
    if not owed_from:
        return out
    counted = _persons_owed(con, owed_from, params)
    names = _agency_names(con)
    for (agency, itype), (counted_from, month) in sorted(owed_from.items()):
        persons, owed = counted.get((agency, itype), (0, 0))
        in_part = month in paid[(agency, itype)]
        if owed and (not in_part or owed >= max(PART_OWED_LEAST, math.ceil(PART_OWED_SHARE * persons))):
            name = names.get(agency)
            out.late.append(LateStream(mask_agency_code(agency), scrub_text(name) if name else None, itype,
                                       month if in_part else counted_from, month, expected[(agency, itype)],
                                       persons, owed))
    return out


def _persons_owed(con, last_seen: dict[tuple[str, str], tuple[str, str]],
                  params: dict) -> dict[tuple[str, str], tuple[int, int]]:
    """Per stream, (people it paid, net, in the month counted from; of them, still owed the month due)."""
    con.execute("create or replace temp table _arrival_streams (agency_code varchar, insurance_type varchar, "
                "period varchar, owed_period varchar, owed_from date)")
    con.executemany("insert into _arrival_streams values (?, ?, ?, ?, ?)",
                    [(*k, last, month, _first_day(month))
                     for k, (last, month) in last_seen.items()])
    stopped = ("or exists (select 1 from beneficiaries b where b.person_id = paid.person_id "
               "and b.insurance_type = paid.insurance_type and b.status in ('暂停', '终止') "
               "and coalesce(b.status_date, date '0001-01-01') < paid.owed_from)"
               if table_exists(con, "beneficiaries") else "")
    died = ("or exists (select 1 from deaths d where d.person_id = paid.person_id and d.death_date < paid.owed_from)"
            if table_exists(con, "deaths") else "")
    try:
        rows = con.execute(f"""
            {ARRIVED_SQL},
            paid as (
                select p.agency_code, p.insurance_type, p.person_id, any_value(s.owed_period) as owed_period,
                       any_value(s.owed_from) as owed_from
                from arrived p join _arrival_streams s using (agency_code, insurance_type, period)
                where p.person_id is not null
                group by p.agency_code, p.insurance_type, p.person_id having sum(p.amount) > 0
            ),
            paid_then as (  -- net, by any agency
                select person_id, insurance_type, period from arrived
                where person_id is not null and period in (select owed_period from _arrival_streams)
                group by all having sum(amount) > 0
            )
            select agency_code, insurance_type, count(*) as paid,
                   count(*) filter (where not (exists (select 1 from paid_then c where c.person_id = paid.person_id
                                                       and c.insurance_type = paid.insurance_type
                                                       and c.period = paid.owed_period)
                                               {stopped} {died})) as owed
            from paid
            group by all""", params).fetchall()
    finally:
        con.execute("drop table if exists _arrival_streams")
    return {(agency, itype): (int(paid), int(owed)) for agency, itype, paid, owed in rows}


def check_feeds(con: duckdb.DuckDBPyConnection, as_of: dt.date, grace: int,
                calendar: WorkCalendar) -> tuple[list[LateFeed], int, list[int]]:
    """The late feeds as of `as_of` (see the module's note), how many were held to a rhythm, and the
    years whose working days were counted Monday–Friday for want of a holiday notice. An extract
    several send (extracts.SENDER_COLUMNS) is late as a whole only when each sender held is late too
    (eight agencies sending their statements on eight days of a month give the whole a rhythm of one
    day); it is then said once, not again by each sender."""
    if not table_exists(con, "ingest_ledger"):
        return [], 0, []
    forgotten_before = as_of - dt.timedelta(days=round(LOOKBACK_MONTHS * 365.25 / 12))
    names = _agency_names(con)
    paying = _agencies_paying(con, as_of)
    late: list[LateFeed] = []
    held, counted = 0, set()
    for extract in FEED_EXTRACTS:
        if not table_exists(con, extract):
            continue
        by = SENDER_COLUMNS.get(extract)
        judged: dict[str | None, LateFeed | None] = {}  # held: its LateFeed, or None on time
        for part, days in _feed_days(con, extract, as_of).items():
            first = len(days) - (FEED_INTERVALS + 1)
            if part is None and by is not None:
                # senders interleaving (seven agencies on seven days of a month) give the whole a rhythm of
                # a day within its weeks: its rhythm spans its last months too
                window = days[-1] - dt.timedelta(days=WHOLE_WINDOW_DAYS)  # (its last months, as they stay)
                first = min(first, next((i for i, d in enumerate(days) if d >= window), len(days)) - 1)
            recent = days[max(first, 0):]
            if len(recent) < FEED_LEAST_INTERVALS + 1 or recent[-1] < forgotten_before:
                continue
            if by == "agency_code" and part is not None and part not in paying:
                continue
            counted |= {recent[0].year, as_of.year}
            longest = max(calendar.working_days_between(a, b) for a, b in zip(recent, recent[1:]))
            silent = calendar.working_days_between(recent[-1], as_of)
            judged[part] = None if silent <= longest + grace else LateFeed(
                extract, _shown_part(by, part), _part_name(by, part, names), recent[-1], longest, silent,
                calendar.add_working_days(recent[-1], longest + grace))
        held += len(judged)
        whole = judged.pop(None, None)
        if whole is not None and all(judged.values()):
            late.append(whole)
        else:
            late += [f for _, f in sorted(judged.items()) if f is not None]
    years = sorted(y for y in range(min(counted, default=as_of.year), as_of.year + 1)
                   if counted and not calendar.knows(y))
    return late, held, years


def _file_days(con, extract: str, as_of: dt.date,
               earliest: dict[str, dt.date] | None = None) -> tuple[dict[str, dt.date], set[dt.date]]:
    """The day each file of an extract came in (the ledger's files), and the days the extract came in
    (those and the copies of them sent again), up to as_of. A file's day is its delivery folder's date
    where the folder is named by one from the latest day of the nights that ran before it was read
    (and of the files they read; and from the file's `earliest` day, its contents' own bound) up to the
    night that read it (a week the office ran no nights is no silence of the sender; a year of dated
    folders back-loaded the first night is its history), else that night: a folder named for a day
    behind them (a 补报 named for its month, a year typed wrong, a folder of 11-21 found on 11-28 after
    nights had run) came in when it was read (a file read outside a night: the day it was read). So a
    page drawn later for an earlier day counts a folder of that day a later catch-up night read, not one
    that came after nights of that day had looked. Nights count in the order they ran (a night run
    later for an earlier day, --any-day, after those before it; a file it reads late comes in no earlier
    than their days). Days after as_of are left out (a folder read by a night for an earlier day came in
    by its own day)."""
    copies = ("union all select file_hash, delivery, seen_at, run_id, true from ingest_copies "
              f"where extract = '{extract}'" if table_exists(con, "ingest_copies") else "")
    read_on, runs = _read_on(con)
    files = con.execute(f"""
        with sent as (
            select file_hash, delivery, ingested_at as at, run_id, false as copy from ingest_ledger
            where extract = '{extract}' {copies}
        )
        select s.file_hash, s.copy, coalesce({read_on}, date '0001-01-01') as read_on,  -- (no time, no night: long in)
               cast(try_strptime(left(s.delivery, 10), '%Y-%m-%d') as date) as named,
               coalesce(cast(s.at as date), {read_on}, date '0001-01-01') as read_at,
               coalesce(s.run_id, cast(cast(s.at as date) as varchar)) as reading, s.at
        from sent s {runs}
        order by s.at nulls first, named nulls last""").fetchall()
    # the nights that looked at the inbox: completed, or failed after their ingest ran (its summary
    # counts the files; a night killed before it looked at nothing); a row without its time is passed over
    ran = con.execute("select run_id, as_of, started_at from runs where as_of is not null and started_at is not null "
                      "and (status = 'completed' or json_exists(summary, '$.files_ingested')) "
                      "order by started_at").fetchall() if table_exists(con, "runs") else []
    day_of: dict[str, dt.date] = {}  # a file of the ledger -> its day
    whole: set[dt.date] = set()
    known: dt.date | None = None  # the latest day of the nights run before the one reading (and their files)
    later = 0  # the next night in `ran` not yet counted into `known`
    for reading, read_then in itertools.groupby(files, key=lambda f: f[5]):  # (one night's files: in the order read)
        read_then = list(read_then)
        night, began = read_then[0][2], read_then[0][6]
        while later < len(ran) and began is not None and ran[later][2] < began:
            if ran[later][0] != reading:  # (its own night bounds the files read after it)
                known = max(known, ran[later][1]) if known else ran[later][1]
            later += 1
        days = []
        for file_hash, copy, _, named, read_at, _, _ in read_then:
            # (a night run for an earlier day reads the folders dated up to the day it ran: their own days)
            on_time = named is not None and named <= max(night, read_at) and (known is None or named >= known) \
                and named >= (earliest or {}).get(file_hash, named)
            # else the night that read it — for a night run later for an earlier day (--any-day), the day
            # after the latest night that had looked before it (a 补报 it read was dated back past their
            # verdicts, the pages of those days then saying all was in)
            day = named if on_time else night if known is None or night >= known else known + dt.timedelta(days=1)
            days.append(day)
            if not copy and day <= as_of:
                day_of[file_hash] = day
        whole.update(d for d in days if d <= as_of)
        known = max([known, night, *days] if known else [night, *days])
    return day_of, whole


def _feed_days(con, extract: str, as_of: dt.date) -> dict[str | None, list[dt.date]]:
    """The days a feed came in by as_of (_file_days): the extract's by its files and
    the copies of them sent again (None); each sender's by the files that brought rows of keys new to
    the store (ingest_senders)."""
    day_of, whole = _file_days(con, extract, as_of)
    found: dict[str | None, set[dt.date]] = {None: whole}
    if extract in SENDER_COLUMNS and table_exists(con, "ingest_senders") and day_of:
        for file_hash, sender in con.execute(
                "select file_hash, sender from ingest_senders where extract = ? and sender is not null and new_rows > 0",
                [extract]).fetchall():
            if file_hash in day_of:
                found.setdefault(sender, set()).add(day_of[file_hash])
    return {part: sorted(days) for part, days in found.items() if days}


def _agencies_paying(con, as_of: dt.date) -> set[str]:
    """The agencies with a payment paid within PAYING_WITHIN_DAYS of as_of (their statements are waited for)."""
    if not table_exists(con, "payments"):
        return set()
    since = as_of - dt.timedelta(days=PAYING_WITHIN_DAYS)
    low = _month(f"{since.year:04d}{since.month:02d}", -1)  # 所属期 is close to 发放日期: its row groups only
    return {a for (a,) in con.execute(
        "select distinct agency_code from payments where period >= $low and paid_on between $since and $as_of "
        "and agency_code is not null", {"low": low, "since": since, "as_of": as_of}).fetchall()}


def _shown_part(by: str | None, part: str | None) -> str | None:
    return mask_agency_code(part) if by == "agency_code" else part


def _part_name(by: str | None, part: str | None, names: dict[str, str]) -> str | None:
    if by == "agency_code":
        name = names.get(part)
        return scrub_text(name) if name else None
    if by == "insurance_type":
        return INSURANCE_TYPES.get(part)
    return None


def _agency_names(con) -> dict[str, str]:
    if not table_exists(con, "agencies"):
        return {}
    return dict(con.execute("select agency_code, any_value(agency_name) from agencies group by 1").fetchall())


def summary(arrivals: Arrivals) -> dict:
    """As the night's summary, runs.summary and the dashboard say it: the late streams an agency at a time."""
    agencies: dict[str, dict] = {}
    for s in arrivals.late:
        a = agencies.setdefault(s.agency_code, {"agency_code": s.agency_code, "agency_name": s.agency_name,
                                                "streams": [], "persons_owed": 0})
        a["streams"].append({"insurance_type": s.insurance_type,
                             "insurance_name": INSURANCE_TYPES.get(s.insurance_type, s.insurance_type),
                             "missing_period": s.missing_period, "expected_on": s.expected_on.isoformat(),
                             "last_period": s.last_period, "in_part": s.in_part, "persons_last": s.persons_last,
                             "persons_owed": s.persons_owed})
        a["persons_owed"] += s.persons_owed
    return {"as_of": arrivals.as_of.isoformat(), "streams": arrivals.streams, "late": list(agencies.values()),
            "feeds": arrivals.feeds,
            "late_feeds": [{"extract": f.extract, "extract_name": EXTRACTS[f.extract].title, "part": f.part,
                            "part_name": f.part_name, "last_on": f.last_on.isoformat(), "silent_days": f.silent_days,
                            "longest_days": f.longest_days, "due_by": f.due_by.isoformat()}
                           for f in arrivals.late_feeds],
            "calendar_assumed_years": arrivals.feed_years_assumed}
