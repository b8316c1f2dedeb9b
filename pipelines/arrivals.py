"""数据报送: has every agency's month of benefit payments come in?

A month one agency did not deliver is silent otherwise: its rules find nothing in rows that are
not there, and the continuity check speaks only when the agency's next month arrives. The office
has no delivery plan to hold the inbox to (deliveries may be split over days, an agency may merge
into another, 险种 come from different core systems on different days), so the data say what to
expect, 险种 by 险种. A 险种's month "delivered" is the latest 所属期, not after the as-of month,
whose payments that had come in are more than half as many as its month before's — once
`late_delivery_days` have passed since the night that half was reached. A payment stream (险种 ×
经办机构, recurring items) paid in one of the twelve months before it is late when people it paid in
its last month are still owed that month: paid for it (net) by no agency under the same 险种, not
暂停/终止 before it, not dead before it (the month of death is payable) — any of them for a stream
without the month (net), a fifth and at least three for one whose month came in part (one row of a
month is not the month; one person of a small stream is churn). A stream whose people all moved to
another agency (机构改革), stopped or died is not waited for. Payments count as they had come in by
the as-of day; deaths and the register as they are now.
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

# Months before the delivered one in which a stream counts as still paying: an agency that stopped
# delivering is said every night for a year, not forgotten after a quarter.
LOOKBACK_MONTHS = 12
# A stream whose month came in part is late when at least this share of its people (and PART_OWED_LEAST
# of them) are still owed it: a death or a 终止 recorded a month late is one person, not a delivery.
PART_OWED_SHARE = 0.2
PART_OWED_LEAST = 3
# No 险种 has completed a month for this many days: the deliveries stopped (a month comes every ~30).
STALLED_DAYS = 45


@dataclass(frozen=True)
class LateStream:
    agency_code: str        # masked where a code holds an ID number (as on every province page)
    agency_name: str | None  # masked likewise
    insurance_type: str
    last_period: str        # the month its owed people were last paid by it
    missing_period: str     # its 险种's month delivered
    persons_last: int       # people it paid in last_period
    persons_owed: int       # of them, still owed missing_period
    others_since: dt.date   # the night more than half its 险种's month had come in

    @property
    def in_part(self) -> bool:
        return self.last_period == self.missing_period


@dataclass
class Arrivals:
    """What the night knows of the payments' months: each 险种's month delivered and since when,
    the late streams, and the night the last month of any 险种 was more than half in."""
    months: dict[str, tuple[str, dt.date]] = field(default_factory=dict)
    late: list[LateStream] = field(default_factory=list)
    last_completed: dt.date | None = None
    last_arrived: dt.date | None = None  # the last night any payment came in
    as_of: dt.date | None = None

    @property
    def stalled(self) -> bool:
        """No 险种 has had a month more than half in for STALLED_DAYS — or, before any month could be
        (a first delivery of one month has none before it to be half of), no payment has come in."""
        last = self.last_completed or self.last_arrived
        return self.as_of is not None and last is not None and (self.as_of - last).days >= STALLED_DAYS


def grace_days(config) -> int | None:
    """config `late_delivery_days` (its default without a config)."""
    days = DEFAULTS["late_delivery_days"] if config is None else config.get("late_delivery_days")
    return None if days is None else int(days)


def _month(period: str, k: int) -> str:
    y, m = divmod(int(period[:4]) * 12 + int(period[4:]) - 1 + k, 12)
    return f"{y:04d}{m + 1:02d}"


def _nights_sql(con) -> str:
    """Each payments file by the night that read it (its run's as-of; a file read outside a night by
    the day it was read)."""
    if table_exists(con, "runs"):
        return ("select l.file_hash, coalesce(r.as_of, cast(l.ingested_at as date)) as night "
                "from ingest_ledger l left join runs r on r.run_id = l.run_id where l.extract = 'payments'")
    return "select file_hash, cast(ingested_at as date) as night from ingest_ledger where extract = 'payments'"


def check(con: duckdb.DuckDBPyConnection, as_of: dt.date, grace: int) -> Arrivals:
    """The payments' months as of `as_of` (see the module's note). Reads only the last months' row
    groups of `payments` (a filter on 所属期)."""
    out = Arrivals(as_of=as_of)
    if not table_exists(con, "payments") or not table_exists(con, "ingest_ledger"):
        return out
    this_month = f"{as_of.year:04d}{as_of.month:02d}"
    back = LOOKBACK_MONTHS + math.ceil(max(grace, STALLED_DAYS) / 28) + 2
    params = {"low": _month(this_month, -back), "high": this_month, "as_of": as_of, "one_off": list(ONE_OFF_ITEMS)}
    # per stream and month: the rows come in by each night, and the month's net over all of them
    rows = con.execute(f"""
        with nights as ({_nights_sql(con)}),
        arrived as (
            select p.agency_code, p.insurance_type, p.period, p.amount, coalesce(n.night, date '0001-01-01') as night
            from payments p left join nights n on n.file_hash = p._file_hash
            where p.period between $low and $high and not list_contains($one_off, p.item)
              and p.agency_code is not null and p.insurance_type is not null
              and coalesce(n.night, date '0001-01-01') <= $as_of
        )
        select agency_code, insurance_type, period, night, count(*) filter (where amount > 0),
               sum(sum(amount)) over (partition by agency_code, insurance_type, period)
        from arrived group by agency_code, insurance_type, period, night""", params).fetchall()
    out.last_arrived = max((night for *_, night, _, _ in rows), default=None)
    # 险种 -> month -> night -> rows; stream -> months it was paid (net)
    counts: dict[str, dict[str, dict[dt.date, int]]] = {}
    paid: dict[tuple[str, str], set[str]] = {}
    for agency, itype, period, night, positive, net in rows:
        by_night = counts.setdefault(itype, {}).setdefault(period, {})
        by_night[night] = by_night.get(night, 0) + positive
        if net > 0:
            paid.setdefault((agency, itype), set()).add(period)
    due = as_of - dt.timedelta(days=grace)
    for itype, months in counts.items():
        for period in sorted(months, reverse=True):
            before = sum(months.get(_month(period, -1), {}).values())
            seen = 0
            since = None
            for night in sorted(months[period]):  # the night more than half as many rows as the month before's were in
                seen += months[period][night]
                if before and 2 * seen > before:
                    since = night
                    break
            if since is None:
                continue
            out.last_completed = max(out.last_completed or since, since)
            if since <= due:
                out.months[itype] = (period, since)
                break
    last_seen: dict[tuple[str, str], tuple[str, str]] = {}  # stream -> (its last month before, the month owed)
    for (agency, itype), periods in paid.items():
        if itype not in out.months:
            continue
        month = out.months[itype][0]
        earlier = [p for p in periods if _month(month, -LOOKBACK_MONTHS) <= p < month]
        if earlier:
            last_seen[(agency, itype)] = (max(earlier), month)
    if not last_seen:
        return out
    counted = _persons_owed(con, last_seen, params)
    names = _agency_names(con)
    for (agency, itype), (last, month) in sorted(last_seen.items()):
        persons, owed = counted.get((agency, itype), (0, 0))
        delivered = month in paid[(agency, itype)]
        if owed and (not delivered or owed >= max(PART_OWED_LEAST, math.ceil(PART_OWED_SHARE * persons))):
            name = names.get(agency)
            out.late.append(LateStream(mask_agency_code(agency), scrub_text(name) if name else None, itype,
                                       month if delivered else last, month, persons, owed, out.months[itype][1]))
    return out


def _persons_owed(con, last_seen: dict[tuple[str, str], tuple[str, str]],
                  params: dict) -> dict[tuple[str, str], tuple[int, int]]:
    """Per stream, (people it paid, net, in its last month; of them, still owed its 险种's month)."""
    con.execute("create or replace temp table _arrival_streams (agency_code varchar, insurance_type varchar, "
                "period varchar, owed_period varchar, owed_from date)")
    con.executemany("insert into _arrival_streams values (?, ?, ?, ?, ?)",
                    [(*k, last, month, dt.date(int(month[:4]), int(month[4:]), 1))
                     for k, (last, month) in last_seen.items()])
    stopped = ("or exists (select 1 from beneficiaries b where b.person_id = paid.person_id "
               "and b.insurance_type = paid.insurance_type and b.status in ('暂停', '终止') "
               "and coalesce(b.status_date, date '0001-01-01') < paid.owed_from)"
               if table_exists(con, "beneficiaries") else "")
    died = ("or exists (select 1 from deaths d where d.person_id = paid.person_id and d.death_date < paid.owed_from)"
            if table_exists(con, "deaths") else "")
    try:
        rows = con.execute(f"""
            with nights as ({_nights_sql(con)}),
            arrived as (
                select p.* from payments p left join nights n on n.file_hash = p._file_hash
                where p.period between $low and $high and coalesce(n.night, date '0001-01-01') <= $as_of
                  and not list_contains($one_off, p.item) and p.person_id is not null
            ),
            paid as (
                select p.agency_code, p.insurance_type, p.person_id, any_value(s.owed_period) as owed_period,
                       any_value(s.owed_from) as owed_from
                from arrived p join _arrival_streams s using (agency_code, insurance_type, period)
                group by p.agency_code, p.insurance_type, p.person_id having sum(p.amount) > 0
            ),
            paid_then as (  -- net, by any agency
                select person_id, insurance_type, period from arrived
                where period in (select owed_period from _arrival_streams)
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


def late_streams(con: duckdb.DuckDBPyConnection, as_of: dt.date, grace: int | None) -> list[LateStream]:
    """The late streams alone ([] when switched off: `grace` None)."""
    return [] if grace is None else check(con, as_of, grace).late


def summary(arrivals: Arrivals) -> dict:
    """As the night's summary, runs.summary and the dashboard say it: each 险种's month, the late
    streams an agency at a time, and a stall."""
    agencies: dict[str, dict] = {}
    for s in arrivals.late:
        a = agencies.setdefault(s.agency_code, {"agency_code": s.agency_code, "agency_name": s.agency_name,
                                                "streams": [], "persons_owed": 0})
        a["streams"].append({"insurance_type": s.insurance_type,
                             "insurance_name": INSURANCE_TYPES.get(s.insurance_type, s.insurance_type),
                             "missing_period": s.missing_period, "others_since": s.others_since.isoformat(),
                             "last_period": s.last_period, "in_part": s.in_part, "persons_last": s.persons_last,
                             "persons_owed": s.persons_owed})
        a["persons_owed"] += s.persons_owed
    return {"months": {itype: {"month": month, "since": since.isoformat()}
                       for itype, (month, since) in sorted(arrivals.months.items())},
            "as_of": arrivals.as_of.isoformat(), "stalled": arrivals.stalled,
            "last_completed": arrivals.last_completed.isoformat() if arrivals.last_completed else None,
            "late": list(agencies.values())}
