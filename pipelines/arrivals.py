"""数据报送: has every agency's month of benefit payments come in?

A month one agency did not deliver is silent otherwise: its rules find nothing in rows that are
not there, and the continuity check speaks only when the agency's next month arrives. The office
has no delivery plan to hold the inbox to, and comparing agencies misleads (险种 come from different
core systems on different days, a month may come in halves a week apart, a 补发 month doubles the
rows, a month is paid ahead before 春节, agencies merge), so each payment stream (险种 × 经办机构,
recurring items) is held to its own schedule: the day of the month its recent months came in (the
night most of a month's rows were in, counted from the month's first day; the middle of its last
three months, so one month paid ahead or a year back-loaded does not move it). A stream is late when
`late_delivery_days` have passed since that day of a month — not after the as-of month — and either
it has no row of the month (net) while people it paid in its last month are still owed it, or the
month came in part while a fifth and at least three of the people of its month before are still
owed it. Owed: paid for it (net) by no agency under the same 险种, not 暂停/终止 before it, not dead
before it (the month of death is payable). A stream whose people all moved to another agency (机构改
革), stopped or died is not waited for; one silent for a year is forgotten. Payments count as they
had come in by the as-of day; deaths and the register as they are now.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import duckdb

from .config import DEFAULTS
from .extracts import INSURANCE_TYPES, ONE_OFF_ITEMS
from .report_mask import mask_agency_code, scrub_text
from .store import table_exists

# A stream silent for longer is no longer waited for.
LOOKBACK_MONTHS = 12
# The months whose arrival day sets a stream's schedule (their middle one).
SCHEDULE_MONTHS = 3
# Days from a month's first day within which a month sent alone comes in on a schedule (paid ahead
# up to a month before; sent at the end of the month after).
USUAL_DAYS = (-31, 62)
# The night a month "came in": when this share of its rows (as of the as-of day) were in.
MOST_ROWS = 0.8
# A stream whose month came in part is late when at least this share of its people (and PART_OWED_LEAST
# of them) are still owed it: a death or a 终止 recorded a month late is one person, not a delivery.
PART_OWED_SHARE = 0.2
PART_OWED_LEAST = 3


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


@dataclass
class Arrivals:
    """The late streams as of a day, and how many streams were held to their schedules."""
    late: list[LateStream] = field(default_factory=list)
    streams: int = 0
    as_of: dt.date | None = None


def grace_days(config) -> int | None:
    """config `late_delivery_days` (its default without a config)."""
    days = DEFAULTS["late_delivery_days"] if config is None else config.get("late_delivery_days")
    return None if days is None else int(days)


def said(con: duckdb.DuckDBPyConnection, as_of: dt.date, config) -> dict | None:
    """数据报送 as the night's summary, runs.summary and the dashboard say it (summary()) as of a day,
    from what had come in by then; None where the config switches it off."""
    grace = grace_days(config)
    return None if grace is None else summary(check(con, as_of, grace))


def _month(period: str, k: int) -> str:
    y, m = divmod(int(period[:4]) * 12 + int(period[4:]) - 1 + k, 12)
    return f"{y:04d}{m + 1:02d}"


def _arrived_sql(con) -> str:
    """`with … arrived`: the recurring payments of the window ($low–$high) come in by $as_of, each with
    the night that read its file (its run's as-of; a file read outside a night by the day it was read)."""
    nights = ("select l.file_hash, coalesce(r.as_of, cast(l.ingested_at as date)) as night "
              "from ingest_ledger l left join runs r on r.run_id = l.run_id where l.extract = 'payments'"
              if table_exists(con, "runs") else
              "select file_hash, cast(ingested_at as date) as night from ingest_ledger where extract = 'payments'")
    return f"""with nights as ({nights}),
        arrived as (
            select p.*, coalesce(n.night, date '0001-01-01') as night
            from payments p left join nights n on n.file_hash = p._file_hash
            where p.period between $low and $high and not list_contains($one_off, p.item)
              and coalesce(n.night, date '0001-01-01') <= $as_of
        )"""


def _first_day(period: str) -> dt.date:
    return dt.date(int(period[:4]), int(period[4:]), 1)


def _came_in(nights: dict[dt.date, int]) -> dt.date:
    """The night most of a month's rows were in (of those come in by the as-of day)."""
    total, seen = sum(nights.values()), 0
    for night in sorted(nights):
        seen += nights[night]
        if seen >= MOST_ROWS * total:
            return night
    return max(nights)


def _schedule_offsets(months: dict[str, dict[dt.date, int]], delivered: list[str]) -> list[int]:
    """Days from each delivered month's first day to the night it came in, in month order — of the
    months that came in on a schedule. Several months come in one night when a stream back-loads a
    year (the older ones are no schedule) or pays a month ahead (before 春节: the month ahead is
    none): of such a night only the months it came in within (0–30 days) count, else its earliest."""
    nights: dict[dt.date, list[tuple[str, int]]] = {}
    for p in delivered:
        if any(months[p].values()):
            night = _came_in(months[p])
            nights.setdefault(night, []).append((p, (night - _first_day(p)).days))
    kept = []
    for batch in nights.values():
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
    # per stream and month: the rows come in by each night, and the month's net over all of them
    rows = con.execute(f"""
        {_arrived_sql(con)}
        select agency_code, insurance_type, period, night, count(*) filter (where amount > 0),
               sum(sum(amount)) over (partition by agency_code, insurance_type, period)
        from arrived where agency_code is not null and insurance_type is not null
        group by agency_code, insurance_type, period, night""", params).fetchall()
    months: dict[tuple[str, str], dict[str, dict[dt.date, int]]] = {}
    paid: dict[tuple[str, str], set[str]] = {}  # the months each stream paid (net)
    for agency, itype, period, night, positive, net in rows:
        by_night = months.setdefault((agency, itype), {}).setdefault(period, {})
        by_night[night] = by_night.get(night, 0) + positive
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
            {_arrived_sql(con)},
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
    return {"as_of": arrivals.as_of.isoformat(), "streams": arrivals.streams, "late": list(agencies.values())}
