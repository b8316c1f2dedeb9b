"""数据报送: has every agency's month of benefit payments come in?

A month one agency did not deliver is silent otherwise: its rules find nothing in rows that are
not there, and the continuity check speaks only when the agency's next month arrives. The office
has no delivery plan to hold the inbox to (deliveries may be split over days, an agency may merge
into another), so the data say what to expect. The month "delivered" is the latest 所属期 that more
than half the payment streams (险种 × 经办机构, recurring items) of the month before have, once
`late_delivery_days` have passed since the night that half was reached. A stream paid in one of the
twelve months before it is late when people it paid in its last month are still owed that month:
paid for it by no agency under the same 险种, not 暂停/终止 before it, not dead before it (the month
of death is payable) — all of them for a stream without a row of the month, a fifth or more for one
whose month came in part (one row of a month is not the month). A stream whose people all moved to
another agency (机构改革), stopped or died is not waited for. Only what had come in by the as-of day
counts, so a page drawn for an earlier day says what that night knew.
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
# A stream whose month came in part is late when at least this share of its people are still owed it.
PART_OWED_SHARE = 0.2
# The month delivered this many months before the as-of month: nothing has come since (a stall).
STALLED_MONTHS = 2


@dataclass(frozen=True)
class LateStream:
    agency_code: str        # masked where a code holds an ID number (as on every province page)
    agency_name: str | None  # masked likewise
    insurance_type: str
    last_period: str        # the month its owed people were last paid by it
    missing_period: str     # the month the other streams delivered
    persons_last: int       # people it paid in last_period
    persons_owed: int       # of them, still owed missing_period
    others_since: dt.date   # the night more than half the streams had missing_period
    others: int             # streams that delivered missing_period

    @property
    def in_part(self) -> bool:
        return self.last_period == self.missing_period


@dataclass
class Arrivals:
    """What the night knows of the payments' months: the month delivered (None before one), its
    late streams, and the latest month any stream has at all."""
    month: str | None = None
    since: dt.date | None = None
    streams: int = 0
    late: list[LateStream] = field(default_factory=list)
    latest: str | None = None
    as_of: dt.date | None = None

    @property
    def stalled(self) -> bool:
        """No month come in at all, or the latest STALLED_MONTHS or more before the as-of month: no
        stream to say late, nothing delivered (a pipeline from the core systems stopped)."""
        if self.as_of is None:
            return False
        this_month = f"{self.as_of.year:04d}{self.as_of.month:02d}"
        return self.latest is None or _months_between(self.latest, this_month) >= STALLED_MONTHS


def grace_days(config) -> int | None:
    """config `late_delivery_days` (its default without a config)."""
    days = DEFAULTS["late_delivery_days"] if config is None else config.get("late_delivery_days")
    return None if days is None else int(days)


def _month(period: str, k: int) -> str:
    y, m = divmod(int(period[:4]) * 12 + int(period[4:]) - 1 + k, 12)
    return f"{y:04d}{m + 1:02d}"


def _months_between(earlier: str, later: str) -> int:
    return (int(later[:4]) * 12 + int(later[4:])) - (int(earlier[:4]) * 12 + int(earlier[4:]))


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
    # a month paid ahead (the next month's pension on the 25th) counts; a typo years ahead does not
    back = LOOKBACK_MONTHS + math.ceil(grace / 28) + STALLED_MONTHS + 1
    params = {"low": _month(this_month, -back), "high": _month(this_month, 1), "as_of": as_of,
              "one_off": list(ONE_OFF_ITEMS)}
    rows = con.execute(f"""
        with nights as ({_nights_sql(con)})
        select p.agency_code, p.insurance_type, p.period, min(coalesce(n.night, date '0001-01-01')) as first_night
        from payments p left join nights n on n.file_hash = p._file_hash
        where p.period between $low and $high and not list_contains($one_off, p.item)
          and p.agency_code is not null and p.insurance_type is not null
          and coalesce(n.night, date '0001-01-01') <= $as_of
        group by all""", params).fetchall()
    by_period: dict[str, dict[tuple[str, str], dt.date]] = {}
    for agency, itype, period, night in rows:
        by_period.setdefault(period, {})[(agency, itype)] = night
    due = as_of - dt.timedelta(days=grace)
    for period in sorted(by_period, reverse=True):
        before = by_period.get(_month(period, -1), {})
        need = len(before) // 2 + 1  # more than half the streams of the month before (a stray row is not the month)
        if not before or len(by_period[period]) < need:
            continue
        out.latest = out.latest or period
        # the night that half was reached: an advance row weeks before does not start the grace
        since = sorted(by_period[period].values())[need - 1]
        if since <= due:
            out.month, out.since, out.streams = period, since, len(by_period[period])
            break
    if out.month is None:
        return out
    last_seen: dict[tuple[str, str], str] = {}
    for k in range(0, LOOKBACK_MONTHS + 1):
        for stream in by_period.get(_month(out.month, -k), {}):
            if k == 0:
                if stream in by_period.get(_month(out.month, -1), {}):
                    last_seen[stream] = _month(out.month, -1)  # delivered: in full?
            else:
                last_seen.setdefault(stream, _month(out.month, -k))
    counted = _persons_owed(con, out.month, last_seen, params)
    names = _agency_names(con)
    for (agency, itype), last in sorted(last_seen.items()):
        paid, owed = counted.get((agency, itype), (0, 0))
        delivered = (agency, itype) in by_period[out.month]
        if owed and (not delivered or owed >= max(1, math.ceil(PART_OWED_SHARE * paid))):
            name = names.get(agency)
            out.late.append(LateStream(mask_agency_code(agency), scrub_text(name) if name else None, itype,
                                       out.month if delivered else last, out.month, paid, owed, out.since,
                                       out.streams))
    return out


def _persons_owed(con, month: str, last_seen: dict[tuple[str, str], str], params: dict) -> dict[tuple[str, str], tuple[int, int]]:
    """Per stream, (people it paid, net, in its last month before `month`; of them, still owed `month`)."""
    con.execute("create or replace temp table _arrival_streams (agency_code varchar, insurance_type varchar, "
                "period varchar)")
    con.executemany("insert into _arrival_streams values (?, ?, ?)", [(*k, v) for k, v in last_seen.items()])
    month_starts = dt.date(int(month[:4]), int(month[4:]), 1)
    stopped = ("or exists (select 1 from beneficiaries b where b.person_id = paid.person_id "
               "and b.insurance_type = paid.insurance_type and b.status in ('暂停', '终止') "
               "and coalesce(b.status_date, date '0001-01-01') < $month_starts)"
               if table_exists(con, "beneficiaries") else "")
    died = ("or exists (select 1 from deaths d where d.person_id = paid.person_id and d.death_date < $month_starts)"
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
                select p.agency_code, p.insurance_type, p.person_id
                from arrived p join _arrival_streams s using (agency_code, insurance_type, period)
                group by all having sum(p.amount) > 0
            ),
            this_month as (select distinct person_id, insurance_type from arrived where period = $month)
            select agency_code, insurance_type, count(*) as paid,
                   count(*) filter (where not (exists (select 1 from this_month c where c.person_id = paid.person_id
                                                                               and c.insurance_type = paid.insurance_type)
                                               {stopped} {died})) as owed
            from paid
            group by all""", {**params, "month": month, "month_starts": month_starts}).fetchall()
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
    """As the night's summary, runs.summary and the dashboard say it: the month, the late streams an
    agency at a time, and a stall."""
    agencies: dict[str, dict] = {}
    for s in arrivals.late:
        a = agencies.setdefault(s.agency_code, {"agency_code": s.agency_code, "agency_name": s.agency_name,
                                                "streams": [], "persons_owed": 0})
        a["streams"].append({"insurance_type": s.insurance_type,
                             "insurance_name": INSURANCE_TYPES.get(s.insurance_type, s.insurance_type),
                             "last_period": s.last_period, "in_part": s.in_part, "persons_last": s.persons_last,
                             "persons_owed": s.persons_owed})
        a["persons_owed"] += s.persons_owed
    return {"month": arrivals.month, "since": arrivals.since.isoformat() if arrivals.since else None,
            "streams": arrivals.streams, "latest": arrivals.latest, "as_of": arrivals.as_of.isoformat(),
            "stalled": arrivals.stalled, "late": list(agencies.values())}
